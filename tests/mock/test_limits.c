/*
 * tests/mock/test_limits.c: concurrency limits, the FIFO queue, stage
 * timeouts and the client's counters, end to end against llmux-mock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "mock/mock_env.h"

/* A mock sending stream events `chunk_ms` apart. */
static void env_start(mock_env *e, const llmux_client_options *co, int chunk_ms)
{
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    mo.quiet = 1;
    mo.chunk_delay_ms = chunk_ms;
    mock_env_start(e, co, &mo);
}

static llmux_request *chat(mock_env *e, const char *host, const char *fault,
                           const char *prompt)
{
    llmux_request *req;
    char spec[256], h[128];
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://%s:%d/v1;api_key=k",
             host ? host : "127.0.0.1", llmux_mock_port(e->mock));
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, prompt);
    if (fault) {
        snprintf(h, sizeof h, "X-Mock-Fault: %s", fault);
        llmux_request_add_header(req, h);
    }
    return req;
}

static void test_max_in_flight_and_fifo(void **state)
{
    mock_env e;
    enum { N = 40 };
    mock_call r[N];
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_stats st;
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    o.max_in_flight = 5;
    env_start(&e, &o, 0);
    for (i = 0; i < N; i++) {
        char p[32];
        snprintf(p, sizeof p, "prompt %d", i);
        mock_env_submit(&e, chat(&e, NULL, "delay_ms=30", p), &r[i]);
    }
    assert_int_equal(llmux_client_pending(e.client), N);
    memset(&st, 0, sizeof st);
    st.version = LLMUX_STATS_VERSION;
    assert_int_equal(llmux_client_stats(e.client, &st), 0);
    assert_int_equal(st.in_flight, 5);
    assert_int_equal(st.queued, N - 5);
    mock_env_wait_all(&e, r, N);
    for (i = 0; i < N; i++)
        assert_int_equal(r[i].status, 0);
    /* the limit held, and was used */
    assert_int_equal(llmux_mock_max_concurrent(e.mock), 5);
    assert_int_equal(llmux_client_stats(e.client, &st), 0);
    assert_int_equal(st.requests, N);
    assert_int_equal(st.succeeded, N);
    assert_int_equal(st.max_in_flight, 5);
    assert_int_equal(st.max_queued, N - 5);
    assert_int_equal(st.in_flight, 0);
    assert_true(st.queue_wait_p99 >= 100.0); /* the last waited 7 rounds */
    assert_true(st.total_p50 >= 25.0);
    assert_true(st.prompt_tokens == 2 * N);
    mock_call_free_all(r, N);
    mock_env_stop(&e);
}

static void test_strict_fifo_one_at_a_time(void **state)
{
    mock_env e;
    enum { N = 12 };
    mock_call r[N];
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    o.max_in_flight = 1;
    env_start(&e, &o, 0);
    for (i = 0; i < N; i++) {
        /* later requests answer faster: only the queue keeps the order */
        {
            char f[32];
            snprintf(f, sizeof f, "delay_ms=%d", (N - i) * 3);
            mock_env_submit(&e, chat(&e, NULL, f, "x"), &r[i]);
        }
    }
    mock_env_wait_all(&e, r, N);
    for (i = 0; i < N; i++)
        assert_int_equal(r[i].order, i + 1);
    assert_int_equal(llmux_mock_max_concurrent(e.mock), 1);
    mock_call_free_all(r, N);
    mock_env_stop(&e);
}

static void test_per_endpoint_limit(void **state)
{
    mock_env e;
    enum { N = 20 };
    mock_call r[N];
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    o.max_in_flight_per_endpoint = 2;
    env_start(&e, &o, 0);
    for (i = 0; i < N; i++) {
        /* two endpoints: the same server under two names */
        mock_env_submit(
            &e, chat(&e, i % 2 ? "127.0.0.1" : "localhost", "delay_ms=40", "y"),
            &r[i]);
    }
    mock_env_wait_all(&e, r, N);
    for (i = 0; i < N; i++)
        assert_int_equal(r[i].status, 0);
    assert_true(llmux_mock_max_concurrent(e.mock) <= 4);
    assert_true(llmux_mock_max_concurrent(e.mock) >= 3);
    mock_call_free_all(r, N);
    mock_env_stop(&e);
}

static void test_queue_full(void **state)
{
    mock_env e;
    mock_call r[4];
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *req;
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    o.max_in_flight = 1;
    o.max_queue = 3;
    env_start(&e, &o, 0);
    for (i = 0; i < 4; i++)
        mock_env_submit(&e, chat(&e, NULL, "delay_ms=20", "z"), &r[i]);
    req = chat(&e, NULL, NULL, "one too many");
    assert_int_equal(
        llmux_submit(e.client, req, NULL, mock_call_on_done, &r[0]),
        LLMUX_EQUEUEFULL);
    assert_non_null(strstr(llmux_request_errmsg(req), "max_queue"));
    assert_int_equal(llmux_err_class_of(LLMUX_EQUEUEFULL), LLMUX_CLASS_LOCAL);
    llmux_request_free(req);
    mock_env_wait_all(&e, r, 4);
    mock_call_free_all(r, 4);
    mock_env_stop(&e);
}

/*
 * At most 64 transfers start per loop iteration (curl sets each one up in
 * the next timer call, so 10,000 at once would stall the loop): the rest
 * wait in the queue, whatever max_queue says, and start on the next
 * iterations; every request completes.
 */
static void test_start_ramp(void **state)
{
    enum { N = 300 };
    mock_env e;
    mock_call *r = calloc(N, sizeof *r);
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_stats st;
    int i;
    (void)state;
    assert_non_null(r);
    o.max_queue = 10;
    env_start(&e, &o, 0);
    for (i = 0; i < N; i++)
        mock_env_submit(&e, chat(&e, NULL, NULL, "r"), &r[i]);
    st.version = LLMUX_STATS_VERSION;
    assert_int_equal(llmux_client_stats(e.client, &st), 0);
    assert_int_equal(st.in_flight, 64);
    assert_int_equal(st.queued, N - 64);
    /* each iteration starts 64 more */
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(llmux_client_stats(e.client, &st), 0);
    assert_int_equal(st.queued, N - 128);
    mock_env_wait_all(&e, r, N);
    for (i = 0; i < N; i++)
        assert_int_equal(r[i].status, 0);
    assert_int_equal(llmux_client_stats(e.client, &st), 0);
    assert_int_equal(st.succeeded, N);
    assert_int_equal(st.queued, 0);
    mock_call_free_all(r, N);
    free(r);
    mock_env_stop(&e);
}

/*
 * Requests waiting only for the next iteration keep a private loop alive.
 * The client has its own loop (llmux-mock runs on another thread, so
 * nothing else keeps that loop alive) and is driven with
 * llmux_client_run(LLMUX_RUN_ONCE), as scripts do. A stream's chunk
 * callback submits 65 requests and aborts the stream; the 65 start from
 * the end of that same run (libuv's RUN_ONCE runs due timers last): the
 * first 64 use this iteration's starts and fail at once (their 1 ms
 * deadline has passed), the 65th waits for the next iteration. Nothing
 * else is left on the loop: llmux_client_run() used to return at once,
 * forever, with the 65th never started.
 */
typedef struct mock_thread {
    uv_loop_t loop;
    uv_async_t stop;
    uv_thread_t tid;
    llmux_mock *mock;
    uv_sem_t ready;
    int closed;
} mock_thread;

static void mt_on_stop(uv_async_t *a)
{
    mock_thread *t = a->data;
    llmux_mock_close(t->mock, mock_env_set_flag, &t->closed);
    uv_close((uv_handle_t *)a, NULL);
}

static void mt_main(void *arg)
{
    mock_thread *t = arg;
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    mo.quiet = 1;
    mo.chunk_delay_ms = 20;
    if (llmux_mock_start(&t->mock, &t->loop, &mo) != 0)
        t->mock = NULL;
    uv_sem_post(&t->ready);
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

typedef struct burst {
    llmux_client *c;
    char spec[160];
    int fired, calls, timed_out, stream_status, stream_calls;
} burst;

static void on_burst_done(llmux_request *req, int status, llmux_response *res,
                          void *ud)
{
    burst *b = ud;
    (void)req;
    (void)res;
    b->calls++;
    b->timed_out += status == LLMUX_ETIMEDOUT;
}

static int on_burst_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    burst *b = ud;
    uint64_t t0;
    int i;
    (void)req;
    (void)ch;
    if (b->fired++)
        return 1;
    for (i = 0; i < 65; i++) {
        llmux_request *r;
        assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, b->spec), 0);
        llmux_request_add_message(r, LLMUX_ROLE_USER, "burst");
        assert_int_equal(llmux_request_set_timeout_ms(r, 1), 0);
        assert_int_equal(llmux_submit(b->c, r, NULL, on_burst_done, b), 0);
    }
    t0 = uv_hrtime(); /* let their deadline pass */
    while (uv_hrtime() - t0 < 5000000u)
        ;
    return 1; /* and the stream ends here */
}

static void on_stream_done(llmux_request *req, int status, llmux_response *res,
                           void *ud)
{
    burst *b = ud;
    (void)req;
    (void)res;
    b->stream_calls++;
    b->stream_status = status;
}

static void test_start_ramp_private_loop(void **state)
{
    mock_thread t;
    burst b;
    llmux_request *req;
    int i;
    (void)state;
    memset(&t, 0, sizeof t);
    memset(&b, 0, sizeof b);
    assert_int_equal(uv_loop_init(&t.loop), 0);
    assert_int_equal(uv_async_init(&t.loop, &t.stop, mt_on_stop), 0);
    t.stop.data = &t;
    assert_int_equal(uv_sem_init(&t.ready, 0), 0);
    assert_int_equal(uv_thread_create(&t.tid, mt_main, &t), 0);
    uv_sem_wait(&t.ready);
    assert_non_null(t.mock);

    assert_int_equal(llmux_client_new(&b.c, NULL), 0);
    snprintf(b.spec, sizeof b.spec,
             "openai/m;base_url=http://127.0.0.1:%d/v1;api_key=k",
             llmux_mock_port(t.mock));
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, b.spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "stream");
    assert_int_equal(llmux_request_set_stream(req, 1), 0);
    assert_int_equal(llmux_submit(b.c, req, on_burst_chunk, on_stream_done, &b),
                     0);
    for (i = 0; i < 1000000 && (b.calls < 65 || !b.stream_calls); i++)
        llmux_client_run(b.c, LLMUX_RUN_ONCE);
    assert_int_equal(b.stream_calls, 1);
    assert_int_equal(b.stream_status, LLMUX_EUSER);
    assert_int_equal(b.calls, 65);
    assert_int_equal(b.timed_out, 65);
    llmux_client_free(b.c);

    uv_async_send(&t.stop);
    assert_int_equal(uv_thread_join(&t.tid), 0);
    assert_true(t.closed);
    assert_int_equal(uv_loop_close(&t.loop), 0);
    uv_sem_destroy(&t.ready);
}

static void test_cancel_queued_and_close(void **state)
{
    mock_env e;
    enum { N = 6 };
    mock_call r[N];
    llmux_request *reqs[N];
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    o.max_in_flight = 1;
    env_start(&e, &o, 0);
    for (i = 0; i < N; i++) {
        reqs[i] = chat(&e, NULL, "delay_ms=200", "q");
        mock_env_submit(&e, reqs[i], &r[i]);
    }
    /* a queued request cancelled never reaches the server */
    llmux_request_cancel(reqs[3]);
    assert_int_equal(r[3].calls, 0);
    mock_env_wait(&e, &r[3]);
    assert_int_equal(r[3].status, LLMUX_ECANCELED);
    mock_env_wait(&e, &r[0]);
    assert_int_equal(r[0].status, 0);
    /* closing cancels the one in flight and every queued one */
    mock_env_close_client(&e);
    for (i = 1; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, LLMUX_ECANCELED);
    }
    assert_int_equal(llmux_mock_request_count(e.mock), 2);
    mock_call_free_all(r, N);
    mock_env_stop(&e);
}

/*
 * Cancelling the request in flight and then the one queued behind it:
 * the slot the first frees must not start the second on its way out (it
 * was started, counted as an attempt, then cancelled).
 */
static void test_cancel_queue_head(void **state)
{
    mock_env e;
    mock_call r[2];
    llmux_request *reqs[2];
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_stats st;
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    o.max_in_flight = 1;
    env_start(&e, &o, 0);
    for (i = 0; i < 2; i++) {
        reqs[i] = chat(&e, NULL, "delay_ms=200", "q");
        mock_env_submit(&e, reqs[i], &r[i]);
    }
    llmux_request_cancel(reqs[0]);
    llmux_request_cancel(reqs[1]);
    mock_env_wait(&e, &r[1]);
    for (i = 0; i < 2; i++) {
        assert_int_equal(r[i].status, LLMUX_ECANCELED);
        assert_int_equal(r[i].err->attempts, 1 - i);
    }
    memset(&st, 0, sizeof st);
    st.version = LLMUX_STATS_VERSION;
    assert_int_equal(llmux_client_stats(e.client, &st), 0);
    assert_int_equal(st.attempts, 1);
    assert_int_equal(st.canceled, 2);
    mock_call_free_all(r, 2);
    mock_env_stop(&e);
}

static void test_first_byte_timeout(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    uint64_t t0;
    req = chat(e, NULL, "delay_ms=4000", "slow");
    llmux_request_set_first_byte_timeout_ms(req, 300);
    llmux_request_set_max_retries(req, 0);
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_non_null(strstr(r.err->message, "first_byte_timeout"));
    assert_true(uv_now(&e->loop) - t0 >= 280);
    assert_true(uv_now(&e->loop) - t0 < 2000);
    mock_call_free(&r);
}

static void test_first_byte_timeout_retried(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    llmux_stats st;
    assert_int_equal(llmux_mock_push_fault(e->mock, "delay_ms=3000"), 0);
    req = chat(e, NULL, NULL, "again");
    llmux_request_set_first_byte_timeout_ms(req, 200);
    llmux_request_set_max_retries(req, 1);
    mock_env_call(e, req, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_attempts(r.res), 2);
    memset(&st, 0, sizeof st);
    st.version = LLMUX_STATS_VERSION;
    llmux_client_stats(e->client, &st);
    assert_int_equal(st.attempts, 2);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.retries_transport, 1);
    mock_call_free(&r);
}

static void test_idle_timeout(void **state)
{
    mock_env e;
    mock_call r = {0}, ok = {0};
    llmux_request *req;
    (void)state;
    env_start(&e, NULL, 60);
    /* stalls after 3 events: the idle watchdog ends it */
    req = chat(&e, NULL, "stall_after=3", "a b c d e f");
    llmux_request_set_stream(req, 1);
    llmux_request_set_idle_timeout_ms(req, 400);
    mock_env_submit(&e, req, &r);
    /* steady events 60 ms apart never trip a 400 ms idle timeout, even
     * when the whole stream takes longer than that */
    req = chat(&e, NULL, NULL, "a b c d e f g h i j");
    llmux_request_set_stream(req, 1);
    llmux_request_set_idle_timeout_ms(req, 400);
    mock_env_submit(&e, req, &ok);
    mock_env_wait(&e, &r);
    mock_env_wait(&e, &ok);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_non_null(strstr(r.err->message, "idle_timeout"));
    assert_true(r.chunks >= 1);
    assert_true(strlen(llmux_response_text(r.res, NULL)) > 0); /* kept */
    assert_int_equal(ok.status, 0);
    assert_true(ok.chunks >= 10);
    mock_call_free(&r);
    mock_call_free(&ok);
    mock_env_stop(&e);
}

static void test_total_timeout_named(void **state)
{
    mock_env e;
    mock_call r = {0};
    llmux_request *req;
    (void)state;
    env_start(&e, NULL, 100);
    req = chat(&e, NULL, NULL, "a b c d e f g h i j k l m n");
    llmux_request_set_stream(req, 1);
    llmux_request_set_timeout_ms(req, 450);
    mock_env_call(&e, req, &r);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_non_null(strstr(r.err->message, "timeout"));
    assert_true(r.chunks >= 2);
    mock_call_free(&r);
    mock_env_stop(&e);
}

static void test_stage_timeouts_in_spec(void **state)
{
    llmux_request *req;
    (void)state;
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT,
                                       "openai/x;idle_timeout=2.5;"
                                       "first_byte_timeout=10"),
                     0);
    llmux_request_free(req);
    assert_int_equal(
        llmux_request_new(&req, LLMUX_OP_CHAT, "openai/x;idle_timeout=soon"),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "idle_timeout"));
    llmux_request_free(req);
}

/* A request whose first config string fails with a 503 and whose
 * fallback answers after 4 s, with `fb_opts` in its config string. */
static llmux_request *fb_slow(mock_env *e, const char *fb_opts)
{
    llmux_request *req;
    char spec[256];
    snprintf(spec, sizeof spec,
             "openai/primary#status=503;base_url=http://127.0.0.1:%d/v1;"
             "api_key=k;max_retries=0",
             llmux_mock_port(e->mock));
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "fall back slowly");
    snprintf(spec, sizeof spec,
             "openai/second#delay_ms=4000;base_url=http://127.0.0.1:%d/v1;"
             "api_key=k;%s",
             llmux_mock_port(e->mock), fb_opts);
    assert_int_equal(llmux_request_add_fallback(req, spec), 0);
    return req;
}

/*
 * A fallback runs with its own settings, resolved as the request's were:
 * its first_byte_timeout= and max_retries= apply to it, and its timeout=
 * (counted from submission) may end the request earlier.
 */
static void test_fallback_own_settings(void **state)
{
    mock_env *e = *state;
    mock_call r = {0}, d = {0};
    uint64_t t0;
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    mock_env_call(e, fb_slow(e, "first_byte_timeout=0.2;max_retries=1"), &r);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_non_null(strstr(r.err->message, "first_byte_timeout"));
    /* the fallback's own retry budget: two attempts of 200 ms, not the
     * primary's max_retries=0, and not the 4 s delay */
    assert_int_equal(r.err->attempts, 2);
    assert_int_equal(llmux_response_fallback(r.res), 1);
    assert_true(uv_now(&e->loop) - t0 < 3000);
    mock_call_free(&r);

    /* timeout= of the fallback: the deadline from submission */
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    mock_env_call(e, fb_slow(e, "timeout=0.3;max_retries=0"), &d);
    assert_int_equal(d.status, LLMUX_ETIMEDOUT);
    assert_true(uv_now(&e->loop) - t0 >= 280);
    assert_true(uv_now(&e->loop) - t0 < 3000);
    mock_call_free(&d);
}

static llmux_request *fb_req(mock_env *e, const char *model, int n_fb,
                             const char *const *fb_models)
{
    llmux_request *req;
    char spec[256];
    int i;
    snprintf(spec, sizeof spec,
             "openai/%s;base_url=http://127.0.0.1:%d/v1;api_key=k;"
             "max_retries=0",
             model, llmux_mock_port(e->mock));
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "fall back");
    for (i = 0; i < n_fb; i++) {
        snprintf(spec, sizeof spec,
                 "%s;base_url=http://127.0.0.1:%d%s;"
                 "api_key=k;max_retries=0",
                 fb_models[i], llmux_mock_port(e->mock),
                 strncmp(fb_models[i], "mistral", 7) == 0 ? "/mistral" : "/v1");
        assert_int_equal(llmux_request_add_fallback(req, spec), 0);
    }
    return req;
}

/* Every log line at every level, in one buffer. */
typedef struct logbuf {
    char text[16384];
    size_t len;
    int lines[4];
} logbuf;

static void on_log(int level, const char *msg, void *ud)
{
    logbuf *l = ud;
    int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s\n", msg);
    if (n > 0 && l->len + (size_t)n < sizeof l->text)
        l->len += (size_t)n;
    if (level >= 0 && level < 4)
        l->lines[level]++;
}

/*
 * The logging hook at its most verbose never shows a secret: not the API
 * keys, not the user:password of a base URL, through retries and a
 * fallback to another spec with its own secrets.
 */
static void test_log_never_shows_keys(void **state)
{
    mock_env e;
    mock_call r = {0};
    logbuf *l = calloc(1, sizeof *l);
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *req;
    char spec[256];
    (void)state;
    assert_non_null(l);
    o.log = on_log;
    o.log_userdata = l;
    o.log_level = LLMUX_LOG_DEBUG;
    env_start(&e, &o, 0);
    snprintf(spec, sizeof spec,
             "openai/primary#status=503;base_url=http://bob:SECRET1@"
             "127.0.0.1:%d/v1;api_key=sk-SECRET2;max_retries=1",
             llmux_mock_port(e.mock));
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "log me");
    snprintf(spec, sizeof spec,
             "openai/second;base_url=http://SECRET3@127.0.0.1:%d/v1;"
             "api_key=sk-SECRET4",
             llmux_mock_port(e.mock));
    assert_int_equal(llmux_request_add_fallback(req, spec), 0);
    mock_env_call(&e, req, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(llmux_response_fallback(r.res), 1);
    /* the requests were logged: two attempts, a retry, a fallback */
    assert_true(l->lines[LLMUX_LOG_DEBUG] >= 3);
    assert_non_null(strstr(l->text, "POST http://***@127.0.0.1:"));
    assert_non_null(strstr(l->text, "retrying"));
    assert_non_null(strstr(l->text, "falling back"));
    if (strstr(l->text, "SECRET")) {
        print_error("a secret in the log:\n%s", l->text);
        fail();
    }
    mock_call_free(&r);
    free(l);
    mock_env_stop(&e);
}

/* TLS verification is on unless asked otherwise; turning it off warns
 * once per client, however many requests do it. */
static void test_insecure_warns_once(void **state)
{
    mock_env e;
    mock_call r[3];
    logbuf *l = calloc(1, sizeof *l);
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    char spec[256];
    int i;
    (void)state;
    assert_non_null(l);
    memset(r, 0, sizeof r);
    o.log = on_log;
    o.log_userdata = l;
    o.log_level = LLMUX_LOG_DEBUG;
    env_start(&e, &o, 0);
    for (i = 0; i < 3; i++) {
        llmux_request *req;
        snprintf(spec, sizeof spec,
                 "openai/x;base_url=http://127.0.0.1:%d/v1;api_key=k%s",
                 llmux_mock_port(e.mock), i ? ";insecure=1" : "");
        assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
        llmux_request_add_message(req, LLMUX_ROLE_USER, "hi");
        mock_env_call(&e, req, &r[i]);
        assert_int_equal(r[i].status, 0);
        mock_call_free(&r[i]);
        /* the first request verifies: nothing logged */
        assert_int_equal(l->lines[LLMUX_LOG_WARN], i ? 1 : 0);
    }
    assert_non_null(strstr(l->text, "TLS certificate verification is off"));
    /* a URL without credentials is logged whole (only "http://" was) */
    snprintf(spec, sizeof spec,
             "POST http://127.0.0.1:%d/v1/chat/completions -> HTTP 200",
             llmux_mock_port(e.mock));
    assert_non_null(strstr(l->text, spec));
    free(l);
    mock_env_stop(&e);
}

static void test_fallbacks(void **state)
{
    mock_env *e = *state;
    mock_call r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    static const char *const one[] = {"openai/fallback-model"};
    static const char *const chain[] = {"openai/second#status=502",
                                        "openai/third"};
    static const char *const cross[] = {"mistral/mistral-small-latest"};
    llmux_request *req;
    /* an overloaded primary moves on to the fallback */
    mock_env_submit(e, fb_req(e, "primary#status=503", 1, one), &r1);
    /* a request error is the caller's: no fallback */
    mock_env_submit(e, fb_req(e, "primary#status=400", 1, one), &r2);
    /* fallbacks in order, each failing one passing the baton on */
    mock_env_submit(e, fb_req(e, "primary#status=500", 2, chain), &r3);
    /* across providers */
    mock_env_submit(e, fb_req(e, "primary#status=429", 1, cross), &r4);
    mock_env_wait(e, &r1);
    mock_env_wait(e, &r2);
    mock_env_wait(e, &r3);
    mock_env_wait(e, &r4);

    assert_int_equal(r1.status, 0);
    assert_int_equal(llmux_response_fallback(r1.res), 1);
    assert_string_equal(llmux_response_model(r1.res), "fallback-model");
    assert_string_equal(llmux_response_text(r1.res, NULL),
                        "Mock reply to: fall back");

    assert_int_equal(r2.status, LLMUX_EPROVIDER);
    assert_int_equal(r2.err->http_status, 400);
    assert_int_equal(llmux_response_fallback(r2.res), 0);

    assert_int_equal(r3.status, 0);
    assert_int_equal(llmux_response_fallback(r3.res), 2);
    assert_string_equal(llmux_response_model(r3.res), "third");

    assert_int_equal(r4.status, 0);
    assert_string_equal(llmux_response_provider(r4.res), "mistral");
    assert_int_equal(llmux_response_fallback(r4.res), 1);
    {
        llmux_stats ps;
        memset(&ps, 0, sizeof ps);
        ps.version = LLMUX_STATS_VERSION;
        assert_int_equal(llmux_client_provider_stats(e->client, "mistral", &ps),
                         0);
        assert_int_equal(ps.requests, 1);
        assert_int_equal(ps.succeeded, 1);
        assert_true(ps.completion_tokens > 0);
        assert_int_equal(llmux_client_provider_stats(e->client, "openai", &ps),
                         0);
        assert_int_equal(ps.requests, 3); /* r1, r2, r3 answered by openai */
        assert_int_equal(ps.failed, 1);
        assert_int_equal(ps.errors_provider, 1);
        assert_int_equal(llmux_client_provider_stats(e->client, "ollama", &ps),
                         0);
        assert_int_equal(ps.requests, 0);
    }

    /* 2 + 1 + 3 + 2 requests reached the server */
    assert_int_equal(llmux_mock_request_count(e->mock), 8);
    mock_call_free(&r1);
    mock_call_free(&r2);
    mock_call_free(&r3);
    mock_call_free(&r4);

    /* context-length errors move on too */
    memset(&r1, 0, sizeof r1);
    req = fb_req(e, "small", 1, one);
    llmux_request_add_header(
        req, "X-Mock-Fault: status=400;code=context_length_exceeded");
    mock_env_call(e, req, &r1);
    /* the header goes to the fallback too: it fails the same way, and the
     * last error is what the caller sees */
    assert_int_equal(r1.status, LLMUX_EPROVIDER);
    assert_int_equal(llmux_response_fallback(r1.res), 1);
    assert_string_equal(r1.err->provider_code, "context_length_exceeded");
    mock_call_free(&r1);

    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, "openai/x"), 0);
    assert_int_equal(llmux_request_add_fallback(req, "/nope"), LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "fallback"));
    assert_int_equal(llmux_request_add_fallback(req, "openai/y;timeout=abc"),
                     LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "timeout"));
    assert_non_null(strstr(llmux_request_errmsg(req), "fallback"));
    assert_int_equal(llmux_request_add_fallback(req, "mistral"), LLMUX_ECONFIG);
    llmux_request_free(req);
}

/* Completion time of the last of n requests, in ms from submission. */
static uint64_t run_batch(mock_env *e, mock_call *r, int n,
                          const char *spec_extra, long max_tokens,
                          uint64_t *t_first_done)
{
    uint64_t t0;
    int i;
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    for (i = 0; i < n; i++) {
        llmux_request *req;
        char spec[256];
        snprintf(spec, sizeof spec,
                 "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;"
                 "api_key=k%s",
                 llmux_mock_port(e->mock), spec_extra);
        assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
        llmux_request_add_message(req, LLMUX_ROLE_USER, "hi");
        if (max_tokens)
            llmux_request_set_max_tokens(req, max_tokens);
        mock_env_submit(e, req, &r[i]);
    }
    mock_env_wait(e, &r[0]);
    if (t_first_done)
        *t_first_done = uv_now(&e->loop) - t0;
    mock_env_wait_all(e, r, n);
    for (i = 0; i < n; i++)
        assert_int_equal(r[i].status, 0);
    return uv_now(&e->loop) - t0;
}

static void test_rpm_holds_rate(void **state)
{
    mock_env *e = *state;
    enum { N = 35 };
    mock_call r[N];
    uint64_t t;
    memset(r, 0, sizeof r);
    /* 600 a minute = 10 a second, with one second of burst: 10 at once,
     * then one every 100 ms: the 35th leaves at 2.5 s */
    t = run_batch(e, r, N, ";rpm=600", 0, NULL);
    print_message("35 requests at rpm=600: %llu ms\n", (unsigned long long)t);
    /* never faster than the rate (the 10% bound that matters); a loaded
     * CI machine may only make it slower */
    assert_true(t >= 2250 && t <= 3300);
    mock_call_free_all(r, N);
}

static void test_client_rpm_default(void **state)
{
    mock_env e;
    enum { N = 30 };
    mock_call r[N];
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    uint64_t t;
    (void)state;
    memset(r, 0, sizeof r);
    o.requests_per_minute = 1200; /* 20 a second, 20 of burst */
    env_start(&e, &o, 0);
    t = run_batch(&e, r, N, "", 0, NULL);
    /* 20 at once, then one every 50 ms: the 30th leaves at 500 ms */
    assert_true(t >= 450 && t <= 1000);
    mock_call_free_all(r, N);
    mock_env_stop(&e);
}

static void test_tpm_slows_big_requests(void **state)
{
    mock_env *e = *state;
    enum { N = 8 };
    mock_call r[N];
    uint64_t t;
    memset(r, 0, sizeof r);
    /* 6000 tokens a minute = 100 a second; each request is estimated at
     * about 50 (max_tokens 48), so two fit the burst; the mock's usage is
     * 6 tokens, and the refund of the difference speeds up the rest */
    t = run_batch(e, r, N, ";tpm=6000", 48, NULL);
    print_message("8 requests at tpm=6000: %llu ms\n", (unsigned long long)t);
    assert_true(t >= 50);
    assert_true(t <= 3000);
    mock_call_free_all(r, N);
}

static void test_429_pauses_endpoint(void **state)
{
    mock_env *e = *state;
    mock_call a = {0}, b = {0};
    uint64_t t0;
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=429;retry_after=1"),
                     0);
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    mock_env_submit(e, chat(e, NULL, NULL, "first"), &a);
    /* the 429 arrives, then a second request to the same endpoint waits
     * for the pause like the retry does */
    while (llmux_mock_request_count(e->mock) < 1 ||
           llmux_mock_in_flight(e->mock))
        uv_run(&e->loop, UV_RUN_ONCE);
    {
        int i;
        for (i = 0; i < 20; i++)
            uv_run(&e->loop, UV_RUN_NOWAIT);
    }
    mock_env_call(e, chat(e, NULL, NULL, "second"), &b);
    mock_env_wait(e, &a);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_int_equal(llmux_response_attempts(a.res), 2);
    assert_true(uv_now(&e->loop) - t0 >= 950);
    mock_call_free(&a);
    mock_call_free(&b);
}

/* A request with API key `key` and config-string tail `extra`. */
static llmux_request *chat_key(mock_env *e, const char *key, const char *extra)
{
    llmux_request *req;
    char spec[256];
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=%s%s",
             llmux_mock_port(e->mock), key, extra);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "keyed");
    return req;
}

/* When each request finished, in loop ms. */
typedef struct timed {
    uv_loop_t *loop;
    int calls, status;
    uint64_t done_ms;
} timed;

static void on_timed(llmux_request *req, int status, llmux_response *res,
                     void *ud)
{
    timed *t = ud;
    (void)req;
    (void)res;
    t->calls++;
    t->status = status;
    t->done_ms = uv_now(t->loop);
}

/*
 * Rate limits and server pauses are per endpoint and API key, as providers
 * count them: two keys on one endpoint each get their own bucket, and a
 * 429 for one key does not hold the other's requests.
 */
static void test_rate_limits_per_key(void **state)
{
    mock_env *e = *state;
    timed a1 = {0}, a2 = {0}, b1 = {0}, b2 = {0}, x = {0}, y = {0}, z = {0};
    uint64_t t0;
    a1.loop = a2.loop = b1.loop = b2.loop = x.loop = y.loop = z.loop = &e->loop;
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    /* rpm=60: one of burst, then one a second, for each key */
    assert_int_equal(llmux_submit(e->client, chat_key(e, "ka", ";rpm=60"), NULL,
                                  on_timed, &a1),
                     0);
    assert_int_equal(llmux_submit(e->client, chat_key(e, "ka", ";rpm=60"), NULL,
                                  on_timed, &a2),
                     0);
    assert_int_equal(llmux_submit(e->client, chat_key(e, "kb", ";rpm=60"), NULL,
                                  on_timed, &b1),
                     0);
    assert_int_equal(llmux_submit(e->client, chat_key(e, "kb", ";rpm=60"), NULL,
                                  on_timed, &b2),
                     0);
    mock_env_run_until(e, &b2.calls);
    mock_env_run_until(e, &a2.calls);
    assert_int_equal(a1.status + a2.status + b1.status + b2.status, 0);
    /* one bucket for both would send b1 after a2, at 1 s */
    assert_true(b1.done_ms - t0 < 500);
    assert_true(a2.done_ms - t0 >= 950);
    assert_true(b2.done_ms - t0 >= 950);
    assert_true(b2.done_ms - t0 < 1900); /* not after a2 */

    /* a 429 with Retry-After for key kc pauses kc only (new keys: ka and kb
     * keep their rpm) */
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=429;retry_after=1"),
                     0);
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    assert_int_equal(
        llmux_submit(e->client, chat_key(e, "kc", ""), NULL, on_timed, &x), 0);
    while (llmux_mock_request_count(e->mock) < 5 ||
           llmux_mock_in_flight(e->mock))
        uv_run(&e->loop, UV_RUN_ONCE);
    {
        int i;
        for (i = 0; i < 20; i++)
            uv_run(&e->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(
        llmux_submit(e->client, chat_key(e, "kd", ""), NULL, on_timed, &y), 0);
    assert_int_equal(
        llmux_submit(e->client, chat_key(e, "kc", ""), NULL, on_timed, &z), 0);
    mock_env_run_until(e, &y.calls);
    mock_env_run_until(e, &z.calls);
    mock_env_run_until(e, &x.calls);
    assert_int_equal(x.status + y.status + z.status, 0);
    assert_true(y.done_ms - t0 < 500);  /* kd: not paused */
    assert_true(z.done_ms - t0 >= 950); /* kc: waited for Retry-After */
    assert_true(x.done_ms - t0 >= 950); /* the retry too */
}

/* A fallback's own rpm= holds for it (its lane is set up when the request
 * moves on to it). */
static void test_fallback_rate_limit(void **state)
{
    mock_env *e = *state;
    timed r[2];
    uint64_t t0;
    int i;
    memset(r, 0, sizeof r);
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    for (i = 0; i < 2; i++) {
        llmux_request *req;
        char spec[256];
        r[i].loop = &e->loop;
        snprintf(spec, sizeof spec,
                 "openai/primary#status=503;base_url=http://127.0.0.1:%d/v1;"
                 "api_key=kp;max_retries=0",
                 llmux_mock_port(e->mock));
        assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
        llmux_request_add_message(req, LLMUX_ROLE_USER, "fall back slowly");
        snprintf(spec, sizeof spec,
                 "openai/second;base_url=http://127.0.0.1:%d/v1;"
                 "api_key=kf;rpm=60",
                 llmux_mock_port(e->mock));
        assert_int_equal(llmux_request_add_fallback(req, spec), 0);
        assert_int_equal(llmux_submit(e->client, req, NULL, on_timed, &r[i]),
                         0);
    }
    mock_env_run_until(e, &r[0].calls);
    mock_env_run_until(e, &r[1].calls);
    assert_int_equal(r[0].status, 0);
    assert_int_equal(r[1].status, 0);
    /* one of burst, then one a second */
    assert_true(r[0].done_ms - t0 < 500);
    assert_true(r[1].done_ms - t0 >= 950);
}

static void test_ratelimit_headers_pause(void **state)
{
    mock_env *e = *state;
    mock_call a = {0}, b = {0};
    uint64_t t0, ta;
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    /* the server says: no requests left, reset in 800 ms (the headers are
     * read on endpoints with a limit of their own) */
    {
        llmux_request *req = chat(e, NULL,
                                  "header=x-ratelimit-remaining-requests:0;"
                                  "header=x-ratelimit-reset-requests:800ms",
                                  "one");
        llmux_request_set_option(req, "rpm", "6000");
        mock_env_submit(e, req, &a);
    }
    mock_env_wait(e, &a);
    ta = uv_now(&e->loop) - t0;
    {
        llmux_request *req = chat(e, NULL, NULL, "two");
        llmux_request_set_option(req, "rpm", "6000");
        mock_env_submit(e, req, &b);
    }
    mock_env_wait(e, &b);
    assert_int_equal(b.status, 0);
    assert_true(uv_now(&e->loop) - t0 >= ta + 700);
    mock_call_free(&a);
    mock_call_free(&b);
}

/* Backpressure: a consumer pauses the stream and resumes it later. */
typedef struct slow {
    mock_env *e;
    llmux_request *req;
    uv_timer_t t;
    int chunks, chunks_at_resume, resumed, calls, status;
    uint64_t t_pause, t_resume;
} slow;

static void slow_resume(uv_timer_t *t)
{
    slow *s = t->data;
    s->chunks_at_resume = s->chunks;
    s->t_resume = uv_now(t->loop);
    assert_int_equal(llmux_request_resume(s->req), 0);
    assert_int_equal(s->chunks, s->chunks_at_resume); /* not inside resume */
    s->resumed = 1;
    uv_close((uv_handle_t *)t, NULL);
}

static int slow_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    slow *s = ud;
    (void)ch;
    s->chunks++;
    if (s->chunks == 2) {
        assert_int_equal(llmux_request_pause(req), 0);
        assert_int_equal(llmux_request_pause(req), 0); /* twice: harmless */
        s->t_pause = uv_now(&s->e->loop);
        uv_timer_init(&s->e->loop, &s->t);
        s->t.data = s;
        uv_timer_start(&s->t, slow_resume, 400, 0);
    }
    return 0;
}

static void slow_done(llmux_request *req, int status, llmux_response *res,
                      void *ud)
{
    slow *s = ud;
    (void)req;
    (void)res;
    s->calls++;
    s->status = status;
}

static void test_pause_resume(void **state)
{
    mock_env e;
    slow s;
    char h[64];
    (void)state;
    memset(&s, 0, sizeof s);
    env_start(&e, NULL, 20); /* one event every 20 ms */
    s.e = &e;
    s.req = chat(&e, NULL, "events=30", "go");
    llmux_request_set_stream(s.req, 1);
    /* a 150 ms idle timeout must not fire while we hold the stream */
    llmux_request_set_idle_timeout_ms(s.req, 150);
    (void)h;
    assert_int_equal(llmux_submit(e.client, s.req, slow_chunk, slow_done, &s),
                     0);
    mock_env_run_until(&e, &s.calls);
    assert_int_equal(s.status, 0);
    assert_true(s.resumed);
    /* nothing was read while paused (one read may have held a second) */
    assert_true(s.chunks_at_resume <= 3);
    assert_true(s.t_resume - s.t_pause >= 390);
    assert_true(s.chunks >= 30);
    /* not in flight any more: pause is refused */
    mock_env_stop(&e);
}

/*
 * Pause is immediate: the whole stream arrives in one read, the callback
 * pauses at the 3rd chunk and again at the 10th, and no chunk (and no
 * done callback, though curl has the whole answer) comes until each
 * resume; then the rest, in order, all of it. Another stream paused at
 * its 2nd chunk is cancelled while paused: done once, ECANCELED, no more
 * chunks.
 */
typedef struct strict {
    mock_env *e;
    llmux_request *req;
    uv_timer_t t;
    int chunks, calls, status, bad, cancel_it, stops[2], n_stops;
    int abort_at; /* the chunk callback stops the stream here */
    char text[512];
    size_t len;
} strict;

static void strict_timer(uv_timer_t *t)
{
    strict *s = t->data;
    /* nothing arrived while paused */
    if (s->chunks != s->stops[s->n_stops - 1] || s->calls)
        s->bad++;
    if (s->cancel_it)
        assert_int_equal(llmux_request_cancel(s->req), 0);
    else
        assert_int_equal(llmux_request_resume(s->req), 0);
}

static int strict_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    strict *s = ud;
    size_t n = 0;
    const char *t = llmux_chunk_text(ch, &n);
    if (t && n < sizeof s->text - s->len) {
        memcpy(s->text + s->len, t, n);
        s->len += n;
    }
    s->chunks++;
    if (s->abort_at && s->chunks == s->abort_at)
        return 1;
    if (s->n_stops < 2 && s->chunks == s->stops[s->n_stops]) {
        s->n_stops++;
        assert_int_equal(llmux_request_pause(req), 0);
        uv_timer_start(&s->t, strict_timer, 150, 0);
    }
    return 0;
}

static void strict_done(llmux_request *req, int status, llmux_response *res,
                        void *ud)
{
    strict *s = ud;
    (void)req;
    (void)res;
    s->calls++;
    s->status = status;
}

static int run_for(mock_env *e, const int *flag, uint64_t ms);

static void test_pause_is_immediate(void **state)
{
    mock_env e;
    strict a, b, c;
    char want[512];
    size_t wl = 0;
    int i;
    (void)state;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    env_start(&e, NULL, 0); /* no delay: the answer comes in one read */
    a.e = b.e = &e;
    a.stops[0] = 3;
    a.stops[1] = 10;
    b.stops[0] = 2;
    b.stops[1] = 1000;
    b.cancel_it = 1;
    /* c: 5 events then silence; paused at the 1st, it stops the stream at
     * the 2nd, which was held: done at once, not when bytes come */
    c.e = &e;
    c.stops[0] = 1;
    c.stops[1] = 1000;
    c.abort_at = 2;
    uv_timer_init(&e.loop, &a.t);
    uv_timer_init(&e.loop, &b.t);
    uv_timer_init(&e.loop, &c.t);
    a.t.data = &a;
    b.t.data = &b;
    c.t.data = &c;
    a.req = chat(&e, NULL, "events=20", "go");
    b.req = chat(&e, NULL, "events=20", "go");
    llmux_request_set_stream(a.req, 1);
    llmux_request_set_stream(b.req, 1);
    assert_int_equal(
        llmux_submit(e.client, a.req, strict_chunk, strict_done, &a), 0);
    assert_int_equal(
        llmux_submit(e.client, b.req, strict_chunk, strict_done, &b), 0);
    c.req = chat(&e, NULL, "events=20;stall_after=5", "go");
    llmux_request_set_stream(c.req, 1);
    assert_int_equal(
        llmux_submit(e.client, c.req, strict_chunk, strict_done, &c), 0);
    mock_env_run_until(&e, &a.calls);
    mock_env_run_until(&e, &b.calls);
    assert_true(run_for(&e, &c.calls, 3000));
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.status, LLMUX_EUSER);
    assert_int_equal(c.chunks, 2);
    assert_int_equal(a.bad, 0);
    assert_int_equal(a.n_stops, 2);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    for (i = 0; i < 20; i++)
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%stok%d",
                               i ? " " : "", i);
    assert_int_equal(a.len, wl);
    assert_memory_equal(a.text, want, wl);
    assert_int_equal(b.bad, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, LLMUX_ECANCELED);
    assert_int_equal(b.chunks, 2);
    uv_close((uv_handle_t *)&a.t, NULL);
    uv_close((uv_handle_t *)&b.t, NULL);
    uv_close((uv_handle_t *)&c.t, NULL);
    mock_env_stop(&e);
}

/* A plain TCP connect from the test, to fill the mock's accept queue. */
typedef struct plain_conn {
    uv_tcp_t tcp;
    uv_connect_t req;
    int done, status, closed;
} plain_conn;

static void on_plain_connect(uv_connect_t *req, int status)
{
    plain_conn *p = req->data;
    p->done = 1;
    p->status = status;
}

static void on_plain_closed(uv_handle_t *h)
{
    ((plain_conn *)h->data)->closed = 1;
}

static void on_flag_timer(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until *flag is set or `ms` have passed; returns *flag. */
static int run_for(mock_env *e, const int *flag, uint64_t ms)
{
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(&e->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_flag_timer, ms, 0);
    while (!*flag && !fired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    return *flag;
}

static void env_start_slow_accept(mock_env *e, int accept_delay_ms, int backlog)
{
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    memset(e, 0, sizeof *e);
    mo.quiet = 1;
    mo.accept_delay_ms = accept_delay_ms;
    mo.backlog = backlog;
    mock_env_start(e, NULL, &mo);
}

static void test_connect_timeout_slow_accept(void **state)
{
    mock_env e;
    enum { MAXC = 6 };
    plain_conn pc[MAXC];
    struct sockaddr_in addr;
    mock_call r = {0};
    llmux_request *req;
    uint64_t t0, took;
    int i, n = 0, connected = 0, never = 0;
    (void)state;
    memset(pc, 0, sizeof pc);
    /* the mock takes one connection off the kernel and sits on it for
     * 3 s; with backlog 1 the kernel queues one or two more (Linux:
     * backlog + 1), after which SYNs go unanswered */
    env_start_slow_accept(&e, 3000, 1);
    uv_ip4_addr("127.0.0.1", llmux_mock_port(e.mock), &addr);
    for (i = 0; i < MAXC; i++) {
        uv_tcp_init(&e.loop, &pc[i].tcp);
        pc[i].tcp.data = &pc[i];
        pc[i].req.data = &pc[i];
        n++;
        assert_int_equal(uv_tcp_connect(&pc[i].req, &pc[i].tcp,
                                        (const struct sockaddr *)&addr,
                                        on_plain_connect),
                         0);
        if (!run_for(&e, &pc[i].done, 250))
            break; /* unanswered: the queue is full */
        assert_int_equal(pc[i].status, 0);
        connected++;
        run_for(&e, &never, 30); /* let the mock's listener poll */
    }
    print_message("%d plain connects before the queue was full\n", connected);
    /* the backlog filled up before MAXC connects */
    assert_true(connected >= 1);
    assert_true(connected < MAXC);
    assert_false(pc[n - 1].done);

    req = chat(&e, NULL, NULL, "nobody home");
    llmux_request_set_connect_timeout_ms(req, 300);
    llmux_request_set_max_retries(req, 0);
    uv_update_time(&e.loop);
    t0 = uv_now(&e.loop);
    mock_env_call(&e, req, &r);
    took = uv_now(&e.loop) - t0;
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, LLMUX_ETIMEDOUT);
    assert_non_null(strstr(r.err->message, "connect_timeout"));
    assert_true(took >= 280);
    assert_true(took < 1000);
    /* still inside the accept delay: the mock answered nothing */
    assert_int_equal(llmux_mock_request_count(e.mock), 0);
    mock_call_free(&r);

    /* close the mock while its accept is pending, then the clients */
    for (i = 0; i < n; i++)
        uv_close((uv_handle_t *)&pc[i].tcp, on_plain_closed);
    for (i = 0; i < n; i++)
        mock_env_run_until(&e, &pc[i].closed);
    /* the unanswered connect reports its cancellation */
    assert_true(pc[n - 1].done);
    assert_int_equal(pc[n - 1].status, UV_ECANCELED);
    mock_env_stop(&e);
}

static void test_slow_accept_delays_answer(void **state)
{
    mock_env e;
    mock_call r[2];
    llmux_request *req;
    uint64_t t0, took;
    int i;
    (void)state;
    memset(r, 0, sizeof r);
    env_start_slow_accept(&e, 300, 0);
    uv_update_time(&e.loop);
    t0 = uv_now(&e.loop);
    /* two connections, accepted one after the other 300 ms apart */
    for (i = 0; i < 2; i++) {
        req = chat(&e, NULL, NULL, "late");
        llmux_request_set_max_retries(req, 0);
        mock_env_submit(&e, req, &r[i]);
    }
    mock_env_wait(&e, &r[0]);
    took = uv_now(&e.loop) - t0;
    assert_int_equal(r[0].status, 0);
    assert_string_equal(llmux_response_text(r[0].res, NULL),
                        "Mock reply to: late");
    assert_true(took >= 280);
    assert_true(took < 580);
    assert_int_equal(r[1].calls, 0);
    /* the second connection waits for its own delay: close the mock now,
     * with that accept pending; the request fails, nothing leaks */
    llmux_mock_close(e.mock, mock_env_set_flag, &e.mock_closed);
    mock_env_run_until(&e, &e.mock_closed);
    mock_env_wait(&e, &r[1]);
    assert_int_not_equal(r[1].status, 0);
    assert_int_equal(r[1].calls, 1);
    mock_call_free_all(r, 2);
    llmux_client_close(e.client, mock_env_set_flag, &e.client_closed);
    mock_env_run_until(&e, &e.client_closed);
    mock_env_close_loop(&e);
}

/*
 * A whole reply whose body stalls after its headers: the headers were its
 * first byte, so the idle timeout ends it (this hung forever with no
 * first_byte_timeout and no total deadline), named, and not retried
 * since the answer had begun. With a first_byte_timeout as well, that
 * one is met by the headers and does not fire.
 */
static void test_idle_timeout_after_headers(void **state)
{
    mock_env *e = *state;
    mock_call r[2];
    llmux_request *req;
    uint64_t t0;
    int i;
    memset(r, 0, sizeof r);
    uv_update_time(&e->loop);
    t0 = uv_now(&e->loop);
    for (i = 0; i < 2; i++) {
        req = chat(e, NULL, "stall_after=0", "headers only");
        llmux_request_set_idle_timeout_ms(req, 400);
        if (i)
            llmux_request_set_first_byte_timeout_ms(req, 200);
        mock_env_submit(e, req, &r[i]);
    }
    for (i = 0; i < 2; i++) {
        const llmux_error *err;
        assert_true(run_for(e, &r[i].calls, 5000));
        err = r[i].err;
        assert_int_equal(r[i].status, LLMUX_ETIMEDOUT);
        assert_non_null(strstr(err->message, "idle_timeout"));
        assert_int_equal(err->http_status, 200);
        assert_int_equal(err->attempts, 1);
    }
    assert_true(uv_now(&e->loop) - t0 >= 380);
    assert_int_equal(llmux_mock_request_count(e->mock), 2);
    mock_call_free_all(r, 2);
}

/* ---- cost and the spend budget ----------------------------------------- */

/* A price file of our own: gpt-4o-mini at $1 per output token, input free,
 * so that costs are whole numbers. */
static const char *price_file(char *path, size_t n)
{
    static const char text[] =
        "{\"providers\":{\"openai\":{\"models\":{\"gpt-4o-mini\":"
        "{\"input\":0,\"output\":1000000}}}}}";
    FILE *f;
    snprintf(path, n, "/tmp/llmux-prices-%d.json", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_cost_and_budget(void **state)
{
    mock_env e;
    mock_call a = {0}, b = {0};
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *req;
    char path[64], reserved_msg[200];
    double reserved;
    int known;
    (void)state;
    co.prices_file = price_file(path, sizeof path);
    co.budget_usd = 10;
    env_start(&e, &co, 0);
    /* "Mock reply to: a b" is 5 words: 5 output tokens, $5 */
    assert_int_equal(mock_env_call(&e, chat(&e, NULL, NULL, "a b"), &a), 0);
    assert_true(llmux_response_cost(a.res, &known) == 5.0);
    assert_int_equal(known, 1);
    assert_true(llmux_client_spend(e.client, &reserved) == 5.0);
    assert_true(reserved == 0);
    /* max_tokens 5 holds $5 while in flight: together with the $5 spent,
     * the budget is reached until it ends */
    req = chat(&e, NULL, "delay_ms=300", "c d");
    assert_int_equal(llmux_request_set_max_tokens(req, 5), 0);
    mock_env_submit(&e, req, &b);
    assert_true(llmux_client_spend(e.client, &reserved) == 5.0);
    assert_true(reserved == 5.0);
    req = chat(&e, NULL, NULL, "e");
    assert_int_equal(llmux_submit(e.client, req, NULL, NULL, NULL),
                     LLMUX_EBUDGET);
    snprintf(reserved_msg, sizeof reserved_msg, "%s",
             llmux_request_errmsg(req));
    assert_non_null(strstr(reserved_msg, "spend limit reached"));
    assert_non_null(strstr(reserved_msg, "budget_usd"));
    assert_int_equal(llmux_err_class_of(LLMUX_EBUDGET), LLMUX_CLASS_LOCAL);
    llmux_request_free(req);
    mock_env_wait(&e, &b);
    assert_int_equal(b.status, 0);
    /* what it really cost replaces what it held */
    assert_true(llmux_client_spend(e.client, &reserved) == 10.0);
    assert_true(reserved == 0);
    mock_call_free(&a);
    mock_call_free(&b);
    req = chat(&e, NULL, NULL, "f");
    assert_int_equal(llmux_submit(e.client, req, NULL, NULL, NULL),
                     LLMUX_EBUDGET);
    llmux_request_free(req);
    mock_env_stop(&e);
    unlink(path);

    /* a model without a price: no cost, no guess */
    env_start(&e, NULL, 0);
    {
        llmux_request *r2;
        char spec[256];
        snprintf(spec, sizeof spec,
                 "openai/mystery-model;base_url=http://127.0.0.1:%d/v1;"
                 "api_key=k",
                 llmux_mock_port(e.mock));
        assert_int_equal(llmux_request_new(&r2, LLMUX_OP_CHAT, spec), 0);
        llmux_request_add_message(r2, LLMUX_ROLE_USER, "x");
        assert_int_equal(mock_env_call(&e, r2, &a), 0);
        assert_true(llmux_response_cost(a.res, &known) == 0);
        assert_int_equal(known, 0);
        assert_true(llmux_client_spend(e.client, NULL) == 0);
        mock_call_free(&a);
    }
    mock_env_stop(&e);

    /* a prices_file that does not parse fails the client */
    {
        llmux_client *c;
        llmux_client_options bad = LLMUX_CLIENT_OPTIONS_INIT;
        FILE *f;
        snprintf(path, sizeof path, "/tmp/llmux-prices-bad-%d.json",
                 (int)getpid());
        f = fopen(path, "w");
        assert_non_null(f);
        fputs("{\"providers\":{\"p\":{\"models\":{\"m\":{}}}}}", f);
        fclose(f);
        bad.prices_file = path;
        assert_int_equal(llmux_client_new(&c, &bad), LLMUX_ECONFIG);
        bad.prices_file = "/nonexistent/prices.json";
        assert_int_equal(llmux_client_new(&c, &bad), LLMUX_ECONFIG);
        bad.prices_file = "/tmp"; /* opens, but reads fail */
        assert_int_equal(llmux_client_new(&c, &bad), LLMUX_ECONFIG);
        bad.prices_file = NULL;
        bad.budget_usd = -1;
        assert_int_equal(llmux_client_new(&c, &bad), LLMUX_EINVAL);
        unlink(path);
    }
}

/* One request on e's client: its status, and its cost in *cost. */
static int call_cost(mock_env *e, llmux_request *req, double *cost)
{
    mock_call a = {0};
    int rc = mock_env_call(e, req, &a), known = 0;
    *cost = rc == 0 ? llmux_response_cost(a.res, &known) : 0;
    if (rc == 0)
        assert_int_equal(known, 1);
    mock_call_free(&a);
    return rc;
}

/* Submitting req is refused with code and a message holding `want` (and
 * never `never`, may be NULL); req freed. */
static void refused(mock_env *e, llmux_request *req, int code, const char *want,
                    const char *never)
{
    const char *m;
    assert_int_equal(llmux_submit(e->client, req, NULL, NULL, NULL), code);
    m = llmux_request_errmsg(req);
    assert_non_null(m);
    if (!strstr(m, want))
        fail_msg("message \"%s\" does not name \"%s\"", m, want);
    if (never)
        assert_null(strstr(m, never));
    llmux_request_free(req);
}

/* A request with key and extra charged to scope (usd). */
static llmux_request *scoped(mock_env *e, const char *key, const char *extra,
                             const char *scope, double usd)
{
    llmux_request *req = chat_key(e, key, extra);
    assert_int_equal(llmux_request_set_budget(req, scope, usd, 0), 0);
    return req;
}

/* Budgets of an endpoint and API key (budget_usd=) and of a named scope
 * (llmux_request_set_budget), in one process: each is its own total, a
 * refusal names the scope and never the key, what requests in flight may
 * cost is held, and bad settings are refused. */
static void test_scoped_budgets(void **state)
{
    mock_env e;
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *req;
    mock_call slow = {0};
    char path[64];
    double c1, c2, reserved;
    (void)state;
    co.prices_file = price_file(path, sizeof path);
    env_start(&e, &co, 0);
    /* the key's budget: two answers spend it */
    assert_int_equal(
        call_cost(&e, chat_key(&e, "sk-secret-one", ";budget_usd=7.5"), &c1),
        0);
    assert_true(c1 == 4.0); /* "Mock reply to: keyed": $1 a token */
    assert_int_equal(
        call_cost(&e, chat_key(&e, "sk-secret-one", ";budget_usd=7.5"), &c2),
        0);
    refused(&e, chat_key(&e, "sk-secret-one", ";budget_usd=7.5"), LLMUX_EBUDGET,
            "budget_usd=7.5 of openai:http://127.0.0.1", "sk-secret-one");
    /* another key is another total; the same key without budget_usd= is
     * not limited */
    assert_int_equal(
        call_cost(&e, chat_key(&e, "sk-secret-two", ";budget_usd=7.5"), &c2),
        0);
    assert_int_equal(call_cost(&e, chat_key(&e, "sk-secret-one", ""), &c2), 0);

    /* a named scope: charged besides the key's */
    assert_int_equal(
        call_cost(&e, scoped(&e, "sk-secret-two", "", "tenant-a", 4), &c1), 0);
    refused(&e, scoped(&e, "sk-secret-two", "", "tenant-a", 4), LLMUX_EBUDGET,
            "budget scope 'tenant-a'", "sk-secret");
    assert_int_equal(
        call_cost(&e, scoped(&e, "sk-secret-two", "", "tenant-b", 5), &c1), 0);
    /* the key's budget holds for a named scope's request too (the
     * requests above, without budget_usd=, were not charged to it) */
    assert_int_equal(call_cost(&e,
                               scoped(&e, "sk-secret-two", ";budget_usd=7.5",
                                      "tenant-c", 100),
                               &c1),
                     0);
    refused(&e, scoped(&e, "sk-secret-two", ";budget_usd=7.5", "tenant-c", 100),
            LLMUX_EBUDGET, "budget_usd=7.5", "sk-secret");
    /* cleared: no scope */
    req = scoped(&e, "sk-secret-two", "", "tenant-a", 4);
    assert_int_equal(llmux_request_set_budget(req, NULL, 0, 0), 0);
    assert_int_equal(call_cost(&e, req, &c1), 0);

    /* a request in flight holds its max_tokens: the next one is refused
     * until it ends, then admitted on what it really cost */
    req = chat(&e, NULL, "delay_ms=300", "c d");
    assert_int_equal(llmux_request_set_max_tokens(req, 8), 0);
    assert_int_equal(llmux_request_set_budget(req, "held", 8, 0), 0);
    mock_env_submit(&e, req, &slow);
    llmux_client_spend(e.client, &reserved);
    assert_true(reserved == 8.0);
    req = chat(&e, NULL, NULL, "e");
    assert_int_equal(llmux_request_set_budget(req, "held", 8, 0), 0);
    assert_int_equal(llmux_request_set_max_tokens(req, 2), 0);
    refused(&e, req, LLMUX_EBUDGET, "$8.000000 held by requests in flight",
            NULL);
    mock_env_wait(&e, &slow);
    assert_int_equal(slow.status, 0);
    mock_call_free(&slow);
    llmux_client_spend(e.client, &reserved);
    assert_true(reserved == 0);
    req = chat(&e, NULL, NULL, "e"); /* $5 spent of 8: admitted */
    assert_int_equal(llmux_request_set_budget(req, "held", 8, 0), 0);
    assert_int_equal(call_cost(&e, req, &c1), 0);

    /* many scopes (the index grows past its first 64 buckets): each its
     * own total, found again */
    {
        char name[32];
        int i;
        for (i = 0; i < 200; i++) {
            snprintf(name, sizeof name, "many-%d", i);
            assert_int_equal(
                call_cost(&e, scoped(&e, "sk-many", "", name, 4), &c1), 0);
        }
        refused(&e, scoped(&e, "sk-many", "", "many-0", 4), LLMUX_EBUDGET,
                "budget scope 'many-0'", NULL);
        refused(&e, scoped(&e, "sk-many", "", "many-199", 4), LLMUX_EBUDGET,
                "budget scope 'many-199'", NULL);
    }

    /* a fallback is charged to its own endpoint and key's budget_usd=,
     * not the primary's: the primary fails (500, no retry), the fallback
     * answers ($4) */
    {
        char fb[256];
        snprintf(fb, sizeof fb,
                 "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;"
                 "api_key=sk-fb-two;budget_usd=7.5",
                 llmux_mock_port(e.mock));
        req = chat_key(&e, "sk-fb-one", ";budget_usd=3.9;max_retries=0");
        assert_int_equal(
            llmux_request_set_option(req, "model", "gpt-4o-mini#status=500"),
            0);
        assert_int_equal(llmux_request_add_fallback(req, fb), 0);
        assert_int_equal(call_cost(&e, req, &c1), 0);
        assert_true(c1 == 4.0);
        /* the primary's key spent nothing: $4 would be past its 3.9 */
        assert_int_equal(
            call_cost(&e, chat_key(&e, "sk-fb-one", ";budget_usd=3.9"), &c1),
            0);
        /* the fallback's key holds $4 of 7.5: one more, then refused, as
         * a fallback too (the request ends with LLMUX_EBUDGET) */
        assert_int_equal(
            call_cost(&e, chat_key(&e, "sk-fb-two", ";budget_usd=7.5"), &c1),
            0);
        req = chat_key(&e, "sk-fb-three", ";max_retries=0");
        assert_int_equal(
            llmux_request_set_option(req, "model", "gpt-4o-mini#status=500"),
            0);
        assert_int_equal(llmux_request_add_fallback(req, fb), 0);
        {
            mock_call a = {0};
            assert_int_equal(mock_env_call(&e, req, &a), LLMUX_EBUDGET);
            assert_non_null(a.err);
            assert_non_null(strstr(a.err->message, "budget_usd=7.5"));
            assert_null(strstr(a.err->message, "sk-fb"));
            mock_call_free(&a);
        }
    }

    /* bad names and amounts */
    req = chat(&e, NULL, NULL, "x");
    assert_int_equal(llmux_request_set_budget(req, "has space", 1, 0),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_budget(req, "", 1, 0), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_budget(req, "x", 0, 0), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_budget(req, "x", -1, 0), LLMUX_EINVAL);
    assert_int_equal(llmux_request_set_budget(NULL, "x", 1, 0), LLMUX_EINVAL);
    llmux_request_free(req);
    {
        static const char *const bad[] = {"budget_usd=0", "budget_usd=abc",
                                          "budget_usd=-1", "budget_usd=1.",
                                          "budget_usd=1e3"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char spec[128];
            snprintf(spec, sizeof spec, "openai/gpt-4o-mini;%s", bad[i]);
            req = NULL;
            assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec),
                             LLMUX_ECONFIG);
            assert_non_null(strstr(llmux_request_errmsg(req), "budget_"));
            llmux_request_free(req); /* it holds the message */
        }
    }
    mock_env_stop(&e);
    unlink(path);
    {
        llmux_client *c;
        llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
        o.budget_scope = "two words";
        assert_int_equal(llmux_client_new(&c, &o), LLMUX_ECONFIG);
    }
}

/* A budget per window: spent, refused with a message naming the window,
 * then admitted again in the next window (a named scope's window from
 * llmux_request_set_budget, a key's from budget_window=). */
static void test_budget_window(void **state)
{
    mock_env e;
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *req;
    char path[64];
    double c1;
    (void)state;
    co.prices_file = price_file(path, sizeof path);
    env_start(&e, &co, 0);
    mock_window_start(2000, 50);
    req = chat_key(&e, "sk-w", ";budget_usd=4;budget_window=2");
    assert_int_equal(llmux_request_set_budget(req, "per-window", 4, 2000), 0);
    assert_int_equal(call_cost(&e, req, &c1), 0);
    assert_true(c1 == 4.0);
    refused(&e, chat_key(&e, "sk-w", ";budget_usd=4;budget_window=2"),
            LLMUX_EBUDGET, "in this window of 2 s", "sk-w");
    req = chat_key(&e, "sk-w2", "");
    assert_int_equal(llmux_request_set_budget(req, "per-window", 4, 2000), 0);
    refused(&e, req, LLMUX_EBUDGET, "budget scope 'per-window'", NULL);
    /* the next window starts from 0 */
    mock_window_start(2000, 50);
    assert_int_equal(
        call_cost(&e, chat_key(&e, "sk-w", ";budget_usd=4;budget_window=2"),
                  &c1),
        0);
    req = chat_key(&e, "sk-w2", "");
    assert_int_equal(llmux_request_set_budget(req, "per-window", 4, 2000), 0);
    assert_int_equal(call_cost(&e, req, &c1), 0);
    /* a window without a budget is refused, not ignored */
    refused(&e, chat_key(&e, "sk-w", ";budget_window=2"), LLMUX_ECONFIG,
            "budget_window= wants budget_usd=", NULL);
    assert_int_equal(
        llmux_request_set_budget(req = chat(&e, NULL, NULL, "x"), "w", 1, -1),
        LLMUX_EINVAL);
    llmux_request_free(req);
    mock_env_stop(&e);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_in_flight_and_fifo),
        cmocka_unit_test(test_strict_fifo_one_at_a_time),
        cmocka_unit_test(test_per_endpoint_limit),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_start_ramp),
        cmocka_unit_test(test_start_ramp_private_loop),
        cmocka_unit_test(test_cancel_queued_and_close),
        cmocka_unit_test(test_cancel_queue_head),
        mock_env_test(test_first_byte_timeout),
        mock_env_test(test_first_byte_timeout_retried),
        mock_env_test(test_fallback_own_settings),
        cmocka_unit_test(test_cost_and_budget),
        cmocka_unit_test(test_scoped_budgets),
        cmocka_unit_test(test_budget_window),
        cmocka_unit_test(test_idle_timeout),
        mock_env_test(test_idle_timeout_after_headers),
        cmocka_unit_test(test_total_timeout_named),
        cmocka_unit_test(test_stage_timeouts_in_spec),
        mock_env_test(test_fallbacks),
        cmocka_unit_test(test_log_never_shows_keys),
        cmocka_unit_test(test_insecure_warns_once),
        mock_env_test(test_rpm_holds_rate),
        cmocka_unit_test(test_client_rpm_default),
        mock_env_test(test_tpm_slows_big_requests),
        mock_env_test(test_429_pauses_endpoint),
        mock_env_test(test_rate_limits_per_key),
        mock_env_test(test_fallback_rate_limit),
        mock_env_test(test_ratelimit_headers_pause),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_pause_is_immediate),
        cmocka_unit_test(test_connect_timeout_slow_accept),
        cmocka_unit_test(test_slow_accept_delays_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
