/*
 * providers/mistral/mistral.c: the Mistral AI provider plugin.
 *
 * Chat completions, fill-in-the-middle text completion (Codestral's
 * /v1/fim/completions), embeddings and the model list of
 * https://api.mistral.ai. Mistral speaks OpenAI's chat shape, so the shared
 * codec (providers/common/oai.c) does the work; this file states Mistral's
 * differences:
 *
 * - Requests are validated strictly: an unknown field is a 422
 *   "extra_forbidden". max_completion_tokens, seed, stream_options, store
 *   and user are never sent, whatever their source; max tokens is
 *   "max_tokens", the seed "random_seed", embedding dimensions
 *   "output_dimension", and the developer role is sent as "system".
 * - Usage arrives on the chunk that carries finish_reason, without
 *   stream_options.
 * - Messages: a tool message directly followed by a user message is
 *   rejected, so an assistant "OK" goes between them (as any-llm's
 *   _patch_messages does); tool results carry the tool's `name`, looked up
 *   from the assistant tool call they answer when not given; tool-call ids
 *   must be exactly 9 characters of [A-Za-z0-9] ("Tool call id was ... but
 *   must be a-z, A-Z, 0-9, with a length of 9"), so ids from other
 *   providers ("call_...") are mapped to such ids, the same way in the
 *   assistant's calls and in the tool results (as langchain-mistralai
 *   does).
 * - Responses: content may be a string, null or typed chunks ("thinking"
 *   becomes the reasoning text); tool calls may lack index and type and
 *   come whole in one chunk; finish_reason "model_length" is "length". The
 *   codec decodes all of this for every dialect.
 * - Errors: flat {"object":"error","message",...} (message may itself be
 *   an object), {"message":..}, {"detail":"text"} or FastAPI validation
 *   lists {"detail":[{"loc","msg","type"}]}, which read here as
 *   "body.seed: Extra inputs are not permitted".
 *
 * Sources: Mistral's OpenAPI reference (docs.mistral.ai/api), which wins
 * where ../shared/design/WIRE.md section 2 or the recorded fixtures
 * differ. They agree on everything used here; the reference is the
 * source of the FIM request fields (model, prompt, suffix, max_tokens,
 * min_tokens, temperature, top_p, stop, random_seed, stream) and of
 * "output_dimension".
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <llmux/sys/provider.h>
#include <llmux/version.h>

#include "oai.h"
#include "ojob.h"

#define MISTRAL_ID_LEN 9

/* Saved by the entry point; the hooks take the host from the codec's
 * provider context. */
static const llmux_host *mistral_host;

/* Fields Mistral answers with 422 extra_forbidden: never sent, not even
 * from extra request JSON or options (logprobs: its chat API has none). */
static const char *const mistral_never[] = {"max_completion_tokens",
                                            "seed",
                                            "stream_options",
                                            "store",
                                            "user",
                                            "logprobs",
                                            "top_logprobs",
                                            NULL};

/* Options sent as string fields of chat bodies. */
static const char *const mistral_body_options[] = {"prompt_mode",
                                                   "reasoning_effort", NULL};

/* Options sent as boolean fields of chat bodies. */
static const char *const mistral_bool_options[] = {"safe_prompt",
                                                   "parallel_tool_calls", NULL};

/* ---- small helpers ------------------------------------------------------- */

#define get(o, key)     llmux_pj_get((o), (key))
#define get_str(o, key) llmux_pj_get_str((o), (key), NULL)
#define set(o, key, v)  llmux_pj_set((o), (key), (v))

static int str_is(json_object *o, const char *key, const char *want)
{
    const char *s = get_str(o, key);
    return s && strcmp(s, want) == 0;
}

/* ---- tool-call ids ------------------------------------------------------- */

static int id_ok(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9')))
            return 0;
    }
    return i == MISTRAL_ID_LEN;
}

/*
 * The id Mistral gets for tool-call id `s`: `s` itself when valid, else 9
 * base-62 digits of its 64-bit FNV-1a hash, so that a call and its result
 * map to the same id in every request of a conversation.
 */
static const char *mistral_id(const char *s, char out[MISTRAL_ID_LEN + 1])
{
    static const char digits[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint64_t h = 14695981039346656037u;
    int i;
    if (id_ok(s))
        return s;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    for (i = 0; i < MISTRAL_ID_LEN; i++) {
        out[i] = digits[h % 62];
        h /= 62;
    }
    out[MISTRAL_ID_LEN] = '\0';
    return out;
}

/* Replaces string member `key` of `o` by its Mistral id. */
static int fix_id(json_object *o, const char *key)
{
    char buf[MISTRAL_ID_LEN + 1];
    const char *id = get_str(o, key), *m;
    if (!id)
        return 0;
    m = mistral_id(id, buf);
    if (m == id)
        return 0;
    return set(o, key, json_object_new_string(m));
}

/* ---- request fix-ups ----------------------------------------------------- */

/* The name of the tool call `id` (a Mistral id) made by an assistant
 * message before position `before`, or NULL. */
static const char *tool_name(json_object *msgs, size_t before, const char *id)
{
    size_t i, k;
    for (i = before; i-- > 0;) {
        json_object *m = json_object_array_get_idx(msgs, i);
        json_object *calls = get(m, "tool_calls");
        if (!str_is(m, "role", "assistant") ||
            !json_object_is_type(calls, json_type_array))
            continue;
        for (k = 0; k < json_object_array_length(calls); k++) {
            json_object *c = json_object_array_get_idx(calls, k);
            const char *cid = get_str(c, "id");
            if (cid && strcmp(cid, id) == 0)
                return get_str(get(c, "function"), "name");
        }
    }
    return NULL;
}

/* Roles, names and ids of one message; at position i of msgs. */
static int fix_message(json_object *msgs, size_t i, json_object *m)
{
    json_object *calls;
    const char *name;
    size_t k;
    int rc;
    if (str_is(m, "role", "developer"))
        return set(m, "role", json_object_new_string("system"));
    if (str_is(m, "role", "assistant")) {
        calls = get(m, "tool_calls");
        if (!json_object_is_type(calls, json_type_array))
            return 0;
        for (k = 0; k < json_object_array_length(calls); k++)
            if ((rc = fix_id(json_object_array_get_idx(calls, k), "id")))
                return rc;
        return 0;
    }
    if (!str_is(m, "role", "tool"))
        return 0;
    if ((rc = fix_id(m, "tool_call_id")) != 0)
        return rc;
    if (get_str(m, "name") || !get_str(m, "tool_call_id"))
        return 0;
    name = tool_name(msgs, i, get_str(m, "tool_call_id"));
    return name && *name ? set(m, "name", json_object_new_string(name)) : 0;
}

/* A copy of msgs with an assistant "OK" after each tool message that a
 * user message follows. */
static int insert_oks(json_object *body, json_object *msgs)
{
    size_t i, n = json_object_array_length(msgs);
    json_object *out = json_object_new_array_ext((int)n + 1);
    int rc = out ? 0 : LLMUX_ENOMEM;
    for (i = 0; rc == 0 && i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        json_object *next =
            i + 1 < n ? json_object_array_get_idx(msgs, i + 1) : NULL;
        if (json_object_array_add(out, json_object_get(m)) != 0) {
            json_object_put(m);
            rc = LLMUX_ENOMEM;
        } else if (str_is(m, "role", "tool") && str_is(next, "role", "user")) {
            json_object *ok = llmux_pj_push_object(out);
            if (!ok)
                rc = LLMUX_ENOMEM;
            else if ((rc = set(ok, "role",
                               json_object_new_string("assistant"))) == 0) {
                rc = set(ok, "content", json_object_new_string("OK"));
            }
        }
    }
    if (rc != 0) {
        json_object_put(out);
        return rc;
    }
    return set(body, "messages", out);
}

static int patch_messages(json_object *body)
{
    json_object *msgs = get(body, "messages");
    size_t i, n;
    int rc, oks = 0;
    if (!json_object_is_type(msgs, json_type_array))
        return 0;
    n = json_object_array_length(msgs);
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        if ((rc = fix_message(msgs, i, m)) != 0)
            return rc;
        if (i + 1 < n && str_is(m, "role", "tool") &&
            str_is(json_object_array_get_idx(msgs, i + 1), "role", "user"))
            oks++;
    }
    return oks ? insert_oks(body, msgs) : 0;
}

static int put_bool_options(const llmux_oai_dialect *d, const llmux_host *h,
                            const llmux_params *p, json_object *body)
{
    const char *const *k;
    int rc;
    for (k = mistral_bool_options; *k; k++) {
        const char *v = llmux_pj_option(h, p, *k);
        int b;
        if (!v || !*v)
            continue;
        if ((b = llmux_pj_bool(v)) < 0) {
            h->log(LLMUX_LOG_ERROR, "%s: option %s must be true or false",
                   d->name, *k);
            return LLMUX_EINVAL;
        }
        if ((rc = set(body, *k, json_object_new_boolean(b))) != 0)
            return rc;
    }
    return 0;
}

/* A content part as Mistral's ContentChunk has it: input_audio is the
 * base64 string itself; a file goes by file_id (an uploaded file) or as a
 * document_url, never as bytes. */
static int mistral_part(json_object *part, const char *type, size_t msg,
                        void *ud)
{
    const llmux_host *h = ud;
    json_object *a, *f;
    if (strcmp(type, "input_audio") == 0 &&
        json_object_is_type(a = get(part, "input_audio"), json_type_object)) {
        json_object *data = get(a, "data");
        if (!json_object_is_type(data, json_type_string))
            return 0; /* left as it is: the server says what is wrong */
        return set(part, "input_audio", json_object_get(data));
    }
    if (strcmp(type, "file") == 0 &&
        json_object_is_type(f = get(part, "file"), json_type_object) &&
        json_object_is_type(a = get(f, "file_id"), json_type_string) &&
        !get(f, "file_data")) {
        /* OpenAI's {"file":{"file_id":ID}} is Mistral's {"file_id":ID} */
        int rc = set(part, "file_id", json_object_get(a));
        if (rc == 0)
            json_object_object_del(part, "file");
        return rc;
    }
    if (strcmp(type, "file") == 0 &&
        json_object_is_type(f = get(part, "file"), json_type_object) &&
        get(f, "file_data")) {
        h->log(LLMUX_LOG_ERROR,
               "mistral: message %zu: the content part \"file\" with its "
               "bytes (file_data) is not supported by this provider: Mistral "
               "takes a file_id of an uploaded file or a document_url",
               msg);
        return LLMUX_ENOTSUP;
    }
    return 0;
}

static int mistral_patch(const llmux_oai_dialect *d, const llmux_host *h,
                         llmux_call *call, json_object *body)
{
    const llmux_params *p = call->params;
    json_object *v;
    int rc;
    switch (p->op) {
    case LLMUX_OP_CHAT:
        if ((rc = patch_messages(body)) != 0 ||
            (rc = llmux_oai_each_part(body, mistral_part, (void *)h)) != 0 ||
            (rc = put_bool_options(d, h, p, body)) != 0)
            return rc;
        /* fall through */
    case LLMUX_OP_COMPLETE:
        /* max tokens always goes as max_tokens, whatever the
         * max_tokens_field option says (max_completion_tokens is never
         * sent), and the typed value wins over extra JSON */
        if (p->has & LLMUX_HAS_MAX_TOKENS)
            return set(body, "max_tokens",
                       json_object_new_int64(p->max_tokens));
        return 0;
    case LLMUX_OP_EMBED:
        /* the "dimensions" option (or field) is Mistral's output_dimension */
        if (!json_object_object_get_ex(body, "dimensions", &v))
            return 0;
        json_object_get(v);
        json_object_object_del(body, "dimensions");
        if (get(body, "output_dimension")) {
            json_object_put(v);
            return 0;
        }
        return set(body, "output_dimension", v);
    }
    return 0;
}

/* ---- errors -------------------------------------------------------------- */

/* A growable string in host memory. */
typedef struct sbuf {
    const llmux_host *h;
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = b->h->realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Text of a scalar error field (string, number, boolean); NULL for null,
 * absent, objects and arrays. Numbers are written into buf. */
static const char *field_text(json_object *v, char *buf, size_t len)
{
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    if (json_object_is_type(v, json_type_int)) {
        snprintf(buf, len, "%lld", (long long)json_object_get_int64(v));
        return buf;
    }
    if (json_object_is_type(v, json_type_boolean))
        return json_object_get_boolean(v) ? "true" : "false";
    return NULL;
}

/*
 * A FastAPI validation list, {"detail":[{"loc":[..],"msg":..,"type":..}]}
 * at the top or inside "message", as one readable message ("body.seed:
 * Extra inputs are not permitted; ..."). Returns 1 when emitted, 0 when
 * the body is not such a list (every item needs a "msg"), or a negative
 * code.
 */
static int put_validation(const llmux_host *h, llmux_out *out,
                          json_object *root)
{
    json_object *msg = get(root, "message"), *detail;
    char cbuf[32], pbuf[32];
    const char *type;
    size_t i, k, n;
    sbuf b;
    int rc;
    detail = json_object_is_type(msg, json_type_object) ? get(msg, "detail")
             : msg                                      ? NULL
                                                        : get(root, "detail");
    if (!json_object_is_type(detail, json_type_array) ||
        (n = json_object_array_length(detail)) == 0)
        return 0;
    for (i = 0; i < n; i++)
        if (!get_str(json_object_array_get_idx(detail, i), "msg"))
            return 0;
    memset(&b, 0, sizeof b);
    b.h = h;
    for (i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(detail, i);
        json_object *loc = get(item, "loc");
        size_t nloc = json_object_is_type(loc, json_type_array)
                          ? json_object_array_length(loc)
                          : 0;
        if (i)
            sb_str(&b, "; ");
        for (k = 0; k < nloc; k++) {
            char nb[32];
            const char *part =
                field_text(json_object_array_get_idx(loc, k), nb, sizeof nb);
            if (k)
                sb_str(&b, ".");
            sb_str(&b, part ? part : "?");
        }
        if (nloc)
            sb_str(&b, ": ");
        sb_str(&b, get_str(item, "msg"));
    }
    type = field_text(get(root, "type"), pbuf, sizeof pbuf);
    if (!type)
        type = get_str(json_object_array_get_idx(detail, 0), "type");
    rc = b.oom
             ? LLMUX_ENOMEM
             : h->out_provider_error(
                   out, type, field_text(get(root, "code"), cbuf, sizeof cbuf),
                   get_str(root, "param"), b.p);
    h->free(b.p);
    return rc == 0 ? 1 : rc < 0 ? rc : LLMUX_ENOMEM;
}

/*
 * Error bodies (kind LLMUX_OAI_ERROR): validation lists read as text, the
 * other shapes are the codec's. A 2xx body or stream event that is an
 * error object ({"object":"error",...}) instead of a completion is the
 * provider's error, not garbage.
 */
static int mistral_fixup(const llmux_oai_dialect *d, const llmux_host *h,
                         llmux_call *call, int kind, json_object *root,
                         llmux_out *out, int *handled)
{
    int rc;
    (void)d;
    (void)call;
    if (kind != LLMUX_OAI_ERROR && !str_is(root, "object", "error"))
        return 0;
    rc = put_validation(h, out, root);
    if (rc == 0 && kind != LLMUX_OAI_ERROR) {
        rc = llmux_pj_put_error(h, out, root);
        if (rc == 0)
            rc = h->out_provider_error(out, NULL, NULL, NULL,
                                       "error object without a message") == 0
                     ? 1
                     : LLMUX_ENOMEM;
    }
    if (rc == 0)
        return 0; /* the codec's reading */
    *handled = 1;
    if (rc < 0)
        return rc;
    return kind == LLMUX_OAI_ERROR ? 0 : LLMUX_EPROVIDER;
}

/* ---- batch jobs ---------------------------------------------------------- */

/*
 * Mistral's batch jobs (WIRE.md section 8.3): POST /v1/files (multipart,
 * purpose batch), POST /v1/batch/jobs {input_files, endpoint, model,
 * metadata, timeout_hours}, GET /v1/batch/jobs/{id}, POST .../cancel, GET
 * /v1/files/{id}/content. Input lines are {"custom_id","body"} with the
 * body in Mistral's chat shape and the model on the job; the output lines
 * are OpenAI's envelope without response.request_id, which is added.
 */

/* Translating the OpenAI Batch input, line by line. */
typedef struct mjob_in {
    const llmux_host *h;
    const char *name;
    const char *model; /* the job's */
    sbuf out;
} mjob_in;

/* A chat body in OpenAI's shape made Mistral's, as a chat request's is:
 * the seed and max tokens under Mistral's names, the message fixes, the
 * content parts checked; a field Mistral refuses is an error naming it. */
static int mjob_body(mjob_in *in, size_t no, json_object *body)
{
    static const struct {
        const char *from, *to;
    } renames[] = {{"seed", "random_seed"},
                   {"max_completion_tokens", "max_tokens"}};
    const char *m = get_str(body, "model");
    json_object *v;
    size_t i;
    int rc;
    if (m && in->model && strcmp(m, in->model) != 0) {
        in->h->log(LLMUX_LOG_ERROR,
                   "%s: batch input line %zu: model %s is not the job's %s "
                   "(a Mistral job has one model)",
                   in->name, no, m, in->model);
        return LLMUX_EINVAL;
    }
    json_object_object_del(body, "model"); /* the job has it */
    for (i = 0; i < sizeof renames / sizeof renames[0]; i++)
        if (json_object_object_get_ex(body, renames[i].from, &v)) {
            json_object_get(v);
            json_object_object_del(body, renames[i].from);
            if (get(body, renames[i].to))
                json_object_put(v);
            else if ((rc = set(body, renames[i].to, v)))
                return rc;
        }
    for (i = 0; mistral_never[i]; i++)
        if (get(body, mistral_never[i])) {
            in->h->log(LLMUX_LOG_ERROR,
                       "%s: batch input line %zu: field \"%s\" is not "
                       "supported by Mistral",
                       in->name, no, mistral_never[i]);
            return LLMUX_EINVAL;
        }
    if ((rc = patch_messages(body)) ||
        (rc = llmux_oai_each_part(body, mistral_part, (void *)in->h)))
        return rc;
    return 0;
}

static int mjob_line(void *ud, size_t no, const char *line, size_t n)
{
    mjob_in *in = ud;
    json_object *o = NULL, *body, *outl;
    const char *text;
    size_t len;
    int rc = llmux_ojob_parse_text(line, n, &o);
    if (rc == LLMUX_ENOMEM)
        return rc;
    body = get(o, "body");
    if (!json_object_is_type(body, json_type_object) ||
        !get_str(o, "custom_id")) {
        json_object_put(o);
        in->h->log(LLMUX_LOG_ERROR,
                   "%s: batch input line %zu is not a request line", in->name,
                   no);
        return LLMUX_EINVAL;
    }
    outl = json_object_new_object();
    rc = outl ? mjob_body(in, no, body) : LLMUX_ENOMEM;
    if (!rc)
        rc = set(outl, "custom_id", json_object_get(get(o, "custom_id")));
    if (!rc)
        rc = set(outl, "body", json_object_get(body));
    if (!rc && !(text = llmux_pj_text(outl, &len)))
        rc = LLMUX_ENOMEM;
    if (!rc) {
        sb_add(&in->out, text, len);
        sb_add(&in->out, "\n", 1);
        rc = in->out.oom ? LLMUX_ENOMEM : 0;
    }
    json_object_put(outl);
    json_object_put(o);
    return rc;
}

static int mjob_create(const llmux_job_step *s, const char *name,
                       llmux_http_request *http)
{
    const llmux_host *h = mistral_host;
    json_object *body = json_object_new_object(), *files;
    int rc = body ? llmux_ojob_metadata(h, name, s, body) : LLMUX_ENOMEM;
    if (!rc &&
        (!(files = json_object_new_array()) ||
         set(body, "input_files", files) || llmux_pj_push_str(files, s->id) ||
         set(body, "endpoint", json_object_new_string(s->endpoint)) ||
         set(body, "model", json_object_new_string(s->model)) ||
         (s->timeout_hours &&
          set(body, "timeout_hours", json_object_new_int(s->timeout_hours))) ||
         h->http_path(http, "/v1/batch/jobs") ||
         llmux_pj_http_json(h, http, body)))
        rc = LLMUX_ENOMEM;
    json_object_put(body);
    return rc;
}

static int mistral_job_encode(void *provctx, llmux_call *call,
                              const llmux_job_step *s, llmux_http_request *http)
{
    const llmux_host *h = mistral_host;
    const char *name = call->provider;
    mjob_in in;
    int rc;
    (void)provctx;
    if (s->step != LLMUX_JOB_STEP_UPLOAD && s->step != LLMUX_JOB_STEP_CREATE)
        return llmux_ojob_id_step(h, name, s, "/v1/files", "/v1/batch/jobs",
                                  http);
    if (!s->model || !*s->model) {
        h->log(LLMUX_LOG_ERROR,
               "%s: a batch job needs a model: give it in the config "
               "string (mistral/MODEL) or in every line's body.model",
               name);
        return LLMUX_EINVAL;
    }
    if (!s->endpoint || !*s->endpoint)
        return LLMUX_EINVAL;
    if (s->step == LLMUX_JOB_STEP_CREATE)
        return (rc = llmux_ojob_check_id(h, name, s->id))
                   ? rc
                   : mjob_create(s, name, http);
    memset(&in, 0, sizeof in);
    in.h = h;
    in.name = name;
    in.model = s->model;
    in.out.h = h;
    rc = llmux_ojob_lines(s->data, s->data_len, mjob_line, &in);
    if (!rc)
        rc = llmux_ojob_upload(h, http, "/v1/files", in.out.p ? in.out.p : "",
                               in.out.len);
    h->free(in.out.p);
    return rc;
}

static const llmux_ojob_word mjob_words[] = {
    {"QUEUED", LLMUX_JOB_VALIDATING},
    {"RUNNING", LLMUX_JOB_IN_PROGRESS},
    {"SUCCESS", LLMUX_JOB_COMPLETED},
    {"FAILED", LLMUX_JOB_FAILED},
    {"TIMEOUT_EXCEEDED", LLMUX_JOB_EXPIRED},
    {"CANCELLATION_REQUESTED", LLMUX_JOB_CANCELLING},
    {"CANCELLED", LLMUX_JOB_CANCELLED}};

/* errors[{message,count}] as "message (count); ..." */
static int mjob_errors(const llmux_host *h, llmux_out *out, json_object *b)
{
    json_object *errs = get(b, "errors");
    sbuf sb;
    size_t i, n;
    int rc = 0;
    if (!json_object_is_type(errs, json_type_array))
        return 0;
    memset(&sb, 0, sizeof sb);
    sb.h = h;
    n = json_object_array_length(errs);
    for (i = 0; i < n && sb.len < 1024; i++) {
        json_object *e = json_object_array_get_idx(errs, i);
        const char *msg = get_str(e, "message");
        int64_t count;
        char num[32] = "";
        if (llmux_pj_as_int(get(e, "count"), &count) && count > 1)
            snprintf(num, sizeof num, " (%lld times)", (long long)count);
        if (sb.len)
            sb_str(&sb, "; ");
        sb_str(&sb, msg ? msg : "?");
        sb_str(&sb, num);
    }
    if (sb.oom)
        rc = LLMUX_ENOMEM;
    else if (sb.len)
        rc = h->job_str(out, LLMUX_JF_ERRORS, sb.p, sb.len);
    h->free(sb.p);
    return rc;
}

/* One result line in OpenAI's envelope: response.request_id added (null)
 * when missing, finish_reason "model_length" read as "length". */
static int mjob_out_line(void *ud, size_t no, const char *line, size_t n)
{
    sbuf *sb = ud;
    json_object *o = NULL, *resp, *choices;
    const char *text;
    size_t i, len;
    int rc = llmux_ojob_parse_text(line, n, &o);
    (void)no;
    if (rc == LLMUX_ENOMEM)
        return rc;
    if (rc || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return LLMUX_EPROTO;
    }
    resp = get(o, "response");
    if (json_object_is_type(resp, json_type_object) &&
        !json_object_object_get_ex(resp, "request_id", NULL) &&
        json_object_object_add(resp, "request_id", NULL) != 0)
        rc = LLMUX_ENOMEM;
    choices = get(get(resp, "body"), "choices");
    for (i = 0; !rc && json_object_is_type(choices, json_type_array) &&
                i < json_object_array_length(choices);
         i++) {
        json_object *c = json_object_array_get_idx(choices, i);
        if (str_is(c, "finish_reason", "model_length"))
            rc = set(c, "finish_reason", json_object_new_string("length"));
    }
    if (!rc && !(text = llmux_pj_text(o, &len)))
        rc = LLMUX_ENOMEM;
    if (!rc) {
        sb_add(sb, text, len);
        sb_add(sb, "\n", 1);
        rc = sb->oom ? LLMUX_ENOMEM : 0;
    }
    json_object_put(o);
    return rc;
}

static int mistral_job_decode(void *provctx, llmux_call *call,
                              const llmux_job_step *s,
                              const llmux_http_response *resp, llmux_out *out)
{
    const llmux_host *h = mistral_host;
    const char *name = call->provider;
    json_object *root;
    int rc;
    (void)provctx;
    if (s->step == LLMUX_JOB_STEP_CONTENT) {
        sbuf sb;
        memset(&sb, 0, sizeof sb);
        sb.h = h;
        rc = llmux_ojob_lines(resp->body, resp->body_len, mjob_out_line, &sb);
        if (rc == LLMUX_EPROTO)
            rc = llmux_pj_proto(h, out, name, "a result line is not an object",
                                resp->body, resp->body_len);
        else if (!rc)
            rc = h->job_str(out, LLMUX_JF_CONTENT, sb.p ? sb.p : "", sb.len);
        h->free(sb.p);
        return rc;
    }
    if (s->step == LLMUX_JOB_STEP_UPLOAD)
        return llmux_ojob_decode_upload(h, name, resp, out);
    if ((rc = llmux_ojob_parse(h, name, resp, out, &root)))
        return rc;
    if (!get_str(root, "id") || !get_str(root, "status")) {
        rc = llmux_pj_proto(h, out, name, "the batch job has no id or status",
                            resp->body, resp->body_len);
    } else {
        json_object *files = get(root, "input_files");
        const char *in0 =
            json_object_is_type(files, json_type_array) &&
                    json_object_array_length(files) > 0
                ? json_object_get_string(json_object_array_get_idx(files, 0))
                : NULL;
        const char *st = get_str(root, "status");
        int state = llmux_ojob_state(
            mjob_words, sizeof mjob_words / sizeof mjob_words[0], st);
        if (llmux_ojob_str(h, out, LLMUX_JF_ID, root, "id") ||
            llmux_ojob_str(h, out, LLMUX_JF_STATE_RAW, root, "status") ||
            h->job_int(out, LLMUX_JF_STATE, state) ||
            (in0 && h->job_str(out, LLMUX_JF_INPUT_FILE, in0, strlen(in0))) ||
            llmux_ojob_str(h, out, LLMUX_JF_OUTPUT_FILE, root, "output_file") ||
            llmux_ojob_str(h, out, LLMUX_JF_ERROR_FILE, root, "error_file") ||
            llmux_ojob_str(h, out, LLMUX_JF_ENDPOINT, root, "endpoint") ||
            llmux_ojob_str(h, out, LLMUX_JF_MODEL, root, "model") ||
            llmux_ojob_int(h, out, LLMUX_JF_CREATED, root, "created_at") ||
            llmux_ojob_int(h, out, LLMUX_JF_TOTAL, root, "total_requests") ||
            llmux_ojob_int(h, out, LLMUX_JF_COMPLETED, root,
                           "succeeded_requests") ||
            llmux_ojob_int(h, out, LLMUX_JF_FAILED, root, "failed_requests") ||
            llmux_ojob_int(h, out, LLMUX_JF_FINISHED, root, "completed_at") ||
            mjob_errors(h, out, root))
            rc = LLMUX_ENOMEM;
    }
    json_object_put(root);
    return rc;
}

/* ---- the provider -------------------------------------------------------- */

static const llmux_oai_dialect mistral_dialect = {
    "mistral",               /* name */
    "/v1/chat/completions",  /* chat_path */
    "/v1/fim/completions",   /* complete_path: fill in the middle */
    "/v1/embeddings",        /* embed_path */
    "/v1/models",            /* models_path */
    "max_tokens",            /* max_tokens_field */
    "max_tokens",            /* complete_max_tokens_field */
    "random_seed",           /* seed_field */
    0,                       /* stream_usage: usage comes with finish_reason */
    LLMUX_OAI_TOOL_MSG_NAME, /* flags */
    NULL,                    /* reasoning_field: not sent back */
    mistral_never,           /* never_send */
    NULL,                    /* header_options */
    mistral_body_options,    /* body_options */
    mistral_patch,           /* patch_request */
    mistral_fixup,           /* fixup */
    NULL                     /* userdata */
};

static int mistral_init(const llmux_host *host,
                        const llmux_provider_config *cfg, void **provctx)
{
    return llmux_oai_provider_init(&mistral_dialect, host, cfg, provctx);
}

/* What a config string may say to this plugin besides the core's keys:
 * the body options above and the codec's own. */
static const llmux_option_def mistral_options[] = {
    {"prompt_mode", LLMUX_OPTION_BODY},
    {"reasoning_effort", LLMUX_OPTION_BODY},
    {"safe_prompt", LLMUX_OPTION_BODY},
    {"parallel_tool_calls", LLMUX_OPTION_BODY},
    {"dimensions", LLMUX_OPTION_BODY},
    /* not max_tokens_field: max tokens always go as max_tokens */
    LLMUX_OAI_DESCRIPTOR_OPTIONS,
    {NULL, 0}};

static const llmux_provider mistral_provider = {
    LLMUX_PROVIDER_ABI,
    sizeof(llmux_provider),
    "mistral",
    LLMUX_VERSION_STRING,
    "Mistral AI: chat, FIM completion, embeddings, models",
    LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_COMPLETE | LLMUX_CAP_EMBED |
        LLMUX_CAP_MODELS | LLMUX_CAP_TOOLS | LLMUX_CAP_JSON,
    LLMUX_FRAMING_SSE,
    LLMUX_AUTH_BEARER,
    "https://api.mistral.ai",
    "MISTRAL_API_KEY",
    "MISTRAL_BASE_URL",
    mistral_init,
    llmux_oai_provider_teardown,
    llmux_oai_provider_encode,
    llmux_oai_provider_decode,
    llmux_oai_provider_decode_event,
    llmux_oai_provider_decode_error,
    llmux_oai_provider_call_end,
    0, /* default_port */
    llmux_oai_rate_limits,
    llmux_pj_classify_error,
    mistral_options,
    NULL, /* auth_header: Authorization */
    mistral_job_encode,
    mistral_job_decode};

LLMUX_DEFINE_PROVIDER(mistral_provider, mistral_host)
