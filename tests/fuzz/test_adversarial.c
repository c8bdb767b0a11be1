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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, pt_teardown);
}
