/*
 * tests/mock/test_providers.c: the five providers through the C API
 * against llmux-mock, which speaks each one's own protocol. Equivalent
 * replies must give identical normalized results whatever the provider,
 * and each plugin must send exactly the request its provider accepts.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "mock/mock_env.h"

typedef struct prov {
    const char *name;
    const char *model;
    const char *prefix; /* llmux-mock path prefix of its protocol */
    const char *opts;   /* more of the config string */
} prov;

static const prov provs[] = {
    {"openai", "gpt-4o-mini", "/v1", ""},
    {"mistral", "mistral-small-latest", "/mistral", ""},
    {"ollama", "llama3.2", "/ollama", ""},
    {"alephalpha", "llama-3.1-8b-instruct", "/aleph", ""},
    /* the deployments API; test_azure covers v1 */
    {"azure", "gpt-4o-mini", "", ";api_version=2024-10-21"},
};
#define N_PROVS (sizeof provs / sizeof provs[0])

/* A client that never retries, as every test's. */
static void env_start(mock_env *e)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    o.max_retries = 0;
    mock_env_start(e, &o, NULL);
}

static int have_plugin(const char *name)
{
    llmux_provider_info info;
    return llmux_provider_probe(name, NULL, &info, NULL, 0) == 0;
}

static llmux_request *new_req(mock_env *e, const prov *p, llmux_op op,
                              const char *model)
{
    llmux_request *req;
    char spec[512];
    snprintf(spec, sizeof spec,
             "%s/%s;base_url=http://127.0.0.1:%d%s;api_key=sk-test%s", p->name,
             model ? model : p->model, llmux_mock_port(e->mock), p->prefix,
             p->opts);
    assert_int_equal(llmux_request_new(&req, op, spec), 0);
    return req;
}

/* The response JSON without the fields that legitimately differ. */
static char *normalized(const llmux_response *res)
{
    char *js = llmux_response_to_json(res), *out;
    json_object *j = json_tokener_parse(js);
    assert_non_null(j);
    /* only the members every provider's answer has: id, created, model
     * and system_fingerprint identify the backend, and the fields one
     * provider adds (Mistral's "p" padding, Ollama's durations) are passed
     * through as they came */
    {
        static const char *const keep[] = {"object", "choices", "usage",
                                           "data"};
        struct json_object_iterator it = json_object_iter_begin(j),
                                    end = json_object_iter_end(j);
        char *drop[64];
        size_t n = 0, k;
        while (!json_object_iter_equal(&it, &end)) {
            const char *name = json_object_iter_peek_name(&it);
            int kept = 0;
            for (k = 0; k < sizeof keep / sizeof keep[0]; k++)
                kept |= strcmp(name, keep[k]) == 0;
            if (!kept && n < 64)
                drop[n++] = strdup(name);
            json_object_iter_next(&it);
        }
        for (k = 0; k < n; k++) {
            json_object_object_del(j, drop[k]);
            free(drop[k]);
        }
    }
    {
        /* Azure's filter results annotate each choice */
        json_object *ch;
        size_t k;
        if (json_object_object_get_ex(j, "choices", &ch))
            for (k = 0; k < json_object_array_length(ch); k++)
                json_object_object_del(json_object_array_get_idx(ch, k),
                                       "content_filter_results");
    }
    {
        /* tool call ids are minted by each provider (Ollama sends none) */
        json_object *ch, *m, *tc;
        if (json_object_object_get_ex(j, "choices", &ch) &&
            json_object_object_get_ex(json_object_array_get_idx(ch, 0),
                                      "message", &m) &&
            json_object_object_get_ex(m, "tool_calls", &tc)) {
            size_t k;
            for (k = 0; k < json_object_array_length(tc); k++)
                json_object_object_del(json_object_array_get_idx(tc, k), "id");
        }
    }
    out = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
    llmux_free(js);
    return out;
}

/* Runs `op` on every provider with a plugin and checks the normalized
 * results are all the same. */
typedef void (*fill_fn)(llmux_request *req);

static void same_everywhere(mock_env *e, llmux_op op, int stream, fill_fn fill,
                            const char *want_text)
{
    char *first = NULL;
    size_t i;
    int ran = 0;
    for (i = 0; i < N_PROVS; i++) {
        mock_call r = {0};
        llmux_request *req;
        char *norm;
        if (!have_plugin(provs[i].name)) {
            print_message("skip %s: no plugin\n", provs[i].name);
            continue;
        }
        req = new_req(e, &provs[i], op, NULL);
        fill(req);
        llmux_request_set_stream(req, stream);
        mock_env_call(e, req, &r);
        if (r.status != 0)
            print_message("%s: %s\n", provs[i].name, r.err->message);
        assert_int_equal(r.status, 0);
        if (want_text) {
            assert_string_equal(llmux_response_text(r.res, NULL), want_text);
            if (stream) {
                assert_true(r.chunks > 1);
                assert_string_equal(r.text, want_text);
            }
        }
        norm = normalized(r.res);
        if (!first)
            first = norm;
        else {
            if (strcmp(first, norm) != 0)
                print_message("%s differs:\n%s\n%s\n", provs[i].name, first,
                              norm);
            assert_string_equal(first, norm);
            free(norm);
        }
        mock_call_free(&r);
        ran++;
    }
    free(first);
    assert_true(ran >= 1);
}

static void fill_chat(llmux_request *req)
{
    llmux_request_set_system(req, "Be brief.");
    llmux_request_add_message(req, LLMUX_ROLE_USER, "What is two plus two");
}

static void fill_chat_max(llmux_request *req)
{
    llmux_request_add_message(req, LLMUX_ROLE_USER, "one two three four five");
    llmux_request_set_max_tokens(req, 3);
}

static void fill_complete(llmux_request *req)
{
    llmux_request_set_prompt(req, "def fib(n):");
}

static void fill_embed(llmux_request *req)
{
    llmux_request_add_input(req, "first text");
    llmux_request_add_input(req, "second text");
}

static void fill_tools(llmux_request *req)
{
    llmux_request_add_message(req, LLMUX_ROLE_USER, "weather in Paris");
    llmux_request_add_tool(
        req, "get_weather", "Current weather",
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
        "\"string\"}}}");
}

static void test_chat_same(void **state)
{
    same_everywhere(*state, LLMUX_OP_CHAT, 0, fill_chat,
                    "Mock reply to: What is two plus two");
}

static void test_chat_stream_same(void **state)
{
    same_everywhere(*state, LLMUX_OP_CHAT, 1, fill_chat,
                    "Mock reply to: What is two plus two");
}

static void test_max_tokens_same(void **state)
{
    same_everywhere(*state, LLMUX_OP_CHAT, 0, fill_chat_max, "Mock reply to:");
}

static void test_complete_same(void **state)
{
    same_everywhere(*state, LLMUX_OP_COMPLETE, 0, fill_complete,
                    "Mock completion of: def fib(n):");
    same_everywhere(*state, LLMUX_OP_COMPLETE, 1, fill_complete,
                    "Mock completion of: def fib(n):");
}

static void test_embed_same(void **state)
{
    same_everywhere(*state, LLMUX_OP_EMBED, 0, fill_embed, NULL);
}

static void test_tools_same(void **state)
{
    same_everywhere(*state, LLMUX_OP_CHAT, 0, fill_tools, NULL);
    same_everywhere(*state, LLMUX_OP_CHAT, 1, fill_tools, NULL);
}

/* What each plugin actually sent. */
static json_object *last_body(mock_env *e)
{
    size_t n = llmux_mock_request_count(e->mock);
    const llmux_mock_record *rec;
    assert_true(n > 0);
    rec = llmux_mock_request(e->mock, n - 1);
    return json_tokener_parse(rec->body);
}

static void test_request_fields(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    json_object *b, *v;
    if (have_plugin("mistral")) {
        req = new_req(e, &provs[1], LLMUX_OP_CHAT, NULL);
        llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
        llmux_request_set_max_tokens(req, 10);
        llmux_request_set_seed(req, 42);
        llmux_request_set_stream(req, 1);
        mock_env_call(e, req, &r);
        assert_int_equal(r.status, 0);
        b = last_body(e);
        assert_true(json_object_object_get_ex(b, "max_tokens", &v));
        assert_true(json_object_object_get_ex(b, "random_seed", &v));
        assert_false(json_object_object_get_ex(b, "max_completion_tokens", &v));
        assert_false(json_object_object_get_ex(b, "seed", &v));
        assert_false(json_object_object_get_ex(b, "stream_options", &v));
        json_object_put(b);
        mock_call_free(&r);
    }
    if (have_plugin("ollama")) {
        req = new_req(e, &provs[2], LLMUX_OP_CHAT, NULL);
        llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
        llmux_request_set_max_tokens(req, 10);
        mock_env_call(e, req, &r);
        assert_int_equal(r.status, 0);
        b = last_body(e);
        /* Ollama streams unless told not to */
        assert_true(json_object_object_get_ex(b, "stream", &v));
        assert_false(json_object_get_boolean(v));
        assert_true(json_object_object_get_ex(b, "options", &v));
        assert_true(json_object_object_get_ex(v, "num_predict", &v));
        json_object_put(b);
        mock_call_free(&r);
    }
    if (have_plugin("alephalpha")) {
        req = new_req(e, &provs[3], LLMUX_OP_COMPLETE, NULL);
        llmux_request_set_prompt(req, "Hello");
        llmux_request_set_max_tokens(req, 5);
        llmux_request_add_stop(req, "\n");
        mock_env_call(e, req, &r);
        assert_int_equal(r.status, 0);
        b = last_body(e);
        assert_true(json_object_object_get_ex(b, "maximum_tokens", &v));
        assert_true(json_object_object_get_ex(b, "stop_sequences", &v));
        json_object_put(b);
        mock_call_free(&r);
    }
}

/* Provider errors keep the provider's own message, whatever its shape. */
static void test_errors(void **state)
{
    mock_env *e = *state;
    size_t i;
    for (i = 0; i < N_PROVS; i++) {
        mock_call r = {0};
        llmux_request *req;
        char model[128];
        if (!have_plugin(provs[i].name))
            continue;
        snprintf(model, sizeof model, "%s#status=500", provs[i].model);
        req = new_req(e, &provs[i], LLMUX_OP_CHAT, model);
        llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
        mock_env_call(e, req, &r);
        assert_int_equal(r.status, LLMUX_EPROVIDER);
        assert_int_equal(r.err->http_status, 500);
        assert_string_equal(r.err->provider, provs[i].name);
        /* the provider's message, not its JSON */
        assert_null(strchr(r.err->message, '{'));
        assert_true(strlen(r.err->message) > 3);
        mock_call_free(&r);

        snprintf(model, sizeof model, "%s#stream_error_after=2",
                 provs[i].model);
        req = new_req(e, &provs[i], LLMUX_OP_CHAT, model);
        llmux_request_add_message(req, LLMUX_ROLE_USER, "a b c d");
        llmux_request_set_stream(req, 1);
        mock_env_call(e, req, &r);
        assert_int_equal(r.status, LLMUX_EPROVIDER);
        mock_call_free(&r);
    }
}

/* Aleph Alpha's own tasks; other providers answer "not supported". */
/*
 * The response cap and the event cap hold for every provider: a reply
 * holding a 100,000-byte word is refused with LLMUX_ETOOBIG, naming the
 * limit, when the cap is 16 KiB (the whole body for a plain request, the
 * one event carrying that word for a stream), and goes through under the
 * defaults (64 MiB and 4 MiB).
 */
static void test_caps_every_provider(void **state)
{
    enum { WORD = 100000, CAP = 16 * 1024 };
    char *word = malloc(WORD + 1);
    size_t i;
    int capped, stream, ran = 0;
    (void)state;
    assert_non_null(word);
    memset(word, 'w', WORD);
    word[WORD] = '\0';
    for (capped = 0; capped < 2; capped++) {
        mock_env e;
        llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
        o.max_retries = 0;
        if (capped) {
            o.max_response_bytes = CAP;
            o.max_event_bytes = CAP;
        }
        mock_env_start(&e, &o, NULL);
        for (i = 0; i < N_PROVS; i++) {
            if (!have_plugin(provs[i].name))
                continue;
            for (stream = 0; stream < 2; stream++) {
                mock_call r = {0};
                llmux_request *req =
                    new_req(&e, &provs[i], LLMUX_OP_CHAT, NULL);
                llmux_request_add_message(req, LLMUX_ROLE_USER, word);
                llmux_request_set_stream(req, stream);
                mock_env_call(&e, req, &r);
                if (capped) {
                    const llmux_error *er = r.err;
                    if (r.status != LLMUX_ETOOBIG)
                        fail_msg("%s %s: %s, want LLMUX_ETOOBIG", provs[i].name,
                                 stream ? "stream" : "plain",
                                 llmux_err_name(r.status));
                    assert_non_null(er);
                    assert_non_null(strstr(er->message, "16384"));
                    assert_int_equal(llmux_err_class_of(r.status),
                                     LLMUX_CLASS_TRANSPORT);
                } else {
                    if (r.status != 0)
                        fail_msg("%s %s: %s", provs[i].name,
                                 stream ? "stream" : "plain", r.err->message);
                    assert_true(strlen(llmux_response_text(r.res, NULL)) >
                                WORD);
                    ran++;
                }
                mock_call_free(&r);
            }
        }
        assert_int_equal(llmux_client_pending(e.client), 0);
        mock_env_stop(&e);
    }
    assert_true(ran >= 2);
    free(word);
}

/* For each provider: a chat with fractional parameters and embeddings,
 * each answer's JSON and the body the mock received, in one text. */
static char *numbers_run(void)
{
    mock_env e;
    size_t i, k;
    char *out = NULL;
    size_t len = 0;
    env_start(&e);
    for (i = 0; i < N_PROVS; i++) {
        llmux_op ops[2] = {LLMUX_OP_CHAT, LLMUX_OP_EMBED};
        if (!have_plugin(provs[i].name))
            continue;
        for (k = 0; k < 2; k++) {
            mock_call r = {0};
            llmux_request *req = new_req(&e, &provs[i], ops[k], NULL);
            const llmux_mock_record *rec;
            char *js;
            size_t n;
            if (ops[k] == LLMUX_OP_CHAT) {
                llmux_request_add_message(req, LLMUX_ROLE_USER, "numbers");
                llmux_request_set_temperature(req, 0.7);
                llmux_request_set_top_p(req, 0.1 + 0.2);
            } else {
                llmux_request_add_input(req, "a vector");
            }
            mock_env_call(&e, req, &r);
            assert_int_equal(r.status, 0);
            js = llmux_response_to_json(r.res);
            rec = llmux_mock_request(e.mock,
                                     llmux_mock_request_count(e.mock) - 1);
            n = strlen(js) + rec->body_len + 2;
            out = realloc(out, len + n + 1);
            assert_non_null(out);
            len += (size_t)snprintf(out + len, n + 1, "%s\n%.*s\n", js,
                                    (int)rec->body_len, rec->body);
            llmux_free(js);
            mock_call_free(&r);
        }
    }
    mock_env_stop(&e);
    return out;
}

/* A process running under a decimal-comma locale (an application that
 * called setlocale) sends and returns exactly the same numbers. */
static void test_locale_neutral(void **state)
{
    char *c_run, *de_run;
    (void)state;
    c_run = numbers_run();
    assert_non_null(strstr(c_run, "0.30000000000000004"));
    if (!setlocale(LC_ALL, "de_DE.UTF-8")) {
        free(c_run);
        skip(); /* build.sh test generates the locale when it can */
    }
    de_run = numbers_run();
    setlocale(LC_ALL, "C");
    if (strcmp(c_run, de_run) != 0)
        fail_msg("under de_DE.UTF-8:\n%s\nunder C:\n%s", de_run, c_run);
    free(c_run);
    free(de_run);
}

static void test_aleph_tasks(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    long long id;
    const char *tok;
    if (!have_plugin("alephalpha"))
        skip();
    req = new_req(e, &provs[3], LLMUX_OP_TOKENIZE, NULL);
    llmux_request_set_prompt(req, "Hello world");
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_token_count(r.res), 2);
    tok = llmux_response_token(r.res, 0, &id);
    assert_non_null(tok);
    assert_true(id >= 0);
    mock_call_free(&r);

    req = new_req(e, &provs[3], LLMUX_OP_DETOKENIZE, NULL);
    llmux_request_add_token_id(req, id);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, 0);
    assert_true(strlen(llmux_response_text(r.res, NULL)) > 0);
    mock_call_free(&r);

    req = new_req(e, &provs[3], LLMUX_OP_EVALUATE, NULL);
    llmux_request_set_prompt(req, "Hello");
    llmux_request_set_expected(req, " world");
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(llmux_response_result_json(r.res));
    assert_non_null(
        strstr(llmux_response_result_json(r.res), "log_probability"));
    mock_call_free(&r);

    req = new_req(e, &provs[0], LLMUX_OP_TOKENIZE, NULL);
    llmux_request_set_prompt(req, "Hello");
    assert_int_equal(llmux_submit(e->client, req, NULL, mock_call_on_done, &r),
                     LLMUX_ENOTSUP);
    llmux_request_free(req);
}

/* Azure end to end: both surfaces, the api-key header, the filter fields
 * passed through, the stream's preamble, wrong keys and a missing
 * api-version. */
static llmux_request *azure_req(mock_env *e, llmux_op op, const char *model,
                                const char *opts)
{
    llmux_request *req;
    char spec[512];
    snprintf(spec, sizeof spec,
             "azure%s%s;base_url=http://127.0.0.1:%d;api_key=az-key%s",
             model ? "/" : "", model ? model : "", llmux_mock_port(e->mock),
             opts);
    assert_int_equal(llmux_request_new(&req, op, spec), 0);
    return req;
}

/* The last request the mock received: its path, and its api-key header
 * (with no Authorization beside it). */
static void assert_sent(mock_env *e, const char *path)
{
    const llmux_mock_record *rec =
        llmux_mock_request(e->mock, llmux_mock_request_count(e->mock) - 1);
    assert_string_equal(rec->path, path);
    assert_string_equal(llmux_mock_record_header(rec, "api-key"), "az-key");
    assert_null(llmux_mock_record_header(rec, "Authorization"));
}

static void test_azure(void **state)
{
    static const char *const surfaces[] = {";api_version=2024-10-21",
                                           ";api_version=v1"};
    static const char *const chat_paths[] = {
        "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
        "/openai/v1/chat/completions"};
    static const char *const embed_paths[] = {
        "/openai/deployments/emb/embeddings?api-version=2024-10-21",
        "/openai/v1/embeddings"};
    static const char *const models_paths[] = {
        "/openai/models?api-version=2024-10-21", "/openai/v1/models"};
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    const char *f;
    int s, stream;
    if (!have_plugin("azure"))
        skip();
    for (s = 0; s < 2; s++) {
        for (stream = 0; stream < 2; stream++) {
            req = azure_req(e, LLMUX_OP_CHAT, "prod-4o", surfaces[s]);
            llmux_request_add_message(req, LLMUX_ROLE_USER, "hello azure");
            llmux_request_set_stream(req, stream);
            mock_env_call(e, req, &r);
            if (r.status != 0)
                fail_msg("%s: %s", surfaces[s], r.err->message);
            assert_sent(e, chat_paths[s]);
            assert_string_equal(llmux_response_text(r.res, NULL),
                                "Mock reply to: hello azure");
            assert_string_equal(llmux_response_model(r.res), "prod-4o");
            /* the real chunks' id and time, not the stream preamble's */
            assert_non_null(strstr(llmux_response_id(r.res), "chatcmpl-"));
            assert_int_equal(llmux_response_created(r.res), 1700000000);
            /* Azure's filter results reach the caller */
            f = llmux_response_field(r.res, "prompt_filter_results");
            assert_non_null(f);
            assert_non_null(strstr(f, "\"prompt_index\":0"));
            if (stream)
                assert_true(r.chunks > 1);
            else
                assert_non_null(llmux_choice_field(
                    llmux_response_choice(r.res, 0), "content_filter_results"));
            mock_call_free(&r);
        }
        req = azure_req(e, LLMUX_OP_EMBED, "emb", surfaces[s]);
        llmux_request_add_input(req, "first text");
        mock_env_call(e, req, &r);
        assert_int_equal(r.status, 0);
        assert_sent(e, embed_paths[s]);
        assert_int_equal(llmux_response_embedding_count(r.res), 1);
        mock_call_free(&r);
        req = azure_req(e, LLMUX_OP_MODELS, NULL, surfaces[s]);
        mock_env_call(e, req, &r);
        assert_int_equal(r.status, 0);
        assert_sent(e, models_paths[s]);
        assert_true(llmux_response_model_count(r.res) > 0);
        mock_call_free(&r);
    }
    /* a wrong key: Azure's 401 is LLMUX_EAUTH with its message */
    req = azure_req(e, LLMUX_OP_CHAT, "prod-4o", ";api_key=bad-key");
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, LLMUX_EAUTH);
    assert_int_equal(r.err->http_status, 401);
    assert_string_equal(r.err->provider_code, "401");
    assert_non_null(strstr(r.err->message, "Access denied"));
    mock_call_free(&r);
    /* the deployments API without api-version (the OpenAI plugin pointed
     * at a deployment's URL): Azure's 404, its message kept */
    {
        char spec[256];
        snprintf(spec, sizeof spec,
                 "openai/prod-4o;base_url=http://127.0.0.1:%d/openai/"
                 "deployments/prod-4o;api_key=az-key",
                 llmux_mock_port(e->mock));
        assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    }
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    mock_env_call(e, req, &r);
    assert_int_not_equal(r.status, 0);
    assert_int_equal(r.err->http_status, 404);
    assert_string_equal(r.err->provider_code, "404");
    assert_string_equal(r.err->message, "Resource not found");
    mock_call_free(&r);
}

int main(void)
{
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    mock_env_config no_retries = {&co, NULL};
    const struct CMUnitTest tests[] = {
        mock_env_test_with(test_chat_same, &no_retries),
        mock_env_test_with(test_chat_stream_same, &no_retries),
        mock_env_test_with(test_max_tokens_same, &no_retries),
        mock_env_test_with(test_complete_same, &no_retries),
        mock_env_test_with(test_embed_same, &no_retries),
        mock_env_test_with(test_tools_same, &no_retries),
        mock_env_test_with(test_request_fields, &no_retries),
        mock_env_test_with(test_errors, &no_retries),
        mock_env_test_with(test_aleph_tasks, &no_retries),
        mock_env_test_with(test_azure, &no_retries),
        cmocka_unit_test(test_caps_every_provider),
        cmocka_unit_test(test_locale_neutral),
    };
    co.max_retries = 0; /* every test's client */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
