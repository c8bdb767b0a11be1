/*
 * tests/fleet/test_redis.c: the client's Redis connection (core/redis.c)
 * against a real redis-server: URLs, commands and scripts (NOSCRIPT
 * falls back to EVAL), a server killed and restarted (down, then up
 * again by itself), a server that stops answering (the command timeout),
 * an unreachable server (logged once, without the password), and a client
 * closed with commands pending (answered first when connected, within
 * the command timeout). Skipped (77) without redis-server.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "engine.h"
#include "fleet_env.h"
#include "redis.h"

static fleet_redis srv;
static const char *ping[] = {"PING"};

typedef struct env {
    uv_loop_t loop;
    llmux_client *c;
    llmux__redis *r;
    int ups, downs, closed;
    char log[4096];
} env;

typedef struct answer {
    int calls;
    int type; /* reply type, -1 for none */
    long long integer;
    char str[256];
    char err[256];
} answer;

static void on_log(int level, const char *msg, void *ud)
{
    env *e = ud;
    size_t n = strlen(e->log);
    (void)level;
    snprintf(e->log + n, sizeof e->log - n, "%s\n", msg);
}

static void on_state(llmux__redis *r, int up, const char *why, void *ud)
{
    env *e = ud;
    (void)r;
    (void)why;
    if (up)
        e->ups++;
    else
        e->downs++;
}

static void on_answer(llmux__redis *r, struct redisReply *rep, const char *err,
                      void *ud)
{
    answer *a = ud;
    (void)r;
    a->calls++;
    a->type = rep ? rep->type : -1;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        a->integer = rep->integer;
    if (rep &&
        (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS ||
         rep->type == REDIS_REPLY_ERROR))
        snprintf(a->str, sizeof a->str, "%s", rep->str);
    if (err)
        snprintf(a->err, sizeof a->err, "%s", err);
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag >= want, for at most ms. */
static int run_until(env *e, const int *flag, int want, double ms)
{
    uv_timer_t t;
    double end = fleet_now_ms() + ms;
    uv_timer_init(&e->loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    while (*flag < want && fleet_now_ms() < end)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    return *flag >= want;
}

static void env_start(env *e, const char *url)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    char err[256];
    int code;
    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    o.loop = &e->loop;
    o.log = on_log;
    o.log_userdata = e;
    o.log_level = LLMUX_LOG_DEBUG;
    assert_int_equal(llmux_client_new(&e->c, &o), 0);
    e->r = llmux__redis_new(e->c, url, &code, err, sizeof err);
    assert_non_null(e->r);
    assert_int_equal(code, 0);
    llmux__redis_on_state(e->r, on_state, e);
}

/* Runs until *flag >= want, which must come within ms: no hang. */
static void within(env *e, const int *flag, int want, double ms)
{
    double t0 = fleet_now_ms();
    assert_true(run_until(e, flag, want, 5000));
    assert_true(fleet_now_ms() - t0 < ms);
}

/* env_start on the test's server, connected. */
static void env_up(env *e)
{
    env_start(e, srv.url);
    assert_true(run_until(e, &e->ups, 1, 5000));
}

static void set_flag(void *ud)
{
    *(int *)ud = 1;
}

static void env_stop(env *e)
{
    llmux__redis_free(e->r, NULL, NULL);
    llmux_client_close(e->c, set_flag, &e->closed);
    assert_true(run_until(e, &e->closed, 1, 10000));
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static int cmd(env *e, answer *a, int argc, const char **argv)
{
    size_t len[8];
    int i;
    memset(a, 0, sizeof *a);
    for (i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    return llmux__redis_cmd(e->r, on_answer, a, argc, argv, len);
}

static void test_urls(void **state)
{
    llmux__redis_url u;
    char err[256];
    char *m;
    (void)state;
    assert_int_equal(llmux__redis_url_parse("redis://:s3cret@db.example:6380/2",
                                            &u, err, sizeof err),
                     0);
    assert_string_equal(u.host, "db.example");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.password, "s3cret");
    assert_null(u.user);
    llmux__redis_url_free(&u);
    assert_int_equal(
        llmux__redis_url_parse("redis://alice:pw@[::1]", &u, err, sizeof err),
        0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    assert_string_equal(u.user, "alice");
    llmux__redis_url_free(&u);
    /* credentials percent-encoded, as a '/' in a password must be */
    assert_int_equal(
        llmux__redis_url_parse("redis://a%40b:p%2Fw%3A@h", &u, err, sizeof err),
        0);
    assert_string_equal(u.user, "a@b");
    assert_string_equal(u.password, "p/w:");
    llmux__redis_url_free(&u);
    assert_int_equal(
        llmux__redis_url_parse("unix:///run/r.sock?db=3", &u, err, sizeof err),
        0);
    assert_string_equal(u.path, "/run/r.sock");
    assert_int_equal(u.db, 3);
    llmux__redis_url_free(&u);
    assert_int_equal(
        llmux__redis_url_parse("redis+unix:///r.sock", &u, err, sizeof err), 0);
    assert_string_equal(u.path, "/r.sock");
    llmux__redis_url_free(&u);
    /* bad ones: a clear reason, never the password */
    {
        static const char *const bad[][2] = {
            {"", "empty"},
            {"http://h:1", "scheme"},
            {"redis://:pw@h:99999", "port"},
            {"redis://:pw@h:6379/x", "database"},
            {"redis://:pw@", "no host"},
            {"redis://pw@h", "[user]:password@"},
            {"redis://:pw/x@h", "no host"},
            {"redis://:p%00w@h", "%00"},
            {"unix://rel/path", "absolute path"},
            {"unix:///s?password=pw", "?db=N"},
        };
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            assert_int_equal(
                llmux__redis_url_parse(bad[i][0], &u, err, sizeof err),
                LLMUX_ECONFIG);
            if (!strstr(err, bad[i][1]))
                fail_msg("%s: %s", bad[i][0], err);
            assert_null(strstr(err, "pw@"));
            assert_null(u.host);
        }
    }
    m = llmux__url_masked("redis://u:s3cret@h:1/0");
    assert_string_equal(m, "redis://***@h:1/0");
    free(m);
    /* a password with a '/' (base64 has them) is hidden too */
    m = llmux__url_masked("redis://:ab/cd@h:1/0");
    assert_string_equal(m, "redis://***@h:1/0");
    free(m);
}

static void test_commands_and_scripts(void **state)
{
    env e;
    answer a;
    const char *set[] = {"SET", "llmux-test:k", "v1"};
    const char *get[] = {"GET", "llmux-test:k"};
    const char *flush[] = {"SCRIPT", "FLUSH"};
    const char *args[] = {"llmux-test:k", "x"};
    size_t alen[] = {12, 1};
    llmux__redis_script *s;
    (void)state;
    env_start(&e, srv.url);
    s = llmux__redis_script_add(e.r, "return redis.call('GET', KEYS[1]) .. "
                                     "ARGV[1]");
    assert_non_null(s);
    /* sent while connecting: queued until the connection is up */
    assert_int_equal(cmd(&e, &a, 3, set), 0);
    assert_true(run_until(&e, &a.calls, 1, 5000));
    assert_int_equal(a.type, REDIS_REPLY_STATUS);
    assert_int_equal(llmux__redis_state_of(e.r), LLMUX__REDIS_UP);
    assert_int_equal(e.ups, 1);
    assert_int_equal(cmd(&e, &a, 2, get), 0);
    assert_true(run_until(&e, &a.calls, 1, 5000));
    assert_string_equal(a.str, "v1");
    memset(&a, 0, sizeof a);
    assert_int_equal(llmux__redis_eval(e.r, s, on_answer, &a, 1, 2, args, alen),
                     0);
    assert_true(run_until(&e, &a.calls, 1, 5000));
    assert_string_equal(a.str, "v1x");
    /* the server forgets the script: EVALSHA's NOSCRIPT becomes EVAL */
    assert_int_equal(cmd(&e, &a, 2, flush), 0);
    assert_true(run_until(&e, &a.calls, 1, 5000));
    memset(&a, 0, sizeof a);
    assert_int_equal(llmux__redis_eval(e.r, s, on_answer, &a, 1, 2, args, alen),
                     0);
    assert_true(run_until(&e, &a.calls, 1, 5000));
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.str, "v1x");
    env_stop(&e);
}

static void test_killed_and_restarted(void **state)
{
    answer a;
    env e;
    (void)state;
    env_up(&e);
    fleet_redis_kill(&srv);
    within(&e, &e.downs, 1, 2000); /* noticed at once */
    assert_int_equal(llmux__redis_state_of(e.r), LLMUX__REDIS_DOWN);
    assert_int_equal(cmd(&e, &a, 1, ping), LLMUX_ELIMITS);
    assert_int_equal(a.calls, 0);
    /* a few failed reconnects, logged once */
    run_until(&e, &a.calls, 1, 700);
    assert_non_null(strstr(e.log, "reconnecting"));
    assert_null(strstr(strstr(e.log, "reconnecting") + 1, "reconnecting"));
    assert_int_equal(fleet_redis_restart(&srv), 0);
    assert_true(run_until(&e, &e.ups, 2, 10000));
    assert_non_null(strstr(e.log, "connected again"));
    assert_int_equal(cmd(&e, &a, 1, ping), 0);
    assert_true(run_until(&e, &a.calls, 1, 5000));
    assert_string_equal(a.str, "PONG");
    env_stop(&e);
}

static void test_command_timeout(void **state)
{
    answer a;
    env e;
    (void)state;
    env_up(&e);
    llmux__redis_set_timeouts(e.r, 300, 300);
    kill(srv.pid, SIGSTOP); /* connected, but never answers */
    assert_int_equal(cmd(&e, &a, 1, ping), 0);
    within(&e, &a.calls, 1, 3000);
    assert_int_equal(a.type, -1);
    assert_non_null(strstr(a.err, "broke"));
    assert_non_null(strstr(e.log, "no reply within 300 ms"));
    kill(srv.pid, SIGCONT);
    assert_true(run_until(&e, &e.ups, 2, 10000));
    env_stop(&e);
}

static void test_unreachable_masked(void **state)
{
    env e;
    (void)state;
    /* nothing listens on port 1: down, logged once, password masked */
    env_start(&e, "redis://:hunter2-secret@127.0.0.1:1/0");
    assert_true(run_until(&e, &e.downs, 1, 5000));
    assert_non_null(strstr(e.log, "redis redis://***@127.0.0.1:1/0"));
    assert_null(strstr(e.log, "hunter2"));
    env_stop(&e);
}

static void test_close_with_pending(void **state)
{
    env e;
    answer a;
    (void)state;
    env_start(&e, srv.url);
    assert_int_equal(cmd(&e, &a, 1, ping), 0);
    env_stop(&e); /* the command ends with an error; the loop closes */
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.type, -1);
}

/* Closed while connected with a command sent: the command is answered
 * first (a store sent just before a process ends is not lost). */
static void test_close_drains(void **state)
{
    env e;
    answer a;
    const char *set[] = {"SET", "llmux-test:drained", "yes"};
    redisContext *rc;
    redisReply *rep;
    (void)state;
    env_up(&e);
    assert_int_equal(cmd(&e, &a, 3, set), 0);
    env_stop(&e);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.type, REDIS_REPLY_STATUS);
    rc = redisConnectUnix(srv.sock);
    assert_non_null(rc);
    rep = redisCommand(rc, "GET llmux-test:drained");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "yes");
    freeReplyObject(rep);
    redisFree(rc);
}

/* ... but a server that stops answering holds the close no longer than
 * the command timeout. */
static void test_close_drain_bounded(void **state)
{
    env e;
    answer a;
    double t0;
    (void)state;
    env_up(&e);
    llmux__redis_set_timeouts(e.r, 300, 300);
    kill(srv.pid, SIGSTOP);
    assert_int_equal(cmd(&e, &a, 1, ping), 0);
    t0 = fleet_now_ms();
    env_stop(&e);
    kill(srv.pid, SIGCONT);
    assert_true(fleet_now_ms() - t0 < 3000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.type, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_commands_and_scripts),
        cmocka_unit_test(test_killed_and_restarted),
        cmocka_unit_test(test_command_timeout),
        cmocka_unit_test(test_unreachable_masked),
        cmocka_unit_test(test_close_with_pending),
        cmocka_unit_test(test_close_drains),
        cmocka_unit_test(test_close_drain_bounded),
    };
    return fleet_main(&srv, "test_redis", tests,
                      sizeof tests / sizeof tests[0]);
}
