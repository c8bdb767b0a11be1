/*
 * tests/fleet/test_shared_budget.c: spend budgets shared through a real
 * redis-server (core/budget.c). Clients with their own connections (as
 * separate processes have) against llmux-mock, with a price table giving
 * gpt-4o-mini $1 an output token ("Mock reply to: a b" costs $5): a
 * budget_scope label, a named request scope and an endpoint and API key's
 * budget_usd= crossed by one client stop the other, and a client that
 * never read the scope sends nothing; Redis killed: limits_fallback=closed
 * fails at once with LLMUX_ELIMITS, =local goes on, and what was spent
 * meanwhile is added once Redis is back, exactly once; three processes
 * sharing one budget stop within the documented overshoot, and a fourth
 * started afterwards sends nothing. Skipped (77) without redis-server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "fleet_env.h"
#include "mock/mock_env.h"

static fleet_redis srv;
static char prices[400];

/* gpt-4o-mini at $1 an output token, input free: whole-dollar costs. */
static void write_prices(void)
{
    static const char text[] =
        "{\"providers\":{\"openai\":{\"models\":{\"gpt-4o-mini\":"
        "{\"input\":0,\"output\":1000000}}}}}";
    FILE *f;
    snprintf(prices, sizeof prices, "%s/prices.json", srv.dir);
    f = fopen(prices, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    assert_int_equal(fclose(f), 0);
}

static void on_pause(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void pause_ms(mock_env *e, uint64_t ms)
{
    uv_timer_t t;
    int fired = 0;
    uv_timer_init(&e->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, on_pause, ms, 0);
    mock_env_run_until(e, &fired);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* What Redis holds under key, as a number (0 when absent), once what
 * the clients on e's loop sent was answered. */
static double redis_number(mock_env *e, const char *key)
{
    redisContext *r = redisConnectUnix(srv.sock);
    redisReply *rep;
    double v = 0;
    pause_ms(e, 100);
    assert_non_null(r);
    assert_int_equal(r->err, 0);
    rep = redisCommand(r, "GET %s", key);
    assert_non_null(rep);
    if (rep->type == REDIS_REPLY_STRING)
        v = atof(rep->str);
    freeReplyObject(rep);
    redisFree(r);
    return v;
}

/* A client on e's loop with its own Redis connection. */
static llmux_client *client_of(mock_env *e, double budget, const char *label,
                               const char *fallback, long window_ms)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *c;
    write_prices();
    o.loop = &e->loop;
    o.max_retries = 0;
    o.prices_file = prices;
    o.budget_usd = budget;
    o.budget_scope = label;
    o.limits = srv.url;
    o.limits_fallback = fallback;
    o.budget_window_ms = window_ms;
    assert_int_equal(llmux_client_new(&c, &o), 0);
    return c;
}

static void close_client(mock_env *e, llmux_client *c)
{
    int closed = 0;
    llmux_client_close(c, mock_env_set_flag, &closed);
    mock_env_run_until(e, &closed);
}

/* A chat request costing $5 ("a b", max_tokens 5: $5 held in flight);
 * `extra` is appended to its config string. */
static llmux_request *chat(mock_env *e, const char *key, const char *extra)
{
    llmux_request *req;
    char spec[1024];
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=%s%s",
             llmux_mock_port(e->mock), key ? key : "sk-budget-secret",
             extra ? extra : "");
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "a b");
    llmux_request_set_max_tokens(req, 5);
    return req;
}

/* req on client c: its done status, and its message in msg. */
static int call_on(mock_env *e, llmux_client *c, llmux_request *req, char *msg,
                   size_t n)
{
    mock_call k = {0};
    int rc;
    k.e = e;
    rc = llmux_submit(c, req, mock_call_on_chunk, mock_call_on_done, &k);
    if (rc) {
        snprintf(msg, n, "%s",
                 llmux_request_errmsg(req) ? llmux_request_errmsg(req) : "");
        llmux_request_free(req);
        return rc;
    }
    assert_int_equal(k.calls, 0); /* never inside llmux_submit() */
    mock_env_wait(e, &k);
    rc = k.status;
    snprintf(msg, n, "%s", rc && k.err ? k.err->message : "");
    mock_call_free(&k);
    return rc;
}

static void contains(const char *msg, const char *want)
{
    if (!strstr(msg, want))
        fail_msg("\"%s\" does not say \"%s\"", msg, want);
}

/* Two clients naming budget_scope "team" on one Redis share budget_usd:
 * a crosses it, b (which never read it) is refused without sending. */
static void test_label_shared(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, 10, "team", NULL, 0),
                 *b = client_of(e, 10, "team", NULL, 0);
    char msg[512];
    size_t sent;
    assert_int_equal(call_on(e, a, chat(e, NULL, NULL), msg, sizeof msg), 0);
    assert_int_equal(call_on(e, a, chat(e, NULL, NULL), msg, sizeof msg), 0);
    assert_true(redis_number(e, "llmux:budget:name:team") == 10.0);
    /* a knows at once: refused in llmux_submit() */
    assert_int_equal(call_on(e, a, chat(e, NULL, NULL), msg, sizeof msg),
                     LLMUX_EBUDGET);
    contains(msg, "budget_scope 'team'");
    contains(msg, "(all processes)");
    assert_null(strstr(msg, "sk-budget-secret"));
    /* b reads the total first: its done callback says EBUDGET, and the
     * mock saw nothing more */
    sent = llmux_mock_request_count(e->mock);
    assert_int_equal(call_on(e, b, chat(e, NULL, NULL), msg, sizeof msg),
                     LLMUX_EBUDGET);
    contains(msg, "budget_scope 'team'");
    assert_int_equal(llmux_mock_request_count(e->mock), sent);
    assert_true(llmux_client_spend(b, NULL) == 0);
    /* another label is another total */
    close_client(e, b);
    b = client_of(e, 10, "other-team", NULL, 0);
    assert_int_equal(call_on(e, b, chat(e, NULL, NULL), msg, sizeof msg), 0);
    close_client(e, a);
    close_client(e, b);
}

/* Requests waiting for a scope's first read end once each when one is
 * cancelled and when their client closes, none sent. */
static void test_waiting_cancel_and_close(void **state)
{
    mock_env *e = *state;
    llmux_client *c = client_of(e, 10, "waiting", NULL, 0);
    mock_call k[3];
    llmux_request *first = NULL;
    int i, closed = 0;
    size_t sent = llmux_mock_request_count(e->mock);
    memset(k, 0, sizeof k);
    for (i = 0; i < 3; i++) {
        llmux_request *req = chat(e, NULL, NULL);
        if (!i)
            first = req;
        k[i].e = e;
        assert_int_equal(
            llmux_submit(c, req, mock_call_on_chunk, mock_call_on_done, &k[i]),
            0);
    }
    assert_int_equal(llmux_client_pending(c), 3);
    /* one cancelled, then the client closed, before the read answers */
    assert_int_equal(llmux_request_cancel(first), 0);
    llmux_client_close(c, mock_env_set_flag, &closed);
    mock_env_run_until(e, &closed);
    for (i = 0; i < 3; i++) {
        assert_int_equal(k[i].calls, 1);
        assert_int_equal(k[i].status, LLMUX_ECANCELED);
    }
    mock_call_free_all(k, 3);
    assert_int_equal(llmux_mock_request_count(e->mock), sent);
}

/* A request's named scope and an endpoint and key's budget_usd=, shared
 * through the config string's limits=. */
static void test_request_and_key_scopes_shared(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, 0, NULL, NULL, 0),
                 *b = client_of(e, 0, NULL, NULL, 0);
    char msg[512], extra[512];
    llmux_request *req;
    snprintf(extra, sizeof extra, ";limits=%s", srv.url);
    req = chat(e, NULL, extra);
    assert_int_equal(llmux_request_set_budget(req, "key:team-a", 5, 0), 0);
    assert_int_equal(call_on(e, a, req, msg, sizeof msg), 0);
    req = chat(e, NULL, extra);
    assert_int_equal(llmux_request_set_budget(req, "key:team-a", 5, 0), 0);
    assert_int_equal(call_on(e, b, req, msg, sizeof msg), LLMUX_EBUDGET);
    contains(msg, "budget scope 'key:team-a'");
    req = chat(e, NULL, extra);
    assert_int_equal(llmux_request_set_budget(req, "key:team-b", 5, 0), 0);
    assert_int_equal(call_on(e, b, req, msg, sizeof msg), 0);

    /* the key's budget: its Redis key holds the key's SHA-256, never the
     * key */
    snprintf(extra, sizeof extra, ";limits=%s;budget_usd=5", srv.url);
    assert_int_equal(
        call_on(e, a, chat(e, "sk-key-one", extra), msg, sizeof msg), 0);
    assert_int_equal(
        call_on(e, b, chat(e, "sk-key-one", extra), msg, sizeof msg),
        LLMUX_EBUDGET);
    contains(msg, "budget_usd=5 of openai:http://127.0.0.1");
    assert_null(strstr(msg, "sk-key-one"));
    assert_int_equal(
        call_on(e, b, chat(e, "sk-key-two", extra), msg, sizeof msg), 0);
    {
        redisContext *r = redisConnectUnix(srv.sock);
        redisReply *rep = redisCommand(r, "KEYS *");
        size_t i, found = 0;
        assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
        for (i = 0; i < rep->elements; i++) {
            assert_null(strstr(rep->element[i]->str, "sk-key"));
            if (strstr(rep->element[i]->str, "llmux:budget:key:openai:"))
                found++;
        }
        assert_true(found >= 2); /* the two keys' totals */
        freeReplyObject(rep);
        redisFree(r);
    }
    close_client(e, a);
    close_client(e, b);
}

static void stats_of(llmux_client *c, llmux_stats *st)
{
    memset(st, 0, sizeof *st);
    st->version = LLMUX_STATS_VERSION;
    assert_int_equal(llmux_client_stats(c, st), 0);
}

/* Redis killed: closed fails at once naming the server, local goes on
 * and what it spent is added once Redis is back, once. */
static void test_redis_killed(void **state)
{
    mock_env *e = *state;
    llmux_client *closed = client_of(e, 100, "outage", NULL, 0),
                 *local = client_of(e, 100, "outage", "local", 0);
    char msg[512];
    double t0;
    llmux_stats st;
    int i;
    assert_int_equal(call_on(e, closed, chat(e, NULL, NULL), msg, sizeof msg),
                     0);
    assert_int_equal(call_on(e, local, chat(e, NULL, NULL), msg, sizeof msg),
                     0);
    assert_true(redis_number(e, "llmux:budget:name:outage") == 10.0);
    fleet_redis_kill(&srv);
    pause_ms(e, 100);
    t0 = fleet_now_ms();
    assert_int_equal(call_on(e, closed, chat(e, NULL, NULL), msg, sizeof msg),
                     LLMUX_ELIMITS);
    assert_true(fleet_now_ms() - t0 < 2000); /* at once, no hang */
    contains(msg, "shared budget unavailable");
    contains(msg, srv.url);
    contains(msg, "limits_fallback=closed");
    stats_of(closed, &st);
    assert_true(st.limits_backend_errors >= 1);
    /* local: two more answers, $10 kept for Redis */
    for (i = 0; i < 2; i++)
        assert_int_equal(
            call_on(e, local, chat(e, NULL, NULL), msg, sizeof msg), 0);
    stats_of(local, &st);
    assert_true(st.limits_fallbacks >= 2);
    assert_int_equal(fleet_redis_restart(&srv), 0);
    /* the reconnect (backoff up to a few seconds) sends it, once; the
     * restarted server lost what it held (no persistence): only what
     * `local` spent since it last heard from Redis is there again... */
    for (i = 0; i < 100 && redis_number(e, "llmux:budget:name:outage") != 10.0;
         i++)
        pause_ms(e, 100);
    /* ... and it stays so: no second count */
    pause_ms(e, 1200);
    assert_true(redis_number(e, "llmux:budget:name:outage") == 10.0);
    /* shared again */
    assert_int_equal(call_on(e, closed, chat(e, NULL, NULL), msg, sizeof msg),
                     0);
    assert_true(redis_number(e, "llmux:budget:name:outage") == 15.0);
    close_client(e, closed);
    close_client(e, local);
}

/* A shared budget per window: its Redis total is the window's own key,
 * expiring a minute after the window; the next window starts from 0 for
 * every process. */
static void test_window_shared(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, 4, "win", NULL, 2000),
                 *b = client_of(e, 4, "win", NULL, 2000);
    char msg[512];
    mock_window_start(2000, 50);
    assert_int_equal(call_on(e, a, chat(e, NULL, NULL), msg, sizeof msg), 0);
    pause_ms(e, 100);
    {
        redisContext *r = redisConnectUnix(srv.sock);
        redisReply *keys = redisCommand(r, "KEYS llmux:budget:name:win:[0-9]*"),
                   *ttl;
        assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
        assert_int_equal(keys->elements, 1); /* the window's total */
        ttl = redisCommand(r, "PTTL %s", keys->element[0]->str);
        assert_true(ttl->integer > 0 && ttl->integer <= 62000);
        freeReplyObject(ttl);
        freeReplyObject(keys);
        redisFree(r);
    }
    assert_int_equal(call_on(e, b, chat(e, NULL, NULL), msg, sizeof msg),
                     LLMUX_EBUDGET);
    contains(msg, "in this window of 2 s");
    mock_window_start(2000, 50);
    assert_int_equal(call_on(e, b, chat(e, NULL, NULL), msg, sizeof msg), 0);
    close_client(e, a);
    close_client(e, b);
}

/* ---- three processes, then a fourth ------------------------------------ */

#define PROCS     3
#define BUDGET    200.0
#define COST      5.0
#define IN_FLIGHT 4

static void spawn(mock_env *e, uv_process_t *p, fleet_procs *n,
                  const char *spec, const char *report)
{
    char budget[32], count[16], inf[16];
    char *args[] = {BUDGET_DRIVER, (char *)spec,   budget,
                    prices,        srv.url,        count,
                    inf,           (char *)report, NULL};
    snprintf(budget, sizeof budget, "%.2f", BUDGET);
    snprintf(count, sizeof count, "%d", 1000);
    snprintf(inf, sizeof inf, "%d", IN_FLIGHT);
    fleet_spawn(&e->loop, p, args, n);
}

typedef struct report {
    int ok, refused, failed, after;
    double spend;
} report;

static report read_report(const char *path)
{
    report r;
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "ok %d refused %d failed %d spend %lf after %d",
                            &r.ok, &r.refused, &r.failed, &r.spend, &r.after),
                     5);
    fclose(f);
    unlink(path);
    return r;
}

/* procs budget_drivers at once, each reporting to DIR/reportN. */
static void run_fleet(mock_env *e, int procs, const char *spec)
{
    uv_process_t p[PROCS];
    fleet_procs n = {0, 0};
    int i;
    char path[400];
    for (i = 0; i < procs; i++) {
        snprintf(path, sizeof path, "%s/report%d", srv.dir, i);
        spawn(e, &p[i], &n, spec, path);
    }
    while (n.exited < procs)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(n.failed, 0);
}

static void test_processes_share_budget(void **state)
{
    mock_env *e = *state;
    char spec[512], path[400];
    /* the documented overshoot: what the others hold in flight and what
     * they finished since a process last heard from Redis (a wave of
     * answers, when they all started together), with one more wave of
     * margin for a loaded machine */
    double total = 0, bound = BUDGET + (PROCS - 1) * IN_FLIGHT * COST * 2 +
                              PROCS * IN_FLIGHT * COST;
    size_t sent;
    int i;
    write_prices();
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;"
             "api_key=sk-fleet",
             llmux_mock_port(e->mock));
    run_fleet(e, PROCS, spec);
    for (i = 0; i < PROCS; i++) {
        report r;
        snprintf(path, sizeof path, "%s/report%d", srv.dir, i);
        r = read_report(path);
        assert_int_equal(r.failed, 0);
        assert_int_equal(r.refused, 1);           /* stopped by the budget */
        assert_int_equal(r.after, LLMUX_EBUDGET); /* and still */
        assert_true(r.spend == r.ok * COST);
        total += r.spend;
    }
    print_message("%d processes sharing $%.0f: $%.0f spent (at most $%.0f "
                  "allowed; $%.0f without sharing)\n",
                  PROCS, BUDGET, total, bound, PROCS * BUDGET);
    assert_true(total >= BUDGET);
    assert_true(total <= bound);
    /* Redis counted every answer, once */
    assert_true(redis_number(e, "llmux:budget:name:fleet-budget") == total);
    /* one started afterwards sends nothing */
    sent = llmux_mock_request_count(e->mock);
    run_fleet(e, 1, spec);
    snprintf(path, sizeof path, "%s/report0", srv.dir);
    {
        report r = read_report(path);
        assert_int_equal(r.ok, 0);
        assert_true(r.refused >= 1); /* each that waited for the read */
        assert_int_equal(r.after, LLMUX_EBUDGET);
    }
    assert_int_equal(llmux_mock_request_count(e->mock), sent);
}

int main(void)
{
    static llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    static mock_env_config cfg;
    const struct CMUnitTest tests[] = {
        mock_env_test_with(test_label_shared, &cfg),
        mock_env_test_with(test_waiting_cancel_and_close, &cfg),
        mock_env_test_with(test_request_and_key_scopes_shared, &cfg),
        mock_env_test_with(test_redis_killed, &cfg),
        mock_env_test_with(test_window_shared, &cfg),
        mock_env_test_with(test_processes_share_budget, &cfg),
    };
    mo.quiet = 1;
    cfg.mock = &mo;
    return fleet_main(&srv, "test_shared_budget", tests,
                      sizeof tests / sizeof tests[0]);
}
