/*
 * mock_batch.c: OpenAI's Batch API and Mistral's batch jobs, with a fast
 * clock.
 *
 * Files: POST .../files (multipart/form-data: purpose=batch and a file
 * part), GET .../files/{id}/content. Jobs: OpenAI's POST /v1/batches, GET
 * /v1/batches/{id}, POST /v1/batches/{id}/cancel; Mistral's POST
 * /v1/batch/jobs, GET /v1/batch/jobs/{id}, POST /v1/batch/jobs/{id}/cancel
 * (shapes: ../shared/design/WIRE.md sections 8.2 and 8.3).
 *
 * A job runs for llmux__mock_batch_ms() from its creation: its first
 * quarter validating (QUEUED), then in_progress (RUNNING), with the
 * completed count growing with the clock; nothing runs in the background:
 * each request reads the clock and moves the job on. When it is due, every
 * input line goes through the protocol's own chat handler (the answers
 * the mock gives to /chat/completions, validation included) and the
 * output and error files are written. A cancel answers the lines due so
 * far (partial results) and the job reads cancelled from then on.
 *
 * Memory is bounded: at most MOCK_STORE_MAX bytes of files and
 * MOCK_STORE_MAX_IDS files and jobs; past that an upload or a create is
 * refused with a 413 that says so.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <uv.h>

#include "mock_internal.h"

#define jget llmux__mock_get
#define jstr llmux__mock_str

typedef struct mfile {
    char *id;
    char *name;
    char *purpose;
    char *data;
    size_t len;
    long created;
    struct mfile *next;
} mfile;

enum { J_RUNNING, J_CANCELLED, J_DONE, J_FAILED };

typedef struct mjob {
    char *id;
    int mistral;
    char *input_file, *endpoint, *model;
    json_object *metadata; /* or NULL */
    uint64_t t0;           /* ms, monotonic */
    long created, finished;
    int state;
    long total, ok, failed;
    char *output_file, *error_file;
    char *errors; /* FAILED: why (the input's first bad line) */
    struct mjob *next;
} mjob;

struct mock_store {
    mfile *files;
    mjob *jobs;
    size_t bytes, ids;
    unsigned long seq;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static long now_s(void)
{
    return (long)time(NULL);
}

static struct mock_store *store_of(mock_ctx *ctx)
{
    struct mock_store **slot = llmux__mock_store_slot(ctx->mock);
    if (!*slot)
        *slot = calloc(1, sizeof **slot);
    return *slot;
}

static void file_free(mfile *f)
{
    free(f->id);
    free(f->name);
    free(f->purpose);
    free(f->data);
    free(f);
}

static void job_free(mjob *j)
{
    free(j->id);
    free(j->input_file);
    free(j->endpoint);
    free(j->model);
    free(j->output_file);
    free(j->error_file);
    free(j->errors);
    if (j->metadata)
        json_object_put(j->metadata);
    free(j);
}

void llmux__mock_store_free(struct mock_store *s)
{
    if (!s)
        return;
    while (s->files) {
        mfile *n = s->files->next;
        file_free(s->files);
        s->files = n;
    }
    while (s->jobs) {
        mjob *n = s->jobs->next;
        job_free(s->jobs);
        s->jobs = n;
    }
    free(s);
}

static int is_mistral(const mock_ctx *ctx)
{
    return ctx->proto == &llmux__mock_mistral;
}

static char *new_id(struct mock_store *s, int mistral, const char *prefix)
{
    s->seq++;
    if (mistral) /* Mistral's ids are UUIDs */
        return llmux__mock_strdupf("6d6f636b-0000-4000-8000-%012lx", s->seq);
    return llmux__mock_strdupf("%s-mock-%lu", prefix, s->seq);
}

static mfile *file_find(struct mock_store *s, const char *id)
{
    mfile *f;
    for (f = s ? s->files : NULL; f; f = f->next)
        if (strcmp(f->id, id) == 0)
            return f;
    return NULL;
}

static mjob *job_find(struct mock_store *s, const char *id)
{
    mjob *j;
    for (j = s ? s->jobs : NULL; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

/* The id segment before `tail` at the end of the path (a copy). */
static char *path_id(const mock_ctx *ctx, const char *tail)
{
    size_t n = strlen(ctx->path) - strlen(tail);
    const char *end = ctx->path + n, *p = end;
    while (p > ctx->path && p[-1] != '/')
        p--;
    return strndup(p, (size_t)(end - p));
}

static void not_found(mock_ctx *ctx, const char *what, const char *id)
{
    char *msg = llmux__mock_strdupf("No %s found with id '%s'.", what, id);
    ctx->proto->error(ctx, 404, "invalid_request_error", NULL, NULL,
                      msg ? msg : "not found");
    free(msg);
}

static void too_big(mock_ctx *ctx)
{
    ctx->proto->error(ctx, 413, "invalid_request_error", NULL, NULL,
                      "mock file store full (llmux-mock keeps at most 64 MiB "
                      "and 4096 files and jobs)");
}

static mfile *file_add(mock_ctx *ctx, struct mock_store *s, const char *name,
                       const char *purpose, const char *data, size_t len)
{
    mfile *f;
    if (s->bytes + len > MOCK_STORE_MAX || s->ids >= MOCK_STORE_MAX_IDS) {
        too_big(ctx);
        return NULL;
    }
    f = calloc(1, sizeof *f);
    if (!f || !(f->id = new_id(s, is_mistral(ctx), "file")) ||
        !(f->name = llmux__mock_strdup(name)) ||
        !(f->purpose = llmux__mock_strdup(purpose)) ||
        !(f->data = malloc(len + 1))) {
        if (f)
            file_free(f);
        ctx->reply->oom = 1;
        return NULL;
    }
    memcpy(f->data, data, len);
    f->data[len] = '\0';
    f->len = len;
    f->created = now_s();
    f->next = s->files;
    s->files = f;
    s->bytes += len;
    s->ids++;
    return f;
}

static json_object *file_json(const mock_ctx *ctx, const mfile *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(f->id));
    json_object_object_add(o, "object", json_object_new_string("file"));
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)f->len));
    json_object_object_add(o, "created_at", json_object_new_int64(f->created));
    json_object_object_add(o, "filename", json_object_new_string(f->name));
    json_object_object_add(o, "purpose", json_object_new_string(f->purpose));
    if (is_mistral(ctx)) {
        json_object_object_add(o, "sample_type",
                               json_object_new_string("batch_request"));
        json_object_object_add(o, "source", json_object_new_string("upload"));
    }
    return o;
}

/* ---- multipart ------------------------------------------------------------
 */

typedef struct mpart {
    char name[64], filename[256];
    const char *data;
    size_t len;
} mpart;

static const char *mem_find(const char *h, size_t n, const char *s, size_t k)
{
    size_t i;
    for (i = 0; k <= n && i + k <= n; i++)
        if (h[i] == s[0] && memcmp(h + i, s, k) == 0)
            return h + i;
    return NULL;
}

/* Parameter `key` ("name") of a Content-Disposition line into out. */
static void disp_param(const char *hdrs, size_t n, const char *key, char *out,
                       size_t cap)
{
    char pat[32];
    const char *p, *q;
    size_t k;
    out[0] = '\0';
    snprintf(pat, sizeof pat, " %s=\"", key);
    if (!(p = mem_find(hdrs, n, pat, strlen(pat))))
        return;
    p += strlen(pat);
    q = memchr(p, '"', n - (size_t)(p - hdrs));
    if (!q)
        return;
    k = (size_t)(q - p) < cap - 1 ? (size_t)(q - p) : cap - 1;
    memcpy(out, p, k);
    out[k] = '\0';
}

/* Splits the multipart body; returns the number of parts (at most max),
 * or -1 when it is not multipart/form-data. */
static int multipart(const mock_ctx *ctx, mpart *parts, int max)
{
    const char *ct = llmux_mock_record_header(ctx->rec, "Content-Type");
    const char *b, *body = ctx->rec->body, *end, *p;
    char delim[128];
    size_t dl;
    int n = 0;
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0 ||
        !(b = strstr(ct, "boundary=")))
        return -1;
    b += 9;
    if (snprintf(delim, sizeof delim, "\r\n--%s", b) >= (int)sizeof delim)
        return -1;
    dl = strlen(delim);
    end = body + ctx->rec->body_len;
    /* the first delimiter has no CRLF in front */
    if ((size_t)(end - body) < dl - 2 || memcmp(body, delim + 2, dl - 2) != 0)
        return -1;
    p = body + dl - 2;
    while (n < max && p + 2 <= end && memcmp(p, "--", 2) != 0) {
        const char *hend, *next;
        if (p + 2 > end || memcmp(p, "\r\n", 2) != 0)
            return -1;
        p += 2;
        if (!(hend = mem_find(p, (size_t)(end - p), "\r\n\r\n", 4)))
            return -1;
        if (!(next = mem_find(hend + 4, (size_t)(end - hend - 4), delim, dl)))
            return -1;
        disp_param(p - 1, (size_t)(hend - p + 1), "name", parts[n].name,
                   sizeof parts[n].name);
        disp_param(p - 1, (size_t)(hend - p + 1), "filename", parts[n].filename,
                   sizeof parts[n].filename);
        parts[n].data = hend + 4;
        parts[n].len = (size_t)(next - hend - 4);
        n++;
        p = next + dl;
    }
    return n;
}

void llmux__mock_file_upload(mock_ctx *ctx)
{
    struct mock_store *s = store_of(ctx);
    mpart parts[8];
    const mpart *file = NULL;
    const char *purpose = NULL;
    mfile *f;
    int i, n = multipart(ctx, parts, 8);
    if (!s) {
        ctx->reply->oom = 1;
        return;
    }
    if (n < 0) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, NULL,
                          "the body must be multipart/form-data (mock)");
        return;
    }
    for (i = 0; i < n; i++) {
        if (strcmp(parts[i].name, "file") == 0 && parts[i].filename[0])
            file = &parts[i];
        else if (strcmp(parts[i].name, "purpose") == 0)
            purpose =
                parts[i].len == 5 && memcmp(parts[i].data, "batch", 5) == 0
                    ? "batch"
                    : "other";
    }
    if (!file || !purpose) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL,
                          file ? "purpose" : "file",
                          file ? "'purpose' is required"
                               : "'file' is required (a file part)");
        return;
    }
    if (strcmp(purpose, "batch") != 0) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "purpose",
                          "llmux-mock keeps only purpose=batch files");
        return;
    }
    if ((f = file_add(ctx, s, file->filename, "batch", file->data, file->len)))
        llmux__mock_reply_json(ctx->reply, 200, file_json(ctx, f));
}

void llmux__mock_file_content(mock_ctx *ctx)
{
    char *id = path_id(ctx, "/content");
    mfile *f = id ? file_find(store_of(ctx), id) : NULL;
    if (!id)
        ctx->reply->oom = 1;
    else if (!f)
        not_found(ctx, "file", id);
    else
        llmux__mock_reply_text(ctx->reply, 200,
                               is_mistral(ctx) ? "application/octet-stream"
                                               : "application/jsonl",
                               f->data, f->len);
    free(id);
}

/* ---- running the lines -----------------------------------------------------
 */

/* The answer the protocol's chat route gives to `body`: status and JSON
 * (or a string when the answer is not JSON), through a context of its
 * own with no fault. */
static json_object *run_line(mock_ctx *ctx, const mjob *j, json_object *body,
                             int *status)
{
    const mock_route *r;
    mock_ctx sub = *ctx;
    mock_reply reply;
    mock_fault nofault;
    json_object *out;
    memset(&reply, 0, sizeof reply);
    llmux__mock_fault_init(&nofault);
    if (j->model && !jget(body, "model"))
        json_object_object_add(body, "model", json_object_new_string(j->model));
    sub.json = body;
    sub.model = jstr(body, "model");
    sub.fault = &nofault;
    sub.reply = &reply;
    sub.path = j->endpoint;
    for (r = ctx->proto->routes; r->method; r++)
        if (strcmp(r->method, "POST") == 0 && !(r->flags & MOCK_ROUTE_ID) &&
            llmux__mock_path_ends(&sub, r->suffix))
            break;
    if (llmux__mock_true(body, "stream")) {
        ctx->proto->error(&sub, 400, "invalid_request_error", NULL, "stream",
                          "stream is not supported in a batch");
    } else if (!r->method) {
        ctx->proto->error(&sub, 404, "invalid_request_error", NULL, NULL,
                          "unknown endpoint");
    } else {
        r->handle(&sub);
    }
    *status = reply.status ? reply.status : 500;
    out = reply.body.data ? json_tokener_parse(reply.body.data) : NULL;
    if (!out)
        out = json_object_new_string(reply.body.data ? reply.body.data : "");
    llmux__mock_reply_clear(&reply);
    llmux__mock_fault_clear(&nofault);
    return out;
}

/* Whether input line `o` has the job's shape: OpenAI's custom_id, method
 * POST, url = the endpoint, body; Mistral's custom_id and body only.
 * NULL, or why not (static). */
static const char *line_bad(const mjob *j, json_object *o)
{
    if (!json_object_is_type(o, json_type_object))
        return "not a JSON object";
    if (!jstr(o, "custom_id"))
        return "no custom_id";
    if (!json_object_is_type(jget(o, "body"), json_type_object))
        return "no body object";
    if (j->mistral) {
        if (json_object_object_length(o) != 2)
            return "a line has custom_id and body only";
        return NULL;
    }
    if (!jstr(o, "method") || strcmp(jstr(o, "method"), "POST") != 0)
        return "method must be POST";
    if (!jstr(o, "url") || strcmp(jstr(o, "url"), j->endpoint) != 0)
        return "url must be the batch's endpoint";
    return NULL;
}

/* Walks the input; calls fn on each line's object (or NULL when it does
 * not parse) up to `max` lines. Returns the number of lines. */
static long each_line(const mfile *f, long max,
                      void (*fn)(void *ud, long i, json_object *o), void *ud)
{
    const char *p = f->data, *end = f->data + f->len;
    long n = 0;
    while (p < end && (max < 0 || n < max)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        const char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < e) {
            if (fn) {
                json_tokener *tok = json_tokener_new();
                json_object *o =
                    tok ? json_tokener_parse_ex(tok, p, (int)(e - p)) : NULL;
                if (tok)
                    json_tokener_free(tok);
                fn(ud, n, o);
                if (o)
                    json_object_put(o);
            }
            n++;
        }
        p = e + 1;
    }
    return n;
}

typedef struct runner {
    mock_ctx *ctx;
    mjob *j;
    mock_buf out, err;
    const char *bad; /* validation: the first bad line's reason */
    long bad_line;
} runner;

static void check_one(void *ud, long i, json_object *o)
{
    runner *r = ud;
    const char *why = line_bad(r->j, o);
    if (why && !r->bad) {
        r->bad = why;
        r->bad_line = i + 1;
    }
}

static void run_one(void *ud, long i, json_object *o)
{
    runner *r = ud;
    json_object *line = json_object_new_object(), *resp, *body, *answer;
    int status = 0;
    const char *text;
    mock_buf *to;
    char id[64];
    snprintf(id, sizeof id,
             r->j->mistral ? "%ld-6d6f636b" : "batch_req_mock_%ld", i);
    json_object_object_add(line, "id", json_object_new_string(id));
    json_object_object_add(line, "custom_id",
                           json_object_new_string(jstr(o, "custom_id")));
    body = json_object_get(jget(o, "body"));
    answer = run_line(r->ctx, r->j, body, &status);
    json_object_put(body);
    resp = json_object_new_object();
    json_object_object_add(resp, "status_code", json_object_new_int(status));
    if (!r->j->mistral) { /* Mistral's lines have no request_id */
        snprintf(id, sizeof id, "req_mock_%ld", i);
        json_object_object_add(resp, "request_id", json_object_new_string(id));
    }
    json_object_object_add(resp, "body", answer);
    json_object_object_add(line, "response", resp);
    json_object_object_add(line, "error", NULL);
    text = json_object_to_json_string_ext(
        line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    to = status >= 200 && status < 300 ? &r->out : &r->err;
    llmux__mock_buf_adds(to, text);
    llmux__mock_buf_adds(to, "\n");
    if (to == &r->out)
        r->j->ok++;
    else
        r->j->failed++;
    json_object_put(line);
}

/* Answers the first `upto` lines (-1: all) into the output and error
 * files. */
static void run_job(mock_ctx *ctx, mjob *j, long upto)
{
    struct mock_store *s = store_of(ctx);
    mfile *in = file_find(s, j->input_file), *f;
    runner r;
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.j = j;
    j->ok = j->failed = 0;
    if (in)
        each_line(in, upto, run_one, &r);
    if (r.out.oom || r.err.oom) {
        ctx->reply->oom = 1;
    } else {
        if (r.out.len && (f = file_add(ctx, s, "batch_output.jsonl",
                                       "batch_output", r.out.data, r.out.len)))
            j->output_file = llmux__mock_strdup(f->id);
        if (r.err.len && (f = file_add(ctx, s, "batch_errors.jsonl",
                                       "batch_output", r.err.data, r.err.len)))
            j->error_file = llmux__mock_strdup(f->id);
    }
    llmux__mock_buf_free(&r.out);
    llmux__mock_buf_free(&r.err);
    j->finished = now_s();
}

/* Moves j on with the clock: due, it runs to completion. */
static void advance(mock_ctx *ctx, mjob *j)
{
    if (j->state == J_RUNNING &&
        now_ms() - j->t0 >= (uint64_t)llmux__mock_batch_ms(ctx->mock)) {
        run_job(ctx, j, -1);
        j->state = J_DONE;
    }
}

/* Lines answered by now, by the clock. */
static long due(mock_ctx *ctx, const mjob *j)
{
    uint64_t ms = (uint64_t)llmux__mock_batch_ms(ctx->mock),
             el = now_ms() - j->t0;
    if (el < ms / 4)
        return 0;
    return el >= ms ? j->total
                    : (long)((double)j->total * (double)el / (double)ms);
}

static const char *state_word(mock_ctx *ctx, const mjob *j, int cancelling)
{
    uint64_t el = now_ms() - j->t0;
    int m = j->mistral;
    switch (j->state) {
    case J_FAILED:
        return m ? "FAILED" : "failed";
    case J_DONE:
        return m ? "SUCCESS" : "completed";
    case J_CANCELLED:
        if (cancelling)
            return m ? "CANCELLATION_REQUESTED" : "cancelling";
        return m ? "CANCELLED" : "cancelled";
    }
    if (el < (uint64_t)llmux__mock_batch_ms(ctx->mock) / 4)
        return m ? "QUEUED" : "validating";
    return m ? "RUNNING" : "in_progress";
}

static json_object *jstr_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *job_json(mock_ctx *ctx, const mjob *j, int cancelling)
{
    json_object *o = json_object_new_object();
    const char *st = state_word(ctx, j, cancelling);
    long ok = j->state == J_RUNNING ? due(ctx, j) : j->ok;
    long failed = j->state == J_RUNNING ? 0 : j->failed;
    json_object_object_add(o, "id", json_object_new_string(j->id));
    json_object_object_add(o, "object", json_object_new_string("batch"));
    json_object_object_add(o, "endpoint", json_object_new_string(j->endpoint));
    json_object_object_add(o, "status", json_object_new_string(st));
    json_object_object_add(o, "created_at", json_object_new_int64(j->created));
    json_object_object_add(o, "metadata",
                           j->metadata ? json_object_get(j->metadata) : NULL);
    if (j->mistral) {
        json_object *files = json_object_new_array();
        json_object *errs = json_object_new_array();
        json_object_array_add(files, json_object_new_string(j->input_file));
        json_object_object_add(o, "input_files", files);
        json_object_object_add(o, "model", jstr_or_null(j->model));
        json_object_object_add(o, "output_file", jstr_or_null(j->output_file));
        json_object_object_add(o, "error_file", jstr_or_null(j->error_file));
        if (j->errors) {
            json_object *e = json_object_new_object();
            json_object_object_add(e, "message",
                                   json_object_new_string(j->errors));
            json_object_object_add(e, "count", json_object_new_int(1));
            json_object_array_add(errs, e);
        }
        json_object_object_add(o, "errors", errs);
        json_object_object_add(o, "total_requests",
                               json_object_new_int64(j->total));
        json_object_object_add(o, "completed_requests",
                               json_object_new_int64(ok + failed));
        json_object_object_add(o, "succeeded_requests",
                               json_object_new_int64(ok));
        json_object_object_add(o, "failed_requests",
                               json_object_new_int64(failed));
        json_object_object_add(o, "completed_at",
                               j->finished && !cancelling
                                   ? json_object_new_int64(j->finished)
                                   : NULL);
    } else {
        json_object *counts = json_object_new_object();
        json_object_object_add(o, "input_file_id",
                               json_object_new_string(j->input_file));
        json_object_object_add(o, "completion_window",
                               json_object_new_string("24h"));
        json_object_object_add(o, "output_file_id",
                               jstr_or_null(j->output_file));
        json_object_object_add(o, "error_file_id", jstr_or_null(j->error_file));
        if (j->errors) {
            json_object *errs = json_object_new_object(),
                        *data = json_object_new_array(),
                        *e = json_object_new_object();
            json_object_object_add(e, "code",
                                   json_object_new_string("invalid_request"));
            json_object_object_add(e, "message",
                                   json_object_new_string(j->errors));
            json_object_array_add(data, e);
            json_object_object_add(errs, "object",
                                   json_object_new_string("list"));
            json_object_object_add(errs, "data", data);
            json_object_object_add(o, "errors", errs);
        }
        json_object_object_add(counts, "total",
                               json_object_new_int64(j->total));
        json_object_object_add(counts, "completed", json_object_new_int64(ok));
        json_object_object_add(counts, "failed", json_object_new_int64(failed));
        json_object_object_add(o, "request_counts", counts);
        if (j->finished && !cancelling)
            json_object_object_add(o,
                                   j->state == J_DONE     ? "completed_at"
                                   : j->state == J_FAILED ? "failed_at"
                                                          : "cancelled_at",
                                   json_object_new_int64(j->finished));
    }
    return o;
}

/* ---- the job routes --------------------------------------------------------
 */

void llmux__mock_batch_create(mock_ctx *ctx)
{
    struct mock_store *s = store_of(ctx);
    json_object *req = ctx->json, *files = jget(req, "input_files");
    const char *fid =
        is_mistral(ctx)
            ? (json_object_is_type(files, json_type_array) &&
                       json_object_array_length(files) == 1
                   ? json_object_get_string(json_object_array_get_idx(files, 0))
                   : NULL)
            : jstr(req, "input_file_id");
    const char *endpoint = jstr(req, "endpoint");
    mfile *in;
    mjob *j;
    runner r;
    if (!s) {
        ctx->reply->oom = 1;
        return;
    }
    if (!fid || !endpoint) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL,
                          fid ? "endpoint" : "input_file",
                          "an input file and an endpoint are required (mock: "
                          "one input file)");
        return;
    }
    if (strcmp(endpoint, "/v1/chat/completions") != 0) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "endpoint",
                          "llmux-mock runs /v1/chat/completions batches only");
        return;
    }
    if (!is_mistral(ctx) && (!jstr(req, "completion_window") ||
                             strcmp(jstr(req, "completion_window"), "24h"))) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL,
                          "completion_window",
                          "completion_window must be \"24h\"");
        return;
    }
    if (is_mistral(ctx) && !jstr(req, "model")) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "model",
                          "model is required for a chat batch job");
        return;
    }
    if (!(in = file_find(s, fid))) {
        not_found(ctx, "file", fid);
        return;
    }
    if (s->ids >= MOCK_STORE_MAX_IDS) {
        too_big(ctx);
        return;
    }
    if (!(j = calloc(1, sizeof *j)) ||
        !(j->id = new_id(s, is_mistral(ctx), "batch")) ||
        !(j->input_file = llmux__mock_strdup(fid)) ||
        !(j->endpoint = llmux__mock_strdup(endpoint)) ||
        (jstr(req, "model") &&
         !(j->model = llmux__mock_strdup(jstr(req, "model"))))) {
        if (j)
            job_free(j);
        ctx->reply->oom = 1;
        return;
    }
    j->mistral = is_mistral(ctx);
    if (json_object_is_type(jget(req, "metadata"), json_type_object))
        j->metadata = json_object_get(jget(req, "metadata"));
    j->t0 = now_ms();
    j->created = now_s();
    /* validation: a bad line fails the whole job, as both providers do */
    memset(&r, 0, sizeof r);
    r.ctx = ctx;
    r.j = j;
    j->total = each_line(in, -1, check_one, &r);
    if (r.bad || !j->total) {
        j->errors = llmux__mock_strdupf("line %ld: %s", r.bad_line,
                                        r.bad ? r.bad : "no requests");
        j->state = J_FAILED;
        j->finished = now_s();
    }
    j->next = s->jobs;
    s->jobs = j;
    s->ids++;
    llmux__mock_reply_json(ctx->reply, 200, job_json(ctx, j, 0));
}

static mjob *job_of(mock_ctx *ctx, const char *tail)
{
    char *id = path_id(ctx, tail);
    mjob *j = id ? job_find(store_of(ctx), id) : NULL;
    if (!id)
        ctx->reply->oom = 1;
    else if (!j)
        not_found(ctx, is_mistral(ctx) ? "batch job" : "batch", id);
    free(id);
    return j;
}

void llmux__mock_batch_get(mock_ctx *ctx)
{
    mjob *j = job_of(ctx, "");
    if (!j)
        return;
    advance(ctx, j);
    llmux__mock_reply_json(ctx->reply, 200, job_json(ctx, j, 0));
}

void llmux__mock_batch_cancel(mock_ctx *ctx)
{
    mjob *j = job_of(ctx, "/cancel");
    if (!j)
        return;
    advance(ctx, j);
    if (j->state != J_RUNNING) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, NULL,
                          "Cannot cancel a batch that has already ended.");
        return;
    }
    /* the lines due so far are answered: partial results */
    run_job(ctx, j, due(ctx, j));
    j->state = J_CANCELLED;
    llmux__mock_reply_json(ctx->reply, 200, job_json(ctx, j, 1));
}
