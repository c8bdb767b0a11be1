/* llmux-serve: an OpenAI-compatible HTTP gateway in front of llmux (first
 * step). libh2o (built with libuv) serves HTTP/1.1 on the same libuv loop
 * the llmux client runs on: a request is decoded with the library's
 * OpenAI-JSON import, submitted, and answered with its OpenAI-shaped
 * serializer or an OpenAI error object. */
#include "serve.h"

#include <errno.h>
#include <json-c/json.h>
#include <llmux/llmux.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <h2o.h>
#include <h2o/http1.h>

#define SERVE_MAX_BODY (8u << 20)
/* h2o answers bodies above its own limit itself (plain text 413) before
 * the handler runs; set above ours so that up to twice our limit gets the
 * OpenAI-shaped 413. */
#define SERVE_H2O_MAX_BODY (2 * SERVE_MAX_BODY)

typedef struct serve {
    uv_loop_t loop;
    serve_config cfg;
    llmux_client *client;
    h2o_globalconf_t h2o_cfg;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_signal_t sig_term, sig_int;
    int closing;
    int client_closed;
    size_t conns; /* accepted connections not yet closed */
} serve;

typedef struct serve_handler {
    h2o_handler_t super;
    serve *s;
} serve_handler;

/* One chat completion in flight. Freed once both the llmux done callback
 * has run and h2o has disposed of the HTTP request (the client may leave
 * first: the upstream request is then canceled). */
typedef struct pending {
    h2o_generator_t gen; /* first: h2o hands it back to proceed and stop */
    h2o_req_t *req;      /* NULL once answered or gone */
    llmux_request *lr;
    int done;
    int disposed;
    /* stream:true: SSE events gathered in `buf` while h2o writes `out`
     * (h2o takes one write at a time and reads it until proceed) */
    int streaming, started, sending, final, paused;
    char *buf, *out;
    size_t buf_len, buf_cap, out_cap;
} pending;

/* Above this much waiting for a slow reader, the upstream is paused. */
#define SERVE_STREAM_HIGH (1u << 20)

/* ---- responses ----------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

static void send_json(h2o_req_t *req, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, len);
}

/* OpenAI's error object: {"error":{"message","type","param","code"}}. */
static void send_error(h2o_req_t *req, int status, const char *type,
                       const char *param, const char *code, const char *message)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    const char *text;
    size_t len;
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "param",
                           param ? json_object_new_string(param) : NULL);
    json_object_object_add(e, "code",
                           code ? json_object_new_string(code) : NULL);
    json_object_object_add(o, "error", e);
    text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    send_json(req, status, text, len);
    json_object_put(o);
}

/* The HTTP status and OpenAI error type for an llmux failure. */
static int status_of(int code, long upstream_status, const char **type)
{
    switch (code) {
    case LLMUX_EINVAL:
    case LLMUX_ENOTSUP:
        *type = "invalid_request_error";
        return 400;
    case LLMUX_ERATELIMIT:
    case LLMUX_EBUDGET:
        *type = "rate_limit_error";
        return 429;
    case LLMUX_ETIMEDOUT:
        *type = "api_error";
        return 504;
    case LLMUX_EQUEUEFULL:
    case LLMUX_ECANCELED:
        *type = "api_error";
        return 503;
    case LLMUX_EPROVIDER:
        /* the provider refused the request itself (a bad parameter, a
         * context too long): the client's to fix */
        if (upstream_status >= 400 && upstream_status < 500 &&
            upstream_status != 401 && upstream_status != 403 &&
            upstream_status != 429) {
            *type = "invalid_request_error";
            return (int)upstream_status;
        }
        *type = "api_error";
        return 502;
    case LLMUX_ETRANSPORT:
    case LLMUX_ETOOBIG:
    case LLMUX_EPROTO:
    case LLMUX_EAUTH: /* the gateway's upstream key, not the client's */
        *type = "api_error";
        return 502;
    default: /* the gateway's own config: a missing key, a provider */
        *type = "server_error";
        return 500;
    }
}

/* ---- chat completions ---------------------------------------------------- */

static void pending_release(pending *p)
{
    if (p->done && p->disposed) {
        free(p->buf);
        free(p->out);
        free(p);
    }
}

/* ---- stream:true, as server-sent events ---------------------------------- */

static int sse_append(pending *p, const char *a, size_t alen, const char *b,
                      size_t blen)
{
    size_t need = p->buf_len + alen + blen;
    if (need > p->buf_cap) {
        size_t cap = p->buf_cap ? p->buf_cap * 2 : 4096;
        char *nb;
        while (cap < need)
            cap *= 2;
        if (!(nb = realloc(p->buf, cap)))
            return -1;
        p->buf = nb;
        p->buf_cap = cap;
    }
    memcpy(p->buf + p->buf_len, a, alen);
    memcpy(p->buf + p->buf_len + alen, b, blen);
    p->buf_len = need;
    return 0;
}

/* Hands what is gathered to h2o unless a write is under way. */
static void sse_flush(pending *p)
{
    h2o_iovec_t iov;
    char *t;
    size_t cap;
    if (!p->req || p->sending || (!p->buf_len && !p->final))
        return;
    /* swap: h2o reads `out` until proceed */
    t = p->out;
    p->out = p->buf;
    p->buf = t;
    cap = p->out_cap;
    p->out_cap = p->buf_cap;
    p->buf_cap = cap;
    iov = h2o_iovec_init(p->out, p->buf_len);
    p->buf_len = 0;
    p->sending = 1;
    if (p->final) {
        h2o_req_t *req = p->req;
        p->req = NULL; /* nothing more to write */
        h2o_send(req, &iov, iov.len ? 1 : 0, H2O_SEND_STATE_FINAL);
    } else
        h2o_send(p->req, &iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void sse_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    pending *p = (pending *)gen;
    (void)req;
    p->sending = 0;
    if (p->paused && !p->done && p->buf_len < SERVE_STREAM_HIGH / 2) {
        p->paused = 0;
        llmux_request_resume(p->lr);
    }
    sse_flush(p);
}

/* The client went away mid-stream: stop paying for tokens. */
static void sse_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    pending *p = (pending *)gen;
    (void)req;
    p->req = NULL;
    if (!p->done)
        llmux_request_cancel(p->lr);
}

static void sse_start(pending *p)
{
    h2o_req_t *req = p->req;
    p->started = 1;
    p->gen.proceed = sse_proceed;
    p->gen.stop = sse_stop;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_start_response(req, &p->gen);
}

static int on_chunk(llmux_request *lr, const llmux_chunk *ch, void *userdata)
{
    pending *p = userdata;
    char *json;
    int rc;
    if (!p->req)
        return 1; /* nobody reads: stop */
    if (!(json = llmux_chunk_to_json(ch)))
        return 1;
    if (!p->started)
        sse_start(p);
    rc = sse_append(p, "data: ", 6, json, strlen(json)) ||
         sse_append(p, "\n\n", 2, "", 0);
    llmux_free(json);
    if (rc)
        return 1;
    sse_flush(p);
    if (p->buf_len > SERVE_STREAM_HIGH && !p->paused) {
        p->paused = 1;
        llmux_request_pause(lr);
    }
    return 0;
}

/* h2o frees the request's pool: answered, or the client went away. */
static void on_req_dispose(void *data)
{
    pending *p = *(pending **)data;
    p->req = NULL;
    p->disposed = 1;
    if (!p->done)
        llmux_request_cancel(p->lr); /* nobody to answer: stop paying */
    pending_release(p);
}

static void on_done(llmux_request *lr, int status, llmux_response *res,
                    void *userdata)
{
    pending *p = userdata;
    h2o_req_t *req = p->req;
    (void)lr;
    p->done = 1;
    p->lr = NULL;
    if (req && p->started) {
        /* the stream's end: [DONE], or OpenAI's error object as an event */
        if (status == 0)
            sse_append(p, "data: [DONE]\n\n", 14, "", 0);
        else {
            char *json = llmux_response_to_json(res);
            if (json && !sse_append(p, "data: ", 6, json, strlen(json)))
                sse_append(p, "\n\n", 2, "", 0);
            llmux_free(json);
        }
        p->final = 1;
        sse_flush(p);
    } else if (req) {
        p->req = NULL;
        if (status == 0 && p->streaming) {
            /* a stream without a single chunk */
            p->req = req;
            sse_start(p);
            sse_append(p, "data: [DONE]\n\n", 14, "", 0);
            p->final = 1;
            sse_flush(p);
        } else if (status == 0) {
            char *json = llmux_response_to_json(res);
            if (json)
                send_json(req, 200, json, strlen(json));
            else
                send_error(req, 500, "server_error", NULL, NULL,
                           "out of memory");
            llmux_free(json);
        } else {
            const llmux_error *e = llmux_response_error(res);
            const char *type;
            int st = status_of(status, e ? e->http_status : 0, &type);
            char msg[1024];
            size_t pl = e && e->provider ? strlen(e->provider) : 0;
            /* name the provider once: its message may start with it */
            if (pl && !(strncmp(e->message, e->provider, pl) == 0 &&
                        e->message[pl] == ':'))
                snprintf(msg, sizeof msg, "upstream %s: %s", e->provider,
                         e->message);
            else
                snprintf(msg, sizeof msg, "%s",
                         e ? e->message : llmux_strerror(status));
            if (st == 429 && e && e->retry_after >= 0) {
                char ra[32];
                int n = snprintf(ra, sizeof ra, "%.0f", e->retry_after + 0.5);
                h2o_add_header(&req->pool, &req->res.headers,
                               H2O_TOKEN_RETRY_AFTER, NULL,
                               h2o_strdup(&req->pool, ra, n).base, n);
            }
            send_error(req, st, type, e ? e->param : NULL,
                       llmux_err_name(status), msg);
        }
    }
    pending_release(p);
}

static int handle_chat(serve *s, h2o_req_t *req)
{
    const char *body = req->entity.base ? req->entity.base : "";
    size_t len = req->entity.base ? req->entity.len : 0;
    json_tokener *tok;
    json_object *j, *m, *st;
    const serve_route *rt;
    llmux_request *lr = NULL;
    pending *p, **ref;
    const char *model;
    char msg[512];
    size_t i;
    int rc, streaming;

    if (len > SERVE_MAX_BODY) {
        send_error(req, 413, "invalid_request_error", NULL, "request_too_large",
                   "request body larger than 8 MiB (the gateway's limit)");
        return 0;
    }
    tok = json_tokener_new();
    if (!tok) {
        send_error(req, 500, "server_error", NULL, NULL, "out of memory");
        return 0;
    }
    j = json_tokener_parse_ex(tok, body, (int)len);
    if (j && tok->char_offset < (int)len) {
        /* trailing bytes after the object: only whitespace is fine */
        for (i = (size_t)tok->char_offset; i < len; i++)
            if (!strchr(" \t\r\n", body[i]))
                break;
        if (i < len) {
            json_object_put(j);
            j = NULL;
        }
    }
    json_tokener_free(tok);
    if (!j || !json_object_is_type(j, json_type_object)) {
        json_object_put(j);
        send_error(req, 400, "invalid_request_error", NULL, "invalid_json",
                   "the request body is not a valid JSON object");
        return 0;
    }
    if (!json_object_object_get_ex(j, "model", &m) ||
        !json_object_is_type(m, json_type_string)) {
        json_object_put(j);
        send_error(req, 400, "invalid_request_error", "model", NULL,
                   "you must provide a model parameter (a string)");
        return 0;
    }
    model = json_object_get_string(m);
    if (strchr(model, ';')) {
        json_object_put(j);
        send_error(req, 400, "invalid_request_error", "model", "invalid_model",
                   "the model may not carry ';' options: name a route of "
                   "the gateway");
        return 0;
    }
    if (!(rt = serve_config_route(&s->cfg, model))) {
        snprintf(msg, sizeof msg,
                 "The model '%s' does not exist on this gateway "
                 "(GET /v1/models lists its routes)",
                 model);
        json_object_put(j);
        send_error(req, 404, "invalid_request_error", "model",
                   "model_not_found", msg);
        return 0;
    }
    streaming = json_object_object_get_ex(j, "stream", &st) &&
                json_object_get_boolean(st);
    json_object_put(j);

    rc = llmux_request_new_json(&lr, rt->specs[0], body, len);
    for (i = 1; !rc && i < rt->n_specs; i++)
        rc = llmux_request_add_fallback(lr, rt->specs[i]);
    if (!rc && !(p = calloc(1, sizeof *p)))
        rc = LLMUX_ENOMEM;
    if (rc) {
        const char *type;
        int code = status_of(rc, 0, &type);
        send_error(req, code, type, NULL, llmux_err_name(rc),
                   lr ? llmux_request_errmsg(lr) : llmux_strerror(rc));
        llmux_request_free(lr);
        return 0;
    }
    p->req = req;
    p->lr = lr;
    p->streaming = streaming;
    rc = llmux_submit(s->client, lr, streaming ? on_chunk : NULL, on_done, p);
    if (rc) {
        const char *type;
        int code = status_of(rc, 0, &type);
        send_error(req, code, type, NULL, llmux_err_name(rc),
                   llmux_request_errmsg(lr));
        llmux_request_free(lr);
        free(p);
        return 0;
    }
    ref = h2o_mem_alloc_shared(&req->pool, sizeof *ref, on_req_dispose);
    *ref = p;
    return 0;
}

/* ---- other endpoints ----------------------------------------------------- */

static void handle_models(serve *s, h2o_req_t *req)
{
    json_object *o = json_object_new_object(), *data = json_object_new_array();
    const char *text;
    size_t i, len;
    for (i = 0; i < s->cfg.n_routes; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "id",
                               json_object_new_string(s->cfg.routes[i].name));
        json_object_object_add(m, "object", json_object_new_string("model"));
        json_object_object_add(m, "created", json_object_new_int(0));
        json_object_object_add(m, "owned_by", json_object_new_string("llmux"));
        json_object_array_add(data, m);
    }
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", data);
    text = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    send_json(req, 200, text, len);
    json_object_put(o);
}

static int is(h2o_iovec_t v, const char *s)
{
    return h2o_memis(v.base, v.len, s, strlen(s));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    serve *s = ((serve_handler *)self)->s;
    h2o_iovec_t path = req->path_normalized;
    int get = is(req->method, "GET"), post = is(req->method, "POST");
    if (is(path, "/health")) {
        if (!get)
            goto method;
        if (s->closing)
            send_error(req, 503, "api_error", NULL, NULL, "shutting down");
        else
            send_json(req, 200, H2O_STRLIT("{\"status\":\"ok\"}"));
        return 0;
    }
    if (is(path, "/v1/models")) {
        if (!get)
            goto method;
        handle_models(s, req);
        return 0;
    }
    if (is(path, "/v1/chat/completions")) {
        if (!post)
            goto method;
        if (s->closing) {
            send_error(req, 503, "api_error", NULL, NULL, "shutting down");
            return 0;
        }
        return handle_chat(s, req);
    }
    send_error(req, 404, "invalid_request_error", NULL, "not_found",
               "unknown path");
    return 0;
method:
    send_error(req, 405, "invalid_request_error", NULL, "method_not_allowed",
               "method not allowed on this path");
    return 0;
}

/* ---- listening, signals, shutdown ---------------------------------------- */

/* Everything closed: h2o's context can go. */
static void maybe_stop(serve *s)
{
    if (s->closing && s->client_closed && !s->conns)
        uv_stop(&s->loop);
}

/* A connection's handle; h2o takes its `data`. */
typedef struct serve_conn {
    uv_tcp_t tcp;
    serve *s;
} serve_conn;

static void on_conn_closed(uv_handle_t *h)
{
    serve *s = ((serve_conn *)h)->s;
    free(h);
    s->conns--;
    maybe_stop(s);
}

static void on_accept(uv_stream_t *listener, int status)
{
    serve *s = listener->data;
    serve_conn *c;
    uv_tcp_t *conn;
    h2o_socket_t *sock;
    if (status != 0 || s->closing)
        return;
    c = h2o_mem_alloc(sizeof *c);
    c->s = s;
    conn = &c->tcp;
    uv_tcp_init(listener->loop, conn);
    s->conns++;
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed);
    h2o_accept(&s->accept_ctx, sock);
}

/* "HOST:PORT", HOST an IPv4 address, "[IPv6]" or "localhost". */
static int parse_listen(const char *spec, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    char *end;
    long port;
    size_t hl;
    if (!colon)
        return -1;
    hl = (size_t)(colon - spec);
    if (hl == 0 || hl >= sizeof host)
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return -1;
    memcpy(host, spec, hl);
    host[hl] = 0;
    if (!strcmp(host, "localhost"))
        strcpy(host, "127.0.0.1");
    if (host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) ? -1
                                                                           : 0;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) ? -1 : 0;
}

static void on_client_closed(void *userdata)
{
    serve *s = userdata;
    s->client_closed = 1;
    /* h2o's context keeps handles of its own (its queue): stop once the
     * connections are gone and dispose of it after the loop returns */
    maybe_stop(s);
}

static void begin_shutdown(serve *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    /* no keep-alive from now on (h2o_context_request_shutdown() would
     * also arm HTTP/2's graceful timeout, which h2o 2.2 does not unlink
     * before h2o_context_dispose()); idle connections close at h2o's
     * idle timeout (10 s) */
    s->ctx.shutdown_requested = 1;
    /* requests in flight get LLMUX_ECANCELED and so a 503 */
    llmux_client_close(s->client, on_client_closed, s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    begin_shutdown(h->data);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void usage(FILE *f)
{
    fputs("usage: llmux-serve --config FILE [--listen HOST:PORT] "
          "[--port-file F]\n"
          "An OpenAI-compatible gateway: GET /health, GET /v1/models,\n"
          "POST /v1/chat/completions, routed by the config's routes.\n",
          f);
}

int main(int argc, char **argv)
{
    static serve s; /* large; h2o keeps pointers into it */
    const char *config = NULL, *listen_opt = NULL, *port_file = NULL;
    llmux_client_options opts = LLMUX_CLIENT_OPTIONS_INIT;
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    int namelen = sizeof bound, rc, i, port;
    char err[1024], host[64];
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;
    serve_handler *handler;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (i + 1 < argc && !strcmp(argv[i], "--config"))
            config = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--listen"))
            listen_opt = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--port-file"))
            port_file = argv[++i];
        else {
            fprintf(stderr, "llmux serve: unknown or incomplete option '%s'\n",
                    argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "llmux serve: --config FILE is required\n");
        usage(stderr);
        return 2;
    }
    if (serve_config_load(&s.cfg, config, err, sizeof err)) {
        fprintf(stderr, "llmux serve: %s\n", err);
        return 2;
    }
    if (!listen_opt)
        listen_opt = s.cfg.listen ? s.cfg.listen : "127.0.0.1:8080";
    if (parse_listen(listen_opt, &ss)) {
        fprintf(stderr,
                "llmux serve: bad listen address '%s' (want HOST:PORT)\n",
                listen_opt);
        serve_config_free(&s.cfg);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&s.loop);
    opts.loop = &s.loop;
    if ((rc = llmux_client_new(&s.client, &opts))) {
        fprintf(stderr, "llmux serve: cannot create the client: %s\n",
                llmux_strerror(rc));
        serve_config_free(&s.cfg);
        uv_loop_close(&s.loop);
        return 1;
    }

    h2o_config_init(&s.h2o_cfg);
    s.h2o_cfg.max_request_entity_size = SERVE_H2O_MAX_BODY;
    hostconf = h2o_config_register_host(
        &s.h2o_cfg, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    handler = (serve_handler *)h2o_create_handler(pathconf, sizeof *handler);
    handler->super.on_req = on_req;
    handler->s = &s;
    h2o_context_init(&s.ctx, &s.loop, &s.h2o_cfg);
    s.accept_ctx.ctx = &s.ctx;
    s.accept_ctx.hosts = s.h2o_cfg.hosts;

    uv_tcp_init(&s.loop, &s.listener);
    s.listener.data = &s;
    if ((rc = uv_tcp_bind(&s.listener, (struct sockaddr *)&ss, 0)) ||
        (rc = uv_listen((uv_stream_t *)&s.listener, 511, on_accept)) ||
        (rc = uv_tcp_getsockname(&s.listener, (struct sockaddr *)&bound,
                                 &namelen))) {
        fprintf(stderr, "llmux serve: cannot listen on %s: %s\n", listen_opt,
                uv_strerror(rc));
        s.closing = 1;
        uv_close((uv_handle_t *)&s.listener, NULL);
        llmux_client_close(s.client, on_client_closed, &s);
        rc = 1;
        goto out;
    }
    if (bound.ss_family == AF_INET6) {
        char a[48];
        uv_ip6_name((struct sockaddr_in6 *)&bound, a, sizeof a);
        snprintf(host, sizeof host, "[%s]", a);
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    uv_signal_init(&s.loop, &s.sig_term);
    uv_signal_init(&s.loop, &s.sig_int);
    s.sig_term.data = s.sig_int.data = &s;
    uv_signal_start(&s.sig_term, on_signal, SIGTERM);
    uv_signal_start(&s.sig_int, on_signal, SIGINT);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f)) {
            fprintf(stderr, "llmux serve: cannot write %s: %s\n", port_file,
                    strerror(errno));
            begin_shutdown(&s);
            rc = 1;
            goto out;
        }
    }
    fprintf(stderr, "llmux serve: listening on http://%s:%d\n", host, port);
    rc = 0;
out:
    uv_run(&s.loop, UV_RUN_DEFAULT);
    if (!s.client_closed) { /* the loop ran dry first: finish the close */
        llmux_client_close(s.client, on_client_closed, &s);
        uv_run(&s.loop, UV_RUN_DEFAULT);
    }
    h2o_context_dispose(&s.ctx);
    h2o_config_dispose(&s.h2o_cfg);
    uv_run(&s.loop, UV_RUN_NOWAIT);
    uv_walk(&s.loop, close_walk, NULL);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    serve_config_free(&s.cfg);
    llmux_global_cleanup();
    return rc;
}
