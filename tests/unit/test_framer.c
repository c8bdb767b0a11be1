/*
 * tests/unit/test_framer.c: the SSE and NDJSON framers (core/framer.c).
 *
 * Every stream is fed whole, split in two at every byte offset, split in
 * three at every pair of offsets, byte by byte and in random chunks; the
 * sequence of events (data, event name, id) must be the expected one each
 * time. Also: a stream built from a recorded OpenAI fixture, size limits,
 * truncated streams, callback aborts, allocation behaviour, and random
 * garbage (where whole and chunked feeding must still agree).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "test_scale.h"

/* ---- recording events --------------------------------------------------- */

/* Events serialised unambiguously: N for NULL, S<len>:<bytes> otherwise. */
static void put_str(llmux__buf *t, const char *s, size_t n)
{
    if (!s) {
        assert_int_equal(llmux__buf_append(t, "N", 1), 0);
        return;
    }
    assert_int_equal(llmux__buf_printf(t, "S%zu:", n), 0);
    assert_int_equal(llmux__buf_append(t, s, n), 0);
}

static void put_event(llmux__buf *t, const char *event, const char *id,
                      const char *data, size_t len)
{
    put_str(t, event, event ? strlen(event) : 0);
    put_str(t, id, id ? strlen(id) : 0);
    put_str(t, data, len);
    assert_int_equal(llmux__buf_append(t, "\n", 1), 0);
}

typedef struct rec {
    llmux__buf t; /* transcript */
    int n;        /* events seen */
    int stop_at;  /* return stop_rc from the stop_at-th event (1-based) */
    int stop_rc;
} rec;

static int on_event(void *ud, const llmux_event *ev)
{
    rec *r = ud;
    assert_int_equal(ev->struct_size, sizeof *ev);
    assert_non_null(ev->data);
    assert_int_equal(ev->data[ev->data_len], '\0');
    if (ev->event)
        assert_true(ev->event[0] != '\0');
    if (ev->id)
        assert_true(ev->id[0] != '\0');
    put_event(&r->t, ev->event, ev->id, ev->data, ev->data_len);
    r->n++;
    if (r->stop_at && r->n == r->stop_at)
        return r->stop_rc;
    return 0;
}

/*
 * Feeds s[0..len) cut at cuts[0..ncuts) (ascending) and finishes. Returns
 * the first non-zero code; feeding stops there.
 */
static int run(int kind, size_t max, const char *s, size_t len,
               const size_t *cuts, size_t ncuts, rec *r)
{
    llmux__framer f;
    size_t at = 0, i;
    int rc = 0;

    llmux__framer_init(&f, kind, max);
    for (i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        rc = llmux__framer_feed(&f, s + at, to - at, on_event, r);
        at = to;
    }
    if (rc == 0) {
        rc = llmux__framer_finish(&f, on_event, r);
        if (rc == 0)
            assert_false(llmux__framer_pending(&f));
    }
    llmux__framer_free(&f);
    return rc;
}

/* Feeds one byte at a time. */
static int run_bytewise(int kind, size_t max, const char *s, size_t len, rec *r)
{
    llmux__framer f;
    size_t i;
    int rc = 0;

    llmux__framer_init(&f, kind, max);
    for (i = 0; i < len && rc == 0; i++)
        rc = llmux__framer_feed(&f, s + i, 1, on_event, r);
    if (rc == 0)
        rc = llmux__framer_finish(&f, on_event, r);
    llmux__framer_free(&f);
    return rc;
}

static void rec_reset(rec *r)
{
    llmux__buf_reset(&r->t);
    r->n = 0;
}

static void assert_same(const llmux__buf *got, const llmux__buf *want,
                        const char *what, size_t a, size_t b)
{
    if (got->len != want->len ||
        (got->len && memcmp(got->p, want->p, got->len) != 0)) {
        print_error("%s: cut at %zu,%zu\n--- got:\n%.*s--- want:\n%.*s\n", what,
                    a, b, (int)got->len, got->p ? got->p : "", (int)want->len,
                    want->p ? want->p : "");
        fail();
    }
}

/* ---- the test streams --------------------------------------------------- */

typedef struct exp_ev {
    const char *event, *id, *data;
    size_t data_len; /* 0: strlen(data) */
} exp_ev;

typedef struct stream {
    const char *name;
    int kind;
    const char *bytes;
    size_t len;
    const exp_ev *ev;
    size_t n_ev;
} stream;

#define SSE        LLMUX_FRAMING_SSE
#define ND         LLMUX_FRAMING_NDJSON
#define BYTES(lit) lit, sizeof(lit) - 1
#define EVS(arr)   arr, sizeof arr / sizeof arr[0]

static const exp_ev ev_openai[] = {
    {NULL, NULL,
     "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", 0},
    {NULL, NULL, "{\"id\":\"c1\",\"choices\":[{\"delta\":{}}]}", 0},
    {NULL, NULL, "[DONE]", 0}};

static const exp_ev ev_multi[] = {
    {NULL, NULL, "line1\nline2\n\n two spaces\n", 0},
    {NULL, NULL, "{\"a\":\n1}", 0}};

static const exp_ev ev_comments[] = {{NULL, NULL, "x\ny", 0},
                                     {NULL, NULL, "z", 0}};

static const exp_ev ev_fields[] = {{"message_start", "1", "a", 0},
                                   {"delta", "1", "b", 0},
                                   {NULL, NULL, "c", 0},
                                   {NULL, NULL, "d", 0},
                                   {NULL, "9", "", 0},
                                   {NULL, "9", "e:f", 0},
                                   {"x", "9", " g", 0}};

static const exp_ev ev_crlf[] = {
    {NULL, NULL, "a", 0}, {"e", NULL, "b\nc", 0}, {NULL, NULL, "d", 0}};

static const exp_ev ev_nospace[] = {
    {NULL, NULL, "{\"x\":1}", 0}, {"e", "7", "y", 0}, {NULL, "7", " two", 0}};

static const exp_ev ev_bom[] = {{NULL, NULL, "bom", 0},
                                {NULL, NULL, "\xEF\xBB\xBF", 0}};

static const exp_ev ev_aleph[] = {
    {NULL, NULL,
     "{\"type\":\"stream_chunk\",\"index\":0,\"completion\":\" The New York "
     "Times, May 15\"}",
     0},
    {NULL, NULL,
     "{\"type\":\"stream_summary\",\"index\":0,\"model_version\":\"2022-04\","
     "\"finish_reason\":\"maximum_tokens\"}",
     0},
    {NULL, NULL,
     "{\"type\":\"completion_summary\",\"num_tokens_prompt_total\":1,"
     "\"num_tokens_generated\":7}",
     0}};

static const exp_ev ev_nul[] = {{NULL, NULL, "a\0b", 3}};

static const exp_ev ev_ollama[] = {
    {NULL, NULL,
     "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
     "\"content\":\"The\"},\"done\":false}",
     0},
    {NULL, NULL,
     "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
     "\"content\":\" sky\"},\"done\":false}",
     0},
    {NULL, NULL,
     "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
     "\"content\":\"\"},\"done\":true,\"eval_count\":282}",
     0}};

static const exp_ev ev_nd_crlf[] = {{NULL, NULL, "{\"a\":1}", 0},
                                    {NULL, NULL, "  {\"b\":\"x\\ry\"}", 0},
                                    {NULL, NULL, "{\"c\":\r3}", 0},
                                    {NULL, NULL, "{\"done\":true}", 0}};

static const exp_ev ev_nd_bom[] = {{NULL, NULL, "{}", 0},
                                   {NULL, NULL, "[1]", 0}};

static const stream streams[] = {
    {"openai", SSE,
     BYTES("data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":"
           "\"Hi\"}}]}\n\n"
           "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{}}]}\n\n"
           "data: [DONE]\n\n"),
     EVS(ev_openai)},
    {"multi-line data", SSE,
     BYTES("data: line1\ndata: line2\ndata:\ndata:  two spaces\ndata\n\n"
           "data: {\"a\":\ndata: 1}\n\n"),
     EVS(ev_multi)},
    {"comments", SSE,
     BYTES(": keep-alive\n\n:\n\ndata: x\n: comment inside\ndata: y\n\n"
           ":data: not data\n\n: last\ndata: z\n\n:\n\n"),
     EVS(ev_comments)},
    {"event and id", SSE,
     BYTES("event: message_start\nid: 1\ndata: a\n\n"
           "event: delta\ndata: b\n\n"
           "id\ndata: c\n\n"
           "id: 5\0x\nevent:\ndata: d\n\n"
           "retry: 100\nfoo: bar\nDATA: no\nid: 9\ndata\n\n"
           "event: ignored\n\n"
           "data: e:f\n\n"
           "event: x\ndata:  g\n\n"),
     EVS(ev_fields)},
    {"crlf", SSE,
     BYTES("data: a\r\n\r\nevent: e\r\ndata: b\r\ndata: c\r\n\r\n"
           ": c\r\ndata: d\r\n\r\n"),
     EVS(ev_crlf)},
    {"cr only", SSE,
     BYTES("data: a\r\revent: e\rdata: b\rdata: c\r\r: c\rdata: d\r\r"),
     EVS(ev_crlf)},
    {"mixed line ends", SSE,
     BYTES("data: a\r\n\revent: e\ndata: b\rdata: c\r\n\n"
           ": c\rdata: d\n\r\n"),
     EVS(ev_crlf)},
    {"no space after colon", SSE,
     BYTES("data:{\"x\":1}\n\nevent:e\nid:7\ndata:y\n\ndata:  two\n\n"),
     EVS(ev_nospace)},
    {"bom", SSE,
     BYTES("\xEF\xBB\xBF"
           "data: bom\n\ndata: \xEF\xBB\xBF\n\n"
           "\xEF\xBB\xBF"
           "data: second bom is a field name\n\n"),
     EVS(ev_bom)},
    {"partial bom", SSE,
     BYTES("\xEF\xBB"
           "data: x\n\n\xEF\xBB\xBF\n\n"),
     NULL, 0},
    {"aleph-alpha", SSE,
     BYTES("data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":"
           "\" The New York Times, May 15\"}\n\n"
           "data: {\"type\":\"stream_summary\",\"index\":0,"
           "\"model_version\":\"2022-04\",\"finish_reason\":"
           "\"maximum_tokens\"}\n\n"
           "data: {\"type\":\"completion_summary\","
           "\"num_tokens_prompt_total\":1,\"num_tokens_generated\":7}\n\n"),
     EVS(ev_aleph)},
    {"aleph-alpha, final blank line missing", SSE,
     BYTES("data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":"
           "\" The New York Times, May 15\"}\n\n"
           "data: {\"type\":\"stream_summary\",\"index\":0,"
           "\"model_version\":\"2022-04\",\"finish_reason\":"
           "\"maximum_tokens\"}\r\n\r\n"
           "data: {\"type\":\"completion_summary\","
           "\"num_tokens_prompt_total\":1,\"num_tokens_generated\":7}\n"),
     EVS(ev_aleph)},
    {"aleph-alpha, final line unterminated", SSE,
     BYTES("data: {\"type\":\"stream_chunk\",\"index\":0,\"completion\":"
           "\" The New York Times, May 15\"}\r\r"
           "data: {\"type\":\"stream_summary\",\"index\":0,"
           "\"model_version\":\"2022-04\",\"finish_reason\":"
           "\"maximum_tokens\"}\n\n"
           "data: {\"type\":\"completion_summary\","
           "\"num_tokens_prompt_total\":1,\"num_tokens_generated\":7}"),
     EVS(ev_aleph)},
    {"NUL in data", SSE, BYTES("data: a\0b\n\n"), EVS(ev_nul)},
    {"ollama ndjson", ND,
     BYTES("{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
           "\"content\":\"The\"},\"done\":false}\n"
           "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
           "\"content\":\" sky\"},\"done\":false}\n"
           "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\","
           "\"content\":\"\"},\"done\":true,\"eval_count\":282}\n"),
     EVS(ev_ollama)},
    {"ndjson crlf, blank lines, no final newline", ND,
     BYTES("\n{\"a\":1}\r\n\r\n   \n\t \r\n  {\"b\":\"x\\ry\"}\n\n"
           "{\"c\":\r3}\r\n \r\n{\"done\":true}"),
     EVS(ev_nd_crlf)},
    {"ndjson nul", ND, BYTES("a\0b\n"), EVS(ev_nul)},
    {"ndjson bom", ND, BYTES("\xEF\xBB\xBF{}\r\n[1]\n"), EVS(ev_nd_bom)},
};

#define N_STREAMS (sizeof streams / sizeof streams[0])

static void expected(const stream *st, llmux__buf *t)
{
    size_t i;
    llmux__buf_reset(t);
    for (i = 0; i < st->n_ev; i++) {
        const exp_ev *e = &st->ev[i];
        put_event(t, e->event, e->id, e->data,
                  e->data_len ? e->data_len : strlen(e->data));
    }
}

/* Whole, bytewise, and every two-piece split. */
static void test_streams_split2(void **state)
{
    llmux__buf want = {0};
    rec r = {0};
    size_t s, k;
    (void)state;

    for (s = 0; s < N_STREAMS; s++) {
        const stream *st = &streams[s];
        expected(st, &want);

        rec_reset(&r);
        assert_int_equal(run(st->kind, 0, st->bytes, st->len, NULL, 0, &r), 0);
        assert_same(&r.t, &want, st->name, st->len, st->len);
        assert_int_equal(r.n, (int)st->n_ev);

        rec_reset(&r);
        assert_int_equal(run_bytewise(st->kind, 0, st->bytes, st->len, &r), 0);
        assert_same(&r.t, &want, st->name, 1, 1);

        for (k = 0; k <= st->len; k++) {
            rec_reset(&r);
            assert_int_equal(run(st->kind, 0, st->bytes, st->len, &k, 1, &r),
                             0);
            assert_same(&r.t, &want, st->name, k, k);
        }
    }
    llmux__buf_free(&want);
    llmux__buf_free(&r.t);
}

/* A callback that stops after every event (as a paused stream does). */
static int on_event_stop(void *ud, const llmux_event *ev)
{
    int rc = on_event(ud, ev);
    return rc ? rc : LLMUX__FRAMER_STOP;
}

/*
 * Feeds s[0..len) in two pieces cut at k with framer_feed_part, stopping
 * after every event and feeding what was left again, as the engine does
 * for a paused stream: the same events come out, in order, each once.
 */
static int run_stopping(int kind, const char *s, size_t len, size_t k, rec *r)
{
    llmux__framer f;
    size_t cut[2], at = 0, i;
    int rc = 0;
    cut[0] = k;
    cut[1] = len;
    llmux__framer_init(&f, kind, 0);
    for (i = 0; i < 2 && rc == 0; i++) {
        const char *p = s + at;
        size_t n = cut[i] - at, used;
        at = cut[i];
        for (;;) {
            rc = llmux__framer_feed_part(&f, p, n, on_event_stop, r, &used);
            assert_true(used <= n);
            if (rc != LLMUX__FRAMER_STOP)
                break;
            rc = 0;
            p += used;
            n -= used;
            if (!n)
                break;
        }
    }
    if (rc == 0) {
        rc = llmux__framer_finish(&f, on_event_stop, r);
        if (rc == LLMUX__FRAMER_STOP)
            rc = 0;
    }
    llmux__framer_free(&f);
    return rc;
}

static void test_streams_stop_and_refeed(void **state)
{
    llmux__buf want = {0};
    rec r = {0};
    size_t s, k;
    (void)state;
    for (s = 0; s < N_STREAMS; s++) {
        const stream *st = &streams[s];
        expected(st, &want);
        for (k = 0; k <= st->len; k++) {
            rec_reset(&r);
            assert_int_equal(run_stopping(st->kind, st->bytes, st->len, k, &r),
                             0);
            assert_same(&r.t, &want, st->name, k, k);
        }
    }
    llmux__buf_free(&want);
    llmux__buf_free(&r.t);
}

/* Every three-piece split (catches CR/LF and BOM split state bugs). */
static void test_streams_split3(void **state)
{
    llmux__buf want = {0};
    rec r = {0};
    size_t s, cut[2];
    (void)state;

    for (s = 0; s < N_STREAMS; s++) {
        const stream *st = &streams[s];
        expected(st, &want);
        for (cut[0] = 0; cut[0] <= st->len; cut[0] += LLMUX_TEST_STRIDE(7))
            for (cut[1] = cut[0]; cut[1] <= st->len; cut[1]++) {
                rec_reset(&r);
                assert_int_equal(
                    run(st->kind, 0, st->bytes, st->len, cut, 2, &r), 0);
                assert_same(&r.t, &want, st->name, cut[0], cut[1]);
            }
    }
    llmux__buf_free(&want);
    llmux__buf_free(&r.t);
}

/*
 * Every prefix, as a truncated stream: what is emitted before finish is a
 * prefix of the full event list, and finish never fails or crashes.
 */
static void test_streams_truncated(void **state)
{
    llmux__buf want = {0};
    rec r = {0};
    size_t s, m;
    (void)state;

    for (s = 0; s < N_STREAMS; s++) {
        const stream *st = &streams[s];
        expected(st, &want);
        for (m = 0; m <= st->len; m++) {
            llmux__framer f;
            rec_reset(&r);
            llmux__framer_init(&f, st->kind, 0);
            assert_int_equal(llmux__framer_feed(&f, st->bytes, m, on_event, &r),
                             0);
            assert_true(r.t.len <= want.len);
            if (r.t.len)
                assert_memory_equal(r.t.p, want.p, r.t.len);
            assert_int_equal(llmux__framer_finish(&f, on_event, &r), 0);
            assert_false(llmux__framer_pending(&f));
            llmux__framer_free(&f);
        }
    }
    llmux__buf_free(&want);
    llmux__buf_free(&r.t);
}

/* Random chunkings, several per stream. */
static uint32_t rng_state = 2463534242u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static size_t random_cuts(size_t len, size_t *cuts, size_t max_cuts)
{
    size_t n = 0, at = 0;
    while (n < max_cuts && at < len) {
        at += rnd() % 9;
        if (at > len)
            at = len;
        cuts[n++] = at;
    }
    return n;
}

static void test_streams_random_chunks(void **state)
{
    llmux__buf want = {0};
    rec r = {0};
    size_t s, i, cuts[512], n;
    (void)state;

    for (s = 0; s < N_STREAMS; s++) {
        const stream *st = &streams[s];
        expected(st, &want);
        for (i = 0; i < 200; i++) {
            n = random_cuts(st->len, cuts, 512);
            rec_reset(&r);
            assert_int_equal(run(st->kind, 0, st->bytes, st->len, cuts, n, &r),
                             0);
            assert_same(&r.t, &want, st->name, n, i);
        }
    }
    llmux__buf_free(&want);
    llmux__buf_free(&r.t);
}

/* ---- the recorded OpenAI stream ----------------------------------------- */

typedef struct fx_check {
    char **lines;
    size_t n, at;
} fx_check;

static int on_fixture_event(void *ud, const llmux_event *ev)
{
    fx_check *c = ud;
    assert_true(c->at < c->n);
    assert_null(ev->event);
    assert_null(ev->id);
    assert_int_equal(ev->data_len, strlen(c->lines[c->at]));
    assert_memory_equal(ev->data, c->lines[c->at], ev->data_len + 1);
    c->at++;
    return 0;
}

static void test_fixture_openai(void **state)
{
    const char *path =
        LLMUX_FIXTURES "/vercel-ai/openai/openai-text.chunks.txt";
    FILE *fp = fopen(path, "rb");
    char line[65536];
    llmux__buf stream = {0};
    fx_check c = {0};
    llmux__framer f;
    size_t k, i;
    (void)state;

    if (!fp) {
        print_error("cannot open %s\n", path);
        fail();
    }
    while (fgets(line, sizeof line, fp)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (!n)
            continue;
        c.lines = realloc(c.lines, (c.n + 1) * sizeof *c.lines);
        assert_non_null(c.lines);
        c.lines[c.n++] = llmux__strdup(line);
        assert_int_equal(llmux__buf_printf(&stream, "data: %s\n\n", line), 0);
    }
    fclose(fp);
    assert_true(c.n > 100);

    /* every two-piece split */
    for (k = 0; k <= stream.len; k += LLMUX_TEST_STRIDE(97)) {
        c.at = 0;
        llmux__framer_init(&f, LLMUX_FRAMING_SSE, 1 << 20);
        assert_int_equal(
            llmux__framer_feed(&f, stream.p, k, on_fixture_event, &c), 0);
        assert_int_equal(llmux__framer_feed(&f, stream.p + k, stream.len - k,
                                            on_fixture_event, &c),
                         0);
        assert_false(llmux__framer_pending(&f));
        assert_int_equal(llmux__framer_finish(&f, on_fixture_event, &c), 0);
        assert_int_equal(c.at, c.n);
        /* whole lines were handled in place: no line buffer grew past one
         * line's worth, and data reuses its buffer */
        assert_true(f.data.cap <= 2048);
        llmux__framer_free(&f);
    }

    /* byte by byte */
    c.at = 0;
    llmux__framer_init(&f, LLMUX_FRAMING_SSE, 1 << 20);
    for (k = 0; k < stream.len; k++)
        assert_int_equal(
            llmux__framer_feed(&f, stream.p + k, 1, on_fixture_event, &c), 0);
    assert_int_equal(llmux__framer_finish(&f, on_fixture_event, &c), 0);
    assert_int_equal(c.at, c.n);
    llmux__framer_free(&f);

    for (i = 0; i < c.n; i++)
        llmux__free(c.lines[i]);
    free(c.lines);
    llmux__buf_free(&stream);
}

/* ---- limits --------------------------------------------------------------*/

/* Whole, bytewise and all splits must all give `code` after `events`. */
static void expect_all_ways(int kind, size_t max, const char *s, size_t len,
                            int code, int events)
{
    rec r = {0};
    size_t k;

    assert_int_equal(run(kind, max, s, len, NULL, 0, &r), code);
    assert_int_equal(r.n, events);
    rec_reset(&r);
    assert_int_equal(run_bytewise(kind, max, s, len, &r), code);
    assert_int_equal(r.n, events);
    for (k = 0; k <= len; k++) {
        rec_reset(&r);
        assert_int_equal(run(kind, max, s, len, &k, 1, &r), code);
        assert_int_equal(r.n, events);
    }
    llmux__buf_free(&r.t);
}

static void test_toobig_sse(void **state)
{
    (void)state;
    /* a 16-byte line is allowed, 17 is not */
    expect_all_ways(SSE, 16, BYTES("data: 0123456789\n\n"), 0, 1);
    expect_all_ways(SSE, 16, BYTES("data: 0123456789\r\n\r\n"), 0, 1);
    expect_all_ways(SSE, 16, BYTES("data: x\n\ndata: 0123456789a\n\n"),
                    LLMUX_ETOOBIG, 1);
    /* a long comment or unknown field counts as a line too */
    expect_all_ways(SSE, 16, BYTES("data: x\n\n: 0123456789abcdef\n"),
                    LLMUX_ETOOBIG, 1);
    /* data accumulated over lines: 10 + 1 + 5 = 16 fits, 17 does not */
    expect_all_ways(SSE, 16, BYTES("data:0123456789\ndata:abcde\n\n"), 0, 1);
    expect_all_ways(SSE, 16,
                    BYTES("data:0123456789\ndata:abcdef\n\ndata: y\n\n"),
                    LLMUX_ETOOBIG, 0);
    /* the empty separator lines add up as well */
    expect_all_ways(
        SSE, 5, BYTES("data:\ndata:\ndata:\ndata:\ndata:\ndata:\n\n"), 0, 1);
    expect_all_ways(
        SSE, 5, BYTES("data:\ndata:\ndata:\ndata:\ndata:\ndata:\ndata:\n\n"),
        LLMUX_ETOOBIG, 0);
    /* unterminated last line too long: found at finish at the latest */
    expect_all_ways(SSE, 16, BYTES("data: 0123456789abcdef"), LLMUX_ETOOBIG, 0);
}

static void test_toobig_ndjson(void **state)
{
    (void)state;
    expect_all_ways(ND, 8, BYTES("{\"a\":12}\n{\"b\":1}\n"), 0, 2);
    expect_all_ways(ND, 8, BYTES("{\"a\":1}\n{\"a\":123}\n{}\n"), LLMUX_ETOOBIG,
                    1);
    expect_all_ways(ND, 8, BYTES("{\"a\":123}"), LLMUX_ETOOBIG, 0);
    /* a blank line that is too long is still too long */
    expect_all_ways(ND, 8, BYTES("          \n{}\n"), LLMUX_ETOOBIG, 0);
}

/* A line without end never makes the buffer grow past the limit. */
static void test_toobig_bounded(void **state)
{
    char chunk[100];
    llmux__framer f;
    rec r = {0};
    int i, rc = 0;
    (void)state;

    memset(chunk, 'x', sizeof chunk);
    memcpy(chunk, "data: ", 6);
    llmux__framer_init(&f, SSE, 1000);
    for (i = 0; i < 100 && rc == 0; i++)
        rc = llmux__framer_feed(&f, chunk, sizeof chunk, on_event, &r);
    assert_int_equal(rc, LLMUX_ETOOBIG);
    assert_int_equal(i, 11);
    assert_true(f.line.cap <= 1024 + 1);
    llmux__framer_free(&f);

    llmux__framer_init(&f, ND, 1000);
    memset(chunk, '1', sizeof chunk);
    for (i = 0, rc = 0; i < 100 && rc == 0; i++)
        rc = llmux__framer_feed(&f, chunk, sizeof chunk, on_event, &r);
    assert_int_equal(rc, LLMUX_ETOOBIG);
    assert_true(f.line.cap <= 1024 + 1);
    llmux__framer_free(&f);
    assert_int_equal(r.n, 0);
    llmux__buf_free(&r.t);
}

/* Without a cap given the default one applies, to comments and event/id
 * lines as much as to data: a 50 MB comment was buffered whole. */
static void test_default_cap(void **state)
{
    static const char *const starts[] = {
        ": ", "event: ", "id: ", "data: ", "retry: "};
    size_t chunk = 64 * 1024, i, fed;
    char *buf = malloc(chunk);
    llmux__framer f;
    rec r = {0};
    int k, rc;
    (void)state;
    assert_non_null(buf);
    memset(buf, 'x', chunk);
    for (k = 0; k < 6; k++) {
        int nd = k == 5; /* and an NDJSON line */
        llmux__framer_init(&f, nd ? ND : SSE, 0);
        rc = nd ? 0
                : llmux__framer_feed(&f, starts[k], strlen(starts[k]), on_event,
                                     &r);
        for (i = 0, fed = 0; rc == 0 && i < 50 * 16; i++, fed += chunk)
            rc = llmux__framer_feed(&f, buf, chunk, on_event, &r);
        assert_int_equal(rc, LLMUX_ETOOBIG);
        assert_true(fed <= LLMUX__MAX_EVENT_DEFAULT + chunk);
        assert_true(f.line.cap <= 2 * LLMUX__MAX_EVENT_DEFAULT);
        llmux__framer_free(&f);
    }
    assert_int_equal(r.n, 0);
    free(buf);
    llmux__buf_free(&r.t);
}

/* ---- pending and finish ------------------------------------------------- */

static void test_pending_and_finish(void **state)
{
    llmux__framer f;
    rec r = {0};
    llmux__buf want = {0};
    (void)state;

    /* SSE: complete event, then an event cut inside its data line */
    llmux__framer_init(&f, SSE, 0);
    assert_false(llmux__framer_pending(&f));
    assert_int_equal(
        llmux__framer_feed(&f, BYTES("data: a\n\nda"), on_event, &r), 0);
    assert_int_equal(r.n, 1);
    assert_true(llmux__framer_pending(&f));
    assert_int_equal(llmux__framer_feed(&f, BYTES("ta: b"), on_event, &r), 0);
    assert_true(llmux__framer_pending(&f));
    assert_int_equal(llmux__framer_feed(&f, BYTES("\n"), on_event, &r), 0);
    assert_true(llmux__framer_pending(&f)); /* data seen, no blank line */
    assert_int_equal(r.n, 1);
    assert_int_equal(llmux__framer_finish(&f, on_event, &r), 0);
    assert_false(llmux__framer_pending(&f));
    put_event(&want, NULL, NULL, "a", 1);
    put_event(&want, NULL, NULL, "b", 1);
    assert_same(&r.t, &want, "sse finish", 0, 0);
    /* finishing again emits nothing */
    assert_int_equal(llmux__framer_finish(&f, on_event, &r), 0);
    assert_int_equal(r.n, 2);
    llmux__framer_free(&f);

    /* SSE: only a comment and an event name pending: nothing to emit */
    rec_reset(&r);
    llmux__framer_init(&f, SSE, 0);
    assert_int_equal(
        llmux__framer_feed(&f, BYTES(": hi\nevent: x\n"), on_event, &r), 0);
    assert_false(llmux__framer_pending(&f));
    assert_int_equal(llmux__framer_finish(&f, on_event, &r), 0);
    assert_int_equal(r.n, 0);
    llmux__framer_free(&f);

    /* SSE: a CR at the very end, then finish */
    rec_reset(&r);
    llmux__framer_init(&f, SSE, 0);
    assert_int_equal(llmux__framer_feed(&f, BYTES("data: z\r"), on_event, &r),
                     0);
    assert_true(llmux__framer_pending(&f));
    assert_int_equal(llmux__framer_finish(&f, on_event, &r), 0);
    assert_int_equal(r.n, 1);
    llmux__framer_free(&f);

    /* NDJSON: a line without newline is pending until finish */
    rec_reset(&r);
    llmux__buf_reset(&want);
    llmux__framer_init(&f, ND, 0);
    assert_int_equal(
        llmux__framer_feed(&f, BYTES("{\"a\":1}\n{\"b\""), on_event, &r), 0);
    assert_int_equal(r.n, 1);
    assert_true(llmux__framer_pending(&f));
    assert_int_equal(llmux__framer_finish(&f, on_event, &r), 0);
    assert_false(llmux__framer_pending(&f));
    put_event(&want, NULL, NULL, "{\"a\":1}", 7);
    put_event(&want, NULL, NULL, "{\"b\"", 4);
    assert_same(&r.t, &want, "ndjson finish", 0, 0);
    llmux__framer_free(&f);

    /* NDJSON: complete lines leave nothing pending */
    rec_reset(&r);
    llmux__framer_init(&f, ND, 0);
    assert_int_equal(llmux__framer_feed(&f, BYTES("{}\r\n"), on_event, &r), 0);
    assert_false(llmux__framer_pending(&f));
    llmux__framer_free(&f);

    llmux__buf_free(&want);
    llmux__buf_free(&r.t);
}

/* ---- callbacks stopping the feed ---------------------------------------- */

static void test_callback_abort(void **state)
{
    static const char sse[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    static const char nd[] = "1\n2\n3\n";
    llmux__framer f;
    rec r = {0};
    size_t i;
    (void)state;

    r.stop_at = 2;
    r.stop_rc = 42;
    llmux__framer_init(&f, SSE, 0);
    assert_int_equal(llmux__framer_feed(&f, sse, sizeof sse - 1, on_event, &r),
                     42);
    assert_int_equal(r.n, 2);
    llmux__framer_free(&f);

    rec_reset(&r);
    r.stop_rc = LLMUX_EUSER;
    llmux__framer_init(&f, ND, 0);
    assert_int_equal(llmux__framer_feed(&f, nd, sizeof nd - 1, on_event, &r),
                     LLMUX_EUSER);
    assert_int_equal(r.n, 2);
    llmux__framer_free(&f);

    /* from finish, for the pending event */
    rec_reset(&r);
    r.stop_at = 1;
    r.stop_rc = -7;
    llmux__framer_init(&f, SSE, 0);
    assert_int_equal(llmux__framer_feed(&f, BYTES("data: x"), on_event, &r), 0);
    assert_int_equal(llmux__framer_finish(&f, on_event, &r), -7);
    llmux__framer_free(&f);

    /* at every split, the abort comes from the feed holding the event */
    for (i = 0; i <= sizeof sse - 1; i++) {
        int rc;
        rec_reset(&r);
        r.stop_at = 2;
        r.stop_rc = 5;
        rc = run(SSE, 0, sse, sizeof sse - 1, &i, 1, &r);
        assert_int_equal(rc, 5);
        assert_int_equal(r.n, 2);
    }
    llmux__buf_free(&r.t);
}

/* ---- allocation --------------------------------------------------------- */

static void test_allocation(void **state)
{
    llmux__framer f;
    rec r = {0};
    const char *data_p;
    size_t data_cap;
    int i;
    (void)state;

    /* never fed: nothing allocated */
    llmux__framer_init(&f, SSE, 0);
    assert_int_equal(llmux__framer_feed(&f, "", 0, on_event, &r), 0);
    assert_int_equal(llmux__framer_finish(&f, on_event, &r), 0);
    assert_null(f.line.p);
    assert_null(f.data.p);
    assert_null(f.event.p);
    assert_null(f.id.p);
    llmux__framer_free(&f);
    llmux__framer_free(&f); /* idempotent */

    /* whole lines inside the chunk are not copied into the line buffer,
     * and the data buffer is reused from event to event */
    llmux__framer_init(&f, SSE, 0);
    assert_int_equal(
        llmux__framer_feed(&f, BYTES("data: {\"a\":1}\n\n"), on_event, &r), 0);
    assert_null(f.line.p);
    data_p = f.data.p;
    data_cap = f.data.cap;
    assert_non_null(data_p);
    for (i = 0; i < 100; i++)
        assert_int_equal(
            llmux__framer_feed(&f, BYTES("data: {\"b\":2}\n\n"), on_event, &r),
            0);
    assert_int_equal(r.n, 101);
    assert_null(f.line.p);
    assert_ptr_equal(f.data.p, data_p);
    assert_int_equal(f.data.cap, data_cap);
    llmux__framer_free(&f);

    /* NDJSON alike */
    rec_reset(&r);
    llmux__framer_init(&f, ND, 0);
    assert_int_equal(llmux__framer_feed(&f, BYTES("{}\n"), on_event, &r), 0);
    data_p = f.data.p;
    for (i = 0; i < 100; i++)
        assert_int_equal(
            llmux__framer_feed(&f, BYTES("{\"x\":1}\n"), on_event, &r), 0);
    assert_null(f.line.p);
    assert_ptr_equal(f.data.p, data_p);
    llmux__framer_free(&f);
    llmux__buf_free(&r.t);
}

/* ---- garbage ------------------------------------------------------------ */

static const char *const tokens[] = {
    "data", "data:", "data: ",   "event:",       "event: e", "id:",  "id: 1",
    "id",   ":",     " ",        "\r",           "\n",       "\r\n", "\n\n",
    "x",    "{}",    "retry: 5", "\xEF\xBB\xBF", "\xEF",     "\t"};

static size_t make_garbage(char *buf, size_t cap)
{
    size_t n = 0, want = rnd() % cap;
    int mode = (int)(rnd() % 3);
    while (n < want) {
        if (mode == 0 || rnd() % 4 == 0) {
            buf[n++] = (char)(rnd() & 0xff); /* any byte, NUL included */
        } else {
            const char *t = tokens[rnd() % (sizeof tokens / sizeof *tokens)];
            size_t l = strlen(t);
            if (n + l > cap)
                break;
            memcpy(buf + n, t, l);
            n += l;
        }
        if (rnd() % 16 == 0 && n < cap)
            buf[n++] = '\0';
    }
    return n;
}

/*
 * Random input never crashes, events are always well-formed (checked in
 * on_event), and whole, bytewise and randomly chunked feeding agree on
 * both the events and the final code.
 */
static void test_garbage(void **state)
{
    char buf[600];
    rec a = {0}, b = {0};
    size_t cuts[600], n, len, max;
    int i, kind, rca, rcb;
    (void)state;

    for (i = 0; i < LLMUX_TEST_REPS(20000, 10); i++) {
        len = make_garbage(buf, sizeof buf);
        kind = (rnd() & 1) ? SSE : ND;
        max = (rnd() % 3 == 0) ? 0 : 1 + rnd() % 64;

        rec_reset(&a);
        rca = run(kind, max, buf, len, NULL, 0, &a);
        assert_true(rca == 0 || rca == LLMUX_ETOOBIG);

        rec_reset(&b);
        if (i % 2) {
            rcb = run_bytewise(kind, max, buf, len, &b);
        } else {
            n = random_cuts(len, cuts, sizeof cuts / sizeof *cuts);
            rcb = run(kind, max, buf, len, cuts, n, &b);
        }
        assert_int_equal(rca, rcb);
        assert_same(&b.t, &a.t, "garbage", (size_t)i, len);
    }
    llmux__buf_free(&a.t);
    llmux__buf_free(&b.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_split2),
        cmocka_unit_test(test_streams_stop_and_refeed),
        cmocka_unit_test(test_streams_split3),
        cmocka_unit_test(test_streams_truncated),
        cmocka_unit_test(test_streams_random_chunks),
        cmocka_unit_test(test_fixture_openai),
        cmocka_unit_test(test_toobig_sse),
        cmocka_unit_test(test_toobig_ndjson),
        cmocka_unit_test(test_toobig_bounded),
        cmocka_unit_test(test_default_cap),
        cmocka_unit_test(test_pending_and_finish),
        cmocka_unit_test(test_callback_abort),
        cmocka_unit_test(test_allocation),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
