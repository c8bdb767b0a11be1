/*
 * tests/fuzz/fuzz_cache_value.c: the response cache's stored values
 * (core/cache.h). A value comes back from a backend that other processes
 * write to as well (a shared Redis), so its reader must take any bytes:
 * a value that is not one is refused (a miss), never read past its end.
 *
 * Each input is used twice:
 * - as a value: llmux__cache_val_kind, then the reply's fields or every
 *   stream event until the end or a refusal; what is read lies inside
 *   the value, a reply is read to its last byte, and reading never
 *   loops;
 * - as a recipe for a value: records of [flags, length, bytes] become
 *   stream events (flags bit 0: an event name, bit 1: an id, from the
 *   record's bytes; the data is the bytes), or with byte 0 odd one reply
 *   (status, content type and body from the input); the value written
 *   must read back to exactly what was written.
 */
#include <string.h>

#include "fuzz.h"
#include "cache.h"

static void inside(const char *v, size_t len, const char *p, size_t n)
{
    if (!p) {
        FUZZ_CHECK(n == 0);
        return;
    }
    FUZZ_CHECK(p >= v && n <= len && (size_t)(p - v) <= len - n);
}

static void read_any(const char *v, size_t len)
{
    llmux__cache_rd r;
    const char *a, *b, *c;
    size_t al, bl, cl, events = 0;
    long status;
    int kind = llmux__cache_val_kind(&r, v, len), rc;
    if (kind == LLMUX__CACHE_REPLY) {
        if (llmux__cache_val_read_reply(&r, &status, &a, &al, &b, &bl) == 0) {
            FUZZ_CHECK(status >= 0 && status <= 999 && b != NULL);
            inside(v, len, a, al);
            inside(v, len, b, bl);
            FUZZ_CHECK(r.pos == len);
        }
        return;
    }
    if (kind != LLMUX__CACHE_STREAM) {
        FUZZ_CHECK(kind == -1);
        return;
    }
    while ((rc = llmux__cache_val_read_event(&r, &a, &al, &b, &bl, &c, &cl)) >
           0) {
        inside(v, len, a, al);
        inside(v, len, b, bl);
        inside(v, len, c, cl);
        FUZZ_CHECK(c != NULL);
        FUZZ_CHECK(++events <= len / 12); /* each event takes 12 bytes */
    }
    FUZZ_CHECK(rc == 0 || rc == -1);
}

typedef struct ev {
    char *event, *id; /* NUL-terminated copies, or NULL */
    const char *data;
    size_t len;
} ev;

/* Equal as a reader sees them: a NULL string and n 0. */
static int same(const char *want, size_t wn, const char *got, size_t gn)
{
    if (!want)
        return !got && !gn;
    return got && wn == gn && (!wn || !memcmp(want, got, wn));
}

static void round_trip_reply(const uint8_t *d, size_t size)
{
    llmux__buf b = {0};
    llmux__cache_rd r;
    const char *ct, *body;
    size_t ctl, bl, split = size > 3 ? d[1] % (size - 2) : 0;
    long status = size > 2 ? (long)(d[2] * 4 % 1000) : 200, got = -1;
    char *ctype = size > 3 ? fuzz_dupz(d + 3, split) : NULL;
    const char *bd = size > 3 ? (const char *)d + 3 + split : "";
    size_t bdl = size > 3 ? size - 3 - split : 0;
    /* a content type is a C string: up to its first NUL */
    FUZZ_CHECK(llmux__cache_val_begin(&b, LLMUX__CACHE_REPLY) == 0);
    FUZZ_CHECK(llmux__cache_val_reply(&b, status, ctype, bd, bdl) == 0);
    FUZZ_CHECK(llmux__cache_val_kind(&r, b.p, b.len) == LLMUX__CACHE_REPLY);
    FUZZ_CHECK(llmux__cache_val_read_reply(&r, &got, &ct, &ctl, &body, &bl) ==
               0);
    FUZZ_CHECK(got == status);
    FUZZ_CHECK(same(ctype, ctype ? strlen(ctype) : 0, ct, ctl));
    FUZZ_CHECK(same(bd, bdl, body, bl));
    free(ctype);
    llmux__buf_free(&b);
}

static void round_trip_stream(const uint8_t *d, size_t size)
{
    llmux__buf b = {0};
    llmux__cache_rd r;
    ev evs[64];
    size_t n = 0, i = 1, k;
    const char *e, *id, *data;
    size_t el, il, dl;
    while (i + 2 <= size && n < 64) {
        unsigned flags = d[i];
        size_t len = d[i + 1];
        if (len > size - i - 2)
            len = size - i - 2;
        memset(&evs[n], 0, sizeof evs[n]);
        if (flags & 1)
            evs[n].event = fuzz_dupz(d + i + 2, len / 2);
        if (flags & 2)
            evs[n].id = fuzz_dupz(d + i + 2 + len / 2, len - len / 2);
        evs[n].data = (const char *)d + i + 2;
        evs[n].len = len;
        n++;
        i += 2 + len;
    }
    FUZZ_CHECK(llmux__cache_val_begin(&b, LLMUX__CACHE_STREAM) == 0);
    for (k = 0; k < n; k++)
        FUZZ_CHECK(llmux__cache_val_event(&b, evs[k].event, evs[k].id,
                                          evs[k].data, evs[k].len) == 0);
    FUZZ_CHECK(llmux__cache_val_kind(&r, b.p, b.len) == LLMUX__CACHE_STREAM);
    for (k = 0; k < n; k++) {
        FUZZ_CHECK(llmux__cache_val_read_event(&r, &e, &el, &id, &il, &data,
                                               &dl) == 1);
        /* names and ids are C strings: up to their first NUL */
        FUZZ_CHECK(
            same(evs[k].event, evs[k].event ? strlen(evs[k].event) : 0, e, el));
        FUZZ_CHECK(same(evs[k].id, evs[k].id ? strlen(evs[k].id) : 0, id, il));
        FUZZ_CHECK(same(evs[k].data, evs[k].len, data, dl));
        free(evs[k].event);
        free(evs[k].id);
    }
    FUZZ_CHECK(llmux__cache_val_read_event(&r, &e, &el, &id, &il, &data, &dl) ==
               0);
    llmux__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exactly the input's bytes: a reader must not need a NUL after them */
    char *v = malloc(size ? size : 1);
    FUZZ_CHECK(v != NULL);
    if (size)
        memcpy(v, data, size);
    read_any(v, size);
    free(v);
    if (size && (data[0] & 1))
        round_trip_reply(data, size);
    else
        round_trip_stream(data, size);
    return 0;
}
