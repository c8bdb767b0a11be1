/*
 * tests/fuzz/fuzz_framer.c: the SSE or NDJSON framer (core/framer.c) on
 * arbitrary bytes; built twice, as fuzz_sse (FUZZ_FRAMING
 * LLMUX_FRAMING_SSE) and fuzz_ndjson.
 *
 * Input: byte 0 picks max_event (framer_caps), byte 1 the chunk size the
 * rest is fed in (0: whole), the rest is the stream. Every event must keep
 * the framer's promises: data NUL-terminated at data_len and within
 * max_event, names and ids non-empty C strings, no line end inside an SSE
 * event's name or an NDJSON line, no blank NDJSON line.
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#ifndef FUZZ_FRAMING
#define FUZZ_FRAMING LLMUX_FRAMING_SSE
#endif

static const size_t framer_caps[] = {0, 1, 2, 3, 8, 16, 64, 256, 4096, 1 << 20};
#define N_CAPS (sizeof framer_caps / sizeof framer_caps[0])

static int check_event(void *ud, const llmux_event *ev)
{
    size_t max = *(const size_t *)ud, i;
    FUZZ_CHECK(ev->struct_size == sizeof *ev);
    FUZZ_CHECK(ev->data != NULL && ev->data[ev->data_len] == '\0');
    FUZZ_CHECK(!max || ev->data_len <= max);
    FUZZ_CHECK(!ev->event || (ev->event[0] && !strpbrk(ev->event, "\r\n")));
    FUZZ_CHECK(!ev->id || (ev->id[0] && !strpbrk(ev->id, "\r\n")));
    if (FUZZ_FRAMING == LLMUX_FRAMING_NDJSON) {
        FUZZ_CHECK(!memchr(ev->data, '\n', ev->data_len));
        for (i = 0; i < ev->data_len; i++)
            if (ev->data[i] != ' ' && ev->data[i] != '\t' &&
                ev->data[i] != '\r')
                break;
        FUZZ_CHECK(i < ev->data_len);
        FUZZ_CHECK(!ev->event && !ev->id);
    } else {
        FUZZ_CHECK(!memchr(ev->data, '\r', ev->data_len));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llmux__framer f;
    size_t max, chunk, at = 0;
    int rc = 0;

    if (size < 2)
        return 0;
    max = framer_caps[data[0] % N_CAPS];
    chunk = data[1];
    data += 2;
    size -= 2;
    if (!chunk)
        chunk = size ? size : 1;
    llmux__framer_init(&f, FUZZ_FRAMING, max);
    while (rc == 0 && at < size) {
        size_t n = size - at < chunk ? size - at : chunk;
        rc = llmux__framer_feed(&f, (const char *)data + at, n, check_event,
                                &max);
        at += n;
    }
    if (rc == 0)
        rc = llmux__framer_finish(&f, check_event, &max);
    FUZZ_CHECK(rc == 0 || rc == LLMUX_ETOOBIG);
    FUZZ_CHECK(rc == LLMUX_ETOOBIG ? max != 0 : 1);
    llmux__framer_free(&f);
    return 0;
}
