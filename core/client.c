/*
 * core/client.c: the engine. One libcurl multi handle per client, driven
 * by libuv (multi_socket_action, one uv_poll per socket, one uv_timer),
 * and the whole lifecycle of a submitted request in one place:
 *
 *   submit -> prepare (resolve, encode) -> attempt (easy handle in the
 *   multi) -> answer decoded / stream events delivered -> [retry wait ->
 *   attempt]... -> finish: done callback exactly once -> free.
 *
 * Cancellation and client close never run user callbacks inline: they mark
 * transfers and let the client's "defer" timer finish them from the loop.
 * Handles are freed only in their close callbacks.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <pthread.h>
#include <uv.h>

#include "internal.h"

#define DEFAULT_MAX_RETRIES        2
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_BACKOFF_MS         500L /* the first retry's wait */
#define BACKOFF_CAP_MS             8000.0
#define DEFAULT_MAX_RESPONSE       (64u * 1024u * 1024u)
#define DEFAULT_MAX_EVENT          LLMUX__MAX_EVENT_DEFAULT
#define RETRY_AFTER_CAP_MS         60000.0
/* libcurl's receive buffer for a stream (its default is 16 KiB, and it is
 * most of a stream's memory). Stream events arrive a few hundred bytes at
 * a time; a longer event just takes several reads, and the framer joins
 * them. 10,000 streams in flight save 140 MiB against the default; fast
 * streams pay 2-3 % more CPU in recv() calls (bench/RESULTS.md;
 * -DSTREAM_BUFFER=N builds a variant to compare). */
#ifndef STREAM_BUFFER
#define STREAM_BUFFER 2048L
#endif
/* New transfers started per loop iteration; more wait in the queue for the
 * next one. curl sets up every new transfer in the one timer call that
 * follows (about 150 us each), so 10,000 submitted at once held the loop
 * for 1.6 s; with 64 per iteration the worst iteration at 10,000 streams is
 * 40-90 ms (256: 90-110 ms), for the same wall and CPU time (see
 * bench/RESULTS.md; -DSTARTS_PER_TURN=N builds a variant to compare). */
#ifndef STARTS_PER_TURN
#define STARTS_PER_TURN 64
#endif

typedef struct llmux__sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct llmux_client *c;
    struct llmux__sock *prev, *next;
} llmux__sock;

enum xstate { X_ACTIVE = 1, X_WAIT, X_QUEUED, X_DONE };

/* A log-scale histogram of milliseconds: 4 buckets per power of two of
 * tenths of a millisecond, so percentiles are within about 20%. */
#define HIST_BUCKETS 128
typedef struct llmux__hist {
    uint64_t n;
    uint32_t b[HIST_BUCKETS];
} llmux__hist;

/* Counters per provider name. */
typedef struct llmux__pstat {
    char *name;
    llmux_stats st;
    struct llmux__pstat *next;
} llmux__pstat;

/* A token bucket: `rate` tokens per ms up to `cap`; rate 0 = no limit. */
typedef struct llmux__bucket {
    double tokens, cap, rate;
    uint64_t last; /* loop time of the last refill */
} llmux__bucket;

/*
 * A lane: the requests to one endpoint (scheme://host:port of the URL)
 * with one API key. Rate limits, server pauses and the FIFO queue are per
 * lane, as providers count them per key (per account or project); the
 * per-endpoint in-flight limit counts the endpoint's requests whatever
 * their key, on its key-less lane (`host`).
 */
typedef struct llmux__endpoint {
    char *key; /* "scheme://host:port", then "#" and a hash of the API key
                  for a keyed lane (the key itself is never kept) */
    struct llmux__endpoint *host; /* the key-less lane (itself there) */
    size_t in_flight;             /* of the endpoint: on `host` only */
    llmux__bucket rq, tk;         /* requests and tokens per minute */
    uint64_t paused_until; /* a 429's Retry-After or an exhausted quota */
    struct llmux__xfer *qhead, *qtail; /* waiting, FIFO */
    struct llmux__endpoint *next;
} llmux__endpoint;

/* What only an attempt on the wire needs, allocated when a request leaves
 * the queue: 100,000 queued requests do not carry 700 bytes each of it. */
typedef struct xfer_live {
    llmux__framer framer;
    llmux_chunk chunk;
    llmux__buf held; /* paused mid-read: the bytes after the last event
                        delivered, fed again on resume */
    char errbuf[CURL_ERROR_SIZE];
} xfer_live;

struct llmux__xfer {
    struct llmux_client *c;
    llmux_request *req;
    int owns_req;
    llmux_chunk_cb on_chunk;
    llmux_done_cb on_done;
    void *ud;
    llmux__prepared prep;
    CURL *easy;
    struct curl_slist *hdrs;
    llmux_response *res;
    llmux__buf body;
    xfer_live *live; /* NULL until the first attempt */
    int state;
    int started;        /* first body byte seen this attempt */
    int answered;       /* the answer began: a whole reply's headers, a
                           stream's first byte (first_byte_timeout met) */
    int streaming;      /* this attempt's body goes through the framer */
    int got_done;       /* stream end marker seen */
    int delivered;      /* chunks reached the caller: no more retries */
    int err;            /* error found inside a curl callback */
    int cancel;         /* LLMUX_ECANCELED when cancelled */
    int queued;         /* on the client's defer list */
    int timer_on;       /* retry timer initialised and not yet closed */
    int start_pending;  /* submitted from inside curl: started by on_defer */
    int defer_code;     /* finish with this code from on_defer */
    int paused;         /* reading stopped by llmux_request_pause */
    int resume_pending; /* llmux_request_resume: unpaused by on_defer */
    int done_pending;   /* curl finished while events were held: the
                           finish waits for them (done_result) */
    CURLcode done_result;
    int holds_slot; /* counted in the client's and endpoint's in_flight */
    const char *timeout_which;   /* the watchdog that fired, or NULL */
    long first_byte_ms, idle_ms; /* watchdogs, 0 = none */
    uint64_t seq;                /* submission order, for the queues */
    double est_tokens;           /* charged to the endpoint's token bucket */
    uint64_t t_submit, t_queued, t_attempt; /* loop times in ms */
    llmux__endpoint *ep;
    struct llmux__xfer *wnext, *wprev; /* the endpoint's wait queue */
    int attempts;
    int max_retries;
    long backoff_ms; /* first wait without a Retry-After; doubles */
    size_t received;
    long events;
    uint64_t deadline; /* loop time in ms, 0 = none */
    long connect_timeout_ms;
    double retry_after_ms;
    uv_timer_t timer;
    struct llmux__xfer *prev, *next; /* client's list */
    struct llmux__xfer *qnext;       /* defer list */
};
typedef struct llmux__xfer xfer;

struct llmux_client {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    int owns_loop;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout */
    uv_timer_t defer; /* finishing cancelled transfers from the loop */
    int in_curl;      /* inside curl_multi_socket_action */
    int in_defer;     /* inside on_defer: safe to release curl */
    int closing;
    int free_pending; /* llmux_client_free from a callback: llmux_client_run
                         finishes it once its loop run returns */
    int handles_open; /* uv handles whose close callback is pending */
    llmux_close_cb on_closed;
    void *close_ud;
    xfer *head; /* submitted, not yet finished */
    size_t pending;
    xfer *qhead, *qtail;
    llmux__sock *socks;
    /* options */
    char *plugin_path;
    char *key_env_allow; /* ':'-separated variable names */
    char **headers;
    size_t n_headers;
    int max_retries;
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_response;
    size_t max_event;
    char *proxy;
    char *ca_file;
    int insecure;
    int warned_insecure; /* the insecure warning was logged */
    long max_connections;
    llmux_log_cb log;
    void *log_ud;
    int log_level;
    char user_agent[64];
    uint64_t rng;
    long first_byte_timeout_ms;
    long idle_timeout_ms;
    size_t max_in_flight;
    size_t max_per_endpoint;
    size_t max_queue;
    /* limits */
    size_t in_flight, queued;
    uint64_t seq;
    llmux__endpoint *endpoints;
    double rpm, tpm;      /* default rate limits per endpoint */
    uv_timer_t pump_t;    /* wakes the queue when a rate limit allows */
    uv_prepare_t turn;    /* each loop iteration: a new STARTS_PER_TURN */
    unsigned turn_starts; /* transfers started in this iteration */
    int turn_held;        /* some wait only for the next iteration */
    /* observability */
    llmux_stats st;
    llmux__hist h_queue, h_first_byte, h_total;
    llmux__pstat *pstats;
};

/* Non-zero while this thread runs an llmux callback (llmux_run refuses). */
#if defined(__GNUC__)
static __thread int tl_in_callback;
#else
static _Thread_local int tl_in_callback;
#endif

int llmux__callback_depth(int delta)
{
    tl_in_callback += delta;
    return tl_in_callback;
}

static void xfer_finish(xfer *x, int code, int transport, const char *msg);
static int xfer_attempt(xfer *x);
static void retry_policy(xfer *x);
static void defer_push(xfer *x);
static void client_maybe_closed(struct llmux_client *c);

/* ---- global init --------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;
static int global_done;

static void global_init_once(void)
{
    global_rc =
        curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : LLMUX_ENOMEM;
    global_done = global_rc == 0;
}

LLMUX_EXTERN int llmux_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

LLMUX_EXTERN void llmux_global_cleanup(void)
{
    llmux__providers_cleanup();
    if (global_done) {
        curl_global_cleanup();
        global_done = 0;
        global_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    }
}

/* ---- logging ------------------------------------------------------------- */

static void client_log(struct llmux_client *c, int level, const char *fmt, ...)
    LLMUX_PRINTF(3, 4);

static void client_log(struct llmux_client *c, int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (!c->log || level > c->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->log(level, buf, c->log_ud);
}

/* Routes plugin log lines to this client's hook while the loop works for
 * it; returns the previous target for llmux__log_target_swap(). */
static llmux__log_target client_log_target(struct llmux_client *c)
{
    llmux__log_target t;
    memset(&t, 0, sizeof t);
    t.log = c->log;
    t.log_ud = c->log_ud;
    t.log_level = c->log_level;
    return llmux__log_target_swap(t);
}

/* ---- curl <-> uv wiring -------------------------------------------------- */

static void check_multi_info(struct llmux_client *c);
static void watchdog_arm(struct llmux__xfer *x, long ms);

static void sock_closed(uv_handle_t *h)
{
    llmux__sock *s = h->data;
    struct llmux_client *c = s->c;
    llmux__free(s);
    c->handles_open--;
    client_maybe_closed(c);
}

static void sock_close(llmux__sock *s)
{
    struct llmux_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    llmux__sock *s = h->data;
    struct llmux_client *c = s->c;
    int running, flags = 0;
    /* An error (a connection reset) comes without events: curl then
     * reads and writes the socket itself, so the data that arrived before
     * the reset reaches the caller and the reset is reported as such.
     * CURL_CSELECT_ERR alone made curl drop both ("select/poll returned
     * error"). */
    if (status < 0)
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    {
        llmux__log_target old = client_log_target(c);
        c->in_curl++;
        curl_multi_socket_action(c->multi, s->fd, flags, &running);
        c->in_curl--;
        check_multi_info(c);
        llmux__log_target_swap(old);
    }
}

static void on_curl_timer(uv_timer_t *t)
{
    struct llmux_client *c = t->data;
    int running;
    llmux__log_target old = client_log_target(c);
    c->in_curl++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl--;
    check_multi_info(c); /* transfers also end on the timer path */
    llmux__log_target_swap(old);
}

static int curl_timer_cb(CURLM *m, long ms, void *ud)
{
    struct llmux_client *c = ud;
    (void)m;
    if (ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_curl_timer, (uint64_t)ms, 0);
    return 0;
}

static int curl_socket_cb(CURL *e, curl_socket_t fd, int action, void *ud,
                          void *sockp)
{
    struct llmux_client *c = ud;
    llmux__sock *s = sockp;
    int ev = 0;
    (void)e;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = llmux__calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd)) {
            llmux__free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        c->handles_open++;
        curl_multi_assign(c->multi, fd, s);
    }
    if (action != CURL_POLL_OUT)
        ev |= UV_READABLE;
    if (action != CURL_POLL_IN)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* ---- histograms ---------------------------------------------------------- */

static void hist_add(llmux__hist *h, uint64_t ms_tenths)
{
    unsigned idx = 0;
    if (ms_tenths > 0) {
        unsigned lg = 0;
        uint64_t v = ms_tenths;
        while (v >> (lg + 1))
            lg++;
        /* 4 sub-buckets from the two bits below the leading one */
        idx = 1 + lg * 4 +
              (unsigned)(lg >= 2 ? (ms_tenths >> (lg - 2)) & 3
                                 : (ms_tenths << (2 - lg)) & 3);
        if (idx >= HIST_BUCKETS)
            idx = HIST_BUCKETS - 1;
    }
    h->b[idx]++;
    h->n++;
}

/* The value (ms) below which a fraction q of the samples lie. */
static double hist_pct(const llmux__hist *h, double q)
{
    uint64_t want, acc = 0;
    unsigned i;
    if (!h->n)
        return 0;
    want = (uint64_t)(q * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        acc += h->b[i];
        if (acc > want)
            break;
    }
    if (i == 0)
        return 0;
    {
        unsigned lg = (i - 1) / 4, sub = (i - 1) % 4;
        double lo = (double)((uint64_t)1 << lg) * (1.0 + sub / 4.0);
        double hi = (double)((uint64_t)1 << lg) * (1.0 + (sub + 1) / 4.0);
        return (lo + hi) / 2.0 / 10.0; /* tenths of ms -> ms */
    }
}

/* ---- limits and queues
 * ------------------------------------------------------- */

/* The lane named key[0..n), created (with `host`) when new. */
static llmux__endpoint *lane_get(struct llmux_client *c, const char *key,
                                 size_t n, llmux__endpoint *host)
{
    llmux__endpoint *e;
    for (e = c->endpoints; e; e = e->next)
        if (strlen(e->key) == n && memcmp(e->key, key, n) == 0)
            return e;
    e = llmux__calloc(1, sizeof *e);
    if (!e || !(e->key = llmux__strndup(key, n))) {
        llmux__free(e);
        return NULL;
    }
    e->host = host ? host : e;
    e->next = c->endpoints;
    c->endpoints = e;
    return e;
}

/* The lane of a URL's scheme://host:port and an API key (may be NULL). */
static llmux__endpoint *endpoint_get(struct llmux_client *c, const char *url,
                                     const char *api_key)
{
    const char *p = strstr(url, "://");
    llmux__endpoint *host;
    char *k;
    size_t n;
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    p = p ? p + 3 : url;
    n = (size_t)(p - url) + strcspn(p, "/?#");
    host = lane_get(c, url, n, NULL);
    if (!host || !api_key || !*api_key)
        return host;
    for (p = api_key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    if (!(k = llmux__malloc(n + 18)))
        return NULL;
    memcpy(k, url, n);
    snprintf(k + n, 18, "#%016llx", (unsigned long long)h);
    host = lane_get(c, k, n + 17, host);
    llmux__free(k);
    return host;
}

/* Per-minute limit -> bucket with one second of burst. */
static void bucket_set(llmux__bucket *b, double per_minute, uint64_t now)
{
    double rate = per_minute / 60000.0, cap = per_minute / 60.0;
    if (cap < 1)
        cap = 1;
    if (b->rate == rate && b->cap == cap)
        return;
    if (!b->rate)
        b->tokens = cap; /* a new limit starts full */
    else if (b->tokens > cap)
        b->tokens = cap;
    b->rate = rate;
    b->cap = cap;
    b->last = now;
}

static void bucket_refill(llmux__bucket *b, uint64_t now)
{
    if (!b->rate || now <= b->last)
        return;
    b->tokens += (double)(now - b->last) * b->rate;
    if (b->tokens > b->cap)
        b->tokens = b->cap;
    b->last = now;
}

/* ms until `need` tokens are there (0 = now). */
static uint64_t bucket_wait(llmux__bucket *b, double need, uint64_t now)
{
    if (!b->rate)
        return 0;
    bucket_refill(b, now);
    if (need > b->cap)
        need = b->cap; /* a request bigger than the burst waits for a full
                          bucket, then goes */
    if (b->tokens >= need)
        return 0;
    return (uint64_t)((need - b->tokens) / b->rate) + 1;
}

/* ms until the endpoint's rate limits let `x` go (0 = now). */
static uint64_t rate_wait(const struct llmux_client *c, llmux__endpoint *e,
                          const xfer *x)
{
    uint64_t now = uv_now(c->loop), w, t;
    if (e->paused_until > now)
        return e->paused_until - now;
    w = bucket_wait(&e->rq, 1, now);
    t = bucket_wait(&e->tk, x ? x->est_tokens : 0, now);
    return w > t ? w : t;
}

/* The limits and rate limits allow x to start. */
static int limits_allow(const struct llmux_client *c, llmux__endpoint *e,
                        const xfer *x)
{
    return (!c->max_in_flight || c->in_flight < c->max_in_flight) &&
           (!c->max_per_endpoint || e->host->in_flight < c->max_per_endpoint) &&
           rate_wait(c, e, x) == 0;
}

/* ... and this loop iteration has starts left. */
static int can_start_x(const struct llmux_client *c, llmux__endpoint *e,
                       const xfer *x)
{
    return c->turn_starts < STARTS_PER_TURN && limits_allow(c, e, x);
}

static void take_slot(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux__endpoint *e = x->ep;
    x->holds_slot = 1;
    c->turn_starts++;
    c->in_flight++;
    e->host->in_flight++;
    if (e->rq.rate)
        e->rq.tokens -= 1;
    if (e->tk.rate)
        e->tk.tokens -= x->est_tokens > e->tk.cap ? e->tk.cap : x->est_tokens;
    if (c->in_flight > c->st.max_in_flight)
        c->st.max_in_flight = c->in_flight;
}

static void enqueue(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux__endpoint *e = x->ep;
    x->state = X_QUEUED;
    x->t_queued = uv_now(c->loop);
    x->wnext = NULL;
    x->wprev = e->qtail;
    if (e->qtail)
        e->qtail->wnext = x;
    else
        e->qhead = x;
    e->qtail = x;
    c->queued++;
    if (c->queued > c->st.max_queued)
        c->st.max_queued = c->queued;
}

static void dequeue(xfer *x)
{
    llmux__endpoint *e = x->ep;
    if (x->wprev)
        x->wprev->wnext = x->wnext;
    else
        e->qhead = x->wnext;
    if (x->wnext)
        x->wnext->wprev = x->wprev;
    else
        e->qtail = x->wprev;
    x->wnext = x->wprev = NULL;
    x->c->queued--;
    hist_add(&x->c->h_queue, (uv_now(x->c->loop) - x->t_queued) * 10);
}

static void pump(struct llmux_client *c);

static void on_pump_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* Some requests wait only for the next iteration's starts: the prepare
 * handle keeps the loop alive until they start, since nothing else may be
 * left on it (their starts ran out on requests that ended at once). */
static void turn_hold(struct llmux_client *c)
{
    if (!c->turn_held) {
        c->turn_held = 1;
        uv_ref((uv_handle_t *)&c->turn);
    }
}

/* Before each poll: a new budget of starts, and the requests that waited
 * only for it start (their curl timer then makes the poll not block). */
static void on_turn(uv_prepare_t *p)
{
    struct llmux_client *c = p->data;
    c->turn_starts = 0;
    if (c->turn_held) {
        c->turn_held = 0;
        uv_unref((uv_handle_t *)&c->turn);
        pump(c); /* may hold again */
    }
}

/* Starts queued requests while the limits allow, oldest first across
 * endpoints. O(endpoints) per start. A start that fails is finished from
 * the defer timer, so done callbacks never nest here. */
static void pump(struct llmux_client *c)
{
    while (c->queued && !c->closing &&
           (!c->max_in_flight || c->in_flight < c->max_in_flight)) {
        llmux__endpoint *e, *best = NULL;
        xfer *x;
        int rc;
        uint64_t wake = 0;
        if (c->turn_starts >= STARTS_PER_TURN) {
            turn_hold(c); /* on_turn goes on */
            return;
        }
        for (e = c->endpoints; e; e = e->next) {
            uint64_t w;
            if (!e->qhead || (c->max_per_endpoint &&
                              e->host->in_flight >= c->max_per_endpoint))
                continue;
            w = rate_wait(c, e, e->qhead);
            if (w) { /* rate limited: remember when to look again */
                if (!wake || w < wake)
                    wake = w;
                continue;
            }
            if (!best || e->qhead->seq < best->qhead->seq)
                best = e;
        }
        if (!best) {
            if (wake)
                uv_timer_start(&c->pump_t, on_pump_timer, wake, 0);
            return;
        }
        x = best->qhead;
        dequeue(x);
        take_slot(x);
        rc = xfer_attempt(x);
        if (rc) {
            x->state = X_WAIT;
            x->defer_code = rc;
            defer_push(x);
        }
    }
}

static const char *hdr(CURL *e, const char *name);

/* Rate limits of an endpoint: the request's rpm=/tpm=, else the client's
 * defaults; the last request that names one sets it. */
static void endpoint_limits(struct llmux_client *c, llmux__endpoint *e,
                            const llmux__config *cfg)
{
    const char *v;
    uint64_t now = uv_now(c->loop);
    double rpm = c->rpm, tpm = c->tpm;
    if ((v = llmux__config_get(cfg, "rpm")) != NULL)
        rpm = atof(v); /* validated integer: locale-safe */
    if ((v = llmux__config_get(cfg, "tpm")) != NULL)
        tpm = atof(v);
    if (rpm > 0)
        bucket_set(&e->rq, rpm, now);
    if (tpm > 0)
        bucket_set(&e->tk, tpm, now);
}

/* Tokens a request will likely cost before it is sent: its text at about
 * four characters a token, plus the completion it may ask for. */
static double estimate_tokens(const llmux_request *r)
{
    size_t chars = 0, i;
    for (i = 0; i < r->n_msgs; i++) {
        if (r->msgs[i].content)
            chars += strlen(r->msgs[i].content);
        if (r->msgs[i].content_json)
            chars += strlen(r->msgs[i].content_json);
    }
    if (r->prompt)
        chars += strlen(r->prompt);
    for (i = 0; i < r->n_inputs; i++)
        chars += strlen(r->inputs[i]);
    return (double)chars / 4.0 + 1.0 +
           (r->has & LLMUX_HAS_MAX_TOKENS ? (double)r->max_tokens : 0.0);
}

/* Parses OpenAI's reset durations ("12ms", "1s", "6m0s", "1h2m3.5s") into
 * ms; -1 when malformed. */
static double parse_reset(const char *s)
{
    double total = 0;
    int any = 0;
    while (s && *s) {
        double v = 0, scale = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        if (*s == '.') {
            double f = 0.1;
            for (s++; *s >= '0' && *s <= '9'; s++, f /= 10)
                v += (*s - '0') * f;
        }
        if (!digits)
            return -1;
        if (s[0] == 'm' && s[1] == 's')
            scale = 1, s += 2;
        else if (*s == 'h')
            scale = 3600000, s++;
        else if (*s == 'm')
            scale = 60000, s++;
        else if (*s == 's')
            scale = 1000, s++;
        else
            return -1;
        total += v * scale;
        any = 1;
    }
    return any ? total : -1;
}

/* Server feedback on the endpoint's limits: a 429's Retry-After pauses the
 * endpoint for every request of the client; OpenAI's and Mistral's
 * x-ratelimit-* headers bring the buckets down to what is left. */
static void rate_feedback(xfer *x, long status)
{
    llmux__endpoint *e = x->ep;
    uint64_t now = uv_now(x->c->loop);
    const char *v;
    if (status == 429 && x->retry_after_ms >= 0) {
        uint64_t until = now + (uint64_t)x->retry_after_ms;
        if (until > e->paused_until)
            e->paused_until = until;
    }
    if (!e->rq.rate && !e->tk.rate && status != 429)
        return; /* no limits to adapt: spare the header scans */
    if ((v = hdr(x->easy, "x-ratelimit-remaining-requests")) != NULL ||
        (v = hdr(x->easy, "x-ratelimit-remaining-req-minute")) != NULL) {
        double left = atof(v);
        if (e->rq.rate) {
            bucket_refill(&e->rq, now);
            if (left < e->rq.tokens)
                e->rq.tokens = left;
        }
        if (left < 1) {
            const char *r = hdr(x->easy, "x-ratelimit-reset-requests");
            double ms = r ? parse_reset(r) : -1;
            if (ms > 0 && now + (uint64_t)ms > e->paused_until)
                e->paused_until = now + (uint64_t)ms;
        }
    }
    if (e->tk.rate &&
        ((v = hdr(x->easy, "x-ratelimit-remaining-tokens")) != NULL ||
         (v = hdr(x->easy, "x-ratelimit-remaining-tokens-minute")) != NULL)) {
        double left = atof(v);
        bucket_refill(&e->tk, now);
        if (left < e->tk.tokens)
            e->tk.tokens = left;
    }
}

/* Undoes take_slot's counting (not the rate tokens: a request that was
 * sent, or nearly, costs them). */
static void give_slot(xfer *x)
{
    if (!x->holds_slot)
        return;
    x->holds_slot = 0;
    x->c->in_flight--;
    x->ep->host->in_flight--;
}

/* Gives the slot back and lets the queue use it. */
static void release_slot(xfer *x)
{
    if (!x->holds_slot)
        return;
    give_slot(x);
    pump(x->c);
}

/* ---- client -------------------------------------------------------------- */

/* Where each version's fields end. */
#define OPTIONS_V1_SIZE offsetof(llmux_client_options, first_byte_timeout_ms)
#define OPTIONS_V2_SIZE offsetof(llmux_client_options, key_env_allow)

LLMUX_EXTERN void llmux_client_options_init_size(llmux_client_options *o,
                                                 size_t size)
{
    if (!o || size < OPTIONS_V1_SIZE)
        return;
    if (size > sizeof *o)
        size = sizeof *o;
    memset(o, 0, size);
    o->version = size >= sizeof *o         ? LLMUX_CLIENT_OPTIONS_VERSION
                 : size >= OPTIONS_V2_SIZE ? 2
                                           : 1;
    o->max_retries = -1;
}

/* The function programs built against version 1 and 2 headers call (the
 * header now has a macro of that name): their struct is at most a
 * version 2 one, so only that much is written. */
LLMUX_EXTERN void(llmux_client_options_init)(llmux_client_options *o);
LLMUX_EXTERN void(llmux_client_options_init)(llmux_client_options *o)
{
    llmux_client_options_init_size(o, OPTIONS_V2_SIZE);
}

int llmux__client_options_copy(llmux_client_options *dst,
                               const llmux_client_options *src)
{
    llmux_client_options_init(dst);
    if (!src)
        return 0;
    if (src->version == 0 || src->version > LLMUX_CLIENT_OPTIONS_VERSION)
        return LLMUX_EINVAL;
    /* an older caller's struct ends before the later versions' fields */
    memcpy(dst, src,
           src->version >= 3   ? sizeof *dst
           : src->version == 2 ? OPTIONS_V2_SIZE
                               : OPTIONS_V1_SIZE);
    return 0;
}

static void client_free_mem(struct llmux_client *c)
{
    size_t i;
    while (c->pstats) {
        llmux__pstat *p = c->pstats;
        c->pstats = p->next;
        llmux__free(p->name);
        llmux__free(p);
    }
    while (c->endpoints) {
        llmux__endpoint *e = c->endpoints;
        c->endpoints = e->next;
        llmux__free(e->key);
        llmux__free(e);
    }
    for (i = 0; i < c->n_headers; i++)
        llmux__free(c->headers[i]);
    llmux__free(c->headers);
    llmux__free(c->plugin_path);
    llmux__free(c->key_env_allow);
    llmux__free(c->proxy);
    llmux__free(c->ca_file);
    llmux__free(c);
}

LLMUX_EXTERN int llmux_client_new(llmux_client **out,
                                  const llmux_client_options *opts)
{
    llmux_client_options def;
    struct llmux_client *c;
    size_t i;
    int rc;
    if (!out)
        return LLMUX_EINVAL;
    *out = NULL;
    if (!opts) {
        llmux_client_options_init(&def);
        opts = &def;
    }
    if (opts->version == 0 || opts->version > LLMUX_CLIENT_OPTIONS_VERSION)
        return LLMUX_EINVAL;
    if ((rc = llmux_global_init()))
        return rc;
    c = llmux__calloc(1, sizeof *c);
    if (!c)
        return LLMUX_ENOMEM;
    c->max_retries =
        opts->max_retries >= 0 ? opts->max_retries : DEFAULT_MAX_RETRIES;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 0;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0
                                ? opts->connect_timeout_ms
                                : DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_response = opts->max_response_bytes ? opts->max_response_bytes
                                               : DEFAULT_MAX_RESPONSE;
    c->max_event =
        opts->max_event_bytes ? opts->max_event_bytes : DEFAULT_MAX_EVENT;
    c->insecure = opts->insecure;
    c->max_connections = opts->max_connections;
    c->log = opts->log;
    c->log_ud = opts->log_userdata;
    c->log_level = opts->log_level;
    c->max_queue = 100000;
    if (opts->version >= 2) {
        c->first_byte_timeout_ms =
            opts->first_byte_timeout_ms > 0 ? opts->first_byte_timeout_ms : 0;
        c->idle_timeout_ms =
            opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms : 0;
        c->max_in_flight = opts->max_in_flight;
        c->max_per_endpoint = opts->max_in_flight_per_endpoint;
        if (opts->max_queue)
            c->max_queue = opts->max_queue;
        c->rpm = opts->requests_per_minute > 0 ? opts->requests_per_minute : 0;
        c->tpm = opts->tokens_per_minute > 0 ? opts->tokens_per_minute : 0;
    }
    if (opts->version >= 3 && opts->key_env_allow &&
        !(c->key_env_allow = llmux__strdup(opts->key_env_allow)))
        goto oom;
    c->rng =
        (uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL) ^ 0x9E3779B97F4A7C15ull;
    snprintf(c->user_agent, sizeof c->user_agent, "llmux/%s",
             LLMUX_VERSION_STRING);
    if ((opts->plugin_path &&
         !(c->plugin_path = llmux__strdup(opts->plugin_path))) ||
        (opts->proxy && !(c->proxy = llmux__strdup(opts->proxy))) ||
        (opts->ca_file && !(c->ca_file = llmux__strdup(opts->ca_file))))
        goto oom;
    if (opts->n_headers) {
        if (!opts->headers)
            goto inval;
        c->headers = llmux__calloc(opts->n_headers, sizeof *c->headers);
        if (!c->headers)
            goto oom;
        for (i = 0; i < opts->n_headers; i++) {
            const char *h = opts->headers[i];
            if (!h || !strchr(h, ':') || strpbrk(h, "\r\n"))
                goto inval;
            if (!(c->headers[c->n_headers++] = llmux__strdup(h)))
                goto oom;
        }
    }
    if (opts->loop) {
        c->loop = opts->loop;
    } else {
        if (uv_loop_init(&c->own_loop))
            goto oom;
        c->loop = &c->own_loop;
        c->owns_loop = 1;
    }
    c->multi = curl_multi_init();
    if (!c->multi) {
        if (c->owns_loop)
            uv_loop_close(&c->own_loop);
        goto oom;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if (c->max_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                          c->max_connections);
    uv_timer_init(c->loop, &c->timer);
    uv_timer_init(c->loop, &c->defer);
    uv_timer_init(c->loop, &c->pump_t);
    uv_prepare_init(c->loop, &c->turn);
    c->timer.data = c;
    c->defer.data = c;
    c->pump_t.data = c;
    c->turn.data = c;
    c->handles_open = 4;
    /* an idle client must not keep the loop alive */
    uv_unref((uv_handle_t *)&c->defer);
    uv_unref((uv_handle_t *)&c->turn);
    uv_prepare_start(&c->turn, on_turn);
    *out = c;
    return 0;
inval:
    client_free_mem(c);
    return LLMUX_EINVAL;
oom:
    client_free_mem(c);
    return LLMUX_ENOMEM;
}

LLMUX_EXTERN struct uv_loop_s *llmux_client_loop(const llmux_client *c)
{
    return c ? c->loop : NULL;
}

LLMUX_EXTERN size_t llmux_client_pending(const llmux_client *c)
{
    return c ? c->pending : 0;
}

LLMUX_EXTERN int llmux_client_stats(const llmux_client *c, llmux_stats *out)
{
    unsigned int v;
    if (!c || !out || out->version == 0 || out->version > LLMUX_STATS_VERSION)
        return LLMUX_EINVAL;
    v = out->version;
    *out = c->st;
    out->version = v;
    out->in_flight = c->in_flight;
    out->queued = c->queued;
    out->queue_wait_p50 = hist_pct(&c->h_queue, 0.50);
    out->queue_wait_p99 = hist_pct(&c->h_queue, 0.99);
    out->first_byte_p50 = hist_pct(&c->h_first_byte, 0.50);
    out->first_byte_p90 = hist_pct(&c->h_first_byte, 0.90);
    out->first_byte_p99 = hist_pct(&c->h_first_byte, 0.99);
    out->total_p50 = hist_pct(&c->h_total, 0.50);
    out->total_p90 = hist_pct(&c->h_total, 0.90);
    out->total_p99 = hist_pct(&c->h_total, 0.99);
    return 0;
}

LLMUX_EXTERN int llmux_client_provider_stats(const llmux_client *c,
                                             const char *provider,
                                             llmux_stats *out)
{
    const llmux__pstat *p;
    unsigned int v;
    if (!c || !provider || !out || out->version == 0 ||
        out->version > LLMUX_STATS_VERSION)
        return LLMUX_EINVAL;
    v = out->version;
    memset(out, 0, sizeof *out);
    out->version = v;
    for (p = c->pstats; p; p = p->next)
        if (strcmp(p->name, provider) == 0) {
            *out = p->st;
            out->version = v;
            return 0;
        }
    return 0; /* none yet: all zero */
}

LLMUX_EXTERN int llmux_client_run(llmux_client *c, llmux_run_mode mode)
{
    uv_run_mode m = mode == LLMUX_RUN_ONCE     ? UV_RUN_ONCE
                    : mode == LLMUX_RUN_NOWAIT ? UV_RUN_NOWAIT
                                               : UV_RUN_DEFAULT;
    int rc;
    if (!c || !c->owns_loop)
        return LLMUX_EINVAL;
    rc = uv_run(c->loop, m);
    if (c->free_pending && !tl_in_callback) {
        llmux_client_free(c); /* asked for from a callback of this run */
        return 0;
    }
    return rc;
}

/* ---- the defer list: finishing outside curl callbacks and user calls ----- */

/* Frees a finished transfer once nothing refers to it any more: not the
 * defer list, not its retry timer's pending close. */
static void xfer_release(xfer *x)
{
    if (x->state == X_DONE && !x->queued && !x->timer_on)
        llmux__free(x);
}

static int on_event(void *ud, const llmux_event *ev);
static void xfer_done(xfer *x, CURLcode result);

/* Feeds the bytes held since a pause. Returns 1 when a callback paused
 * again (the rest stays held), else 0 (errors are left in x->err, for
 * curl's next write or the pending finish to report). */
static int feed_held(xfer *x)
{
    llmux__buf *h = &x->live->held;
    size_t used;
    int rc;
    if (!h->len || x->err)
        return 0;
    rc = llmux__framer_feed_part(&x->live->framer, h->p, h->len, on_event, x,
                                 &used);
    if (rc == LLMUX__FRAMER_STOP) {
        memmove(h->p, h->p + used, h->len - used);
        h->len -= used;
        if (h->len)
            return 1;
        return x->paused;
    }
    llmux__buf_reset(h);
    if (rc && !x->err)
        x->err = rc;
    return 0;
}

static void on_defer(uv_timer_t *t)
{
    struct llmux_client *c = t->data;
    llmux__log_target old = client_log_target(c);
    c->in_defer = 1;
    while (c->qhead) {
        xfer *x = c->qhead;
        c->qhead = x->qnext;
        if (!c->qhead)
            c->qtail = NULL;
        x->qnext = NULL;
        x->queued = 0;
        if (x->state == X_DONE) {
            xfer_release(x); /* finished while queued */
            continue;
        }
        if (x->resume_pending && !x->cancel && !c->closing) {
            x->resume_pending = 0;
            if (x->state == X_ACTIVE && x->easy && !x->paused) {
                /* events held since the pause go first; curl may then
                 * hand over what it held right here: count both as inside
                 * curl so callbacks submitting are deferred */
                c->in_curl++;
                if (feed_held(x)) {
                    c->in_curl--;
                    continue; /* paused again */
                }
                if (x->done_pending || x->err) {
                    /* the answer was complete, or a held event failed
                     * (a callback stopped the stream, a bad event): finish
                     * now rather than wait for bytes that may not come */
                    CURLcode r =
                        x->done_pending ? x->done_result : CURLE_WRITE_ERROR;
                    c->in_curl--;
                    x->done_pending = 0;
                    xfer_done(x, r);
                    continue;
                }
                curl_easy_pause(x->easy, CURLPAUSE_CONT);
                c->in_curl--;
                if (x->state == X_ACTIVE && x->err)
                    /* a callback stopped the stream during that delivery:
                     * curl says so only when its socket next moves */
                    xfer_done(x, CURLE_WRITE_ERROR);
                else if (x->idle_ms && x->state == X_ACTIVE)
                    watchdog_arm(x, x->idle_ms);
                check_multi_info(c);
            }
            continue;
        }
        if (x->start_pending && !x->cancel && !c->closing) {
            int rc;
            x->start_pending = 0;
            if (!can_start_x(c, x->ep, x)) {
                enqueue(x); /* its place was reserved by llmux_submit */
                pump(c);
                continue;
            }
            take_slot(x);
            rc = xfer_attempt(x);
            if (rc)
                xfer_finish(x, rc, 0, NULL);
            continue;
        }
        if (x->defer_code && !x->cancel) {
            xfer_finish(x, x->defer_code, 0, NULL); /* a failed start */
            continue;
        }
        if (x->state == X_QUEUED)
            dequeue(x);
        if (x->state == X_WAIT && x->timer_on)
            uv_timer_stop(&x->timer);
        xfer_finish(x, x->cancel ? x->cancel : LLMUX_ECANCELED, 0, NULL);
    }
    if (!c->closing)
        uv_unref((uv_handle_t *)&c->defer);
    client_maybe_closed(c); /* frees nothing yet: that waits for close
                               callbacks, so `c` stays valid here */
    c->in_defer = 0;
    llmux__log_target_swap(old);
}

static void defer_push(xfer *x)
{
    struct llmux_client *c = x->c;
    if (x->queued)
        return;
    x->queued = 1;
    x->qnext = NULL;
    if (c->qtail)
        c->qtail->qnext = x;
    else
        c->qhead = x;
    c->qtail = x;
    uv_ref((uv_handle_t *)&c->defer);
    uv_timer_start(&c->defer, on_defer, 0, 0);
}

/* ---- transfers ----------------------------------------------------------- */

static uint64_t now_ms(struct llmux_client *c)
{
    return uv_now(c->loop);
}

/* Copies the stream chunk's error report into the response. */
static void take_chunk_error(xfer *x)
{
    struct llmux_out *a = &x->res->o, *b = &x->live->chunk.o;
#define MOVE(f)                                                                \
    do {                                                                       \
        llmux__free(a->f);                                                     \
        a->f = b->f;                                                           \
        b->f = NULL;                                                           \
    } while (0)
    MOVE(err_type);
    MOVE(err_pcode);
    MOVE(err_param);
    MOVE(err_msg);
#undef MOVE
    a->err_code = b->err_code;
}

static int chunk_has_content(const struct llmux_out *o)
{
    return o->text.len || o->reasoning.len || o->refusal.len || o->n_calls ||
           o->finish || o->has_usage;
}

static int on_event(void *ud, const llmux_event *ev)
{
    xfer *x = ud;
    int rc;
    if (x->got_done)
        return 0; /* anything after the end marker is ignored */
    x->events++;
    rc = llmux__decode_event(&x->prep, ev, &x->live->chunk);
    if (rc < 0) {
        take_chunk_error(x);
        x->err = rc;
        return rc;
    }
    if (rc == LLMUX_EVENT_DONE)
        x->got_done = 1;
    if (!chunk_has_content(&x->live->chunk.o) && !x->live->chunk.o.id)
        return 0;
    if (llmux__out_merge(&x->res->o, &x->live->chunk.o)) {
        x->err = LLMUX_ENOMEM;
        return LLMUX_ENOMEM;
    }
    if (!chunk_has_content(&x->live->chunk.o))
        return 0; /* metadata only (id, model): nothing to deliver */
    x->delivered = 1;
    if (x->on_chunk && !x->cancel) {
        int stop;
        x->live->chunk.acc = &x->res->o;
        tl_in_callback++;
        stop = x->on_chunk(x->req, &x->live->chunk, x->ud);
        tl_in_callback--;
        if (stop) {
            x->err = LLMUX_EUSER;
            return LLMUX_EUSER;
        }
    }
    if (x->cancel)
        return x->cancel;
    /* paused by the callback: no more events until resumed */
    return x->paused ? LLMUX__FRAMER_STOP : 0;
}

static void xfer_done(xfer *x, CURLcode result);

/* The first-byte / idle watchdog fired: end the attempt as a timeout. */
static void on_watchdog(uv_timer_t *t)
{
    xfer *x = t->data;
    llmux__log_target old;
    if (x->state != X_ACTIVE || !x->easy)
        return;
    x->timeout_which = x->answered ? "idle_timeout" : "first_byte_timeout";
    old = client_log_target(x->c);
    xfer_done(x, CURLE_OPERATION_TIMEDOUT);
    llmux__log_target_swap(old);
}

static void watchdog_arm(xfer *x, long ms)
{
    if (!x->timer_on) {
        uv_timer_init(x->c->loop, &x->timer);
        x->timer.data = x;
        x->timer_on = 1;
        x->c->handles_open++;
    }
    uv_timer_start(&x->timer, on_watchdog, (uint64_t)ms, 0);
}

static int is_json_ctype(const char *ct)
{
    return ct && (strncasecmp(ct, "application/json", 16) == 0);
}

/* This attempt's body goes through the framer: a streamed request
 * answered 2xx with anything but JSON (an error comes whole). */
static int body_streams(xfer *x)
{
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    return x->req->stream && status >= 200 && status < 300 &&
           !is_json_ctype(ct);
}

/* The first byte of the answer: the first-byte watchdog is met and the
 * idle one (the longest silence mid-answer) takes over. */
static void answer_began(xfer *x)
{
    if (x->answered)
        return;
    x->answered = 1;
    if (x->idle_ms && !x->paused)
        watchdog_arm(x, x->idle_ms);
    else if (x->first_byte_ms && x->timer_on)
        uv_timer_stop(&x->timer);
}

/* Header lines; the blank one ends them. A whole reply has begun with
 * its headers (a body stalled after them is an idle timeout, not a
 * first-byte one, and there is one even without a first_byte_timeout); a
 * stream begins with its first event. */
static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    long status = 0;
    if (len > 2 || (len && p[0] != '\r' && p[0] != '\n'))
        return len;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && !body_streams(x))
        answer_began(x); /* not for a 1xx: its headers come next */
    return len;
}

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    int rc;
    if (x->cancel || x->err)
        return 0; /* aborts the transfer */
    x->received += len;
    if (x->received > x->c->max_response) {
        x->err = LLMUX_ETOOBIG;
        return 0;
    }
    if (x->answered && x->idle_ms && !x->paused)
        watchdog_arm(x, x->idle_ms); /* bytes arrived: the gap restarts */
    if (!x->started) {
        x->started = 1;
        /* the stats' first byte is the body's, whether or not the end of
         * the headers was watched */
        hist_add(&x->c->h_first_byte, (uv_now(x->c->loop) - x->t_attempt) * 10);
        answer_began(x);
        x->streaming = body_streams(x);
        if (x->streaming)
            llmux__framer_init(&x->live->framer, x->prep.http.framing,
                               x->c->max_event);
    }
    if (!x->streaming) {
        if (llmux__buf_append(&x->body, p, len)) {
            x->err = LLMUX_ENOMEM;
            return 0;
        }
        return len;
    }
    if (x->live->held.len) /* still holding: keep the order */
        rc = llmux__buf_append(&x->live->held, p, len) ? LLMUX_ENOMEM : 0;
    else {
        size_t used;
        rc = llmux__framer_feed_part(&x->live->framer, p, len, on_event, x,
                                     &used);
        if (rc == LLMUX__FRAMER_STOP)
            rc = used < len &&
                         llmux__buf_append(&x->live->held, p + used, len - used)
                     ? LLMUX_ENOMEM
                     : 0;
    }
    if (rc) {
        if (!x->err)
            x->err = rc;
        return 0;
    }
    return len;
}

static const char *hdr(CURL *e, const char *name)
{
    struct curl_header *h;
    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        return h->value;
    return NULL;
}

/* Parses Retry-After / retry-after-ms into ms; -1 when absent or bad. */
static double retry_after_ms(CURL *e)
{
    const char *v = hdr(e, "retry-after-ms");
    char *end;
    double d;
    if (v) {
        long ms = strtol(v, &end, 10);
        if (end != v && ms >= 0)
            return (double)ms;
    }
    v = hdr(e, "retry-after");
    if (!v)
        return -1;
    {
        long s = strtol(v, &end, 10);
        if (end != v && *end == '\0' && s >= 0)
            return (double)s * 1000.0;
    }
    d = (double)curl_getdate(v, NULL);
    if (d > 0) {
        double delta = (d - (double)time(NULL)) * 1000.0;
        return delta > 0 ? delta : 0;
    }
    return -1;
}

/* As the official SDKs: timeouts, lock conflicts, rate limits and every
 * server error (529, "overloaded", included). */
static int retryable_status(long s)
{
    return s == 408 || s == 409 || s == 429 || (s >= 500 && s <= 599);
}

/* Decides whether to try again; returns the delay in ms or -1. The full
 * policy (budgets per endpoint, rate limits) comes with the resilience
 * layer; this is the per-request part: statuses, x-should-retry,
 * Retry-After, exponential backoff with jitter. */
static double retry_delay(xfer *x, int code, long status, int transport,
                          const char *should)
{
    double d;
    if (x->cancel || x->delivered || x->c->closing ||
        x->attempts > x->max_retries)
        return -1;
    if (should && !strcasecmp(should, "false"))
        return -1;
    if (!(should && !strcasecmp(should, "true"))) {
        if (code == LLMUX_ETRANSPORT || code == LLMUX_ETIMEDOUT) {
            if (transport != CURLE_COULDNT_CONNECT &&
                transport != CURLE_OPERATION_TIMEDOUT &&
                transport != CURLE_GOT_NOTHING &&
                transport != CURLE_SEND_ERROR && transport != CURLE_RECV_ERROR)
                return -1;
            if (status > 0)
                return -1; /* the answer began (then a reset, a cut, a
                              stall): the work may be done, report it */
        } else if (!retryable_status(status)) {
            return -1;
        }
        if (status == 429 && x->res->o.err_pcode &&
            !strcmp(x->res->o.err_pcode, "insufficient_quota"))
            return -1; /* billing, not load */
    }
    if (x->retry_after_ms >= 0) {
        if (x->retry_after_ms > RETRY_AFTER_CAP_MS)
            return -1;
        d = x->retry_after_ms;
    } else {
        /* min(b * 2^n, 8 s), as the README says, whatever b is */
        double base = (double)x->backoff_ms;
        int i;
        for (i = 1; i < x->attempts && base < BACKOFF_CAP_MS; i++)
            base *= 2;
        if (base > BACKOFF_CAP_MS)
            base = BACKOFF_CAP_MS;
        /* xorshift jitter in [0.75, 1]: no global rand() state */
        x->c->rng ^= x->c->rng << 13;
        x->c->rng ^= x->c->rng >> 7;
        x->c->rng ^= x->c->rng << 17;
        d = base * (1.0 - 0.25 * (double)(x->c->rng % 1000) / 1000.0);
    }
    if (x->deadline && now_ms(x->c) + (uint64_t)d >= x->deadline)
        return -1;
    return d;
}

static void on_retry_timer(uv_timer_t *t)
{
    xfer *x = t->data;
    int rc;
    llmux__log_target old;
    if (x->state != X_WAIT || x->cancel)
        return; /* a cancelled wait is finished by on_defer */
    old = client_log_target(x->c);
    rc = xfer_attempt(x);
    if (rc)
        xfer_finish(x, rc, 0, NULL);
    llmux__log_target_swap(old);
}

static void reset_attempt(xfer *x)
{
    /* the plugin's per-call state (stream bookkeeping) starts afresh */
    if (x->prep.call.state && x->prep.prov->vt->call_end)
        x->prep.prov->vt->call_end(x->prep.prov->provctx, &x->prep.call);
    x->prep.call.state = NULL;
    if (x->easy) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    llmux__buf_free(&x->body);
    if (x->live) {
        llmux__framer_free(&x->live->framer);
        llmux__buf_free(&x->live->held);
        x->live->errbuf[0] = '\0';
    }
    x->done_pending = 0;
    if (x->timer_on && x->state == X_ACTIVE)
        uv_timer_stop(&x->timer); /* the watchdog of the attempt ending */
    x->timeout_which = NULL;
    x->started = x->answered = x->streaming = x->got_done = 0;
    x->err = 0;
    x->received = 0;
    x->events = 0;
}

static void live_free(xfer *x)
{
    if (!x->live)
        return;
    llmux__framer_free(&x->live->framer);
    llmux__buf_free(&x->live->held);
    llmux__out_free(&x->live->chunk.o);
    llmux__free(x->live);
    x->live = NULL;
}

/* Whether a request that failed for good may move on to a fallback: rate
 * limits, overload and other 5xx, timeouts, connection failures and
 * context-length errors; never once the caller has seen chunks. */
static int fallback_worthy(const xfer *x, int code, long status)
{
    const char *pc = x->res->o.err_pcode, *m = x->res->o.err_msg;
    if (x->cancel || x->delivered || x->c->closing ||
        x->req->next_fallback >= x->req->n_fallbacks)
        return 0;
    switch (code) {
    case LLMUX_ERATELIMIT:
    case LLMUX_ETIMEDOUT:
    case LLMUX_ETRANSPORT:
        return 1;
    case LLMUX_EPROVIDER:
        if (status >= 500 || status == 408)
            return 1;
        return (pc && strstr(pc, "context_length")) ||
               (m &&
                (strstr(m, "context length") || strstr(m, "context_length") ||
                 strstr(m, "maximum context")));
    default:
        return 0;
    }
}

/* Moves a failed request on to its next fallback config string: a fresh
 * prepare, response and retry budget; the total deadline goes on. Returns
 * 0 when the new attempt started or was queued. */
static int use_fallback(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_request *req = x->req;
    llmux__config cfg;
    char prev[128];
    int rc;

    snprintf(prev, sizeof prev, "%s/%s", req->cfg.provider,
             req->cfg.model ? req->cfg.model : "");
    memset(&cfg, 0, sizeof cfg);
    rc = llmux__config_parse(req->fallbacks[req->next_fallback++], &cfg, NULL,
                             0);
    if (rc)
        return rc;
    llmux__config_free(&req->cfg);
    req->cfg = cfg;
    client_log(c, LLMUX_LOG_INFO, "%s failed; falling back to %s/%s", prev,
               cfg.provider, cfg.model ? cfg.model : "");
    reset_attempt(x);
    give_slot(x); /* pump below */
    llmux__prepared_free(&x->prep);
    {
        llmux__log_target old = client_log_target(c);
        rc = llmux__prepare_ex(req, c->plugin_path, c->key_env_allow, &x->prep);
        llmux__log_target_swap(old);
    }
    if (rc)
        return rc;
    {
        llmux_response *nr = llmux__response_new(req->op, req->cfg.provider);
        if (!nr)
            return LLMUX_ENOMEM; /* the old response still reports */
        llmux_response_free(x->res);
        x->res = nr;
    }
    x->res->fallback = (int)req->next_fallback;
    x->attempts = 0;
    retry_policy(x); /* the fallback's max_retries=, retry_backoff= */
    x->ep = endpoint_get(c, x->prep.url, x->prep.api_key);
    if (!x->ep)
        return LLMUX_ENOMEM;
    endpoint_limits(c, x->ep, &req->cfg); /* the fallback's rpm=, tpm= */
    x->est_tokens = x->ep->tk.rate ? estimate_tokens(req) : 0;
    if (can_start_x(c, x->ep, x)) {
        take_slot(x);
        rc = xfer_attempt(x);
    } else {
        enqueue(x);
    }
    pump(c);
    return rc;
}

/* One transfer finished in curl: decide the outcome of this attempt. */
static void xfer_done(xfer *x, CURLcode result)
{
    struct llmux_client *c = x->c;
    long status = 0;
    char *ct = NULL;
    const char *should;
    int code = 0, transport = 0;
    char msg[2 * LLMUX__ERRBUF] = "";
    double delay;

    curl_multi_remove_handle(c->multi, x->easy);
    if (x->live && x->live->held.len && !x->cancel && !x->err) {
        /* paused with events still held: they go first, on resume */
        x->done_pending = 1;
        x->done_result = result;
        return;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    /* retry hints matter only for failures; skip the header scans else */
    if (result != CURLE_OK || status >= 400) {
        x->retry_after_ms = retry_after_ms(x->easy);
        should = hdr(x->easy, "x-should-retry");
    } else {
        x->retry_after_ms = -1;
        should = NULL;
    }
    x->res->http_status = status;
    x->res->err.retry_after =
        x->retry_after_ms >= 0 ? x->retry_after_ms / 1000.0 : -1;
    if (status > 0)
        rate_feedback(x, status);

    if (x->cancel) {
        code = x->cancel;
    } else if (x->err) {
        code = x->err;
        if (code == LLMUX_ETOOBIG)
            snprintf(msg, sizeof msg,
                     "%s: response larger than the %zu-byte limit",
                     x->prep.call.provider,
                     x->streaming && x->received <= c->max_response
                         ? c->max_event
                         : c->max_response);
    } else if (result != CURLE_OK && !(x->streaming && x->got_done)) {
        transport = (int)result;
        code = result == CURLE_OPERATION_TIMEDOUT ? LLMUX_ETIMEDOUT
                                                  : LLMUX_ETRANSPORT;
        if (code == LLMUX_ETIMEDOUT) {
            /* name the timeout that fired */
            curl_off_t conn = 0;
            curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &conn);
            if (x->timeout_which && !strcmp(x->timeout_which, "idle_timeout"))
                snprintf(msg, sizeof msg,
                         "%s: idle_timeout: no data for %ld ms after %ld "
                         "events",
                         x->prep.call.provider, x->idle_ms, x->events);
            else if (x->timeout_which)
                snprintf(msg, sizeof msg,
                         "%s: first_byte_timeout: no answer within %ld ms",
                         x->prep.call.provider, x->first_byte_ms);
            else if (conn == 0 &&
                     (!x->deadline || uv_now(c->loop) < x->deadline))
                snprintf(msg, sizeof msg,
                         "%s: connect_timeout: no connection within %ld ms",
                         x->prep.call.provider, x->connect_timeout_ms);
            else
                snprintf(
                    msg, sizeof msg, "%s: timeout: the total deadline passed%s",
                    x->prep.call.provider, x->streaming ? " mid-stream" : "");
        } else if (x->streaming)
            snprintf(msg, sizeof msg, "%s: stream cut off after %ld events: %s",
                     x->prep.call.provider, x->events,
                     x->live->errbuf[0] ? x->live->errbuf
                                        : curl_easy_strerror(result));
        else
            snprintf(msg, sizeof msg, "%s: %s", x->prep.call.provider,
                     x->live->errbuf[0] ? x->live->errbuf
                                        : curl_easy_strerror(result));
    } else if (x->streaming) {
        int rc = llmux__framer_finish(&x->live->framer, on_event, x);
        if (rc == LLMUX__FRAMER_STOP)
            rc = 0; /* the last event; a pause after it changes nothing */
        if (rc)
            code = x->err ? x->err : rc;
        else if (!x->got_done) {
            code = LLMUX_ETRANSPORT;
            snprintf(msg, sizeof msg,
                     "%s: stream ended after %ld events without its end "
                     "marker",
                     x->prep.call.provider, x->events);
        }
    } else {
        code = llmux__decode_answer(&x->prep, status, ct, x->body.p,
                                    x->body.len, x->res);
        if (code) {
            /* keep the decoded message; xfer_finish records it again */
            snprintf(msg, sizeof msg, "%s",
                     x->res->err_message ? x->res->err_message : "");
            x->res->has_error = 0;
        }
    }
    if (c->log && c->log_level >= LLMUX_LOG_DEBUG) {
        /* the URL without its query (a plugin may put a key there) and
         * without a user:password */
        const char *u = x->prep.url;
        size_t n = strcspn(u, "?"), a = n, b = n;
        int cred = llmux__url_userinfo(u, n, &a, &b);
        client_log(
            c, LLMUX_LOG_DEBUG, "%s %.*s%s%.*s -> HTTP %ld, %s (attempt %d)",
            x->prep.http.method, (int)a, u, cred ? "***" : "", (int)(n - b),
            u + b, status, code ? llmux_err_name(code) : "ok", x->attempts);
    }

    if (code &&
        (delay = retry_delay(x, code, status, transport, should)) >= 0) {
        client_log(c, LLMUX_LOG_INFO, "%s: retrying in %.0f ms after %s",
                   x->prep.call.provider, delay, llmux_err_name(code));
        c->st.retries++;
        if (status == 429)
            c->st.retries_rate_limited++;
        else if (status >= 400)
            c->st.retries_server++;
        else
            c->st.retries_transport++;
        reset_attempt(x);
        /* a fresh response for the next attempt, errors included */
        llmux__out_reset(&x->res->o);
        x->state = X_WAIT;
        if (!x->timer_on) {
            uv_timer_init(c->loop, &x->timer);
            x->timer.data = x;
            x->timer_on = 1;
            c->handles_open++;
        }
        uv_timer_start(&x->timer, on_retry_timer, (uint64_t)delay, 0);
        return;
    }
    if (code && fallback_worthy(x, code, status)) {
        int rc = use_fallback(x);
        if (rc == 0)
            return;
        code = rc;               /* the fallback could not even start */
        x->res->http_status = 0; /* not the failed primary's status */
        snprintf(msg, sizeof msg, "fallback: %s",
                 x->req->errmsg ? x->req->errmsg : llmux_strerror(rc));
    }
    xfer_finish(x, code, transport, msg[0] ? msg : NULL);
}

static void check_multi_info(struct llmux_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        xfer *x = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x)
            xfer_done(x, m->data.result);
    }
}

static int add_slist(struct curl_slist **l, const char *s)
{
    struct curl_slist *n = curl_slist_append(*l, s);
    if (!n)
        return LLMUX_ENOMEM;
    *l = n;
    return 0;
}

/* Starts one attempt: a configured easy handle added to the multi. */
static int xfer_attempt(xfer *x)
{
    struct llmux_client *c = x->c;
    const struct llmux_http_request *h = &x->prep.http;
    const llmux__config *cfg = &x->req->cfg;
    const char *proxy, *ca, *ins;
    CURL *e;
    size_t i;
    long timeout = 0;

    reset_attempt(x);
    if (x->deadline) {
        uint64_t now = now_ms(c);
        if (now >= x->deadline)
            return LLMUX_ETIMEDOUT;
        timeout = (long)(x->deadline - now);
    }
    if (!x->live) { /* kept across retries, freed when the request ends */
        if (!(x->live = llmux__calloc(1, sizeof *x->live)))
            return LLMUX_ENOMEM;
        llmux__out_init(&x->live->chunk.o, x->req->op, 1);
    }
    e = x->easy = curl_easy_init();
    if (!e)
        return LLMUX_ENOMEM;
    for (i = 0; i < h->n_headers; i++)
        if (add_slist(&x->hdrs, h->headers[i]))
            return LLMUX_ENOMEM;
    for (i = 0; i < c->n_headers; i++)
        if (add_slist(&x->hdrs, c->headers[i]))
            return LLMUX_ENOMEM;
    /* no "Expect: 100-continue" round trip for large bodies */
    if (h->body_len > 1024 && add_slist(&x->hdrs, "Expect:"))
        return LLMUX_ENOMEM;

    curl_easy_setopt(e, CURLOPT_URL, x->prep.url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* Waiting to multiplex pays off only where TLS ALPN can offer HTTP/2;
     * over plain http it would hold new transfers to a host behind the
     * first one's response. */
    if (strncmp(x->prep.url, "https://", 8) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (x->first_byte_ms || x->idle_ms) {
        /* the end of the headers hands a whole reply from the first-byte
         * watchdog to the idle one; without watchdogs the first body
         * byte marks the answer's start, and curl skips the callback
         * (about 2 % of a plain request's instructions) */
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    }
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->live->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->connect_timeout_ms);
    if (timeout > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    if (x->req->stream)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, STREAM_BUFFER);
    if (h->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)h->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body);
    }
    if (strcmp(h->method, "GET") == 0 && !h->body)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (!h->body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L); /* an empty POST body */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (strcmp(h->method, "GET") != 0 && strcmp(h->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method);
    proxy = llmux__config_get(cfg, "proxy");
    if (!proxy)
        proxy = c->proxy;
    if (proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, proxy);
    ca = llmux__config_get(cfg, "ca_file");
    if (!ca)
        ca = c->ca_file;
    if (ca)
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    ins = llmux__config_get(cfg, "insecure");
    if ((ins && !strcmp(ins, "1")) || (!ins && c->insecure)) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        if (!c->warned_insecure) {
            c->warned_insecure = 1;
            client_log(c, LLMUX_LOG_WARN,
                       "TLS certificate verification is off (insecure=1): "
                       "anyone on the path can read the traffic and the "
                       "API key");
        }
    }
    x->attempts++;
    x->res->attempts = x->attempts;
    x->state = X_ACTIVE;
    x->t_attempt = uv_now(c->loop);
    c->st.attempts++;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return LLMUX_ENOMEM;
    if (x->first_byte_ms)
        watchdog_arm(x, x->first_byte_ms);
    return 0;
}

static void xfer_timer_closed(uv_handle_t *h)
{
    xfer *x = h->data;
    struct llmux_client *c = x->c;
    x->timer_on = 0;
    xfer_release(x);
    c->handles_open--;
    client_maybe_closed(c);
}

/* Outcome counters of a finished request. */
static void count_outcome(llmux_stats *st, int code, const llmux_response *res)
{
    if (code == 0) {
        st->succeeded++;
        if (res->o.usage.prompt_tokens > 0)
            st->prompt_tokens += (uint64_t)res->o.usage.prompt_tokens;
        if (res->o.usage.completion_tokens > 0)
            st->completion_tokens += (uint64_t)res->o.usage.completion_tokens;
        return;
    }
    if (code == LLMUX_ECANCELED) {
        st->canceled++;
        return;
    }
    st->failed++;
    switch (llmux_err_class_of(code)) {
    case LLMUX_CLASS_PROVIDER:
        st->errors_provider++;
        break;
    case LLMUX_CLASS_TRANSPORT:
        st->errors_transport++;
        break;
    case LLMUX_CLASS_USAGE:
        st->errors_usage++;
        break;
    default:
        st->errors_local++;
        break;
    }
}

/* The counters of one provider name, created on first use. */
static llmux_stats *provider_stats(struct llmux_client *c, const char *name)
{
    llmux__pstat *p;
    if (!name)
        return NULL;
    for (p = c->pstats; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return &p->st;
    p = llmux__calloc(1, sizeof *p);
    if (!p || !(p->name = llmux__strdup(name))) {
        llmux__free(p);
        return NULL;
    }
    p->next = c->pstats;
    c->pstats = p;
    return &p->st;
}

/* The end of a request: the done callback, exactly once, then freeing. */
static void xfer_finish(xfer *x, int code, int transport, const char *msg)
{
    struct llmux_client *c = x->c;
    llmux_request *req = x->req;
    llmux_response *res = x->res;

    if (x->state == X_ACTIVE && x->easy)
        curl_multi_remove_handle(c->multi, x->easy);
    reset_attempt(x);
    x->state = X_DONE;
    release_slot(x); /* may start queued requests */
    hist_add(&c->h_total, (uv_now(c->loop) - x->t_submit) * 10);
    if (code == 0 && x->ep && x->ep->tk.rate && res->o.has_usage) {
        /* charge what the request really cost, not the estimate */
        long used = llmux__usage_total(&res->o.usage);
        double charged =
            x->est_tokens > x->ep->tk.cap ? x->ep->tk.cap : x->est_tokens;
        x->ep->tk.tokens += charged - (double)used;
        if (x->ep->tk.tokens > x->ep->tk.cap)
            x->ep->tk.tokens = x->ep->tk.cap;
    }
    count_outcome(&c->st, code, res);
    {
        /* the provider that answered (a fallback's, maybe) */
        llmux_stats *ps = provider_stats(c, res->provider);
        if (ps) {
            ps->requests++;
            ps->attempts += (uint64_t)x->attempts;
            count_outcome(ps, code, res);
        }
    }
    if (code)
        llmux__response_fail(res, code, res->http_status, transport, msg);
    llmux__response_mask(res, x->prep.api_key);
    /* unlink before the callback so llmux_client_pending() is accurate */
    if (x->prev)
        x->prev->next = x->next;
    else
        c->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->pending--;

    tl_in_callback++;
    if (x->on_done)
        x->on_done(req, code, res, x->ud);
    tl_in_callback--;

    llmux_response_free(res);
    live_free(x);
    llmux__prepared_free(&x->prep);
    req->x = NULL;
    if (x->owns_req)
        llmux_request_free(req);
    if (x->timer_on)
        uv_close((uv_handle_t *)&x->timer, xfer_timer_closed);
    xfer_release(x);
    client_maybe_closed(c);
}

/* A duration option of the config string in ms (validated when set). */
static long option_ms(const llmux__config *cfg, const char *key, long dflt)
{
    long ms;
    const char *v = llmux__config_get(cfg, key);
    return v && llmux__parse_seconds_ms(v, &ms) == 0 ? ms : dflt;
}

/* The retry budget and backoff: the request's setter, then its config
 * string, then the client's options. */
static void retry_policy(xfer *x)
{
    const llmux_request *req = x->req;
    const char *mr = llmux__config_get(&req->cfg, "max_retries");
    x->max_retries = req->max_retries >= 0 ? req->max_retries
                     : mr                  ? atoi(mr)
                                           : x->c->max_retries;
    x->backoff_ms = option_ms(&req->cfg, "retry_backoff", DEFAULT_BACKOFF_MS);
}

LLMUX_EXTERN int llmux_submit(llmux_client *c, llmux_request *req,
                              llmux_chunk_cb on_chunk, llmux_done_cb on_done,
                              void *userdata)
{
    xfer *x;
    int rc;
    long timeout;
    if (!c || !req)
        return LLMUX_EINVAL;
    if (c->closing) {
        llmux__request_seterr(req, "client is closing");
        return LLMUX_ECANCELED;
    }
    if (req->x) {
        llmux__request_seterr(req, "request is already submitted");
        return LLMUX_EBUSY;
    }
    x = llmux__calloc(1, sizeof *x);
    if (!x)
        return LLMUX_ENOMEM;
    x->c = c;
    x->req = req;
    x->on_chunk = on_chunk;
    x->on_done = on_done;
    x->ud = userdata;
    x->owns_req = 1;
    {
        llmux__log_target old = client_log_target(c);
        rc = llmux__prepare_ex(req, c->plugin_path, c->key_env_allow, &x->prep);
        llmux__log_target_swap(old);
    }
    if (rc)
        goto fail;
    x->res = llmux__response_new(req->op, req->cfg.provider);
    if (!x->res) {
        rc = LLMUX_ENOMEM;
        goto fail;
    }
    /* Precedence: the request's setters, then its config string, then
     * the client's options. */
    /* uv_now is cached per loop iteration; refresh it so the deadline
     * counts from now */
    uv_update_time(c->loop);
    timeout = req->timeout_ms > 0
                  ? req->timeout_ms
                  : option_ms(&req->cfg, "timeout", c->timeout_ms);
    if (timeout > 0)
        x->deadline = now_ms(c) + (uint64_t)timeout;
    x->connect_timeout_ms =
        req->connect_timeout_ms > 0
            ? req->connect_timeout_ms
            : option_ms(&req->cfg, "connect_timeout", c->connect_timeout_ms);
    x->first_byte_ms = req->first_byte_timeout_ms > 0
                           ? req->first_byte_timeout_ms
                           : option_ms(&req->cfg, "first_byte_timeout",
                                       c->first_byte_timeout_ms);
    x->idle_ms = req->idle_timeout_ms > 0
                     ? req->idle_timeout_ms
                     : option_ms(&req->cfg, "idle_timeout", c->idle_timeout_ms);
    x->t_submit = now_ms(c);
    x->seq = ++c->seq;
    x->ep = endpoint_get(c, x->prep.url, x->prep.api_key);
    if (!x->ep) {
        rc = LLMUX_ENOMEM;
        goto fail;
    }
    endpoint_limits(c, x->ep, &req->cfg);
    /* the estimate walks every message: only for token-limited endpoints */
    x->est_tokens = x->ep->tk.rate ? estimate_tokens(req) : 0;
    retry_policy(x);
    if (c->in_curl) {
        /* inside a curl callback (a chunk callback submitting): curl
         * refuses new handles here, so the defer timer starts it (its
         * place in the queue is counted now) */
        if (c->queued + c->pending - c->in_flight >= c->max_queue &&
            !limits_allow(c, x->ep, x)) {
            rc = LLMUX_EQUEUEFULL;
            goto queue_full;
        }
        x->state = X_WAIT;
        x->start_pending = 1;
        rc = 0;
    } else if (can_start_x(c, x->ep, x)) {
        take_slot(x);
        rc = xfer_attempt(x);
        if (rc)
            give_slot(x);
    } else if (limits_allow(c, x->ep, x)) {
        /* only this iteration's starts are used up: the next iteration
         * starts it (not bounded by max_queue, as it would have started) */
        enqueue(x);
        turn_hold(c);
        rc = 0;
    } else if (c->queued >= c->max_queue) {
        rc = LLMUX_EQUEUEFULL;
        goto queue_full;
    } else {
        enqueue(x);
        pump(c); /* arms the wake-up when a rate limit is what blocks */
        rc = 0;
    }
    if (rc) {
        char m[128];
        snprintf(m, sizeof m, "cannot start transfer: %s", llmux_strerror(rc));
        llmux__request_seterr(req, m);
        goto fail;
    }
    req->x = x;
    req->userdata = userdata;
    x->next = c->head;
    if (c->head)
        c->head->prev = x;
    c->head = x;
    c->pending++;
    c->st.requests++;
    if (x->start_pending)
        defer_push(x);
    return 0;
queue_full : {
    char m[160];
    snprintf(m, sizeof m,
             "request queue full (%zu waiting, max_queue %zu): submit "
             "fewer at once or raise max_queue",
             c->queued, c->max_queue);
    llmux__request_seterr(req, m);
}
fail:
    if (x->easy)
        curl_multi_remove_handle(c->multi, x->easy);
    reset_attempt(x);
    if (x->res)
        llmux_response_free(x->res);
    live_free(x);
    llmux__prepared_free(&x->prep);
    llmux__free(x);
    return rc;
}

LLMUX_EXTERN int llmux_request_pause(llmux_request *req)
{
    xfer *x = req ? req->x : NULL;
    if (!x || x->state != X_ACTIVE || !x->easy || x->cancel)
        return LLMUX_EINVAL;
    if (x->paused)
        return 0;
    x->paused = 1;
    x->resume_pending = 0;
    curl_easy_pause(x->easy, CURLPAUSE_RECV);
    if (x->timer_on && x->idle_ms)
        uv_timer_stop(&x->timer); /* a slow consumer is not an idle server */
    return 0;
}

LLMUX_EXTERN int llmux_request_resume(llmux_request *req)
{
    xfer *x = req ? req->x : NULL;
    if (!x || x->state != X_ACTIVE || !x->easy)
        return LLMUX_EINVAL;
    if (!x->paused)
        return 0;
    x->paused = 0;
    x->resume_pending = 1;
    defer_push(x);
    return 0;
}

LLMUX_EXTERN int llmux_request_cancel(llmux_request *req)
{
    xfer *x;
    if (!req)
        return LLMUX_EINVAL;
    x = req->x;
    if (!x || x->state == X_DONE || x->cancel)
        return 0;
    x->cancel = LLMUX_ECANCELED;
    if (x->state == X_QUEUED) {
        /* out of the queue now: a slot freed before on_defer gets to it
         * must not start it */
        dequeue(x);
        x->state = X_WAIT;
    }
    defer_push(x);
    return 0;
}

/* ---- closing ------------------------------------------------------------- */

static void client_handle_closed(uv_handle_t *h)
{
    struct llmux_client *c = h->data;
    c->handles_open--;
    client_maybe_closed(c);
}

static void client_maybe_closed(struct llmux_client *c)
{
    if (!c->closing)
        return;
    if (c->closing == 1) {
        /* Releasing curl must not happen inside a curl call or while
         * check_multi_info() walks curl's messages (a done callback may
         * close the client): leave it to the defer timer. */
        if (c->head || c->qhead || !c->in_defer) {
            if (!c->head && !c->qhead)
                uv_timer_start(&c->defer, on_defer, 0, 0);
            return;
        }
        c->closing = 2;
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
        while (c->socks)
            sock_close(c->socks);
        uv_close((uv_handle_t *)&c->timer, client_handle_closed);
        uv_close((uv_handle_t *)&c->defer, client_handle_closed);
        uv_close((uv_handle_t *)&c->pump_t, client_handle_closed);
        uv_close((uv_handle_t *)&c->turn, client_handle_closed);
        return;
    }
    if (c->closing == 2 && c->handles_open == 0) {
        llmux_close_cb cb = c->on_closed;
        void *ud = c->close_ud;
        c->closing = 3;
        if (c->owns_loop)
            return; /* llmux_client_free finishes the job */
        client_free_mem(c);
        if (cb)
            cb(ud);
    }
}

LLMUX_EXTERN void llmux_client_close(llmux_client *c, llmux_close_cb on_closed,
                                     void *userdata)
{
    xfer *x;
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->on_closed = on_closed;
    c->close_ud = userdata;
    for (x = c->head; x; x = x->next) {
        if (!x->cancel)
            x->cancel = LLMUX_ECANCELED;
        defer_push(x);
    }
    /* always pass through the loop once, even with nothing in flight */
    uv_ref((uv_handle_t *)&c->defer);
    uv_timer_start(&c->defer, on_defer, 0, 0);
}

LLMUX_EXTERN void llmux_client_free(llmux_client *c)
{
    if (!c)
        return;
    if (tl_in_callback && c->owns_loop) {
        /* running the loop from inside its own callback would free the
         * client under the caller's feet: close now, and the
         * llmux_client_run() this callback runs in frees it on return */
        if (!c->closing)
            llmux_client_close(c, NULL, NULL);
        c->free_pending = 1;
        return;
    }
    if (!c->owns_loop) {
        llmux_client_close(c, NULL, NULL);
        return;
    }
    if (c->closing == 3) {
        /* already closed by a run of the loop */
    } else {
        if (!c->closing)
            llmux_client_close(c, NULL, NULL);
        while (c->closing != 3)
            uv_run(c->loop, UV_RUN_ONCE);
    }
    {
        llmux_close_cb cb = c->on_closed;
        void *ud = c->close_ud;
        if (uv_loop_close(&c->own_loop) != 0)
            client_log(c, LLMUX_LOG_ERROR, "private loop still has handles");
        client_free_mem(c);
        if (cb)
            cb(ud);
    }
}

/* ---- the blocking call --------------------------------------------------- */

typedef struct run_state {
    llmux_response *res;
    int status;
    int done;
} run_state;

static void run_done(llmux_request *req, int status, llmux_response *res,
                     void *ud)
{
    run_state *s = ud;
    (void)req;
    s->res = llmux_response_retain(res);
    s->status = status;
    s->done = 1;
}

typedef struct run_chunk {
    llmux_chunk_cb cb;
    void *ud;
    run_state st;
} run_chunk;

static int run_on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    run_chunk *rc = ud;
    return rc->cb ? rc->cb(req, ch, rc->ud) : 0;
}

static void run_done2(llmux_request *req, int status, llmux_response *res,
                      void *ud)
{
    run_chunk *rc = ud;
    run_done(req, status, res, &rc->st);
}

LLMUX_EXTERN int llmux_run(const llmux_request *req,
                           const llmux_client_options *opts,
                           llmux_chunk_cb on_chunk, void *userdata,
                           llmux_response **out)
{
    llmux_client_options o;
    llmux_client *c;
    llmux_request *copy;
    run_chunk rc;
    int err;
    if (out)
        *out = NULL;
    if (!req)
        return LLMUX_EINVAL;
    if (tl_in_callback)
        return LLMUX_EBUSY;
    if ((err = llmux__client_options_copy(&o, opts)))
        return err;
    o.loop = NULL;
    if ((err = llmux_client_new(&c, &o)))
        return err;
    copy = llmux_request_dup(req);
    if (!copy) {
        llmux_client_free(c);
        return LLMUX_ENOMEM;
    }
    memset(&rc, 0, sizeof rc);
    rc.cb = on_chunk;
    rc.ud = userdata;
    err = llmux_submit(c, copy, run_on_chunk, run_done2, &rc);
    if (err) {
        /* the message lives in the copy; hand it back in a response */
        if (out) {
            *out = llmux__response_new(copy->op, copy->cfg.provider);
            if (*out)
                llmux__response_fail(*out, err, 0, 0, copy->errmsg);
        }
        llmux_request_free(copy);
        llmux_client_free(c);
        return err;
    }
    while (!rc.st.done)
        uv_run(c->loop, UV_RUN_ONCE);
    llmux_client_free(c);
    if (out)
        *out = rc.st.res;
    else
        llmux_response_free(rc.st.res);
    return rc.st.status;
}
