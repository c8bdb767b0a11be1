/*
 * core/budget.c: spend budgets. A scope is a name, a limit in USD and
 * what was spent under it: the client's budget_usd (its own, or a label
 * shared by every client naming it: budget_scope), an endpoint and API
 * key's budget_usd= and a request's llmux_request_set_budget(). A request
 * is charged to each scope it names; llmux_submit() refuses it once one of
 * them has spent its limit, counting what requests in flight hold.
 *
 * With limits= a Redis URL a scope's spend is shared: every process adds
 * what its answers cost to one Redis total (a Lua script, atomic and
 * idempotent: a flush sent again after a broken connection is counted
 * once), whose reply is the new total; the totals of the scopes in use
 * are read again every READ_MS. Admission stays synchronous against the
 * last total known and this process's own reservations; a scope not read
 * lately is read first (its requests wait, deferred as a cache lookup
 * is). Redis unreachable: limits_fallback says whether requests fail
 * (closed, LLMUX_ELIMITS) or go on this process's knowledge (local); the
 * spend is kept and added once the connection is back.
 *
 * A scope may have a window: its spend counts from the last multiple of
 * it since the epoch (the wall clock, so that every machine starts the
 * next window together), each window a total of its own in Redis. A
 * client keeps every scope it was given until it closes.
 */
#include "engine.h"
#include "redis.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>

/* The totals of scopes in use are read again this often (ms) */
#define READ_MS 500
/* A total older than this is read again before a request is admitted on
 * it: a scope idle for a while may have been spent by others */
#define FRESH_MS 2000
/* After an error answer, the scope uses its fallback this long */
#define ERROR_MS 1000
/* A process's sequence key lives this long after its last flush: a
 * flush unanswered for longer may be counted twice */
#define SEQ_TTL_MS "86400000"

struct llmux__scope {
    char *id;         /* what identifies it in this process */
    char *shown;      /* how messages name it (never a key) */
    char *rkey;       /* shared: its Redis keys' stem; NULL: local */
    char *key;        /* shared: the current window's total (the stem, and
                         the window's number when it has one) */
    char *sendkey;    /* the unanswered flush's key: sent again there */
    char *seqkey;     /* this client's last flush number (shared) */
    long window_ms;   /* the spend resets every window_ms since the epoch;
                         0: never */
    uint64_t period;  /* the window spent in (wall ms / window_ms) */
    int kind;         /* SCOPE_CLIENT, SCOPE_KEY, SCOPE_NAMED */
    double limit;     /* USD: the last request naming it sets it */
    double total;     /* local: what was spent; shared: Redis's last total */
    double unflushed; /* spent here, not sent to Redis yet */
    double sending;   /* the flush on its way (or to send again) */
    int sending_on;   /* a flush is unanswered: sent again until it is */
    int send_now;     /* ... and it is to be sent (not on the wire) */
    uint64_t seq;     /* the number of this client's last flush */
    double reserved;  /* estimates of this process's requests in flight */
    size_t active;    /* requests in flight charged to it */
    uint64_t read_at; /* loop time of the last total Redis gave */
    uint64_t failed_until; /* an error answer: the fallback until */
    int reading;           /* a read is on its way */
    int fallback_local;    /* Redis unreachable: this process's knowledge */
    xfer *whead, *wtail;   /* requests waiting for its first read */
    struct llmux__scope *next;
    struct llmux__scope *hnext; /* its bucket's chain in c->scope_tab */
};

enum { SCOPE_CLIENT = 1, SCOPE_KEY, SCOPE_NAMED };

/* Adds ARGV[1] (USD, a decimal) to KEYS[1] unless this client's flush
 * number ARGV[2] was counted already (KEYS[2] holds the last one, for
 * ARGV[3] ms): sending a flush again whose answer was lost counts it
 * once. A window's total expires ARGV[4] ms after its last flush (0:
 * never). Returns the total. */
static const char budget_lua[] =
    "local last = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local seq = tonumber(ARGV[2])\n"
    "if seq > last then\n"
    "  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])\n"
    "  local t = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])\n"
    "  if tonumber(ARGV[4]) > 0 then\n"
    "    redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "return redis.call('GET', KEYS[1]) or '0'\n";

static void on_tick(uv_timer_t *t);

/* ---- scopes -------------------------------------------------------------- */

/* The scope `id` (created when new): shared under rkey (taken) when
 * rkey is not NULL. NULL without memory (rkey freed). */
static size_t scope_hash(const char *id)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211u;
    return (size_t)h;
}

/* Indexes s (its id) in c->scope_tab, doubled when the scopes outnumber
 * its buckets: a lookup stays O(1) however many tenants a process names.
 * 0, or LLMUX_ENOMEM (s not indexed). */
static int scope_index(struct llmux_client *c, struct llmux__scope *s)
{
    size_t i;
    if (c->n_scopes >= c->scope_tab_n) {
        size_t n = c->scope_tab_n ? 2 * c->scope_tab_n : 64;
        struct llmux__scope **t = llmux__calloc(n, sizeof *t), *q;
        if (!t)
            return LLMUX_ENOMEM;
        for (q = c->scopes; q; q = q->next) {
            i = scope_hash(q->id) & (n - 1);
            q->hnext = t[i];
            t[i] = q;
        }
        llmux__free(c->scope_tab);
        c->scope_tab = t;
        c->scope_tab_n = n;
    }
    i = scope_hash(s->id) & (c->scope_tab_n - 1);
    s->hnext = c->scope_tab[i];
    c->scope_tab[i] = s;
    c->n_scopes++;
    return 0;
}

static struct llmux__scope *scope_get(struct llmux_client *c, int kind,
                                      const char *id, const char *shown,
                                      char *rkey)
{
    struct llmux__scope *s = NULL;
    if (c->scope_tab_n)
        s = c->scope_tab[scope_hash(id) & (c->scope_tab_n - 1)];
    for (; s; s = s->hnext)
        if (!strcmp(s->id, id)) {
            llmux__free(rkey);
            return s;
        }
    if (!(s = llmux__calloc(1, sizeof *s)) || !(s->id = llmux__strdup(id)) ||
        !(s->shown = llmux__strdup(shown)) ||
        (rkey && !(s->seqkey = llmux__concat(rkey, strlen(rkey),
                                             ":seq:", c->budget_id)))) {
        if (s) {
            llmux__free(s->id);
            llmux__free(s->shown);
            llmux__free(s);
        }
        llmux__free(rkey);
        return NULL;
    }
    s->kind = kind;
    s->rkey = rkey;
    s->period = UINT64_MAX; /* none yet: roll() starts one */
    if (scope_index(c, s)) {
        llmux__free(s->seqkey);
        llmux__free(s->id);
        llmux__free(s->shown);
        llmux__free(s);
        llmux__free(rkey);
        return NULL;
    }
    s->next = c->scopes; /* after the index: a resize walks the list */
    c->scopes = s;
    return s;
}

void llmux__budget_free(struct llmux_client *c)
{
    double lost = 0;
    while (c->scopes) {
        struct llmux__scope *s = c->scopes;
        c->scopes = s->next;
        lost += s->unflushed + (s->sending_on ? s->sending : 0);
        llmux__free(s->id);
        llmux__free(s->shown);
        llmux__free(s->rkey);
        llmux__free(s->key);
        llmux__free(s->sendkey);
        llmux__free(s->seqkey);
        llmux__free(s);
    }
    llmux__free(c->scope_tab);
    c->scope_tab = NULL;
    c->scope_tab_n = c->n_scopes = 0;
    if (lost > 0)
        llmux__client_log(c, LLMUX_LOG_WARN,
                          "shared budgets: $%.6f spent by this client could "
                          "not be added to Redis before it closed",
                          lost);
    llmux__free(c->budget_label);
    c->budget_label = NULL;
}

/* Milliseconds since the epoch: windows begin at its multiples on every
 * machine alike (as far as their clocks agree). */
static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* s in its current window: a new one starts at 0 (and a shared one is
 * read again, under the window's own key). 0, or LLMUX_ENOMEM. */
static int roll(struct llmux__scope *s)
{
    uint64_t p = s->window_ms > 0 ? wall_ms() / (uint64_t)s->window_ms : 0;
    if (p == s->period)
        return 0;
    if (s->rkey) {
        char num[32], *k;
        snprintf(num, sizeof num, ":%llu", (unsigned long long)p);
        if (!(k = llmux__concat(s->rkey, strlen(s->rkey),
                                s->window_ms > 0 ? num : "", "")))
            return LLMUX_ENOMEM;
        llmux__free(s->key);
        s->key = k;
    }
    s->period = p;
    s->total = 0;
    s->read_at = 0;
    return 0;
}

/* A scope named again with limit and window: a changed window starts
 * over. */
static void scope_set(struct llmux__scope *s, double limit, long window_ms)
{
    s->limit = limit;
    if (s->window_ms != window_ms) {
        s->window_ms = window_ms;
        s->period = UINT64_MAX;
    }
}

/* What scope s has spent as far as this process knows. */
static double spent(const struct llmux__scope *s)
{
    return s->total + s->unflushed + (s->sending_on ? s->sending : 0);
}

static int usable(struct llmux_client *c, const struct llmux__scope *s)
{
    return c->redis && llmux__redis_state_of(c->redis) != LLMUX__REDIS_DOWN &&
           s->failed_until <= uv_now(c->loop);
}

/* The outage's log line, once until Redis answers again. */
static void outage_log(struct llmux_client *c, const struct llmux__scope *s,
                       const char *why)
{
    if (!c->budget_outage && c->redis) {
        c->budget_outage = 1;
        llmux__client_log(c, LLMUX_LOG_WARN,
                          "shared budgets at %s: %s; limits_fallback=%s",
                          llmux__redis_url_shown(c->redis), why,
                          s && s->fallback_local ? "local" : "closed");
    }
}

/* A Redis operation on a budget failed: counted, logged once per outage,
 * and the scope uses its fallback until the connection is up again, or a
 * second passed. */
static void budget_error(struct llmux_client *c, struct llmux__scope *s,
                         const char *why)
{
    c->st.limits_backend_errors++;
    s->failed_until = uv_now(c->loop) + ERROR_MS;
    outage_log(c, s, why);
}

/* ---- Redis: flushes and reads -------------------------------------------- */

/* The USD amount as a decimal Redis reads whatever the C locale. */
static void usd_text(double v, char *out, size_t n)
{
    long long nano = (long long)(v * 1e9 + (v < 0 ? -0.5 : 0.5));
    unsigned long long a = (unsigned long long)(nano < 0 ? -nano : nano);
    snprintf(out, n, "%s%llu.%09llu", nano < 0 ? "-" : "", a / 1000000000ULL,
             a % 1000000000ULL);
}

/* A decimal from Redis ("12.5", "-3", "1e-05" is not written by
 * INCRBYFLOAT), read whatever the C locale: 0, or -1. */
static int usd_parse(const char *p, double *out)
{
    double v = 0, scale = 1;
    int neg = 0, digits = 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    for (; *p >= '0' && *p <= '9'; p++, digits++)
        v = v * 10 + (*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            v += (*p - '0') * (scale /= 10);
    if (*p || !digits)
        return -1;
    *out = neg ? -v : v;
    return 0;
}

static int reply_usd(const struct redisReply *rep, double *out)
{
    if (!rep)
        return -1;
    if (rep->type == REDIS_REPLY_NIL) {
        *out = 0;
        return 0;
    }
    if (rep->type == REDIS_REPLY_INTEGER) {
        *out = (double)rep->integer;
        return 0;
    }
    return rep->type == REDIS_REPLY_STRING ? usd_parse(rep->str, out) : -1;
}

static void wake_waiters(struct llmux_client *c, struct llmux__scope *s);
static void flush(struct llmux_client *c, struct llmux__scope *s);

static void on_flushed(llmux__redis *r, struct redisReply *rep, const char *err,
                       void *ud)
{
    struct llmux_client *c = llmux__redis_client(r);
    struct llmux__scope *s = ud;
    double t;
    if (c->closing)
        return;
    if (reply_usd(rep, &t) == 0) {
        s->sending_on = 0;
        s->sending = 0;
        if (s->key && s->sendkey && !strcmp(s->key, s->sendkey)) {
            s->total = t; /* else the total of a window gone by */
            s->read_at = uv_now(c->loop);
        }
        llmux__free(s->sendkey);
        s->sendkey = NULL;
        c->budget_outage = 0;
        if (s->unflushed > 0)
            flush(c, s);
        return;
    }
    /* not known to be counted: sent again (same number) when usable */
    s->send_now = 1;
    budget_error(c, s,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                 : err                                 ? err
                                                       : "a malformed answer");
}

/* Sends what s spent here: the unanswered flush again, else a new one. */
static void flush(struct llmux_client *c, struct llmux__scope *s)
{
    char amount[48], seq[24], ttl[24];
    const char *av[6];
    size_t al[6];
    int i, rc;
    if (!s->rkey || !usable(c, s) || (s->sending_on && !s->send_now))
        return;
    if (!s->sending_on) {
        if (!(s->unflushed > 0) || roll(s) ||
            !(s->sendkey = llmux__strdup(s->key)))
            return; /* sent by the next tick */
        s->sending = s->unflushed;
        s->unflushed = 0;
        s->seq++;
        s->sending_on = 1;
    }
    if (!c->budget_lua &&
        !(c->budget_lua = llmux__redis_script_add(c->redis, budget_lua))) {
        s->send_now = 1;
        return;
    }
    usd_text(s->sending, amount, sizeof amount);
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)s->seq);
    /* a window's total outlives it by a minute */
    snprintf(ttl, sizeof ttl, "%ld",
             s->window_ms > 0 ? s->window_ms + 60000 : 0);
    av[0] = s->sendkey;
    av[1] = s->seqkey;
    av[2] = amount;
    av[3] = seq;
    av[4] = SEQ_TTL_MS;
    av[5] = ttl;
    for (i = 0; i < 6; i++)
        al[i] = strlen(av[i]);
    rc =
        llmux__redis_eval(c->redis, c->budget_lua, on_flushed, s, 2, 6, av, al);
    s->send_now = rc != 0;
    if (rc)
        budget_error(c, s, rc == LLMUX_ELIMITS ? "not connected" : "no memory");
}

/* The scopes one read asks for. */
typedef struct read_op {
    size_t n;
    struct read_one {
        struct llmux__scope *s;
        uint64_t period; /* the window read: a total of another is old */
    } s[1];              /* n of them */
} read_op;

static void on_read(llmux__redis *r, struct redisReply *rep, const char *err,
                    void *ud)
{
    struct llmux_client *c = llmux__redis_client(r);
    read_op *op = ud;
    size_t i;
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == op->n;
    for (i = 0; i < op->n && !c->closing; i++) {
        struct llmux__scope *s = op->s[i].s;
        double t;
        s->reading = 0;
        if (op->s[i].period != s->period)
            continue; /* a window gone by: read again */
        if (ok && reply_usd(rep->element[i], &t) == 0) {
            /* a flush sent before this read was answered first (one
             * connection answers in order): the total counts it */
            s->total = t;
            s->read_at = uv_now(c->loop);
            c->budget_outage = 0;
        } else {
            budget_error(c, s,
                         rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                         : err                                 ? err
                               : "a malformed answer");
        }
    }
    for (i = 0; i < op->n && !c->closing; i++)
        wake_waiters(c, op->s[i].s);
    llmux__free(op);
}

/* One MGET of the scopes in list[0..n) not being read already. */
static void read_totals(struct llmux_client *c, struct llmux__scope **list,
                        size_t n)
{
    read_op *op;
    const char **av;
    size_t *al, i, k = 0;
    int rc = LLMUX_ENOMEM;
    if (!n || !c->redis)
        return;
    op = llmux__malloc(sizeof *op + n * sizeof op->s[0]);
    av = llmux__calloc(n + 1, sizeof *av);
    al = llmux__calloc(n + 1, sizeof *al);
    if (op && av && al) {
        av[0] = "MGET";
        al[0] = 4;
        for (i = 0; i < n; i++) {
            if (list[i]->reading || roll(list[i]))
                continue;
            op->s[k].s = list[i];
            op->s[k].period = list[i]->period;
            av[k + 1] = list[i]->key;
            al[k + 1] = strlen(list[i]->key);
            k++;
        }
        op->n = k;
        rc =
            k ? llmux__redis_cmd(c->redis, on_read, op, (int)k + 1, av, al) : 0;
    }
    for (i = 0; !rc && i < k; i++)
        op->s[i].s->reading = 1;
    if (rc || !k)
        llmux__free(op);
    llmux__free(av);
    llmux__free(al);
    /* not asked: every scope of the list uses its fallback for a while,
     * so that its waiters fall back or fail rather than wait again */
    for (i = 0; rc && i < n; i++)
        budget_error(c, list[i],
                     rc == LLMUX_ELIMITS ? "not connected" : "no memory");
    for (i = 0; rc && i < n; i++)
        wake_waiters(c, list[i]);
}

/* The timer runs while shared scopes are in use (requests in flight or
 * waiting, spend not yet added); unreferenced: it keeps no loop alive. */
static void tick_start(struct llmux_client *c)
{
    if (!c->closing && !uv_is_active((uv_handle_t *)&c->budget_t))
        uv_timer_start(&c->budget_t, on_tick, READ_MS, READ_MS);
}

static void on_tick(uv_timer_t *t)
{
    struct llmux_client *c = t->data;
    struct llmux__scope *s, *list[64];
    size_t n = 0;
    int busy = 0;
    for (s = c->scopes; s && !c->closing; s = s->next) {
        if (!s->rkey)
            continue;
        if (s->active || s->whead || s->unflushed > 0 || s->sending_on)
            busy = 1;
        if (!usable(c, s))
            continue;
        if (s->send_now || (!s->sending_on && s->unflushed > 0))
            flush(c, s);
        if ((s->active || s->whead) && !s->reading) {
            list[n++] = s;
            if (n == sizeof list / sizeof list[0]) {
                read_totals(c, list, n);
                n = 0;
            }
        }
    }
    read_totals(c, list, n);
    if (!busy || c->closing)
        uv_timer_stop(t);
}

/* The connection went up (what waits is sent) or down (waiters fall
 * back or fail). */
static void on_redis_state(llmux__redis *r, int up, const char *why, void *ud)
{
    struct llmux_client *c = ud;
    struct llmux__scope *s;
    (void)r;
    (void)why;
    /* a lost connection is one failure, which the shared limits' own
     * listener counts when they use Redis too */
    if (!up && !c->limits_lua)
        c->st.limits_backend_errors++;
    for (s = c->scopes; s && !c->closing; s = s->next) {
        if (!s->rkey)
            continue;
        if (up) {
            s->failed_until = 0;
            if (s->sending_on)
                s->send_now = 1;
            flush(c, s);
            if (s->whead)
                read_totals(c, &s, 1);
        } else {
            s->reading = 0;
            wake_waiters(c, s);
        }
    }
    if (up)
        c->budget_outage = 0;
}

/* ---- admission ----------------------------------------------------------- */

/* The scope of id (taken; shared under it, or local under another id)
 * with its limit and window; NULL without memory. */
static struct llmux__scope *scope_take(struct llmux_client *c, int kind,
                                       char *id, const char *shown, int shared,
                                       double limit, long window_ms)
{
    char *rkey = shared && id ? llmux__strdup(id) : NULL;
    struct llmux__scope *s = NULL;
    if (id && !shared)
        id[0] = '.'; /* no shared id begins so */
    if (id && (!shared || rkey))
        s = scope_get(c, kind, id, shown, rkey);
    llmux__free(id);
    if (s)
        scope_set(s, limit, window_ms);
    return s;
}

/* x's scopes: the client's, its endpoint and key's, its request's. */
static int scopes_of(xfer *x, struct llmux__scope **out)
{
    struct llmux_client *c = x->c;
    const llmux__settings *set = &x->set, *d = &c->defaults;
    const llmux_request *req = x->req;
    int shared = set->limits && !llmux__strcaseeq(set->limits, "local");
    const char *prefix = set->limits_prefix ? set->limits_prefix : "llmux";
    char shown[LLMUX__ERRBUF], pfx[96], *id;
    int n = 0;
    if (set->budget_window_ms != d->budget_window_ms && !(set->budget_usd > 0))
        return llmux__request_fail(x->req, LLMUX_ECONFIG,
                                   "budget_window= wants budget_usd= in the "
                                   "same config string: it is that budget's "
                                   "window");
    if (c->budget > 0) {
        int cshared = c->budget_label && d->limits &&
                      !llmux__strcaseeq(d->limits, "local");
        snprintf(pfx, sizeof pfx, "%s:budget:name:",
                 d->limits_prefix ? d->limits_prefix : "llmux");
        id = cshared ? llmux__concat(pfx, strlen(pfx), c->budget_label, "")
                     : llmux__strdup(".client");
        snprintf(shown, sizeof shown, "budget_usd%s%s%s",
                 c->budget_label ? " of budget_scope '" : "",
                 c->budget_label ? c->budget_label : "",
                 c->budget_label ? "'" : "");
        if (!(out[n] = scope_take(c, SCOPE_CLIENT, id, shown, cshared,
                                  c->budget, d->budget_window_ms)))
            return LLMUX_ENOMEM;
        out[n++]->fallback_local =
            d->limits_fallback && llmux__strcaseeq(d->limits_fallback, "local");
    }
    if (set->budget_usd > 0) {
        /* the endpoint and key: named as the lane's Redis key, shown
         * without the key's hash */
        const char *h;
        int from, cut;
        snprintf(pfx, sizeof pfx, "%s:budget:key", prefix);
        if (!(id =
                  llmux__redis_key(pfx, x->prep.call.provider, x->ep->host->key,
                                   llmux__lane_key(&x->prep))))
            return LLMUX_ENOMEM;
        h = strrchr(id, ':');
        from = (int)strlen(pfx) + 1;
        cut = llmux__lane_key(&x->prep) && h ? (int)(h - id) : (int)strlen(id);
        snprintf(shown, sizeof shown, "budget_usd=%g of %.*s (that API key)",
                 set->budget_usd, cut - from, id + from);
        if (!(out[n++] = scope_take(c, SCOPE_KEY, id, shown, shared,
                                    set->budget_usd, set->budget_window_ms)))
            return LLMUX_ENOMEM;
    }
    if (req->budget_scope && req->budget_usd > 0) {
        snprintf(pfx, sizeof pfx, "%s:budget:name:", prefix);
        id = llmux__concat(pfx, strlen(pfx), req->budget_scope, "");
        snprintf(shown, sizeof shown, "budget scope '%s'", req->budget_scope);
        if (!(out[n++] = scope_take(c, SCOPE_NAMED, id, shown, shared,
                                    req->budget_usd, req->budget_window_ms)))
            return LLMUX_ENOMEM;
    }
    /* one Redis connection per client: the shared scopes' */
    {
        int i, code;
        char err[LLMUX__ERRBUF];
        for (i = 0; i < n; i++) {
            const char *u =
                out[i]->kind == SCOPE_CLIENT ? c->defaults.limits : set->limits;
            if (!out[i]->rkey)
                continue;
            if (out[i]->kind != SCOPE_CLIENT)
                out[i]->fallback_local =
                    set->limits_fallback &&
                    llmux__strcaseeq(set->limits_fallback, "local");
            if (!llmux__client_redis(c, u, &code, err, sizeof err))
                return llmux__request_fail(x->req, code, "budget: %s", err);
            if (llmux__redis_on_state(c->redis, on_redis_state, c) != 0)
                return llmux__request_fail(x->req, LLMUX_ENOMEM,
                                           "budget: too many Redis listeners");
        }
    }
    return n;
}

/* x waits for the read of s on its way. */
static void wait_on(xfer *x, struct llmux__scope *s)
{
    x->bwait = s;
    x->bnext = NULL;
    x->bprev = s->wtail;
    if (s->wtail)
        s->wtail->bnext = x;
    else
        s->whead = x;
    s->wtail = x;
    tick_start(x->c);
}

static void unwait(xfer *x)
{
    struct llmux__scope *s = x->bwait;
    if (!s)
        return;
    if (x->bprev)
        x->bprev->bnext = x->bnext;
    else
        s->whead = x->bnext;
    if (x->bnext)
        x->bnext->bprev = x->bprev;
    else
        s->wtail = x->bprev;
    x->bwait = NULL;
    x->bnext = x->bprev = NULL;
}

/* What x may cost, held against its scopes while in flight: its prompt
 * (chars / 4) and max_tokens of output; without max_tokens its prompt. */
static double estimate(xfer *x)
{
    llmux_request *req = x->req;
    llmux__price p;
    llmux_usage u = {-1, -1, -1, -1, -1};
    double est, out;
    if (!llmux__price_for(x->c, req->cfg.provider, req->cfg.model, &p))
        return 0;
    est = llmux__estimate_tokens(req);
    out = req->has & LLMUX_HAS_MAX_TOKENS ? (double)req->max_tokens : 0;
    u.prompt_tokens = (long)(est - out);
    u.completion_tokens = (long)out;
    return llmux__cost(&p, &u);
}

/* Admits x on its scopes: 0 (held), 1 (waits on a scope's read; only
 * when may_wait), or LLMUX_EBUDGET / LLMUX_ELIMITS / LLMUX_ENOMEM with x's
 * message. */
static int admit_scopes(xfer *x, int may_wait)
{
    struct llmux_client *c = x->c;
    struct llmux__scope *sc[3];
    uint64_t now = uv_now(c->loop);
    int n = scopes_of(x, sc), i, fell_back = 0;
    if (n < 0)
        return n;
    for (i = 0; i < n; i++)
        if (roll(sc[i]))
            return LLMUX_ENOMEM;
    for (i = 0; i < n; i++) {
        struct llmux__scope *s = sc[i];
        if (s->rkey && usable(c, s) &&
            (!s->read_at || now - s->read_at > FRESH_MS)) {
            /* not read lately: x waits for the total, unless it cannot
             * even be asked (then the fallback, below); one read at a
             * time serves every request that comes meanwhile */
            if (!s->reading)
                read_totals(c, &s, 1);
            if (s->reading && may_wait) {
                wait_on(x, s);
                return 1;
            }
        }
        if (s->rkey && !usable(c, s)) {
            if (!s->fallback_local) {
                const char *why =
                    llmux__redis_state_of(c->redis) == LLMUX__REDIS_DOWN
                        ? (*llmux__redis_why(c->redis)
                               ? llmux__redis_why(c->redis)
                               : "not connected")
                        : "it answered with an error";
                outage_log(c, s, why);
                return llmux__request_fail(
                    x->req, LLMUX_ELIMITS,
                    "shared budget unavailable (%s): Redis at %s: %s "
                    "(limits_fallback=closed; limits_fallback=local would "
                    "go on what this process knows)",
                    s->shown, llmux__redis_url_shown(c->redis), why);
            }
            fell_back = 1; /* counted once the request is let go */
        }
        if (spent(s) + s->reserved >= s->limit) {
            char win[80] = "";
            if (s->window_ms > 0) {
                uint64_t end = (s->period + 1) * (uint64_t)s->window_ms,
                         t = wall_ms();
                snprintf(win, sizeof win,
                         " in this window of %.3g s (it resets in %.3g s)",
                         (double)s->window_ms / 1000,
                         (double)(end > t ? end - t : 0) / 1000);
            }
            if (s->kind == SCOPE_CLIENT && !s->rkey)
                return llmux__request_fail(
                    x->req, LLMUX_EBUDGET,
                    "spend limit reached: $%.6f spent%s and $%.6f held by "
                    "requests in flight, of a budget_usd of $%.6f",
                    spent(s), win, s->reserved, s->limit);
            return llmux__request_fail(
                x->req, LLMUX_EBUDGET,
                "spend limit reached for %s: $%.6f spent%s%s and $%.6f held "
                "by requests in flight here, of $%.6f",
                s->shown, spent(s), s->rkey ? " (all processes)" : "", win,
                s->reserved, s->limit);
        }
    }
    c->st.limits_fallbacks += (uint64_t)fell_back; /* a request, once */
    x->reserved_usd = n ? estimate(x) : 0;
    c->reserved += x->reserved_usd;
    for (i = 0; i < n; i++) {
        x->budget[i] = sc[i];
        sc[i]->reserved += x->reserved_usd;
        sc[i]->active++;
        if (sc[i]->rkey)
            tick_start(c);
    }
    return 0;
}

int llmux__budget_admit(xfer *x, void (*answered)(xfer *x))
{
    int rc;
    x->c->budget_answered = answered;
    rc = admit_scopes(x, 1);
    if (rc == 1)
        x->state = X_WAIT;
    return rc;
}

/* The waiters of s are admitted again (the read came, or failed): each
 * starts, waits on another scope, or ends through `answered`. */
static void wake_waiters(struct llmux_client *c, struct llmux__scope *s)
{
    xfer *list = s->whead, *x;
    s->whead = s->wtail = NULL;
    while ((x = list) != NULL) {
        int rc;
        list = x->bnext;
        x->bwait = NULL;
        x->bnext = x->bprev = NULL;
        if (x->cancel || c->closing)
            continue; /* on the defer list: it ends canceled there */
        rc = admit_scopes(x, 1);
        if (rc == 1)
            continue;
        x->defer_code = rc;
        c->budget_answered(x);
    }
}

/* ---- the end of a request ------------------------------------------------ */

void llmux__budget_release(xfer *x)
{
    struct llmux_client *c = x->c;
    size_t i;
    unwait(x);
    c->reserved -= x->reserved_usd;
    if (c->reserved < 0)
        c->reserved = 0; /* rounding */
    for (i = 0; i < sizeof x->budget / sizeof x->budget[0]; i++) {
        struct llmux__scope *s = x->budget[i];
        if (!s)
            continue;
        s->reserved -= x->reserved_usd;
        if (s->reserved < 0 || !--s->active)
            s->reserved = 0;
        x->budget[i] = NULL;
    }
    x->reserved_usd = 0;
}

int llmux__budget_refit(xfer *x)
{
    llmux__budget_release(x);
    return admit_scopes(x, 0);
}

void llmux__spend_count(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_response *res = x->res;
    struct llmux__scope *sc[3];
    llmux__price p;
    size_t i;
    memcpy(sc, x->budget, sizeof sc);
    llmux__budget_release(x);
    if (res->cached) {
        res->cost = 0; /* a hit costs nothing, budgets included */
        res->cost_known = 1;
        return;
    }
    if (!res->o.has_usage)
        return;
    /* the model the provider says answered (a dated snapshot of the
     * requested alias), else the one asked for */
    if ((res->o.model &&
         llmux__price_for(c, res->provider, res->o.model, &p)) ||
        llmux__price_for(c, res->provider, x->req->cfg.model, &p)) {
        res->cost = llmux__cost(&p, &res->o.usage);
        res->cost_known = 1;
        c->spend += res->cost;
        for (i = 0; i < 3; i++) {
            if (!sc[i])
                continue;
            (void)roll(sc[i]); /* the window it ends in (else the last) */
            if (!sc[i]->rkey) {
                sc[i]->total += res->cost;
                continue;
            }
            sc[i]->unflushed += res->cost;
            flush(c, sc[i]);
            tick_start(c);
        }
    }
}

int llmux__budget_init(struct llmux_client *c)
{
    unsigned char id[16];
    int i;
    if (RAND_bytes(id, sizeof id) != 1)
        return LLMUX_ENOMEM;
    for (i = 0; i < 16; i++)
        snprintf(c->budget_id + 2 * i, 3, "%02x", id[i]);
    return 0;
}
