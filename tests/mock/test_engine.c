/*
 * tests/mock/test_engine.c: the engine end to end, through libcurl and
 * libuv, against llmux-mock running in-process on the same loop.
 *
 * Covers the request lifecycle contract: the done callback runs exactly
 * once and never inside llmux_submit(); cancel and client close with
 * requests in flight; timeouts; retries; provider errors; cut and broken
 * streams; size limits; the blocking call; many requests at once. Every
 * test ends with uv_loop_close() == 0.
 */
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

/* Builds a chat request "openai/<model>" against the mock. */
static llmux_request *chat(mock_env *e, const char *model, const char *prompt)
{
    llmux_request *req;
    char spec[512];
    snprintf(spec, sizeof spec, "openai/%s;base_url=%s;api_key=sk-test", model,
             e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, prompt),
                     0);
    return req;
}

/* A chat request carrying an llmux-mock fault spec in X-Mock-Fault (specs
 * hold ';', which the config string uses between options). */
static llmux_request *chat_fault(mock_env *e, const char *fault,
                                 const char *prompt)
{
    llmux_request *req = chat(e, "gpt-4o-mini", prompt);
    char h[256];
    snprintf(h, sizeof h, "X-Mock-Fault: %s", fault);
    assert_int_equal(llmux_request_add_header(req, h), 0);
    return req;
}

/* ---- tests --------------------------------------------------------------- */

static void test_chat_basic(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    const llmux_mock_record *rec;
    const llmux_usage *u;
    json_object *body, *v;
    mock_env_submit(e, chat(e, "gpt-4o-mini", "Hello there"), &r);
    assert_int_equal(r.calls, 0); /* never inside submit */
    mock_env_wait(e, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.called_in_submit, 0);
    assert_int_equal(r.status, 0);
    assert_null(r.err);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: Hello there");
    assert_int_equal(llmux_response_finish(r.res), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_model(r.res), "gpt-4o-mini");
    assert_string_equal(llmux_response_provider(r.res), "openai");
    assert_int_equal(llmux_response_http_status(r.res), 200);
    assert_int_equal(llmux_response_attempts(r.res), 1);
    u = llmux_response_usage(r.res);
    assert_int_equal(u->prompt_tokens, 2);
    assert_int_equal(u->completion_tokens, 5);
    assert_int_equal(u->total_tokens, 7);

    /* what went over the wire */
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    rec = llmux_mock_request(e->mock, 0);
    assert_string_equal(rec->method, "POST");
    assert_string_equal(rec->path, "/v1/chat/completions");
    assert_string_equal(llmux_mock_record_header(rec, "Authorization"),
                        "Bearer sk-test");
    assert_non_null(
        strstr(llmux_mock_record_header(rec, "User-Agent"), "llmux/"));
    assert_string_equal(llmux_mock_record_header(rec, "Content-Type"),
                        "application/json");
    body = json_tokener_parse(rec->body);
    assert_non_null(body);
    assert_true(json_object_object_get_ex(body, "model", &v));
    assert_string_equal(json_object_get_string(v), "gpt-4o-mini");
    assert_false(json_object_object_get_ex(body, "stream", &v) &&
                 json_object_get_boolean(v));
    json_object_put(body);
    mock_call_free(&r);
}

static void test_stream(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    req = chat(e, "gpt-4o-mini", "one two three four");
    llmux_request_set_stream(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.chunks >= 5);
    assert_string_equal(r.text, "Mock reply to: one two three four");
    assert_string_equal(llmux_response_text(r.res, NULL), r.text);
    assert_int_equal(llmux_response_finish(r.res), LLMUX_FINISH_STOP);
    assert_true(r.chunk_usage);
    assert_int_equal(llmux_response_usage(r.res)->completion_tokens, 7);
    {
        const llmux_mock_record *rec = llmux_mock_request(e->mock, 0);
        assert_non_null(strstr(rec->body, "\"include_usage\":true"));
        assert_string_equal(llmux_mock_record_header(rec, "Accept"),
                            "text/event-stream");
    }
    mock_call_free(&r);
}

static void test_stream_cut(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    req = chat(e, "gpt-4o-mini#cut_after=3", "a b c d e f g");
    llmux_request_set_stream(req, 1);
    llmux_request_set_max_retries(req, 0);
    mock_env_call(e, req, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    assert_true(r.chunks >= 1);
    /* what arrived before the cut is kept */
    assert_true(strlen(llmux_response_text(r.res, NULL)) > 0);
    assert_string_equal(llmux_response_text(r.res, NULL), r.text);
    assert_non_null(strstr(r.err->message, "openai"));
    mock_call_free(&r);
}

/* A connection reset right behind stream events: the events that came
 * before it reach the caller, the error says what happened, and the
 * stream is not retried once chunks were delivered. */
static void test_stream_reset(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    /* role, then "Mock", " reply", " to:", then the RST */
    req = chat_fault(e, "reset_after=4", "a b c d e f g");
    llmux_request_set_stream(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    assert_int_equal(r.chunks, 3);
    assert_string_equal(r.text, "Mock reply to:");
    assert_string_equal(llmux_response_text(r.res, NULL), r.text);
    assert_non_null(strstr(r.err->message, "reset"));
    assert_int_equal(r.err->attempts, 1);
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    mock_call_free(&r);
}

static void test_stream_error_event(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    req = chat(e, "gpt-4o-mini#stream_error_after=2", "x y z");
    llmux_request_set_stream(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_string_equal(r.err->message, "mock stream error");
    assert_string_equal(r.err->type, "server_error");
    assert_int_equal(llmux_err_class_of(r.status), LLMUX_CLASS_PROVIDER);
    mock_call_free(&r);
}

static void test_chunk_abort(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    req = chat(e, "gpt-4o-mini", "a b c d e f g h");
    llmux_request_set_stream(req, 1);
    r.abort_after = 2;
    mock_env_call(e, req, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, LLMUX_EUSER);
    assert_int_equal(r.chunks, 2);
    mock_call_free(&r);
}

static void test_http_errors(void **state)
{
    mock_env *e = *state;
    mock_call r1 = {0}, r2 = {0}, r3 = {0};
    llmux_request *req;
    char spec[256];
    req = chat(e, "gpt-4o-mini#status=500", "hi");
    llmux_request_set_max_retries(req, 0);
    mock_env_submit(e, req, &r1);
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=bad-key", e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "hi");
    mock_env_submit(e, req, &r2);
    req = chat_fault(e, "body=text;status=502", "hi");
    llmux_request_set_max_retries(req, 0);
    mock_env_submit(e, req, &r3);
    mock_env_wait(e, &r1);
    mock_env_wait(e, &r2);
    mock_env_wait(e, &r3);

    assert_int_equal(r1.status, LLMUX_EPROVIDER);
    assert_int_equal(r1.err->http_status, 500);
    assert_int_equal(r1.err->attempts, 1);
    assert_string_equal(r1.err->provider, "openai");
    assert_true(strlen(r1.err->message) > 0);

    assert_int_equal(r2.status, LLMUX_EAUTH);
    assert_int_equal(r2.err->http_status, 401);
    assert_string_equal(r2.err->provider_code, "invalid_api_key");
    assert_null(strstr(r2.err->message, "bad-key"));
    assert_int_equal(r2.err->attempts, 1); /* 401 is never retried */

    /* a plain-text error body is the message as is */
    assert_int_equal(r3.status, LLMUX_EPROVIDER);
    assert_string_equal(r3.err->message, "mock plain text error");
    mock_call_free(&r1);
    mock_call_free(&r2);
    mock_call_free(&r3);
}

static void test_retry_then_success(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=503;retry_after=0"),
                     0);
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=429;retry_after=0"),
                     0);
    mock_env_call(e, chat(e, "gpt-4o-mini", "again"), &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_attempts(r.res), 3);
    assert_int_equal(llmux_mock_request_count(e->mock), 3);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: again");
    mock_call_free(&r);
}

static void test_retry_budget_exhausted(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    llmux_mock_set_fault_all(e->mock, "status=503;retry_after=0");
    req = chat(e, "gpt-4o-mini", "again");
    llmux_request_set_max_retries(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_int_equal(r.err->attempts, 2);
    assert_int_equal(r.err->http_status, 503);
    assert_int_equal(llmux_mock_request_count(e->mock), 2);
    mock_call_free(&r);
}

/* retry_backoff= sets the first wait without a Retry-After (0.5 s by
 * default): 0.05 s, then 0.1 s, each with jitter down to 75 %. */
static void test_retry_backoff(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    char spec[256];
    uint64_t t0, took;
    llmux_mock_set_fault_all(e->mock, "status=503");
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=k;retry_backoff=0.05",
             e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    mock_env_call(e, req, &r);
    took = uv_now(&e->loop) - t0;
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_int_equal(r.err->attempts, 3);
    assert_true(took >= 110);
    assert_true(took < 1000); /* the default waits 1.1 s at least */
    mock_call_free(&r);
    assert_int_equal(
        llmux_request_new(&req, LLMUX_OP_CHAT, "openai/x;retry_backoff=soon"),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "retry_backoff"));
    llmux_request_free(req);
}

/* Every 5xx is retried, as the official SDKs do: 529 (overloaded) too. */
static void test_retry_529(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=529;retry_after=0"),
                     0);
    mock_env_call(e, chat(e, "gpt-4o-mini", "overloaded"), &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_attempts(r.res), 2);
    assert_int_equal(llmux_mock_request_count(e->mock), 2);
    mock_call_free(&r);
}

static void test_insufficient_quota_not_retried(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    mock_env_call(
        e,
        chat_fault(e, "status=429;code=insufficient_quota;retry_after=0", "x"),
        &r);
    assert_int_equal(r.status, LLMUX_ERATELIMIT);
    assert_int_equal(r.err->attempts, 1);
    assert_string_equal(r.err->provider_code, "insufficient_quota");
    mock_call_free(&r);
}

static void test_timeout(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    uint64_t t0;
    req = chat(e, "gpt-4o-mini#delay_ms=5000", "slow");
    llmux_request_set_timeout_ms(req, 300);
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_int_equal(llmux_err_class_of(r.status), LLMUX_CLASS_TRANSPORT);
    assert_true(uv_now(&e->loop) - t0 < 3000);
    assert_true(uv_now(&e->loop) - t0 >= 250);
    assert_true(r.err->transport != 0);
    mock_call_free(&r);
}

static void test_timeout_in_spec(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    char spec[256];
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini#stall_after=3;base_url=%s;api_key=k123;"
             "timeout=0.4;max_retries=0",
             e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "a b c");
    llmux_request_set_stream(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_true(r.chunks >= 1);
    mock_call_free(&r);
}

static void test_garbage_and_truncated(void **state)
{
    mock_env *e = *state;
    mock_call r1 = {0}, r2 = {0};
    llmux_request *req;
    mock_env_submit(e, chat(e, "gpt-4o-mini#body=garbage", "x"), &r1);
    req = chat(e, "gpt-4o-mini#body=truncated", "x");
    llmux_request_set_max_retries(req, 0);
    mock_env_submit(e, req, &r2);
    mock_env_wait(e, &r1);
    mock_env_wait(e, &r2);
    assert_int_equal(r1.status, LLMUX_EPROTO);
    assert_non_null(strstr(r1.err->message, "openai"));
    assert_true(r2.status == LLMUX_EPROTO || r2.status == LLMUX_ETRANSPORT);
    mock_call_free(&r1);
    mock_call_free(&r2);
}

static void test_too_big(void **state)
{
    mock_env e;
    mock_call r = {0};
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    (void)state;
    o.max_response_bytes = 64 * 1024;
    mock_env_start(&e, &o, NULL);
    mock_env_call(&e, chat(&e, "gpt-4o-mini#huge=500000", "x"), &r);
    assert_int_equal(r.status, LLMUX_ETOOBIG);
    assert_non_null(strstr(r.err->message, "65536"));
    mock_call_free(&r);
    mock_env_stop(&e);
}

static int g_timer_fired;
static void cancel_timer_cb(uv_timer_t *t)
{
    llmux_request_cancel(t->data);
    llmux_request_cancel(t->data); /* twice is harmless */
    g_timer_fired = 1;
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    uv_timer_t t;
    req = chat(e, "gpt-4o-mini#delay_ms=5000", "cancel me");
    mock_env_submit(e, req, &r);
    uv_timer_init(&e->loop, &t);
    t.data = req;
    g_timer_fired = 0;
    uv_timer_start(&t, cancel_timer_cb, 50, 0);
    mock_env_wait(e, &r);
    assert_true(g_timer_fired);
    assert_int_equal(r.status, LLMUX_ECANCELED);
    /* give the loop a moment: the callback must not run again (and the
     * timer's close ends: t is ours) */
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 1);
    mock_call_free(&r);
}

static void test_close_with_requests_in_flight(void **state)
{
    mock_env *e = *state;
    mock_call r[8];
    int i, total;
    memset(r, 0, sizeof r);
    for (i = 0; i < 8; i++) {
        llmux_request *req = chat(e,
                                  i % 2 ? "gpt-4o-mini#stall_after=1"
                                        : "gpt-4o-mini#"
                                          "delay_ms=5000",
                                  "p q");
        llmux_request_set_stream(req, i % 2);
        mock_env_submit(e, req, &r[i]);
    }
    for (i = 0; i < 20; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    llmux_client_close(e->client, mock_env_on_client_closed, e);
    for (i = 0; i < 8; i++)
        assert_int_equal(r[i].calls, 0); /* not inside close */
    mock_env_run_until(e, &e->client_closed);
    total = 0;
    for (i = 0; i < 8; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, LLMUX_ECANCELED);
        total += r[i].calls;
        mock_call_free(&r[i]);
    }
    assert_int_equal(total, 8);
    e->client = NULL;
}

/* Callbacks that call back into llmux: close and cancel from inside a
 * done or chunk callback, and submit from a done callback. */
typedef struct reentry {
    mock_env *e;
    int mode; /* 1 close in done, 2 close in chunk, 3 cancel in chunk,
                 4 submit in done */
    int calls;
    int status;
    int chunks;
    int second_calls;
    int second_status;
} reentry;

static void re_done2(llmux_request *req, int status, llmux_response *res,
                     void *ud)
{
    reentry *r = ud;
    (void)req;
    (void)res;
    r->second_calls++;
    r->second_status = status;
}

static void re_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    reentry *r = ud;
    (void)req;
    (void)res;
    r->calls++;
    r->status = status;
    if (r->mode == 1)
        llmux_client_close(r->e->client, mock_env_on_client_closed, r->e);
    if (r->mode == 4 && r->calls == 1)
        assert_int_equal(llmux_submit(r->e->client,
                                      chat(r->e, "gpt-4o-mini", "second"), NULL,
                                      re_done2, r),
                         0);
}

static int re_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    reentry *r = ud;
    (void)ch;
    r->chunks++;
    if (r->chunks == 2 && r->mode == 2)
        llmux_client_close(r->e->client, mock_env_on_client_closed, r->e);
    if (r->chunks == 2 && r->mode == 3)
        llmux_request_cancel(req);
    return 0;
}

static void test_reentrant_callbacks(void **state)
{
    int mode;
    (void)state;
    for (mode = 1; mode <= 4; mode++) {
        mock_env e;
        reentry r;
        llmux_request *req;
        memset(&r, 0, sizeof r);
        mock_env_start(&e, NULL, NULL);
        r.e = &e;
        r.mode = mode;
        req = chat(&e, "gpt-4o-mini", "a b c d e f g h i j");
        llmux_request_set_stream(req, mode == 2 || mode == 3);
        assert_int_equal(llmux_submit(e.client, req, re_chunk, re_done, &r), 0);
        if (mode == 1 || mode == 2) {
            mock_env_run_until(&e, &e.client_closed);
            e.client = NULL;
        } else if (mode == 3) {
            mock_env_run_until(&e, &r.calls);
        } else {
            mock_env_run_until(&e, &r.second_calls);
        }
        assert_int_equal(r.calls, 1);
        switch (mode) {
        case 1:
            assert_int_equal(r.status, 0);
            break;
        case 2:
        case 3:
            assert_int_equal(r.status, LLMUX_ECANCELED);
            assert_int_equal(r.chunks, 2);
            break;
        case 4:
            assert_int_equal(r.status, 0);
            assert_int_equal(r.second_calls, 1);
            assert_int_equal(r.second_status, 0);
            break;
        }
        mock_env_stop(&e);
    }
}

/* A chunk callback may submit a new request (curl refuses new handles
 * inside its callbacks: the engine starts it from the loop). */
typedef struct chained {
    mock_env *e;
    mock_call second;
    int submitted;
} chained;

static int chain_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    chained *c = ud;
    (void)req;
    (void)ch;
    if (!c->submitted) {
        c->submitted = 1;
        /* it calls nothing back from inside llmux_submit() */
        mock_env_submit(c->e, chat(c->e, "gpt-4o-mini", "nested"), &c->second);
    }
    return 0;
}

static void chain_done(llmux_request *req, int status, llmux_response *res,
                       void *ud)
{
    (void)req;
    (void)res;
    assert_int_equal(status, 0);
    ((chained *)ud)->e->client_closed += 0;
}

static void test_submit_from_chunk_callback(void **state)
{
    mock_env *e = *state;
    chained c;
    llmux_request *req;
    memset(&c, 0, sizeof c);
    c.e = e;
    req = chat(e, "gpt-4o-mini", "outer");
    llmux_request_set_stream(req, 1);
    assert_int_equal(llmux_submit(e->client, req, chain_chunk, chain_done, &c),
                     0);
    mock_env_wait(e, &c.second);
    assert_int_equal(c.second.status, 0);
    assert_string_equal(llmux_response_text(c.second.res, NULL),
                        "Mock reply to: nested");
    mock_call_free(&c.second);
}

/* A connection cut after the end marker still is a complete stream. */
static void test_cut_after_done_is_success(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    /* role, 4 words, finish, usage, [DONE]: 8 events, then the cut */
    req = chat_fault(e, "cut_after=8", "a");
    llmux_request_set_stream(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(llmux_response_text(r.res, NULL), "Mock reply to: a");
    mock_call_free(&r);
}

/* A stream retried before anything reached the caller starts afresh in
 * the plugin too: the second attempt's id and model are kept. */
static void test_stream_retry_fresh_state(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    assert_int_equal(llmux_mock_push_fault(
                         e->mock, "cut_after=1;header=x-should-retry:true"),
                     0);
    req = chat(e, "gpt-4o-mini", "b c");
    llmux_request_set_stream(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_attempts(r.res), 2);
    assert_non_null(llmux_response_id(r.res));
    assert_string_equal(llmux_response_model(r.res), "gpt-4o-mini");
    assert_string_equal(r.text, "Mock reply to: b c");
    mock_call_free(&r);
}

/*
 * Transport failures are retried only before the answer: a reset before
 * the headers is, a reset after them (mid-body, or a stream before its
 * first event) is reported at once, like a truncated body.
 */
static void test_no_retry_once_answered(void **state)
{
    mock_env *e = *state;
    mock_call r[4];
    static const char *const faults[] = {"reset=1", "reset_after=10",
                                         "reset_after=0", "body=truncated"};
    static const int tries[] = {2, 1, 1, 1};
    int i;
    memset(r, 0, sizeof r);
    for (i = 0; i < 4; i++) {
        llmux_request *req = chat_fault(e, faults[i], "x");
        llmux_request_set_max_retries(req, 1);
        llmux_request_set_stream(req, i == 2);
        mock_env_submit(e, req, &r[i]);
    }
    for (i = 0; i < 4; i++) {
        mock_env_wait(e, &r[i]);
        assert_int_equal(r[i].status, LLMUX_ETRANSPORT);
        assert_int_equal(r[i].err->http_status, i ? 200 : 0);
        assert_int_equal(r[i].err->attempts, tries[i]);
        mock_call_free(&r[i]);
    }
    assert_int_equal(llmux_mock_request_count(e->mock), 5);
}

/* Cancelling while a retry waits finishes at once with ECANCELED. */
static void test_cancel_during_retry_wait(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    uv_timer_t t;
    uint64_t t0;
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=503;retry_after=2"),
                     0);
    req = chat(e, "gpt-4o-mini", "x");
    llmux_request_set_timeout_ms(req, 5000);
    mock_env_submit(e, req, &r);
    uv_timer_init(&e->loop, &t);
    t.data = req;
    g_timer_fired = 0;
    uv_timer_start(&t, cancel_timer_cb, 300, 0);
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    mock_env_wait(e, &r);
    assert_int_equal(r.status, LLMUX_ECANCELED);
    assert_true(uv_now(&e->loop) - t0 < 1500);
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* the timer's close ends (t is ours) */
    mock_call_free(&r);
}

static void test_submit_errors(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    char spec[256];
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, "nosuchprovider/x"),
                     0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux_submit(e->client, req, NULL, mock_call_on_done, &r),
                     LLMUX_ENOPROVIDER);
    assert_non_null(strstr(llmux_request_errmsg(req), "nosuchprovider"));
    llmux_request_free(req);

    unsetenv("OPENAI_API_KEY");
    snprintf(spec, sizeof spec, "openai/gpt-4o-mini;base_url=%s", e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux_submit(e->client, req, NULL, mock_call_on_done, &r),
                     LLMUX_ENOKEY);
    assert_non_null(strstr(llmux_request_errmsg(req), "OPENAI_API_KEY"));
    llmux_request_free(req);
    for (int i = 0; i < 5; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0); /* a failed submit never calls back */
}

static void test_connect_refused(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    uv_tcp_t probe;
    struct sockaddr_in a;
    int namelen = sizeof a, port;
    char spec[256];
    /* a port that was free a moment ago */
    uv_tcp_init(&e->loop, &probe);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&probe, (struct sockaddr *)&a, 0);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&a, &namelen);
    port = ntohs(a.sin_port);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=k;"
             "max_retries=0",
             port);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    assert_int_equal(r.err->http_status, 0);
    assert_true(r.err->transport != 0);
    mock_call_free(&r);
}

static void test_many_concurrent(void **state)
{
    mock_env *e = *state;
    enum { N = 300 };
    mock_call *r = calloc(N, sizeof *r);
    int i;
    char prompt[64];
    for (i = 0; i < N; i++) {
        llmux_request *req;
        snprintf(prompt, sizeof prompt, "prompt %d", i);
        req = chat(e, "gpt-4o-mini", prompt);
        llmux_request_set_stream(req, i % 3 == 0);
        mock_env_submit(e, req, &r[i]);
    }
    assert_int_equal(llmux_client_pending(e->client), N);
    mock_env_wait_all(e, r, N);
    assert_int_equal(llmux_client_pending(e->client), 0);
    for (i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "Mock reply to: prompt %d", i);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_string_equal(llmux_response_text(r[i].res, NULL), want);
        mock_call_free(&r[i]);
    }
    assert_true(llmux_mock_max_concurrent(e->mock) > 1);
    free(r);
}

static void test_other_ops(void **state)
{
    mock_env *e = *state;
    mock_call rc = {0}, re = {0}, rm = {0};
    llmux_request *req;
    char spec[256];
    size_t dim;
    char *json;
    snprintf(spec, sizeof spec,
             "openai/gpt-3.5-turbo-instruct;base_url=%s;"
             "api_key=k1",
             e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_COMPLETE, spec), 0);
    llmux_request_set_prompt(req, "Say this");
    mock_env_submit(e, req, &rc);
    snprintf(spec, sizeof spec,
             "openai/text-embedding-3-small;base_url=%s;api_key=k1", e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_EMBED, spec), 0);
    llmux_request_add_input(req, "first");
    llmux_request_add_input(req, "second");
    mock_env_submit(e, req, &re);
    snprintf(spec, sizeof spec, "openai;base_url=%s;api_key=k1", e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_MODELS, spec), 0);
    mock_env_submit(e, req, &rm);
    mock_env_wait(e, &rc);
    mock_env_wait(e, &re);
    mock_env_wait(e, &rm);

    assert_int_equal(rc.status, 0);
    assert_string_equal(llmux_response_text(rc.res, NULL),
                        "Mock completion of: Say this");
    json = llmux_response_to_json(rc.res);
    assert_non_null(strstr(json, "\"object\":\"text_completion\""));
    llmux_free(json);

    assert_int_equal(re.status, 0);
    assert_int_equal(llmux_response_embedding_count(re.res), 2);
    assert_non_null(llmux_response_embedding(re.res, 1, &dim));
    assert_int_equal(dim, 8);
    json = llmux_response_to_json(re.res);
    assert_non_null(strstr(json, "\"object\":\"list\""));
    llmux_free(json);

    assert_int_equal(rm.status, 0);
    assert_true(llmux_response_model_count(rm.res) >= 1);
    assert_string_equal(llmux_response_model_id(rm.res, 0), "gpt-4o-mini");
    assert_string_equal(llmux_mock_request(e->mock, 2)->method, "GET");
    mock_call_free(&rc);
    mock_call_free(&re);
    mock_call_free(&rm);
}

/* The blocking call runs its own private loop. */
static void *blocking_thread(void *arg)
{
    int *port = arg;
    llmux_request *req;
    llmux_response *res = NULL;
    char spec[256];
    int rc;
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=k",
             *port);
    llmux_request_new(&req, LLMUX_OP_CHAT, spec);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "blocking");
    rc = llmux_run(req, NULL, NULL, NULL, &res);
    *port = rc == 0 && res &&
                    strcmp(llmux_response_text(res, NULL),
                           "Mock reply to: blocking") == 0
                ? 0
                : -1;
    llmux_response_free(res);
    llmux_request_free(req);
    return NULL;
}

static void run_thread(void *arg)
{
    blocking_thread(arg);
}

static void test_blocking(void **state)
{
    mock_env *e = *state;
    uv_thread_t th;
    int port;
    llmux_request *req;
    llmux_response *res = NULL;
    port = llmux_mock_port(e->mock);
    /* the mock runs on this thread's loop; the blocking call on another */
    assert_int_equal(uv_thread_create(&th, run_thread, &port), 0);
    {
        int i;
        for (i = 0; i < 400; i++) {
            uv_run(&e->loop, UV_RUN_NOWAIT);
            uv_sleep(5);
            if (llmux_mock_request_count(e->mock) == 1 &&
                llmux_mock_in_flight(e->mock) == 0)
                break;
        }
    }
    uv_thread_join(&th);
    assert_int_equal(port, 0);

    /* a config error still yields a response carrying the message */
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, "nope/x"), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux_run(req, NULL, NULL, NULL, &res), LLMUX_ENOPROVIDER);
    assert_non_null(res);
    assert_non_null(strstr(llmux_response_error(res)->message, "nope"));
    llmux_response_free(res);
    llmux_request_free(req);
}

/* What older headers declared, and programs built against them call. */
LLMUX_EXTERN void(llmux_client_options_init)(llmux_client_options *o);

/* A program built against an older header has a smaller options struct:
 * nothing may be written or read past it (ASan watches the heap copies,
 * each exactly that size). */
static void test_options_older_versions(void **state)
{
    size_t v7 = offsetof(llmux_client_options, cache_backend);
    size_t v6 = offsetof(llmux_client_options, limits);
    size_t v5 = offsetof(llmux_client_options, credential);
    size_t v3 = offsetof(llmux_client_options, hook);
    size_t v2 = offsetof(llmux_client_options, key_env_allow);
    size_t v1 = offsetof(llmux_client_options, first_byte_timeout_ms);
    /* exactly the older sizes (the volatile 0 hides them from the
     * compiler's bounds warnings: only fields within them are read) */
    static volatile size_t zero = 0;
    llmux_client_options *o2 = malloc(v2 + zero), *o1 = malloc(v1 + zero);
    llmux_client_options *o3 = malloc(v3 + zero), *o5 = malloc(v5 + zero);
    llmux_client_options *o6 = malloc(v6 + zero), *o7 = malloc(v7 + zero);
    llmux_client_options full;
    llmux_request *req;
    llmux_response *res = NULL;
    (void)state;
    assert_non_null(o2);
    assert_non_null(o1);
    /* the exported function older binaries call writes a version 2
     * struct at most */
    (llmux_client_options_init)(o2);
    assert_int_equal(o2->version, 2);
    assert_int_equal(o2->max_retries, -1);
    llmux_client_options_init_size(o1, v1);
    assert_int_equal(o1->version, 1);
    llmux_client_options_init_size(o3, v3);
    assert_int_equal(o3->version, 3);
    assert_non_null(o5);
    llmux_client_options_init_size(o5, v5);
    assert_int_equal(o5->version, 5);
    assert_non_null(o6);
    llmux_client_options_init_size(o6, v6);
    assert_int_equal(o6->version, 6);
    assert_non_null(o7);
    llmux_client_options_init_size(o7, v7);
    assert_int_equal(o7->version, 7);
    llmux_client_options_init(&full);
    assert_int_equal(full.version, LLMUX_CLIENT_OPTIONS_VERSION);
    assert_null(full.key_env_allow);

    /* the blocking calls copy only what the caller's version holds */
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, "nope/x"), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux_run(req, o2, NULL, NULL, &res), LLMUX_ENOPROVIDER);
    llmux_response_free(res);
    res = NULL;
    assert_int_equal(llmux_run(req, o1, NULL, NULL, &res), LLMUX_ENOPROVIDER);
    llmux_response_free(res);
    res = NULL;
    assert_int_equal(llmux_run(req, o3, NULL, NULL, &res), LLMUX_ENOPROVIDER);
    llmux_response_free(res);
    res = NULL;
    assert_int_equal(llmux_run(req, o5, NULL, NULL, &res), LLMUX_ENOPROVIDER);
    llmux_response_free(res);
    res = NULL;
    assert_int_equal(llmux_run(req, o6, NULL, NULL, &res), LLMUX_ENOPROVIDER);
    llmux_response_free(res);
    res = NULL;
    assert_int_equal(llmux_run(req, o7, NULL, NULL, &res), LLMUX_ENOPROVIDER);
    llmux_response_free(res);
    {
        llmux_response *out[1] = {NULL};
        int status[1] = {0};
        assert_int_equal(llmux_gather_run(&req, 1, o2, NULL, out, status),
                         LLMUX_ENOPROVIDER);
        assert_int_equal(status[0], LLMUX_ENOPROVIDER);
        llmux_response_free(out[0]);
    }
    llmux_request_free(req);
    free(o1);
    free(o2);
    free(o3);
    free(o5);
    free(o6);
    free(o7);
}

static void test_private_loop_client(void **state)
{
    mock_env fake;
    mock_call r = {0};
    llmux_mock *m;
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    (void)state;
    /* a client on its own private loop; the mock shares that loop */
    memset(&fake, 0, sizeof fake);
    assert_int_equal(llmux_client_new(&fake.client, NULL), 0);
    assert_int_equal(llmux_client_run(fake.client, LLMUX_RUN_NOWAIT), 0);
    mo.quiet = 1;
    assert_int_equal(llmux_mock_start(&m, llmux_client_loop(fake.client), &mo),
                     0);
    snprintf(fake.base, sizeof fake.base, "http://127.0.0.1:%d/v1",
             llmux_mock_port(m));
    mock_env_submit(&fake, chat(&fake, "gpt-4o-mini", "own loop"), &r);
    while (!r.calls)
        llmux_client_run(fake.client, LLMUX_RUN_ONCE);
    assert_int_equal(r.status, 0);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: own loop");
    llmux_mock_close(m, NULL, NULL);
    mock_call_free(&r);
    llmux_client_free(fake.client); /* runs the private loop to the end */
}

/* llmux_client_free() from a done callback of a private-loop client:
 * the client closes at once and llmux_client_run() frees it on return
 * (ASan's leak check fails the run otherwise). */
typedef struct free_in_cb {
    llmux_client *c;
    llmux_mock *m;
    int calls, status;
} free_in_cb;

static void on_done_free(llmux_request *req, int status, llmux_response *res,
                         void *ud)
{
    free_in_cb *f = ud;
    (void)req;
    (void)res;
    f->calls++;
    f->status = status;
    llmux_mock_close(f->m, NULL, NULL); /* it shares the private loop */
    llmux_client_free(f->c);
}

static void test_free_from_callback(void **state)
{
    free_in_cb f = {0};
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    llmux_request *req;
    char spec[160];
    int rc, i;
    (void)state;
    assert_int_equal(llmux_client_new(&f.c, NULL), 0);
    mo.quiet = 1;
    assert_int_equal(llmux_mock_start(&f.m, llmux_client_loop(f.c), &mo), 0);
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=k",
             llmux_mock_port(f.m));
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "free me");
    assert_int_equal(llmux_submit(f.c, req, NULL, on_done_free, &f), 0);
    /* the client is gone once the run that called back returns */
    for (i = 0, rc = 1; i < 100000 && !f.calls; i++)
        rc = llmux_client_run(f.c, LLMUX_RUN_ONCE);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.status, 0);
    assert_int_equal(rc, 0);
}

/* The provider's body as received: the whole answer, an error body, each
 * stream event during its chunk callback (and no whole body after a
 * stream). */
typedef struct raw_seen {
    int chunks, with_raw, done;
    int status;
    int raw_after_stream; /* the response's raw was non-NULL */
} raw_seen;

static int raw_on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    raw_seen *r = ud;
    size_t len = 0;
    const char *raw = llmux_chunk_raw(ch, &len);
    (void)req;
    r->chunks++;
    if (raw && len == strlen(raw) && strstr(raw, "chat.completion.chunk"))
        r->with_raw++;
    return 0;
}

static void raw_on_done(llmux_request *req, int status, llmux_response *res,
                        void *ud)
{
    raw_seen *r = ud;
    (void)req;
    r->status = status;
    r->raw_after_stream = llmux_response_raw(res, NULL) != NULL;
    r->done = 1;
}

static void test_raw_bodies(void **state)
{
    mock_env *e = *state;
    mock_call c = {0}, f = {0};
    raw_seen s = {0};
    llmux_request *req;
    size_t len;
    const char *raw;
    json_object *o, *v;

    mock_env_call(e, chat(e, "gpt-4o-mini", "raw please"), &c);
    assert_int_equal(c.status, 0);
    raw = llmux_response_raw(c.res, &len);
    assert_non_null(raw);
    assert_int_equal(len, strlen(raw));
    o = json_tokener_parse(raw);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "object", &v));
    assert_string_equal(json_object_get_string(v), "chat.completion");
    assert_non_null(strstr(raw, llmux_response_text(c.res, NULL)));
    json_object_put(o);
    mock_call_free(&c);

    mock_env_call(e, chat_fault(e, "status=400", "bad"), &f);
    assert_int_equal(f.status, LLMUX_EPROVIDER);
    raw = llmux_response_raw(f.res, NULL);
    assert_non_null(raw);
    assert_non_null(strstr(raw, "\"error\""));
    mock_call_free(&f);

    req = chat(e, "gpt-4o-mini", "a b c d");
    assert_int_equal(llmux_request_set_stream(req, 1), 0);
    assert_int_equal(
        llmux_submit(e->client, req, raw_on_chunk, raw_on_done, &s), 0);
    mock_env_run_until(e, &s.done);
    assert_int_equal(s.status, 0);
    assert_true(s.chunks >= 2);
    assert_int_equal(s.with_raw, s.chunks);
    assert_false(s.raw_after_stream);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        mock_env_test(test_chat_basic),
        mock_env_test(test_raw_bodies),
        cmocka_unit_test(test_free_from_callback),
        mock_env_test(test_stream),
        mock_env_test(test_stream_cut),
        mock_env_test(test_stream_reset),
        mock_env_test(test_stream_error_event),
        mock_env_test(test_chunk_abort),
        mock_env_test(test_http_errors),
        mock_env_test(test_retry_then_success),
        mock_env_test(test_retry_budget_exhausted),
        mock_env_test(test_retry_backoff),
        mock_env_test(test_retry_529),
        mock_env_test(test_insufficient_quota_not_retried),
        mock_env_test(test_timeout),
        mock_env_test(test_timeout_in_spec),
        mock_env_test(test_garbage_and_truncated),
        cmocka_unit_test(test_too_big),
        mock_env_test(test_cancel),
        mock_env_test(test_close_with_requests_in_flight),
        cmocka_unit_test(test_reentrant_callbacks),
        mock_env_test(test_submit_from_chunk_callback),
        mock_env_test(test_cut_after_done_is_success),
        mock_env_test(test_stream_retry_fresh_state),
        mock_env_test(test_no_retry_once_answered),
        mock_env_test(test_cancel_during_retry_wait),
        mock_env_test(test_submit_errors),
        mock_env_test(test_connect_refused),
        mock_env_test(test_many_concurrent),
        mock_env_test(test_other_ops),
        mock_env_test(test_blocking),
        cmocka_unit_test(test_options_older_versions),
        cmocka_unit_test(test_private_loop_client),
    };
    setenv("OPENAI_API_KEY", "", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
