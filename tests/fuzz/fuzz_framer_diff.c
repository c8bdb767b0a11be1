/*
 * tests/fuzz/fuzz_framer_diff.c: differential target for the framers. The
 * same stream is framed three ways: whole, split at offsets taken from the
 * input (each piece in its own exact-size buffer), and whole again with
 * the callback pausing after every event (LLMUX__FRAMER_STOP, the rest
 * fed again as the engine does when a stream is paused). The events (data,
 * name, id) and the final code must be identical; a mismatch aborts.
 *
 * Input: byte 0: bit 0 the framing (SSE, NDJSON), bits 1-4 max_event
 * (diff_caps); byte 1: the number of cuts (mod 16); then two bytes per cut
 * (an offset, mod the stream length + 1; sorted); the rest is the stream.
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

static const size_t diff_caps[] = {0,  1,  2,  3,   4,    5,     7,      8,
                                   16, 31, 64, 256, 4096, 65536, 1 << 20};
#define N_CAPS  (sizeof diff_caps / sizeof diff_caps[0])
#define MAX_CUT 16

typedef struct trace {
    llmux__buf t;
    int pause; /* return LLMUX__FRAMER_STOP from every event */
} trace;

/* "N" for NULL, else "S<len>:<bytes>": unambiguous. */
static void put_str(llmux__buf *t, const char *s, size_t n)
{
    if (!s) {
        FUZZ_CHECK(llmux__buf_append(t, "N", 1) == 0);
        return;
    }
    FUZZ_CHECK(llmux__buf_printf(t, "S%zu:", n) == 0);
    FUZZ_CHECK(llmux__buf_append(t, s, n) == 0);
}

static int on_event(void *ud, const llmux_event *ev)
{
    trace *tr = ud;
    put_str(&tr->t, ev->event, ev->event ? strlen(ev->event) : 0);
    put_str(&tr->t, ev->id, ev->id ? strlen(ev->id) : 0);
    put_str(&tr->t, ev->data, ev->data_len);
    FUZZ_CHECK(llmux__buf_append(&tr->t, "\n", 1) == 0);
    return tr->pause ? LLMUX__FRAMER_STOP : 0;
}

/* Feeds s cut at cuts[0..ncuts) (ascending, each piece copied to an exact
 * size buffer) and finishes; the code goes into the trace as well. */
static void run_split(int kind, size_t max, const char *s, size_t len,
                      const size_t *cuts, size_t ncuts, trace *tr)
{
    llmux__framer f;
    size_t at = 0, i;
    int rc = 0;
    llmux__framer_init(&f, kind, max);
    for (i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        char *piece = malloc(end - at ? end - at : 1);
        FUZZ_CHECK(piece != NULL);
        memcpy(piece, s + at, end - at);
        rc = llmux__framer_feed(&f, piece, end - at, on_event, tr);
        free(piece);
        at = end;
    }
    if (rc == 0)
        rc = llmux__framer_finish(&f, on_event, tr);
    llmux__framer_free(&f);
    FUZZ_CHECK(llmux__buf_printf(&tr->t, "rc %d\n", rc) == 0);
}

/* Feeds s whole, pausing after every event and feeding the rest again. */
static void run_paused(int kind, size_t max, const char *s, size_t len,
                       trace *tr)
{
    llmux__framer f;
    size_t at = 0, used;
    int rc = LLMUX__FRAMER_STOP;
    llmux__framer_init(&f, kind, max);
    tr->pause = 1;
    while (rc == LLMUX__FRAMER_STOP && at < len) {
        rc = llmux__framer_feed_part(&f, s + at, len - at, on_event, tr, &used);
        FUZZ_CHECK(used <= len - at);
        FUZZ_CHECK(rc == LLMUX__FRAMER_STOP || used == len - at);
        at += used;
    }
    if (rc == LLMUX__FRAMER_STOP)
        rc = 0;
    /* finish's events are the last: no more pauses to honour */
    tr->pause = 0;
    if (rc == 0)
        rc = llmux__framer_finish(&f, on_event, tr);
    llmux__framer_free(&f);
    FUZZ_CHECK(llmux__buf_printf(&tr->t, "rc %d\n", rc) == 0);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static void same(const trace *a, const trace *b, const char *what)
{
    if (a->t.len == b->t.len &&
        (a->t.len == 0 || memcmp(a->t.p, b->t.p, a->t.len) == 0))
        return;
    fprintf(
        stderr, "framer_diff: %s differs\n--- whole:\n%.*s\n--- %s:\n%.*s\n",
        what, (int)(a->t.len > 2000 ? 2000 : a->t.len), a->t.p ? a->t.p : "",
        what, (int)(b->t.len > 2000 ? 2000 : b->t.len), b->t.p ? b->t.p : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cuts[MAX_CUT], ncuts, i, max, len;
    const char *s;
    int kind;
    trace whole = {{0}, 0}, split = {{0}, 0}, paused = {{0}, 0};

    if (size < 2)
        return 0;
    kind = (data[0] & 1) ? LLMUX_FRAMING_NDJSON : LLMUX_FRAMING_SSE;
    max = diff_caps[(data[0] >> 1) % N_CAPS];
    ncuts = data[1] % MAX_CUT;
    if (size < 2 + 2 * ncuts)
        return 0;
    s = (const char *)data + 2 + 2 * ncuts;
    len = size - 2 - 2 * ncuts;
    for (i = 0; i < ncuts; i++)
        cuts[i] = ((size_t)data[2 + 2 * i] << 8 | data[3 + 2 * i]) % (len + 1);
    qsort(cuts, ncuts, sizeof *cuts, cmp_size);

    run_split(kind, max, s, len, NULL, 0, &whole);
    run_split(kind, max, s, len, cuts, ncuts, &split);
    run_paused(kind, max, s, len, &paused);
    same(&whole, &split, "split");
    same(&whole, &paused, "paused");
    llmux__buf_free(&whole.t);
    llmux__buf_free(&split.t);
    llmux__buf_free(&paused.t);
    return 0;
}
