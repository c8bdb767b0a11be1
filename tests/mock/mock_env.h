/*
 * tests/mock/mock_env.h: the harness the end-to-end tests share: a loop,
 * an in-process llmux-mock and a client on that loop, and their clean
 * shutdown (client closed, mock closed, uv_loop_close() returning 0).
 * Failures are cmocka assertions, so call these from the main thread.
 *
 * A test usually takes its environment from the fixture and asks through
 * mock_env_call:
 *
 *     static void test_x(void **state)
 *     {
 *         mock_env *e = *state;
 *         mock_call c = {0};
 *         assert_int_equal(mock_env_call(e, some_request(e), &c), 0);
 *         assert_string_equal(llmux_response_text(c.res, NULL), "...");
 *         mock_call_free(&c);
 *     }
 *     ...
 *     mock_env_test(test_x),
 *
 * Several requests at once: mock_env_submit each, then mock_env_wait.
 */
#ifndef LLMUX_TESTS_MOCK_ENV_H
#define LLMUX_TESTS_MOCK_ENV_H

#include <uv.h>

#include <llmux/llmux.h>

#include "../../tools/mock/llmux_mock.h"

typedef struct mock_env {
    uv_loop_t loop;
    llmux_mock *mock;
    llmux_client *client; /* NULL once mock_env_close_client() ran */
    char base[128];       /* the mock's OpenAI base URL, .../v1 */
    int client_closed, mock_closed;
    uv_timer_t tick; /* wakes mock_env_run_until's loop turns */
    int n_done;      /* done callbacks of mock_call requests so far */
} mock_env;

/* Starts the loop, the mock (`mo`, or quiet defaults) and a client with
 * `co` (or defaults) on the loop. */
void mock_env_start(mock_env *e, const llmux_client_options *co,
                    const llmux_mock_options *mo);

/* Runs the loop until *flag is set; bounded (60 s), so a bug fails
 * instead of hanging. A timer ticking meanwhile keeps a turn from
 * blocking in poll after a callback already set the flag. */
void mock_env_run_until(mock_env *e, const int *flag);

/* Closes the client and waits for its close callback. */
void mock_env_close_client(mock_env *e);
/* Closes another client on the env's loop and waits for its close. */
void mock_env_close_other(mock_env *e, llmux_client *c);
/* Runs the loop for about ms (what callbacks started goes on meanwhile). */
void mock_env_pause_ms(mock_env *e, uint64_t ms);

/* Closes what is left and the loop, asserting uv_loop_close() == 0. */
void mock_env_stop(mock_env *e);

/* Once the client and the mock are closed by the test itself: closes the
 * harness's own handle and the loop, asserting uv_loop_close() == 0. */
void mock_env_close_loop(mock_env *e);

/* Close callbacks: sets *(int *)ud; sets ((mock_env *)ud)->client_closed. */
void mock_env_set_flag(void *ud);
void mock_env_on_client_closed(void *ud);

/* ---- the fixture: an environment for each test ------------------------- */

/* Options for mock_env_setup, as a cmocka initial state (NULL members:
 * the defaults, a quiet mock). */
typedef struct mock_env_config {
    const llmux_client_options *client;
    const llmux_mock_options *mock;
} mock_env_config;

/* cmocka setup: starts a mock_env (with the mock_env_config *state holds,
 * if any) and makes it the test's state. */
int mock_env_setup(void **state);
/* cmocka teardown: mock_env_stop (uv_loop_close() == 0) and frees it.
 * It runs the loop when the test's stack frame is gone: a handle of the
 * test's own on the loop must be closed, and its close ended by a loop
 * turn, before the test returns. Requests still pending mean the test
 * stopped half-way (a failed assertion): their callbacks would write into
 * that gone frame, so the environment is then left as it is, and the
 * teardown fails. */
int mock_env_teardown(void **state);

#define mock_env_test(f)                                                       \
    cmocka_unit_test_setup_teardown(f, mock_env_setup, mock_env_teardown)
/* With a mock_env_config (it must outlive the run). */
#define mock_env_test_with(f, config)                                          \
    cmocka_unit_test_prestate_setup_teardown(f, mock_env_setup,                \
                                             mock_env_teardown, config)

/* ---- one request and what its callbacks saw ---------------------------- */

typedef struct mock_call {
    mock_env *e;
    int calls;            /* done callbacks (1 once done) */
    int status;           /* the done callback's status */
    int order;            /* it was the env's n-th done callback (from 1) */
    int called_in_submit; /* a callback ran inside llmux_submit() */
    int chunks;           /* chunk callbacks */
    int abort_after;      /* set: the chunk callback stops the stream
                             after this many chunks */
    int chunk_usage;      /* a chunk carried usage */
    char text[4096];      /* the chunks' text, in order (as much as fits) */
    size_t text_len;
    llmux_response *res;    /* retained by the done callback */
    const llmux_error *err; /* llmux_response_error(res) */
    int in_submit;
} mock_call;

/* The callbacks, for a test that calls llmux_submit() itself with a
 * mock_call as userdata. */
int mock_call_on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud);
void mock_call_on_done(llmux_request *req, int status, llmux_response *res,
                       void *ud);

/* Submits `req` (owned from here) with those callbacks: llmux_submit() must
 * return 0 and call neither back. */
void mock_env_submit(mock_env *e, llmux_request *req, mock_call *c);
/* Runs the loop until c's done callback ran (bounded, as run_until); it
 * must have run once. */
void mock_env_wait(mock_env *e, mock_call *c);
/* mock_env_wait for each of c[0..n). */
void mock_env_wait_all(mock_env *e, mock_call *c, size_t n);
/* mock_env_submit, then mock_env_wait; returns the done status. */
int mock_env_call(mock_env *e, llmux_request *req, mock_call *c);
/* Frees c's response and clears *c for another request. */
void mock_call_free(mock_call *c);
/* mock_call_free for each of c[0..n). */
void mock_call_free_all(mock_call *c, size_t n);

/* Sleeps until `ms` past a multiple of window_ms since the Unix epoch
 * (the wall clock), so that what follows has most of a window to run in
 * (the budgets' windows). */
void mock_window_start(long window_ms, long ms);

#endif
