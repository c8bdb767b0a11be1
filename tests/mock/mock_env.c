/*
 * tests/mock/mock_env.c: see mock_env.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* ---- the fixture ---------------------------------------------------------*/

int mock_env_setup(void **state)
{
    const mock_env_config *cfg = *state;
    mock_env *e = malloc(sizeof *e);
    assert_non_null(e);
    mock_env_start(e, cfg ? cfg->client : NULL, cfg ? cfg->mock : NULL);
    *state = e;
    return 0;
}

int mock_env_teardown(void **state)
{
    mock_env *e = *state;
    if (e->client && !e->client_closed && llmux_client_pending(e->client)) {
        print_error("mock_env_teardown: %zu requests still pending: the test "
                    "stopped half-way; its environment is left open\n",
                    llmux_client_pending(e->client));
        return -1;
    }
    mock_env_stop(e);
    free(e);
    return 0;
}

/* ---- one request ---------------------------------------------------------*/

int mock_call_on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    mock_call *c = ud;
    size_t len;
    const char *t = llmux_chunk_text(ch, &len);
    (void)req;
    if (c->in_submit)
        c->called_in_submit = 1;
    c->chunks++;
    if (c->text_len + len < sizeof c->text) {
        memcpy(c->text + c->text_len, t, len);
        c->text_len += len;
        c->text[c->text_len] = '\0';
    }
    if (llmux_chunk_usage(ch))
        c->chunk_usage = 1;
    return c->abort_after && c->chunks >= c->abort_after;
}

void mock_call_on_done(llmux_request *req, int status, llmux_response *res,
                       void *ud)
{
    mock_call *c = ud;
    (void)req;
    if (c->in_submit)
        c->called_in_submit = 1;
    c->calls++;
    c->status = status;
    if (c->e)
        c->order = ++c->e->n_done;
    if (!c->res) {
        c->res = llmux_response_retain(res);
        c->err = llmux_response_error(c->res);
    }
}

void mock_env_submit(mock_env *e, llmux_request *req, mock_call *c)
{
    int rc;
    c->e = e;
    c->in_submit = 1;
    rc = llmux_submit(e->client, req, mock_call_on_chunk, mock_call_on_done, c);
    c->in_submit = 0;
    assert_int_equal(rc, 0);
    assert_int_equal(c->calls, 0); /* never inside llmux_submit() */
    assert_int_equal(c->called_in_submit, 0);
}

void mock_env_wait(mock_env *e, mock_call *c)
{
    mock_env_run_until(e, &c->calls);
    assert_int_equal(c->calls, 1); /* exactly once */
}

void mock_env_wait_all(mock_env *e, mock_call *c, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        mock_env_wait(e, &c[i]);
}

void mock_env_close_other(mock_env *e, llmux_client *c)
{
    int closed = 0;
    llmux_client_close(c, mock_env_set_flag, &closed);
    mock_env_run_until(e, &closed);
}

static void on_pause_timer(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

void mock_env_pause_ms(mock_env *e, uint64_t ms)
{
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(&e->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_pause_timer, ms, 0);
    mock_env_run_until(e, &fired);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* the close ends before t's frame */
}

int mock_env_call(mock_env *e, llmux_request *req, mock_call *c)
{
    mock_env_submit(e, req, c);
    mock_env_wait(e, c);
    return c->status;
}

void mock_call_free(mock_call *c)
{
    llmux_response_free(c->res);
    memset(c, 0, sizeof *c);
}

void mock_call_free_all(mock_call *c, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        mock_call_free(&c[i]);
}

void mock_window_start(long window_ms, long ms)
{
    struct timespec now, d;
    long at;
    clock_gettime(CLOCK_REALTIME, &now);
    at = (long)(((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000) %
                window_ms);
    at = at < ms ? ms - at : window_ms - at + ms;
    d.tv_sec = at / 1000;
    d.tv_nsec = (at % 1000) * 1000000L;
    nanosleep(&d, NULL);
}
