/*
 * providers/common/ojob.c: OpenAI's Batch API for the job hooks, and the
 * pieces other batch APIs share (ojob.h). Shapes: ../shared/design/WIRE.md
 * section 8.2 (OpenAI's file and batch objects, its states validating,
 * in_progress, finalizing, completed, failed, expired, cancelling,
 * cancelled).
 */
#include <stdio.h>
#include <string.h>

#include "ojob.h"
#include "pjson.h"

#define MAX_ID 256

int llmux_ojob_check_id(const llmux_host *h, const char *name, const char *id)
{
    size_t i, n = id ? strlen(id) : 0;
    for (i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            break;
    }
    if (n && i == n && n <= MAX_ID && strcmp(id, ".") && strcmp(id, ".."))
        return 0;
    h->log(LLMUX_LOG_ERROR,
           "%s: \"%.64s\" is not a job or file id (letters, digits, '-', "
           "'_' and '.', at most %d)",
           name, id ? id : "", MAX_ID);
    return LLMUX_EINVAL;
}

int llmux_ojob_parse_text(const char *s, size_t n, json_object **out)
{
    json_tokener *tok = llmux_pj_tok_take(32);
    int rc;
    *out = NULL;
    if (!tok)
        return LLMUX_ENOMEM;
    rc = llmux_pj_parse(tok, s, n, out);
    llmux_pj_tok_give(tok, 32);
    return rc;
}

int llmux_ojob_parse(const llmux_host *h, const char *name,
                     const llmux_http_response *resp, llmux_out *out,
                     json_object **root)
{
    int rc = llmux_ojob_parse_text(resp->body, resp->body_len, root);
    if (rc == LLMUX_ENOMEM) {
        h->set_error(out, LLMUX_ENOMEM, "%s: out of memory", name);
        return rc;
    }
    if (rc || !json_object_is_type(*root, json_type_object)) {
        json_object_put(*root);
        *root = NULL;
        return llmux_pj_proto(h, out, name, "the job answer is not an object",
                              resp->body, resp->body_len);
    }
    return 0;
}

int llmux_ojob_str(const llmux_host *h, llmux_out *out, int field,
                   json_object *o, const char *key)
{
    size_t n;
    const char *s = llmux_pj_get_str(o, key, &n);
    return s ? h->job_str(out, field, s, n) : 0;
}

int llmux_ojob_int(const llmux_host *h, llmux_out *out, int field,
                   json_object *o, const char *key)
{
    int64_t v;
    return llmux_pj_as_int(llmux_pj_get(o, key), &v) ? h->job_int(out, field, v)
                                                     : 0;
}

int llmux_ojob_lines(const char *s, size_t len,
                     int (*fn)(void *ud, size_t no, const char *line, size_t n),
                     void *ud)
{
    const char *p = s, *end = s + len;
    size_t no = 0;
    int rc = 0;
    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        no++;
        if (llmux_pj_trim(p, &n) && n)
            rc = fn(ud, no, p, (size_t)(e - p));
        p = e + 1;
    }
    return rc;
}

int llmux_ojob_upload(const llmux_host *h, llmux_http_request *http,
                      const char *path, const char *data, size_t len)
{
    llmux_form_part parts[2];
    memset(parts, 0, sizeof parts);
    parts[0].name = "purpose";
    parts[0].data = "batch";
    parts[0].len = 5;
    parts[1].name = "file";
    parts[1].filename = "batch.jsonl";
    parts[1].content_type = "application/jsonl";
    parts[1].data = data;
    parts[1].len = len;
    return h->http_path(http, path) || h->http_form(http, parts, 2)
               ? LLMUX_ENOMEM
               : 0;
}

/* ---- shared steps ----------------------------------------------------------
 */

int llmux_ojob_state(const llmux_ojob_word *map, size_t n, const char *word)
{
    size_t i;
    for (i = 0; word && i < n; i++)
        if (strcmp(word, map[i].word) == 0)
            return map[i].state;
    return LLMUX_JOB_UNKNOWN;
}

int llmux_ojob_id_step(const llmux_host *h, const char *name,
                       const llmux_job_step *s, const char *files,
                       const char *jobs, llmux_http_request *http)
{
    char path[MAX_ID + 128];
    int rc = llmux_ojob_check_id(h, name, s->id);
    if (rc)
        return rc;
    switch (s->step) {
    case LLMUX_JOB_STEP_STATUS:
        snprintf(path, sizeof path, "%s/%s", jobs, s->id);
        break;
    case LLMUX_JOB_STEP_CANCEL:
        snprintf(path, sizeof path, "%s/%s/cancel", jobs, s->id);
        if (h->http_method(http, "POST"))
            return LLMUX_ENOMEM;
        break;
    case LLMUX_JOB_STEP_CONTENT:
        snprintf(path, sizeof path, "%s/%s/content", files, s->id);
        break;
    default:
        h->log(LLMUX_LOG_ERROR, "%s: unknown job step %d", name, s->step);
        return LLMUX_ENOTSUP;
    }
    return h->http_path(http, path) ? LLMUX_ENOMEM : 0;
}

int llmux_ojob_metadata(const llmux_host *h, const char *name,
                        const llmux_job_step *s, json_object *body)
{
    json_tokener *tok = NULL;
    json_object *meta = NULL;
    int rc;
    if (!s->metadata_json)
        return 0;
    rc = llmux_pj_user_json(h, name, &tok, 8, s->metadata_json, "metadata",
                            &meta);
    llmux_pj_tok_give(tok, 8);
    if (rc || !meta)
        return rc;
    return llmux_pj_set(body, "metadata", meta); /* takes meta */
}

int llmux_ojob_decode_upload(const llmux_host *h, const char *name,
                             const llmux_http_response *resp, llmux_out *out)
{
    json_object *root;
    int rc = llmux_ojob_parse(h, name, resp, out, &root);
    if (rc)
        return rc;
    if (!llmux_pj_get_str(root, "id", NULL))
        rc = llmux_pj_proto(h, out, name, "the uploaded file has no id",
                            resp->body, resp->body_len);
    else
        rc = llmux_ojob_str(h, out, LLMUX_JF_INPUT_FILE, root, "id");
    json_object_put(root);
    return rc;
}

/* ---- OpenAI ----------------------------------------------------------------
 */

static int openai_create(const llmux_host *h, const char *name,
                         const llmux_job_step *s, llmux_http_request *http)
{
    json_object *body = json_object_new_object();
    int rc = body ? llmux_ojob_metadata(h, name, s, body) : LLMUX_ENOMEM;
    if (!rc &&
        (llmux_pj_set(body, "input_file_id", json_object_new_string(s->id)) ||
         llmux_pj_set(body, "endpoint", json_object_new_string(s->endpoint)) ||
         llmux_pj_set(body, "completion_window",
                      json_object_new_string("24h")) ||
         h->http_path(http, "/batches") || llmux_pj_http_json(h, http, body)))
        rc = LLMUX_ENOMEM;
    json_object_put(body);
    return rc;
}

int llmux_ojob_openai_encode(const llmux_host *h, const char *name,
                             const llmux_job_step *s, llmux_http_request *http)
{
    int rc;
    if (s->step != LLMUX_JOB_STEP_UPLOAD && s->step != LLMUX_JOB_STEP_CREATE)
        return llmux_ojob_id_step(h, name, s, "/files", "/batches", http);
    if (s->timeout_hours && s->timeout_hours != 24) {
        h->log(LLMUX_LOG_ERROR,
               "%s: timeout_hours=%d is not supported: OpenAI's batch "
               "window is always 24h",
               name, s->timeout_hours);
        return LLMUX_EINVAL;
    }
    if (!s->endpoint || !*s->endpoint)
        return LLMUX_EINVAL;
    if (s->step == LLMUX_JOB_STEP_UPLOAD)
        return llmux_ojob_upload(h, http, "/files", s->data, s->data_len);
    if ((rc = llmux_ojob_check_id(h, name, s->id)))
        return rc;
    return openai_create(h, name, s, http);
}

static const llmux_ojob_word openai_words[] = {
    {"validating", LLMUX_JOB_VALIDATING},
    {"in_progress", LLMUX_JOB_IN_PROGRESS},
    {"finalizing", LLMUX_JOB_FINALIZING},
    {"completed", LLMUX_JOB_COMPLETED},
    {"failed", LLMUX_JOB_FAILED},
    {"expired", LLMUX_JOB_EXPIRED},
    {"cancelling", LLMUX_JOB_CANCELLING},
    {"cancelled", LLMUX_JOB_CANCELLED}};

/* errors.data[] as "line N: message; ..." */
static int openai_errors(const llmux_host *h, llmux_out *out, json_object *b)
{
    json_object *data = llmux_pj_get(llmux_pj_get(b, "errors"), "data");
    size_t i, n;
    char buf[1024];
    size_t used = 0;
    if (!data || !json_object_is_type(data, json_type_array))
        return 0;
    n = json_object_array_length(data);
    buf[0] = '\0';
    for (i = 0; i < n && used + 1 < sizeof buf; i++) {
        json_object *e = json_object_array_get_idx(data, i);
        const char *msg = llmux_pj_get_str(e, "message", NULL);
        int64_t line;
        int k;
        if (llmux_pj_as_int(llmux_pj_get(e, "line"), &line))
            k = snprintf(buf + used, sizeof buf - used, "%sline %lld: %s",
                         used ? "; " : "", (long long)line, msg ? msg : "?");
        else
            k = snprintf(buf + used, sizeof buf - used, "%s%s",
                         used ? "; " : "", msg ? msg : "?");
        if (k < 0)
            break;
        used +=
            (size_t)k < sizeof buf - used ? (size_t)k : sizeof buf - used - 1;
    }
    return used ? h->job_str(out, LLMUX_JF_ERRORS, buf, used) : 0;
}

static int openai_batch(const llmux_host *h, llmux_out *out, json_object *b)
{
    static const char *const ends[] = {"completed_at", "failed_at",
                                       "expired_at", "cancelled_at"};
    json_object *counts = llmux_pj_get(b, "request_counts");
    const char *st = llmux_pj_get_str(b, "status", NULL);
    size_t i;
    int rc =
        llmux_ojob_str(h, out, LLMUX_JF_ID, b, "id") ||
        llmux_ojob_str(h, out, LLMUX_JF_STATE_RAW, b, "status") ||
        h->job_int(out, LLMUX_JF_STATE,
                   llmux_ojob_state(
                       openai_words,
                       sizeof openai_words / sizeof openai_words[0], st)) ||
        llmux_ojob_str(h, out, LLMUX_JF_INPUT_FILE, b, "input_file_id") ||
        llmux_ojob_str(h, out, LLMUX_JF_OUTPUT_FILE, b, "output_file_id") ||
        llmux_ojob_str(h, out, LLMUX_JF_ERROR_FILE, b, "error_file_id") ||
        llmux_ojob_str(h, out, LLMUX_JF_ENDPOINT, b, "endpoint") ||
        llmux_ojob_str(h, out, LLMUX_JF_MODEL, b, "model") ||
        llmux_ojob_int(h, out, LLMUX_JF_CREATED, b, "created_at") ||
        llmux_ojob_int(h, out, LLMUX_JF_TOTAL, counts, "total") ||
        llmux_ojob_int(h, out, LLMUX_JF_COMPLETED, counts, "completed") ||
        llmux_ojob_int(h, out, LLMUX_JF_FAILED, counts, "failed") ||
        openai_errors(h, out, b);
    for (i = 0; !rc && i < sizeof ends / sizeof ends[0]; i++)
        if (llmux_pj_get(b, ends[i]))
            rc = llmux_ojob_int(h, out, LLMUX_JF_FINISHED, b, ends[i]);
    return rc ? LLMUX_ENOMEM : 0;
}

int llmux_ojob_openai_decode(const llmux_host *h, const char *name,
                             const llmux_job_step *s,
                             const llmux_http_response *resp, llmux_out *out)
{
    json_object *root;
    int rc;
    if (s->step == LLMUX_JOB_STEP_CONTENT) /* already OpenAI's lines */
        return h->job_str(out, LLMUX_JF_CONTENT, resp->body, resp->body_len);
    if (s->step == LLMUX_JOB_STEP_UPLOAD)
        return llmux_ojob_decode_upload(h, name, resp, out);
    if ((rc = llmux_ojob_parse(h, name, resp, out, &root)))
        return rc;
    if (!llmux_pj_get_str(root, "id", NULL) ||
        !llmux_pj_get_str(root, "status", NULL)) {
        rc = llmux_pj_proto(h, out, name, "the batch has no id or status",
                            resp->body, resp->body_len);
    } else {
        rc = openai_batch(h, out, root);
    }
    json_object_put(root);
    return rc;
}
