/*
 * core/limits.c: limits and queues: concurrency lanes, the FIFO queue,
 * starts per loop turn, token buckets per endpoint and key, and the
 * feedback of the providers' rate-limit headers.
 */
#include "engine.h"
#include "redis.h"

#include <hiredis/hiredis.h>

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
llmux__endpoint *llmux__endpoint_get(struct llmux_client *c, const char *url,
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

/* ---- the limits backends ------------------------------------------------
 * Where a lane's rate tokens are counted: in this process (the buckets
 * above), or shared through Redis by every process that names the same
 * server (limits=redis://...). The shared backend keeps the local buckets
 * too, as they would be, for its fallback. */

/* A lane's wait when the answer is not a time. */
#define WAIT_ASKING UINT64_MAX - 1 /* Redis is asked: its answer pumps */
#define WAIT_FAIL   UINT64_MAX     /* Redis unreachable, fallback closed */

typedef struct limits_backend {
    /* ms until x may take the lane's tokens (0 = now), or a WAIT_ */
    uint64_t (*wait)(struct llmux_client *c, llmux__endpoint *e, const xfer *x);
    /* x takes them */
    void (*take)(struct llmux_client *c, llmux__endpoint *e, const xfer *x);
    /* `back` tokens back after the usage (negative: more to pay) */
    void (*used)(struct llmux_client *c, llmux__endpoint *e, double back);
    /* the server's word: a pause until `pause_until` (0 = none) and what
     * its rate-limit headers say is left (NULL = nothing) */
    void (*feedback)(struct llmux_client *c, llmux__endpoint *e, uint64_t now,
                     uint64_t pause_until, const llmux_rate_limits *rl);
} limits_backend;

static uint64_t local_wait(struct llmux_client *c, llmux__endpoint *e,
                           const xfer *x)
{
    uint64_t now = uv_now(c->loop), w, t;
    if (e->paused_until > now)
        return e->paused_until - now;
    w = bucket_wait(&e->rq, 1, now);
    t = bucket_wait(&e->tk, x ? x->est_tokens : 0, now);
    return w > t ? w : t;
}

static void local_take(struct llmux_client *c, llmux__endpoint *e,
                       const xfer *x)
{
    (void)c;
    if (e->rq.rate)
        e->rq.tokens -= 1;
    if (e->tk.rate)
        e->tk.tokens -= x->est_tokens > e->tk.cap ? e->tk.cap : x->est_tokens;
}

static void local_used(struct llmux_client *c, llmux__endpoint *e, double back)
{
    (void)c;
    e->tk.tokens += back;
    if (e->tk.tokens > e->tk.cap)
        e->tk.tokens = e->tk.cap;
}

static void local_feedback(struct llmux_client *c, llmux__endpoint *e,
                           uint64_t now, uint64_t pause_until,
                           const llmux_rate_limits *rl)
{
    (void)c;
    if (pause_until > e->paused_until)
        e->paused_until = pause_until;
    if (!rl)
        return;
    if (rl->requests_remaining >= 0 && e->rq.rate) {
        bucket_refill(&e->rq, now);
        if (rl->requests_remaining < e->rq.tokens)
            e->rq.tokens = rl->requests_remaining;
    }
    if (e->tk.rate && rl->tokens_remaining >= 0) {
        bucket_refill(&e->tk, now);
        if (rl->tokens_remaining < e->tk.tokens)
            e->tk.tokens = rl->tokens_remaining;
    }
}

static const limits_backend local_backend = {local_wait, local_take, local_used,
                                             local_feedback};

/* The Redis side: one script, atomic, on Redis's clock (TIME) so that
 * processes on machines whose clocks disagree share one bucket. KEYS[1]
 * is the lane's hash (rq, tk: tokens; rql, tkl: their last refill in ms),
 * KEYS[2] its pause. ARGV: op, rpm, tpm, ttl ms, then for "take" the
 * tokens one request wants and how many requests are waiting -> {g, 0}
 * with g >= 1 admissions granted (as many as the buckets hold, up to
 * those waiting), or {0, ms} to wait; for "fix" the
 * requests and tokens the provider says are left (-1: not said), tokens
 * back after the usage, and a pause in ms (0: none) -> {1, 0}. Buckets
 * hold one second of burst, refilled continuously, as the local ones. */
static const char limits_lua[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local op = ARGV[1]\n"
    "local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 'rq', 'rql', 'tk', 'tkl')\n"
    "local function refill(tok, last, perm)\n"
    "  local cap = perm / 60\n"
    "  if cap < 1 then cap = 1 end\n"
    "  if tok == nil or last == nil then return cap, cap end\n"
    "  if now > last then tok = tok + (now - last) * perm / 60000 end\n"
    "  if tok > cap then tok = cap end\n"
    "  return tok, cap\n"
    "end\n"
    "local rq = refill(tonumber(b[1]), tonumber(b[2]), rpm)\n"
    "local tk, tkcap = refill(tonumber(b[3]), tonumber(b[4]), tpm)\n"
    "local g = 1\n"
    "if op == 'take' then\n"
    "  local p = redis.call('PTTL', KEYS[2])\n"
    "  if p > 0 then return {0, p} end\n"
    "  local need = tonumber(ARGV[5])\n"
    "  if need > tkcap then need = tkcap end\n"
    "  local w = 0\n"
    "  if rpm > 0 and rq < 1 then w = math.ceil((1 - rq) * 60000 / rpm) end\n"
    "  if tpm > 0 and tk < need then\n"
    "    local w2 = math.ceil((need - tk) * 60000 / tpm)\n"
    "    if w2 > w then w = w2 end\n"
    "  end\n"
    "  if w > 0 then return {0, w} end\n"
    "  g = tonumber(ARGV[6])\n"
    "  if rpm > 0 and math.floor(rq) < g then g = math.floor(rq) end\n"
    "  if tpm > 0 and need > 0 and math.floor(tk / need) < g then\n"
    "    g = math.floor(tk / need)\n"
    "  end\n"
    "  if g < 1 then g = 1 end\n"
    "  if rpm > 0 then rq = rq - g end\n"
    "  if tpm > 0 then tk = tk - need * g end\n"
    "else\n"
    "  local rr, tr = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "  local back, pause = tonumber(ARGV[7]), tonumber(ARGV[8])\n"
    "  if rr >= 0 and rr < rq then rq = rr end\n"
    "  if tr >= 0 and tr < tk then tk = tr end\n"
    "  tk = tk + back\n"
    "  if tk > tkcap then tk = tkcap end\n"
    "  if pause > 0 and redis.call('PTTL', KEYS[2]) < pause then\n"
    "    redis.call('SET', KEYS[2], '1', 'PX', pause)\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'rq', tostring(rq), 'rql', now,\n"
    "           'tk', tostring(tk), 'tkl', now)\n"
    "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))\n"
    "if op == 'take' then return {g, 0} end\n"
    "return {1, 0}\n";

/* Idle lanes' keys expire: a full bucket is all they hold after 1 s. */
#define SHARED_TTL_MS "120000"
/* Admissions one question may ask for: a lane's throughput is this many
 * per Redis round trip, and what a process holds unused is bounded by it
 * (the grants of requests canceled meanwhile are kept for the next). */
#define SHARED_BATCH 8
/* After an error answer, the lane uses its fallback this long. */
#define SHARED_ERROR_MS 1000

static void wake_queue(struct llmux_client *c);

/* A Redis operation failed: counted, logged once until one succeeds. */
static void shared_error(struct llmux_client *c, llmux__endpoint *e,
                         const char *why)
{
    c->st.limits_backend_errors++;
    e->shared_failed_until = uv_now(c->loop) + SHARED_ERROR_MS;
    if (!c->limits_outage) {
        c->limits_outage = 1;
        llmux__client_log(c, LLMUX_LOG_WARN,
                          "shared limits at %s: %s; limits_fallback=%s",
                          llmux__redis_url_shown(c->redis), why,
                          e->fallback_local ? "local" : "closed");
    }
}

static int shared_usable(struct llmux_client *c, const llmux__endpoint *e)
{
    return llmux__redis_state_of(c->redis) != LLMUX__REDIS_DOWN &&
           e->shared_failed_until <= uv_now(c->loop);
}

static void on_granted(llmux__redis *r, struct redisReply *rep, const char *err,
                       void *ud)
{
    struct llmux_client *c = llmux__redis_client(r);
    llmux__endpoint *e = ud;
    e->asking = 0;
    if (c->closing)
        return;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        if (rep->element[0]->integer >= 1)
            e->granted += (unsigned)rep->element[0]->integer;
        else
            e->shared_until =
                uv_now(c->loop) + (rep->element[1]->integer > 0
                                       ? (uint64_t)rep->element[1]->integer
                                       : 1);
        c->limits_outage = 0;
    } else {
        shared_error(c, e,
                     rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                     : err                                 ? err
                           : "a malformed answer");
    }
    wake_queue(c);
}

static void on_fixed(llmux__redis *r, struct redisReply *rep, const char *err,
                     void *ud)
{
    struct llmux_client *c = llmux__redis_client(r);
    if (c->closing)
        return;
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        shared_error(c, ud, rep ? rep->str : err);
}

/* Runs the script: op "take" (two more arguments) or "fix" (four). */
static int shared_eval(struct llmux_client *c, llmux__endpoint *e,
                       llmux__redis_cb cb, const char *op, int n,
                       const double *more)
{
    char num[6][32],
        *pause_key = llmux__concat(e->rkey, strlen(e->rkey), ":pause", NULL);
    const char *av[10];
    size_t al[10];
    int i, argc;
    if (!pause_key) {
        shared_error(c, e, "no memory");
        return LLMUX_ENOMEM;
    }
    av[0] = e->rkey;
    av[1] = pause_key;
    av[2] = op;
    snprintf(num[0], sizeof num[0], "%.0f", e->rpm);
    snprintf(num[1], sizeof num[1], "%.0f", e->tpm);
    av[3] = num[0];
    av[4] = num[1];
    av[5] = SHARED_TTL_MS;
    for (i = 0; i < n && i < 4; i++) {
        snprintf(num[2 + i], sizeof num[2 + i], "%.0f", more[i]);
        av[6 + i] = num[2 + i];
    }
    argc = 6 + i;
    for (i = 0; i < argc; i++)
        al[i] = strlen(av[i]);
    i = llmux__redis_eval(c->redis, c->limits_lua, cb, e, 2, argc, av, al);
    llmux__free(pause_key);
    if (i)
        shared_error(c, e, i == LLMUX_ELIMITS ? "not connected" : "no memory");
    return i;
}

/* Asks Redis for the admission of x and those queued behind it: at most
 * one question per lane at a time; the answer (on_granted) pumps the
 * queue. */
static uint64_t shared_wait(struct llmux_client *c, llmux__endpoint *e,
                            const xfer *x)
{
    uint64_t now = uv_now(c->loop);
    if (!shared_usable(c, e))
        return e->fallback_local ? local_wait(c, e, x) : WAIT_FAIL;
    if (e->paused_until > now) /* a pause this process saw itself */
        return e->paused_until - now;
    if (e->granted)
        return 0;
    if (e->shared_until > now)
        return e->shared_until - now;
    if (e->asking || !x || x != e->qhead)
        return WAIT_ASKING; /* only the queue's head asks */
    {
        /* the tokens of one, and how many wait (up to SHARED_BATCH): one
         * round trip may admit several */
        double more[2] = {x->est_tokens, 0};
        const xfer *q;
        for (q = x; q && more[1] < SHARED_BATCH; q = q->wnext)
            more[1]++;
        if (shared_eval(c, e, on_granted, "take", 2, more))
            return e->fallback_local ? local_wait(c, e, x) : WAIT_FAIL;
    }
    e->asking = 1;
    return WAIT_ASKING;
}

static void shared_take(struct llmux_client *c, llmux__endpoint *e,
                        const xfer *x)
{
    if (e->granted)
        e->granted--;
    else
        c->st.limits_fallbacks++; /* let go by the local buckets */
    local_take(c, e, x);
}

static void shared_used(struct llmux_client *c, llmux__endpoint *e, double back)
{
    double fix[4] = {-1, -1, 0, 0};
    local_used(c, e, back);
    fix[2] = back;
    if (shared_usable(c, e))
        shared_eval(c, e, on_fixed, "fix", 4, fix);
}

static void shared_feedback(struct llmux_client *c, llmux__endpoint *e,
                            uint64_t now, uint64_t pause_until,
                            const llmux_rate_limits *rl)
{
    double fix[4] = {-1, -1, 0, 0};
    local_feedback(c, e, now, pause_until, rl);
    if (rl && rl->requests_remaining >= 0)
        fix[0] = rl->requests_remaining;
    if (rl && e->tk.rate && rl->tokens_remaining >= 0)
        fix[1] = rl->tokens_remaining;
    if (pause_until > now)
        fix[3] = (double)(pause_until - now);
    if (shared_usable(c, e) && (fix[0] >= 0 || fix[1] >= 0 || fix[3] > 0))
        shared_eval(c, e, on_fixed, "fix", 4, fix);
}

static const limits_backend shared_backend = {shared_wait, shared_take,
                                              shared_used, shared_feedback};

static const limits_backend *backend_of(const llmux__endpoint *e)
{
    return e->shared ? &shared_backend : &local_backend;
}

/* ms until the endpoint's rate limits let `x` go (0 = now), or WAIT_. */
static uint64_t rate_wait(struct llmux_client *c, llmux__endpoint *e,
                          const xfer *x)
{
    return backend_of(e)->wait(c, e, x);
}

/* The limits and rate limits allow x to start. */
int llmux__limits_allow(struct llmux_client *c, llmux__endpoint *e,
                        const xfer *x)
{
    return (!c->max_in_flight || c->in_flight < c->max_in_flight) &&
           (!c->max_per_endpoint || e->host->in_flight < c->max_per_endpoint) &&
           rate_wait(c, e, x) == 0;
}

/* ... and this loop iteration has starts left. */
int llmux__can_start_x(struct llmux_client *c, llmux__endpoint *e,
                       const xfer *x)
{
    return c->turn_starts < STARTS_PER_TURN && llmux__limits_allow(c, e, x);
}

void llmux__take_slot(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux__endpoint *e = x->ep;
    x->holds_slot = 1;
    c->turn_starts++;
    c->in_flight++;
    e->host->in_flight++;
    backend_of(e)->take(c, e, x);
    if (c->in_flight > c->st.max_in_flight)
        c->st.max_in_flight = c->in_flight;
}

int llmux__queue_full(const struct llmux_client *c)
{
    return c->queued + c->pending - c->in_flight >= c->max_queue;
}

void llmux__enqueue(xfer *x)
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

void llmux__dequeue(xfer *x)
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
    llmux__hist_add(&x->c->h_queue, (uv_now(x->c->loop) - x->t_queued) * 10);
}

/* Some requests wait only for the next iteration's starts: the prepare
 * handle keeps the loop alive until they start, since nothing else may be
 * left on it (their starts ran out on requests that ended at once). */
void llmux__turn_hold(struct llmux_client *c)
{
    if (!c->turn_held) {
        c->turn_held = 1;
        uv_ref((uv_handle_t *)&c->turn);
    }
}

static int lane_refused(struct llmux_client *c, llmux__endpoint *e, char *msg,
                        size_t len)
{
    if (!e->shared || e->fallback_local || shared_usable(c, e))
        return 0;
    snprintf(msg, len,
             "shared limits unavailable: Redis at %s: %s (limits_fallback="
             "closed; limits_fallback=local would count in this process)",
             llmux__redis_url_shown(c->redis),
             llmux__redis_state_of(c->redis) == LLMUX__REDIS_DOWN
                 ? (*llmux__redis_why(c->redis) ? llmux__redis_why(c->redis)
                                                : "not connected")
                 : "it answered with an error");
    return 1;
}

xfer *llmux__limits_refused(struct llmux_client *c)
{
    llmux__endpoint *e;
    char m[LLMUX__ERRBUF];
    for (e = c->endpoints; e; e = e->next)
        if (e->qhead && lane_refused(c, e, m, sizeof m)) {
            xfer *x = e->qhead;
            llmux__dequeue(x);
            x->state = X_WAIT;
            llmux__request_seterr(x->req, m);
            return x;
        }
    return NULL;
}

/* The queue goes on from the loop (xfer.c's pump, through the client's
 * pump timer): Redis answered, went up or down. */
static void wake_queue(struct llmux_client *c)
{
    if (!c->closing)
        uv_timer_start(&c->pump_t, c->on_pump, 0, 0);
}

/* The endpoint whose queue's head may start now and waited longest
 * (oldest first across endpoints, O(endpoints)); NULL when none may, with
 * *wake the ms until a rate limit lets one (0 = none is rate limited). */
llmux__endpoint *llmux__next_endpoint(struct llmux_client *c, uint64_t *wake)
{
    llmux__endpoint *e, *best = NULL;
    *wake = 0;
    for (e = c->endpoints; e; e = e->next) {
        uint64_t w;
        if (!e->qhead ||
            (c->max_per_endpoint && e->host->in_flight >= c->max_per_endpoint))
            continue;
        w = rate_wait(c, e, e->qhead);
        if (w == WAIT_FAIL) { /* the pump fails its queue */
            wake_queue(c);
            continue;
        }
        if (w == WAIT_ASKING) /* Redis's answer pumps again */
            continue;
        if (w) { /* rate limited: remember when to look again */
            if (!*wake || w < *wake)
                *wake = w;
            continue;
        }
        if (!best || e->qhead->seq < best->qhead->seq)
            best = e;
    }
    return best;
}

/* The shared backend's connection went up or down: the queue goes on
 * (with the fallback's buckets, or failing closed lanes). */
static void on_redis_state(llmux__redis *r, int up, const char *why, void *ud)
{
    struct llmux_client *c = ud;
    (void)r;
    (void)why; /* redis.c logged it, once per outage */
    if (!up)
        c->st.limits_backend_errors++;
    wake_queue(c);
}

/* Rate limits of an endpoint: the request's effective rpm and tpm (its
 * config string's, else the client's), and where they are counted; the
 * last request that names one sets it. */
int llmux__endpoint_limits(struct llmux_client *c, xfer *x)
{
    llmux__endpoint *e = x->ep;
    const llmux__settings *set = &x->set;
    uint64_t now = uv_now(c->loop);
    if (set->rpm > 0) {
        bucket_set(&e->rq, set->rpm, now);
        e->rpm = set->rpm;
    }
    if (set->tpm > 0) {
        bucket_set(&e->tk, set->tpm, now);
        e->tpm = set->tpm;
    }
    e->shared = 0;
    if (!set->limits || llmux__strcaseeq(set->limits, "local") ||
        (!e->rq.rate && !e->tk.rate))
        return 0; /* nothing to share */
    {
        char err[LLMUX__ERRBUF];
        int code;
        if (!llmux__client_redis(c, set->limits, &code, err, sizeof err))
            return llmux__request_fail(x->req, code, "limits: %s", err);
        /* the connection may be the cache's or the budgets' first */
        if (llmux__redis_on_state(c->redis, on_redis_state, c) != 0)
            return llmux__request_fail(x->req, LLMUX_ENOMEM,
                                       "limits: too many Redis listeners");
    }
    /* loaded when it next connects (EVAL until then); asked again by the
     * next request when there was no memory for it */
    if (!c->limits_lua &&
        !(c->limits_lua = llmux__redis_script_add(c->redis, limits_lua)))
        return LLMUX_ENOMEM;
    if (!e->rkey &&
        !(e->rkey = llmux__redis_key(
              set->limits_prefix ? set->limits_prefix : "llmux",
              x->prep.call.provider, e->host->key, llmux__lane_key(&x->prep))))
        return LLMUX_ENOMEM;
    e->shared = 1;
    e->fallback_local =
        set->limits_fallback && llmux__strcaseeq(set->limits_fallback, "local");
    return 0;
}

void llmux__limits_used(xfer *x, long used)
{
    llmux__endpoint *e = x->ep;
    double charged = x->est_tokens > e->tk.cap ? e->tk.cap : x->est_tokens;
    backend_of(e)->used(x->c, e, charged - (double)used);
}

/* Whether server feedback can change the endpoint's limits: it has
 * rate limits to adapt, or a 429 pauses it. Spares the header scans. */
int llmux__rate_feedback_wanted(const llmux__endpoint *e, long status)
{
    return e->rq.rate || e->tk.rate || status == 429;
}

/* Server feedback on the endpoint's limits: a 429's Retry-After pauses the
 * endpoint for every request of the client (of every process sharing
 * it); what the provider's own rate-limit headers say is left (`rl`,
 * read by its plugin's rate_limits hook; NULL without one) brings the
 * buckets down, and no requests left pauses the endpoint until the
 * window resets. */
void llmux__rate_feedback(struct llmux_client *c, llmux__endpoint *e,
                          uint64_t now, long status, double retry_after_ms,
                          const llmux_rate_limits *rl)
{
    uint64_t until = 0;
    if (status == 429 && retry_after_ms >= 0)
        until = now + (uint64_t)retry_after_ms;
    if (rl && rl->requests_remaining >= 0 && rl->requests_remaining < 1 &&
        rl->requests_reset_ms > 0 &&
        now + (uint64_t)rl->requests_reset_ms > until)
        until = now + (uint64_t)rl->requests_reset_ms;
    backend_of(e)->feedback(c, e, now, until, rl);
}

/* Undoes llmux__take_slot's counting (not the rate tokens: a request that was
 * sent, or nearly, costs them). */
void llmux__give_slot(xfer *x)
{
    if (!x->holds_slot)
        return;
    x->holds_slot = 0;
    x->c->in_flight--;
    x->ep->host->in_flight--;
}
