/*
 * tests/mock/test_threads.c: clients on several threads at once, each on
 * its own loop with its own llmux-mock, asking all four providers, streamed
 * and not. The plugins are loaded once and shared by every thread, and
 * their codecs lend parsers from one spare per module: every thread must
 * get exactly its own answers, and close its loop cleanly.
 *
 * cmocka's assertions must not run off the main thread, so the threads
 * count what went wrong and the main thread asserts.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "mock/mock_env.h"

#define THREADS 4
#define PER     48 /* requests per thread: 4 providers x stream or not */

static const struct {
    const char *name, *model, *path;
} providers[] = {
    {"openai", "gpt-4o-mini", "/v1"},
    {"mistral", "mistral-small-latest", "/mistral"},
    {"ollama", "llama3.2", "/ollama"},
    {"alephalpha", "llama-3.1-8b-instruct", "/aleph"},
};

typedef struct job job;

typedef struct one {
    job *j;
    char want[96];
    char got[160];
    size_t got_len;
    int stream, calls, status;
} one;

struct job {
    int t;
    uv_loop_t loop;
    llmux_mock *mock;
    llmux_client *client;
    one req[PER];
    int closed, mock_closed;
    /* results, read by the main thread after join */
    int setup_rc, submit_failed, ok, wrong_text, failed, extra_calls;
    int loop_close_rc;
    char first_error[200];
};

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    one *o = ud;
    size_t n = 0;
    const char *t = llmux_chunk_text(ch, &n);
    (void)req;
    if (t && n < sizeof o->got - o->got_len) {
        memcpy(o->got + o->got_len, t, n);
        o->got_len += n;
    }
    return 0;
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    one *o = ud;
    job *j = o->j;
    (void)req;
    if (o->calls++) {
        j->extra_calls++;
        return;
    }
    o->status = status;
    if (status != 0) {
        j->failed++;
        if (!j->first_error[0]) {
            const llmux_error *e = llmux_response_error(res);
            snprintf(j->first_error, sizeof j->first_error, "%s: %s",
                     llmux_strerror(status), e && e->message ? e->message : "");
        }
        return;
    }
    if (!o->stream) {
        size_t n = 0;
        const char *t = llmux_response_text(res, &n);
        if (t && n < sizeof o->got) {
            memcpy(o->got, t, n);
            o->got_len = n;
        }
    }
    if (o->got_len == strlen(o->want) &&
        memcmp(o->got, o->want, o->got_len) == 0)
        j->ok++;
    else
        j->wrong_text++;
}

static int all_done(const job *j)
{
    int i;
    for (i = 0; i < PER; i++)
        if (!j->req[i].calls)
            return 0;
    return 1;
}

static void *run_job(void *arg)
{
    job *j = arg;
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    int i, guard;
    if ((j->setup_rc = uv_loop_init(&j->loop)) != 0)
        return NULL;
    mo.quiet = 1;
    if ((j->setup_rc = llmux_mock_start(&j->mock, &j->loop, &mo)) != 0)
        return NULL;
    co.loop = &j->loop;
    co.max_in_flight = 16;
    if ((j->setup_rc = llmux_client_new(&j->client, &co)) != 0)
        return NULL;
    for (i = 0; i < PER; i++) {
        one *o = &j->req[i];
        int p = i % 4;
        char spec[256], prompt[64];
        llmux_request *req;
        o->j = j;
        o->stream = (i / 4) % 2;
        snprintf(prompt, sizeof prompt, "thread %d request %d", j->t, i);
        snprintf(o->want, sizeof o->want, "Mock reply to: %s", prompt);
        snprintf(spec, sizeof spec,
                 "%s/%s;base_url=http://127.0.0.1:%d%s;api_key=sk-test",
                 providers[p].name, providers[p].model,
                 llmux_mock_port(j->mock), providers[p].path);
        if (llmux_request_new(&req, LLMUX_OP_CHAT, spec) != 0 ||
            llmux_request_add_message(req, LLMUX_ROLE_USER, prompt) != 0 ||
            llmux_request_set_stream(req, o->stream) != 0) {
            j->submit_failed++;
            o->calls = 1;
            continue;
        }
        if (llmux_submit(j->client, req, o->stream ? on_chunk : NULL, on_done,
                         o) != 0) {
            llmux_request_free(req);
            j->submit_failed++;
            o->calls = 1;
        }
    }
    for (guard = 0; guard < 200000 && !all_done(j); guard++)
        uv_run(&j->loop, UV_RUN_ONCE);
    llmux_client_close(j->client, mock_env_set_flag, &j->closed);
    for (guard = 0; guard < 200000 && !j->closed; guard++)
        uv_run(&j->loop, UV_RUN_ONCE);
    llmux_mock_close(j->mock, mock_env_set_flag, &j->mock_closed);
    for (guard = 0; guard < 200000 && !j->mock_closed; guard++)
        uv_run(&j->loop, UV_RUN_ONCE);
    uv_run(&j->loop, UV_RUN_DEFAULT);
    j->loop_close_rc = uv_loop_close(&j->loop);
    return NULL;
}

static void test_clients_on_threads(void **state)
{
    pthread_t th[THREADS];
    job *jobs = calloc(THREADS, sizeof *jobs);
    int i;
    (void)state;
    assert_non_null(jobs);
    for (i = 0; i < THREADS; i++) {
        jobs[i].t = i;
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (i = 0; i < THREADS; i++) {
        job *j = &jobs[i];
        if (j->first_error[0])
            print_error("thread %d: %s\n", i, j->first_error);
        assert_int_equal(j->setup_rc, 0);
        assert_int_equal(j->submit_failed, 0);
        assert_int_equal(j->failed, 0);
        assert_int_equal(j->wrong_text, 0);
        assert_int_equal(j->extra_calls, 0);
        assert_int_equal(j->ok, PER);
        assert_int_equal(j->loop_close_rc, 0);
    }
    free(jobs);
}

/* ---- one client, many submitting threads ------------------------------ */

#define SUBMITTERS 8
#define EACH       24 /* good requests per submitting thread */

typedef struct sub {
    int t;
    llmux_client *client;
    mock_env *e;
    one req[EACH];
    int bad_calls, bad_status;       /* the unknown provider's done */
    int cancel_calls, cancel_status; /* the cancelled stream's done */
    int submit_failed;
} sub;

static void on_bad_done(llmux_request *req, int status, llmux_response *res,
                        void *ud)
{
    sub *s = ud;
    (void)req;
    (void)res;
    s->bad_calls++;
    s->bad_status = status;
}

static void on_cancel_done(llmux_request *req, int status, llmux_response *res,
                           void *ud)
{
    sub *s = ud;
    (void)req;
    (void)res;
    s->cancel_calls++;
    s->cancel_status = status;
}

/* Off the loop's thread: builds and submits its requests, one that cannot
 * be prepared, and one stalled stream it cancels itself. */
static void *submitter(void *arg)
{
    sub *s = arg;
    char spec[256], prompt[64];
    llmux_request *req;
    int i;
    snprintf(spec, sizeof spec, "openai/gpt-4o-mini;base_url=%s;api_key=k",
             s->e->base);
    for (i = 0; i < EACH; i++) {
        one *o = &s->req[i];
        o->stream = i % 2;
        snprintf(prompt, sizeof prompt, "submitter %d request %d", s->t, i);
        snprintf(o->want, sizeof o->want, "Mock reply to: %s", prompt);
        if (llmux_request_new(&req, LLMUX_OP_CHAT, spec) != 0 ||
            llmux_request_add_message(req, LLMUX_ROLE_USER, prompt) != 0 ||
            llmux_request_set_stream(req, o->stream) != 0 ||
            llmux_submit(s->client, req, o->stream ? on_chunk : NULL, on_done,
                         o) != 0) {
            s->submit_failed++;
            llmux_request_free(req);
        }
    }
    /* accepted here, refused on the loop: its done callback says why */
    if (llmux_request_new(&req, LLMUX_OP_CHAT, "nosuchprovider/x") != 0 ||
        llmux_request_add_message(req, LLMUX_ROLE_USER, "x") != 0 ||
        llmux_submit(s->client, req, NULL, on_bad_done, s) != 0) {
        s->submit_failed++;
        llmux_request_free(req);
    }
    /* a stream that stalls, cancelled from this thread */
    if (llmux_request_new(&req, LLMUX_OP_CHAT, spec) != 0 ||
        llmux_request_add_message(req, LLMUX_ROLE_USER, "stall") != 0 ||
        llmux_request_set_stream(req, 1) != 0 ||
        llmux_request_add_header(req, "X-Mock-Fault: stall_after=1") != 0 ||
        llmux_submit(s->client, req, NULL, on_cancel_done, s) != 0) {
        s->submit_failed++;
        llmux_request_free(req);
    } else if (llmux_request_cancel(req) != 0) {
        s->submit_failed++;
    }
    return NULL;
}

static int subs_done(const sub *subs)
{
    int t, i;
    for (t = 0; t < SUBMITTERS; t++) {
        if (!subs[t].bad_calls || !subs[t].cancel_calls)
            return 0;
        for (i = 0; i < EACH; i++)
            if (!subs[t].req[i].calls)
                return 0;
    }
    return 1;
}

static void test_one_client_many_threads(void **state)
{
    mock_env *e = *state;
    pthread_t th[SUBMITTERS];
    sub *subs = calloc(SUBMITTERS, sizeof *subs);
    job tally; /* on_done counts into a job */
    int t, i, guard;
    assert_non_null(subs);
    memset(&tally, 0, sizeof tally);
    for (t = 0; t < SUBMITTERS; t++) {
        subs[t].t = t;
        subs[t].client = e->client;
        subs[t].e = e;
        for (i = 0; i < EACH; i++)
            subs[t].req[i].j = &tally;
    }
    for (t = 0; t < SUBMITTERS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, submitter, &subs[t]), 0);
    /* this thread runs the loop: every callback runs here */
    for (guard = 0; guard < 2000000 && !subs_done(subs); guard++)
        uv_run(&e->loop, UV_RUN_ONCE);
    for (t = 0; t < SUBMITTERS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    if (tally.first_error[0])
        print_error("%s\n", tally.first_error);
    for (t = 0; t < SUBMITTERS; t++) {
        assert_int_equal(subs[t].submit_failed, 0);
        assert_int_equal(subs[t].bad_calls, 1);
        assert_int_equal(subs[t].bad_status, LLMUX_ENOPROVIDER);
        assert_int_equal(subs[t].cancel_calls, 1);
        assert_int_equal(subs[t].cancel_status, LLMUX_ECANCELED);
    }
    assert_int_equal(tally.failed, 0);
    assert_int_equal(tally.wrong_text, 0);
    assert_int_equal(tally.extra_calls, 0);
    assert_int_equal(tally.ok, SUBMITTERS * EACH);
    free(subs);
}

/* Requests other threads handed over when the client closes: each ends
 * canceled through its done callback, from the loop; a submission after
 * the close is refused at once. */
typedef struct outcome {
    int calls, status;
} outcome;

typedef struct closing_sub {
    llmux_client *client;
    const char *spec;
    outcome r[3];
    int late_rc;
    int built_failed;
    llmux_request *last; /* the last request submitted */
} closing_sub;

static void on_closing_done(llmux_request *req, int status, llmux_response *res,
                            void *ud)
{
    outcome *o = ud;
    (void)req;
    (void)res;
    if (o) {
        o->calls++;
        o->status = status;
    }
}

/* Sets s up for e's client, its requests to spec (filled here, it must
 * outlive s's use). */
static void closing_setup(mock_env *e, closing_sub *s, char *spec, size_t n)
{
    memset(s, 0, sizeof *s);
    snprintf(spec, n, "openai/gpt-4o-mini;base_url=%s;api_key=k", e->base);
    s->client = e->client;
    s->spec = spec;
}

/* Runs fn(s) on a thread of its own, to its end. */
static void on_thread(void *(*fn)(void *), closing_sub *s)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fn, s), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
}

/* A chat request to s's spec, or NULL (counted in built_failed). */
static llmux_request *x_request(closing_sub *s)
{
    llmux_request *req;
    if (llmux_request_new(&req, LLMUX_OP_CHAT, s->spec) != 0 ||
        llmux_request_add_message(req, LLMUX_ROLE_USER, "x") != 0) {
        s->built_failed++;
        llmux_request_free(req);
        return NULL;
    }
    return req;
}

static void *submit_three(void *arg)
{
    closing_sub *s = arg;
    int i;
    for (i = 0; i < 3; i++) {
        llmux_request *req = x_request(s);
        if (!req)
            continue;
        if (llmux_submit(s->client, req, NULL, on_closing_done, &s->r[i])) {
            s->built_failed++;
            llmux_request_free(req);
        } else {
            s->last = req;
        }
    }
    return NULL;
}

static void *submit_late(void *arg)
{
    closing_sub *s = arg;
    llmux_request *req = x_request(s);
    if (!req)
        return NULL;
    s->late_rc = llmux_submit(s->client, req, NULL, on_closing_done, NULL);
    llmux_request_free(req); /* not accepted: still ours */
    return NULL;
}

static void test_handover_at_close(void **state)
{
    mock_env *e = *state;
    closing_sub s;
    char spec[256];
    int i;
    closing_setup(e, &s, spec, sizeof spec);
    /* handed over, not yet taken by the loop (it has not run since) */
    on_thread(submit_three, &s);
    llmux_client_close(e->client, mock_env_on_client_closed, e);
    for (i = 0; i < 3; i++)
        assert_int_equal(s.r[i].calls, 0); /* never inside the close */
    on_thread(submit_late, &s);
    assert_int_equal(s.late_rc, LLMUX_ECANCELED);
    mock_env_run_until(e, &e->client_closed);
    e->client = NULL;
    assert_int_equal(s.built_failed, 0);
    for (i = 0; i < 3; i++) {
        assert_int_equal(s.r[i].calls, 1);
        assert_int_equal(s.r[i].status, LLMUX_ECANCELED);
    }
}

/* The loop's thread cancels a request another thread handed over before
 * the loop took it; a request handed over twice gets LLMUX_EBUSY for the
 * second time, and is not freed by it. */
static void *submit_one_twice(void *arg)
{
    closing_sub *s = arg;
    llmux_request *req = x_request(s);
    if (!req)
        return NULL;
    if (llmux_submit(s->client, req, NULL, on_closing_done, &s->r[0]) != 0) {
        s->built_failed++;
        llmux_request_free(req);
        return NULL;
    }
    /* the same request again: a caller's mistake the loop reports */
    if (llmux_submit(s->client, req, NULL, on_closing_done, &s->r[1]) != 0)
        s->built_failed++;
    return NULL;
}

static void test_handover_cancel_and_twice(void **state)
{
    mock_env *e = *state;
    closing_sub s;
    char spec[256];
    llmux_request *req;
    closing_setup(e, &s, spec, sizeof spec);
    on_thread(submit_three, &s);
    /* not taken yet (the loop has not run): the third is cancelled from
     * this, the loop's, thread */
    req = s.last;
    assert_non_null(req);
    assert_int_equal(llmux_request_cancel(req), 0);
    assert_int_equal(s.r[2].calls, 0); /* never inside the call */
    while (!s.r[0].calls || !s.r[1].calls || !s.r[2].calls)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(s.r[0].status, 0);
    assert_int_equal(s.r[1].status, 0);
    assert_int_equal(s.r[2].calls, 1);
    assert_int_equal(s.r[2].status, LLMUX_ECANCELED);

    closing_setup(e, &s, spec, sizeof spec);
    on_thread(submit_one_twice, &s);
    while (!s.r[0].calls || !s.r[1].calls)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(s.built_failed, 0);
    assert_int_equal(s.r[0].calls, 1);
    assert_int_equal(s.r[0].status, 0);
    assert_int_equal(s.r[1].calls, 1);
    assert_int_equal(s.r[1].status, LLMUX_EBUSY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clients_on_threads),
        mock_env_test(test_one_client_many_threads),
        mock_env_test(test_handover_at_close),
        mock_env_test(test_handover_cancel_and_twice),
    };
    int rc;
    /* before any thread: libcurl's global set-up is not thread-safe */
    if (llmux_global_init() != 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    llmux_global_cleanup();
    return rc;
}
