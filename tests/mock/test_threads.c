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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clients_on_threads),
    };
    int rc;
    /* before any thread: libcurl's global set-up is not thread-safe */
    if (llmux_global_init() != 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    llmux_global_cleanup();
    return rc;
}
