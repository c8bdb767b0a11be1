/*
 * tests/unit/test_request.c: requests (setters, JSON import), the host's
 * response/chunk builders, stream merging, JSON serialisation of responses
 * and chunks, and the error tables. No network, no plugin.
 */
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "internal.h"

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static const char *jget(json_object *o, const char *path)
{
    /* dotted path with numeric array indexes: "choices.0.message.content" */
    char buf[256], *tok, *save = NULL;
    json_object *cur = o;
    snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(cur, json_type_array))
            cur = json_object_array_get_idx(cur, (size_t)atoi(tok));
        else if (!json_object_object_get_ex(cur, tok, &cur))
            return NULL;
    }
    if (!cur)
        return "null";
    return json_object_get_string(cur);
}

static void test_errors_table(void **state)
{
    int c;
    (void)state;
    assert_string_equal(llmux_err_name(LLMUX_EAUTH), "LLMUX_EAUTH");
    assert_string_equal(llmux_strerror(LLMUX_OK), "success");
    assert_string_equal(llmux_strerror(12345), "unknown error");
    for (c = 0; c > LLMUX__ERR_LAST; c--) {
        assert_non_null(llmux_strerror(c));
        assert_string_not_equal(llmux_err_name(c), "LLMUX_UNKNOWN");
    }
    assert_int_equal(llmux_err_class_of(LLMUX_EPROVIDER), LLMUX_CLASS_PROVIDER);
    assert_int_equal(llmux_err_class_of(LLMUX_ENOKEY), LLMUX_CLASS_USAGE);
    assert_int_equal(llmux_err_class_of(LLMUX_ENOPROVIDER), LLMUX_CLASS_USAGE);
    assert_int_equal(llmux_err_class_of(LLMUX_ETIMEDOUT),
                     LLMUX_CLASS_TRANSPORT);
    assert_int_equal(llmux_err_class_of(LLMUX_ECANCELED), LLMUX_CLASS_LOCAL);
}

static void test_setters(void **state)
{
    llmux_request *r, *d;
    (void)state;
    assert_int_equal(
        llmux_request_new(&r, LLMUX_OP_CHAT, "ollama/llama3:8b;timeout=30"), 0);
    assert_string_equal(llmux_request_provider(r), "ollama");
    assert_string_equal(llmux_request_model(r), "llama3:8b");
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux_request_set_system(r, "be brief"), 0);
    assert_int_equal(r->n_msgs, 2);
    assert_int_equal(r->msgs[0].role, LLMUX_ROLE_SYSTEM);
    assert_string_equal(r->msgs[0].content, "be brief");
    assert_string_equal(r->msgs[1].content, "hi");
    assert_int_equal(llmux_request_set_system(r, "be briefer"), 0);
    assert_int_equal(r->n_msgs, 2);
    assert_string_equal(r->msgs[0].content, "be briefer");
    assert_int_equal(llmux_request_add_message(r, 99, "x"), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_temperature(r, -1), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_top_p(r, 1.5), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_max_tokens(r, -3), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_max_tokens(r, 12), 0);
    assert_true(r->has & LLMUX_HAS_MAX_TOKENS);
    assert_int_equal(llmux_request_add_stop(r, "END"), 0);
    assert_int_equal(llmux_request_set_tool_choice(r, "auto"), 0);
    assert_string_equal(r->tool_choice_json, "\"auto\"");
    assert_int_equal(llmux_request_set_tool_choice(r, "get_weather"), 0);
    assert_non_null(strstr(r->tool_choice_json, "\"name\":\"get_weather\""));
    assert_int_equal(llmux_request_set_tool_choice(r, "{bad"), LLMUX_EINVAL);
    assert_int_equal(
        llmux_request_add_tool(r, "f", "does f", "{\"type\":\"object\"}"), 0);
    assert_int_equal(llmux_request_add_tool(r, "g", NULL, NULL), 0);
    assert_int_equal(llmux_request_add_tool(r, "h", NULL, "[1]"), LLMUX_EINVAL);
    assert_non_null(strstr(llmux_request_errmsg(r), "\"h\""));
    {
        json_object *t = parse(r->tools_json);
        assert_int_equal(json_object_array_length(t), 2);
        assert_string_equal(jget(t, "1.function.name"), "g");
        json_object_put(t);
    }
    assert_int_equal(llmux_request_set_response_format(r, "[]"), LLMUX_EINVAL);
    assert_int_equal(
        llmux_request_set_response_format(r, "{\"type\":\"json_object\"}"), 0);
    assert_int_equal(llmux_request_add_header(r, "no colon"), LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_header(r, "X-A: b\r\nX-B: c"),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_header(r, "api-key: abc"), 0);
    {
        llmux_tool_call tc = {0, "call_1", "f", "{\"a\":1}"};
        assert_int_equal(llmux_request_add_tool_calls(r, NULL, &tc, 1), 0);
        assert_int_equal(llmux_request_add_tool_result(r, "call_1", "42"), 0);
    }
    assert_int_equal(llmux_request_set_option(r, "timeout", "abc"),
                     LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(r), "timeout"));
    assert_int_equal(llmux_request_set_option(r, "keep_alive", "5m"), 0);

    d = llmux_request_dup(r);
    assert_non_null(d);
    assert_int_equal(d->n_msgs, r->n_msgs);
    assert_string_equal(d->msgs[2].tool_calls[0].arguments, "{\"a\":1}");
    assert_string_equal(d->tools_json, r->tools_json);
    assert_string_equal(llmux__config_get(&d->cfg, "keep_alive"), "5m");
    llmux_request_free(d);
    llmux_request_free(r);
    llmux_request_free(NULL);
}

static void test_bad_spec(void **state)
{
    llmux_request *r;
    (void)state;
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "/gpt-4o"),
                     LLMUX_ECONFIG);
    assert_non_null(r);
    assert_true(strlen(llmux_request_errmsg(r)) > 0);
    llmux_request_free(r);
    assert_int_equal(
        llmux_request_new(&r, LLMUX_OP_CHAT, "openai/x;max_retries=lots"),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(r), "max_retries"));
    llmux_request_free(r);
    assert_int_equal(llmux_request_new(&r, (llmux_op)42, "openai/x"),
                     LLMUX_EINVAL);
    assert_null(r);
}

static void test_json_import(void **state)
{
    static const char js[] =
        "{\"model\":\"openai/gpt-4o-mini\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"sys\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
        "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"ok\"}],"
        "\"max_completion_tokens\":50,\"temperature\":0.5,\"top_p\":1,"
        "\"stop\":[\"a\",\"b\"],\"seed\":7,\"stream\":true,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
        "\"tool_choice\":\"required\","
        "\"response_format\":{\"type\":\"json_object\"},"
        "\"user\":\"u1\",\"logprobs\":false}";
    llmux_request *r;
    (void)state;
    assert_int_equal(llmux_request_new_json(&r, NULL, js, strlen(js)), 0);
    assert_string_equal(llmux_request_provider(r), "openai");
    assert_string_equal(llmux_request_model(r), "gpt-4o-mini");
    assert_int_equal(r->n_msgs, 4);
    assert_null(r->msgs[1].content);
    assert_non_null(strstr(r->msgs[1].content_json, "\"text\":\"hi\""));
    assert_int_equal(r->msgs[2].n_tool_calls, 1);
    assert_string_equal(r->msgs[2].tool_calls[0].name, "f");
    assert_string_equal(r->msgs[3].tool_call_id, "c1");
    assert_int_equal(r->max_tokens, 50);
    assert_true(r->temperature == 0.5);
    assert_int_equal(r->n_stops, 2);
    assert_int_equal(r->seed, 7);
    assert_true(r->stream);
    assert_string_equal(r->tool_choice_json, "\"required\"");
    {
        json_object *x = parse(r->extra_json);
        assert_string_equal(jget(x, "user"), "u1");
        assert_int_equal(json_object_object_length(x), 2);
        json_object_put(x);
    }
    llmux_request_free(r);

    /* spec argument wins over the JSON's model */
    assert_int_equal(
        llmux_request_new_json(&r, "mistral/small", js, strlen(js)), 0);
    assert_string_equal(llmux_request_provider(r), "mistral");
    llmux_request_free(r);
}

static void test_json_import_errors(void **state)
{
    static const char *bad[] = {
        "",
        "[]",
        "{\"messages\":[]}",
        "{\"model\":\"openai/x\",\"messages\":{}}",
        "{\"model\":\"openai/x\",\"messages\":[{\"content\":\"x\"}]}",
        "{\"model\":\"openai/x\",\"messages\":[{\"role\":\"robot\"}]}",
        "{\"model\":\"openai/x\",\"messages\":[{\"role\":\"tool\"}]}",
        "{\"model\":\"openai/x\",\"max_tokens\":\"many\"}",
        "{\"model\":\"openai/x\",\"temperature\":\"hot\"}",
        "{\"model\":\"openai/x\",\"stop\":[1]}",
        "{\"model\":\"openai/x\",\"tools\":{}}",
        "{\"model\":\"openai/x\"} trailing",
        "{\"model\":\"openai/x\",\"messages\":[{\"role\":\"assistant\","
        "\"tool_calls\":[{\"function\":{}}]}]}",
    };
    static const char good[] =
        "{\"model\":\"openai/x\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"hello\"}],\"max_tokens\":5}";
    size_t i, n;
    llmux_request *r;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = llmux_request_new_json(&r, NULL, bad[i], strlen(bad[i]));
        assert_true(rc == LLMUX_EINVAL || rc == LLMUX_ECONFIG);
        assert_true(strlen(llmux_request_errmsg(r)) > 0);
        llmux_request_free(r);
    }
    /* every truncation of a valid body fails cleanly */
    for (n = 0; n < sizeof good - 1; n++) {
        int rc = llmux_request_new_json(&r, NULL, good, n);
        assert_int_not_equal(rc, 0);
        llmux_request_free(r);
    }
    assert_int_equal(llmux_request_new_json(&r, NULL, good, sizeof good - 1),
                     0);
    llmux_request_free(r);
}

/* Request JSON often comes from outside (a gateway client, a batch line):
 * its "model" names a provider and model, never endpoints, credentials or
 * TLS settings, unless the caller says the JSON is its own. */
static void test_json_model_untrusted(void **state)
{
    static const char *const specs[] = {
        "openai/x;base_url=http://evil.example/v1",
        "openai/x;api_key_env=HOME",
        "openai/x;insecure=1",
        "openai/x;proxy=http://evil.example:3128",
        "provider=openai;model=x;api_key=sk-stolen",
    };
    char js[256];
    size_t i;
    llmux_request *r;
    (void)state;
    for (i = 0; i < sizeof specs / sizeof *specs; i++) {
        snprintf(js, sizeof js, "{\"model\":\"%s\",\"messages\":[]}", specs[i]);
        assert_int_equal(llmux_request_new_json(&r, NULL, js, strlen(js)),
                         LLMUX_ECONFIG);
        assert_non_null(strstr(llmux_request_errmsg(r), "not options"));
        assert_null(strstr(llmux_request_errmsg(r), "stolen"));
        llmux_request_free(r);
        /* the caller's own JSON (a local file) may */
        assert_int_equal(llmux_request_new_json_ex(&r, NULL, js, strlen(js),
                                                   LLMUX_JSON_TRUSTED),
                         0);
        llmux_request_free(r);
    }
    /* plain provider/model forms stay accepted */
    snprintf(js, sizeof js,
             "{\"model\":\"provider=ollama;model=llama3:8b\",\"messages\":[]}");
    assert_int_equal(llmux_request_new_json(&r, NULL, js, strlen(js)), 0);
    assert_string_equal(llmux_request_model(r), "llama3:8b");
    llmux_request_free(r);
}

/* Text completion and embeddings bodies: each key lands in its field or
 * goes to the provider as it is; a key of another op is refused by name,
 * never dropped. */
static void test_json_op_import(void **state)
{
    static const char comp[] =
        "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":[\"Say hi\"],"
        "\"suffix\":\"!\",\"max_tokens\":9,\"temperature\":0.5,"
        "\"top_p\":0.5,\"stop\":\"END\",\"n\":2,\"logprobs\":1,"
        "\"echo\":true,\"seed\":4,\"stream\":true,\"user\":\"u\"}";
    static const char emb[] =
        "{\"model\":\"text-embedding-3-small\",\"input\":[\"a\",\"b\"],"
        "\"encoding_format\":\"base64\",\"dimensions\":8,\"user\":\"u\"}";
    llmux_request *r;
    json_object *x, *v;
    (void)state;
    assert_int_equal(llmux_request_new_json_op(&r, LLMUX_OP_COMPLETE,
                                               "openai/i", comp, strlen(comp),
                                               0),
                     0);
    assert_int_equal(llmux_request_op(r), LLMUX_OP_COMPLETE);
    assert_string_equal(r->prompt, "Say hi");
    assert_string_equal(r->suffix, "!");
    assert_int_equal(r->max_tokens, 9);
    assert_int_equal(r->seed, 4);
    assert_true(r->stream);
    assert_int_equal(r->n_stops, 1);
    x = parse(r->extra_json);
    assert_true(json_object_object_get_ex(x, "n", &v));
    assert_int_equal(json_object_get_int(v), 2);
    assert_true(json_object_object_get_ex(x, "logprobs", NULL));
    assert_true(json_object_object_get_ex(x, "echo", NULL));
    assert_true(json_object_object_get_ex(x, "user", NULL));
    assert_false(json_object_object_get_ex(x, "prompt", NULL));
    json_object_put(x);
    llmux_request_free(r);

    assert_int_equal(llmux_request_new_json_op(&r, LLMUX_OP_EMBED, "openai/e",
                                               emb, strlen(emb), 0),
                     0);
    assert_int_equal(llmux_request_op(r), LLMUX_OP_EMBED);
    assert_int_equal(r->n_inputs, 2);
    assert_string_equal(r->inputs[1], "b");
    assert_string_equal(r->extra_json, "{\"user\":\"u\"}");
    llmux_request_free(r);
    /* a single string; set_field replaces the input, not appends */
    assert_int_equal(llmux_request_new_json_op(&r, LLMUX_OP_EMBED, "openai/e",
                                               "{\"input\":\"one\"}", 15, 0),
                     0);
    assert_int_equal(r->n_inputs, 1);
    assert_int_equal(llmux_request_set_field(r, "input", "[\"x\",\"y\"]"), 0);
    assert_int_equal(r->n_inputs, 2);
    assert_int_equal(llmux_request_set_field(r, "tools", "[]"), LLMUX_EINVAL);
    llmux_request_free(r);

    /* a chat request still passes the other ops' keys on */
    assert_int_equal(
        llmux_request_new_json_op(&r, LLMUX_OP_CHAT, "openai/c",
                                  "{\"messages\":[],\"input\":\"i\"}", 27, 0),
        0);
    assert_string_equal(r->extra_json, "{\"input\":\"i\"}");
    llmux_request_free(r);
    /* no JSON body of its own */
    r = (llmux_request *)1;
    assert_int_equal(
        llmux_request_new_json_op(&r, LLMUX_OP_MODELS, "openai/c", "{}", 2, 0),
        LLMUX_EINVAL);
    assert_null(r);
}

static void test_json_op_errors(void **state)
{
    static const struct {
        llmux_op op;
        const char *json;
        int rc;
        const char *says;
    } bad[] = {
        {LLMUX_OP_COMPLETE, "{}", LLMUX_EINVAL, "\"prompt\" is missing"},
        {LLMUX_OP_COMPLETE, "{\"prompt\":[\"a\",\"b\"]}", LLMUX_ENOTSUP,
         "2 prompts"},
        {LLMUX_OP_COMPLETE, "{\"prompt\":[1,2]}", LLMUX_ENOTSUP, "2 prompts"},
        {LLMUX_OP_COMPLETE, "{\"prompt\":[[1,2]]}", LLMUX_ENOTSUP, "token ids"},
        {LLMUX_OP_COMPLETE, "{\"prompt\":7}", LLMUX_ENOTSUP, "token ids"},
        {LLMUX_OP_COMPLETE, "{\"prompt\":\"p\",\"suffix\":1}", LLMUX_EINVAL,
         "\"suffix\""},
        {LLMUX_OP_COMPLETE, "{\"prompt\":\"p\",\"messages\":[]}", LLMUX_EINVAL,
         "\"messages\" does not apply to a text completion"},
        {LLMUX_OP_COMPLETE, "{\"prompt\":\"p\",\"tools\":[]}", LLMUX_EINVAL,
         "\"tools\" does not apply"},
        {LLMUX_OP_EMBED, "{}", LLMUX_EINVAL, "\"input\" is missing"},
        {LLMUX_OP_EMBED, "{\"input\":[]}", LLMUX_EINVAL, "empty"},
        {LLMUX_OP_EMBED, "{\"input\":5}", LLMUX_EINVAL, "\"input\""},
        {LLMUX_OP_EMBED, "{\"input\":[1,2]}", LLMUX_ENOTSUP, "token ids"},
        {LLMUX_OP_EMBED, "{\"input\":[\"a\",[1]]}", LLMUX_ENOTSUP,
         "\"input\"[1]"},
        {LLMUX_OP_EMBED, "{\"input\":\"a\",\"stream\":true}", LLMUX_EINVAL,
         "\"stream\" does not apply to an embeddings"},
        {LLMUX_OP_EMBED, "{\"input\":\"a\",\"temperature\":1}", LLMUX_EINVAL,
         "\"temperature\" does not apply"},
        {LLMUX_OP_EMBED, "{\"input\":\"a\",\"encoding_format\":\"int8\"}",
         LLMUX_EINVAL, "encoding_format"},
        {LLMUX_OP_EMBED, "{\"input\":\"a\",\"dimensions\":0}", LLMUX_EINVAL,
         "dimensions"},
        {LLMUX_OP_EMBED, "{\"input\":\"a\",\"model\":\"openai/e;insecure=1\"}",
         LLMUX_ECONFIG, "not options"},
    };
    size_t i;
    llmux_request *r;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        /* the last case reads its model from the JSON */
        const char *spec = strstr(bad[i].json, "\"model\"") ? NULL : "openai/x";
        int rc = llmux_request_new_json_op(&r, bad[i].op, spec, bad[i].json,
                                           strlen(bad[i].json), 0);
        if (rc != bad[i].rc || !strstr(llmux_request_errmsg(r), bad[i].says))
            fail_msg("case %zu: %d \"%s\", wanted %d and \"%s\"", i, rc,
                     llmux_request_errmsg(r), bad[i].rc, bad[i].says);
        llmux_request_free(r);
    }
}

/* api_key_env names a credential variable only: {"model":"openai/x;
 * base_url=...;api_key_env=HOME"} put $HOME on the wire as a key. */
static void test_api_key_env_names(void **state)
{
    static const struct {
        const char *var;
        int ok;
    } cases[] = {{"HOME", 0},           {"PATH", 0},     {"AWS_PROFILE", 0},
                 {"1KEY", 0},           {"A-KEY", 0},    {"OPENAI_API_KEY", 1},
                 {"MY_SERVICE_KEY", 1}, {"hf_token", 1}, {"DB_PASSWORD", 1},
                 {"CLIENT_SECRET", 1}};
    char spec[128];
    size_t i;
    llmux_request *r;
    llmux__prepared p;
    (void)state;
    setenv("LLMUX_TEST_ODD", "sk-odd", 1);
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(spec, sizeof spec,
                 "openai/x;base_url=http://127.0.0.1:9/v1;api_key=k;"
                 "api_key_env=%s",
                 cases[i].var);
        assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, spec), 0);
        assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"), 0);
        if (cases[i].ok) {
            assert_int_equal(llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p), 0);
        } else {
            assert_int_equal(llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p),
                             LLMUX_ECONFIG);
            assert_non_null(strstr(llmux_request_errmsg(r), "api_key_env"));
        }
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
    /* a variable the client allows */
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT,
                                       "openai/x;base_url=http://127.0.0.1:9/"
                                       "v1;api_key_env=LLMUX_TEST_ODD"),
                     0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"), 0);
    assert_int_equal(llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p),
                     LLMUX_ECONFIG);
    llmux__prepared_free(&p);
    assert_int_equal(llmux__prepare_ex(r, NULL, NULL, LLMUX_BUILD_PLUGIN_DIR,
                                       "A_VAR:LLMUX_TEST_ODD:B", 0, &p),
                     0);
    assert_string_equal(p.api_key, "sk-odd");
    llmux__prepared_free(&p);
    assert_int_equal(llmux__prepare_ex(r, NULL, NULL, LLMUX_BUILD_PLUGIN_DIR,
                                       "LLMUX_TEST", 0, &p),
                     LLMUX_ECONFIG);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    unsetenv("LLMUX_TEST_ODD");
    llmux__providers_cleanup();
}

static void test_builders_and_json(void **state)
{
    const llmux_host *h = &llmux__host;
    llmux_response *res = llmux__response_new(LLMUX_OP_CHAT, "openai");
    llmux_out *o = &res->o;
    char *js;
    json_object *j;
    (void)state;
    assert_int_equal(h->abi_version, LLMUX_HOST_ABI);
    assert_true(LLMUX_HOST_HAS(h, option));
    h->out_str(o, LLMUX_F_ID, "chatcmpl-1", 10);
    h->out_str(o, LLMUX_F_MODEL, "gpt-4o", 6);
    h->out_int(o, LLMUX_F_CREATED, 1700000000);
    h->out_str(o, LLMUX_F_TEXT, "Hello", 5);
    h->out_str(o, LLMUX_F_TEXT, ", world", 7);
    h->out_int(o, LLMUX_F_FINISH, LLMUX_FINISH_TOOL_CALLS);
    h->out_tool_call(o, 1, "call_b", "g", "{\"y\":", 5);
    h->out_tool_call(o, 0, "call_a", "f", "{}", 2);
    h->out_tool_call(o, 1, NULL, NULL, "2}", 2);
    h->out_int(o, LLMUX_F_PROMPT_TOKENS, 3);
    h->out_int(o, LLMUX_F_COMPLETION_TOKENS, 4);
    assert_int_equal(h->out_int(o, LLMUX_F_FINISH, 99), LLMUX_EINVAL);
    assert_int_equal(h->out_str(o, 9999, "x", 1), 0); /* ignored */
    assert_string_equal(llmux_response_text(res, NULL), "Hello, world");
    assert_int_equal(llmux_response_tool_call_count(res), 2);
    /* ordered by index whatever the arrival order */
    assert_int_equal(llmux_response_tool_call(res, 0)->index, 0);
    assert_string_equal(llmux_response_tool_call(res, 1)->arguments,
                        "{\"y\":2}");
    assert_null(llmux_response_tool_call(res, 5));
    js = llmux_response_to_json(res);
    j = parse(js);
    assert_string_equal(jget(j, "object"), "chat.completion");
    assert_string_equal(jget(j, "choices.0.message.content"), "Hello, world");
    assert_string_equal(jget(j, "choices.0.finish_reason"), "tool_calls");
    assert_string_equal(jget(j, "choices.0.message.tool_calls.1.function."
                                "arguments"),
                        "{\"y\":2}");
    assert_string_equal(jget(j, "choices.0.message.tool_calls.0.type"),
                        "function");
    assert_string_equal(jget(j, "usage.total_tokens"), "7");
    json_object_put(j);
    llmux_free(js);

    /* an error response serialises as {"error":...} without the key */
    llmux__host.out_provider_error(o, "invalid_request_error",
                                   "invalid_api_key", NULL,
                                   "Incorrect API key sk-secret123");
    llmux__response_fail(res, LLMUX_EAUTH, 401, 0, NULL);
    llmux__response_mask(res, "sk-secret123");
    assert_string_equal(llmux_response_error(res)->message,
                        "Incorrect API key ***");
    js = llmux_response_to_json(res);
    j = parse(js);
    assert_string_equal(jget(j, "error.code"), "invalid_api_key");
    assert_string_equal(jget(j, "error.llmux_code"), "LLMUX_EAUTH");
    assert_string_equal(jget(j, "error.http_status"), "401");
    json_object_put(j);
    llmux_free(js);
    assert_ptr_equal(llmux_response_retain(res), res);
    llmux_response_free(res);
    llmux_response_free(res);
}

static void test_merge_and_chunks(void **state)
{
    llmux_response *res = llmux__response_new(LLMUX_OP_CHAT, "openai");
    llmux_chunk ch;
    const llmux_host *h = &llmux__host;
    char *js;
    json_object *j;
    (void)state;
    memset(&ch, 0, sizeof ch);
    llmux__out_init(&ch.o, LLMUX_OP_CHAT, 1);
    ch.acc = &res->o;

    h->out_str(&ch.o, LLMUX_F_ID, "id1", 3);
    h->out_str(&ch.o, LLMUX_F_TEXT, "Hel", 3);
    h->out_tool_call(&ch.o, 0, "c0", "f", "{\"a\"", 4);
    assert_int_equal(llmux__out_merge(&res->o, &ch.o), 0);
    js = llmux_chunk_to_json(&ch);
    j = parse(js);
    assert_string_equal(jget(j, "object"), "chat.completion.chunk");
    assert_string_equal(jget(j, "choices.0.delta.content"), "Hel");
    assert_string_equal(jget(j, "choices.0.delta.tool_calls.0.index"), "0");
    json_object_put(j);
    llmux_free(js);

    llmux__out_reset(&ch.o);
    h->out_str(&ch.o, LLMUX_F_TEXT, "lo", 2);
    h->out_tool_call(&ch.o, 0, NULL, NULL, ":1}", 3);
    h->out_int(&ch.o, LLMUX_F_FINISH, LLMUX_FINISH_STOP);
    assert_int_equal(llmux__out_merge(&res->o, &ch.o), 0);
    js = llmux_chunk_to_json(&ch);
    j = parse(js);
    assert_string_equal(jget(j, "id"), "id1"); /* from the stream so far */
    assert_string_equal(jget(j, "choices.0.finish_reason"), "stop");
    json_object_put(j);
    llmux_free(js);

    /* a usage-only chunk serialises with empty choices, like OpenAI's */
    llmux__out_reset(&ch.o);
    h->out_int(&ch.o, LLMUX_F_PROMPT_TOKENS, 5);
    h->out_int(&ch.o, LLMUX_F_COMPLETION_TOKENS, 2);
    assert_non_null(llmux_chunk_usage(&ch));
    assert_int_equal(llmux__out_merge(&res->o, &ch.o), 0);
    js = llmux_chunk_to_json(&ch);
    j = parse(js);
    assert_int_equal(
        json_object_array_length(json_object_object_get(j, "choices")), 0);
    assert_string_equal(jget(j, "usage.total_tokens"), "7");
    json_object_put(j);
    llmux_free(js);

    assert_string_equal(llmux_response_text(res, NULL), "Hello");
    assert_string_equal(llmux_response_tool_call(res, 0)->arguments,
                        "{\"a\":1}");
    assert_int_equal(llmux_response_finish(res), LLMUX_FINISH_STOP);
    assert_int_equal(llmux_response_usage(res)->prompt_tokens, 5);
    llmux__out_free(&ch.o);
    llmux_response_free(res);
}

static void test_embeddings_json_locale(void **state)
{
    llmux_response *res = llmux__response_new(LLMUX_OP_EMBED, "openai");
    float v[3] = {0.5f, -0.25f, 1.0e-3f};
    char *js;
    json_object *j;
    const char *loc;
    (void)state;
    llmux__host.out_embedding(&res->o, 0, v, 3);
    /* decimal commas must not leak into JSON */
    loc = setlocale(LC_NUMERIC, "de_DE.UTF-8");
    js = llmux_response_to_json(res);
    setlocale(LC_NUMERIC, "C");
    j = parse(js);
    assert_string_equal(jget(j, "object"), "list");
    assert_true(
        json_object_get_double(json_object_array_get_idx(
            json_object_object_get(
                json_object_array_get_idx(json_object_object_get(j, "data"), 0),
                "embedding"),
            1)) == -0.25);
    assert_null(strstr(js, "0,5"));
    (void)loc;
    json_object_put(j);
    llmux_free(js);
    llmux_response_free(res);
}

/* Parses s as strict JSON that must be valid UTF-8 (json-c checks). */
static json_object *parse_strict(const char *s)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;
    assert_non_null(tok);
    json_tokener_set_flags(tok,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    o = json_tokener_parse_ex(tok, s, (int)strlen(s));
    if (!o)
        fail_msg("not strict JSON in UTF-8 (%s): %s",
                 json_tokener_error_desc(json_tokener_get_error(tok)), s);
    json_tokener_free(tok);
    return o;
}

/* Ill-formed UTF-8 from a provider never reaches the caller: accessors and
 * JSON carry U+FFFD instead; numbers print in their shortest form and a
 * NaN as null. */
static void test_output_utf8_and_numbers(void **state)
{
    llmux_response *res = llmux__response_new(LLMUX_OP_CHAT, "openai");
    llmux_out *o = &res->o;
    float v[3] = {-0.0017594862f, 0.1f, 0.0f};
    char *js;
    json_object *j;
    (void)state;
    v[2] = nanf("");
    llmux__host.out_str(o, LLMUX_F_TEXT, "ok \xff\xfe end", 9);
    llmux__host.out_str(o, LLMUX_F_MODEL, "m\xc3", 2);
    llmux__host.out_tool_call(o, 0, "id\x80", "f\xed\xa0\x80",
                              "{\"a\":\"\xc0\"}", 9);
    assert_string_equal(llmux_response_text(res, NULL),
                        "ok \xEF\xBF\xBD\xEF\xBF\xBD end");
    assert_string_equal(llmux_response_model(res), "m\xEF\xBF\xBD");
    js = llmux_response_to_json(res);
    j = parse_strict(js);
    assert_string_equal(jget(j, "choices.0.message.tool_calls.0.function.name"),
                        "f\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    json_object_put(j);
    llmux_free(js);

    /* an error message with ill-formed bytes */
    llmux__host.out_provider_error(o, "t\xff", NULL, NULL, "bad \xe2\x82");
    llmux__response_fail(res, LLMUX_EPROVIDER, 400, 0, NULL);
    assert_string_equal(llmux_response_error(res)->message, "bad \xEF\xBF\xBD");
    js = llmux_response_to_json(res);
    json_object_put(parse_strict(js));
    llmux_free(js);
    llmux_response_free(res);

    res = llmux__response_new(LLMUX_OP_EMBED, "ollama");
    llmux__host.out_embedding(&res->o, 0, v, 3);
    js = llmux_response_to_json(res);
    assert_non_null(strstr(js, "[-0.0017594862,0.1,null]"));
    json_object_put(parse_strict(js));
    llmux_free(js);
    llmux_response_free(res);
}

static void test_parse_seconds(void **state)
{
    static const struct {
        const char *s;
        long ms;
    } ok[] = {{"30", 30000}, {"0.5", 500}, {"1.25", 1250}, {"0.0019", 1},
              {"2.", 2000},  {".75", 750}, {"0", 0}};
    static const char *const bad[] = {
        "", ".", "-1", "1e3", "abc", "1.2.3", "10s", " 1", "999999999999"};
    size_t i;
    long ms;
    (void)state;
    for (i = 0; i < sizeof ok / sizeof *ok; i++) {
        assert_int_equal(llmux__parse_seconds_ms(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    for (i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(llmux__parse_seconds_ms(bad[i], &ms), -1);
    assert_int_equal(llmux__parse_seconds_ms(NULL, &ms), -1);
}

static void test_tokens_and_results(void **state)
{
    const llmux_host *h = &llmux__host;
    llmux_response *res = llmux__response_new(LLMUX_OP_TOKENIZE, "aa");
    char *js;
    json_object *j;
    long long id;
    (void)state;
    assert_true(LLMUX_HOST_HAS(h, out_token));
    assert_int_equal(h->out_token(&res->o, "Hello", 5, 49222), 0);
    assert_int_equal(h->out_token(&res->o, NULL, 0, 7), 0);
    assert_int_equal(h->out_token(&res->o, NULL, 3, 7), LLMUX_EINVAL);
    assert_int_equal(llmux_response_token_count(res), 2);
    assert_string_equal(llmux_response_token(res, 0, &id), "Hello");
    assert_int_equal(id, 49222);
    assert_null(llmux_response_token(res, 1, &id));
    assert_int_equal(id, 7);
    assert_null(llmux_response_token(res, 2, &id));
    assert_int_equal(id, -1);
    js = llmux_response_to_json(res);
    j = parse(js);
    assert_string_equal(jget(j, "tokens.0"), "Hello");
    assert_string_equal(jget(j, "token_ids.1"), "7");
    json_object_put(j);
    llmux_free(js);
    llmux_response_free(res);

    res = llmux__response_new(LLMUX_OP_EVALUATE, "aa");
    h->out_str(&res->o, LLMUX_F_RESULT_JSON, "{\"log_probability\":-1.5}", 24);
    assert_string_equal(llmux_response_result_json(res),
                        "{\"log_probability\":-1.5}");
    js = llmux_response_to_json(res);
    j = parse(js);
    assert_string_equal(jget(j, "log_probability"), "-1.5");
    json_object_put(j);
    llmux_free(js);
    llmux_response_free(res);

    res = llmux__response_new(LLMUX_OP_DETOKENIZE, "aa");
    h->out_str(&res->o, LLMUX_F_TEXT, "tiss", 4);
    js = llmux_response_to_json(res);
    assert_string_equal(js, "{\"text\":\"tiss\"}");
    llmux_free(js);
    llmux_response_free(res);
}

/* An in-process provider: records what prepare hands it. */
static int fake_encode(void *ctx, llmux_call *call, llmux_http_request *http)
{
    (void)ctx;
    (void)call;
    llmux__host.http_path(http, "/x");
    return 0;
}

static int fake_decode(void *ctx, llmux_call *call,
                       const llmux_http_response *resp, llmux_out *out)
{
    (void)ctx;
    (void)call;
    (void)resp;
    (void)out;
    return 0;
}

static const llmux_provider fake_provider = {
    LLMUX_PROVIDER_ABI,
    sizeof(llmux_provider),
    "fakeport",
    "1",
    "test provider",
    LLMUX_CAP_CHAT | LLMUX_CAP_TOKENIZE | LLMUX_CAP_DETOKENIZE |
        LLMUX_CAP_EVALUATE,
    LLMUX_FRAMING_NDJSON,
    LLMUX_AUTH_NONE,
    "http://127.0.0.1:1",
    NULL,
    "FAKEPORT_HOST",
    NULL,
    NULL,
    fake_encode,
    fake_decode,
    NULL,
    NULL,
    NULL,
    11434,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL};

static void test_prepare_env_base_and_ops(void **state)
{
    static const struct {
        const char *env;
        const char *url;
    } cases[] = {{"gpu", "http://gpu:11434/x"},
                 {"gpu:8080", "http://gpu:8080/x"},
                 {"https://h.example/api", "https://h.example/api/x"},
                 {"http://h", "http://h/x"},
                 {"[::1]", "http://[::1]:11434/x"},
                 {":8080", "http://127.0.0.1:8080/x"}};
    llmux_request *r;
    llmux__prepared p;
    size_t i;
    (void)state;
    assert_int_equal(llmux_register_provider(&fake_provider), 0);
    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        setenv("FAKEPORT_HOST", cases[i].env, 1);
        assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "fakeport/m"), 0);
        llmux_request_add_message(r, LLMUX_ROLE_USER, "x");
        assert_int_equal(llmux__prepare(r, NULL, &p), 0);
        assert_string_equal(p.url, cases[i].url);
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
    unsetenv("FAKEPORT_HOST");

    /* the new operations validate their inputs */
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_DETOKENIZE, "fakeport/m"),
                     0);
    assert_int_equal(llmux__prepare(r, NULL, &p), LLMUX_EINVAL);
    assert_non_null(strstr(llmux_request_errmsg(r), "token ids"));
    llmux__prepared_free(&p);
    assert_int_equal(llmux_request_add_token_id(r, -1), LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_token_id(r, 4711), 0);
    assert_int_equal(llmux__prepare(r, NULL, &p), 0);
    assert_int_equal(p.call.params->n_token_ids, 1);
    assert_int_equal(p.call.params->token_ids[0], 4711);
    llmux__prepared_free(&p);
    llmux_request_free(r);

    assert_int_equal(llmux_request_new(&r, LLMUX_OP_EVALUATE, "fakeport/m"), 0);
    llmux_request_set_prompt(r, "Hello");
    assert_int_equal(llmux__prepare(r, NULL, &p), LLMUX_EINVAL);
    llmux__prepared_free(&p);
    assert_int_equal(llmux_request_set_expected(r, " world"), 0);
    assert_int_equal(llmux__prepare(r, NULL, &p), 0);
    assert_string_equal(p.call.params->expected, " world");
    llmux__prepared_free(&p);
    llmux_request_free(r);

    /* a provider without the capability says so */
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_EMBED, "fakeport/m"), 0);
    llmux_request_add_input(r, "x");
    assert_int_equal(llmux__prepare(r, NULL, &p), LLMUX_ENOTSUP);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    llmux__providers_cleanup();
}

/* A provider that logs what it was given and what the server said. */
static int logger_encode(void *ctx, llmux_call *call, llmux_http_request *h)
{
    (void)ctx;
    llmux__host.log(LLMUX_LOG_WARN, "encode with key %s", call->api_key);
    return llmux__host.http_path(h, "/x");
}

static int logger_decode(void *ctx, llmux_call *call,
                         const llmux_http_response *resp, llmux_out *out)
{
    (void)ctx;
    (void)call;
    (void)out;
    llmux__host.log(LLMUX_LOG_INFO, "server said: %.*s", (int)resp->body_len,
                    resp->body);
    return 0;
}

static const llmux_provider logger_provider = {LLMUX_PROVIDER_ABI,
                                               sizeof(llmux_provider),
                                               "logger",
                                               "1",
                                               "test provider",
                                               LLMUX_CAP_CHAT,
                                               LLMUX_FRAMING_SSE,
                                               LLMUX_AUTH_PLUGIN,
                                               "http://127.0.0.1:1",
                                               NULL,
                                               NULL,
                                               NULL,
                                               NULL,
                                               logger_encode,
                                               logger_decode,
                                               NULL,
                                               NULL,
                                               NULL,
                                               0,
                                               NULL,
                                               NULL,
                                               NULL,
                                               NULL,
                                               NULL,
                                               NULL};

static void on_log_line(int level, const char *msg, void *ud)
{
    llmux__buf *b = ud;
    assert_int_equal(llmux__buf_printf(b, "%d %s\n", level, msg), 0);
}

/* Plugin log lines reach the client's hook while the plugin encodes and
 * decodes (they did not: the core replaced the hook there), with the
 * key masked. */
static void test_plugin_logs_reach_hook_masked(void **state)
{
    llmux__buf lines = {0};
    llmux__log_target t = {0}, old;
    llmux_request *r;
    llmux__prepared p;
    llmux_response *res;
    static const char body[] = "{\"echo\":\"Bearer sk-HOOKSECRET-1\"}";
    (void)state;
    assert_int_equal(llmux_register_provider(&logger_provider), 0);
    t.log = on_log_line;
    t.log_ud = &lines;
    t.log_level = LLMUX_LOG_DEBUG;
    old = llmux__log_target_swap(t);
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT,
                                       "logger/m;api_key=sk-HOOKSECRET-1"),
                     0);
    llmux_request_add_message(r, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux__prepare(r, NULL, &p), 0);
    res = llmux__response_new(LLMUX_OP_CHAT, "logger");
    assert_int_equal(
        llmux__decode_answer(&p, 200, NULL, body, sizeof body - 1, res), 0);
    llmux__log_target_swap(old);
    assert_non_null(lines.p);
    assert_non_null(strstr(lines.p, "1 encode with key ***\n"));
    assert_non_null(
        strstr(lines.p, "2 server said: {\"echo\":\"Bearer ***\"}"));
    assert_null(strstr(lines.p, "HOOKSECRET"));
    llmux_response_free(res);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    llmux__buf_free(&lines);
    llmux__providers_cleanup();
}

static void test_api_key_hygiene(void **state)
{
    llmux_request *r;
    llmux__prepared p;
    size_t i;
    int found = 0;
    (void)state;
    /* a key read from a file with its newline still works */
    setenv("OPENAI_API_KEY", "sk-abcdef\n", 1);
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "openai/gpt-4o-mini"),
                     0);
    llmux_request_add_message(r, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p), 0);
    for (i = 0; i < p.http.n_headers; i++)
        if (strcmp(p.http.headers[i], "Authorization: Bearer sk-abcdef") == 0)
            found = 1;
    assert_true(found);
    llmux__prepared_free(&p);
    /* control characters inside are refused, naming the variable only */
    setenv("OPENAI_API_KEY", "sk-ab\001cdef", 1);
    assert_int_equal(llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p),
                     LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(r), "OPENAI_API_KEY"));
    assert_null(strstr(llmux_request_errmsg(r), "cdef"));
    llmux__prepared_free(&p);
    unsetenv("OPENAI_API_KEY");
    llmux_request_free(r);
    llmux__providers_cleanup();
}

/* Every core setting refuses a bad value at set time, naming the key, and
 * takes a good one; other keys are provider options, taken as they are. */
static void test_settings_checked(void **state)
{
    static const struct {
        const char *key, *good, *bad;
    } cases[] = {{"timeout", "1.5", "abc"},
                 {"connect_timeout", "2", "-1"},
                 {"first_byte_timeout", "0.25", "1,5"},
                 {"idle_timeout", "30", ""},
                 {"retry_backoff", "0.5", "fast"},
                 {"max_retries", "100", "101"},
                 {"insecure", "1", "2"},
                 {"auth", "OPTIONAL", "basic"},
                 {"rpm", "60", "0"},
                 {"tpm", "1000000000", "1000000001"},
                 {"cache", "300", "maybe"},
                 {"cache", "no", "-5"},
                 {"cache", "YES", ""}};
    llmux_request *r;
    size_t i;
    (void)state;
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "openai/x"), 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(
            llmux_request_set_option(r, cases[i].key, cases[i].good), 0);
        assert_int_equal(
            llmux_request_set_option(r, cases[i].key, cases[i].bad),
            LLMUX_ECONFIG);
        assert_non_null(strstr(llmux_request_errmsg(r), cases[i].key));
        assert_true(llmux__is_core_key(cases[i].key));
    }
    /* a provider option: not checked, not a core key */
    assert_int_equal(llmux_request_set_option(r, "chat_path", "x"), 0);
    assert_false(llmux__is_core_key("chat_path"));
    assert_true(llmux__is_core_key("BASE_URL"));
    llmux_request_free(r);
}

/*
 * One resolver gives a request its settings: the setter, then the config
 * string, then the client's options, then the default; an option is read
 * only when the caller's options version has it.
 */
static void test_settings_resolved(void **state)
{
    llmux_client_options o;
    llmux__settings d, s;
    llmux_request *r;
    char err[160];
    (void)state;
    if (llmux__settings_selfcheck(err, sizeof err)) {
        print_error("%s\n", err);
        fail();
    }
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "openai/x"), 0);
    llmux__settings_resolve(r, NULL, NULL, 0, &s); /* the defaults */
    assert_int_equal(s.connect_timeout_ms, 10000);
    assert_int_equal(s.timeout_ms, 0);
    assert_int_equal(s.max_retries, 2);
    assert_int_equal(s.retry_backoff_ms, 500);
    assert_null(s.proxy);
    assert_int_equal(s.insecure, 0);
    assert_true(s.rpm == 0);

    llmux_client_options_init(&o);
    o.connect_timeout_ms = 3000;
    o.max_retries = 0;
    o.idle_timeout_ms = 700;
    o.requests_per_minute = 60;
    o.insecure = 1;
    {
        char proxy[] = "http://p:1";
        o.proxy = proxy;
        assert_int_equal(llmux__settings_defaults(&o, &d, NULL, 0), 0);
        proxy[0] = 'X'; /* the client keeps its own copy */
    }
    o.proxy = NULL;
    llmux__settings_resolve(r, &d, NULL, 0, &s); /* the client's */
    assert_int_equal(s.connect_timeout_ms, 3000);
    assert_int_equal(s.max_retries, 0);
    assert_int_equal(s.idle_timeout_ms, 700);
    assert_string_equal(s.proxy, "http://p:1");
    assert_true(s.rpm == 60);
    assert_int_equal(s.insecure, 1);
    assert_int_equal(s.retry_backoff_ms, 500);

    assert_int_equal(llmux_request_set_model(
                         r, "openai/x;connect_timeout=2;max_retries=5;"
                            "idle_timeout=0.5;proxy=http://q:2;rpm=30;"
                            "insecure=0;retry_backoff=1.5;api_key_env=K_KEY;"
                            "auth=none;base_url=http://h/v1;api_key=sk"),
                     0);
    llmux__settings_resolve(r, &d, NULL, 0, &s); /* the config string's */
    assert_int_equal(s.connect_timeout_ms, 2000);
    assert_int_equal(s.max_retries, 5);
    assert_int_equal(s.idle_timeout_ms, 500);
    assert_string_equal(s.proxy, "http://q:2");
    assert_true(s.rpm == 30);
    assert_int_equal(s.insecure, 0);
    assert_int_equal(s.retry_backoff_ms, 1500);
    assert_string_equal(s.api_key_env, "K_KEY");
    assert_string_equal(s.auth, "none");
    assert_string_equal(s.base_url, "http://h/v1");
    assert_string_equal(s.api_key, "sk");

    assert_int_equal(llmux_request_set_connect_timeout_ms(r, 1234), 0);
    assert_int_equal(llmux_request_set_max_retries(r, 1), 0);
    assert_int_equal(llmux_request_set_idle_timeout_ms(r, 99), 0);
    assert_int_equal(llmux_request_set_timeout_ms(r, 5000), 0);
    assert_int_equal(llmux_request_set_first_byte_timeout_ms(r, 77), 0);
    llmux__settings_resolve(r, &d, NULL, 0, &s); /* the setters' */
    assert_int_equal(s.connect_timeout_ms, 1234);
    assert_int_equal(s.max_retries, 1);
    assert_int_equal(s.idle_timeout_ms, 99);
    assert_int_equal(s.timeout_ms, 5000);
    assert_int_equal(s.first_byte_timeout_ms, 77);
    llmux__settings_free_defaults(&d);

    /* a version 1 caller's options end before idle_timeout_ms and rpm */
    o.version = 1;
    assert_int_equal(llmux__settings_defaults(&o, &d, NULL, 0), 0);
    assert_int_equal(d.connect_timeout_ms, 3000);
    assert_int_equal(d.idle_timeout_ms, 0);
    assert_true(d.rpm == 0);
    llmux__settings_free_defaults(&d);
    llmux_request_free(r);
}

static char *slurp_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* The README's table of core keys lists every setting. */
static void test_settings_documented(void **state)
{
    char *readme = slurp_text(LLMUX_TEST_DATA "/../../README.md");
    char *table = strstr(readme, "Core keys:"), *end;
    const char *k;
    size_t i;
    char want[64];
    (void)state;
    assert_non_null(table);
    end = strstr(table, "Any other key is a provider option");
    assert_non_null(end);
    *end = 0;
    for (i = 0; (k = llmux__setting_key(i)) != NULL; i++) {
        snprintf(want, sizeof want, "`%s`", k);
        if (!strstr(table, want)) {
            print_error("README.md's core keys miss %s\n", want);
            fail();
        }
    }
    assert_true(i >= 15);
    free(readme);
}

/*
 * llmux_request_set_field: a modelled field through the JSON import's
 * checks (replacing what was set), any other kept for the body, the
 * refused ones named, and what reaches the plugin's body.
 */
static void test_set_field(void **state)
{
    llmux_request *r;
    llmux__prepared p;
    json_object *body;
    (void)state;
    assert_int_equal(
        llmux_request_new(&r, LLMUX_OP_CHAT, "openai/gpt-4o-mini;api_key=k"),
        0);
    assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"), 0);
    assert_int_equal(llmux_request_set_field(r, "temperature", "0.25"), 0);
    assert_true(r->has & LLMUX_HAS_TEMPERATURE);
    assert_true(r->temperature == 0.25);
    assert_int_equal(llmux_request_set_field(r, "stop", "[\"a\",\"b\"]"), 0);
    assert_int_equal(llmux_request_set_field(r, "stop", "\"END\""), 0);
    assert_int_equal(r->n_stops, 1); /* replaced, not appended */
    assert_string_equal(r->stops[0], "END");
    assert_int_equal(llmux_request_set_field(r, "tools", "[{\"type\":\"x\"}]"),
                     0);
    assert_int_equal(llmux_request_set_field(
                         r, "tools",
                         "[{\"type\":\"function\",\"function\":{\"name\":"
                         "\"f\",\"parameters\":{\"type\":\"object\"}}}]"),
                     0);
    assert_non_null(strstr(r->tools_json, "function"));
    assert_int_equal(llmux_request_set_field(r, "logit_bias", "{\"1\":-100}"),
                     0);
    assert_int_equal(llmux_request_set_field(r, "user", "\"u1\""), 0);
    assert_int_equal(llmux_request_set_field(r, "user", "\"u2\""), 0);
    assert_int_equal(llmux_request_set_field(r, "n", "2"), 0);

    /* refused, each naming the field */
    assert_int_equal(llmux_request_set_field(r, "temperature", "11"),
                     LLMUX_EINVAL);
    assert_non_null(strstr(llmux_request_errmsg(r), "temperature"));
    assert_true(r->temperature == 0.25); /* unchanged */
    assert_int_equal(llmux_request_set_field(r, "seed", "1.5"), LLMUX_EINVAL);
    assert_non_null(strstr(llmux_request_errmsg(r), "seed"));
    assert_int_equal(llmux_request_set_field(r, "logit_bias", "{1:"),
                     LLMUX_EINVAL);
    assert_non_null(strstr(llmux_request_errmsg(r), "logit_bias"));
    assert_int_equal(llmux_request_set_field(r, "x", "1 2"), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_field(r, "x", ""), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_field(r, "model", "\"m\""),
                     LLMUX_EINVAL);
    assert_non_null(strstr(llmux_request_errmsg(r), "model"));
    assert_int_equal(llmux_request_set_field(r, "messages", "[]"),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_field(r, "stream_options", "{}"),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_field(r, "", "1"), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_field(r, "x", NULL), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_field(NULL, "x", "1"), LLMUX_EINVAL);

    /* what the OpenAI plugin sends */
    assert_int_equal(llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p), 0);
    body = json_tokener_parse(p.http.body);
    assert_non_null(body);
    {
        json_object *v;
        assert_true(json_object_object_get_ex(body, "temperature", &v));
        assert_true(json_object_get_double(v) == 0.25);
        assert_true(json_object_object_get_ex(body, "stop", &v));
        assert_int_equal(json_object_array_length(v), 1);
        assert_true(json_object_object_get_ex(body, "logit_bias", &v));
        assert_true(json_object_object_get_ex(v, "1", &v));
        assert_int_equal(json_object_get_int(v), -100);
        assert_true(json_object_object_get_ex(body, "user", &v));
        assert_string_equal(json_object_get_string(v), "u2");
        assert_true(json_object_object_get_ex(body, "n", &v));
        assert_int_equal(json_object_get_int(v), 2);
        assert_true(json_object_object_get_ex(body, "tools", &v));
    }
    json_object_put(body);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

/*
 * A config-string key that is neither the core's nor one the plugin
 * declares is refused before anything is sent, naming the key and what
 * is read; the plugin's own and a plugin taking any key pass.
 */
static void test_unknown_option(void **state)
{
    static const struct {
        const char *spec;
        int rc;
        const char *in_msg;
    } cases[] = {
        {"openai/x;api_key=k;logprobs=true", LLMUX_ECONFIG, "\"logprobs\""},
        {"openai/x;api_key=k;Verbosity=low", LLMUX_ECONFIG, "verbosity"},
        {"openai/x;api_key=k;chat_path=/v2", LLMUX_ECONFIG, "organization"},
        {"openai/x;api_key=k;reasoning_effort=low;organization=o;user=u", 0,
         NULL},
        {"openai/x;api_key=k;MAX_TOKENS_FIELD=max_tokens", 0, NULL},
        {"mistral/x;api_key=k;safe_prompt=true", 0, NULL},
        {"mistral/x;api_key=k;organization=o", LLMUX_ECONFIG, "safe_prompt"},
        {"ollama/x;top_k=40;num_ctx=8192;think=true", 0, NULL},
        {"alephalpha/x;api_key=k;hosting=aleph-alpha", 0, NULL},
        {"alephalpha/x;api_key=k;temperatur=1", LLMUX_ECONFIG, "temperatur"},
    };
    llmux_request *r;
    llmux__prepared p;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, cases[i].spec),
                         0);
        assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi"),
                         0);
        if (llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p) != cases[i].rc)
            fail_msg("%s: %s", cases[i].spec, llmux_request_errmsg(r));
        if (cases[i].in_msg) {
            const char *m = llmux_request_errmsg(r);
            if (!strstr(m, cases[i].in_msg) || !strstr(m, "timeout") ||
                !strstr(m, "llmux_request_set_field"))
                fail_msg("%s: %s", cases[i].spec, m);
        }
        llmux__prepared_free(&p);
        llmux_request_free(r);
    }
}

/* ---- every field of a request: set, duplicated, kept -------------------- */

/* Every key of OpenAI request JSON the import takes, one value each, and
 * one it does not ("logit_bias", for extra_json's "*"). */
static const char every_json[] =
    "{\"model\":\"gpt-4o-mini\","
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"max_tokens\":7,\"temperature\":0.5,\"top_p\":0.25,\"seed\":3,"
    "\"stream\":true,\"stop\":[\"END\"],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
    "\"parameters\":{\"type\":\"object\"}}}],"
    "\"tool_choice\":\"auto\","
    "\"response_format\":{\"type\":\"json_object\"},"
    "\"logit_bias\":{\"50256\":-100}}";

/* Fills every field of LLMUX__REQUEST_FIELDS through the public API, the
 * chat fields through the OpenAI JSON import. A field added to the list
 * and not set here fails test_fields_round_trip: add its setter here or
 * its JSON key to every_json, and dup and free follow from the list. */
static llmux_request *fill_every_field(void)
{
    const char *json = every_json;
    llmux_request *r;
    assert_int_equal(
        llmux_request_new_json(&r, "openai/gpt-4o-mini", json, strlen(json)),
        0);
    assert_int_equal(llmux_request_set_prompt(r, "p"), 0);
    assert_int_equal(llmux_request_set_suffix(r, "s"), 0);
    assert_int_equal(llmux_request_set_expected(r, "e"), 0);
    assert_int_equal(llmux_request_add_input(r, "in"), 0);
    assert_int_equal(llmux_request_add_header(r, "X-A: b"), 0);
    assert_int_equal(llmux_request_add_fallback(r, "mistral/m"), 0);
    assert_int_equal(llmux_request_set_timeout_ms(r, 1000), 0);
    assert_int_equal(llmux_request_set_connect_timeout_ms(r, 2000), 0);
    assert_int_equal(llmux_request_set_first_byte_timeout_ms(r, 3000), 0);
    assert_int_equal(llmux_request_set_idle_timeout_ms(r, 4000), 0);
    assert_int_equal(llmux_request_set_max_retries(r, 5), 0);
    assert_int_equal(llmux_request_set_budget(r, "scope", 5, 1000), 0);
    return r;
}

static void test_fields_round_trip(void **state)
{
    llmux_request *fresh, *a, *b;
    size_t i;
    (void)state;
    assert_int_equal(llmux_request_new(&fresh, LLMUX_OP_CHAT, "openai/x"), 0);
    a = fill_every_field();
    b = llmux_request_dup(a);
    assert_non_null(b);
    /* each field is set by the filler (differs from a new request's) and
     * kept by dup, owned strings copied rather than shared */
#define CHECK_SCALAR(type, name, json, to, pname)                              \
    if (memcmp(&a->name, &fresh->name, sizeof a->name) == 0)                   \
        fail_msg("field %s is not set by fill_every_field", #name);            \
    if (memcmp(&a->name, &b->name, sizeof a->name) != 0)                       \
        fail_msg("field %s is not kept by llmux_request_dup", #name);
#define CHECK_STR(name, json, to, pname)                                       \
    if (!a->name)                                                              \
        fail_msg("field %s is not set by fill_every_field", #name);            \
    if (!b->name || strcmp(a->name, b->name) != 0 || a->name == b->name)       \
        fail_msg("field %s is not copied by llmux_request_dup", #name);
#define CHECK_STRV(name, count, json, to, pname, pcount)                       \
    if (!a->count)                                                             \
        fail_msg("field %s is not set by fill_every_field", #name);            \
    if (b->count != a->count)                                                  \
        fail_msg("field %s is not copied by llmux_request_dup", #name);        \
    for (i = 0; i < a->count; i++)                                             \
        if (strcmp(a->name[i], b->name[i]) != 0 || a->name[i] == b->name[i])   \
            fail_msg("field %s[%zu] is not copied by llmux_request_dup",       \
                     #name, i);
    LLMUX__REQUEST_FIELDS(CHECK_SCALAR, CHECK_STR, CHECK_STRV)
#undef CHECK_SCALAR
#undef CHECK_STR
#undef CHECK_STRV
    /* and what the list does not hold */
    assert_int_equal(b->n_msgs, a->n_msgs);
    assert_string_equal(llmux_request_provider(b), "openai");
    llmux_request_free(b);
    llmux_request_free(a);
    llmux_request_free(fresh);
}

/* A field's `json` column against what the import of every_json did to
 * it (isset). */
static void check_json_key(const char *name, const char *key, int isset)
{
    char quoted[64];
    if (key && strcmp(key, "*") != 0) {
        snprintf(quoted, sizeof quoted, "\"%s\":", key);
        if (!strstr(every_json, quoted))
            fail_msg("every_json has no \"%s\"", key);
    }
    if (key && !isset)
        fail_msg("field %s is listed with key %s; the import leaves it", name,
                 key);
    if (!key && isset)
        fail_msg("field %s is set by the JSON import; list its key", name);
}

/*
 * The JSON import against the list's `json` column: the JSON holding
 * every listed key sets exactly the fields that name a key, so a field
 * the import fills without its key in the list, or a listed key the
 * import ignores, fails here by name.
 */
static void test_fields_json_import(void **state)
{
    llmux_request *fresh, *a;
    (void)state;
    assert_int_equal(llmux_request_new(&fresh, LLMUX_OP_CHAT, "openai/x"), 0);
    assert_int_equal(llmux_request_new_json(&a, "openai/gpt-4o-mini",
                                            every_json, strlen(every_json)),
                     0);
#define J_SCALAR(type, name, json, to, pname)                                  \
    check_json_key(#name, json,                                                \
                   memcmp(&a->name, &fresh->name, sizeof a->name) != 0);
#define J_STR(name, json, to, pname)                                           \
    check_json_key(#name, json, a->name != NULL);
#define J_STRV(name, count, json, to, pname, pcount)                           \
    check_json_key(#name, json, a->count != 0);
    LLMUX__REQUEST_FIELDS(J_SCALAR, J_STR, J_STRV)
#undef J_SCALAR
#undef J_STR
#undef J_STRV
    llmux_request_free(a);
    llmux_request_free(fresh);
}

/* What a plugin is handed: every field the list marks PLUGIN, as the
 * request holds it. */
static void test_fields_reach_plugins(void **state)
{
    llmux_request *a = fill_every_field();
    const llmux_params *pr;
    llmux__prepared p;
    (void)state;
    assert_int_equal(llmux_request_set_option(a, "api_key", "k"), 0);
    assert_int_equal(llmux__prepare(a, LLMUX_BUILD_PLUGIN_DIR, &p), 0);
    pr = &a->params;
#define P_SCALAR(type, name, json, to, pname)                                  \
    LLMUX__IF_##to(                                                            \
        if (memcmp(&pr->pname, &a->name, sizeof a->name) != 0)                 \
            fail_msg("params.%s differs from field %s", #pname, #name);)
#define P_STR(name, json, to, pname)                                           \
    LLMUX__IF_##to(if (pr->pname != a->name)                                   \
                       fail_msg("params.%s is not field %s", #pname, #name);)
#define P_STRV(name, count, json, to, pname, pcount)                           \
    LLMUX__IF_##to(if ((const void *)pr->pname != (const void *)a->name ||     \
                       pr->pcount != a->count)                                 \
                       fail_msg("params.%s is not field %s", #pname, #name);)
    LLMUX__REQUEST_FIELDS(P_SCALAR, P_STR, P_STRV)
#undef P_SCALAR
#undef P_STR
#undef P_STRV
    llmux__prepared_free(&p);
    llmux_request_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_table),
        cmocka_unit_test(test_setters),
        cmocka_unit_test(test_bad_spec),
        cmocka_unit_test(test_json_import),
        cmocka_unit_test(test_json_import_errors),
        cmocka_unit_test(test_json_model_untrusted),
        cmocka_unit_test(test_json_op_import),
        cmocka_unit_test(test_json_op_errors),
        cmocka_unit_test(test_api_key_env_names),
        cmocka_unit_test(test_builders_and_json),
        cmocka_unit_test(test_merge_and_chunks),
        cmocka_unit_test(test_embeddings_json_locale),
        cmocka_unit_test(test_output_utf8_and_numbers),
        cmocka_unit_test(test_parse_seconds),
        cmocka_unit_test(test_tokens_and_results),
        cmocka_unit_test(test_prepare_env_base_and_ops),
        cmocka_unit_test(test_api_key_hygiene),
        cmocka_unit_test(test_plugin_logs_reach_hook_masked),
        cmocka_unit_test(test_fields_round_trip),
        cmocka_unit_test(test_fields_json_import),
        cmocka_unit_test(test_fields_reach_plugins),
        cmocka_unit_test(test_settings_checked),
        cmocka_unit_test(test_set_field),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_settings_resolved),
        cmocka_unit_test(test_settings_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
