/*
 * core/limits.c: limits and queues: concurrency lanes, the FIFO queue,
 * starts per loop turn, token buckets per endpoint and key, and the
 * feedback of the providers' rate-limit headers.
 */
#include "engine.h"

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
int llmux__limits_allow(const struct llmux_client *c, llmux__endpoint *e,
                        const xfer *x)
{
    return (!c->max_in_flight || c->in_flight < c->max_in_flight) &&
           (!c->max_per_endpoint || e->host->in_flight < c->max_per_endpoint) &&
           rate_wait(c, e, x) == 0;
}

/* ... and this loop iteration has starts left. */
int llmux__can_start_x(const struct llmux_client *c, llmux__endpoint *e,
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
    if (e->rq.rate)
        e->rq.tokens -= 1;
    if (e->tk.rate)
        e->tk.tokens -= x->est_tokens > e->tk.cap ? e->tk.cap : x->est_tokens;
    if (c->in_flight > c->st.max_in_flight)
        c->st.max_in_flight = c->in_flight;
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

/* The endpoint whose queue's head may start now and waited longest
 * (oldest first across endpoints, O(endpoints)); NULL when none may, with
 * *wake the ms until a rate limit lets one (0 = none is rate limited). */
llmux__endpoint *llmux__next_endpoint(const struct llmux_client *c,
                                      uint64_t *wake)
{
    llmux__endpoint *e, *best = NULL;
    *wake = 0;
    for (e = c->endpoints; e; e = e->next) {
        uint64_t w;
        if (!e->qhead ||
            (c->max_per_endpoint && e->host->in_flight >= c->max_per_endpoint))
            continue;
        w = rate_wait(c, e, e->qhead);
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

/* Rate limits of an endpoint: the request's effective rpm and tpm (its
 * config string's, else the client's); the last request that names one
 * sets it. */
void llmux__endpoint_limits(struct llmux_client *c, llmux__endpoint *e,
                            const llmux__settings *set)
{
    uint64_t now = uv_now(c->loop);
    if (set->rpm > 0)
        bucket_set(&e->rq, set->rpm, now);
    if (set->tpm > 0)
        bucket_set(&e->tk, set->tpm, now);
}

/* The characters of a parts array's text: base64 payloads (images,
 * audio, files as data) are priced by their own rules, not as text. */
static size_t json_text_chars(const char *s)
{
    size_t n = 0;
    const char *b;
    while ((b = strstr(s, "base64,")) != NULL) {
        n += (size_t)(b - s) + 7;
        s = b + 7;
        s += strcspn(s, "\""); /* to the end of the string */
    }
    return n + strlen(s);
}

/* Tokens a request will likely cost before it is sent: its text at about
 * four characters a token, plus the completion it may ask for. */
double llmux__estimate_tokens(const llmux_request *r)
{
    size_t chars = 0, i;
    for (i = 0; i < r->n_msgs; i++) {
        if (r->msgs[i].content)
            chars += strlen(r->msgs[i].content);
        if (r->msgs[i].content_json)
            chars += json_text_chars(r->msgs[i].content_json);
    }
    if (r->prompt)
        chars += strlen(r->prompt);
    for (i = 0; i < r->n_inputs; i++)
        chars += strlen(r->inputs[i]);
    return (double)chars / 4.0 + 1.0 +
           (r->has & LLMUX_HAS_MAX_TOKENS ? (double)r->max_tokens : 0.0);
}

/* Whether server feedback can change the endpoint's limits: it has
 * rate limits to adapt, or a 429 pauses it. Spares the header scans. */
int llmux__rate_feedback_wanted(const llmux__endpoint *e, long status)
{
    return e->rq.rate || e->tk.rate || status == 429;
}

/* Server feedback on the endpoint's limits: a 429's Retry-After pauses the
 * endpoint for every request of the client; what the provider's own
 * rate-limit headers say is left (`rl`, read by its plugin's rate_limits
 * hook; NULL without one) brings the buckets down, and no requests left
 * pauses the endpoint until the window resets. */
void llmux__rate_feedback(llmux__endpoint *e, uint64_t now, long status,
                          double retry_after_ms, const llmux_rate_limits *rl)
{
    if (status == 429 && retry_after_ms >= 0) {
        uint64_t until = now + (uint64_t)retry_after_ms;
        if (until > e->paused_until)
            e->paused_until = until;
    }
    if (!rl)
        return;
    if (rl->requests_remaining >= 0) {
        if (e->rq.rate) {
            bucket_refill(&e->rq, now);
            if (rl->requests_remaining < e->rq.tokens)
                e->rq.tokens = rl->requests_remaining;
        }
        if (rl->requests_remaining < 1 && rl->requests_reset_ms > 0 &&
            now + (uint64_t)rl->requests_reset_ms > e->paused_until)
            e->paused_until = now + (uint64_t)rl->requests_reset_ms;
    }
    if (e->tk.rate && rl->tokens_remaining >= 0) {
        bucket_refill(&e->tk, now);
        if (rl->tokens_remaining < e->tk.tokens)
            e->tk.tokens = rl->tokens_remaining;
    }
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

/* ---- the spend budget ----------------------------------------------------
 */

int llmux__budget_admit(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_request *req = x->req;
    llmux__price p;
    char m[200];
    if (c->budget <= 0)
        return 0;
    if (c->spend + c->reserved >= c->budget) {
        snprintf(m, sizeof m,
                 "spend limit reached: $%.6f spent and $%.6f held by "
                 "requests in flight, of a budget_usd of $%.6f",
                 c->spend, c->reserved, c->budget);
        llmux__request_seterr(req, m);
        return LLMUX_EBUDGET;
    }
    /* hold what it may cost: its prompt (chars / 4) and max_tokens of
     * output; a request without max_tokens holds its prompt only */
    if (llmux__price_for(c, req->cfg.provider, req->cfg.model, &p)) {
        llmux_usage u = {-1, -1, -1, -1, -1};
        double est = llmux__estimate_tokens(req);
        double out =
            req->has & LLMUX_HAS_MAX_TOKENS ? (double)req->max_tokens : 0;
        u.prompt_tokens = (long)(est - out);
        u.completion_tokens = (long)out;
        x->reserved_usd = llmux__cost(&p, &u);
        c->reserved += x->reserved_usd;
    }
    return 0;
}
