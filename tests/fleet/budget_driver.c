/*
 * tests/fleet/budget_driver.c: one process of a fleet sharing a budget:
 * a client with budget_usd BUDGET under budget_scope "fleet-budget" and
 * limits=REDIS sends chat requests on SPEC (max_tokens 5, "a b"), IN_FLIGHT
 * at a time, until one is refused with LLMUX_EBUDGET (or N were sent);
 * then, once the rest ended and a second passed, it tries once more (that
 * one must be refused too). It writes what it saw to REPORT:
 *
 *     budget_driver SPEC BUDGET PRICES REDIS N IN_FLIGHT REPORT
 *     -> "ok 13 refused 1 failed 0 spend 65.000000 after -22"
 *
 * (after: the last try's llmux_submit() code, or its done status).
 * test_shared_budget runs three at once, then a fourth once they are done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <llmux/llmux.h>

static llmux_client *c;
static const char *spec;
static int ok, refused, failed, in_flight, sent, limit, per, stopped,
    after = 1, after_sent;
static char first_err[512];

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud);

/* One request; its llmux_submit() code. */
static int send_one(void)
{
    llmux_request *req;
    int rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
    if (rc) {
        fprintf(stderr, "budget_driver: %s\n", llmux_strerror(rc));
        exit(2);
    }
    llmux_request_add_message(req, LLMUX_ROLE_USER, "a b");
    llmux_request_set_max_tokens(req, 5);
    llmux_request_add_header(req, "X-Mock-Fault: delay_ms=200");
    if ((rc = llmux_submit(c, req, NULL, on_done, NULL)) != 0) {
        if (!first_err[0])
            snprintf(first_err, sizeof first_err, "%s",
                     llmux_request_errmsg(req) ? llmux_request_errmsg(req)
                                               : "");
        llmux_request_free(req);
        return rc;
    }
    in_flight++;
    sent++;
    return 0;
}

static void pump(void)
{
    while (!stopped && in_flight < per && sent < limit) {
        int rc = send_one();
        if (rc == LLMUX_EBUDGET) {
            refused++;
            stopped = 1;
        } else if (rc) {
            failed++;
            stopped = 1;
        }
    }
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    (void)res;
    (void)ud;
    in_flight--;
    if (after_sent) {
        after = status;
        return;
    }
    if (status == 0) {
        ok++;
    } else {
        if (!first_err[0])
            snprintf(first_err, sizeof first_err, "%s",
                     llmux_request_errmsg(req) ? llmux_request_errmsg(req)
                                               : "");
        if (status == LLMUX_EBUDGET)
            refused++;
        else
            failed++;
        stopped = 1;
    }
    pump();
}

static void on_later(uv_timer_t *t)
{
    (void)t;
    after_sent = 1;
    if ((after = send_one()) == 0)
        after = 1; /* its done callback says */
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

int main(int argc, char **argv)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    uv_loop_t loop;
    uv_timer_t t;
    FILE *f;
    int rc, closed = 0, waited = 0;
    if (argc != 8 || atof(argv[2]) <= 0 || (limit = atoi(argv[5])) <= 0 ||
        (per = atoi(argv[6])) <= 0) {
        fprintf(stderr, "usage: budget_driver SPEC BUDGET PRICES REDIS N "
                        "IN_FLIGHT REPORT\n");
        return 2;
    }
    spec = argv[1];
    uv_loop_init(&loop);
    o.loop = &loop;
    o.max_retries = 0;
    o.budget_usd = atof(argv[2]);
    o.prices_file = argv[3];
    o.limits = argv[4];
    o.budget_scope = "fleet-budget";
    if ((rc = llmux_client_new(&c, &o)) != 0) {
        fprintf(stderr, "budget_driver: %s\n", llmux_strerror(rc));
        return 1;
    }
    uv_timer_init(&loop, &t);
    pump();
    for (;;) {
        uv_run(&loop, UV_RUN_ONCE);
        if (stopped && !in_flight && !waited) {
            waited = 1;
            uv_timer_start(&t, on_later, 1000, 0);
        }
        if (after_sent && after != 1)
            break;
        if (!stopped && !in_flight && sent >= limit)
            break;
    }
    uv_close((uv_handle_t *)&t, NULL);
    {
        double spend = llmux_client_spend(c, NULL);
        llmux_client_close(c, on_closed, &closed);
        while (!closed)
            uv_run(&loop, UV_RUN_ONCE);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&loop) != 0) {
            fprintf(stderr, "budget_driver: the loop did not close\n");
            return 1;
        }
        if (!(f = fopen(argv[7], "w")))
            return 1;
        fprintf(f, "ok %d refused %d failed %d spend %.6f after %d\n", ok,
                refused, failed, spend, after);
        fclose(f);
        fprintf(stderr,
                "budget_driver: ok %d refused %d failed %d spend %.2f "
                "after %d: %s\n",
                ok, refused, failed, spend, after, first_err);
    }
    return 0;
}
