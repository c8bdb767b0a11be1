/*
 * mock_util.c: helpers shared by the mock server and its protocols:
 * buffers, fault-spec parsing, reply builders (whole bodies, SSE and NDJSON
 * events) and deterministic text helpers (word counts, stream pieces,
 * embeddings from a hash).
 */
#include "mock_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ------------------------------------------------------------ */

static int buf_reserve(mock_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->oom)
        return -1;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return -1;
    }
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void llmux__mock_buf_add(mock_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void llmux__mock_buf_adds(mock_buf *b, const char *s)
{
    llmux__mock_buf_add(b, s, strlen(s));
}

void llmux__mock_buf_printf(mock_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (buf_reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *llmux__mock_buf_steal(mock_buf *b, size_t *len)
{
    char *p;

    if (b->oom) {
        llmux__mock_buf_free(b);
        return NULL;
    }
    if (!b->data) {
        if (buf_reserve(b, 0) < 0)
            return NULL;
        b->data[0] = '\0';
    }
    p = b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof(*b));
    return p;
}

void llmux__mock_buf_free(mock_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- strings ------------------------------------------------------------ */

char *llmux__mock_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p)
        memcpy(p, s, n);
    return p;
}

char *llmux__mock_strdupf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    p = malloc((size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int llmux__mock_streq_ci(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* ---- faults ------------------------------------------------------------- */

void llmux__mock_fault_init(mock_fault *f)
{
    memset(f, 0, sizeof(*f));
    f->retry_after_ms = -1;
    f->delay_ms = -1;
    f->stall_after = -1;
    f->cut_after = -1;
    f->reset = -1;
    f->reset_after = -1;
    f->stream_error_after = -1;
    f->huge = -1;
    f->events = -1;
}

void llmux__mock_fault_clear(mock_fault *f)
{
    free(f->code);
    free(f->message);
    free(f->retry_after);
    free(f->content_type);
    llmux__mock_buf_free(&f->headers);
    llmux__mock_fault_init(f);
}

int llmux__mock_fault_empty(const mock_fault *f)
{
    return !f->status && !f->code && !f->message && !f->retry_after &&
           f->retry_after_ms < 0 && f->delay_ms < 0 && f->stall_after < 0 &&
           f->cut_after < 0 && f->reset < 0 && f->reset_after < 0 &&
           f->stream_error_after < 0 && f->huge < 0 && f->events < 0 &&
           f->body == MOCK_BODY_NONE && !f->content_type && f->headers.len == 0;
}

int llmux__mock_fault_replaces(const mock_fault *f)
{
    return f->status >= 400 || f->body == MOCK_BODY_GARBAGE ||
           f->body == MOCK_BODY_TEXT || f->body == MOCK_BODY_HTML ||
           f->huge >= 0;
}

static int has_crlf(const char *s)
{
    return strchr(s, '\r') != NULL || strchr(s, '\n') != NULL;
}

/* Parses a non-negative decimal number no larger than max. */
static int parse_num(const char *v, long max, long *out)
{
    char *end;
    long n;

    if (!isdigit((unsigned char)*v))
        return -1;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || n > max)
        return -1;
    *out = n;
    return 0;
}

static int set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = llmux__mock_strdup(v);
    return *dst ? 0 : -1;
}

/* Header tokens: the RFC 9110 tchar set. */
static int is_token(const char *s, size_t n)
{
    size_t i;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c))
            return 0;
    }
    return 1;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Applies one "key=value" directive; returns 0 or -1 with err set. */
static int fault_directive(mock_fault *f, char *d, int lenient, char *err,
                           size_t errlen)
{
    char *eq = strchr(d, '='), *key, *val;
    long n;
    struct {
        const char *name;
        long *field;
        long max;
    } nums[] = {
        {"retry_after_ms", &f->retry_after_ms, 86400000L},
        {"delay_ms", &f->delay_ms, 3600000L},
        {"stall_after", &f->stall_after, 100000000L},
        {"cut_after", &f->cut_after, 1L << 30},
        {"reset", &f->reset, 1},
        {"reset_after", &f->reset_after, 1L << 30},
        {"stream_error_after", &f->stream_error_after, 100000000L},
        {"huge", &f->huge, MOCK_MAX_HUGE},
        {"events", &f->events, 1000000L},
    };
    size_t i;

    if (!eq) {
        if (lenient)
            return 0;
        snprintf(err, errlen, "directive '%s' has no '='", d);
        return -1;
    }
    *eq = '\0';
    key = trim(d);
    val = trim(eq + 1);
    if (has_crlf(val)) {
        snprintf(err, errlen, "%s: value holds CR or LF", key);
        return -1;
    }
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(key, nums[i].name) != 0)
            continue;
        if (parse_num(val, nums[i].max, nums[i].field) < 0) {
            snprintf(err, errlen, "%s: bad number '%s'", key, val);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "status") == 0) {
        if (parse_num(val, 599, &n) < 0 || n < 100) {
            snprintf(err, errlen, "status: bad value '%s'", val);
            return -1;
        }
        f->status = (int)n;
    } else if (strcmp(key, "code") == 0) {
        return set_str(&f->code, val);
    } else if (strcmp(key, "message") == 0) {
        return set_str(&f->message, val);
    } else if (strcmp(key, "retry_after") == 0) {
        if (!*val) {
            snprintf(err, errlen, "retry_after: empty");
            return -1;
        }
        return set_str(&f->retry_after, val);
    } else if (strcmp(key, "body") == 0) {
        if (strcmp(val, "garbage") == 0)
            f->body = MOCK_BODY_GARBAGE;
        else if (strcmp(val, "text") == 0)
            f->body = MOCK_BODY_TEXT;
        else if (strcmp(val, "truncated") == 0)
            f->body = MOCK_BODY_TRUNCATED;
        else if (strcmp(val, "html") == 0)
            f->body = MOCK_BODY_HTML;
        else {
            snprintf(err, errlen, "body: unknown kind '%s'", val);
            return -1;
        }
    } else if (strcmp(key, "content_type") == 0) {
        if (!*val || strpbrk(val, "\r\n")) {
            snprintf(err, errlen, "content_type: empty or not one line");
            return -1;
        }
        return set_str(&f->content_type, val);
    } else if (strcmp(key, "header") == 0) {
        char *colon = strchr(val, ':');
        if (!colon || !is_token(val, (size_t)(colon - val)) ||
            strpbrk(val, "\r\n")) {
            snprintf(err, errlen, "header: want Name:Value, got '%s'", val);
            return -1;
        }
        *colon = '\0';
        llmux__mock_buf_printf(&f->headers, "%s: %s\r\n", val, trim(colon + 1));
    } else if (!lenient) {
        snprintf(err, errlen, "unknown directive '%s'", key);
        return -1;
    }
    return 0;
}

int llmux__mock_fault_parse(mock_fault *f, const char *spec, int lenient,
                            char *err, size_t errlen)
{
    char *copy, *p, *d;
    int rc = 0;

    llmux__mock_fault_init(f);
    if (err && errlen)
        err[0] = '\0';
    copy = llmux__mock_strdup(spec);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (p = copy; p && rc == 0; p = d) {
        d = strchr(p, ';');
        if (d)
            *d++ = '\0';
        p = trim(p);
        if (*p)
            rc = fault_directive(f, p, lenient, err, errlen);
    }
    free(copy);
    if (rc == 0 && f->headers.oom) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc < 0)
        llmux__mock_fault_clear(f);
    return rc;
}

/* ---- replies ------------------------------------------------------------ */

void llmux__mock_reply_clear(mock_reply *r)
{
    free(r->ctype_override);
    llmux__mock_buf_free(&r->headers);
    llmux__mock_buf_free(&r->body);
    free(r->ev_end);
    memset(r, 0, sizeof(*r));
}

const char *llmux__mock_json_text(json_object *o, size_t *len)
{
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);

    if (!s) {
        *len = 0;
        return "";
    }
    return s;
}

void llmux__mock_reply_json(mock_reply *r, int status, json_object *o)
{
    size_t len = 0;
    const char *s;

    r->status = status;
    r->stream = 0;
    r->content_type = "application/json";
    r->body.len = 0;
    if (!o) {
        r->oom = 1;
        return;
    }
    s = llmux__mock_json_text(o, &len);
    llmux__mock_buf_add(&r->body, s, len);
    json_object_put(o);
}

void llmux__mock_reply_text(mock_reply *r, int status, const char *ctype,
                            const char *text, size_t len)
{
    r->status = status;
    r->stream = 0;
    r->content_type = ctype;
    r->body.len = 0;
    llmux__mock_buf_add(&r->body, text, len);
}

void llmux__mock_reply_stream(mock_reply *r, const char *ctype)
{
    r->status = 200;
    r->stream = 1;
    r->content_type = ctype;
    r->body.len = 0;
    r->n_events = 0;
}

void llmux__mock_event_raw(mock_reply *r, const char *data, size_t len)
{
    if (r->n_events == r->ev_cap) {
        size_t cap = r->ev_cap ? r->ev_cap * 2 : 16;
        size_t *p = realloc(r->ev_end, cap * sizeof(*p));
        if (!p) {
            r->oom = 1;
            return;
        }
        r->ev_end = p;
        r->ev_cap = cap;
    }
    llmux__mock_buf_add(&r->body, data, len);
    r->ev_end[r->n_events++] = r->body.len;
}

void llmux__mock_sse_text(mock_reply *r, const char *text)
{
    mock_buf b = {0};

    llmux__mock_buf_printf(&b, "data: %s\n\n", text);
    if (b.oom)
        r->oom = 1;
    else
        llmux__mock_event_raw(r, b.data, b.len);
    llmux__mock_buf_free(&b);
}

/* Appends `prefix`, the JSON text of `o` (consumed) and `suffix` as one
 * event. */
static void event_json(mock_reply *r, json_object *o, const char *prefix,
                       const char *suffix)
{
    size_t len;
    const char *s;
    mock_buf b = {0};

    if (!o) {
        r->oom = 1;
        return;
    }
    s = llmux__mock_json_text(o, &len);
    llmux__mock_buf_adds(&b, prefix);
    llmux__mock_buf_add(&b, s, len);
    llmux__mock_buf_adds(&b, suffix);
    json_object_put(o);
    if (b.oom)
        r->oom = 1;
    else
        llmux__mock_event_raw(r, b.data, b.len);
    llmux__mock_buf_free(&b);
}

void llmux__mock_sse_json(mock_reply *r, json_object *o)
{
    event_json(r, o, "data: ", "\n\n");
}

void llmux__mock_ndjson(mock_reply *r, json_object *o)
{
    event_json(r, o, "", "\n");
}

void llmux__mock_reply_header(mock_reply *r, const char *name,
                              const char *value)
{
    llmux__mock_buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

/* ---- text helpers ------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

size_t llmux__mock_count_words(const char *s, size_t len)
{
    size_t i, n = 0;
    int in = 0;

    for (i = 0; i < len; i++) {
        if (is_ws(s[i]))
            in = 0;
        else if (!in) {
            in = 1;
            n++;
        }
    }
    return n;
}

size_t llmux__mock_pieces(const char *s, size_t **ends)
{
    size_t len = strlen(s), words = llmux__mock_count_words(s, len);
    size_t i = 0, k = 0;
    size_t *e;

    *ends = NULL;
    if (words == 0)
        return 0;
    e = malloc(words * sizeof(*e));
    if (!e)
        return 0;
    while (k < words) {
        while (i < len && is_ws(s[i]))
            i++;
        while (i < len && !is_ws(s[i]))
            i++;
        e[k++] = i;
    }
    e[words - 1] = len; /* trailing whitespace rides on the last piece */
    *ends = e;
    return words;
}

char *llmux__mock_first_words(const char *s, size_t n)
{
    size_t i = 0, k = 0, len = strlen(s);
    char *p;

    while (k < n && i < len) {
        while (i < len && is_ws(s[i]))
            i++;
        if (i == len)
            break;
        while (i < len && !is_ws(s[i]))
            i++;
        k++;
    }
    if (n == 0)
        i = 0;
    p = malloc(i + 1);
    if (p) {
        memcpy(p, s, i);
        p[i] = '\0';
    }
    return p;
}

char *llmux__mock_tok_text(long n)
{
    mock_buf b = {0};
    long i;

    for (i = 0; i < n; i++)
        llmux__mock_buf_printf(&b, i ? " tok%ld" : "tok%ld", i);
    return llmux__mock_buf_steal(&b, NULL);
}

size_t llmux__mock_utf8_cut(const char *s, size_t len, size_t want)
{
    size_t n = want < len ? want : len;

    /* Never end just before a continuation byte (10xxxxxx). */
    while (n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
        n++;
    return n;
}

uint64_t llmux__mock_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

void llmux__mock_embedding(const char *s, size_t len, double *v)
{
    uint64_t h = llmux__mock_hash(s, len);
    int k;

    for (k = 0; k < MOCK_EMBED_DIM; k++) {
        uint64_t x = splitmix64(h + (uint64_t)k * 0x632BE59BD9B4E019ULL);
        double u = (double)(x >> 11) / 9007199254740992.0; /* [0,1) */
        v[k] = floor((u * 2.0 - 1.0) * 1e6 + 0.5) / 1e6;
    }
}

/* ---- JSON helpers ------------------------------------------------------ */

json_object *llmux__mock_get(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (o && json_object_is_type(o, json_type_object) &&
        json_object_object_get_ex(o, key, &v))
        return v;
    return NULL;
}

const char *llmux__mock_str(json_object *o, const char *key)
{
    json_object *v = llmux__mock_get(o, key);

    return v && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

int llmux__mock_true(json_object *o, const char *key)
{
    json_object *v = llmux__mock_get(o, key);

    return v && json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

long llmux__mock_int(json_object *o, const char *key)
{
    json_object *v = llmux__mock_get(o, key);
    int64_t n;

    if (!v || !json_object_is_type(v, json_type_int))
        return -1;
    n = json_object_get_int64(v);
    return n < 0 ? -1 : (long)(n > 1000000000 ? 1000000000 : n);
}

json_object *llmux__mock_jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

long llmux__mock_inputs(json_object *input, int *bad_item)
{
    size_t i, n;

    *bad_item = 0;
    if (input && json_object_is_type(input, json_type_string))
        return 1;
    if (!input || !json_object_is_type(input, json_type_array))
        return -1;
    n = json_object_array_length(input);
    for (i = 0; i < n; i++) {
        if (!json_object_is_type(json_object_array_get_idx(input, i),
                                 json_type_string)) {
            *bad_item = 1;
            return -1;
        }
    }
    return (long)n;
}

const char *llmux__mock_input_text(json_object *input, size_t i, size_t *len)
{
    json_object *s = json_object_is_type(input, json_type_string)
                         ? input
                         : json_object_array_get_idx(input, i);

    *len = (size_t)json_object_get_string_len(s);
    return json_object_get_string(s);
}

const char *llmux__mock_bearer(const mock_ctx *ctx)
{
    const char *h = llmux_mock_record_header(ctx->rec, "Authorization");
    const char *key;

    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return NULL;
    key = h + 7;
    while (*key == ' ')
        key++;
    return *key ? key : NULL;
}

void llmux__mock_sse_error(mock_ctx *ctx, const char *message, const char *type)
{
    json_object *root = json_object_new_object();
    json_object *err = json_object_new_object();

    json_object_object_add(
        err, "message",
        llmux__mock_jstr(message ? message : "mock stream error"));
    json_object_object_add(err, "type", llmux__mock_jstr(type));
    json_object_object_add(err, "param", NULL);
    json_object_object_add(err, "code", NULL);
    json_object_object_add(root, "error", err);
    llmux__mock_sse_json(ctx->reply, root);
}

int llmux__mock_json_mode(json_object *req)
{
    const char *t =
        llmux__mock_str(llmux__mock_get(req, "response_format"), "type");

    return t &&
           (strcmp(t, "json_object") == 0 || strcmp(t, "json_schema") == 0);
}

int llmux__mock_path_ends(const mock_ctx *ctx, const char *suffix)
{
    size_t pl = strlen(ctx->path), sl = strlen(suffix);

    return pl >= sl && strcmp(ctx->path + pl - sl, suffix) == 0;
}

json_object *llmux__mock_embedding_json(const char *s, size_t len)
{
    json_object *vec = json_object_new_array();
    double v[MOCK_EMBED_DIM];
    int k;

    llmux__mock_embedding(s, len, v);
    for (k = 0; k < MOCK_EMBED_DIM; k++) {
        char num[32], *c, *o = num;
        snprintf(num, sizeof(num), "%.6f", v[k]);
        /* a decimal comma when a test runs under such a locale (a radix
         * of several bytes becomes one '.') */
        for (c = num; *c; c++) {
            if (*c == '-' || (*c >= '0' && *c <= '9'))
                *o++ = *c;
            else if (o == num || o[-1] != '.')
                *o++ = '.';
        }
        *o = '\0';
        json_object_array_add(vec, json_object_new_double_s(v[k], num));
    }
    return vec;
}

void llmux__mock_content_text(json_object *content, mock_buf *out)
{
    size_t i, n;

    if (!content)
        return;
    if (json_object_is_type(content, json_type_string)) {
        llmux__mock_buf_add(out, json_object_get_string(content),
                            (size_t)json_object_get_string_len(content));
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(content, i);
        const char *type = llmux__mock_str(part, "type");
        const char *text = llmux__mock_str(part, "text");
        if (text && (!type || strcmp(type, "text") == 0))
            llmux__mock_buf_adds(out, text);
    }
}

void llmux__mock_splice_x(mock_reply *r, const char *mark, size_t n)
{
    mock_buf *b = &r->body, out = {0};
    const char *text = b->data ? b->data : "", *at = strstr(text, mark);
    size_t head, left = n;
    char xs[4096];

    if (!at) {
        r->oom = 1;
        return;
    }
    head = (size_t)(at - text) + strlen(mark) - 1; /* before the last '"' */
    memset(xs, 'x', sizeof(xs));
    llmux__mock_buf_add(&out, text, head);
    while (left) {
        size_t k = left < sizeof(xs) ? left : sizeof(xs);
        llmux__mock_buf_add(&out, xs, k);
        left -= k;
    }
    llmux__mock_buf_add(&out, text + head, b->len - head);
    llmux__mock_buf_free(b);
    *b = out;
}
