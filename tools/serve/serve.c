/* llmux serve: an OpenAI-compatible HTTP gateway in front of llmux.
 * libh2o (built with libuv) serves HTTP on the same libuv loop the llmux
 * client runs on. This file is the server's life: options, listening,
 * accepting, signals and shutdown; serve_http.c routes the requests. */
#define SERVE_INTERNAL
#include "serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <h2o/http1.h>

typedef struct serve_handler {
    h2o_handler_t super;
    serve *s;
} serve_handler;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    return serve_on_req(((serve_handler *)self)->s, req);
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
    h2o_linklist_t link; /* in s->conn_list */
} serve_conn;

static void accept_one(serve *s);

static void on_conn_closed(uv_handle_t *h)
{
    serve *s = ((serve_conn *)h)->s;
    h2o_linklist_unlink(&((serve_conn *)h)->link);
    free(h);
    s->conns--;
    if (s->accept_paused && !s->closing) {
        s->accept_paused = 0; /* the connection libuv holds, then the rest */
        accept_one(s);
    }
    maybe_stop(s);
}

/* limits.max_connections: at the limit, the connection is left with libuv,
 * which then stops polling the listener until uv_accept takes it; later
 * ones wait in the kernel's backlog. A burst so waits (the clients see a
 * slower answer) instead of failing with a 503 its clients would have to
 * retry; the connection that closes next lets the held one in. */
static void on_accept(uv_stream_t *listener, int status)
{
    serve *s = listener->data;
    if (status != 0 || s->closing)
        return;
    if (s->conns >= s->cfg.limits.max_connections) {
        s->accept_paused = 1;
        s->rejected_connections++;
        return;
    }
    accept_one(s);
}

static void accept_one(serve *s)
{
    uv_stream_t *listener = (uv_stream_t *)&s->listener;
    serve_conn *c;
    uv_tcp_t *conn;
    h2o_socket_t *sock;
    c = h2o_mem_alloc(sizeof *c);
    c->s = s;
    conn = &c->tcp;
    uv_tcp_init(listener->loop, conn);
    s->conns++;
    h2o_linklist_insert(&s->conn_list, &c->link);
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

/* The drain is over, or was cut short: close the client (its requests
 * are all done) and give the connections still writing their last bytes
 * a second before they are cut. */
static void on_force_close(uv_timer_t *t)
{
    serve *s = t->data;
    h2o_linklist_t *n;
    /* shutdown(2), not close: h2o owns the sockets; their reads and
     * writes fail and h2o closes them its usual way */
    for (n = s->conn_list.next; n != &s->conn_list; n = n->next) {
        serve_conn *c = H2O_STRUCT_FROM_MEMBER(serve_conn, link, n);
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
}

static void finish_drain(serve *s)
{
    if (s->client_closed || s->draining == 3)
        return;
    s->draining = 3;
    uv_timer_start(&s->drain_timer, on_force_close, 1000, 0);
    llmux_client_close(s->client, on_client_closed, s);
}

void serve_drain_check(serve *s)
{
    if (s->closing && !s->in_flight)
        finish_drain(s);
}

/* drain_timeout passed, or a second signal: what is left is canceled and
 * gets its error answer (503; a stream's last event) */
static void cancel_rest(serve *s, const char *why)
{
    char msg[160];
    if (s->draining >= 2)
        return;
    s->draining = 2;
    uv_timer_stop(&s->drain_timer);
    snprintf(msg, sizeof msg,
             "the gateway is shutting down and canceled this request (%s)",
             why);
    serve_cancel_all(s, 503, "shutting_down", msg);
    /* a request counts until its answer is written: a client that does
     * not read its error gets a second, then its connection is cut */
    uv_timer_start(&s->drain_timer, on_force_close, 1000, 0);
    serve_drain_check(s);
}

static void on_drain_timeout(uv_timer_t *t)
{
    cancel_rest(t->data, "limits.drain_timeout passed");
}

/* SIGTERM/SIGINT: stop accepting, /health answers 503 and new requests
 * get a 503, requests in flight have drain_timeout to finish; a second
 * signal cancels them at once. */
static void begin_shutdown(serve *s)
{
    if (s->closing) {
        fprintf(stderr,
                "llmux serve: second signal: canceling %zu "
                "request(s) in flight\n",
                s->in_flight);
        cancel_rest(s, "a second signal");
        return;
    }
    s->closing = 1;
    s->draining = 1;
    uv_close((uv_handle_t *)&s->listener, NULL);
    /* no keep-alive from now on, and a GOAWAY on every HTTP/2 connection
     * (they close once their streams end; h2o 2.2 arms a timer for it
     * that shutdown_h2_timer() unlinks); the connections waiting for a
     * request close now (serve_apply_idle_timeout says how) */
    h2o_context_request_shutdown(&s->ctx);
    serve_apply_idle_timeout(s, -1);
    if (!s->in_flight) {
        finish_drain(s);
        return;
    }
    fprintf(stderr, "llmux serve: draining %zu request(s) in flight\n",
            s->in_flight);
    uv_timer_start(&s->drain_timer, on_drain_timeout,
                   (uint64_t)s->cfg.limits.drain_timeout_ms, 0);
}

/* h2o 2.2.5's HTTP/2 graceful shutdown links a timer (GOAWAY again after
 * a second) that nothing unlinks when the connections close first, and
 * h2o_context_dispose() asserts that no timer is linked. */
static void shutdown_h2_timer(serve *s)
{
    if (h2o_timeout_is_linked(&s->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
}

static void on_signal(uv_signal_t *h, int signum)
{
    serve *s = h->data;
    if (signum == SIGHUP) {
        if (!s->closing)
            serve_reload(s);
        return;
    }
    begin_shutdown(s);
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
          "An OpenAI-compatible gateway: GET /health, GET /metrics,\n"
          "GET /v1/models,\n"
          "POST /v1/chat/completions, routed by the config's routes.\n",
          f);
}

int llmux_serve_main(int argc, char **argv)
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
    s.config_path = config;
    s.listen_from_cli = listen_opt != NULL;
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
    if (!s.cfg.n_keys && !serve_is_loopback((struct sockaddr *)&ss)) {
        /* anyone who reaches it could spend the providers' keys */
        fprintf(stderr,
                "llmux serve: refusing to listen on %s without keys: "
                "anyone who can reach it could use the upstream providers' "
                "keys; add keys: to %s or listen on 127.0.0.1\n",
                listen_opt, config);
        serve_config_free(&s.cfg);
        return 2;
    }

    if (serve_metrics_init(&s, err, sizeof err)) {
        fprintf(stderr, "llmux serve: %s\n", err);
        serve_config_free(&s.cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&s.loop);
    serve_stall_start(&s.loop);
    opts.loop = &s.loop;
    opts.limits = s.cfg.redis.url; /* redis: the rpm and tpm of the routes'
                                      config strings shared */
    opts.limits_prefix = s.cfg.redis.prefix;
    opts.limits_fallback = s.cfg.redis.fallback;
    opts.cache_max_bytes = s.cfg.limits.cache_max_bytes;
    opts.cache_max_entries = s.cfg.limits.cache_max_entries;
    if (s.cfg.limits.cache_redis) /* every replica's answers shared */
        opts.cache_backend = s.cfg.redis.url;
    if (serve_keys_bind(&s) || !(s.gen = calloc(1, sizeof *s.gen))) {
        fprintf(stderr, "llmux serve: out of memory\n");
        serve_keys_free(&s);
        serve_config_free(&s.cfg);
        uv_loop_close(&s.loop);
        return 1;
    }
    if ((rc = llmux_client_new(&s.client, &opts))) {
        fprintf(stderr, "llmux serve: cannot create the client: %s\n",
                llmux_strerror(rc));
        serve_metrics_free(&s);
        serve_config_free(&s.cfg);
        free(s.gen);
        uv_loop_close(&s.loop);
        return 1;
    }

    h2o_config_init(&s.h2o_cfg);
    /* h2o answers bodies above its own limit itself (a plain-text 413)
     * before the handler runs; set above ours so that up to twice our
     * limit gets the OpenAI-shaped 413 */
    s.h2o_cfg.max_request_entity_size = 2 * s.cfg.limits.max_body;
    /* limits.idle_timeout: between requests on HTTP/1 (h2o also bounds
     * the reading of a request by it), a connection without streams on
     * HTTP/2 */
    s.h2o_cfg.http1.req_timeout =
        serve_idle_timeout_of(s.cfg.limits.idle_timeout_ms);
    s.h2o_cfg.http2.idle_timeout = s.h2o_cfg.http1.req_timeout;
    hostconf = h2o_config_register_host(
        &s.h2o_cfg, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    handler = (serve_handler *)h2o_create_handler(pathconf, sizeof *handler);
    handler->super.on_req = on_req;
    handler->s = &s;
    h2o_context_init(&s.ctx, &s.loop, &s.h2o_cfg);
    s.accept_ctx.ctx = &s.ctx;
    s.accept_ctx.hosts = s.h2o_cfg.hosts;
    /* tls: h2o does the handshake, and HTTP/2 when ALPN picks h2; plain
     * connections get HTTP/1.1, or HTTP/2 with prior knowledge or an
     * Upgrade: h2c (h2o's http1.upgrade_to_http2, on by default) */
    s.accept_ctx.ssl_ctx = s.cfg.tls.ctx;
    h2o_linklist_init_anchor(&s.pendings);
    h2o_linklist_init_anchor(&s.conn_list);
    uv_timer_init(&s.loop, &s.drain_timer);
    s.drain_timer.data = &s;
    serve_deadlines_init(&s, &s.heartbeats);
    serve_deadlines_init(&s, &s.timeouts);
    serve_deadlines_init(&s, &s.stalls);

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
    uv_signal_init(&s.loop, &s.sig_hup);
    s.sig_term.data = s.sig_int.data = s.sig_hup.data = &s;
    uv_signal_start(&s.sig_term, on_signal, SIGTERM);
    uv_signal_start(&s.sig_int, on_signal, SIGINT);
    uv_signal_start(&s.sig_hup, on_signal, SIGHUP);
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
    fprintf(stderr, "llmux serve: listening on %s://%s:%d\n",
            s.cfg.tls.ctx ? "https" : "http", host, port);
    rc = 0;
out:
    uv_run(&s.loop, UV_RUN_DEFAULT);
    serve_stall_report();
    if (!s.client_closed) { /* the loop ran dry first: finish the close */
        llmux_client_close(s.client, on_client_closed, &s);
        uv_run(&s.loop, UV_RUN_DEFAULT);
    }
    shutdown_h2_timer(&s);
    h2o_context_dispose(&s.ctx);
    h2o_config_dispose(&s.h2o_cfg);
    uv_run(&s.loop, UV_RUN_NOWAIT);
    uv_walk(&s.loop, close_walk, NULL);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    serve_keys_free(&s);
    serve_metrics_free(&s);
    serve_config_free(&s.cfg);
    free(s.gen); /* no request holds it now */
    free(s.watch);
    llmux_global_cleanup();
    return rc;
}
