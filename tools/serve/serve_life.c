/* llmux serve: the gateway's lifecycle helpers. Config generations and
 * the SIGHUP reload, the deadline lists behind heartbeats and
 * request_timeout, h2o's idle timeouts (also how shutdown closes idle
 * keep-alive connections at once), and watching an HTTP/1 client for a
 * hang-up while its answer is being made. serve.c drives the shutdown. */
#define SERVE_INTERNAL
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config generations and reload --------------------------------------- */

serve_gen *serve_gen_hold(serve *s)
{
    s->gen->refs++;
    return s->gen;
}

void serve_gen_release(serve *s, serve_gen *g)
{
    if (--g->refs == 0 && g != s->gen) {
        serve_config_free(&g->cfg);
        free(g);
    }
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* Swaps what a reload cannot change (the bound address; TLS on or off;
 * redis:, the client's options)
 * between the running config and the new one, so that the running values
 * go on in s->cfg and the new ones are freed with the old config; a
 * second call undoes it. */
static void swap_fixed(serve_config *a, serve_config *b, int tls)
{
    char *l = a->listen;
    serve_redis r = a->redis; /* the client's, set when it was made */
    a->redis = b->redis;
    b->redis = r;
    a->listen = b->listen;
    b->listen = l;
    if (tls) {
        serve_tls t = a->tls;
        a->tls = b->tls;
        b->tls = t;
    }
}

void serve_reload(serve *s)
{
    serve_config next, old;
    serve_gen *gen = NULL;
    struct sockaddr_storage bound;
    int namelen = sizeof bound;
    char err[1024];
    int log_changed, tls_fixed;
    memset(&next, 0, sizeof next);
    if (serve_config_load(&next, s->config_path, err, sizeof err)) {
        fprintf(stderr,
                "llmux serve: reload refused, the running config stays: %s\n",
                err);
        return;
    }
    if (!next.n_keys &&
        (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound,
                            &namelen) ||
         !serve_is_loopback((struct sockaddr *)&bound))) {
        fprintf(stderr,
                "llmux serve: reload refused, the running config stays: %s "
                "has no keys and the gateway listens beyond loopback\n",
                s->config_path);
        serve_config_free(&next);
        return;
    }
    if (s->gen->refs && !(gen = calloc(1, sizeof *gen))) {
        fprintf(stderr, "llmux serve: reload refused: out of memory\n");
        serve_config_free(&next);
        return;
    }
    /* the socket is bound once: keep naming the address in use */
    if (!s->listen_from_cli && !same_str(next.listen, s->cfg.listen))
        fprintf(stderr,
                "llmux serve: reload: listen changed to %s; that needs a "
                "restart (still listening on %s)\n",
                next.listen ? next.listen : "the default",
                s->cfg.listen ? s->cfg.listen : "the default");
    /* so is the listener's protocol: a certificate can change, not
     * whether there is one */
    tls_fixed = !next.tls.ctx != !s->cfg.tls.ctx;
    if (tls_fixed)
        fprintf(stderr,
                "llmux serve: reload: tls turned %s; that needs a restart "
                "(still serving %s)\n",
                next.tls.ctx ? "on" : "off", s->cfg.tls.ctx ? "https" : "http");
    if (!same_str(next.redis.url, s->cfg.redis.url) ||
        !same_str(next.redis.prefix, s->cfg.redis.prefix) ||
        !same_str(next.redis.fallback, s->cfg.redis.fallback))
        fprintf(stderr, "llmux serve: reload: redis changed; that needs a "
                        "restart (the limits go on as at start)\n");
    swap_fixed(&next, &s->cfg, tls_fixed);
    /* the client's response cache is sized and placed once */
    if (next.limits.cache_max_bytes != s->cfg.limits.cache_max_bytes ||
        next.limits.cache_max_entries != s->cfg.limits.cache_max_entries ||
        next.limits.cache_redis != s->cfg.limits.cache_redis) {
        fprintf(stderr,
                "llmux serve: reload: limits.cache_max_bytes, "
                "cache_max_entries or cache_backend changed; that needs a "
                "restart (the cache keeps %zu bytes and %zu entries, %s)\n",
                s->cfg.limits.cache_max_bytes, s->cfg.limits.cache_max_entries,
                s->cfg.limits.cache_redis ? "in Redis" : "in this process");
        next.limits.cache_max_bytes = s->cfg.limits.cache_max_bytes;
        next.limits.cache_max_entries = s->cfg.limits.cache_max_entries;
        next.limits.cache_redis = s->cfg.limits.cache_redis;
    }

    /* The one swap point. What is derived from the config is rebuilt
     * from s->cfg here: the keys' states (kept by name, so that a key
     * keeps its buckets); the access log is reopened below (rotation). */
    old = s->cfg;
    s->cfg = next;
    if (serve_keys_bind(s)) {
        next = s->cfg;
        s->cfg = old;
        swap_fixed(&next, &s->cfg, tls_fixed);
        serve_config_free(&next);
        free(gen);
        fprintf(stderr, "llmux serve: reload refused: out of memory\n");
        return;
    }
    /* Requests in flight hold the old generation (their routes point
     * into it) and free it when the last one is released. */
    log_changed = !same_str(old.access_log, s->cfg.access_log);
    if (gen) {
        s->gen->cfg = old;
        s->gen = gen;
    } else
        serve_config_free(&old);
    if (log_changed)
        fprintf(stderr, "llmux serve: reload: log.access changed; that needs a "
                        "restart (still logging as at start)\n");
    if (serve_log_reopen(s, err, sizeof err))
        fprintf(stderr,
                "llmux serve: reload: cannot reopen the access log "
                "(it goes on where it was): %s\n",
                err);
    /* applied to new requests and connections: a new certificate too
     * (a TLS connection holds a reference on the SSL_CTX it began with) */
    s->accept_ctx.ssl_ctx = s->cfg.tls.ctx;
    s->h2o_cfg.max_request_entity_size = 2 * s->cfg.limits.max_body;
    serve_apply_idle_timeout(s, s->cfg.limits.idle_timeout_ms);
    fprintf(stderr, "llmux serve: reloaded %s (%zu routes, %zu keys)\n",
            s->config_path, s->cfg.n_routes, s->cfg.n_keys);
}

/* ---- deadlines ----------------------------------------------------------- */

#define DEADLINE_OF(node) H2O_STRUCT_FROM_MEMBER(serve_deadline, link, node)

static void deadlines_arm(serve_deadlines *dl);

static void on_deadlines(uv_timer_t *t)
{
    serve_deadlines *dl = t->data;
    uint64_t now = uv_now(t->loop);
    while (!h2o_linklist_is_empty(&dl->list)) {
        serve_deadline *d = DEADLINE_OF(dl->list.next);
        if (d->at > now)
            break;
        h2o_linklist_unlink(&d->link);
        d->cb(d); /* may set deadlines again */
    }
    deadlines_arm(dl);
}

static void deadlines_arm(serve_deadlines *dl)
{
    uint64_t now = uv_now(dl->timer.loop), at;
    if (h2o_linklist_is_empty(&dl->list)) {
        uv_timer_stop(&dl->timer);
        return;
    }
    at = DEADLINE_OF(dl->list.next)->at;
    uv_timer_start(&dl->timer, on_deadlines, at > now ? at - now : 0, 0);
}

void serve_deadlines_init(serve *s, serve_deadlines *dl)
{
    uv_timer_init(&s->loop, &dl->timer);
    dl->timer.data = dl;
    h2o_linklist_init_anchor(&dl->list);
}

void serve_deadlines_close(serve_deadlines *dl)
{
    if (!uv_is_closing((uv_handle_t *)&dl->timer))
        uv_close((uv_handle_t *)&dl->timer, NULL);
}

void serve_deadline_set(serve_deadlines *dl, serve_deadline *d, uint64_t at)
{
    h2o_linklist_t *pos;
    serve_deadline_clear(d); /* first: it may be the last */
    pos = dl->list.prev;
    d->at = at;
    /* from the latest back: one step when all use the same timeout */
    while (pos != &dl->list && DEADLINE_OF(pos)->at > at)
        pos = pos->prev;
    h2o_linklist_insert(pos->next, &d->link);
    if (dl->list.next == &d->link)
        deadlines_arm(dl);
    /* a deadline removed from the head leaves the timer early: it fires,
     * finds nothing due and re-arms */
}

void serve_deadline_clear(serve_deadline *d)
{
    if (h2o_linklist_is_linked(&d->link))
        h2o_linklist_unlink(&d->link);
}

/* ---- h2o's idle timeouts ------------------------------------------------- */

/* h2o 2.2.5 keeps a connection between requests (and while it reads one)
 * on ctx.http1.req_timeout, and an HTTP/2 connection without streams on
 * ctx.http2.idle_timeout: lists in arrival order, checked against
 * `timeout` when their timer fires. Changing `timeout` and running the
 * lists now applies a new value to the connections already waiting; 0
 * closes every idle one at once, which is how the shutdown gets rid of
 * keep-alive connections without waiting out the idle timeout
 * (h2o_context_request_shutdown() only turns keep-alive off and sends
 * HTTP/2 GOAWAYs; 2.2.5 has no way to close idle HTTP/1 connections).
 * Connections answering a request are on no list and are not touched. */
void serve_apply_idle_timeout(serve *s, long ms)
{
    uint64_t now = h2o_now(&s->loop), t = serve_idle_timeout_of(ms);
    s->ctx.http1.req_timeout.timeout = t;
    s->ctx.http2.idle_timeout.timeout = t;
    /* a longer value: h2o's timer fires early, finds nothing due and
     * re-arms by the new one; a shorter one: what is now due goes here,
     * the rest when h2o's timer fires. (h2o computes now - timeout in
     * unsigned: run the lists only when that does not wrap.) */
    if (now >= t) {
        h2o_timeout_run(&s->loop, &s->ctx.http1.req_timeout, now);
        h2o_timeout_run(&s->loop, &s->ctx.http2.idle_timeout, now);
    }
}

uint64_t serve_idle_timeout_of(long ms)
{
    /* 0 is off: a year (h2o takes 0 as "at once", which is what the
     * shutdown's -1 asks for) */
    if (ms < 0)
        return 0;
    return ms > 0 ? (uint64_t)ms : (uint64_t)365 * 24 * 3600 * 1000;
}

/* ---- a client leaving a plain request ------------------------------------ */

/* h2o 2.2's HTTP/1 stops reading a connection once a request is complete
 * and reads again after the answer, so a client that leaves while a
 * non-streamed answer is being made is noticed only when the answer is
 * written, after the upstream was paid for. While the request is
 * answered the gateway reads the socket itself (h2o_socket_read_start()
 * with its own callback: h2o's socket API, so TLS works too): end of
 * file or an error means the client is gone and its upstream request is
 * canceled at once (what nginx does by default, answering 499).
 * Bytes that arrive meanwhile (a pipelined request) stay in the socket's
 * input buffer, where h2o finds them when it reads again; past 64 KiB the
 * gateway stops reading. A client that half-closes its side after the
 * request and still waits for the answer is taken as gone: HTTP/1 has no
 * way to tell, and no common client does that. HTTP/2 needs none of this
 * (h2o reads its connections and frees a stream's request when the
 * client resets it). The callback has no user pointer, and h2o's
 * socket's `data` is its connection, so the pending request is found by
 * the socket's fd in s->watch; one server per process. */
static serve *watch_server;

static void on_client_read(h2o_socket_t *sock, const char *err)
{
    serve *s = watch_server;
    int fd = h2o_socket_get_fd(sock);
    void *p;
    if (!err) {
        if (sock->input->size > (64u << 10))
            h2o_socket_read_stop(sock);
        return;
    }
    h2o_socket_read_stop(sock);
    if (fd < 0 || (size_t)fd >= s->n_watch || !(p = s->watch[fd]))
        return;
    s->watch[fd] = NULL;
    serve_pending_client_left(p);
}

int serve_watch_client(serve *s, h2o_req_t *req, void *pending)
{
    h2o_socket_t *sock;
    int fd;
    if (req->version >= 0x200 || !req->conn->callbacks->get_socket ||
        !(sock = req->conn->callbacks->get_socket(req->conn)) ||
        (fd = h2o_socket_get_fd(sock)) < 0)
        return -1;
    if ((size_t)fd >= s->n_watch) {
        size_t n = s->n_watch ? s->n_watch : 256;
        void **w;
        while (n <= (size_t)fd)
            n *= 2;
        if (!(w = realloc(s->watch, n * sizeof *w)))
            return -1;
        memset(w + s->n_watch, 0, (n - s->n_watch) * sizeof *w);
        s->watch = w;
        s->n_watch = n;
    }
    watch_server = s;
    s->watch[fd] = pending;
    h2o_socket_read_start(sock, on_client_read);
    return fd;
}

void serve_unwatch_client(serve *s, int fd, h2o_req_t *req)
{
    h2o_socket_t *sock;
    if (fd < 0)
        return;
    s->watch[fd] = NULL;
    /* h2o expects the socket as it left it: not reading */
    if (req && (sock = req->conn->callbacks->get_socket(req->conn)))
        h2o_socket_read_stop(sock);
}
