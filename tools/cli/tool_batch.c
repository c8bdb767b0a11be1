/*
 * tools/cli/tool_batch.c: batch: a request per input line, run as a
 * pipeline: lines are read as requests finish (a window of --concurrency
 * in flight), each result is written as one whole line as soon as it is
 * known (or in input order with --ordered), so memory stays bounded
 * however long the input is. Interruptions (SIGINT, SIGTERM) drain what
 * is in flight and lose nothing that finished; --resume continues a job
 * from its output file; --shard splits a job over machines.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "cli.h"

/* The longest input line taken; a longer one is that line's error. */
#define MAX_LINE (16u << 20)
/* Progress redraws at most this often (ms). */
#define PROGRESS_MS 100

/* What the input's lines are, decided by its first non-empty line. */
typedef enum batch_fmt {
    FMT_UNKNOWN,
    FMT_PROMPT, /* a prompt per line */
    FMT_JSONL,  /* a chat request JSON per line (--jsonl) */
    FMT_OPENAI  /* OpenAI Batch API input lines */
} batch_fmt;

/* ---- a growing string ---------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

/* Room for n more bytes and a NUL. */
static void sb_room(sbuf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
}

static void sb_add(sbuf *b, const char *s, size_t n)
{
    sb_room(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) LLMUX_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    sb_room(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_put(void *b, const char *s, size_t n)
{
    sb_add(b, s, n);
}

/* A JSON string as put_json_str() writes it. */
static void sb_json_str(sbuf *b, const char *s)
{
    json_str_to(sb_put, b, s);
}

/* ---- ids: the shard hash and the set of finished ones ---------------------
 */

/* FNV-1a 64 of the bytes of `s`: fixed and portable, so every machine
 * running --shard agrees on which lines are whose. */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/*
 * The custom_ids that already have a success (--resume), kept as 64-bit
 * hashes in an open-addressing table: 16 bytes or less per id, whatever
 * its length. Two different ids share a hash with odds of about n^2/2^65
 * (3e-8 for a million ids).
 */
typedef struct idset {
    uint64_t *slot; /* 0: empty */
    size_t cap, n;
} idset;

static uint64_t id_key(const char *id)
{
    /* splitmix64's finalizer: FNV's low bits also pick shards */
    uint64_t z = fnv1a64(id) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z ? z : 1;
}

static int idset_has(const idset *s, const char *id)
{
    uint64_t k = id_key(id);
    size_t i;
    if (!s->cap)
        return 0;
    for (i = (size_t)k & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (s->slot[i] == k)
            return 1;
    return 0;
}

static void idset_put_key(idset *s, uint64_t k)
{
    size_t i = (size_t)k & (s->cap - 1);
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (s->slot[i] == k)
            return;
    s->slot[i] = k;
    s->n++;
}

static void idset_add(idset *s, const char *id)
{
    if ((s->n + 1) * 4 > s->cap * 3) { /* grow at 3/4 full */
        idset old = *s;
        size_t i;
        s->cap = old.cap ? old.cap * 2 : 1024;
        s->slot = xmalloc(s->cap * sizeof *s->slot);
        memset(s->slot, 0, s->cap * sizeof *s->slot);
        s->n = 0;
        for (i = 0; i < old.cap; i++)
            if (old.slot[i])
                idset_put_key(s, old.slot[i]);
        free(old.slot);
    }
    idset_put_key(s, id_key(id));
}

/* ---- the input, a line at a time ----------------------------------------- */

/*
 * Reads lines from a descriptor without ever holding more than the lines
 * not taken yet. A regular file is read when a line is wanted; a pipe or
 * terminal only when the loop says it is readable (uv_poll), so waiting
 * for input never stops the requests in flight or the signal handlers.
 */
typedef struct reader {
    int fd;
    int polled; /* read only when readable: `poll` is set up */
    int polling;
    int readable; /* the poll said so since the last read */
    uv_poll_t poll;
    char *buf;
    size_t start, end, cap;
    int eof, err; /* err: errno of a failed read */
    int skipping; /* dropping the rest of a line longer than MAX_LINE */
    long line;    /* lines taken so far */
} reader;

/* Reads once into the buffer (at most what is there: never blocks on a
 * polled descriptor that is readable). */
static void rd_fill(reader *rd)
{
    ssize_t n;
    if (rd->start && rd->start == rd->end)
        rd->start = rd->end = 0;
    if (rd->end == rd->cap && rd->start) {
        memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
        rd->end -= rd->start;
        rd->start = 0;
    }
    if (rd->end == rd->cap) {
        rd->cap = rd->cap ? rd->cap * 2 : 65536;
        rd->buf = xrealloc(rd->buf, rd->cap + 1);
    }
    do
        n = read(rd->fd, rd->buf + rd->end, rd->cap - rd->end);
    while (n < 0 && errno == EINTR);
    if (n < 0 && rd->polled && (errno == EAGAIN || errno == EWOULDBLOCK))
        return; /* made non-blocking by another program: poll again */
    if (n < 0) {
        rd->err = errno;
        rd->eof = 1;
    } else if (n == 0)
        rd->eof = 1;
    else
        rd->end += (size_t)n;
}

/*
 * The next line (NUL-terminated in the buffer, its '\n' and a '\r' before
 * it removed; valid until the next call): 1 with *s and *len set, with
 * *too_long when it was longer than MAX_LINE (then *s is empty); 0 when
 * a polled descriptor has no whole line and was not readable since the
 * last read; -1 at the end of the input.
 */
static int rd_next(reader *rd, char **s, size_t *len, int *too_long)
{
    for (;;) {
        char *b = rd->buf + rd->start;
        size_t avail = rd->end - rd->start;
        char *nl = avail ? memchr(b, '\n', avail) : NULL;
        if (nl || (rd->eof && (avail || rd->skipping))) {
            size_t n = nl ? (size_t)(nl - b) : avail;
            rd->start += nl ? n + 1 : n;
            rd->line++;
            *too_long = rd->skipping;
            rd->skipping = 0;
            if (*too_long)
                n = 0;
            if (n && b[n - 1] == '\r')
                n--;
            if (rd->buf)
                b[n] = '\0';
            *s = rd->buf ? b : (char *)"";
            *len = n;
            return 1;
        }
        if (rd->eof)
            return -1;
        if (avail >= MAX_LINE) { /* keep nothing of a line too long */
            rd->skipping = 1;
            rd->start = rd->end = 0;
        }
        if (rd->polled && !rd->readable)
            return 0;
        rd->readable = 0;
        rd_fill(rd);
    }
}

/* ---- the run ------------------------------------------------------------- */

struct brun;

/* A request in flight. */
typedef struct job {
    struct brun *r;
    llmux_request *req; /* valid until its done callback returns */
    size_t seq;         /* its place among the lines written */
    long line, index;
    char *id; /* custom_id (owned), for OpenAI Batch lines */
    struct job *prev, *next;
} job;

/* A result of --ordered that finished without a line (cancelled). */
static char no_line[1];

typedef struct brun {
    cli *c;
    batch_fmt fmt;
    uv_loop_t loop;
    int loop_ok; /* `loop` and the handles below are initialised */
    llmux_client *cl;
    reader in;
    int out_fd;
    const char *out_name; /* -o FILE, or NULL for stdout */
    int out_err;          /* errno of a failed write */
    idset done;           /* --resume: ids with a success */
    size_t window, in_flight;
    job *jobs; /* in flight */
    /* --ordered: results waiting for those before them */
    char **ring;
    size_t ring_cap;
    size_t seq_next, seq_out;
    long index; /* non-empty lines so far */
    uint64_t n_ok, n_failed, n_resumed, n_other_shard, n_canceled;
    long total_lines; /* of the input file, -1 when unknown */
    int stopping;     /* take no more lines */
    int hard_cancel;  /* cancelled requests get no line */
    int signals;
    int fail_fast_hit;
    int fatal;      /* an exit status that ends the run */
    int first_fail; /* exit status of the first failure in input order */
    size_t first_fail_seq;
    int pumping;
    uint64_t t0;
    int progress_on, progress_drawn;
    int out_tty; /* results go to the terminal the progress is on */
    uv_signal_t sig_int, sig_term;
    uv_timer_t progress;
    unsigned run_tag; /* makes the "id" of output lines unique per run */
    sbuf sb;
} brun;

static void pump(brun *r);

/* Writes one line whole: one write() of it (O_APPEND with -o), so a
 * crash leaves at most a cut last line, and lines from several
 * processes appending to one file never interleave. */
static void write_line(brun *r, const char *s, size_t n)
{
    if (r->progress_drawn && r->out_tty) { /* not into the progress line */
        fputs("\r\033[K", stderr);
        r->progress_drawn = 0;
    }
    while (n && !r->out_err) {
        ssize_t w = write(r->out_fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r->out_err = w < 0 ? errno : EIO;
            break;
        }
        s += w;
        n -= (size_t)w;
    }
    if (r->out_err && !r->stopping) {
        /* nobody can read what follows: stop, and cancel what runs */
        job *j;
        r->stopping = 1;
        r->hard_cancel = 1;
        for (j = r->jobs; j; j = j->next)
            llmux_request_cancel(j->req);
    }
}

/* Writes what --ordered can write now, in input order. */
static void flush_ring(brun *r)
{
    while (r->seq_out < r->seq_next) {
        char **slot = &r->ring[r->seq_out % r->ring_cap];
        if (!*slot)
            break;
        if (*slot != no_line) {
            write_line(r, *slot, strlen(*slot));
            free(*slot);
        }
        *slot = NULL;
        r->seq_out++;
    }
}

/* The line of result `seq` (text NULL: none, a cancelled request). */
static void emit(brun *r, size_t seq, sbuf *line)
{
    if (!r->ring) {
        if (line)
            write_line(r, line->p, line->len);
        return;
    }
    if (line) {
        char *copy = xmalloc(line->len + 1);
        memcpy(copy, line->p, line->len + 1);
        r->ring[seq % r->ring_cap] = copy;
    } else
        r->ring[seq % r->ring_cap] = no_line;
    flush_ring(r);
}

/* Records a failure's exit status when it is the first in input order. */
static void note_failure(brun *r, size_t seq, int code)
{
    r->n_failed++;
    if (!r->first_fail || seq < r->first_fail_seq) {
        r->first_fail = exit_status(code);
        r->first_fail_seq = seq;
    }
}

/* ,"name":"value" with the command line's secrets masked, when set. */
static void sb_error_field(brun *r, const char *name, const char *value)
{
    char *v;
    if (!value || !*value)
        return;
    v = scrubbed(r->c, value);
    sb_printf(&r->sb, ",\"%s\":", name);
    sb_json_str(&r->sb, v);
    free(v);
}

/*
 * Renders the result line into r->sb: `res` the answer or the error
 * (NULL for a line refused before any request), `code` 0 or the error,
 * `msg` the refusal's text (or NULL), `ecode` an OpenAI Batch error code
 * for lines refused as lines (or NULL: the llmux code's name).
 */
static void render(brun *r, long line, long index, const char *id, int code,
                   llmux_response *res, const char *msg, const char *ecode)
{
    sbuf *b = &r->sb;
    const llmux_error *e = res ? llmux_response_error(res) : NULL;
    char *m = NULL;
    b->len = 0;
    if (!code && res && e)
        code = e->code;
    if (code)
        m = scrubbed(r->c, msg ? msg
                           : e && e->message && *e->message
                               ? e->message
                               : llmux_strerror(code));
    if (r->fmt == FMT_OPENAI) {
        sb_printf(b,
                  "{\"id\":\"batch_req_%08x%010ld\",\"custom_id\":", r->run_tag,
                  line);
        sb_json_str(b, id);
        if (!code || (e && e->http_status >= 400)) {
            /* an answer, or the provider's HTTP refusal: its body */
            char *j = llmux_response_to_json(res);
            long st = llmux_response_http_status(res);
            if (!j)
                die_oom();
            sb_printf(b, ",\"response\":{\"status_code\":%ld,", st ? st : 200);
            sb_puts(b, "\"request_id\":null,\"body\":");
            if (code) { /* messages from providers may echo keys */
                char *s = scrubbed(r->c, j);
                sb_puts(b, s);
                free(s);
            } else
                sb_puts(b, j);
            sb_puts(b, "},\"error\":null}\n");
            llmux_free(j);
        } else {
            sb_puts(b, ",\"response\":null,\"error\":{\"code\":");
            sb_json_str(b, ecode ? ecode : llmux_err_name(code));
            sb_puts(b, ",\"message\":");
            sb_json_str(b, m);
            sb_puts(b, "}}\n");
        }
        free(m);
        return;
    }
    sb_printf(b, "{\"index\":%ld,\"line\":%ld,", index, line);
    if (!code) {
        char *j = llmux_response_to_json(res);
        if (!j)
            die_oom();
        sb_puts(b, "\"status\":\"ok\",");
        if (llmux_response_fallback(res) > 0)
            sb_printf(b, "\"fallback\":%d,", llmux_response_fallback(res));
        sb_puts(b, "\"response\":");
        sb_puts(b, j);
        sb_puts(b, "}\n");
        llmux_free(j);
        return;
    }
    sb_printf(b, "\"status\":\"error\",\"error\":{\"code\":\"%s\",\"message\":",
              llmux_err_name(code));
    sb_json_str(b, m);
    free(m);
    if (e && e->http_status)
        sb_printf(b, ",\"http_status\":%ld", e->http_status);
    if (e && e->provider && *e->provider) {
        sb_puts(b, ",\"provider\":");
        sb_json_str(b, e->provider);
    }
    sb_error_field(r, "type", e ? e->type : NULL);
    sb_error_field(r, "provider_code", e ? e->provider_code : NULL);
    sb_error_field(r, "param", e ? e->param : NULL);
    if (res)
        sb_printf(b, ",\"attempts\":%d", llmux_response_attempts(res));
    sb_puts(b, "}}\n");
}

/* A line refused before any request: its error line. */
static void refuse_line(brun *r, long line, long index, const char *id,
                        int code, const char *msg, const char *ecode)
{
    size_t seq = r->seq_next++;
    render(r, line, index, id, code, NULL, msg, ecode);
    note_failure(r, seq, code);
    emit(r, seq, &r->sb);
}

/* Cancels every request in flight. */
static void cancel_all(brun *r)
{
    job *j;
    for (j = r->jobs; j; j = j->next)
        llmux_request_cancel(j->req);
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    job *j = ud;
    brun *r = j->r;
    char idbuf[24];
    (void)req;
    if (j->prev)
        j->prev->next = j->next;
    else
        r->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    r->in_flight--;
    if (status == LLMUX_ECANCELED && r->hard_cancel) {
        /* not finished: no line, so --resume runs it again */
        r->n_canceled++;
        emit(r, j->seq, NULL);
    } else {
        snprintf(idbuf, sizeof idbuf, "%ld", j->line);
        render(r, j->line, j->index, j->id ? j->id : idbuf, status, res, NULL,
               NULL);
        if (status)
            note_failure(r, j->seq, status);
        else
            r->n_ok++;
        emit(r, j->seq, &r->sb);
        if (status && r->c->fail_fast && !r->fail_fast_hit) {
            r->fail_fast_hit = 1;
            cancel_all(r);
        }
    }
    free(j->id);
    free(j);
    pump(r);
}

/* The op of an OpenAI Batch line's "url", or -1. */
static int url_op(const char *url)
{
    if (!strcmp(url, "/v1/chat/completions"))
        return LLMUX_OP_CHAT;
    if (!strcmp(url, "/v1/completions"))
        return LLMUX_OP_COMPLETE;
    if (!strcmp(url, "/v1/embeddings"))
        return LLMUX_OP_EMBED;
    return -1;
}

/* A plain model name: what may follow -m's provider; never a config
 * string's options (';', '='), spaces or control characters. */
static int plain_model(const char *m)
{
    size_t n = strlen(m);
    if (!n || n > 256)
        return 0;
    for (; *m; m++) {
        unsigned char ch = (unsigned char)*m;
        if (ch <= ' ' || ch == 0x7f || ch == ';' || ch == '=' || ch == '#' ||
            ch == '{' || ch == '}' || ch == '"' || ch == '\\')
            return 0;
    }
    return 1;
}

/* Is `j` an OpenAI Batch input line (an object with a "body" object and
 * "url" or "custom_id")? */
static int is_batch_obj(json_object *j)
{
    json_object *b;
    return j && json_object_is_type(j, json_type_object) &&
           json_object_object_get_ex(j, "body", &b) &&
           json_object_is_type(b, json_type_object) &&
           (json_object_object_get_ex(j, "url", NULL) ||
            json_object_object_get_ex(j, "custom_id", NULL));
}

static json_object *parse_line(const char *s, size_t len)
{
    json_tokener *t = json_tokener_new();
    json_object *j;
    if (!t)
        die_oom();
    j = json_tokener_parse_ex(t, s, (int)len);
    if (j && t->char_offset != (int)len) { /* trailing garbage */
        size_t k;
        for (k = (size_t)t->char_offset; k < len; k++)
            if (s[k] != ' ' && s[k] != '\t')
                break;
        if (k < len) {
            json_object_put(j);
            j = NULL;
        }
    }
    json_tokener_free(t);
    return j;
}

/*
 * Builds the request of an OpenAI Batch line. Returns 0 with *out, or
 * sets *msg (static or in `mb`) and *ecode for a line refused.
 */
static int batch_request(brun *r, json_object *j, llmux_request **out, char *mb,
                         size_t mbl, const char **msg, const char **ecode)
{
    json_object *v, *body = NULL, *model = NULL;
    const char *url, *body_s;
    int op, rc;
    *out = NULL;
    if (json_object_object_get_ex(j, "method", &v) &&
        !(json_object_is_type(v, json_type_string) &&
          !strcmp(json_object_get_string(v), "POST"))) {
        *ecode = "invalid_method";
        *msg = "\"method\" must be \"POST\"";
        return LLMUX_EINVAL;
    }
    if (!json_object_object_get_ex(j, "url", &v) ||
        !json_object_is_type(v, json_type_string)) {
        *ecode = "invalid_url";
        *msg = "\"url\" is missing (/v1/chat/completions, /v1/completions "
               "or /v1/embeddings)";
        return LLMUX_EINVAL;
    }
    url = json_object_get_string(v);
    if ((op = url_op(url)) < 0) {
        *ecode = "invalid_url";
        snprintf(mb, mbl,
                 "\"url\" %.200s is not supported (/v1/chat/completions, "
                 "/v1/completions or /v1/embeddings)",
                 url);
        *msg = mb;
        return LLMUX_ENOTSUP;
    }
    json_object_object_get_ex(j, "body", &body);
    body_s = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    if (json_object_object_get_ex(body, "model", &model) &&
        !json_object_is_type(model, json_type_null) && r->c->spec &&
        !(json_object_is_type(model, json_type_string) &&
          plain_model(json_object_get_string(model)))) {
        /* the line picks a model, never options, endpoints or keys */
        *ecode = "invalid_model";
        *msg = "\"body.model\" must be a plain model name (no options; -m "
               "gives the provider and its options)";
        return LLMUX_ECONFIG;
    }
    rc = llmux_request_new_json_op(out, (llmux_op)op, r->c->spec, body_s,
                                   strlen(body_s), 0);
    if (!rc && r->c->spec && model &&
        json_object_is_type(model, json_type_string))
        rc = llmux_request_set_option(*out, "model",
                                      json_object_get_string(model));
    if (rc) {
        const char *em = *out ? llmux_request_errmsg(*out) : "";
        snprintf(mb, mbl, "%s", em && *em ? em : llmux_strerror(rc));
        *msg = mb;
        *ecode = NULL;
        llmux_request_free(*out);
        *out = NULL;
    }
    return rc;
}

/* Takes one non-empty input line: skipped, refused, or submitted. */
static void take_line(brun *r, char *s, size_t len, int too_long)
{
    long line = r->in.line, index = r->index++;
    char idbuf[24], mb[512];
    const char *id = idbuf, *msg = NULL, *ecode = NULL;
    json_object *j = NULL, *v;
    llmux_request *req = NULL;
    int rc = 0, st;
    job *jb;

    snprintf(idbuf, sizeof idbuf, "%ld", line);
    if (too_long) {
        rc = LLMUX_EINVAL;
        ecode = "invalid_json_line";
        msg = "the line is longer than 16 MiB";
    } else if (memchr(s, '\0', len)) {
        rc = LLMUX_EINVAL;
        ecode = "invalid_json_line";
        msg = "the line contains a NUL byte";
    } else if (r->fmt != FMT_PROMPT || s[0] == '{') {
        j = parse_line(s, len);
        if (r->fmt == FMT_UNKNOWN)
            r->fmt = is_batch_obj(j) ? FMT_OPENAI
                     : r->c->jsonl   ? FMT_JSONL
                                     : FMT_PROMPT;
        if (r->fmt == FMT_OPENAI && !is_batch_obj(j)) {
            rc = LLMUX_EINVAL;
            ecode = "invalid_json_line";
            snprintf(mb, sizeof mb, "line %ld: %s", line,
                     j ? "not an OpenAI Batch input line (custom_id, method, "
                         "url, body) like the file's first"
                       : "not valid JSON");
            msg = mb;
        } else if (r->fmt != FMT_OPENAI && is_batch_obj(j)) {
            rc = LLMUX_EINVAL;
            snprintf(mb, sizeof mb,
                     "line %ld: an OpenAI Batch input line in a file of %s",
                     line, r->fmt == FMT_JSONL ? "chat requests" : "prompts");
            msg = mb;
        }
        if (r->fmt == FMT_OPENAI && !rc &&
            json_object_object_get_ex(j, "custom_id", &v) &&
            !json_object_is_type(v, json_type_null)) {
            if (json_object_is_type(v, json_type_string) &&
                json_object_get_string_len(v) > 0)
                id = json_object_get_string(v);
            else {
                rc = LLMUX_EINVAL;
                ecode = "invalid_custom_id";
                msg = "\"custom_id\" must be a non-empty string";
            }
        }
    } else if (r->fmt == FMT_UNKNOWN)
        r->fmt = r->c->jsonl ? FMT_JSONL : FMT_PROMPT;
    if (r->fmt == FMT_UNKNOWN) /* a first line too long or with a NUL */
        r->fmt = r->c->jsonl ? FMT_JSONL : FMT_PROMPT;

    /* --shard I/N: FNV-1a 64 of the custom_id's bytes, mod N */
    if (r->c->shard_n &&
        fnv1a64(id) % (uint64_t)r->c->shard_n != (uint64_t)r->c->shard_i) {
        r->n_other_shard++;
        goto out;
    }
    if (r->done.n && idset_has(&r->done, id)) {
        r->n_resumed++;
        goto out;
    }
    if (!rc && r->fail_fast_hit) {
        rc = LLMUX_ECANCELED;
        msg = "not sent: an earlier request failed (--fail-fast)";
    }
    if (!rc) {
        if (r->fmt == FMT_OPENAI)
            rc = batch_request(r, j, &req, mb, sizeof mb, &msg, &ecode);
        else if (r->fmt == FMT_JSONL)
            /* lines often come from other programs: a line's "model"
             * names a provider and model, never endpoints or keys */
            rc = llmux_request_new_json(&req, r->c->spec, s, len);
        else if (!(rc = llmux_request_new(&req, LLMUX_OP_CHAT, r->c->spec)))
            rc = llmux_request_add_message(req, LLMUX_ROLE_USER, s);
        if (rc && r->fmt != FMT_OPENAI) {
            const char *em = req ? llmux_request_errmsg(req) : "";
            snprintf(mb, sizeof mb, "%s", em && *em ? em : llmux_strerror(rc));
            msg = mb;
            llmux_request_free(req);
            req = NULL;
        }
    }
    if (rc) {
        refuse_line(r, line, index, id, rc, msg, ecode);
        goto out;
    }
    /* the command line's settings are the same for every line: one that
     * does not fit is the run's error, not a line's */
    if ((st = apply_opts(r->c, req))) {
        llmux_request_free(req);
        r->fatal = st;
        r->stopping = 1;
        goto out;
    }
    jb = xmalloc(sizeof *jb);
    memset(jb, 0, sizeof *jb);
    jb->r = r;
    jb->req = req;
    jb->line = line;
    jb->index = index;
    if (r->fmt == FMT_OPENAI) {
        size_t n = strlen(id) + 1;
        jb->id = xmalloc(n);
        memcpy(jb->id, id, n);
    }
    if ((rc = llmux_submit(r->cl, req, NULL, on_done, jb))) {
        const char *em = llmux_request_errmsg(req);
        snprintf(mb, sizeof mb, "%s", em && *em ? em : llmux_strerror(rc));
        llmux_request_free(req);
        refuse_line(r, line, index, jb->id ? jb->id : idbuf, rc, mb, NULL);
        free(jb->id);
        free(jb);
        goto out;
    }
    jb->seq = r->seq_next++;
    jb->next = r->jobs;
    if (r->jobs)
        r->jobs->prev = jb;
    r->jobs = jb;
    r->in_flight++;
out:
    json_object_put(j);
}

static void on_readable(uv_poll_t *h, int status, int events);

/* Starts or stops waiting for a polled input to be readable. */
static void want_input(brun *r, int on)
{
    if (!r->in.polled || r->in.polling == on)
        return;
    r->in.polling = on;
    if (on)
        uv_poll_start(&r->in.poll, UV_READABLE, on_readable);
    else
        uv_poll_stop(&r->in.poll);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    brun *r = h->data;
    (void)status; /* an error or a hang-up: the read says which */
    (void)events;
    r->in.readable = 1;
    pump(r);
}

/* Takes lines while there is room: the window of requests in flight and,
 * with --ordered, the results waiting to be written. Waits for a polled
 * input only while it wants a line: a level-triggered poll left on with
 * no room would spin. */
static void pump(brun *r)
{
    int need = 0;
    if (r->pumping)
        return;
    r->pumping = 1;
    while (!r->stopping && r->in_flight < r->window &&
           (!r->ring || r->seq_next - r->seq_out < r->ring_cap)) {
        char *s;
        size_t len;
        int too_long, rc = rd_next(&r->in, &s, &len, &too_long);
        if (rc == 0)
            need = 1;
        if (rc <= 0)
            break;
        if (len || too_long)
            take_line(r, s, len, too_long);
    }
    want_input(r, need && !r->stopping);
    r->pumping = 0;
}

/* Is everything taken and finished? */
static int finished(const brun *r)
{
    if (r->in_flight)
        return 0;
    return r->stopping ||
           (r->in.eof && r->in.start == r->in.end && !r->in.skipping);
}

static void on_signal(uv_signal_t *h, int signum)
{
    brun *r = h->data;
    (void)signum;
    r->signals++;
    r->stopping = 1;
    want_input(r, 0);
    if (r->signals > 1) { /* the second: cancel at once */
        r->hard_cancel = 1;
        cancel_all(r);
    }
}

/* ---- progress and summary ------------------------------------------------ */

static void describe(brun *r, sbuf *b, int final)
{
    llmux_stats st;
    double secs = (double)(uv_hrtime() - r->t0) / 1e9;
    uint64_t done = r->n_ok + r->n_failed;
    double rate = secs > 0 ? (double)done / secs : 0;
    memset(&st, 0, sizeof st);
    st.version = LLMUX_STATS_VERSION;
    llmux_client_stats(r->cl, &st);
    b->len = 0;
    sb_puts(b, "llmux: batch: ");
    if (!final && r->total_lines >= 0)
        sb_printf(b, "%ld/%ld lines, ", r->in.line, r->total_lines);
    sb_printf(b, "%llu done (%llu ok, %llu failed)", (unsigned long long)done,
              (unsigned long long)r->n_ok, (unsigned long long)r->n_failed);
    if (!final)
        sb_printf(b, ", %zu in flight", r->in_flight);
    if (r->n_resumed)
        sb_printf(b, ", %llu already done", (unsigned long long)r->n_resumed);
    if (r->n_other_shard)
        sb_printf(b, ", %llu in other shards",
                  (unsigned long long)r->n_other_shard);
    if (r->n_canceled)
        sb_printf(b, ", %llu cancelled", (unsigned long long)r->n_canceled);
    sb_printf(b, ", %.1f s, %.1f/s", secs, rate);
    if (!final && r->total_lines >= 0 && r->in.line > 0 && secs > 0.5) {
        double eta =
            (double)(r->total_lines - r->in.line) * secs / (double)r->in.line;
        sb_printf(b, ", ETA %ld:%02ld", (long)eta / 60, (long)eta % 60);
    }
    sb_printf(b, ", %llu tokens",
              (unsigned long long)(st.prompt_tokens + st.completion_tokens));
    sb_printf(b, ", $%.6f", llmux_client_spend(r->cl, NULL));
}

static void on_progress(uv_timer_t *h)
{
    brun *r = h->data;
    sbuf b = {0};
    describe(r, &b, 0);
    fprintf(stderr, "\r%s\033[K", b.p);
    fflush(stderr);
    r->progress_drawn = 1;
    free(b.p);
}

/* The lines of a regular file, for done/total (-1 when it cannot say). */
static long count_lines(int fd)
{
    char buf[65536], last = '\n';
    off_t off = 0;
    long n = 0;
    for (;;) {
        char *p;
        ssize_t k = pread(fd, buf, sizeof buf, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        for (p = buf; (p = memchr(p, '\n', (size_t)(buf + k - p))); p++)
            n++;
        last = buf[k - 1];
        off += k;
    }
    return n + (last != '\n');
}

/* ---- --resume: what the output file already has ------------------------- */

/* Is output line `j` a success, and its id? (Both output formats.) */
static const char *success_id(json_object *j, char *buf, size_t n)
{
    json_object *v, *resp, *code;
    if (!json_object_is_type(j, json_type_object))
        return NULL;
    if (json_object_object_get_ex(j, "custom_id", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            (json_object_object_get_ex(j, "error", &code) &&
             !json_object_is_type(code, json_type_null)) ||
            !json_object_object_get_ex(j, "response", &resp) ||
            !json_object_object_get_ex(resp, "status_code", &code) ||
            json_object_get_int(code) < 200 || json_object_get_int(code) > 299)
            return NULL;
        return json_object_get_string(v);
    }
    if (json_object_object_get_ex(j, "status", &v) &&
        json_object_is_type(v, json_type_string) &&
        !strcmp(json_object_get_string(v), "ok") &&
        json_object_object_get_ex(j, "line", &v) &&
        json_object_is_type(v, json_type_int)) {
        snprintf(buf, n, "%lld", (long long)json_object_get_int64(v));
        return buf;
    }
    return NULL;
}

/*
 * Reads -o FILE for --resume: every whole line that records a success
 * adds its id to r->done. A last line without its newline (a crash in
 * the middle of a write) is cut off, so the lines appended next start on
 * a line of their own. Returns 0 or an exit status (message printed).
 */
static int load_done(brun *r, int fd)
{
    reader rd;
    off_t whole = 0;
    int st = 0;
    memset(&rd, 0, sizeof rd);
    rd.fd = fd;
    for (;;) {
        char *s, *nl, buf[24];
        size_t avail;
        rd_fill(&rd);
        if (rd.err) {
            errorf(r->c, "--resume: %s: %s", r->out_name, strerror(rd.err));
            st = EXIT_USAGE;
            break;
        }
        while ((avail = rd.end - rd.start) &&
               (nl = memchr(s = rd.buf + rd.start, '\n', avail))) {
            size_t n = (size_t)(nl - s);
            json_object *j = parse_line(s, n);
            const char *id = j ? success_id(j, buf, sizeof buf) : NULL;
            if (id)
                idset_add(&r->done, id);
            json_object_put(j);
            rd.start += n + 1;
            whole += (off_t)n + 1;
        }
        if (rd.eof)
            break;
    }
    if (!st && rd.end > rd.start && ftruncate(fd, whole) != 0) {
        errorf(r->c, "--resume: %s: %s", r->out_name, strerror(errno));
        st = EXIT_USAGE;
    }
    free(rd.buf);
    return st;
}

/* ---- batch --------------------------------------------------------------- */

/* Opens the input, the output and the client; 0 or an exit status. */
static int batch_open(brun *r)
{
    cli *c = r->c;
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    const char *path = c->n_words ? c->words[0] : "-";
    struct stat sb;
    int rc, st;

    r->in.fd = 0;
    r->out_fd = 1;
    r->total_lines = -1;
    if (strcmp(path, "-") != 0 && (r->in.fd = open(path, O_RDONLY)) < 0) {
        errorf(c, "input: %s: %s", path, strerror(errno));
        r->in.fd = -1;
        return EXIT_USAGE;
    }
    if (c->output) {
        /* a new run starts the file afresh; --resume adds to it */
        r->out_name = c->output;
        r->out_fd =
            open(c->output,
                 O_RDWR | O_CREAT | O_APPEND | (c->resume ? 0 : O_TRUNC), 0644);
        if (r->out_fd < 0) {
            errorf(c, "-o: %s: %s", c->output, strerror(errno));
            return EXIT_USAGE;
        }
        if (c->resume && (st = load_done(r, r->out_fd)))
            return st;
    }
    if (uv_loop_init(&r->loop))
        die_oom();
    r->loop_ok = 1;
    uv_signal_init(&r->loop, &r->sig_int);
    uv_signal_init(&r->loop, &r->sig_term);
    uv_timer_init(&r->loop, &r->progress);
    if (fstat(r->in.fd, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        /* uv_poll_init makes the descriptor non-blocking; a terminal's
         * stdin shares its file description with stdout and stderr (and
         * the shell's): its flags are put back, since a line is read
         * only once poll says it is readable */
        int fl = fcntl(r->in.fd, F_GETFL);
        if (uv_poll_init(&r->loop, &r->in.poll, r->in.fd) == 0) {
            r->in.polled = 1;
            r->in.poll.data = r;
        }
        if (fl != -1)
            fcntl(r->in.fd, F_SETFL, fl);
    }
    r->progress_on = !c->quiet && isatty(2);
    r->out_tty = r->progress_on && r->out_fd == 1 && isatty(1);
    if (r->progress_on && S_ISREG(sb.st_mode))
        r->total_lines = count_lines(r->in.fd);
    if (r->in.fd == 0 && isatty(0))
        fprintf(stderr,
                "llmux: reading the %s from the terminal, one per "
                "line; end them with Ctrl-D\n",
                c->jsonl ? "requests" : "prompts");
    o.loop = &r->loop;
    o.requests_per_minute = (double)c->rpm;
    o.tokens_per_minute = (double)c->tpm;
    cli_credentials(c, &o);
    if ((rc = llmux_client_new(&r->cl, &o))) {
        errorf(c, "batch: %s", llmux_strerror(rc));
        return exit_status(rc);
    }
    r->sig_int.data = r->sig_term.data = r;
    uv_signal_start(&r->sig_int, on_signal, SIGINT);
    uv_signal_start(&r->sig_term, on_signal, SIGTERM);
    r->progress.data = r;
    if (r->progress_on)
        uv_timer_start(&r->progress, on_progress, PROGRESS_MS, PROGRESS_MS);
    return 0;
}

static void on_client_closed(void *ud)
{
    *(int *)ud = 1;
}

/* Closes what batch_open() opened. */
static void batch_close(brun *r)
{
    size_t i;
    if (r->loop_ok) {
        int closed = !r->cl;
        if (r->cl)
            llmux_client_close(r->cl, on_client_closed, &closed);
        uv_close((uv_handle_t *)&r->sig_int, NULL);
        uv_close((uv_handle_t *)&r->sig_term, NULL);
        uv_close((uv_handle_t *)&r->progress, NULL);
        if (r->in.polled)
            uv_close((uv_handle_t *)&r->in.poll, NULL);
        while (!closed)
            uv_run(&r->loop, UV_RUN_ONCE);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
    }
    if (r->in.fd > 0)
        close(r->in.fd);
    if (r->out_fd > 1)
        close(r->out_fd);
    for (i = 0; r->ring && i < r->ring_cap; i++)
        if (r->ring[i] != no_line)
            free(r->ring[i]);
    free(r->ring);
    free(r->in.buf);
    free(r->done.slot);
    free(r->sb.p);
}

static int batch_pipeline(cli *c)
{
    brun r;
    int st;

    memset(&r, 0, sizeof r);
    r.c = c;
    r.window = c->concurrency ? (size_t)c->concurrency : 8;
    r.run_tag = (unsigned)((uv_hrtime() / 1000) ^ ((uint64_t)getpid() << 16));
    if (c->ordered) {
        /* twice the window: a slow request holds back at most this much */
        r.ring_cap = 2 * r.window;
        r.ring = xmalloc(r.ring_cap * sizeof *r.ring);
        memset(r.ring, 0, r.ring_cap * sizeof *r.ring);
    }
    if ((st = batch_open(&r))) {
        batch_close(&r);
        return st;
    }
    r.t0 = uv_hrtime();
    pump(&r);
    while (!finished(&r)) {
        uv_run(&r.loop, UV_RUN_ONCE);
        pump(&r);
    }
    if (r.in.err && !r.fatal) {
        errorf(c, "input: %s: %s", c->n_words ? c->words[0] : "stdin",
               strerror(r.in.err));
        r.fatal = EXIT_USAGE;
    }
    uv_timer_stop(&r.progress);
    if (r.progress_drawn)
        fputs("\r\033[K", stderr);
    if (!c->quiet) {
        sbuf b = {0};
        describe(&r, &b, 1);
        fprintf(stderr, "%s%s\n", b.p,
                r.signals ? "; interrupted: --resume runs the rest" : "");
        free(b.p);
    }
    st = r.signals ? EXIT_INTERRUPTED : r.fatal ? r.fatal : r.first_fail;
    if (r.out_err) {
        if (r.out_name) {
            errorf(c, "-o: %s: %s", r.out_name, strerror(r.out_err));
            st = st ? st : EXIT_TRANSPORT;
        } else if (!g_out_errno)
            g_out_errno = r.out_err; /* main says it, or not for EPIPE */
    }
    batch_close(&r);
    return st;
}

int run_batch(cli *c)
{
    if (!c->help && pbatch_word(c))
        return run_pbatch(c); /* the providers' Batch APIs */
    if (c->provider || c->job_errors || c->json)
        return usage_error(c,
                           "%s is an option of batch "
                           "submit/status/fetch/cancel",
                           c->provider ? "--provider"
                           : c->json   ? "--json"
                                       : "--errors");
    if (c->help) {
        print_cmd_help(cmd_def_of(c->cmd));
        return 0;
    }
    if (!c->spec && !c->jsonl)
        return usage_error(c, "batch: -m SPEC is required");
    if (c->n_words > 1)
        return usage_error(c, "batch: one input FILE at most, got \"%s\" too",
                           c->words[1]);
    if (c->resume && !c->output)
        return usage_error(c, "batch: --resume needs -o FILE (the output to "
                              "continue)");
    note_secrets(c);
    return batch_pipeline(c);
}
