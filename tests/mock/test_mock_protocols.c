/*
 * test_mock_protocols.c: llmux-mock's Mistral, Ollama, Aleph Alpha and
 * Azure OpenAI protocols, end to end over HTTP. The mock runs on a libuv loop
 * in the test thread; each request is a blocking curl transfer on a worker
 * thread that wakes the loop through a uv_async when it ends, so the mock is
 * only ever touched from the loop's thread. Checks each protocol's paths, body
 * shapes, stream framings, usage placement, error bodies and faults, that
 * all protocols give the same normalized content, and that the routing
 * leaves OpenAI where it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <uv.h>

#include "llmux_mock.h"

/* ---- environment: loop + mock, curl on a worker thread ----------------- */

typedef struct env {
    uv_loop_t loop;
    uv_async_t wake;
    llmux_mock *mock;
    int port;
    int finished; /* transfers finished, counted on the loop thread */
    int closed;
} env;

typedef struct reply {
    CURLcode rc;
    long status;
    char ctype[128];
    char *body;
    size_t len;
} reply;

typedef struct job {
    CURL *easy;
    reply *r;
    env *e;
} job;

static void on_wake(uv_async_t *a)
{
    ((env *)a->data)->finished++;
}

static void env_start(env *e)
{
    llmux_mock_options o = LLMUX_MOCK_OPTIONS_INIT;

    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(uv_async_init(&e->loop, &e->wake, on_wake), 0);
    e->wake.data = e;
    o.quiet = 1;
    assert_int_equal(llmux_mock_start(&e->mock, &e->loop, &o), 0);
    e->port = llmux_mock_port(e->mock);
    assert_true(e->port > 0);
}

static void on_closed(void *ud)
{
    ((env *)ud)->closed = 1;
}

static void env_stop(env *e)
{
    llmux_mock_close(e->mock, on_closed, e);
    uv_close((uv_handle_t *)&e->wake, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(e->closed);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    reply *r = ud;
    char *d = realloc(r->body, r->len + size * n + 1);

    if (!d)
        return 0;
    memcpy(d + r->len, p, size * n);
    r->body = d;
    r->len += size * n;
    d[r->len] = '\0';
    return size * n;
}

static void worker(void *arg)
{
    job *j = arg;
    const char *ct = NULL;

    j->r->rc = curl_easy_perform(j->easy);
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->r->status);
    if (curl_easy_getinfo(j->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
        ct)
        snprintf(j->r->ctype, sizeof(j->r->ctype), "%s", ct);
    uv_async_send(&j->e->wake);
}

/*
 * One request: POST `json` (GET when NULL) to `path` with Bearer `key`
 * (none when NULL) and an optional extra header line; `timeout_ms` 0 means
 * 10 s. The loop runs the mock until the transfer ends.
 */
static void call_ex(env *e, reply *r, const char *path, const char *json,
                    const char *key, const char *header, long timeout_ms)
{
    struct curl_slist *hdrs = NULL;
    char url[512], auth[160];
    uv_thread_t t;
    job j;
    int before = e->finished;

    memset(r, 0, sizeof(*r));
    j.easy = curl_easy_init();
    j.r = r;
    j.e = e;
    assert_non_null(j.easy);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->port, path);
    curl_easy_setopt(j.easy, CURLOPT_URL, url);
    curl_easy_setopt(j.easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(j.easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(j.easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(j.easy, CURLOPT_TIMEOUT_MS,
                     timeout_ms > 0 ? timeout_ms : 10000L);
    if (json) {
        curl_easy_setopt(j.easy, CURLOPT_COPYPOSTFIELDS, json);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (header)
        hdrs = curl_slist_append(hdrs, header);
    curl_easy_setopt(j.easy, CURLOPT_HTTPHEADER, hdrs);
    assert_int_equal(uv_thread_create(&t, worker, &j), 0);
    while (e->finished == before)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_thread_join(&t);
    curl_easy_cleanup(j.easy);
    curl_slist_free_all(hdrs);
    if (!r->body)
        r->body = calloc(1, 1);
}

static void call(env *e, reply *r, const char *path, const char *json,
                 const char *key)
{
    call_ex(e, r, path, json, key, NULL, 0);
}

static void reply_free(reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* ---- JSON, SSE and NDJSON helpers -------------------------------------- */

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);

    if (!o)
        print_message("not JSON: %s\n", s);
    assert_non_null(o);
    return o;
}

/* Follows object keys and array indexes ("choices", "0", ...). */
static json_object *at(json_object *o, ...)
{
    va_list ap;
    const char *k;

    va_start(ap, o);
    while (o && (k = va_arg(ap, const char *))) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(k));
        else if (!json_object_object_get_ex(o, k, &o))
            o = NULL;
    }
    va_end(ap);
    return o;
}

#define AT(o, ...)  at((o), __VA_ARGS__, (const char *)NULL)
#define STR(o, ...) json_object_get_string(AT((o), __VA_ARGS__))
#define INT(o, ...) json_object_get_int(AT((o), __VA_ARGS__))
#define HAS(o, ...) (AT((o), __VA_ARGS__) != NULL)

/* True when object `o` has member `key` (even null). */
static int has_key(json_object *o, const char *key)
{
    json_object *v;

    return json_object_is_type(o, json_type_object) &&
           json_object_object_get_ex(o, key, &v);
}

/* The parts of a framed stream: SSE "data: X\n\n" events (sep "\n\n",
 * prefix "data: ") or NDJSON lines (sep "\n", no prefix). Fails the test
 * on anything else. NULL-terminated, malloc'd. */
static char **split(const char *body, const char *sep, const char *prefix,
                    size_t *count)
{
    char **ev = calloc(1, sizeof(*ev));
    size_t n = 0, pl = strlen(prefix), sl = strlen(sep);
    const char *p = body;

    while (*p) {
        const char *end = strstr(p, sep);
        assert_non_null(end);
        assert_int_equal(strncmp(p, prefix, pl), 0);
        ev = realloc(ev, (n + 2) * sizeof(*ev));
        ev[n++] = strndup(p + pl, (size_t)(end - p) - pl);
        p = end + sl;
    }
    ev[n] = NULL;
    *count = n;
    return ev;
}

static void parts_free(char **ev)
{
    size_t i;

    for (i = 0; ev[i]; i++)
        free(ev[i]);
    free(ev);
}

/* The compact JSON text of `o` (copied). */
static char *text_of(json_object *o)
{
    assert_non_null(o);
    return strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

#define KEY "sk-test"

/* ---- routing ----------------------------------------------------------- */

static void test_routing(void **state)
{
    env e;
    reply r;
    json_object *o;
    const llmux_mock_record *rec;

    (void)state;
    env_start(&e);
    /* OpenAI keeps every other path. */
    call(&e, &r, "/v1/chat/completions",
         "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi there\"}]}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "id"), "chatcmpl-mock-1");
    assert_string_equal(STR(o, "system_fingerprint"), "fp_mock");
    assert_true(has_key(AT(o, "choices", "0", "message"), "refusal"));
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply to: hi there");
    json_object_put(o);
    reply_free(&r);

    /* A prefix must be a whole path segment. */
    call(&e, &r, "/mistralx/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"x\"}],\"seed\":1}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "chat.completion");
    assert_non_null(STR(o, "system_fingerprint"));
    json_object_put(o);
    reply_free(&r);

    /* Mistral needs its /v1: the bare path is a 404 in its shape. */
    call(&e, &r, "/mistral/chat/completions", "{\"model\":\"m\"}", KEY);
    assert_int_equal(r.status, 404);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "error");
    assert_non_null(strstr(STR(o, "message"), "/mistral/chat/completions"));
    json_object_put(o);
    reply_free(&r);

    /* Ollama's 404 is {"error":"..."}; Aleph Alpha's has a code. */
    call(&e, &r, "/ollama/v1/chat/completions", "{\"model\":\"m\"}", NULL);
    assert_int_equal(r.status, 404);
    o = parse(r.body);
    assert_true(json_object_is_type(AT(o, "error"), json_type_string));
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/nothing", "{\"model\":\"m\"}", KEY);
    assert_int_equal(r.status, 404);
    o = parse(r.body);
    assert_string_equal(STR(o, "code"), "NOT_FOUND");
    json_object_put(o);
    reply_free(&r);

    /* ?nice=true is accepted and recorded; /aleph/v1/... works too. */
    call(&e, &r, "/aleph/complete?nice=true",
         "{\"model\":\"luminous-base\",\"prompt\":\"Hello\"}", KEY);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    rec = llmux_mock_request(e.mock, llmux_mock_request_count(e.mock) - 1);
    assert_string_equal(rec->path, "/aleph/complete?nice=true");
    call(&e, &r, "/aleph/v1/complete",
         "{\"model\":\"luminous-base\",\"prompt\":\"Hello\"}", KEY);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    env_stop(&e);
}

/* ---- Mistral ----------------------------------------------------------- */

#define MIS_CHAT "/mistral/v1/chat/completions"
#define MIS_BODY                                                               \
    "{\"model\":\"mistral-small-latest\",\"messages\":[{\"role\":"             \
    "\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":"     \
    "\"hello mock world\"}]"

static void test_mistral_chat(void **state)
{
    env e;
    reply r;
    json_object *o, *msg;
    const char *id;
    size_t i;

    (void)state;
    env_start(&e);
    call(&e, &r, MIS_CHAT, MIS_BODY ",\"random_seed\":7,\"safe_prompt\":false}",
         KEY);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    o = parse(r.body);
    id = STR(o, "id");
    assert_int_equal(strlen(id), 32);
    for (i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    assert_false(has_key(o, "system_fingerprint"));
    assert_string_equal(STR(o, "object"), "chat.completion");
    assert_string_equal(STR(o, "model"), "mistral-small-latest");
    msg = AT(o, "choices", "0", "message");
    assert_string_equal(STR(msg, "content"), "Mock reply to: hello mock world");
    assert_true(has_key(msg, "tool_calls"));
    assert_null(AT(msg, "tool_calls"));
    assert_false(has_key(msg, "refusal"));
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "stop");
    assert_int_equal(INT(o, "usage", "prompt_tokens"), 5);
    assert_int_equal(INT(o, "usage", "completion_tokens"), 6);
    assert_int_equal(INT(o, "usage", "total_tokens"), 11);
    json_object_put(o);
    reply_free(&r);

    /* max_tokens truncates; JSON mode wraps the reply. */
    call(&e, &r, MIS_CHAT,
         MIS_BODY ",\"max_tokens\":2,\"response_format\":{\"type\":"
                  "\"json_object\"}}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    msg = parse(STR(o, "choices", "0", "message", "content"));
    assert_string_equal(STR(msg, "reply"), "Mock reply");
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "length");
    assert_int_equal(INT(o, "usage", "completion_tokens"), 2);
    json_object_put(msg);
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

static void test_mistral_stream(void **state)
{
    env e;
    reply r;
    char **ev, text[256] = "";
    size_t n, i;
    json_object *o;

    (void)state;
    env_start(&e);
    call(&e, &r, MIS_CHAT, MIS_BODY ",\"stream\":true}", KEY);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/event-stream");
    ev = split(r.body, "\n\n", "data: ", &n);
    /* role chunk + 6 words, then [DONE]; no separate usage chunk */
    assert_int_equal(n, 8);
    assert_string_equal(ev[n - 1], "[DONE]");
    for (i = 0; i + 1 < n; i++) {
        int last = i + 2 == n;
        o = parse(ev[i]);
        assert_string_equal(STR(o, "object"), "chat.completion.chunk");
        assert_int_equal(json_object_array_length(AT(o, "choices")), 1);
        strcat(text, STR(o, "choices", "0", "delta", "content"));
        if (i == 0)
            assert_string_equal(STR(o, "choices", "0", "delta", "role"),
                                "assistant");
        else
            assert_non_null(STR(o, "p")); /* padding */
        /* the last piece carries finish_reason and usage */
        assert_int_equal(HAS(o, "usage"), last);
        if (last) {
            assert_string_equal(STR(o, "choices", "0", "finish_reason"),
                                "stop");
            assert_string_equal(STR(o, "choices", "0", "delta", "content"),
                                " world");
            assert_int_equal(INT(o, "usage", "prompt_tokens"), 5);
            assert_int_equal(INT(o, "usage", "completion_tokens"), 6);
        } else {
            assert_null(AT(o, "choices", "0", "finish_reason"));
        }
        json_object_put(o);
    }
    assert_string_equal(text, "Mock reply to: hello mock world");
    parts_free(ev);
    reply_free(&r);
    env_stop(&e);
}

static void test_mistral_tools(void **state)
{
    env e;
    reply r;
    char **ev;
    size_t n;
    json_object *o, *tc;
    static const char body[] =
        "{\"model\":\"mistral-small-latest\",\"tool_choice\":\"any\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"parameters\":{}}}],\"messages\":[{\"role\":"
        "\"user\",\"content\":\"weather in Paris\"}]%s}";
    char buf[512];

    (void)state;
    env_start(&e);
    snprintf(buf, sizeof(buf), body, "");
    call(&e, &r, MIS_CHAT, buf, KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "tool_calls");
    assert_string_equal(STR(o, "choices", "0", "message", "content"), "");
    tc = AT(o, "choices", "0", "message", "tool_calls", "0");
    assert_string_equal(STR(tc, "id"), "call_mock_0001");
    assert_false(has_key(tc, "type"));
    assert_false(has_key(tc, "index"));
    assert_string_equal(STR(tc, "function", "name"), "get_weather");
    assert_string_equal(STR(tc, "function", "arguments"),
                        "{\"input\":\"weather in Paris\"}");
    json_object_put(o);
    reply_free(&r);

    /* Streamed: the whole call in the finishing chunk, with usage. */
    snprintf(buf, sizeof(buf), body, ",\"stream\":true");
    call(&e, &r, MIS_CHAT, buf, KEY);
    ev = split(r.body, "\n\n", "data: ", &n);
    assert_int_equal(n, 3);
    o = parse(ev[1]);
    tc = AT(o, "choices", "0", "delta", "tool_calls", "0");
    assert_non_null(tc);
    assert_false(has_key(tc, "index"));
    assert_false(has_key(tc, "type"));
    assert_string_equal(STR(tc, "id"), "call_mock_0001");
    assert_string_equal(STR(tc, "function", "arguments"),
                        "{\"input\":\"weather in Paris\"}");
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "tool_calls");
    assert_int_equal(INT(o, "usage", "completion_tokens"), 3);
    json_object_put(o);
    assert_string_equal(ev[2], "[DONE]");
    parts_free(ev);
    reply_free(&r);

    /* tool_choice none: a plain reply. */
    call(&e, &r, MIS_CHAT,
         "{\"model\":\"m\",\"tool_choice\":\"none\",\"tools\":[{\"type\":"
         "\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{"
         "\"role\":\"user\",\"content\":\"q\"}]}",
         KEY);
    o = parse(r.body);
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply to: q");
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

/* Strict validation: never-send fields, unknown fields, message order. */
static void test_mistral_rejects(void **state)
{
    static const char *const fields[][2] = {
        {"max_completion_tokens", "5"},
        {"seed", "1"},
        {"stream_options", "{\"include_usage\":true}"},
        {"store", "true"},
        {"user", "\"u1\""},
        {"frobnicate", "null"},
    };
    env e;
    reply r;
    json_object *o, *d;
    char buf[512];
    size_t i;

    (void)state;
    env_start(&e);
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        snprintf(buf, sizeof(buf), MIS_BODY ",\"%s\":%s}", fields[i][0],
                 fields[i][1]);
        call(&e, &r, MIS_CHAT, buf, KEY);
        assert_int_equal(r.status, 422);
        o = parse(r.body);
        assert_string_equal(STR(o, "object"), "error");
        assert_string_equal(STR(o, "type"), "invalid_request_error");
        d = AT(o, "message", "detail");
        assert_int_equal(json_object_array_length(d), 1);
        assert_string_equal(STR(d, "0", "type"), "extra_forbidden");
        assert_string_equal(STR(d, "0", "loc", "0"), "body");
        assert_string_equal(STR(d, "0", "loc", "1"), fields[i][0]);
        assert_string_equal(STR(d, "0", "msg"),
                            "Extra inputs are not permitted");
        json_object_put(o);
        reply_free(&r);
    }
    /* Every offending field is listed; FIM and embeddings check too. */
    call(&e, &r, MIS_CHAT, MIS_BODY ",\"seed\":1,\"user\":\"u\"}", KEY);
    o = parse(r.body);
    assert_int_equal(json_object_array_length(AT(o, "message", "detail")), 2);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/mistral/v1/fim/completions",
         "{\"model\":\"codestral-latest\",\"prompt\":\"x\","
         "\"max_completion_tokens\":3}",
         KEY);
    assert_int_equal(r.status, 422);
    reply_free(&r);
    call(&e, &r, "/mistral/v1/embeddings",
         "{\"model\":\"mistral-embed\",\"input\":\"x\",\"dimensions\":8}", KEY);
    assert_int_equal(r.status, 422);
    reply_free(&r);

    /* A tool message directly followed by a user message. */
    call(&e, &r, MIS_CHAT,
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"q\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{"
         "\"id\":\"call_mock_0001\",\"function\":{\"name\":\"f\","
         "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
         "\"call_mock_0001\",\"content\":\"42\"},{\"role\":\"user\","
         "\"content\":\"and now?\"}]}",
         KEY);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_string_equal(STR(o, "message"),
                        "Unexpected role 'user' after role 'tool'");
    assert_string_equal(STR(o, "type"), "invalid_request_message_order");
    assert_string_equal(STR(o, "code"), "3230");
    json_object_put(o);
    reply_free(&r);
    /* ... which an assistant turn in between makes valid. */
    call(&e, &r, MIS_CHAT,
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"q\"},{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":"
         "\"42\"},{\"role\":\"assistant\",\"content\":\"OK\"},{\"role\":"
         "\"user\",\"content\":\"and now?\"}]}",
         KEY);
    assert_int_equal(r.status, 200);
    reply_free(&r);

    /* No model: 422 missing; unknown model: 400 invalid_model. */
    call(&e, &r, MIS_CHAT, "{\"messages\":[]}", KEY);
    assert_int_equal(r.status, 422);
    o = parse(r.body);
    assert_string_equal(STR(o, "message", "detail", "0", "type"), "missing");
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, MIS_CHAT,
         "{\"model\":\"missing\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}",
         KEY);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_string_equal(STR(o, "type"), "invalid_model");
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

static void test_mistral_fim_embed_models(void **state)
{
    env e;
    reply r;
    char **ev, text[256] = "";
    size_t n, i;
    json_object *o;

    (void)state;
    env_start(&e);
    call(&e, &r, "/mistral/v1/fim/completions",
         "{\"model\":\"codestral-latest\",\"prompt\":\"def fib(n):\","
         "\"suffix\":\"return x\"}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "chat.completion");
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock completion of: def fib(n):");
    assert_int_equal(INT(o, "usage", "prompt_tokens"), 2);
    assert_int_equal(INT(o, "usage", "completion_tokens"), 5);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/mistral/v1/fim/completions",
         "{\"model\":\"codestral-latest\",\"prompt\":\"def fib(n):\","
         "\"stream\":true,\"max_tokens\":3}",
         KEY);
    ev = split(r.body, "\n\n", "data: ", &n);
    assert_string_equal(ev[n - 1], "[DONE]");
    for (i = 0; i + 1 < n; i++) {
        o = parse(ev[i]);
        strcat(text, STR(o, "choices", "0", "delta", "content"));
        if (i + 2 == n)
            assert_string_equal(STR(o, "choices", "0", "finish_reason"),
                                "length");
        json_object_put(o);
    }
    assert_string_equal(text, "Mock completion of:");
    parts_free(ev);
    reply_free(&r);
    call(&e, &r, "/mistral/v1/fim/completions",
         "{\"model\":\"codestral-latest\"}", KEY);
    assert_int_equal(r.status, 422);
    reply_free(&r);

    call(&e, &r, "/mistral/v1/embeddings",
         "{\"model\":\"mistral-embed\",\"input\":[\"a b\",\"c\"]}", KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_int_equal(strlen(STR(o, "id")), 32);
    assert_string_equal(STR(o, "object"), "list");
    assert_int_equal(json_object_array_length(AT(o, "data")), 2);
    assert_int_equal(json_object_array_length(AT(o, "data", "1", "embedding")),
                     8);
    assert_int_equal(INT(o, "usage", "prompt_tokens"), 3);
    json_object_put(o);
    reply_free(&r);

    call(&e, &r, "/mistral/v1/models", NULL, KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "list");
    assert_string_equal(STR(o, "data", "0", "object"), "model");
    assert_string_equal(STR(o, "data", "0", "id"), "mistral-small-latest");
    assert_string_equal(STR(o, "data", "0", "owned_by"), "mistralai");
    assert_true(json_object_get_boolean(
        AT(o, "data", "0", "capabilities", "completion_chat")));
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

static void test_mistral_errors(void **state)
{
    env e;
    reply r;
    json_object *o;
    char **ev;
    size_t n;

    (void)state;
    env_start(&e);
    call(&e, &r, "/mistral/v1/models", NULL, NULL);
    assert_int_equal(r.status, 401);
    o = parse(r.body);
    assert_string_equal(STR(o, "message"), "Unauthorized");
    assert_non_null(STR(o, "request_id"));
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/mistral/v1/models", NULL, "bad-key");
    assert_int_equal(r.status, 401);
    assert_string_equal(r.body, "{\"detail\":\"Invalid API Key\"}");
    reply_free(&r);

    call_ex(&e, &r, "/mistral/v1/models", NULL, KEY, "X-Mock-Fault: status=429",
            0);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.body,
                        "{\"message\":\"Requests rate limit exceeded\"}");
    reply_free(&r);

    call(&e, &r, MIS_CHAT,
         "{\"model\":\"mistral-small-latest#status=500\",\"messages\":[]}",
         KEY);
    assert_int_equal(r.status, 500);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "error");
    assert_string_equal(STR(o, "type"), "internal_error");
    assert_non_null(STR(o, "message"));
    assert_true(has_key(o, "param") && has_key(o, "code"));
    json_object_put(o);
    reply_free(&r);

    call(&e, &r, MIS_CHAT,
         "{\"model\":\"m#status=400;code=unknown_model;message=no such "
         "model\",\"messages\":[]}",
         KEY);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_string_equal(STR(o, "message"), "no such model");
    assert_string_equal(STR(o, "code"), "unknown_model");
    json_object_put(o);
    reply_free(&r);

    /* Mid-stream error: two chunks, then an error event, no [DONE]. */
    call(&e, &r, MIS_CHAT,
         "{\"model\":\"m#stream_error_after=2;message=boom\",\"stream\":"
         "true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}]}",
         KEY);
    assert_int_equal(r.status, 200);
    ev = split(r.body, "\n\n", "data: ", &n);
    assert_int_equal(n, 3);
    o = parse(ev[2]);
    assert_string_equal(STR(o, "error", "message"), "boom");
    json_object_put(o);
    parts_free(ev);
    reply_free(&r);

    /* Garbage body: 400 in Mistral's shape. */
    call(&e, &r, MIS_CHAT, "{\"model\":", KEY);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "error");
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

/* ---- Ollama ------------------------------------------------------------ */

#define OLL_CHAT "/ollama/api/chat"
#define OLL_BODY                                                               \
    "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"system\","              \
    "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":"                \
    "\"hello mock world\"}]"

/* Checks an NDJSON stream of `field` pieces ("message" or "response"),
 * returns the final object and writes the assembled text. */
static json_object *ndjson_text(const reply *r, const char *field, char *text,
                                size_t *lines)
{
    char **ev;
    size_t n, i;
    json_object *o = NULL;

    assert_string_equal(r->ctype, "application/x-ndjson");
    ev = split(r->body, "\n", "", &n);
    assert_true(n >= 1);
    text[0] = '\0';
    for (i = 0; i < n; i++) {
        o = parse(ev[i]);
        assert_non_null(STR(o, "created_at"));
        assert_int_equal(json_object_get_boolean(AT(o, "done")), i + 1 == n);
        if (strcmp(field, "message") == 0) {
            assert_string_equal(STR(o, "message", "role"), "assistant");
            strcat(text, STR(o, "message", "content"));
        } else {
            strcat(text, STR(o, "response"));
        }
        if (i + 1 < n)
            json_object_put(o);
    }
    parts_free(ev);
    *lines = n;
    return o;
}

static void test_ollama_chat(void **state)
{
    env e;
    reply r;
    json_object *o;
    char text[256];
    size_t lines;

    (void)state;
    env_start(&e);
    /* No "stream": Ollama streams. No auth needed. */
    call(&e, &r, OLL_CHAT, OLL_BODY "}", NULL);
    assert_int_equal(r.status, 200);
    o = ndjson_text(&r, "message", text, &lines);
    assert_int_equal(lines, 7);
    assert_string_equal(text, "Mock reply to: hello mock world");
    assert_string_equal(STR(o, "done_reason"), "stop");
    assert_int_equal(INT(o, "prompt_eval_count"), 5);
    assert_int_equal(INT(o, "eval_count"), 6);
    assert_string_equal(STR(o, "model"), "llama3.2");
    json_object_put(o);
    reply_free(&r);

    /* "stream": false gives one object; a Bearer key is accepted. */
    call(&e, &r, OLL_CHAT,
         OLL_BODY ",\"stream\":false,\"options\":{\"num_predict\":2}}", KEY);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    o = parse(r.body);
    assert_string_equal(STR(o, "message", "content"), "Mock reply");
    assert_true(json_object_get_boolean(AT(o, "done")));
    assert_string_equal(STR(o, "done_reason"), "length");
    assert_int_equal(INT(o, "eval_count"), 2);
    assert_int_equal(INT(o, "prompt_eval_count"), 5);
    json_object_put(o);
    reply_free(&r);

    /* format: JSON reply. */
    call(&e, &r, OLL_CHAT, OLL_BODY ",\"stream\":false,\"format\":\"json\"}",
         NULL);
    o = parse(r.body);
    {
        json_object *inner = parse(STR(o, "message", "content"));
        assert_string_equal(STR(inner, "reply"),
                            "Mock reply to: hello mock world");
        json_object_put(inner);
    }
    json_object_put(o);
    reply_free(&r);

    /* No messages: the model is only loaded (or unloaded). */
    call(&e, &r, OLL_CHAT, "{\"model\":\"llama3.2\"}", NULL);
    o = parse(r.body);
    assert_string_equal(STR(o, "done_reason"), "load");
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"llama3.2\",\"messages\":[],\"keep_alive\":0}", NULL);
    o = parse(r.body);
    assert_string_equal(STR(o, "done_reason"), "unload");
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

static void test_ollama_tools(void **state)
{
    env e;
    reply r;
    json_object *o, *tc;
    char **ev;
    size_t n;
    static const char body[] =
        "{\"model\":\"llama3.2\",\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"parameters\":{}}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"weather in "
        "Paris\"}]%s}";
    char buf[512];

    (void)state;
    env_start(&e);
    snprintf(buf, sizeof(buf), body, ",\"stream\":false");
    call(&e, &r, OLL_CHAT, buf, NULL);
    o = parse(r.body);
    tc = AT(o, "message", "tool_calls", "0");
    assert_non_null(tc);
    assert_false(has_key(tc, "id"));
    assert_int_equal(INT(tc, "function", "index"), 0);
    assert_string_equal(STR(tc, "function", "name"), "get_weather");
    /* arguments: a JSON object */
    assert_true(
        json_object_is_type(AT(tc, "function", "arguments"), json_type_object));
    assert_string_equal(STR(tc, "function", "arguments", "input"),
                        "weather in Paris");
    assert_string_equal(STR(o, "done_reason"), "stop");
    assert_int_equal(INT(o, "eval_count"), 3);
    json_object_put(o);
    reply_free(&r);

    snprintf(buf, sizeof(buf), body, "");
    call(&e, &r, OLL_CHAT, buf, NULL);
    ev = split(r.body, "\n", "", &n);
    assert_int_equal(n, 2);
    o = parse(ev[0]);
    assert_false(json_object_get_boolean(AT(o, "done")));
    assert_string_equal(
        STR(o, "message", "tool_calls", "0", "function", "arguments", "input"),
        "weather in Paris");
    assert_int_equal(INT(o, "message", "tool_calls", "0", "function", "index"),
                     0);
    json_object_put(o);
    o = parse(ev[1]);
    assert_true(json_object_get_boolean(AT(o, "done")));
    json_object_put(o);
    parts_free(ev);
    reply_free(&r);

    /* A tool result answered in the next turn. */
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"llama3.2\",\"stream\":false,\"messages\":[{\"role\":"
         "\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":"
         "\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":"
         "{\"input\":\"q\"}}}]},{\"role\":\"tool\",\"tool_name\":\"f\","
         "\"content\":\"22 degrees\"}]}",
         NULL);
    o = parse(r.body);
    assert_string_equal(STR(o, "message", "content"),
                        "Mock reply to: tool result 22 degrees");
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

static void test_ollama_generate_embed_tags(void **state)
{
    env e;
    reply r;
    json_object *o;
    char text[256];
    size_t lines;

    (void)state;
    env_start(&e);
    call(&e, &r, "/ollama/api/generate",
         "{\"model\":\"llama3.2\",\"prompt\":\"def fib(n):\"}", NULL);
    o = ndjson_text(&r, "response", text, &lines);
    assert_string_equal(text, "Mock completion of: def fib(n):");
    assert_int_equal(lines, 6);
    assert_int_equal(INT(o, "eval_count"), 5);
    assert_int_equal(INT(o, "prompt_eval_count"), 2);
    assert_int_equal(json_object_array_length(AT(o, "context")), 2);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/ollama/api/generate",
         "{\"model\":\"llama3.2\",\"prompt\":\"def fib(n):\",\"stream\":"
         "false,\"suffix\":\"x\",\"options\":{\"num_predict\":1}}",
         NULL);
    o = parse(r.body);
    assert_string_equal(STR(o, "response"), "Mock");
    assert_string_equal(STR(o, "done_reason"), "length");
    json_object_put(o);
    reply_free(&r);

    call(&e, &r, "/ollama/api/embed",
         "{\"model\":\"all-minilm\",\"input\":[\"a b\",\"c\"]}", NULL);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_int_equal(json_object_array_length(AT(o, "embeddings")), 2);
    assert_int_equal(json_object_array_length(AT(o, "embeddings", "0")), 8);
    assert_int_equal(INT(o, "prompt_eval_count"), 3);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/ollama/api/embed",
         "{\"model\":\"all-minilm\",\"input\":\"one\"}", NULL);
    o = parse(r.body);
    assert_int_equal(json_object_array_length(AT(o, "embeddings")), 1);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/ollama/api/embed", "{\"model\":\"all-minilm\",\"input\":7}",
         NULL);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    call(&e, &r, "/ollama/api/tags", NULL, NULL);
    o = parse(r.body);
    assert_string_equal(STR(o, "models", "0", "name"), "llama3.2:latest");
    assert_string_equal(STR(o, "models", "0", "model"), "llama3.2:latest");
    assert_string_equal(STR(o, "models", "0", "details", "format"), "gguf");
    assert_int_equal(strlen(STR(o, "models", "0", "digest")), 64);
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

static void test_ollama_errors(void **state)
{
    env e;
    reply r;
    json_object *o;
    char **ev;
    size_t n;

    (void)state;
    env_start(&e);
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"missing\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}",
         NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\":\"model \\\"missing\\\" not found, "
                                "try pulling it first\"}");
    reply_free(&r);

    /* Directives after '#' in a model name with ':'. */
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"llama3:8b#status=503\",\"messages\":[]}", NULL);
    assert_int_equal(r.status, 503);
    o = parse(r.body);
    assert_non_null(strstr(STR(o, "error"), "server busy"));
    assert_int_equal(json_object_object_length(o), 1);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"llama3:8b#status=500;message=oops\",\"messages\":[]}",
         NULL);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "{\"error\":\"oops\"}");
    reply_free(&r);

    /* Mid-stream: an {"error"} line after two lines, then the end. */
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"llama3:8b#stream_error_after=2\",\"messages\":[{"
         "\"role\":\"user\",\"content\":\"a b c\"}]}",
         NULL);
    assert_int_equal(r.status, 200);
    ev = split(r.body, "\n", "", &n);
    assert_int_equal(n, 3);
    o = parse(ev[2]);
    assert_non_null(STR(o, "error"));
    json_object_put(o);
    parts_free(ev);
    reply_free(&r);

    /* cut_after: the stream stops short, without the done line. */
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"llama3:8b#cut_after=1\",\"messages\":[{\"role\":"
         "\"user\",\"content\":\"a b c\"}]}",
         NULL);
    assert_int_not_equal(r.rc, CURLE_OK);
    assert_null(strstr(r.body, "\"done\":true"));
    reply_free(&r);

    /* Bad "stream" type, garbage body, hosted-Ollama bad key. */
    call(&e, &r, OLL_CHAT,
         "{\"model\":\"llama3.2\",\"stream\":\"no\",\"messages\":[]}", NULL);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    call(&e, &r, OLL_CHAT, "not json at all", NULL);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_non_null(STR(o, "error"));
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/ollama/api/tags", NULL, "bad-key");
    assert_int_equal(r.status, 401);
    assert_string_equal(r.body, "{\"error\":\"unauthorized\"}");
    reply_free(&r);
    env_stop(&e);
}

/* ---- Aleph Alpha ------------------------------------------------------- */

#define AA_MODEL "llama-3.1-8b-instruct"

static void test_aleph_complete(void **state)
{
    env e;
    reply r;
    json_object *o;
    char **ev, text[256] = "";
    size_t n, i;

    (void)state;
    env_start(&e);
    call(&e, &r, "/aleph/complete",
         "{\"model\":\"" AA_MODEL "\",\"prompt\":\"def fib(n):\","
         "\"maximum_tokens\":null,\"stop_sequences\":[\"\\n\"],"
         "\"hosting\":null}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "completions", "0", "completion"),
                        "Mock completion of: def fib(n):");
    assert_string_equal(STR(o, "completions", "0", "finish_reason"),
                        "end_of_text");
    assert_int_equal(INT(o, "completions", "0", "index"), 0);
    assert_string_equal(STR(o, "model_version"), "2022-04");
    assert_int_equal(INT(o, "num_tokens_prompt_total"), 2);
    assert_int_equal(INT(o, "num_tokens_generated"), 5);
    json_object_put(o);
    reply_free(&r);

    /* A multimodal prompt and maximum_tokens. */
    call(&e, &r, "/aleph/complete",
         "{\"model\":\"" AA_MODEL "\",\"prompt\":[{\"type\":\"text\","
         "\"data\":\"Hello\"},{\"type\":\"token_ids\",\"data\":[1,2]},"
         "{\"type\":\"text\",\"data\":\" there\"}],\"maximum_tokens\":2}",
         KEY);
    o = parse(r.body);
    assert_string_equal(STR(o, "completions", "0", "completion"),
                        "Mock completion");
    assert_string_equal(STR(o, "completions", "0", "finish_reason"),
                        "maximum_tokens");
    assert_int_equal(INT(o, "num_tokens_prompt_total"), 2);
    json_object_put(o);
    reply_free(&r);

    /* Streaming: typed events, no [DONE]. */
    call(&e, &r, "/aleph/complete",
         "{\"model\":\"" AA_MODEL "\",\"prompt\":\"def fib(n):\","
         "\"stream\":true}",
         KEY);
    assert_string_equal(r.ctype, "text/event-stream");
    ev = split(r.body, "\n\n", "data: ", &n);
    assert_int_equal(n, 7);
    for (i = 0; i < n; i++) {
        o = parse(ev[i]);
        if (i < 5) {
            assert_string_equal(STR(o, "type"), "stream_chunk");
            assert_int_equal(INT(o, "index"), 0);
            strcat(text, STR(o, "completion"));
        } else if (i == 5) {
            assert_string_equal(STR(o, "type"), "stream_summary");
            assert_string_equal(STR(o, "finish_reason"), "end_of_text");
            assert_string_equal(STR(o, "model_version"), "2022-04");
        } else {
            assert_string_equal(STR(o, "type"), "completion_summary");
            assert_int_equal(INT(o, "num_tokens_prompt_total"), 2);
            assert_int_equal(INT(o, "num_tokens_generated"), 5);
        }
        json_object_put(o);
    }
    assert_string_equal(text, "Mock completion of: def fib(n):");
    assert_null(strstr(r.body, "[DONE]"));
    parts_free(ev);
    reply_free(&r);

    call(&e, &r, "/aleph/complete",
         "{\"model\":\"" AA_MODEL "\",\"prompt\":[{\"type\":\"video\"}]}", KEY);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    env_stop(&e);
}

static void test_aleph_chat(void **state)
{
    env e;
    reply r;
    json_object *o;
    char **ev, text[256] = "";
    size_t n, i;

    (void)state;
    env_start(&e);
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"hello mock world\"}],\"max_tokens\":3}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply to:");
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "length");
    assert_string_equal(STR(o, "system_fingerprint"), ".unknown.");
    assert_int_equal(strlen(STR(o, "id")), 36);
    json_object_put(o);
    reply_free(&r);

    /* The Python client's maximum_tokens works too. */
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"hello mock world\"}],\"maximum_tokens\":1}",
         KEY);
    o = parse(r.body);
    assert_string_equal(STR(o, "choices", "0", "message", "content"), "Mock");
    json_object_put(o);
    reply_free(&r);

    /* Stream with include_usage: usage chunk with no choices, [DONE]. */
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "\",\"stream\":true,\"stream_options\":{"
         "\"include_usage\":true},\"messages\":[{\"role\":\"user\","
         "\"content\":\"hello mock world\"}]}",
         KEY);
    ev = split(r.body, "\n\n", "data: ", &n);
    assert_string_equal(ev[n - 1], "[DONE]");
    o = parse(ev[n - 2]);
    assert_int_equal(json_object_array_length(AT(o, "choices")), 0);
    assert_int_equal(INT(o, "usage", "completion_tokens"), 6);
    json_object_put(o);
    for (i = 0; i + 2 < n; i++) {
        o = parse(ev[i]);
        assert_true(has_key(o, "usage"));
        assert_null(AT(o, "usage"));
        if (HAS(o, "choices", "0", "delta", "content"))
            strcat(text, STR(o, "choices", "0", "delta", "content"));
        json_object_put(o);
    }
    assert_string_equal(text, "Mock reply to: hello mock world");
    parts_free(ev);
    reply_free(&r);

    /* Rejections. */
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "\",\"parallel_tool_calls\":false,"
         "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
         KEY);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_non_null(strstr(STR(o, "error"), "parallel_tool_calls"));
    assert_non_null(STR(o, "code"));
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "\",\"response_format\":{\"type\":"
         "\"json_object\"},\"messages\":[{\"role\":\"user\",\"content\":"
         "\"q\"}]}",
         KEY);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "\",\"response_format\":{\"type\":"
         "\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":{}}},"
         "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    {
        json_object *inner =
            parse(STR(o, "choices", "0", "message", "content"));
        assert_string_equal(STR(inner, "reply"), "Mock reply to: q");
        json_object_put(inner);
    }
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"luminous-base\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}",
         KEY);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_string_equal(STR(o, "code"), "MISSING_CAPABILITY");
    json_object_put(o);
    reply_free(&r);

    /* Tools: OpenAI-style incremental deltas with index and type. */
    call(&e, &r, "/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "\",\"stream\":true,\"tools\":[{\"type\":"
         "\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{"
         "\"role\":\"user\",\"content\":\"q\"}]}",
         KEY);
    ev = split(r.body, "\n\n", "data: ", &n);
    o = parse(ev[0]);
    assert_string_equal(
        STR(o, "choices", "0", "delta", "tool_calls", "0", "type"), "function");
    assert_int_equal(
        INT(o, "choices", "0", "delta", "tool_calls", "0", "index"), 0);
    json_object_put(o);
    parts_free(ev);
    reply_free(&r);
    env_stop(&e);
}

static void test_aleph_embeddings(void **state)
{
    env e;
    reply r;
    json_object *o;

    (void)state;
    env_start(&e);
    call(&e, &r, "/aleph/semantic_embed",
         "{\"model\":\"luminous-base\",\"prompt\":\"a b\",\"representation\":"
         "\"symmetric\",\"compress_to_size\":128,\"normalize\":true}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "model_version"), "2022-04");
    assert_int_equal(json_object_array_length(AT(o, "embedding")), 8);
    assert_int_equal(INT(o, "num_tokens_prompt_total"), 2);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/semantic_embed",
         "{\"model\":\"luminous-base\",\"prompt\":\"a\",\"representation\":"
         "\"sideways\"}",
         KEY);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    call(&e, &r, "/aleph/batch_semantic_embed",
         "{\"model\":\"luminous-base\",\"prompts\":[\"a b\",[{\"type\":"
         "\"text\",\"data\":\"c\"}]],\"representation\":\"document\"}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_int_equal(json_object_array_length(AT(o, "embeddings")), 2);
    assert_int_equal(json_object_array_length(AT(o, "embeddings", "1")), 8);
    assert_int_equal(INT(o, "num_tokens_prompt_total"), 3);
    json_object_put(o);
    reply_free(&r);

    call(&e, &r, "/aleph/embed",
         "{\"model\":\"luminous-base\",\"prompt\":\"a\",\"layers\":[0,-1],"
         "\"pooling\":[\"mean\",\"max\"]}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_int_equal(
        json_object_array_length(AT(o, "embeddings", "layer_40", "max")), 8);
    assert_non_null(AT(o, "embeddings", "layer_0", "mean"));
    assert_true(has_key(o, "tokens"));
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/embed",
         "{\"model\":\"luminous-base\",\"prompt\":\"a\",\"layers\":[0],"
         "\"pooling\":[\"median\"]}",
         KEY);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    call(&e, &r, "/aleph/embeddings",
         "{\"model\":\"qwen3-embedding-0.6b\",\"input\":[\"a\",\"b c\"]}", KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "list");
    assert_int_equal(INT(o, "usage", "prompt_tokens"), 3);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/embeddings",
         "{\"model\":\"qwen3-embedding-0.6b\",\"input\":\"a\",\"user\":\"u\"}",
         KEY);
    assert_int_equal(r.status, 400);
    reply_free(&r);
    env_stop(&e);
}

static void test_aleph_tasks(void **state)
{
    env e;
    reply r;
    json_object *o;
    char body[256];
    long long id0, id1;

    (void)state;
    env_start(&e);
    call(&e, &r, "/aleph/tokenize",
         "{\"model\":\"luminous-base\",\"prompt\":\"Hello world\","
         "\"tokens\":true,\"token_ids\":true}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "tokens", "0"), "\xc4\xa0Hello");
    assert_string_equal(STR(o, "tokens", "1"), "\xc4\xa0world");
    id0 = json_object_get_int64(AT(o, "token_ids", "0"));
    id1 = json_object_get_int64(AT(o, "token_ids", "1"));
    assert_true(id0 >= 0 && id0 < 100000 && id1 >= 0 && id1 < 100000);
    assert_true(id0 != id1);
    json_object_put(o);
    reply_free(&r);
    /* Deterministic: the same word gets the same id. */
    call(&e, &r, "/aleph/tokenize",
         "{\"model\":\"luminous-base\",\"prompt\":\"world\","
         "\"tokens\":false,\"token_ids\":true}",
         KEY);
    o = parse(r.body);
    assert_int_equal(json_object_get_int64(AT(o, "token_ids", "0")), id1);
    assert_null(AT(o, "tokens"));
    json_object_put(o);
    reply_free(&r);

    snprintf(body, sizeof(body),
             "{\"model\":\"luminous-base\",\"token_ids\":[%lld,%lld]}", id0,
             id1);
    call(&e, &r, "/aleph/detokenize", body, KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    snprintf(body, sizeof(body), "tok%lld tok%lld", id0, id1);
    assert_string_equal(STR(o, "result"), body);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/detokenize",
         "{\"model\":\"luminous-base\",\"token_ids\":[\"x\"]}", KEY);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    call(&e, &r, "/aleph/evaluate?nice=true",
         "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
         "\"completion_expected\":\" world\"}",
         KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "model_version"), "2022-04");
    assert_true(json_object_get_double(AT(o, "result", "log_probability")) < 0);
    assert_true(json_object_get_double(AT(o, "result", "log_perplexity")) ==
                -json_object_get_double(AT(o, "result", "log_probability")));
    assert_false(json_object_get_boolean(AT(o, "result", "correct_greedy")));
    assert_int_equal(INT(o, "result", "token_count"), 1);
    assert_int_equal(INT(o, "result", "character_count"), 6);
    assert_string_equal(STR(o, "result", "completion"), "Mock");
    assert_int_equal(INT(o, "num_tokens_prompt_total"), 2);
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/evaluate",
         "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
         "\"completion_expected\":\"Mock\"}",
         KEY);
    o = parse(r.body);
    assert_true(json_object_get_boolean(AT(o, "result", "correct_greedy")));
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/evaluate",
         "{\"model\":\"luminous-base\",\"prompt\":\"Hello\","
         "\"completion_expected\":\"\"}",
         KEY);
    assert_int_equal(r.status, 400);
    reply_free(&r);

    call(&e, &r, "/aleph/models_available", NULL, KEY);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_true(json_object_is_type(o, json_type_array));
    assert_string_equal(STR(o, "0", "name"), "luminous-base");
    assert_string_equal(STR(o, "1", "name"), AA_MODEL);
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

static void test_aleph_errors(void **state)
{
    env e;
    reply r;
    json_object *o;
    char **ev;
    size_t n;

    (void)state;
    env_start(&e);
    call(&e, &r, "/aleph/models_available", NULL, NULL);
    assert_int_equal(r.status, 401);
    o = parse(r.body);
    assert_string_equal(STR(o, "code"), "UNAUTHENTICATED");
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/models_available", NULL, "bad-key");
    assert_int_equal(r.status, 401);
    reply_free(&r);

    call(&e, &r, "/aleph/complete",
         "{\"model\":\"" AA_MODEL "#status=503\",\"prompt\":\"x\"}", KEY);
    assert_int_equal(r.status, 503);
    o = parse(r.body);
    assert_string_equal(STR(o, "code"), "QUEUE_FULL");
    assert_non_null(STR(o, "error"));
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/complete",
         "{\"model\":\"" AA_MODEL "#status=400;code=MISSING_CAPABILITY\","
         "\"prompt\":\"x\"}",
         KEY);
    o = parse(r.body);
    assert_string_equal(STR(o, "code"), "MISSING_CAPABILITY");
    json_object_put(o);
    reply_free(&r);
    call(&e, &r, "/aleph/complete", "{\"model\":\"missing\",\"prompt\":\"x\"}",
         KEY);
    assert_int_equal(r.status, 404);
    o = parse(r.body);
    assert_string_equal(STR(o, "code"), "UNKNOWN_MODEL");
    json_object_put(o);
    reply_free(&r);

    /* Mid-stream error in /complete: the error shape as an event. */
    call(&e, &r, "/aleph/complete",
         "{\"model\":\"" AA_MODEL "#stream_error_after=1;message=gone\","
         "\"prompt\":\"x y\",\"stream\":true}",
         KEY);
    ev = split(r.body, "\n\n", "data: ", &n);
    assert_int_equal(n, 2);
    o = parse(ev[1]);
    assert_string_equal(STR(o, "error"), "gone");
    assert_non_null(STR(o, "code"));
    json_object_put(o);
    parts_free(ev);
    reply_free(&r);

    /* A truncated body is a 400 with a code. */
    call(&e, &r, "/aleph/complete", "{\"model\":\"x\",\"prompt\":\"ab", KEY);
    assert_int_equal(r.status, 400);
    o = parse(r.body);
    assert_non_null(STR(o, "code"));
    json_object_put(o);
    reply_free(&r);
    env_stop(&e);
}

/* ---- all protocols ----------------------------------------------------- */

/* The same text embeds to the same vector everywhere. */
/* ---- Azure OpenAI ------------------------------------------------------ */

#define AZ_KEY    "api-key: " KEY
#define AZ_DEP    "/openai/deployments/"
#define AZ_VER    "?api-version=2024-10-21"
#define AZ_CHAT   AZ_DEP "gpt-4o-prod/chat/completions" AZ_VER
#define AZ_NOBODY "{\"messages\":[{\"role\":\"user\",\"content\":\"hi az\"}]"
#define AZ_404                                                                 \
    "{\"error\":{\"code\":\"404\",\"message\":\"Resource not found\"}}"
#define AZ_401                                                                 \
    "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to "         \
    "invalid subscription key or wrong API endpoint. Make sure to provide a "  \
    "valid key for an active subscription and use a correct regional API "     \
    "endpoint for your resource.\"}}"

/* A chat answer's filter results: at the top and on each choice. */
static void assert_filtered(json_object *o)
{
    assert_int_equal(INT(o, "prompt_filter_results", "0", "prompt_index"), 0);
    assert_string_equal(STR(o, "prompt_filter_results", "0",
                            "content_filter_results", "hate", "severity"),
                        "safe");
    assert_false(json_object_get_boolean(AT(
        o, "choices", "0", "content_filter_results", "violence", "filtered")));
}

static void test_azure_paths(void **state)
{
    env e;
    reply r;
    json_object *o;
    const llmux_mock_record *rec;

    (void)state;
    env_start(&e);
    /* the deployments API: the deployment is the model, the body's is
     * ignored */
    call_ex(&e, &r, AZ_CHAT, AZ_NOBODY ",\"model\":\"other\"}", NULL, AZ_KEY,
            0);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "model"), "gpt-4o-prod");
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply to: hi az");
    assert_filtered(o);
    json_object_put(o);
    reply_free(&r);
    rec = llmux_mock_request(e.mock, llmux_mock_request_count(e.mock) - 1);
    assert_string_equal(rec->path, AZ_CHAT);
    /* a percent-encoded deployment is one segment, decoded */
    call_ex(&e, &r, AZ_DEP "a%2F..%3Fb/chat/completions" AZ_VER, AZ_NOBODY "}",
            NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "model"), "a/..?b");
    json_object_put(o);
    reply_free(&r);
    /* no api-version, an empty one, two segments, an unknown path: 404 */
    call_ex(&e, &r, AZ_DEP "gpt-4o-prod/chat/completions", AZ_NOBODY "}", NULL,
            AZ_KEY, 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, AZ_404);
    reply_free(&r);
    call_ex(&e, &r, AZ_DEP "d/chat/completions?api-version=", AZ_NOBODY "}",
            NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    call_ex(&e, &r, AZ_DEP "a/b/chat/completions" AZ_VER, AZ_NOBODY "}", NULL,
            AZ_KEY, 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    call_ex(&e, &r, "/openai/chat/completions" AZ_VER, AZ_NOBODY "}", NULL,
            AZ_KEY, 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, AZ_404);
    reply_free(&r);
    /* the v1 API: no api-version, the body names the deployment */
    call_ex(&e, &r, "/openai/v1/chat/completions",
            AZ_NOBODY ",\"model\":\"gpt-4o-prod\"}", NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "model"), "gpt-4o-prod");
    assert_filtered(o);
    json_object_put(o);
    reply_free(&r);
    /* models: /openai/models with a version, /openai/v1/models without */
    call_ex(&e, &r, "/openai/models" AZ_VER, NULL, NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "object"), "list");
    assert_non_null(STR(o, "data", "0", "id"));
    json_object_put(o);
    reply_free(&r);
    call_ex(&e, &r, "/openai/models", NULL, NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    call_ex(&e, &r, "/openai/v1/models", NULL, NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    env_stop(&e);
}

static void test_azure_auth(void **state)
{
    env e;
    reply r;

    (void)state;
    env_start(&e);
    /* api-key, or a bearer token as Entra ID sends it */
    call_ex(&e, &r, AZ_CHAT, AZ_NOBODY "}", NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    call(&e, &r, AZ_CHAT, AZ_NOBODY "}", KEY);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    /* none, or a wrong one either way: Azure's 401 */
    call(&e, &r, AZ_CHAT, AZ_NOBODY "}", NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.body, AZ_401);
    reply_free(&r);
    call_ex(&e, &r, AZ_CHAT, AZ_NOBODY "}", NULL, "api-key: bad-key", 0);
    assert_int_equal(r.status, 401);
    assert_string_equal(r.body, AZ_401);
    reply_free(&r);
    call(&e, &r, "/openai/v1/models", NULL, "bad-key");
    assert_int_equal(r.status, 401);
    reply_free(&r);
    /* a fault's status: the code is the status */
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=429"), 0);
    call_ex(&e, &r, AZ_CHAT, AZ_NOBODY "}", NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 429);
    {
        json_object *o = parse(r.body);
        assert_string_equal(STR(o, "error", "code"), "429");
        assert_non_null(strstr(STR(o, "error", "message"), "retry after"));
        json_object_put(o);
    }
    reply_free(&r);
    env_stop(&e);
}

/* The stream opens with the filter preamble, then OpenAI's chunks. */
static void test_azure_stream(void **state)
{
    env e;
    reply r, ro;
    json_object *o;
    char **ev, **evo;
    size_t n, no, i;

    (void)state;
    env_start(&e);
    call_ex(&e, &r, AZ_CHAT, AZ_NOBODY ",\"stream\":true}", NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/event-stream");
    ev = split(r.body, "\n\n", "data: ", &n);
    assert_true(n > 3);
    o = parse(ev[0]);
    assert_int_equal(json_object_array_length(AT(o, "choices")), 0);
    assert_int_equal(INT(o, "created"), 0);
    assert_string_equal(STR(o, "id"), "");
    assert_string_equal(STR(o, "model"), "");
    assert_true(has_key(o, "usage") && !AT(o, "usage"));
    assert_string_equal(STR(o, "prompt_filter_results", "0",
                            "content_filter_results", "sexual", "severity"),
                        "safe");
    json_object_put(o);
    o = parse(ev[1]);
    assert_string_equal(STR(o, "model"), "gpt-4o-prod");
    assert_string_equal(STR(o, "object"), "chat.completion.chunk");
    json_object_put(o);
    assert_string_equal(ev[n - 1], "[DONE]");
    /* after the preamble, the same events as OpenAI's (ids and model
     * aside) */
    call(&e, &ro, "/v1/chat/completions",
         AZ_NOBODY ",\"model\":\"gpt-4o-prod\",\"stream\":true}", KEY);
    evo = split(ro.body, "\n\n", "data: ", &no);
    assert_int_equal(no, n - 1);
    for (i = 0; i + 1 < no; i++) {
        json_object *a = parse(ev[i + 1]), *b = parse(evo[i]);
        assert_true(json_object_equal(AT(a, "choices"), AT(b, "choices")));
        json_object_put(a);
        json_object_put(b);
    }
    parts_free(evo);
    reply_free(&ro);
    parts_free(ev);
    reply_free(&r);
    env_stop(&e);
}

static void test_azure_completions(void **state)
{
    env e;
    reply r;
    json_object *o;

    (void)state;
    env_start(&e);
    call_ex(&e, &r, "/openai/v1/completions",
            "{\"model\":\"inst\",\"prompt\":\"say it\"}", NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "model"), "inst");
    assert_string_equal(STR(o, "choices", "0", "text"),
                        "Mock completion of: say it");
    json_object_put(o);
    reply_free(&r);
    call_ex(&e, &r, AZ_DEP "inst/completions", "{\"prompt\":\"x\"}", NULL,
            AZ_KEY, 0);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    env_stop(&e);
}

static void test_same_embeddings(void **state)
{
    env e;
    reply r;
    json_object *o;
    char *want, *got;

    (void)state;
    env_start(&e);
    call(&e, &r, "/v1/embeddings",
         "{\"model\":\"text-embedding-3-small\",\"input\":\"first text\"}",
         KEY);
    o = parse(r.body);
    want = text_of(AT(o, "data", "0", "embedding"));
    json_object_put(o);
    reply_free(&r);

    call(&e, &r, "/mistral/v1/embeddings",
         "{\"model\":\"mistral-embed\",\"input\":[\"first text\"]}", KEY);
    o = parse(r.body);
    got = text_of(AT(o, "data", "0", "embedding"));
    assert_string_equal(got, want);
    free(got);
    json_object_put(o);
    reply_free(&r);

    call(&e, &r, "/ollama/api/embed",
         "{\"model\":\"all-minilm\",\"input\":\"first text\"}", NULL);
    o = parse(r.body);
    got = text_of(AT(o, "embeddings", "0"));
    assert_string_equal(got, want);
    free(got);
    json_object_put(o);
    reply_free(&r);

    /* Azure: the deployment is the model */
    call_ex(&e, &r, AZ_DEP "emb/embeddings" AZ_VER,
            "{\"input\":[\"first text\"]}", NULL, AZ_KEY, 0);
    assert_int_equal(r.status, 200);
    o = parse(r.body);
    assert_string_equal(STR(o, "model"), "emb");
    got = text_of(AT(o, "data", "0", "embedding"));
    assert_string_equal(got, want);
    free(got);
    json_object_put(o);
    reply_free(&r);

    call(&e, &r, "/aleph/semantic_embed",
         "{\"model\":\"luminous-base\",\"prompt\":\"first text\"}", KEY);
    o = parse(r.body);
    got = text_of(AT(o, "embedding"));
    assert_string_equal(got, want);
    free(got);
    json_object_put(o);
    reply_free(&r);
    free(want);
    env_stop(&e);
}

/* huge=N, body=garbage/text, stall and delay work on every protocol. */
static void test_faults_everywhere(void **state)
{
    static const struct {
        const char *path, *body, *key;
    } calls[] = {
        {MIS_CHAT,
         "{\"model\":\"m#%s\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}",
         KEY},
        {OLL_CHAT,
         "{\"model\":\"llama3:8b#%s\",\"stream\":false,\"messages\":[{"
         "\"role\":\"user\",\"content\":\"q\"}]}",
         NULL},
        {"/ollama/api/generate",
         "{\"model\":\"llama3:8b#%s\",\"stream\":false,\"prompt\":\"q\"}",
         NULL},
        {"/aleph/chat/completions",
         "{\"model\":\"" AA_MODEL "#%s\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"q\"}]}",
         KEY},
        {"/aleph/complete", "{\"model\":\"" AA_MODEL "#%s\",\"prompt\":\"q\"}",
         KEY},
    };
    env e;
    reply r;
    json_object *o;
    char body[512];
    size_t i, k;

    (void)state;
    env_start(&e);
    for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        const char *text;
        snprintf(body, sizeof(body), calls[i].body, "huge=5000");
        call(&e, &r, calls[i].path, body, calls[i].key);
        assert_int_equal(r.status, 200);
        o = parse(r.body);
        if (i == 0 || i == 3)
            text = STR(o, "choices", "0", "message", "content");
        else if (i == 1)
            text = STR(o, "message", "content");
        else if (i == 2)
            text = STR(o, "response");
        else
            text = STR(o, "completions", "0", "completion");
        assert_non_null(text);
        assert_int_equal(strlen(text), 5000);
        for (k = 0; k < 5000; k++)
            assert_int_equal(text[k], 'x');
        json_object_put(o);
        reply_free(&r);

        snprintf(body, sizeof(body), calls[i].body, "body=garbage");
        call(&e, &r, calls[i].path, body, calls[i].key);
        assert_int_equal(r.status, 200);
        o = json_tokener_parse(r.body);
        assert_null(o);
        reply_free(&r);

        snprintf(body, sizeof(body), calls[i].body, "body=text;status=502");
        call(&e, &r, calls[i].path, body, calls[i].key);
        assert_int_equal(r.status, 502);
        assert_string_equal(r.ctype, "text/plain");
        reply_free(&r);

        snprintf(body, sizeof(body), calls[i].body, "stall_after=0");
        call_ex(&e, &r, calls[i].path, body, calls[i].key, NULL, 300);
        assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
        reply_free(&r);

        /* status < 400: the normal reply with that status */
        snprintf(body, sizeof(body), calls[i].body, "status=201");
        call(&e, &r, calls[i].path, body, calls[i].key);
        assert_int_equal(r.status, 201);
        o = parse(r.body);
        json_object_put(o);
        reply_free(&r);
    }
    /* The script applies to the next request of any protocol. */
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=429"), 0);
    call(&e, &r, "/ollama/api/tags", NULL, NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.body, "{\"error\":\"too many requests\"}");
    reply_free(&r);
    call(&e, &r, "/ollama/api/tags", NULL, NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_mistral_chat),
        cmocka_unit_test(test_mistral_stream),
        cmocka_unit_test(test_mistral_tools),
        cmocka_unit_test(test_mistral_rejects),
        cmocka_unit_test(test_mistral_fim_embed_models),
        cmocka_unit_test(test_mistral_errors),
        cmocka_unit_test(test_ollama_chat),
        cmocka_unit_test(test_ollama_tools),
        cmocka_unit_test(test_ollama_generate_embed_tags),
        cmocka_unit_test(test_ollama_errors),
        cmocka_unit_test(test_aleph_complete),
        cmocka_unit_test(test_aleph_chat),
        cmocka_unit_test(test_aleph_embeddings),
        cmocka_unit_test(test_aleph_tasks),
        cmocka_unit_test(test_aleph_errors),
        cmocka_unit_test(test_azure_paths),
        cmocka_unit_test(test_azure_auth),
        cmocka_unit_test(test_azure_stream),
        cmocka_unit_test(test_azure_completions),
        cmocka_unit_test(test_same_embeddings),
        cmocka_unit_test(test_faults_everywhere),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
