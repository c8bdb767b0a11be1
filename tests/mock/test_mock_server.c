/*
 * test_mock_server.c: end-to-end tests of the mock provider server
 * (tools/mock). The mock runs in-process on a libuv loop and plain libcurl
 * transfers are driven on that same loop through curl's multi_socket API
 * (one thread, no sleeps). Raw TCP clients cover what curl will not send:
 * malformed HTTP, pipelined requests and a client vanishing mid-stream.
 * Every test closes the mock, curl and its own handles and checks
 * uv_loop_close() == 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <uv.h>

#include "llmux_mock.h"

/* ---- test environment: loop + mock + curl multi ------------------------- */

typedef struct env {
    uv_loop_t loop;
    uv_timer_t curl_timer;
    uv_timer_t guard;
    CURLM *multi;
    llmux_mock *mock;
    char base[64]; /* http://127.0.0.1:PORT */
    int guard_fired;
    int mock_closed;
} env;

typedef struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    env *e;
} sock_ctx;

/* A growable byte string for the tests. */
typedef struct sbuf {
    char *data;
    size_t len;
} sbuf;

static void sbuf_add(sbuf *b, const void *p, size_t n)
{
    char *d = realloc(b->data, b->len + n + 1);

    assert_non_null(d);
    memcpy(d + b->len, p, n);
    b->data = d;
    b->len += n;
    d[b->len] = '\0';
}

typedef struct xfer {
    env *e;
    CURL *easy;
    struct curl_slist *hdrs;
    sbuf body;
    sbuf head;
    CURLcode result;
    long status;
    int done;
} xfer;

static void drain_messages(env *e)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(e->multi, &left))) {
        xfer *x = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        x->result = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &x->status);
        x->done = 1;
        curl_multi_remove_handle(e->multi, msg->easy_handle);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx *sc = h->data;
    env *e = sc->e;
    int flags = 0, running;

    /* An error (an RST) comes without events: curl reads what arrived
     * before it, then the error. */
    if (status < 0)
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(e->multi, sc->fd, flags, &running);
    drain_messages(e);
}

static void free_handle(uv_handle_t *h)
{
    free(h->data);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
    env *e = userp;
    sock_ctx *sc = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            uv_poll_stop(&sc->poll);
            curl_multi_assign(e->multi, s, NULL);
            uv_close((uv_handle_t *)&sc->poll, free_handle);
        }
        return 0;
    }
    if (!sc) {
        sc = calloc(1, sizeof(*sc));
        assert_non_null(sc);
        sc->fd = s;
        sc->e = e;
        uv_poll_init_socket(&e->loop, &sc->poll, s);
        sc->poll.data = sc;
        curl_multi_assign(e->multi, s, sc);
    }
    if (what != CURL_POLL_IN)
        events |= UV_WRITABLE;
    if (what != CURL_POLL_OUT)
        events |= UV_READABLE;
    uv_poll_start(&sc->poll, events, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    env *e = t->data;
    int running;

    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_messages(e);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    env *e = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&e->curl_timer);
    else
        uv_timer_start(&e->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_guard(uv_timer_t *t)
{
    ((env *)t->data)->guard_fired = 1;
}

/* Runs the loop until *flag becomes non-zero or timeout_ms passes;
 * returns the flag. */
static int run_until(env *e, const int *flag, int timeout_ms)
{
    e->guard_fired = 0;
    uv_timer_start(&e->guard, on_guard, (uint64_t)timeout_ms, 0);
    while (!*flag && !e->guard_fired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    return *flag;
}

static void env_start_opts(env *e, int latency_ms, int chunk_delay_ms)
{
    llmux_mock_options o = LLMUX_MOCK_OPTIONS_INIT;

    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->curl_timer);
    uv_timer_init(&e->loop, &e->guard);
    e->curl_timer.data = e;
    e->guard.data = e;
    o.quiet = 1;
    o.latency_ms = latency_ms;
    o.chunk_delay_ms = chunk_delay_ms;
    assert_int_equal(llmux_mock_start(&e->mock, &e->loop, &o), 0);
    assert_true(llmux_mock_port(e->mock) > 0);
    snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%d",
             llmux_mock_port(e->mock));
    e->multi = curl_multi_init();
    assert_non_null(e->multi);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
}

static void env_start(env *e)
{
    env_start_opts(e, 0, 0);
}

static void on_mock_closed(void *ud)
{
    ((env *)ud)->mock_closed = 1;
}

static void env_stop(env *e)
{
    curl_multi_cleanup(e->multi);
    llmux_mock_close(e->mock, on_mock_closed, e);
    uv_close((uv_handle_t *)&e->curl_timer, NULL);
    uv_close((uv_handle_t *)&e->guard, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(e->mock_closed);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

/* ---- transfers ------------------------------------------------------------
 */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sbuf_add(&((xfer *)ud)->body, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    sbuf_add(&((xfer *)ud)->head, p, size * n);
    return size * n;
}

/* Prepares a transfer: POST `json` when non-NULL, else GET. `key` is the
 * Bearer key (NULL sends no Authorization). Extra headers follow, NULL
 * terminated. */
static void xfer_init(xfer *x, env *e, const char *path, const char *json,
                      const char *key, ...)
{
    char url[256], auth[128];
    const char *h;
    va_list ap;

    memset(x, 0, sizeof(*x));
    x->e = e;
    x->easy = curl_easy_init();
    assert_non_null(x->easy);
    snprintf(url, sizeof(url), "%s%s", e->base, path);
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    if (json) {
        curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS, json);
        x->hdrs = curl_slist_append(x->hdrs, "Content-Type: application/json");
    }
    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        x->hdrs = curl_slist_append(x->hdrs, auth);
    }
    va_start(ap, key);
    while ((h = va_arg(ap, const char *)))
        x->hdrs = curl_slist_append(x->hdrs, h);
    va_end(ap);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
}

/* Clears the results so the same easy handle can run again. */
static void xfer_rearm(xfer *x)
{
    free(x->body.data);
    free(x->head.data);
    memset(&x->body, 0, sizeof(x->body));
    memset(&x->head, 0, sizeof(x->head));
    x->done = 0;
    x->status = 0;
    x->result = CURLE_OK;
}

static void xfer_start(xfer *x)
{
    assert_int_equal(curl_multi_add_handle(x->e->multi, x->easy), CURLM_OK);
}

static void xfer_wait(xfer *x)
{
    assert_true(run_until(x->e, &x->done, 15000));
}

static void xfer_run(xfer *x)
{
    xfer_start(x);
    xfer_wait(x);
}

static void xfer_free(xfer *x)
{
    if (!x->done)
        curl_multi_remove_handle(x->e->multi, x->easy);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    free(x->body.data);
    free(x->head.data);
}

/* Value of response header `name` (case-insensitive) copied into out. */
static int xfer_header(const xfer *x, const char *name, char *out,
                       size_t outlen)
{
    const char *p = x->head.data;
    size_t n = strlen(name);

    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
        if (linelen > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            size_t vl;
            while (*v == ' ')
                v++;
            vl = (size_t)(p + linelen - v);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = eol ? eol + 2 : NULL;
    }
    return 0;
}

/* ---- JSON and SSE helpers -------------------------------------------------
 */

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);

    assert_non_null(o);
    return o;
}

/* Follows a path of object keys and array indexes ("choices", "0", ...). */
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

/* Splits an SSE body into its data payloads (malloc'd, NULL-terminated);
 * fails the test on anything that is not "data: ...\n\n". */
static char **sse_events(const char *body, size_t *count)
{
    char **ev = NULL;
    size_t n = 0;
    const char *p = body;

    while (*p) {
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        ev = realloc(ev, (n + 2) * sizeof(*ev));
        ev[n] = strndup(p + 6, (size_t)(end - p - 6));
        n++;
        p = end + 2;
    }
    if (!ev)
        ev = calloc(1, sizeof(*ev));
    ev[n] = NULL;
    *count = n;
    return ev;
}

static void sse_free(char **ev)
{
    size_t i;

    for (i = 0; ev[i]; i++)
        free(ev[i]);
    free(ev);
}

#define CHAT "/v1/chat/completions"
#define KEY  "sk-test"

/* ---- tests: chat ------------------------------------------------------------
 */

static void test_chat_whole(void **state)
{
    env e;
    xfer x;
    json_object *o;
    char ct[64];

    (void)state;
    env_start(&e);
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"gpt-4o-mini\",\"messages\":["
              "{\"role\":\"system\",\"content\":\"be brief\"},"
              "{\"role\":\"user\",\"content\":\"hello mock world\"}]}",
              KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    assert_int_equal(x.status, 200);
    assert_true(xfer_header(&x, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    o = parse(x.body.data);
    assert_string_equal(STR(o, "id"), "chatcmpl-mock-1");
    assert_string_equal(STR(o, "object"), "chat.completion");
    assert_int_equal(INT(o, "created"), 1700000000);
    assert_string_equal(STR(o, "model"), "gpt-4o-mini");
    assert_string_equal(STR(o, "system_fingerprint"), "fp_mock");
    assert_string_equal(STR(o, "choices", "0", "message", "role"), "assistant");
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply to: hello mock world");
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "stop");
    /* 2 + 3 words in, 6 words out. */
    assert_int_equal(INT(o, "usage", "prompt_tokens"), 5);
    assert_int_equal(INT(o, "usage", "completion_tokens"), 6);
    assert_int_equal(INT(o, "usage", "total_tokens"), 11);
    json_object_put(o);
    xfer_free(&x);
    env_stop(&e);
}

static void test_chat_variants(void **state)
{
    env e;
    xfer x;
    json_object *o, *inner;

    (void)state;
    env_start(&e);
    /* Truncation by max_completion_tokens; array content. */
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"m\",\"max_completion_tokens\":2,\"messages\":["
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
              "\"text\":\"part one\"},{\"type\":\"image_url\"},"
              "{\"type\":\"text\",\"text\":\" two\"}]}]}",
              KEY, NULL);
    xfer_run(&x);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply");
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "length");
    assert_int_equal(INT(o, "usage", "prompt_tokens"), 3);
    assert_int_equal(INT(o, "usage", "completion_tokens"), 2);
    json_object_put(o);
    xfer_free(&x);

    /* JSON mode wraps the reply. */
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"m\",\"response_format\":{\"type\":"
              "\"json_object\"},\"messages\":[{\"role\":\"user\","
              "\"content\":\"give json\"}]}",
              KEY, NULL);
    xfer_run(&x);
    o = parse(x.body.data);
    inner = parse(STR(o, "choices", "0", "message", "content"));
    assert_string_equal(STR(inner, "reply"), "Mock reply to: give json");
    json_object_put(inner);
    json_object_put(o);
    xfer_free(&x);

    /* A tool result as the last message. */
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"m\",\"tools\":[{\"type\":\"function\","
              "\"function\":{\"name\":\"f\"}}],\"messages\":["
              "{\"role\":\"user\",\"content\":\"q\"},"
              "{\"role\":\"assistant\",\"content\":null},"
              "{\"role\":\"tool\",\"tool_call_id\":\"call_mock_0001\","
              "\"content\":\"42 degrees\"}]}",
              KEY, NULL);
    xfer_run(&x);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply to: tool result 42 degrees");
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "stop");
    json_object_put(o);
    xfer_free(&x);

    /* Missing messages: 400 with an OpenAI error body. */
    xfer_init(&x, &e, CHAT, "{\"model\":\"m\"}", KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 400);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "type"), "invalid_request_error");
    assert_string_equal(STR(o, "error", "param"), "messages");
    json_object_put(o);
    xfer_free(&x);
    env_stop(&e);
}

static int count_words(const char *s)
{
    int n = 0, in = 0;

    for (; *s; s++) {
        if (isspace((unsigned char)*s))
            in = 0;
        else if (!in) {
            in = 1;
            n++;
        }
    }
    return n;
}

/* Concatenates the content deltas of chat chunks; checks shapes. */
static void check_chat_stream(const char *body, const char *want_reply,
                              int want_usage)
{
    size_t n, i;
    char **ev = sse_events(body, &n);
    sbuf text = {0};
    json_object *o;

    sbuf_add(&text, "", 0);
    assert_true(n >= 4);
    assert_string_equal(ev[n - 1], "[DONE]");
    o = parse(ev[0]);
    assert_string_equal(STR(o, "object"), "chat.completion.chunk");
    assert_string_equal(STR(o, "choices", "0", "delta", "role"), "assistant");
    assert_string_equal(STR(o, "choices", "0", "delta", "content"), "");
    json_object_put(o);
    for (i = 1; i < n - 1; i++) {
        json_object *c, *u = NULL;
        int has_usage;
        o = parse(ev[i]);
        has_usage = json_object_object_get_ex(o, "usage", &u);
        assert_int_equal(has_usage, want_usage);
        if (json_object_array_length(AT(o, "choices")) == 0) {
            /* The usage chunk: last before [DONE]. */
            assert_true(want_usage);
            assert_int_equal(i, n - 2);
            assert_non_null(u);
            assert_int_equal(INT(o, "usage", "completion_tokens"),
                             count_words(want_reply));
        } else {
            if (has_usage)
                assert_null(u);
            c = AT(o, "choices", "0", "delta", "content");
            if (c)
                sbuf_add(&text, json_object_get_string(c),
                         strlen(json_object_get_string(c)));
            else
                assert_string_equal(STR(o, "choices", "0", "finish_reason"),
                                    "stop");
        }
        json_object_put(o);
    }
    assert_string_equal(text.data, want_reply);
    free(text.data);
    sse_free(ev);
}

static void test_chat_stream(void **state)
{
    env e;
    xfer x;
    char ct[64], te[64];
    size_t n;
    char **ev;

    (void)state;
    env_start_opts(&e, 0, 2);
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[{\"role\":"
              "\"user\",\"content\":\"stream  this\\nplease\"}]}",
              KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    assert_int_equal(x.status, 200);
    assert_true(xfer_header(&x, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "text/event-stream");
    assert_true(xfer_header(&x, "Transfer-Encoding", te, sizeof(te)));
    assert_string_equal(te, "chunked");
    check_chat_stream(x.body.data, "Mock reply to: stream  this\nplease", 0);
    /* role chunk + 6 words + finish + [DONE] */
    ev = sse_events(x.body.data, &n);
    assert_int_equal(n, 9);
    sse_free(ev);
    xfer_free(&x);

    /* include_usage adds a usage chunk; the others carry usage:null. */
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":"
              "{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
              "\"content\":\"with usage now\"}]}",
              KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    check_chat_stream(x.body.data, "Mock reply to: with usage now", 1);
    xfer_free(&x);
    env_stop(&e);
}

static void test_chat_tools(void **state)
{
    env e;
    xfer x;
    json_object *o, *args;
    size_t n, i;
    char **ev;
    sbuf acc = {0};
    static const char *req =
        "{\"model\":\"m\",%s\"tools\":[{\"type\":\"function\",\"function\":"
        "{\"name\":\"get_weather\"}},{\"type\":\"function\",\"function\":"
        "{\"name\":\"other\"}}],%s\"messages\":[{\"role\":\"user\","
        "\"content\":\"weather in Zürich?\"}]}";
    char body[512];

    (void)state;
    env_start(&e);
    snprintf(body, sizeof(body), req, "", "");
    xfer_init(&x, &e, CHAT, body, KEY, NULL);
    xfer_run(&x);
    o = parse(x.body.data);
    assert_null(AT(o, "choices", "0", "message", "content"));
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "tool_calls");
    assert_string_equal(
        STR(o, "choices", "0", "message", "tool_calls", "0", "id"),
        "call_mock_0001");
    assert_string_equal(
        STR(o, "choices", "0", "message", "tool_calls", "0", "type"),
        "function");
    assert_string_equal(STR(o, "choices", "0", "message", "tool_calls", "0",
                            "function", "name"),
                        "get_weather");
    args = parse(STR(o, "choices", "0", "message", "tool_calls", "0",
                     "function", "arguments"));
    assert_string_equal(STR(args, "input"), "weather in Zürich?");
    json_object_put(args);
    json_object_put(o);
    xfer_free(&x);

    /* tool_choice naming a function; streamed arguments in pieces. */
    snprintf(body, sizeof(body), req, "\"stream\":true,",
             "\"tool_choice\":{\"type\":\"function\",\"function\":"
             "{\"name\":\"other\"}},");
    xfer_init(&x, &e, CHAT, body, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    ev = sse_events(x.body.data, &n);
    assert_true(n > 4);
    assert_string_equal(ev[n - 1], "[DONE]");
    o = parse(ev[0]);
    assert_string_equal(
        STR(o, "choices", "0", "delta", "tool_calls", "0", "function", "name"),
        "other");
    assert_string_equal(
        STR(o, "choices", "0", "delta", "tool_calls", "0", "id"),
        "call_mock_0001");
    assert_string_equal(STR(o, "choices", "0", "delta", "tool_calls", "0",
                            "function", "arguments"),
                        "");
    json_object_put(o);
    sbuf_add(&acc, "", 0);
    for (i = 1; i < n - 2; i++) {
        const char *piece;
        o = parse(ev[i]);
        assert_int_equal(
            INT(o, "choices", "0", "delta", "tool_calls", "0", "index"), 0);
        piece = STR(o, "choices", "0", "delta", "tool_calls", "0", "function",
                    "arguments");
        assert_non_null(piece);
        assert_true(strlen(piece) >= 1 && strlen(piece) <= 8);
        sbuf_add(&acc, piece, strlen(piece));
        json_object_put(o);
    }
    o = parse(ev[n - 2]);
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "tool_calls");
    json_object_put(o);
    args = parse(acc.data);
    assert_string_equal(STR(args, "input"), "weather in Zürich?");
    json_object_put(args);
    free(acc.data);
    sse_free(ev);
    xfer_free(&x);

    /* tool_choice "none": a plain reply. */
    snprintf(body, sizeof(body), req, "", "\"tool_choice\":\"none\",");
    xfer_init(&x, &e, CHAT, body, KEY, NULL);
    xfer_run(&x);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "choices", "0", "message", "content"),
                        "Mock reply to: weather in Zürich?");
    json_object_put(o);
    xfer_free(&x);
    env_stop(&e);
}

/* ---- tests: other endpoints
 * --------------------------------------------------- */

static void test_completions(void **state)
{
    env e;
    xfer x;
    json_object *o;
    size_t n, i;
    char **ev;
    sbuf text = {0};

    (void)state;
    env_start(&e);
    xfer_init(&x, &e, "/v1/completions",
              "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Say this\"}",
              KEY, NULL);
    xfer_run(&x);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "object"), "text_completion");
    assert_string_equal(STR(o, "choices", "0", "text"),
                        "Mock completion of: Say this");
    assert_string_equal(STR(o, "choices", "0", "finish_reason"), "stop");
    assert_int_equal(INT(o, "usage", "prompt_tokens"), 2);
    assert_int_equal(INT(o, "usage", "completion_tokens"), 5);
    json_object_put(o);
    xfer_free(&x);

    xfer_init(&x, &e, "/v1/completions",
              "{\"model\":\"i\",\"prompt\":\"Say this\",\"stream\":true,"
              "\"stream_options\":{\"include_usage\":true}}",
              KEY, NULL);
    xfer_run(&x);
    ev = sse_events(x.body.data, &n);
    assert_string_equal(ev[n - 1], "[DONE]");
    sbuf_add(&text, "", 0);
    for (i = 0; i + 2 < n; i++) {
        o = parse(ev[i]);
        assert_string_equal(STR(o, "object"), "text_completion");
        sbuf_add(&text, STR(o, "choices", "0", "text"),
                 strlen(STR(o, "choices", "0", "text")));
        json_object_put(o);
    }
    assert_string_equal(text.data, "Mock completion of: Say this");
    o = parse(ev[n - 2]);
    assert_int_equal(json_object_array_length(AT(o, "choices")), 0);
    assert_int_equal(INT(o, "usage", "total_tokens"), 7);
    json_object_put(o);
    free(text.data);
    sse_free(ev);
    xfer_free(&x);
    env_stop(&e);
}

static void test_models(void **state)
{
    env e;
    xfer x;
    json_object *o;
    static const char *const ids[] = {"gpt-4o-mini", "gpt-4o",
                                      "text-embedding-3-small", "mock-model"};
    size_t i;

    (void)state;
    env_start(&e);
    /* Any base prefix works. */
    xfer_init(&x, &e, "/some/prefix/v1/models", NULL, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "object"), "list");
    assert_int_equal(json_object_array_length(AT(o, "data")), 4);
    for (i = 0; i < 4; i++) {
        char idx[4];
        snprintf(idx, sizeof(idx), "%zu", i);
        assert_string_equal(STR(o, "data", idx, "id"), ids[i]);
        assert_string_equal(STR(o, "data", idx, "owned_by"), "mock");
    }
    json_object_put(o);
    xfer_free(&x);

    /* Unknown path: 404 with an OpenAI error body. */
    xfer_init(&x, &e, "/v1/nope", NULL, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 404);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "type"), "invalid_request_error");
    assert_non_null(strstr(STR(o, "error", "message"), "/v1/nope"));
    json_object_put(o);
    xfer_free(&x);
    env_stop(&e);
}

static void embed(env *e, const char *json, json_object **out)
{
    xfer x;

    xfer_init(&x, e, "/v1/embeddings", json, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    *out = parse(x.body.data);
    xfer_free(&x);
}

static void test_embeddings(void **state)
{
    env e;
    json_object *a, *b;
    size_t i, k;

    (void)state;
    env_start(&e);
    embed(&e,
          "{\"model\":\"text-embedding-3-small\",\"input\":"
          "[\"the quick fox\",\"lazy dog\"]}",
          &a);
    embed(&e, "{\"model\":\"x\",\"input\":\"lazy dog\"}", &b);
    assert_string_equal(STR(a, "object"), "list");
    assert_string_equal(STR(a, "model"), "text-embedding-3-small");
    assert_int_equal(INT(a, "usage", "prompt_tokens"), 5);
    assert_int_equal(INT(a, "usage", "total_tokens"), 5);
    assert_int_equal(json_object_array_length(AT(a, "data")), 2);
    for (i = 0; i < 2; i++) {
        char idx[4];
        json_object *vec;
        snprintf(idx, sizeof(idx), "%zu", i);
        assert_int_equal(INT(a, "data", idx, "index"), (int)i);
        assert_string_equal(STR(a, "data", idx, "object"), "embedding");
        vec = AT(a, "data", idx, "embedding");
        assert_int_equal(json_object_array_length(vec), 8);
        for (k = 0; k < 8; k++) {
            double v =
                json_object_get_double(json_object_array_get_idx(vec, k));
            assert_true(v >= -1.0 && v <= 1.0);
        }
    }
    /* Same text, same vector; different text, different vector. */
    assert_true(json_object_equal(AT(a, "data", "1", "embedding"),
                                  AT(b, "data", "0", "embedding")));
    assert_false(json_object_equal(AT(a, "data", "0", "embedding"),
                                   AT(a, "data", "1", "embedding")));
    json_object_put(a);
    json_object_put(b);
    env_stop(&e);
}

static void test_auth(void **state)
{
    env e;
    xfer x;
    json_object *o;

    (void)state;
    env_start(&e);
    xfer_init(&x, &e, CHAT, "{\"model\":\"m\",\"messages\":[]}", NULL, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 401);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "type"), "invalid_request_error");
    assert_non_null(
        strstr(STR(o, "error", "message"), "You didn't provide an API key"));
    assert_null(AT(o, "error", "code"));
    json_object_put(o);
    xfer_free(&x);

    xfer_init(&x, &e, "/v1/models", NULL, "bad-key", NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 401);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "code"), "invalid_api_key");
    assert_null(strstr(STR(o, "error", "message"), "bad-key"));
    json_object_put(o);
    xfer_free(&x);

    /* Non-JSON body: 400. */
    xfer_init(&x, &e, CHAT, "{not json", KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 400);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "type"), "invalid_request_error");
    json_object_put(o);
    xfer_free(&x);
    env_stop(&e);
}

/* ---- tests: faults
 * ------------------------------------------------------------ */

#define SIMPLE_CHAT                                                            \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","             \
    "\"content\":\"hi\"}]}"
#define STREAM_CHAT                                                            \
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"      \
    "\"user\",\"content\":\"one two three four\"}]}"

static void test_fault_status(void **state)
{
    env e;
    xfer x;
    json_object *o;
    char v[64];

    (void)state;
    env_start(&e);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=429;retry_after=1"),
                     0);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=500"), 0);
    assert_int_equal(llmux_mock_push_fault(e.mock, "bogus=1"), UV_EINVAL);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=abc"), UV_EINVAL);

    /* A header fault wins and does not consume the script. */
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY,
              "X-Mock-Fault: status=503;code=overloaded;header=X-Extra:yes",
              NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 503);
    assert_true(xfer_header(&x, "X-Extra", v, sizeof(v)));
    assert_string_equal(v, "yes");
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "type"), "server_error");
    assert_string_equal(STR(o, "error", "code"), "overloaded");
    json_object_put(o);
    xfer_free(&x);

    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 429);
    assert_true(xfer_header(&x, "Retry-After", v, sizeof(v)));
    assert_string_equal(v, "1");
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "type"), "rate_limit_exceeded");
    assert_string_equal(STR(o, "error", "code"), "rate_limit_exceeded");
    json_object_put(o);
    xfer_free(&x);

    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 500);
    xfer_free(&x);

    /* Script empty: a normal answer again. */
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    xfer_free(&x);

    /* Fault in the model name; the echoed model has no '#...'. */
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"gpt-4o-mini#status=429;code=insufficient_quota;"
              "retry_after_ms=250\",\"messages\":[]}",
              KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 429);
    assert_true(xfer_header(&x, "retry-after-ms", v, sizeof(v)));
    assert_string_equal(v, "250");
    o = parse(x.body.data);
    assert_string_equal(STR(o, "error", "code"), "insufficient_quota");
    json_object_put(o);
    xfer_free(&x);
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"gpt-4o-mini#delay_ms=1\",\"messages\":[{\"role\":"
              "\"user\",\"content\":\"x\"}]}",
              KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    o = parse(x.body.data);
    assert_string_equal(STR(o, "model"), "gpt-4o-mini");
    json_object_put(o);
    xfer_free(&x);

    /* Other keys next to the directives in a model name are skipped, and
     * a model suffix without directives leaves the script entry to it. */
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"gpt-4o-mini#status=418;base_url=http://h:1;"
              "timeout=0.4\",\"messages\":[]}",
              KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 418);
    xfer_free(&x);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=409"), 0);
    xfer_init(&x, &e, CHAT,
              "{\"model\":\"gpt-4o-mini#api_key=k\",\"messages\":[]}", KEY,
              NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 409);
    xfer_free(&x);

    /* delay_ms holds the headers back. */
    {
        uint64_t t0;
        uv_update_time(&e.loop);
        t0 = uv_now(&e.loop);
        xfer_init(&x, &e, "/v1/models", NULL, KEY, "X-Mock-Fault: delay_ms=150",
                  NULL);
        xfer_run(&x);
        assert_int_equal(x.status, 200);
        uv_update_time(&e.loop);
        assert_true(uv_now(&e.loop) - t0 >= 150);
        xfer_free(&x);
    }

    /* fault_all applies to everything else; a bad header spec is a 400. */
    llmux_mock_set_fault_all(e.mock, "body=text;status=502");
    xfer_init(&x, &e, "/v1/models", NULL, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 502);
    assert_string_equal(x.body.data, "mock plain text error");
    xfer_free(&x);
    llmux_mock_set_fault_all(e.mock, NULL);
    xfer_init(&x, &e, "/v1/models", NULL, KEY, "X-Mock-Fault: nope", NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 400);
    xfer_free(&x);
    env_stop(&e);
}

/* Runs a chat request (`body`) with fault `spec` in X-Mock-Fault and
 * checks its status and Content-Type; the caller frees `x`. */
static void faulted(env *e, xfer *x, const char *body, const char *spec,
                    long status, const char *ctype)
{
    char h[160], v[64];

    snprintf(h, sizeof(h), "X-Mock-Fault: %s", spec);
    xfer_init(x, e, CHAT, body, KEY, h, NULL);
    xfer_run(x);
    assert_int_equal(x->status, status);
    assert_true(xfer_header(x, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, ctype);
}

static void test_fault_bodies(void **state)
{
    env e;
    xfer x;
    json_object *o;

    (void)state;
    env_start(&e);
    llmux_mock_push_fault(e.mock, "body=garbage");
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    assert_int_equal(x.status, 200);
    assert_true(x.body.len > 0);
    assert_null(json_tokener_parse(x.body.data));
    xfer_free(&x);

    llmux_mock_push_fault(e.mock, "body=truncated");
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_not_equal(x.result, CURLE_OK);
    assert_true(x.body.len > 0);
    assert_null(json_tokener_parse(x.body.data));
    xfer_free(&x);

    /* Any status: 529 (overloaded) is a server error in OpenAI's shape. */
    faulted(&e, &x, SIMPLE_CHAT, "status=529", 529, "application/json");
    assert_non_null(strstr(x.body.data, "\"type\":\"server_error\""));
    xfer_free(&x);

    /* body=html: a proxy's error page, 502 unless a status is given. */
    faulted(&e, &x, SIMPLE_CHAT, "body=html", 502, "text/html");
    assert_non_null(strstr(x.body.data, "<title>502 Bad Gateway</title>"));
    assert_non_null(strstr(x.body.data, "<center>nginx</center>"));
    xfer_free(&x);
    faulted(&e, &x, SIMPLE_CHAT, "body=html;status=504", 504, "text/html");
    assert_non_null(strstr(x.body.data, "<h1>504 Gateway Timeout</h1>"));
    xfer_free(&x);

    /* content_type: the normal answer under another Content-Type, also
     * on an error and on a stream. */
    faulted(&e, &x, SIMPLE_CHAT, "content_type=text/plain", 200, "text/plain");
    o = parse(x.body.data);
    assert_string_equal(STR(o, "object"), "chat.completion");
    json_object_put(o);
    xfer_free(&x);
    faulted(&e, &x, SIMPLE_CHAT, "status=429;content_type=text/html", 429,
            "text/html");
    xfer_free(&x);
    faulted(&e, &x, STREAM_CHAT, "content_type=application/json", 200,
            "application/json");
    assert_int_equal(strncmp(x.body.data, "data: {", 7), 0);
    xfer_free(&x);
    assert_int_equal(llmux_mock_push_fault(e.mock, "content_type="), UV_EINVAL);
    /* no directive puts a line break into the response headers */
    assert_int_equal(
        llmux_mock_push_fault(e.mock, "content_type=text/plain\r\nX-Evil: 1"),
        UV_EINVAL);
    assert_int_equal(llmux_mock_push_fault(e.mock, "header=X-A:1\r\nX-Evil: 1"),
                     UV_EINVAL);

    llmux_mock_push_fault(e.mock, "huge=100000");
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    o = parse(x.body.data);
    assert_int_equal(strlen(STR(o, "choices", "0", "message", "content")),
                     100000);
    assert_string_equal(STR(o, "object"), "chat.completion");
    json_object_put(o);
    xfer_free(&x);
    env_stop(&e);
}

/* The errno of the failed receive: ECONNRESET after an RST. */
static long os_errno(const xfer *x)
{
    long err = 0;

    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &err);
    return err;
}

/* A stream with fault `spec` ends in `result` after n_events events; a
 * receive error is a reset (ECONNRESET), anything else is not. */
static void stream_ends(env *e, const char *spec, CURLcode result,
                        size_t n_events)
{
    xfer x;
    size_t n;
    char **ev;

    assert_int_equal(llmux_mock_push_fault(e->mock, spec), 0);
    xfer_init(&x, e, CHAT, STREAM_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, result);
    if (result == CURLE_RECV_ERROR)
        assert_int_equal(os_errno(&x), ECONNRESET);
    else
        assert_int_not_equal(os_errno(&x), ECONNRESET);
    assert_int_equal(x.status, 200);
    ev = sse_events(x.body.data, &n);
    assert_int_equal(n, n_events);
    sse_free(ev);
    xfer_free(&x);
}

static void test_fault_streams(void **state)
{
    env e;
    xfer x;
    size_t n;
    char **ev;
    json_object *o;

    (void)state;
    env_start_opts(&e, 0, 1);
    /* cut_after: two events, then the socket closes mid-stream. */
    stream_ends(&e, "cut_after=2", CURLE_PARTIAL_FILE, 2);

    /* stream_error_after: an error event, then a clean end, no [DONE]. */
    llmux_mock_push_fault(e.mock, "stream_error_after=3");
    xfer_init(&x, &e, CHAT, STREAM_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    ev = sse_events(x.body.data, &n);
    assert_int_equal(n, 4);
    o = parse(ev[3]);
    assert_string_equal(STR(o, "error", "message"), "mock stream error");
    assert_string_equal(STR(o, "error", "type"), "server_error");
    json_object_put(o);
    sse_free(ev);
    xfer_free(&x);

    /* events=N: N padded content events. */
    llmux_mock_push_fault(e.mock, "events=20");
    xfer_init(&x, &e, CHAT, STREAM_CHAT, KEY, NULL);
    xfer_run(&x);
    ev = sse_events(x.body.data, &n);
    assert_int_equal(n, 23); /* role + 20 + finish + [DONE] */
    o = parse(ev[20]);
    assert_string_equal(STR(o, "choices", "0", "delta", "content"), " tok19");
    json_object_put(o);
    sse_free(ev);
    xfer_free(&x);

    /* stall_after: the client times out; the server forgets the request
     * once the client has gone. */
    llmux_mock_push_fault(e.mock, "stall_after=1");
    xfer_init(&x, &e, CHAT, STREAM_CHAT, KEY, NULL);
    curl_easy_setopt(x.easy, CURLOPT_TIMEOUT_MS, 300L);
    xfer_start(&x);
    xfer_wait(&x);
    assert_int_equal(x.result, CURLE_OPERATION_TIMEDOUT);
    ev = sse_events(x.body.data, &n);
    assert_int_equal(n, 1);
    sse_free(ev);
    xfer_free(&x);
    {
        int idle = 0;
        e.guard_fired = 0;
        uv_timer_start(&e.guard, on_guard, 5000, 0);
        while (!(idle = llmux_mock_in_flight(e.mock) == 0) && !e.guard_fired)
            uv_run(&e.loop, UV_RUN_ONCE);
        uv_timer_stop(&e.guard);
        assert_true(idle);
    }
    /* Non-stream stall: headers, then nothing. */
    llmux_mock_push_fault(e.mock, "stall_after=0");
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    curl_easy_setopt(x.easy, CURLOPT_TIMEOUT_MS, 200L);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.body.len, 0);
    xfer_free(&x);
    env_stop(&e);
}

/* A whole reply with fault `spec` ends in a reset after the status line
 * of `status` (0: no headers at all) and body_len body bytes. */
static void whole_reset(env *e, const char *spec, long status, size_t body_len)
{
    xfer x;

    assert_int_equal(llmux_mock_push_fault(e->mock, spec), 0);
    xfer_init(&x, e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_RECV_ERROR);
    assert_int_equal(os_errno(&x), ECONNRESET);
    assert_int_equal(x.status, status);
    if (!status)
        assert_int_equal(x.head.len, 0);
    assert_int_equal(x.body.len, body_len);
    xfer_free(&x);
}

static void test_fault_resets(void **state)
{
    env e;
    xfer x;

    (void)state;
    env_start_opts(&e, 0, 1);
    /* reset=1: the request is read and recorded, then an RST and not a
     * byte of answer. */
    whole_reset(&e, "reset=1", 0, 0);
    assert_int_equal(llmux_mock_request_count(e.mock), 1);

    /* reset_after=N on a stream: N events, then an RST; cut_after stays
     * a clean close (FIN). */
    stream_ends(&e, "reset_after=2", CURLE_RECV_ERROR, 2);
    stream_ends(&e, "cut_after=3", CURLE_PARTIAL_FILE, 3);

    /* ... on a whole reply: N body bytes, then an RST. */
    whole_reset(&e, "reset_after=10", 200, 10);

    /* Still serving, and nothing left in flight. */
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.result, CURLE_OK);
    assert_int_equal(x.status, 200);
    xfer_free(&x);
    assert_int_equal(llmux_mock_request_count(e.mock), 5);
    assert_int_equal(llmux_mock_in_flight(e.mock), 0);
    assert_int_equal(llmux_mock_push_fault(e.mock, "reset=2"), UV_EINVAL);
    env_stop(&e);
}

/* ---- tests: recording, keep-alive, concurrency
 * ------------------------------- */

static void test_recording(void **state)
{
    env e;
    xfer x;
    const llmux_mock_record *rec;
    json_object *o;
    static const char body[] = "{\"model\":\"m\",\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"rec\"}]}";

    (void)state;
    env_start(&e);
    xfer_init(&x, &e, "/v1/chat/completions?trace=1", body, "sk-abc",
              "OpenAI-Organization: org-1", NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    xfer_free(&x);
    xfer_init(&x, &e, "/v1/models", NULL, "sk-abc", NULL);
    xfer_run(&x);
    xfer_free(&x);

    assert_int_equal(llmux_mock_request_count(e.mock), 2);
    rec = llmux_mock_request(e.mock, 0);
    assert_non_null(rec);
    assert_string_equal(rec->method, "POST");
    assert_string_equal(rec->path, "/v1/chat/completions?trace=1");
    assert_string_equal(llmux_mock_record_header(rec, "authorization"),
                        "Bearer sk-abc");
    assert_string_equal(llmux_mock_record_header(rec, "OPENAI-ORGANIZATION"),
                        "org-1");
    assert_null(llmux_mock_record_header(rec, "X-Nope"));
    assert_int_equal(rec->body_len, strlen(body));
    assert_memory_equal(rec->body, body, rec->body_len);
    rec = llmux_mock_request(e.mock, 1);
    assert_string_equal(rec->method, "GET");
    assert_int_equal(rec->body_len, 0);
    assert_string_equal(rec->body, "");
    assert_null(llmux_mock_request(e.mock, 2));

    /* The control endpoint shows the same, and is not recorded itself. */
    xfer_init(&x, &e, "/_mock/requests", NULL, NULL, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    o = parse(x.body.data);
    assert_int_equal(json_object_array_length(o), 2);
    assert_string_equal(STR(o, "0", "method"), "POST");
    assert_string_equal(STR(o, "0", "headers", "Authorization"),
                        "Bearer sk-abc");
    assert_string_equal(STR(o, "0", "body"), body);
    json_object_put(o);
    xfer_free(&x);
    assert_int_equal(llmux_mock_request_count(e.mock), 2);

    xfer_init(&x, &e, "/_mock/reset", "", NULL, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    xfer_free(&x);
    assert_int_equal(llmux_mock_request_count(e.mock), 0);
    llmux_mock_reset(e.mock);
    env_stop(&e);
}

static void test_keep_alive(void **state)
{
    env e;
    xfer x;
    long conns = -1;

    (void)state;
    env_start(&e);
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    curl_easy_getinfo(x.easy, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 1);
    xfer_rearm(&x);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    curl_easy_getinfo(x.easy, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 0); /* reused */
    xfer_free(&x);

    /* Connection: close is honoured: the next request reconnects. */
    xfer_init(&x, &e, CHAT, SIMPLE_CHAT, KEY, "Connection: close", NULL);
    xfer_run(&x);
    assert_int_equal(x.status, 200);
    xfer_rearm(&x);
    xfer_run(&x);
    curl_easy_getinfo(x.easy, CURLINFO_NUM_CONNECTS, &conns);
    assert_int_equal(conns, 1);
    xfer_free(&x);
    env_stop(&e);
}

#define N_CONCURRENT 12

static void test_concurrency(void **state)
{
    env e;
    xfer xs[N_CONCURRENT], st;
    json_object *o;
    uint64_t t0;
    int i;

    (void)state;
    env_start_opts(&e, 500, 0);
    uv_update_time(&e.loop);
    t0 = uv_now(&e.loop);
    for (i = 0; i < N_CONCURRENT; i++) {
        xfer_init(&xs[i], &e, CHAT, SIMPLE_CHAT, KEY, NULL);
        xfer_start(&xs[i]);
    }
    for (i = 0; i < N_CONCURRENT; i++) {
        xfer_wait(&xs[i]);
        assert_int_equal(xs[i].status, 200);
    }
    uv_update_time(&e.loop);
    assert_true(uv_now(&e.loop) - t0 >= 500); /* the latency option */
    assert_int_equal(llmux_mock_max_concurrent(e.mock), N_CONCURRENT);
    assert_int_equal(llmux_mock_in_flight(e.mock), 0);
    xfer_init(&st, &e, "/_mock/stats", NULL, NULL, NULL);
    xfer_run(&st);
    o = parse(st.body.data);
    assert_int_equal(INT(o, "requests"), N_CONCURRENT);
    assert_int_equal(INT(o, "max_concurrent"), N_CONCURRENT);
    assert_int_equal(INT(o, "in_flight"), 0);
    json_object_put(o);
    xfer_free(&st);
    for (i = 0; i < N_CONCURRENT; i++)
        xfer_free(&xs[i]);
    llmux_mock_reset(e.mock);
    assert_int_equal(llmux_mock_max_concurrent(e.mock), 0);
    env_stop(&e);
}

/* ---- tests: raw sockets
 * ------------------------------------------------------- */

typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    const char *out;
    size_t out_len;
    sbuf in;
    size_t close_after; /* hang up once this much arrived (0: at EOF) */
    int eof;
    int closed;
} raw;

static void raw_closed(uv_handle_t *h)
{
    ((raw *)h->data)->closed = 1;
}

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(n);
    buf->len = n;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    raw *r = s->data;

    if (n > 0)
        sbuf_add(&r->in, buf->base, (size_t)n);
    free(buf->base);
    if (n < 0)
        r->eof = 1;
    if ((n < 0 || (r->close_after && r->in.len >= r->close_after)) &&
        !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, raw_closed);
}

static void raw_written(uv_write_t *w, int status)
{
    (void)w;
    assert_int_equal(status, 0);
}

static void raw_connected(uv_connect_t *c, int status)
{
    raw *r = c->data;
    uv_buf_t b = uv_buf_init((char *)r->out, (unsigned int)r->out_len);

    assert_int_equal(status, 0);
    uv_write(&r->wr, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

/* Sends `out` on a fresh connection and reads until EOF (or close_after
 * bytes); r->in holds what came back. */
static void raw_exchange(env *e, raw *r, const char *out, size_t close_after)
{
    struct sockaddr_in addr;

    memset(r, 0, sizeof(*r));
    r->out = out;
    r->out_len = strlen(out);
    r->close_after = close_after;
    uv_ip4_addr("127.0.0.1", llmux_mock_port(e->mock), &addr);
    uv_tcp_init(&e->loop, &r->tcp);
    r->tcp.data = r;
    r->conn.data = r;
    assert_int_equal(uv_tcp_connect(&r->conn, &r->tcp,
                                    (const struct sockaddr *)&addr,
                                    raw_connected),
                     0);
    assert_true(run_until(e, &r->closed, 10000));
    sbuf_add(&r->in, "", 0);
}

static size_t count_substr(const char *s, const char *sub)
{
    size_t n = 0;

    while ((s = strstr(s, sub))) {
        n++;
        s += strlen(sub);
    }
    return n;
}

static void test_malformed_http(void **state)
{
    env e;
    raw r;
    static const char big[] = "POST /v1/chat/completions HTTP/1.1\r\n"
                              "Host: x\r\nContent-Length: 99999999999\r\n\r\n";

    (void)state;
    env_start(&e);
    raw_exchange(&e, &r, "GARBAGE\x01\x02 not http\r\n\r\n", 0);
    assert_true(r.eof);
    assert_int_equal(strncmp(r.in.data, "HTTP/1.1 400 ", 13), 0);
    assert_non_null(strstr(r.in.data, "Connection: close"));
    assert_non_null(strstr(r.in.data, "invalid_request_error"));
    free(r.in.data);

    raw_exchange(&e, &r,
                 "GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 0);
    assert_int_equal(strncmp(r.in.data, "HTTP/1.1 400 ", 13), 0);
    free(r.in.data);

    raw_exchange(&e, &r, big, 0);
    assert_int_equal(strncmp(r.in.data, "HTTP/1.1 413 ", 13), 0);
    free(r.in.data);

    /* Still serving after all that. */
    raw_exchange(&e, &r,
                 "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                 "k\r\nConnection: close\r\n\r\n",
                 0);
    assert_int_equal(strncmp(r.in.data, "HTTP/1.1 200 ", 13), 0);
    free(r.in.data);
    env_stop(&e);
}

static void test_pipelined_and_vanishing(void **state)
{
    env e;
    raw r;
    int idle;
    static const char two[] =
        "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n\r\n"
        "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        "k\r\nContent-Length: 28\r\nConnection: close\r\n\r\n"
        "{\"model\":\"e\",\"input\":\"abc\"}\n";
    static const char stream[] =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: "
        "Bearer k\r\nX-Mock-Fault: events=200\r\nContent-Length: 69\r\n\r\n"
        "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
        "\"content\":\"\"}]}";

    (void)state;
    env_start_opts(&e, 0, 5);
    raw_exchange(&e, &r, two, 0);
    assert_int_equal(count_substr(r.in.data, "HTTP/1.1 200 OK"), 2);
    assert_non_null(strstr(r.in.data, "\"object\":\"embedding\""));
    free(r.in.data);
    assert_int_equal(llmux_mock_request_count(e.mock), 2);

    /* Hang up after a few events: the server stops its timer and frees. */
    raw_exchange(&e, &r, stream, 600);
    assert_false(r.eof);
    assert_int_equal(strncmp(r.in.data, "HTTP/1.1 200 ", 13), 0);
    free(r.in.data);
    e.guard_fired = 0;
    uv_timer_start(&e.guard, on_guard, 5000, 0);
    while (!(idle = llmux_mock_in_flight(e.mock) == 0) && !e.guard_fired)
        uv_run(&e.loop, UV_RUN_ONCE);
    uv_timer_stop(&e.guard);
    assert_true(idle);
    env_stop(&e);
}

/* Closing the mock while a stream is being paced and a request stalls. */
static void test_close_busy(void **state)
{
    env e;
    xfer a, b;
    int i;

    (void)state;
    env_start_opts(&e, 0, 50);
    xfer_init(&a, &e, CHAT, STREAM_CHAT, KEY, "X-Mock-Fault: events=1000",
              NULL);
    xfer_init(&b, &e, CHAT, SIMPLE_CHAT, KEY, "X-Mock-Fault: stall_after=0",
              NULL);
    xfer_start(&a);
    xfer_start(&b);
    for (i = 0; i < 200 && llmux_mock_in_flight(e.mock) < 2; i++)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(llmux_mock_in_flight(e.mock), 2);
    llmux_mock_close(e.mock, on_mock_closed, &e);
    e.mock = NULL; /* freed once its handles are closed */
    /* Both transfers fail once the server is gone. */
    xfer_wait(&a);
    xfer_wait(&b);
    assert_int_not_equal(a.result, CURLE_OK);
    assert_int_not_equal(b.result, CURLE_OK);
    xfer_free(&a);
    xfer_free(&b);
    env_stop(&e); /* llmux_mock_close(NULL) is a no-op */
}

static void test_start_errors(void **state)
{
    uv_loop_t loop;
    llmux_mock *m = (llmux_mock *)&loop, *m2;
    llmux_mock_options o = LLMUX_MOCK_OPTIONS_INIT;
    int closed = 0;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    o.version = 99;
    assert_int_equal(llmux_mock_start(&m, &loop, &o), UV_EINVAL);
    assert_null(m);
    o.version = LLMUX_MOCK_OPTIONS_VERSION;
    o.host = "not an address";
    assert_true(llmux_mock_start(&m, &loop, &o) < 0);
    o.host = NULL;
    o.quiet = 1;
    assert_int_equal(llmux_mock_start(&m, &loop, &o), 0);
    o.port = llmux_mock_port(m);
    assert_int_equal(llmux_mock_start(&m2, &loop, &o), UV_EADDRINUSE);
    assert_null(m2);
    llmux_mock_close(m, on_mock_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    (void)closed;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_whole),
        cmocka_unit_test(test_chat_variants),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_chat_tools),
        cmocka_unit_test(test_completions),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_fault_status),
        cmocka_unit_test(test_fault_bodies),
        cmocka_unit_test(test_fault_streams),
        cmocka_unit_test(test_fault_resets),
        cmocka_unit_test(test_recording),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_malformed_http),
        cmocka_unit_test(test_pipelined_and_vanishing),
        cmocka_unit_test(test_close_busy),
        cmocka_unit_test(test_start_errors),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
