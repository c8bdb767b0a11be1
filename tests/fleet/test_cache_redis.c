/*
 * tests/fleet/test_cache_redis.c: the response cache's Redis backend
 * (cache_backend=redis://...) end to end against llmux-mock and a real
 * redis-server: two clients with their own connections (as separate
 * processes have) share what either kept, a whole reply and a stream
 * (replayed as a stream); Redis's expiry is the TTL; different requests
 * do not meet; a value that is not ours (garbage, another type, too
 * large) is a miss; Redis killed: misses counted and logged once, no
 * hang, hits again after a restart; bad options refused without showing a
 * password. The gateway's replicas sharing it are test_fleet_serve's.
 * Skipped (77) without redis-server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "fleet_env.h"
#include "mock/mock_env.h"

static fleet_redis srv;

/* What a client's log callback saw: the cache's outage lines, and
 * whether any line showed the test's password. */
typedef struct logged {
    int outage_lines;
    int showed_secret;
} logged;

static void on_log(int level, const char *msg, void *ud)
{
    logged *l = ud;
    (void)level;
    if (strstr(msg, "response cache at"))
        l->outage_lines++;
    if (strstr(msg, "hunter2") || strstr(msg, "sk-fleet-secret"))
        l->showed_secret = 1;
}

/* A client of its own on the env's loop: its own Redis connection. */
static llmux_client *client_of(mock_env *e, logged *l, size_t max_bytes)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *c;
    o.loop = &e->loop;
    o.max_retries = 0;
    o.cache_max_bytes = max_bytes;
    o.log = l ? on_log : NULL;
    o.log_userdata = l;
    o.log_level = LLMUX_LOG_WARN;
    assert_int_equal(llmux_client_new(&c, &o), 0);
    return c;
}

/* A chat request to the mock, cached in the test's Redis under `prefix`;
 * `extra` is appended to the config string. */
static llmux_request *chat(mock_env *e, const char *prefix, const char *prompt,
                           const char *extra)
{
    llmux_request *req;
    char spec[1024];
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=sk-fleet-secret;"
             "cache=60;cache_backend=%s;limits_prefix=%s%s",
             e->base, srv.url, prefix, extra ? extra : "");
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, prompt),
                     0);
    return req;
}

/* Calls req on client c: whether its answer came from the cache (the
 * call must succeed). */
static int call_on(mock_env *e, llmux_client *c, llmux_request *req,
                   mock_call *mc)
{
    mc->e = e;
    assert_int_equal(
        llmux_submit(c, req, mock_call_on_chunk, mock_call_on_done, mc), 0);
    mock_env_wait(e, mc);
    assert_int_equal(mc->status, 0);
    return llmux_response_cached(mc->res);
}

static llmux_stats stats_of(llmux_client *c)
{
    llmux_stats st;
    memset(&st, 0, sizeof st);
    st.version = LLMUX_STATS_VERSION;
    assert_int_equal(llmux_client_stats(c, &st), 0);
    return st;
}

/* The test's own synchronous connection to the server. */
static redisContext *direct(void)
{
    redisContext *rc = redisConnectUnix(srv.sock);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    return rc;
}

/* The keys under prefix:cache:*, as one reply (freed by the caller). */
static redisReply *cache_keys(redisContext *rc, const char *prefix)
{
    redisReply *r = redisCommand(rc, "KEYS %s:cache:*", prefix);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    return r;
}

/* The one key under prefix:cache:*, copied into out. */
static void the_key(redisContext *rc, const char *prefix, char *out,
                    size_t size)
{
    redisReply *r = cache_keys(rc, prefix);
    assert_int_equal(r->elements, 1);
    snprintf(out, size, "%s", r->element[0]->str);
    freeReplyObject(r);
}

/* Runs the loop until prefix:cache:* holds n keys (a store is sent from
 * the loop after the answer: another client must not ask before it
 * landed), for at most 10 s. */
static void await_keys(mock_env *e, const char *prefix, size_t n)
{
    redisContext *rc = direct();
    double end = fleet_now_ms() + 10000;
    size_t got = 0;
    while (fleet_now_ms() < end) {
        redisReply *r = cache_keys(rc, prefix);
        got = r->elements;
        freeReplyObject(r);
        if (got == n)
            break;
        mock_env_pause_ms(e, 10);
    }
    redisFree(rc);
    if (got != n)
        fail_msg("%s:cache:* holds %zu keys, want %zu", prefix, got, n);
}

/* Runs the loop until key holds a value other than old[0..len) that is
 * an entry of the cache ("LXC1" and a kind), for at most 10 s. */
static void await_replaced(mock_env *e, const char *key, const char *old,
                           size_t len)
{
    redisContext *rc = direct();
    double end = fleet_now_ms() + 10000;
    int done = 0;
    while (!done && fleet_now_ms() < end) {
        redisReply *r = redisCommand(rc, "GET %s", key);
        done = r && r->type == REDIS_REPLY_STRING && r->len > 5 &&
               !memcmp(r->str, "LXC1", 4) &&
               ((size_t)r->len != len || memcmp(r->str, old, len) != 0);
        freeReplyObject(r);
        if (!done)
            mock_env_pause_ms(e, 10);
    }
    redisFree(rc);
    if (!done)
        fail_msg("%s was not replaced by a new entry", key);
}

/* ---- tests --------------------------------------------------------------- */

/* What one client kept, the other answers from Redis: the same body, no
 * request to the provider. The key is the prefix and a digest, the TTL
 * Redis's own. */
static void test_shared_hit(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, NULL, 0), *b = client_of(e, NULL, 0);
    mock_call ca = {0}, cb = {0};
    redisContext *rc = direct();
    redisReply *r;
    char key[256];
    size_t n1, n2, i;
    const char *r1, *r2;
    llmux_stats st;
    assert_false(call_on(e, a, chat(e, "t1", "Hello shared", NULL), &ca));
    await_keys(e, "t1", 1);
    assert_true(call_on(e, b, chat(e, "t1", "Hello shared", NULL), &cb));
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    assert_int_equal(llmux_response_attempts(cb.res), 0);
    assert_string_equal(llmux_response_text(cb.res, NULL),
                        llmux_response_text(ca.res, NULL));
    assert_string_equal(llmux_response_id(cb.res), llmux_response_id(ca.res));
    r1 = llmux_response_raw(ca.res, &n1);
    r2 = llmux_response_raw(cb.res, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(r1, r2, n1);
    st = stats_of(a);
    assert_int_equal(st.cache_misses, 1);
    assert_int_equal(st.cache_stores, 1);
    assert_int_equal(st.cache_backend_errors, 0);
    st = stats_of(b);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.cache_backend_errors, 0);
    /* t1:cache: and 64 hex digits; no key in it */
    the_key(rc, "t1", key, sizeof key);
    assert_int_equal(strlen(key), strlen("t1:cache:") + 64);
    for (i = strlen("t1:cache:"); key[i]; i++)
        assert_non_null(strchr("0123456789abcdef", key[i]));
    r = redisCommand(rc, "PTTL %s", key);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer > 50000 && r->integer <= 60000);
    freeReplyObject(r);
    redisFree(rc);
    mock_call_free(&ca);
    mock_call_free(&cb);
    mock_env_close_other(e, a);
    mock_env_close_other(e, b);
}

/* A stream kept by one is replayed by the other as a stream: the same
 * chunks, the same text. */
static void test_shared_stream(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, NULL, 0), *b = client_of(e, NULL, 0);
    mock_call ca = {0}, cb = {0};
    llmux_request *r = chat(e, "t2", "Tell me a streamed story", NULL);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_false(call_on(e, a, r, &ca));
    assert_true(ca.chunks > 2);
    await_keys(e, "t2", 1);
    r = chat(e, "t2", "Tell me a streamed story", NULL);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_true(call_on(e, b, r, &cb));
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    assert_int_equal(cb.chunks, ca.chunks);
    assert_int_equal(cb.text_len, ca.text_len);
    assert_string_equal(cb.text, ca.text);
    assert_int_equal(cb.called_in_submit, 0);
    mock_call_free(&ca);
    mock_call_free(&cb);
    mock_env_close_other(e, a);
    mock_env_close_other(e, b);
}

/* Redis expires the entry after the TTL (PX): the other client misses
 * then. The TTL leaves the hit seconds of margin on a loaded machine. */
static void test_ttl_expiry(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, NULL, 0), *b = client_of(e, NULL, 0);
    mock_call c = {0};
    assert_false(call_on(e, a, chat(e, "t3", "short", ";cache=3"), &c));
    mock_call_free(&c);
    await_keys(e, "t3", 1);
    assert_true(call_on(e, b, chat(e, "t3", "short", ";cache=3"), &c));
    mock_call_free(&c);
    mock_env_pause_ms(e, 4000);
    assert_false(call_on(e, b, chat(e, "t3", "short", ";cache=3"), &c));
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), 2);
    mock_env_close_other(e, a);
    mock_env_close_other(e, b);
}

/* A request of test_no_collisions: i picks the prompt or a parameter. */
static llmux_request *variant(mock_env *e, const char *prefix, int i)
{
    llmux_request *r = chat(e, prefix, i == 1 ? "two" : "one", NULL);
    if (i == 2)
        assert_int_equal(llmux_request_set_temperature(r, 0.5), 0);
    if (i == 3)
        assert_int_equal(llmux_request_set_max_tokens(r, 7), 0);
    return r;
}

/* Different prompts or parameters are different entries; each then hits
 * its own. */
static void test_no_collisions(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, NULL, 0), *b = client_of(e, NULL, 0);
    mock_call first[4], again[4];
    redisContext *rc = direct();
    redisReply *r;
    int i;
    memset(first, 0, sizeof first);
    memset(again, 0, sizeof again);
    for (i = 0; i < 4; i++)
        assert_false(call_on(e, a, variant(e, "t4", i), &first[i]));
    await_keys(e, "t4", 4);
    r = cache_keys(rc, "t4");
    assert_int_equal(r->elements, 4);
    freeReplyObject(r);
    for (i = 0; i < 4; i++) {
        assert_true(call_on(e, b, variant(e, "t4", i), &again[i]));
        assert_string_equal(llmux_response_id(again[i].res),
                            llmux_response_id(first[i].res));
    }
    assert_int_equal(llmux_mock_request_count(e->mock), 4);
    /* another prefix is another cache (of another client: one prefix
     * per client) */
    mock_env_close_other(e, b);
    b = client_of(e, NULL, 0);
    mock_call_free(&again[0]);
    assert_false(call_on(e, b, variant(e, "t4b", 0), &again[0]));
    redisFree(rc);
    mock_call_free_all(first, 4);
    mock_call_free_all(again, 4);
    mock_env_close_other(e, a);
    mock_env_close_other(e, b);
}

/* A value that is not the cache's (garbage, an empty string, another
 * program's type) is a miss: the provider answers, nothing crashes, and
 * the fresh answer replaces it. */
static void test_foreign_values(void **state)
{
    mock_env *e = *state;
    logged l = {0};
    llmux_client *a = client_of(e, &l, 0);
    mock_call c = {0};
    redisContext *rc = direct();
    redisReply *r;
    char key[256];
    /* a value of ours cut short, bytes of no format, nothing */
    static const char *const foreign[] = {"LXC1R\xff\xff\xff\xff\x01g",
                                          "{\"not\":\"ours\"}", ""};
    llmux_stats st;
    size_t i;
    assert_false(call_on(e, a, chat(e, "t5", "foreign", NULL), &c));
    mock_call_free(&c);
    await_keys(e, "t5", 1);
    the_key(rc, "t5", key, sizeof key);
    for (i = 0; i < 3; i++) {
        size_t n = strlen(foreign[i]);
        r = redisCommand(rc, "SET %s %b", key, foreign[i], n);
        freeReplyObject(r);
        assert_false(call_on(e, a, chat(e, "t5", "foreign", NULL), &c));
        mock_call_free(&c);
        /* the provider's answer replaced it */
        await_replaced(e, key, foreign[i], n);
    }
    assert_true(call_on(e, a, chat(e, "t5", "foreign", NULL), &c));
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), 4);
    st = stats_of(a);
    assert_int_equal(st.cache_backend_errors, 0);
    /* another type under the key (GET answers WRONGTYPE): foreign as
     * well, a miss and no failure; SET replaces it */
    r = redisCommand(rc, "DEL %s", key);
    freeReplyObject(r);
    r = redisCommand(rc, "HSET %s f v", key);
    freeReplyObject(r);
    assert_false(call_on(e, a, chat(e, "t5", "foreign", NULL), &c));
    mock_call_free(&c);
    await_replaced(e, key, "", 0);
    st = stats_of(a);
    assert_int_equal(st.cache_misses, 5);
    assert_int_equal(st.cache_backend_errors, 0);
    assert_int_equal(l.outage_lines, 0);
    assert_int_equal(l.showed_secret, 0);
    redisFree(rc);
    mock_env_close_other(e, a);
}

/* An answer above cache_max_bytes is not kept in Redis; a stream above
 * it neither. */
static void test_value_bound(void **state)
{
    mock_env *e = *state;
    llmux_client *a = client_of(e, NULL, 64);
    mock_call c = {0};
    redisContext *rc = direct();
    redisReply *r;
    llmux_request *req;
    llmux_stats st;
    assert_false(call_on(e, a, chat(e, "t6", "big", NULL), &c));
    mock_call_free(&c);
    req = chat(e, "t6", "big stream", NULL);
    assert_int_equal(llmux_request_set_stream(req, 1), 0);
    assert_false(call_on(e, a, req, &c));
    mock_call_free(&c);
    mock_env_pause_ms(e, 200); /* what would have been sent is there */
    r = cache_keys(rc, "t6");
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    st = stats_of(a);
    assert_int_equal(st.cache_stores, 0);
    assert_int_equal(st.cache_backend_errors, 0);
    redisFree(rc);
    mock_env_close_other(e, a);
}

/* Redis refusing stores (maxmemory, noeviction) while it answers lookups:
 * the requests succeed, each refusal is counted, one log line for all. */
static void test_store_refused(void **state)
{
    mock_env *e = *state;
    logged l = {0};
    llmux_client *a = client_of(e, &l, 0);
    mock_call c = {0};
    redisContext *rc = direct();
    redisReply *r;
    static const char *const prompts[] = {"full 1", "full 2", "full 3"};
    double end;
    size_t i;
    r = redisCommand(rc, "CONFIG SET maxmemory-policy noeviction");
    freeReplyObject(r);
    r = redisCommand(rc, "CONFIG SET maxmemory 1");
    freeReplyObject(r);
    for (i = 0; i < 3; i++) {
        assert_false(call_on(e, a, chat(e, "t9", prompts[i], NULL), &c));
        mock_call_free(&c);
    }
    end = fleet_now_ms() + 10000; /* the SETs' answers come from the loop */
    while (stats_of(a).cache_backend_errors < 3 && fleet_now_ms() < end)
        mock_env_pause_ms(e, 10);
    assert_int_equal(stats_of(a).cache_backend_errors, 3);
    assert_int_equal(l.outage_lines, 1);
    r = redisCommand(rc, "CONFIG SET maxmemory 0");
    freeReplyObject(r);
    /* kept again */
    assert_false(call_on(e, a, chat(e, "t9", prompts[0], NULL), &c));
    mock_call_free(&c);
    await_keys(e, "t9", 1);
    assert_true(call_on(e, a, chat(e, "t9", prompts[0], NULL), &c));
    mock_call_free(&c);
    assert_int_equal(stats_of(a).cache_backend_errors, 3);
    assert_int_equal(l.showed_secret, 0);
    redisFree(rc);
    mock_env_close_other(e, a);
}

/* Submits until a request is answered from the cache, for at most 10 s
 * (the connection comes back with backoff): 1 when one was. */
static int until_hit(mock_env *e, llmux_client *c, const char *prompt)
{
    double end = fleet_now_ms() + 10000;
    while (fleet_now_ms() < end) {
        mock_call mc = {0};
        int hit = call_on(e, c, chat(e, "t7", prompt, NULL), &mc);
        mock_call_free(&mc);
        if (hit)
            return 1;
        mock_env_pause_ms(e, 100);
    }
    return 0;
}

/* Redis killed: every request still succeeds from the provider at once,
 * the failures counted and logged once; restarted: hits again. */
static void test_redis_killed(void **state)
{
    mock_env *e = *state;
    logged l = {0};
    llmux_client *a = client_of(e, &l, 0);
    mock_call c = {0};
    llmux_stats st;
    size_t before;
    int i;
    double t0;
    assert_true(until_hit(e, a, "down"));
    fleet_redis_kill(&srv);
    mock_env_pause_ms(e, 50);
    before = llmux_mock_request_count(e->mock);
    for (i = 0; i < 3; i++) {
        t0 = fleet_now_ms();
        assert_false(call_on(e, a, chat(e, "t7", "down", NULL), &c));
        mock_call_free(&c);
        /* no hang: at most the command timeout (1 s), with margin */
        assert_true(fleet_now_ms() - t0 < 5000);
    }
    assert_int_equal(llmux_mock_request_count(e->mock), before + 3);
    st = stats_of(a);
    assert_true(st.cache_backend_errors >= 3);
    assert_int_equal(l.outage_lines, 1);
    assert_int_equal(fleet_redis_restart(&srv), 0);
    /* an empty server: kept again, then hit */
    assert_true(until_hit(e, a, "down"));
    assert_int_equal(l.showed_secret, 0);
    mock_env_close_other(e, a);
}

/* Bad options are refused at llmux_client_new, a password never shown;
 * a config string's bad value names its key; one server per client. */
static void test_bad_settings(void **state)
{
    mock_env *e = *state;
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *bad = NULL;
    llmux_request *req = NULL;
    mock_call c = {0};
    logged l = {0};
    char spec[1024];
    o.log = on_log;
    o.log_userdata = &l;
    o.cache_backend = "ftp://h";
    assert_int_equal(llmux_client_new(&bad, &o), LLMUX_ECONFIG);
    o.cache_backend = "redis://:hunter2@h:0";
    assert_int_equal(llmux_client_new(&bad, &o), LLMUX_ECONFIG);
    o.cache_backend = "redis://:hunter2@h1:6379";
    o.limits = "redis://:hunter2@h2:6379";
    assert_int_equal(llmux_client_new(&bad, &o), LLMUX_ECONFIG);
    assert_null(bad);
    assert_int_equal(l.showed_secret, 0);
    /* lru and the same server as the limits' are fine */
    o.limits = o.cache_backend;
    o.loop = &e->loop;
    assert_int_equal(llmux_client_new(&bad, &o), 0);
    mock_env_close_other(e, bad);
    o.cache_backend = "LRU";
    assert_int_equal(llmux_client_new(&bad, &o), 0);
    mock_env_close_other(e, bad);
    assert_int_equal(
        llmux_request_new(&req, LLMUX_OP_CHAT,
                          "openai/m;cache_backend=redis://:hunter2@h:x"),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "\"cache_backend\""));
    assert_null(strstr(llmux_request_errmsg(req), "hunter2"));
    llmux_request_free(req);
    /* a client caching in one server is refused another, and another
     * prefix of it */
    bad = client_of(e, NULL, 0);
    assert_false(call_on(e, bad, chat(e, "t8", "x", NULL), &c));
    mock_call_free(&c);
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=k;cache=60;"
             "cache_backend=%s?db=1",
             e->base, srv.url);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "x");
    assert_int_equal(
        llmux_submit(bad, req, mock_call_on_chunk, mock_call_on_done, &c),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "one Redis server"));
    llmux_request_free(req);
    req = chat(e, "t8other", "x", NULL);
    assert_int_equal(
        llmux_submit(bad, req, mock_call_on_chunk, mock_call_on_done, &c),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "prefix t8"));
    llmux_request_free(req);
    mock_env_close_other(e, bad);
}

/* A caller built against version 2 of llmux_stats: nothing is written
 * past its struct. */
static void test_stats_v2_caller(void **state)
{
    mock_env *e = *state;
    size_t v2 = offsetof(llmux_stats, cache_backend_errors);
    unsigned char *buf = malloc(sizeof(llmux_stats) + 16);
    size_t i;
    assert_non_null(buf);
    memset(buf, 0xAB, sizeof(llmux_stats) + 16);
    ((llmux_stats *)(void *)buf)->version = 2;
    assert_int_equal(llmux_client_stats(e->client, (llmux_stats *)(void *)buf),
                     0);
    for (i = v2; i < sizeof(llmux_stats) + 16; i++)
        assert_int_equal(buf[i], 0xAB);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        mock_env_test(test_shared_hit),     mock_env_test(test_shared_stream),
        mock_env_test(test_ttl_expiry),     mock_env_test(test_no_collisions),
        mock_env_test(test_foreign_values), mock_env_test(test_value_bound),
        mock_env_test(test_store_refused),  mock_env_test(test_redis_killed),
        mock_env_test(test_bad_settings),   mock_env_test(test_stats_v2_caller),
    };
    return fleet_main(&srv, "test_cache_redis", tests,
                      sizeof tests / sizeof tests[0]);
}
