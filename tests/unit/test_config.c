/*
 * tests/unit/test_config.c: the config string parser and store
 * (core/config.c): short and long forms, options, quoting, duplicates,
 * trimming, every error class and its message, API keys kept out of
 * messages, truncated and garbage specs, and get/set/copy/free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "internal.h"
#include "test_scale.h"

static void assert_zeroed(const llmux__config *c)
{
    assert_null(c->provider);
    assert_null(c->model);
    assert_null(c->opts);
    assert_int_equal(c->n_opts, 0);
}

static void parse_ok(const char *spec, llmux__config *c)
{
    char err[LLMUX__ERRBUF];
    int rc = llmux__config_parse(spec, c, err, sizeof err);
    if (rc != 0) {
        print_error("parse(\"%s\") failed: %s\n", spec, err);
        fail();
    }
    assert_string_equal(err, "");
}

/* Parses spec, expecting failure; returns the message in err. */
static void parse_bad(const char *spec, char *err, size_t errlen)
{
    llmux__config c;
    int rc;
    memset(&c, 0x5a, sizeof c); /* garbage: must be emptied */
    rc = llmux__config_parse(spec, &c, err, errlen);
    if (rc != LLMUX_ECONFIG) {
        print_error("parse(\"%s\") gave %d, want LLMUX_ECONFIG\n",
                    spec ? spec : "(null)", rc);
        fail();
    }
    assert_zeroed(&c);
    assert_true(strncmp(err, "config string: ", 15) == 0);
}

static void expect_err(const char *spec, const char *want)
{
    char err[LLMUX__ERRBUF];
    parse_bad(spec, err, sizeof err);
    if (strcmp(err, want) != 0) {
        print_error("parse(\"%s\"):\n got  %s\n want %s\n", spec, err, want);
        fail();
    }
}

static void expect_err_has(const char *spec, const char *part)
{
    char err[LLMUX__ERRBUF];
    parse_bad(spec, err, sizeof err);
    if (!strstr(err, part)) {
        print_error("parse(\"%s\"): \"%s\" lacks \"%s\"\n", spec, err, part);
        fail();
    }
}

/* ---- valid specs -------------------------------------------------------- */

static void test_short_form(void **state)
{
    static const struct {
        const char *spec, *provider, *model;
    } cases[] = {
        {"openai/gpt-4o", "openai", "gpt-4o"},
        {"openai:gpt-4o", "openai", "gpt-4o"},
        {"ollama/llama3:8b", "ollama", "llama3:8b"},
        {"ollama:llama3:8b", "ollama", "llama3:8b"},
        {"openai/org/model-x", "openai", "org/model-x"},
        {"mistral:a/b:c", "mistral", "a/b:c"},
        {"ollama", "ollama", NULL},
        {"ollama;", "ollama", NULL},
        {"  ollama  ", "ollama", NULL},
        {" mistral / mistral-large-latest ", "mistral", "mistral-large-latest"},
        {"openai/gpt-4o;", "openai", "gpt-4o"},
        {"openai/gpt-4o;;;", "openai", "gpt-4o"},
        {"open.ai_2-x/m", "open.ai_2-x", "m"},
        {"openai/weird=model", "openai", "weird=model"},
        {"openai/{x}", "openai", "{x}"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        llmux__config c;
        parse_ok(cases[i].spec, &c);
        assert_string_equal(c.provider, cases[i].provider);
        if (cases[i].model)
            assert_string_equal(c.model, cases[i].model);
        else
            assert_null(c.model);
        assert_int_equal(c.n_opts, 0);
        assert_null(c.opts);
        llmux__config_free(&c);
    }
}

static void test_options(void **state)
{
    llmux__config c;
    (void)state;

    parse_ok("ollama/llama3:8b;base_url=http://gpu:11434;timeout=30", &c);
    assert_string_equal(c.provider, "ollama");
    assert_string_equal(c.model, "llama3:8b");
    assert_int_equal(c.n_opts, 2);
    assert_string_equal(c.opts[0].key, "base_url");
    assert_string_equal(c.opts[0].value, "http://gpu:11434");
    assert_string_equal(c.opts[1].key, "timeout");
    assert_string_equal(c.opts[1].value, "30");
    assert_string_equal(llmux__config_get(&c, "BASE_URL"), "http://gpu:11434");
    assert_string_equal(llmux__config_get(&c, "Timeout"), "30");
    assert_string_equal(llmux__config_get(&c, "provider"), "ollama");
    assert_string_equal(llmux__config_get(&c, "MODEL"), "llama3:8b");
    assert_null(llmux__config_get(&c, "proxy"));
    assert_null(llmux__config_get(&c, NULL));
    assert_null(llmux__config_get(NULL, "timeout"));
    llmux__config_free(&c);

    /* provider only, with options */
    parse_ok("ollama;base_url=http://h:1", &c);
    assert_null(c.model);
    assert_string_equal(llmux__config_get(&c, "base_url"), "http://h:1");
    llmux__config_free(&c);

    /* values may hold '=', ':' and '/'; empty values are kept */
    parse_ok("openai/x;base_url=http://h/v1?a=b&c=d;proxy=", &c);
    assert_string_equal(llmux__config_get(&c, "base_url"),
                        "http://h/v1?a=b&c=d");
    assert_string_equal(llmux__config_get(&c, "proxy"), "");
    llmux__config_free(&c);
}

static void test_long_form(void **state)
{
    llmux__config c;
    (void)state;

    parse_ok("provider=openai;model=gpt-4o-mini;base_url=https://x/v1", &c);
    assert_string_equal(c.provider, "openai");
    assert_string_equal(c.model, "gpt-4o-mini");
    assert_int_equal(c.n_opts, 1);
    assert_string_equal(c.opts[0].key, "base_url");
    assert_string_equal(c.opts[0].value, "https://x/v1");
    llmux__config_free(&c);

    /* any order, keys in any case */
    parse_ok("Base_URL=http://h:1/v1;MODEL=llama3:8b;Provider=ollama;"
             "API_KEY=k",
             &c);
    assert_string_equal(c.provider, "ollama");
    assert_string_equal(c.model, "llama3:8b");
    assert_int_equal(c.n_opts, 2);
    assert_string_equal(c.opts[0].key, "base_url");
    assert_string_equal(c.opts[1].key, "api_key");
    assert_string_equal(c.opts[1].value, "k");
    llmux__config_free(&c);

    /* model optional */
    parse_ok("provider=ollama", &c);
    assert_string_equal(c.provider, "ollama");
    assert_null(c.model);
    llmux__config_free(&c);

    /* quoted first value */
    parse_ok("api_key={a;b};provider=openai", &c);
    assert_string_equal(llmux__config_get(&c, "api_key"), "a;b");
    assert_string_equal(c.provider, "openai");
    llmux__config_free(&c);
}

static void test_quoting(void **state)
{
    llmux__config c;
    (void)state;

    parse_ok("openai/x;api_key={a;b=c};timeout=3", &c);
    assert_string_equal(llmux__config_get(&c, "api_key"), "a;b=c");
    assert_string_equal(llmux__config_get(&c, "timeout"), "3");
    llmux__config_free(&c);

    /* inside braces everything is verbatim; whitespace around is not */
    parse_ok("openai/x;k = { sp ; }  ;j=1", &c);
    assert_string_equal(llmux__config_get(&c, "k"), " sp ; ");
    assert_string_equal(llmux__config_get(&c, "j"), "1");
    llmux__config_free(&c);

    /* braces nest: a value may hold balanced braces, JSON included */
    parse_ok("openai/x;k={a{b}c};j={{x}};rf={{\"t\":{\"a\":\";\"}}} ;z=1", &c);
    assert_string_equal(llmux__config_get(&c, "k"), "a{b}c");
    assert_string_equal(llmux__config_get(&c, "j"), "{x}");
    assert_string_equal(llmux__config_get(&c, "rf"), "{\"t\":{\"a\":\";\"}}");
    assert_string_equal(llmux__config_get(&c, "z"), "1");
    llmux__config_free(&c);

    parse_ok("openai/x;k={}", &c);
    assert_string_equal(llmux__config_get(&c, "k"), "");
    llmux__config_free(&c);

    /* a brace inside an unquoted value is just a character */
    parse_ok("openai/x;k=a{b;j=c}", &c);
    assert_string_equal(llmux__config_get(&c, "k"), "a{b");
    assert_string_equal(llmux__config_get(&c, "j"), "c}");
    llmux__config_free(&c);
}

static void test_duplicates_trimming_case(void **state)
{
    llmux__config c;
    (void)state;

    parse_ok("openai/x;timeout=1;proxy=p;TIMEOUT=2", &c);
    assert_int_equal(c.n_opts, 2);
    assert_string_equal(c.opts[0].key, "timeout");
    assert_string_equal(c.opts[0].value, "2");
    assert_string_equal(c.opts[1].key, "proxy");
    llmux__config_free(&c);

    /* provider and model as pairs override the leading part */
    parse_ok("openai/x;model=y;Provider=mistral", &c);
    assert_string_equal(c.provider, "mistral");
    assert_string_equal(c.model, "y");
    assert_int_equal(c.n_opts, 0);
    llmux__config_free(&c);

    parse_ok("provider=a;model=m1;provider=b;model=m2", &c);
    assert_string_equal(c.provider, "b");
    assert_string_equal(c.model, "m2");
    llmux__config_free(&c);

    parse_ok("  openai / x ;  Base_URL  =  http://h  ;\tTimeOut\t=\t5\t;  ",
             &c);
    assert_string_equal(c.provider, "openai");
    assert_string_equal(c.model, "x");
    assert_string_equal(c.opts[0].key, "base_url");
    assert_string_equal(c.opts[0].value, "http://h");
    assert_string_equal(c.opts[1].key, "timeout");
    assert_string_equal(c.opts[1].value, "5");
    llmux__config_free(&c);

    parse_ok("  PROVIDER = openai ; model = gpt ", &c);
    assert_string_equal(c.provider, "openai");
    assert_string_equal(c.model, "gpt");
    llmux__config_free(&c);
}

/* ---- errors ------------------------------------------------------------- */

static void test_errors(void **state)
{
    char err[LLMUX__ERRBUF];
    (void)state;

    parse_bad(NULL, err, sizeof err);
    expect_err("", "config string: empty");
    expect_err(" \t ", "config string: empty");

    expect_err("/gpt-4o", "config string: empty provider name in \"/gpt-4o\"");
    expect_err(":x", "config string: empty provider name in \":x\"");
    expect_err(";timeout=3",
               "config string: empty provider name in \";timeout=3\"");
    expect_err("openai/", "config string: empty model after \"openai/\"");
    expect_err("openai:  ;timeout=1",
               "config string: empty model after \"openai:\"");
    expect_err("openai/x;timeout",
               "config string: option \"timeout\" has no '=' in "
               "\"openai/x;timeout\"");
    expect_err("openai/x;=3", "config string: empty option name at \";=3\"");
    expect_err_has("openai/x; =3;y=1", "empty option name at \"; =3\"");
    expect_err("openai/x;api_key={abc",
               "config string: unterminated '{' in option \"api_key\"");
    /* text after the closing '}' is an error, not more of the value (it
     * used to swallow the segments up to the next "};") */
    expect_err("openai/x;k={a}b",
               "config string: text after the closing '}' of option \"k\" "
               "in \"openai/x;k={a}b\"");
    expect_err("openai/x;k={a}b;api_key={sk-SECRET};bad",
               "config string: text after the closing '}' of option \"k\" "
               "in \"openai/x;k={a}b;api_key=***;bad\"");
    expect_err_has("openai/x;k={a}b};j=1", "after the closing '}' of option");
    expect_err_has("openai/x;k={a{b}", "unterminated '{' in option \"k\"");

    /* provider names */
    expect_err_has("open ai/x", "invalid character ' ' in provider name "
                                "\"open ai\"");
    expect_err_has("op$nai/x", "invalid character '$' in provider name");
    expect_err_has("op\x01n/x", "invalid character '\\x01' in provider");
    expect_err_has("provider=a b", "in provider name \"a b\"");
    expect_err_has("openai/x;provider=../etc", "'/' in provider name");

    /* models */
    expect_err_has("openai/a\x01b", "control character in model name");
    expect_err_has("provider=openai;model=", "empty model in ");
    expect_err_has("provider=openai;model={}", "empty model in ");

    /* option names */
    expect_err_has("openai/x;bad key=1",
                   "invalid character ' ' in option name \"bad key\"");
    expect_err_has("openai/x;k/y=1", "'/' in option name \"k/y\"");

    /* long form */
    expect_err("model=gpt-4o;base_url=x",
               "config string: no provider in \"model=gpt-4o;base_url=x\"");
    expect_err_has("provider=;model=x", "empty provider name in ");
    expect_err_has("provider=openai;timeout", "option \"timeout\" has no '='");
    expect_err_has("provider=openai;=1", "empty option name at \";=1\"");
    expect_err_has("=openai", "empty option name at \"=openai\"");
}

/* This process's CPU seconds: other processes must not make a linear
 * parse look slow. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Specs may come from outside (request JSON, batch lines): their length
 * and option count are capped, and parsing stays linear. */
static void test_limits(void **state)
{
    size_t cap = LLMUX__CONFIG_MAX_LEN + 64, n, i;
    char *spec = malloc(cap);
    llmux__config c;
    double t;
    (void)state;
    assert_non_null(spec);

    /* as many distinct options as allowed, then one more */
    n = (size_t)snprintf(spec, cap, "openai/x");
    for (i = 0; i < LLMUX__CONFIG_MAX_OPTS; i++)
        n += (size_t)snprintf(spec + n, cap - n, ";k%zu=%zu", i, i);
    parse_ok(spec, &c);
    assert_int_equal(c.n_opts, LLMUX__CONFIG_MAX_OPTS);
    assert_string_equal(llmux__config_get(&c, "k255"), "255");
    llmux__config_free(&c);
    snprintf(spec + n, cap - n, ";one=more");
    expect_err(spec, "config string: more than 256 options");

    /* 40,000 options took 3.3 s (each scanned all earlier ones) */
    n = (size_t)snprintf(spec, cap, "openai/x");
    for (i = 0; n + 16 < LLMUX__CONFIG_MAX_LEN; i++)
        n += (size_t)snprintf(spec + n, cap - n, ";K%zu=v", i);
    t = now_s();
    expect_err(spec, "config string: more than 256 options");
    /* ... and a spec at the length cap made of duplicates is parsed in
     * one pass: the last value of each key wins */
    n = (size_t)snprintf(spec, cap, "openai/x");
    for (i = 0; n + 16 < LLMUX__CONFIG_MAX_LEN; i++)
        n += (size_t)snprintf(spec + n, cap - n, ";K%zu=%zu", i % 200, i);
    parse_ok(spec, &c);
    assert_int_equal(c.n_opts, 200);
    llmux__config_free(&c);
    t = now_s() - t;
    if (t > (LLMUX_TEST_ON_VALGRIND() ? 30.0 : 2.0)) /* milliseconds */
        fail_msg("parsing two 64 KiB specs took %.2f s", t);

    /* one byte over the length cap */
    memset(spec, 'a', LLMUX__CONFIG_MAX_LEN + 1);
    memcpy(spec, "openai/", 7);
    spec[LLMUX__CONFIG_MAX_LEN + 1] = '\0';
    expect_err(spec, "config string: longer than 65536 bytes");
    free(spec);
}

/* API keys never appear in messages; the spec is quoted redacted. */
static void test_api_key_redacted(void **state)
{
    static const char *const specs[] = {
        "openai/x;api_key=sk-SECRET;timeout",
        "openai/x;API_KEY = sk-SECRET ;;bogus",
        "openai/x;api_key={sk-SECRET;x};bogus",
        "openai/x;k={a}b;api_key={sk-SECRET};bad",
        "openai/x;k={a}b;api_key=sk-SECRET;bad",
        "openai/x;k={a}b; api_key={sk-SECRET};bad",
        "openai/x;api_key={sk-SECRET",
        "openai/x;api_key={sk-SECRET;x",
        "/x;api_key=sk-SECRET",
        "api_key=sk-SECRET;model=x",
        "api_key=sk-SECRET;provider=bad name",
        "provider=openai;api_key={sk-SECRET};model=",
        "openai/x;api_key=sk-SECRET;=3",
        "openai/x;api_key=sk-SECRET;bad key=1",
        "openai/x;api_key=sk-SECRET;k={",
        "provider=openai;api_key=sk-SECRET;api_key",
        "openai/\x01;api_key=sk-SECRET",
        /* other secrets: keys named like one, credentials in a URL */
        "openai/x;proxy=http://bob:SECRET@proxy:3128;timeout",
        "openai/x;base_url={https://bob:SECRET@h/v1};bogus",
        "openai/x;proxy=http://SECRET@proxy:3128;bogus",
        "openai/x;access_token=SECRET;bogus",
        "openai/x;Client_Secret=SECRET;bogus",
        "openai/x;db_password=SECRET;bogus",
        "openai/x;hf_key=SECRET;bogus",
    };
    char err[LLMUX__ERRBUF];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        parse_bad(specs[i], err, sizeof err);
        if (strstr(err, "SECRET")) {
            print_error("key leaked for \"%s\": %s\n", specs[i], err);
            fail();
        }
    }
    expect_err("openai/x;api_key=sk-SECRET;timeout",
               "config string: option \"timeout\" has no '=' in "
               "\"openai/x;api_key=***;timeout\"");
    expect_err("api_key = {sk-SECRET;a} ;model=x",
               "config string: no provider in \"api_key =***;model=x\"");
    expect_err("openai/x;api_key={sk-SECRET;x",
               "config string: unterminated '{' in option \"api_key\"");
    expect_err("openai/x;proxy=http://bob:SECRET@proxy:3128/p@x;timeout",
               "config string: option \"timeout\" has no '=' in "
               "\"openai/x;proxy=http://***@proxy:3128/p@x;timeout\"");
    expect_err("openai/x;my_token=SECRET;timeout",
               "config string: option \"timeout\" has no '=' in "
               "\"openai/x;my_token=***;timeout\"");
    /* not secrets: shown as written */
    expect_err("openai/x;base_url=http://h:1/v1?a=b@c;timeout",
               "config string: option \"timeout\" has no '=' in "
               "\"openai/x;base_url=http://h:1/v1?a=b@c;timeout\"");
}

/* Small or missing error buffers are fine. */
static void test_error_buffers(void **state)
{
    llmux__config c;
    char small[8];
    (void)state;

    assert_int_equal(llmux__config_parse("/x", &c, NULL, 0), LLMUX_ECONFIG);
    assert_int_equal(llmux__config_parse("/x", &c, small, sizeof small),
                     LLMUX_ECONFIG);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(llmux__config_parse("a/b", &c, NULL, 0), 0);
    llmux__config_free(&c);
}

/* ---- truncated and garbage specs ---------------------------------------- */

static void check_result(const char *spec, int rc, const llmux__config *c,
                         const char *err)
{
    size_t i, j;
    if (rc != 0) {
        assert_int_equal(rc, LLMUX_ECONFIG);
        assert_zeroed(c);
        assert_true(strncmp(err, "config string: ", 15) == 0);
        return;
    }
    (void)spec;
    assert_non_null(c->provider);
    assert_true(c->provider[0] != '\0');
    for (i = 0; c->provider[i]; i++)
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                               c->provider[i]));
    if (c->model)
        assert_true(c->model[0] != '\0');
    for (i = 0; i < c->n_opts; i++) {
        assert_non_null(c->opts[i].value);
        assert_true(c->opts[i].key[0] != '\0');
        for (j = 0; c->opts[i].key[j]; j++)
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz"
                                   "0123456789_.-",
                                   c->opts[i].key[j]));
        for (j = 0; j < i; j++)
            assert_string_not_equal(c->opts[i].key, c->opts[j].key);
    }
}

static void test_truncated(void **state)
{
    static const char *const full[] = {
        "provider=openai;model=gpt-4o-mini;base_url={http://h:1/v1;x};"
        "api_key={sk-SECRET};timeout=30;  Max_Retries = 3 ;",
        " ollama / llama3:8b ; api_key = sk-SECRET ; proxy={a}b};k=v",
    };
    char buf[256], err[LLMUX__ERRBUF];
    size_t f, n;
    (void)state;

    for (f = 0; f < sizeof full / sizeof full[0]; f++) {
        size_t len = strlen(full[f]);
        for (n = 0; n <= len; n++) {
            llmux__config c;
            int rc;
            memcpy(buf, full[f], n);
            buf[n] = '\0';
            rc = llmux__config_parse(buf, &c, err, sizeof err);
            check_result(buf, rc, &c, err);
            if (rc)
                assert_null(strstr(err, "sk-"));
            llmux__config_free(&c);
        }
    }
}

static uint32_t rng_state = 88172645u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void test_garbage(void **state)
{
    static const char *const tokens[] = {
        "=",        ";",     "{", "}",      "/",  ":",  " ",  "api_key",
        "provider", "model", "a", "openai", "\t", "}}", ";;", "x=y"};
    char buf[128], err[LLMUX__ERRBUF];
    int i;
    (void)state;

    for (i = 0; i < 200000; i++) {
        size_t n = 0, want = rnd() % 100;
        llmux__config c;
        int rc;
        while (n < want) {
            if (rnd() % 3 == 0) {
                char ch = (char)(1 + rnd() % 255); /* never NUL */
                buf[n++] = ch;
            } else {
                const char *t =
                    tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
                size_t l = strlen(t);
                if (n + l >= sizeof buf - 1)
                    break;
                memcpy(buf + n, t, l);
                n += l;
            }
        }
        buf[n] = '\0';
        rc = llmux__config_parse(buf, &c, err, sizeof err);
        check_result(buf, rc, &c, err);
        llmux__config_free(&c);
    }
}

/* ---- the store ---------------------------------------------------------- */

static void test_get_set_copy_free(void **state)
{
    llmux__config c = {0}, d;
    const char *v;
    (void)state;

    /* free is safe on a zeroed struct, and idempotent */
    llmux__config_free(&c);
    llmux__config_free(&c);
    llmux__config_free(NULL);

    parse_ok("openai/gpt-4o;timeout=30", &c);
    assert_int_equal(llmux__config_set(&c, "Base_Url", "http://h"), 0);
    assert_int_equal(c.n_opts, 2);
    assert_string_equal(c.opts[1].key, "base_url");
    assert_string_equal(llmux__config_get(&c, "BASE_URL"), "http://h");
    v = c.opts[0].key;
    assert_int_equal(llmux__config_set(&c, "TIMEOUT", "5"), 0);
    assert_int_equal(c.n_opts, 2);
    assert_ptr_equal(c.opts[0].key, v); /* replaced in place */
    assert_string_equal(llmux__config_get(&c, "timeout"), "5");

    assert_int_equal(llmux__config_set(&c, "model", "gpt-4o-mini"), 0);
    assert_string_equal(c.model, "gpt-4o-mini");
    assert_int_equal(llmux__config_set(&c, "Provider", "mistral"), 0);
    assert_string_equal(c.provider, "mistral");
    assert_int_equal(c.n_opts, 2);

    /* bad keys and values */
    assert_int_equal(llmux__config_set(&c, "", "x"), LLMUX_EINVAL);
    assert_int_equal(llmux__config_set(&c, NULL, "x"), LLMUX_EINVAL);
    assert_int_equal(llmux__config_set(&c, "a b", "x"), LLMUX_EINVAL);
    assert_int_equal(llmux__config_set(&c, "provider", "a/b"), LLMUX_ECONFIG);
    assert_int_equal(llmux__config_set(&c, "provider", NULL), LLMUX_ECONFIG);
    assert_int_equal(llmux__config_set(&c, "model", ""), LLMUX_ECONFIG);
    assert_string_equal(c.provider, "mistral");

    /* copy is deep */
    assert_int_equal(llmux__config_copy(&d, &c), 0);
    assert_string_equal(d.provider, "mistral");
    assert_string_equal(d.model, "gpt-4o-mini");
    assert_int_equal(d.n_opts, 2);
    assert_true(d.provider != c.provider);
    assert_true(d.opts != c.opts);
    assert_true(d.opts[0].value != c.opts[0].value);
    assert_string_equal(d.opts[0].key, "timeout");
    assert_string_equal(d.opts[0].value, "5");
    assert_string_equal(d.opts[1].value, "http://h");

    /* NULL removes an option / clears the model */
    assert_int_equal(llmux__config_set(&c, "timeout", NULL), 0);
    assert_int_equal(c.n_opts, 1);
    assert_null(llmux__config_get(&c, "timeout"));
    assert_string_equal(c.opts[0].key, "base_url");
    assert_int_equal(llmux__config_set(&c, "nothing", NULL), 0);
    assert_int_equal(llmux__config_set(&c, "model", NULL), 0);
    assert_null(c.model);
    llmux__config_free(&c);
    assert_zeroed(&c);
    llmux__config_free(&c);

    /* the copy is unaffected */
    assert_string_equal(llmux__config_get(&d, "timeout"), "5");
    llmux__config_free(&d);

    /* copying an empty config */
    assert_int_equal(llmux__config_copy(&d, &c), 0);
    assert_zeroed(&d);
    llmux__config_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_form),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_long_form),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_duplicates_trimming_case),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_api_key_redacted),
        cmocka_unit_test(test_error_buffers),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_get_set_copy_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
