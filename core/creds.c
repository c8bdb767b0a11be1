/*
 * core/creds.c: the client's credential callback. Before an attempt of a
 * keyed provider the core asks the callback for the key or token of the
 * provider and endpoint, or takes the answer cached for them until it
 * expires. Attempts that need a credential while a query for it is
 * pending wait on that query (one query at a time per provider and
 * endpoint); an answer that comes later hands each of them its copy, and
 * submit.c sends them back through the defer list. A 401 to an answer
 * drops it from the cache and marks the next query a refresh.
 */
#include "engine.h"

/* One provider at one endpoint: what was answered and who waits. */
struct llmux__cred {
    struct llmux_client *c;
    char *provider, *endpoint;
    char *secret;       /* the cached answer (NULL: the configured key) */
    int has;            /* an answer is cached */
    int bearer;         /* it is an access token: Authorization: Bearer */
    uint64_t use_until; /* wall-clock ms it is used until; 0 = always */
    int refused;        /* the last answer met a 401 */
    llmux_credential_reply *reply; /* the query in flight, or NULL */
    xfer *whead, *wtail;           /* attempts waiting for it */
    struct llmux__cred *next;
};

struct llmux_credential_reply {
    llmux__cred *cred; /* NULL once the client is gone */
    xfer *asker;       /* the attempt the callback runs for */
    int in_cb;         /* inside the callback's call: the asker goes on
                          by itself */
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "scheme://host[:port]" of a URL, without a user:password. */
static void endpoint_of(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    size_t h = p ? (size_t)(p - url) + 3 : 0, n, a, b;
    n = h + strcspn(url + h, "/?#");
    if (llmux__url_userinfo(url, n, &a, &b))
        snprintf(out, len, "%.*s%.*s", (int)a, url, (int)(n - b - 1),
                 url + b + 1);
    else
        snprintf(out, len, "%.*s", (int)n, url);
}

/* The entry of x's provider and endpoint, made when missing (NULL: out of
 * memory, or `make` 0 and none). */
static llmux__cred *entry_of(xfer *x, int make)
{
    struct llmux_client *c = x->c;
    const char *prov = x->prep.call.provider;
    char ep[512];
    llmux__cred *e;
    endpoint_of(x->prep.url, ep, sizeof ep);
    for (e = c->creds; e; e = e->next)
        if (strcmp(e->provider, prov) == 0 && strcmp(e->endpoint, ep) == 0)
            return e;
    if (!make || !(e = llmux__calloc(1, sizeof *e)))
        return NULL;
    e->c = c;
    e->provider = llmux__strdup(prov);
    e->endpoint = llmux__strdup(ep);
    if (!e->provider || !e->endpoint) {
        llmux__free(e->provider);
        llmux__free(e->endpoint);
        llmux__free(e);
        return NULL;
    }
    e->next = c->creds;
    c->creds = e;
    return e;
}

/* x sends `secret` (the configured key when NULL) this attempt. 0, or
 * LLMUX_ENOKEY / LLMUX_ENOMEM with the request's message set. */
static int use(xfer *x, const char *secret, int bearer)
{
    const llmux__provider *p = x->prep.prov;
    char *copy = NULL;
    if (secret && !*secret)
        secret = NULL; /* "" asks for nothing new */
    x->cred_asked = 1; /* a 401 asks the callback again, once */
    if (!secret) {
        secret = x->prep.conf_key;
        bearer = 0;
    }
    if (!secret && x->prep.auth == LLMUX_AUTH_BEARER)
        return llmux__request_fail(
            x->req, LLMUX_ENOKEY,
            "%s: missing API key (the credential callback gave none; set "
            "%s or api_key=...)",
            x->prep.call.provider,
            p->api_key_env ? p->api_key_env : "api_key_env");
    if (secret && !(copy = llmux__strdup(secret)))
        return LLMUX_ENOMEM;
    llmux__secret_free(x->prep.api_key);
    x->prep.api_key = copy;
    x->cred_bearer = bearer;
    return 0;
}

/* While attempts wait for an answer nothing else may hold the loop: the
 * client's async handle does (llmux_client_run() and llmux_run() wait for
 * the answer instead of returning or spinning). */
static void waiting(struct llmux_client *c, int delta)
{
    if (delta > 0 && c->cred_waiting++ == 0)
        uv_ref((uv_handle_t *)&c->async);
    else if (delta < 0 && --c->cred_waiting == 0)
        uv_unref((uv_handle_t *)&c->async);
}

static void unlink_waiter(llmux__cred *e, xfer *x)
{
    xfer **pp, *prev = NULL;
    for (pp = &e->whead; *pp; prev = *pp, pp = &(*pp)->cred_next)
        if (*pp == x) {
            *pp = x->cred_next;
            if (e->wtail == x)
                e->wtail = prev;
            waiting(e->c, -1);
            break;
        }
    x->cred_next = NULL;
    x->cred = NULL;
}

int llmux__cred_fetch(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_credential_query q;
    llmux__cred *e;
    llmux_credential_reply *r;
    int rc;
    /* a request that sends its own (a header, before_send) is not asked
     * for */
    if (!x->prep.cred || llmux__has_auth(x->prep.prov, &x->prep.http)) {
        x->cred_asked = 0;
        return 0;
    }
    if (x->cred_state == CRED_HAVE) { /* answered while it waited */
        x->cred_state = 0;
        return 0;
    }
    if (!(e = entry_of(x, 1)))
        return LLMUX_ENOMEM;
    if (e->has && (!e->use_until || wall_ms() < e->use_until))
        return use(x, e->secret, e->bearer);
    x->cred = e;
    x->cred_next = NULL;
    if (e->wtail)
        e->wtail->cred_next = x;
    else
        e->whead = x;
    e->wtail = x;
    waiting(c, 1);
    x->cred_state = CRED_WAIT;
    if (e->reply)
        return LLMUX__CRED_WAIT; /* that query's answer serves x too */
    if (!(r = llmux__calloc(1, sizeof *r))) {
        unlink_waiter(e, x);
        x->cred_state = 0;
        return LLMUX_ENOMEM;
    }
    r->cred = e;
    r->asker = x;
    e->reply = r;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.provider = e->provider;
    q.endpoint = e->endpoint;
    q.model = x->req->cfg.model;
    q.url = x->prep.url;
    q.refresh = e->refused;
    r->in_cb = 1;
    x->in_hook = 1;
    llmux__callback_depth(1);
    c->credential(&q, r, c->credential_ud);
    llmux__callback_depth(-1);
    x->in_hook = 0;
    if (e->reply == r)
        r->in_cb = 0; /* to be answered later */
    if (x->cancel) {
        llmux__cred_forget(x);
        llmux__request_seterr(x->req, "canceled by the credential callback");
        return LLMUX_ECANCELED;
    }
    rc = x->cred_state;
    if (rc == CRED_WAIT)
        return LLMUX__CRED_WAIT;
    x->cred_state = 0;
    if (rc == CRED_FAIL) {
        llmux__request_seterr(x->req, x->cred_msg);
        llmux__free(x->cred_msg);
        x->cred_msg = NULL;
        return x->cred_code;
    }
    return 0; /* CRED_HAVE: use() ran */
}

void llmux__cred_forget(xfer *x)
{
    if (x->cred)
        unlink_waiter(x->cred, x);
    x->cred_state = 0;
    llmux__free(x->cred_msg);
    x->cred_msg = NULL;
}

/* One waiter's failure: its code and message, for llmux__on_defer. */
static void fail_one(xfer *x, int code, const char *msg)
{
    x->cred_state = CRED_FAIL;
    x->cred_code = code;
    llmux__free(x->cred_msg);
    x->cred_msg =
        llmux__mask(msg ? msg : llmux_strerror(code), x->prep.conf_key);
}

xfer *llmux__cred_answer(llmux_credential_reply *r, const char *secret,
                         int bearer, int64_t expires_at_ms, int code,
                         const char *msg)
{
    llmux__cred *e = r->cred;
    xfer *list, *x, **pp;
    xfer *inline_x = r->in_cb ? r->asker : NULL;
    uint64_t now;
    llmux__free(r);
    if (!e) /* the client is gone */
        return NULL;
    e->reply = NULL;
    list = e->whead;
    e->whead = e->wtail = NULL;
    for (x = list; x; x = x->cred_next) {
        int rc = code;
        char m[LLMUX__ERRBUF] = "";
        x->cred = NULL;
        waiting(e->c, -1);
        if (!rc && (rc = use(x, secret, bearer)) != 0)
            snprintf(m, sizeof m, "%s", x->req->errmsg ? x->req->errmsg : "");
        if (rc)
            fail_one(x, rc, code ? msg : m);
        else
            x->cred_state = CRED_HAVE;
    }
    /* the asker, answered inside the callback, goes on in
     * llmux__cred_fetch; the others wait for the defer list */
    for (pp = &list; *pp; pp = &(*pp)->cred_next)
        if (*pp == inline_x) {
            *pp = inline_x->cred_next;
            inline_x->cred_next = NULL;
            break;
        }
    if (code)
        return list; /* nothing cached: ask again next time */
    /* cached unless it is (almost) expired already */
    now = wall_ms();
    llmux__secret_free(e->secret);
    e->secret = NULL;
    e->has = 0;
    e->refused = 0;
    if (expires_at_ms <= 0) {
        e->use_until = 0;
    } else {
        uint64_t exp = (uint64_t)expires_at_ms, life, margin;
        life = exp > now ? exp - now : 0;
        margin = life >= 300000 ? 30000 : life / 10;
        e->use_until = exp - margin;
        if (e->use_until <= now)
            return list;
    }
    if (!secret || (e->secret = llmux__strdup(secret)) != NULL) {
        e->has = 1;
        e->bearer = bearer;
    }
    return list;
}

void llmux__cred_refused(xfer *x)
{
    llmux__cred *e = entry_of(x, 0);
    if (!e)
        return;
    /* another request may have refreshed it already */
    if (e->has && (!e->secret || !x->prep.api_key ||
                   strcmp(e->secret, x->prep.api_key) == 0)) {
        llmux__secret_free(e->secret);
        e->secret = NULL;
        e->has = 0;
    }
    if (!e->has)
        e->refused = 1;
}

void llmux__creds_free(struct llmux_client *c)
{
    while (c->creds) {
        llmux__cred *e = c->creds;
        c->creds = e->next;
        if (e->reply)
            e->reply->cred = NULL; /* answered later: freed then */
        llmux__secret_free(e->secret);
        llmux__free(e->provider);
        llmux__free(e->endpoint);
        llmux__free(e);
    }
}
