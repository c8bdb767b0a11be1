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
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "mock/mock_env.h"
#include "unit/plugin_test.h"

#define BASE ";base_url=http://127.0.0.1:9/v1;api_key=sk-test"

/* ---- budgets
 * ---------------------------------------------------------------*/

/* The budgets are in this process's CPU seconds, not wall time: what
 * they catch is work growing faster than the input (quadratic loops), and
 * other processes on the machine (a parallel ctest, a build) must not
 * make a linear run look slow. */

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
    assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b->t0), 0);
}

/* Fails when `what` took more than max_s seconds or raised the peak
 * resident size by more than max_mb MB. */
static void budget_check(const budget *b, const char *what, double max_s,
                         long max_mb)
{
    struct timespec t1;
    double s;
    long grown_mb;
    assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1), 0);
    s = (double)(t1.tv_sec - b->t0.tv_sec) +
        (double)(t1.tv_nsec - b->t0.tv_nsec) / 1e9;
    grown_mb = (peak_rss_kb() - b->rss0_kb) / 1024;
    if (s > max_s)
        fail_msg("%s: %.2f s of CPU, budget %.2f s", what, s, max_s);
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
                                   stream_openai, NULL};
static const pt_plugin p_mistral = {"mistral", LLMUX_FRAMING_SSE, 0,
                                    stream_mistral, NULL};
static const pt_plugin p_ollama = {"ollama", LLMUX_FRAMING_NDJSON, 1,
                                   stream_ollama, NULL};
static const pt_plugin p_alephalpha = {"alephalpha", LLMUX_FRAMING_SSE, 1,
                                       stream_alephalpha, NULL};
static const pt_plugin *const plugins[] = {&p_openai, &p_mistral, &p_ollama,
                                           &p_alephalpha};

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
        long want;
    } cases[] = {{"-5", -1},
                 {"-0", 0},
                 {"1e-400", 0},
                 {"1e999", -1},
                 {"-1e999", -1},
                 {"0.5", -1},
                 {"3.0", 3},
                 /* json-c clamps what does not fit */
                 {"1234567890123456789012345678901234567890", LONG_MAX},
                 {"-1234567890123456789012345678901234567890", -1},
                 {"9223372036854775807", LONG_MAX}};
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
            assert_int_equal(u->prompt_tokens, want);
            if (usage_bodies[k].all) {
                assert_int_equal(u->completion_tokens, want);
                assert_int_equal(u->total_tokens, want);
                assert_int_equal(u->cached_tokens, want);
            }
            llmux_response_free(res);
        }
    }
}

/*
 * Counts near LONG_MAX and no total: the JSON form (and the engine's token
 * budget) add prompt and completion, saturating at LONG_MAX. (Regression:
 * the sum overflowed, undefined behaviour, found by fuzz_openai.)
 */
static void test_usage_total_saturates(void **state)
{
    static const char body[] =
        "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":"
        "9223372036854775807,\"completion_tokens\":40}}";
    json_object *j;
    char *text;
    int rc;
    llmux_response *res =
        decode(&p_openai, LLMUX_OP_CHAT, 200, body, sizeof body - 1, &rc);
    (void)state;
    assert_int_equal(rc, 0);
    assert_int_equal(llmux_response_usage(res)->total_tokens, -1);
    text = llmux_response_to_json(res);
    assert_non_null(text);
    j = parse_all(text, strlen(text));
    assert_int_equal(jint(j, "usage.total_tokens"), LONG_MAX);
    assert_int_equal(jint(j, "usage.prompt_tokens"), LONG_MAX);
    json_object_put(j);
    llmux_free(text);
    llmux_response_free(res);
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
    assert_int_equal(o.n_choices, 1);
    assert_int_equal(o.choices[0].n_calls, 1);
    /* choice indexes have the same bound */
    assert_int_equal(llmux__host.out_choice(&o, 1024), LLMUX_EPROTO);
    assert_int_equal(llmux__host.out_choice(&o, -1), LLMUX_EINVAL);
    assert_int_equal(llmux__host.out_choice(&o, 1023), 0);
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

/* ---- deep nesting
 * -----------------------------------------------------------*/

/* 100,000 '[' as an answer, an error body and a stream event to every
 * plugin, and as request JSON: a clear error each time, in bounded time
 * and memory (the JSON parsers stop at their depth limits). */
static void test_nested_brackets(void **state)
{
    static const llmux_op ops[] = {LLMUX_OP_CHAT, LLMUX_OP_COMPLETE,
                                   LLMUX_OP_EMBED, LLMUX_OP_MODELS};
    size_t n = 100000, i, k;
    char *deep = malloc(n + 64), *msg, *type;
    llmux_request *r = NULL;
    budget b;
    (void)state;
    assert_non_null(deep);
    memset(deep, '[', n);

    budget_start(&b);
    for (k = 0; k < sizeof plugins / sizeof plugins[0]; k++) {
        const pt_plugin *pl = plugins[k];
        for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
            int rc;
            llmux_response *res = decode(pl, ops[i], 200, deep, n, &rc);
            pt_assert_proto(pl, res, rc, ops[i], deep, n);
        }
        /* an error body: the status decides, the raw text is the message */
        {
            int rc;
            llmux_response *res = decode(pl, LLMUX_OP_CHAT, 500, deep, n, &rc);
            const llmux_error *e = llmux_response_error(res);
            assert_true(rc < 0);
            assert_non_null(e);
            assert_true(strlen(e->message) < 1024);
            llmux_response_free(res);
        }
        msg = type = NULL;
        assert_int_equal(pt_one_event(pl, LLMUX_OP_CHAT, deep, n, &msg, &type),
                         LLMUX_EPROTO);
        assert_non_null(msg);
        free(msg);
        free(type);
    }
    /* request JSON, whole and as one message; then inside a valid body */
    assert_int_equal(llmux_request_new_json(&r, "openai/m" BASE, deep, n),
                     LLMUX_EINVAL);
    llmux_request_free(r);
    r = NULL;
    assert_int_equal(llmux_request_new(&r, LLMUX_OP_CHAT, "openai/m" BASE), 0);
    assert_int_equal(llmux_request_add_message_json(r, deep, n), LLMUX_EINVAL);
    assert_non_null(llmux_request_errmsg(r));
    llmux_request_free(r);
    r = NULL;
    memmove(deep + 16, deep, n);
    memcpy(deep, "{\"messages\":[1,", 15);
    deep[15] = '[';
    assert_int_equal(llmux_request_new_json(&r, "openai/m" BASE, deep, n + 16),
                     LLMUX_EINVAL);
    llmux_request_free(r);
    free(deep);
    budget_check(&b, "100000 nested [", 20.0, 200);
}

/* ---- the framers ----------------------------------------------------------*/

/* The engine's default cap on one event. */
#define ENGINE_MAX_EVENT LLMUX__MAX_EVENT_DEFAULT

typedef struct counter {
    size_t events, bytes;
    int all_x; /* every event's data was "x" */
} counter;

static int count_event(void *ud, const llmux_event *ev)
{
    counter *c = ud;
    c->events++;
    c->bytes += ev->data_len;
    if (ev->data_len != 1 || ev->data[0] != 'x')
        c->all_x = 0;
    return 0;
}

/*
 * A 50 MB SSE line, fed in 64 KiB pieces as curl delivers it and whole:
 * refused with LLMUX_ETOOBIG once it passes the cap, having buffered no
 * more than the cap.
 */
static void test_sse_huge_line(void **state)
{
    size_t n = 50u * 1024u * 1024u, at, fed = 0;
    char *line = malloc(n + 2);
    llmux__framer f;
    counter c = {0, 0, 1};
    budget b;
    int rc = 0;
    (void)state;
    assert_non_null(line);
    memcpy(line, "data: ", 6);
    memset(line + 6, 'a', n - 6);
    memcpy(line + n, "\n\n", 2);

    budget_start(&b);
    llmux__framer_init(&f, LLMUX_FRAMING_SSE, ENGINE_MAX_EVENT);
    for (at = 0; at < n + 2 && rc == 0; at += 65536) {
        size_t len = n + 2 - at < 65536 ? n + 2 - at : 65536;
        rc = llmux__framer_feed(&f, line + at, len, count_event, &c);
        fed += len;
    }
    assert_int_equal(rc, LLMUX_ETOOBIG);
    assert_true(fed <= ENGINE_MAX_EVENT + 65536);
    assert_true(f.line.cap <= 2 * (size_t)ENGINE_MAX_EVENT);
    llmux__framer_free(&f);

    llmux__framer_init(&f, LLMUX_FRAMING_SSE, ENGINE_MAX_EVENT);
    assert_int_equal(llmux__framer_feed(&f, line, n + 2, count_event, &c),
                     LLMUX_ETOOBIG);
    assert_int_equal(f.line.cap, 0); /* nothing copied */
    llmux__framer_free(&f);
    assert_int_equal(c.events, 0);
    budget_check(&b, "a 50 MB SSE line", 10.0, 40);
    free(line);
}

/* n copies of the unit u (ul bytes) in one buffer. */
static char *repeat(const char *u, size_t ul, size_t n, size_t *len)
{
    char *s = malloc(ul * n), *p = s;
    size_t i;
    assert_non_null(s);
    for (i = 0; i < n; i++, p += ul)
        memcpy(p, u, ul);
    *len = ul * n;
    return s;
}

/* Feeds s in pieces of `piece` bytes (0: whole) and finishes. */
static int feed_all(int kind, const char *s, size_t len, size_t piece,
                    counter *c)
{
    llmux__framer f;
    size_t at;
    int rc = 0;
    llmux__framer_init(&f, kind, ENGINE_MAX_EVENT);
    if (!piece)
        piece = len;
    for (at = 0; at < len && rc == 0; at += piece)
        rc = llmux__framer_feed(&f, s + at, len - at < piece ? len - at : piece,
                                count_event, c);
    if (rc == 0)
        rc = llmux__framer_finish(&f, count_event, c);
    llmux__framer_free(&f);
    return rc;
}

/*
 * 1,000,000 one-byte events, SSE and NDJSON, fed whole, in 4 KiB pieces
 * and (SSE) one byte at a time: each in linear time. A quadratic framer
 * would take hours here.
 */
static void test_million_events(void **state)
{
    static const struct {
        int kind;
        const char *unit;
        size_t piece;
    } runs[] = {{LLMUX_FRAMING_SSE, "data:x\n\n", 0},
                {LLMUX_FRAMING_SSE, "data:x\n\n", 4096},
                {LLMUX_FRAMING_SSE, "data:x\r\n\r\n", 1},
                {LLMUX_FRAMING_NDJSON, "x\n", 0},
                {LLMUX_FRAMING_NDJSON, "x\r\n", 4096},
                {LLMUX_FRAMING_NDJSON, "x\n", 1}};
    size_t n = 1000000, i;
    (void)state;
    for (i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        counter c = {0, 0, 1};
        size_t len;
        char *s = repeat(runs[i].unit, strlen(runs[i].unit), n, &len);
        budget b;
        budget_start(&b);
        assert_int_equal(feed_all(runs[i].kind, s, len, runs[i].piece, &c), 0);
        budget_check(&b, runs[i].unit, 20.0, 64);
        assert_int_equal(c.events, n);
        assert_true(c.all_x);
        free(s);
    }
}

/* ---- strings
 * ---------------------------------------------------------------*/

/* A chat answer of plugin pl whose content is the JSON string text `s`. */
static llmux_response *chat_answer(const pt_plugin *pl, const char *s, int *rc)
{
    char body[512];
    if (pl == &p_ollama)
        snprintf(body, sizeof body,
                 "{\"model\":\"m\",\"message\":{\"role\":\"assistant\","
                 "\"content\":\"%s\"},\"done\":true}",
                 s);
    else
        snprintf(body, sizeof body,
                 "{\"choices\":[{\"index\":0,\"message\":{\"role\":"
                 "\"assistant\",\"content\":\"%s\"},\"finish_reason\":"
                 "\"stop\"}]}",
                 s);
    return decode(pl, LLMUX_OP_CHAT, 200, body, strlen(body), rc);
}

/*
 * Invalid UTF-8, NUL and lone surrogates inside strings: every plugin
 * decodes them without complaint; ill-formed bytes become U+FFFD (in the
 * text and in the JSON form, which stays valid UTF-8), \u0000 stays an
 * embedded NUL counted in the length, a lone surrogate escape becomes
 * U+FFFD.
 */
#define FFFD "\xef\xbf\xbd"

static void test_strings_bytes(void **state)
{
    static const struct {
        const char *json; /* inside the JSON string */
        const char *text; /* what the response text is */
        size_t len;
    } cases[] = {
        /* ill-formed UTF-8 becomes U+FFFD, one per maximal subpart */
        {"a\xff\xfe b \xc3", "a" FFFD FFFD " b " FFFD, 13},
        {"a\\u0000b", "a\0b", 3},
        {"\\ud800x", FFFD "x", 4},
        {"\\udc00\\ud800", FFFD FFFD, 6},
        {"\xed\xa0\x80", FFFD FFFD FFFD, 9},
        {"\xc0\xaf", FFFD FFFD, 6},
    };
    size_t i, k;
    (void)state;
    for (k = 0; k < sizeof plugins / sizeof plugins[0]; k++) {
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            size_t len;
            const char *text;
            int rc;
            llmux_response *res = chat_answer(plugins[k], cases[i].json, &rc);
            char *json;
            assert_int_equal(rc, 0);
            text = llmux_response_text(res, &len);
            assert_int_equal(len, cases[i].len);
            assert_memory_equal(text, cases[i].text, len);
            json = llmux_response_to_json(res);
            assert_non_null(json);
            /* the JSON too is valid UTF-8 */
            assert_int_equal(llmux__utf8_valid(json, strlen(json)),
                             strlen(json));
            llmux_free(json);
            llmux_response_free(res);
        }
    }
}

/* Duplicate keys: the last one wins, in every plugin (json-c's rule). */
static void test_duplicate_keys(void **state)
{
    size_t k;
    (void)state;
    for (k = 0; k < sizeof plugins / sizeof plugins[0]; k++) {
        size_t len;
        int rc;
        llmux_response *res =
            chat_answer(plugins[k], "first\",\"content\":\"second", &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(llmux_response_text(res, &len), "second");
        llmux_response_free(res);
    }
    /* a whole second "choices" */
    {
        static const char body[] =
            "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
            "\"content\":\"first\"}}],\"choices\":[{\"index\":0,"
            "\"message\":{\"role\":\"assistant\",\"content\":\"second\"}}]}";
        size_t len;
        int rc;
        llmux_response *res =
            decode(&p_openai, LLMUX_OP_CHAT, 200, body, sizeof body - 1, &rc);
        assert_int_equal(rc, 0);
        assert_string_equal(llmux_response_text(res, &len), "second");
        llmux_response_free(res);
    }
}

/* ---- streams
 * ---------------------------------------------------------------*/

#define OAI_DELTA(t)                                                           \
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" t "\"}}]}"
#define OLL_LINE(t, done)                                                      \
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"" t    \
    "\"},\"done\":" done "}"

/* The text a stream run folded to. */
static const char *run_text(const pt_stream *s)
{
    size_t len;
    return llmux_response_text(s->acc, &len);
}

/*
 * CR-only line ends. SSE takes a lone CR as a line end (WHATWG): the
 * stream decodes as with LF. NDJSON does not: the lines run together into
 * one, which is no JSON value, and the stream fails with a protocol error
 * instead of guessing.
 */
static void test_cr_line_ends(void **state)
{
    static const char sse[] =
        "data: " OAI_DELTA("a") "\r\r"
                                "data: " OAI_DELTA("b") "\r\r"
                                                        "data: [DONE]\r\r";
    static const char nd[] =
        OLL_LINE("a", "false") "\r" OLL_LINE("b", "true") "\r";
    pt_stream s;
    char *sum;
    (void)state;

    sum = pt_check_splits(&p_openai, LLMUX_OP_CHAT, sse, sizeof sse - 1, 1, 0,
                          &s);
    assert_int_equal(s.err, 0);
    assert_true(s.done);
    assert_string_equal(run_text(&s), "ab");
    pt_stream_free(&s);
    free(sum);

    sum = pt_run_once(&p_ollama, LLMUX_OP_CHAT, nd, sizeof nd - 1, NULL, 0, &s);
    assert_int_equal(s.err, LLMUX_EPROTO);
    assert_int_equal(s.events, 0);
    assert_non_null(s.err_msg);
    pt_stream_free(&s);
    free(sum);
}

/* An end mark in the middle of a stream ends it there: what follows is
 * not decoded into the response. */
static void test_done_mid_stream(void **state)
{
    static const char sse[] =
        "data: " OAI_DELTA("a") "\n\n"
                                "data: [DONE]\n\n"
                                "data: " OAI_DELTA("b") "\n\n"
                                                        "data: [DONE]\n\n";
    static const char nd[] = OLL_LINE("a", "false") "\n" OLL_LINE(
        "", "true") "\n" OLL_LINE("b", "false") "\n";
    const pt_plugin *sse_plugins[] = {&p_openai, &p_mistral, &p_alephalpha};
    pt_stream s;
    char *sum;
    size_t k;
    (void)state;
    for (k = 0; k < sizeof sse_plugins / sizeof sse_plugins[0]; k++) {
        sum = pt_run_once(sse_plugins[k], LLMUX_OP_CHAT, sse, sizeof sse - 1,
                          NULL, 0, &s);
        assert_int_equal(s.err, 0);
        assert_true(s.done);
        assert_int_equal(s.after_done, 2);
        assert_string_equal(run_text(&s), "a");
        pt_stream_free(&s);
        free(sum);
    }
    sum = pt_run_once(&p_ollama, LLMUX_OP_CHAT, nd, sizeof nd - 1, NULL, 0, &s);
    assert_int_equal(s.err, 0);
    assert_true(s.done);
    assert_int_equal(s.after_done, 1);
    assert_string_equal(run_text(&s), "a");
    pt_stream_free(&s);
    free(sum);
}

/* ---- a lying Content-Length ----------------------------------------------*/

/* A raw TCP server that answers any request with a 2 GB Content-Length,
 * a few bytes of body, and closes. */
typedef struct liar {
    uv_tcp_t srv, conn;
    uv_write_t w;
    llmux__buf in;
    int port, answered, conn_closed, srv_closed, done_calls, status;
} liar;

static const char liar_answer[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    "Content-Length: 2147483648\r\n\r\n{\"choices\":[{\"ind";

static void liar_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char space[65536];
    (void)h;
    (void)hint;
    buf->base = space;
    buf->len = sizeof space;
}

static void liar_conn_closed(uv_handle_t *h)
{
    ((liar *)h->data)->conn_closed = 1;
}

static void liar_written(uv_write_t *w, int status)
{
    liar *l = w->data;
    (void)status;
    uv_close((uv_handle_t *)&l->conn, liar_conn_closed);
}

static void liar_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    liar *l = st->data;
    uv_buf_t out;
    if (n < 0 && !l->answered) {
        uv_close((uv_handle_t *)&l->conn, liar_conn_closed);
        l->answered = 1;
        return;
    }
    if (n <= 0 || l->answered)
        return;
    assert_int_equal(llmux__buf_append(&l->in, buf->base, (size_t)n), 0);
    if (!strstr(l->in.p, "\r\n\r\n"))
        return;
    l->answered = 1;
    uv_read_stop(st);
    out = uv_buf_init((char *)liar_answer, sizeof liar_answer - 1);
    l->w.data = l;
    assert_int_equal(uv_write(&l->w, st, &out, 1, liar_written), 0);
}

static void liar_connection(uv_stream_t *srv, int status)
{
    liar *l = srv->data;
    assert_int_equal(status, 0);
    assert_int_equal(uv_tcp_init(srv->loop, &l->conn), 0);
    l->conn.data = l;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&l->conn), 0);
    assert_int_equal(
        uv_read_start((uv_stream_t *)&l->conn, liar_alloc, liar_read), 0);
}

static void liar_srv_closed(uv_handle_t *h)
{
    ((liar *)h->data)->srv_closed = 1;
}

static void liar_done(llmux_request *req, int status, llmux_response *res,
                      void *ud)
{
    liar *l = ud;
    (void)req;
    (void)res;
    l->done_calls++;
    l->status = status;
}

/*
 * The server promises 2 GB and sends a few bytes before closing: the
 * request fails with a transport error (or ETOOBIG), its done callback
 * runs exactly once, and nothing waits for the missing gigabytes.
 */
static void test_huge_content_length(void **state)
{
    mock_env e;
    liar l;
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof name, i;
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *r;
    char spec[256];
    budget b;
    (void)state;

    budget_start(&b);
    o.max_retries = 0;
    o.timeout_ms = 20000; /* a hang fails below, not the suite */
    mock_env_start(&e, &o, NULL);
    memset(&l, 0, sizeof l);
    assert_int_equal(uv_tcp_init(&e.loop, &l.srv), 0);
    l.srv.data = &l;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&l.srv, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&l.srv, 8, liar_connection), 0);
    assert_int_equal(
        uv_tcp_getsockname(&l.srv, (struct sockaddr *)&name, &namelen), 0);
    l.port = ntohs(((struct sockaddr_in *)&name)->sin_port);

    snprintf(spec, sizeof spec,
             "openai/m;base_url=http://127.0.0.1:%d/v1;api_key=k", l.port);
    r = pt_op_req(LLMUX_OP_CHAT, spec);
    assert_int_equal(llmux_submit(e.client, r, NULL, liar_done, &l), 0);
    mock_env_run_until(&e, &l.done_calls);
    assert_int_equal(l.done_calls, 1);
    print_message("2 GB Content-Length: %s\n", llmux_err_name(l.status));
    if (l.status != LLMUX_ETRANSPORT && l.status != LLMUX_ETOOBIG)
        fail_msg("status %d (%s)", l.status, llmux_err_name(l.status));
    /* a little longer: no second callback */
    for (i = 0; i < 100; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(l.done_calls, 1);

    uv_close((uv_handle_t *)&l.srv, liar_srv_closed);
    mock_env_run_until(&e, &l.srv_closed);
    mock_env_stop(&e);
    llmux__buf_free(&l.in);
    budget_check(&b, "2 GB Content-Length", 15.0, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_numbers),
        cmocka_unit_test(test_usage_total_saturates),
        cmocka_unit_test(test_tool_call_index),
        cmocka_unit_test(test_nested_brackets),
        cmocka_unit_test(test_sse_huge_line),
        cmocka_unit_test(test_million_events),
        cmocka_unit_test(test_strings_bytes),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_cr_line_ends),
        cmocka_unit_test(test_done_mid_stream),
        cmocka_unit_test(test_huge_content_length),
    };
    return cmocka_run_group_tests(tests, NULL, pt_teardown);
}
