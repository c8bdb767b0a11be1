/*
 * core/hooks.c: the client hooks (llmux_client_options.hook and
 * before_send): each attempt's start and end and each request's end told
 * as an llmux_hook_event named after OpenTelemetry's GenAI conventions,
 * and the before_send hook's view of the HTTP request (llmux_http_edit).
 * xfer.c calls them at those points; without hooks they return at once.
 */
#include <limits.h>
#include <stdio.h>

#include "engine.h"

/* The endpoint of a URL: scheme://host[:port]/..., without a query or a
 * user:password; its host and port. */
typedef struct hook_url {
    char url[512];
    char host[256];
    int port;
} hook_url;

static void url_parts(const char *u, hook_url *o)
{
    size_t n = strcspn(u, "?#"), a = n, b = n, h0, h1;
    const char *p;
    int cred = llmux__url_userinfo(u, n, &a, &b);
    snprintf(o->url, sizeof o->url, "%.*s%.*s", (int)(cred ? a : n), u,
             cred ? (int)(n - b - 1) : 0, cred ? u + b + 1 : "");
    p = strstr(o->url, "://");
    h0 = p ? (size_t)(p - o->url) + 3 : 0;
    h1 = h0 + strcspn(o->url + h0, "/");
    o->port = strncmp(o->url, "https:", 6) == 0 ? 443 : 80;
    o->host[0] = '\0';
    if (h1 > h0) {
        const char *s = o->url + h0, *colon;
        size_t len = h1 - h0;
        /* [v6]:port or host:port */
        const char *end = s[0] == '[' ? memchr(s, ']', len) : s;
        colon = end ? memchr(end, ':', len - (size_t)(end - s)) : NULL;
        if (colon) {
            o->port = atoi(colon + 1);
            len = (size_t)(colon - s);
        }
        snprintf(o->host, sizeof o->host, "%.*s", (int)len, s);
    }
}

static const char *operation_name(int op)
{
    switch (op) {
    case LLMUX_OP_CHAT:
        return "chat";
    case LLMUX_OP_COMPLETE:
        return "text_completion";
    case LLMUX_OP_EMBED:
        return "embeddings";
    case LLMUX_OP_MODELS:
        return "models";
    case LLMUX_OP_TOKENIZE:
        return "tokenize";
    case LLMUX_OP_DETOKENIZE:
        return "detokenize";
    case LLMUX_OP_EVALUATE:
        return "evaluate";
    case LLMUX__OP_JOB:
        return "batch_job";
    default:
        return "unknown";
    }
}

/* What every event says; the end members "none". */
static void event_init(xfer *x, llmux_hook_event *ev, int kind, hook_url *u)
{
    memset(ev, 0, sizeof *ev);
    ev->struct_size = (uint32_t)sizeof *ev;
    ev->kind = (llmux_hook_kind)kind;
    ev->operation_name = operation_name(x->req->op);
    ev->provider_name = x->prep.call.provider;
    ev->request_model = x->req->cfg.model;
    url_parts(x->prep.url ? x->prep.url : "", u);
    ev->server_address = u->host;
    ev->server_port = u->port;
    ev->url = u->url;
    ev->stream = x->req->stream != 0;
    ev->attempt = x->attempts;
    ev->fallback = x->res ? x->res->fallback : 0;
    ev->time_to_first_chunk_s = -1;
    ev->bytes_sent = ev->bytes_received = -1;
    ev->retry_delay_s = -1;
    ev->input_tokens = ev->output_tokens = -1;
    ev->cache_read_input_tokens = ev->reasoning_output_tokens = -1;
}

/* The end members: outcome, usage, the answer's id and model. */
static void event_end(xfer *x, llmux_hook_event *ev, int code, long status)
{
    const llmux_response *res = x->res;
    const llmux_usage *u = &res->o.usage;
    ev->code = code;
    ev->error_type = code ? llmux_err_name(code) : NULL;
    ev->http_status = status;
    ev->input_tokens = u->prompt_tokens;
    ev->output_tokens = u->completion_tokens;
    ev->cache_read_input_tokens = u->cached_tokens;
    ev->reasoning_output_tokens = u->reasoning_tokens;
    ev->response_id = res->o.id;
    ev->response_model = res->o.model;
    ev->response = res;
}

static void tell(xfer *x, const llmux_hook_event *ev)
{
    struct llmux_client *c = x->c;
    llmux__callback_depth(1);
    c->hook(x->req, ev, c->hook_ud);
    llmux__callback_depth(-1);
}

void llmux__hook_attempt_start(xfer *x)
{
    llmux_hook_event ev;
    hook_url u;
    x->t_attempt_ns = uv_hrtime();
    x->t_first_ns = 0;
    if (!x->c->hook)
        return;
    x->attempt_open = 1;
    event_init(x, &ev, LLMUX_HOOK_ATTEMPT_START, &u);
    tell(x, &ev);
}

void llmux__hook_attempt_end(xfer *x, int code, long status, const char *next,
                             double delay_ms)
{
    llmux_hook_event ev;
    hook_url u;
    uint64_t now = uv_hrtime();
    if (!x->c->hook || !x->attempt_open)
        return;
    x->attempt_open = 0;
    event_init(x, &ev, LLMUX_HOOK_ATTEMPT_END, &u);
    event_end(x, &ev, code, status);
    ev.duration_s = (double)(now - x->t_attempt_ns) / 1e9;
    if (x->t_first_ns)
        ev.time_to_first_chunk_s =
            (double)(x->t_first_ns - x->t_attempt_ns) / 1e9;
    if (x->easy) {
        curl_off_t up = -1, down = -1;
        if (curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK)
            ev.bytes_sent = (long long)up;
        if (curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &down) ==
            CURLE_OK)
            ev.bytes_received = (long long)down;
    }
    ev.next = next;
    if (next && strcmp(next, "retry") == 0)
        ev.retry_delay_s = delay_ms / 1000.0;
    tell(x, &ev);
}

void llmux__hook_request_end(xfer *x, int code)
{
    llmux_hook_event ev;
    hook_url u;
    struct llmux_client *c = x->c;
    if (!c->hook)
        return;
    llmux__hook_attempt_end(x, code, x->res->http_status, NULL, -1);
    event_init(x, &ev, LLMUX_HOOK_REQUEST_END, &u);
    event_end(x, &ev, code, x->res->http_status);
    ev.duration_s = (double)(uv_hrtime() - x->t_submit_ns) / 1e9;
    tell(x, &ev);
}

/* ---- before_send ---------------------------------------------------------
 */

struct llmux_http_edit {
    xfer *x;
};

int llmux__hook_before_send(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_http_edit e;
    int refused;
    if (x->edited)
        return 0;
    x->edited = 1;
    if (!c->before_send)
        return 0;
    e.x = x;
    x->in_hook = 1;
    llmux__callback_depth(1);
    refused = c->before_send(x->req, &e, c->hook_ud);
    llmux__callback_depth(-1);
    x->in_hook = 0;
    if (x->cancel && !refused) {
        llmux__request_seterr(x->req, "canceled by the before_send hook");
        return LLMUX_ECANCELED;
    }
    if (!refused)
        return 0;
    llmux__request_seterr(x->req, "the before_send hook refused the request");
    return LLMUX_EUSER;
}

LLMUX_EXTERN const char *llmux_http_edit_url(const llmux_http_edit *e)
{
    return e ? e->x->prep.url : NULL;
}

LLMUX_EXTERN const char *llmux_http_edit_method(const llmux_http_edit *e)
{
    return e ? e->x->prep.http.method : NULL;
}

LLMUX_EXTERN const char *llmux_http_edit_body(const llmux_http_edit *e,
                                              size_t *len)
{
    const struct llmux_http_request *h = e ? &e->x->prep.http : NULL;
    if (len)
        *len = h && h->body ? h->body_len : 0;
    return h ? h->body : NULL;
}

LLMUX_EXTERN int llmux_http_edit_set_body(llmux_http_edit *e, const char *body,
                                          size_t len)
{
    struct llmux_http_request *h;
    char *b;
    if (!e || (!body && len))
        return LLMUX_EINVAL;
    h = &e->x->prep.http;
    if (!(b = llmux__malloc(len + 1)))
        return LLMUX_ENOMEM;
    if (len)
        memcpy(b, body, len);
    b[len] = '\0';
    llmux__free(h->body);
    h->body = b;
    h->body_len = len;
    return 0;
}

LLMUX_EXTERN int llmux_http_edit_set_header(llmux_http_edit *e,
                                            const char *header)
{
    struct llmux_http_request *h;
    const char *colon;
    size_t name, i;
    char *copy, **n;
    if (!e || !header || !(colon = strchr(header, ':')) || colon == header ||
        strpbrk(header, "\r\n"))
        return LLMUX_EINVAL;
    name = (size_t)(colon - header);
    h = &e->x->prep.http;
    if (!(copy = llmux__strdup(header)))
        return LLMUX_ENOMEM;
    for (i = 0; i < h->n_headers; i++)
        if (strncasecmp(h->headers[i], header, name) == 0 &&
            h->headers[i][name] == ':') {
            llmux__free(h->headers[i]);
            h->headers[i] = copy;
            return 0;
        }
    if (!(n = llmux__realloc(h->headers, (h->n_headers + 1) * sizeof *n))) {
        llmux__free(copy);
        return LLMUX_ENOMEM;
    }
    h->headers = n;
    h->headers[h->n_headers++] = copy;
    return 0;
}
