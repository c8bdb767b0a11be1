/*
 * tests/unit/test_cache_lru.c: the response cache's parts below the
 * engine (core/cache.h): the LRU backend's bounds (entries, bytes), its
 * order, TTL on a fake clock, replacement; SHA-256 keys; the value's
 * encoding and the refusal of malformed values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static uint64_t fake_now;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

/* What a lookup answered. */
typedef struct got {
    int calls, found;
    char val[256];
    size_t len;
} got;

static void on_got(void *ud, int found, const char *val, size_t len)
{
    got *g = ud;
    g->calls++;
    g->found = found;
    g->len = len < sizeof g->val ? len : sizeof g->val;
    if (found > 0)
        memcpy(g->val, val, g->len);
}

/* A key from a short name: the SHA-256 of it. */
static const char *key(const char *name)
{
    static char k[8][LLMUX__CACHE_KEY_LEN + 1];
    static int i;
    char *out = k[i++ % 8];
    assert_int_equal(llmux__sha256_hex(name, strlen(name), out), 0);
    return out;
}

/* Looks name up: 1 with the value in g, 0 when missing. */
static int lookup(llmux__cache_backend *b, const char *name, got *g)
{
    memset(g, 0, sizeof *g);
    b->get(b, key(name), on_got, g);
    assert_int_equal(g->calls, 1); /* the LRU answers inside get */
    return g->found;
}

static void test_sha256(void **state)
{
    char out[LLMUX__CACHE_KEY_LEN + 1];
    (void)state;
    assert_int_equal(llmux__sha256_hex("abc", 3, out), 0);
    assert_string_equal(
        out,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(llmux__sha256_hex("", 0, out), 0);
    assert_string_equal(
        out,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_put_get_replace(void **state)
{
    llmux__cache_backend *b =
        llmux__cache_lru_new(1 << 20, 100, fake_clock, NULL);
    got g;
    size_t n, bytes;
    (void)state;
    fake_now = 1000;
    assert_int_equal(lookup(b, "a", &g), 0);
    assert_int_equal(b->put(b, key("a"), "one", 3, 10000), 0);
    assert_int_equal(lookup(b, "a", &g), 1);
    assert_int_equal(g.len, 3);
    assert_memory_equal(g.val, "one", 3);
    assert_int_equal(b->put(b, key("a"), "second", 6, 10000), 0);
    assert_int_equal(lookup(b, "a", &g), 1);
    assert_memory_equal(g.val, "second", 6);
    llmux__cache_lru_usage(b, &n, &bytes);
    assert_int_equal(n, 1);
    assert_true(bytes >= 6);
    b->free(b);
}

static void test_ttl(void **state)
{
    llmux__cache_backend *b =
        llmux__cache_lru_new(1 << 20, 100, fake_clock, NULL);
    got g;
    size_t n;
    (void)state;
    fake_now = 5000;
    assert_int_equal(b->put(b, key("t"), "v", 1, 300), 0);
    fake_now = 5299;
    assert_int_equal(lookup(b, "t", &g), 1);
    fake_now = 5300;
    assert_int_equal(lookup(b, "t", &g), 0); /* expired: evicted */
    llmux__cache_lru_usage(b, &n, NULL);
    assert_int_equal(n, 0);
    b->free(b);
}

/* max_entries: the least recently used goes, and a lookup refreshes. */
static void test_evict_by_entries(void **state)
{
    llmux__cache_backend *b =
        llmux__cache_lru_new(1 << 20, 3, fake_clock, NULL);
    got g;
    size_t n;
    (void)state;
    fake_now = 0;
    assert_int_equal(b->put(b, key("1"), "a", 1, 1000), 0);
    assert_int_equal(b->put(b, key("2"), "b", 1, 1000), 0);
    assert_int_equal(b->put(b, key("3"), "c", 1, 1000), 0);
    assert_int_equal(lookup(b, "1", &g), 1); /* 2 is now the oldest */
    assert_int_equal(b->put(b, key("4"), "d", 1, 1000), 0);
    assert_int_equal(lookup(b, "2", &g), 0);
    assert_int_equal(lookup(b, "1", &g), 1);
    assert_int_equal(lookup(b, "3", &g), 1);
    assert_int_equal(lookup(b, "4", &g), 1);
    llmux__cache_lru_usage(b, &n, NULL);
    assert_int_equal(n, 3);
    b->free(b);
}

/* max_bytes: values and bookkeeping counted; the oldest go until the new
 * one fits; one bigger than the whole cache is refused. */
static void test_evict_by_bytes(void **state)
{
    char v[1000];
    llmux__cache_backend *b;
    got g;
    size_t n, bytes, one;
    (void)state;
    memset(v, 'x', sizeof v);
    b = llmux__cache_lru_new(1 << 20, 100, fake_clock, NULL);
    assert_int_equal(b->put(b, key("m"), v, sizeof v, 1000), 0);
    llmux__cache_lru_usage(b, NULL, &one); /* what one entry costs */
    b->free(b);
    b = llmux__cache_lru_new(3 * one + one / 2, 100, fake_clock, NULL);
    fake_now = 0;
    assert_int_equal(b->put(b, key("1"), v, sizeof v, 1000), 0);
    assert_int_equal(b->put(b, key("2"), v, sizeof v, 1000), 0);
    assert_int_equal(b->put(b, key("3"), v, sizeof v, 1000), 0);
    assert_int_equal(b->put(b, key("4"), v, sizeof v, 1000), 0);
    llmux__cache_lru_usage(b, &n, &bytes);
    assert_int_equal(n, 3);
    assert_true(bytes <= 3 * one + one / 2);
    assert_int_equal(lookup(b, "1", &g), 0);
    assert_int_equal(lookup(b, "4", &g), 1);
    {
        static char big[8192];
        assert_int_equal(b->put(b, key("big"), big, sizeof big, 1000),
                         LLMUX_ETOOBIG);
    }
    assert_int_equal(lookup(b, "big", &g), 0);
    llmux__cache_lru_usage(b, &n, NULL);
    assert_int_equal(n, 3); /* a refused put evicts nothing */
    b->free(b);
}

/* Many entries: the table grows and every one is still found. */
static void test_many(void **state)
{
    llmux__cache_backend *b =
        llmux__cache_lru_new(64u << 20, 5000, fake_clock, NULL);
    char name[32];
    got g;
    int i;
    (void)state;
    fake_now = 0;
    for (i = 0; i < 6000; i++) {
        snprintf(name, sizeof name, "k%d", i);
        assert_int_equal(b->put(b, key(name), name, strlen(name), 1000), 0);
    }
    for (i = 0; i < 6000; i++) {
        snprintf(name, sizeof name, "k%d", i);
        assert_int_equal(lookup(b, name, &g), i >= 1000);
        if (i >= 1000)
            assert_memory_equal(g.val, name, strlen(name));
    }
    b->free(b);
}

static void test_value_encoding(void **state)
{
    llmux__buf v = {0};
    llmux__cache_rd r;
    const char *ct, *body, *e, *id, *d;
    size_t ctl, bl, el, il, dl;
    long status;
    (void)state;
    assert_int_equal(llmux__cache_val_begin(&v, LLMUX__CACHE_REPLY), 0);
    assert_int_equal(
        llmux__cache_val_reply(&v, 200, "application/json", "{\"a\":1}", 7), 0);
    assert_int_equal(llmux__cache_val_kind(&r, v.p, v.len), LLMUX__CACHE_REPLY);
    assert_int_equal(
        llmux__cache_val_read_reply(&r, &status, &ct, &ctl, &body, &bl), 0);
    assert_int_equal(status, 200);
    assert_int_equal(ctl, 16);
    assert_memory_equal(ct, "application/json", 16);
    assert_int_equal(bl, 7);
    /* every truncation of it is refused, never read past its end */
    {
        size_t cut;
        for (cut = 0; cut < v.len; cut++) {
            int k = llmux__cache_val_kind(&r, v.p, cut);
            if (k < 0)
                continue;
            assert_int_equal(
                llmux__cache_val_read_reply(&r, &status, &ct, &ctl, &body, &bl),
                -1);
        }
    }
    llmux__buf_free(&v);
    assert_int_equal(llmux__cache_val_begin(&v, LLMUX__CACHE_STREAM), 0);
    assert_int_equal(llmux__cache_val_event(&v, NULL, NULL, "one", 3), 0);
    assert_int_equal(llmux__cache_val_event(&v, "done", "7", "[DONE]", 6), 0);
    assert_int_equal(llmux__cache_val_kind(&r, v.p, v.len),
                     LLMUX__CACHE_STREAM);
    assert_int_equal(
        llmux__cache_val_read_event(&r, &e, &el, &id, &il, &d, &dl), 1);
    assert_null(e);
    assert_null(id);
    assert_int_equal(dl, 3);
    assert_int_equal(
        llmux__cache_val_read_event(&r, &e, &el, &id, &il, &d, &dl), 1);
    assert_memory_equal(e, "done", 4);
    assert_memory_equal(id, "7", 1);
    assert_memory_equal(d, "[DONE]", 6);
    assert_int_equal(
        llmux__cache_val_read_event(&r, &e, &el, &id, &il, &d, &dl), 0);
    /* cut in the middle of an event: malformed */
    assert_int_equal(llmux__cache_val_kind(&r, v.p, v.len - 2),
                     LLMUX__CACHE_STREAM);
    assert_int_equal(
        llmux__cache_val_read_event(&r, &e, &el, &id, &il, &d, &dl), 1);
    assert_int_equal(
        llmux__cache_val_read_event(&r, &e, &el, &id, &il, &d, &dl), -1);
    assert_int_equal(llmux__cache_val_kind(&r, "LXC2R", 5), -1);
    assert_int_equal(llmux__cache_val_kind(&r, "LXC1X", 5), -1);
    llmux__buf_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_evict_by_entries),
        cmocka_unit_test(test_evict_by_bytes),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_value_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
