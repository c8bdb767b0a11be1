/*
 * tests/fleet/test_shared_limits.c: the Redis limits backend end to end:
 * clients with their own connections (as separate processes have) against
 * llmux-mock and a real redis-server. A 429 seen by one pauses the other,
 * and so do the provider's x-ratelimit headers and a reported usage above
 * the estimate (the shared token bucket corrected);
 * Redis killed: limits_fallback=closed fails at once with LLMUX_ELIMITS,
 * =local goes on; restarted: shared limiting resumes; bad settings are
 * refused naming the key, a password never shown. The rate held by three
 * processes is test_fleet_rate.sh's. Skipped (77) without redis-server.
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

static fleet_redis srv;

/* A chat request to the mock with rpm and the shared limits; `extra` is
 * appended to the config string (";key=value..."). */
/* A chat request on spec, saying hi. */
static llmux_request *request_of(const char *spec)
{
    llmux_request *req;
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    llmux_request_add_message(req, LLMUX_ROLE_USER, "hi");
    return req;
}

static llmux_request *chat(mock_env *e, const char *model, const char *extra)
{
    char spec[1024];
    snprintf(spec, sizeof spec,
             "openai/%s;base_url=http://127.0.0.1:%d/v1;api_key=sk-fleet-"
             "secret;rpm=600;limits=%s%s",
             model ? model : "gpt-4o-mini", llmux_mock_port(e->mock), srv.url,
             extra ? extra : "");
    return request_of(spec);
}

static llmux_client *second_client(mock_env *e, int max_retries)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *c;
    o.loop = &e->loop;
    o.max_retries = max_retries;
    assert_int_equal(llmux_client_new(&c, &o), 0);
    return c;
}

static void get_stats(llmux_client *c, llmux_stats *st)
{
    memset(st, 0, sizeof *st);
    st->version = LLMUX_STATS_VERSION;
    assert_int_equal(llmux_client_stats(c, st), 0);
}

/* One request on the env's client, a (with `fault` as X-Mock-Fault, may
 * be NULL; ending with a_status), then one on client b (another process
 * as far as it knows): the ms b's took, which the shared state made it
 * wait. Both use the config string's `extra`. */
static double b_after_a(mock_env *e, llmux_client *b, const char *fault,
                        const char *extra, int a_status)
{
    mock_call ca = {0}, cb = {0}, warm = {0};
    llmux_request *ra = chat(e, NULL, extra);
    double t0;
    /* b connected first, so its wait below is not the connect's */
    warm.e = e;
    assert_int_equal(llmux_submit(b, chat(e, NULL, NULL), mock_call_on_chunk,
                                  mock_call_on_done, &warm),
                     0);
    mock_env_wait(e, &warm);
    assert_int_equal(warm.status, 0);
    if (fault) {
        char h[256];
        snprintf(h, sizeof h, "X-Mock-Fault: %s", fault);
        llmux_request_add_header(ra, h);
    }
    assert_int_equal(mock_env_call(e, ra, &ca), a_status);
    /* what a's answer told Redis goes out on the next loop turns: b's
     * question must not overtake it (separate processes would race so) */
    mock_env_pause_ms(e, 50);
    t0 = fleet_now_ms();
    cb.e = e;
    assert_int_equal(llmux_submit(b, chat(e, NULL, extra), mock_call_on_chunk,
                                  mock_call_on_done, &cb),
                     0);
    mock_env_wait(e, &cb);
    assert_int_equal(cb.status, 0);
    mock_call_free(&ca);
    mock_call_free(&cb);
    mock_call_free(&warm);
    return fleet_now_ms() - t0;
}

static void test_ratelimit_headers_shared(void **state)
{
    mock_env *e = *state;
    llmux_client *b = second_client(e, 2);
    /* the provider says no request is left until 2 s from now */
    double ms = b_after_a(e, b,
                          "header=x-ratelimit-remaining-requests:0;"
                          "header=x-ratelimit-reset-requests:2s",
                          NULL, 0);
    if (ms < 1500)
        fail_msg("the other client went after %.0f ms; the provider's "
                 "x-ratelimit headers said wait 2 s",
                 ms);
    mock_env_close_other(e, b);
}

static void test_usage_corrects_shared_tokens(void **state)
{
    mock_env *e = *state;
    llmux_client *b = second_client(e, 2);
    /* 120 tpm: 2 tokens of burst, 2 a second. "hi" is estimated at 1.5
     * tokens (2 in Redis), the mock reports 5 used: the shared bucket owes
     * what the estimate missed, so the next request waits about 3 s for
     * its 2 tokens, not the 1 s it would without the correction */
    double ms = b_after_a(e, b, NULL, ";tpm=120", 0);
    if (ms < 2000)
        fail_msg("the other client went after %.0f ms: the usage did not "
                 "correct the shared token bucket",
                 ms);
    mock_env_close_other(e, b);
}

static void test_429_pauses_the_others(void **state)
{
    mock_env *e = *state;
    llmux_client *b = second_client(e, 2);
    /* the default client (no retries) sees a 429 with Retry-After 2 */
    double ms = b_after_a(e, b, "status=429;retry_after=2", ";max_retries=0",
                          LLMUX_ERATELIMIT);
    if (ms < 1500)
        fail_msg("the second client went after %.0f ms, before the shared "
                 "pause of 2 s ended",
                 ms);
    mock_env_close_other(e, b);
}

/* Submits requests until one succeeds, for at most 10 s (the backend
 * reconnects with backoff): 0, or the last failure's code. */
static int until_success(mock_env *e, const char *extra)
{
    double end = fleet_now_ms() + 10000;
    int rc = -1;
    while (rc != 0 && fleet_now_ms() < end) {
        mock_call c = {0};
        rc = mock_env_call(e, chat(e, NULL, extra), &c);
        mock_call_free(&c);
        if (rc)
            mock_env_pause_ms(e, 100);
    }
    return rc;
}

static void test_killed_fails_closed(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_stats st;
    double t0;
    assert_int_equal(until_success(e, NULL), 0);
    fleet_redis_kill(&srv);
    mock_env_pause_ms(e, 50);
    t0 = fleet_now_ms();
    assert_int_equal(mock_env_call(e, chat(e, NULL, NULL), &c), LLMUX_ELIMITS);
    assert_true(fleet_now_ms() - t0 < 2000); /* at once, no hang */
    assert_non_null(strstr(c.err->message, "shared limits unavailable"));
    assert_non_null(strstr(c.err->message, srv.url));
    assert_non_null(strstr(c.err->message, "limits_fallback=closed"));
    mock_call_free(&c);
    get_stats(e->client, &st);
    assert_true(st.limits_backend_errors >= 1);
    assert_int_equal(st.limits_fallbacks, 0);
    /* back: shared again, by itself */
    assert_int_equal(fleet_redis_restart(&srv), 0);
    assert_int_equal(until_success(e, NULL), 0);
}

static void test_killed_falls_back_local(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_stats st;
    uint64_t fallbacks;
    assert_int_equal(until_success(e, ";limits_fallback=local"), 0);
    get_stats(e->client, &st);
    assert_int_equal(st.limits_fallbacks, 0);
    fleet_redis_kill(&srv);
    mock_env_pause_ms(e, 50);
    assert_int_equal(
        mock_env_call(e, chat(e, NULL, ";limits_fallback=local"), &c), 0);
    mock_call_free(&c);
    get_stats(e->client, &st);
    assert_true(st.limits_fallbacks >= 1);
    assert_true(st.limits_backend_errors >= 1);
    fallbacks = st.limits_fallbacks;
    assert_int_equal(fleet_redis_restart(&srv), 0);
    mock_env_pause_ms(e, 1500); /* the backoff's next try reconnects */
    assert_int_equal(
        mock_env_call(e, chat(e, NULL, ";limits_fallback=local"), &c), 0);
    mock_call_free(&c);
    get_stats(e->client, &st);
    assert_int_equal(st.limits_fallbacks, fallbacks); /* shared again */
}

/* A config string's bad value: refused naming the key, no password. */
static void expect_bad(mock_env *e, const char *extra, const char *key)
{
    mock_call c = {0};
    llmux_request *req = NULL;
    char spec[512], quoted[64];
    const char *m;
    int rc;
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=k;"
             "rpm=60%s",
             llmux_mock_port(e->mock), extra);
    /* refused by the config string's own check */
    rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
    assert_int_equal(rc, LLMUX_ECONFIG);
    assert_non_null(req);
    m = llmux_request_errmsg(req);
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    if (!m || !strstr(m, quoted) || strstr(m, "hunter2"))
        fail_msg("%s: %s", extra, m ? m : "(no message)");
    (void)c;
    llmux_request_free(req);
}

static void test_bad_settings(void **state)
{
    mock_env *e = *state;
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *bad;
    expect_bad(e, ";limits=ftp://h", "limits");
    expect_bad(e, ";limits=redis://:hunter2@h:99999", "limits");
    expect_bad(e, ";limits_fallback=maybe", "limits_fallback");
    expect_bad(e, ";limits_prefix=a b", "limits_prefix");
    o.limits = "redis://:hunter2@h:0";
    assert_int_equal(llmux_client_new(&bad, &o), LLMUX_ECONFIG);
    o.limits = NULL;
    o.limits_fallback = "open";
    assert_int_equal(llmux_client_new(&bad, &o), LLMUX_ECONFIG);
}

static void test_one_server_per_client(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *req;
    char spec[1024];
    assert_int_equal(until_success(e, NULL), 0);
    /* another server (database 1 of the same one counts as another) */
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=http://127.0.0.1:%d/v1;api_key=k2;"
             "rpm=60;limits=%s?db=1",
             llmux_mock_port(e->mock), srv.url);
    req = request_of(spec);
    c.e = e;
    assert_int_equal(
        llmux_submit(e->client, req, mock_call_on_chunk, mock_call_on_done, &c),
        LLMUX_ECONFIG);
    assert_non_null(strstr(llmux_request_errmsg(req), "one Redis server"));
    llmux_request_free(req);
}

/* A caller built against version 1 of llmux_stats: nothing is written
 * past its struct. */
static void test_stats_v1_caller(void **state)
{
    mock_env *e = *state;
    size_t v1 = offsetof(llmux_stats, limits_backend_errors);
    unsigned char *buf = malloc(sizeof(llmux_stats) + 16);
    size_t i;
    assert_non_null(buf);
    memset(buf, 0xAB, sizeof(llmux_stats) + 16);
    ((llmux_stats *)(void *)buf)->version = 1;
    assert_int_equal(llmux_client_stats(e->client, (llmux_stats *)(void *)buf),
                     0);
    for (i = v1; i < sizeof(llmux_stats) + 16; i++)
        assert_int_equal(buf[i], 0xAB);
    assert_int_equal(llmux_client_provider_stats(e->client, "openai",
                                                 (llmux_stats *)(void *)buf),
                     0);
    for (i = v1; i < sizeof(llmux_stats) + 16; i++)
        assert_int_equal(buf[i], 0xAB);
    free(buf);
}

static int setup(void **state)
{
    static llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    static llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    static mock_env_config cfg;
    o.max_retries = 0;
    mo.quiet = 1;
    cfg.client = &o;
    cfg.mock = &mo;
    *state = &cfg;
    return mock_env_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_429_pauses_the_others, setup,
                                        mock_env_teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_headers_shared, setup,
                                        mock_env_teardown),
        cmocka_unit_test_setup_teardown(test_usage_corrects_shared_tokens,
                                        setup, mock_env_teardown),
        cmocka_unit_test_setup_teardown(test_killed_fails_closed, setup,
                                        mock_env_teardown),
        cmocka_unit_test_setup_teardown(test_killed_falls_back_local, setup,
                                        mock_env_teardown),
        cmocka_unit_test_setup_teardown(test_bad_settings, setup,
                                        mock_env_teardown),
        cmocka_unit_test_setup_teardown(test_one_server_per_client, setup,
                                        mock_env_teardown),
        cmocka_unit_test_setup_teardown(test_stats_v1_caller, setup,
                                        mock_env_teardown),
    };
    return fleet_main(&srv, "test_shared_limits", tests,
                      sizeof tests / sizeof tests[0]);
}
