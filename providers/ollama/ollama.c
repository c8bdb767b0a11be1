/*
 * providers/ollama/ollama.c: the Ollama provider plugin, on Ollama's
 * native API (not its OpenAI-compatible /v1 layer).
 *
 *   chat        POST /api/chat      {"model","messages","stream",...}
 *   complete    POST /api/generate  {"model","prompt","suffix","system",...}
 *   embed       POST /api/embed     {"model","input"} -> "embeddings"
 *   models      GET  /api/tags      -> "models"[].name
 *
 * Base URL http://127.0.0.1:11434; OLLAMA_HOST overrides it ("gpu",
 * "gpu:8080" or a full URL: the core adds http:// and port 11434 from the
 * table below); OLLAMA_API_KEY, when set, is sent as a Bearer token
 * (hosted Ollama). The protocol is not OpenAI-shaped, so this file has its
 * own encoder and decoder; it borrows only small helpers of the shared
 * codec (strict parsing, number formatting, error-object recognition).
 *
 * Request rules:
 * - Ollama streams by default: "stream" is always sent, false included
 *   (not for /api/embed, which does not stream).
 * - Sampling goes under "options": max tokens -> num_predict, temperature,
 *   top_p, seed, stop.
 * - Provider options (config string ";key=value", or a descriptor's keys)
 *   are split in two. These keys are top-level request fields:
 *     think       chat, generate: true/false (also 1/0, yes/no, on/off)
 *                 -> boolean; low/medium/high/max -> that string
 *     keep_alive  chat, generate, embed: a JSON number -> number of
 *                 seconds, anything else (e.g. "5m") -> string
 *     format      chat, generate: "json" or a JSON schema object (used
 *                 only when no response_format is set)
 *     system, template         generate: strings
 *     raw                      generate: boolean
 *     truncate                 chat, generate, embed: boolean
 *     shift, logprobs          chat, generate: boolean
 *     top_logprobs             chat, generate: integer
 *     dimensions               embed: integer
 *   They are dropped for operations they do not apply to. EVERY OTHER key
 *   goes into "options", typed by its text: true/false -> boolean, a JSON
 *   number (RFC 8259 grammar: -?int[.frac][e[+-]exp]) -> number (integer
 *   when it has neither fraction nor exponent), text starting with '[' or
 *   '{' -> that JSON value, anything else -> string; "stop" is always an
 *   array (a plain value becomes a one-element array). So num_ctx=8192,
 *   top_k=40, min_p=0.05, repeat_penalty=1.1, use_mmap=false all arrive
 *   with the right JSON type. Typed parameters win over options, the
 *   config string over the descriptor.
 * - extra_json (other fields of an OpenAI-style request JSON) is merged at
 *   the top level (so logprobs and top_logprobs reach Ollama), except
 *   "stream" (the core decides), "n" (refused unless 1: Ollama answers
 *   with one choice), its "options"
 *   object (merged into ours) and members named like an Ollama option
 *   (top_k, presence_penalty, frequency_penalty ...), which go under
 *   "options". Fields already set are never replaced.
 * - response_format json_object -> "format":"json", json_schema -> its
 *   "schema" object, text -> nothing.
 * - Messages: developer reads as system (Ollama has no developer role).
 *   Content arrays: text parts are joined with "\n"; image parts must be
 *   base64 data: URLs and go to "images" (Ollama cannot fetch URLs).
 *   Assistant reasoning is sent as "thinking". Tool-call history sends
 *   "arguments" as a JSON OBJECT (parsed from the common JSON text); tool
 *   results carry "tool_name" (the message's name, else the name of the
 *   call with that id in an earlier assistant message) and "tool_call_id".
 * - Ollama has no tool_choice: "none" leaves the tools out, "auto" is the
 *   default, anything else is refused (LLMUX_ENOTSUP naming tool_choice).
 *
 * Answer rules:
 * - "created_at" (RFC 3339, nanoseconds, any offset) -> unix seconds,
 *   computed arithmetically (no locale, no timegm); "model" -> model.
 * - message.content / response -> text; message.thinking / thinking ->
 *   reasoning.
 * - Tool calls: "arguments" (an object) is passed on as JSON text. Ollama
 *   numbers every streamed call 0 (or not at all) and sends each call whole
 *   in one line, so each call gets the next index of the stream (state in
 *   call->state). Calls without an "id" get "call_<index>".
 * - Finish (on the done:true line, or a whole answer): tool calls seen ->
 *   tool_calls; done_reason "length" -> length; "stop", "load", "unload"
 *   and anything else -> stop. done_reason is kept as the raw reason.
 * - "logprobs" (top-level, per line in a stream) -> choice 0's content
 *   logprobs, OpenAI's token shape. Every member not read here (the
 *   durations, "context" ...) is kept as a field of the answer
 *   (host->out_json), the message's members likewise.
 * - Usage: prompt_eval_count -> prompt tokens, eval_count -> completion
 *   tokens, total = their sum. Ollama omits zero counts ("omitempty", e.g.
 *   a fully cached prompt), so on a final object with at least one count
 *   the missing one reads as 0; with neither there is no usage. Embed
 *   answers: prompt_eval_count -> prompt and total tokens.
 * - A stream is NDJSON; the done:true line ends it (LLMUX_EVENT_DONE, its
 *   content and usage in the same chunk). An {"error":...} line (Ollama
 *   sends one with status 200 when a stream fails) is a provider error.
 * - Embeddings: "embeddings" (or the legacy single "embedding"); models:
 *   each entry's "name" (else "model"), "modified_at" as its created time.
 * - A whole (non-streamed) chat/generate body holding several NDJSON lines
 *   (a server that streamed anyway, or a stream labelled application/json)
 *   is folded into one answer as a stream would be.
 * - Error bodies: {"error":"text"} (and the other shapes the shared codec
 *   knows); plain text is left to the core's raw-text fallback.
 *
 * Where WIRE.md and Ollama's published reference (docs/api.md,
 * api/types.go) differ: none found; "max" for think is accepted as WIRE.md
 * lists it, though docs/api.md only names low/medium/high.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include <llmux/client.h> /* log levels */
#include <llmux/sys/provider.h>
#include <llmux/version.h>

#include "oai.h"

/* Nesting allowed in JSON from the user and in answers (tool arguments and
 * schemas can be deep). */
#define OLL_DEPTH 128
/* More tool calls than this in one answer is a protocol error. */
#define OLL_MAX_CALLS 1024

#define CONST_KEY JSON_C_OBJECT_ADD_CONSTANT_KEY

static const llmux_host *oll_host;

/* ---- small helpers ------------------------------------------------------- */

/* The name error messages start with: the provider as the user wrote it. */
static const char *pname(const llmux_call *call)
{
    return call && call->provider && *call->provider ? call->provider
                                                     : "ollama";
}

/* Adds `v` under a key that outlives the object (a literal). */
static int add_lit(json_object *obj, const char *key, json_object *v)
{
    if (!v)
        return LLMUX_ENOMEM;
    if (json_object_object_add_ex(obj, key, v, CONST_KEY) != 0) {
        json_object_put(v);
        return LLMUX_ENOMEM;
    }
    return 0;
}

static int has(json_object *obj, const char *key)
{
    return json_object_object_get_ex(obj, key, NULL);
}

static int proto(const llmux_host *h, llmux_call *call, llmux_out *out,
                 const char *what, const char *s, size_t len)
{
    return llmux_pj_proto(h, out, pname(call), what, s, len);
}

/* ---- option values ------------------------------------------------------- */

/*
 * Recognises a whole string as a JSON number (RFC 8259). Returns 1 with
 * *is_int and *iv set for an integer that fits int64, or with *dv holding
 * the value otherwise; 0 when `s` is not a number. No strtod: the C
 * locale's radix character must not matter (the text itself is what gets
 * sent, so *dv needs no more than double precision arithmetic).
 */
static int json_number(const char *s, int *is_int, int64_t *iv, double *dv)
{
    const char *p = s;
    int neg = 0, fits = 1, frac = 0, eneg = 0;
    int64_t n = 0;
    long ex = 0, scale = 0;
    double m = 0.0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        for (; *p >= '0' && *p <= '9'; p++) {
            int d = *p - '0';
            if (n > (INT64_MAX - d) / 10)
                fits = 0;
            else
                n = n * 10 + d;
            m = m * 10.0 + d;
        }
    } else {
        return 0;
    }
    if (*p == '.') {
        p++;
        frac = 1;
        if (*p < '0' || *p > '9')
            return 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            m = m * 10.0 + (*p - '0');
            scale--;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        frac = 1;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        if (*p < '0' || *p > '9')
            return 0;
        for (; *p >= '0' && *p <= '9'; p++)
            if (ex < 100000)
                ex = ex * 10 + (*p - '0');
    }
    if (*p)
        return 0;
    *is_int = !frac && fits;
    if (*is_int) {
        *iv = neg ? -n : n;
        return 1;
    }
    scale += eneg ? -ex : ex;
    for (; scale > 0 && m < 1e308; scale--)
        m *= 10.0;
    for (; scale < 0 && m > 0.0; scale++)
        m /= 10.0;
    *dv = neg ? -m : m;
    return 1;
}

/* A JSON number for option text `s` known to be one. */
static json_object *number_value(const char *s)
{
    int is_int;
    int64_t iv;
    double dv;
    if (!json_number(s, &is_int, &iv, &dv))
        return NULL;
    return is_int ? json_object_new_int64(iv) : json_object_new_double_s(dv, s);
}

/* ---- encoding ------------------------------------------------------------ */

/* Operations, as bits of the top-level option table. */
#define B_CHAT  1u
#define B_GEN   2u
#define B_EMBED 4u

typedef struct oll_enc {
    const llmux_host *h;
    llmux_call *call;
    const llmux_params *p;
    unsigned opbit;
    json_tokener *tok; /* taken on the first user JSON to parse */
    json_object *body;
    json_object *options; /* borrowed from body */
} oll_enc;

/* Parses user JSON text for `what`; *out is NULL for JSON null. */
static int user_json(oll_enc *e, const char *text, const char *what,
                     json_object **out)
{
    return llmux_pj_user_json(e->h, pname(e->call), &e->tok, OLL_DEPTH, text,
                              what, out);
}

/* The first value of provider option `key` (case-insensitive). */
static const char *opt_get(const llmux_params *p, const char *key)
{
    size_t i;
    for (i = 0; i < p->n_options; i++)
        if (p->options[i].key && p->options[i].value &&
            llmux_pj_caseeq(p->options[i].key, key))
            return p->options[i].value;
    return NULL;
}

enum { K_THINK, K_DURATION, K_FORMAT, K_STRING, K_BOOL, K_UINT };

/* Provider options that are top-level request fields (see the top). */
static const struct top_key {
    const char *key;
    int kind;
    unsigned ops;
} top_keys[] = {{"think", K_THINK, B_CHAT | B_GEN},
                {"keep_alive", K_DURATION, B_CHAT | B_GEN | B_EMBED},
                {"format", K_FORMAT, B_CHAT | B_GEN},
                {"system", K_STRING, B_GEN},
                {"template", K_STRING, B_GEN},
                {"raw", K_BOOL, B_GEN},
                {"truncate", K_BOOL, B_CHAT | B_GEN | B_EMBED},
                {"shift", K_BOOL, B_CHAT | B_GEN},
                {"logprobs", K_BOOL, B_CHAT | B_GEN},
                {"top_logprobs", K_UINT, B_CHAT | B_GEN},
                {"dimensions", K_UINT, B_EMBED},
                {NULL, 0, 0}};

static const struct top_key *find_top(const char *key)
{
    const struct top_key *t;
    for (t = top_keys; t->key; t++)
        if (llmux_pj_caseeq(t->key, key))
            return t;
    return NULL;
}

/* Ollama's model options (api/types.go Options and Runner), for routing
 * extra_json members into "options". */
static int is_model_option(const char *key)
{
    static const char *const names[] = {"num_predict",
                                        "temperature",
                                        "top_p",
                                        "top_k",
                                        "min_p",
                                        "typical_p",
                                        "seed",
                                        "stop",
                                        "repeat_penalty",
                                        "repeat_last_n",
                                        "presence_penalty",
                                        "frequency_penalty",
                                        "num_keep",
                                        "num_ctx",
                                        "num_batch",
                                        "num_gpu",
                                        "main_gpu",
                                        "use_mmap",
                                        "num_thread",
                                        "mirostat",
                                        "mirostat_tau",
                                        "mirostat_eta",
                                        "penalize_newline",
                                        "tfs_z",
                                        NULL};
    const char *const *n;
    for (n = names; *n; n++)
        if (strcmp(*n, key) == 0)
            return 1;
    return 0;
}

static int bad_option(oll_enc *e, const char *key, const char *want)
{
    e->h->log(LLMUX_LOG_ERROR, "%s: option %s must be %s", pname(e->call), key,
              want);
    return LLMUX_EINVAL;
}

/* One top-level provider option. */
static int enc_top(oll_enc *e, const struct top_key *t, const char *v)
{
    static const char *const efforts[] = {"low", "medium", "high", "max", NULL};
    json_object *val = NULL;
    int64_t n;
    int b, rc;
    if (!*v && t->kind != K_STRING)
        return 0;
    switch (t->kind) {
    case K_THINK:
        if ((b = llmux_pj_bool(v)) >= 0) {
            val = json_object_new_boolean(b);
        } else {
            const char *const *x;
            for (x = efforts; *x && !llmux_pj_caseeq(*x, v); x++)
                ;
            if (!*x)
                return bad_option(e, t->key,
                                  "true, false, low, medium, high or max");
            val = json_object_new_string(*x);
        }
        break;
    case K_DURATION:
        val = number_value(v);
        if (!val)
            val = json_object_new_string(v); /* "5m", "1h30m", "-1m" */
        break;
    case K_FORMAT:
        if (has(e->body, "format"))
            return 0; /* response_format wins */
        if (llmux_pj_caseeq(v, "json")) {
            val = json_object_new_string("json");
        } else if (*v == '{') {
            if ((rc = user_json(e, v, "option format", &val)) != 0)
                return rc;
        } else {
            return bad_option(e, t->key, "\"json\" or a JSON schema object");
        }
        break;
    case K_STRING:
        val = json_object_new_string(v);
        break;
    case K_BOOL:
        if ((b = llmux_pj_bool(v)) < 0)
            return bad_option(e, t->key, "true or false");
        val = json_object_new_boolean(b);
        break;
    default: /* K_UINT */
        if (llmux_pj_parse_uint(v, &n) != 0)
            return bad_option(e, t->key, "a non-negative integer");
        val = json_object_new_int64(n);
        break;
    }
    return add_lit(e->body, t->key, val);
}

/* A provider option's value for "options", typed by its text. */
static int typed_value(oll_enc *e, const char *key, const char *v,
                       json_object **out)
{
    int rc;
    *out = NULL;
    if (llmux_pj_caseeq(v, "true") || llmux_pj_caseeq(v, "false")) {
        *out = json_object_new_boolean(llmux_pj_caseeq(v, "true"));
    } else if ((*out = number_value(v)) != NULL) {
        /* a number */
    } else if (*v == '[' || *v == '{') {
        char what[96];
        snprintf(what, sizeof what, "option %s", key);
        if ((rc = user_json(e, v, what, out)) != 0)
            return rc;
    } else {
        *out = json_object_new_string(v);
    }
    if (!*out)
        return LLMUX_ENOMEM;
    if (strcmp(key, "stop") == 0 &&
        !json_object_is_type(*out, json_type_array)) {
        json_object *arr = json_object_new_array();
        json_object_put(*out);
        *out = NULL;
        if (!arr || llmux_pj_push_str(arr, v) != 0) {
            json_object_put(arr);
            return LLMUX_ENOMEM;
        }
        *out = arr;
    }
    return 0;
}

/* Every provider option that is not a top-level field, into "options". */
static int enc_model_options(oll_enc *e)
{
    const llmux_params *p = e->p;
    size_t i;
    int rc;
    for (i = 0; i < p->n_options; i++) {
        const char *k = p->options[i].key, *v = p->options[i].value;
        json_object *val;
        if (!k || !*k || !v || find_top(k) || has(e->options, k))
            continue;
        if ((rc = typed_value(e, k, v, &val)) != 0)
            return rc;
        if ((rc = llmux_pj_set(e->options, k, val)) != 0)
            return rc;
    }
    return 0;
}

/* The top-level provider options, in table order. */
static int enc_top_options(oll_enc *e)
{
    const struct top_key *t;
    int rc;
    for (t = top_keys; t->key; t++) {
        const char *v;
        if (!(t->ops & e->opbit) || !(v = opt_get(e->p, t->key)))
            continue;
        if ((rc = enc_top(e, t, v)) != 0)
            return rc;
    }
    return 0;
}

/* num_predict, temperature, top_p, seed, stop. */
static int enc_sampling(oll_enc *e)
{
    const llmux_params *p = e->p;
    json_object *o = e->options;
    int rc;
    if ((p->has & LLMUX_HAS_MAX_TOKENS) &&
        (rc = add_lit(o, "num_predict", json_object_new_int64(p->max_tokens))))
        return rc;
    if ((p->has & LLMUX_HAS_TEMPERATURE) &&
        (rc = llmux_pj_add_double(oll_host, o, "temperature",
                                  p->temperature)) != 0)
        return rc == LLMUX_EINVAL ? bad_option(e, "temperature", "finite") : rc;
    if ((p->has & LLMUX_HAS_TOP_P) &&
        (rc = llmux_pj_add_double(oll_host, o, "top_p", p->top_p)) != 0)
        return rc == LLMUX_EINVAL ? bad_option(e, "top_p", "finite") : rc;
    if ((p->has & LLMUX_HAS_SEED) &&
        (rc = add_lit(o, "seed", json_object_new_int64(p->seed))) != 0)
        return rc;
    if (p->n_stop && p->stop)
        return add_lit(o, "stop", llmux_pj_str_array(p->stop, p->n_stop));
    return 0;
}

/* response_format -> "format". */
static int enc_format(oll_enc *e)
{
    json_object *rf, *schema;
    const char *type;
    int rc;
    if (!e->p->response_format_json)
        return 0;
    if ((rc = user_json(e, e->p->response_format_json, "response_format",
                        &rf)) != 0)
        return rc;
    if (!rf)
        return 0;
    type = json_object_get_string(llmux_pj_get(rf, "type"));
    if (!json_object_is_type(rf, json_type_object) ||
        !json_object_is_type(llmux_pj_get(rf, "type"), json_type_string)) {
        rc = bad_option(e, "response_format", "an object with a \"type\"");
    } else if (strcmp(type, "json_object") == 0) {
        rc = add_lit(e->body, "format", json_object_new_string("json"));
    } else if (strcmp(type, "json_schema") == 0) {
        schema = llmux_pj_get(llmux_pj_get(rf, "json_schema"), "schema");
        if (!json_object_is_type(schema, json_type_object))
            rc = bad_option(e, "response_format",
                            "a json_schema with a \"schema\" object");
        else
            rc = add_lit(e->body, "format", json_object_get(schema));
    } else if (strcmp(type, "text") == 0) {
        rc = 0;
    } else {
        e->h->log(LLMUX_LOG_ERROR,
                  "%s: response_format type \"%s\" is not supported",
                  pname(e->call), type);
        rc = LLMUX_EINVAL;
    }
    json_object_put(rf);
    return rc;
}

static const char *role_name(int role)
{
    switch (role) {
    case LLMUX_ROLE_SYSTEM:
    case LLMUX_ROLE_DEVELOPER: /* Ollama has no developer role */
        return "system";
    case LLMUX_ROLE_USER:
        return "user";
    case LLMUX_ROLE_ASSISTANT:
        return "assistant";
    case LLMUX_ROLE_TOOL:
        return "tool";
    }
    return NULL;
}

/* The function name of the call `id` made by an assistant message before
 * message `i`, or NULL. */
static const char *tool_name_for(const llmux_params *p, size_t i,
                                 const char *id)
{
    size_t j, k;
    if (!id)
        return NULL;
    for (j = i; j-- > 0;) {
        const llmux_msg *m = &p->messages[j];
        if (m->role != LLMUX_ROLE_ASSISTANT || !m->tool_calls)
            continue;
        for (k = 0; k < m->n_tool_calls; k++)
            if (m->tool_calls[k].id && strcmp(m->tool_calls[k].id, id) == 0)
                return m->tool_calls[k].name;
    }
    return NULL;
}

/* The base64 payload of a "data:<mime>;base64,<data>" URL, or NULL. */
static const char *data_url_b64(const char *url)
{
    const char *comma;
    if (strncmp(url, "data:", 5) != 0 || !(comma = strchr(url, ',')))
        return NULL;
    if (comma - url < 12 || strncmp(comma - 7, ";base64", 7) != 0)
        return NULL;
    return comma + 1;
}

/* The text of a text part (a string, or {"type":"text","text":...}). */
static json_object *part_text(json_object *part)
{
    const char *type;
    json_object *t;
    if (json_object_is_type(part, json_type_string))
        return part;
    t = llmux_pj_get(part, "type");
    if (!json_object_is_type(t, json_type_string))
        return NULL;
    type = json_object_get_string(t);
    if (strcmp(type, "text") != 0 && strcmp(type, "input_text") != 0)
        return NULL;
    t = llmux_pj_get(part, "text");
    return json_object_is_type(t, json_type_string) ? t : NULL;
}

/* Content given as an array of typed parts: text parts are joined with
 * "\n" into "content", base64 data: images go to "images". */
static int enc_parts(oll_enc *e, json_object *m, json_object *parts, size_t i)
{
    size_t k, n = json_object_array_length(parts), tlen = 0, at = 0;
    size_t ntext = 0;
    json_object *images = NULL;
    char *text;
    int rc = 0;
    for (k = 0; k < n; k++) {
        json_object *part = json_object_array_get_idx(parts, k), *t, *u;
        const char *type = json_object_get_string(llmux_pj_get(part, "type"));
        if ((t = part_text(part)) != NULL) {
            tlen += (size_t)json_object_get_string_len(t) + 1;
            continue;
        }
        if (!json_object_is_type(part, json_type_object) || !type ||
            !json_object_is_type(llmux_pj_get(part, "type"),
                                 json_type_string) ||
            strcmp(type, "text") == 0 || strcmp(type, "input_text") == 0)
            goto bad; /* a text part without its text */
        if (strcmp(type, "image_url") == 0) {
            const char *b64;
            u = llmux_pj_get(part, "image_url");
            if (json_object_is_type(u, json_type_object))
                u = llmux_pj_get(u, "url");
            if (!json_object_is_type(u, json_type_string))
                goto bad;
            b64 = data_url_b64(json_object_get_string(u));
            if (!b64) {
                e->h->log(LLMUX_LOG_ERROR,
                          "%s: message %zu: an image by URL is not supported "
                          "by Ollama: it takes images only as base64 data: "
                          "URLs (llmux_request_add_image)",
                          pname(e->call), i);
                json_object_put(images);
                return LLMUX_ENOTSUP;
            }
            if (!images && !(images = json_object_new_array()))
                return LLMUX_ENOMEM;
            if (llmux_pj_push_str(images, b64) != 0) {
                json_object_put(images);
                return LLMUX_ENOMEM;
            }
        } else {
            e->h->log(LLMUX_LOG_ERROR,
                      "%s: message %zu: the content part \"%s\" is not "
                      "supported by Ollama: it takes text and images",
                      pname(e->call), i, type);
            json_object_put(images);
            return LLMUX_ENOTSUP;
        }
    }
    text = e->h->alloc(tlen + 1);
    if (!text) {
        json_object_put(images);
        return LLMUX_ENOMEM;
    }
    for (k = 0; k < n; k++) {
        json_object *t = part_text(json_object_array_get_idx(parts, k));
        size_t len;
        if (!t)
            continue;
        len = (size_t)json_object_get_string_len(t);
        if (ntext++)
            text[at++] = '\n';
        memcpy(text + at, json_object_get_string(t), len);
        at += len;
    }
    rc = add_lit(m, "content", json_object_new_string_len(text, (int)at));
    e->h->free(text);
    if (rc == 0 && images)
        return add_lit(m, "images", images);
    json_object_put(images);
    return rc;
bad:
    e->h->log(LLMUX_LOG_ERROR, "%s: message %zu: bad content part %zu",
              pname(e->call), i, k);
    json_object_put(images);
    return LLMUX_EINVAL;
}

static int enc_content(oll_enc *e, json_object *m, const llmux_msg *msg,
                       size_t i)
{
    json_object *c;
    int rc;
    if (!msg->content_json)
        return add_lit(
            m, "content",
            json_object_new_string(msg->content ? msg->content : ""));
    if ((rc = user_json(e, msg->content_json, "message content", &c)) != 0)
        return rc;
    if (!c) {
        rc = add_lit(m, "content", json_object_new_string(""));
    } else if (json_object_is_type(c, json_type_string)) {
        rc = add_lit(m, "content", json_object_get(c));
    } else if (json_object_is_type(c, json_type_array)) {
        rc = enc_parts(e, m, c, i);
    } else {
        e->h->log(LLMUX_LOG_ERROR,
                  "%s: message %zu: content must be a string or an array",
                  pname(e->call), i);
        rc = LLMUX_EINVAL;
    }
    json_object_put(c);
    return rc;
}

/* An assistant message's tool calls, arguments as JSON objects. */
static int enc_tool_calls(oll_enc *e, json_object *m, const llmux_msg *msg,
                          size_t i)
{
    json_object *arr = json_object_new_array_ext((int)msg->n_tool_calls);
    size_t k;
    int rc;
    if ((rc = add_lit(m, "tool_calls", arr)) != 0)
        return rc;
    for (k = 0; k < msg->n_tool_calls; k++) {
        const llmux_tool_call *tc = &msg->tool_calls[k];
        const char *a = tc->arguments;
        json_object *c = llmux_pj_push_object(arr), *fn, *args = NULL;
        if (!c)
            return LLMUX_ENOMEM;
        if (tc->id && *tc->id &&
            (rc = add_lit(c, "id", json_object_new_string(tc->id))) != 0)
            return rc;
        fn = json_object_new_object();
        if ((rc = add_lit(c, "function", fn)) != 0 ||
            (rc = add_lit(fn, "name",
                          json_object_new_string(tc->name ? tc->name : ""))) !=
                0)
            return rc;
        while (a && (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n'))
            a++;
        if (a && *a && (rc = user_json(e, a, "tool call arguments", &args)))
            return rc;
        if (!args) {
            args = json_object_new_object(); /* "" or null: no arguments */
        } else if (!json_object_is_type(args, json_type_object)) {
            json_object_put(args);
            e->h->log(LLMUX_LOG_ERROR,
                      "%s: message %zu: arguments of tool call %zu are "
                      "not a JSON object",
                      pname(e->call), i, k);
            return LLMUX_EINVAL;
        }
        if ((rc = add_lit(fn, "arguments", args)) != 0)
            return rc;
    }
    return 0;
}

static int enc_message(oll_enc *e, json_object *arr, size_t i)
{
    const llmux_msg *msg = &e->p->messages[i];
    const char *role = role_name(msg->role);
    json_object *m;
    int rc;
    if (!role) {
        e->h->log(LLMUX_LOG_ERROR, "%s: message %zu has an unknown role %d",
                  pname(e->call), i, msg->role);
        return LLMUX_EINVAL;
    }
    if (!(m = llmux_pj_push_object(arr)))
        return LLMUX_ENOMEM;
    if ((rc = add_lit(m, "role", json_object_new_string(role))) != 0 ||
        (rc = enc_content(e, m, msg, i)) != 0)
        return rc;
    if (msg->role == LLMUX_ROLE_ASSISTANT) {
        if (msg->reasoning && *msg->reasoning &&
            (rc = add_lit(m, "thinking",
                          json_object_new_string(msg->reasoning))) != 0)
            return rc;
        if (msg->n_tool_calls && msg->tool_calls &&
            (rc = enc_tool_calls(e, m, msg, i)) != 0)
            return rc;
    } else if (msg->role == LLMUX_ROLE_TOOL) {
        const char *name = msg->name && *msg->name
                               ? msg->name
                               : tool_name_for(e->p, i, msg->tool_call_id);
        if (name &&
            (rc = add_lit(m, "tool_name", json_object_new_string(name))) != 0)
            return rc;
        if (msg->tool_call_id &&
            (rc = add_lit(m, "tool_call_id",
                          json_object_new_string(msg->tool_call_id))) != 0)
            return rc;
    }
    return 0;
}

/* "tools", unless tool_choice is "none" (Ollama has no tool_choice). */
static int enc_tools(oll_enc *e)
{
    const char *tc = e->p->tool_choice_json;
    json_object *tools;
    int rc;
    if (!e->p->tools_json)
        return 0;
    if (tc) {
        if (strcmp(tc, "none") == 0 || strcmp(tc, "\"none\"") == 0)
            return 0;
        if (strcmp(tc, "auto") != 0 && strcmp(tc, "\"auto\"") != 0) {
            /* "required" or one named function: Ollama cannot be made to
             * call a tool, so the request is refused rather than sent as
             * if the choice were "auto" */
            e->h->log(LLMUX_LOG_ERROR,
                      "%s: the request field \"tool_choice\" (%s) is not "
                      "supported by Ollama: only \"auto\" and \"none\"",
                      pname(e->call), tc);
            return LLMUX_ENOTSUP;
        }
    }
    if ((rc = user_json(e, e->p->tools_json, "tools", &tools)) != 0)
        return rc;
    if (!tools)
        return 0;
    if (!json_object_is_type(tools, json_type_array)) {
        json_object_put(tools);
        return bad_option(e, "tools", "a JSON array");
    }
    return add_lit(e->body, "tools", tools);
}

/* Merges extra_json: see the top of the file. */
static int enc_extra(oll_enc *e)
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
        return bad_option(e, "extra request fields", "a JSON object");
    }
    /* its "options" first: the native form wins over loose members */
    {
        json_object *xo = llmux_pj_get(x, "options");
        if (json_object_is_type(xo, json_type_object)) {
            json_object_object_foreach(xo, k2, v2)
            {
                if (!has(e->options, k2) &&
                    llmux_pj_set(e->options, k2, json_object_get(v2)) != 0) {
                    json_object_put(x);
                    return LLMUX_ENOMEM;
                }
            }
        }
    }
    {
        json_object_object_foreach(x, key, val)
        {
            json_object *dst = is_model_option(key) ? e->options : e->body;
            int64_t n;
            /* Ollama answers with one choice: asking for more is refused,
             * not answered with one */
            if (strcmp(key, "n") == 0 && val &&
                !(llmux_pj_as_int(val, &n) && n == 1)) {
                json_object_put(x);
                e->h->log(LLMUX_LOG_ERROR,
                          "%s: the request field \"n\" is not supported by "
                          "Ollama: it answers with one choice",
                          pname(e->call));
                return LLMUX_ENOTSUP;
            }
            if (strcmp(key, "stream") == 0 || strcmp(key, "n") == 0 ||
                (strcmp(key, "options") == 0 &&
                 json_object_is_type(val, json_type_object)) ||
                has(dst, key))
                continue;
            if (llmux_pj_set(dst, key, json_object_get(val)) != 0) {
                json_object_put(x);
                return LLMUX_ENOMEM;
            }
        }
    }
    json_object_put(x);
    return 0;
}

static int enc_messages(oll_enc *e)
{
    json_object *msgs = json_object_new_array_ext((int)e->p->n_messages);
    size_t i;
    int rc;
    if ((rc = add_lit(e->body, "messages", msgs)) != 0)
        return rc;
    for (i = 0; i < e->p->n_messages; i++)
        if ((rc = enc_message(e, msgs, i)) != 0)
            return rc;
    return 0;
}

static int enc_input(oll_enc *e)
{
    const llmux_params *p = e->p;
    if (!p->n_input || !p->input) {
        e->h->log(LLMUX_LOG_ERROR, "%s: no input to embed", pname(e->call));
        return LLMUX_EINVAL;
    }
    if (p->n_input == 1)
        return add_lit(e->body, "input",
                       json_object_new_string(p->input[0] ? p->input[0] : ""));
    return add_lit(e->body, "input", llmux_pj_str_array(p->input, p->n_input));
}

static int enc_body(oll_enc *e)
{
    const llmux_params *p = e->p;
    int rc;
    if (!p->model || !*p->model) {
        e->h->log(LLMUX_LOG_ERROR, "%s: no model given", pname(e->call));
        return LLMUX_EINVAL;
    }
    if ((rc = add_lit(e->body, "model", json_object_new_string(p->model))))
        return rc;
    if (e->opbit == B_CHAT) {
        rc = enc_messages(e);
    } else if (e->opbit == B_GEN) {
        rc = add_lit(e->body, "prompt",
                     json_object_new_string(p->prompt ? p->prompt : ""));
        if (rc == 0 && p->suffix)
            rc = add_lit(e->body, "suffix", json_object_new_string(p->suffix));
    } else {
        rc = enc_input(e);
    }
    if (rc != 0)
        return rc;
    /* Ollama streams unless told not to: always say which. */
    if (e->opbit != B_EMBED &&
        (rc = add_lit(e->body, "stream",
                      json_object_new_boolean(p->stream != 0))) != 0)
        return rc;
    e->options = json_object_new_object();
    if ((rc = add_lit(e->body, "options", e->options)) != 0)
        return rc;
    if (e->opbit != B_EMBED &&
        ((rc = enc_sampling(e)) != 0 || (rc = enc_format(e)) != 0))
        return rc;
    if (e->opbit == B_CHAT && (rc = enc_tools(e)) != 0)
        return rc;
    if ((rc = enc_top_options(e)) != 0 || (rc = enc_model_options(e)) != 0 ||
        (rc = enc_extra(e)) != 0)
        return rc;
    if (json_object_object_length(e->options) == 0)
        json_object_object_del(e->body, "options");
    return 0;
}

static int oll_encode(void *provctx, llmux_call *call, llmux_http_request *http)
{
    const llmux_host *h = oll_host;
    oll_enc e;
    const char *path;
    int rc;
    (void)provctx;
    memset(&e, 0, sizeof e);
    e.h = h;
    e.call = call;
    e.p = call->params;
    switch (e.p->op) {
    case LLMUX_OP_CHAT:
        path = "/api/chat";
        e.opbit = B_CHAT;
        break;
    case LLMUX_OP_COMPLETE:
        path = "/api/generate";
        e.opbit = B_GEN;
        break;
    case LLMUX_OP_EMBED:
        path = "/api/embed";
        e.opbit = B_EMBED;
        break;
    case LLMUX_OP_MODELS:
        if ((rc = h->http_method(http, "GET")) != 0)
            return rc;
        return h->http_path(http, "/api/tags");
    default:
        return LLMUX_ENOTSUP;
    }
    e.body = json_object_new_object();
    if (!e.body)
        return LLMUX_ENOMEM;
    rc = enc_body(&e);
    if (rc == 0 && (rc = h->http_method(http, "POST")) == 0 &&
        (rc = h->http_path(http, path)) == 0)
        rc = llmux_pj_http_json(h, http, e.body);
    json_object_put(e.body);
    llmux_pj_tok_give(e.tok, OLL_DEPTH);
    return rc;
}

/* ---- decoding: pieces ---------------------------------------------------- */

/* Exactly `n` decimal digits at s. */
static int digits(const char *s, int n, int *out)
{
    int v = 0, i;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/*
 * RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (T may be t or a
 * space, Z may be z; any number of fraction digits, dropped) into unix
 * seconds. Returns 0, or -1 when malformed.
 */
static int parse_rfc3339(const char *s, size_t n, int64_t *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, hh, mi, ss, oh = 0, om = 0, sign = 0, dim;
    size_t p = 19;
    if (n < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &hh) || s[13] != ':' || digits(s + 14, 2, &mi) ||
        s[16] != ':' || digits(s + 17, 2, &ss))
        return -1;
    if (s[p] == '.') {
        size_t start = ++p;
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
        if (p == start)
            return -1;
    }
    if (p < n && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < n && (s[p] == '+' || s[p] == '-')) {
        sign = s[p] == '-' ? -1 : 1;
        if (n - p < 6 || digits(s + p + 1, 2, &oh) || s[p + 3] != ':' ||
            digits(s + p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        p += 6;
    } else {
        return -1;
    }
    if (p != n || mo < 1 || mo > 12 || hh > 23 || mi > 59 || ss > 60)
        return -1;
    dim = mdays[mo - 1];
    if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        dim = 29;
    if (d < 1 || d > dim)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss -
           (int64_t)sign * (oh * 3600 + om * 60);
    return 0;
}

/* "model" and "created_at" of an answer or stream line. */
static int put_meta(const llmux_host *h, llmux_out *out, json_object *root)
{
    json_object *v = llmux_pj_get(root, "model");
    int64_t t;
    int rc;
    if (json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) > 0 &&
        (rc = h->out_str(out, LLMUX_F_MODEL, json_object_get_string(v),
                         (size_t)json_object_get_string_len(v))) != 0)
        return rc;
    v = llmux_pj_get(root, "created_at");
    /* Go's zero time (year 1) and other pre-1970 stamps mean "unknown" */
    if (json_object_is_type(v, json_type_string) &&
        parse_rfc3339(json_object_get_string(v),
                      (size_t)json_object_get_string_len(v), &t) == 0 &&
        t > 0)
        return h->out_int(out, LLMUX_F_CREATED, t);
    return 0;
}

/* A non-negative count, or -1 when absent or not a count. */
static int64_t count(json_object *root, const char *key)
{
    int64_t v;
    if (!llmux_pj_as_int(llmux_pj_get(root, key), &v) || v < 0)
        return -1;
    return v;
}

/* Usage of a final chat/generate object (see the top of the file). */
static int put_usage(const llmux_host *h, llmux_out *out, json_object *root)
{
    int64_t pt = count(root, "prompt_eval_count");
    int64_t ct = count(root, "eval_count");
    int rc;
    if (pt < 0 && ct < 0)
        return 0;
    if (pt < 0)
        pt = 0; /* omitted because zero */
    if (ct < 0)
        ct = 0;
    if ((rc = h->out_int(out, LLMUX_F_PROMPT_TOKENS, pt)) != 0 ||
        (rc = h->out_int(out, LLMUX_F_COMPLETION_TOKENS, ct)) != 0)
        return rc;
    return h->out_int(out, LLMUX_F_TOTAL_TOKENS, llmux_pj_add_counts(pt, ct));
}

static int put_finish(const llmux_host *h, llmux_out *out, json_object *dr,
                      int tool_calls)
{
    int f = LLMUX_FINISH_STOP, rc;
    const char *s = NULL;
    size_t n = 0;
    if (json_object_is_type(dr, json_type_string)) {
        s = json_object_get_string(dr);
        n = (size_t)json_object_get_string_len(dr);
        if (strcmp(s, "length") == 0)
            f = LLMUX_FINISH_LENGTH;
        /* "stop", "load", "unload" and anything new read as stop */
    }
    if (tool_calls)
        f = LLMUX_FINISH_TOOL_CALLS;
    if ((rc = h->out_int(out, LLMUX_F_FINISH, f)) != 0)
        return rc;
    return n ? h->out_str(out, LLMUX_F_FINISH_RAW, s, n) : 0;
}

/* The per-request stream state (call->state). */
typedef struct oll_state {
    int n_calls;   /* tool calls seen: the next call's index */
    int once;      /* model/created from the first line only (a
                      stream folded into one answer) */
    int meta_sent; /* a line was decoded */
} oll_state;

/*
 * Tool calls of a message: each whole, "arguments" an object (or, from
 * servers that imitate Ollama loosely, a string). In a stream (st) each
 * call takes the stream's next index; in a whole answer its position.
 */
static int put_calls(const llmux_host *h, llmux_out *out, json_object *calls,
                     oll_state *st)
{
    size_t i, n = json_object_array_length(calls);
    int rc;
    for (i = 0; i < n; i++) {
        json_object *tc = json_object_array_get_idx(calls, i);
        json_object *fn = llmux_pj_get(tc, "function"), *args, *idv, *nm;
        const char *a = "{}", *id = NULL, *name = NULL;
        size_t alen = 2;
        char idbuf[32];
        int index = (int)i;
        if (!json_object_is_type(fn, json_type_object))
            return LLMUX_EPROTO;
        if (st) {
            if (st->n_calls >= OLL_MAX_CALLS)
                return LLMUX_EPROTO;
            index = st->n_calls++;
        } else if (i >= OLL_MAX_CALLS) {
            return LLMUX_EPROTO;
        }
        nm = llmux_pj_get(fn, "name");
        if (nm && !json_object_is_type(nm, json_type_string))
            return LLMUX_EPROTO;
        if (nm && json_object_get_string_len(nm) > 0)
            name = json_object_get_string(nm);
        args = llmux_pj_get(fn, "arguments");
        if (json_object_is_type(args, json_type_object)) {
            a = llmux_pj_text(args, &alen);
            if (!a)
                return LLMUX_ENOMEM;
        } else if (json_object_is_type(args, json_type_string)) {
            a = json_object_get_string(args);
            alen = (size_t)json_object_get_string_len(args);
        } else if (args) {
            return LLMUX_EPROTO;
        }
        idv = llmux_pj_get(tc, "id");
        if (json_object_is_type(idv, json_type_string) &&
            json_object_get_string_len(idv) > 0) {
            id = json_object_get_string(idv);
        } else {
            snprintf(idbuf, sizeof idbuf, "call_%d", index);
            id = idbuf;
        }
        if ((rc = h->out_tool_call(out, index, id, name, a, alen)) != 0)
            return rc;
    }
    return 0;
}

static int is_str_or_null(json_object *v)
{
    return !v || json_object_is_type(v, json_type_string);
}

static int put_text(const llmux_host *h, llmux_out *out, int field,
                    json_object *v)
{
    size_t n;
    if (!v || !(n = (size_t)json_object_get_string_len(v)))
        return 0;
    return h->out_str(out, field, json_object_get_string(v), n);
}

/* The members of a chat or generate object (and of its message) that the
 * decoder reads; the others (total_duration, eval_duration, context ...)
 * are kept as fields of the answer. */
static const char *const top_known[] = {
    "model",      "created_at", "message",     "response",
    "thinking",   "done",       "done_reason", "prompt_eval_count",
    "eval_count", "logprobs",   NULL};
static const char *const message_known[] = {"role", "content", "thinking",
                                            "tool_calls", NULL};

/*
 * A chat or generate object: a whole answer (st NULL) or one stream line.
 * Returns 0, LLMUX_EVENT_DONE for the final stream line, or a code.
 */
static int decode_gen(const llmux_host *h, llmux_call *call, llmux_out *out,
                      json_object *root, oll_state *st, const char *s,
                      size_t len)
{
    json_object *done = llmux_pj_get(root, "done"), *msg = NULL, *text, *think,
                *calls = NULL;
    int final, rc, n_calls = 0;
    if (done && !json_object_is_type(done, json_type_boolean))
        return proto(h, call, out, "\"done\" is not a boolean", s, len);
    final = !st || json_object_get_boolean(done);
    if (call->params->op == LLMUX_OP_CHAT) {
        msg = llmux_pj_get(root, "message");
        if (msg && !json_object_is_type(msg, json_type_object))
            return proto(h, call, out, "message is not an object", s, len);
        if (!msg && !st)
            return proto(h, call, out, "response has no message", s, len);
        text = llmux_pj_get(msg, "content");
        think = llmux_pj_get(msg, "thinking");
        calls = llmux_pj_get(msg, "tool_calls");
        if (calls && !json_object_is_type(calls, json_type_array))
            return proto(h, call, out, "tool_calls is not an array", s, len);
    } else {
        if (!st && !has(root, "response"))
            return proto(h, call, out, "response has no text", s, len);
        text = llmux_pj_get(root, "response");
        think = llmux_pj_get(root, "thinking");
    }
    if (!is_str_or_null(text) || !is_str_or_null(think))
        return proto(h, call, out, "text is not a string", s, len);
    /* stream chunks each carry model and created (the core keeps the
     * first); a folded stream is one answer and takes its first line's */
    if ((!st || !st->once || !st->meta_sent) &&
        (rc = put_meta(h, out, root)) != 0)
        return rc;
    if (st)
        st->meta_sent = 1;
    if ((rc = put_text(h, out, LLMUX_F_TEXT, text)) != 0 ||
        (rc = put_text(h, out, LLMUX_F_REASONING, think)) != 0)
        return rc;
    if (calls) {
        n_calls = (int)json_object_array_length(calls);
        if ((rc = put_calls(h, out, calls, st)) != 0)
            return rc == LLMUX_EPROTO
                       ? proto(h, call, out, "bad tool call", s, len)
                       : rc;
    }
    /* logprobs: top-level, on every line that has tokens */
    if ((rc = llmux_oai_put_logprobs(h, out, llmux_pj_get(root, "logprobs"))))
        return rc == LLMUX_EPROTO ? proto(h, call, out, "bad logprobs", s, len)
                                  : rc;
    if ((rc = llmux_oai_put_extras(h, out, root, LLMUX_JSON_AT_TOP,
                                   top_known)) != 0 ||
        (rc = llmux_oai_put_extras(h, out, msg, LLMUX_JSON_AT_MESSAGE,
                                   message_known)) != 0)
        return rc;
    if (!final)
        return 0;
    if ((rc = put_finish(h, out, llmux_pj_get(root, "done_reason"),
                         st ? st->n_calls > 0 : n_calls > 0)) != 0 ||
        (rc = put_usage(h, out, root)) != 0)
        return rc;
    return st ? LLMUX_EVENT_DONE : 0;
}

/* One vector of numbers into embedding `index`; *buf grows as needed. */
static int put_vector(const llmux_host *h, llmux_out *out, int index,
                      json_object *v, float **buf, size_t *cap)
{
    size_t dim = 0;
    int rc = llmux_pj_floats(h, v, buf, cap, &dim);
    return rc ? rc : h->out_embedding(out, index, *buf, dim);
}

static int decode_embed(const llmux_host *h, llmux_call *call, llmux_out *out,
                        json_object *root, const char *s, size_t len)
{
    json_object *embs = llmux_pj_get(root, "embeddings"),
                *one = llmux_pj_get(root, "embedding");
    float *buf = NULL;
    size_t cap = 0, i, n;
    int64_t pt;
    int rc = 0;
    if (json_object_is_type(embs, json_type_array)) {
        n = json_object_array_length(embs);
        for (i = 0; rc == 0 && i < n; i++)
            rc = put_vector(h, out, (int)i, json_object_array_get_idx(embs, i),
                            &buf, &cap);
    } else if (!embs && one) {
        rc = put_vector(h, out, 0, one, &buf, &cap); /* /api/embeddings */
    } else {
        rc = LLMUX_EPROTO;
    }
    if (buf)
        h->free(buf);
    if (rc == LLMUX_EPROTO)
        return proto(h, call, out, "bad embeddings response", s, len);
    if (rc == 0)
        rc = put_meta(h, out, root);
    if (rc == 0 && (pt = count(root, "prompt_eval_count")) >= 0 &&
        (rc = h->out_int(out, LLMUX_F_PROMPT_TOKENS, pt)) == 0)
        rc = h->out_int(out, LLMUX_F_TOTAL_TOKENS, pt);
    return rc;
}

static int decode_models(const llmux_host *h, llmux_call *call, llmux_out *out,
                         json_object *root, const char *s, size_t len)
{
    json_object *models = llmux_pj_get(root, "models");
    size_t i, n;
    int rc;
    if (!models && has(root, "models"))
        return 0; /* "models": null: none installed */
    if (!json_object_is_type(models, json_type_array))
        return proto(h, call, out, "models response has no models", s, len);
    n = json_object_array_length(models);
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(models, i);
        json_object *id = llmux_pj_get(m, "name"),
                    *t = llmux_pj_get(m, "modified_at");
        int64_t created = 0;
        if (!json_object_is_type(id, json_type_string))
            id = llmux_pj_get(m, "model");
        if (!json_object_is_type(id, json_type_string) ||
            !json_object_get_string_len(id))
            continue;
        if (json_object_is_type(t, json_type_string) &&
            (parse_rfc3339(json_object_get_string(t),
                           (size_t)json_object_get_string_len(t),
                           &created) != 0 ||
             created < 0))
            created = 0;
        if ((rc = h->out_model(out, json_object_get_string(id), NULL,
                               created)) != 0)
            return rc;
    }
    return 0;
}

/* ---- decode hooks -------------------------------------------------------- */

/* One trimmed, non-empty NDJSON line of a chat or generate stream. */
static int decode_line(const llmux_host *h, llmux_call *call, llmux_out *out,
                       json_tokener *tok, oll_state *st, const char *s,
                       size_t len)
{
    json_object *root = NULL;
    int rc, op = call->params->op;
    /* json-c stops at a NUL byte: refuse one rather than ignore the rest */
    if (llmux_pj_parse(tok, s, len, &root) != 0 ||
        !json_object_is_type(root, json_type_object) || memchr(s, '\0', len)) {
        json_object_put(root);
        return proto(h, call, out, "bad stream line", s, len);
    }
    if (llmux_pj_get(root, "error"))
        rc = llmux_pj_body_error(h, out, root, s, len);
    else if (op == LLMUX_OP_CHAT || op == LLMUX_OP_COMPLETE)
        rc = decode_gen(h, call, out, root, st, s, len);
    else
        rc = proto(h, call, out, "unexpected stream", s, len);
    json_object_put(root);
    return rc;
}

/*
 * A whole body holding NDJSON lines: a server that streamed although
 * "stream":false was sent, or a stream labelled application/json (which
 * the core reads whole). The lines fold into one answer, up to the
 * done:true line; one bad line fails the whole.
 */
static int decode_folded(const llmux_host *h, llmux_call *call, llmux_out *out,
                         json_tokener *tok, const char *s, size_t len)
{
    oll_state st;
    int rc = 0;
    memset(&st, 0, sizeof st);
    st.once = 1;
    while (len && rc == 0) {
        const char *nl = memchr(s, '\n', len), *l = s;
        size_t n = nl ? (size_t)(nl - s) : len, t = n;
        l = llmux_pj_trim(l, &t);
        if (t)
            rc = decode_line(h, call, out, tok, &st, l, t);
        n += nl ? 1 : 0;
        s += n;
        len -= n;
    }
    return rc == LLMUX_EVENT_DONE ? 0 : rc;
}

static int oll_decode(void *provctx, llmux_call *call,
                      const llmux_http_response *resp, llmux_out *out)
{
    const llmux_host *h = oll_host;
    json_tokener *tok = llmux_pj_tok_take(OLL_DEPTH);
    json_object *root = NULL;
    const char *s = resp->body;
    size_t len = resp->body_len;
    int rc, op = call->params->op;
    (void)provctx;
    if (!tok) {
        h->set_error(out, LLMUX_ENOMEM, "%s: out of memory", pname(call));
        return LLMUX_ENOMEM;
    }
    /* json-c stops at a NUL byte: refuse one rather than ignore the rest */
    if (llmux_pj_parse(tok, s, len, &root) != 0 || memchr(s, '\0', len)) {
        if ((op == LLMUX_OP_CHAT || op == LLMUX_OP_COMPLETE) && len &&
            memchr(s, '\n', len) && !memchr(s, '\0', len))
            rc = decode_folded(h, call, out, tok, s, len);
        else
            rc = proto(h, call, out, "response is not valid JSON", s, len);
    } else if (!json_object_is_type(root, json_type_object)) {
        rc = proto(h, call, out, "response is not a JSON object", s, len);
    } else if (llmux_pj_get(root, "error")) {
        rc = llmux_pj_body_error(h, out, root, s, len);
    } else {
        switch (op) {
        case LLMUX_OP_CHAT:
        case LLMUX_OP_COMPLETE:
            rc = decode_gen(h, call, out, root, NULL, s, len);
            break;
        case LLMUX_OP_EMBED:
            rc = decode_embed(h, call, out, root, s, len);
            break;
        case LLMUX_OP_MODELS:
            rc = decode_models(h, call, out, root, s, len);
            break;
        default:
            h->set_error(out, LLMUX_ENOTSUP, "%s: operation %d not supported",
                         pname(call), op);
            rc = LLMUX_ENOTSUP;
        }
    }
    json_object_put(root);
    llmux_pj_tok_give(tok, OLL_DEPTH);
    return rc;
}

static int oll_decode_event(void *provctx, llmux_call *call,
                            const llmux_event *ev, llmux_out *out)
{
    const llmux_host *h = oll_host;
    const char *s = ev->data;
    size_t len = ev->data_len;
    oll_state *st = call->state;
    json_tokener *tok;
    int rc;
    (void)provctx;
    if (!s)
        return 0;
    s = llmux_pj_trim(s, &len);
    if (!len)
        return 0;
    if (!st) {
        st = llmux_pj_state_new(h, out, pname(call), sizeof(*st));
        if (!st)
            return LLMUX_ENOMEM;
        call->state = st;
    }
    if (!(tok = llmux_pj_tok_take(OLL_DEPTH))) {
        h->set_error(out, LLMUX_ENOMEM, "%s: out of memory", pname(call));
        return LLMUX_ENOMEM;
    }
    rc = decode_line(h, call, out, tok, st, s, len);
    llmux_pj_tok_give(tok, OLL_DEPTH);
    return rc;
}

static int oll_decode_error(void *provctx, llmux_call *call,
                            const llmux_http_response *resp, llmux_out *out)
{
    const llmux_host *h = oll_host;
    json_tokener *tok;
    json_object *root = NULL;
    int rc = 0;
    (void)provctx;
    (void)call;
    if (!resp->body || !resp->body_len)
        return 0;
    tok = llmux_pj_tok_take(OLL_DEPTH);
    if (!tok)
        return 0; /* the core falls back to the raw body */
    /* {"error":"model \"x\" not found, try pulling it first"}; plain text
     * (proxies) sets nothing and the core shows the raw body */
    if (llmux_pj_parse(tok, resp->body, resp->body_len, &root) == 0 &&
        json_object_is_type(root, json_type_object))
        rc = llmux_pj_put_error(h, out, root) < 0 ? LLMUX_ENOMEM : 0;
    json_object_put(root);
    llmux_pj_tok_give(tok, OLL_DEPTH);
    return rc;
}

static void oll_call_end(void *provctx, llmux_call *call)
{
    oll_state *st = call ? call->state : NULL;
    (void)provctx;
    if (!st)
        return;
    oll_host->free(st);
    call->state = NULL;
}

/* No context; the module's spare tokeners go with its last provider. */
static void oll_teardown(void *provctx)
{
    (void)provctx;
    llmux_pj_tok_drain();
}

/* The top-level keys above, and every other key: a sampling option sent
 * under "options" (see the top of the file). */
static const llmux_option_def ollama_options[] = {
    {"think", LLMUX_OPTION_BODY},
    {"keep_alive", LLMUX_OPTION_BODY},
    {"format", LLMUX_OPTION_BODY},
    {"system", LLMUX_OPTION_BODY},
    {"template", LLMUX_OPTION_BODY},
    {"raw", LLMUX_OPTION_BODY},
    {"truncate", LLMUX_OPTION_BODY},
    {"shift", LLMUX_OPTION_BODY},
    {"logprobs", LLMUX_OPTION_BODY},
    {"top_logprobs", LLMUX_OPTION_BODY},
    {"dimensions", LLMUX_OPTION_BODY},
    {"*", 0},
    {NULL, 0}};

static const llmux_provider ollama_provider = {
    LLMUX_PROVIDER_ABI,
    sizeof(llmux_provider),
    "ollama",
    LLMUX_VERSION_STRING,
    "Ollama native API: chat, generate, embed, tags",
    LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_COMPLETE | LLMUX_CAP_EMBED |
        LLMUX_CAP_MODELS | LLMUX_CAP_TOOLS | LLMUX_CAP_JSON,
    LLMUX_FRAMING_NDJSON,
    LLMUX_AUTH_OPTIONAL,
    "http://127.0.0.1:11434",
    "OLLAMA_API_KEY",
    "OLLAMA_HOST",
    NULL, /* init */
    oll_teardown,
    oll_encode,
    oll_decode,
    oll_decode_event,
    oll_decode_error,
    oll_call_end,
    11434, /* default_port */
    NULL,  /* rate_limits */
    llmux_pj_classify_error,
    ollama_options,
    NULL, /* auth_header: Authorization */
    NULL, /* job_encode: Ollama has no batch API */
    NULL /* job_decode */};

LLMUX_DEFINE_PROVIDER(ollama_provider, oll_host)
