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

void mock_env_run_until(mock_env *e, const int *flag)
{
    int i;
    for (i = 0; i < 400000 && !*flag; i++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_true(*flag);
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
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}
