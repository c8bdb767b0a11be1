/*
 * core/request_json.c: the OpenAI-style request JSON import: a whole chat,
 * text completion or embeddings request's body (llmux_request_new_json_op
 * and the chat shorthands llmux_request_new_json[_ex]) or one
 * message object (llmux_request_add_message_json) read into an
 * llmux_request.
 *
 * Each top-level key has its handler (the importers table); every key
 * without one is kept, as JSON, in extra_json. The keys match the `json`
 * column of LLMUX__REQUEST_FIELDS (internal.h). This file calls request.c
 * (its setters, message slots and JSON text helpers); request.c calls
 * nothing here.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

/* ---- one message --------------------------------------------------------- */

static int role_from_string(const char *s)
{
    static const char *const names[] = {"system", "user", "assistant", "tool",
                                        "developer"};
    int i;
    for (i = 0; i < 5; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i + 1;
    return 0;
}

/* *dst = a copy of v when v is a JSON string (else left alone); 0, or
 * LLMUX_ENOMEM when the copy failed. */
static int dup_string(json_object *v, char **dst)
{
    if (!json_object_is_type(v, json_type_string))
        return 0;
    return (*dst = llmux__strdup(json_object_get_string(v))) ? 0 : LLMUX_ENOMEM;
}

/* The message's text fields: content (a string, else its JSON: content
 * parts), name, tool_call_id and reasoning. */
static int msg_texts_from_json(json_object *j, llmux_msg *m)
{
    json_object *v;
    if (json_object_object_get_ex(j, "content", &v) && v) {
        if (json_object_is_type(v, json_type_string))
            m->content = llmux__strdup(json_object_get_string(v));
        else
            m->content_json = llmux__request_json_text(v);
        if (!m->content && !m->content_json)
            return LLMUX_ENOMEM;
    }
    if ((json_object_object_get_ex(j, "name", &v) &&
         dup_string(v, (char **)&m->name)) ||
        (json_object_object_get_ex(j, "tool_call_id", &v) &&
         dup_string(v, (char **)&m->tool_call_id)) ||
        ((json_object_object_get_ex(j, "reasoning_content", &v) ||
          json_object_object_get_ex(j, "reasoning", &v)) &&
         dup_string(v, (char **)&m->reasoning)))
        return LLMUX_ENOMEM;
    return 0;
}

/* Fills *call from tool_calls[i] of messages[pos]. */
static int tool_call_from_json(llmux_request *r, json_object *c,
                               llmux_tool_call *call, size_t pos, size_t i)
{
    json_object *f, *x;
    call->index = (int)i;
    if (!json_object_object_get_ex(c, "function", &f) ||
        !json_object_object_get_ex(f, "name", &x) ||
        !json_object_is_type(x, json_type_string))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "messages[%zu].tool_calls[%zu]: missing "
                                   "function.name",
                                   pos, i);
    call->name = llmux__strdup(json_object_get_string(x));
    if (json_object_object_get_ex(c, "id", &x) &&
        dup_string(x, (char **)&call->id))
        return LLMUX_ENOMEM;
    if (json_object_object_get_ex(f, "arguments", &x) && x)
        call->arguments = json_object_is_type(x, json_type_string)
                              ? llmux__strdup(json_object_get_string(x))
                              : llmux__request_json_text(x);
    else
        call->arguments = llmux__strdup("{}");
    if (!call->name || !call->arguments)
        return LLMUX_ENOMEM;
    return 0;
}

/* The message's "tool_calls" array tc; m counts each call as it is begun,
 * so that freeing m frees what a failure leaves. */
static int msg_tool_calls_from_json(llmux_request *r, json_object *tc,
                                    llmux_msg *m, size_t pos)
{
    size_t i, n;
    llmux_tool_call *calls;
    int rc;
    if (!json_object_is_type(tc, json_type_array))
        return llmux__request_fail(
            r, LLMUX_EINVAL, "messages[%zu]: \"tool_calls\" is not an array",
            pos);
    n = json_object_array_length(tc);
    calls = llmux__calloc(n ? n : 1, sizeof *calls);
    if (!calls)
        return LLMUX_ENOMEM;
    m->tool_calls = calls;
    for (i = 0; i < n; i++) {
        m->n_tool_calls++;
        rc = tool_call_from_json(r, json_object_array_get_idx(tc, i), &calls[i],
                                 pos, i);
        if (rc)
            return rc;
    }
    return 0;
}

/* Fills *m from an OpenAI message object, messages[pos]. */
static int msg_from_json(llmux_request *r, json_object *j, llmux_msg *m,
                         size_t pos)
{
    json_object *v;
    int role, rc;
    memset(m, 0, sizeof *m);
    if (!json_object_is_type(j, json_type_object))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "messages[%zu]: not an object", pos);
    if (!json_object_object_get_ex(j, "role", &v) ||
        !(role = role_from_string(json_object_get_string(v))))
        return llmux__request_fail(
            r, LLMUX_EINVAL, "messages[%zu]: missing or unknown \"role\"", pos);
    m->role = role;
    if ((rc = msg_texts_from_json(j, m)))
        return rc;
    if (role == LLMUX_ROLE_TOOL && !m->tool_call_id)
        return llmux__request_fail(
            r, LLMUX_EINVAL,
            "messages[%zu]: tool message without \"tool_call_id\"", pos);
    if (json_object_object_get_ex(j, "tool_calls", &v) && v)
        return msg_tool_calls_from_json(r, v, m, pos);
    return 0;
}

/* Appends the message j as the request's message number pos. */
static int add_msg_json(llmux_request *r, json_object *j, size_t pos)
{
    llmux_msg *m = llmux__request_new_msg(r, 0);
    int rc;
    if (!m)
        return LLMUX_ENOMEM;
    rc = msg_from_json(r, j, m, pos);
    if (rc)
        llmux__request_free_msg(m);
    else
        r->n_msgs++;
    return rc;
}

LLMUX_EXTERN int llmux_request_add_message_json(llmux_request *r,
                                                const char *json, size_t len)
{
    json_object *j;
    int rc;
    if (!r || !json)
        return LLMUX_EINVAL;
    if (!(j = llmux__request_parse_json(json, len)))
        return llmux__request_fail(r, LLMUX_EINVAL, "message: invalid JSON");
    rc = add_msg_json(r, j, r->n_msgs);
    json_object_put(j);
    return rc;
}

/* ---- the request's keys, one handler each -------------------------------- */

/* A key's handler: reads the value v of `key` into r. v is NULL for a JSON
 * null. */
typedef int (*import_fn)(llmux_request *r, const char *key, json_object *v);

static int import_skip(llmux_request *r, const char *key, json_object *v)
{
    (void)r;
    (void)key;
    (void)v;
    return 0;
}

static int import_messages(llmux_request *r, const char *key, json_object *v)
{
    size_t i, n;
    int rc = 0;
    (void)key;
    if (!json_object_is_type(v, json_type_array))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "\"messages\" is not an array");
    n = json_object_array_length(v);
    for (i = 0; i < n && !rc; i++)
        rc = add_msg_json(r, json_object_array_get_idx(v, i), i);
    return rc;
}

/* max_tokens and max_completion_tokens alike */
static int import_max_tokens(llmux_request *r, const char *key, json_object *v)
{
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "\"%s\" is not a non-negative "
                                   "integer",
                                   key);
    return llmux_request_set_max_tokens(r, (long)json_object_get_int64(v));
}

/* A number set through `set`, which refuses it when out of range. */
static int import_number(llmux_request *r, const char *key, json_object *v,
                         int (*set)(llmux_request *, double))
{
    if (!json_object_is_type(v, json_type_double) &&
        !json_object_is_type(v, json_type_int))
        return llmux__request_fail(r, LLMUX_EINVAL, "\"%s\" is not a number",
                                   key);
    if (set(r, json_object_get_double(v)))
        return llmux__request_fail(r, LLMUX_EINVAL, "\"%s\" is out of range",
                                   key);
    return 0;
}

static int import_temperature(llmux_request *r, const char *key, json_object *v)
{
    return import_number(r, key, v, llmux_request_set_temperature);
}

static int import_top_p(llmux_request *r, const char *key, json_object *v)
{
    return import_number(r, key, v, llmux_request_set_top_p);
}

static int import_seed(llmux_request *r, const char *key, json_object *v)
{
    (void)key;
    if (!json_object_is_type(v, json_type_int))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "\"seed\" is not an integer");
    return llmux_request_set_seed(r, json_object_get_int64(v));
}

/* A string or an array of strings; null is no stop. */
static int import_stop(llmux_request *r, const char *key, json_object *v)
{
    size_t i, n;
    int rc = 0;
    (void)key;
    if (json_object_is_type(v, json_type_string))
        return llmux_request_add_stop(r, json_object_get_string(v));
    if (!json_object_is_type(v, json_type_array))
        return v ? llmux__request_fail(r, LLMUX_EINVAL,
                                       "\"stop\" is not a string or "
                                       "array")
                 : 0;
    n = json_object_array_length(v);
    for (i = 0; i < n && !rc; i++) {
        json_object *s = json_object_array_get_idx(v, i);
        if (!json_object_is_type(s, json_type_string))
            rc = llmux__request_fail(r, LLMUX_EINVAL,
                                     "\"stop\" holds a non-string");
        else
            rc = llmux_request_add_stop(r, json_object_get_string(s));
    }
    return rc;
}

static int import_stream(llmux_request *r, const char *key, json_object *v)
{
    (void)key;
    r->stream = json_object_get_boolean(v);
    return 0;
}

/* v kept as JSON text in *dst when it is of type t; else the error msg. */
static int import_as_text(llmux_request *r, json_object *v, json_type t,
                          char **dst, const char *msg)
{
    if (!json_object_is_type(v, t))
        return llmux__request_fail(r, LLMUX_EINVAL, "%s", msg);
    if (!(*dst = llmux__request_json_text(v)))
        return LLMUX_ENOMEM;
    return 0;
}

static int import_tools(llmux_request *r, const char *key, json_object *v)
{
    (void)key;
    return import_as_text(r, v, json_type_array, &r->tools_json,
                          "\"tools\" is not an array");
}

/* Kept as given (a word or an object); null is no choice. */
static int import_tool_choice(llmux_request *r, const char *key, json_object *v)
{
    (void)key;
    if (v && !(r->tool_choice_json = llmux__request_json_text(v)))
        return LLMUX_ENOMEM;
    return 0;
}

static int import_response_format(llmux_request *r, const char *key,
                                  json_object *v)
{
    (void)key;
    return import_as_text(r, v, json_type_object, &r->response_format_json,
                          "\"response_format\" is not an object");
}

/* A text completion's prompt: a string, or an array holding one string
 * (what OpenAI clients send for one prompt). Several prompts or token ids
 * are refused by name: a request holds one prompt. */
static int import_prompt(llmux_request *r, const char *key, json_object *v)
{
    json_object *s = v;
    (void)key;
    if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        if (n != 1)
            return llmux__request_fail(
                r, LLMUX_ENOTSUP,
                "\"prompt\": an array of %zu prompts; a request completes "
                "one prompt (send one request per prompt)",
                n);
        s = json_object_array_get_idx(v, 0);
    }
    if (!json_object_is_type(s, json_type_string))
        return llmux__request_fail(r, LLMUX_ENOTSUP,
                                   "\"prompt\": token ids are not supported; "
                                   "send the prompt as a string");
    return llmux_request_set_prompt(r, json_object_get_string(s));
}

static int import_suffix(llmux_request *r, const char *key, json_object *v)
{
    (void)key;
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "\"suffix\" is not a string");
    return llmux_request_set_suffix(r, json_object_get_string(v));
}

/* Embeddings' input: a string or a non-empty array of strings (replacing
 * any input set before). Token ids are refused by name. */
static int import_input(llmux_request *r, const char *key, json_object *v)
{
    size_t i, n = 1;
    int rc = 0;
    (void)key;
    if (json_object_is_type(v, json_type_array)) {
        if (!(n = json_object_array_length(v)))
            return llmux__request_fail(r, LLMUX_EINVAL,
                                       "\"input\" is an empty array");
        for (i = 0; i < n; i++)
            if (!json_object_is_type(json_object_array_get_idx(v, i),
                                     json_type_string))
                return llmux__request_fail(
                    r, LLMUX_ENOTSUP,
                    "\"input\"[%zu]: not a string (token ids are not "
                    "supported; send text)",
                    i);
    } else if (!json_object_is_type(v, json_type_string))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "\"input\" is not a string or an array "
                                   "of strings");
    llmux__strv_free(r->inputs, r->n_inputs);
    r->inputs = NULL;
    r->n_inputs = 0;
    if (!json_object_is_type(v, json_type_array))
        return llmux_request_add_input(r, json_object_get_string(v));
    for (i = 0; i < n && !rc; i++)
        rc = llmux_request_add_input(
            r, json_object_get_string(json_object_array_get_idx(v, i)));
    return rc;
}

/* The library always asks the provider for floats and hands them over as
 * numbers (llmux_response_embedding); "base64" is the caller's to encode
 * when it answers an OpenAI client (llmux serve does). */
static int import_encoding_format(llmux_request *r, const char *key,
                                  json_object *v)
{
    const char *s = json_object_get_string(v);
    (void)key;
    if (v && !(json_object_is_type(v, json_type_string) &&
               (!strcmp(s, "float") || !strcmp(s, "base64"))))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "\"encoding_format\" is neither \"float\" "
                                   "nor \"base64\"");
    return 0;
}

/* The provider's "dimensions" option, from a positive integer. */
static int import_dimensions(llmux_request *r, const char *key, json_object *v)
{
    char num[32];
    (void)key;
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "\"dimensions\" is not a positive integer");
    snprintf(num, sizeof num, "%lld", (long long)json_object_get_int64(v));
    return llmux_request_set_option(r, "dimensions", num);
}

#define OP_BIT(op) (1u << (op))
#define CHAT       OP_BIT(LLMUX_OP_CHAT)
#define COMPLETE   OP_BIT(LLMUX_OP_COMPLETE)
#define EMBED      OP_BIT(LLMUX_OP_EMBED)
#define ANY        (CHAT | COMPLETE | EMBED)

/* The keys with a handler, and the ops they apply to. Keep the chat keys
 * in step with the `json` column of LLMUX__REQUEST_FIELDS
 * (tests/unit/test_request.c checks every field); prompt, suffix and input
 * have no key there since the chat import leaves them. */
static const struct {
    const char *key;
    import_fn fn;
    unsigned ops;
} importers[] = {
    {"model", import_skip, ANY},          /* handled by the caller */
    {"stream_options", import_skip, ANY}, /* usage is ours */
    {"messages", import_messages, CHAT},
    {"max_tokens", import_max_tokens, CHAT | COMPLETE},
    {"max_completion_tokens", import_max_tokens, CHAT},
    {"temperature", import_temperature, CHAT | COMPLETE},
    {"top_p", import_top_p, CHAT | COMPLETE},
    {"seed", import_seed, CHAT | COMPLETE},
    {"stop", import_stop, CHAT | COMPLETE},
    {"stream", import_stream, CHAT | COMPLETE},
    {"tools", import_tools, CHAT},
    {"tool_choice", import_tool_choice, CHAT},
    {"response_format", import_response_format, CHAT},
    {"prompt", import_prompt, COMPLETE},
    {"suffix", import_suffix, COMPLETE},
    {"input", import_input, EMBED},
    {"encoding_format", import_encoding_format, EMBED},
    {"dimensions", import_dimensions, EMBED},
};

/* A key the library reads for another op: sent as it is, it would be
 * dropped (the provider's encoder for this op does not write it). */
static int import_refuse(llmux_request *r, const char *key, json_object *v)
{
    static const char *const what[] = {NULL, "a chat", "a text completion",
                                       "an embeddings"};
    (void)v;
    return llmux__request_fail(r, LLMUX_EINVAL,
                               "\"%s\" does not apply to %s request", key,
                               what[r->op]);
}

/* The handler of `key` for r's op; NULL: kept in extra_json for the
 * provider. A chat request passes the other ops' keys on as before. */
static import_fn importer(const llmux_request *r, const char *key)
{
    size_t i;
    for (i = 0; i < sizeof importers / sizeof *importers; i++)
        if (!strcmp(key, importers[i].key)) {
            if (importers[i].ops & OP_BIT(r->op))
                return importers[i].fn;
            return r->op == LLMUX_OP_CHAT ? NULL : import_refuse;
        }
    return NULL;
}

/* ---- the whole request --------------------------------------------------- */

/* Reads every key of the request object j into r, in order, up to the
 * first failure. */
static int import_json(llmux_request *r, json_object *j)
{
    json_object *extra = json_object_new_object();
    int rc = 0;
    if (!extra)
        return LLMUX_ENOMEM;
    json_object_object_foreach(j, key, v)
    {
        import_fn fn = importer(r, key);
        if (fn)
            rc = fn(r, key, v);
        else
            json_object_object_add(extra, key, json_object_get(v));
        if (rc)
            break;
    }
    if (!rc && json_object_object_length(extra) > 0 &&
        !(r->extra_json = llmux__request_json_text(extra)))
        rc = LLMUX_ENOMEM;
    json_object_put(extra);
    return rc;
}

LLMUX_EXTERN int llmux_request_new_json(llmux_request **out, const char *spec,
                                        const char *json, size_t len)
{
    return llmux_request_new_json_op(out, LLMUX_OP_CHAT, spec, json, len, 0);
}

LLMUX_EXTERN int llmux_request_new_json_ex(llmux_request **out,
                                           const char *spec, const char *json,
                                           size_t len, unsigned flags)
{
    return llmux_request_new_json_op(out, LLMUX_OP_CHAT, spec, json, len,
                                     flags);
}

/* What an op needs once every key is read. */
static int check_required(llmux_request *r, json_object *j)
{
    if (r->op == LLMUX_OP_COMPLETE &&
        !json_object_object_get_ex(j, "prompt", NULL))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "request JSON: \"prompt\" is missing");
    if (r->op == LLMUX_OP_EMBED && !r->n_inputs)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "request JSON: \"input\" is missing");
    return 0;
}

LLMUX_EXTERN int llmux_request_new_json_op(llmux_request **out, llmux_op op,
                                           const char *spec, const char *json,
                                           size_t len, unsigned flags)
{
    json_object *j, *m;
    llmux_request *r;
    int rc;
    if (!out)
        return LLMUX_EINVAL;
    *out = NULL;
    if (op != LLMUX_OP_CHAT && op != LLMUX_OP_COMPLETE && op != LLMUX_OP_EMBED)
        return LLMUX_EINVAL; /* no OpenAI request body of its own */
    rc = llmux_request_new(out, op, NULL);
    if (rc)
        return rc;
    r = *out;
    if (!json)
        return llmux__request_fail(r, LLMUX_EINVAL, "request JSON: none given");
    j = llmux__request_parse_json(json, len);
    if (!j || !json_object_is_type(j, json_type_object)) {
        json_object_put(j);
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "request JSON: not a valid JSON object");
    }
    if (spec)
        rc = llmux_request_set_model(r, spec);
    else if (json_object_object_get_ex(j, "model", &m) &&
             json_object_is_type(m, json_type_string)) {
        rc = llmux_request_set_model(r, json_object_get_string(m));
        if (!rc && r->cfg.n_opts && !(flags & LLMUX_JSON_TRUSTED))
            rc = llmux__request_fail(
                r, LLMUX_ECONFIG,
                "request JSON: \"model\" may name a provider and "
                "model only, not options such as \"%s\" (only a "
                "trusted caller's JSON may carry a whole config "
                "string)",
                r->cfg.opts[0].key);
    } else
        rc = llmux__request_fail(
            r, LLMUX_ECONFIG,
            "request JSON: no config string and no \"model\"");
    if (!rc)
        rc = import_json(r, j);
    if (!rc)
        rc = check_required(r, j);
    json_object_put(j);
    return rc;
}

/* ---- one field ----------------------------------------------------------- */

static int is_key(const char *json, const char *key)
{
    return json && !strcmp(json, key);
}

/* Frees the strings of the fields that JSON key `key` sets, so that setting
 * it again replaces them (numbers are simply overwritten). */
static void clear_field(llmux_request *r, const char *key)
{
#define CLEAR_SCALAR(type, name, json, to, pname)
#define CLEAR_STR(name, json, to, pname)                                       \
    if (is_key(json, key)) {                                                   \
        llmux__free(r->name);                                                  \
        r->name = NULL;                                                        \
    }
#define CLEAR_STRV(name, count, json, to, pname, pcount)                       \
    if (is_key(json, key)) {                                                   \
        llmux__strv_free(r->name, r->count);                                   \
        r->name = NULL;                                                        \
        r->count = 0;                                                          \
    }
    LLMUX__REQUEST_FIELDS(CLEAR_SCALAR, CLEAR_STR, CLEAR_STRV)
#undef CLEAR_SCALAR
#undef CLEAR_STR
#undef CLEAR_STRV
}

/* Sets `key` to v among the fields no setter models (extra_json). */
static int set_extra(llmux_request *r, const char *key, json_object *v)
{
    json_object *x =
        r->extra_json
            ? llmux__request_parse_json(r->extra_json, strlen(r->extra_json))
            : json_object_new_object();
    char *text;
    if (!x)
        return LLMUX_ENOMEM;
    if (json_object_object_add(x, key, json_object_get(v))) {
        json_object_put(v);
        json_object_put(x);
        return LLMUX_ENOMEM;
    }
    text = llmux__request_json_text(x);
    json_object_put(x);
    if (!text)
        return LLMUX_ENOMEM;
    llmux__free(r->extra_json);
    r->extra_json = text;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_field(llmux_request *r, const char *key,
                                         const char *json_value)
{
    json_object *wrap;
    import_fn fn;
    char *text;
    size_t n;
    int rc;
    if (!r)
        return LLMUX_EINVAL;
    if (!key || !*key || !json_value)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "field: a name and a JSON value, please");
    if (!strcmp(key, "model"))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "field \"model\": the model is the config "
                                   "string's (llmux_request_set_model)");
    if (!strcmp(key, "messages"))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "field \"messages\": add messages with "
                                   "llmux_request_add_message_json");
    if (!strcmp(key, "stream_options"))
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "field \"stream_options\": the library "
                                   "asks for usage itself");
    /* one JSON value of any type: parsed as the only element of an array */
    n = strlen(json_value);
    if (!(text = llmux__malloc(n + 3)))
        return LLMUX_ENOMEM;
    text[0] = '[';
    memcpy(text + 1, json_value, n);
    text[n + 1] = ']';
    text[n + 2] = '\0';
    wrap = llmux__request_parse_json(text, n + 2);
    llmux__free(text);
    if (!wrap || !json_object_is_type(wrap, json_type_array) ||
        json_object_array_length(wrap) != 1) {
        json_object_put(wrap);
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "field \"%s\": the value is not one JSON "
                                   "value",
                                   key);
    }
    if ((fn = importer(r, key)) != NULL) {
        clear_field(r, key);
        rc = fn(r, key, json_object_array_get_idx(wrap, 0));
    } else {
        rc = set_extra(r, key, json_object_array_get_idx(wrap, 0));
    }
    json_object_put(wrap);
    return rc;
}
