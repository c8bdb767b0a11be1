/*
 * tests/mock/test_cache.c: the exact-match response cache end to end
 * against llmux-mock: a hit answers without a request to the mock and
 * never inside llmux_submit(); streams replay chunk by chunk; what is and
 * is not part of the key (the API key is not; the base URL and every
 * parameter are); cache=no, cache_all, TTL expiry, errors, cut streams
 * and fallbacks' answers not kept, a hit's spend of nothing, cancel during a
 * lookup, pause and resume during a replay, and the counters.
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

#include "mock/mock_env.h"

/* A chat request to the mock with `opts` appended to its config string
 * (";cache=60", ...), on base URL `base` (NULL: the mock's). */
static llmux_request *chat_at(mock_env *e, const char *base, const char *opts,
                              const char *prompt)
{
    llmux_request *req;
    char spec[512];
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=sk-test%s",
             base ? base : e->base, opts);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, prompt),
                     0);
    return req;
}

static llmux_request *chat(mock_env *e, const char *opts, const char *prompt)
{
    return chat_at(e, NULL, opts, prompt);
}

static llmux_stats stats(mock_env *e)
{
    llmux_stats st;
    st.version = LLMUX_STATS_VERSION;
    assert_int_equal(llmux_client_stats(e->client, &st), 0);
    return st;
}

/* Calls req and returns whether its answer came from the cache; the
 * call must succeed. */
static int cached_call(mock_env *e, llmux_request *req, mock_call *c)
{
    assert_int_equal(mock_env_call(e, req, c), 0);
    assert_int_equal(c->calls, 1);
    return llmux_response_cached(c->res);
}

/* ---- tests --------------------------------------------------------------- */

/* The second identical request is a hit: same answer, no request to the
 * mock, no attempt, no cost; the counters say so. */
static void test_hit_and_miss(void **state)
{
    mock_env *e = *state;
    mock_call a = {0}, b = {0};
    llmux_stats st;
    int known = 0;
    const llmux_usage *u;
    double spent;
    assert_false(cached_call(
        e, chat(e, ";api_key=sk-test;cache=60", "Hello cache"), &a));
    assert_int_equal(llmux_response_attempts(a.res), 1);
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    spent = llmux_client_spend(e->client, NULL);
    assert_true(spent > 0); /* gpt-4o-mini has a price */
    assert_true(cached_call(
        e, chat(e, ";api_key=sk-test;cache=60", "Hello cache"), &b));
    assert_true(llmux_client_spend(e->client, NULL) == spent);
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    assert_int_equal(llmux_response_attempts(b.res), 0);
    assert_string_equal(llmux_response_text(b.res, NULL),
                        llmux_response_text(a.res, NULL));
    assert_string_equal(llmux_response_id(b.res), llmux_response_id(a.res));
    u = llmux_response_usage(b.res);
    assert_non_null(u);
    assert_int_equal(u->completion_tokens,
                     llmux_response_usage(a.res)->completion_tokens);
    assert_true(llmux_response_cost(b.res, &known) == 0.0);
    assert_true(known);
    {
        size_t n1, n2;
        const char *r1 = llmux_response_raw(a.res, &n1);
        const char *r2 = llmux_response_raw(b.res, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(r1, r2, n1);
    }
    st = stats(e);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.cache_misses, 1);
    assert_int_equal(st.cache_stores, 1);
    assert_int_equal(st.succeeded, 2);
    assert_int_equal(st.attempts, 1);
    /* the tokens the provider counted, once */
    assert_int_equal(st.completion_tokens,
                     (uint64_t)llmux_response_usage(a.res)->completion_tokens);
    mock_call_free(&a);
    mock_call_free(&b);
}

/* Without cache= (and without cache_all) nothing is looked up or kept;
 * cache=no bypasses an entry that is there. */
static void test_opt_in_and_bypass(void **state)
{
    mock_env *e = *state;
    mock_call c[4] = {{0}};
    llmux_stats st;
    assert_false(cached_call(e, chat(e, "", "opt in"), &c[0]));
    assert_false(cached_call(e, chat(e, "", "opt in"), &c[1]));
    st = stats(e);
    assert_int_equal(st.cache_hits + st.cache_misses + st.cache_stores, 0);
    assert_false(cached_call(e, chat(e, ";cache=yes", "opt in"), &c[2]));
    assert_false(cached_call(e, chat(e, ";cache=no", "opt in"), &c[3]));
    assert_int_equal(llmux_mock_request_count(e->mock), 4);
    mock_call_free_all(c, 4);
    assert_true(cached_call(e, chat(e, ";cache=yes", "opt in"), &c[0]));
    assert_int_equal(llmux_mock_request_count(e->mock), 4);
    mock_call_free(&c[0]);
}

/* The API key is not part of the key: two keys share one entry. */
static void test_api_key_not_in_key(void **state)
{
    mock_env *e = *state;
    mock_call a = {0}, b = {0};
    assert_false(
        cached_call(e, chat(e, ";api_key=sk-first-key;cache=60", "keys"), &a));
    assert_true(
        cached_call(e, chat(e, ";api_key=sk-second-key;cache=60", "keys"), &b));
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    mock_call_free(&a);
    mock_call_free(&b);
}

/* Every parameter, the model, the messages and the deployment are part of
 * the key: changing any one is a miss. */
static void test_params_in_key(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *r;
    char other[160];
    size_t n = 0;
    assert_false(cached_call(e, chat(e, ";cache=60", "params"), &c));
    mock_call_free(&c);
    n++;
    r = chat(e, ";cache=60", "params");
    assert_int_equal(llmux_request_set_temperature(r, 0.5), 0);
    assert_false(cached_call(e, r, &c));
    mock_call_free(&c);
    n++;
    r = chat(e, ";cache=60", "params");
    assert_int_equal(llmux_request_set_max_tokens(r, 7), 0);
    assert_false(cached_call(e, r, &c));
    mock_call_free(&c);
    n++;
    r = chat(e, ";cache=60", "params");
    assert_int_equal(llmux_request_set_field(r, "presence_penalty", "0.5"), 0);
    assert_false(cached_call(e, r, &c));
    mock_call_free(&c);
    n++;
    assert_false(cached_call(e, chat(e, ";cache=60", "params!"), &c));
    mock_call_free(&c);
    n++;
    /* the same server under another name: another deployment */
    snprintf(other, sizeof other, "http://localhost:%d/v1",
             llmux_mock_port(e->mock));
    assert_false(cached_call(e, chat_at(e, other, ";cache=60", "params"), &c));
    mock_call_free(&c);
    n++;
    assert_int_equal(llmux_mock_request_count(e->mock), n);
    /* and each of those is a hit now */
    r = chat(e, ";cache=60", "params");
    assert_int_equal(llmux_request_set_temperature(r, 0.5), 0);
    assert_true(cached_call(e, r, &c));
    mock_call_free(&c);
    assert_true(cached_call(e, chat_at(e, other, ";cache=60", "params"), &c));
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), n);
}

/* A stream is kept as its events and replayed as a stream: the same
 * chunks with the same text, then the done callback. */
static void test_stream_replay(void **state)
{
    mock_env *e = *state;
    mock_call a = {0}, b = {0};
    llmux_request *r = chat(e, ";cache=60", "Tell me a streamed story");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_false(cached_call(e, r, &a));
    assert_true(a.chunks > 2);
    r = chat(e, ";cache=60", "Tell me a streamed story");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_true(cached_call(e, r, &b));
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    assert_int_equal(b.chunks, a.chunks);
    assert_int_equal(b.text_len, a.text_len);
    assert_string_equal(b.text, a.text);
    assert_string_equal(llmux_response_text(b.res, NULL),
                        llmux_response_text(a.res, NULL));
    assert_int_equal(b.called_in_submit, 0);
    /* the plain request is another entry */
    mock_call_free(&b);
    assert_false(
        cached_call(e, chat(e, ";cache=60", "Tell me a streamed story"), &b));
    mock_call_free(&a);
    mock_call_free(&b);
}

/* Errors and streams cut off are never kept. */
static void test_failures_not_kept(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *r;
    llmux_stats st;
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=400"), 0);
    assert_int_equal(
        mock_env_call(e, chat(e, ";cache=60;max_retries=0", "fail"), &c),
        LLMUX_EPROVIDER);
    mock_call_free(&c);
    assert_false(cached_call(e, chat(e, ";cache=60", "fail"), &c));
    mock_call_free(&c);
    assert_int_equal(llmux_mock_push_fault(e->mock, "cut_after=2"), 0);
    r = chat(e, ";cache=60;max_retries=0", "cut");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_int_not_equal(mock_env_call(e, r, &c), 0);
    mock_call_free(&c);
    r = chat(e, ";cache=60", "cut");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_false(cached_call(e, r, &c));
    mock_call_free(&c);
    /* a stream its caller stopped is not kept either */
    r = chat(e, ";cache=60", "stopped");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    c.abort_after = 1;
    assert_int_equal(mock_env_call(e, r, &c), LLMUX_EUSER);
    mock_call_free(&c);
    r = chat(e, ";cache=60", "stopped");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_false(cached_call(e, r, &c));
    mock_call_free(&c);
    st = stats(e);
    assert_int_equal(st.cache_hits, 0);
    assert_int_equal(st.cache_stores, 3);
}

/* An answer a fallback gave is not kept under the first config string's
 * key. */
static void test_fallback_not_kept(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    char fb[256];
    llmux_request *r;
    snprintf(fb, sizeof fb, "openai/gpt-4o-mini;base_url=%s;api_key=sk-test",
             e->base);
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=500"), 0);
    r = chat(e, ";cache=60;max_retries=0", "fall back");
    assert_int_equal(llmux_request_add_fallback(r, fb), 0);
    assert_false(cached_call(e, r, &c));
    assert_int_equal(llmux_response_fallback(c.res), 1);
    mock_call_free(&c);
    assert_int_equal(stats(e).cache_stores, 0);
    r = chat(e, ";cache=60;max_retries=0", "fall back");
    assert_int_equal(llmux_request_add_fallback(r, fb), 0);
    assert_false(cached_call(e, r, &c)); /* the first string answers now */
    mock_call_free(&c);
    r = chat(e, ";cache=60;max_retries=0", "fall back");
    assert_int_equal(llmux_request_add_fallback(r, fb), 0);
    assert_true(cached_call(e, r, &c));
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), 3);
}

/* An entry past its TTL is a miss. The TTL leaves the second call (at
 * once, under valgrind on a loaded machine too) seconds of margin. */
static void test_ttl_expiry(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    assert_false(cached_call(e, chat(e, ";cache=2", "short"), &c));
    mock_call_free(&c);
    assert_true(cached_call(e, chat(e, ";cache=2", "short"), &c));
    mock_call_free(&c);
    uv_sleep(3000); /* past the TTL, counted from the first answer */
    assert_false(cached_call(e, chat(e, ";cache=2", "short"), &c));
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), 2);
}

/* A request cancelled while its lookup is pending ends once, cancelled,
 * from the loop; a hit cancelled before its delivery as well. */
static void test_cancel_during_lookup(void **state)
{
    mock_env *e = *state;
    mock_call a = {0}, b = {0};
    llmux_request *r = chat(e, ";cache=60", "cancel me");
    mock_env_submit(e, r, &a);
    assert_int_equal(llmux_request_cancel(r), 0);
    mock_env_wait(e, &a);
    assert_int_equal(a.status, LLMUX_ECANCELED);
    assert_int_equal(llmux_mock_request_count(e->mock), 0);
    mock_call_free(&a);
    assert_false(cached_call(e, chat(e, ";cache=60", "cancel me"), &a));
    r = chat(e, ";cache=60", "cancel me");
    mock_env_submit(e, r, &b);
    assert_int_equal(llmux_request_cancel(r), 0);
    mock_env_wait(e, &b);
    assert_int_equal(b.status, LLMUX_ECANCELED);
    assert_int_equal(b.calls, 1);
    assert_int_equal(stats(e).cache_hits, 0);
    mock_call_free(&a);
    mock_call_free(&b);
}

/* A replay honours pause and resume, as a stream from the wire does. */
typedef struct pauser {
    mock_call c;
    uv_timer_t t;
    llmux_request *req;
    int pauses, closed;
    int cached_chunks; /* chunks llmux_chunk_cached() said were replayed */
} pauser;

static void on_resume(uv_timer_t *t)
{
    pauser *p = t->data;
    assert_int_equal(llmux_request_resume(p->req), 0);
}

static int pause_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    pauser *p = ud;
    int rc = mock_call_on_chunk(req, ch, &p->c);
    p->req = req;
    p->cached_chunks += llmux_chunk_cached(ch);
    assert_int_equal(llmux_request_pause(req), 0);
    p->pauses++;
    uv_timer_start(&p->t, on_resume, 5, 0);
    return rc;
}

static void pause_done(llmux_request *req, int status, llmux_response *res,
                       void *ud)
{
    mock_call_on_done(req, status, res, &((pauser *)ud)->c);
}

static void on_closed(uv_handle_t *h)
{
    ((pauser *)h->data)->closed = 1;
}

static void test_replay_pause(void **state)
{
    mock_env *e = *state;
    mock_call a = {0};
    pauser p;
    llmux_request *r = chat(e, ";cache=60", "pause the replay");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_false(cached_call(e, r, &a));
    memset(&p, 0, sizeof p);
    p.c.e = e;
    uv_timer_init(&e->loop, &p.t);
    p.t.data = &p;
    r = chat(e, ";cache=60", "pause the replay");
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    assert_int_equal(llmux_submit(e->client, r, pause_chunk, pause_done, &p),
                     0);
    assert_int_equal(p.c.calls, 0);
    mock_env_wait(e, &p.c);
    assert_int_equal(p.c.status, 0);
    assert_true(llmux_response_cached(p.c.res));
    assert_int_equal(p.pauses, a.chunks);
    assert_int_equal(p.cached_chunks, a.chunks);
    assert_string_equal(p.c.text, a.text);
    uv_close((uv_handle_t *)&p.t, on_closed);
    mock_env_run_until(e, &p.closed);
    mock_call_free(&a);
    mock_call_free(&p.c);
}

/* cache_all: every request is cached unless it says cache=no; the LRU's
 * bounds hold (max_entries 2: the oldest goes). */
static void test_cache_all_and_bounds(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    assert_false(cached_call(e, chat(e, "", "one"), &c));
    mock_call_free(&c);
    assert_false(cached_call(e, chat(e, "", "two"), &c));
    mock_call_free(&c);
    assert_true(cached_call(e, chat(e, "", "one"), &c)); /* one is newest */
    mock_call_free(&c);
    assert_false(cached_call(e, chat(e, "", "three"), &c)); /* two goes */
    mock_call_free(&c);
    assert_true(cached_call(e, chat(e, "", "one"), &c));
    mock_call_free(&c);
    assert_false(cached_call(e, chat(e, "", "two"), &c));
    mock_call_free(&c);
    assert_false(cached_call(e, chat(e, ";cache=no", "two"), &c));
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), 5);
}

/* A version 1 stats caller gets no byte past its struct. */
static void test_stats_v1(void **state)
{
    mock_env *e = *state;
    union {
        llmux_stats st;
        unsigned char b[sizeof(llmux_stats)];
    } u;
    size_t v1 = offsetof(llmux_stats, cache_hits), i;
    memset(&u, 0xab, sizeof u);
    u.st.version = 1;
    assert_int_equal(llmux_client_stats(e->client, &u.st), 0);
    for (i = v1; i < sizeof u.b; i++)
        assert_int_equal(u.b[i], 0xab);
    assert_int_equal(llmux_client_provider_stats(e->client, "openai", &u.st),
                     0);
    for (i = v1; i < sizeof u.b; i++)
        assert_int_equal(u.b[i], 0xab);
}

int main(void)
{
    static llmux_client_options all = {LLMUX_CLIENT_OPTIONS_DEFAULTS,
                                       .cache_all = 1, .cache_max_entries = 2};
    static mock_env_config all_cfg = {&all, NULL};
    const struct CMUnitTest tests[] = {
        mock_env_test(test_hit_and_miss),
        mock_env_test(test_opt_in_and_bypass),
        mock_env_test(test_api_key_not_in_key),
        mock_env_test(test_params_in_key),
        mock_env_test(test_stream_replay),
        mock_env_test(test_failures_not_kept),
        mock_env_test(test_fallback_not_kept),
        mock_env_test(test_ttl_expiry),
        mock_env_test(test_cancel_during_lookup),
        mock_env_test(test_replay_pause),
        mock_env_test_with(test_cache_all_and_bounds, &all_cfg),
        mock_env_test(test_stats_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
