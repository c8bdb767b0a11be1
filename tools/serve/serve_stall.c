/* LLMUX_SERVE_STALL=1: the loop's worst stall, printed on exit (for
 * bench/gateway.sh; off by default, since the idle-time metric it needs
 * costs a clock read per poll). A stall is one loop iteration's busy time:
 * the wall time between two check callbacks minus the time the loop spent
 * waiting in the poll, i.e. how long every connection waited for it. */
#define SERVE_INTERNAL
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_check_t check_h;
static uint64_t last_ns, last_idle_ns, worst_ns, over_100ms, iterations;
static int on;

static void on_check(uv_check_t *h)
{
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(h->loop);
    uint64_t busy = (now - last_ns) - (idle - last_idle_ns);
    if (busy > worst_ns)
        worst_ns = busy;
    over_100ms += busy > 100000000u;
    iterations++;
    last_ns = now;
    last_idle_ns = idle;
}

void serve_stall_start(uv_loop_t *loop)
{
    const char *e = getenv("LLMUX_SERVE_STALL");
    if (!e || !*e || !strcmp(e, "0"))
        return;
    if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME)) {
        fprintf(stderr, "llmux serve: LLMUX_SERVE_STALL: no idle-time "
                        "metrics in this libuv\n");
        return;
    }
    uv_check_init(loop, &check_h);
    uv_check_start(&check_h, on_check);
    uv_unref((uv_handle_t *)&check_h); /* closed by the final walk */
    last_ns = uv_hrtime();
    last_idle_ns = uv_metrics_idle_time(loop);
    on = 1;
}

void serve_stall_report(void)
{
    if (on)
        fprintf(stderr,
                "llmux serve: loop stall worst_ms %.1f over_100ms %llu "
                "iterations %llu\n",
                (double)worst_ns / 1e6, (unsigned long long)over_100ms,
                (unsigned long long)iterations);
}
