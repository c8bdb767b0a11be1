/*
 * tests/unit/test_response.c: the response model through the host table,
 * as any plugin builds it: choices, logprobs and the fields llmux does not
 * model (out_choice, out_logprob, out_json), how a stream's chunks fold
 * into its response, and what llmux_response_to_json makes of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "internal.h"

static const llmux_host *H = &llmux__host;

/* The response JSON of `o` (a chat answer) as text, to compare. */
static char *json_of(struct llmux_out *o)
{
    llmux_response *res = llmux__response_new(o->op, "p");
    char *js;
    assert_non_null(res);
    llmux__out_free(&res->o);
    res->o = *o; /* moved in: freed with the response */
    llmux__out_init(o, res->o.op, 0);
    js = llmux_response_to_json(res);
    llmux_response_free(res);
    assert_non_null(js);
    return js;
}

static void contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("%s\ndoes not hold\n%s", hay, needle);
}

static void test_out_json_refuses_bad_values(void **state)
{
    static const char *const bad[] = {"",       " ",        "{",   "[1,",
                                      "1 2",    "{}x",      "nul", "tru",
                                      "\"open", "'single'", "--1"};
    struct llmux_out o;
    size_t i;
    (void)state;
    llmux__out_init(&o, LLMUX_OP_CHAT, 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (H->out_json(&o, LLMUX_JSON_AT_TOP, "k", bad[i], strlen(bad[i])) !=
            LLMUX_EINVAL)
            fail_msg("accepted %s", bad[i]);
    /* a NUL inside, no key, an unknown place */
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, "k", "1\0x", 3),
                     LLMUX_EINVAL);
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, "", "1", 1),
                     LLMUX_EINVAL);
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, NULL, "1", 1),
                     LLMUX_EINVAL);
    assert_int_equal(H->out_json(&o, 9, "k", "1", 1), LLMUX_EINVAL);
    assert_null(o.extra_top);
    /* too deep for the parser: refused, not recursed */
    {
        char deep[300];
        memset(deep, '[', sizeof deep);
        assert_int_equal(
            H->out_json(&o, LLMUX_JSON_AT_TOP, "k", deep, sizeof deep),
            LLMUX_EINVAL);
    }
    /* good ones, bare numbers and literals included */
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, "a", "12", 2), 0);
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, "b", " null ", 6), 0);
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, "c", "true", 4), 0);
    assert_string_equal(llmux__extra_get(o.extra_top, "a"), "12");
    assert_string_equal(llmux__extra_get(o.extra_top, "b"), "null");
    llmux__out_free(&o);
}

static void test_out_json_repairs_utf8(void **state)
{
    struct llmux_out o;
    char *js;
    (void)state;
    llmux__out_init(&o, LLMUX_OP_CHAT, 0);
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, "s", "\"a\xff\"", 4),
                     0);
    js = json_of(&o);
    contains(js, "\"s\":\"a\xef\xbf\xbd\"");
    llmux_free(js);
}

static void test_core_values_win(void **state)
{
    struct llmux_out o;
    char *js;
    (void)state;
    llmux__out_init(&o, LLMUX_OP_CHAT, 0);
    assert_int_equal(H->out_str(&o, LLMUX_F_TEXT, "mine", 4), 0);
    assert_int_equal(H->out_int(&o, LLMUX_F_PROMPT_TOKENS, 3), 0);
    assert_int_equal(H->out_int(&o, LLMUX_F_CACHED_TOKENS, 1), 0);
    assert_int_equal(
        H->out_json(&o, LLMUX_JSON_AT_MESSAGE, "content", "\"theirs\"", 8), 0);
    assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_TOP, "object", "\"x\"", 3),
                     0);
    /* a details object both have: merged member by member, ours wins */
    {
        static const char det[] = "{\"cached_tokens\":9,\"audio_tokens\":2}";
        assert_int_equal(H->out_json(&o, LLMUX_JSON_AT_USAGE,
                                     "prompt_tokens_details", det, strlen(det)),
                         0);
    }
    js = json_of(&o);
    contains(js, "\"content\":\"mine\"");
    contains(js, "\"object\":\"chat.completion\"");
    contains(js, "\"prompt_tokens_details\":{\"cached_tokens\":1,"
                 "\"audio_tokens\":2}");
    llmux_free(js);
}

/* Folds chunk JSON fields as a stream would. */
static void fold(struct llmux_out *acc, int where, const char *key,
                 const char *json)
{
    struct llmux_out ch;
    llmux__out_init(&ch, LLMUX_OP_CHAT, 1);
    assert_int_equal(H->out_json(&ch, where, key, json, strlen(json)), 0);
    assert_int_equal(llmux__out_merge(acc, &ch), 0);
    llmux__out_free(&ch);
}

static void test_stream_fields_accumulate(void **state)
{
    struct llmux_out acc;
    char *js;
    (void)state;
    llmux__out_init(&acc, LLMUX_OP_CHAT, 0);
    /* message fields: strings appended, numbers replaced, null ignored */
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "audio",
         "{\"id\":\"a1\",\"transcript\":\"He\",\"n\":1}");
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "audio",
         "{\"transcript\":\"llo\",\"n\":2,\"id\":null}");
    /* arrays extended; elements with the same "index" merged */
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "parts",
         "[{\"index\":0,\"type\":\"t\",\"text\":\"a\"}]");
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "parts",
         "[{\"index\":0,\"type\":\"t\",\"text\":\"b\"},{\"index\":1}]");
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "tags", "[\"x\"]");
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "tags", "[\"y\"]");
    /* another type: replaced */
    fold(&acc, LLMUX_JSON_AT_CHOICE, "v", "\"s\"");
    fold(&acc, LLMUX_JSON_AT_CHOICE, "v", "[1]");
    /* top-level fields are repeated by every event: the last one wins */
    fold(&acc, LLMUX_JSON_AT_TOP, "service_tier", "\"a\"");
    fold(&acc, LLMUX_JSON_AT_TOP, "service_tier", "\"b\"");
    /* a string grown, then replaced by an object: the object stays */
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "note", "\"x\"");
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "note", "\"y\"");
    fold(&acc, LLMUX_JSON_AT_MESSAGE, "note", "{\"k\":1}");
    /* many deltas of one string (audio data): gathered, written once */
    {
        int i;
        fold(&acc, LLMUX_JSON_AT_MESSAGE, "data", "\"\"");
        for (i = 0; i < 3000; i++)
            fold(&acc, LLMUX_JSON_AT_MESSAGE, "data", "\"QUJD\"");
    }
    /* what the engine does when the stream ends */
    assert_int_equal(llmux__out_flush(&acc), 0);
    assert_int_equal(acc.choices[0].grow.n, 0);
    js = json_of(&acc);
    contains(js, "\"note\":{\"k\":1}");
    {
        const char *d = strstr(js, "\"data\":\"");
        size_t n = 0;
        assert_non_null(d);
        for (d += 8; strncmp(d + n, "QUJD", 4) == 0; n += 4)
            ;
        assert_int_equal(n, 3000 * 4);
        assert_int_equal(d[n], '"');
    }
    contains(js, "\"audio\":{\"id\":\"a1\",\"transcript\":\"Hello\",\"n\":2}");
    contains(js, "\"parts\":[{\"index\":0,\"type\":\"t\",\"text\":\"ab\"},"
                 "{\"index\":1}]");
    contains(js, "\"tags\":[\"x\",\"y\"]");
    contains(js, "\"v\":[1]");
    contains(js, "\"service_tier\":\"b\"");
    llmux_free(js);
}

static void test_out_logprob_arguments(void **state)
{
    struct llmux_out o;
    static const unsigned char b[] = {0xe2, 0x80};
    (void)state;
    llmux__out_init(&o, LLMUX_OP_CHAT, 0);
    /* an alternative needs a token before it */
    assert_int_equal(
        H->out_logprob(&o, 0, "x", 1, -1, NULL, 0, LLMUX_LOGPROB_TOP),
        LLMUX_EINVAL);
    assert_int_equal(H->out_logprob(&o, 2, "x", 1, -1, NULL, 0, 0),
                     LLMUX_EINVAL);
    assert_int_equal(H->out_logprob(&o, 0, "x", 1, -1, NULL, 3, 0),
                     LLMUX_EINVAL);
    assert_int_equal(H->out_logprob(&o, 0, "x", 1, -1, NULL, 0, 8),
                     LLMUX_EINVAL);
    /* a refusal list marked reported, empty */
    assert_int_equal(H->out_logprob(&o, 1, NULL, 0, 0, NULL, 0, 0), 0);
    /* a token that is half a character: text repaired, bytes kept */
    assert_int_equal(H->out_logprob(&o, 0, (const char *)b, 2, -0.5, b, 2, 0),
                     0);
    assert_int_equal(
        H->out_logprob(&o, 0, "y", 1, -2, NULL, 0, LLMUX_LOGPROB_TOP), 0);
    assert_int_equal(o.n_choices, 1);
    {
        const llmux_choice *c = &o.choices[0];
        const llmux_logprob *lp = llmux_choice_logprob(c, 0, 0);
        assert_true(llmux_choice_has_logprobs(c, 1));
        assert_int_equal(llmux_choice_logprob_count(c, 1), 0);
        assert_string_equal(lp->token, "\xef\xbf\xbd");
        assert_int_equal(lp->n_bytes, 2);
        assert_memory_equal(lp->bytes, b, 2);
        assert_int_equal(lp->n_top, 1);
        assert_string_equal(lp->top[0].token, "y");
        assert_null(lp->top[0].bytes);
    }
    llmux__out_free(&o);
}

static void test_choices_in_index_order(void **state)
{
    struct llmux_out o;
    char *js;
    const char *a, *b, *c;
    (void)state;
    llmux__out_init(&o, LLMUX_OP_CHAT, 0);
    assert_int_equal(H->out_choice(&o, 2), 0);
    assert_int_equal(H->out_str(&o, LLMUX_F_TEXT, "two", 3), 0);
    assert_int_equal(H->out_choice(&o, 0), 0);
    assert_int_equal(H->out_str(&o, LLMUX_F_TEXT, "zero", 4), 0);
    assert_int_equal(H->out_choice(&o, 1), 0);
    assert_int_equal(H->out_int(&o, LLMUX_F_FINISH, LLMUX_FINISH_LENGTH), 0);
    assert_int_equal(H->out_choice(&o, 2), 0);
    assert_int_equal(H->out_str(&o, LLMUX_F_TEXT, "!", 1), 0);
    js = json_of(&o);
    a = strstr(js, "\"index\":0");
    b = strstr(js, "\"index\":1");
    c = strstr(js, "\"index\":2");
    assert_true(a && b && c && a < b && b < c);
    contains(js, "\"content\":\"two!\"");
    contains(js, "\"content\":\"zero\"");
    llmux_free(js);
}

/* ---- prices --------------------------------------------------------------
 */

static void test_builtin_prices(void **state)
{
    const llmux__prices *t = llmux__prices_builtin();
    llmux__price p;
    llmux_usage u = {1000000, 1000000, -1, 400000, -1};
    (void)state;
    assert_non_null(t); /* data/prices.json loads */
    assert_true(llmux__price_find(t, "openai", "gpt-4o-mini", &p));
    assert_true(p.input == 0.15 && p.output == 0.60 && p.cached_input == 0.075);
    /* a dated snapshot is priced as its model, the longest prefix wins */
    assert_true(llmux__price_find(t, "OpenAI", "gpt-4o-mini-2024-07-18", &p));
    assert_true(p.input == 0.15);
    assert_true(llmux__price_find(t, "openai", "gpt-4o-2024-08-06", &p));
    assert_true(p.input == 2.50);
    /* no guess: a prefix must end at '-' */
    assert_false(llmux__price_find(t, "openai", "gpt-4omni", &p));
    assert_false(llmux__price_find(t, "openai", "mystery", &p));
    assert_false(llmux__price_find(t, "nosuch", "gpt-4o", &p));
    /* "*" prices every model of a provider */
    assert_true(llmux__price_find(t, "ollama", "llama3.2:3b", &p));
    assert_true(p.input == 0 && p.output == 0);
    /* 600k uncached + 400k cached prompt tokens, 1M output */
    assert_true(llmux__price_find(t, "openai", "gpt-4o-mini", &p));
    assert_true(fabs(llmux__cost(&p, &u) - (0.6 * 0.15 + 0.4 * 0.075 + 0.60)) <
                1e-12);
}

static void test_price_tables(void **state)
{
    static const char *const bad[] = {
        "{",
        "[]",
        "{\"providers\":[]}",
        "{\"providers\":{\"p\":{}}}",
        "{\"providers\":{\"p\":{\"models\":{\"m\":{\"input\":1}}}}}",
        "{\"providers\":{\"p\":{\"models\":{\"m\":{\"input\":-1,"
        "\"output\":1}}}}}",
        "{\"providers\":{\"p\":{\"models\":{\"m\":{\"input\":\"1\","
        "\"output\":1}}}}}",
    };
    static const char good[] =
        "{\"providers\":{\"p\":{\"models\":{\"m\":{\"input\":2,"
        "\"output\":4},\"m-pro\":{\"input\":3,\"output\":5,"
        "\"cached_input\":1}}}}}";
    llmux__prices *t;
    llmux__price p;
    char err[256];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(
            llmux__prices_load(bad[i], strlen(bad[i]), &t, err, sizeof err),
            LLMUX_ECONFIG);
        assert_null(t);
        assert_non_null(strstr(err, "prices: "));
    }
    assert_int_equal(
        llmux__prices_load(good, strlen(good), &t, err, sizeof err), 0);
    assert_true(llmux__price_find(t, "p", "m-pro-1", &p));
    assert_true(p.input == 3 && p.cached_input == 1);
    assert_true(llmux__price_find(t, "p", "m", &p));
    assert_true(p.cached_input == 2); /* without one: the input price */
    llmux__prices_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_json_refuses_bad_values),
        cmocka_unit_test(test_out_json_repairs_utf8),
        cmocka_unit_test(test_core_values_win),
        cmocka_unit_test(test_stream_fields_accumulate),
        cmocka_unit_test(test_out_logprob_arguments),
        cmocka_unit_test(test_choices_in_index_order),
        cmocka_unit_test(test_builtin_prices),
        cmocka_unit_test(test_price_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
