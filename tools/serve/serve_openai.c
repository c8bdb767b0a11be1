/* llmux serve: the endpoints in OpenAI's shapes. A request is decoded
 * with the library's OpenAI-JSON import, submitted on the shared loop, and
 * answered with its OpenAI-shaped serializer (stream:true as server-sent
 * events, relayed chunk by chunk) or OpenAI's error object. */
#define SERVE_INTERNAL
#include "serve.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* One request in flight (chat, text completion or embeddings). Freed once both
 * the llmux done callback has run and h2o has disposed of the HTTP request (the
 * client may leave first: the upstream request is then canceled). */
typedef struct pending {
    h2o_generator_t gen; /* first: h2o hands it back to proceed and stop */
    h2o_req_t *req;      /* NULL once answered or gone */
    llmux_request *lr;
    int done;
    int disposed;
    /* stream:true: SSE events gathered in `buf` while h2o writes `out`
     * (h2o takes one write at a time and reads it until proceed) */
    int streaming, started, sending, final, paused;
    int base64; /* embeddings answered as base64 (encoding_format) */
    int cached; /* looked up in the response cache: x-llmux-cache says */
    char *buf, *out;
    size_t buf_len, buf_cap, out_cap;
    /* keys and limits (serve_keys.c): admitted until released */
    serve *s;
    serve_keystate *ks;   /* a reference, NULL without keys */
    const char *key_name; /* ks's name (NULL = no key): valid until freed */
    double estimate;      /* the tokens reserved at admission */
    llmux_usage usage;    /* the answer's, for tpm */
    int answered;         /* charged: usage is the answer's (-1s: as
                             estimated) */
    int chunked;          /* a chunk reached the client */
    serve_call *call;     /* counted and logged at its end (serve_metrics.c) */
    /* lifecycle (serve_life.c, serve.c): in s->pendings until done; the
     * config generation it was admitted under; an SSE comment after
     * heartbeat_ms without an event; request_timeout; the HTTP/1 socket
     * watched for a hang-up; the answer when the gateway cancels it
     * (abort_status 0: none) */
    h2o_linklist_t link;
    serve_gen *cfg_gen;
    long heartbeat_ms;
    serve_deadline heartbeat, timeout;
    /* a write handed to h2o that the client does not take within
     * stall_ms (limits.idle_timeout) cuts its connection: h2o 2.2 has no
     * write timeout, and a reader that stops would hold its slot and its
     * buffers until shutdown. wreq: the request being written, or NULL */
    long stall_ms;
    serve_deadline stall;
    h2o_req_t *wreq;
    int in_done; /* on_done runs: h2o's dispose may not free it yet */
    int watch_fd;
    int abort_status;
    const char *abort_code;
    char abort_msg[160];
} pending;

/* Above this much waiting for a slow reader, the upstream is paused (a
 * stream holds at most about twice this: what h2o writes, what waits). */
#define SERVE_STREAM_HIGH (256u << 10)

/* ---- chat, text completions, embeddings ---------------------------------- */

static void pending_release(pending *p)
{
    if (p->in_done)
        return; /* on_done releases it at its end */
    if (p->done && p->disposed) {
        serve *s = p->s;
        serve_release(s, p->ks, p->estimate, p->answered ? &p->usage : NULL);
        serve_gen_release(s, p->cfg_gen); /* after: ks may point into it */
        free(p->buf);
        free(p->out);
        free(p);
        serve_drain_check(s); /* s->in_flight is down */
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
static void pending_abort(pending *p, int status, const char *code,
                          const char *message);

static void stall_arm(pending *p, h2o_req_t *req)
{
    p->wreq = req;
    if (p->stall_ms > 0)
        serve_deadline_set(&p->s->stalls, &p->stall,
                           uv_now(&p->s->loop) + (uint64_t)p->stall_ms);
}

static void stall_clear(pending *p)
{
    p->wreq = NULL;
    serve_deadline_clear(&p->stall);
}

/* The client took nothing of a write for stall_ms: stop the upstream and
 * cut the connection (shutdown(2): h2o owns the socket, and its failed
 * write disposes of the request its usual way). Over HTTP/2 this cuts
 * the connection's other streams too: h2o 2.2 lets a handler reset none. */
static void on_stall(serve_deadline *d)
{
    pending *p = H2O_STRUCT_FROM_MEMBER(pending, stall, d);
    h2o_req_t *req = p->wreq;
    h2o_socket_t *sock;
    int fd;
    p->wreq = NULL;
    pending_abort(p, 504, "client_stalled",
                  "the client read nothing for limits.idle_timeout");
    if (req && req->conn->callbacks->get_socket &&
        (sock = req->conn->callbacks->get_socket(req->conn)) &&
        (fd = h2o_socket_get_fd(sock)) >= 0)
        shutdown(fd, SHUT_RDWR);
}

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
    stall_arm(p, p->req);
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
    stall_clear(p);
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

/* x-llmux-cache on an answer the response cache was asked for: `hit`
 * (cached 1) or `miss`. */
static void cache_header(pending *p, h2o_req_t *req, int cached)
{
    if (p->cached)
        h2o_add_header_by_str(&req->pool, &req->res.headers,
                              H2O_STRLIT("x-llmux-cache"), 0, NULL,
                              cached ? "hit" : "miss", cached ? 3 : 4);
}

/* The stream's headers; `cached`: its answer is the cache's replay. */
static void sse_start(pending *p, int cached)
{
    h2o_req_t *req = p->req;
    p->started = 1;
    cache_header(p, req, cached);
    serve_call_first_byte(p->call);
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

/* An event went out (or the stream started): the heartbeat waits anew. */
static void heartbeat_rearm(pending *p)
{
    if (p->heartbeat_ms > 0)
        serve_deadline_set(&p->s->heartbeats, &p->heartbeat,
                           uv_now(&p->s->loop) + (uint64_t)p->heartbeat_ms);
}

/* No event for heartbeat_ms: an SSE comment, which clients skip and
 * proxies count as traffic. It also starts a stream whose first chunk is
 * slow to come. */
static void on_heartbeat(serve_deadline *d)
{
    pending *p = H2O_STRUCT_FROM_MEMBER(pending, heartbeat, d);
    if (!p->req || p->final)
        return;
    if (!p->started)
        sse_start(p, 0); /* a replay never waits for its first chunk */
    if (sse_append(p, ": keep-alive\n\n", 14, "", 0) == 0)
        sse_flush(p);
    heartbeat_rearm(p);
}

/* The gateway cancels the request; on_done answers with this. */
static void pending_abort(pending *p, int status, const char *code,
                          const char *message)
{
    if (p->done || p->abort_status)
        return;
    p->abort_status = status;
    p->abort_code = code;
    snprintf(p->abort_msg, sizeof p->abort_msg, "%s", message);
    llmux_request_cancel(p->lr);
}

static void on_request_timeout(serve_deadline *d)
{
    pending *p = H2O_STRUCT_FROM_MEMBER(pending, timeout, d);
    char msg[160];
    snprintf(msg, sizeof msg,
             "the request took longer than the gateway's limit of %ld ms "
             "(limits.request_timeout)",
             p->cfg_gen == p->s->gen
                 ? p->s->cfg.limits.request_timeout_ms
                 : p->cfg_gen->cfg.limits.request_timeout_ms);
    pending_abort(p, 504, "request_timeout", msg);
}

void serve_pending_client_left(void *pending_)
{
    pending_abort(pending_, 499, "client_closed_request",
                  "the client closed the connection before the answer");
}

void serve_cancel_all(serve *s, int status, const char *code,
                      const char *message)
{
    h2o_linklist_t *n, *next;
    /* done callbacks run from the loop, never inside the cancel */
    for (n = s->pendings.next; n != &s->pendings; n = next) {
        next = n->next;
        pending_abort(H2O_STRUCT_FROM_MEMBER(pending, link, n), status, code,
                      message);
    }
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
    p->chunked = 1;
    if (!p->started)
        sse_start(p, llmux_chunk_cached(ch));
    rc = sse_append(p, "data: ", 6, json, strlen(json)) ||
         sse_append(p, "\n\n", 2, "", 0);
    llmux_free(json);
    if (rc)
        return 1;
    sse_flush(p);
    heartbeat_rearm(p);
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
    stall_clear(p);
    serve_unwatch_client(p->s, p->watch_fd, NULL);
    p->watch_fd = -1;
    if (!p->done)
        llmux_request_cancel(p->lr); /* nobody to answer: stop paying */
    pending_release(p);
}

/* The embeddings list `json` (llmux_response_to_json's, freed here) with
 * each embedding as OpenAI's encoding_format "base64" has it: the
 * little-endian float32 bytes, base64. NULL without memory. */
static char *embeddings_base64(char *json)
{
    json_object *o = json_tokener_parse(json), *data, *e, *v;
    char *out = NULL;
    size_t i, k, n;
    llmux_free(json);
    if (!o || !json_object_object_get_ex(o, "data", &data))
        goto done;
    for (i = 0; i < json_object_array_length(data); i++) {
        unsigned char *raw;
        char *b64;
        e = json_object_array_get_idx(data, i);
        if (!json_object_object_get_ex(e, "embedding", &v) ||
            !json_object_is_type(v, json_type_array))
            continue;
        n = json_object_array_length(v);
        raw = malloc(n * 4 + 1);
        b64 = malloc(h2o_base64_encode_capacity(n * 4));
        if (!raw || !b64) {
            free(raw);
            free(b64);
            goto done;
        }
        for (k = 0; k < n; k++) {
            float f =
                (float)json_object_get_double(json_object_array_get_idx(v, k));
            uint32_t u;
            memcpy(&u, &f, 4);
            raw[k * 4] = (unsigned char)u;
            raw[k * 4 + 1] = (unsigned char)(u >> 8);
            raw[k * 4 + 2] = (unsigned char)(u >> 16);
            raw[k * 4 + 3] = (unsigned char)(u >> 24);
        }
        h2o_base64_encode(b64, raw, n * 4, 0);
        json_object_object_add(e, "embedding", json_object_new_string(b64));
        free(raw);
        free(b64);
    }
    out = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
done:
    json_object_put(o);
    return out;
}

static void on_done(llmux_request *lr, int status, llmux_response *res,
                    void *userdata)
{
    pending *p = userdata;
    h2o_req_t *req = p->req;
    serve_call_upstream(p->call, lr, status, res);
    serve *s = p->s;
    p->in_done = 1;
    p->done = 1;
    p->lr = NULL;
    /* tpm: an answer, or a stream that sent part of one before it failed
     * or its reader left, is charged (its usage, else the estimate); a
     * request that delivered nothing, or the response cache's answer (no
     * provider tokens spent), is refunded */
    if ((status == 0 || p->chunked) && res && !llmux_response_cached(res)) {
        p->usage = *llmux_response_usage(res);
        p->answered = 1;
    }
    serve_deadline_clear(&p->heartbeat);
    serve_deadline_clear(&p->timeout);
    serve_unwatch_client(s, p->watch_fd, req);
    p->watch_fd = -1;
    h2o_linklist_unlink(&p->link);
    if (p->abort_status && status == LLMUX_ECANCELED) {
        /* canceled by the gateway: say why, as the last event of a
         * stream or as the answer; and no next request on this
         * connection (a client gone may have pipelined some, read by the
         * hang-up watch into h2o's buffer: they must not go upstream) */
        if (req)
            req->http1_is_persistent = 0;
        char *json =
            serve_error_json("api_error", NULL, p->abort_code, p->abort_msg);
        if (req && p->started) {
            if (json && !sse_append(p, "data: ", 6, json, strlen(json)))
                sse_append(p, "\n\n", 2, "", 0);
            p->final = 1;
            sse_flush(p);
        } else if (req) {
            p->req = NULL;
            serve_send_error(req, p->abort_status, "api_error", NULL,
                             p->abort_code, p->abort_msg);
        }
        free(json);
    } else if (req && p->started) {
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
            sse_start(p, llmux_response_cached(res));
            sse_append(p, "data: [DONE]\n\n", 14, "", 0);
            p->final = 1;
            sse_flush(p);
        } else if (status == 0) {
            char *json = llmux_response_to_json(res);
            cache_header(p, req, llmux_response_cached(res));
            if (json && p->base64)
                json = embeddings_base64(json); /* now ours: free() */
            if (json)
                serve_send_json(req, 200, json, strlen(json));
            else
                serve_send_error(req, 500, "server_error", NULL, NULL,
                                 "out of memory");
            if (p->base64)
                free(json);
            else
                llmux_free(json);
        } else {
            serve_send_failure(req, status, res);
        }
    }
    /* an answer sent whole: its write has the same bound as a stream's */
    if (req && !p->disposed && !p->wreq)
        stall_arm(p, req);
    p->in_done = 0;
    pending_release(p);
}

/* A request the library would not make or take (rc). With passthrough a
 * bad or unknown provider in the client's model is the client's to fix. */
static void send_refusal(h2o_req_t *req, int rc, llmux_request *lr,
                         int passthrough)
{
    const char *type, *msg = lr && *llmux_request_errmsg(lr)
                                 ? llmux_request_errmsg(lr)
                                 : llmux_strerror(rc);
    char buf[256];
    int code = serve_status_of(rc, 0, &type);
    if (passthrough && (rc == LLMUX_ECONFIG || rc == LLMUX_ENOPROVIDER)) {
        code = 400;
        type = "invalid_request_error";
        if (rc == LLMUX_ENOPROVIDER) { /* the library's names paths */
            snprintf(buf, sizeof buf,
                     "provider '%s' is not available on this gateway",
                     llmux_request_provider(lr) ? llmux_request_provider(lr)
                                                : "");
            msg = buf;
        }
    } else
        passthrough = 0;
    serve_send_error(req, code, type, passthrough ? "model" : NULL,
                     serve_code_of(rc), msg);
}

/* Whether the client asked not to be answered from a cache:
 * Cache-Control with no-cache or no-store among its directives (any
 * case). */
static int client_bypasses(h2o_req_t *req)
{
    ssize_t at = -1;
    while ((at = h2o_find_header(&req->headers, H2O_TOKEN_CACHE_CONTROL, at)) !=
           -1) {
        const h2o_iovec_t *v = &req->headers.entries[at].value;
        size_t i;
        for (i = 0; i + 8 <= v->len; i++)
            if (!strncasecmp(v->base + i, "no-cache", 8) ||
                !strncasecmp(v->base + i, "no-store", 8))
                return 1;
    }
    return 0;
}

/* The response cache for lr: the route's `cache:` TTL, unless the client
 * bypasses it, which also overrides a `cache=` in the route's config
 * string. *cached: looked up (the answer says hit or miss). 0 or the
 * library's code. */
static int cache_choice(h2o_req_t *req, const serve_route *rt,
                        llmux_request *lr, int *cached)
{
    char ttl[32];
    if (client_bypasses(req))
        return llmux_request_set_option(lr, "cache", "no");
    if (!rt || rt->cache_ttl_ms <= 0)
        return 0;
    snprintf(ttl, sizeof ttl, "%ld.%03ld", rt->cache_ttl_ms / 1000,
             rt->cache_ttl_ms % 1000);
    *cached = 1;
    return llmux_request_set_option(lr, "cache", ttl);
}

int serve_handle_op(serve *s, h2o_req_t *req, llmux_op op)
{
    const char *body = req->entity.base ? req->entity.base : "";
    size_t len = req->entity.base ? req->entity.len : 0;
    json_tokener *tok;
    json_object *j, *m, *st, *mt, *ef;
    const serve_route *rt;
    llmux_request *lr = NULL;
    pending *p = NULL, **ref;
    serve_keystate *ks;
    double estimate;
    const char *model;
    char msg[512];
    size_t i;
    int rc, streaming, base64, cached = 0;

    if (len > s->cfg.limits.max_body) {
        snprintf(msg, sizeof msg,
                 "the request body (%zu bytes) is larger than the gateway's "
                 "limit of %zu bytes (limits.max_body)",
                 len, s->cfg.limits.max_body);
        s->rejected_body++;
        serve_send_error(req, 413, "invalid_request_error", NULL,
                         "request_too_large", msg);
        return 0;
    }
    tok = json_tokener_new();
    /* what a client sends is checked as UTF-8 here, so that nothing the
     * gateway echoes or logs carries invalid bytes */
    if (tok)
        json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    if (!tok) {
        serve_send_error(req, 500, "server_error", NULL, NULL, "out of memory");
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
        serve_send_error(req, 400, "invalid_request_error", NULL,
                         "invalid_json",
                         "the request body is not a valid JSON object");
        return 0;
    }
    if (!json_object_object_get_ex(j, "model", &m) ||
        !json_object_is_type(m, json_type_string)) {
        json_object_put(j);
        serve_send_error(req, 400, "invalid_request_error", "model", NULL,
                         "you must provide a model parameter (a string)");
        return 0;
    }
    model = json_object_get_string(m);
    /* a NUL would hide what follows it (";api_key_env=...") from the
     * checks; ';' options would let a client choose endpoints, keys or
     * TLS settings */
    if ((size_t)json_object_get_string_len(m) != strlen(model) ||
        strlen(model) > 256 || strchr(model, ';')) {
        const char *why = strchr(model, ';')
                              ? "the model may not carry ';' options: name a "
                                "route of the gateway"
                              : "the model must be a name of at most 256 "
                                "bytes without NUL";
        json_object_put(j); /* model points into it */
        serve_send_error(req, 400, "invalid_request_error", "model",
                         "invalid_model", why);
        return 0;
    }
    if (!(rt = serve_config_route(&s->cfg, model)) &&
        !(s->cfg.passthrough && strchr(model, '/'))) {
        snprintf(msg, sizeof msg,
                 "The model '%s' does not exist on this gateway "
                 "(GET /v1/models lists its routes%s)",
                 model, s->cfg.passthrough ? "; or name a provider/model" : "");
        json_object_put(j);
        serve_send_error(req, 404, "invalid_request_error", "model",
                         "model_not_found", msg);
        return 0;
    }
    /* a passthrough model is labelled as such: a label per model a client
     * makes up would grow /metrics without bound */
    serve_call_route(req, rt ? rt->name : "passthrough");
    /* embeddings never stream: the library refuses "stream" for them */
    streaming = op != LLMUX_OP_EMBED &&
                json_object_object_get_ex(j, "stream", &st) &&
                json_object_get_boolean(st);
    base64 = op == LLMUX_OP_EMBED &&
             json_object_object_get_ex(j, "encoding_format", &ef) &&
             json_object_is_type(ef, json_type_string) &&
             !strcmp(json_object_get_string(ef), "base64");
    /* tpm's reservation: the body's bytes / 4 for the prompt (a common
     * estimate of tokens), plus the completion's cap when one is given */
    estimate = (double)len / 4;
    if ((json_object_object_get_ex(j, "max_completion_tokens", &mt) ||
         json_object_object_get_ex(j, "max_tokens", &mt)) &&
        json_object_is_type(mt, json_type_int) && json_object_get_int64(mt) > 0)
        estimate += (double)json_object_get_int64(mt);
    if (serve_admit(s, req, model, estimate, &ks)) {
        json_object_put(j);
        return 0;
    }
    json_object_put(j);

    /* passthrough: the JSON's own "provider/model" (the library refuses
     * options in it too) */
    rc = llmux_request_new_json_op(&lr, op, rt ? rt->specs[0] : NULL, body, len,
                                   0);
    for (i = 1; !rc && rt && i < rt->n_specs; i++)
        rc = llmux_request_add_fallback(lr, rt->specs[i]);
    if (!rc && serve_keystate_budget(ks) > 0) {
        /* the key's budget, in the library's scope "key:NAME": with
         * redis: every replica shares its total */
        char scope[160];
        snprintf(scope, sizeof scope, "key:%s", serve_keystate_name(ks));
        rc = llmux_request_set_budget(lr, scope, serve_keystate_budget(ks),
                                      serve_keystate_budget_window(ks));
    }
    if (!rc)
        rc = cache_choice(req, rt, lr, &cached);
    if (!rc && !(p = calloc(1, sizeof *p)))
        rc = LLMUX_ENOMEM;
    if (rc) {
        send_refusal(req, rc, lr, !rt);
        llmux_request_free(lr);
        serve_release(s, ks, estimate, NULL);
        return 0;
    }
    p->req = req;
    p->s = s;
    p->ks = ks;
    p->key_name = serve_keystate_name(ks);
    p->estimate = estimate;
    p->lr = lr;
    p->streaming = streaming;
    p->base64 = base64;
    p->cached = cached;
    serve_call_key(req, p->key_name);
    p->call = serve_call_hold(req);
    p->watch_fd = -1;
    rc = llmux_submit(s->client, lr, streaming ? on_chunk : NULL, on_done, p);
    if (rc) {
        serve_call_upstream(p->call, lr, rc, NULL);
        send_refusal(req, rc, lr, !rt);
        llmux_request_free(lr);
        free(p);
        serve_release(s, ks, estimate, NULL);
        return 0;
    }
    ref = h2o_mem_alloc_shared(&req->pool, sizeof *ref, on_req_dispose);
    *ref = p;
    /* in flight: the drain waits for it, and it keeps its config */
    p->cfg_gen = serve_gen_hold(s);
    h2o_linklist_insert(&s->pendings, &p->link);
    p->heartbeat.cb = on_heartbeat;
    p->timeout.cb = on_request_timeout;
    p->stall.cb = on_stall;
    p->stall_ms = s->cfg.limits.idle_timeout_ms;
    if (streaming && (p->heartbeat_ms = s->cfg.limits.heartbeat_ms) > 0)
        heartbeat_rearm(p);
    if (s->cfg.limits.request_timeout_ms > 0)
        serve_deadline_set(&s->timeouts, &p->timeout,
                           uv_now(&s->loop) +
                               (uint64_t)s->cfg.limits.request_timeout_ms);
    if (!streaming)
        p->watch_fd = serve_watch_client(s, req, p);
    return 0;
}

/* ---- other endpoints ----------------------------------------------------- */

void serve_handle_models(serve *s, h2o_req_t *req)
{
    json_object *o = json_object_new_object(), *data = json_object_new_array();
    const char *text;
    size_t i, len;
    for (i = 0; i < s->cfg.n_routes; i++) {
        json_object *m;
        if (!serve_key_allows(s, s->auth, s->cfg.routes[i].name))
            continue; /* only the routes the key may use */
        m = json_object_new_object();
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
    serve_send_json(req, 200, text, len);
    json_object_put(o);
}
