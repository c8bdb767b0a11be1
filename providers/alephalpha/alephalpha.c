/*
 * providers/alephalpha/alephalpha.c: the Aleph Alpha provider plugin.
 *
 * Aleph Alpha's inference API (PhariaAI, self-hosted since the public
 * SaaS at https://api.aleph-alpha.com was retired; its Python client >= 8
 * has no default host any more). Endpoints sit at the root of the base
 * URL: a PhariaAI install is reached as base_url=https://<host>/v1.
 *
 * - Chat: POST /chat/completions, OpenAI-shaped, through the shared codec
 *   (providers/common/oai.c) with this file's dialect.
 * - Text completion: POST /complete, Aleph Alpha's own shape; streamed as
 *   SSE items typed stream_chunk / stream_summary / completion_summary,
 *   with no "[DONE]": the completion summary ends the stream.
 * - Embeddings: /semantic_embed (one input), /batch_semantic_embed (many);
 *   option embed_endpoint=embed uses /embed (layers and pooling),
 *   embed_endpoint=embeddings the OpenAI-compatible /embeddings (codec).
 * - evaluate, tokenize, detokenize: /evaluate, /tokenize, /detokenize.
 * - Models: GET /models_available (a list of {"name": ...}).
 *
 * Every POST carries the options the Python client adds to all its
 * requests: nice=true as "?nice=true" and hosting as a body field.
 * Errors are {"error": "...", "code": "UPPER_CASE"} (parsed by the codec)
 * or plain text from proxies (left to the core's raw-text fallback);
 * QUEUE_FULL (busy) comes with HTTP 503, which the core retries.
 *
 * Where the published API reference and the Python client differ, the
 * reference wins: chat sends "max_tokens" as the OpenAPI ChatRequest
 * specifies (the Python client sends "maximum_tokens", which the server
 * also takes; the option max_tokens_field=maximum_tokens sends that), and
 * no top_k (the client sends it; the spec has no such chat field).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include <llmux/sys/provider.h>
#include <llmux/version.h>

#include "oai.h"

static const llmux_host *aa_host;

/* Prompts per /batch_semantic_embed call (API limit). */
#define AA_MAX_BATCH 100
/* Longest request path, query included. */
#define AA_PATH_MAX 512

/* Chat fields the API rejects (parallel_tool_calls) or ignores (seed,
 * user, service_tier): never sent, whatever their source. */
static const char *const aa_never_send[] = {"parallel_tool_calls", "seed",
                                            "user", "service_tier", NULL};

static int aa_patch(const llmux_oai_dialect *d, const llmux_host *h,
                    llmux_call *call, json_object *body);

static const llmux_oai_dialect aa_dialect = {
    "alephalpha",        /* name */
    "/chat/completions", /* chat_path */
    "/complete",         /* complete_path (native shape, this file) */
    "/embeddings",       /* embed_path (embed_endpoint=embeddings) */
    "/models_available", /* models_path (native shape, this file) */
    "max_tokens",        /* max_tokens_field (chat) */
    "maximum_tokens",    /* complete_max_tokens_field */
    NULL,                /* seed_field: ignored by the server */
    1,                   /* stream_usage */
    0,                   /* flags */
    NULL,                /* reasoning_field */
    aa_never_send,       /* never_send */
    NULL,                /* header_options */
    NULL,                /* body_options */
    aa_patch,            /* patch_request */
    NULL,                /* fixup */
    NULL                 /* userdata */
};

/* Per-request state (call->state): the codec's own state for chat and
 * /embeddings, and this file's for /complete streams, kept apart so that
 * each side only ever sees its own. */
typedef struct aa_state {
    void *oai;      /* the codec's call->state */
    int model_sent; /* the model was passed on already */
} aa_state;

/* Which embeddings endpoint a request uses. */
enum { EMB_SEMANTIC, EMB_LAYERS, EMB_OPENAI };

/* ---- small helpers ------------------------------------------------------- */

/* The dialect of this provider instance: Aleph Alpha's, or one derived
 * from a descriptor's options (chat_path, models_path ...). */
static const llmux_oai_dialect *dialect(void *provctx)
{
    const llmux_oai_dialect *d = llmux_oai_provider_dialect(provctx);
    return d ? d : &aa_dialect;
}

static const char *dname(const llmux_oai_dialect *d)
{
    return d->name ? d->name : "alephalpha";
}

/* A provider option, or NULL when unset or empty. */
static const char *opt(const llmux_params *p, const char *key)
{
    const char *v = llmux_pj_option(aa_host, p, key);
    return v && *v ? v : NULL;
}

/* A boolean option: *out = -1 when unset, else 0 or 1. */
static int opt_bool(const llmux_oai_dialect *d, const llmux_params *p,
                    const char *key, int *out)
{
    const char *v = opt(p, key);
    *out = -1;
    if (!v)
        return 0;
    if ((*out = llmux_pj_bool(v)) < 0) {
        aa_host->log(LLMUX_LOG_ERROR, "%s: option %s=%s is not a boolean",
                     dname(d), key, v);
        return LLMUX_EINVAL;
    }
    return 0;
}

/* An integer option >= min: *set = 0 when unset. */
static int opt_int(const llmux_oai_dialect *d, const llmux_params *p,
                   const char *key, int64_t min, int64_t *out, int *set)
{
    const char *v = opt(p, key);
    *set = 0;
    if (!v)
        return 0;
    if (llmux_pj_parse_i64(v, strlen(v), 1, out) != 0 || *out < min) {
        aa_host->log(LLMUX_LOG_ERROR,
                     "%s: option %s=%s must be an integer >= %lld", dname(d),
                     key, v, (long long)min);
        return LLMUX_EINVAL;
    }
    *set = 1;
    return 0;
}

static int proto(const llmux_oai_dialect *d, llmux_out *out, const char *what,
                 const char *s, size_t len)
{
    return llmux_pj_proto(aa_host, out, dname(d), what, s, len);
}

/* The embeddings endpoint chosen by option embed_endpoint. */
static int embed_kind(const llmux_oai_dialect *d, const llmux_params *p,
                      int *kind)
{
    const char *v = opt(p, "embed_endpoint");
    *kind = EMB_SEMANTIC;
    if (!v || llmux_pj_caseeq(v, "semantic_embed") ||
        llmux_pj_caseeq(v, "batch_semantic_embed"))
        return 0;
    if (llmux_pj_caseeq(v, "embed"))
        *kind = EMB_LAYERS;
    else if (llmux_pj_caseeq(v, "embeddings"))
        *kind = EMB_OPENAI;
    else {
        aa_host->log(LLMUX_LOG_ERROR,
                     "%s: option embed_endpoint=%s: use semantic_embed "
                     "(default), embed or embeddings",
                     dname(d), v);
        return LLMUX_EINVAL;
    }
    return 0;
}

/* ---- encoding ------------------------------------------------------------ */

static json_object *new_str(const char *s)
{
    return json_object_new_string(s ? s : "");
}

/* The option `hosting` as a body field (every POST, as the Python client
 * sends it). */
static int put_hosting(const llmux_params *p, json_object *body)
{
    const char *v = opt(p, "hosting");
    return v ? llmux_pj_set(body, "hosting", json_object_new_string(v)) : 0;
}

/* The request path, with "?nice=true" when the option nice is on. */
static int set_path(const llmux_oai_dialect *d, llmux_http_request *http,
                    const char *path, int nice)
{
    char buf[AA_PATH_MAX];
    int n;
    if (nice != 1)
        return aa_host->http_path(http, path);
    n = snprintf(buf, sizeof buf, "%s%cnice=true", path,
                 strchr(path, '?') ? '&' : '?');
    if (n < 0 || (size_t)n >= sizeof buf) {
        aa_host->log(LLMUX_LOG_ERROR, "%s: request path too long", dname(d));
        return LLMUX_EINVAL;
    }
    return aa_host->http_path(http, buf);
}

/* Codec hook for chat and /embeddings bodies: hosting, and only the
 * response_format the API takes. */
/* Aleph Alpha's chat takes text and images (data: URLs) only. */
static int aa_part(json_object *part, const char *type, size_t msg, void *ud)
{
    const llmux_host *h = ud;
    (void)part;
    if (strcmp(type, "text") == 0 || strcmp(type, "image_url") == 0)
        return 0;
    h->log(LLMUX_LOG_ERROR,
           "alephalpha: message %zu: the content part \"%s\" is not "
           "supported by this provider: its chat takes text and images",
           msg, type);
    return LLMUX_ENOTSUP;
}

static int aa_patch(const llmux_oai_dialect *d, const llmux_host *h,
                    llmux_call *call, json_object *body)
{
    json_object *rf = llmux_pj_get(body, "response_format");
    const char *type = llmux_pj_get_str(rf, "type", NULL);
    int rc;
    if (rf && !(type && strcmp(type, "json_schema") == 0)) {
        if (type && strcmp(type, "text") == 0) {
            /* plain text is the default: say nothing */
            json_object_object_del(body, "response_format");
        } else {
            aa_host->log(LLMUX_LOG_ERROR,
                         "%s: response_format %s is not supported: Aleph "
                         "Alpha chat accepts only {\"type\":\"json_schema\","
                         "\"json_schema\":{...}} (give a JSON schema)",
                         dname(d), type ? type : "without a type");
            return LLMUX_ENOTSUP;
        }
    }
    if ((rc = llmux_oai_each_part(body, aa_part, (void *)h)) != 0)
        return rc;
    return put_hosting(call->params, body);
}

/* POST /complete {model, prompt, maximum_tokens, ...}. */
static int enc_complete(const llmux_oai_dialect *d, const llmux_params *p,
                        json_object *b)
{
    const char *mtf = d->complete_max_tokens_field;
    int64_t top_k;
    int rc, set;
    if (p->suffix) {
        aa_host->log(LLMUX_LOG_ERROR,
                     "%s: text completion takes no suffix (no "
                     "fill-in-the-middle on /complete)",
                     dname(d));
        return LLMUX_ENOTSUP;
    }
    if ((rc = opt_int(d, p, "top_k", 0, &top_k, &set)) != 0)
        return rc;
    if ((rc = llmux_pj_set(b, "prompt", new_str(p->prompt))) != 0)
        return rc;
    if ((p->has & LLMUX_HAS_MAX_TOKENS) &&
        (rc = llmux_pj_set(b, mtf ? mtf : "maximum_tokens",
                           json_object_new_int64(p->max_tokens))) != 0)
        return rc;
    if ((p->has & LLMUX_HAS_TEMPERATURE) &&
        (rc = llmux_pj_add_double(aa_host, b, "temperature", p->temperature)) !=
            0)
        goto bad_number;
    if (set &&
        (rc = llmux_pj_set(b, "top_k", json_object_new_int64(top_k))) != 0)
        return rc;
    if ((p->has & LLMUX_HAS_TOP_P) &&
        (rc = llmux_pj_add_double(aa_host, b, "top_p", p->top_p)) != 0)
        goto bad_number;
    /* no seed on /complete: LLMUX_HAS_SEED is ignored */
    if (p->n_stop && p->stop &&
        (rc = llmux_pj_set(b, "stop_sequences",
                           llmux_pj_str_array(p->stop, p->n_stop))) != 0)
        return rc;
    if (p->stream &&
        (rc = llmux_pj_set(b, "stream", json_object_new_boolean(1))) != 0)
        return rc;
    return 0;
bad_number:
    if (rc == LLMUX_EINVAL)
        aa_host->log(LLMUX_LOG_ERROR,
                     "%s: temperature and top_p must be finite numbers",
                     dname(d));
    return rc;
}

/* POST /semantic_embed or /batch_semantic_embed; returns the path. */
static int enc_semantic(const llmux_oai_dialect *d, const llmux_params *p,
                        json_object *b, const char **path)
{
    const char *repr = opt(p, "representation");
    int64_t size;
    int rc, set, norm;
    if ((rc = opt_int(d, p, "compress_to_size", 1, &size, &set)) != 0 ||
        (rc = opt_bool(d, p, "normalize", &norm)) != 0)
        return rc;
    if (p->n_input > AA_MAX_BATCH) {
        aa_host->log(LLMUX_LOG_ERROR,
                     "%s: %zu inputs: /batch_semantic_embed takes at most %d "
                     "per request; split them into several requests",
                     dname(d), p->n_input, AA_MAX_BATCH);
        return LLMUX_EINVAL;
    }
    if (p->n_input == 1) {
        *path = "/semantic_embed";
        rc = llmux_pj_set(b, "prompt", new_str(p->input[0]));
    } else {
        *path = "/batch_semantic_embed";
        rc = llmux_pj_set(b, "prompts",
                          llmux_pj_str_array(p->input, p->n_input));
    }
    if (rc == 0)
        rc = llmux_pj_set(b, "representation",
                          json_object_new_string(repr ? repr : "symmetric"));
    if (rc == 0 && set)
        rc = llmux_pj_set(b, "compress_to_size", json_object_new_int64(size));
    if (rc == 0 && norm >= 0)
        rc = llmux_pj_set(b, "normalize", json_object_new_boolean(norm));
    return rc;
}

/* A comma-separated option as a JSON array (of integers when `ints`). */
static int list_opt(const llmux_oai_dialect *d, const char *key, const char *v,
                    int ints, json_object **out)
{
    json_object *arr = json_object_new_array();
    const char *s = v;
    *out = NULL;
    if (!arr)
        return LLMUX_ENOMEM;
    while (s) {
        const char *comma = strchr(s, ','), *e;
        json_object *item;
        int64_t n;
        e = comma ? comma : s + strlen(s);
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (s == e ||
            (ints && llmux_pj_parse_i64(s, (size_t)(e - s), 1, &n) != 0)) {
            json_object_put(arr);
            aa_host->log(LLMUX_LOG_ERROR,
                         "%s: option %s=%s must be a comma-separated list "
                         "of %s",
                         dname(d), key, v, ints ? "integers" : "names");
            return LLMUX_EINVAL;
        }
        item = ints ? json_object_new_int64(n)
                    : json_object_new_string_len(s, (int)(e - s));
        if (!item || json_object_array_add(arr, item) != 0) {
            json_object_put(item);
            json_object_put(arr);
            return LLMUX_ENOMEM;
        }
        s = comma ? comma + 1 : NULL;
    }
    *out = arr;
    return 0;
}

/* POST /embed {model, prompt, layers, pooling, normalize?}: one input. */
static int enc_layers(const llmux_oai_dialect *d, const llmux_params *p,
                      json_object *b)
{
    const char *layers = opt(p, "layers"), *pooling = opt(p, "pooling");
    json_object *arr;
    int rc, norm;
    if ((rc = opt_bool(d, p, "normalize", &norm)) != 0)
        return rc;
    if (p->n_input != 1) {
        aa_host->log(LLMUX_LOG_ERROR,
                     "%s: embed_endpoint=embed takes one input per request "
                     "(got %zu)",
                     dname(d), p->n_input);
        return LLMUX_EINVAL;
    }
    if ((rc = llmux_pj_set(b, "prompt", new_str(p->input[0]))) != 0)
        return rc;
    if ((rc = list_opt(d, "layers", layers ? layers : "-1", 1, &arr)) != 0 ||
        (rc = llmux_pj_set(b, "layers", arr)) != 0)
        return rc;
    if ((rc = list_opt(d, "pooling", pooling ? pooling : "mean", 0, &arr)) !=
            0 ||
        (rc = llmux_pj_set(b, "pooling", arr)) != 0)
        return rc;
    if (norm >= 0 &&
        (rc = llmux_pj_set(b, "normalize", json_object_new_boolean(norm))))
        return rc;
    return 0;
}

/* POST /detokenize {model, token_ids}. */
static int enc_detokenize(const llmux_params *p, json_object *b)
{
    json_object *arr = json_object_new_array_ext((int)p->n_token_ids);
    size_t i;
    if (!arr)
        return LLMUX_ENOMEM;
    for (i = 0; i < p->n_token_ids; i++) {
        json_object *n = json_object_new_int64(p->token_ids[i]);
        if (!n || json_object_array_add(arr, n) != 0) {
            json_object_put(n);
            json_object_put(arr);
            return LLMUX_ENOMEM;
        }
    }
    return llmux_pj_set(b, "token_ids", arr);
}

/* The native task endpoints: builds the body and sends it. */
static int enc_native(const llmux_oai_dialect *d, const llmux_params *p,
                      llmux_http_request *http, int nice)
{
    json_object *b;
    const char *path = NULL;
    int rc = 0;
    if (!p->model || !*p->model) {
        aa_host->log(LLMUX_LOG_ERROR, "%s: no model given", dname(d));
        return LLMUX_EINVAL;
    }
    if (!(b = json_object_new_object()))
        return LLMUX_ENOMEM;
    rc = llmux_pj_set(b, "model", json_object_new_string(p->model));
    if (rc == 0) {
        switch (p->op) {
        case LLMUX_OP_COMPLETE:
            path = d->complete_path;
            rc = path ? enc_complete(d, p, b) : LLMUX_ENOTSUP;
            break;
        case LLMUX_OP_EMBED: {
            int kind;
            if ((rc = embed_kind(d, p, &kind)) != 0)
                break;
            if (kind == EMB_LAYERS) {
                path = "/embed";
                rc = enc_layers(d, p, b);
            } else {
                rc = enc_semantic(d, p, b, &path);
            }
            break;
        }
        case LLMUX_OP_EVALUATE:
            path = "/evaluate";
            if ((rc = llmux_pj_set(b, "prompt", new_str(p->prompt))) == 0)
                rc = llmux_pj_set(b, "completion_expected",
                                  new_str(p->expected));
            break;
        case LLMUX_OP_TOKENIZE:
            path = "/tokenize";
            if ((rc = llmux_pj_set(b, "prompt", new_str(p->prompt))) == 0 &&
                (rc = llmux_pj_set(b, "tokens", json_object_new_boolean(1))) ==
                    0)
                rc = llmux_pj_set(b, "token_ids", json_object_new_boolean(1));
            break;
        case LLMUX_OP_DETOKENIZE:
            path = "/detokenize";
            rc = enc_detokenize(p, b);
            break;
        default:
            rc = LLMUX_ENOTSUP;
        }
    }
    if (rc == 0)
        rc = put_hosting(p, b);
    if (rc == 0 && (rc = aa_host->http_method(http, "POST")) == 0 &&
        (rc = set_path(d, http, path, nice)) == 0)
        rc = llmux_pj_http_json(aa_host, http, b);
    json_object_put(b);
    return rc;
}

static int aa_encode(void *provctx, llmux_call *call, llmux_http_request *http)
{
    const llmux_oai_dialect *d = dialect(provctx);
    const llmux_params *p = call->params;
    const char *path = NULL;
    int rc, nice, kind = EMB_SEMANTIC;
    if ((rc = opt_bool(d, p, "nice", &nice)) != 0)
        return rc;
    switch (p->op) {
    case LLMUX_OP_MODELS:
        if (!d->models_path)
            return LLMUX_ENOTSUP;
        if ((rc = aa_host->http_method(http, "GET")) != 0)
            return rc;
        return aa_host->http_path(http, d->models_path);
    case LLMUX_OP_CHAT:
        path = d->chat_path;
        break;
    case LLMUX_OP_EMBED:
        if ((rc = embed_kind(d, p, &kind)) != 0)
            return rc;
        if (kind == EMB_OPENAI && !(path = d->embed_path))
            return LLMUX_ENOTSUP;
        break;
    }
    if (!path)
        return enc_native(d, p, http, nice);
    /* OpenAI-shaped: the codec builds it (hosting and the response_format
     * check in aa_patch); "?nice=true" goes on the path it set */
    if ((rc = llmux_oai_encode(d, aa_host, call, http)) != 0)
        return rc;
    return nice == 1 ? set_path(d, http, path, nice) : 0;
}

/* ---- decoding: whole responses ------------------------------------------- */

static int put_model(const llmux_params *p, llmux_out *out)
{
    /* the request's model: the API's model_version is a date */
    if (!p->model || !*p->model)
        return 0;
    return aa_host->out_str(out, LLMUX_F_MODEL, p->model, strlen(p->model));
}

/* Usage of the native endpoints: prompt tokens, and generated tokens when
 * `completion` (total = their sum). */
static int put_usage(llmux_out *out, json_object *root, int completion)
{
    int64_t pt = -1, ct = -1;
    int rc = 0;
    if (llmux_pj_as_int(llmux_pj_get(root, "num_tokens_prompt_total"), &pt) &&
        (rc = aa_host->out_int(out, LLMUX_F_PROMPT_TOKENS, pt)) != 0)
        return rc;
    if (completion &&
        llmux_pj_as_int(llmux_pj_get(root, "num_tokens_generated"), &ct) &&
        (rc = aa_host->out_int(out, LLMUX_F_COMPLETION_TOKENS, ct)) != 0)
        return rc;
    if (pt >= 0 && (!completion || ct >= 0))
        rc = aa_host->out_int(out, LLMUX_F_TOTAL_TOKENS,
                              llmux_pj_add_counts(pt, ct > 0 ? ct : 0));
    return rc;
}

/* finish_reason: maximum_tokens -> length; end_of_text and
 * stop_sequence_reached -> stop; the raw value is kept. */
static int put_finish(llmux_out *out, json_object *fr)
{
    const char *s;
    int f, rc;
    if (!json_object_is_type(fr, json_type_string))
        return 0;
    s = json_object_get_string(fr);
    if (strcmp(s, "maximum_tokens") == 0)
        f = LLMUX_FINISH_LENGTH;
    else if (strcmp(s, "end_of_text") == 0 ||
             strcmp(s, "stop_sequence_reached") == 0)
        f = LLMUX_FINISH_STOP;
    else
        f = llmux_oai_finish(s);
    if ((rc = aa_host->out_int(out, LLMUX_F_FINISH, f)) != 0)
        return rc;
    return aa_host->out_str(out, LLMUX_F_FINISH_RAW, s,
                            (size_t)json_object_get_string_len(fr));
}

/* The index of a completion or stream item (0 when absent); -1 if bad. */
static int64_t item_index(json_object *o)
{
    json_object *v = llmux_pj_get(o, "index");
    int64_t i;
    if (!v)
        return 0;
    return llmux_pj_as_int(v, &i) && i >= 0 ? i : -1;
}

static int dec_complete(const llmux_oai_dialect *d, const llmux_params *p,
                        llmux_out *out, json_object *root, const char *body,
                        size_t len)
{
    json_object *comps = llmux_pj_get(root, "completions"), *c = NULL;
    size_t i, n;
    int rc;
    if (!json_object_is_type(comps, json_type_array))
        return proto(d, out, "response has no completions", body, len);
    n = json_object_array_length(comps);
    for (i = 0; i < n && !c; i++) {
        json_object *e = json_object_array_get_idx(comps, i);
        int64_t idx = item_index(e);
        if (!json_object_is_type(e, json_type_object) || idx < 0)
            return proto(d, out, "bad completion", body, len);
        if (idx == 0)
            c = e;
    }
    if (!c)
        return proto(d, out, "response has no completion 0", body, len);
    if (!json_object_is_type(llmux_pj_get(c, "completion"), json_type_string))
        return proto(d, out, "completion is not a string", body, len);
    n = (size_t)json_object_get_string_len(llmux_pj_get(c, "completion"));
    if (n &&
        (rc = aa_host->out_str(
             out, LLMUX_F_TEXT,
             json_object_get_string(llmux_pj_get(c, "completion")), n)) != 0)
        return rc;
    if ((rc = put_finish(out, llmux_pj_get(c, "finish_reason"))) != 0 ||
        (rc = put_model(p, out)) != 0)
        return rc;
    return put_usage(out, root, 1);
}

/* One vector out as embedding `index`. */
static int put_vec(const llmux_oai_dialect *d, llmux_out *out, int index,
                   json_object *arr, float **buf, size_t *cap, const char *body,
                   size_t len)
{
    size_t n = 0;
    int rc = llmux_pj_floats(aa_host, arr, buf, cap, &n);
    if (rc == LLMUX_EPROTO)
        return proto(d, out, "embedding is not a list of numbers", body, len);
    if (rc != 0)
        return rc;
    return aa_host->out_embedding(out, index, *buf, n);
}

/* The first value of a JSON object, or NULL. */
static json_object *first_member(json_object *o)
{
    if (!json_object_is_type(o, json_type_object))
        return NULL;
    {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            return v;
        }
    }
    return NULL;
}

static int dec_embed(const llmux_oai_dialect *d, const llmux_params *p,
                     int kind, llmux_out *out, json_object *root,
                     const char *body, size_t len)
{
    float *buf = NULL;
    size_t cap = 0, i, n;
    json_object *embs;
    int rc = 0;
    if (kind == EMB_LAYERS) {
        /* {"embeddings":{"layer_40":{"mean":[...]}}}: the first layer's
         * first pooling */
        json_object *v =
            first_member(first_member(llmux_pj_get(root, "embeddings")));
        if (!v)
            return proto(d, out, "response has no embeddings", body, len);
        rc = put_vec(d, out, 0, v, &buf, &cap, body, len);
    } else if (p->n_input == 1) {
        embs = llmux_pj_get(root, "embedding");
        if (!embs)
            return proto(d, out, "response has no embedding", body, len);
        rc = put_vec(d, out, 0, embs, &buf, &cap, body, len);
    } else {
        embs = llmux_pj_get(root, "embeddings");
        if (!json_object_is_type(embs, json_type_array))
            return proto(d, out, "response has no embeddings", body, len);
        n = json_object_array_length(embs);
        if (n != p->n_input)
            return proto(d, out, "embeddings do not match the inputs", body,
                         len);
        for (i = 0; rc == 0 && i < n; i++)
            rc = put_vec(d, out, (int)i, json_object_array_get_idx(embs, i),
                         &buf, &cap, body, len);
    }
    if (buf)
        aa_host->free(buf);
    if (rc == 0)
        rc = put_model(p, out);
    return rc ? rc : put_usage(out, root, 0);
}

static int dec_evaluate(const llmux_oai_dialect *d, const llmux_params *p,
                        llmux_out *out, json_object *root, const char *body,
                        size_t len)
{
    json_object *r = llmux_pj_get(root, "result");
    const char *s;
    size_t n = 0;
    int rc;
    if (!json_object_is_type(r, json_type_object))
        return proto(d, out, "response has no result object", body, len);
    s = llmux_pj_text(r, &n);
    if (!s)
        return LLMUX_ENOMEM;
    if ((rc = aa_host->out_str(out, LLMUX_F_RESULT_JSON, s, n)) != 0 ||
        (rc = put_model(p, out)) != 0)
        return rc;
    return put_usage(out, root, 0);
}

static int dec_tokenize(const llmux_oai_dialect *d, const llmux_params *p,
                        llmux_out *out, json_object *root, const char *body,
                        size_t len)
{
    json_object *tk = llmux_pj_get(root, "tokens"),
                *ids = llmux_pj_get(root, "token_ids");
    size_t i, n = 0, nids = 0;
    int rc;
    if ((tk && !json_object_is_type(tk, json_type_array)) ||
        (ids && !json_object_is_type(ids, json_type_array)) || (!tk && !ids))
        return proto(d, out, "response has no tokens", body, len);
    if (tk)
        n = json_object_array_length(tk);
    if (ids)
        nids = json_object_array_length(ids);
    if (tk && ids && n != nids)
        return proto(d, out, "tokens and token_ids differ in length", body,
                     len);
    if (!tk)
        n = nids;
    for (i = 0; i < n; i++) {
        json_object *t = tk ? json_object_array_get_idx(tk, i) : NULL;
        int64_t id = -1;
        if (tk && !json_object_is_type(t, json_type_string))
            return proto(d, out, "token is not a string", body, len);
        if (ids && (!llmux_pj_as_int(json_object_array_get_idx(ids, i), &id) ||
                    id < 0))
            return proto(d, out, "bad token id", body, len);
        rc = aa_host->out_token(out, t ? json_object_get_string(t) : NULL,
                                t ? (size_t)json_object_get_string_len(t) : 0,
                                id);
        if (rc != 0)
            return rc;
    }
    return put_model(p, out);
}

static int dec_detokenize(const llmux_oai_dialect *d, const llmux_params *p,
                          llmux_out *out, json_object *root, const char *body,
                          size_t len)
{
    size_t n;
    const char *s = llmux_pj_get_str(root, "result", &n);
    int rc;
    if (!s)
        return proto(d, out, "response has no result text", body, len);
    if (n && (rc = aa_host->out_str(out, LLMUX_F_TEXT, s, n)) != 0)
        return rc;
    return put_model(p, out);
}

/* GET /models_available: [{"name": ...}, ...]. */
static int dec_models(const llmux_oai_dialect *d, llmux_out *out,
                      json_object *root, const char *body, size_t len)
{
    size_t i, n;
    int rc;
    if (!json_object_is_type(root, json_type_array))
        return proto(d, out, "models response is not a list", body, len);
    n = json_object_array_length(root);
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(root, i);
        const char *name = llmux_pj_get_str(m, "name", NULL);
        if (!name)
            name = llmux_pj_get_str(m, "id", NULL);
        if (name && *name && (rc = aa_host->out_model(out, name, NULL, 0)) != 0)
            return rc;
    }
    return 0;
}

static int dec_native(const llmux_oai_dialect *d, llmux_call *call, int kind,
                      const llmux_http_response *resp, llmux_out *out)
{
    const llmux_params *p = call->params;
    const char *body = resp->body;
    size_t len = resp->body_len;
    json_tokener *tok = llmux_pj_tok_take(JSON_TOKENER_DEFAULT_DEPTH);
    json_object *root = NULL;
    int rc;
    if (!tok) {
        aa_host->set_error(out, LLMUX_ENOMEM, "%s: out of memory", dname(d));
        return LLMUX_ENOMEM;
    }
    if (llmux_pj_parse(tok, body, len, &root) != 0) {
        rc = proto(d, out, "response is not valid JSON", body, len);
    } else if (json_object_is_type(root, json_type_object) &&
               llmux_pj_get(root, "error")) {
        rc = llmux_pj_body_error(aa_host, out, root, body, len);
    } else if (p->op == LLMUX_OP_MODELS) {
        rc = dec_models(d, out, root, body, len);
    } else if (!json_object_is_type(root, json_type_object)) {
        rc = proto(d, out, "response is not a JSON object", body, len);
    } else {
        switch (p->op) {
        case LLMUX_OP_COMPLETE:
            rc = dec_complete(d, p, out, root, body, len);
            break;
        case LLMUX_OP_EMBED:
            rc = dec_embed(d, p, kind, out, root, body, len);
            break;
        case LLMUX_OP_EVALUATE:
            rc = dec_evaluate(d, p, out, root, body, len);
            break;
        case LLMUX_OP_TOKENIZE:
            rc = dec_tokenize(d, p, out, root, body, len);
            break;
        case LLMUX_OP_DETOKENIZE:
            rc = dec_detokenize(d, p, out, root, body, len);
            break;
        default:
            aa_host->set_error(out, LLMUX_ENOTSUP,
                               "%s: operation %d not supported", dname(d),
                               p->op);
            rc = LLMUX_ENOTSUP;
        }
    }
    json_object_put(root);
    llmux_pj_tok_give(tok, JSON_TOKENER_DEFAULT_DEPTH);
    return rc;
}

/* ---- the codec's state behind ours --------------------------------------- */

/* Hands the codec its own state for one hook call. */
static aa_state *codec_enter(llmux_call *call)
{
    aa_state *st = call->state;
    call->state = st ? st->oai : NULL;
    return st;
}

/* Takes the codec's state back after a hook call; returns rc, or
 * LLMUX_ENOMEM when there is no room to keep it. */
static int codec_leave(llmux_call *call, aa_state *st, int rc)
{
    void *oai = call->state;
    if (!st && oai) {
        st = aa_host->alloc(sizeof(*st));
        if (!st) {
            llmux_oai_call_end(aa_host, call);
            call->state = NULL;
            return LLMUX_ENOMEM;
        }
        memset(st, 0, sizeof(*st));
    }
    if (st)
        st->oai = oai;
    call->state = st;
    return rc;
}

/* Whether this request goes through the codec. */
static int via_codec(const llmux_oai_dialect *d, const llmux_params *p)
{
    int kind;
    if (p->op == LLMUX_OP_CHAT)
        return 1;
    return p->op == LLMUX_OP_EMBED && embed_kind(d, p, &kind) == 0 &&
           kind == EMB_OPENAI;
}

static int aa_decode(void *provctx, llmux_call *call,
                     const llmux_http_response *resp, llmux_out *out)
{
    const llmux_oai_dialect *d = dialect(provctx);
    int kind = EMB_SEMANTIC, rc;
    if (via_codec(d, call->params)) {
        aa_state *st = codec_enter(call);
        rc = llmux_oai_decode(d, aa_host, call, resp, out);
        return codec_leave(call, st, rc);
    }
    if (call->params->op == LLMUX_OP_EMBED &&
        (rc = embed_kind(d, call->params, &kind)) != 0)
        return rc;
    return dec_native(d, call, kind, resp, out);
}

static int aa_decode_error(void *provctx, llmux_call *call,
                           const llmux_http_response *resp, llmux_out *out)
{
    /* {"error":"..","code":"QUEUE_FULL"} for every endpoint; plain text
     * ("Too many requests", "No server is available ...") sets nothing */
    aa_state *st = codec_enter(call);
    int rc = llmux_oai_decode_error(dialect(provctx), aa_host, call, resp, out);
    return codec_leave(call, st, rc);
}

/* ---- decoding: /complete streams ----------------------------------------- */

/*
 * One item of a /complete stream: {"type":"stream_chunk","index",
 * "completion"} is text, {"type":"stream_summary","index","finish_reason"}
 * the finish, {"type":"completion_summary","num_tokens_prompt_total",
 * "num_tokens_generated"} the usage and the end (the server sends no
 * "[DONE]", which is accepted all the same). Other types are skipped.
 */
static int complete_event(const llmux_oai_dialect *d, llmux_call *call,
                          const llmux_event *ev, llmux_out *out)
{
    const llmux_params *p = call->params;
    const char *s = ev->data, *type;
    size_t len = ev->data_len;
    json_object *root = NULL;
    json_tokener *tok;
    aa_state *st = call->state;
    int64_t idx;
    int rc = 0, is_err;
    if (!s)
        return 0;
    s = llmux_pj_trim(s, &len);
    if (len == 6 && memcmp(s, "[DONE]", 6) == 0)
        return LLMUX_EVENT_DONE;
    if (!len)
        return 0;
    if (!st) {
        if (!(st = aa_host->alloc(sizeof(*st)))) {
            aa_host->set_error(out, LLMUX_ENOMEM, "%s: out of memory",
                               dname(d));
            return LLMUX_ENOMEM;
        }
        memset(st, 0, sizeof(*st));
        call->state = st;
    }
    if (!(tok = llmux_pj_tok_take(JSON_TOKENER_DEFAULT_DEPTH))) {
        aa_host->set_error(out, LLMUX_ENOMEM, "%s: out of memory", dname(d));
        return LLMUX_ENOMEM;
    }
    is_err = ev->event && strcmp(ev->event, "error") == 0;
    rc = llmux_pj_parse(tok, s, len, &root);
    llmux_pj_tok_give(tok, JSON_TOKENER_DEFAULT_DEPTH);
    if (rc != 0 || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        if (is_err) /* an error event that is no JSON object */
            return llmux_pj_body_error(aa_host, out, NULL, s, len);
        return proto(d, out, "bad stream event", s, len);
    }
    if (is_err || llmux_pj_get(root, "error")) {
        rc = llmux_pj_body_error(aa_host, out, root, s, len);
        json_object_put(root);
        return rc;
    }
    type = llmux_pj_get_str(root, "type", NULL);
    idx = item_index(root);
    if (!type) {
        rc = proto(d, out, "stream item has no type", s, len);
    } else if (strcmp(type, "stream_chunk") == 0) {
        json_object *c = llmux_pj_get(root, "completion");
        if (idx < 0 || !json_object_is_type(c, json_type_string))
            rc = proto(d, out, "bad stream_chunk", s, len);
        else if (idx == 0 && json_object_get_string_len(c))
            rc = aa_host->out_str(out, LLMUX_F_TEXT, json_object_get_string(c),
                                  (size_t)json_object_get_string_len(c));
    } else if (strcmp(type, "stream_summary") == 0) {
        if (idx < 0)
            rc = proto(d, out, "bad stream_summary", s, len);
        else if (idx == 0)
            rc = put_finish(out, llmux_pj_get(root, "finish_reason"));
    } else if (strcmp(type, "completion_summary") == 0) {
        /* the last item; the model again in case the first item carried
         * nothing to pass on */
        if ((rc = put_usage(out, root, 1)) == 0 &&
            (rc = put_model(p, out)) == 0)
            rc = LLMUX_EVENT_DONE;
        st->model_sent = 1;
    }
    if (rc >= 0 && !st->model_sent) {
        int mrc = put_model(p, out);
        st->model_sent = 1;
        if (mrc != 0)
            rc = mrc;
    }
    json_object_put(root);
    return rc;
}

static int aa_decode_event(void *provctx, llmux_call *call,
                           const llmux_event *ev, llmux_out *out)
{
    const llmux_oai_dialect *d = dialect(provctx);
    aa_state *st;
    int rc;
    if (call->params->op == LLMUX_OP_COMPLETE)
        return complete_event(d, call, ev, out);
    st = codec_enter(call);
    rc = llmux_oai_decode_event(d, aa_host, call, ev, out);
    return codec_leave(call, st, rc);
}

static void aa_call_end(void *provctx, llmux_call *call)
{
    aa_state *st;
    (void)provctx;
    if (!call || !call->state)
        return;
    st = codec_enter(call);
    llmux_oai_call_end(aa_host, call);
    aa_host->free(st);
    call->state = NULL;
}

/* ---- provider table ------------------------------------------------------ */

static int aa_init(const llmux_host *host, const llmux_provider_config *cfg,
                   void **provctx)
{
    return llmux_oai_provider_init(&aa_dialect, host, cfg, provctx);
}

/* What a config string may say to this plugin besides the core's keys:
 * the native endpoints' options and the chat codec's own. */
static const llmux_option_def aa_options[] = {
    {"hosting", LLMUX_OPTION_BODY},
    {"nice", LLMUX_OPTION_BODY},
    {"top_k", LLMUX_OPTION_BODY},
    {"representation", LLMUX_OPTION_BODY},
    {"compress_to_size", LLMUX_OPTION_BODY},
    {"normalize", LLMUX_OPTION_BODY},
    {"layers", LLMUX_OPTION_BODY},
    {"pooling", LLMUX_OPTION_BODY},
    {"embed_endpoint", 0},
    {"dimensions", LLMUX_OPTION_BODY},
    {"max_tokens_field", 0},
    LLMUX_OAI_DESCRIPTOR_OPTIONS,
    {NULL, 0}};

static const llmux_provider aa_provider = {
    LLMUX_PROVIDER_ABI,
    sizeof(llmux_provider),
    "alephalpha",
    LLMUX_VERSION_STRING,
    "Aleph Alpha (PhariaAI inference): chat, complete, semantic embeddings, "
    "evaluate, tokenize, detokenize, models",
    LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_COMPLETE | LLMUX_CAP_EMBED |
        LLMUX_CAP_MODELS | LLMUX_CAP_TOOLS | LLMUX_CAP_JSON |
        LLMUX_CAP_TOKENIZE | LLMUX_CAP_DETOKENIZE | LLMUX_CAP_EVALUATE,
    LLMUX_FRAMING_SSE,
    LLMUX_AUTH_BEARER,
    "https://api.aleph-alpha.com",
    "AA_TOKEN",
    "AA_BASE_URL",
    aa_init,
    llmux_oai_provider_teardown,
    aa_encode,
    aa_decode,
    aa_decode_event,
    aa_decode_error,
    aa_call_end,
    0, /* default_port */
    NULL /* rate_limits */,
    llmux_pj_classify_error,
    aa_options,
    NULL, /* auth_header: Authorization */
    NULL, /* job_encode: no batch API */
    NULL /* job_decode */};

LLMUX_DEFINE_PROVIDER(aa_provider, aa_host)
