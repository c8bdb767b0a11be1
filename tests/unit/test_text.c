/*
 * tests/unit/test_text.c: what the core does to text on its way out:
 * secret masking (core/text.c, llmux_mask_secret), UTF-8 repair and
 * numbers in their shortest round-trip form (llmux_format_number).
 */
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "internal.h"
#include "test_scale.h"

/* llmux__mask(text, key) must give want. */
static void masks(const char *text, const char *key, const char *want)
{
    char *got = llmux__mask(text, key), *pub = llmux_mask_secret(text, key);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("mask(\"%s\", \"%s\"): got \"%s\", want \"%s\"", text, key,
                 got, want);
    assert_string_equal(pub, got);
    llmux__free(got);
    llmux_free(pub);
}

static void test_mask_long_keys(void **state)
{
    (void)state;
    masks("Incorrect API key provided: sk-live-abcdefgh12345.",
          "sk-live-abcdefgh12345", "Incorrect API key provided: ***.");
    masks("key sk-abcdefgh here and sk-abcdefgh again", "sk-abcdefgh",
          "key *** here and *** again");
    masks("sk-abcdefgh", "sk-abcdefgh", "***");
    masks("'sk-abcdefgh'", "sk-abcdefgh", "'***'");
    /* next to letters and digits too: percent-encoded, escaped in JSON
     * text, the key twice in a row */
    masks("xsk-abcdefgh sk-abcdefgh9", "sk-abcdefgh", "x*** ***9");
    masks("Bearer%20sk-abcdefgh12345", "sk-abcdefgh12345", "Bearer%20***");
    masks("key%3Dsk-abcdefgh12345&x", "sk-abcdefgh12345", "key%3D***&x");
    masks("line\\nsk-abcdefgh12345", "sk-abcdefgh12345", "line\\n***");
    masks("sk-abcdefghsk-abcdefgh", "sk-abcdefgh", "******");
    /* a key in a URL's path, query or userinfo */
    masks("GET https://h/v1/abcdefgh12/x?key=abcdefgh12", "abcdefgh12",
          "GET https://h/v1/***/x?key=***");
    /* a long key that is also a word is still masked: it is the key */
    masks("permission required", "permission", "*** required");
}

static void test_mask_short_keys(void **state)
{
    (void)state;
    /* a short "key" is an ordinary word: the provider's text stays */
    masks("Sadly the model you chose does not provide it", "t",
          "Sadly the model you chose does not provide it");
    masks("model \"x\" not found, try pulling it first with ollama pull",
          "ollama",
          "model \"x\" not found, try pulling it first with ollama pull");
    masks("provider \"openai\": 401 e", "e", "provider \"openai\": 401 e");
    masks("mock", "mock", "mock");
    /* ... except where a credential is written */
    masks("bad header Authorization: Bearer t", "t",
          "bad header Authorization: Bearer ***");
    masks("invalid: bearer  ollama.", "ollama", "invalid: bearer  ***.");
    masks("api_key=ollama;model=x", "ollama", "api_key=***;model=x");
    masks("x-api-key: t, x-other: t", "t", "x-api-key: ***, x-other: t");
    masks("{\"api_key\": \"t\", \"t\": 1}", "t",
          "{\"api_key\": \"***\", \"t\": 1}");
    masks("GET /v1?key=e&e=1", "e", "GET /v1?key=***&e=1");
    masks("proxy http://user:t@host:8080 t", "t",
          "proxy http://user:***@host:8080 t");
    masks("Authorization: mock", "mock", "Authorization: ***");
    masks("access_token=abc", "abc", "access_token=***");
    /* nothing to mask */
    masks("", "t", "");
    masks("abc", "", "abc");
    assert_null(llmux__mask(NULL, "t"));
    assert_null(llmux_mask_secret(NULL, "t"));
}

/* Many occurrences of a short key cost linear time (each look back for a
 * credential name is bounded): "t-t-t-..." took seconds at 128 KB. */
static void test_mask_linear(void **state)
{
    size_t n = 1u << 20, i;
    char *s = malloc(n + 1), *m;
    struct timespec t0, t1;
    double secs;
    (void)state;
    assert_non_null(s);
    for (i = 0; i < n; i++)
        s[i] = i % 2 ? '-' : 't';
    s[n] = '\0';
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    m = llmux__mask(s, "t");
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    assert_string_equal(m, s); /* nothing there is a credential */
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    llmux__free(m);
    free(s);
    /* tens of milliseconds natively and about 2 s under valgrind; when it
     * was quadratic, minutes natively (CPU seconds: a loaded machine must
     * not fail it) */
    if (secs > (LLMUX_TEST_ON_VALGRIND() ? 30.0 : 2.0))
        fail_msg("masking 1 MiB of \"t-t-...\" took %.2f s", secs);
}

static void test_mask_in_place(void **state)
{
    char *s = llmux__strdup("Bearer sk-12345678 and Bearer sk-12345678");
    (void)state;
    llmux__mask_in(&s, "sk-12345678");
    assert_string_equal(s, "Bearer *** and Bearer ***");
    llmux__mask_in(&s, NULL);
    llmux__mask_in(&s, "");
    assert_string_equal(s, "Bearer *** and Bearer ***");
    llmux__free(s);
}

/* llmux__strndup_utf8(in, n) must give want; the result is valid. */
static void repairs(const char *in, size_t n, const char *want)
{
    char *got = llmux__strndup_utf8(in, n);
    assert_non_null(got);
    assert_int_equal(llmux__utf8_valid(got, strlen(got)), strlen(got));
    assert_memory_equal(got, want, strlen(want) + 1);
    llmux__free(got);
}

#define FFFD "\xEF\xBF\xBD"

static void test_utf8(void **state)
{
    static const char ok[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";
    (void)state;
    assert_int_equal(llmux__utf8_valid(ok, sizeof ok - 1), sizeof ok - 1);
    assert_int_equal(llmux__utf8_valid("ab\x80", 3), 2);
    repairs(ok, sizeof ok - 1, ok);
    /* a lone continuation byte, bytes that never occur */
    repairs("a\x80z", 3, "a" FFFD "z");
    repairs("\xFF\xFE", 2, FFFD FFFD);
    repairs("\xF5\x80", 2, FFFD FFFD);
    /* overlong forms, surrogates, beyond U+10FFFF */
    repairs("\xC0\xAF", 2, FFFD FFFD);
    repairs("\xE0\x80\xAF", 3, FFFD FFFD FFFD);
    repairs("\xED\xA0\x80", 3, FFFD FFFD FFFD);
    repairs("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);
    /* a truncated sequence is one U+FFFD (its maximal subpart) */
    repairs("x\xE2\x82", 3, "x" FFFD);
    repairs("\xE2\x82x", 3, FFFD "x");
    repairs("\xF0\x9F\x98", 3, FFFD);
    /* NUL is valid UTF-8 and kept where lengths are carried */
    {
        char *got = llmux__strndup_utf8("a\0\xC3", 3);
        assert_memory_equal(got, "a\0" FFFD, 6);
        llmux__free(got);
    }
}

/* Formats v and checks the text is want. */
static void formats(double v, int single, const char *want)
{
    char buf[32];
    int n = llmux_format_number(buf, sizeof buf, v, single);
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_numbers(void **state)
{
    char buf[32];
    (void)state;
    /* the value: Ollama sent -0.0017594862 */
    formats((float)-0.0017594862, 1, "-0.0017594862");
    formats(0.1f, 1, "0.1");
    formats(0.1, 0, "0.1");
    formats(0.1 + 0.2, 0, "0.30000000000000004");
    formats(-0.0, 0, "-0");
    formats(0.0, 1, "0");
    formats(1.0, 0, "1");
    formats(1e300, 0, "1e+300");
    formats(5e-324, 0, "5e-324");
    formats(1e-45f, 1, "1e-45");
    formats(3.4028235e38f, 1, "3.4028235e+38");
    formats(0.7, 0, "0.7");
    formats(123456789.0, 0, "123456789");
    assert_int_equal(llmux_format_number(buf, sizeof buf, NAN, 0), -1);
    assert_int_equal(llmux_format_number(buf, sizeof buf, INFINITY, 1), -1);
    assert_int_equal(llmux_format_number(buf, 16, 1.0, 0), -1);
    assert_int_equal(llmux_format_number(NULL, 32, 1.0, 0), -1);
}

static unsigned long long rnd_state = 88172645463325252ULL;
static unsigned long long rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* Every text reads back as its value, and one digit fewer would not. */
static void test_numbers_round_trip(void **state)
{
    int i;
    (void)state;
    for (i = 0; i < 20000; i++) {
        unsigned long long bits = rnd();
        char buf[32], shorter[320];
        int single = i & 1, digits = 0, k;
        double v;
        if (single) {
            unsigned int b32 = (unsigned int)bits;
            float f;
            memcpy(&f, &b32, sizeof f);
            v = f;
        } else {
            memcpy(&v, &bits, sizeof v);
        }
        if (!isfinite(v))
            continue;
        assert_true(llmux_format_number(buf, sizeof buf, v, single) > 0);
        if (single)
            assert_true(strtof(buf, NULL) == (float)v);
        else
            assert_true(strtod(buf, NULL) == v);
        /* significant digits: from the first non-zero one */
        for (k = 0; buf[k] && buf[k] != 'e'; k++)
            if ((buf[k] >= '1' && buf[k] <= '9') || (buf[k] == '0' && digits))
                digits++;
        if (digits > 1 && v != 0) {
            snprintf(shorter, sizeof shorter, "%.*g", digits - 1, v);
            if (single && strtof(shorter, NULL) == (float)v)
                fail_msg("%.9g: %s, but %s reads back too", v, buf, shorter);
            if (single)
                assert_false(strtof(shorter, NULL) == (float)v);
            else
                assert_false(strtod(shorter, NULL) == v);
        }
    }
}

/* The obvious way: "%.*g" for p = 1, 2, ... until it reads back. */
static void oracle(char *buf, size_t cap, double v, int single)
{
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
            return;
    }
}

/* The fast formatter writes exactly what the obvious way writes. */
static void test_numbers_oracle(void **state)
{
    int i;
    (void)state;
    for (i = 0; i < LLMUX_TEST_REPS(200000, 20); i++) {
        unsigned long long bits = rnd();
        char got[32], want[400];
        int single = i & 1;
        double v;
        if (single) {
            unsigned int b32 = (unsigned int)bits;
            float f;
            memcpy(&f, &b32, sizeof f);
            v = f;
        } else if (i % 4 == 0) {
            v = (double)(long long)(bits % 2000001) / 1000.0 - 1000.0;
        } else {
            memcpy(&v, &bits, sizeof v);
        }
        if (!isfinite(v))
            continue;
        assert_true(llmux_format_number(got, sizeof got, v, single) > 0);
        oracle(want, sizeof want, v, single);
        if (strcmp(got, want) != 0)
            fail_msg("%.17g (%s): got %s, want %s", v,
                     single ? "float" : "double", got, want);
    }
    /* a double out of a float's range is no float */
    {
        char buf[32];
        assert_int_equal(llmux_format_number(buf, sizeof buf, 1e300, 1), -1);
        assert_int_equal(llmux_format_number(buf, sizeof buf, -1e39, 1), -1);
    }
}

/* A decimal comma in the process locale changes nothing. */
static void test_numbers_locale(void **state)
{
    char c[32], de[32];
    (void)state;
    if (!setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
        skip(); /* build.sh test generates the locale when it can */
    }
    llmux_format_number(de, sizeof de, 0.30000000000000004, 0);
    setlocale(LC_NUMERIC, "C");
    llmux_format_number(c, sizeof c, 0.30000000000000004, 0);
    assert_string_equal(de, c);
    assert_string_equal(de, "0.30000000000000004");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_long_keys),
        cmocka_unit_test(test_mask_short_keys),
        cmocka_unit_test(test_mask_linear),
        cmocka_unit_test(test_mask_in_place),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_numbers_round_trip),
        cmocka_unit_test(test_numbers_oracle),
        cmocka_unit_test(test_numbers_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
