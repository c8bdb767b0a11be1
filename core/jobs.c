/*
 * core/jobs.c: provider batch jobs (llmux/jobs.h). Each public function
 * is a short chain of steps (upload then create; status; cancel; status
 * then content), each step one request of the client with the internal
 * operation LLMUX__OP_JOB: the provider's plugin encodes and decodes it
 * through its job hooks (call.c), the engine sends it like any other
 * request, under the client's limits, retries and timeouts. What the
 * steps learn accumulates in one llmux_job handed to the callback.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "engine.h"

enum { K_SUBMIT = 1, K_STATUS, K_CANCEL, K_FETCH };

typedef struct jobop {
    llmux_client *c;
    int kind;
    int which; /* fetch: LLMUX_JOB_OUTPUT or _ERRORS */
    char *config, *id, *data, *endpoint, *model, *metadata;
    char *step_id; /* the id the step in flight names (a copy: the job it
                      came from is replaced when the step answers) */
    size_t len;
    int timeout_hours;
    struct llmux_job *job; /* what the steps learnt */
    llmux_job_cb cb;
    void *ud;
    /* a failure found inside the public call waits for the loop */
    uv_timer_t t;
    int code;
    char *msg;
} jobop;

/* ---- the chain -------------------------------------------------------------
 */

static void op_free(jobop *op)
{
    llmux__free(op->config);
    llmux__free(op->id);
    llmux__free(op->data);
    llmux__free(op->endpoint);
    llmux__free(op->model);
    llmux__free(op->metadata);
    llmux__free(op->step_id);
    llmux__free(op->msg);
    llmux__job_free(op->job);
    llmux__free(op);
}

static void finish(jobop *op, int code, const char *msg)
{
    if (op->cb) {
        llmux__callback_depth(1);
        op->cb(code, op->job, code ? (msg ? msg : llmux_strerror(code)) : NULL,
               op->ud);
        llmux__callback_depth(-1);
    }
    op_free(op);
}

static void on_timer_closed(uv_handle_t *h)
{
    jobop *op = h->data;
    finish(op, op->code, op->msg);
}

static void on_late_failure(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, on_timer_closed);
}

/* A failure inside the public call: its callback runs from the loop. */
static int fail_later(jobop *op, int code, const char *msg)
{
    op->code = code;
    op->msg = llmux__strdup(msg ? msg : llmux_strerror(code));
    op->t.data = op;
    if (uv_timer_init(op->c->loop, &op->t) != 0)
        return LLMUX_ENOMEM;
    uv_timer_start(&op->t, on_late_failure, 0, 0);
    return 0;
}

/* A job learnt by a step replaces the former, keeping what only the
 * former knew (the input file of an upload, the state before a
 * download). */
static void take_job(jobop *op, struct llmux_out *o)
{
    struct llmux_job *n = o->job, *old = op->job;
    o->job = NULL;
    if (!n)
        return;
    if (old) {
#define KEEP(f)                                                                \
    if (!n->f) {                                                               \
        n->f = old->f;                                                         \
        old->f = NULL;                                                         \
    }
        KEEP(id)
        KEEP(state_raw)
        KEEP(input_file)
        KEEP(output_file)
        KEEP(error_file)
        KEEP(model)
        KEEP(endpoint)
        KEEP(errors)
#undef KEEP
        if (!n->has_content) {
            n->state = n->state ? n->state : old->state;
            n->total = n->total >= 0 ? n->total : old->total;
            n->completed = n->completed >= 0 ? n->completed : old->completed;
            n->failed = n->failed >= 0 ? n->failed : old->failed;
        } else {
            n->state = old->state;
            n->total = old->total;
            n->completed = old->completed;
            n->failed = old->failed;
        }
        n->created = n->created ? n->created : old->created;
        n->finished = n->finished ? n->finished : old->finished;
        llmux__job_free(old);
    }
    op->job = n;
}

static int run_step(jobop *op, int step, const char *id, int in_call);

static void step_done(llmux_request *req, int status, llmux_response *res,
                      void *ud)
{
    jobop *op = ud;
    int step = req->job->step;
    struct llmux_job *j;
    take_job(op, &res->o);
    if (status) {
        finish(op, status, llmux_response_error(res)->message);
        return;
    }
    j = op->job;
    if (step == LLMUX_JOB_STEP_UPLOAD) {
        if (!j || !j->input_file || !*j->input_file) {
            finish(op, LLMUX_EPROTO, "the upload's answer has no file id");
            return;
        }
        run_step(op, LLMUX_JOB_STEP_CREATE, j->input_file, 0);
    } else if (step == LLMUX_JOB_STEP_STATUS && op->kind == K_FETCH) {
        const char *file;
        char *msg;
        if (!j || !llmux_job_state_final((llmux_job_state)j->state)) {
            msg = llmux__asprintf(
                "job %s has not ended (%s): its results are not ready", op->id,
                j && j->state_raw ? j->state_raw : "state unknown");
            finish(op, LLMUX_EBUSY, msg);
            llmux__free(msg);
            return;
        }
        file = op->which == LLMUX_JOB_ERRORS ? j->error_file : j->output_file;
        if (!file || !*file) { /* nothing of that kind: empty results */
            j->has_content = 1;
            if (llmux__buf_append(&j->content, "", 0))
                finish(op, LLMUX_ENOMEM, NULL);
            else
                finish(op, 0, NULL);
            return;
        }
        run_step(op, LLMUX_JOB_STEP_CONTENT, file, 0);
    } else {
        if (step == LLMUX_JOB_STEP_CONTENT && j && !j->has_content) {
            /* a plugin that decoded nothing: the results are empty */
            j->has_content = 1;
            if (llmux__buf_append(&j->content, "", 0)) {
                finish(op, LLMUX_ENOMEM, NULL);
                return;
            }
        }
        finish(op, j ? 0 : LLMUX_EPROTO,
               j ? NULL : "the provider's answer says nothing of the job");
        return;
    }
    /* run_step finished op itself on failure */
}

/* Sends one step. On a failure before the request left: inside the
 * public call, the callback is put off to the loop (returns 0 when that
 * worked); later it runs now. */
static int run_step(jobop *op, int step, const char *id, int in_call)
{
    llmux_request *r = NULL;
    llmux_job_step *s;
    char *msg = NULL;
    int rc = llmux_request_new(&r, LLMUX_OP_MODELS, op->config);
    if (rc == 0 && id && id != op->id) {
        if (llmux__set_str(&op->step_id, id, strlen(id)))
            rc = LLMUX_ENOMEM;
        id = op->step_id;
    }
    if (rc == 0 && !(s = llmux__calloc(1, sizeof *s)))
        rc = LLMUX_ENOMEM;
    if (rc == 0) {
        s->struct_size = sizeof *s;
        s->step = step;
        s->id = id;
        if (step == LLMUX_JOB_STEP_UPLOAD) {
            s->data = op->data;
            s->data_len = op->len;
        }
        if (step == LLMUX_JOB_STEP_UPLOAD || step == LLMUX_JOB_STEP_CREATE) {
            s->endpoint = op->endpoint;
            s->model = op->model;
        }
        if (step == LLMUX_JOB_STEP_CREATE) {
            s->metadata_json = op->metadata;
            s->timeout_hours = op->timeout_hours;
            /* a create retried after a lost answer would start the job
             * twice: the caller polls or submits again instead */
            llmux_request_set_max_retries(r, 0);
        }
        r->op = LLMUX__OP_JOB;
        r->job = s;
        rc = llmux_submit(op->c, r, NULL, step_done, op);
    }
    if (rc == 0)
        return 0;
    if (r && llmux_request_errmsg(r))
        msg = llmux__strdup(llmux_request_errmsg(r));
    llmux_request_free(r);
    if (in_call) {
        int frc = fail_later(op, rc, msg);
        llmux__free(msg);
        return frc;
    }
    finish(op, rc, msg);
    llmux__free(msg);
    return rc;
}

/* ---- checking the input ----------------------------------------------------
 */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *line_err(size_t line, const char *what)
{
    return llmux__asprintf("batch input line %zu: %s", line, what);
}

/* Checks every line of op->data (OpenAI Batch input) and settles the
 * endpoint and, when the caller gave none, the model the lines agree on.
 * 0, or a code and *msg (owned). */
static int check_input(jobop *op, const char *cfg_model, char **msg)
{
    const char *p = op->data, *end = op->data + op->len;
    char **ids = NULL, *model = NULL;
    size_t n = 0, cap = 0, line = 0, i;
    int rc = 0, models_differ = 0;
    *msg = NULL;
    while (p < end && !rc) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        const char *q = p;
        json_object *o, *v, *body;
        const char *cid, *url;
        line++;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q == e) { /* blank */
            p = e + 1;
            continue;
        }
        if (!(o = llmux__request_parse_json(p, (size_t)(e - p))) ||
            !json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            *msg = line_err(line, "not a JSON object");
            rc = LLMUX_EINVAL;
            break;
        }
        cid = json_object_object_get_ex(o, "custom_id", &v) &&
                      json_object_is_type(v, json_type_string)
                  ? json_object_get_string(v)
                  : NULL;
        url = json_object_object_get_ex(o, "url", &v) &&
                      json_object_is_type(v, json_type_string)
                  ? json_object_get_string(v)
                  : NULL;
        if (!cid || !*cid)
            *msg = line_err(line, "no custom_id (a non-empty string)");
        else if (!json_object_object_get_ex(o, "method", &v) ||
                 !json_object_is_type(v, json_type_string) ||
                 strcmp(json_object_get_string(v), "POST") != 0)
            *msg = line_err(line, "method must be \"POST\"");
        else if (!url || !*url)
            *msg = line_err(line, "no url (as \"/v1/chat/completions\")");
        else if (!json_object_object_get_ex(o, "body", &body) ||
                 !json_object_is_type(body, json_type_object))
            *msg = line_err(line, "no body object");
        else if (op->endpoint && strcmp(url, op->endpoint) != 0) {
            *msg = llmux__asprintf("batch input line %zu: url %s is not the "
                                   "job's endpoint %s",
                                   line, url, op->endpoint);
        } else if (!op->endpoint && !(op->endpoint = llmux__strdup(url)))
            rc = LLMUX_ENOMEM;
        if (!rc && !*msg && json_object_object_get_ex(body, "model", &v) &&
            json_object_is_type(v, json_type_string)) {
            const char *m = json_object_get_string(v);
            if (!model && !models_differ && !(model = llmux__strdup(m)))
                rc = LLMUX_ENOMEM;
            else if (model && strcmp(model, m) != 0)
                models_differ = 1;
        }
        if (!rc && !*msg) {
            if (n == cap) {
                char **nv;
                cap = cap ? cap * 2 : 64;
                if (!(nv = llmux__realloc(ids, cap * sizeof *nv)))
                    rc = LLMUX_ENOMEM;
                else
                    ids = nv;
            }
            if (!rc && !(ids[n] = llmux__strdup(cid)))
                rc = LLMUX_ENOMEM;
            if (!rc)
                n++;
        }
        json_object_put(o);
        if (*msg && !rc)
            rc = LLMUX_EINVAL;
        p = e + 1;
    }
    if (!rc && !n) {
        *msg = llmux__strdup("batch input has no requests");
        rc = LLMUX_EINVAL;
    }
    if (!rc) {
        qsort(ids, n, sizeof *ids, cmp_str);
        for (i = 1; i < n && !rc; i++)
            if (strcmp(ids[i - 1], ids[i]) == 0) {
                *msg = llmux__asprintf("batch input: custom_id \"%.100s\" is "
                                       "used twice (ids match the results "
                                       "to the requests)",
                                       ids[i]);
                rc = LLMUX_EINVAL;
            }
    }
    if (!rc && !op->model) {
        /* the job's model: the config string's, else the one the lines
         * agree on (none when they differ: the plugin says whether the
         * provider minds) */
        const char *m = cfg_model && *cfg_model ? cfg_model
                        : models_differ         ? NULL
                                                : model;
        if (m && !(op->model = llmux__strdup(m)))
            rc = LLMUX_ENOMEM;
    }
    llmux__strv_free(ids, n);
    llmux__free(model);
    if (rc == LLMUX_ENOMEM && !*msg)
        *msg = llmux__strdup(llmux_strerror(rc));
    return rc;
}

/* ---- public functions ---------------------------------------------------- */

static jobop *op_new(llmux_client *c, const char *config, const char *id,
                     int kind, llmux_job_cb cb, void *ud)
{
    jobop *op = llmux__calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->c = c;
    op->kind = kind;
    op->cb = cb;
    op->ud = ud;
    if (!(op->config = llmux__strdup(config)) ||
        (id && !(op->id = llmux__strdup(id)))) {
        op_free(op);
        return NULL;
    }
    return op;
}

static int args_ok(llmux_client *c, const char *config, llmux_job_cb cb)
{
    if (!c || !config || !cb)
        return LLMUX_EINVAL;
    if (!llmux__on_owner(c))
        return LLMUX_EBUSY;
    return c->closing ? LLMUX_ECANCELED : 0;
}

/* The model of config string `config`, for the job's: a copy, or NULL. */
static char *config_model(const char *config)
{
    llmux_request *r = NULL;
    char *m = NULL;
    if (llmux_request_new(&r, LLMUX_OP_MODELS, config) == 0 &&
        llmux_request_model(r))
        m = llmux__strdup(llmux_request_model(r));
    llmux_request_free(r);
    return m;
}

LLMUX_EXTERN int llmux_job_submit(llmux_client *c, const char *config,
                                  const char *jsonl, size_t len,
                                  const llmux_job_options *opt, llmux_job_cb cb,
                                  void *userdata)
{
    jobop *op;
    char *msg = NULL, *cmodel;
    int rc = args_ok(c, config, cb);
    if (rc)
        return rc;
    if (!jsonl && len)
        return LLMUX_EINVAL;
    if (opt && (opt->version < 1 || opt->version > LLMUX_JOB_OPTIONS_VERSION ||
                opt->timeout_hours < 0))
        return LLMUX_EINVAL;
    if (!(op = op_new(c, config, NULL, K_SUBMIT, cb, userdata)))
        return LLMUX_ENOMEM;
    op->len = len;
    if (!(op->data = llmux__malloc(len + 1)) ||
        (opt && opt->endpoint &&
         !(op->endpoint = llmux__strdup(opt->endpoint))) ||
        (opt && opt->model && !(op->model = llmux__strdup(opt->model))) ||
        (opt && opt->metadata_json &&
         !(op->metadata = llmux__strdup(opt->metadata_json)))) {
        op_free(op);
        return LLMUX_ENOMEM;
    }
    if (len)
        memcpy(op->data, jsonl, len);
    op->data[len] = '\0';
    op->timeout_hours = opt ? opt->timeout_hours : 0;
    if (op->metadata) {
        json_object *m =
            llmux__request_parse_json(op->metadata, strlen(op->metadata));
        int ok = m && json_object_is_type(m, json_type_object);
        json_object_put(m);
        if (!ok) {
            rc = fail_later(op, LLMUX_EINVAL,
                            "job metadata must be a JSON object");
            if (rc)
                op_free(op);
            return rc;
        }
    }
    cmodel = config_model(config);
    rc = check_input(op, cmodel, &msg);
    llmux__free(cmodel);
    if (rc) {
        int frc = fail_later(op, rc, msg);
        llmux__free(msg);
        if (frc)
            op_free(op);
        return frc;
    }
    rc = run_step(op, LLMUX_JOB_STEP_UPLOAD, NULL, 1);
    if (rc)
        op_free(op);
    return rc;
}

static int simple(llmux_client *c, const char *config, const char *id, int kind,
                  int step, int which, llmux_job_cb cb, void *ud)
{
    jobop *op;
    int rc = args_ok(c, config, cb);
    if (rc)
        return rc;
    if (!id || !*id)
        return LLMUX_EINVAL;
    if (!(op = op_new(c, config, id, kind, cb, ud)))
        return LLMUX_ENOMEM;
    op->which = which;
    rc = run_step(op, step, op->id, 1);
    if (rc)
        op_free(op);
    return rc;
}

LLMUX_EXTERN int llmux_job_status(llmux_client *c, const char *config,
                                  const char *id, llmux_job_cb cb,
                                  void *userdata)
{
    return simple(c, config, id, K_STATUS, LLMUX_JOB_STEP_STATUS, 0, cb,
                  userdata);
}

LLMUX_EXTERN int llmux_job_cancel(llmux_client *c, const char *config,
                                  const char *id, llmux_job_cb cb,
                                  void *userdata)
{
    return simple(c, config, id, K_CANCEL, LLMUX_JOB_STEP_CANCEL, 0, cb,
                  userdata);
}

LLMUX_EXTERN int llmux_job_fetch(llmux_client *c, const char *config,
                                 const char *id, int which, llmux_job_cb cb,
                                 void *userdata)
{
    if (which != LLMUX_JOB_OUTPUT && which != LLMUX_JOB_ERRORS)
        return LLMUX_EINVAL;
    return simple(c, config, id, K_FETCH, LLMUX_JOB_STEP_STATUS, which, cb,
                  userdata);
}

/* ---- getters ---------------------------------------------------------------
 */

LLMUX_EXTERN const char *llmux_job_id(const llmux_job *j)
{
    return j ? j->id : NULL;
}

LLMUX_EXTERN llmux_job_state llmux_job_get_state(const llmux_job *j)
{
    return j ? (llmux_job_state)j->state : LLMUX_JOB_UNKNOWN;
}

LLMUX_EXTERN const char *llmux_job_state_raw(const llmux_job *j)
{
    return j ? j->state_raw : NULL;
}

LLMUX_EXTERN const char *llmux_job_state_name(llmux_job_state s)
{
    static const char *const names[] = {
        "unknown", "validating", "in_progress", "finalizing", "completed",
        "failed",  "expired",    "cancelling",  "cancelled"};
    return s >= 0 && (size_t)s < sizeof names / sizeof names[0] ? names[s]
                                                                : "unknown";
}

LLMUX_EXTERN int llmux_job_state_final(llmux_job_state s)
{
    return s == LLMUX_JOB_COMPLETED || s == LLMUX_JOB_FAILED ||
           s == LLMUX_JOB_EXPIRED || s == LLMUX_JOB_CANCELLED;
}

LLMUX_EXTERN void llmux_job_counts(const llmux_job *j, int64_t *total,
                                   int64_t *completed, int64_t *failed)
{
    if (total)
        *total = j ? j->total : -1;
    if (completed)
        *completed = j ? j->completed : -1;
    if (failed)
        *failed = j ? j->failed : -1;
}

LLMUX_EXTERN const char *llmux_job_input_file(const llmux_job *j)
{
    return j ? j->input_file : NULL;
}

LLMUX_EXTERN const char *llmux_job_output_file(const llmux_job *j)
{
    return j ? j->output_file : NULL;
}

LLMUX_EXTERN const char *llmux_job_error_file(const llmux_job *j)
{
    return j ? j->error_file : NULL;
}

LLMUX_EXTERN const char *llmux_job_model(const llmux_job *j)
{
    return j ? j->model : NULL;
}

LLMUX_EXTERN const char *llmux_job_endpoint(const llmux_job *j)
{
    return j ? j->endpoint : NULL;
}

LLMUX_EXTERN const char *llmux_job_errors(const llmux_job *j)
{
    return j ? j->errors : NULL;
}

LLMUX_EXTERN int64_t llmux_job_created_at(const llmux_job *j)
{
    return j ? j->created : 0;
}

LLMUX_EXTERN int64_t llmux_job_finished_at(const llmux_job *j)
{
    return j ? j->finished : 0;
}

LLMUX_EXTERN const char *llmux_job_content(const llmux_job *j, size_t *len)
{
    if (len)
        *len = j && j->has_content ? j->content.len : 0;
    return j && j->has_content ? (j->content.p ? j->content.p : "") : NULL;
}
