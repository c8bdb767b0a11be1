/*
 * core/cache.c: the exact-match response cache. A request that opted in
 * (the `cache` setting, or the client's cache_all) is looked up under the
 * SHA-256 of what decides its answer before it takes a slot or a rate
 * token; a hit is decoded or replayed from the loop (never inside
 * llmux_submit()), a miss goes to the provider, and a complete success is
 * kept. The parts below the engine (backend interface, LRU backend, key,
 * value encoding) are declared in cache.h; the engine's in engine.h.
 */
#include "cache.h"
#include "engine.h"
#include "redis.h"

/* ---- the value's encoding ------------------------------------------------ */

#define NONE32 0xffffffffu

static int put_u32(llmux__buf *b, uint32_t v)
{
    char q[4];
    q[0] = (char)(v >> 24);
    q[1] = (char)(v >> 16);
    q[2] = (char)(v >> 8);
    q[3] = (char)v;
    return llmux__buf_append(b, q, 4);
}

/* A string: its length (NONE32 for NULL) and bytes. Lengths past 4 GiB
 * cannot be written (no answer gets there: max_response_bytes). */
static int put_str(llmux__buf *b, const char *s, size_t n)
{
    if (!s)
        return put_u32(b, NONE32);
    if (n >= NONE32)
        return LLMUX_ETOOBIG;
    return put_u32(b, (uint32_t)n) || (n && llmux__buf_append(b, s, n))
               ? LLMUX_ENOMEM
               : 0;
}

int llmux__cache_val_begin(llmux__buf *b, int kind)
{
    char k = (char)kind;
    return llmux__buf_append(b, "LXC1", 4) || llmux__buf_append(b, &k, 1)
               ? LLMUX_ENOMEM
               : 0;
}

int llmux__cache_val_reply(llmux__buf *b, long status, const char *ctype,
                           const char *body, size_t len)
{
    int rc = put_u32(b, (uint32_t)status);
    if (!rc)
        rc = put_str(b, ctype, ctype ? strlen(ctype) : 0);
    if (!rc)
        rc = put_str(b, body ? body : "", body ? len : 0);
    return rc;
}

int llmux__cache_val_event(llmux__buf *b, const char *event, const char *id,
                           const char *data, size_t len)
{
    int rc = put_str(b, event, event ? strlen(event) : 0);
    if (!rc)
        rc = put_str(b, id, id ? strlen(id) : 0);
    if (!rc)
        rc = put_str(b, data ? data : "", data ? len : 0);
    return rc;
}

static int get_u32(llmux__cache_rd *r, uint32_t *v)
{
    const unsigned char *q = (const unsigned char *)r->p + r->pos;
    if (r->len - r->pos < 4)
        return -1;
    *v = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 |
         q[3];
    r->pos += 4;
    return 0;
}

static int get_str(llmux__cache_rd *r, const char **s, size_t *n)
{
    uint32_t v;
    if (get_u32(r, &v))
        return -1;
    if (v == NONE32) {
        *s = NULL;
        *n = 0;
        return 0;
    }
    if (r->len - r->pos < v)
        return -1;
    *s = r->p + r->pos;
    *n = v;
    r->pos += v;
    return 0;
}

int llmux__cache_val_kind(llmux__cache_rd *r, const char *v, size_t len)
{
    r->p = v;
    r->len = len;
    r->pos = 5;
    if (!v || len < 5 || memcmp(v, "LXC1", 4) != 0 ||
        (v[4] != LLMUX__CACHE_REPLY && v[4] != LLMUX__CACHE_STREAM))
        return -1;
    return v[4];
}

int llmux__cache_val_read_reply(llmux__cache_rd *r, long *status,
                                const char **ctype, size_t *ctype_len,
                                const char **body, size_t *body_len)
{
    uint32_t st;
    if (get_u32(r, &st) || st > 999 || get_str(r, ctype, ctype_len) ||
        get_str(r, body, body_len) || !*body || r->pos != r->len)
        return -1;
    *status = (long)st;
    return 0;
}

int llmux__cache_val_read_event(llmux__cache_rd *r, const char **event,
                                size_t *event_len, const char **id,
                                size_t *id_len, const char **data,
                                size_t *data_len)
{
    if (r->pos == r->len)
        return 0;
    if (get_str(r, event, event_len) || get_str(r, id, id_len) ||
        get_str(r, data, data_len) || !*data)
        return -1;
    return 1;
}

/* ---- the in-process LRU backend ------------------------------------------ */

typedef struct lru_entry {
    char key[LLMUX__CACHE_KEY_LEN + 1];
    char *val;
    size_t len;
    uint64_t expires;              /* clock ms */
    struct lru_entry *prev, *next; /* most recently used first */
    struct lru_entry *hnext;       /* the bucket's chain */
} lru_entry;

typedef struct lru {
    llmux__cache_backend b; /* first: the backend is the lru */
    size_t max_bytes, max_entries;
    size_t bytes, n;
    lru_entry **tab;
    size_t n_tab; /* a power of two */
    lru_entry *head, *tail;
    llmux__cache_clock clock;
    void *clock_ud;
} lru;

/* What an entry costs against max_bytes: its value and its bookkeeping. */
#define ENTRY_BYTES(len) ((len) + sizeof(lru_entry))

static uint64_t hr_clock(void *ud)
{
    (void)ud;
    return uv_hrtime() / 1000000u;
}

/* The key's hash: keys are hex digests, so their first 16 digits are as
 * good a hash as any. */
static uint64_t key_hash(const char *key)
{
    uint64_t h = 0;
    int i;
    for (i = 0; i < 16; i++) {
        char ch = key[i];
        h = h << 4 | (uint64_t)(ch >= 'a' ? ch - 'a' + 10 : ch - '0');
    }
    return h;
}

static lru_entry **lru_slot(lru *l, const char *key)
{
    lru_entry **s = &l->tab[key_hash(key) & (l->n_tab - 1)];
    while (*s && memcmp((*s)->key, key, LLMUX__CACHE_KEY_LEN) != 0)
        s = &(*s)->hnext;
    return s;
}

static void list_unlink(lru *l, lru_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(lru *l, lru_entry *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    else
        l->tail = e;
    l->head = e;
}

static void lru_remove(lru *l, lru_entry *e)
{
    lru_entry **s = lru_slot(l, e->key);
    *s = e->hnext;
    list_unlink(l, e);
    l->bytes -= ENTRY_BYTES(e->len);
    l->n--;
    llmux__free(e->val);
    llmux__free(e);
}

/* Doubles the table once entries outnumber buckets: chains stay short.
 * Without memory the table stays as it is (longer chains, still right). */
static void lru_grow(lru *l)
{
    size_t n = l->n_tab * 2, i;
    lru_entry **t;
    if (l->n < l->n_tab || !(t = llmux__calloc(n, sizeof *t)))
        return;
    for (i = 0; i < l->n_tab; i++) {
        lru_entry *e, *next;
        for (e = l->tab[i]; e; e = next) {
            lru_entry **s = &t[key_hash(e->key) & (n - 1)];
            next = e->hnext;
            e->hnext = *s;
            *s = e;
        }
    }
    llmux__free(l->tab);
    l->tab = t;
    l->n_tab = n;
}

static void lru_get(llmux__cache_backend *b, const char *key,
                    llmux__cache_get_cb cb, void *ud)
{
    lru *l = (lru *)b;
    lru_entry *e = *lru_slot(l, key);
    if (e && e->expires <= l->clock(l->clock_ud)) {
        lru_remove(l, e);
        e = NULL;
    }
    if (!e) {
        cb(ud, 0, NULL, 0);
        return;
    }
    list_unlink(l, e);
    list_push_front(l, e);
    cb(ud, 1, e->val, e->len);
}

static int lru_put(llmux__cache_backend *b, const char *key, const char *val,
                   size_t len, uint64_t ttl_ms)
{
    lru *l = (lru *)b;
    lru_entry *e, **s;
    uint64_t now = l->clock(l->clock_ud);
    if (ENTRY_BYTES(len) > l->max_bytes || !l->max_entries)
        return LLMUX_ETOOBIG;
    if ((e = *lru_slot(l, key)) != NULL)
        lru_remove(l, e); /* replaced: the newer answer wins */
    if (!(e = llmux__calloc(1, sizeof *e)) || !(e->val = llmux__malloc(len))) {
        llmux__free(e);
        return LLMUX_ENOMEM;
    }
    memcpy(e->key, key, LLMUX__CACHE_KEY_LEN);
    memcpy(e->val, val, len);
    e->len = len;
    e->expires = now + ttl_ms;
    /* room first: the least recently used go, expired or not */
    while (l->tail && (l->n + 1 > l->max_entries ||
                       l->bytes + ENTRY_BYTES(len) > l->max_bytes))
        lru_remove(l, l->tail);
    s = lru_slot(l, key);
    e->hnext = *s;
    *s = e;
    list_push_front(l, e);
    l->bytes += ENTRY_BYTES(len);
    l->n++;
    lru_grow(l);
    return 0;
}

static void lru_free(llmux__cache_backend *b)
{
    lru *l = (lru *)b;
    while (l->head)
        lru_remove(l, l->head);
    llmux__free(l->tab);
    llmux__free(l);
}

llmux__cache_backend *llmux__cache_lru_new(size_t max_bytes, size_t max_entries,
                                           llmux__cache_clock clock,
                                           void *clock_ud)
{
    lru *l = llmux__calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->n_tab = 64;
    if (!(l->tab = llmux__calloc(l->n_tab, sizeof *l->tab))) {
        llmux__free(l);
        return NULL;
    }
    l->b.name = "lru";
    l->b.max_val = max_bytes;
    l->b.get = lru_get;
    l->b.put = lru_put;
    l->b.free = lru_free;
    l->max_bytes = max_bytes;
    l->max_entries = max_entries;
    l->clock = clock ? clock : hr_clock;
    l->clock_ud = clock_ud;
    return &l->b;
}

void llmux__cache_lru_usage(const llmux__cache_backend *b, size_t *entries,
                            size_t *bytes)
{
    const lru *l = (const lru *)b;
    if (entries)
        *entries = l->n;
    if (bytes)
        *bytes = l->bytes;
}

/* ---- the engine's side ----------------------------------------------------
 */

/* A pending lookup: the backend answers through it; x is NULL once the
 * request ended without waiting (cancelled, the client closing). */
typedef struct llmux__cache_lookup {
    xfer *x;
    void (*answered)(xfer *x);
} cache_lookup;

/* The URL as the key sees it: without a user:password, with the key
 * masked wherever a plugin put it (a query), so that neither takes part:
 * two keys of one deployment share its entries. */
static char *key_url(const xfer *x)
{
    const char *u = x->prep.url;
    size_t n = strlen(u), a = n, b = n;
    char *s, *m;
    if (llmux__url_userinfo(u, n, &a, &b))
        s = llmux__concat(u, a, u + b + 1, NULL); /* and the '@' */
    else
        s = llmux__strdup(u);
    if (s && x->prep.api_key && *x->prep.api_key) {
        m = llmux__mask(s, x->prep.api_key);
        llmux__free(s);
        s = m;
    }
    if (s && x->prep.conf_key && *x->prep.conf_key) {
        m = llmux__mask(s, x->prep.conf_key);
        llmux__free(s);
        s = m;
    }
    return s;
}

/*
 * The key: SHA-256 of what decides the answer, each part length-prefixed:
 * the provider's name, the model asked for, the operation, and the HTTP
 * request the plugin encoded (method, URL with its scheme, host, port and
 * path, body). The body carries the messages and every parameter that
 * reaches the provider, whatever new field a plugin sends, so none can be
 * left out. Not in it: the API key, headers, timeouts and retries.
 */
static int make_key(xfer *x, char out[LLMUX__CACHE_KEY_LEN + 1])
{
    const llmux_request *r = x->req;
    const struct llmux_http_request *h = &x->prep.http;
    llmux__buf b = {0};
    char op[16];
    char *url = key_url(x);
    int rc;
    snprintf(op, sizeof op, "%d", r->op);
    rc = !url || llmux__buf_append(&b, "llmux-cache-1", 13) ? LLMUX_ENOMEM : 0;
    if (!rc)
        rc = put_str(&b, r->cfg.provider, strlen(r->cfg.provider));
    if (!rc)
        rc = put_str(&b, r->cfg.model, r->cfg.model ? strlen(r->cfg.model) : 0);
    if (!rc)
        rc = put_str(&b, op, strlen(op));
    if (!rc)
        rc = put_str(&b, h->method, strlen(h->method));
    if (!rc)
        rc = put_str(&b, url, strlen(url));
    if (!rc)
        rc = put_str(&b, h->body, h->body ? h->body_len : 0);
    if (!rc)
        rc = llmux__sha256_hex(b.p, b.len, out);
    llmux__buf_free(&b);
    llmux__free(url);
    return rc;
}

/* The effective TTL of x in ms, or 0 when it is not cached. */
static long ttl_of(const xfer *x)
{
    const struct llmux_client *c = x->c;
    long t = x->set.cache;
    if (x->req->op == LLMUX__OP_JOB)
        return 0; /* a batch job's steps: a status poll must see it move */
    if (t == LLMUX__CACHE_UNSET)
        t = c->cache_all ? LLMUX__CACHE_YES : LLMUX__CACHE_NO;
    if (t == LLMUX__CACHE_YES)
        t = c->cache_ttl_ms;
    return t > 0 ? t : 0;
}

/* The backend's answer: kept on x, which the caller's `answered` hands to
 * llmux__on_defer (never a user callback here: it may run inside
 * llmux_submit()). */
static void on_lookup(void *ud, int found, const char *val, size_t len)
{
    cache_lookup *l = ud;
    xfer *x = l->x;
    void (*answered)(xfer *) = l->answered;
    llmux__free(l);
    if (!x)
        return; /* the request ended meanwhile */
    x->cache->lookup = NULL;
    x->cache->answered = 1;
    if (found > 0 && len && (x->cache->val = llmux__malloc(len))) {
        memcpy(x->cache->val, val, len);
        x->cache->len = len;
    } else if (found < 0) {
        /* the backend counted and logged it, once per outage */
        llmux__client_log(x->c, LLMUX_LOG_DEBUG,
                          "response cache (%s): lookup failed; asking the "
                          "provider",
                          x->cache->b->name);
    }
    answered(x);
}

/* The store x is looked up in and kept in: the client's LRU, or its Redis
 * backend (cache_backend=redis://...) on the client's one connection;
 * each made at its first lookup. 0, or a failure with the request's
 * message. */
static int backend_of(xfer *x, llmux__cache_backend **out)
{
    struct llmux_client *c = x->c;
    const char *url = x->set.cache_backend;
    const char *prefix = x->set.limits_prefix ? x->set.limits_prefix : "llmux";
    char err[LLMUX__ERRBUF];
    llmux__redis *r;
    int code;
    if (!url || llmux__strcaseeq(url, "lru")) {
        if (!c->cache &&
            !(c->cache = llmux__cache_lru_new(
                  c->cache_max_bytes, c->cache_max_entries, NULL, NULL)))
            return LLMUX_ENOMEM;
        *out = c->cache;
        return 0;
    }
    if (!(r = llmux__client_redis(c, url, &code, err, sizeof err)))
        return llmux__request_fail(x->req, code, "cache_backend: %s", err);
    if (!c->cache_redis && !(c->cache_redis = llmux__cache_redis_new(
                                 c, r, prefix, c->cache_max_value)))
        return LLMUX_ENOMEM;
    if (strcmp(llmux__cache_redis_prefix(c->cache_redis), prefix) != 0)
        return llmux__request_fail(
            x->req, LLMUX_ECONFIG,
            "cache_backend: this client keeps answers in Redis under the "
            "prefix %s already (limits_prefix); one prefix per client",
            llmux__cache_redis_prefix(c->cache_redis));
    *out = c->cache_redis;
    return 0;
}

int llmux__cache_begin(xfer *x, void (*answered)(xfer *x))
{
    struct llmux_client *c = x->c;
    long ttl = ttl_of(x);
    llmux__cache_backend *b;
    cache_lookup *l;
    int rc;
    if (!ttl)
        return 0;
    if (llmux__queue_full(c))
        return LLMUX_EQUEUEFULL; /* a miss would queue */
    if ((rc = backend_of(x, &b)) != 0)
        return rc;
    if (!(x->cache = llmux__calloc(1, sizeof *x->cache)) ||
        !(l = llmux__calloc(1, sizeof *l)))
        return LLMUX_ENOMEM;
    if (make_key(x, x->cache->key)) {
        llmux__free(l);
        return LLMUX_ENOMEM;
    }
    x->cache->ttl_ms = (uint64_t)ttl;
    x->cache->b = b;
    l->x = x;
    l->answered = answered;
    x->cache->lookup = l;
    x->state = X_WAIT;
    b->get(b, x->cache->key, on_lookup, l);
    return 1;
}

/* A hit that cannot be used (a value this build cannot read, a body its
 * plugin no longer decodes): a miss, and the response starts afresh. */
static int unusable(xfer *x, const char *why)
{
    llmux__xcache *k = x->cache;
    llmux__client_log(x->c, LLMUX_LOG_WARN,
                      "response cache: entry %.12s... %s; asking the provider",
                      k->key, why);
    llmux__free(k->val);
    k->val = NULL;
    llmux__out_reset(&x->res->o);
    x->res->has_error = 0;
    x->res->http_status = 0;
    x->c->st.cache_misses++;
    return LLMUX__CACHE_MISS;
}

/* The hit's whole reply, decoded by the request's plugin as if it had
 * just arrived. */
static int hit_reply(xfer *x)
{
    llmux__xcache *k = x->cache;
    const char *ct, *body;
    size_t ct_len, body_len;
    long status;
    char *ctype = NULL;
    int rc;
    if (llmux__cache_val_read_reply(&k->rd, &status, &ct, &ct_len, &body,
                                    &body_len) ||
        (ct && !(ctype = llmux__strndup(ct, ct_len))))
        return unusable(x, "is malformed");
    rc = llmux__decode_answer(&x->prep, status, ctype, body, body_len, x->res);
    llmux__free(ctype);
    if (rc)
        return unusable(x, "does not decode");
    x->c->st.cache_hits++;
    x->res->cached = 1;
    if ((x->res->raw = llmux__strndup(body, body_len)) != NULL)
        x->res->raw_len = body_len;
    return LLMUX__CACHE_REPLY;
}

/* The hit's stream: checked whole first (a malformed entry is a miss, not
 * a stream cut off halfway), then set up for llmux__cache_next_event. */
static int hit_stream(xfer *x)
{
    llmux__xcache *k = x->cache;
    llmux__cache_rd chk = k->rd;
    const char *e, *id, *d;
    size_t el, il, dl;
    int r;
    while ((r = llmux__cache_val_read_event(&chk, &e, &el, &id, &il, &d, &dl)) >
           0)
        ;
    if (r < 0)
        return unusable(x, "is malformed");
    if (!x->live) {
        if (!(x->live = llmux__calloc(1, sizeof *x->live)))
            return LLMUX_ENOMEM;
        llmux__out_init(&x->live->chunk.o, x->req->op, 1);
    }
    x->live->chunk.cached = 1;
    x->c->st.cache_hits++;
    x->res->cached = 1;
    k->replaying = 1;
    return LLMUX__CACHE_STREAM;
}

int llmux__cache_hit(xfer *x)
{
    llmux__xcache *k = x->cache;
    int kind;
    k->answered = 0;
    if (!k->val) {
        x->c->st.cache_misses++;
        return LLMUX__CACHE_MISS;
    }
    kind = llmux__cache_val_kind(&k->rd, k->val, k->len);
    if (kind == LLMUX__CACHE_REPLY)
        return hit_reply(x);
    if (kind == LLMUX__CACHE_STREAM && x->req->stream)
        return hit_stream(x);
    return unusable(x, "is of another kind");
}

/* Copies s[0..n) into b, NUL-terminated; the string's offset in b. */
static size_t ev_part(llmux__buf *b, const char *s, size_t n, int *rc)
{
    size_t at = b->len;
    if (!*rc && s &&
        (llmux__buf_append(b, s, n) || llmux__buf_append(b, "", 1)))
        *rc = LLMUX_ENOMEM;
    return at;
}

int llmux__cache_next_event(xfer *x, llmux_event *ev)
{
    llmux__xcache *k = x->cache;
    const char *e, *id, *d;
    size_t el, il, dl, oe, oi, od;
    int rc = 0,
        r = llmux__cache_val_read_event(&k->rd, &e, &el, &id, &il, &d, &dl);
    if (r <= 0)
        return r; /* checked whole before the first: the end */
    llmux__buf_reset(&k->ev);
    oe = ev_part(&k->ev, e, el, &rc);
    oi = ev_part(&k->ev, id, il, &rc);
    od = ev_part(&k->ev, d, dl, &rc);
    if (rc)
        return rc;
    memset(ev, 0, sizeof *ev);
    ev->struct_size = sizeof *ev;
    ev->event = e ? k->ev.p + oe : NULL;
    ev->id = id ? k->ev.p + oi : NULL;
    ev->data = k->ev.p + od;
    ev->data_len = dl;
    return 1;
}

/* Whether x's answer is to be kept: cached, a miss (not a replay), from
 * the config string it was looked up under (not a fallback's). */
static int keeps(const xfer *x)
{
    return x->cache && !x->cache->replaying && !x->res->cached &&
           !x->req->next_fallback;
}

void llmux__cache_record(xfer *x, const llmux_event *ev)
{
    llmux__xcache *k = x->cache;
    if (!keeps(x))
        return;
    if (x->events == 1) { /* a new attempt: nothing of an earlier one */
        llmux__buf_free(&k->rec);
        k->rec_off = 0;
    }
    if (k->rec_off)
        return;
    if ((!k->rec.len && llmux__cache_val_begin(&k->rec, LLMUX__CACHE_STREAM)) ||
        llmux__cache_val_event(&k->rec, ev->event, ev->id, ev->data,
                               ev->data_len) ||
        k->rec.len > k->b->max_val) {
        /* not kept: the stream itself goes on */
        k->rec_off = 1;
        llmux__buf_free(&k->rec);
    }
}

void llmux__cache_store(xfer *x, int code, long status, const char *ctype)
{
    struct llmux_client *c = x->c;
    llmux__xcache *k = x->cache;
    llmux__buf v = {0};
    const llmux__buf *val = &v;
    int rc;
    if (code || !keeps(x))
        return;
    if (x->streaming) {
        if (k->rec_off || !k->rec.len)
            return;
        val = &k->rec;
        rc = 0;
    } else {
        rc = llmux__cache_val_begin(&v, LLMUX__CACHE_REPLY);
        if (!rc)
            rc = llmux__cache_val_reply(&v, status, ctype, x->body.p,
                                        x->body.len);
    }
    if (!rc)
        rc = k->b->put(k->b, k->key, val->p, val->len, k->ttl_ms);
    if (!rc)
        c->st.cache_stores++;
    else
        llmux__client_log(c, LLMUX_LOG_DEBUG,
                          "response cache (%s): answer not kept: %s",
                          k->b->name, llmux_strerror(rc));
    llmux__buf_free(&v);
    llmux__buf_free(&k->rec);
}

void llmux__cache_forget(xfer *x)
{
    llmux__xcache *k = x->cache;
    if (!k)
        return;
    if (k->lookup)
        k->lookup->x = NULL; /* the backend's answer finds no one */
    llmux__free(k->val);
    llmux__buf_free(&k->ev);
    llmux__buf_free(&k->rec);
    llmux__free(k);
    x->cache = NULL;
}
