/*
 * core/framer.c: incremental splitting of streamed response bodies into
 * events, for Server-Sent Events (WHATWG "event stream interpretation")
 * and NDJSON (one JSON value per line).
 *
 * The framer is fed the byte chunks exactly as curl delivers them. Each
 * chunk is scanned once: memchr finds the next LF (and, for SSE, the next
 * CR) and the found positions are cached until the scan passes them, so a
 * chunk holding many lines, or one with no line end at all, still costs
 * one pass. A line that lies wholly inside the chunk while nothing is
 * pending is handled in place; only a line split across chunks is copied
 * into `line`. SSE data is copied once into `data` (it must be
 * NUL-terminated for the callback); NDJSON lines are copied once into
 * `data` unless they already sit in `line`. Buffers are allocated on first
 * use and kept between events, so a steady stream does no allocation.
 *
 * Rules and choices:
 * - SSE: one leading space of a field value is stripped; `data` lines are
 *   joined with "\n"; `event` names the event (an empty name means none,
 *   a name is cut at a NUL);
 *   `id` sets the last event id, which persists across events (an id
 *   holding NUL is ignored; an empty id means none); `retry` and unknown
 *   fields are ignored; a line without ':' is a field with an empty value;
 *   lines starting with ':' are comments. A blank line dispatches the
 *   event if any `data` field was seen, even an empty one (this differs
 *   from the WHATWG rule that drops events with empty data), then clears
 *   data and event name; a blank line without data only clears the name. Lines
 * end at LF, CRLF or CR, also when the CR and the LF arrive in different
 * chunks.
 * - NDJSON: lines end at LF; a trailing CR is stripped; lines made only of
 *   JSON whitespace are skipped. A CR alone is not a line end.
 * - One leading UTF-8 BOM is stripped, for both kinds.
 * - Limits: a line longer than max_event bytes (its terminator excluded;
 *   comments, `event` and `id` lines included) or SSE data that would
 *   grow past max_event bytes gives LLMUX_ETOOBIG; a partial line is
 *   refused before it is buffered, so memory stays bounded by about
 *   max_event per buffer. max_event 0 means the default cap
 *   (LLMUX__MAX_EVENT_DEFAULT), never no limit.
 * - A non-zero return (limit, ENOMEM, or the callback's value) stops the
 *   feed at once; the rest of that chunk is dropped. The caller is
 *   expected to end the stream then: only finish and free are meaningful.
 */
#include <string.h>

#include "internal.h"

static const unsigned char framer_bom[3] = {0xEF, 0xBB, 0xBF};

void llmux__framer_init(llmux__framer *f, int kind, size_t max_event)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->max_event = max_event ? max_event : LLMUX__MAX_EVENT_DEFAULT;
}

void llmux__framer_free(llmux__framer *f)
{
    llmux__buf_free(&f->line);
    llmux__buf_free(&f->data);
    llmux__buf_free(&f->event);
    llmux__buf_free(&f->id);
    f->has_data = 0;
    f->skip_lf = 0;
}

int llmux__framer_pending(const llmux__framer *f)
{
    return f->line.len > 0 || f->has_data;
}

/* Replaces the contents of b with s[0..n). */
static int buf_set(llmux__buf *b, const char *s, size_t n)
{
    llmux__buf_reset(b);
    return llmux__buf_append(b, s, n);
}

/* Appends a partial line to `line`, refusing to grow past max_event. */
static int line_add(llmux__framer *f, const char *s, size_t n)
{
    if (f->line.len > f->max_event || n > f->max_event - f->line.len)
        return LLMUX_ETOOBIG;
    return llmux__buf_append(&f->line, s, n);
}

/* SSE: hands the assembled event to fn and clears data and event name. */
static int sse_dispatch(llmux__framer *f, llmux__event_fn fn, void *ud)
{
    llmux_event ev;
    int rc;
    ev.struct_size = (uint32_t)sizeof ev;
    ev.event = f->event.len ? f->event.p : NULL;
    ev.id = f->id.len ? f->id.p : NULL;
    ev.data = f->data.p ? f->data.p : "";
    ev.data_len = f->data.len;
    rc = fn(ud, &ev);
    llmux__buf_reset(&f->data);
    llmux__buf_reset(&f->event);
    f->has_data = 0;
    return rc;
}

/* SSE: one complete line l[0..n), terminator excluded. */
static int sse_line(llmux__framer *f, const char *l, size_t n,
                    llmux__event_fn fn, void *ud)
{
    const char *colon, *v;
    size_t flen, vlen;

    if (n == 0) {
        if (f->has_data)
            return sse_dispatch(f, fn, ud);
        llmux__buf_reset(&f->event); /* no data: just forget the name */
        return 0;
    }
    if (l[0] == ':')
        return 0; /* comment */
    colon = memchr(l, ':', n);
    if (colon) {
        flen = (size_t)(colon - l);
        v = colon + 1;
        vlen = n - flen - 1;
        if (vlen && *v == ' ') {
            v++;
            vlen--;
        }
    } else {
        flen = n;
        v = l + n;
        vlen = 0;
    }
    switch (flen) {
    case 4:
        if (memcmp(l, "data", 4) == 0) {
            size_t sep = f->has_data ? 1 : 0;
            int rc;
            if (sep + vlen > f->max_event - f->data.len)
                return LLMUX_ETOOBIG;
            if (sep && (rc = llmux__buf_append(&f->data, "\n", 1)) != 0)
                return rc;
            if ((rc = llmux__buf_append(&f->data, v, vlen)) != 0)
                return rc;
            f->has_data = 1;
        }
        break;
    case 5:
        if (memcmp(l, "event", 5) == 0) {
            /* a C string for the callback: cut at a NUL */
            const char *z = memchr(v, '\0', vlen);
            return buf_set(&f->event, v, z ? (size_t)(z - v) : vlen);
        }
        break;
    case 2:
        if (l[0] == 'i' && l[1] == 'd' && !memchr(v, '\0', vlen))
            return buf_set(&f->id, v, vlen);
        break;
    default:
        break; /* retry and unknown fields */
    }
    return 0;
}

/*
 * NDJSON: one complete line l[0..n), LF excluded. `in_line` says that l is
 * the (NUL-terminated) line buffer, which can then be handed out as is.
 */
static int nd_line(llmux__framer *f, const char *l, size_t n, int in_line,
                   llmux__event_fn fn, void *ud)
{
    llmux_event ev;
    size_t i;
    int rc;

    if (n && l[n - 1] == '\r')
        n--;
    for (i = 0; i < n; i++)
        if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r' && l[i] != '\n')
            break;
    if (i == n)
        return 0; /* blank */
    if (in_line) {
        f->line.p[n] = '\0';
        ev.data = f->line.p;
    } else {
        if ((rc = buf_set(&f->data, l, n)) != 0)
            return rc;
        ev.data = f->data.p;
    }
    ev.struct_size = (uint32_t)sizeof ev;
    ev.event = NULL;
    ev.id = NULL;
    ev.data_len = n;
    return fn(ud, &ev);
}

static int one_line(llmux__framer *f, const char *l, size_t n, int in_line,
                    llmux__event_fn fn, void *ud)
{
    if (f->kind == LLMUX_FRAMING_NDJSON)
        return nd_line(f, l, n, in_line, fn, ud);
    return sse_line(f, l, n, fn, ud);
}

/*
 * Consumes a leading BOM, possibly split over chunks. The bytes matched so
 * far wait in `line`; on a mismatch they stay there as the start of the
 * first line. Returns the number of bytes of p[0..n) consumed.
 */
static size_t eat_bom(llmux__framer *f, const char *p, size_t n, int *rc)
{
    size_t had = f->line.len, k = had, used = 0;

    while (used < n && k < 3 && (unsigned char)p[used] == framer_bom[k]) {
        k++;
        used++;
    }
    *rc = 0;
    if (k == 3) {
        llmux__buf_reset(&f->line);
        f->bom_checked = 1;
    } else {
        if (k > had)
            *rc = llmux__buf_append(&f->line, (const char *)framer_bom + had,
                                    k - had);
        if (used < n)
            f->bom_checked = 1; /* mismatch: not a BOM */
    }
    return used;
}

int llmux__framer_feed(llmux__framer *f, const char *p, size_t n,
                       llmux__event_fn fn, void *userdata)
{
    size_t used;
    return llmux__framer_feed_part(f, p, n, fn, userdata, &used);
}

int llmux__framer_feed_part(llmux__framer *f, const char *p, size_t n,
                            llmux__event_fn fn, void *userdata, size_t *used)
{
    const char *end, *nl, *cr, *p0 = p;
    int sse = f->kind != LLMUX_FRAMING_NDJSON;
    int rc = 0;

    *used = n;
    if (!n)
        return 0;
    if (!f->bom_checked) {
        size_t used = eat_bom(f, p, n, &rc);
        if (rc)
            return rc;
        p += used;
        n -= used;
        if (!n)
            return 0;
    }
    if (f->skip_lf) {
        f->skip_lf = 0;
        if (*p == '\n') {
            p++;
            n--;
        }
    }
    end = p + n;
    /* next LF / CR at or after p, or end; re-searched once passed */
    nl = p < end ? memchr(p, '\n', n) : NULL;
    if (!nl)
        nl = end;
    cr = end;
    if (sse && p < end && !(cr = memchr(p, '\r', n)))
        cr = end;

    while (p < end) {
        const char *eol;
        size_t len;

        if (nl < p && !(nl = memchr(p, '\n', (size_t)(end - p))))
            nl = end;
        if (sse && cr < p && !(cr = memchr(p, '\r', (size_t)(end - p))))
            cr = end;
        eol = cr < nl ? cr : nl;
        if (eol == end) /* incomplete line: keep it for the next chunk */
            return line_add(f, p, (size_t)(end - p));

        len = (size_t)(eol - p);
        if (f->line.len) {
            if ((rc = line_add(f, p, len)) == 0)
                rc = one_line(f, f->line.p, f->line.len, 1, fn, userdata);
            llmux__buf_reset(&f->line);
        } else if (len > f->max_event) {
            rc = LLMUX_ETOOBIG;
        } else {
            rc = one_line(f, p, len, 0, fn, userdata);
        }
        if (rc && rc != LLMUX__FRAMER_STOP)
            return rc;

        p = eol + 1;
        if (*eol == '\r') {
            if (p == end)
                f->skip_lf = 1;
            else if (*p == '\n')
                p++;
        }
        if (rc) { /* the callback stops here: the rest is the caller's */
            *used = (size_t)(p - p0);
            return rc;
        }
    }
    return 0;
}

int llmux__framer_finish(llmux__framer *f, llmux__event_fn fn, void *userdata)
{
    int rc = 0;

    f->skip_lf = 0;
    f->bom_checked = 1;
    if (f->line.len) {
        rc = f->line.len > f->max_event
                 ? LLMUX_ETOOBIG
                 : one_line(f, f->line.p, f->line.len, 1, fn, userdata);
        llmux__buf_reset(&f->line);
        if (rc)
            return rc;
    }
    if (f->kind != LLMUX_FRAMING_NDJSON && f->has_data)
        rc = sse_dispatch(f, fn, userdata);
    return rc;
}
