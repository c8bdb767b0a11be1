/*
 * core/engine.h: what the parts of the engine share: the client and
 * transfer structures, the engine's defaults, and the functions each part
 * offers the others (all llmux__, none exported). The parts, each calling
 * only the ones below it (and the model files: call.c, response.c ...):
 *
 *   client.c   the client's public life: options, new, counters, run,
 *              close, free
 *   submit.c   submit, pause, resume, cancel
 *   wire.c     libcurl's multi interface driven by libuv: sockets, timer
 *   xfer.c     a transfer's life: attempts and their watchdogs, finished
 *              transfers, retries and fallbacks, the done callback, the
 *              defer list, starting queued transfers
 *   deliver.c  stream events to the caller, with pause and resume, and
 *              a cached stream's replay
 *   cache.c    the response cache: keys, lookups, hits decoded or set up
 *              for replay, answers kept
 *   retry.c    the retry policy: what is retried, after how long, what
 *              moves to a fallback
 *   limits.c   concurrency lanes, the FIFO queue, token buckets per
 *              endpoint, the rate-limit feedback
 *   closing.c  the close's steps, socket handles' ends, the client's memory
 *   budget.c   spend budgets: scopes, admission, what answers cost, the
 *              totals shared through Redis
 *   cache_redis.c  the response cache's Redis backend
 *   redis.c    the client's Redis connection (the shared limits',
 *              budgets' and cache's)
 *   stats.c    outcome counters and latency histograms
 *   hooks.c    the client hooks: attempt and request events, before_send
 *   creds.c    the credential callback: its answers cached per provider
 *              and endpoint, the attempts waiting for one
 *   user.c     the user's log hook, the depth of user callbacks
 *
 * run.c (the blocking llmux_run()) and batch.c are written on the public
 * API. The upward paths are the defer timer's callback (xfer.c), kept
 * in the client for closing.c to start, and the pump timer's (xfer.c),
 * kept for limits.c to wake the queue when Redis answers.
 *
 * The life of a request: submit -> prepare (call.c: resolve, encode) ->
 * attempt (an easy handle in the multi) -> answer decoded / stream events
 * delivered -> [retry wait -> attempt]... -> finish: done callback exactly
 * once -> free. Cancellation and client close never run user callbacks
 * inline: they mark transfers and let the client's "defer" timer finish
 * them from the loop. Handles are freed only in their close callbacks.
 */
#ifndef LLMUX_CORE_ENGINE_H
#define LLMUX_CORE_ENGINE_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <pthread.h>
#include <uv.h>

#include "cache.h"
#include "internal.h"

#define BACKOFF_CAP_MS 8000.0
/* The response cache's defaults (client options cache_*) */
#define DEFAULT_CACHE_TTL_MS      300000L
#define DEFAULT_CACHE_MAX_BYTES   (64u * 1024u * 1024u)
#define DEFAULT_CACHE_MAX_ENTRIES 10000u
/* A shared store's largest value when cache_max_bytes is not set: one
 * answer that large is rare, and Redis holds many of them. */
#define DEFAULT_CACHE_MAX_VALUE (8u * 1024u * 1024u)
#define DEFAULT_MAX_RESPONSE    (64u * 1024u * 1024u)
#define DEFAULT_MAX_EVENT       LLMUX__MAX_EVENT_DEFAULT
#define RETRY_AFTER_CAP_MS      60000.0
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

/* A cached request's state (cache.c). */
typedef struct llmux__xcache {
    char key[LLMUX__CACHE_KEY_LEN + 1];
    struct llmux__cache_backend *b; /* where it is looked up and kept */
    uint64_t ttl_ms;
    struct llmux__cache_lookup *lookup; /* pending: the backend's answer
                                           finds x through it */
    int answered; /* the lookup answered: llmux__on_defer goes on */
    char *val;    /* the hit's value, or NULL */
    size_t len;
    int replaying;      /* a cached stream's events are being delivered */
    llmux__cache_rd rd; /* where the replay is in val */
    llmux__buf ev;      /* the event being replayed, NUL-terminated */
    llmux__buf rec;     /* the stream's events as delivered, encoded */
    int rec_off;        /* too big or out of memory: not kept */
} llmux__xcache;

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
    /* the shared backend (limits=redis://..., limits.c): set by the last
     * request that named the lane, as its rpm and tpm are */
    double rpm, tpm;       /* per minute, as configured (0 = none) */
    int shared;            /* counted in Redis (c->redis) */
    int fallback_local;    /* Redis unreachable: local buckets meanwhile */
    char *rkey;            /* the Redis key: prefix, provider, endpoint and
                              the API key's SHA-256 (never the key) */
    int asking;            /* an admission is on its way to Redis */
    unsigned granted;      /* admissions Redis granted, not used yet */
    uint64_t shared_until; /* Redis said wait: not before this loop time */
    uint64_t shared_failed_until; /* a Redis error: the fallback until */
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
    int started;       /* first body byte seen this attempt */
    int answered;      /* the answer began: a whole reply's headers, a
                          stream's first byte (first_byte_timeout met) */
    int streaming;     /* this attempt's body goes through the framer */
    int got_done;      /* stream end marker seen */
    int delivered;     /* chunks reached the caller: no more retries */
    int err;           /* error found inside a curl callback */
    int cancel;        /* LLMUX_ECANCELED when cancelled */
    int queued;        /* on the client's defer list */
    int timer_on;      /* retry timer initialised and not yet closed */
    int start_pending; /* submitted from inside curl: started by llmux__on_defer
                        */
    int defer_code;    /* finish with this code from llmux__on_defer */
    int paused;        /* reading stopped by llmux_request_pause */
    int resume_pending; /* llmux_request_resume: unpaused by llmux__on_defer */
    int done_pending;   /* curl finished while events were held: the
                           finish waits for them (done_result) */
    CURLcode done_result;
    int holds_slot; /* counted in the client's and endpoint's in_flight */
    const char *timeout_which; /* the watchdog that fired, or NULL */
    uint64_t seq;              /* submission order, for the queues */
    double est_tokens;         /* charged to the endpoint's token bucket */
    uint64_t t_submit, t_queued, t_attempt;         /* loop times in ms */
    uint64_t t_submit_ns, t_attempt_ns, t_first_ns; /* hooks: uv_hrtime of
                          the submission, the attempt's start and its first
                          chunk (0: none yet) */
    double reserved_usd;            /* held against the budgets until the end */
    struct llmux__scope *budget[3]; /* the scopes it is charged to */
    struct llmux__scope *bwait;     /* the scope whose read it waits for */
    struct llmux__xfer *bnext, *bprev; /* the others waiting for it */
    uint64_t serial;                   /* its request's serial at submission */
    int edited;       /* before_send ran for this config string */
    int in_hook;      /* inside before_send: a cancel only marks it */
    int attempt_open; /* hooks: ATTEMPT_START told, ATTEMPT_END not yet */
    /* the credential callback (creds.c) */
    struct llmux__cred *cred;      /* the query x waits for, or NULL */
    struct llmux__xfer *cred_next; /* the others waiting for it */
    int cred_state; /* CRED_WAIT, or answered while it waited (_HAVE,
                       _FAIL: llmux__on_defer goes on with it), or 0 */
    int cred_code;  /* CRED_FAIL: the code and message it ends with */
    char *cred_msg;
    int cred_bearer;             /* the secret is an access token */
    int cred_asked;              /* the callback's answer is what is sent */
    int cred_refreshed;          /* asked again after a 401 (once per config) */
    struct llmux__xcache *cache; /* cache.c: the lookup, the hit's replay
                                    or the answer being kept; NULL when
                                    the request is not cached */
    llmux__endpoint *ep;
    struct llmux__xfer *wnext, *wprev; /* the endpoint's wait queue */
    int attempts;
    llmux__settings set; /* the effective settings of the config string
                            being tried (settings.c) */
    size_t received;
    long events;
    uint64_t deadline; /* loop time in ms, 0 = none */
    double retry_after_ms;
    uv_timer_t timer;
    struct llmux__xfer *prev, *next; /* client's list */
    struct llmux__xfer *qnext;       /* defer list */
};
typedef struct llmux__xfer xfer;
typedef struct llmux__cred llmux__cred;
enum { CRED_WAIT = 1, CRED_HAVE, CRED_FAIL };

struct llmux_client {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    int owns_loop;
    CURLM *multi;
    uv_timer_t timer;     /* curl's timeout */
    uv_timer_t defer;     /* finishing cancelled transfers from the loop */
    uv_timer_cb on_defer; /* llmux__on_defer (xfer.c), for the parts below
                             xfer.c that start the defer timer */
    int in_curl;          /* inside curl_multi_socket_action */
    int in_defer;         /* inside llmux__on_defer: safe to release curl */
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
    llmux__settings defaults; /* the options' settings (settings.c) */
    size_t max_response;
    size_t max_event;
    int warned_insecure; /* the insecure warning was logged */
    long max_connections;
    llmux_log_cb log;
    void *log_ud;
    int log_level;
    /* requests handed over by other threads (submit.c): a queue under
     * its lock, and the async handle that wakes the loop for it */
    uv_thread_t owner; /* the loop's thread: the creator, or the thread
                          running llmux_client_run() */
    uv_async_t async;
    uv_mutex_t xq_lock;
    struct llmux__xop *xq_head, *xq_tail;
    int xq_closed;         /* llmux_client_close ran: refuse new handovers */
    int xq_lock_ok;        /* xq_lock initialised */
    llmux__prices *prices; /* the client's prices_file, or NULL */
    double budget;         /* budget_usd; 0 = none */
    double spend;          /* what answers cost so far (stats.c) */
    double reserved;       /* estimates of requests in flight (budget) */
    char *budget_label;    /* budget_scope: shares budget_usd by name */
    struct llmux__scope *scopes;     /* budget.c: every scope named so far */
    struct llmux__scope **scope_tab; /* ... indexed by id (chains) */
    size_t scope_tab_n, n_scopes;    /* its buckets (a power of 2), scopes */
    uv_timer_t budget_t;             /* reads the shared totals in use */
    void (*budget_answered)(struct llmux__xfer *x); /* submit.c's: a
                                    request that waited for a read */
    struct llmux__redis_script *budget_lua;         /* the flush script */
    int budget_outage;  /* the shared budgets' outage was logged */
    char budget_id[33]; /* this client among the processes sharing */
    llmux_hook_cb hook; /* client hooks (hooks.c), or NULL */
    llmux_before_send_cb before_send;
    void *hook_ud;
    llmux_credential_cb credential; /* creds.c, or NULL */
    void *credential_ud;
    struct llmux__cred *creds; /* answers per provider and endpoint */
    size_t cred_waiting;       /* attempts waiting for an answer */
    char user_agent[64];
    uint64_t rng;
    size_t max_in_flight;
    size_t max_per_endpoint;
    size_t max_queue;
    /* limits */
    size_t in_flight, queued;
    uint64_t seq;
    llmux__endpoint *endpoints;
    uv_timer_t pump_t;          /* wakes the queue when a rate limit allows */
    uv_timer_cb on_pump;        /* its callback (xfer.c), kept here so that
                                   limits.c can wake the queue (Redis answered) */
    uv_prepare_t turn;          /* each loop iteration: a new STARTS_PER_TURN */
    unsigned turn_starts;       /* transfers started in this iteration */
    int turn_held;              /* some wait only for the next iteration */
    struct llmux__redis *redis; /* the shared limits' connection (redis.c),
                                   or NULL */
    struct llmux__redis_script *limits_lua; /* the admission script */
    int limits_outage; /* the shared limits' outage was logged */
    /* the response cache (cache.c) */
    struct llmux__cache_backend *cache; /* the LRU: made at its first lookup */
    struct llmux__cache_backend *cache_redis; /* cache_backend=redis://...,
                                                 made at its first lookup */
    long cache_ttl_ms;                        /* of cache=yes and cache_all */
    size_t cache_max_bytes;                   /* the LRU's bounds */
    size_t cache_max_entries;
    size_t cache_max_value; /* a shared store's largest value */
    int cache_all;          /* every request unless cache=no */
    /* observability */
    llmux_stats st;
    llmux__hist h_queue, h_first_byte, h_total;
    llmux__pstat *pstats;
};

/* ---- what the parts offer each other ------------------------------------ */

/* wire.c */
int llmux__curl_timer_cb(CURLM *m, long ms, void *ud);
int llmux__curl_socket_cb(CURL *e, curl_socket_t fd, int action, void *ud,
                          void *sockp);

/* xfer.c */
int llmux__xfer_attempt(xfer *x);
void llmux__xfer_done(xfer *x, CURLcode result);
void llmux__xfer_finish(xfer *x, int code, int transport, const char *msg);
void llmux__xfer_discard(xfer *x);
void llmux__xfer_release(xfer *x);
void llmux__check_multi_info(struct llmux_client *c);
void llmux__watchdog_arm(xfer *x, long ms);
const char *llmux__hdr(CURL *e, const char *name);
void llmux__on_defer(uv_timer_t *t);
void llmux__defer_push(xfer *x);
void llmux__pump(struct llmux_client *c);
void llmux__on_pump(uv_timer_t *t);
void llmux__on_turn(uv_prepare_t *p);
void llmux__release_slot(xfer *x);

/* deliver.c */
int llmux__on_event(void *ud, const llmux_event *ev);
int llmux__feed_held(xfer *x);
/* Delivers a cached stream's events (cache.c) from where it stopped, as
 * the wire would: through the plugin's decoder to the chunk callback,
 * which may pause, stop or cancel it. 1 when it waits (paused: resumed
 * from the defer list; cancelled: finished there), else the code to
 * finish with (and the request's message): 0 after the end marker,
 * LLMUX_EPROTO without one, or the callback's or decoder's error. */
int llmux__replay(xfer *x);

/* retry.c */
double llmux__retry_after_ms(const char *ms_value, const char *value);
double llmux__retry_delay(xfer *x, int code, long status, int transport,
                          const char *should);
int llmux__fallback_worthy(const xfer *x, int code, long status);

/* limits.c */
llmux__endpoint *llmux__endpoint_get(struct llmux_client *c, const char *url,
                                     const char *api_key);
/* x's lane (x->ep) takes the limits of x's settings and, with limits= a
 * Redis URL, shares them (the client's connection made on first use): 0,
 * or LLMUX_ECONFIG/LLMUX_ENOMEM with x's request message set. */
int llmux__endpoint_limits(struct llmux_client *c, xfer *x);
/* x succeeded having used `used` tokens: the token bucket gets back what
 * its estimate overcharged (or pays what it undercharged). */
void llmux__limits_used(xfer *x, long used);
/* A queued request that must fail with LLMUX_ELIMITS, taken off its
 * queue (state X_WAIT, its message naming the server, its password
 * masked): its lane's shared backend is unreachable and its
 * limits_fallback closed. NULL when there is none. */
xfer *llmux__limits_refused(struct llmux_client *c);
int llmux__limits_allow(struct llmux_client *c, llmux__endpoint *e,
                        const xfer *x);
int llmux__can_start_x(struct llmux_client *c, llmux__endpoint *e,
                       const xfer *x);
void llmux__take_slot(xfer *x);
void llmux__give_slot(xfer *x);
/* Whether the queue has no room for one more: the requests queued and
 * those accepted that may still queue (a cache lookup, a start left to
 * the defer timer) reach max_queue. */
int llmux__queue_full(const struct llmux_client *c);
void llmux__enqueue(xfer *x);
void llmux__dequeue(xfer *x);
void llmux__turn_hold(struct llmux_client *c);
llmux__endpoint *llmux__next_endpoint(struct llmux_client *c, uint64_t *wake);
int llmux__rate_feedback_wanted(const llmux__endpoint *e, long status);
void llmux__rate_feedback(struct llmux_client *c, llmux__endpoint *e,
                          uint64_t now, long status, double retry_after_ms,
                          const llmux_rate_limits *rl);

/* closing.c */
void llmux__client_maybe_closed(struct llmux_client *c);
void llmux__client_free_mem(struct llmux_client *c);
void llmux__sock_close(llmux__sock *s);

/* stats.c */
void llmux__hist_add(llmux__hist *h, uint64_t ms_tenths);
double llmux__hist_pct(const llmux__hist *h, double q);
void llmux__stats_count(struct llmux_client *c, int code,
                        const llmux_response *res, int attempts);

/* cache.c */
/* Starts x's cache lookup when x is cached (its settings, the client's
 * cache_all): 1 (x waits for the answer in X_WAIT; `answered(x)` is
 * called once it came, maybe inside this call, and llmux__on_defer goes
 * on with llmux__cache_hit), 0 (not cached), LLMUX_EQUEUEFULL (a miss
 * would find the queue full) or LLMUX_ENOMEM. */
int llmux__cache_begin(xfer *x, void (*answered)(xfer *x));
/* Whether x's lookup answered, or its replay waits to go on. */
#define llmux__cache_ready(x)                                                  \
    ((x)->cache && ((x)->cache->answered || (x)->cache->replaying))
/* What x's answered lookup found: LLMUX__CACHE_MISS (x is to start;
 * counted), LLMUX__CACHE_REPLY (x->res holds the decoded answer: finish
 * with 0), LLMUX__CACHE_STREAM (x replays: llmux__cache_next_event), or
 * LLMUX_ENOMEM. */
#define LLMUX__CACHE_MISS 0
int llmux__cache_hit(xfer *x);
/* The replayed stream's next event into *ev (valid until the next call):
 * 1, 0 at its end, or LLMUX_ENOMEM. */
int llmux__cache_next_event(xfer *x, llmux_event *ev);
/* Keeps stream event ev of x for the cache (nothing when x is not kept). */
void llmux__cache_record(xfer *x, const llmux_event *ev);
/* x's attempt ended with `code`: a success with a whole answer (HTTP
 * status, content type and x->body) or a whole stream is kept under x's
 * key; anything else is not. */
void llmux__cache_store(xfer *x, int code, long status, const char *ctype);
/* x ends: a lookup still pending forgets it, its state is freed. */
void llmux__cache_forget(xfer *x);
/* Whether replay of a hit is what x is doing (pause and resume). */
#define llmux__cache_replaying(x) ((x)->cache && (x)->cache->replaying)

/* submit.c */
/* Whether the caller is on the client's loop thread. */
int llmux__on_owner(struct llmux_client *c);
/* The async handle's callback: submits and cancels handed over by other
 * threads. */
void llmux__on_handover(uv_async_t *a);
/* At close: later handovers are refused; those not yet taken end with
 * LLMUX_ECANCELED through their done callbacks, from the loop. */
void llmux__handover_close(struct llmux_client *c);

/* hooks.c: each does nothing (cheaply) without the client's hook */
/* ATTEMPT_START for the attempt x just put on the wire. */
void llmux__hook_attempt_start(xfer *x);
/* ATTEMPT_END of x's open attempt: `code`, HTTP `status`, and what
 * follows: next "retry" (after delay_ms), "fallback" or NULL. */
void llmux__hook_attempt_end(xfer *x, int code, long status, const char *next,
                             double delay_ms);
/* REQUEST_END, right before the done callback (after the open attempt's
 * end, if one is open). */
void llmux__hook_request_end(xfer *x, int code);
/* The before_send hook for x's config string, once: 0, or LLMUX_EUSER
 * (refused; the request's message says so). */
int llmux__hook_before_send(xfer *x);

/* budget.c */
typedef struct llmux__scope llmux__scope;
/* Charges x to its budget scopes (the client's budget_usd, its config
 * string's budget_usd=, its request's llmux_request_set_budget()): 0 (x
 * holds its estimate on each), 1 (x waits in X_WAIT for a shared scope's
 * first read, then `answered(x)` is called once with x->defer_code 0 to
 * go on, or the code it ends with and its message set), or
 * LLMUX_EBUDGET, LLMUX_ELIMITS (Redis unreachable, limits_fallback
 * closed), LLMUX_ECONFIG, LLMUX_ENOMEM with the
 * request's message set. */
int llmux__budget_admit(xfer *x, void (*answered)(xfer *x));
/* x no longer holds anything against its scopes nor waits (not accepted,
 * or ending). */
void llmux__budget_release(xfer *x);
/* A request moving on to a fallback: its holds are released and it is
 * admitted again on the fallback's scopes (its endpoint and key's
 * budget_usd=), on the totals known now (no wait for a read: the request
 * is in flight already). 0, or LLMUX_EBUDGET / LLMUX_ELIMITS /
 * LLMUX_ENOMEM with the request's message. */
int llmux__budget_refit(xfer *x);
/* Prices the finished response (res->cost), adds it to the client's
 * spend and x's scopes (sent to Redis for shared ones); releases x. */
void llmux__spend_count(xfer *x);
/* The client's id among processes (random); its scopes' memory freed. */
int llmux__budget_init(struct llmux_client *c);
void llmux__budget_free(struct llmux_client *c);

/* stats.c: spend */
/* The price of provider's model: the client's prices_file first, then the
 * built-in table. 1 and *p, or 0. */
int llmux__price_for(struct llmux_client *c, const char *provider,
                     const char *model, llmux__price *p);
/* Tokens a request will likely cost: its text at about four characters
 * a token, plus its max_tokens. */
double llmux__estimate_tokens(const llmux_request *r);

/* creds.c */
#define LLMUX__CRED_WAIT 1
/* What x's attempt sends, when the client has a credential callback and
 * x's provider a key: the cached answer, or the callback's when it
 * answers inside its call. 0 (x->prep.api_key set, or NULL: nothing to
 * send), LLMUX__CRED_WAIT (x waits for an answer: state X_WAIT, nothing
 * started), or an error code with the request's message set. */
int llmux__cred_fetch(xfer *x);
/* x no longer waits (finished, cancelled): out of the waiters. */
void llmux__cred_forget(xfer *x);
/* The answer to `r` (code 0: `secret` or NULL for the configured key; else
 * the failure's code and message), given to every attempt waiting for it
 * (CRED_HAVE or CRED_FAIL) and cached as the expiry allows. Frees `r`.
 * Returns the waiters to go on (linked by cred_next), bar one answered
 * inside the callback's call, which goes on by itself. */
xfer *llmux__cred_answer(llmux_credential_reply *r, const char *secret,
                         int bearer, int64_t expires_at_ms, int code,
                         const char *msg);
/* x's callback answer met a 401: not cached any more, and the next query
 * says refresh. */
void llmux__cred_refused(xfer *x);
void llmux__creds_free(struct llmux_client *c);

/* user.c */
void llmux__client_log(struct llmux_client *c, int level, const char *fmt, ...)
    LLMUX_PRINTF(3, 4);
llmux__log_target llmux__client_log_target(struct llmux_client *c);

#endif /* LLMUX_CORE_ENGINE_H */
