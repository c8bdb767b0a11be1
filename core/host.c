/*
 * core/host.c: the plugin boundary as plugins see it, the host table
 * (llmux__host): allocation, logging and where plugin log lines go while
 * the core calls into a plugin, the HTTP request builders (http_*), the
 * output builders (out_*, set_error), which copy what a plugin hands over
 * into the core's response model (response.c), and option lookup. The
 * other half of the boundary, the core calling plugins, is call.c.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>

#include "internal.h"

/* ---- plugin log routing -------------------------------------------------- */

#if defined(__GNUC__)
#define LLMUX__TLS __thread
#else
#define LLMUX__TLS _Thread_local
#endif

static LLMUX__TLS llmux__log_target tl_target;

llmux__log_target llmux__log_target_swap(llmux__log_target t)
{
    llmux__log_target old = tl_target;
    tl_target = t;
    return old;
}

llmux__log_target llmux__log_target_call(char **errmsg, const char *secret)
{
    llmux__log_target t = tl_target; /* the client's hook, if any */
    t.errmsg = errmsg;
    t.secret = secret;
    return llmux__log_target_swap(t);
}

void llmux__vlog_plugin(int level, const char *fmt, va_list ap)
{
    char buf[LLMUX__ERRBUF], *masked = NULL;
    const char *line = buf;
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* a plugin may quote what the server sent back, the key included */
    if (tl_target.secret && *tl_target.secret && strstr(buf, tl_target.secret))
        line = masked = llmux__mask(buf, tl_target.secret);
    if (!line)
        return; /* no memory to mask it: drop the line */
    if (level <= LLMUX_LOG_ERROR && tl_target.errmsg)
        llmux__set_msg(tl_target.errmsg, line);
    if (tl_target.log && level <= tl_target.log_level)
        tl_target.log(level, line, tl_target.log_ud);
    llmux__free(masked);
}

/* The choice out_choice selected, created on first use. */
static struct llmux_choice *cur_choice(llmux_out *o)
{
    return llmux__out_choice(o, o->cur);
}

static int choice_str(llmux_out *o, int field, const char *s, size_t len)
{
    struct llmux_choice *c = cur_choice(o);
    if (!c)
        return LLMUX_ENOMEM;
    switch (field) {
    case LLMUX_F_FINISH_RAW:
        return llmux__set_text(&c->finish_raw, s, len);
    case LLMUX_F_TEXT:
        return llmux__buf_append_utf8(&c->text, s, len);
    case LLMUX_F_REASONING:
        return llmux__buf_append_utf8(&c->reasoning, s, len);
    default:
        return llmux__buf_append_utf8(&c->refusal, s, len);
    }
}

static int out_str(llmux_out *o, int field, const char *s, size_t len)
{
    if (!o || (!s && len))
        return LLMUX_EINVAL;
    if (!s)
        s = "";
    switch (field) {
    case LLMUX_F_ID:
        return llmux__set_text(&o->id, s, len);
    case LLMUX_F_MODEL:
        return llmux__set_text(&o->model, s, len);
    case LLMUX_F_SYSTEM_FINGERPRINT:
        return llmux__set_text(&o->fingerprint, s, len);
    case LLMUX_F_RESULT_JSON:
        return llmux__set_text(&o->result_json, s, len);
    case LLMUX_F_FINISH_RAW:
    case LLMUX_F_TEXT:
    case LLMUX_F_REASONING:
    case LLMUX_F_REFUSAL:
        return choice_str(o, field, s, len);
    default:
        return 0; /* unknown fields are ignored (forward compatibility) */
    }
}

/* A token count as the usage struct holds it: a negative count means
 * unknown (-1), and a count beyond a long is cut to LONG_MAX. */
static long token_count(int64_t v)
{
    if (v < 0)
        return -1;
#if LONG_MAX < INT64_MAX
    if (v > LONG_MAX)
        return LONG_MAX;
#endif
    return (long)v;
}

static int out_int(llmux_out *o, int field, int64_t v)
{
    if (!o)
        return LLMUX_EINVAL;
    switch (field) {
    case LLMUX_F_CREATED:
        o->created = v;
        break;
    case LLMUX_F_FINISH: {
        struct llmux_choice *c;
        if (v < LLMUX_FINISH_NONE || v > LLMUX_FINISH_ERROR)
            return LLMUX_EINVAL;
        if (!(c = cur_choice(o)))
            return LLMUX_ENOMEM;
        c->finish = (int)v;
        break;
    }
    case LLMUX_F_PROMPT_TOKENS:
        o->usage.prompt_tokens = token_count(v);
        o->has_usage = 1;
        break;
    case LLMUX_F_COMPLETION_TOKENS:
        o->usage.completion_tokens = token_count(v);
        o->has_usage = 1;
        break;
    case LLMUX_F_TOTAL_TOKENS:
        o->usage.total_tokens = token_count(v);
        o->has_usage = 1;
        break;
    case LLMUX_F_CACHED_TOKENS:
        o->usage.cached_tokens = token_count(v);
        o->has_usage = 1;
        break;
    case LLMUX_F_REASONING_TOKENS:
        o->usage.reasoning_tokens = token_count(v);
        o->has_usage = 1;
        break;
    default:
        break;
    }
    return 0;
}

static int out_tool_call(llmux_out *o, int index, const char *id,
                         const char *name, const char *args, size_t args_len)
{
    llmux__call_slot *s;
    struct llmux_choice *c;
    if (!o || index < 0 || (!args && args_len))
        return LLMUX_EINVAL;
    /* calls are looked up by index: a bound keeps that linear */
    if (index >= LLMUX__MAX_TOOL_CALLS)
        return LLMUX_EPROTO;
    if (!(c = cur_choice(o)) || !(s = llmux__choice_slot(c, index)))
        return LLMUX_ENOMEM;
    return llmux__out_slot_update(s, id, id ? strlen(id) : 0, name,
                                  name ? strlen(name) : 0, args, args_len);
}

static int out_embedding(llmux_out *o, int index, const float *v, size_t n)
{
    llmux__vec *e;
    if (!o || index < 0 || (!v && n))
        return LLMUX_EINVAL;
    if (o->n_embs == o->cap_embs) {
        size_t cap = o->cap_embs ? o->cap_embs * 2 : 4;
        llmux__vec *nv = llmux__realloc(o->embs, cap * sizeof *nv);
        if (!nv)
            return LLMUX_ENOMEM;
        o->embs = nv;
        o->cap_embs = cap;
    }
    e = &o->embs[o->n_embs];
    e->v = llmux__malloc(n * sizeof *e->v);
    if (!e->v)
        return LLMUX_ENOMEM;
    if (n)
        memcpy(e->v, v, n * sizeof *e->v);
    e->n = n;
    e->index = index;
    o->n_embs++;
    return 0;
}

static int out_model(llmux_out *o, const char *id, const char *owned_by,
                     int64_t created)
{
    llmux__model *m;
    if (!o || !id)
        return LLMUX_EINVAL;
    if (o->n_models == o->cap_models) {
        size_t cap = o->cap_models ? o->cap_models * 2 : 16;
        llmux__model *nm = llmux__realloc(o->models, cap * sizeof *nm);
        if (!nm)
            return LLMUX_ENOMEM;
        o->models = nm;
        o->cap_models = cap;
    }
    m = &o->models[o->n_models];
    m->id = llmux__strndup_utf8(id, strlen(id));
    m->owned_by =
        owned_by ? llmux__strndup_utf8(owned_by, strlen(owned_by)) : NULL;
    m->created = created;
    if (!m->id || (owned_by && !m->owned_by)) {
        llmux__free(m->id);
        llmux__free(m->owned_by);
        return LLMUX_ENOMEM;
    }
    o->n_models++;
    return 0;
}

static int out_token(llmux_out *o, const char *text, size_t len, int64_t id)
{
    llmux__token *t;
    if (!o || (!text && len))
        return LLMUX_EINVAL;
    if (o->n_tokens == o->cap_tokens) {
        size_t cap = o->cap_tokens ? o->cap_tokens * 2 : 16;
        llmux__token *nt = llmux__realloc(o->tokens, cap * sizeof *nt);
        if (!nt)
            return LLMUX_ENOMEM;
        o->tokens = nt;
        o->cap_tokens = cap;
    }
    t = &o->tokens[o->n_tokens];
    t->text = NULL;
    if (text && !(t->text = llmux__strndup_utf8(text, len)))
        return LLMUX_ENOMEM;
    t->id = id < 0 ? -1 : id;
    o->n_tokens++;
    return 0;
}

static int out_provider_error(llmux_out *o, const char *type, const char *code,
                              const char *param, const char *message)
{
    if (!o)
        return LLMUX_EINVAL;
    if (llmux__set_text(&o->err_type, type ? type : "",
                        type ? strlen(type) : 0) ||
        llmux__set_text(&o->err_pcode, code ? code : "",
                        code ? strlen(code) : 0) ||
        llmux__set_text(&o->err_param, param ? param : "",
                        param ? strlen(param) : 0) ||
        llmux__set_text(&o->err_msg, message ? message : "",
                        message ? strlen(message) : 0))
        return LLMUX_ENOMEM;
    /* empty strings read as "not given" */
    if (!type) {
        llmux__free(o->err_type);
        o->err_type = NULL;
    }
    if (!code) {
        llmux__free(o->err_pcode);
        o->err_pcode = NULL;
    }
    if (!param) {
        llmux__free(o->err_param);
        o->err_param = NULL;
    }
    if (!message) {
        llmux__free(o->err_msg);
        o->err_msg = NULL;
    }
    o->err_code = LLMUX_EPROVIDER;
    return 0;
}

static int set_error(llmux_out *o, int code, const char *fmt, ...)
{
    va_list ap;
    char buf[LLMUX__ERRBUF];
    if (!o)
        return LLMUX_EINVAL;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    llmux__free(o->err_msg);
    o->err_msg = llmux__strndup_utf8(buf, strlen(buf));
    o->err_code = code < 0 ? code : LLMUX_EPROTO;
    return 0;
}

/* ---- the host table ------------------------------------------------------ */

static int out_choice(llmux_out *o, int index)
{
    if (!o || index < 0)
        return LLMUX_EINVAL;
    /* choices are looked up by index: a bound keeps that linear */
    if (index >= LLMUX__MAX_CHOICES)
        return LLMUX_EPROTO;
    o->cur = index;
    return 0;
}

static int out_logprob(llmux_out *o, int list, const char *token, size_t len,
                       double logprob, const unsigned char *bytes,
                       size_t n_bytes, unsigned flags)
{
    struct llmux_choice *c;
    if (!o || (!bytes && n_bytes) || (flags & ~LLMUX_LOGPROB_TOP))
        return LLMUX_EINVAL;
    if (list != LLMUX_LOGPROBS_CONTENT && list != LLMUX_LOGPROBS_REFUSAL)
        return LLMUX_EINVAL;
    if (!(c = cur_choice(o)))
        return LLMUX_ENOMEM;
    return llmux__choice_logprob(c, list, token, token ? len : 0, logprob,
                                 bytes, n_bytes,
                                 (flags & LLMUX_LOGPROB_TOP) != 0);
}

static int out_json(llmux_out *o, int where, const char *key, const char *json,
                    size_t len)
{
    struct llmux_choice *c;
    if (!o || !key || !*key || !json)
        return LLMUX_EINVAL;
    switch (where) {
    case LLMUX_JSON_AT_TOP:
        return llmux__extra_set(&o->extra_top, key, json, len);
    case LLMUX_JSON_AT_USAGE:
        return llmux__extra_set(&o->extra_usage, key, json, len);
    case LLMUX_JSON_AT_CHOICE:
    case LLMUX_JSON_AT_MESSAGE:
        if (!(c = cur_choice(o)))
            return LLMUX_ENOMEM;
        return llmux__extra_set(
            &c->extra[where == LLMUX_JSON_AT_CHOICE ? LLMUX__X_CHOICE
                                                    : LLMUX__X_MESSAGE],
            key, json, len);
    default:
        return LLMUX_EINVAL;
    }
}

static void *host_alloc(size_t n)
{
    return llmux__malloc(n);
}

static void *host_realloc(void *p, size_t n)
{
    return llmux__realloc(p, n);
}

static void host_free(void *p)
{
    llmux__free(p);
}

/* Plugin log lines: routed by the code currently calling into the plugin
 * (llmux__log_target_call, above). */
static void host_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    llmux__vlog_plugin(level, fmt, ap);
    va_end(ap);
}

static int http_method(llmux_http_request *r, const char *m)
{
    if (!r || !m)
        return LLMUX_EINVAL;
    return llmux__set_str(&r->method, m, strlen(m));
}

static int http_path(llmux_http_request *r, const char *p)
{
    if (!r || !p)
        return LLMUX_EINVAL;
    return llmux__set_str(&r->path, p, strlen(p));
}

static int http_header(llmux_http_request *r, const char *name,
                       const char *value)
{
    char **h;
    char *line;
    if (!r || !name || !value || strpbrk(name, ":\r\n") ||
        strpbrk(value, "\r\n"))
        return LLMUX_EINVAL;
    line = llmux__concat(name, strlen(name), ": ", value);
    if (!line)
        return LLMUX_ENOMEM;
    h = llmux__realloc(r->headers, (r->n_headers + 1) * sizeof *h);
    if (!h) {
        llmux__free(line);
        return LLMUX_ENOMEM;
    }
    r->headers = h;
    r->headers[r->n_headers++] = line;
    return 0;
}

static int http_body(llmux_http_request *r, const char *body, size_t len)
{
    if (!r || (!body && len))
        return LLMUX_EINVAL;
    if (llmux__set_str(&r->body, body ? body : "", len))
        return LLMUX_ENOMEM;
    r->body_len = len;
    return 0;
}

static int http_framing(llmux_http_request *r, int framing)
{
    if (!r || (framing != LLMUX_FRAMING_SSE && framing != LLMUX_FRAMING_NDJSON))
        return LLMUX_EINVAL;
    r->framing = framing;
    return 0;
}

/* ---- multipart/form-data (job uploads) ----------------------------------- */

/* A field or file name inside a quoted Content-Disposition parameter, with
 * '"', CR and LF percent-encoded as browsers do (HTML's form submission
 * algorithm): a name can never end the quote or the header line. */
static int form_quoted(llmux__buf *b, const char *s)
{
    for (; *s; s++) {
        const char *rep = *s == '"'    ? "%22"
                          : *s == '\r' ? "%0D"
                          : *s == '\n' ? "%0A"
                                       : NULL;
        if (llmux__buf_append(b, rep ? rep : s, rep ? 3 : 1))
            return LLMUX_ENOMEM;
    }
    return 0;
}

static int has_bytes(const char *hay, size_t n, const char *needle, size_t k)
{
    size_t i;
    for (i = 0; k <= n && i <= n - k; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, k) == 0)
            return 1;
    return 0;
}

/* A boundary found in no part's bytes: random hex, drawn again in the
 * (astronomically rare) case a part holds it. */
static void form_boundary(const llmux_form_part *parts, size_t n, char *out,
                          size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    static LLMUX__TLS uint64_t seed;
    size_t i, k;
    int clash;
    do {
        if (!seed)
            seed = (uint64_t)(uintptr_t)&seed ^ (uint64_t)time(NULL) ^
                   0x9e3779b97f4a7c15ull;
        k = (size_t)snprintf(out, cap, "llmux-form-");
        while (k + 1 < cap && k < 11 + 32) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            out[k++] = hex[seed & 15];
        }
        out[k] = '\0';
        clash = 0;
        for (i = 0; i < n && !clash; i++)
            clash = has_bytes(parts[i].data, parts[i].len, out, k);
    } while (clash);
}

static int http_form(llmux_http_request *r, const llmux_form_part *parts,
                     size_t n)
{
    llmux__buf b = {0};
    char boundary[64], *ctype;
    size_t i;
    int rc = 0;
    if (!r || (!parts && n))
        return LLMUX_EINVAL;
    for (i = 0; i < n; i++)
        if (!parts[i].name || !*parts[i].name ||
            (!parts[i].data && parts[i].len) ||
            (parts[i].content_type && strpbrk(parts[i].content_type, "\r\n")))
            return LLMUX_EINVAL;
    form_boundary(parts, n, boundary, sizeof boundary);
    for (i = 0; i < n && !rc; i++) {
        const llmux_form_part *p = &parts[i];
        rc = llmux__buf_printf(&b,
                               "--%s\r\nContent-Disposition: form-data; "
                               "name=\"",
                               boundary) ||
             form_quoted(&b, p->name);
        if (!rc && p->filename)
            rc =
                llmux__buf_append(&b, "\"; filename=\"", 13) ||
                form_quoted(&b, p->filename) ||
                llmux__buf_printf(&b, "\"\r\nContent-Type: %s",
                                  p->content_type ? p->content_type
                                                  : "application/octet-stream");
        else if (!rc)
            rc = llmux__buf_append(&b, "\"", 1);
        if (!rc)
            rc = llmux__buf_append(&b, "\r\n\r\n", 4) ||
                 (p->len && llmux__buf_append(&b, p->data, p->len)) ||
                 llmux__buf_append(&b, "\r\n", 2);
    }
    if (!rc)
        rc = llmux__buf_printf(&b, "--%s--\r\n", boundary);
    ctype = rc ? NULL
               : llmux__concat("multipart/form-data; boundary=", 30, boundary,
                               NULL);
    if (rc || !ctype || http_body(r, b.p, b.len) ||
        http_header(r, "Content-Type", ctype))
        rc = LLMUX_ENOMEM;
    llmux__free(ctype);
    llmux__buf_free(&b);
    return rc;
}

/* ---- job answers (job_str, job_int) ---------------------------------------
 */

static int job_str(llmux_out *o, int field, const char *s, size_t len)
{
    struct llmux_job *j;
    char **slot = NULL;
    if (!o || (!s && len))
        return LLMUX_EINVAL;
    if (!(j = llmux__out_job(o)))
        return LLMUX_ENOMEM;
    switch (field) {
    case LLMUX_JF_ID:
        slot = &j->id;
        break;
    case LLMUX_JF_STATE_RAW:
        slot = &j->state_raw;
        break;
    case LLMUX_JF_INPUT_FILE:
        slot = &j->input_file;
        break;
    case LLMUX_JF_OUTPUT_FILE:
        slot = &j->output_file;
        break;
    case LLMUX_JF_ERROR_FILE:
        slot = &j->error_file;
        break;
    case LLMUX_JF_MODEL:
        slot = &j->model;
        break;
    case LLMUX_JF_ENDPOINT:
        slot = &j->endpoint;
        break;
    case LLMUX_JF_ERRORS:
        slot = &j->errors;
        break;
    case LLMUX_JF_CONTENT:
        j->has_content = 1;
        /* results go to a file as they came: only ill-formed UTF-8 is
         * repaired, as everywhere a plugin hands text over */
        return llmux__buf_append_utf8(&j->content, s ? s : "", len) ||
                       llmux__buf_append(&j->content, "", 0)
                   ? LLMUX_ENOMEM
                   : 0;
    default:
        return 0; /* a later version's field */
    }
    return llmux__set_str(slot, s ? s : "", len) ? LLMUX_ENOMEM : 0;
}

static int job_int(llmux_out *o, int field, int64_t v)
{
    struct llmux_job *j;
    if (!o)
        return LLMUX_EINVAL;
    if (field == LLMUX_JF_STATE &&
        (v < LLMUX_JOB_UNKNOWN || v > LLMUX_JOB_CANCELLED))
        return LLMUX_EINVAL;
    if (!(j = llmux__out_job(o)))
        return LLMUX_ENOMEM;
    switch (field) {
    case LLMUX_JF_STATE:
        j->state = (int)v;
        break;
    case LLMUX_JF_TOTAL:
        j->total = v;
        break;
    case LLMUX_JF_COMPLETED:
        j->completed = v;
        break;
    case LLMUX_JF_FAILED:
        j->failed = v;
        break;
    case LLMUX_JF_CREATED:
        j->created = v;
        break;
    case LLMUX_JF_FINISHED:
        j->finished = v;
        break;
    default:
        break;
    }
    return 0;
}

static const char *host_option(const llmux_params *p, const char *key)
{
    size_t i;
    if (!p || !key)
        return NULL;
    for (i = 0; i < p->n_options; i++)
        if (llmux__strcaseeq(p->options[i].key, key))
            return p->options[i].value;
    return NULL;
}

const llmux_host llmux__host = {
    LLMUX_HOST_ABI,
    sizeof(llmux_host),
    host_alloc,
    host_realloc,
    host_free,
    host_log,
    http_method,
    http_path,
    http_header,
    http_body,
    http_framing,
    out_str,
    out_int,
    out_tool_call,
    out_embedding,
    out_model,
    out_provider_error,
    set_error,
    host_option,
    out_token,
    llmux__fmt_number,
    out_choice,
    out_logprob,
    out_json,
    http_form,
    job_str,
    job_int,
};

void llmux__http_free(struct llmux_http_request *h)
{
    size_t i;
    llmux__free(h->method);
    llmux__free(h->path);
    for (i = 0; i < h->n_headers; i++)
        llmux__free(h->headers[i]);
    llmux__free(h->headers);
    llmux__free(h->body);
    memset(h, 0, sizeof *h);
}
