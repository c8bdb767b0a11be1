/*
 * tests/mock/mock_env.h: the harness the end-to-end tests share: a loop,
 * an in-process llmux-mock and a client on that loop, and their clean
 * shutdown (client closed, mock closed, uv_loop_close() returning 0).
 * Failures are cmocka assertions, so call these from the main thread.
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

/* Closes what is left and the loop, asserting uv_loop_close() == 0. */
void mock_env_stop(mock_env *e);

/* Once the client and the mock are closed by the test itself: closes the
 * harness's own handle and the loop, asserting uv_loop_close() == 0. */
void mock_env_close_loop(mock_env *e);

/* Close callbacks: sets *(int *)ud; sets ((mock_env *)ud)->client_closed. */
void mock_env_set_flag(void *ud);
void mock_env_on_client_closed(void *ud);

#endif
