/*
 * bench/openloop.c: an open-loop HTTP/1.1 load driver (libuv, raw sockets).
 *
 *   llmux-openloop [-r RATE] [-d SECS] [-w SECS] [-c MAXCONN] [-g]
 *                  [-m MODEL] [-l LABEL] URL
 *
 * Starts requests at a fixed RATE per second for SECS seconds (after SECS
 * of warm-up at the same rate, not recorded) whatever the answers do: a
 * closed loop (N clients each waiting for its answer) slows down with the
 * server and so hides its queueing. Each request goes on an idle keep-alive
 * connection, or a new one (up to MAXCONN, then it waits for one), all with
 * TCP_NODELAY. POST of a small chat completion body by default (MODEL,
 * default gpt-4o-mini), GET with -g (e.g. /health).
 *
 * Time to first byte is taken from the write of the request (the server's
 * latency) and, as "sched", from the time the request was due: a driver
 * that falls behind or waits for a connection shows there, so a run whose
 * sched p99 grows far past its ttfb p99 did not hold the rate.
 * Prints one line:
 *   LABEL rate R sent S ok K err E ttfb_p50_us P ttfb_p90_us P
 *         ttfb_p99_us P ttfb_max_us P sched_p99_us P sched_max_us P conns C
 * and exits 1 when a request failed (status not 200, connection error, or
 * no answer 10 s after the last start).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct conn *next_idle;
    int connected, busy, closing;
    long req;        /* the request in flight, or -1 */
    uint64_t sent;   /* its write, ns */
    int got_first;   /* first byte of its answer seen */
    char head[4096]; /* the answer's header, until complete */
    size_t head_len;
    long body_left; /* Content-Length left, or -1 for chunked */
    char tail[5];   /* chunked: the last bytes seen, for "0\r\n\r\n" */
    int status;
} conn;

static uv_loop_t *loop;
static struct sockaddr_in addr;
static char *request;
static size_t request_len;
static double rate = 1000, secs = 5, warm = 1;
static long max_conns = 1024, nconns;
static conn *idle;
static uint64_t t0;
static long total, warm_n, started, finished, ok, errs;
static uint32_t *ttfb, *sched;              /* per recorded request, us */
static uint64_t *due;                       /* per request, ns */
static long *waiting, wait_head, wait_tail; /* requests waiting for a conn */
static uv_timer_t tick, deadline;
static uv_signal_t term;

static void fail(long r, const char *why)
{
    if (r >= 0 && errs < 5)
        fprintf(stderr, "openloop: request %ld: %s\n", r, why);
    errs++;
    finished++;
}

static void done_all(void)
{
    uv_timer_stop(&tick);
    uv_stop(loop);
}

static void check_end(void)
{
    if (started == total && finished == total)
        done_all();
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void drop(conn *c, const char *why)
{
    conn **p;
    if (c->closing)
        return;
    c->closing = 1;
    if (c->busy)
        fail(c->req, why);
    else /* an idle keep-alive connection the server closed */
        for (p = &idle; *p; p = &(*p)->next_idle)
            if (*p == c) {
                *p = c->next_idle;
                break;
            }
    c->busy = 0;
    nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    check_end();
}

static void send_on(conn *c, long r);

static void make_idle(conn *c)
{
    c->busy = 0;
    if (wait_head < wait_tail) {
        send_on(c, waiting[wait_head++]);
        return;
    }
    c->next_idle = idle;
    idle = c;
}

static void on_written(uv_write_t *w, int status)
{
    conn *c = w->data;
    if (status < 0)
        drop(c, uv_strerror(status));
}

static void send_on(conn *c, long r)
{
    uv_buf_t b = uv_buf_init(request, (unsigned)request_len);
    c->busy = 1;
    c->req = r;
    c->got_first = 0;
    c->head_len = 0;
    c->body_left = -2; /* header not complete yet */
    memset(c->tail, 0, sizeof c->tail);
    c->sent = uv_hrtime();
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        drop(c, "write");
}

static void record(conn *c, uint64_t now)
{
    long i = c->req - warm_n;
    if (i < 0)
        return;
    ttfb[i] = (uint32_t)((now - c->sent) / 1000);
    sched[i] = (uint32_t)((now - due[c->req]) / 1000);
}

static void answered(conn *c)
{
    if (c->status == 200) {
        ok++;
        finished++;
    } else {
        char why[32];
        snprintf(why, sizeof why, "status %d", c->status);
        fail(c->req, why);
    }
    make_idle(c);
    check_end();
}

/* Consumes body bytes; returns how many belonged to this answer. */
static size_t eat_body(conn *c, const char *p, size_t n)
{
    size_t i;
    if (c->body_left >= 0) {
        size_t k = (size_t)c->body_left < n ? (size_t)c->body_left : n;
        c->body_left -= (long)k;
        if (c->body_left == 0)
            answered(c);
        return k;
    }
    /* chunked: the answer ends with the zero-size chunk (JSON bodies
     * carry no raw CR LF, so the pattern cannot occur inside one) */
    for (i = 0; i < n; i++) {
        memmove(c->tail, c->tail + 1, 4);
        c->tail[4] = p[i];
        if (!memcmp(c->tail, "0\r\n\r\n", 5)) {
            answered(c);
            return i + 1;
        }
    }
    return n;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char buf[65536];
    (void)h;
    (void)hint;
    *b = uv_buf_init(buf, sizeof buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    const char *p = b->base;
    size_t left;
    if (n < 0) {
        drop(c, n == UV_EOF ? "connection closed" : uv_strerror((int)n));
        return;
    }
    left = (size_t)n;
    if (left && c->busy && !c->got_first) {
        c->got_first = 1;
        record(c, uv_hrtime());
    }
    while (left && c->busy) {
        if (c->body_left == -2) { /* still in the header */
            size_t k = left < sizeof c->head - 1 - c->head_len
                           ? left
                           : sizeof c->head - 1 - c->head_len;
            char *end, *cl;
            memcpy(c->head + c->head_len, p, k);
            c->head_len += k;
            c->head[c->head_len] = 0;
            end = strstr(c->head, "\r\n\r\n");
            if (!end) {
                if (c->head_len == sizeof c->head - 1) {
                    drop(c, "header too long");
                    return;
                }
                p += k;
                left -= k;
                continue;
            }
            /* the bytes after the header go back to the body */
            k -= c->head_len - (size_t)(end + 4 - c->head);
            p += k;
            left -= k;
            *end = 0;
            c->status = atoi(c->head + 9);
            cl = strcasestr(c->head, "\r\ncontent-length:");
            c->body_left = cl ? atol(cl + 17) : -1;
            if (c->body_left == 0) {
                answered(c);
                continue;
            }
        }
        {
            size_t k = eat_body(c, p, left);
            p += k;
            left -= k;
        }
    }
    if (left)
        drop(c, "bytes after the answer");
}

static void on_connect(uv_connect_t *r, int status)
{
    conn *c = r->data;
    if (status == UV_ECANCELED) /* closed by drop() */
        return;
    if (status < 0) {
        drop(c, uv_strerror(status));
        return;
    }
    c->connected = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_on(c, c->req);
}

static void start(long r)
{
    conn *c;
    if (idle) {
        c = idle;
        idle = c->next_idle;
        send_on(c, r);
        return;
    }
    if (nconns >= max_conns) {
        waiting[wait_tail++] = r;
        return;
    }
    c = calloc(1, sizeof *c);
    c->tcp.data = c;
    c->connect.data = c;
    c->req = r;
    c->busy = 1; /* a failed connect fails its request */
    uv_tcp_init(loop, &c->tcp);
    nconns++;
    if (uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&addr,
                       on_connect) < 0)
        drop(c, "connect");
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    done_all();
}

static void on_tick(uv_timer_t *t);

/* SIGTERM: start no more and report what started (a probe that runs for
 * as long as another load does) */
static void on_term(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_signal_stop(h);
    if (started < warm_n) /* still warming up: nothing recorded */
        warm_n = started;
    total = started;
    on_tick(&tick);
    check_end();
}

static void on_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    (void)t;
    while (started < total) {
        uint64_t at = t0 + (uint64_t)((double)started * 1e9 / rate);
        if (at > now)
            break;
        due[started] = at;
        start(started++);
    }
    if (started == total) {
        uv_timer_stop(&tick);
        uv_timer_start(&deadline, on_deadline, 10000, 0);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(uint32_t *v, long n, double p)
{
    long i = (long)(p * (double)(n - 1) + 0.5);
    return n ? v[i] : 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_TCP ? on_closed : NULL);
}

static void usage(void)
{
    fputs("usage: llmux-openloop [-r RATE] [-d SECS] [-w SECS] [-c MAXCONN] "
          "[-g] [-m MODEL] [-l LABEL] http://HOST:PORT/PATH\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *label = "openloop", *model = "gpt-4o-mini", *url;
    char host[256], body[512];
    const char *path;
    int opt, get = 0, port;
    long n;
    while ((opt = getopt(argc, argv, "r:d:w:c:gm:l:")) != -1) {
        switch (opt) {
        case 'r':
            rate = atof(optarg);
            break;
        case 'd':
            secs = atof(optarg);
            break;
        case 'w':
            warm = atof(optarg);
            break;
        case 'c':
            max_conns = atol(optarg);
            break;
        case 'g':
            get = 1;
            break;
        case 'm':
            model = optarg;
            break;
        case 'l':
            label = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind != argc - 1 || rate <= 0 || secs <= 0 || warm < 0 ||
        max_conns < 1)
        usage();
    url = argv[optind];
    if (sscanf(url, "http://%255[^:/]:%d", host, &port) != 2 ||
        !(path = strchr(url + 7, '/')) || uv_ip4_addr(host, port, &addr))
        usage();
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"What is the capital of France?\"}],\"max_tokens\":64}",
             model);
    n = get ? asprintf(&request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path,
                       host, port)
            : asprintf(&request,
                       "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                       "Content-Type: application/json\r\n"
                       "Authorization: Bearer sk-test\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       path, host, port, strlen(body), body);
    if (n < 0)
        return 2;
    request_len = (size_t)n;
    /* first: a probe may be told to stop at once */
    loop = uv_default_loop();
    uv_signal_init(loop, &term);
    uv_signal_start(&term, on_term, SIGTERM);
    uv_unref((uv_handle_t *)&term);
    warm_n = (long)(warm * rate);
    total = warm_n + (long)(secs * rate);
    n = total - warm_n;
    ttfb = malloc(((size_t)n + 1) * sizeof *ttfb);
    sched = malloc(((size_t)n + 1) * sizeof *sched);
    /* a request never answered sorts last, as "forever" */
    memset(ttfb, 0xff, ((size_t)n + 1) * sizeof *ttfb);
    memset(sched, 0xff, ((size_t)n + 1) * sizeof *sched);
    due = calloc((size_t)total + 1, sizeof *due);
    waiting = calloc((size_t)total + 1, sizeof *waiting);
    uv_timer_init(loop, &tick);
    uv_timer_init(loop, &deadline);
    t0 = uv_hrtime();
    /* every millisecond: at 5,000/s five requests start a tick, each on
     * its own connection write; their due times stay exact */
    uv_timer_start(&tick, on_tick, 0, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    if (finished < total) {
        fprintf(stderr, "openloop: %ld requests without an answer\n",
                total - finished);
        errs += total - finished;
    }
    {
        long recorded = total - warm_n; /* fewer after SIGTERM */
        qsort(ttfb, (size_t)recorded, sizeof *ttfb, cmp_u32);
        qsort(sched, (size_t)recorded, sizeof *sched, cmp_u32);
        printf("%s rate %.0f sent %ld ok %ld err %ld ttfb_p50_us %u "
               "ttfb_p90_us %u ttfb_p99_us %u ttfb_max_us %u sched_p99_us %u "
               "sched_max_us %u conns %ld\n",
               label, rate, total, ok, errs, pct(ttfb, recorded, 0.50),
               pct(ttfb, recorded, 0.90), pct(ttfb, recorded, 0.99),
               pct(ttfb, recorded, 1.0), pct(sched, recorded, 0.99),
               pct(sched, recorded, 1.0), nconns);
    }
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    free(request);
    free(ttfb);
    free(sched);
    free(due);
    free(waiting);
    return errs ? 1 : 0;
}
