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

typedef mock_env env;

typedef struct result {
    int calls;
    int status;
    int in_submit;
    int called_in_submit;
    int chunks;
    int abort_after; /* chunk callback returns 1 after this many (0 = never) */
    char text[4096];
    size_t text_len;
    int chunk_usage;
    llmux_response *res;
    env *e;
} result;

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    result *r = ud;
    (void)req;
    r->calls++;
    r->status = status;
    if (r->in_submit)
        r->called_in_submit = 1;
    if (!r->res)
        r->res = llmux_response_retain(res);
}

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    result *r = ud;
    size_t len;
    const char *t = llmux_chunk_text(ch, &len);
    (void)req;
    r->chunks++;
    if (r->text_len + len < sizeof r->text) {
        memcpy(r->text + r->text_len, t, len);
        r->text_len += len;
        r->text[r->text_len] = '\0';
    }
    if (llmux_chunk_usage(ch))
        r->chunk_usage = 1;
    return r->abort_after && r->chunks >= r->abort_after;
}

/* Builds a chat request "openai/<model>" against the mock. */
static llmux_request *chat(env *e, const char *model, const char *prompt)
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
static llmux_request *chat_fault(env *e, const char *fault, const char *prompt)
{
    llmux_request *req = chat(e, "gpt-4o-mini", prompt);
    char h[256];
    snprintf(h, sizeof h, "X-Mock-Fault: %s", fault);
    assert_int_equal(llmux_request_add_header(req, h), 0);
    return req;
}

static void submit(env *e, llmux_request *req, result *r)
{
    int rc;
    r->e = e;
    r->in_submit = 1;
    rc = llmux_submit(e->client, req, on_chunk, on_done, r);
    r->in_submit = 0;
    assert_int_equal(rc, 0);
}

static void result_free(result *r)
{
    llmux_response_free(r->res);
    r->res = NULL;
}

static const llmux_error *err_of(result *r)
{
    return llmux_response_error(r->res);
}

/* ---- tests --------------------------------------------------------------- */

static void test_chat_basic(void **state)
{
    env e;
    result r = {0};
    const llmux_mock_record *rec;
    const llmux_usage *u;
    json_object *body, *v;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    submit(&e, chat(&e, "gpt-4o-mini", "Hello there"), &r);
    assert_int_equal(r.calls, 0); /* never inside submit */
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.called_in_submit, 0);
    assert_int_equal(r.status, 0);
    assert_null(err_of(&r));
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
    assert_int_equal(llmux_mock_request_count(e.mock), 1);
    rec = llmux_mock_request(e.mock, 0);
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
    result_free(&r);
    mock_env_stop(&e);
}

static void test_stream(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    req = chat(&e, "gpt-4o-mini", "one two three four");
    llmux_request_set_stream(req, 1);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, 0);
    assert_true(r.chunks >= 5);
    assert_string_equal(r.text, "Mock reply to: one two three four");
    assert_string_equal(llmux_response_text(r.res, NULL), r.text);
    assert_int_equal(llmux_response_finish(r.res), LLMUX_FINISH_STOP);
    assert_true(r.chunk_usage);
    assert_int_equal(llmux_response_usage(r.res)->completion_tokens, 7);
    {
        const llmux_mock_record *rec = llmux_mock_request(e.mock, 0);
        assert_non_null(strstr(rec->body, "\"include_usage\":true"));
        assert_string_equal(llmux_mock_record_header(rec, "Accept"),
                            "text/event-stream");
    }
    result_free(&r);
    mock_env_stop(&e);
}

static void test_stream_cut(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    req = chat(&e, "gpt-4o-mini#cut_after=3", "a b c d e f g");
    llmux_request_set_stream(req, 1);
    llmux_request_set_max_retries(req, 0);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    assert_true(r.chunks >= 1);
    /* what arrived before the cut is kept */
    assert_true(strlen(llmux_response_text(r.res, NULL)) > 0);
    assert_string_equal(llmux_response_text(r.res, NULL), r.text);
    assert_non_null(strstr(err_of(&r)->message, "openai"));
    result_free(&r);
    mock_env_stop(&e);
}

/* A connection reset right behind stream events: the events that came
 * before it reach the caller, the error says what happened, and the
 * stream is not retried once chunks were delivered. */
static void test_stream_reset(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    /* role, then "Mock", " reply", " to:", then the RST */
    req = chat_fault(&e, "reset_after=4", "a b c d e f g");
    llmux_request_set_stream(req, 1);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    assert_int_equal(r.chunks, 3);
    assert_string_equal(r.text, "Mock reply to:");
    assert_string_equal(llmux_response_text(r.res, NULL), r.text);
    assert_non_null(strstr(err_of(&r)->message, "reset"));
    assert_int_equal(err_of(&r)->attempts, 1);
    assert_int_equal(llmux_mock_request_count(e.mock), 1);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_stream_error_event(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    req = chat(&e, "gpt-4o-mini#stream_error_after=2", "x y z");
    llmux_request_set_stream(req, 1);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_string_equal(err_of(&r)->message, "mock stream error");
    assert_string_equal(err_of(&r)->type, "server_error");
    assert_int_equal(llmux_err_class_of(r.status), LLMUX_CLASS_PROVIDER);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_chunk_abort(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    req = chat(&e, "gpt-4o-mini", "a b c d e f g h");
    llmux_request_set_stream(req, 1);
    r.abort_after = 2;
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, LLMUX_EUSER);
    assert_int_equal(r.chunks, 2);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_http_errors(void **state)
{
    env e;
    result r1 = {0}, r2 = {0}, r3 = {0};
    llmux_request *req;
    char spec[256];
    (void)state;
    mock_env_start(&e, NULL, NULL);
    req = chat(&e, "gpt-4o-mini#status=500", "hi");
    llmux_request_set_max_retries(req, 0);
    submit(&e, req, &r1);
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=bad-key", e.base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "hi");
    submit(&e, req, &r2);
    req = chat_fault(&e, "body=text;status=502", "hi");
    llmux_request_set_max_retries(req, 0);
    submit(&e, req, &r3);
    mock_env_run_until(&e, &r1.calls);
    mock_env_run_until(&e, &r2.calls);
    mock_env_run_until(&e, &r3.calls);

    assert_int_equal(r1.status, LLMUX_EPROVIDER);
    assert_int_equal(err_of(&r1)->http_status, 500);
    assert_int_equal(err_of(&r1)->attempts, 1);
    assert_string_equal(err_of(&r1)->provider, "openai");
    assert_true(strlen(err_of(&r1)->message) > 0);

    assert_int_equal(r2.status, LLMUX_EAUTH);
    assert_int_equal(err_of(&r2)->http_status, 401);
    assert_string_equal(err_of(&r2)->provider_code, "invalid_api_key");
    assert_null(strstr(err_of(&r2)->message, "bad-key"));
    assert_int_equal(err_of(&r2)->attempts, 1); /* 401 is never retried */

    /* a plain-text error body is the message as is */
    assert_int_equal(r3.status, LLMUX_EPROVIDER);
    assert_string_equal(err_of(&r3)->message, "mock plain text error");
    result_free(&r1);
    result_free(&r2);
    result_free(&r3);
    mock_env_stop(&e);
}

static void test_retry_then_success(void **state)
{
    env e;
    result r = {0};
    (void)state;
    mock_env_start(&e, NULL, NULL);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=503;retry_after=0"),
                     0);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=429;retry_after=0"),
                     0);
    submit(&e, chat(&e, "gpt-4o-mini", "again"), &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_attempts(r.res), 3);
    assert_int_equal(llmux_mock_request_count(e.mock), 3);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: again");
    result_free(&r);
    mock_env_stop(&e);
}

static void test_retry_budget_exhausted(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    llmux_mock_set_fault_all(e.mock, "status=503;retry_after=0");
    req = chat(&e, "gpt-4o-mini", "again");
    llmux_request_set_max_retries(req, 1);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_int_equal(err_of(&r)->attempts, 2);
    assert_int_equal(err_of(&r)->http_status, 503);
    assert_int_equal(llmux_mock_request_count(e.mock), 2);
    result_free(&r);
    mock_env_stop(&e);
}

/* retry_backoff= sets the first wait without a Retry-After (0.5 s by
 * default): 0.05 s, then 0.1 s, each with jitter down to 75 %. */
static void test_retry_backoff(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    char spec[256];
    uint64_t t0, took;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    llmux_mock_set_fault_all(e.mock, "status=503");
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=k;retry_backoff=0.05",
             e.base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    uv_update_time(&e.loop);
    t0 = uv_now(&e.loop);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    took = uv_now(&e.loop) - t0;
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_int_equal(err_of(&r)->attempts, 3);
    assert_true(took >= 110);
    assert_true(took < 1000); /* the default waits 1.1 s at least */
    result_free(&r);
    assert_int_equal(
        llmux_request_new(&req, LLMUX_OP_CHAT, "openai/x;retry_backoff=soon"),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "retry_backoff"));
    llmux_request_free(req);
    mock_env_stop(&e);
}

/* Every 5xx is retried, as the official SDKs do: 529 (overloaded) too. */
static void test_retry_529(void **state)
{
    env e;
    result r = {0};
    (void)state;
    mock_env_start(&e, NULL, NULL);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=529;retry_after=0"),
                     0);
    submit(&e, chat(&e, "gpt-4o-mini", "overloaded"), &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_attempts(r.res), 2);
    assert_int_equal(llmux_mock_request_count(e.mock), 2);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_insufficient_quota_not_retried(void **state)
{
    env e;
    result r = {0};
    (void)state;
    mock_env_start(&e, NULL, NULL);
    submit(
        &e,
        chat_fault(&e, "status=429;code=insufficient_quota;retry_after=0", "x"),
        &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_ERATELIMIT);
    assert_int_equal(err_of(&r)->attempts, 1);
    assert_string_equal(err_of(&r)->provider_code, "insufficient_quota");
    result_free(&r);
    mock_env_stop(&e);
}

static void test_timeout(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    uint64_t t0;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    req = chat(&e, "gpt-4o-mini#delay_ms=5000", "slow");
    llmux_request_set_timeout_ms(req, 300);
    uv_update_time(&e.loop);
    t0 = uv_now(&e.loop);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_int_equal(llmux_err_class_of(r.status), LLMUX_CLASS_TRANSPORT);
    assert_true(uv_now(&e.loop) - t0 < 3000);
    assert_true(uv_now(&e.loop) - t0 >= 250);
    assert_true(err_of(&r)->transport != 0);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_timeout_in_spec(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    char spec[256];
    (void)state;
    mock_env_start(&e, NULL, NULL);
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini#stall_after=3;base_url=%s;api_key=k123;"
             "timeout=0.4;max_retries=0",
             e.base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "a b c");
    llmux_request_set_stream(req, 1);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_true(r.chunks >= 1);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_garbage_and_truncated(void **state)
{
    env e;
    result r1 = {0}, r2 = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    submit(&e, chat(&e, "gpt-4o-mini#body=garbage", "x"), &r1);
    req = chat(&e, "gpt-4o-mini#body=truncated", "x");
    llmux_request_set_max_retries(req, 0);
    submit(&e, req, &r2);
    mock_env_run_until(&e, &r1.calls);
    mock_env_run_until(&e, &r2.calls);
    assert_int_equal(r1.status, LLMUX_EPROTO);
    assert_non_null(strstr(err_of(&r1)->message, "openai"));
    assert_true(r2.status == LLMUX_EPROTO || r2.status == LLMUX_ETRANSPORT);
    result_free(&r1);
    result_free(&r2);
    mock_env_stop(&e);
}

static void test_too_big(void **state)
{
    env e;
    result r = {0};
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    (void)state;
    o.max_response_bytes = 64 * 1024;
    mock_env_start(&e, &o, NULL);
    submit(&e, chat(&e, "gpt-4o-mini#huge=500000", "x"), &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_ETOOBIG);
    assert_non_null(strstr(err_of(&r)->message, "65536"));
    result_free(&r);
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
    env e;
    result r = {0};
    llmux_request *req;
    uv_timer_t t;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    req = chat(&e, "gpt-4o-mini#delay_ms=5000", "cancel me");
    submit(&e, req, &r);
    uv_timer_init(&e.loop, &t);
    t.data = req;
    g_timer_fired = 0;
    uv_timer_start(&t, cancel_timer_cb, 50, 0);
    mock_env_run_until(&e, &r.calls);
    assert_true(g_timer_fired);
    assert_int_equal(r.status, LLMUX_ECANCELED);
    /* give the loop a moment: the callback must not run again */
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 1);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_close_with_requests_in_flight(void **state)
{
    env e;
    result r[8];
    int i, total;
    (void)state;
    memset(r, 0, sizeof r);
    mock_env_start(&e, NULL, NULL);
    for (i = 0; i < 8; i++) {
        llmux_request *req = chat(&e,
                                  i % 2 ? "gpt-4o-mini#stall_after=1"
                                        : "gpt-4o-mini#"
                                          "delay_ms=5000",
                                  "p q");
        llmux_request_set_stream(req, i % 2);
        submit(&e, req, &r[i]);
    }
    for (i = 0; i < 20; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    llmux_client_close(e.client, mock_env_on_client_closed, &e);
    for (i = 0; i < 8; i++)
        assert_int_equal(r[i].calls, 0); /* not inside close */
    mock_env_run_until(&e, &e.client_closed);
    total = 0;
    for (i = 0; i < 8; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, LLMUX_ECANCELED);
        total += r[i].calls;
        result_free(&r[i]);
    }
    assert_int_equal(total, 8);
    e.client = NULL;
    mock_env_stop(&e);
}

/* Callbacks that call back into llmux: close and cancel from inside a
 * done or chunk callback, and submit from a done callback. */
typedef struct reentry {
    env *e;
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
        env e;
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
    env *e;
    result second;
    int submitted;
} chained;

static int chain_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    chained *c = ud;
    (void)req;
    (void)ch;
    if (!c->submitted) {
        c->submitted = 1;
        c->second.e = c->e;
        assert_int_equal(llmux_submit(c->e->client,
                                      chat(c->e, "gpt-4o-mini", "nested"),
                                      on_chunk, on_done, &c->second),
                         0);
        assert_int_equal(c->second.calls, 0);
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
    env e;
    chained c;
    llmux_request *req;
    (void)state;
    memset(&c, 0, sizeof c);
    mock_env_start(&e, NULL, NULL);
    c.e = &e;
    req = chat(&e, "gpt-4o-mini", "outer");
    llmux_request_set_stream(req, 1);
    assert_int_equal(llmux_submit(e.client, req, chain_chunk, chain_done, &c),
                     0);
    mock_env_run_until(&e, &c.second.calls);
    assert_int_equal(c.second.status, 0);
    assert_string_equal(llmux_response_text(c.second.res, NULL),
                        "Mock reply to: nested");
    result_free(&c.second);
    mock_env_stop(&e);
}

/* A connection cut after the end marker still is a complete stream. */
static void test_cut_after_done_is_success(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    /* role, 4 words, finish, usage, [DONE]: 8 events, then the cut */
    req = chat_fault(&e, "cut_after=8", "a");
    llmux_request_set_stream(req, 1);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, 0);
    assert_string_equal(llmux_response_text(r.res, NULL), "Mock reply to: a");
    result_free(&r);
    mock_env_stop(&e);
}

/* A stream retried before anything reached the caller starts afresh in
 * the plugin too: the second attempt's id and model are kept. */
static void test_stream_retry_fresh_state(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    assert_int_equal(
        llmux_mock_push_fault(e.mock, "cut_after=1;header=x-should-retry:true"),
        0);
    req = chat(&e, "gpt-4o-mini", "b c");
    llmux_request_set_stream(req, 1);
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_attempts(r.res), 2);
    assert_non_null(llmux_response_id(r.res));
    assert_string_equal(llmux_response_model(r.res), "gpt-4o-mini");
    assert_string_equal(r.text, "Mock reply to: b c");
    result_free(&r);
    mock_env_stop(&e);
}

/*
 * Transport failures are retried only before the answer: a reset before
 * the headers is, a reset after them (mid-body, or a stream before its
 * first event) is reported at once, like a truncated body.
 */
static void test_no_retry_once_answered(void **state)
{
    env e;
    result r[4];
    static const char *const faults[] = {"reset=1", "reset_after=10",
                                         "reset_after=0", "body=truncated"};
    static const int tries[] = {2, 1, 1, 1};
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    mock_env_start(&e, NULL, NULL);
    for (i = 0; i < 4; i++) {
        llmux_request *req = chat_fault(&e, faults[i], "x");
        llmux_request_set_max_retries(req, 1);
        llmux_request_set_stream(req, i == 2);
        submit(&e, req, &r[i]);
    }
    for (i = 0; i < 4; i++) {
        mock_env_run_until(&e, &r[i].calls);
        assert_int_equal(r[i].status, LLMUX_ETRANSPORT);
        assert_int_equal(err_of(&r[i])->http_status, i ? 200 : 0);
        assert_int_equal(err_of(&r[i])->attempts, tries[i]);
        result_free(&r[i]);
    }
    assert_int_equal(llmux_mock_request_count(e.mock), 5);
    mock_env_stop(&e);
}

/* Cancelling while a retry waits finishes at once with ECANCELED. */
static void test_cancel_during_retry_wait(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    uv_timer_t t;
    uint64_t t0;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    assert_int_equal(llmux_mock_push_fault(e.mock, "status=503;retry_after=2"),
                     0);
    req = chat(&e, "gpt-4o-mini", "x");
    llmux_request_set_timeout_ms(req, 5000);
    submit(&e, req, &r);
    uv_timer_init(&e.loop, &t);
    t.data = req;
    g_timer_fired = 0;
    uv_timer_start(&t, cancel_timer_cb, 300, 0);
    uv_update_time(&e.loop);
    t0 = uv_now(&e.loop);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_ECANCELED);
    assert_true(uv_now(&e.loop) - t0 < 1500);
    assert_int_equal(llmux_mock_request_count(e.mock), 1);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_submit_errors(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    char spec[256];
    (void)state;
    mock_env_start(&e, NULL, NULL);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, "nosuchprovider/x"),
                     0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux_submit(e.client, req, NULL, on_done, &r),
                     LLMUX_ENOPROVIDER);
    assert_non_null(strstr(llmux_request_errmsg(req), "nosuchprovider"));
    llmux_request_free(req);

    unsetenv("OPENAI_API_KEY");
    snprintf(spec, sizeof spec, "openai/gpt-4o-mini;base_url=%s", e.base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    assert_int_equal(llmux_submit(e.client, req, NULL, on_done, &r),
                     LLMUX_ENOKEY);
    assert_non_null(strstr(llmux_request_errmsg(req), "OPENAI_API_KEY"));
    llmux_request_free(req);
    for (int i = 0; i < 5; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0); /* a failed submit never calls back */
    mock_env_stop(&e);
}

static void test_connect_refused(void **state)
{
    env e;
    result r = {0};
    llmux_request *req;
    uv_tcp_t probe;
    struct sockaddr_in a;
    int namelen = sizeof a, port;
    char spec[256];
    (void)state;
    mock_env_start(&e, NULL, NULL);
    /* a port that was free a moment ago */
    uv_tcp_init(&e.loop, &probe);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&probe, (struct sockaddr *)&a, 0);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&a, &namelen);
    port = ntohs(a.sin_port);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=k;"
             "max_retries=0",
             port);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    submit(&e, req, &r);
    mock_env_run_until(&e, &r.calls);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    assert_int_equal(err_of(&r)->http_status, 0);
    assert_true(err_of(&r)->transport != 0);
    result_free(&r);
    mock_env_stop(&e);
}

static void test_many_concurrent(void **state)
{
    env e;
    enum { N = 300 };
    result *r = calloc(N, sizeof *r);
    int i, done;
    char prompt[64];
    (void)state;
    mock_env_start(&e, NULL, NULL);
    for (i = 0; i < N; i++) {
        llmux_request *req;
        snprintf(prompt, sizeof prompt, "prompt %d", i);
        req = chat(&e, "gpt-4o-mini", prompt);
        llmux_request_set_stream(req, i % 3 == 0);
        submit(&e, req, &r[i]);
    }
    assert_int_equal(llmux_client_pending(e.client), N);
    for (i = 0; i < 1000000; i++) {
        int k;
        done = 0;
        for (k = 0; k < N; k++)
            done += r[k].calls;
        if (done == N)
            break;
        uv_run(&e.loop, UV_RUN_ONCE);
    }
    assert_int_equal(llmux_client_pending(e.client), 0);
    for (i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "Mock reply to: prompt %d", i);
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_string_equal(llmux_response_text(r[i].res, NULL), want);
        result_free(&r[i]);
    }
    assert_true(llmux_mock_max_concurrent(e.mock) > 1);
    free(r);
    mock_env_stop(&e);
}

static void test_other_ops(void **state)
{
    env e;
    result rc = {0}, re = {0}, rm = {0};
    llmux_request *req;
    char spec[256];
    size_t dim;
    char *json;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    snprintf(spec, sizeof spec,
             "openai/gpt-3.5-turbo-instruct;base_url=%s;"
             "api_key=k1",
             e.base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_COMPLETE, spec), 0);
    llmux_request_set_prompt(req, "Say this");
    submit(&e, req, &rc);
    snprintf(spec, sizeof spec,
             "openai/text-embedding-3-small;base_url=%s;api_key=k1", e.base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_EMBED, spec), 0);
    llmux_request_add_input(req, "first");
    llmux_request_add_input(req, "second");
    submit(&e, req, &re);
    snprintf(spec, sizeof spec, "openai;base_url=%s;api_key=k1", e.base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_MODELS, spec), 0);
    submit(&e, req, &rm);
    mock_env_run_until(&e, &rc.calls);
    mock_env_run_until(&e, &re.calls);
    mock_env_run_until(&e, &rm.calls);

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
    assert_string_equal(llmux_mock_request(e.mock, 2)->method, "GET");
    result_free(&rc);
    result_free(&re);
    result_free(&rm);
    mock_env_stop(&e);
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
    env e;
    uv_thread_t th;
    int port;
    llmux_request *req;
    llmux_response *res = NULL;
    (void)state;
    mock_env_start(&e, NULL, NULL);
    port = llmux_mock_port(e.mock);
    /* the mock runs on this thread's loop; the blocking call on another */
    assert_int_equal(uv_thread_create(&th, run_thread, &port), 0);
    {
        int i;
        for (i = 0; i < 400; i++) {
            uv_run(&e.loop, UV_RUN_NOWAIT);
            uv_sleep(5);
            if (llmux_mock_request_count(e.mock) == 1 &&
                llmux_mock_in_flight(e.mock) == 0)
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
    mock_env_stop(&e);
}

/* What older headers declared, and programs built against them call. */
LLMUX_EXTERN void(llmux_client_options_init)(llmux_client_options *o);

/* A program built against an older header has a smaller options struct:
 * nothing may be written or read past it (ASan watches the heap copies,
 * each exactly that size). */
static void test_options_older_versions(void **state)
{
    size_t v2 = offsetof(llmux_client_options, key_env_allow);
    size_t v1 = offsetof(llmux_client_options, first_byte_timeout_ms);
    /* exactly the older sizes (the volatile 0 hides them from the
     * compiler's bounds warnings: only fields within them are read) */
    static volatile size_t zero = 0;
    llmux_client_options *o2 = malloc(v2 + zero), *o1 = malloc(v1 + zero);
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
}

static void test_private_loop_client(void **state)
{
    env fake;
    result r = {0};
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
    submit(&fake, chat(&fake, "gpt-4o-mini", "own loop"), &r);
    while (!r.calls)
        llmux_client_run(fake.client, LLMUX_RUN_ONCE);
    assert_int_equal(r.status, 0);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: own loop");
    llmux_mock_close(m, NULL, NULL);
    result_free(&r);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_basic),
        cmocka_unit_test(test_free_from_callback),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_stream_cut),
        cmocka_unit_test(test_stream_reset),
        cmocka_unit_test(test_stream_error_event),
        cmocka_unit_test(test_chunk_abort),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_retry_then_success),
        cmocka_unit_test(test_retry_budget_exhausted),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_retry_529),
        cmocka_unit_test(test_insufficient_quota_not_retried),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_timeout_in_spec),
        cmocka_unit_test(test_garbage_and_truncated),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_close_with_requests_in_flight),
        cmocka_unit_test(test_reentrant_callbacks),
        cmocka_unit_test(test_submit_from_chunk_callback),
        cmocka_unit_test(test_cut_after_done_is_success),
        cmocka_unit_test(test_stream_retry_fresh_state),
        cmocka_unit_test(test_no_retry_once_answered),
        cmocka_unit_test(test_cancel_during_retry_wait),
        cmocka_unit_test(test_submit_errors),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_other_ops),
        cmocka_unit_test(test_blocking),
        cmocka_unit_test(test_options_older_versions),
        cmocka_unit_test(test_private_loop_client),
    };
    setenv("OPENAI_API_KEY", "", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
