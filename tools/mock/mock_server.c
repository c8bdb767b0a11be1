/*
 * mock_server.c: the mock provider server's HTTP/1.1 engine on libuv.
 *
 * One mock_conn per accepted socket: http_parser reads a request (bounded
 * size), the parser is paused at the end of each message so a response is
 * produced before the next request is parsed (pipelined input is kept in
 * `pending`), and persistent connections are honoured. Each non-control
 * request is recorded, its fault is resolved (X-Mock-Fault header, then a
 * "model#spec" suffix, then the FIFO script, then fault_all), it is routed
 * by path suffix through the protocol table to a handler that builds a
 * mock_reply, and the response engine sends that reply: after the latency
 * or delay_ms, whole bodies with Content-Length, streams chunked with
 * chunk_delay_ms between events, and stalls, cuts, resets (RST) and
 * truncations on request. With accept_delay_ms, a new connection is
 * accepted from a timer (libuv stops accepting until uv_accept is
 * called). Every handle is closed through uv_close (a reset through
 * uv_tcp_close_reset) and memory is freed in the close callbacks.
 */
#include "mock_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MOCK_READ_BUF 65536
#define MOCK_BACKLOG  4096
#define MOCK_DRAIN_MS 2000 /* wait for the client's FIN after ours */

/* The protocols; the first is the default for other paths and errors. */
static const mock_protocol *const mock_protocols[] = {
    &llmux__mock_openai, &llmux__mock_mistral, &llmux__mock_ollama,
    &llmux__mock_aleph,  &llmux__mock_azure,
};
#define N_PROTOCOLS (sizeof(mock_protocols) / sizeof(mock_protocols[0]))

/* A record with its owned storage; pub points into it. */
typedef struct mock_record {
    llmux_mock_record pub;
    char *method;
    char *path;
    llmux_mock_header *headers;
    size_t n_headers;
    char *body;
} mock_record;

typedef struct mock_conn mock_conn;

enum mock_end { END_NORMAL = 0, END_STALL, END_CUT, END_RESET };

/* What follows a write once it completed. */
enum mock_then { THEN_MORE = 0, THEN_DONE, THEN_RESET };

struct llmux_mock {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    llmux_mock_options opts;
    char *host;
    mock_conn *conns;
    mock_record **records;
    size_t n_records, cap_records;
    char **script; /* FIFO of fault specs: [script_head, script_len) */
    size_t script_head, script_len, script_cap;
    char *fault_all;
    unsigned long seq;
    int in_flight, max_concurrent;
    int closing, listener_closed;
    uv_timer_t accept_timer; /* slow accept; initialised when delay > 0 */
    int accept_timer_open;   /* initialised and its close not yet done */
    void (*on_closed)(void *);
    void *closed_ud;
    struct mock_store *store; /* batch files and jobs (mock_batch.c) */
    char readbuf[MOCK_READ_BUF];
};

struct mock_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    llmux_mock *m;
    mock_conn *prev, *next;
    http_parser parser;
    int open_handles;
    unsigned closing : 1;    /* uv_close called */
    unsigned draining : 1;   /* FIN sent or queued; input is ignored */
    unsigned responding : 1; /* a request is being answered */
    unsigned counted : 1;    /* counted in m->in_flight */
    unsigned keep_alive : 1;
    unsigned last_was_value : 1;
    unsigned too_many_headers : 1;
    int reject; /* status for a request stopped while parsing (413) */
    /* request being read */
    mock_buf url, body, hname, hval;
    llmux_mock_header *hdrs;
    size_t n_hdrs, cap_hdrs;
    mock_buf pending; /* input that arrived while responding */
    /* response being sent */
    mock_reply reply;
    unsigned long seq; /* 0 for control requests */
    int end_mode;
    size_t ev_next, ev_limit;
    size_t body_limit;
    long chunk_delay;
};

typedef struct mock_write {
    uv_write_t req;
    mock_conn *c;
    int then; /* enum mock_then */
    char *data;
} mock_write;

static void conn_close(mock_conn *c);
static void conn_drain(mock_conn *c);
static void conn_feed(mock_conn *c, const char *data, size_t len);
static void send_events(mock_conn *c, mock_buf *b);
static void send_head(mock_conn *c);

void llmux__mock_log(const llmux_mock *m, const char *fmt, ...)
{
    va_list ap;

    if (m && m->opts.quiet)
        return;
    fputs("llmux-mock: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- records ------------------------------------------------------------ */

static void headers_free(llmux_mock_header *h, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free((char *)h[i].name);
        free((char *)h[i].value);
    }
    free(h);
}

static void record_free(mock_record *r)
{
    if (!r)
        return;
    free(r->method);
    free(r->path);
    headers_free(r->headers, r->n_headers);
    free(r->body);
    free(r);
}

static void records_clear(llmux_mock *m)
{
    size_t i;

    for (i = 0; i < m->n_records; i++)
        record_free(m->records[i]);
    free(m->records);
    m->records = NULL;
    m->n_records = m->cap_records = 0;
}

/* ---- connection bookkeeping --------------------------------------------- */

static void request_reset(mock_conn *c)
{
    llmux__mock_buf_free(&c->url);
    llmux__mock_buf_free(&c->body);
    llmux__mock_buf_free(&c->hname);
    llmux__mock_buf_free(&c->hval);
    headers_free(c->hdrs, c->n_hdrs);
    c->hdrs = NULL;
    c->n_hdrs = c->cap_hdrs = 0;
    c->last_was_value = 0;
    c->too_many_headers = 0;
    c->reject = 0;
}

static void uncount(mock_conn *c)
{
    if (c->counted) {
        c->counted = 0;
        c->m->in_flight--;
    }
}

static void maybe_finish_close(llmux_mock *m)
{
    void (*cb)(void *);
    void *ud;
    size_t i;

    if (!m->closing || !m->listener_closed || m->accept_timer_open || m->conns)
        return;
    cb = m->on_closed;
    ud = m->closed_ud;
    records_clear(m);
    for (i = m->script_head; i < m->script_len; i++)
        free(m->script[i]);
    free(m->script);
    free(m->fault_all);
    llmux__mock_store_free(m->store);
    free(m->host);
    free(m);
    if (cb)
        cb(ud);
}

static void on_conn_closed(uv_handle_t *h)
{
    mock_conn *c = h->data;
    llmux_mock *m = c->m;

    if (--c->open_handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    request_reset(c);
    llmux__mock_reply_clear(&c->reply);
    llmux__mock_buf_free(&c->pending);
    free(c);
    maybe_finish_close(m);
}

static void conn_close(mock_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uncount(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

/* Closes with an RST (SO_LINGER 0) instead of a FIN: the client reads
 * ECONNRESET. Never called with a shutdown pending (libuv refuses). */
static void conn_reset(mock_conn *c)
{
    if (c->closing)
        return;
    if (c->draining || uv_tcp_close_reset(&c->tcp, on_conn_closed) < 0) {
        conn_close(c);
        return;
    }
    c->closing = 1;
    uncount(c);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_drain_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    mock_conn *c = req->data;

    if (c->closing)
        return;
    uncount(c);
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Our FIN is out; give the client a moment to read and close. */
    uv_timer_start(&c->timer, on_drain_timeout, MOCK_DRAIN_MS, 0);
}

/* No more responses on this connection: flush, send FIN, await EOF. */
static void conn_drain(mock_conn *c)
{
    if (c->closing || c->draining)
        return;
    c->draining = 1;
    uv_timer_stop(&c->timer);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        conn_close(c);
}

/* ---- writing ------------------------------------------------------------ */

static void response_done(mock_conn *c);

static void on_write(uv_write_t *req, int status)
{
    mock_write *w = (mock_write *)req;
    mock_conn *c = w->c;
    int then = w->then;

    free(w->data);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (then == THEN_DONE)
        response_done(c);
    else if (then == THEN_RESET)
        conn_reset(c); /* the bytes are in the kernel: they go first */
}

/* Queues the bytes of `b` (taken over, `b` is left empty). `then` says
 * what follows once they are written (enum mock_then). */
static void conn_write(mock_conn *c, mock_buf *b, int then)
{
    mock_write *w;
    uv_buf_t buf;
    size_t len = 0;
    char *data = llmux__mock_buf_steal(b, &len);

    if (!data || c->closing) {
        free(data);
        conn_close(c);
        return;
    }
    w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        conn_close(c);
        return;
    }
    w->c = c;
    w->then = then;
    w->data = data;
    buf = uv_buf_init(data, (unsigned int)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) < 0) {
        free(data);
        free(w);
        conn_close(c);
    }
}

/* ---- response engine ---------------------------------------------------- */

static const char *status_reason(int status)
{
    const char *s = http_status_str((enum http_status)status);

    return s && s[0] != '<' ? s : "Mock Status";
}

static void build_head(mock_conn *c, mock_buf *b)
{
    mock_reply *r = &c->reply;

    llmux__mock_buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n",
                           r->status, status_reason(r->status),
                           r->ctype_override ? r->ctype_override
                           : r->content_type ? r->content_type
                                             : "application/json");
    if (r->stream)
        llmux__mock_buf_adds(b, "Transfer-Encoding: chunked\r\n"
                                "Cache-Control: no-cache\r\n");
    else
        llmux__mock_buf_printf(b, "Content-Length: %zu\r\n", r->body.len);
    if (c->seq)
        llmux__mock_buf_printf(b, "x-request-id: req_mock_%lu\r\n", c->seq);
    llmux__mock_buf_printf(b, "Connection: %s\r\n",
                           c->keep_alive ? "keep-alive" : "close");
    llmux__mock_buf_add(b, r->headers.data, r->headers.len);
    llmux__mock_buf_add(b, "\r\n", 2);
}

static void on_chunk_timer(uv_timer_t *t)
{
    mock_conn *c = t->data;
    mock_buf b = {0};

    if (!c->closing)
        send_events(c, &b);
}

/* Appends events in chunked framing to `b` (already holding the head when
 * called from send_head) and writes them: all at once without a chunk
 * delay, else one now and the next from the timer. */
static void send_events(mock_conn *c, mock_buf *b)
{
    mock_reply *r = &c->reply;

    while (c->ev_next < c->ev_limit) {
        size_t start = c->ev_next ? r->ev_end[c->ev_next - 1] : 0;
        size_t len = r->ev_end[c->ev_next] - start;
        llmux__mock_buf_printf(b, "%zx\r\n", len);
        llmux__mock_buf_add(b, r->body.data + start, len);
        llmux__mock_buf_add(b, "\r\n", 2);
        c->ev_next++;
        if (c->chunk_delay > 0)
            break;
    }
    if (c->ev_next < c->ev_limit) {
        conn_write(c, b, THEN_MORE);
        if (!c->closing)
            uv_timer_start(&c->timer, on_chunk_timer, (uint64_t)c->chunk_delay,
                           0);
        return;
    }
    switch (c->end_mode) {
    case END_NORMAL:
        llmux__mock_buf_add(b, "0\r\n\r\n", 5);
        conn_write(c, b, THEN_DONE);
        break;
    case END_STALL:
        /* Keep the connection open and silent until the client leaves. */
        if (b->len)
            conn_write(c, b, THEN_MORE);
        else
            llmux__mock_buf_free(b);
        break;
    case END_CUT:
        if (b->len)
            conn_write(c, b, THEN_MORE);
        else
            llmux__mock_buf_free(b);
        conn_drain(c);
        break;
    default: /* END_RESET */
        if (b->len) {
            conn_write(c, b, THEN_RESET);
        } else {
            llmux__mock_buf_free(b);
            conn_reset(c);
        }
        break;
    }
}

static void send_head(mock_conn *c)
{
    mock_reply *r = &c->reply;
    mock_buf b = {0};
    size_t n;

    build_head(c, &b);
    if (r->stream) {
        send_events(c, &b);
        return;
    }
    if (c->end_mode == END_STALL) {
        conn_write(c, &b, THEN_MORE);
        return;
    }
    n = c->body_limit < r->body.len ? c->body_limit : r->body.len;
    llmux__mock_buf_add(&b, r->body.data, n);
    if (c->end_mode == END_CUT) {
        conn_write(c, &b, THEN_MORE);
        conn_drain(c);
    } else {
        conn_write(c, &b, c->end_mode == END_RESET ? THEN_RESET : THEN_DONE);
    }
}

static void on_delay_timer(uv_timer_t *t)
{
    mock_conn *c = t->data;

    if (!c->closing)
        send_head(c);
}

static void start_response(mock_conn *c, long delay_ms)
{
    if (c->reply.oom || c->reply.body.oom || c->reply.headers.oom) {
        llmux__mock_log(c->m, "out of memory building a reply");
        conn_close(c);
        return;
    }
    if (delay_ms > 0)
        uv_timer_start(&c->timer, on_delay_timer, (uint64_t)delay_ms, 0);
    else
        send_head(c);
}

/* The final write of a response completed. */
static void response_done(mock_conn *c)
{
    mock_buf in;

    uncount(c);
    llmux__mock_reply_clear(&c->reply);
    c->responding = 0;
    if (!c->keep_alive) {
        conn_drain(c);
        return;
    }
    request_reset(c);
    http_parser_pause(&c->parser, 0);
    if (c->pending.len) {
        in = c->pending;
        memset(&c->pending, 0, sizeof(c->pending));
        conn_feed(c, in.data, in.len);
        llmux__mock_buf_free(&in);
    }
}

/* ---- control endpoints (/_mock/...) -------------------------------------- */

static void control_requests(llmux_mock *m, mock_reply *r)
{
    json_object *arr = json_object_new_array();
    size_t i, k;

    for (i = 0; i < m->n_records; i++) {
        const mock_record *rec = m->records[i];
        json_object *o = json_object_new_object();
        json_object *h = json_object_new_object();
        for (k = 0; k < rec->n_headers; k++)
            json_object_object_add(
                h, rec->headers[k].name,
                json_object_new_string(rec->headers[k].value));
        json_object_object_add(o, "method",
                               json_object_new_string(rec->method));
        json_object_object_add(o, "path", json_object_new_string(rec->path));
        json_object_object_add(o, "headers", h);
        json_object_object_add(
            o, "body",
            json_object_new_string_len(rec->body, (int)rec->pub.body_len));
        json_object_array_add(arr, o);
    }
    llmux__mock_reply_json(r, 200, arr);
}

static void control_stats(llmux_mock *m, mock_reply *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "requests",
                           json_object_new_int64((int64_t)m->n_records));
    json_object_object_add(o, "max_concurrent",
                           json_object_new_int(m->max_concurrent));
    json_object_object_add(o, "in_flight", json_object_new_int(m->in_flight));
    llmux__mock_reply_json(r, 200, o);
}

static void handle_control(mock_conn *c, const char *method, const char *path)
{
    llmux_mock *m = c->m;
    mock_reply *r = &c->reply;
    mock_ctx ctx;

    c->seq = 0;
    if (strcmp(method, "GET") == 0 && strcmp(path, "/_mock/requests") == 0) {
        control_requests(m, r);
    } else if (strcmp(method, "GET") == 0 &&
               strcmp(path, "/_mock/stats") == 0) {
        control_stats(m, r);
    } else if (strcmp(method, "POST") == 0 &&
               strcmp(path, "/_mock/reset") == 0) {
        llmux_mock_reset(m);
        llmux__mock_reply_text(r, 200, "application/json", "{\"ok\":true}", 11);
    } else {
        memset(&ctx, 0, sizeof(ctx));
        ctx.mock = m;
        ctx.reply = r;
        mock_protocols[0]->error(&ctx, 404, NULL, NULL, NULL,
                                 "Unknown mock control endpoint.");
    }
    c->end_mode = END_NORMAL;
    c->ev_limit = r->n_events;
    c->body_limit = SIZE_MAX;
    start_response(c, 0);
}

/* ---- requests ------------------------------------------------------------ */

/* The protocol owning `path`: the one whose prefix it starts with (then
 * '/' or the end), else the first. */
static const mock_protocol *find_protocol(const char *path)
{
    size_t i, n;

    for (i = 1; i < N_PROTOCOLS; i++) {
        const char *prefix = mock_protocols[i]->prefix;
        n = prefix ? strlen(prefix) : 0;
        if (n && strncmp(path, prefix, n) == 0 &&
            (path[n] == '/' || path[n] == '\0'))
            return mock_protocols[i];
    }
    return mock_protocols[0];
}

/* A MOCK_ROUTE_ID suffix "/batches/ * /cancel" (no spaces): the path ends
 * with the part after '*', before it a non-empty segment without '/', and
 * before that the part before '*'. */
static int id_route_matches(const char *suffix, const char *path)
{
    const char *star = strchr(suffix, '*'), *seg;
    size_t plen = strlen(path), hl, tl;
    if (!star)
        return 0;
    hl = (size_t)(star - suffix);
    tl = strlen(star + 1);
    if (plen < hl + tl + 1 || strcmp(path + plen - tl, star + 1) != 0)
        return 0;
    plen -= tl; /* path[0..plen) ends with the segment */
    seg = path + plen;
    while (seg > path && seg[-1] != '/')
        seg--;
    if (seg == path + plen || (size_t)(seg - path) < hl)
        return 0;
    return strncmp(seg - hl, suffix, hl) == 0;
}

/* Sets *proto to the protocol owning `path` and returns its route matching
 * the method and path suffix, or NULL. */
static const mock_route *find_route(const char *method, const char *path,
                                    const mock_protocol **proto)
{
    size_t plen = strlen(path);
    const mock_route *r;

    *proto = find_protocol(path);
    for (r = (*proto)->routes; r->method; r++) {
        size_t sl = strlen(r->suffix);
        if (strcmp(method, r->method) != 0)
            continue;
        if ((r->flags & MOCK_ROUTE_ID)
                ? id_route_matches(r->suffix, path)
                : plen >= sl && strcmp(path + plen - sl, r->suffix) == 0)
            return r;
    }
    return NULL;
}

struct mock_store **llmux__mock_store_slot(llmux_mock *m)
{
    return &m->store;
}

int llmux__mock_batch_ms(const llmux_mock *m)
{
    return m->opts.batch_ms > 0 ? m->opts.batch_ms : MOCK_BATCH_MS;
}

/* Moves the parsed request into a new record. */
static mock_record *record_take(mock_conn *c)
{
    mock_record *r = calloc(1, sizeof(*r));
    size_t blen = 0;

    if (!r)
        return NULL;
    r->method =
        llmux__mock_strdup(http_method_str((enum http_method)c->parser.method));
    r->path = llmux__mock_buf_steal(&c->url, NULL);
    r->body = llmux__mock_buf_steal(&c->body, &blen);
    r->headers = c->hdrs;
    r->n_headers = c->n_hdrs;
    c->hdrs = NULL;
    c->n_hdrs = c->cap_hdrs = 0;
    if (!r->method || !r->path || !r->body) {
        record_free(r);
        return NULL;
    }
    r->pub.method = r->method;
    r->pub.path = r->path;
    r->pub.headers = r->headers;
    r->pub.n_headers = r->n_headers;
    r->pub.body = r->body;
    r->pub.body_len = blen;
    return r;
}

static int records_push(llmux_mock *m, mock_record *r)
{
    if (m->n_records == m->cap_records) {
        size_t cap = m->cap_records ? m->cap_records * 2 : 64;
        mock_record **p = realloc(m->records, cap * sizeof(*p));
        if (!p)
            return -1;
        m->records = p;
        m->cap_records = cap;
    }
    m->records[m->n_records++] = r;
    return 0;
}

/* Parses the body as one JSON object, or returns NULL. */
static json_object *parse_body(const char *body, size_t len)
{
    struct json_tokener *tok;
    json_object *o;
    size_t used, i;

    if (len == 0 || len > INT_MAX)
        return NULL;
    tok = json_tokener_new();
    if (!tok)
        return NULL;
    o = json_tokener_parse_ex(tok, body, (int)len);
    used = json_tokener_get_parse_end(tok);
    if (o && json_tokener_get_error(tok) == json_tokener_success) {
        for (i = used; i < len; i++)
            if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' &&
                body[i] != '\n')
                break;
        if (i < len || !json_object_is_type(o, json_type_object)) {
            json_object_put(o);
            o = NULL;
        }
    } else {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* Takes the next scripted spec (caller frees), or NULL. */
static char *script_pop(llmux_mock *m)
{
    char *s;

    if (m->script_head == m->script_len)
        return NULL;
    s = m->script[m->script_head++];
    if (m->script_head == m->script_len)
        m->script_head = m->script_len = 0;
    return s;
}

/* A reply that the fault replaces entirely (status, body=..., huge). */
static void fault_reply(mock_ctx *ctx)
{
    const mock_fault *f = ctx->fault;
    static const char garbage[] = "mock garbage: this is not JSON {{{";
    static const char text[] = "mock plain text error";

    if (f->huge >= 0) {
        const mock_protocol *p =
            ctx->proto->huge ? ctx->proto : mock_protocols[0];
        p->huge(ctx, (size_t)f->huge);
    } else if (f->body == MOCK_BODY_GARBAGE) {
        llmux__mock_reply_text(ctx->reply, f->status ? f->status : 200,
                               "application/json", garbage,
                               sizeof(garbage) - 1);
    } else if (f->body == MOCK_BODY_TEXT) {
        llmux__mock_reply_text(ctx->reply, f->status ? f->status : 500,
                               "text/plain", text, sizeof(text) - 1);
    } else if (f->body == MOCK_BODY_HTML) {
        /* what nginx in front of a dead or busy upstream sends */
        int status = f->status ? f->status : 502;
        const char *why = status_reason(status);
        char *page = llmux__mock_strdupf(
            "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
            "<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>"
            "\r\n</body>\r\n</html>\r\n",
            status, why, status, why);
        if (!page) {
            ctx->reply->oom = 1;
            return;
        }
        llmux__mock_reply_text(ctx->reply, status, "text/html", page,
                               strlen(page));
        free(page);
    } else {
        ctx->proto->error(ctx, f->status, NULL, f->code, NULL, f->message);
    }
}

/* Applies the engine-level fault directives to the reply just built. */
static void plan_delivery(mock_conn *c, mock_ctx *ctx)
{
    const mock_fault *f = ctx->fault;
    mock_reply *r = &c->reply;

    if (f->retry_after)
        llmux__mock_reply_header(r, "Retry-After", f->retry_after);
    if (f->retry_after_ms >= 0) {
        char v[32];
        snprintf(v, sizeof(v), "%ld", f->retry_after_ms);
        llmux__mock_reply_header(r, "retry-after-ms", v);
    }
    llmux__mock_buf_add(&r->headers, f->headers.data, f->headers.len);
    if (f->status && !llmux__mock_fault_replaces(f))
        r->status = f->status; /* e.g. status=201 on a normal reply */
    if (f->content_type) {
        free(r->ctype_override);
        r->ctype_override = llmux__mock_strdup(f->content_type);
        if (!r->ctype_override)
            r->oom = 1;
    }

    c->end_mode = END_NORMAL;
    c->body_limit = SIZE_MAX;
    c->ev_next = 0;
    if (r->stream) {
        if (f->stream_error_after >= 0 &&
            (size_t)f->stream_error_after < r->n_events) {
            size_t n = (size_t)f->stream_error_after;
            r->body.len = n ? r->ev_end[n - 1] : 0;
            r->n_events = n;
            ctx->proto->stream_error(ctx, f->message);
        }
        c->ev_limit = r->n_events;
        if (f->stall_after >= 0) {
            if ((size_t)f->stall_after < c->ev_limit)
                c->ev_limit = (size_t)f->stall_after;
            c->end_mode = END_STALL;
        } else if (f->cut_after >= 0) {
            if ((size_t)f->cut_after < c->ev_limit)
                c->ev_limit = (size_t)f->cut_after;
            c->end_mode = END_CUT;
        } else if (f->reset_after >= 0) {
            if ((size_t)f->reset_after < c->ev_limit)
                c->ev_limit = (size_t)f->reset_after;
            c->end_mode = END_RESET;
        } else if (f->body == MOCK_BODY_TRUNCATED) {
            c->ev_limit /= 2;
            c->end_mode = END_CUT;
        }
    } else {
        c->ev_limit = 0;
        if (f->stall_after >= 0) {
            c->end_mode = END_STALL;
        } else if (f->cut_after >= 0) {
            c->body_limit = (size_t)f->cut_after;
            c->end_mode = END_CUT;
        } else if (f->reset_after >= 0) {
            c->body_limit = (size_t)f->reset_after;
            c->end_mode = END_RESET;
        } else if (f->body == MOCK_BODY_TRUNCATED) {
            c->body_limit = r->body.len / 2;
            c->end_mode = END_CUT;
        }
    }
}

static void handle_request(mock_conn *c)
{
    llmux_mock *m = c->m;
    mock_record *rec;
    mock_ctx ctx;
    mock_fault fault;
    const mock_route *route;
    const char *method, *spec = NULL, *hdr;
    int lenient = 0;
    char *path, *q, *model = NULL, *script = NULL, err[160];
    int bad_fault = 0, reset;
    long delay;

    rec = record_take(c);
    if (!rec) {
        conn_close(c);
        return;
    }
    method = rec->method;
    path = llmux__mock_strdup(rec->path);
    if (!path) {
        record_free(rec);
        conn_close(c);
        return;
    }
    q = strpbrk(path, "?#");
    if (q)
        *q = '\0';

    if (strncmp(path, "/_mock/", 7) == 0) {
        handle_control(c, method, path);
        free(path);
        record_free(rec);
        return;
    }
    if (records_push(m, rec) < 0) {
        free(path);
        record_free(rec);
        conn_close(c);
        return;
    }
    c->seq = ++m->seq;
    c->counted = 1;
    if (++m->in_flight > m->max_concurrent)
        m->max_concurrent = m->in_flight;

    memset(&ctx, 0, sizeof(ctx));
    ctx.mock = m;
    ctx.rec = &rec->pub;
    ctx.path = path;
    ctx.seq = c->seq;
    ctx.reply = &c->reply;
    ctx.fault = &fault;
    route = find_route(method, path, &ctx.proto);
    ctx.json = parse_body(rec->body, rec->pub.body_len);
    if (ctx.json) {
        json_object *mv = NULL;
        if (json_object_object_get_ex(ctx.json, "model", &mv) &&
            json_object_is_type(mv, json_type_string)) {
            char *hash;
            model = llmux__mock_strdup(json_object_get_string(mv));
            hash = model ? strchr(model, '#') : NULL;
            if (hash) {
                *hash = '\0';
                spec = hash + 1;
                lenient = 1;
            }
        }
    }
    ctx.model = model;

    /* Fault sources, first match wins: the header, the model suffix, then
     * (only if the request carries no directive) the script, fault_all. */
    hdr = llmux_mock_record_header(&rec->pub, "X-Mock-Fault");
    if (hdr) {
        spec = hdr;
        lenient = 0;
    }
    llmux__mock_fault_init(&fault);
    if (spec &&
        llmux__mock_fault_parse(&fault, spec, lenient, err, sizeof(err)) < 0)
        bad_fault = 1;
    if (!bad_fault && llmux__mock_fault_empty(&fault)) {
        script = script_pop(m);
        spec = script ? script : m->fault_all;
        if (spec &&
            llmux__mock_fault_parse(&fault, spec, 0, err, sizeof(err)) < 0)
            bad_fault = 1;
    }

    reset = !bad_fault && fault.reset == 1;
    if (reset) {
        /* not a byte of answer: the client reads ECONNRESET */
    } else if (bad_fault) {
        char *msg = llmux__mock_strdupf("bad mock fault spec: %s", err);
        ctx.proto->error(&ctx, 400, "invalid_request_error", NULL, NULL,
                         msg ? msg : "bad mock fault spec");
        free(msg);
    } else if (llmux__mock_fault_replaces(&fault)) {
        fault_reply(&ctx);
    } else if (!route) {
        char *msg = llmux__mock_strdupf("Invalid URL (%s %s)", method, path);
        ctx.proto->error(&ctx, 404, "invalid_request_error", NULL, NULL,
                         msg ? msg : "Invalid URL");
        free(msg);
    } else if (ctx.proto->check_auth && ctx.proto->check_auth(&ctx) != 0) {
        /* check_auth wrote the 401 */
    } else if ((route->flags & MOCK_ROUTE_JSON) && !ctx.json) {
        ctx.proto->error(&ctx, 400, "invalid_request_error", NULL, NULL,
                         "We could not parse the JSON body of your request. "
                         "(mock: the body must be a JSON object)");
    } else {
        route->handle(&ctx);
    }

    if (reset) {
        llmux__mock_log(m, "%s %s -> reset", method, rec->path);
        conn_reset(c);
    } else {
        plan_delivery(c, &ctx);
        llmux__mock_log(m, "%s %s -> %d%s", method, rec->path, c->reply.status,
                        c->reply.stream ? " (stream)" : "");
        delay = fault.delay_ms >= 0 ? fault.delay_ms : m->opts.latency_ms;
        c->chunk_delay = m->opts.chunk_delay_ms;
        start_response(c, delay);
    }

    llmux__mock_fault_clear(&fault);
    if (ctx.json)
        json_object_put(ctx.json);
    free(model);
    free(script);
    free(path);
}

/* ---- HTTP parsing -------------------------------------------------------- */

static int commit_header(mock_conn *c)
{
    char *name, *value;

    if (c->n_hdrs >= MOCK_MAX_HEADERS) {
        c->too_many_headers = 1;
        c->hname.len = c->hval.len = 0;
        return 0;
    }
    if (c->n_hdrs == c->cap_hdrs) {
        size_t cap = c->cap_hdrs ? c->cap_hdrs * 2 : 16;
        llmux_mock_header *p = realloc(c->hdrs, cap * sizeof(*p));
        if (!p)
            return -1;
        c->hdrs = p;
        c->cap_hdrs = cap;
    }
    name = llmux__mock_buf_steal(&c->hname, NULL);
    value = llmux__mock_buf_steal(&c->hval, NULL);
    if (!name || !value) {
        free(name);
        free(value);
        return -1;
    }
    c->hdrs[c->n_hdrs].name = name;
    c->hdrs[c->n_hdrs].value = value;
    c->n_hdrs++;
    return 0;
}

static int on_message_begin(http_parser *p)
{
    request_reset(p->data);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    mock_conn *c = p->data;

    llmux__mock_buf_add(&c->url, at, len);
    return c->url.oom ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    mock_conn *c = p->data;

    if (c->last_was_value && commit_header(c) < 0)
        return -1;
    c->last_was_value = 0;
    llmux__mock_buf_add(&c->hname, at, len);
    return c->hname.oom ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    mock_conn *c = p->data;

    c->last_was_value = 1;
    llmux__mock_buf_add(&c->hval, at, len);
    return c->hval.oom ? -1 : 0;
}

static int on_headers_complete(http_parser *p)
{
    mock_conn *c = p->data;
    size_t i;

    if (c->last_was_value && commit_header(c) < 0)
        return -1;
    c->last_was_value = 0;
    if (c->too_many_headers) {
        c->reject = 400;
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > MOCK_MAX_REQUEST) {
        c->reject = 413;
        return -1;
    }
    for (i = 0; i < c->n_hdrs; i++) {
        if (llmux__mock_streq_ci(c->hdrs[i].name, "Expect") &&
            llmux__mock_streq_ci(c->hdrs[i].value, "100-continue") &&
            p->http_major == 1 && p->http_minor >= 1) {
            mock_buf b = {0};
            llmux__mock_buf_adds(&b, "HTTP/1.1 100 Continue\r\n\r\n");
            conn_write(c, &b, THEN_MORE);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    mock_conn *c = p->data;

    if (c->body.len + len > MOCK_MAX_REQUEST) {
        c->reject = 413;
        return -1;
    }
    llmux__mock_buf_add(&c->body, at, len);
    return c->body.oom ? -1 : 0;
}

static int on_message_complete(http_parser *p)
{
    mock_conn *c = p->data;

    /* One request at a time: stop here until the response is out. */
    http_parser_pause(p, 1);
    c->responding = 1;
    c->keep_alive = http_should_keep_alive(p) ? 1 : 0;
    handle_request(c);
    return 0;
}

static const http_parser_settings mock_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Answers a request the parser rejected, then closes. */
static void bad_http(mock_conn *c, int status, const char *why)
{
    mock_ctx ctx;
    char msg[160];

    memset(&ctx, 0, sizeof(ctx));
    ctx.mock = c->m;
    ctx.reply = &c->reply;
    if (status == 413)
        snprintf(msg, sizeof(msg), "Request too large (limit %u bytes).",
                 MOCK_MAX_REQUEST);
    else
        snprintf(msg, sizeof(msg), "Malformed HTTP request: %s.", why);
    llmux__mock_reply_clear(&c->reply);
    mock_protocols[0]->error(&ctx, status, "invalid_request_error", NULL, NULL,
                             msg);
    llmux__mock_log(c->m, "bad request -> %d (%s)", status, why);
    c->responding = 1;
    c->keep_alive = 0;
    c->seq = 0;
    c->end_mode = END_NORMAL;
    c->ev_limit = 0;
    c->body_limit = SIZE_MAX;
    llmux__mock_buf_free(&c->pending);
    start_response(c, 0);
}

static void conn_feed(mock_conn *c, const char *data, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &mock_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

    if (c->closing)
        return;
    if (e == HPE_PAUSED) {
        /* A request is being answered; keep what follows it. */
        if (n < len)
            llmux__mock_buf_add(&c->pending, data + n, len - n);
        if (c->pending.oom || c->pending.len > MOCK_MAX_REQUEST)
            conn_close(c);
        return;
    }
    if (e != HPE_OK)
        bad_http(c, c->reject ? c->reject : 400, http_errno_description(e));
    else if (c->parser.upgrade)
        bad_http(c, 400, "upgrade and CONNECT are not supported");
}

/* ---- sockets ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mock_conn *c = h->data;

    (void)suggested;
    /* One shared buffer: libuv calls read right after alloc, and input
     * that must outlive the call is copied. */
    *buf = uv_buf_init(c->m->readbuf, sizeof(c->m->readbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mock_conn *c = s->data;

    if (nread < 0) {
        /* EOF or error: the client went away. */
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing || c->draining)
        return;
    if (c->responding) {
        llmux__mock_buf_add(&c->pending, buf->base, (size_t)nread);
        if (c->pending.oom || c->pending.len > MOCK_MAX_REQUEST)
            conn_close(c);
        return;
    }
    conn_feed(c, buf->base, (size_t)nread);
}

/* Accepts the connection libuv holds for the listener. */
static void accept_one(llmux_mock *m)
{
    uv_stream_t *server = (uv_stream_t *)&m->listener;
    mock_conn *c;

    c = calloc(1, sizeof(*c));
    if (!c) {
        llmux__mock_log(m, "out of memory accepting a connection");
        return;
    }
    uv_tcp_init(m->loop, &c->tcp);
    uv_timer_init(m->loop, &c->timer);
    c->m = m;
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = m->conns;
    if (m->conns)
        m->conns->prev = c;
    m->conns = c;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void on_accept_timer(uv_timer_t *t)
{
    llmux_mock *m = t->data;

    if (!m->closing)
        accept_one(m);
}

static void on_connection(uv_stream_t *server, int status)
{
    llmux_mock *m = server->data;

    if (status < 0 || m->closing)
        return;
    if (m->opts.accept_delay_ms > 0) {
        /* Not accepting now makes libuv stop polling the listener until
         * the timer's uv_accept; closing the listener closes the held fd. */
        uv_timer_start(&m->accept_timer, on_accept_timer,
                       (uint64_t)m->opts.accept_delay_ms, 0);
        return;
    }
    accept_one(m);
}

static void on_accept_timer_closed(uv_handle_t *h)
{
    llmux_mock *m = h->data;

    m->accept_timer_open = 0;
    maybe_finish_close(m);
}

static void on_listener_closed(uv_handle_t *h)
{
    llmux_mock *m = h->data;

    m->listener_closed = 1;
    maybe_finish_close(m);
}

/* Resolves host:port into `ss`: numeric addresses, else getaddrinfo. */
static int resolve(const char *host, int port, struct sockaddr_storage *ss,
                   socklen_t *sslen)
{
    struct addrinfo hints, *ai = NULL;
    int rc;

    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) {
        *sslen = sizeof(struct sockaddr_in);
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) {
        *sslen = sizeof(struct sockaddr_in6);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0 || !ai)
        return UV_EINVAL;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = (socklen_t)ai->ai_addrlen;
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(ai);
    return 0;
}

/* Creates the bound, listening socket without touching the loop, so a
 * failure leaves nothing behind. Returns the fd or a negative uv code. */
static int listen_socket(const struct sockaddr_storage *ss, socklen_t len,
                         int backlog, int *port)
{
    int fd, one = 1, err;
    struct sockaddr_storage got;
    socklen_t glen = sizeof(got);

    fd = socket(ss->ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 ||
        listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&got, &glen) < 0) {
        err = -errno;
        close(fd);
        return err;
    }
    if (got.ss_family == AF_INET)
        *port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    else
        *port = ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
    return fd;
}

static void ignore_sigpipe(void)
{
    struct sigaction sa;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* ---- public API ------------------------------------------------------------
 */

int llmux_mock_start(llmux_mock **out, uv_loop_t *loop,
                     const llmux_mock_options *o)
{
    static const llmux_mock_options defaults = LLMUX_MOCK_OPTIONS_INIT;
    struct sockaddr_storage ss;
    socklen_t sslen;
    llmux_mock *m;
    int fd, rc;

    if (!out)
        return UV_EINVAL;
    *out = NULL;
    if (!o)
        o = &defaults;
    if (!loop || o->version == 0 || o->version > LLMUX_MOCK_OPTIONS_VERSION ||
        o->port < 0 || o->port > 65535 || o->latency_ms < 0 ||
        o->chunk_delay_ms < 0 || o->accept_delay_ms < 0 || o->backlog < 0 ||
        o->batch_ms < 0)
        return UV_EINVAL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return UV_ENOMEM;
    m->loop = loop;
    m->opts = *o;
    m->host = llmux__mock_strdup(o->host ? o->host : "127.0.0.1");
    if (!m->host) {
        free(m);
        return UV_ENOMEM;
    }
    m->opts.host = m->host;
    if (m->opts.backlog == 0)
        m->opts.backlog = MOCK_BACKLOG;
    rc = resolve(m->host, o->port, &ss, &sslen);
    fd = rc < 0 ? rc : listen_socket(&ss, sslen, m->opts.backlog, &m->port);
    if (fd < 0) {
        free(m->host);
        free(m);
        return fd;
    }
    ignore_sigpipe();
    uv_tcp_init(loop, &m->listener);
    m->listener.data = m;
    rc = uv_tcp_open(&m->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, m->opts.backlog,
                       on_connection);
    if (rc < 0) {
        /* Not expected on a socket that already listens. */
        m->closing = 1;
        uv_close((uv_handle_t *)&m->listener, on_listener_closed);
        return rc;
    }
    if (m->opts.accept_delay_ms > 0) {
        uv_timer_init(loop, &m->accept_timer);
        m->accept_timer.data = m;
        m->accept_timer_open = 1;
    }
    *out = m;
    return 0;
}

int llmux_mock_port(const llmux_mock *m)
{
    return m ? m->port : -1;
}

void llmux_mock_close(llmux_mock *m, void (*on_closed)(void *), void *ud)
{
    mock_conn *c, *next;

    if (!m || m->closing)
        return;
    m->closing = 1;
    m->on_closed = on_closed;
    m->closed_ud = ud;
    uv_close((uv_handle_t *)&m->listener, on_listener_closed);
    if (m->accept_timer_open)
        uv_close((uv_handle_t *)&m->accept_timer, on_accept_timer_closed);
    for (c = m->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

int llmux_mock_push_fault(llmux_mock *m, const char *spec)
{
    mock_fault f;
    char err[160], *copy;

    if (!m || !spec)
        return UV_EINVAL;
    if (llmux__mock_fault_parse(&f, spec, 0, err, sizeof(err)) < 0) {
        llmux__mock_log(m, "bad fault spec '%s': %s", spec, err);
        return UV_EINVAL;
    }
    llmux__mock_fault_clear(&f);
    if (m->script_len == m->script_cap) {
        size_t cap = m->script_cap ? m->script_cap * 2 : 16;
        char **p = realloc(m->script, cap * sizeof(*p));
        if (!p)
            return UV_ENOMEM;
        m->script = p;
        m->script_cap = cap;
    }
    copy = llmux__mock_strdup(spec);
    if (!copy)
        return UV_ENOMEM;
    m->script[m->script_len++] = copy;
    return 0;
}

void llmux_mock_set_fault_all(llmux_mock *m, const char *spec_or_NULL)
{
    mock_fault f;
    char err[160];

    if (!m)
        return;
    free(m->fault_all);
    m->fault_all = NULL;
    if (!spec_or_NULL)
        return;
    if (llmux__mock_fault_parse(&f, spec_or_NULL, 0, err, sizeof(err)) < 0) {
        llmux__mock_log(m, "bad fault spec '%s': %s", spec_or_NULL, err);
        return;
    }
    llmux__mock_fault_clear(&f);
    m->fault_all = llmux__mock_strdup(spec_or_NULL);
}

size_t llmux_mock_request_count(const llmux_mock *m)
{
    return m ? m->n_records : 0;
}

const llmux_mock_record *llmux_mock_request(const llmux_mock *m, size_t i)
{
    return m && i < m->n_records ? &m->records[i]->pub : NULL;
}

const char *llmux_mock_record_header(const llmux_mock_record *rec,
                                     const char *name)
{
    size_t i;

    if (!rec || !name)
        return NULL;
    for (i = 0; i < rec->n_headers; i++)
        if (llmux__mock_streq_ci(rec->headers[i].name, name))
            return rec->headers[i].value;
    return NULL;
}

int llmux_mock_max_concurrent(const llmux_mock *m)
{
    return m ? m->max_concurrent : 0;
}

int llmux_mock_in_flight(const llmux_mock *m)
{
    return m ? m->in_flight : 0;
}

void llmux_mock_reset(llmux_mock *m)
{
    if (!m)
        return;
    records_clear(m);
    m->max_concurrent = m->in_flight;
    m->seq = 0;
}
