/*
 * tests/mock/mock_env.c: see mock_env.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mock_env.h"

void mock_env_set_flag(void *ud)
{
    *(int *)ud = 1;
}

void mock_env_on_client_closed(void *ud)
{
    ((mock_env *)ud)->client_closed = 1;
}

void mock_env_start(mock_env *e, const llmux_client_options *co,
                    const llmux_mock_options *mo)
{
    llmux_mock_options m = LLMUX_MOCK_OPTIONS_INIT;
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(uv_timer_init(&e->loop, &e->tick), 0);
    if (mo)
        m = *mo;
    else
        m.quiet = 1;
    assert_int_equal(llmux_mock_start(&e->mock, &e->loop, &m), 0);
    snprintf(e->base, sizeof e->base, "http://127.0.0.1:%d/v1",
             llmux_mock_port(e->mock));
    if (co)
        o = *co;
    o.loop = &e->loop;
    assert_int_equal(llmux_client_new(&e->client, &o), 0);
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only ends the turn's wait */
}

void mock_env_run_until(mock_env *e, const int *flag)
{
    uint64_t end = uv_now(&e->loop) + 60000;
    /* UV_RUN_ONCE blocks in poll even when a timer callback of that turn
     * (a done callback, say) already set the flag: the tick bounds it */
    uv_timer_start(&e->tick, on_tick, 10, 10);
    while (!*flag && uv_now(&e->loop) < end)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->tick);
    if (!*flag)
        fail_msg("mock_env_run_until: still waiting after 60 s");
}

void mock_env_close_client(mock_env *e)
{
    llmux_client_close(e->client, mock_env_on_client_closed, e);
    mock_env_run_until(e, &e->client_closed);
    e->client = NULL;
}

void mock_env_stop(mock_env *e)
{
    if (e->client && !e->client_closed)
        mock_env_close_client(e);
    llmux_mock_close(e->mock, mock_env_set_flag, &e->mock_closed);
    mock_env_run_until(e, &e->mock_closed);
    mock_env_close_loop(e);
}

void mock_env_close_loop(mock_env *e)
{
    uv_close((uv_handle_t *)&e->tick, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}
