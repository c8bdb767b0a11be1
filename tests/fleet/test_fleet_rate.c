/*
 * tests/fleet/test_fleet_rate.c: three processes (fleet_driver) sharing
 * one rpm through Redis hold the global rate within 10% over 20 s. Each
 * submits far more than the limit allows against one llmux-mock (in this
 * process, which counts what it received); the shared bucket (600 rpm:
 * 10 a second, one second of burst, so 10 + 10 * 20 = 210 in the first
 * 20 s after the first request) holds all three together. Without the
 * sharing each would send 210. Skipped (77) without redis-server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "fleet_env.h"
#include "mock/mock_env.h"

#define PROCS     3
#define RPM       600
#define WINDOW_MS 20000

static fleet_redis srv;

typedef struct fleet {
    mock_env *e;
    uv_process_t proc[PROCS];
    fleet_procs procs;
    double t_first; /* the first request the mock saw */
    long at_window; /* requests the mock saw WINDOW_MS after it, or -1 */
    uv_timer_t sample;
} fleet;

static void on_sample(uv_timer_t *t)
{
    fleet *f = t->data;
    size_t n = llmux_mock_request_count(f->e->mock);
    double now = fleet_now_ms();
    if (n && !f->t_first)
        f->t_first = now;
    if (f->t_first && f->at_window < 0 && now - f->t_first >= WINDOW_MS)
        f->at_window = (long)n;
}

static void test_three_processes_share_rpm(void **state)
{
    mock_env *e = *state;
    fleet f;
    char spec[1024], ms[32];
    int i;
    long want = RPM / 60 + (long)RPM * (WINDOW_MS / 1000) / 60;
    memset(&f, 0, sizeof f);
    f.e = e;
    f.at_window = -1;
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;"
             "api_key=sk-fleet;rpm=%d;limits=%s",
             llmux_mock_port(e->mock), RPM, srv.url);
    snprintf(ms, sizeof ms, "%d", WINDOW_MS + 3000);
    for (i = 0; i < PROCS; i++) {
        char *args[] = {FLEET_DRIVER, spec, "2000", ms, NULL};
        fleet_spawn(&e->loop, &f.proc[i], args, &f.procs);
    }
    uv_timer_init(&e->loop, &f.sample);
    f.sample.data = &f;
    uv_timer_start(&f.sample, on_sample, 10, 10);
    while (f.procs.exited < PROCS)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&f.sample, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(f.procs.failed, 0);
    print_message("%d processes at a shared %d rpm: %ld requests in the "
                  "first %d s (want %ld +- 10%%), %zu in all\n",
                  PROCS, RPM, f.at_window, WINDOW_MS / 1000, want,
                  llmux_mock_request_count(e->mock));
    assert_true(f.at_window >= 0);
    if (f.at_window < want * 9 / 10 || f.at_window > want * 11 / 10)
        fail_msg("%ld requests in %d s, want %ld +- 10%%", f.at_window,
                 WINDOW_MS / 1000, want);
}

int main(void)
{
    static llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    static mock_env_config cfg;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_three_processes_share_rpm,
                                                 mock_env_setup,
                                                 mock_env_teardown, &cfg),
    };
    mo.quiet = 1;
    cfg.mock = &mo;
    return fleet_main(&srv, "test_fleet_rate", tests,
                      sizeof tests / sizeof tests[0]);
}
