/*
 * tests/fuzz/test_adversarial.c: hand-made hostile inputs, each within a
 * time and memory budget: the library must give a clear error (or a
 * documented result), not crash, hang or take quadratic time. The budgets
 * are about ten times what a sanitizer build needs, so that the tests hold
 * under valgrind too; what they catch is the order of growth.
 *
 * The plugins are driven through the core as in the unit tests
 * (tests/unit/plugin_test.c); streams go through the framer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "unit/plugin_test.h"

#define BASE ";base_url=http://127.0.0.1:9/v1;api_key=sk-test"

/* ---- budgets
 * ---------------------------------------------------------------*/

typedef struct budget {
    struct timespec t0;
    long rss0_kb; /* peak resident size at the start */
} budget;

static long peak_rss_kb(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

static void budget_start(budget *b)
{
    b->rss0_kb = peak_rss_kb();
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &b->t0), 0);
}

/* Fails when `what` took more than max_s seconds or raised the peak
 * resident size by more than max_mb MB. */
static void budget_check(const budget *b, const char *what, double max_s,
                         long max_mb)
{
    struct timespec t1;
    double s;
    long grown_mb;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    s = (double)(t1.tv_sec - b->t0.tv_sec) +
        (double)(t1.tv_nsec - b->t0.tv_nsec) / 1e9;
    grown_mb = (peak_rss_kb() - b->rss0_kb) / 1024;
    if (s > max_s)
        fail_msg("%s: %.2f s, budget %.2f s", what, s, max_s);
    if (grown_mb > max_mb)
        fail_msg("%s: peak memory grew by %ld MB, budget %ld MB", what,
                 grown_mb, max_mb);
}

/* ---- the plugins
 * -----------------------------------------------------------*/

static llmux_request *stream_req_named(const char *name, llmux_op op,
                                       llmux__prepared *p)
{
    char spec[256];
    llmux_request *r;
    snprintf(spec, sizeof spec, "%s/m" BASE, name);
    r = pt_op_req(op, spec);
    assert_int_equal(llmux_request_set_stream(r, 1), 0);
    prep_ok(r, p);
    return r;
}

static llmux_request *stream_openai(llmux_op op, llmux__prepared *p)
{
    return stream_req_named("openai", op, p);
}

static llmux_request *stream_mistral(llmux_op op, llmux__prepared *p)
{
    return stream_req_named("mistral", op, p);
}

static llmux_request *stream_ollama(llmux_op op, llmux__prepared *p)
{
    return stream_req_named("ollama", op, p);
}

static llmux_request *stream_alephalpha(llmux_op op, llmux__prepared *p)
{
    return stream_req_named("alephalpha", op, p);
}

static const pt_plugin p_openai = {"openai", LLMUX_FRAMING_SSE, 0,
                                   stream_openai};
static const pt_plugin p_mistral = {"mistral", LLMUX_FRAMING_SSE, 0,
                                    stream_mistral};
static const pt_plugin p_ollama = {"ollama", LLMUX_FRAMING_NDJSON, 1,
                                   stream_ollama};
static const pt_plugin p_alephalpha = {"alephalpha", LLMUX_FRAMING_SSE, 1,
                                       stream_alephalpha};

/* Decodes a 2xx answer to a fresh request of op on plugin pl. */
static llmux_response *decode(const pt_plugin *pl, llmux_op op, long status,
                              const char *body, size_t len, int *rc)
{
    char spec[256];
    snprintf(spec, sizeof spec, "%s/m" BASE, pl->name);
    return pt_decode(pl, pt_op_req(op, spec), op, status, body, len, rc);
}

/* ---- numbers at the edges in token counts --------------------------------*/

/* Answers with token counts in place of %s: the usage object of the
 * OpenAI shape (OpenAI, Mistral), Ollama's counts (the other one absent:
 * both near INT64_MAX is a known overflow being fixed elsewhere), Aleph
 * Alpha's completion summary. `all` says whether every count holds it. */
static const struct {
    const pt_plugin *pl;
    llmux_op op;
    int all;
    const char *body;
} usage_bodies[] = {
    {&p_openai, LLMUX_OP_CHAT, 1,
     "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
     "\"content\":\"x\"},\"finish_reason\":\"stop\"}],\"usage\":{"
     "\"prompt_tokens\":%1$s,\"completion_tokens\":%1$s,\"total_tokens\":"
     "%1$s,\"prompt_tokens_details\":{\"cached_tokens\":%1$s}}}"},
    {&p_mistral, LLMUX_OP_CHAT, 1,
     "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
     "\"content\":\"x\"},\"finish_reason\":\"stop\"}],\"usage\":{"
     "\"prompt_tokens\":%1$s,\"completion_tokens\":%1$s,\"total_tokens\":"
     "%1$s,\"prompt_tokens_details\":{\"cached_tokens\":%1$s}}}"},
    {&p_ollama, LLMUX_OP_CHAT, 0,
     "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":"
     "\"x\"},\"done\":true,\"done_reason\":\"stop\","
     "\"prompt_eval_count\":%1$s}"},
    {&p_alephalpha, LLMUX_OP_COMPLETE, 0,
     "{\"model_version\":\"1\",\"completions\":[{\"completion\":\"x\","
     "\"finish_reason\":\"end_of_text\"}],\"num_tokens_prompt_total\":%1$s}"},
};

/*
 * Token counts no provider sends: negative, beyond int64, not integers.
 * Decoding succeeds and every count is a count or unknown (-1), never
 * negative garbage. (Regression: a negative "prompt_tokens" came out as a
 * negative usage count.)
 */
static void test_usage_numbers(void **state)
{
    static const struct {
        const char *value;
        long want; /* -2: any count or -1 */
    } cases[] = {{"-5", -1},
                 {"-0", 0},
                 {"1e-400", 0},
                 {"1e999", -1},
                 {"-1e999", -1},
                 {"0.5", -1},
                 {"3.0", 3},
                 {"1234567890123456789012345678901234567890", -2},
                 {"-1234567890123456789012345678901234567890", -1},
                 {"9223372036854775807", -2}};
    size_t i, k;
    (void)state;
    for (k = 0; k < sizeof usage_bodies / sizeof usage_bodies[0]; k++) {
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char body[512];
            const llmux_usage *u;
            llmux_response *res;
            long want = cases[i].want;
            int rc;
            snprintf(body, sizeof body, usage_bodies[k].body, cases[i].value);
            res = decode(usage_bodies[k].pl, usage_bodies[k].op, 200, body,
                         strlen(body), &rc);
            if (rc != 0)
                fail_msg("%s: %s", body, llmux_response_error(res)->message);
            u = llmux_response_usage(res);
            assert_true(u->prompt_tokens >= -1 && u->total_tokens >= -1 &&
                        u->completion_tokens >= -1 && u->cached_tokens >= -1 &&
                        u->reasoning_tokens >= -1);
            if (want != -2)
                assert_int_equal(u->prompt_tokens, want);
            if (want != -2 && usage_bodies[k].all) {
                assert_int_equal(u->completion_tokens, want);
                assert_int_equal(u->total_tokens, want);
                assert_int_equal(u->cached_tokens, want);
            }
            llmux_response_free(res);
        }
    }
}

/* ---- tool-call indexes ---------------------------------------------------*/

/*
 * A tool-call delta's index picks its slot: a negative or huge one must be
 * refused, not make room for two billion calls. (Regression: the host
 * accepted any index, and Ollama, which numbers its calls itself, let a
 * stream add calls without end, each merge searching all earlier ones.)
 */
static void test_tool_call_index(void **state)
{
    static const char *const bad[] = {"2000000000", "-1", "1e999", "1024",
                                      "9223372036854775807"};
    struct llmux_out o;
    llmux__buf wire = {0};
    pt_stream s;
    char *sum;
    budget b;
    size_t i;
    (void)state;

    budget_start(&b);
    /* the host table, as any plugin calls it */
    llmux__out_init(&o, LLMUX_OP_CHAT, 1);
    assert_int_equal(
        llmux__host.out_tool_call(&o, 2000000000, "id", "f", "{}", 2),
        LLMUX_EPROTO);
    assert_int_equal(llmux__host.out_tool_call(&o, -1, "id", "f", "{}", 2),
                     LLMUX_EINVAL);
    assert_int_equal(llmux__host.out_tool_call(&o, 1023, "id", "f", "{}", 2),
                     0);
    assert_int_equal(o.n_calls, 1);
    llmux__out_free(&o);

    /* OpenAI-shape deltas with a bad wire index */
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ev[512], *msg = NULL, *type = NULL;
        snprintf(ev, sizeof ev,
                 "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{"
                 "\"index\":%s,\"id\":\"c\",\"type\":\"function\","
                 "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
                 bad[i]);
        assert_int_equal(
            pt_one_event(&p_openai, LLMUX_OP_CHAT, ev, strlen(ev), &msg, &type),
            LLMUX_EPROTO);
        assert_non_null(msg);
        free(msg);
        free(type);
    }

    /* Ollama: one new call per line, 1100 lines */
    for (i = 0; i < 1100; i++)
        assert_int_equal(
            llmux__buf_printf(
                &wire,
                "{\"model\":\"m\",\"message\":{\"role\":\"assistant\","
                "\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":"
                "\"f%zu\",\"arguments\":{}}}]},\"done\":false}\n",
                i),
            0);
    sum = pt_run_once(&p_ollama, LLMUX_OP_CHAT, wire.p, wire.len, NULL, 0, &s);
    assert_int_equal(s.err, LLMUX_EPROTO);
    assert_int_equal(s.events, LLMUX__MAX_TOOL_CALLS);
    assert_int_equal(llmux_response_tool_call_count(s.acc),
                     LLMUX__MAX_TOOL_CALLS);
    pt_stream_free(&s);
    free(sum);
    llmux__buf_free(&wire);
    budget_check(&b, "tool-call indexes", 10.0, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_numbers),
        cmocka_unit_test(test_tool_call_index),
    };
    return cmocka_run_group_tests(tests, NULL, pt_teardown);
}
