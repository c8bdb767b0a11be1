/*
 * core/response.c: the response model: responses and stream chunks.
 *
 * Plugins build both through the host table's out_* functions (host.c),
 * which copy everything into core-owned memory with the helpers here. The
 * engine folds stream chunks into the response being assembled
 * (llmux__out_merge), and both serialise back to OpenAI's JSON shapes.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

/* ---- building ------------------------------------------------------------ */

static void usage_unknown(llmux_usage *u)
{
    u->prompt_tokens = u->completion_tokens = u->total_tokens = -1;
    u->cached_tokens = u->reasoning_tokens = -1;
}

void llmux__out_init(struct llmux_out *o, int op, int is_chunk)
{
    memset(o, 0, sizeof *o);
    o->op = op;
    o->is_chunk = is_chunk;
    usage_unknown(&o->usage);
}

static void out_clear(struct llmux_out *o, int keep)
{
    size_t i;
    llmux__job_free(o->job);
    o->job = NULL;
    llmux__free(o->id);
    llmux__free(o->model);
    llmux__free(o->fingerprint);
    o->id = o->model = o->fingerprint = NULL;
    for (i = 0; i < o->n_choices; i++)
        llmux__choice_clear(&o->choices[i], keep);
    if (!keep) /* spare slots may still own buffers */
        for (i = o->n_choices; i < o->cap_choices; i++)
            llmux__choice_clear(&o->choices[i], 0);
    o->n_choices = 0;
    o->cur = 0;
    llmux__extra_free(&o->extra_top);
    llmux__extra_free(&o->extra_usage);
    for (i = 0; i < o->n_embs; i++)
        llmux__free(o->embs[i].v);
    o->n_embs = 0;
    for (i = 0; i < o->n_models; i++) {
        llmux__free(o->models[i].id);
        llmux__free(o->models[i].owned_by);
    }
    o->n_models = 0;
    for (i = 0; i < o->n_tokens; i++)
        llmux__free(o->tokens[i].text);
    o->n_tokens = 0;
    llmux__free(o->result_json);
    o->result_json = NULL;
    llmux__free(o->err_type);
    llmux__free(o->err_pcode);
    llmux__free(o->err_param);
    llmux__free(o->err_msg);
    o->err_type = o->err_pcode = o->err_param = o->err_msg = NULL;
    o->err_code = 0;
    o->created = 0;
    o->has_usage = 0;
    usage_unknown(&o->usage);
    if (!keep) {
        llmux__free(o->choices);
        llmux__free(o->embs);
        llmux__free(o->models);
        llmux__free(o->tokens);
        o->choices = NULL;
        o->embs = NULL;
        o->models = NULL;
        o->tokens = NULL;
        o->cap_choices = o->cap_embs = o->cap_models = o->cap_tokens = 0;
    }
}

void llmux__out_reset(struct llmux_out *o)
{
    out_clear(o, 1);
}

void llmux__out_free(struct llmux_out *o)
{
    out_clear(o, 0);
}

/* ---- merging stream chunks ----------------------------------------------- */

int llmux__out_flush(struct llmux_out *acc)
{
    size_t i;
    int rc = 0;
    for (i = 0; i < acc->n_choices; i++)
        if (acc->choices[i].grow.n && llmux__extra_flush(&acc->choices[i].grow))
            rc = LLMUX_ENOMEM;
    return rc;
}

int llmux__out_merge(struct llmux_out *acc, const struct llmux_out *ch)
{
    size_t i;
    int rc;
    if (ch->id && !acc->id && !(acc->id = llmux__strdup(ch->id)))
        return LLMUX_ENOMEM;
    if (ch->model && !acc->model && !(acc->model = llmux__strdup(ch->model)))
        return LLMUX_ENOMEM;
    if (ch->fingerprint && llmux__set_str(&acc->fingerprint, ch->fingerprint,
                                          strlen(ch->fingerprint)))
        return LLMUX_ENOMEM;
    if (ch->created && !acc->created)
        acc->created = ch->created;
    if (ch->has_usage) {
        const llmux_usage *u = &ch->usage;
        if (u->prompt_tokens >= 0)
            acc->usage.prompt_tokens = u->prompt_tokens;
        if (u->completion_tokens >= 0)
            acc->usage.completion_tokens = u->completion_tokens;
        if (u->total_tokens >= 0)
            acc->usage.total_tokens = u->total_tokens;
        if (u->cached_tokens >= 0)
            acc->usage.cached_tokens = u->cached_tokens;
        if (u->reasoning_tokens >= 0)
            acc->usage.reasoning_tokens = u->reasoning_tokens;
        acc->has_usage = 1;
    }
    /* top-level fields are repeated by each event: the last one wins */
    if ((rc = llmux__extra_merge(&acc->extra_top, ch->extra_top, NULL)) != 0 ||
        (rc = llmux__extra_merge(&acc->extra_usage, ch->extra_usage, NULL)) !=
            0)
        return rc;
    for (i = 0; i < ch->n_choices; i++) {
        const struct llmux_choice *c = &ch->choices[i];
        struct llmux_choice *a;
        if (!llmux__choice_has_content(c))
            continue;
        if (!(a = llmux__out_choice(acc, c->index)))
            return LLMUX_ENOMEM;
        if ((rc = llmux__choice_merge(a, c)) != 0)
            return rc;
    }
    return 0;
}

/* ---- responses ----------------------------------------------------------- */

llmux_response *llmux__response_new(int op, const char *provider)
{
    llmux_response *r = llmux__calloc(1, sizeof *r);
    if (!r)
        return NULL;
    llmux__out_init(&r->o, op, 0);
    r->refs = 1;
    r->provider = llmux__strdup(provider);
    r->err.retry_after = -1;
    return r;
}

void llmux__response_fail(llmux_response *res, int code, long http_status,
                          int transport, const char *message)
{
    const char *msg = message;
    size_t i;
    if (!msg || !*msg)
        msg = res->o.err_msg && *res->o.err_msg ? res->o.err_msg
                                                : llmux_strerror(code);
    llmux__free(res->err_message);
    res->err_message = llmux__strndup_utf8(msg, strlen(msg));
    res->has_error = 1;
    res->err.code = code;
    res->err.http_status = http_status;
    res->err.transport = transport;
    res->err.provider = res->provider;
    res->err.type = res->o.err_type;
    res->err.provider_code = res->o.err_pcode;
    res->err.param = res->o.err_param;
    res->err.message = res->err_message ? res->err_message : "out of memory";
    res->err.attempts = res->attempts;
    for (i = 0; i < res->o.n_choices; i++) {
        struct llmux_choice *c = &res->o.choices[i];
        if (c->finish == LLMUX_FINISH_NONE && c->text.len)
            c->finish = LLMUX_FINISH_ERROR;
    }
}

void llmux__response_mask(llmux_response *res, const char *key)
{
    if (!res || !res->has_error || !key || !*key)
        return;
    llmux__mask_in(&res->err_message, key);
    llmux__mask_in(&res->o.err_type, key);
    llmux__mask_in(&res->o.err_pcode, key);
    llmux__mask_in(&res->o.err_param, key);
    res->err.type = res->o.err_type;
    res->err.provider_code = res->o.err_pcode;
    res->err.param = res->o.err_param;
    res->err.message = res->err_message ? res->err_message : "out of memory";
}

LLMUX_EXTERN llmux_response *llmux_response_retain(llmux_response *res)
{
    if (res)
        res->refs++;
    return res;
}

LLMUX_EXTERN void llmux_response_free(llmux_response *res)
{
    if (!res || --res->refs > 0)
        return;
    llmux__out_free(&res->o);
    llmux__free(res->provider);
    llmux__free(res->err_message);
    llmux__free(res->raw);
    llmux__free(res);
}

LLMUX_EXTERN const char *llmux_response_raw(const llmux_response *res,
                                            size_t *len)
{
    if (len)
        *len = res && res->raw ? res->raw_len : 0;
    return res ? res->raw : NULL;
}

LLMUX_EXTERN const char *llmux_chunk_raw(const llmux_chunk *ch, size_t *len)
{
    if (len)
        *len = ch && ch->raw ? ch->raw_len : 0;
    return ch ? ch->raw : NULL;
}

LLMUX_EXTERN int llmux_response_cached(const llmux_response *res)
{
    return res ? res->cached : 0;
}

LLMUX_EXTERN int llmux_chunk_cached(const llmux_chunk *ch)
{
    return ch ? ch->cached : 0;
}

LLMUX_EXTERN llmux_op llmux_response_op(const llmux_response *res)
{
    return res ? (llmux_op)res->o.op : (llmux_op)0;
}

LLMUX_EXTERN const llmux_error *llmux_response_error(const llmux_response *res)
{
    return res && res->has_error ? &res->err : NULL;
}

LLMUX_EXTERN long llmux_response_http_status(const llmux_response *res)
{
    return res ? res->http_status : 0;
}

LLMUX_EXTERN int llmux_response_attempts(const llmux_response *res)
{
    return res ? res->attempts : 0;
}

LLMUX_EXTERN int llmux_response_fallback(const llmux_response *res)
{
    return res ? res->fallback : 0;
}

LLMUX_EXTERN const char *llmux_response_provider(const llmux_response *res)
{
    return res ? res->provider : NULL;
}

LLMUX_EXTERN const char *llmux_response_model(const llmux_response *res)
{
    return res ? res->o.model : NULL;
}

LLMUX_EXTERN const char *llmux_response_id(const llmux_response *res)
{
    return res ? res->o.id : NULL;
}

LLMUX_EXTERN long long llmux_response_created(const llmux_response *res)
{
    return res ? (long long)res->o.created : 0;
}

/* Choice 0 of o, which the single-choice accessors read, or NULL. */
static const struct llmux_choice *choice0(const struct llmux_out *o)
{
    if (o->n_choices && o->choices[0].index == 0)
        return &o->choices[0]; /* indexes are never negative */
    return NULL;
}

LLMUX_EXTERN const char *llmux_response_text(const llmux_response *res,
                                             size_t *len)
{
    return llmux_choice_text(res ? choice0(&res->o) : NULL, len);
}

LLMUX_EXTERN const char *llmux_response_reasoning(const llmux_response *res)
{
    return llmux_choice_reasoning(res ? choice0(&res->o) : NULL);
}

LLMUX_EXTERN const char *llmux_response_refusal(const llmux_response *res)
{
    return llmux_choice_refusal(res ? choice0(&res->o) : NULL);
}

LLMUX_EXTERN llmux_finish llmux_response_finish(const llmux_response *res)
{
    return llmux_choice_finish(res ? choice0(&res->o) : NULL);
}

LLMUX_EXTERN const char *llmux_response_finish_raw(const llmux_response *res)
{
    return llmux_choice_finish_raw(res ? choice0(&res->o) : NULL);
}

LLMUX_EXTERN size_t llmux_response_tool_call_count(const llmux_response *res)
{
    return llmux_choice_tool_call_count(res ? choice0(&res->o) : NULL);
}

LLMUX_EXTERN const llmux_tool_call *
llmux_response_tool_call(const llmux_response *res, size_t i)
{
    return llmux_choice_tool_call(res ? choice0(&res->o) : NULL, i);
}

static int has_choices(const struct llmux_out *o)
{
    return o->op == LLMUX_OP_CHAT || o->op == LLMUX_OP_COMPLETE;
}

/* An answer without choices reads as one empty choice 0. */
static const struct llmux_choice empty_choice;

LLMUX_EXTERN size_t llmux_response_choice_count(const llmux_response *res)
{
    if (!res || !has_choices(&res->o))
        return 0;
    if (res->o.n_choices)
        return res->o.n_choices;
    return res->has_error ? 0 : 1;
}

LLMUX_EXTERN const llmux_choice *
llmux_response_choice(const llmux_response *res, size_t i)
{
    if (!res || i >= llmux_response_choice_count(res))
        return NULL;
    return res->o.n_choices ? &res->o.choices[i] : &empty_choice;
}

LLMUX_EXTERN const char *llmux_response_field(const llmux_response *res,
                                              const char *key)
{
    return res ? llmux__extra_get(res->o.extra_top, key) : NULL;
}

LLMUX_EXTERN double llmux_response_cost(const llmux_response *res, int *known)
{
    int k = res && res->cost_known;
    if (known)
        *known = k;
    return k ? res->cost : 0;
}

LLMUX_EXTERN const llmux_usage *llmux_response_usage(const llmux_response *res)
{
    static const llmux_usage none = {-1, -1, -1, -1, -1};
    return res ? &res->o.usage : &none;
}

LLMUX_EXTERN size_t llmux_response_embedding_count(const llmux_response *res)
{
    return res ? res->o.n_embs : 0;
}

LLMUX_EXTERN const float *llmux_response_embedding(const llmux_response *res,
                                                   size_t i, size_t *dim)
{
    if (!res || i >= res->o.n_embs) {
        if (dim)
            *dim = 0;
        return NULL;
    }
    if (dim)
        *dim = res->o.embs[i].n;
    return res->o.embs[i].v;
}

LLMUX_EXTERN size_t llmux_response_model_count(const llmux_response *res)
{
    return res ? res->o.n_models : 0;
}

LLMUX_EXTERN const char *llmux_response_model_id(const llmux_response *res,
                                                 size_t i)
{
    return res && i < res->o.n_models ? res->o.models[i].id : NULL;
}

LLMUX_EXTERN size_t llmux_response_token_count(const llmux_response *res)
{
    return res ? res->o.n_tokens : 0;
}

LLMUX_EXTERN const char *llmux_response_token(const llmux_response *res,
                                              size_t i, long long *id)
{
    if (!res || i >= res->o.n_tokens) {
        if (id)
            *id = -1;
        return NULL;
    }
    if (id)
        *id = (long long)res->o.tokens[i].id;
    return res->o.tokens[i].text;
}

LLMUX_EXTERN const char *llmux_response_result_json(const llmux_response *res)
{
    return res ? res->o.result_json : NULL;
}

LLMUX_EXTERN const char *llmux_finish_name(llmux_finish f)
{
    switch (f) {
    case LLMUX_FINISH_STOP:
        return "stop";
    case LLMUX_FINISH_LENGTH:
        return "length";
    case LLMUX_FINISH_TOOL_CALLS:
        return "tool_calls";
    case LLMUX_FINISH_CONTENT_FILTER:
        return "content_filter";
    case LLMUX_FINISH_ERROR:
        return "error";
    default:
        return NULL;
    }
}

/* ---- chunks -------------------------------------------------------------- */

LLMUX_EXTERN const char *llmux_chunk_text(const llmux_chunk *ch, size_t *len)
{
    return llmux_choice_text(ch ? choice0(&ch->o) : NULL, len);
}

LLMUX_EXTERN const char *llmux_chunk_reasoning(const llmux_chunk *ch)
{
    return llmux_choice_reasoning(ch ? choice0(&ch->o) : NULL);
}

LLMUX_EXTERN llmux_finish llmux_chunk_finish(const llmux_chunk *ch)
{
    return llmux_choice_finish(ch ? choice0(&ch->o) : NULL);
}

LLMUX_EXTERN size_t llmux_chunk_tool_call_count(const llmux_chunk *ch)
{
    return llmux_choice_tool_call_count(ch ? choice0(&ch->o) : NULL);
}

LLMUX_EXTERN const llmux_tool_call *llmux_chunk_tool_call(const llmux_chunk *ch,
                                                          size_t i)
{
    return llmux_choice_tool_call(ch ? choice0(&ch->o) : NULL, i);
}

/* A chunk's choices are those its event carried something for. */
LLMUX_EXTERN size_t llmux_chunk_choice_count(const llmux_chunk *ch)
{
    size_t i, n = 0;
    if (!ch)
        return 0;
    for (i = 0; i < ch->o.n_choices; i++)
        n += llmux__choice_has_content(&ch->o.choices[i]) != 0;
    return n;
}

LLMUX_EXTERN const llmux_choice *llmux_chunk_choice(const llmux_chunk *ch,
                                                    size_t i)
{
    size_t k;
    if (!ch)
        return NULL;
    for (k = 0; k < ch->o.n_choices; k++)
        if (llmux__choice_has_content(&ch->o.choices[k]) && i-- == 0)
            return &ch->o.choices[k];
    return NULL;
}

LLMUX_EXTERN const char *llmux_chunk_field(const llmux_chunk *ch,
                                           const char *key)
{
    return ch ? llmux__extra_get(ch->o.extra_top, key) : NULL;
}

LLMUX_EXTERN const llmux_usage *llmux_chunk_usage(const llmux_chunk *ch)
{
    return ch && ch->o.has_usage ? &ch->o.usage : NULL;
}

LLMUX_EXTERN llmux_op llmux_chunk_op(const llmux_chunk *ch)
{
    return ch ? (llmux_op)ch->o.op : (llmux_op)0;
}

/* ---- JSON serialisation -------------------------------------------------- */

static json_object *jstr(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *jbuf(const llmux__buf *b)
{
    return json_object_new_string_len(b->p ? b->p : "", (int)b->len);
}

/* Floats with 9 significant digits (enough to round-trip a float), with a
 * '.' decimal point whatever LC_NUMERIC says. */
static json_object *jfloat(float f)
{
    char buf[32];
    if (llmux__fmt_number(buf, sizeof buf, (double)f, 1) < 0)
        return NULL; /* NaN or infinite: null */
    return json_object_new_double_s((double)f, buf);
}

long llmux__usage_total(const llmux_usage *u)
{
    long p = u->prompt_tokens > 0 ? u->prompt_tokens : 0;
    long c = u->completion_tokens > 0 ? u->completion_tokens : 0;
    if (u->total_tokens >= 0)
        return u->total_tokens;
    return p > LONG_MAX - c ? LONG_MAX : p + c;
}

static json_object *usage_json(const llmux_usage *u)
{
    json_object *o = json_object_new_object();
    json_object_object_add(
        o, "prompt_tokens",
        json_object_new_int64(u->prompt_tokens > 0 ? u->prompt_tokens : 0));
    json_object_object_add(o, "completion_tokens",
                           json_object_new_int64(u->completion_tokens > 0
                                                     ? u->completion_tokens
                                                     : 0));
    json_object_object_add(o, "total_tokens",
                           json_object_new_int64(llmux__usage_total(u)));
    if (u->cached_tokens >= 0) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "cached_tokens",
                               json_object_new_int64(u->cached_tokens));
        json_object_object_add(o, "prompt_tokens_details", d);
    }
    if (u->reasoning_tokens >= 0) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "reasoning_tokens",
                               json_object_new_int64(u->reasoning_tokens));
        json_object_object_add(o, "completion_tokens_details", d);
    }
    return o;
}

static json_object *tool_calls_json(const struct llmux_choice *ch, int delta)
{
    json_object *arr = json_object_new_array();
    size_t i;
    for (i = 0; i < ch->n_calls; i++) {
        const llmux__call_slot *c = &ch->calls[i];
        json_object *t = json_object_new_object(), *f;
        if (delta)
            json_object_object_add(t, "index",
                                   json_object_new_int(c->pub.index));
        if (c->id)
            json_object_object_add(t, "id", jstr(c->id));
        if (!delta || c->id || c->name)
            json_object_object_add(t, "type",
                                   json_object_new_string("function"));
        f = json_object_new_object();
        if (c->name)
            json_object_object_add(f, "name", jstr(c->name));
        json_object_object_add(f, "arguments", jbuf(&c->args));
        json_object_object_add(t, "function", f);
        json_object_array_add(arr, t);
    }
    return arr;
}

/* A double in its shortest round-trip form; null for NaN and infinities. */
static json_object *jdouble(double v)
{
    char buf[32];
    if (llmux__fmt_number(buf, sizeof buf, v, 0) < 0)
        return NULL;
    return json_object_new_double_s(v, buf);
}

/* One token of a logprobs list in OpenAI's shape; with its alternatives
 * (top_logprobs) unless it is one. */
static json_object *logprob_json(const llmux_logprob *e, int with_top)
{
    json_object *j = json_object_new_object(), *b = NULL;
    size_t i;
    json_object_object_add(j, "token", jstr(e->token));
    json_object_object_add(j, "logprob", jdouble(e->logprob));
    if (e->bytes) {
        b = json_object_new_array_ext((int)e->n_bytes);
        for (i = 0; i < e->n_bytes; i++)
            json_object_array_add(b, json_object_new_int(e->bytes[i]));
    }
    json_object_object_add(j, "bytes", b);
    if (with_top) {
        json_object *t = json_object_new_array_ext((int)e->n_top);
        for (i = 0; i < e->n_top; i++)
            json_object_array_add(t, logprob_json(&e->top[i], 0));
        json_object_object_add(j, "top_logprobs", t);
    }
    return j;
}

/* A list of tokens, or null when the provider reported none. */
static json_object *lp_list_json(const llmux__lp_list *l)
{
    json_object *arr;
    size_t i;
    if (!l->set)
        return NULL;
    arr = json_object_new_array_ext((int)l->n);
    for (i = 0; i < l->n; i++)
        json_object_array_add(arr, logprob_json(&l->v[i].pub, 1));
    return arr;
}

/* A chat choice's logprobs: {"content":[...],"refusal":[...]} (each null
 * when not reported), or null. */
static json_object *logprobs_json(const struct llmux_choice *c)
{
    json_object *j;
    if (!c->lp[0].set && !c->lp[1].set)
        return NULL;
    j = json_object_new_object();
    json_object_object_add(j, "content", lp_list_json(&c->lp[0]));
    json_object_object_add(j, "refusal", lp_list_json(&c->lp[1]));
    return j;
}

/* A text completion's logprobs in OpenAI's legacy shape: "tokens",
 * "token_logprobs" and "top_logprobs" (one {token: logprob} map per
 * token), or null. */
static json_object *completion_logprobs_json(const struct llmux_choice *c)
{
    const llmux__lp_list *l = &c->lp[0];
    json_object *j, *tk, *lp, *top;
    size_t i, k;
    if (!l->set)
        return NULL;
    j = json_object_new_object();
    tk = json_object_new_array_ext((int)l->n);
    lp = json_object_new_array_ext((int)l->n);
    top = json_object_new_array_ext((int)l->n);
    for (i = 0; i < l->n; i++) {
        const llmux_logprob *e = &l->v[i].pub;
        json_object *m = json_object_new_object();
        json_object_array_add(tk, jstr(e->token));
        json_object_array_add(lp, jdouble(e->logprob));
        for (k = 0; k < e->n_top; k++)
            json_object_object_add(m, e->top[k].token,
                                   jdouble(e->top[k].logprob));
        json_object_array_add(top, m);
    }
    json_object_object_add(j, "tokens", tk);
    json_object_object_add(j, "token_logprobs", lp);
    json_object_object_add(j, "top_logprobs", top);
    return j;
}

static json_object *finish_json(int finish)
{
    const char *n = llmux_finish_name((llmux_finish)finish);
    return n ? json_object_new_string(n) : NULL;
}

static char *dump(json_object *o)
{
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    /* bytes >= 0x80 only come from inside strings: repairing the text
     * keeps it JSON, and valid UTF-8 whatever a provider sent */
    char *r = llmux__strndup_utf8(s, len);
    json_object_put(o);
    return r;
}

static void add_head(json_object *j, const struct llmux_out *o,
                     const struct llmux_out *fb, const char *object)
{
    const char *id = o->id ? o->id : (fb ? fb->id : NULL);
    const char *model = o->model ? o->model : (fb ? fb->model : NULL);
    int64_t created = o->created ? o->created : (fb ? fb->created : 0);
    json_object_object_add(j, "id", json_object_new_string(id ? id : ""));
    json_object_object_add(j, "object", json_object_new_string(object));
    json_object_object_add(j, "created", json_object_new_int64(created));
    json_object_object_add(j, "model",
                           json_object_new_string(model ? model : ""));
}

static char *error_to_json(const llmux_response *res)
{
    json_object *j = json_object_new_object(), *e = json_object_new_object();
    const llmux_error *er = &res->err;
    json_object_object_add(e, "message", jstr(er->message));
    json_object_object_add(e, "type", jstr(er->type));
    json_object_object_add(e, "param", jstr(er->param));
    json_object_object_add(e, "code", jstr(er->provider_code));
    json_object_object_add(e, "llmux_code",
                           json_object_new_string(llmux_err_name(er->code)));
    if (er->http_status)
        json_object_object_add(e, "http_status",
                               json_object_new_int64(er->http_status));
    if (er->provider)
        json_object_object_add(e, "provider", jstr(er->provider));
    json_object_object_add(j, "error", e);
    return dump(j);
}

/* tokenize: the tokens and their ids, each null where unknown */
static void add_tokens(json_object *j, const struct llmux_out *o)
{
    json_object *tk = json_object_new_array(), *ids = json_object_new_array();
    size_t i;
    for (i = 0; i < o->n_tokens; i++) {
        json_object_array_add(
            tk, o->tokens[i].text ? json_object_new_string(o->tokens[i].text)
                                  : NULL);
        json_object_array_add(ids, o->tokens[i].id >= 0
                                       ? json_object_new_int64(o->tokens[i].id)
                                       : NULL);
    }
    json_object_object_add(j, "tokens", tk);
    json_object_object_add(j, "token_ids", ids);
}

/* One item of an embeddings list: vector e, the list's item i. */
static json_object *embedding_json(const llmux__vec *e, size_t i)
{
    json_object *j = json_object_new_object();
    json_object *v = json_object_new_array_ext((int)e->n);
    size_t k;
    for (k = 0; k < e->n; k++)
        json_object_array_add(v, jfloat(e->v[k]));
    json_object_object_add(j, "object", json_object_new_string("embedding"));
    json_object_object_add(j, "index", json_object_new_int((int)i));
    json_object_object_add(j, "embedding", v);
    return j;
}

/* An embeddings list's usage: prompt and total tokens only. */
static json_object *embed_usage_json(const llmux_usage *u)
{
    json_object *j = json_object_new_object();
    long p = u->prompt_tokens > 0 ? u->prompt_tokens : 0;
    json_object_object_add(j, "prompt_tokens", json_object_new_int64(p));
    json_object_object_add(
        j, "total_tokens",
        json_object_new_int64(u->total_tokens >= 0 ? u->total_tokens : p));
    return j;
}

/* The head of OpenAI's lists: "object": "list" and "data": arr. */
static void add_list(json_object *j, json_object *arr)
{
    json_object_object_add(j, "object", json_object_new_string("list"));
    json_object_object_add(j, "data", arr);
}

/* embed: the list of embeddings, the model and the usage */
static void add_embeddings(json_object *j, const struct llmux_out *o)
{
    json_object *arr = json_object_new_array();
    size_t i;
    for (i = 0; i < o->n_embs; i++)
        json_object_array_add(arr, embedding_json(&o->embs[i], i));
    add_list(j, arr);
    json_object_object_add(j, "model",
                           json_object_new_string(o->model ? o->model : ""));
    if (o->has_usage)
        json_object_object_add(j, "usage", embed_usage_json(&o->usage));
}

/* One model of a models list; owned by `provider` unless it says. */
static json_object *model_json(const llmux__model *m, const char *provider)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "id", jstr(m->id));
    json_object_object_add(j, "object", json_object_new_string("model"));
    json_object_object_add(j, "created", json_object_new_int64(m->created));
    json_object_object_add(
        j, "owned_by",
        json_object_new_string(m->owned_by ? m->owned_by
                                           : (provider ? provider : "")));
    return j;
}

/* models: the list of models */
static void add_models(json_object *j, const struct llmux_out *o,
                       const char *provider)
{
    json_object *arr = json_object_new_array();
    size_t i;
    for (i = 0; i < o->n_models; i++)
        json_object_array_add(arr, model_json(&o->models[i], provider));
    add_list(j, arr);
}

/* A text completion's choice (a whole response's or a chunk's). */
static json_object *completion_choice_json(const struct llmux_choice *ch)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, "text", jbuf(&ch->text));
    json_object_object_add(c, "index", json_object_new_int(ch->index));
    json_object_object_add(c, "logprobs", completion_logprobs_json(ch));
    json_object_object_add(c, "finish_reason", finish_json(ch->finish));
    llmux__extra_under(c, ch->extra[LLMUX__X_CHOICE]);
    return c;
}

/* A chat completion's assistant message: content is null when there are
 * tool calls and no text. */
static json_object *message_json(const struct llmux_choice *ch)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(
        m, "content", ch->n_calls && !ch->text.len ? NULL : jbuf(&ch->text));
    json_object_object_add(m, "refusal",
                           ch->refusal.len ? jbuf(&ch->refusal) : NULL);
    if (ch->reasoning.len)
        json_object_object_add(m, "reasoning_content", jbuf(&ch->reasoning));
    if (ch->n_calls)
        json_object_object_add(m, "tool_calls", tool_calls_json(ch, 0));
    llmux__extra_under(m, ch->extra[LLMUX__X_MESSAGE]);
    return m;
}

/* A chat completion's choice: the message and why it finished. */
static json_object *chat_choice_json(const struct llmux_choice *ch)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, "index", json_object_new_int(ch->index));
    json_object_object_add(c, "message", message_json(ch));
    json_object_object_add(c, "logprobs", logprobs_json(ch));
    json_object_object_add(c, "finish_reason", finish_json(ch->finish));
    llmux__extra_under(c, ch->extra[LLMUX__X_CHOICE]);
    return c;
}

/* A chat chunk's choice: the delta (only what the chunk carries). */
static json_object *delta_choice_json(const struct llmux_choice *ch)
{
    json_object *c = json_object_new_object();
    json_object *d = json_object_new_object();
    if (ch->first)
        json_object_object_add(d, "role", json_object_new_string("assistant"));
    if (ch->text.len)
        json_object_object_add(d, "content", jbuf(&ch->text));
    if (ch->reasoning.len)
        json_object_object_add(d, "reasoning_content", jbuf(&ch->reasoning));
    if (ch->refusal.len)
        json_object_object_add(d, "refusal", jbuf(&ch->refusal));
    if (ch->n_calls)
        json_object_object_add(d, "tool_calls", tool_calls_json(ch, 1));
    llmux__extra_under(d, ch->extra[LLMUX__X_MESSAGE]);
    json_object_object_add(c, "index", json_object_new_int(ch->index));
    json_object_object_add(c, "delta", d);
    json_object_object_add(c, "logprobs", logprobs_json(ch));
    json_object_object_add(c, "finish_reason", finish_json(ch->finish));
    llmux__extra_under(c, ch->extra[LLMUX__X_CHOICE]);
    return c;
}

typedef json_object *(*choice_fn)(const struct llmux_choice *);

/* "choices": every choice in index order (a chunk: those its event
 * carried something for; a response without any: one empty choice 0),
 * then the usage when there is one. */
static void add_choices(json_object *j, const struct llmux_out *o,
                        choice_fn one)
{
    json_object *arr = json_object_new_array_ext((int)o->n_choices);
    size_t i;
    for (i = 0; i < o->n_choices; i++)
        if (!o->is_chunk || llmux__choice_has_content(&o->choices[i]))
            json_object_array_add(arr, one(&o->choices[i]));
    if (!o->is_chunk && !o->n_choices)
        json_object_array_add(arr, one(&empty_choice));
    json_object_object_add(j, "choices", arr);
    if (o->has_usage) {
        json_object *u = usage_json(&o->usage);
        llmux__extra_under(u, o->extra_usage);
        json_object_object_add(j, "usage", u);
    }
}

LLMUX_EXTERN char *llmux_response_to_json(const llmux_response *res)
{
    const struct llmux_out *o;
    json_object *j;
    if (!res)
        return NULL;
    if (res->has_error)
        return error_to_json(res);
    o = &res->o;
    if (o->op == LLMUX_OP_EVALUATE && o->result_json) {
        /* the provider's result object, when it parses */
        json_object *r = json_tokener_parse(o->result_json);
        if (r)
            return dump(r);
    }
    j = json_object_new_object();
    switch (o->op) {
    case LLMUX_OP_TOKENIZE:
        add_tokens(j, o);
        break;
    case LLMUX_OP_DETOKENIZE: {
        size_t n;
        const char *t = llmux_choice_text(choice0(o), &n);
        json_object_object_add(j, "text",
                               json_object_new_string_len(t, (int)n));
        break;
    }
    case LLMUX_OP_EVALUATE:
        break; /* no result that parses: {} */
    case LLMUX_OP_EMBED:
        add_embeddings(j, o);
        break;
    case LLMUX_OP_MODELS:
        add_models(j, o, res->provider);
        break;
    case LLMUX_OP_COMPLETE:
        add_head(j, o, NULL, "text_completion");
        add_choices(j, o, completion_choice_json);
        break;
    default:
        add_head(j, o, NULL, "chat.completion");
        add_choices(j, o, chat_choice_json);
        if (o->fingerprint)
            json_object_object_add(j, "system_fingerprint",
                                   jstr(o->fingerprint));
        break;
    }
    llmux__extra_under(j, o->extra_top);
    return dump(j);
}

LLMUX_EXTERN char *llmux_chunk_to_json(const llmux_chunk *ch)
{
    const struct llmux_out *o;
    json_object *j;
    if (!ch)
        return NULL;
    o = &ch->o;
    j = json_object_new_object();
    if (o->op == LLMUX_OP_COMPLETE) {
        add_head(j, o, ch->acc, "text_completion");
        add_choices(j, o, completion_choice_json);
    } else {
        const char *fp = o->fingerprint
                             ? o->fingerprint
                             : (ch->acc ? ch->acc->fingerprint : NULL);
        add_head(j, o, ch->acc, "chat.completion.chunk");
        if (fp) /* as OpenAI sends it: on every chunk */
            json_object_object_add(j, "system_fingerprint", jstr(fp));
        add_choices(j, o, delta_choice_json);
        /* the library always asks for usage, and OpenAI then writes
         * "usage": null on each chunk before the last */
        if (!o->has_usage)
            json_object_object_add(j, "usage", NULL);
    }
    llmux__extra_under(j, o->extra_top);
    return dump(j);
}
