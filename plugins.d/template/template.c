/*
 * plugins.d/template/template.c: a complete provider plugin to start from.
 *
 * It speaks the core of OpenAI's chat completions, which most
 * "OpenAI-compatible" servers accept: model, text messages, max_tokens,
 * temperature, top_p, seed, stop and stream, answered by one JSON object
 * or by server-sent events ending in "data: [DONE]". Copy the file, rename
 * the provider, and change encode and the decoders to your API's wire
 * format. The in-tree providers (providers/) do much more (tools,
 * reasoning, embeddings, several dialects); this one is meant to be read
 * top to bottom.
 *
 * What a plugin does and does not do: it translates. The core owns every
 * socket, retry, timeout, limit and the API key (it adds the
 * "Authorization: Bearer" header unless `auth` says otherwise); the plugin
 * builds the HTTP request with host->http_* and hands results over with
 * host->out_*, which copy, so nothing the plugin allocates outlives a hook.
 * Hooks of one request run on the thread of its client's loop, but several
 * clients on several threads share one plugin: keep no mutable globals.
 *
 * Build it outside the llmux tree (it needs llmux's headers and json-c,
 * not libllmux: everything comes through the host table):
 *
 *   cc -shared -fPIC -fvisibility=hidden -o myprov.so template.c \
 *      $(pkg-config --cflags llmux) $(pkg-config --cflags --libs json-c)
 *
 * and drop myprov.so into a directory on LLMUX_PLUGIN_PATH: then
 * "myprov/<model>;base_url=..." works. A descriptor (myprov.conf, see
 * plugins.d/README.md) can publish it under other names with other
 * defaults and options; this one reads the option `chat_path`.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strcasecmp */

#include <json-c/json.h>

#include <llmux/sys/provider.h>

#define NAME "template"

/* The host table, saved by LLMUX_DEFINE_PROVIDER when the module loads. */
static const llmux_host *host;

/* ---- the provider context: set once by init, read-only afterwards ------ */

typedef struct tpl_ctx {
    char *chat_path; /* "/chat/completions" unless a descriptor says */
} tpl_ctx;

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = host->alloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int tpl_init(const llmux_host *h, const llmux_provider_config *cfg,
                    void **provctx)
{
    const char *path = "/chat/completions";
    tpl_ctx *c;
    size_t i;
    (void)h;
    for (i = 0; cfg && i < cfg->n_options; i++) {
        if (strcasecmp(cfg->options[i].key, "chat_path") == 0) {
            path = cfg->options[i].value;
            if (path[0] != '/') {
                host->log(LLMUX_LOG_ERROR,
                          "%s: %s: chat_path must start with '/'", NAME,
                          cfg->name);
                return LLMUX_ECONFIG; /* the load fails: LLMUX_EPLUGIN */
            }
        }
    }
    if (!(c = host->alloc(sizeof *c)))
        return LLMUX_ENOMEM;
    if (!(c->chat_path = dup_str(path))) {
        host->free(c);
        return LLMUX_ENOMEM;
    }
    *provctx = c;
    return 0;
}

static void tpl_teardown(void *provctx)
{
    tpl_ctx *c = provctx;
    if (!c)
        return;
    host->free(c->chat_path);
    host->free(c);
}

/* ---- encode: the common request into an HTTP request ------------------- */

static const char *role_name(int role)
{
    switch (role) {
    case LLMUX_ROLE_SYSTEM:
        return "system";
    case LLMUX_ROLE_USER:
        return "user";
    case LLMUX_ROLE_ASSISTANT:
        return "assistant";
    default:
        return NULL; /* tool messages need tool calls: not in this API */
    }
}

/* Adds `v` under `key`; json_object_object_add takes v even on failure. */
static int add(json_object *o, const char *key, json_object *v)
{
    if (!v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return LLMUX_ENOMEM;
    }
    return 0;
}

static int build_body(const llmux_params *p, json_object *body)
{
    json_object *msgs = json_object_new_array();
    size_t i;
    int rc;
    if ((rc = add(body, "model", json_object_new_string(p->model))) ||
        (rc = add(body, "messages", msgs)))
        return rc;
    for (i = 0; i < p->n_messages; i++) {
        const llmux_msg *m = &p->messages[i];
        const char *role = role_name(m->role);
        json_object *jm;
        if (!role || !m->content) {
            host->log(LLMUX_LOG_ERROR,
                      "%s: message %zu: only system, user and assistant "
                      "text messages are supported",
                      NAME, i);
            return LLMUX_ENOTSUP;
        }
        if (!(jm = json_object_new_object()) ||
            json_object_array_add(msgs, jm) != 0) {
            json_object_put(jm);
            return LLMUX_ENOMEM;
        }
        if ((rc = add(jm, "role", json_object_new_string(role))) ||
            (rc = add(jm, "content", json_object_new_string(m->content))))
            return rc;
    }
    /* optional numbers: only those the caller set (p->has) */
    if ((p->has & LLMUX_HAS_MAX_TOKENS) &&
        (rc = add(body, "max_tokens", json_object_new_int64(p->max_tokens))))
        return rc;
    if ((p->has & LLMUX_HAS_TEMPERATURE) &&
        (rc = add(body, "temperature", json_object_new_double(p->temperature))))
        return rc;
    if ((p->has & LLMUX_HAS_TOP_P) &&
        (rc = add(body, "top_p", json_object_new_double(p->top_p))))
        return rc;
    if ((p->has & LLMUX_HAS_SEED) &&
        (rc = add(body, "seed", json_object_new_int64(p->seed))))
        return rc;
    if (p->n_stop) {
        json_object *stop = json_object_new_array();
        if ((rc = add(body, "stop", stop)))
            return rc;
        for (i = 0; i < p->n_stop; i++) {
            json_object *s = json_object_new_string(p->stop[i]);
            if (!s || json_object_array_add(stop, s) != 0) {
                json_object_put(s);
                return LLMUX_ENOMEM;
            }
        }
    }
    if (p->stream) {
        /* and ask for usage in the last event (OpenAI; others ignore it) */
        json_object *so = json_object_new_object();
        if ((rc = add(body, "stream", json_object_new_boolean(1))) ||
            (rc = add(body, "stream_options", so)) ||
            (rc = add(so, "include_usage", json_object_new_boolean(1))))
            return rc;
    }
    return 0;
}

static int tpl_encode(void *provctx, llmux_call *call, llmux_http_request *http)
{
    const tpl_ctx *c = provctx;
    const llmux_params *p = call->params;
    json_object *body;
    const char *text;
    size_t len;
    int rc;
    if (p->op != LLMUX_OP_CHAT) {
        host->log(LLMUX_LOG_ERROR, "%s: only chat is supported", NAME);
        return LLMUX_ENOTSUP;
    }
    if (!(body = json_object_new_object()))
        return LLMUX_ENOMEM;
    rc = build_body(p, body);
    if (rc == 0) {
        text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN,
                                                 &len);
        if (!text)
            rc = LLMUX_ENOMEM;
        else if ((rc = host->http_method(http, "POST")) == 0 &&
                 (rc = host->http_path(http, c->chat_path)) == 0)
            rc = host->http_body(http, text, len); /* copied */
        /* Content-Type: application/json is added by the core */
    }
    json_object_put(body);
    return rc;
}

/* ---- decoding helpers -------------------------------------------------- */

/*
 * Parses exactly one JSON value from s[0..len): strict, no NUL bytes (json-c
 * would stop there and the rest would go unseen), nothing but whitespace
 * after it. Returns the value (caller puts it) or NULL.
 */
static json_object *parse(const char *s, size_t len)
{
    json_tokener *tok;
    json_object *o;
    size_t end;
    if (!s || len > 0x7FFFFFF0u || memchr(s, '\0', len))
        return NULL;
    if (!(tok = json_tokener_new()))
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, s, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (json_tokener_get_error(tok) != json_tokener_success)
        o = (json_object_put(o), NULL);
    json_tokener_free(tok);
    for (; o && end < len; end++)
        if (!strchr(" \t\r\n", s[end]))
            o = (json_object_put(o), NULL);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A string member as text and length, or NULL when absent or not text. */
static const char *get_str(json_object *o, const char *key, size_t *len)
{
    json_object *v = get(o, key);
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* A malformed answer: LLMUX_EPROTO naming what was wrong. */
static int proto(llmux_out *out, const char *what)
{
    host->set_error(out, LLMUX_EPROTO, "%s: %s", NAME, what);
    return LLMUX_EPROTO;
}

static int put_str(llmux_out *out, int field, json_object *o, const char *key)
{
    size_t n;
    const char *s = get_str(o, key, &n);
    return s ? host->out_str(out, field, s, n) : 0;
}

static int put_finish(llmux_out *out, json_object *choice)
{
    static const struct {
        const char *name;
        int finish;
    } map[] = {{"stop", LLMUX_FINISH_STOP},
               {"length", LLMUX_FINISH_LENGTH},
               {"tool_calls", LLMUX_FINISH_TOOL_CALLS},
               {"content_filter", LLMUX_FINISH_CONTENT_FILTER}};
    size_t n, i;
    const char *f = get_str(choice, "finish_reason", &n);
    int rc;
    if (!f)
        return 0; /* null until the last event */
    for (i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(f, map[i].name) == 0 &&
            (rc = host->out_int(out, LLMUX_F_FINISH, map[i].finish)) != 0)
            return rc;
    return host->out_str(out, LLMUX_F_FINISH_RAW, f, n); /* kept as sent */
}

static int put_usage(llmux_out *out, json_object *root)
{
    static const struct {
        const char *key;
        int field;
    } map[] = {{"prompt_tokens", LLMUX_F_PROMPT_TOKENS},
               {"completion_tokens", LLMUX_F_COMPLETION_TOKENS},
               {"total_tokens", LLMUX_F_TOTAL_TOKENS}};
    json_object *u = get(root, "usage");
    size_t i;
    int rc;
    for (i = 0; u && i < sizeof map / sizeof map[0]; i++) {
        json_object *v = get(u, map[i].key);
        if (json_object_is_type(v, json_type_int) &&
            (rc = host->out_int(out, map[i].field, json_object_get_int64(v))))
            return rc;
    }
    return 0;
}

/* {"error":{"message","type","code","param"}} into the provider error;
 * returns 1 when root was one, 0 when not, or a negative code. */
static int put_error(llmux_out *out, json_object *root)
{
    json_object *e = get(root, "error");
    size_t n;
    const char *msg, *type, *code, *param;
    if (json_object_is_type(e, json_type_string)) /* {"error":"text"} */
        return host->out_provider_error(out, NULL, NULL, NULL,
                                        json_object_get_string(e)) == 0
                   ? 1
                   : LLMUX_ENOMEM;
    if (!json_object_is_type(e, json_type_object))
        return 0;
    msg = get_str(e, "message", &n);
    type = get_str(e, "type", &n);
    code = get_str(e, "code", &n); /* some servers send a number: dropped */
    param = get_str(e, "param", &n);
    return host->out_provider_error(out, type, code, param, msg ? msg : "") == 0
               ? 1
               : LLMUX_ENOMEM;
}

/* The first choice of an answer or a chunk, or NULL. */
static json_object *first_choice(json_object *root)
{
    json_object *c = get(root, "choices");
    if (!json_object_is_type(c, json_type_array) ||
        json_object_array_length(c) == 0)
        return NULL;
    return json_object_array_get_idx(c, 0);
}

/* ---- decode: a whole (2xx) answer -------------------------------------- */

static int tpl_decode(void *provctx, llmux_call *call,
                      const llmux_http_response *resp, llmux_out *out)
{
    json_object *root = parse(resp->body, resp->body_len), *choice, *msg;
    int rc;
    (void)provctx;
    (void)call;
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return proto(out, "response is not a JSON object");
    }
    if ((rc = put_error(out, root)) != 0) { /* a 200 carrying an error */
        json_object_put(root);
        return rc < 0 ? rc : LLMUX_EPROVIDER;
    }
    choice = first_choice(root);
    msg = choice ? get(choice, "message") : NULL;
    if (!json_object_is_type(msg, json_type_object))
        rc = proto(out, "response has no choices[0].message");
    else if ((rc = put_str(out, LLMUX_F_ID, root, "id")) == 0 &&
             (rc = put_str(out, LLMUX_F_MODEL, root, "model")) == 0 &&
             (rc = put_str(out, LLMUX_F_TEXT, msg, "content")) == 0 &&
             (rc = put_finish(out, choice)) == 0)
        rc = put_usage(out, root);
    json_object_put(root);
    return rc;
}

/* ---- decode_event: one server-sent event of a stream ------------------- */

/* Per-request state (call->state), created on a stream's first event and
 * freed by call_end, which the core calls once per request whatever
 * happened (a retried stream starts over with call->state NULL). */
typedef struct tpl_state {
    int meta_sent; /* id and model are sent with the first chunk only */
} tpl_state;

static int tpl_decode_event(void *provctx, llmux_call *call,
                            const llmux_event *ev, llmux_out *out)
{
    tpl_state *st = call->state;
    json_object *root, *choice, *delta;
    size_t len = ev->data_len;
    int rc = 0;
    (void)provctx;
    if (!ev->data || len == 0)
        return 0; /* a comment or keep-alive */
    if (len >= 6 && memcmp(ev->data, "[DONE]", 6) == 0)
        return LLMUX_EVENT_DONE; /* the core ends the stream cleanly */
    if (!st) {
        if (!(st = host->alloc(sizeof *st))) {
            host->set_error(out, LLMUX_ENOMEM, "%s: out of memory", NAME);
            return LLMUX_ENOMEM;
        }
        memset(st, 0, sizeof *st);
        call->state = st;
    }
    root = parse(ev->data, len);
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return proto(out, "bad stream event");
    }
    if ((rc = put_error(out, root)) != 0) { /* an error inside the stream */
        json_object_put(root);
        return rc < 0 ? rc : LLMUX_EPROVIDER;
    }
    if (!st->meta_sent) {
        if ((rc = put_str(out, LLMUX_F_ID, root, "id")) == 0)
            rc = put_str(out, LLMUX_F_MODEL, root, "model");
        st->meta_sent = 1;
    }
    choice = first_choice(root);
    delta = choice ? get(choice, "delta") : NULL;
    if (rc == 0 && delta)
        rc = put_str(out, LLMUX_F_TEXT, delta, "content");
    if (rc == 0 && choice)
        rc = put_finish(out, choice);
    if (rc == 0)
        rc = put_usage(out, root); /* the last event, when asked for */
    json_object_put(root);
    return rc;
}

/* ---- decode_error: a non-2xx body -------------------------------------- */

static int tpl_decode_error(void *provctx, llmux_call *call,
                            const llmux_http_response *resp, llmux_out *out)
{
    json_object *root = parse(resp->body, resp->body_len);
    int rc = 0;
    (void)provctx;
    (void)call;
    /* nothing recognisable (an HTML page from a proxy...): set nothing,
     * and the core reports the status with the raw body */
    if (json_object_is_type(root, json_type_object))
        rc = put_error(out, root);
    json_object_put(root);
    return rc < 0 ? rc : 0;
}

static void tpl_call_end(void *provctx, llmux_call *call)
{
    (void)provctx;
    host->free(call->state);
    call->state = NULL;
}

/* ---- the provider table ------------------------------------------------ */

static const llmux_provider table = {
    .abi_version = LLMUX_PROVIDER_ABI,
    .struct_size = sizeof(llmux_provider),
    .name = NAME,
    .version = "1.0",
    .description = "Template: the core of OpenAI's chat completions",
    .caps = LLMUX_CAP_CHAT | LLMUX_CAP_STREAM,
    .framing = LLMUX_FRAMING_SSE, /* the core splits the events */
    .auth = LLMUX_AUTH_OPTIONAL,  /* Bearer when a key is set, else none */
    .default_base_url = "http://127.0.0.1:8000", /* unless configured */
    .api_key_env = "TEMPLATE_API_KEY",           /* the key, by default */
    .base_url_env = "TEMPLATE_BASE_URL",         /* overrides the base URL */
    .init = tpl_init,                            /* optional */
    .teardown = tpl_teardown,                    /* optional */
    .encode = tpl_encode,
    .decode = tpl_decode,
    .decode_event = tpl_decode_event, /* required with LLMUX_CAP_STREAM */
    .decode_error = tpl_decode_error, /* optional */
    .call_end = tpl_call_end,         /* optional */
    /* also optional, left NULL here: default_port, rate_limits,
     * classify_error, options, auth_header, and job_encode/job_decode for
     * a provider batch API (llmux-plugin(7), "Provider batch jobs") */
};

LLMUX_DEFINE_PROVIDER(table, host)
