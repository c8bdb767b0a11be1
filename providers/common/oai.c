/*
 * providers/common/oai.c: the OpenAI-shape codec shared by the OpenAI,
 * Mistral, Aleph Alpha and OpenAI-compatible plugins (see oai.h).
 *
 * Encoding builds the request body as one json-c object and serialises it
 * once. Decoding parses each body or stream event once with json-c and
 * walks the tree, handing strings to the host's builders straight from the
 * parsed objects (no intermediate copies). Every parse borrows a spare
 * json_tokener (llmux_pj_tok_take), so a stream holds none between events.
 */
#include <json-c/json.h>
#include <math.h>
#include <string.h>

#include "oai.h"

/* Nesting allowed in JSON the user gives us (tool schemas can be deep). */
#define OAI_REQ_DEPTH 128
/* Tool-call indexes beyond this are treated as a protocol error. */
#define OAI_MAX_TOOL_INDEX 1024
/* Choices per answer, as the core bounds them. */
#define OAI_MAX_CHOICES 1024

#define CONST_KEY JSON_C_OBJECT_ADD_CONSTANT_KEY

/* ---- small helpers ------------------------------------------------------- */

static const char *dname(const llmux_oai_dialect *d)
{
    return d && d->name ? d->name : "openai";
}

static int get_int(json_object *o, const char *key, int64_t *out)
{
    return llmux_pj_as_int(llmux_pj_get(o, key), out);
}

static int proto(const llmux_oai_dialect *d, const llmux_host *h,
                 llmux_out *out, const char *what, const char *s, size_t len)
{
    return llmux_pj_proto(h, out, dname(d), what, s, len);
}

int llmux_oai_never(const llmux_oai_dialect *d, const char *key)
{
    const char *const *n;
    if (!d || !d->never_send)
        return 0;
    for (n = d->never_send; *n; n++)
        if (strcmp(*n, key) == 0)
            return 1;
    return 0;
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct oai_enc {
    const llmux_oai_dialect *d;
    const llmux_host *h;
    const llmux_params *p;
    json_tokener *tok; /* taken on the first user JSON to parse */
    json_object *body;
} oai_enc;

/* Adds `v` (owned) under `key` unless the dialect never sends it. The key
 * must outlive the body (literals, dialect strings, options). */
static int put(oai_enc *e, json_object *obj, const char *key, json_object *v)
{
    if (obj == e->body && llmux_oai_never(e->d, key)) {
        json_object_put(v);
        return 0;
    }
    if (json_object_object_add_ex(obj, key, v, CONST_KEY) != 0) {
        json_object_put(v);
        return LLMUX_ENOMEM;
    }
    return 0;
}

static int put_str(oai_enc *e, json_object *obj, const char *key, const char *s)
{
    json_object *v = json_object_new_string(s);
    return v ? put(e, obj, key, v) : LLMUX_ENOMEM;
}

static int put_i64(oai_enc *e, json_object *obj, const char *key, int64_t n)
{
    json_object *v = json_object_new_int64(n);
    return v ? put(e, obj, key, v) : LLMUX_ENOMEM;
}

/* A field the caller set that this provider's API cannot take: refused by
 * name (LLMUX_ENOTSUP), never dropped in silence. */
static int refuse(oai_enc *e, const char *field)
{
    e->h->log(LLMUX_LOG_ERROR,
              "%s: the request field \"%s\" is not supported by this "
              "provider",
              dname(e->d), field);
    return LLMUX_ENOTSUP;
}

static int put_dbl(oai_enc *e, const char *key, double v, const char *what)
{
    int rc;
    if (llmux_oai_never(e->d, key))
        return refuse(e, key);
    rc = llmux_pj_add_double(e->h, e->body, key, v);
    if (rc == LLMUX_EINVAL)
        e->h->log(LLMUX_LOG_ERROR, "%s: %s is not a finite number", dname(e->d),
                  what);
    return rc;
}

/* Parses user-supplied JSON text for field `what`; *out may be NULL for
 * JSON null. */
static int user_json(oai_enc *e, const char *text, const char *what,
                     json_object **out)
{
    return llmux_pj_user_json(e->h, dname(e->d), &e->tok, OAI_REQ_DEPTH, text,
                              what, out);
}

static int put_user_json(oai_enc *e, const char *key, const char *text,
                         const char *what)
{
    json_object *v;
    int rc = user_json(e, text, what, &v);
    if (rc != 0)
        return rc;
    if (!v) /* JSON null: leave the field out */
        return 0;
    return put(e, e->body, key, v);
}

static const char *role_name(int role)
{
    switch (role) {
    case LLMUX_ROLE_SYSTEM:
        return "system";
    case LLMUX_ROLE_USER:
        return "user";
    case LLMUX_ROLE_ASSISTANT:
        return "assistant";
    case LLMUX_ROLE_TOOL:
        return "tool";
    case LLMUX_ROLE_DEVELOPER:
        return "developer";
    }
    return NULL;
}

static int enc_tool_calls(oai_enc *e, json_object *m, const llmux_msg *msg)
{
    json_object *arr = json_object_new_array_ext((int)msg->n_tool_calls);
    size_t i;
    int rc;
    if (!arr)
        return LLMUX_ENOMEM;
    rc = put(e, m, "tool_calls", arr);
    for (i = 0; rc == 0 && i < msg->n_tool_calls; i++) {
        const llmux_tool_call *tc = &msg->tool_calls[i];
        json_object *c = llmux_pj_push_object(arr);
        json_object *fn = c ? json_object_new_object() : NULL;
        if (!fn)
            return LLMUX_ENOMEM;
        if ((rc = put(e, c, "function", fn)) != 0)
            return rc;
        if (tc->id && (rc = put_str(e, c, "id", tc->id)) != 0)
            return rc;
        if ((rc = put_str(e, c, "type", "function")) != 0)
            return rc;
        if ((rc = put_str(e, fn, "name", tc->name ? tc->name : "")) != 0)
            return rc;
        rc = put_str(e, fn, "arguments",
                     tc->arguments && *tc->arguments ? tc->arguments : "{}");
    }
    return rc;
}

static int enc_message(oai_enc *e, json_object *arr, const llmux_msg *msg,
                       size_t i)
{
    const char *role = role_name(msg->role);
    json_object *m;
    int rc;
    if (!role) {
        e->h->log(LLMUX_LOG_ERROR, "%s: message %zu has an unknown role %d",
                  dname(e->d), i, msg->role);
        return LLMUX_EINVAL;
    }
    if (!(m = llmux_pj_push_object(arr)))
        return LLMUX_ENOMEM;
    if ((rc = put_str(e, m, "role", role)) != 0)
        return rc;
    if (msg->content_json) {
        json_object *c;
        if ((rc = user_json(e, msg->content_json, "message content", &c)))
            return rc;
        rc = put(e, m, "content", c);
    } else if (msg->content) {
        rc = put_str(e, m, "content", msg->content);
    } else if (msg->role == LLMUX_ROLE_ASSISTANT) {
        rc = put(e, m, "content", NULL); /* null beside tool_calls */
    } else {
        rc = put_str(e, m, "content", "");
    }
    if (rc != 0)
        return rc;
    if (msg->name && *msg->name &&
        (msg->role != LLMUX_ROLE_TOOL ||
         (e->d->flags & LLMUX_OAI_TOOL_MSG_NAME)) &&
        (rc = put_str(e, m, "name", msg->name)) != 0)
        return rc;
    if (msg->tool_call_id && msg->role == LLMUX_ROLE_TOOL &&
        (rc = put_str(e, m, "tool_call_id", msg->tool_call_id)) != 0)
        return rc;
    if (msg->n_tool_calls && msg->tool_calls &&
        msg->role == LLMUX_ROLE_ASSISTANT &&
        (rc = enc_tool_calls(e, m, msg)) != 0)
        return rc;
    if (msg->reasoning && msg->role == LLMUX_ROLE_ASSISTANT &&
        (e->d->flags & LLMUX_OAI_SEND_REASONING) && e->d->reasoning_field &&
        (rc = put_str(e, m, e->d->reasoning_field, msg->reasoning)) != 0)
        return rc;
    return 0;
}

static int enc_stop(oai_enc *e)
{
    const llmux_params *p = e->p;
    json_object *arr;
    if (!p->n_stop || !p->stop)
        return 0;
    if (llmux_oai_never(e->d, "stop"))
        return refuse(e, "stop");
    arr = llmux_pj_str_array(p->stop, p->n_stop);
    return arr ? put(e, e->body, "stop", arr) : LLMUX_ENOMEM;
}

/* temperature, top_p, seed, stop: shared by chat and text completion. */
static int enc_sampling(oai_enc *e)
{
    const llmux_params *p = e->p;
    int rc;
    if ((p->has & LLMUX_HAS_TEMPERATURE) &&
        (rc = put_dbl(e, "temperature", p->temperature, "temperature")))
        return rc;
    if ((p->has & LLMUX_HAS_TOP_P) &&
        (rc = put_dbl(e, "top_p", p->top_p, "top_p")))
        return rc;
    if ((p->has & LLMUX_HAS_SEED) &&
        (!e->d->seed_field || llmux_oai_never(e->d, e->d->seed_field)))
        return refuse(e, "seed");
    if ((p->has & LLMUX_HAS_SEED) &&
        (rc = put_i64(e, e->body, e->d->seed_field, p->seed)))
        return rc;
    return enc_stop(e);
}

static int enc_stream(oai_enc *e)
{
    json_object *so;
    int rc;
    if (!e->p->stream)
        return 0;
    if ((rc = put(e, e->body, "stream", json_object_new_boolean(1))) != 0)
        return rc;
    if (!e->d->stream_usage || llmux_oai_never(e->d, "stream_options"))
        return 0;
    so = json_object_new_object();
    if (!so)
        return LLMUX_ENOMEM;
    if ((rc = put(e, e->body, "stream_options", so)) != 0)
        return rc;
    return put(e, so, "include_usage", json_object_new_boolean(1));
}

/* Merges extra_json's members that are not set yet and may be sent. */
static int enc_extra(oai_enc *e)
{
    json_object *x;
    int rc;
    if (!e->p->extra_json)
        return 0;
    if ((rc = user_json(e, e->p->extra_json, "extra request fields", &x)))
        return rc;
    if (!x)
        return 0;
    if (!json_object_is_type(x, json_type_object)) {
        json_object_put(x);
        e->h->log(LLMUX_LOG_ERROR,
                  "%s: extra request fields are not a JSON object",
                  dname(e->d));
        return LLMUX_EINVAL;
    }
    {
        json_object_object_foreach(x, key, val)
        {
            /* The core decides whether the answer streams. */
            if (strcmp(key, "stream") == 0 ||
                (strcmp(key, "stream_options") == 0 && !e->p->stream))
                continue;
            if (llmux_oai_never(e->d, key)) {
                if (!val) /* null asks for nothing: not sent */
                    continue;
                rc = refuse(e, key); /* before x and its keys go */
                json_object_put(x);
                return rc;
            }
            if (json_object_object_get_ex(e->body, key, NULL))
                continue;
            if (json_object_object_add(e->body, key, json_object_get(val))) {
                json_object_put(val);
                json_object_put(x);
                return LLMUX_ENOMEM;
            }
        }
    }
    json_object_put(x);
    return 0;
}

static int enc_model(oai_enc *e)
{
    if (!e->p->model || !*e->p->model) {
        e->h->log(LLMUX_LOG_ERROR, "%s: no model given", dname(e->d));
        return LLMUX_EINVAL;
    }
    return put_str(e, e->body, "model", e->p->model);
}

static int enc_chat(oai_enc *e)
{
    const llmux_params *p = e->p;
    const llmux_oai_dialect *d = e->d;
    json_object *msgs;
    const char *mtf;
    size_t i;
    int rc;
    if ((rc = enc_model(e)) != 0)
        return rc;
    msgs = json_object_new_array_ext((int)p->n_messages);
    if (!msgs)
        return LLMUX_ENOMEM;
    if ((rc = put(e, e->body, "messages", msgs)) != 0)
        return rc;
    for (i = 0; i < p->n_messages; i++)
        if ((rc = enc_message(e, msgs, &p->messages[i], i)) != 0)
            return rc;
    if (p->has & LLMUX_HAS_MAX_TOKENS) {
        mtf = llmux_pj_option(e->h, p, "max_tokens_field");
        if (!mtf || !*mtf)
            mtf = d->max_tokens_field ? d->max_tokens_field : "max_tokens";
        if ((rc = put_i64(e, e->body, mtf, p->max_tokens)) != 0)
            return rc;
    }
    if ((rc = enc_sampling(e)) != 0)
        return rc;
    if (p->tools_json &&
        (rc = put_user_json(e, "tools", p->tools_json, "tools")) != 0)
        return rc;
    if (p->tool_choice_json) {
        const char *tc = p->tool_choice_json;
        /* Also take the bare words, unquoted. */
        if (strcmp(tc, "auto") == 0 || strcmp(tc, "none") == 0 ||
            strcmp(tc, "required") == 0 || strcmp(tc, "any") == 0)
            rc = put_str(e, e->body, "tool_choice", tc);
        else
            rc = put_user_json(e, "tool_choice", tc, "tool_choice");
        if (rc != 0)
            return rc;
    }
    if (p->response_format_json &&
        (rc = put_user_json(e, "response_format", p->response_format_json,
                            "response_format")) != 0)
        return rc;
    if (d->body_options) {
        const char *const *k;
        for (k = d->body_options; *k; k++) {
            const char *v = llmux_pj_option(e->h, p, *k);
            if (v && *v && llmux_oai_never(d, *k))
                return refuse(e, *k);
            if (v && *v && (rc = put_str(e, e->body, *k, v)) != 0)
                return rc;
        }
    }
    return enc_stream(e);
}

static int enc_complete(oai_enc *e)
{
    const llmux_params *p = e->p;
    const char *mtf = e->d->complete_max_tokens_field;
    int rc;
    if ((rc = enc_model(e)) != 0)
        return rc;
    if ((rc = put_str(e, e->body, "prompt", p->prompt ? p->prompt : "")))
        return rc;
    if (p->suffix && (rc = put_str(e, e->body, "suffix", p->suffix)) != 0)
        return rc;
    if ((p->has & LLMUX_HAS_MAX_TOKENS) &&
        (rc = put_i64(e, e->body, mtf ? mtf : "max_tokens", p->max_tokens)))
        return rc;
    if ((rc = enc_sampling(e)) != 0)
        return rc;
    return enc_stream(e);
}

static int enc_embed(oai_enc *e)
{
    const llmux_params *p = e->p;
    const char *dim;
    int rc;
    if ((rc = enc_model(e)) != 0)
        return rc;
    if (!p->n_input || !p->input) {
        e->h->log(LLMUX_LOG_ERROR, "%s: no input to embed", dname(e->d));
        return LLMUX_EINVAL;
    }
    if (p->n_input == 1) {
        rc = put_str(e, e->body, "input", p->input[0] ? p->input[0] : "");
    } else {
        json_object *arr = llmux_pj_str_array(p->input, p->n_input);
        rc = arr ? put(e, e->body, "input", arr) : LLMUX_ENOMEM;
    }
    if (rc != 0)
        return rc;
    if ((rc = put_str(e, e->body, "encoding_format", "float")) != 0)
        return rc;
    dim = llmux_pj_option(e->h, p, "dimensions");
    if (dim && *dim) {
        int64_t n;
        if (llmux_pj_parse_uint(dim, &n) != 0 || n <= 0) {
            e->h->log(LLMUX_LOG_ERROR,
                      "%s: option dimensions must be a positive integer",
                      dname(e->d));
            return LLMUX_EINVAL;
        }
        if ((rc = put_i64(e, e->body, "dimensions", n)) != 0)
            return rc;
    }
    return 0;
}

static int enc_headers(oai_enc *e, llmux_http_request *http)
{
    const llmux_oai_header_opt *ho;
    int rc;
    if (!e->d->header_options)
        return 0;
    for (ho = e->d->header_options; ho->option; ho++) {
        const char *v = llmux_pj_option(e->h, e->p, ho->option);
        if (v && *v && (rc = e->h->http_header(http, ho->header, v)) != 0)
            return rc;
    }
    return 0;
}

int llmux_oai_encode(const llmux_oai_dialect *d, const llmux_host *h,
                     llmux_call *call, llmux_http_request *http)
{
    oai_enc e;
    const char *path = NULL;
    int rc = 0, op = call->params->op;
    memset(&e, 0, sizeof(e));
    e.d = d;
    e.h = h;
    e.p = call->params;
    switch (op) {
    case LLMUX_OP_CHAT:
        path = d->chat_path;
        break;
    case LLMUX_OP_COMPLETE:
        path = d->complete_path;
        break;
    case LLMUX_OP_EMBED:
        path = d->embed_path;
        break;
    case LLMUX_OP_MODELS:
        path = d->models_path;
        break;
    }
    if (!path)
        return LLMUX_ENOTSUP;
    if (op == LLMUX_OP_MODELS) {
        if ((rc = h->http_method(http, "GET")) != 0 ||
            (rc = h->http_path(http, path)) != 0)
            return rc;
        return enc_headers(&e, http);
    }
    e.body = json_object_new_object();
    if (!e.body)
        return LLMUX_ENOMEM;
    if (op == LLMUX_OP_CHAT)
        rc = enc_chat(&e);
    else if (op == LLMUX_OP_COMPLETE)
        rc = enc_complete(&e);
    else
        rc = enc_embed(&e);
    if (rc == 0)
        rc = enc_extra(&e);
    if (rc == 0 && d->patch_request)
        rc = d->patch_request(d, h, call, e.body);
    if (rc == 0 && (rc = h->http_method(http, "POST")) == 0 &&
        (rc = h->http_path(http, path)) == 0 &&
        (rc = enc_headers(&e, http)) == 0)
        rc = llmux_pj_http_json(h, http, e.body);
    json_object_put(e.body);
    llmux_pj_tok_give(e.tok, OAI_REQ_DEPTH);
    return rc;
}

/* ---- decoding: pieces ---------------------------------------------------- */

int llmux_oai_finish(const char *s)
{
    if (!s)
        return LLMUX_FINISH_NONE;
    if (strcmp(s, "stop") == 0)
        return LLMUX_FINISH_STOP;
    if (strcmp(s, "length") == 0 || strcmp(s, "model_length") == 0)
        return LLMUX_FINISH_LENGTH;
    if (strcmp(s, "tool_calls") == 0 || strcmp(s, "function_call") == 0)
        return LLMUX_FINISH_TOOL_CALLS;
    if (strcmp(s, "content_filter") == 0)
        return LLMUX_FINISH_CONTENT_FILTER;
    if (strcmp(s, "error") == 0)
        return LLMUX_FINISH_ERROR;
    return LLMUX_FINISH_STOP;
}

int llmux_oai_put_finish(const llmux_host *h, llmux_out *out, json_object *fr)
{
    int rc;
    if (!json_object_is_type(fr, json_type_string))
        return 0;
    rc = h->out_int(out, LLMUX_F_FINISH,
                    llmux_oai_finish(json_object_get_string(fr)));
    if (rc == 0)
        rc = h->out_str(out, LLMUX_F_FINISH_RAW, json_object_get_string(fr),
                        (size_t)json_object_get_string_len(fr));
    return rc;
}

static int put_string(const llmux_host *h, llmux_out *out, int field,
                      json_object *s)
{
    size_t n = (size_t)json_object_get_string_len(s);
    if (!n)
        return 0;
    return h->out_str(out, field, json_object_get_string(s), n);
}

int llmux_oai_put_content(const llmux_host *h, llmux_out *out,
                          json_object *content, int field)
{
    size_t i, n;
    int rc;
    if (json_object_is_type(content, json_type_string))
        return put_string(h, out, field, content);
    if (!json_object_is_type(content, json_type_array))
        return 0; /* null, or nothing we know */
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(content, i);
        const char *type = llmux_pj_get_str(part, "type", NULL);
        json_object *v;
        rc = 0;
        if (json_object_is_type(part, json_type_string)) {
            rc = put_string(h, out, field, part);
        } else if (type && strcmp(type, "thinking") == 0) {
            v = llmux_pj_get(part, "thinking");
            rc = llmux_oai_put_content(h, out, v, LLMUX_F_REASONING);
        } else if (!type || strcmp(type, "text") == 0 ||
                   strcmp(type, "output_text") == 0) {
            v = llmux_pj_get(part, "text");
            if (json_object_is_type(v, json_type_string))
                rc = put_string(h, out, field, v);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int llmux_oai_put_usage(const llmux_host *h, llmux_out *out, json_object *u)
{
    static const struct {
        const char *key;
        int field;
    } top[] = {{"prompt_tokens", LLMUX_F_PROMPT_TOKENS},
               {"completion_tokens", LLMUX_F_COMPLETION_TOKENS},
               {"total_tokens", LLMUX_F_TOTAL_TOKENS}};
    int64_t v;
    size_t i;
    int rc;
    if (!json_object_is_type(u, json_type_object))
        return 0;
    for (i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        if (get_int(u, top[i].key, &v) &&
            (rc = h->out_int(out, top[i].field, v)) != 0)
            return rc;
    if (get_int(llmux_pj_get(u, "prompt_tokens_details"), "cached_tokens",
                &v) &&
        (rc = h->out_int(out, LLMUX_F_CACHED_TOKENS, v)) != 0)
        return rc;
    if (get_int(llmux_pj_get(u, "completion_tokens_details"),
                "reasoning_tokens", &v) &&
        (rc = h->out_int(out, LLMUX_F_REASONING_TOKENS, v)) != 0)
        return rc;
    return 0;
}

/* ---- per-request state -------------------------------------------------- */

/* Bits of oai_state.meta: fields already sent in this stream. */
#define META_ID      1u
#define META_MODEL   2u
#define META_CREATED 4u
#define META_FP      8u

/* A tool call of a stream: its choice, the index it had on the wire, its
 * id and the index it has in its choice. */
typedef struct oai_slot {
    int choice;
    int num;      /* 0, 1, ... in its choice, in order of appearance */
    int64_t wire; /* -1: the server gave no index */
    char *id;     /* NULL: none seen yet */
} oai_slot;

/* The codec's per-request state (call->state). */
typedef struct oai_state {
    unsigned meta;   /* META_* sent already: chunks repeat them, the core's
                        merge keeps the first, so later copies are skipped */
    oai_slot *slots; /* tool calls seen, in order; position = our index */
    int n_slots, cap_slots;
} oai_state;

/*
 * The index a streamed tool-call delta belongs to. Servers differ: OpenAI
 * sends the id once and then only the wire index; Mistral sends whole calls
 * with an id but no index; Ollama numbers every call 0; some repeat the id
 * on every delta. So: a known id is its call; a new id is a new call; no id
 * means the latest call with that wire index (or the latest call at all
 * when there is no index), else a new call. Calls are numbered 0, 1, ...
 * in order of appearance. Returns the index or a negative code.
 */
static int stream_slot(const llmux_host *h, oai_state *st, int choice,
                       int has_wire, int64_t wire, const char *id,
                       size_t id_len)
{
    int i, num = 0;
    oai_slot *sl;
    if (id) {
        for (i = st->n_slots - 1; i >= 0; i--)
            if (st->slots[i].choice == choice && st->slots[i].id &&
                strlen(st->slots[i].id) == id_len &&
                memcmp(st->slots[i].id, id, id_len) == 0)
                return st->slots[i].num;
    } else {
        for (i = st->n_slots - 1; i >= 0; i--)
            if (st->slots[i].choice == choice &&
                (!has_wire || st->slots[i].wire == wire))
                return st->slots[i].num;
    }
    for (i = 0; i < st->n_slots; i++)
        num += st->slots[i].choice == choice;
    if (st->n_slots >= OAI_MAX_TOOL_INDEX)
        return LLMUX_EPROTO;
    if (st->n_slots == st->cap_slots) {
        int cap = st->cap_slots ? st->cap_slots * 2 : 4;
        oai_slot *n = h->realloc(st->slots, (size_t)cap * sizeof(*n));
        if (!n)
            return LLMUX_ENOMEM;
        st->slots = n;
        st->cap_slots = cap;
    }
    sl = &st->slots[st->n_slots];
    sl->choice = choice;
    sl->num = num;
    sl->wire = has_wire ? wire : -1;
    sl->id = NULL;
    if (id) {
        sl->id = h->alloc(id_len + 1);
        if (!sl->id)
            return LLMUX_ENOMEM;
        memcpy(sl->id, id, id_len);
        sl->id[id_len] = '\0';
    }
    st->n_slots++;
    return num;
}

/*
 * One tool call: {"index","id","type","function":{"name","arguments"}}.
 * In a whole message (st NULL) its index is its position `pos`; in a
 * stream delta, see stream_slot().
 */
static int put_call(const llmux_host *h, llmux_out *out, json_object *tc,
                    int pos, oai_state *st, int choice)
{
    json_object *fn = llmux_pj_get(tc, "function"), *args, *wire_v;
    const char *id, *name, *a = "";
    size_t alen = 0, n, id_len;
    int64_t wire = -1;
    int index = pos;
    if (!json_object_is_type(fn, json_type_object))
        fn = tc; /* {"name","arguments"} at the top (legacy shapes) */
    wire_v = llmux_pj_get(tc, "index");
    if (wire_v && (!llmux_pj_as_int(wire_v, &wire) || wire < 0 ||
                   wire >= OAI_MAX_TOOL_INDEX))
        return LLMUX_EPROTO;
    /* Later deltas of some servers repeat "name":"" (or "id":""): empty
     * means "not given", never "rename to nothing". */
    id = llmux_pj_get_str(tc, "id", &id_len);
    if (id && !id_len)
        id = NULL;
    name = llmux_pj_get_str(fn, "name", &n);
    if (name && !n)
        name = NULL;
    if (st && (index = stream_slot(h, st, choice, wire_v != NULL, wire, id,
                                   id_len)) < 0)
        return index;
    args = llmux_pj_get(fn, "arguments");
    if (json_object_is_type(args, json_type_string)) {
        a = json_object_get_string(args);
        alen = (size_t)json_object_get_string_len(args);
    } else if (args) {
        a = llmux_pj_text(args, &alen); /* an object: send it as JSON text */
        if (!a)
            return LLMUX_ENOMEM;
    }
    return h->out_tool_call(out, index, id, name, a, alen);
}

static int put_calls(const llmux_host *h, llmux_out *out, json_object *calls,
                     oai_state *st, int choice)
{
    size_t i, n;
    int rc;
    if (!json_object_is_type(calls, json_type_array))
        return 0;
    n = json_object_array_length(calls);
    if (n > OAI_MAX_TOOL_INDEX)
        return LLMUX_EPROTO;
    for (i = 0; i < n; i++) {
        json_object *tc = json_object_array_get_idx(calls, i);
        if (!json_object_is_type(tc, json_type_object))
            continue;
        if ((rc = put_call(h, out, tc, (int)i, st, choice)) != 0)
            return rc;
    }
    return 0;
}

int llmux_oai_put_tool_calls(const llmux_host *h, llmux_out *out,
                             json_object *calls)
{
    return put_calls(h, out, calls, NULL, 0);
}

/* ---- decoding: chat / completion ----------------------------------------- */

/*
 * Objects are scanned once, member by member, instead of looked up key by
 * key: a delta usually has one member, and a chunk's dozen members cost
 * less to walk than seven hash lookups.
 */
#define FOREACH_MEMBER(obj, k, v, e)                                           \
    for ((e) = lh_table_head(json_object_get_object(obj));                     \
         (e) && ((k) = (const char *)lh_entry_k(e),                            \
                (v) = (json_object *)lh_entry_v(e), 1);                        \
         (e) = lh_entry_next(e))

/* Members of a response or chunk that matter. */
typedef struct oai_top {
    json_object *id, *model, *created, *fingerprint, *choices, *usage, *error;
    int others; /* a member not above (nor "object"): fields to keep */
} oai_top;

static void scan_top(json_object *root, oai_top *t)
{
    struct lh_entry *e;
    const char *k;
    json_object *v;
    memset(t, 0, sizeof(*t));
    FOREACH_MEMBER(root, k, v, e)
    {
        switch (k[0]) {
        case 'c':
            if (strcmp(k, "choices") == 0)
                t->choices = v;
            else if (strcmp(k, "created") == 0)
                t->created = v;
            else
                t->others |= v != NULL;
            break;
        case 'e':
            if (strcmp(k, "error") == 0)
                t->error = v;
            else
                t->others |= v != NULL;
            break;
        case 'i':
            if (strcmp(k, "id") == 0)
                t->id = v;
            else
                t->others |= v != NULL;
            break;
        case 'm':
            if (strcmp(k, "model") == 0)
                t->model = v;
            else
                t->others |= v != NULL;
            break;
        case 'o':
            if (strcmp(k, "object") != 0)
                t->others |= v != NULL;
            break;
        case 's':
            if (strcmp(k, "system_fingerprint") == 0)
                t->fingerprint = v;
            else
                t->others |= v != NULL;
            break;
        case 'u':
            if (strcmp(k, "usage") == 0)
                t->usage = v;
            else
                t->others |= v != NULL;
            break;
        default:
            t->others |= v != NULL;
        }
    }
}

static int put_meta_str(const llmux_host *h, llmux_out *out, int field,
                        json_object *v, unsigned bit, unsigned *meta)
{
    size_t n;
    int rc;
    if ((*meta & bit) || !json_object_is_type(v, json_type_string))
        return 0;
    n = (size_t)json_object_get_string_len(v);
    if (!n)
        return 0;
    rc = h->out_str(out, field, json_object_get_string(v), n);
    *meta |= bit;
    return rc;
}

static int put_meta(const llmux_host *h, llmux_out *out, const oai_top *t,
                    unsigned *meta)
{
    int64_t v;
    int rc;
    if ((rc = put_meta_str(h, out, LLMUX_F_ID, t->id, META_ID, meta)) ||
        (rc =
             put_meta_str(h, out, LLMUX_F_MODEL, t->model, META_MODEL, meta)) ||
        (rc = put_meta_str(h, out, LLMUX_F_SYSTEM_FINGERPRINT, t->fingerprint,
                           META_FP, meta)))
        return rc;
    if (!(*meta & META_CREATED) && llmux_pj_as_int(t->created, &v)) {
        if ((rc = h->out_int(out, LLMUX_F_CREATED, v)) != 0)
            return rc;
        *meta |= META_CREATED;
    }
    return 0;
}

/* ---- decoding: fields kept as they are ----------------------------------- */

/* The members each place has that the common shape models; every other
 * one is handed to the core as it is (host->out_json). */
static const char *const top_known[] = {"id",
                                        "object",
                                        "created",
                                        "model",
                                        "choices",
                                        "usage",
                                        "system_fingerprint",
                                        "error",
                                        NULL};
static const char *const choice_known[] = {
    "index", "message", "delta", "text", "finish_reason", "logprobs", NULL};
static const char *const message_known[] = {
    "role",      "content",    "refusal",       "reasoning_content",
    "reasoning", "tool_calls", "function_call", NULL};
static const char *const usage_known[] = {"prompt_tokens", "completion_tokens",
                                          "total_tokens", NULL};

static int known(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(k, *list) == 0)
            return 1;
    return 0;
}

/* Hands each member of `obj` not in `list` to the core at `where`; null
 * members say nothing and are skipped. A core without out_json keeps
 * only what it models. */
int llmux_oai_put_extras(const llmux_host *h, llmux_out *out, json_object *obj,
                         int where, const char *const *list)
{
    struct lh_entry *e;
    const char *k;
    json_object *v;
    if (!LLMUX_HOST_HAS(h, out_json) || !h->out_json ||
        !json_object_is_type(obj, json_type_object))
        return 0;
    FOREACH_MEMBER(obj, k, v, e)
    {
        const char *text;
        size_t n;
        int rc;
        if (!v || known(k, list))
            continue;
        text = json_object_to_json_string_length(
            v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        if (!text)
            return LLMUX_ENOMEM;
        if ((rc = h->out_json(out, where, k, text, n)) != 0)
            return rc;
    }
    return 0;
}

/* ---- decoding: logprobs -------------------------------------------------- */

static int can_logprob(const llmux_host *h)
{
    return LLMUX_HOST_HAS(h, out_logprob) && h->out_logprob;
}

/* A token's "bytes": an array of byte values, or null. */
static int get_bytes(json_object *b, unsigned char **buf, size_t *cap,
                     size_t *n, const llmux_host *h)
{
    size_t i, len;
    *n = 0;
    if (!b)
        return 1; /* none */
    if (!json_object_is_type(b, json_type_array))
        return -1;
    len = json_object_array_length(b);
    if (len > *cap) {
        unsigned char *p = h->realloc(*buf, len);
        if (!p)
            return LLMUX_ENOMEM;
        *buf = p;
        *cap = len;
    }
    for (i = 0; i < len; i++) {
        int64_t v;
        if (!llmux_pj_as_int(json_object_array_get_idx(b, i), &v) || v < 0 ||
            v > 255)
            return -1;
        (*buf)[i] = (unsigned char)v;
    }
    *n = len;
    return 0;
}

/* One {"token","logprob","bytes"} entry (an alternative with top). */
static int put_token(const llmux_host *h, llmux_out *out, int list,
                     json_object *t, unsigned flags, unsigned char **buf,
                     size_t *cap)
{
    size_t tlen, nb;
    const char *tok = llmux_pj_get_str(t, "token", &tlen);
    json_object *lp = llmux_pj_get(t, "logprob");
    int rc;
    if (!tok || !llmux_pj_is_number(lp))
        return LLMUX_EPROTO;
    rc = get_bytes(llmux_pj_get(t, "bytes"), buf, cap, &nb, h);
    if (rc < 0)
        return rc == -1 ? LLMUX_EPROTO : rc;
    return h->out_logprob(out, list, tok, tlen, json_object_get_double(lp),
                          rc == 1 ? NULL : *buf, nb, flags);
}

/* A list of OpenAI token entries, each with its top_logprobs. */
static int put_token_list(const llmux_host *h, llmux_out *out, int list,
                          json_object *arr)
{
    unsigned char *buf = NULL;
    size_t cap = 0, i, k, n;
    int rc;
    if (!arr)
        return 0; /* null: not reported */
    if (!json_object_is_type(arr, json_type_array))
        return LLMUX_EPROTO;
    if ((rc = h->out_logprob(out, list, NULL, 0, 0, NULL, 0, 0)) != 0)
        return rc;
    n = json_object_array_length(arr);
    for (i = 0; rc == 0 && i < n; i++) {
        json_object *t = json_object_array_get_idx(arr, i);
        json_object *top = llmux_pj_get(t, "top_logprobs");
        rc = put_token(h, out, list, t, 0, &buf, &cap);
        if (rc == 0 && top && !json_object_is_type(top, json_type_array))
            rc = LLMUX_EPROTO;
        for (k = 0; rc == 0 && top && k < json_object_array_length(top); k++)
            rc = put_token(h, out, list, json_object_array_get_idx(top, k),
                           LLMUX_LOGPROB_TOP, &buf, &cap);
    }
    if (buf)
        h->free(buf);
    return rc;
}

/* The legacy logprobs' "text_offset", which the core does not model: a
 * field {"text_offset":[...]} of the choice's "logprobs", which the core
 * merges into its own "logprobs" object in the JSON. */
static int put_text_offset(const llmux_host *h, llmux_out *out,
                           json_object *offsets)
{
    json_object *o;
    const char *text;
    size_t n;
    int rc;
    if (!offsets || !LLMUX_HOST_HAS(h, out_json) || !h->out_json)
        return 0;
    if (!(o = json_object_new_object()))
        return LLMUX_ENOMEM;
    json_object_object_add(o, "text_offset", json_object_get(offsets));
    text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    rc = text ? h->out_json(out, LLMUX_JSON_AT_CHOICE, "logprobs", text, n)
              : LLMUX_ENOMEM;
    json_object_put(o);
    return rc;
}

/* A text completion's logprobs in the legacy shape: "tokens",
 * "token_logprobs" (null for a token without one) and "top_logprobs" (a
 * {token: logprob} map per token). */
static int put_legacy_logprobs(const llmux_host *h, llmux_out *out,
                               json_object *lp)
{
    json_object *tk = llmux_pj_get(lp, "tokens");
    json_object *tl = llmux_pj_get(lp, "token_logprobs");
    json_object *top = llmux_pj_get(lp, "top_logprobs");
    size_t i, n;
    int rc;
    if (!json_object_is_type(tk, json_type_array) ||
        !json_object_is_type(tl, json_type_array) ||
        json_object_array_length(tl) != json_object_array_length(tk) ||
        (top && !json_object_is_type(top, json_type_array)))
        return LLMUX_EPROTO;
    if ((rc = h->out_logprob(out, 0, NULL, 0, 0, NULL, 0, 0)) != 0)
        return rc;
    n = json_object_array_length(tk);
    for (i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tk, i);
        json_object *l = json_object_array_get_idx(tl, i);
        json_object *m = top ? json_object_array_get_idx(top, i) : NULL;
        struct lh_entry *e;
        const char *k;
        json_object *v;
        if (!json_object_is_type(t, json_type_string) ||
            (l && !llmux_pj_is_number(l)))
            return LLMUX_EPROTO;
        rc = h->out_logprob(out, 0, json_object_get_string(t),
                            (size_t)json_object_get_string_len(t),
                            l ? json_object_get_double(l) : NAN, NULL, 0, 0);
        if (rc != 0)
            return rc;
        if (!json_object_is_type(m, json_type_object))
            continue;
        FOREACH_MEMBER(m, k, v, e)
        {
            if (!llmux_pj_is_number(v))
                return LLMUX_EPROTO;
            if ((rc = h->out_logprob(out, 0, k, strlen(k),
                                     json_object_get_double(v), NULL, 0,
                                     LLMUX_LOGPROB_TOP)) != 0)
                return rc;
        }
    }
    return put_text_offset(h, out, llmux_pj_get(lp, "text_offset"));
}

/* A choice's "logprobs": {"content":[...],"refusal":[...]} (chat), the
 * legacy shape (text completions), or null. */
static int put_logprobs(const llmux_host *h, llmux_out *out, json_object *lp)
{
    int rc;
    if (!lp || !can_logprob(h))
        return 0;
    if (!json_object_is_type(lp, json_type_object))
        return LLMUX_EPROTO;
    if (llmux_pj_get(lp, "tokens"))
        return put_legacy_logprobs(h, out, lp);
    if ((rc = put_token_list(h, out, LLMUX_LOGPROBS_CONTENT,
                             llmux_pj_get(lp, "content"))) != 0)
        return rc;
    return put_token_list(h, out, LLMUX_LOGPROBS_REFUSAL,
                          llmux_pj_get(lp, "refusal"));
}

int llmux_oai_each_part(json_object *body,
                        int (*fn)(json_object *part, const char *type,
                                  size_t msg, void *ud),
                        void *ud)
{
    json_object *msgs = llmux_pj_get(body, "messages");
    size_t i, k, n;
    int rc;
    if (!json_object_is_type(msgs, json_type_array))
        return 0;
    n = json_object_array_length(msgs);
    for (i = 0; i < n; i++) {
        json_object *c =
            llmux_pj_get(json_object_array_get_idx(msgs, i), "content");
        if (!json_object_is_type(c, json_type_array))
            continue;
        for (k = 0; k < json_object_array_length(c); k++) {
            json_object *part = json_object_array_get_idx(c, k);
            const char *type = llmux_pj_get_str(part, "type", NULL);
            if ((rc = fn(part, type ? type : "", i, ud)) != 0)
                return rc;
        }
    }
    return 0;
}

struct part_check {
    const llmux_oai_dialect *d;
    const llmux_host *h;
};

static int openai_part(json_object *part, const char *type, size_t msg,
                       void *ud)
{
    const struct part_check *pc = ud;
    (void)part;
    if (strcmp(type, "document_url") != 0)
        return 0;
    pc->h->log(LLMUX_LOG_ERROR,
               "%s: message %zu: the content part \"document_url\" is not "
               "supported by this provider: send the file's bytes (a \"file\" "
               "part) or an uploaded file's id",
               dname(pc->d), msg);
    return LLMUX_ENOTSUP;
}

int llmux_oai_patch_openai(const llmux_oai_dialect *d, const llmux_host *h,
                           llmux_call *call, json_object *body)
{
    struct part_check pc;
    (void)call;
    pc.d = d;
    pc.h = h;
    return llmux_oai_each_part(body, openai_part, &pc);
}

int llmux_oai_put_logprobs(const llmux_host *h, llmux_out *out,
                           json_object *tokens)
{
    if (!can_logprob(h))
        return 0;
    return put_token_list(h, out, LLMUX_LOGPROBS_CONTENT, tokens);
}

/* ---- decoding: choices --------------------------------------------------- */

static int put_message(const llmux_host *h, llmux_out *out, json_object *m,
                       oai_state *st, int choice)
{
    struct lh_entry *e;
    const char *k;
    json_object *v, *calls = NULL, *fcall = NULL;
    int rc = 0, others = 0;
    FOREACH_MEMBER(m, k, v, e)
    {
        if (!v)
            continue;
        switch (k[0]) {
        case 'c':
            if (strcmp(k, "content") == 0)
                rc = llmux_oai_put_content(h, out, v, LLMUX_F_TEXT);
            else
                others = 1;
            break;
        case 'r':
            if (strcmp(k, "refusal") == 0)
                rc = llmux_oai_put_content(h, out, v, LLMUX_F_REFUSAL);
            /* OpenAI-compatible servers: vLLM, DeepSeek
             * "reasoning_content"; Ollama /v1, OpenRouter "reasoning" */
            else if (strcmp(k, "reasoning_content") == 0 ||
                     strcmp(k, "reasoning") == 0)
                rc = llmux_oai_put_content(h, out, v, LLMUX_F_REASONING);
            else if (strcmp(k, "role") != 0)
                others = 1;
            break;
        case 't':
            if (strcmp(k, "tool_calls") == 0)
                calls = v;
            else
                others = 1;
            break;
        case 'f':
            if (strcmp(k, "function_call") == 0)
                fcall = v; /* the deprecated single call */
            else
                others = 1;
            break;
        default:
            others = 1;
        }
        if (rc != 0)
            return rc;
    }
    if (calls)
        rc = put_calls(h, out, calls, st, choice);
    else if (json_object_is_type(fcall, json_type_object))
        rc = put_call(h, out, fcall, 0, st, choice);
    if (rc != 0 || !others)
        return rc;
    return llmux_oai_put_extras(h, out, m, LLMUX_JSON_AT_MESSAGE,
                                message_known);
}

/* Choice `c`, the pos-th of its array: its index (the position when it
 * has none) selects where its fields go. A core without out_choice keeps
 * choice 0 only. */
static int decode_choice(const llmux_oai_dialect *d, const llmux_host *h,
                         llmux_out *out, json_object *c, size_t pos,
                         oai_state *st, const char *body, size_t len)
{
    struct lh_entry *e;
    const char *k;
    json_object *v, *m = NULL, *text = NULL, *fr = NULL, *lp = NULL;
    json_object *iv = NULL;
    int64_t index = (int64_t)pos;
    int rc, others = 0;
    if (!json_object_is_type(c, json_type_object))
        return proto(d, h, out, "choice is not an object", body, len);
    FOREACH_MEMBER(c, k, v, e)
    {
        if (strcmp(k, "message") == 0 || strcmp(k, "delta") == 0) {
            if (!m)
                m = v;
        } else if (strcmp(k, "text") == 0) {
            text = v;
        } else if (strcmp(k, "finish_reason") == 0) {
            fr = v;
        } else if (strcmp(k, "logprobs") == 0) {
            lp = v;
        } else if (strcmp(k, "index") == 0) {
            iv = v;
        } else {
            others |= v != NULL;
        }
    }
    if (iv &&
        (!llmux_pj_as_int(iv, &index) || index < 0 || index >= OAI_MAX_CHOICES))
        return proto(d, h, out, "bad choice index", body, len);
    if (!LLMUX_HOST_HAS(h, out_choice) || !h->out_choice) {
        if (index != 0)
            return 0;
    } else if ((rc = h->out_choice(out, (int)index)) != 0) {
        return rc;
    }
    if (m && !json_object_is_type(m, json_type_object))
        return proto(d, h, out, "message is not an object", body, len);
    if (!json_object_is_type(text, json_type_string))
        text = NULL;
    if (!st && !m && !text)
        return proto(d, h, out, "choice has no message", body, len);
    if (text && (rc = put_string(h, out, LLMUX_F_TEXT, text)) != 0)
        return rc;
    if (m && (rc = put_message(h, out, m, st, (int)index)) != 0)
        return rc == LLMUX_EPROTO ? proto(d, h, out, "bad tool call", body, len)
                                  : rc;
    if ((rc = llmux_oai_put_finish(h, out, fr)) != 0)
        return rc;
    if ((rc = put_logprobs(h, out, lp)) != 0)
        return rc == LLMUX_EPROTO ? proto(d, h, out, "bad logprobs", body, len)
                                  : rc;
    return others ? llmux_oai_put_extras(h, out, c, LLMUX_JSON_AT_CHOICE,
                                         choice_known)
                  : 0;
}

static int decode_choices(const llmux_oai_dialect *d, const llmux_host *h,
                          llmux_out *out, const oai_top *t, unsigned *meta,
                          oai_state *st, json_object *root, const char *body,
                          size_t len)
{
    size_t i, n;
    int rc;
    if ((rc = put_meta(h, out, t, meta)) != 0)
        return rc;
    if (!t->choices) {
        if (!st) /* a whole response */
            return proto(d, h, out, "response has no choices", body, len);
    } else if (!json_object_is_type(t->choices, json_type_array)) {
        return proto(d, h, out, "choices is not an array", body, len);
    } else {
        n = json_object_array_length(t->choices);
        if (n > OAI_MAX_CHOICES)
            return proto(d, h, out, "too many choices", body, len);
        for (i = 0; i < n; i++)
            if ((rc = decode_choice(d, h, out,
                                    json_object_array_get_idx(t->choices, i), i,
                                    st, body, len)) != 0)
                return rc;
    }
    if ((rc = llmux_oai_put_usage(h, out, t->usage)) != 0 ||
        (rc = llmux_oai_put_extras(h, out, t->usage, LLMUX_JSON_AT_USAGE,
                                   usage_known)) != 0)
        return rc;
    /* the scan saw every member: walk them again only for a field */
    return t->others ? llmux_oai_put_extras(h, out, root, LLMUX_JSON_AT_TOP,
                                            top_known)
                     : 0;
}

/* ---- decoding: embeddings and models ------------------------------------- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes base64 little-endian float32 into *buf (grown). -1 if bad. */
static int b64_floats(const llmux_host *h, const char *s, size_t len,
                      float **buf, size_t *cap, size_t *n)
{
    size_t i, nb = 0, nf;
    unsigned acc = 0;
    int bits = 0;
    unsigned char *bytes;
    while (len && s[len - 1] == '=')
        len--;
    nf = (len * 6 / 8) / 4;
    if (nf > *cap) {
        float *p = h->realloc(*buf, nf * sizeof(float));
        if (!p)
            return LLMUX_ENOMEM;
        *buf = p;
        *cap = nf;
    }
    bytes = (unsigned char *)*buf;
    for (i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (nb < nf * 4)
                bytes[nb] = (unsigned char)(acc >> bits);
            nb++;
            acc &= (1u << bits) - 1;
        }
    }
    if (nb % 4)
        return -1;
    for (i = 0; i < nf; i++) {
        unsigned char *b = bytes + i * 4;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&(*buf)[i], &u, 4);
    }
    *n = nf;
    return 0;
}

static int decode_embed(const llmux_oai_dialect *d, const llmux_host *h,
                        llmux_out *out, json_object *root, const char *body,
                        size_t len)
{
    json_object *data = llmux_pj_get(root, "data");
    float *buf = NULL;
    size_t cap = 0, i, n;
    const char *s;
    size_t sl;
    int rc = 0;
    if (!json_object_is_type(data, json_type_array))
        return proto(d, h, out, "embeddings response has no data", body, len);
    n = json_object_array_length(data);
    for (i = 0; rc == 0 && i < n; i++) {
        json_object *item = json_object_array_get_idx(data, i);
        json_object *emb = llmux_pj_get(item, "embedding");
        int64_t index = (int64_t)i;
        size_t dim = 0;
        if (llmux_pj_get(item, "index") && (!get_int(item, "index", &index) ||
                                            index < 0 || (size_t)index >= n)) {
            rc = proto(d, h, out, "bad embedding index", body, len);
            break;
        }
        if (json_object_is_type(emb, json_type_array)) {
            rc = llmux_pj_floats(h, emb, &buf, &cap, &dim);
            if (rc == LLMUX_EPROTO)
                rc =
                    proto(d, h, out, "embedding holds a non-number", body, len);
            if (rc != 0)
                break;
        } else if (json_object_is_type(emb, json_type_string)) {
            s = json_object_get_string(emb);
            sl = (size_t)json_object_get_string_len(emb);
            rc = b64_floats(h, s, sl, &buf, &cap, &dim);
            if (rc == -1)
                rc = proto(d, h, out, "bad base64 embedding", body, len);
            if (rc != 0)
                break;
        } else {
            rc = proto(d, h, out, "data item has no embedding", body, len);
            break;
        }
        rc = h->out_embedding(out, (int)index, buf, dim);
    }
    if (buf)
        h->free(buf);
    if (rc == 0 && (s = llmux_pj_get_str(root, "model", &sl)) && sl)
        rc = h->out_str(out, LLMUX_F_MODEL, s, sl);
    if (rc == 0)
        rc = llmux_oai_put_usage(h, out, llmux_pj_get(root, "usage"));
    return rc;
}

static int decode_models(const llmux_oai_dialect *d, const llmux_host *h,
                         llmux_out *out, json_object *root, const char *body,
                         size_t len)
{
    json_object *data = json_object_is_type(root, json_type_array)
                            ? root
                            : llmux_pj_get(root, "data");
    size_t i, n;
    int rc;
    if (!json_object_is_type(data, json_type_array))
        return proto(d, h, out, "models response has no data", body, len);
    n = json_object_array_length(data);
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(data, i);
        const char *id = llmux_pj_get_str(m, "id", NULL);
        int64_t created = 0;
        if (!id)
            continue;
        get_int(m, "created", &created);
        if ((rc = h->out_model(out, id, llmux_pj_get_str(m, "owned_by", NULL),
                               created)) != 0)
            return rc;
    }
    return 0;
}

/* ---- decode hooks -------------------------------------------------------- */

static int run_fixup(const llmux_oai_dialect *d, const llmux_host *h,
                     llmux_call *call, int kind, json_object *root,
                     llmux_out *out, int *handled)
{
    *handled = 0;
    if (!d->fixup)
        return 0;
    return d->fixup(d, h, call, kind, root, out, handled);
}

int llmux_oai_decode(const llmux_oai_dialect *d, const llmux_host *h,
                     llmux_call *call, const llmux_http_response *resp,
                     llmux_out *out)
{
    json_tokener *tok = llmux_pj_tok_take(JSON_TOKENER_DEFAULT_DEPTH);
    json_object *root = NULL;
    const char *body = resp->body;
    size_t len = resp->body_len;
    unsigned meta = 0;
    int rc, handled, op = call->params->op;
    oai_top t;
    if (!tok) {
        h->set_error(out, LLMUX_ENOMEM, "%s: out of memory", dname(d));
        return LLMUX_ENOMEM;
    }
    if (llmux_pj_parse(tok, body, len, &root) != 0) {
        rc = proto(d, h, out, "response is not valid JSON", body, len);
        goto done;
    }
    if (!json_object_is_type(root, json_type_object) &&
        !(op == LLMUX_OP_MODELS &&
          json_object_is_type(root, json_type_array))) {
        rc = proto(d, h, out, "response is not a JSON object", body, len);
        goto done;
    }
    rc = run_fixup(d, h, call, LLMUX_OAI_RESPONSE, root, out, &handled);
    if (handled || rc != 0)
        goto done;
    if (llmux_pj_get(root, "error")) {
        rc = llmux_pj_body_error(h, out, root, body, len);
        goto done;
    }
    switch (op) {
    case LLMUX_OP_CHAT:
    case LLMUX_OP_COMPLETE:
        scan_top(root, &t);
        rc = decode_choices(d, h, out, &t, &meta, NULL, root, body, len);
        break;
    case LLMUX_OP_EMBED:
        rc = decode_embed(d, h, out, root, body, len);
        break;
    case LLMUX_OP_MODELS:
        rc = decode_models(d, h, out, root, body, len);
        break;
    default:
        h->set_error(out, LLMUX_ENOTSUP, "%s: operation %d not supported",
                     dname(d), op);
        rc = LLMUX_ENOTSUP;
    }
done:
    json_object_put(root);
    llmux_pj_tok_give(tok, JSON_TOKENER_DEFAULT_DEPTH);
    return rc;
}

int llmux_oai_decode_event(const llmux_oai_dialect *d, const llmux_host *h,
                           llmux_call *call, const llmux_event *ev,
                           llmux_out *out)
{
    const char *s = ev->data;
    size_t len = ev->data_len;
    json_object *root = NULL;
    json_tokener *tok;
    oai_state *st;
    oai_top t;
    int rc, handled, is_err_event;
    if (!s)
        return 0;
    s = llmux_pj_trim(s, &len);
    if (len >= 6 && memcmp(s, "[DONE]", 6) == 0)
        return LLMUX_EVENT_DONE;
    if (!len)
        return 0; /* an empty keep-alive event */
    is_err_event = ev->event && strcmp(ev->event, "error") == 0;
    st = call->state;
    if (!st) {
        st = llmux_pj_state_new(h, out, dname(d), sizeof(*st));
        if (!st)
            return LLMUX_ENOMEM;
        call->state = st;
    }
    if (!(tok = llmux_pj_tok_take(JSON_TOKENER_DEFAULT_DEPTH))) {
        h->set_error(out, LLMUX_ENOMEM, "%s: out of memory", dname(d));
        return LLMUX_ENOMEM;
    }
    rc = llmux_pj_parse(tok, s, len, &root);
    llmux_pj_tok_give(tok, JSON_TOKENER_DEFAULT_DEPTH);
    if (rc != 0 || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        if (is_err_event) /* an error event that is no JSON object */
            return llmux_pj_body_error(h, out, NULL, s, len);
        return proto(d, h, out, "bad stream event", s, len);
    }
    rc = run_fixup(d, h, call, LLMUX_OAI_EVENT, root, out, &handled);
    if (!handled && rc == 0) {
        scan_top(root, &t);
        if (is_err_event || t.error)
            rc = llmux_pj_body_error(h, out, root, s, len);
        else
            rc = decode_choices(d, h, out, &t, &st->meta, st, root, s, len);
    }
    json_object_put(root);
    return rc;
}

int llmux_oai_decode_error(const llmux_oai_dialect *d, const llmux_host *h,
                           llmux_call *call, const llmux_http_response *resp,
                           llmux_out *out)
{
    json_tokener *tok;
    json_object *root = NULL;
    int handled, rc = 0;
    if (!resp->body || !resp->body_len)
        return 0;
    tok = llmux_pj_tok_take(JSON_TOKENER_DEFAULT_DEPTH);
    if (!tok)
        return 0; /* the core falls back to the raw body */
    if (llmux_pj_parse(tok, resp->body, resp->body_len, &root) == 0 &&
        json_object_is_type(root, json_type_object)) {
        rc = run_fixup(d, h, call, LLMUX_OAI_ERROR, root, out, &handled);
        if (!handled && rc == 0)
            rc = llmux_pj_put_error(h, out, root) < 0 ? LLMUX_ENOMEM : 0;
    }
    json_object_put(root);
    llmux_pj_tok_give(tok, JSON_TOKENER_DEFAULT_DEPTH);
    return rc;
}

void llmux_oai_call_end(const llmux_host *h, llmux_call *call)
{
    oai_state *st;
    int i;
    if (!call || !call->state)
        return;
    st = call->state;
    for (i = 0; i < st->n_slots; i++)
        h->free(st->slots[i].id);
    h->free(st->slots);
    h->free(st);
    call->state = NULL;
}

/* ---- dialects from descriptor options ------------------------------------ */

/* A configured dialect and the strings it owns. */
typedef struct oai_owned {
    llmux_oai_dialect d; /* first: the pointer handed out */
    char *strs[32];
    size_t n_strs;
    const char **never; /* NULL-terminated, strings owned above or base's */
    char *never_buf;    /* the never_send option's copy, split in place */
} oai_owned;

static char *own_str(const llmux_host *h, oai_owned *o, const char *s)
{
    size_t n = strlen(s);
    char *c;
    if (o->n_strs == sizeof(o->strs) / sizeof(o->strs[0]))
        return NULL;
    c = h->alloc(n + 1);
    if (!c)
        return NULL;
    memcpy(c, s, n + 1);
    o->strs[o->n_strs++] = c;
    return c;
}

static int is_none(const char *v)
{
    return !*v || llmux_pj_caseeq(v, "none");
}

static int set_never(const llmux_host *h, oai_owned *o, const char *list)
{
    size_t nb = 0, nx = 1, k = 0;
    const char *const *b;
    const char *c;
    char *p, *tok;
    for (b = o->d.never_send; b && *b; b++)
        nb++;
    for (c = list; *c; c++)
        nx += *c == ',';
    o->never_buf = h->alloc(strlen(list) + 1);
    o->never = h->alloc((nb + nx + 1) * sizeof(char *));
    if (!o->never_buf || !o->never)
        return LLMUX_ENOMEM;
    strcpy(o->never_buf, list);
    for (b = o->d.never_send; b && *b; b++)
        o->never[k++] = *b;
    for (p = o->never_buf; p;) {
        char *comma = strchr(p, ',');
        char *end;
        if (comma)
            *comma = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        tok = p;
        if (*tok)
            o->never[k++] = tok;
        p = comma ? comma + 1 : NULL;
    }
    o->never[k] = NULL;
    o->d.never_send = o->never;
    return 0;
}

void llmux_oai_dialect_free(const llmux_host *h, llmux_oai_dialect *d)
{
    oai_owned *o = (oai_owned *)d;
    size_t i;
    if (!o)
        return;
    for (i = 0; i < o->n_strs; i++)
        h->free(o->strs[i]);
    if (o->never)
        h->free((void *)o->never);
    if (o->never_buf)
        h->free(o->never_buf);
    h->free(o);
}

static oai_owned *owned_new(const llmux_host *h, const llmux_oai_dialect *base)
{
    oai_owned *o = h->alloc(sizeof(*o));
    if (o) {
        memset(o, 0, sizeof(*o));
        o->d = *base;
    }
    return o;
}

int llmux_oai_dialect_configure(const llmux_oai_dialect *base,
                                const llmux_host *h, const char *name,
                                const llmux_kv *opts, size_t n_opts,
                                llmux_oai_dialect **out)
{
    static const char *const keys[] = {
        "max_tokens_field", "complete_max_tokens_field",
        "seed_field",       "stream_usage",
        "never_send",       "chat_path",
        "complete_path",    "embed_path",
        "models_path",      NULL};
    oai_owned *o = NULL;
    size_t i;
    int rc = 0;
    *out = NULL;
    if (name && *name && (!base->name || strcmp(name, base->name) != 0)) {
        if (!(o = owned_new(h, base)) || !(o->d.name = own_str(h, o, name))) {
            llmux_oai_dialect_free(h, o ? &o->d : NULL);
            return LLMUX_ENOMEM;
        }
    }
    for (i = 0; i < n_opts; i++) {
        const char *k = opts[i].key, *v = opts[i].value;
        const char *const *kk;
        char *s = NULL;
        if (!k || !v)
            continue;
        for (kk = keys; *kk && !llmux_pj_caseeq(*kk, k); kk++)
            ;
        if (!*kk)
            continue; /* an option for the core or for requests */
        if (!o && !(o = owned_new(h, base)))
            return LLMUX_ENOMEM;
        if (llmux_pj_caseeq(k, "stream_usage")) {
            if (llmux_pj_bool(v) >= 0)
                o->d.stream_usage = llmux_pj_bool(v);
            else {
                h->log(LLMUX_LOG_ERROR, "%s: stream_usage=%s is not a boolean",
                       dname(base), v);
                rc = LLMUX_ECONFIG;
                break;
            }
            continue;
        }
        if (llmux_pj_caseeq(k, "never_send")) {
            if (o->never) {
                h->log(LLMUX_LOG_ERROR, "%s: never_send given twice",
                       dname(base));
                rc = LLMUX_ECONFIG;
                break;
            }
            if ((rc = set_never(h, o, v)) != 0)
                break;
            continue;
        }
        if (!is_none(v) && !(s = own_str(h, o, v))) {
            rc = LLMUX_ENOMEM;
            break;
        }
        if (llmux_pj_caseeq(k, "max_tokens_field"))
            o->d.max_tokens_field = s ? s : base->max_tokens_field;
        else if (llmux_pj_caseeq(k, "complete_max_tokens_field"))
            o->d.complete_max_tokens_field =
                s ? s : base->complete_max_tokens_field;
        else if (llmux_pj_caseeq(k, "seed_field"))
            o->d.seed_field = s;
        else if (llmux_pj_caseeq(k, "chat_path"))
            o->d.chat_path = s;
        else if (llmux_pj_caseeq(k, "complete_path"))
            o->d.complete_path = s;
        else if (llmux_pj_caseeq(k, "embed_path"))
            o->d.embed_path = s;
        else
            o->d.models_path = s;
    }
    if (rc != 0) {
        llmux_oai_dialect_free(h, o ? &o->d : NULL);
        return rc;
    }
    *out = o ? &o->d : NULL;
    return 0;
}

/* ---- ready-made provider hooks ------------------------------------------- */

/* The provider context of llmux_oai_provider_init. */
typedef struct oai_provctx {
    const llmux_host *h;
    const llmux_oai_dialect *d; /* the base, or `owned` */
    llmux_oai_dialect *owned;   /* configured from descriptor options */
} oai_provctx;

int llmux_oai_provider_init(const llmux_oai_dialect *base, const llmux_host *h,
                            const llmux_provider_config *cfg, void **provctx)
{
    llmux_oai_dialect *d = NULL;
    oai_provctx *c;
    int rc = 0;
    *provctx = NULL;
    if (cfg)
        rc = llmux_oai_dialect_configure(base, h, cfg->name, cfg->options,
                                         cfg->n_options, &d);
    if (rc != 0)
        return rc;
    c = h->alloc(sizeof(*c));
    if (!c) {
        llmux_oai_dialect_free(h, d);
        return LLMUX_ENOMEM;
    }
    c->h = h;
    c->owned = d;
    c->d = d ? d : base;
    *provctx = c;
    return 0;
}

void llmux_oai_provider_teardown(void *provctx)
{
    oai_provctx *c = provctx;
    llmux_pj_tok_drain();
    if (!c)
        return;
    llmux_oai_dialect_free(c->h, c->owned);
    c->h->free(c);
}

int llmux_oai_provider_encode(void *provctx, llmux_call *call,
                              llmux_http_request *http)
{
    oai_provctx *c = provctx;
    return llmux_oai_encode(c->d, c->h, call, http);
}

int llmux_oai_provider_decode(void *provctx, llmux_call *call,
                              const llmux_http_response *resp, llmux_out *out)
{
    oai_provctx *c = provctx;
    return llmux_oai_decode(c->d, c->h, call, resp, out);
}

int llmux_oai_provider_decode_event(void *provctx, llmux_call *call,
                                    const llmux_event *ev, llmux_out *out)
{
    oai_provctx *c = provctx;
    return llmux_oai_decode_event(c->d, c->h, call, ev, out);
}

int llmux_oai_provider_decode_error(void *provctx, llmux_call *call,
                                    const llmux_http_response *resp,
                                    llmux_out *out)
{
    oai_provctx *c = provctx;
    return llmux_oai_decode_error(c->d, c->h, call, resp, out);
}

void llmux_oai_provider_call_end(void *provctx, llmux_call *call)
{
    oai_provctx *c = provctx;
    llmux_oai_call_end(c->h, call);
}

const llmux_oai_dialect *llmux_oai_provider_dialect(void *provctx)
{
    oai_provctx *c = provctx;
    return c ? c->d : NULL;
}

/* Parses OpenAI's reset durations ("12ms", "1s", "6m0s", "1h2m3.5s") into
 * ms; -1 when malformed. */
static double parse_reset(const char *s)
{
    double total = 0;
    int any = 0;
    while (s && *s) {
        double v = 0, scale = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        if (*s == '.') {
            double f = 0.1;
            for (s++; *s >= '0' && *s <= '9'; s++, f /= 10)
                v += (*s - '0') * f;
        }
        if (!digits)
            return -1;
        if (s[0] == 'm' && s[1] == 's')
            scale = 1, s += 2;
        else if (*s == 'h')
            scale = 3600000, s++;
        else if (*s == 'm')
            scale = 60000, s++;
        else if (*s == 's')
            scale = 1000, s++;
        else
            return -1;
        total += v * scale;
        any = 1;
    }
    return any ? total : -1;
}

/* A non-negative decimal count ("59", "149984"), or -1 for anything
 * else; locale-free. */
static double parse_count(const char *s)
{
    size_t n = strlen(s);
    int64_t v;
    s = llmux_pj_trim(s, &n);
    return llmux_pj_parse_i64(s, n, 0, &v) == 0 ? (double)v : -1;
}

int llmux_oai_rate_limits(void *provctx, const llmux_http_response *resp,
                          llmux_rate_limits *out)
{
    const char *v;
    (void)provctx;
    if (!LLMUX_HTTP_RESPONSE_HAS(resp, header) || !resp->header || !out)
        return 0;
    if ((v = resp->header(resp, "x-ratelimit-remaining-requests")) != NULL ||
        (v = resp->header(resp, "x-ratelimit-remaining-req-minute")) != NULL)
        out->requests_remaining = parse_count(v);
    if ((v = resp->header(resp, "x-ratelimit-reset-requests")) != NULL)
        out->requests_reset_ms = parse_reset(v);
    if ((v = resp->header(resp, "x-ratelimit-remaining-tokens")) != NULL ||
        (v = resp->header(resp, "x-ratelimit-remaining-tokens-minute")) != NULL)
        out->tokens_remaining = parse_count(v);
    if ((v = resp->header(resp, "x-ratelimit-reset-tokens")) != NULL)
        out->tokens_reset_ms = parse_reset(v);
    return 0;
}
