/*
 * tests/fleet/fleet_driver.c: one process of a fleet: submits N chat
 * requests on the config string SPEC (each far beyond what its limits
 * let through in the time), runs for MS milliseconds, then closes its
 * client (what is left is canceled) and prints what it saw:
 *
 *     fleet_driver SPEC N MS [MAX_IN_FLIGHT]
 *     -> "ok 37 failed 0 canceled 963 elimits 0 ms 20001"
 *
 * (ms: from the first submission to the last answer or the end).
 *
 * test_fleet_rate runs three at once against one llmux-mock and one
 * redis-server; bench/ uses it for the admission overhead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <llmux/llmux.h>

static int ok, failed, canceled, elimits;

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    (void)ud;
    (void)res;
    if (status == 0)
        ok++;
    else if (status == LLMUX_ECANCELED)
        canceled++;
    else {
        failed++;
        if (status == LLMUX_ELIMITS)
            elimits++;
        if (failed == 1)
            fprintf(stderr, "fleet_driver: %s: %s\n", llmux_err_name(status),
                    llmux_request_errmsg(req) ? llmux_request_errmsg(req) : "");
    } /* req and res are the library's (llmux_submit took req) */
}

static void on_time(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

int main(int argc, char **argv)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *c;
    uv_loop_t loop;
    uv_timer_t t;
    int n, i, rc, over = 0, closed = 0;
    uint64_t t0;
    if (argc < 4 || argc > 5 || (n = atoi(argv[2])) <= 0 ||
        atoi(argv[3]) <= 0) {
        fprintf(stderr, "usage: fleet_driver SPEC N MS [MAX_IN_FLIGHT]\n");
        return 2;
    }
    uv_loop_init(&loop);
    o.loop = &loop;
    o.max_retries = 0;
    if (argc == 5)
        o.max_in_flight = (size_t)atoi(argv[4]);
    t0 = uv_hrtime();
    if ((rc = llmux_client_new(&c, &o)) != 0) {
        fprintf(stderr, "fleet_driver: %s\n", llmux_strerror(rc));
        return 1;
    }
    for (i = 0; i < n; i++) {
        llmux_request *req;
        if ((rc = llmux_request_new(&req, LLMUX_OP_CHAT, argv[1])) != 0) {
            fprintf(stderr, "fleet_driver: %s\n",
                    req ? llmux_request_errmsg(req) : llmux_strerror(rc));
            return 2;
        }
        llmux_request_add_message(req, LLMUX_ROLE_USER, "hi");
        if ((rc = llmux_submit(c, req, NULL, on_done, NULL)) != 0) {
            fprintf(stderr, "fleet_driver: submit: %s: %s\n",
                    llmux_err_name(rc), llmux_request_errmsg(req));
            llmux_request_free(req);
            return 1;
        }
    }
    uv_timer_init(&loop, &t);
    t.data = &over;
    uv_timer_start(&t, on_time, (uint64_t)atoi(argv[3]), 0);
    while (!over && ok + failed + canceled < n)
        uv_run(&loop, UV_RUN_ONCE);
    t0 = (uv_hrtime() - t0) / 1000000;
    uv_close((uv_handle_t *)&t, NULL);
    llmux_client_close(c, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "fleet_driver: the loop did not close\n");
        return 1;
    }
    printf("ok %d failed %d canceled %d elimits %d ms %llu\n", ok, failed,
           canceled, elimits, (unsigned long long)t0);
    return 0;
}
