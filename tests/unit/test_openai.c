/*
 * tests/unit/test_openai.c: the OpenAI plugin (providers/openai) and the
 * shared OpenAI-shape codec (providers/common/oai.c), driven through the
 * core exactly as the engine drives them: requests built with the public
 * setters are prepared with llmux__prepare (which loads plugins.d/openai.so)
 * and the HTTP request is inspected; recorded bodies are decoded with
 * llmux__decode_answer and recorded streams are split by llmux__framer,
 * decoded with llmux__decode_event and folded with llmux__out_merge.
 *
 * Fixtures: ../shared/fixtures/vercel-ai/{openai,mistral} (Apache-2.0,
 * Vercel) and ../shared/fixtures/ruby_llm (MIT, Carmine Paolino).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp */
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_test.h"

/* The codec itself, for a dialect with hooks registered in-process. */
#include "oai.h"

#define BASE     "base_url=http://127.0.0.1:9/v1;api_key=sk-test"
#define FIX_OAI  LLMUX_FIXTURES "/vercel-ai/openai/"
#define FIX_MIS  LLMUX_FIXTURES "/vercel-ai/mistral/"
#define FIX_RUBY LLMUX_FIXTURES "/ruby_llm/"
#define FIX_HAND LLMUX_TEST_DATA "/data/"

/* ---- helpers --------------------------------------------------------------
 */

static llmux_request *stream_req(llmux_op op, llmux__prepared *p);
static llmux_request *answer_req(llmux_op op, const char *opts);

/* The plugin under test, for the runners of plugin_test.c. */
static const pt_plugin oai = {"openai", LLMUX_FRAMING_SSE, 0, stream_req,
                              answer_req};

/* A request of `op` whose answers are decoded; `opts` end its config
 * string. */
static llmux_request *answer_req(llmux_op op, const char *opts)
{
    char spec[512];
    snprintf(spec, sizeof spec, "openai/gpt-test;" BASE "%s", opts ? opts : "");
    return pt_op_req(op, spec);
}

/* A chat request with one user message. */
static llmux_request *chat_req(const char *extra_spec)
{
    char spec[512];
    llmux_request *r;
    snprintf(spec, sizeof spec, "openai/gpt-4o-mini;" BASE "%s",
             extra_spec ? extra_spec : "");
    r = new_req(LLMUX_OP_CHAT, spec);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "Hi"), 0);
    return r;
}

/* Decodes one complete answer for a fresh request of `op`. */
static llmux_response *decode_op(llmux_op op, long status, const char *body,
                                 size_t len, int *rc)
{
    return pt_decode(&oai, answer_req(op, NULL), op, status, body, len, rc);
}

static llmux_response *decode_str(llmux_op op, long status, const char *body,
                                  int *rc)
{
    return decode_op(op, status, body, strlen(body), rc);
}

/* ---- encoding: chat --------------------------------------------------------
 */

static void test_encode_chat_basic(void **state)
{
    llmux_request *r;
    llmux__prepared p;
    json_object *b;
    (void)state;
    r = new_req(LLMUX_OP_CHAT, "openai/gpt-4o-mini;" BASE);
    assert_int_equal(llmux_request_set_system(r, "Be brief."), 0);
    assert_int_equal(
        llmux_request_add_message(r, LLMUX_ROLE_USER, "Say \"hi\" / \xc3\xa9"),
        0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_DEVELOPER, "d"),
                     0);
    assert_int_equal(llmux_request_set_max_tokens(r, 100), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0.7), 0);
    assert_int_equal(llmux_request_set_top_p(r, 0.9), 0);
    assert_int_equal(llmux_request_set_seed(r, 42), 0);
    assert_int_equal(llmux_request_add_stop(r, "END"), 0);
    assert_int_equal(llmux_request_add_stop(r, "\n\n"), 0);
    prep_ok(r, &p);

    assert_string_equal(p.http.method, "POST");
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/chat/completions");
    assert_string_equal(header(&p, "Authorization"), "Bearer sk-test");
    assert_string_equal(header(&p, "Content-Type"), "application/json");
    assert_null(header(&p, "OpenAI-Organization"));
    b = body_of(&p);
    assert_string_equal(jstr(b, "model"), "gpt-4o-mini");
    assert_int_equal(json_object_array_length(jget(b, "messages")), 3);
    assert_string_equal(jstr(b, "messages.0.role"), "system");
    assert_string_equal(jstr(b, "messages.0.content"), "Be brief.");
    assert_string_equal(jstr(b, "messages.1.role"), "user");
    assert_string_equal(jstr(b, "messages.1.content"), "Say \"hi\" / \xc3\xa9");
    assert_string_equal(jstr(b, "messages.2.role"), "developer");
    assert_int_equal(jint(b, "max_completion_tokens"), 100);
    assert_false(jhas(b, "max_tokens"));
    assert_true(json_object_get_double(jget(b, "temperature")) == 0.7);
    assert_true(json_object_get_double(jget(b, "top_p")) == 0.9);
    assert_int_equal(jint(b, "seed"), 42);
    assert_json_eq(jget(b, "stop"), "[\"END\",\"\\n\\n\"]");
    assert_false(jhas(b, "stream"));
    assert_false(jhas(b, "stream_options"));
    assert_false(jhas(b, "tools"));
    /* numbers are written short, slashes unescaped */
    assert_non_null(strstr(p.http.body, "\"temperature\":0.7"));
    assert_non_null(strstr(p.http.body, "\"top_p\":0.9"));
    assert_non_null(strstr(p.http.body, "hi\\\" / "));
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_chat_stream(void **state)
{
    llmux_request *r = chat_req(NULL);
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    assert_true(json_object_get_boolean(jget(b, "stream")));
    assert_json_eq(jget(b, "stream_options"), "{\"include_usage\":true}");
    assert_false(jhas(b, "max_completion_tokens"));
    assert_false(jhas(b, "temperature"));
    assert_false(jhas(b, "seed"));
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_tools(void **state)
{
    static const char *params =
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
        "\"required\":[\"city\"]}";
    static const char *rf =
        "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"w\","
        "\"schema\":{\"type\":\"object\"},\"strict\":true}}";
    llmux_request *r = chat_req(NULL);
    llmux__prepared p;
    json_object *b;
    char want[512];
    (void)state;
    assert_int_equal(
        llmux_request_add_tool(r, "get_weather", "Weather now", params), 0);
    assert_int_equal(llmux_request_set_tool_choice(r, "auto"), 0);
    assert_int_equal(llmux_request_set_response_format(r, rf), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    snprintf(want, sizeof want,
             "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"description\":\"Weather now\",\"parameters\":%s}}]",
             params);
    assert_json_eq(jget(b, "tools"), want);
    assert_json_eq(jget(b, "tool_choice"), "\"auto\"");
    assert_json_eq(jget(b, "response_format"), rf);
    json_object_put(b);
    llmux__prepared_free(&p);

    /* a function name, and an object */
    assert_int_equal(llmux_request_set_tool_choice(r, "get_weather"), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    assert_json_eq(jget(b, "tool_choice"),
                   "{\"type\":\"function\",\"function\":{\"name\":"
                   "\"get_weather\"}}");
    json_object_put(b);
    llmux__prepared_free(&p);
    assert_int_equal(llmux_request_set_tool_choice(r, "{\"type\":\"none\"}"),
                     0);
    prep_ok(r, &p);
    b = body_of(&p);
    assert_json_eq(jget(b, "tool_choice"), "{\"type\":\"none\"}");
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_tool_history(void **state)
{
    llmux_tool_call calls[2] = {
        {0, "call_a", "get_weather", "{\"city\":\"Paris\"}"},
        {1, "call_b", "get_time", "{\"tz\":\"CET\"}"}};
    llmux_request *r = chat_req(NULL);
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_add_tool_calls(r, NULL, calls, 2), 0);
    assert_int_equal(llmux_request_add_tool_result(r, "call_a", "18C"), 0);
    assert_int_equal(llmux_request_add_tool_result(r, "call_b", "12:00"), 0);
    assert_int_equal(
        llmux_request_add_message(r, LLMUX_ROLE_ASSISTANT, "It is 18C."), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    assert_int_equal(json_object_array_length(jget(b, "messages")), 5);
    assert_string_equal(jstr(b, "messages.1.role"), "assistant");
    assert_true(jhas(b, "messages.1.content"));
    assert_null(jget(b, "messages.1.content")); /* JSON null */
    assert_json_eq(jget(b, "messages.1.tool_calls"),
                   "[{\"id\":\"call_a\",\"type\":\"function\",\"function\":"
                   "{\"name\":\"get_weather\",\"arguments\":"
                   "\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
                   "{\"id\":\"call_b\",\"type\":\"function\",\"function\":"
                   "{\"name\":\"get_time\",\"arguments\":"
                   "\"{\\\"tz\\\":\\\"CET\\\"}\"}}]");
    assert_string_equal(jstr(b, "messages.2.role"), "tool");
    assert_string_equal(jstr(b, "messages.2.tool_call_id"), "call_a");
    assert_string_equal(jstr(b, "messages.2.content"), "18C");
    assert_false(jhas(b, "messages.2.name"));
    assert_string_equal(jstr(b, "messages.3.tool_call_id"), "call_b");
    assert_string_equal(jstr(b, "messages.4.content"), "It is 18C.");
    assert_false(jhas(b, "messages.4.tool_calls"));
    assert_false(jhas(b, "messages.0.tool_call_id"));
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_message_json(void **state)
{
    static const char *parts =
        "{\"role\":\"user\",\"name\":\"ann\",\"content\":[{\"type\":\"text\","
        "\"text\":\"What is this?\"},{\"type\":\"image_url\",\"image_url\":"
        "{\"url\":\"data:image/png;base64,AAAA\"}}]}";
    llmux_request *r = new_req(LLMUX_OP_CHAT, "openai/gpt-4o;" BASE);
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_add_message_json(r, parts, strlen(parts)),
                     0);
    prep_ok(r, &p);
    b = body_of(&p);
    assert_string_equal(jstr(b, "messages.0.name"), "ann");
    assert_json_eq(jget(b, "messages.0.content"),
                   "[{\"type\":\"text\",\"text\":\"What is this?\"},"
                   "{\"type\":\"image_url\",\"image_url\":{\"url\":"
                   "\"data:image/png;base64,AAAA\"}}]");
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_options(void **state)
{
    llmux_request *r =
        chat_req(";organization=org-1;project=proj_2;reasoning_effort=low;"
                 "service_tier=flex;user=u-7;max_tokens_field=max_tokens");
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_set_max_tokens(r, 9), 0);
    prep_ok(r, &p);
    assert_string_equal(header(&p, "OpenAI-Organization"), "org-1");
    assert_string_equal(header(&p, "OpenAI-Project"), "proj_2");
    b = body_of(&p);
    assert_string_equal(jstr(b, "reasoning_effort"), "low");
    assert_string_equal(jstr(b, "service_tier"), "flex");
    assert_string_equal(jstr(b, "user"), "u-7");
    assert_int_equal(jint(b, "max_tokens"), 9);
    assert_false(jhas(b, "max_completion_tokens"));
    assert_false(jhas(b, "organization"));
    assert_false(jhas(b, "project"));
    assert_false(jhas(b, "max_tokens_field"));
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_extra_json(void **state)
{
    static const char *req =
        "{\"model\":\"openai/gpt-4o;" BASE "\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"x\"}],\"temperature\":0.25,\"logprobs\":true,"
        "\"top_logprobs\":2,\"parallel_tool_calls\":false,\"metadata\":"
        "{\"k\":\"v\"},\"stream_options\":{\"include_usage\":false}}";
    llmux_request *r = NULL;
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_new_json_ex(&r, NULL, req, strlen(req),
                                               LLMUX_JSON_TRUSTED),
                     0);
    prep_ok(r, &p);
    b = body_of(&p);
    assert_true(json_object_get_double(jget(b, "temperature")) == 0.25);
    assert_true(json_object_get_boolean(jget(b, "logprobs")));
    assert_int_equal(jint(b, "top_logprobs"), 2);
    assert_false(json_object_get_boolean(jget(b, "parallel_tool_calls")));
    assert_json_eq(jget(b, "metadata"), "{\"k\":\"v\"}");
    /* not streaming: stream_options must not go out */
    assert_false(jhas(b, "stream_options"));
    assert_false(jhas(b, "stream"));
    json_object_put(b);
    llmux__prepared_free(&p);

    /* typed fields win over extra ones; "stream" is the core's call */
    llmux__free(r->extra_json);
    r->extra_json = llmux__strdup(
        "{\"temperature\":2,\"stream\":true,\"model\":\"other\",\"n\":1}");
    prep_ok(r, &p);
    b = body_of(&p);
    assert_true(json_object_get_double(jget(b, "temperature")) == 0.25);
    assert_false(jhas(b, "stream"));
    assert_string_equal(jstr(b, "model"), "gpt-4o");
    assert_int_equal(jint(b, "n"), 1);
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

/* Invalid user JSON must fail the encode with EINVAL naming the field. */
static void expect_einval(llmux_request *r, const char *field)
{
    llmux__prepared p;
    int rc = llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p);
    assert_int_equal(rc, LLMUX_EINVAL);
    if (!strstr(llmux_request_errmsg(r), field))
        fail_msg("errmsg \"%s\" does not name %s", llmux_request_errmsg(r),
                 field);
    llmux__prepared_free(&p);
}

static void test_encode_invalid_json(void **state)
{
    /* (json-c accepts single-quoted strings even when strict) */
    static const char *bad[] = {"[{\"type\":", "{\"a\":1} x", "", "[1,]",
                                "{\"a\":tru}"};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llmux_request *r = chat_req(NULL);
        r->tools_json = llmux__strdup(bad[i]);
        expect_einval(r, "tools");
        llmux_request_free(r);

        r = chat_req(NULL);
        r->tool_choice_json = llmux__strdup(bad[i]);
        expect_einval(r, "tool_choice");
        llmux_request_free(r);

        r = chat_req(NULL);
        r->response_format_json = llmux__strdup(bad[i]);
        expect_einval(r, "response_format");
        llmux_request_free(r);

        r = chat_req(NULL);
        r->extra_json = llmux__strdup(bad[i]);
        expect_einval(r, "extra");
        llmux_request_free(r);
    }
    {
        /* extra must be an object */
        llmux_request *r = chat_req(NULL);
        r->extra_json = llmux__strdup("[1,2]");
        expect_einval(r, "extra");
        llmux_request_free(r);
    }
    {
        /* an unknown role */
        llmux_request *r = chat_req(NULL);
        r->msgs[0].role = 99;
        expect_einval(r, "role");
        llmux_request_free(r);
    }
    {
        /* dimensions must be a positive integer */
        llmux_request *r =
            new_req(LLMUX_OP_EMBED, "openai/e;" BASE ";dimensions=12x");
        assert_int_equal(llmux_request_add_input(r, "a"), 0);
        expect_einval(r, "dimensions");
        llmux_request_free(r);
    }
}

/* ---- encoding: other operations -------------------------------------------
 */

static void test_encode_complete(void **state)
{
    llmux_request *r =
        new_req(LLMUX_OP_COMPLETE, "openai/gpt-3.5-turbo-instruct;" BASE);
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_set_prompt(r, "Once upon"), 0);
    assert_int_equal(llmux_request_set_suffix(r, "The end."), 0);
    assert_int_equal(llmux_request_set_max_tokens(r, 16), 0);
    assert_int_equal(llmux_request_set_temperature(r, 0), 0);
    assert_int_equal(llmux_request_set_seed(r, -3), 0);
    assert_int_equal(llmux_request_add_stop(r, "."), 0);
    prep_ok(r, &p);
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/completions");
    b = body_of(&p);
    assert_string_equal(jstr(b, "model"), "gpt-3.5-turbo-instruct");
    assert_string_equal(jstr(b, "prompt"), "Once upon");
    assert_string_equal(jstr(b, "suffix"), "The end.");
    assert_int_equal(jint(b, "max_tokens"), 16);
    assert_false(jhas(b, "max_completion_tokens"));
    assert_false(jhas(b, "messages"));
    assert_true(json_object_get_double(jget(b, "temperature")) == 0.0);
    assert_int_equal(jint(b, "seed"), -3);
    assert_json_eq(jget(b, "stop"), "[\".\"]");
    assert_false(jhas(b, "stream"));
    json_object_put(b);
    llmux__prepared_free(&p);

    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    assert_true(json_object_get_boolean(jget(b, "stream")));
    assert_json_eq(jget(b, "stream_options"), "{\"include_usage\":true}");
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_embed(void **state)
{
    llmux_request *r =
        new_req(LLMUX_OP_EMBED, "openai/text-embedding-3-small;" BASE);
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_add_input(r, "Ruby"), 0);
    prep_ok(r, &p);
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/embeddings");
    b = body_of(&p);
    assert_json_eq(jget(b, "input"), "\"Ruby\"");
    assert_string_equal(jstr(b, "encoding_format"), "float");
    assert_false(jhas(b, "dimensions"));
    json_object_put(b);
    llmux__prepared_free(&p);

    assert_int_equal(llmux_request_add_input(r, "Python"), 0);
    assert_int_equal(llmux_request_add_input(r, "JavaScript"), 0);
    assert_int_equal(llmux_request_set_option(r, "dimensions", "256"), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    /* the ruby_llm cassette's request: {"input":["Ruby","Python",..]} */
    assert_json_eq(jget(b, "input"), "[\"Ruby\",\"Python\",\"JavaScript\"]");
    assert_int_equal(jint(b, "dimensions"), 256);
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

static void test_encode_models(void **state)
{
    llmux_request *r =
        new_req(LLMUX_OP_MODELS, "provider=openai;" BASE ";organization=o");
    llmux__prepared p;
    (void)state;
    prep_ok(r, &p);
    assert_string_equal(p.http.method, "GET");
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/models");
    assert_null(p.http.body);
    assert_null(header(&p, "Content-Type"));
    assert_string_equal(header(&p, "OpenAI-Organization"), "o");
    assert_string_equal(header(&p, "Authorization"), "Bearer sk-test");
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

/* A descriptor mapping an OpenAI-compatible server onto the module, with
 * options that change the dialect. */
static void test_descriptor_dialect(void **state)
{
    char dir[] = "/tmp/llmux-oai-XXXXXX", path[128], dirs[1024];
    FILE *f;
    llmux_request *r;
    llmux__prepared p;
    json_object *b;
    int rc;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/oaicompat.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("module = openai\n"
          "base_url = http://127.0.0.1:9/compat/v1\n"
          "max_tokens_field = max_tokens\n"
          "stream_usage = false\n"
          "never_send = seed, user ,logprobs\n"
          "complete_path = none\n",
          f);
    fclose(f);
    snprintf(dirs, sizeof dirs, "%s:%s", dir, LLMUX_BUILD_PLUGIN_DIR);

    /* what the descriptor says is never sent is refused by name: an
     * option, a typed field, an extra field */
    {
        static const char *const spec[] = {"oaicompat/m;api_key=k;user=u",
                                           "oaicompat/m;api_key=k",
                                           "oaicompat/m;api_key=k"};
        static const char *const named[] = {"\"user\"", "\"seed\"",
                                            "\"logprobs\""};
        size_t i;
        for (i = 0; i < 3; i++) {
            r = new_req(LLMUX_OP_CHAT, spec[i]);
            assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"),
                             0);
            if (i == 1)
                assert_int_equal(llmux_request_set_seed(r, 5), 0);
            if (i == 2)
                r->extra_json = llmux__strdup("{\"logprobs\":true}");
            assert_int_equal(llmux__prepare(r, dirs, &p), LLMUX_ENOTSUP);
            assert_non_null(strstr(llmux_request_errmsg(r), named[i]));
            llmux__prepared_free(&p);
            llmux_request_free(r);
        }
    }

    r = new_req(LLMUX_OP_CHAT, "oaicompat/m;api_key=k");
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"), 0);
    assert_int_equal(llmux_request_set_max_tokens(r, 5), 0);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    r->extra_json = llmux__strdup("{\"top_k\":3}");
    rc = llmux__prepare(r, dirs, &p);
    if (rc)
        fail_msg("prepare: %s", llmux_request_errmsg(r));
    assert_string_equal(p.url, "http://127.0.0.1:9/compat/v1/chat/completions");
    b = body_of(&p);
    assert_int_equal(jint(b, "max_tokens"), 5);
    assert_false(jhas(b, "max_completion_tokens"));
    assert_false(jhas(b, "seed"));
    assert_false(jhas(b, "user"));
    assert_false(jhas(b, "logprobs"));
    assert_int_equal(jint(b, "top_k"), 3);
    assert_true(json_object_get_boolean(jget(b, "stream")));
    assert_false(jhas(b, "stream_options"));
    json_object_put(b);
    /* errors carry the name the provider is used under */
    {
        llmux_event ev = {sizeof(llmux_event), NULL, NULL, "{oops", 5};
        llmux_chunk ch;
        memset(&ch, 0, sizeof ch);
        llmux__out_init(&ch.o, LLMUX_OP_CHAT, 1);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), LLMUX_EPROTO);
        assert_non_null(ch.o.err_msg);
        assert_memory_equal(ch.o.err_msg, "oaicompat:", 10);
        llmux__out_free(&ch.o);
    }
    llmux__prepared_free(&p);
    llmux_request_free(r);

    /* a path set to none: the operation is not supported */
    r = new_req(LLMUX_OP_COMPLETE, "oaicompat/m;api_key=k");
    assert_int_equal(llmux_request_set_prompt(r, "x"), 0);
    assert_int_equal(llmux__prepare(r, dirs, &p), LLMUX_ENOTSUP);
    llmux__prepared_free(&p);
    llmux_request_free(r);

    unlink(path);
    rmdir(dir);
}

/* ---- decoding: whole bodies ------------------------------------------------
 */

static void test_decode_chat_fixture(void **state)
{
    size_t len;
    char *body = slurp(FIX_OAI "openai-text.json", &len);
    json_object *want = parse_all(body, len);
    const llmux_usage *u;
    llmux_response *res;
    const char *text;
    size_t tlen;
    int rc;
    (void)state;
    res = decode_op(LLMUX_OP_CHAT, 200, body, len, &rc);
    assert_int_equal(rc, 0);
    assert_null(llmux_response_error(res));
    text = llmux_response_text(res, &tlen);
    assert_string_equal(text, jstr(want, "choices.0.message.content"));
    assert_int_equal(tlen, strlen(text));
    assert_string_equal(llmux_response_id(res),
                        "chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU");
    assert_string_equal(llmux_response_model(res), "gpt-4.1-nano-2025-04-14");
    assert_int_equal(llmux_response_created(res), 1770933883);
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_finish_raw(res), "stop");
    assert_null(llmux_response_refusal(res));
    assert_null(llmux_response_reasoning(res));
    assert_int_equal(llmux_response_tool_call_count(res), 0);
    u = llmux_response_usage(res);
    assert_int_equal(u->prompt_tokens, 16);
    assert_int_equal(u->completion_tokens, 363);
    assert_int_equal(u->total_tokens, 379);
    assert_int_equal(u->cached_tokens, 0);
    assert_int_equal(u->reasoning_tokens, 0);
    assert_string_equal(res->o.fingerprint, "fp_de604bd877");
    llmux_response_free(res);
    json_object_put(want);
    free(body);
}

static void check_embeddings(const char *body, size_t len, size_t n_want)
{
    json_object *want = parse_all(body, len);
    llmux_response *res;
    size_t i, j, dim;
    int rc;
    res = decode_op(LLMUX_OP_EMBED, 200, body, len, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_embedding_count(res), n_want);
    for (i = 0; i < n_want; i++) {
        json_object *item = jget(want, "data"), *vec = NULL;
        size_t k;
        /* find the data item with index i */
        for (k = 0; k < json_object_array_length(item); k++) {
            json_object *it = json_object_array_get_idx(item, k);
            if (jint(it, "index") == (int64_t)i)
                vec = jget(it, "embedding");
        }
        assert_non_null(vec);
        {
            const float *v = llmux_response_embedding(res, i, &dim);
            assert_non_null(v);
            assert_int_equal(dim, json_object_array_length(vec));
            for (j = 0; j < dim; j++)
                assert_true(v[j] == (float)json_object_get_double(
                                        json_object_array_get_idx(vec, j)));
        }
    }
    assert_string_equal(llmux_response_model(res), jstr(want, "model"));
    assert_int_equal(llmux_response_usage(res)->prompt_tokens,
                     jint(want, "usage.prompt_tokens"));
    llmux_response_free(res);
    json_object_put(want);
}

static void test_decode_embeddings(void **state)
{
    size_t len;
    char *body = slurp(FIX_OAI "openai-embedding.json", &len);
    cassette c;
    (void)state;
    check_embeddings(body, len, 2);
    free(body);
    cassette_read(FIX_RUBY "embedding_basic_functionality_openai_text-"
                           "embedding-3-small_can_handle_multiple_texts.yml",
                  0, &c);
    check_embeddings(c.resp, c.resp_len, 3);
    cassette_free(&c);
}

/* ---- decoding: garbage ---------------------------------------------------
 */

/* A long garbage body: the quoted part of it is short and one line. */
static void test_decode_garbage_quoted(void **state)
{
    char big[600];
    llmux_response *res;
    int rc;
    (void)state;
    memset(big, 'x', sizeof big);
    big[0] = '<';
    big[10] = '\n';
    big[sizeof big - 1] = '\0';
    res = decode_str(LLMUX_OP_CHAT, 200, big, &rc);
    assert_int_equal(rc, LLMUX_EPROTO);
    assert_null(strchr(llmux_response_error(res)->message, '\n'));
    assert_true(strlen(llmux_response_error(res)->message) < 150);
    llmux_response_free(res);
}

/* ---- streams --------------------------------------------------------------
 */

/* A prepared streaming request of `op` (chat or complete). */
static llmux_request *stream_req(llmux_op op, llmux__prepared *p)
{
    llmux_request *r = answer_req(op, NULL);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, p);
    return r;
}

/* What a chunks file should fold to, computed independently with json-c. */
typedef struct expect {
    llmux__buf text;
    const char *finish;
    int64_t prompt, completion, total;
    char *finish_copy;
} expect;

static void expect_from_lines(char **lines, size_t n, expect *e)
{
    size_t i;
    memset(e, 0, sizeof *e);
    e->prompt = e->completion = e->total = -1;
    for (i = 0; i < n; i++) {
        json_object *o = parse_all(lines[i], strlen(lines[i]));
        json_object *c = jget(o, "choices.0"), *v;
        if (c) {
            v = jget(c, "delta.content");
            if (!v)
                v = jget(c, "text");
            if (json_object_is_type(v, json_type_string))
                llmux__buf_append(&e->text, json_object_get_string(v),
                                  (size_t)json_object_get_string_len(v));
            if (json_object_is_type(v, json_type_array)) {
                /* typed chunks: only "text" ones are text */
                size_t k;
                for (k = 0; k < json_object_array_length(v); k++) {
                    json_object *part = json_object_array_get_idx(v, k);
                    if (strcmp(jstr(part, "type"), "text") == 0)
                        llmux__buf_append(&e->text, jstr(part, "text"),
                                          strlen(jstr(part, "text")));
                }
            }
            v = jget(c, "finish_reason");
            if (json_object_is_type(v, json_type_string)) {
                free(e->finish_copy);
                e->finish_copy = strdup(json_object_get_string(v));
            }
        }
        v = jget(o, "usage");
        if (json_object_is_type(v, json_type_object)) {
            e->prompt = jint(v, "prompt_tokens");
            e->completion = jint(v, "completion_tokens");
            e->total = jint(v, "total_tokens");
        }
        json_object_put(o);
    }
    e->finish = e->finish_copy;
}

static void check_chunks_file(llmux_op op, const char *path, size_t stride,
                              llmux_finish finish)
{
    char *text = slurp(path, NULL), **lines, *wire, *want;
    size_t n = split_lines(text, &lines), len;
    pt_stream whole;
    expect e;
    expect_from_lines(lines, n, &e);
    wire = pt_sse_wire((const char *const *)lines, n, &len);
    want = pt_check_splits(&oai, op, wire, len, stride, 700, &whole);
    assert_true(whole.done);
    assert_int_equal(whole.after_done, 0);
    assert_int_equal(whole.err, 0);
    assert_int_equal(whole.events, (int)n);
    assert_string_equal(llmux_response_text(whole.acc, NULL),
                        e.text.p ? e.text.p : "");
    assert_int_equal(llmux_response_finish(whole.acc), finish);
    assert_string_equal(llmux_response_finish_raw(whole.acc), e.finish);
    assert_int_equal(llmux_response_usage(whole.acc)->prompt_tokens, e.prompt);
    assert_int_equal(llmux_response_usage(whole.acc)->completion_tokens,
                     e.completion);
    assert_int_equal(llmux_response_usage(whole.acc)->total_tokens, e.total);
    pt_stream_free(&whole);
    free(want);
    llmux__buf_free(&e.text);
    free(e.finish_copy);
    llmux__free(wire);
    free(lines);
    free(text);
}

static void test_stream_chat_fixture(void **state)
{
    (void)state;
    /* ~100 KB, 302 events: byte by byte, split in two at every offset in
     * the first and last `edge` bytes and every 997th in between */
    check_chunks_file(LLMUX_OP_CHAT, FIX_OAI "openai-text.chunks.txt", 997,
                      LLMUX_FINISH_STOP);
}

static void test_stream_completion_fixture(void **state)
{
    (void)state;
    check_chunks_file(LLMUX_OP_COMPLETE,
                      FIX_OAI "openai-completion-text.chunks.txt", 1,
                      LLMUX_FINISH_LENGTH);
}

static void test_stream_mistral_fixtures(void **state)
{
    (void)state;
    check_chunks_file(LLMUX_OP_CHAT, FIX_MIS "mistral-text.chunks.txt", 1,
                      LLMUX_FINISH_STOP);
    check_chunks_file(LLMUX_OP_CHAT, FIX_MIS "mistral-tool-call.chunks.txt", 1,
                      LLMUX_FINISH_TOOL_CALLS);
    check_chunks_file(LLMUX_OP_CHAT, FIX_MIS "mistral-reasoning.chunks.txt", 1,
                      LLMUX_FINISH_STOP);
    check_chunks_file(LLMUX_OP_CHAT,
                      FIX_MIS "mistral-incremental-tool-call.chunks.txt", 1,
                      LLMUX_FINISH_TOOL_CALLS);
}

/* Runs hand-made payloads as one stream; returns the whole run. */
static char *hand_stream(const char *const *lines, size_t n, pt_stream *s)
{
    size_t len;
    char *wire = pt_sse_wire(lines, n, &len), *sum;
    sum = pt_check_splits(&oai, LLMUX_OP_CHAT, wire, len, 1, 0, s);
    llmux__free(wire);
    return sum;
}

#define CHUNK(delta, rest)                                                     \
    "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\","             \
    "\"created\":1727346171,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,"   \
    "\"delta\":" delta ",\"finish_reason\":" rest "}]}"

static void test_stream_parallel_tools(void **state)
{
    static const char *const lines[] = {
        CHUNK("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{"
              "\"index\":0,\"id\":\"call_a\",\"type\":\"function\","
              "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]}",
              "null"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
              "\"{\\\"ci\"}}]}",
              "null"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":"
              "\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":"
              "\"\"}}]}",
              "null"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":"
              "\"{\\\"tz\\\":\"}}]}",
              "null"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
              "\"ty\\\":\\\"Paris\\\"}\"}}]}",
              "null"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":"
              "\"\\\"CET\\\"}\"}}]}",
              "null"),
        CHUNK("{}", "\"tool_calls\""),
        "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\","
        "\"created\":1727346171,\"model\":\"gpt-4o\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":80,\"completion_tokens\":40,"
        "\"total_tokens\":120,\"prompt_tokens_details\":{\"cached_tokens\":"
        "64},\"completion_tokens_details\":{\"reasoning_tokens\":8}}}"};
    pt_stream s;
    const llmux_tool_call *tc;
    const llmux_usage *u;
    char *sum;
    (void)state;
    sum = hand_stream(lines, sizeof lines / sizeof lines[0], &s);
    assert_true(s.done);
    assert_int_equal(llmux_response_tool_call_count(s.acc), 2);
    tc = llmux_response_tool_call(s.acc, 0);
    assert_int_equal(tc->index, 0);
    assert_string_equal(tc->id, "call_a");
    assert_string_equal(tc->name, "get_weather");
    assert_string_equal(tc->arguments, "{\"city\":\"Paris\"}");
    tc = llmux_response_tool_call(s.acc, 1);
    assert_int_equal(tc->index, 1);
    assert_string_equal(tc->id, "call_b");
    assert_string_equal(tc->name, "get_time");
    assert_string_equal(tc->arguments, "{\"tz\":\"CET\"}");
    assert_int_equal(llmux_response_finish(s.acc), LLMUX_FINISH_TOOL_CALLS);
    assert_string_equal(llmux_response_text(s.acc, NULL), "");
    u = llmux_response_usage(s.acc);
    assert_int_equal(u->prompt_tokens, 80);
    assert_int_equal(u->completion_tokens, 40);
    assert_int_equal(u->total_tokens, 120);
    assert_int_equal(u->cached_tokens, 64);
    assert_int_equal(u->reasoning_tokens, 8);
    assert_string_equal(llmux_response_id(s.acc), "chatcmpl-9");
    assert_int_equal(llmux_response_created(s.acc), 1727346171);
    pt_stream_free(&s);
    free(sum);

    /* each chunk on its own: the deltas as sent */
    {
        llmux__prepared p;
        llmux_request *r = stream_req(LLMUX_OP_CHAT, &p);
        llmux_response *acc;
        json_object *cj;
        llmux_chunk ch;
        llmux_event ev;
        char *js;
        memset(&ch, 0, sizeof ch);
        llmux__out_init(&ch.o, LLMUX_OP_CHAT, 1);
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        ev.data = lines[0];
        ev.data_len = strlen(lines[0]);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), 0);
        assert_int_equal(llmux_chunk_tool_call_count(&ch), 1);
        assert_string_equal(llmux_chunk_tool_call(&ch, 0)->id, "call_a");
        assert_string_equal(llmux_chunk_tool_call(&ch, 0)->arguments, "");
        assert_null(llmux_chunk_usage(&ch));
        /* id/model/created go out once per stream; a chunk's JSON falls
         * back to the stream so far (ch.acc) */
        acc = llmux__response_new(LLMUX_OP_CHAT, "openai");
        assert_int_equal(llmux__out_merge(&acc->o, &ch.o), 0);
        ch.acc = &acc->o;
        ev.data = lines[3];
        ev.data_len = strlen(lines[3]);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), 0);
        assert_null(ch.o.id);
        js = llmux_chunk_to_json(&ch);
        assert_non_null(js);
        cj = parse_all(js, strlen(js));
        assert_string_equal(jstr(cj, "id"), "chatcmpl-9");
        assert_string_equal(jstr(cj, "model"), "gpt-4o");
        assert_int_equal(jint(cj, "created"), 1727346171);
        json_object_put(cj);
        llmux_free(js);
        assert_int_equal(llmux_chunk_tool_call_count(&ch), 1);
        assert_int_equal(llmux_chunk_tool_call(&ch, 0)->index, 1);
        assert_null(llmux_chunk_tool_call(&ch, 0)->id);
        assert_null(llmux_chunk_tool_call(&ch, 0)->name);
        assert_string_equal(llmux_chunk_tool_call(&ch, 0)->arguments,
                            "{\"tz\":");
        ev.data = lines[7];
        ev.data_len = strlen(lines[7]);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), 0);
        assert_int_equal(llmux_chunk_tool_call_count(&ch), 0);
        assert_non_null(llmux_chunk_usage(&ch));
        assert_int_equal(llmux_chunk_usage(&ch)->total_tokens, 120);
        assert_string_equal(llmux_chunk_text(&ch, NULL), "");
        assert_int_equal(llmux_chunk_finish(&ch), LLMUX_FINISH_NONE);
        llmux__out_free(&ch.o);
        llmux_response_free(acc);
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
}

/* ---- the codec with another dialect ------------------------------------ */

static int hook_patches, hook_fixups;

/* Drops "n" and adds "safe_prompt": a request fix-up. */
static int test_patch(const llmux_oai_dialect *d, const llmux_host *host,
                      llmux_call *call, struct json_object *body)
{
    (void)host;
    (void)call;
    assert_string_equal(d->name, "oaihooks");
    hook_patches++;
    json_object_object_del(body, "n");
    return json_object_object_add(body, "safe_prompt",
                                  json_object_new_boolean(1));
}

/* Skips {"type":"ping"} events; renames "output" to "choices". */
static int test_fixup(const llmux_oai_dialect *d, const llmux_host *host,
                      llmux_call *call, int kind, struct json_object *root,
                      llmux_out *out, int *handled)
{
    json_object *v;
    (void)d;
    (void)call;
    hook_fixups++;
    if (kind == LLMUX_OAI_EVENT &&
        json_object_object_get_ex(root, "type", &v) &&
        strcmp(json_object_get_string(v), "ping") == 0) {
        *handled = 1;
        return 0;
    }
    if (kind == LLMUX_OAI_RESPONSE &&
        json_object_object_get_ex(root, "output", &v)) {
        json_object_object_add(root, "choices", json_object_get(v));
        json_object_object_del(root, "output");
    }
    if (kind == LLMUX_OAI_ERROR &&
        json_object_object_get_ex(root, "oops", &v)) {
        *handled = 1;
        return host->out_provider_error(out, "hooked", NULL, NULL,
                                        json_object_get_string(v));
    }
    return 0;
}

static const char *const hooks_never[] = {"stop", "user", "top_p", NULL};

static const llmux_oai_dialect hooks_dialect = {"oaihooks",
                                                "/v1/chat/completions",
                                                NULL,
                                                "/v1/embeddings",
                                                NULL,
                                                "max_tokens",
                                                "max_tokens",
                                                "random_seed",
                                                0,
                                                LLMUX_OAI_TOOL_MSG_NAME |
                                                    LLMUX_OAI_SEND_REASONING,
                                                "reasoning_content",
                                                hooks_never,
                                                NULL,
                                                NULL,
                                                test_patch,
                                                test_fixup,
                                                NULL};

static int hooks_encode(void *ctx, llmux_call *call, llmux_http_request *http)
{
    (void)ctx;
    return llmux_oai_encode(&hooks_dialect, llmux_host_table(), call, http);
}

static int hooks_decode(void *ctx, llmux_call *call,
                        const llmux_http_response *resp, llmux_out *out)
{
    (void)ctx;
    return llmux_oai_decode(&hooks_dialect, llmux_host_table(), call, resp,
                            out);
}

static int hooks_event(void *ctx, llmux_call *call, const llmux_event *ev,
                       llmux_out *out)
{
    (void)ctx;
    return llmux_oai_decode_event(&hooks_dialect, llmux_host_table(), call, ev,
                                  out);
}

static int hooks_error(void *ctx, llmux_call *call,
                       const llmux_http_response *resp, llmux_out *out)
{
    (void)ctx;
    return llmux_oai_decode_error(&hooks_dialect, llmux_host_table(), call,
                                  resp, out);
}

static void hooks_end(void *ctx, llmux_call *call)
{
    (void)ctx;
    llmux_oai_call_end(llmux_host_table(), call);
}

static const llmux_provider hooks_provider = {
    LLMUX_PROVIDER_ABI,
    sizeof(llmux_provider),
    "oaihooks",
    "1",
    "test",
    LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_COMPLETE | LLMUX_CAP_EMBED |
        LLMUX_CAP_MODELS,
    LLMUX_FRAMING_SSE,
    LLMUX_AUTH_BEARER,
    "http://127.0.0.1:9",
    NULL,
    NULL,
    NULL,
    NULL,
    hooks_encode,
    hooks_decode,
    hooks_event,
    hooks_error,
    hooks_end,
    0,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL};

static void test_codec_dialect_hooks(void **state)
{
    llmux_tool_call call = {0, "c1", "f", "{}"};
    llmux_request *r;
    llmux__prepared p;
    llmux_response *res;
    const char *body;
    json_object *b;
    int rc;
    (void)state;
    assert_int_equal(llmux_register_provider(&hooks_provider), 0);
    /* fields the dialect never sends: refused by name, not dropped */
    {
        static const char *const refused[][2] = {
            {"top_p", "top_p"}, {"stop", "stop"}, {"extra_stop", "stop"}};
        size_t i;
        for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
            char msg[64];
            r = new_req(LLMUX_OP_CHAT, "oaihooks/m;api_key=k");
            assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"),
                             0);
            if (!strcmp(refused[i][0], "top_p"))
                assert_int_equal(llmux_request_set_top_p(r, 0.5), 0);
            else if (!strcmp(refused[i][0], "stop"))
                assert_int_equal(llmux_request_add_stop(r, "x"), 0);
            else if (!strcmp(refused[i][0], "extra_stop"))
                r->extra_json = llmux__strdup("{\"stop\":[\"y\"]}");
            snprintf(msg, sizeof msg, "\"%s\" is not supported", refused[i][1]);
            pt_prep_fails(r, LLMUX_ENOTSUP, msg);
            llmux_request_free(r);
        }
    }
    r = new_req(LLMUX_OP_CHAT, "oaihooks/m;api_key=k");
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"), 0);
    assert_int_equal(llmux_request_add_tool_calls(r, NULL, &call, 1), 0);
    r->msgs[1].reasoning = llmux__strdup("because");
    assert_int_equal(llmux_request_add_tool_result(r, "c1", "42"), 0);
    r->msgs[2].name = llmux__strdup("f");
    assert_int_equal(llmux_request_set_max_tokens(r, 7), 0);
    assert_int_equal(llmux_request_set_seed(r, 3), 0);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    hook_patches = 0;
    prep_ok(r, &p);
    assert_int_equal(hook_patches, 1);
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/chat/completions");
    b = body_of(&p);
    assert_int_equal(jint(b, "max_tokens"), 7);
    assert_int_equal(jint(b, "random_seed"), 3);
    assert_false(jhas(b, "seed"));
    assert_false(jhas(b, "top_p"));
    assert_false(jhas(b, "stop")); /* never sent, not even from extra */
    assert_false(jhas(b, "user"));
    assert_false(jhas(b, "n"));
    assert_true(json_object_get_boolean(jget(b, "safe_prompt")));
    assert_true(json_object_get_boolean(jget(b, "stream")));
    assert_false(jhas(b, "stream_options"));
    assert_string_equal(jstr(b, "messages.1.reasoning_content"), "because");
    assert_string_equal(jstr(b, "messages.2.name"), "f");
    json_object_put(b);

    /* fixups: a skipped event, then a normal one */
    {
        llmux_chunk ch;
        llmux_event ev;
        memset(&ch, 0, sizeof ch);
        llmux__out_init(&ch.o, LLMUX_OP_CHAT, 1);
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        ev.data = "{\"type\":\"ping\",\"choices\":5}";
        ev.data_len = strlen(ev.data);
        hook_fixups = 0;
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), 0);
        assert_int_equal(hook_fixups, 1);
        ev.data = "{\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}";
        ev.data_len = strlen(ev.data);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), 0);
        assert_string_equal(llmux_chunk_text(&ch, NULL), "ok");
        ev.data = "{\"choices\":5}"; /* errors name the dialect */
        ev.data_len = strlen(ev.data);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), LLMUX_EPROTO);
        assert_memory_equal(ch.o.err_msg, "oaihooks: ", 10);
        llmux__out_free(&ch.o);
    }
    res = llmux__response_new(LLMUX_OP_CHAT, "oaihooks");
    body = "{\"output\":[{\"message\":{\"content\":\"hi\"}}]}";
    rc = llmux__decode_answer(&p, 200, NULL, body, strlen(body), res);
    assert_int_equal(rc, 0);
    assert_string_equal(llmux_response_text(res, NULL), "hi");
    llmux_response_free(res);
    res = llmux__response_new(LLMUX_OP_CHAT, "oaihooks");
    body = "{\"oops\":\"bad\"}";
    rc = llmux__decode_answer(&p, 400, NULL, body, strlen(body), res);
    assert_int_equal(rc, LLMUX_EPROVIDER);
    assert_string_equal(llmux_response_error(res)->message, "bad");
    assert_string_equal(llmux_response_error(res)->type, "hooked");
    llmux_response_free(res);
    llmux__prepared_free(&p);
    llmux_request_free(r);

    /* no path: not supported */
    r = new_req(LLMUX_OP_COMPLETE, "oaihooks/m;api_key=k");
    assert_int_equal(llmux_request_set_prompt(r, "x"), 0);
    assert_int_equal(llmux__prepare(r, NULL, &p), LLMUX_ENOTSUP);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

/* Codec pieces that the plugin only reaches through odd inputs. */
static void test_codec_pieces(void **state)
{
    static const struct {
        double v;
        const char *text;
    } nums[] = {{0.7, "0.7"},
                {1, "1"},
                {0, "0"},
                {-2.5, "-2.5"},
                {1e-7, "1e-07"},
                {123456.789, "123456.789"},
                {0.1 + 0.2, "0.30000000000000004"},
                {1e300, "1e+300"}};
    json_object *o = json_object_new_object();
    json_tokener *tok = llmux_pj_tokener(JSON_TOKENER_DEFAULT_DEPTH);
    json_object *v;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        size_t len;
        assert_int_equal(llmux_pj_add_double(&llmux__host, o, "x", nums[i].v),
                         0);
        assert_string_equal(
            json_object_to_json_string_length(json_object_object_get(o, "x"),
                                              JSON_C_TO_STRING_PLAIN, &len),
            nums[i].text);
    }
    assert_int_equal(llmux_pj_add_double(&llmux__host, o, "x", 1.0 / 0.0),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_pj_add_double(&llmux__host, o, "x", 0.0 / 0.0),
                     LLMUX_EINVAL);
    {
        /* a core older than format_number: 17 digits, which read back */
        llmux_host old = llmux__host;
        size_t len;
        old.struct_size = (uint32_t)offsetof(llmux_host, format_number);
        assert_int_equal(llmux_pj_add_double(&old, o, "x", 0.7), 0);
        assert_string_equal(
            json_object_to_json_string_length(json_object_object_get(o, "x"),
                                              JSON_C_TO_STRING_PLAIN, &len),
            "0.69999999999999996");
    }
    json_object_put(o);

    /* parse: exactly one value; numbers and literals at the top */
    assert_int_equal(llmux_pj_parse(tok, "42", 2, &v), 0);
    assert_int_equal(json_object_get_int(v), 42);
    json_object_put(v);
    assert_int_equal(llmux_pj_parse(tok, "null", 4, &v), 0);
    assert_null(v);
    assert_int_equal(llmux_pj_parse(tok, "{} ", 3, &v), 0);
    json_object_put(v);
    assert_int_equal(llmux_pj_parse(tok, "{} {}", 5, &v), LLMUX_EPROTO);
    assert_int_equal(llmux_pj_parse(tok, "tru", 3, &v), LLMUX_EPROTO);
    assert_int_equal(llmux_pj_parse(tok, "", 0, &v), LLMUX_EPROTO);
    assert_int_equal(llmux_pj_parse(tok, "[1", 2, &v), LLMUX_EPROTO);
    assert_int_equal(llmux_pj_parse(tok, "{}\0{", 4, &v), LLMUX_EPROTO);
    json_tokener_free(tok);

    /* spare tokeners: one per depth comes back, a second is freed, a slot
     * keeps its depth, depths beyond the slots are freed (ASan sees a
     * leak or a double free) */
    {
        json_tokener *a, *b, *d, *x[6];
        int i;
        llmux_pj_tok_drain();
        a = llmux_pj_tok_take(32);
        b = llmux_pj_tok_take(32);
        assert_non_null(a);
        assert_non_null(b);
        assert_ptr_not_equal(a, b);
        llmux_pj_tok_give(a, 32);
        llmux_pj_tok_give(b, 32);
        assert_ptr_equal(llmux_pj_tok_take(32), a);
        d = llmux_pj_tok_take(128);
        assert_ptr_not_equal(d, a);
        llmux_pj_tok_give(d, 128);
        llmux_pj_tok_give(a, 32);
        assert_ptr_equal(llmux_pj_tok_take(128), d);
        assert_ptr_equal(llmux_pj_tok_take(32), a);
        llmux_pj_tok_give(a, 32);
        llmux_pj_tok_give(d, 128);
        llmux_pj_tok_give(NULL, 32);
        for (i = 0; i < 6; i++)
            x[i] = llmux_pj_tok_take(i + 1);
        for (i = 0; i < 6; i++)
            llmux_pj_tok_give(x[i], i + 1);
        /* a lent tokener keeps working after a failed parse */
        a = llmux_pj_tok_take(32);
        assert_int_equal(llmux_pj_parse(a, "[1,", 3, &v), LLMUX_EPROTO);
        llmux_pj_tok_give(a, 32);
        a = llmux_pj_tok_take(32);
        assert_int_equal(llmux_pj_parse(a, "[1]", 3, &v), 0);
        json_object_put(v);
        llmux_pj_tok_give(a, 32);
        llmux_pj_tok_drain();
        llmux_pj_tok_drain(); /* twice is harmless */
    }

    assert_int_equal(llmux_oai_finish(NULL), LLMUX_FINISH_NONE);
    assert_int_equal(llmux_oai_finish("model_length"), LLMUX_FINISH_LENGTH);

    /* snippets: cut at 80 bytes, never inside a UTF-8 sequence */
    {
        char buf[LLMUX_PJ_SNIPPET + 8], in[200];
        memset(in, 'a', sizeof in);
        memcpy(in + 79, "\xc3\xa9", 2); /* bytes 79-80 */
        llmux_pj_snippet(buf, in, sizeof in);
        assert_int_equal(strlen(buf), 79 + 3);
        assert_string_equal(buf + 79, "...");
        llmux_pj_snippet(buf, "a\nb\x01", 4);
        assert_string_equal(buf, "a b ");
        llmux_pj_snippet(buf, "", 0);
        assert_string_equal(buf, "(empty)");
    }
}

/*
 * Clients on several threads share one plugin, whose codec lends tokeners
 * from one spare per depth: four threads decode stream events at once,
 * each carrying its thread and sequence number, with garbage between them
 * (a failed parse resets the tokener it used), and every chunk must hold
 * exactly its own text.
 */
#define DEC_THREADS 4
#define DEC_EVENTS  4000
typedef struct dec_job {
    int t;
    llmux__prepared p;
    int ok, bad;
} dec_job;

static void *dec_thread(void *arg)
{
    dec_job *j = arg;
    char data[160], want[32];
    int i;
    for (i = 0; i < DEC_EVENTS; i++) {
        llmux_chunk ch;
        llmux_event ev;
        const char *got;
        size_t n = 0;
        int rc, wl, garbage = i % 7 == 3;
        wl = snprintf(want, sizeof want, "t%d-%d", j->t, i);
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        ev.data = data;
        ev.data_len = (size_t)snprintf(
            data, sizeof data,
            garbage ? "{\"choices\":[{\"delta\":{\"content\":\"%s"
                    : "{\"choices\":[{\"index\":0,\"delta\":"
                      "{\"content\":\"%s\"}}]}",
            want);
        memset(&ch, 0, sizeof ch);
        llmux__out_init(&ch.o, LLMUX_OP_CHAT, 1);
        rc = llmux__decode_event(&j->p, &ev, &ch);
        got = llmux_chunk_text(&ch, &n);
        if (garbage ? rc == LLMUX_EPROTO
                    : rc == 0 && got && n == (size_t)wl &&
                          memcmp(got, want, n) == 0)
            j->ok++;
        else
            j->bad++;
        llmux__out_free(&ch.o);
    }
    return NULL;
}

static void test_stream_threads(void **state)
{
    pthread_t th[DEC_THREADS];
    dec_job jobs[DEC_THREADS];
    llmux_request *r[DEC_THREADS];
    int i;
    (void)state;
    for (i = 0; i < DEC_THREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].t = i;
        r[i] = stream_req(LLMUX_OP_CHAT, &jobs[i].p);
    }
    for (i = 0; i < DEC_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, dec_thread, &jobs[i]), 0);
    for (i = 0; i < DEC_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (i = 0; i < DEC_THREADS; i++) {
        assert_int_equal(jobs[i].bad, 0);
        assert_int_equal(jobs[i].ok, DEC_EVENTS);
        llmux__prepared_free(&jobs[i].p);
        llmux_request_free(r[i]);
    }
}

/* Descriptor options that shape a dialect. */
static void test_codec_configure(void **state)
{
    const llmux_host *h = llmux_host_table();
    llmux_kv opts[] = {{"never_send", " a, ,b "},
                       {"seed_field", "none"},
                       {"Stream_Usage", "off"},
                       {"models_path", ""},
                       {"base_url", "ignored"}};
    llmux_kv bad[] = {{"stream_usage", "maybe"}};
    llmux_oai_dialect *d = NULL;
    (void)state;
    assert_int_equal(
        llmux_oai_dialect_configure(&hooks_dialect, h, NULL, NULL, 0, &d), 0);
    assert_null(d); /* nothing differs */
    assert_int_equal(llmux_oai_dialect_configure(&hooks_dialect, h, "oaihooks",
                                                 opts + 4, 1, &d),
                     0);
    assert_null(d);
    assert_int_equal(
        llmux_oai_dialect_configure(&hooks_dialect, h, "other", opts, 5, &d),
        0);
    assert_non_null(d);
    assert_string_equal(d->name, "other");
    assert_null(d->seed_field);
    assert_int_equal(d->stream_usage, 0);
    assert_null(d->models_path);
    assert_string_equal(d->chat_path, "/v1/chat/completions");
    assert_true(llmux_oai_never(d, "a"));
    assert_true(llmux_oai_never(d, "b"));
    assert_true(llmux_oai_never(d, "stop")); /* the base's stay */
    assert_false(llmux_oai_never(d, ""));
    assert_false(llmux_oai_never(d, "c"));
    llmux_oai_dialect_free(h, d);
    assert_int_equal(
        llmux_oai_dialect_configure(&hooks_dialect, h, NULL, bad, 1, &d),
        LLMUX_ECONFIG);
    assert_null(d);
}

/* ---- provider knowledge behind the ABI: rate limits, error kinds ------- */

typedef struct hdrs {
    const char *const *kv; /* name, value, ..., NULL */
} hdrs;

static const char *fake_header(const llmux_http_response *r, const char *name)
{
    const hdrs *h = r->header_ctx;
    size_t i;
    for (i = 0; h->kv[i]; i += 2)
        if (strcasecmp(h->kv[i], name) == 0)
            return h->kv[i + 1];
    return NULL;
}

static llmux_rate_limits limits_of(const char *const *kv)
{
    hdrs h = {kv};
    llmux_http_response r;
    llmux_rate_limits rl;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.status = 200;
    r.body = "";
    r.header = fake_header;
    r.header_ctx = &h;
    rl.struct_size = sizeof rl;
    rl.requests_remaining = rl.requests_reset_ms = -1;
    rl.tokens_remaining = rl.tokens_reset_ms = -1;
    assert_int_equal(llmux_oai_rate_limits(NULL, &r, &rl), 0);
    return rl;
}

static void test_rate_limit_headers(void **state)
{
    static const char *const openai[] = {"x-ratelimit-remaining-requests",
                                         "59",
                                         "x-ratelimit-reset-requests",
                                         "1m2.5s",
                                         "x-ratelimit-remaining-tokens",
                                         "149984",
                                         "x-ratelimit-reset-tokens",
                                         "6ms",
                                         NULL};
    static const char *const mistral[] = {
        "X-RateLimit-Remaining-Req-Minute", "0",
        "x-ratelimit-remaining-tokens-minute", "500000", NULL};
    static const char *const bad[] = {"x-ratelimit-remaining-requests", "many",
                                      "x-ratelimit-reset-requests", "soon",
                                      NULL};
    static const char *const none[] = {"content-type", "text/plain", NULL};
    llmux_rate_limits rl;
    llmux_http_response v1;
    (void)state;
    rl = limits_of(openai);
    assert_true(rl.requests_remaining == 59);
    assert_true(rl.requests_reset_ms == 62500);
    assert_true(rl.tokens_remaining == 149984);
    assert_true(rl.tokens_reset_ms == 6);
    rl = limits_of(mistral);
    assert_true(rl.requests_remaining == 0);
    assert_true(rl.requests_reset_ms == -1);
    assert_true(rl.tokens_remaining == 500000);
    rl = limits_of(bad); /* unknown, not zero: nothing to pause for */
    assert_true(rl.requests_remaining == -1);
    assert_true(rl.requests_reset_ms == -1);
    rl = limits_of(none);
    assert_true(rl.requests_remaining == -1 && rl.tokens_remaining == -1);
    /* a core whose response struct has no header getter: nothing read */
    memset(&v1, 0, sizeof v1);
    v1.struct_size = (uint32_t)offsetof(llmux_http_response, header);
    rl.requests_remaining = -1;
    assert_int_equal(llmux_oai_rate_limits(NULL, &v1, &rl), 0);
    assert_true(rl.requests_remaining == -1);
}

static void test_error_kinds(void **state)
{
    (void)state;
    assert_int_equal(llmux_pj_classify_error(
                         NULL, 400, "invalid_request_error", NULL,
                         "This model's maximum context length is 8192 tokens"),
                     LLMUX_ERROR_KIND_CONTEXT_LENGTH);
    assert_int_equal(llmux_pj_classify_error(NULL, 400, NULL,
                                             "context_length_exceeded",
                                             "too long"),
                     LLMUX_ERROR_KIND_CONTEXT_LENGTH);
    assert_int_equal(llmux_pj_classify_error(NULL, 401, NULL, "invalid_api_key",
                                             "Incorrect API key provided"),
                     LLMUX_ERROR_KIND_OTHER);
    assert_int_equal(llmux_pj_classify_error(NULL, 500, NULL, NULL, NULL),
                     LLMUX_ERROR_KIND_OTHER);
    /* every in-tree provider has the hook; those with x-ratelimit headers
     * the other one too */
    {
        static const struct {
            const char *name;
            int rate_limits;
        } provs[] = {{"openai", 1},
                     {"mistral", 1},
                     {"ollama", 0},
                     {"alephalpha", 0},
                     {"azure", 1}};
        size_t i;
        for (i = 0; i < sizeof provs / sizeof provs[0]; i++) {
            const llmux__provider *p;
            char err[256];
            assert_int_equal(llmux__provider_get(provs[i].name,
                                                 LLMUX_BUILD_PLUGIN_DIR, &p,
                                                 err, sizeof err),
                             0);
            assert_true(LLMUX_PROVIDER_HAS(p->vt, classify_error));
            assert_non_null(p->vt->classify_error);
            assert_int_equal(p->vt->rate_limits != NULL, provs[i].rate_limits);
        }
    }
}

/* ---- typed content parts ------------------------------------------------ */

static void test_encode_typed_parts(void **state)
{
    static const unsigned char png[] = {1, 2, 3, 4, 5};
    llmux_request *r = new_req(LLMUX_OP_CHAT, "openai/gpt-4o-mini;" BASE);
    llmux__prepared p;
    json_object *b;
    (void)state;
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "Look:"), 0);
    assert_int_equal(llmux_request_add_image(r, LLMUX_ROLE_USER, "image/png",
                                             png, sizeof png, "low"),
                     0);
    assert_int_equal(llmux_request_add_image_url(r, LLMUX_ROLE_USER,
                                                 "https://x.test/a.jpg", NULL),
                     0);
    assert_int_equal(
        llmux_request_add_audio(r, LLMUX_ROLE_USER, "wav", "RIFF", 4), 0);
    assert_int_equal(llmux_request_add_file(r, LLMUX_ROLE_USER, "a.pdf",
                                            "application/pdf", "%PDF-1", 6),
                     0);
    /* another role starts another message */
    assert_int_equal(
        llmux_request_add_text_part(r, LLMUX_ROLE_ASSISTANT, "Seen."), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    pt_assert_match(
        jget(b, "messages"),
        "[{'role':'user','content':[{'type':'text','text':'Look:'},"
        "{'type':'image_url','image_url':{'url':'data:image/png;base64,"
        "AQIDBAU=','detail':'low'}},{'type':'image_url','image_url':{'url':"
        "'https://x.test/a.jpg'}},{'type':'input_audio','input_audio':"
        "{'data':'UklGRg==','format':'wav'}},{'type':'file','file':"
        "{'filename':'a.pdf','file_data':'data:application/pdf;base64,"
        "JVBERi0x'}}]},{'role':'assistant','content':[{'type':'text',"
        "'text':'Seen.'}]}]");
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);

    /* an uploaded file by its id; a document URL has no OpenAI form */
    r = new_req(LLMUX_OP_CHAT, "openai/gpt-4o-mini;" BASE);
    assert_int_equal(
        llmux_request_add_file_id(r, LLMUX_ROLE_USER, "file-abc123"), 0);
    prep_ok(r, &p);
    b = body_of(&p);
    pt_assert_match(jget(b, "messages"),
                    "[{'role':'user','content':[{'type':'file','file':"
                    "{'file_id':'file-abc123'}}]}]");
    json_object_put(b);
    llmux__prepared_free(&p);
    assert_int_equal(llmux_request_add_document_url(
                         r, LLMUX_ROLE_USER, "https://x.test/a.pdf", "a.pdf"),
                     0);
    pt_prep_fails(r, LLMUX_ENOTSUP,
                  "message 0: the content part \"document_url\" is not "
                  "supported");
    llmux_request_free(r);

    /* bad arguments, each refused without a change */
    r = new_req(LLMUX_OP_CHAT, "openai/gpt-4o-mini;" BASE);
    assert_int_equal(llmux_request_add_file_id(r, LLMUX_ROLE_USER, ""),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_document_url(r, LLMUX_ROLE_USER,
                                                    "file:///etc/passwd", NULL),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_document_url(r, LLMUX_ROLE_USER,
                                                    "https://x.test/a.pdf", ""),
                     LLMUX_EINVAL);
    assert_int_equal(
        llmux_request_add_image(r, LLMUX_ROLE_USER, "text/plain", png, 1, NULL),
        LLMUX_EINVAL);
    assert_int_equal(
        llmux_request_add_image(r, LLMUX_ROLE_USER, "image/png", NULL, 3, NULL),
        LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_image(r, LLMUX_ROLE_USER, "image/png",
                                             png, 1, "huge"),
                     LLMUX_EINVAL);
    assert_int_equal(
        llmux_request_add_image_url(r, LLMUX_ROLE_USER, "ftp://x/a.png", NULL),
        LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_audio(r, LLMUX_ROLE_USER, "ogg", "x", 1),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_file(r, LLMUX_ROLE_USER, "",
                                            "application/pdf", "x", 1),
                     LLMUX_EINVAL);
    assert_int_equal(
        llmux_request_add_file(r, LLMUX_ROLE_USER, "a", "a/b/c", "x", 1),
        LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_text_part(r, (llmux_role)99, "x"),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_text_part(NULL, LLMUX_ROLE_USER, "x"),
                     LLMUX_EINVAL);
    assert_int_equal(r->n_msgs, 0);
    /* parts after a message imported as JSON parts: appended to them */
    {
        static const char m[] = "{\"role\":\"user\",\"content\":[]}";
        assert_int_equal(llmux_request_add_message_json(r, m, strlen(m)), 0);
        assert_int_equal(llmux_request_add_text_part(r, LLMUX_ROLE_USER, "one"),
                         0);
        assert_int_equal(llmux_request_add_text_part(r, LLMUX_ROLE_USER, "two"),
                         0);
        assert_int_equal(r->n_msgs, 1);
        b = parse_all(r->msgs[0].content_json, strlen(r->msgs[0].content_json));
        pt_assert_match(b, "[{'type':'text','text':'one'},"
                           "{'type':'text','text':'two'}]");
        json_object_put(b);
    }
    llmux_request_free(r);
}

/* ---- choices, logprobs and fields through the public accessors -------- */

static void test_choice_accessors(void **state)
{
    size_t len;
    char *body = slurp(FIX_HAND "openai-n2-logprobs.json", &len);
    int rc;
    llmux_response *res = decode_op(LLMUX_OP_CHAT, 200, body, len, &rc);
    const llmux_choice *c0, *c1;
    const llmux_logprob *lp;
    (void)state;
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_choice_count(res), 2);
    c0 = llmux_response_choice(res, 0);
    c1 = llmux_response_choice(res, 1);
    assert_null(llmux_response_choice(res, 2));
    assert_int_equal(llmux_choice_index(c0), 0); /* index order */
    assert_int_equal(llmux_choice_index(c1), 1);
    /* the single-choice accessors read choice 0 */
    assert_string_equal(llmux_response_text(res, NULL),
                        llmux_choice_text(c0, NULL));
    assert_string_equal(llmux_choice_text(c1, &len), "See https://example.com");
    assert_int_equal(len, 23);
    assert_int_equal(llmux_choice_finish(c1), LLMUX_FINISH_LENGTH);
    assert_string_equal(llmux_choice_finish_raw(c1), "length");
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_STOP);
    assert_null(llmux_choice_refusal(c1));
    assert_int_equal(llmux_choice_tool_call_count(c1), 0);

    assert_true(llmux_choice_has_logprobs(c0, LLMUX_LOGPROBS_CONTENT));
    assert_false(llmux_choice_has_logprobs(c0, LLMUX_LOGPROBS_REFUSAL));
    assert_int_equal(llmux_choice_logprob_count(c0, LLMUX_LOGPROBS_CONTENT), 5);
    assert_int_equal(llmux_choice_logprob_count(c0, LLMUX_LOGPROBS_REFUSAL), 0);
    assert_null(llmux_choice_logprob(c0, LLMUX_LOGPROBS_CONTENT, 5));
    assert_null(llmux_choice_logprob(c0, (llmux_logprobs_list)7, 0));
    lp = llmux_choice_logprob(c0, LLMUX_LOGPROBS_CONTENT, 0);
    assert_string_equal(lp->token, "It");
    assert_true(lp->logprob == -0.31725305);
    assert_int_equal(lp->n_top, 2);
    assert_string_equal(lp->top[1].token, "Hi");
    assert_null(lp->top[1].top);
    assert_int_equal(lp->top[1].n_bytes, 2);
    /* a character split over two tokens: the bytes put it together */
    lp = llmux_choice_logprob(c0, LLMUX_LOGPROBS_CONTENT, 1);
    assert_int_equal(lp->n_bytes, 2);
    assert_int_equal(lp->bytes[0], 0xe2);
    assert_int_equal(lp->n_top, 0);
    lp = llmux_choice_logprob(c0, LLMUX_LOGPROBS_CONTENT, 4);
    assert_string_equal(lp->token, "<|end|>");
    assert_null(lp->bytes);

    assert_string_equal(llmux_response_field(res, "service_tier"),
                        "\"default\"");
    assert_null(llmux_response_field(res, "choices")); /* modelled */
    assert_null(llmux_response_field(res, "nope"));
    assert_string_equal(llmux_choice_field(c0, "annotations"), "[]");
    assert_non_null(strstr(llmux_choice_field(c1, "annotations"),
                           "\"url\":\"https://example.com\""));
    assert_string_equal(
        llmux_choice_field(c1, "content_filter_results"),
        "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}");
    assert_null(llmux_choice_field(c1, "logprobs"));

    /* NULL is "none" everywhere */
    assert_int_equal(llmux_response_choice_count(NULL), 0);
    assert_int_equal(llmux_choice_index(NULL), -1);
    assert_string_equal(llmux_choice_text(NULL, &len), "");
    assert_int_equal(len, 0);
    assert_int_equal(llmux_choice_logprob_count(NULL, 0), 0);
    assert_null(llmux_choice_field(NULL, "x"));
    assert_null(llmux_response_field(NULL, "x"));
    assert_null(llmux_chunk_choice(NULL, 0));
    assert_int_equal(llmux_chunk_choice_count(NULL), 0);
    llmux_response_free(res);
    free(body);

    /* an answer without choices reads as one empty choice 0 */
    res = decode_str(LLMUX_OP_CHAT, 200, "{\"choices\":[]}", &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_choice_count(res), 1);
    assert_int_equal(llmux_choice_index(llmux_response_choice(res, 0)), 0);
    assert_string_equal(llmux_choice_text(llmux_response_choice(res, 0), NULL),
                        "");
    llmux_response_free(res);
}

/* A stream's chunks: each carries the choice its event named. */
static void test_chunk_choices(void **state)
{
    size_t len;
    char *text = slurp(FIX_HAND "openai-n3.chunks.txt", &len), **lines;
    size_t n = split_lines(text, &lines);
    char *wire;
    size_t wlen;
    pt_stream s;
    char *sum;
    (void)state;
    wire = pt_sse_wire((const char *const *)lines, n, &wlen);
    sum = pt_run_once(&oai, LLMUX_OP_CHAT, wire, wlen, NULL, 0, &s);
    assert_int_equal(s.err, 0);
    assert_int_equal(llmux_response_choice_count(s.acc), 3);
    assert_int_equal(
        llmux_choice_tool_call_count(llmux_response_choice(s.acc, 1)), 1);
    assert_int_equal(
        llmux_choice_tool_call(llmux_response_choice(s.acc, 1), 0)->index, 0);
    assert_string_equal(llmux_choice_refusal(llmux_response_choice(s.acc, 2)),
                        "No");
    assert_string_equal(llmux_response_field(s.acc, "obfuscation"), "\"zz\"");
    llmux__free(sum);
    pt_stream_free(&s);

    /* one event as the chunk callback sees it: choice 2's refusal */
    {
        llmux__prepared p;
        llmux_request *r = oai.stream_req(LLMUX_OP_CHAT, &p);
        llmux_chunk ch;
        llmux_event ev;
        const llmux_choice *c;
        memset(&ch, 0, sizeof ch);
        llmux__out_init(&ch.o, LLMUX_OP_CHAT, 1);
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        ev.data = lines[5];
        ev.data_len = strlen(lines[5]);
        assert_int_equal(llmux__decode_event(&p, &ev, &ch), 0);
        assert_int_equal(llmux_chunk_choice_count(&ch), 1);
        c = llmux_chunk_choice(&ch, 0);
        assert_null(llmux_chunk_choice(&ch, 1));
        assert_int_equal(llmux_choice_index(c), 2);
        assert_string_equal(llmux_choice_refusal(c), "No");
        assert_int_equal(llmux_choice_logprob_count(c, LLMUX_LOGPROBS_REFUSAL),
                         1);
        /* choice 0 has nothing in this event */
        assert_string_equal(llmux_chunk_text(&ch, NULL), "");
        assert_string_equal(llmux_chunk_field(&ch, "service_tier"),
                            "\"default\"");
        llmux__out_free(&ch.o);
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
    llmux__free(wire);
    free(lines);
    free(text);
}

/* ---- the decoder table (plugin_test.h: pt_case) ------------------------- */

/* A chat answer with this finish_reason (JSON text). */
#define FINISH(reason)                                                         \
    "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":" reason \
    "}]}"
/* An SSE event carrying `payload`; the end mark. */
#define SSE(payload) "data: " payload "\n\n"
#define SSE_DONE     "data: [DONE]\n\n"

static const pt_case cases[] = {
    /* ---- decoding: every choice, logprob and field */
    {.name = "decode n=2 with logprobs and fields llmux does not model",
     .op = LLMUX_OP_CHAT,
     .file = FIX_HAND "openai-n2-logprobs.json",
     .want = "{'text':'It\u2019s','finish':'stop','json':{'choices':["
             "{'index':0,'message':{'content':'It\u2019s','annotations':[]},"
             "'finish_reason':'stop','logprobs':{'refusal':null,'content':["
             "{'token':'It','logprob':-0.31725305,'bytes':[73,116],"
             "'top_logprobs':[{'token':'It','logprob':-0.31725305,"
             "'bytes':[73,116]},{'token':'Hi','logprob':-1.3190403,"
             "'bytes':[72,105]}]},"
             "{'token':'bytes:\\\\xe2\\\\x80','logprob':-0.5,'bytes':[226,128],"
             "'top_logprobs':[]},"
             "{'token':'bytes:\\\\x99','bytes':[153]},"
             "{'token':'s','logprob':-9999},"
             "{'token':'<|end|>','logprob':-0.25,'bytes':null}]}},"
             "{'index':1,'message':{'content':'See https://example.com',"
             "'annotations':[{'type':'url_citation','url_citation':{"
             "'start_index':4,'end_index':23,'url':'https://example.com',"
             "'title':'Example'}}]},'finish_reason':'length',"
             "'content_filter_results':{'hate':{'filtered':false,"
             "'severity':'safe'}},'logprobs':{'content':[{'token':'See',"
             "'logprob':-1.5,'bytes':[83,101,101]}]}}],"
             "'usage':{'total_tokens':16,'prompt_tokens_details':{"
             "'cached_tokens':0,'audio_tokens':0},'completion_tokens_details':{"
             "'reasoning_tokens':0,'accepted_prediction_tokens':0}},"
             "'service_tier':'default','system_fingerprint':'fp_1',"
             "'prompt_filter_results':[{'prompt_index':0,"
             "'content_filter_results':{}}]}}"},
    {.name = "stream n=3 interleaved with logprobs, a call, a refusal",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .file = FIX_HAND "openai-n3.chunks.txt",
     .want =
         "{'done':1,'events':12,'text':'Paris','json':{'choices':["
         "{'index':0,'message':{'content':'Paris','refusal':null,"
         "'audio':{'id':'audio_1','transcript':'Paris','data':'AAA=',"
         "'expires_at':1727349771}},'finish_reason':'stop',"
         "'logprobs':{'refusal':null,'content':[{'token':'Par',"
         "'logprob':-0.125,'bytes':[80,97,114],'top_logprobs':["
         "{'token':'Par','logprob':-0.125,'bytes':[80,97,114]},"
         "{'token':'Lon','logprob':-2.5,'bytes':[76,111,110]}]},"
         "{'token':'is','logprob':-0.25,'bytes':[105,115],"
         "'top_logprobs':[]}]}},"
         "{'index':1,'message':{'content':null,'tool_calls':[{"
         "'id':'call_1','type':'function','function':{'name':'f',"
         "'arguments':'{\"a\":1}'}}]},'finish_reason':'tool_calls',"
         "'logprobs':null},"
         "{'index':2,'message':{'refusal':'No'},'finish_reason':'stop',"
         "'logprobs':{'content':null,'refusal':[{'token':'No',"
         "'logprob':-0.0625,'bytes':[78,111],'top_logprobs':[]}]}}],"
         "'usage':{'total_tokens':19,'completion_tokens_details':{"
         "'reasoning_tokens':0,'audio_tokens':3}},"
         "'service_tier':'default','obfuscation':'zz'},"
         "'chunks':["
         "{'choices':[{'index':0,'logprobs':{'content':[],'refusal':null}}],"
         "'obfuscation':'aa'},"
         "{'choices':[{'index':1,'delta':{'tool_calls':[{'index':0,"
         "'id':'call_1','function':{'name':'f','arguments':''}}]}}]},"
         "{'choices':[{'index':2,'logprobs':{'content':null,"
         "'refusal':[]}}]},"
         "{'choices':[{'index':0,'delta':{'content':'Par','audio':{"
         "'id':'audio_1','transcript':'Par'}}}]},"
         "{'choices':[{'index':1,'delta':{'tool_calls':[{'index':0,"
         "'function':{'arguments':'{\"a\":'}}]}}]},"
         "{'choices':[{'index':2,'delta':{'refusal':'No'},"
         "'logprobs':{'refusal':[{'token':'No'}]}}]},"
         "{'choices':[{'index':0,'delta':{'content':'is','audio':{"
         "'transcript':'is','data':'AAA='}}}]},"
         "{'choices':[{'index':1}]},"
         "{'choices':[{'index':0,'delta':{'audio':{"
         "'expires_at':1727349771}},'finish_reason':'stop'}]},"
         "{'choices':[{'index':1,'finish_reason':'tool_calls'}]},"
         "{'choices':[{'index':2,'finish_reason':'stop'}]},"
         "{'choices':[],'usage':{'total_tokens':19},"
         "'obfuscation':'zz'}]}"},
    {.name = "decode legacy completion logprobs",
     .op = LLMUX_OP_COMPLETE,
     .body = "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,"
             "\"model\":\"m\",\"choices\":[{\"text\":\" Paris\",\"index\":0,"
             "\"logprobs\":{\"tokens\":[\" Par\",\"is\"],\"token_logprobs\":"
             "[null,-0.5],\"top_logprobs\":[null,{\"is\":-0.5,\"ia\":-3}],"
             "\"text_offset\":[20,24]},\"finish_reason\":\"stop\"}]}",
     .want = "{'text':' Paris','json':{'choices':[{'logprobs':{"
             "'tokens':[' Par','is'],'token_logprobs':[null,-0.5],"
             "'top_logprobs':[{},{'is':-0.5,'ia':-3}],"
             "'text_offset':[20,24]}}]}}"},
    {.name = "garbage logprobs",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"x\"},"
             "\"logprobs\":{\"content\":[{\"token\":1,\"logprob\":0}]}}]}",
     .code = LLMUX_EPROTO,
     .msg = "bad logprobs"},
    {.name = "garbage choice index",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"index\":-1,\"message\":{\"content\":\"x\"}}]}",
     .code = LLMUX_EPROTO,
     .msg = "bad choice index"},
    {.name = "a choice index past the bound",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"index\":1024,\"message\":{\"content\":\"x\"}}]}",
     .code = LLMUX_EPROTO,
     .msg = "bad choice index"},
    /* ---- decoding: whole answers */
    {.name = "decode completion fixture",
     .op = LLMUX_OP_COMPLETE,
     .file = FIX_OAI "openai-completion-text.json",
     .want = "{'text':'The new holiday is called \"Gratitude Day\" and it "
             "celebrates the importance of',"
             "'finish':'length','finish_raw':'length',"
             "'usage':{'total_tokens':30,'cached_tokens':-1},"
             "'id':'cmpl-D8ZFHlGItjM5Nghki1LmZIRscBz2P'}"},
    /* base64 floats (encoding_format=base64): 1.0f, -2.5f */
    {.name = "decode embeddings in base64",
     .op = LLMUX_OP_EMBED,
     .body = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
             "\"index\":0,\"embedding\":\"AACAPwAAIMA=\"}],\"model\":\"m\"}",
     .want = "{'embeddings':[[1.0,-2.5]]}"},
    {.name = "decode models",
     .op = LLMUX_OP_MODELS,
     .body =
         "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-4o\",\"object\":"
         "\"model\",\"created\":1686935002,\"owned_by\":\"openai\"},{\"id\":"
         "\"ft:gpt-4o:acme\",\"object\":\"model\",\"created\":1700000000,"
         "\"owned_by\":\"acme\"},{\"object\":\"model\"},{\"id\":\"bare\"}]}",
     .want = "{'models':[{'id':'gpt-4o','created':1686935002},"
             "{'id':'ft:gpt-4o:acme','owned_by':'acme'},{'id':'bare',"
             "'owned_by':null}]}"},
    {.name = "decode tool calls",
     .op = LLMUX_OP_CHAT,
     .body =
         "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
         "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
         "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_abc\","
         "\"type\":\"function\",\"function\":{\"name\":\"get_current_weather\","
         "\"arguments\":\"{\\n\\\"location\\\": \\\"Boston, MA\\\"\\n}\"}},"
         "{\"id\":\"call_def\",\"type\":\"function\",\"function\":{\"name\":"
         "\"get_time\",\"arguments\":\"{}\"}}]},\"logprobs\":null,"
         "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":82,"
         "\"completion_tokens\":17,\"total_tokens\":99}}",
     .want = "{'text':'','finish':'tool_calls','tool_calls':[{'index':0,"
             "'id':'call_abc','name':'get_current_weather',"
             "'arguments':'{\\n\"location\": \"Boston, MA\"\\n}'},"
             "{'index':1,'name':'get_time','arguments':'{}'}]}"},
    /* Mistral's shape: no index, no type (decoding is generous) */
    {.name = "decode tool calls, Mistral's shape",
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-tool-call.json",
     .want = "{'tool_calls':[{'index':0,'id':'gSIMJiOkT','name':'weather',"
             "'arguments':'{\"location\": \"San Francisco\"}'}],"
             "'finish':'tool_calls'}"},
    /* arguments sent as an object are handed on as JSON text */
    {.name = "decode tool call arguments as an object",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":"
             "{\"name\":\"f\",\"arguments\":{\"a\":[1,\"/\"]}}}]}}]}",
     .want = "{'tool_calls':[{'arguments':'{\"a\":[1,\"/\"]}'}],"
             "'finish':null}"},
    {.name = "decode the deprecated function_call",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"message\":{\"content\":null,"
             "\"function_call\":{\"name\":\"g\",\"arguments\":\"{}\"}},"
             "\"finish_reason\":\"function_call\"}]}",
     .want = "{'tool_calls':[{'name':'g'}],'finish':'tool_calls'}"},
    /* Mistral's typed chunks: thinking -> reasoning, text -> text */
    {.name = "decode typed content chunks",
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-reasoning.json",
     .want = "{'text':'2 + 2 = 4',"
             "'reasoning':'The user is asking for 2+2. This is basic "
             "arithmetic. 2+2=4.',"
             "'usage':{'total_tokens':56}}"},
    /* reasoning_content / reasoning (OpenAI-compatible servers), refusal */
    {.name = "decode reasoning_content and reasoning",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"index\":0,\"message\":{\"role\":"
             "\"assistant\",\"content\":\"A\",\"reasoning_content\":"
             "\"R1\",\"reasoning\":\"R2\",\"refusal\":null}}]}",
     .want = "{'text':'A','reasoning':'R1R2','refusal':null}"},
    {.name = "decode a refusal",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"index\":0,\"message\":{\"role\":"
             "\"assistant\",\"content\":null,\"refusal\":\"I can't "
             "help with that.\"},\"finish_reason\":\"stop\"}]}",
     .want = "{'refusal':\"I can't help with that.\",'text':''}"},
    /* n>1: only choice 0 counts, wherever it is */
    {.name = "decode choice 0 of several",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[{\"index\":1,\"message\":{\"content\":"
             "\"second\"}},{\"index\":0,\"message\":{\"content\":"
             "\"first\"},\"finish_reason\":\"length\"}]}",
     .want = "{'text':'first','finish':'length'}"},
    {.name = "decode finish_reason \"stop\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"stop\""),
     .want = "{'finish':'stop','finish_raw':'stop'}"},
    {.name = "decode finish_reason \"length\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"length\""),
     .want = "{'finish':'length','finish_raw':'length'}"},
    {.name = "decode finish_reason \"model_length\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"model_length\""),
     .want = "{'finish':'length','finish_raw':'model_length'}"},
    {.name = "decode finish_reason \"tool_calls\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"tool_calls\""),
     .want = "{'finish':'tool_calls','finish_raw':'tool_calls'}"},
    {.name = "decode finish_reason \"function_call\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"function_call\""),
     .want = "{'finish':'tool_calls','finish_raw':'function_call'}"},
    {.name = "decode finish_reason \"content_filter\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"content_filter\""),
     .want = "{'finish':'content_filter','finish_raw':'content_filter'}"},
    {.name = "decode finish_reason \"error\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"error\""),
     .want = "{'finish':'error','finish_raw':'error'}"},
    {.name = "decode finish_reason \"end_turn\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"end_turn\""),
     .want = "{'finish':'stop','finish_raw':'end_turn'}"},
    {.name = "decode finish_reason \"\"",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("\"\""),
     .want = "{'finish':'stop','finish_raw':''}"},
    {.name = "decode finish_reason null",
     .op = LLMUX_OP_CHAT,
     .body = FINISH("null"),
     .want = "{'finish':null,'finish_raw':null}"},
    /* ---- decoding: errors */
    {.name = "decode error: auth (recorded)",
     .op = LLMUX_OP_CHAT,
     .file = FIX_RUBY "chat_error_handling_with_openai_gpt-5-nano_raises_"
                      "appropriate_auth_error.yml",
     .status = 401,
     .code = LLMUX_EAUTH,
     .want =
         "{'error':{'type':'invalid_request_error',"
         "'provider_code':'invalid_api_key','param':null,"
         "'message':'Incorrect API key provided: invalid-key. You can find "
         "your API key at https://platform.openai.com/account/api-keys.'}}"},
    {.name = "decode error: context length (recorded)",
     .op = LLMUX_OP_CHAT,
     .file = FIX_RUBY "chat_real_error_scenarios_openai_gpt-5-nano_handles_"
                      "context_length_exceeded_errors.yml",
     .status = 400,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':'invalid_request_error',"
             "'provider_code':'context_length_exceeded','param':'input',"
             "'message':'Your input exceeds the context window of this model. "
             "Please adjust your input and try again.'}}"},
    {.name = "decode error: unsupported parameter (recorded)",
     .op = LLMUX_OP_CHAT,
     .file = FIX_OAI "reasoning-model-legacy-parameter-error.json",
     .status = 400,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':'invalid_request_error',"
             "'provider_code':'unsupported_parameter','param':'max_tokens',"
             "'message':\"Unsupported parameter: 'max_tokens' is not supported "
             "with this model. Use 'max_completion_tokens' instead.\"}}"},
    {.name = "decode error: rate limit",
     .op = LLMUX_OP_CHAT,
     .body = "{\"error\":{\"message\":\"Rate limit reached\",\"type\":"
             "\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
     .status = 429,
     .code = LLMUX_ERATELIMIT,
     .want = "{'error':{'type':'requests',"
             "'provider_code':'rate_limit_exceeded','param':null,"
             "'message':'Rate limit reached'}}"},
    /* code as a number */
    {.name = "decode error: numeric code",
     .op = LLMUX_OP_CHAT,
     .body = "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\","
             "\"code\":500}}",
     .status = 500,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':'server_error','provider_code':'500',"
             "'param':null,'message':'boom'}}"},
    /* {"error":"text"} (Ollama); Aleph Alpha adds a code */
    {.name = "decode error: a string",
     .op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"model \\\"x\\\" not found, try pulling it first\"}",
     .status = 404,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,'param':null,"
             "'message':'model \"x\" not found, try pulling it first'}}"},
    {.name = "decode error: a string and a code",
     .op = LLMUX_OP_CHAT,
     .body = "{\"error\":\"This model does not support chat.\",\"code\":"
             "\"MISSING_CAPABILITY\"}",
     .status = 400,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':'MISSING_CAPABILITY',"
             "'param':null,'message':'This model does not support chat.'}}"},
    /* flat, with message as an object (Mistral 422) */
    {.name = "decode error: flat, message an object",
     .op = LLMUX_OP_CHAT,
     .body = "{\"object\":\"error\",\"message\":{\"detail\":[{\"type\":"
             "\"extra_forbidden\",\"loc\":[\"body\",\"seed\"]}]},\"type\":"
             "\"invalid_request_error\",\"param\":null,\"code\":null}",
     .status = 422,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':'invalid_request_error','provider_code':null,"
             "'param':null,"
             "'message':'{\"detail\":[{\"type\":\"extra_forbidden\",\"loc\":["
             "\"body\",\"seed\"]}]}'}}"},
    {.name = "decode error: flat message",
     .op = LLMUX_OP_CHAT,
     .body = "{\"message\":\"Unauthorized\",\"request_id\":\"abc\"}",
     .status = 401,
     .code = LLMUX_EAUTH,
     .want = "{'error':{'type':null,'provider_code':null,'param':null,"
             "'message':'Unauthorized'}}"},
    {.name = "decode error: detail text",
     .op = LLMUX_OP_CHAT,
     .body = "{\"detail\":\"Not Found\"}",
     .status = 404,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,'param':null,"
             "'message':'Not Found'}}"},
    {.name = "decode error: detail list",
     .op = LLMUX_OP_CHAT,
     .body = "{\"detail\":[{\"loc\":[\"body\",\"model\"],\"msg\":\"x\"}]}",
     .status = 422,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,'param':null,"
             "'message':'[{\"loc\":[\"body\",\"model\"],\"msg\":\"x\"}]'}}"},
    /* nothing recognisable: the core quotes the raw body */
    {.name = "decode error: HTML",
     .op = LLMUX_OP_CHAT,
     .body = "<html>Bad gateway</html>\n",
     .status = 502,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,'param':null,"
             "'message':'<html>Bad gateway</html>'}}"},
    {.name = "decode error: an unknown object",
     .op = LLMUX_OP_CHAT,
     .body = "{\"status\":\"down\"}",
     .status = 503,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,'param':null,"
             "'message':'{\"status\":\"down\"}'}}"},
    {.name = "decode error: cut JSON",
     .op = LLMUX_OP_CHAT,
     .body = "{\"error\":{\"type\":\"x\"",
     .status = 500,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':null,'provider_code':null,'param':null,"
             "'message':'{\"error\":{\"type\":\"x\"'}}"},
    /* an error object inside a 200 */
    {.name = "decode error: inside a 200",
     .op = LLMUX_OP_CHAT,
     .body =
         "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}",
     .status = 200,
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'type':'server_error','provider_code':null,"
             "'param':null,'message':'overloaded'}}"},
    /* ---- decoding: garbage and truncation (clean EPROTO) */
    PT_GARBAGE(LLMUX_OP_CHAT, ""),
    PT_GARBAGE(LLMUX_OP_CHAT, " "),
    PT_GARBAGE(LLMUX_OP_CHAT, "null"),
    PT_GARBAGE(LLMUX_OP_CHAT, "42"),
    PT_GARBAGE(LLMUX_OP_CHAT, "\"str\""),
    PT_GARBAGE(LLMUX_OP_CHAT, "[]"),
    PT_GARBAGE(LLMUX_OP_CHAT, "[{\"choices\":[]}]"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"id\":\"x\"}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"choices\":5}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"choices\":{}}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"choices\":[5]}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"choices\":[{\"index\":0}]}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"choices\":[{\"message\":\"hi\"}]}"),
    PT_GARBAGE(
        LLMUX_OP_CHAT,
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"index\":-1}]}}]}"),
    PT_GARBAGE(
        LLMUX_OP_CHAT,
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"index\":99999}]}}]}"),
    PT_GARBAGE(
        LLMUX_OP_CHAT,
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"index\":\"a\"}]}}]}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "<html><body>502</body></html>"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"choices\":[]} trailing"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"choices\":[],}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "{\"a\":NaN}"),
    PT_GARBAGE(LLMUX_OP_CHAT, "\xff\xfe{\"choices\":[]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"data\":{}}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"data\":[{\"embedding\":[1,\"x\"]}]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"data\":[{\"index\":0}]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"data\":[{\"embedding\":\"!!!\"}]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"data\":[{\"index\":3,\"embedding\":[1]}]}"),
    PT_GARBAGE(LLMUX_OP_EMBED, "{\"data\":[{\"embedding\":\"AAA\"}]}"),
    PT_GARBAGE(LLMUX_OP_MODELS, "{\"object\":\"list\"}"),
    {.name = "answer chat with a NUL inside",
     .op = LLMUX_OP_CHAT,
     .body = "{\"choices\":[]\0}",
     .len = 15,
     .code = LLMUX_EPROTO},
    /* every prefix of a valid body is a clean protocol error */
    {.mode = PT_PREFIXES,
     .op = LLMUX_OP_CHAT,
     .file = FIX_OAI "openai-text.json"},
    {.mode = PT_PREFIXES,
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-tool-call.json"},
    {.mode = PT_PREFIXES,
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-reasoning.json"},
    {.mode = PT_PREFIXES,
     .op = LLMUX_OP_COMPLETE,
     .file = FIX_OAI "openai-completion-text.json"},
    {.mode = PT_PREFIXES,
     .op = LLMUX_OP_EMBED,
     .file = FIX_OAI "openai-embedding.json"},
    /* ---- streams */
    /* a whole call in one delta: no index, no type */
    {.name = "stream a whole tool call in one delta",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-tool-call.chunks.txt",
     .want = "{'tool_calls':[{'id':'gSIMJiOkT','name':'weather',"
             "'arguments':'{\"location\": \"San Francisco\"}'}]}"},
    /* later deltas say "name":"": the name must survive */
    {.name = "stream tool call names that later deltas leave empty",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-incremental-tool-call.chunks.txt",
     .want = "{'tool_calls':[{'id':'chatcmpl-tool-9f149c74c42f265b',"
             "'name':'webSearchTool',"
             "'arguments':'{\"query\": \"current Berlin weather\"}'}],"
             "'usage':{'cached_tokens':128}}"},
    /* typed content chunks: thinking -> reasoning */
    {.name = "stream typed content chunks",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-reasoning.chunks.txt",
     .want = "{'reasoning':'The user is asking for 2+2. This is basic "
             "arithmetic. 2+2=4.',"
             "'text':'2 + 2 = 4'}"},
    /* tool-call deltas as other OpenAI-compatible servers send them: */
    /* Ollama /v1: every call whole, each numbered 0 */
    {.name = "stream tool calls each numbered 0 (Ollama /v1)",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(CHUNK(
         "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{"
         "\"id\":\"call_1\",\"index\":0,\"type\":\"function\","
         "\"function\":{\"name\":\"a\",\"arguments\":\"{\\\"x\\\":1}\"}}]}",
         "null"))
         SSE(CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{"
                   "\"id\":\"call_2\",\"index\":0,\"type\":\"function\","
                   "\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}",
                   "null")) SSE(CHUNK("{}", "\"tool_calls\"")) SSE_DONE,
     .want = "{'tool_calls':[{'index':0,'id':'call_1',"
             "'arguments':'{\"x\":1}'},{'index':1,'id':'call_2','name':'b',"
             "'arguments':'{}'}]}"},
    /* no index at all; the id repeated on a continuation; the legacy
     * function_call delta continues the latest call */
    {.name = "stream tool calls without an index",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(CHUNK("{\"tool_calls\":[{\"id\":\"A\",\"function\":{\"name\":"
                       "\"f\",\"arguments\":\"[1,\"}}]}",
                       "null"))
         SSE(CHUNK("{\"tool_calls\":[{\"id\":\"A\",\"function\":{"
                   "\"arguments\":\"2]\"}}]}",
                   "null"))
             SSE(CHUNK("{\"tool_calls\":[{\"id\":\"B\",\"function\":{\"name\":"
                       "\"g\",\"arguments\":\"[\"}}]}",
                       "null"))
                 SSE(CHUNK(
                     "{\"tool_calls\":[{\"function\":{\"arguments\":\"3]\"}}]}",
                     "null"))
                     SSE(CHUNK("{\"function_call\":{\"arguments\":\" \"}}",
                               "\"stop\"")) SSE_DONE,
     .want = "{'tool_calls':[{'id':'A','name':'f','arguments':'[1,2]'},"
             "{'index':1,'id':'B','arguments':'[3] '}]}"},
    /* sparse wire indexes are renumbered in order of appearance */
    {.name = "stream tool calls with sparse indexes",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body =
         SSE(CHUNK("{\"tool_calls\":[{\"index\":3,\"id\":\"c3\",\"function\":{"
                   "\"name\":\"h\",\"arguments\":\"\"}},{\"index\":1,\"id\":"
                   "\"c1\",\"function\":{\"name\":\"k\",\"arguments\":\"\"}}]}",
                   "null"))
             SSE(CHUNK(
                 "{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":"
                 "\"{}\"}},{\"index\":3,\"function\":{\"arguments\":\"[]\"}}]}",
                 "null")) SSE_DONE,
     .want = "{'tool_calls':[{'index':0,'id':'c3','arguments':'[]'},"
             "{'index':1,'id':'c1','arguments':'{}'}]}"},
    /* no include_usage chunk: usage unknown */
    {.name = "stream refusal and reasoning",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(
         CHUNK("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}",
               "null")) SSE(CHUNK("{\"reasoning_content\":\"Think\"}", "null"))
         SSE(CHUNK("{\"reasoning\":\"ing.\"}", "null"))
             SSE(CHUNK("{\"refusal\":\"I'm sorry, \"}", "null"))
                 SSE(CHUNK("{\"refusal\":\"I can't help with that.\"}", "null"))
                     SSE(CHUNK("{}", "\"content_filter\"")) SSE_DONE,
     .want = "{'refusal':\"I'm sorry, I can't help with that.\","
             "'reasoning':'Thinking.','text':'','finish':'content_filter',"
             "'usage':{'total_tokens':-1}}"},
    {.name = "stream an error event",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(CHUNK("{\"content\":\"Hel\"}", "null")) SSE(
         "{\"error\":{\"message\":\"The server had an error while processing "
         "your request.\",\"type\":\"server_error\",\"param\":null,\"code\":"
         "null}}") SSE(CHUNK("{\"content\":\"lo\"}", "null")) SSE_DONE,
     .code = LLMUX_EPROVIDER,
     .want = "{'events':1,'text':'Hel',"
             "'error':{'message':'The server had an error while processing "
             "your request.',"
             "'type':'server_error'}}"},
    /* "event: error" with a plain-text payload */
    {.name = "stream a named error event in plain text",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = "event: error\ndata: upstream overloaded\n\n",
     .code = LLMUX_EPROVIDER,
     .want = "{'error':{'message':'upstream overloaded'}}"},
    /* a stream cut short (no [DONE], the last event unterminated) still
     * decodes what arrived */
    {.name = "stream cut short",
     .mode = PT_STREAM,
     .op = LLMUX_OP_CHAT,
     .body = SSE(CHUNK("{\"content\":\"par\"}", "null")) "data: " CHUNK(
         "{\"content\":\"tial\"}", "null"),
     .want = "{'done':0,'text':'partial','finish':null}"},
    /* events: garbage is a clean EPROTO; end marks and empty events */
    PT_EVENT_CODE(LLMUX_OP_CHAT, "hello", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"id\":", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "[1,2]", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "42", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "null", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "\"x\"", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"choices\":5}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"choices\":[7]}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"choices\":[{\"delta\":\"x\"}]}",
                  LLMUX_EPROTO),
    PT_EVENT_CODE(
        LLMUX_OP_CHAT,
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-2}]}}]}",
        LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"a\":1}{\"b\":2}", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "[DONE", LLMUX_EPROTO),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "[DONE]", LLMUX_EVENT_DONE),
    PT_EVENT_CODE(LLMUX_OP_CHAT, " [DONE] ", LLMUX_EVENT_DONE),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "  ", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{}", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"choices\":[]}", 0),
    PT_EVENT_CODE(LLMUX_OP_CHAT,
                  "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}",
                  0),
    PT_EVENT_CODE(LLMUX_OP_CHAT, "{\"choices\":[],\"usage\":null}", 0),
    /* every truncation of the first events of a stream: EPROTO */
    {.mode = PT_EVENT_CUTS,
     .op = LLMUX_OP_CHAT,
     .file = FIX_OAI "openai-completion-text.chunks.txt",
     .code = LLMUX_EPROTO,
     .events = 4},
    {.mode = PT_EVENT_CUTS,
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-reasoning.chunks.txt",
     .code = LLMUX_EPROTO,
     .events = 4},
    {.mode = PT_EVENT_CUTS,
     .op = LLMUX_OP_CHAT,
     .file = FIX_MIS "mistral-tool-call.chunks.txt",
     .code = LLMUX_EPROTO,
     .events = 4},
};

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_chat_basic),
        cmocka_unit_test(test_encode_typed_parts),
        cmocka_unit_test(test_choice_accessors),
        cmocka_unit_test(test_chunk_choices),
        cmocka_unit_test(test_encode_chat_stream),
        cmocka_unit_test(test_encode_tools),
        cmocka_unit_test(test_encode_tool_history),
        cmocka_unit_test(test_encode_message_json),
        cmocka_unit_test(test_encode_options),
        cmocka_unit_test(test_encode_extra_json),
        cmocka_unit_test(test_encode_invalid_json),
        cmocka_unit_test(test_encode_complete),
        cmocka_unit_test(test_encode_embed),
        cmocka_unit_test(test_encode_models),
        cmocka_unit_test(test_descriptor_dialect),
        cmocka_unit_test(test_decode_chat_fixture),
        cmocka_unit_test(test_decode_embeddings),
        cmocka_unit_test(test_decode_garbage_quoted),
        cmocka_unit_test(test_stream_chat_fixture),
        cmocka_unit_test(test_stream_completion_fixture),
        cmocka_unit_test(test_stream_mistral_fixtures),
        cmocka_unit_test(test_stream_parallel_tools),
        cmocka_unit_test(test_stream_threads),
        cmocka_unit_test(test_codec_dialect_hooks),
        cmocka_unit_test(test_codec_pieces),
        cmocka_unit_test(test_codec_configure),
        cmocka_unit_test(test_rate_limit_headers),
        cmocka_unit_test(test_error_kinds),
    };
    return pt_run_tests(&oai, tests, sizeof tests / sizeof tests[0], cases,
                        sizeof cases / sizeof cases[0]);
}
