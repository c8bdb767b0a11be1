/*
 * core/cache_redis.c: the response cache's Redis backend (cache.h), on the
 * client's one Redis connection (redis.h), so that every process naming
 * the same server (gateway replicas, batch shards, workers) shares what
 * any of them kept. A value is stored as it is (cache.c's encoding) under
 * <prefix>:cache:<key> with Redis's own expiry (PX), so no process has to
 * sweep. Redis is never in the way of an answer: when it fails, is slow
 * (the connection's command timeout) or is down, a lookup is a miss and a
 * store is skipped, counted and logged once per outage.
 */
#include "cache.h"
#include "engine.h"
#include "redis.h"

#include <hiredis/hiredis.h>

typedef struct rcache rcache;

/* A command sent and not answered yet. It outlives the backend when the
 * backend is freed first (then rc is NULL): Redis answers every command
 * exactly once (redis.h), and that answer frees it. */
typedef struct rop {
    rcache *rc;             /* NULL once the backend is gone */
    llmux__cache_get_cb cb; /* a get's; NULL for a put */
    void *ud;
    struct rop *prev, *next;
} rop;

struct rcache {
    llmux__cache_backend b; /* first: the backend is the rcache */
    struct llmux_client *c;
    llmux__redis *r;
    char *prefix;
    int outage; /* 0, or the kind of command ('g' GET, 's' SET) whose
                   failure was logged: a success of that kind ends the
                   outage, so a store Redis keeps refusing (maxmemory) is
                   logged once however many lookups succeed meanwhile */
    rop *ops;   /* sent, unanswered */
};

/* A failure of a command of `kind`: counted, and logged once until Redis
 * answers such a command again (the connection's own loss is redis.c's
 * log line). Nothing while the client closes: its commands all fail
 * then, and that is no outage. */
static void failed(rcache *rc, int kind, const char *why)
{
    struct llmux_client *c = rc->c;
    if (c->closing)
        return;
    c->st.cache_backend_errors++;
    if (rc->outage)
        return;
    rc->outage = kind;
    llmux__client_log(c, LLMUX_LOG_WARN,
                      "response cache at %s: %s; lookups go to the provider "
                      "and answers are not kept until Redis answers again",
                      llmux__redis_url_shown(rc->r), why);
}

static rop *op_new(rcache *rc, llmux__cache_get_cb cb, void *ud)
{
    rop *o = llmux__calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->rc = rc;
    o->cb = cb;
    o->ud = ud;
    o->next = rc->ops;
    if (rc->ops)
        rc->ops->prev = o;
    rc->ops = o;
    return o;
}

static void op_unlink(rop *o)
{
    rcache *rc = o->rc;
    if (!rc)
        return;
    if (o->prev)
        o->prev->next = o->next;
    else
        rc->ops = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
}

/* A command llmux__redis_cmd did not send (its callback will not run):
 * o goes, the failure is counted. */
static void not_sent(rop *o, int kind, int code)
{
    rcache *rc = o->rc;
    const char *why = llmux__redis_why(rc->r);
    op_unlink(o);
    llmux__free(o);
    failed(rc, kind,
           code != LLMUX_ELIMITS ? "out of memory"
           : *why                ? why
                                 : "not connected");
}

/* "<prefix>:cache:<key>" into buf (sized for the longest prefix the
 * settings allow); its length. */
static size_t redis_key(const rcache *rc, const char *key, char *buf,
                        size_t size)
{
    int n = snprintf(buf, size, "%s:cache:%.*s", rc->prefix,
                     LLMUX__CACHE_KEY_LEN, key);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* Room for a key: a prefix of at most 64 (CHECK_KEYPART), ":cache:", the
 * digest. */
#define KEY_ROOM (64 + 7 + LLMUX__CACHE_KEY_LEN + 1)

static void on_got(llmux__redis *r, struct redisReply *rep, const char *err,
                   void *ud)
{
    rop *o = ud;
    rcache *rc = o->rc;
    llmux__cache_get_cb cb = o->cb;
    void *cb_ud = o->ud;
    (void)r;
    op_unlink(o);
    llmux__free(o);
    if (!rc)
        return; /* the backend answered it with a failure as it went */
    if (rep && rep->type == REDIS_REPLY_ERROR &&
        strncmp(rep->str, "WRONGTYPE", 9) == 0) {
        /* another program's value of another type: foreign, as garbage
         * is; the answer's SET replaces it */
        cb(cb_ud, 0, NULL, 0);
    } else if (rep && rep->type == REDIS_REPLY_NIL) {
        if (rc->outage == 'g')
            rc->outage = 0;
        cb(cb_ud, 0, NULL, 0);
    } else if (rep && rep->type == REDIS_REPLY_STRING) {
        if (rc->outage == 'g')
            rc->outage = 0;
        /* larger than this process would keep: another program's, or a
         * bound lowered since; not ours to replay */
        if ((size_t)rep->len > rc->b.max_val)
            cb(cb_ud, 0, NULL, 0);
        else
            cb(cb_ud, 1, rep->str, (size_t)rep->len);
    } else {
        failed(rc, 'g',
               rep && rep->type == REDIS_REPLY_ERROR ? rep->str
               : rep                                 ? "GET answered no string"
               : err                                 ? err
                                                     : "no answer");
        cb(cb_ud, -1, NULL, 0);
    }
}

static void rc_get(llmux__cache_backend *b, const char *key,
                   llmux__cache_get_cb cb, void *ud)
{
    rcache *rc = (rcache *)b;
    char k[KEY_ROOM];
    const char *av[2];
    size_t al[2];
    rop *o;
    int code;
    av[0] = "GET";
    al[0] = 3;
    av[1] = k;
    if (!(al[1] = redis_key(rc, key, k, sizeof k)) ||
        !(o = op_new(rc, cb, ud))) {
        failed(rc, 'g', "out of memory");
        cb(ud, -1, NULL, 0);
        return;
    }
    if ((code = llmux__redis_cmd(rc->r, on_got, o, 2, av, al)) != 0) {
        not_sent(o, 'g', code);
        cb(ud, -1, NULL, 0);
    }
}

static void on_set(llmux__redis *r, struct redisReply *rep, const char *err,
                   void *ud)
{
    rop *o = ud;
    rcache *rc = o->rc;
    (void)r;
    op_unlink(o);
    llmux__free(o);
    if (!rc)
        return;
    if (rep && rep->type == REDIS_REPLY_STATUS) {
        if (rc->outage == 's')
            rc->outage = 0;
    } else {
        failed(rc, 's',
               rep && rep->type == REDIS_REPLY_ERROR ? rep->str
               : rep                                 ? "SET answered no status"
               : err                                 ? err
                                                     : "no answer");
    }
}

static int rc_put(llmux__cache_backend *b, const char *key, const char *val,
                  size_t len, uint64_t ttl_ms)
{
    rcache *rc = (rcache *)b;
    char k[KEY_ROOM], px[24];
    const char *av[5];
    size_t al[5];
    rop *o;
    int code;
    if (len > b->max_val)
        return LLMUX_ETOOBIG;
    snprintf(px, sizeof px, "%llu",
             (unsigned long long)(ttl_ms ? ttl_ms : 1)); /* PX 0 is refused */
    av[0] = "SET";
    av[1] = k;
    av[2] = val;
    av[3] = "PX";
    av[4] = px;
    al[0] = 3;
    al[2] = len;
    al[3] = 2;
    al[4] = strlen(px);
    if (!(al[1] = redis_key(rc, key, k, sizeof k)) ||
        !(o = op_new(rc, NULL, NULL)))
        return LLMUX_ENOMEM;
    if ((code = llmux__redis_cmd(rc->r, on_set, o, 5, av, al)) != 0)
        not_sent(o, 's', code);
    return code;
}

static void rc_free(llmux__cache_backend *b)
{
    rcache *rc = (rcache *)b;
    while (rc->ops) {
        rop *o = rc->ops;
        llmux__cache_get_cb cb = o->cb;
        op_unlink(o);
        o->rc = NULL; /* freed by its answer */
        if (cb)
            cb(o->ud, -1, NULL, 0);
    }
    llmux__free(rc->prefix);
    llmux__free(rc);
}

llmux__cache_backend *llmux__cache_redis_new(struct llmux_client *c,
                                             struct llmux__redis *r,
                                             const char *prefix, size_t max_val)
{
    rcache *rc = llmux__calloc(1, sizeof *rc);
    if (!rc || !(rc->prefix = llmux__strdup(prefix))) {
        llmux__free(rc);
        return NULL;
    }
    rc->b.name = "redis";
    rc->b.max_val = max_val;
    rc->b.get = rc_get;
    rc->b.put = rc_put;
    rc->b.free = rc_free;
    rc->c = c;
    rc->r = r;
    return &rc->b;
}

const char *llmux__cache_redis_prefix(const llmux__cache_backend *b)
{
    return ((const rcache *)b)->prefix;
}
