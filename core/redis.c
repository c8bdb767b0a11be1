/*
 * core/redis.c: the client's connection to Redis (redis.h): hiredis's
 * asynchronous API on the client's loop through hiredis's libuv adapter,
 * with the bounds hiredis 0.14 lacks (a connect timeout, a command
 * timeout) kept by our own timer, AUTH and SELECT on connect, Lua scripts
 * loaded on connect, and reconnection with backoff.
 */
#include "redis.h"
#include "engine.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include <openssl/evp.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct llmux__redis_script {
    char *lua;
    char sha[41];
    llmux__redis_script *next;
};

struct llmux__redis {
    struct llmux_client *c;
    char *url, *shown;
    llmux__redis_url u;
    redisAsyncContext *ac;
    llmux__redis_state state;
    int closing;
    int draining;       /* closing, waiting for the replies to what was sent */
    int outage_logged;  /* the current outage was logged: once per outage */
    uv_timer_t io_t;    /* the connect and command timeout */
    uv_timer_t retry_t; /* the reconnect backoff */
    int handles;        /* of those two, not closed yet */
    long connect_ms, cmd_ms;
    unsigned backoff_ms;
    size_t pending; /* commands sent, no reply yet */
    llmux__redis_script *scripts;
    struct {
        llmux__redis_state_cb cb;
        void *ud;
    } on_state[LLMUX__REDIS_LISTENERS];
    void (*on_closed)(void *ud); /* llmux__redis_free's */
    void *closed_ud;
    char why[200]; /* why it last went down */
};

/* A command sent: whom to tell, and for EVALSHA what to send again as
 * EVAL on NOSCRIPT. */
typedef struct rcmd {
    llmux__redis *r;
    llmux__redis_cb cb;
    void *ud;
    llmux__redis_script *s; /* EVALSHA's script, or NULL */
    int argc;               /* EVALSHA's argv after the sha */
    char **argv;
    size_t *argvlen;
} rcmd;

/* ---- URLs ---------------------------------------------------------------- */

void llmux__redis_url_free(llmux__redis_url *u)
{
    llmux__free(u->host);
    llmux__free(u->path);
    llmux__free(u->user);
    if (u->password)
        memset(u->password, 0, strlen(u->password));
    llmux__free(u->password);
    memset(u, 0, sizeof *u);
}

static int parse_int(const char *s, size_t n, long min, long max, int *out)
{
    long v = 0;
    size_t i;
    if (!n || n > 9)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int url_fail(llmux__redis_url *u, char *err, size_t errlen,
                    const char *shown, const char *why)
{
    snprintf(err, errlen, "bad Redis URL \"%s\": %s", shown ? shown : "", why);
    llmux__redis_url_free(u);
    return LLMUX_ECONFIG;
}

/* s[0..n) percent-decoded (a password with '/', '@' or ':' is written
 * %2F, %40, %3A in a URL), into *out (owned): 0, -1 without memory, -2
 * when it decodes to a NUL. */
static int url_decoded(const char *s, size_t n, char **out)
{
    int len = 0, rc = 0;
    char *d = curl_easy_unescape(NULL, s, (int)n, &len);
    *out = NULL;
    if (!d)
        return -1;
    if (memchr(d, '\0', (size_t)len))
        rc = -2;
    else if (!(*out = llmux__strndup(d, (size_t)len)))
        rc = -1;
    curl_free(d);
    return rc;
}

int llmux__redis_url_parse(const char *url, llmux__redis_url *out, char *err,
                           size_t errlen)
{
    char *shown = url ? llmux__url_masked(url) : NULL;
    const char *p, *end, *at, *q;
    int rc;
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (url && !shown)
        return LLMUX_ENOMEM;
#define FAIL(why)                                                              \
    do {                                                                       \
        rc = url_fail(out, err, errlen, shown, why);                           \
        llmux__free(shown);                                                    \
        return rc;                                                             \
    } while (0)
    if (!url || !*url)
        FAIL("empty; redis://host[:port][/db] or unix:///path[?db=N]");
    if (strncmp(url, "unix://", 7) == 0 ||
        strncmp(url, "redis+unix://", 13) == 0) {
        p = strstr(url, "://") + 3;
        q = strchr(p, '?');
        end = q ? q : p + strlen(p);
        if (*p != '/' || end - p < 2)
            FAIL("a unix socket URL wants an absolute path: unix:///path");
        if (!(out->path = llmux__strndup(p, (size_t)(end - p))))
            FAIL("out of memory");
        if (q) {
            if (strncmp(q, "?db=", 4) != 0 ||
                parse_int(q + 4, strlen(q + 4), 0, 100000, &out->db))
                FAIL("the only query is ?db=N, a database number");
        }
        llmux__free(shown);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        FAIL("the scheme is redis://, unix:// or redis+unix://");
    p = url + 8;
    end = p + strcspn(p, "/?#");
    at = NULL;
    for (q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) { /* [user]:password@ */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            FAIL("the credentials are [user]:password@");
        if ((colon > p &&
             (rc = url_decoded(p, (size_t)(colon - p), &out->user)) != 0) ||
            (rc = url_decoded(colon + 1, (size_t)(at - colon - 1),
                              &out->password)) != 0)
            FAIL(rc == -2 ? "the credentials may not hold %00"
                          : "out of memory");
        p = at + 1;
    }
    if (*p == '[') { /* [ipv6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            FAIL("an IPv6 host wants its closing ]");
        if (!(out->host = llmux__strndup(p + 1, (size_t)(rb - p - 1))))
            FAIL("out of memory");
        q = rb + 1;
    } else {
        q = memchr(p, ':', (size_t)(end - p));
        if (!q)
            q = end;
        if (!(out->host = llmux__strndup(p, (size_t)(q - p))))
            FAIL("out of memory");
    }
    if (!*out->host)
        FAIL("no host");
    if (q < end) {
        if (*q != ':' ||
            parse_int(q + 1, (size_t)(end - q - 1), 1, 65535, &out->port))
            FAIL("the port is a number from 1 to 65535");
    }
    if (*end == '/' && end[1]) {
        if (parse_int(end + 1, strlen(end + 1), 0, 100000, &out->db))
            FAIL("the path is the database number: redis://host:port/0");
    } else if (*end == '?' || *end == '#') {
        FAIL("nothing may follow the database number");
    }
#undef FAIL
    llmux__free(shown);
    return 0;
}

/* ---- the connection ------------------------------------------------------ */

static void connect_now(llmux__redis *r);
static void finish_free(llmux__redis *r);

/* The drain's end: every command sent got its answer, or the connection
 * went (the handles close from the loop, not inside hiredis). */
static void on_drained(uv_timer_t *t)
{
    finish_free(t->data);
}

static void notify(llmux__redis *r, int up, const char *why)
{
    size_t i;
    for (i = 0; i < LLMUX__REDIS_LISTENERS && !r->closing; i++)
        if (r->on_state[i].cb)
            r->on_state[i].cb(r, up, why, r->on_state[i].ud);
}

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

/* The connection is gone (ac already freed or being freed by hiredis):
 * down, told once per outage, and retried after the backoff. */
static void went_down(llmux__redis *r, const char *why)
{
    int was = r->state;
    snprintf(r->why, sizeof r->why, "%s", why);
    r->ac = NULL;
    r->state = LLMUX__REDIS_DOWN;
    uv_timer_stop(&r->io_t);
    if (r->draining) /* nothing more will be answered */
        uv_timer_start(&r->io_t, on_drained, 0, 0);
    if (r->closing)
        return;
    if (!r->outage_logged) {
        r->outage_logged = 1;
        llmux__client_log(r->c, LLMUX_LOG_WARN,
                          "redis %s: %s; reconnecting with backoff", r->shown,
                          why);
    }
    uv_timer_start(&r->retry_t, on_retry, r->backoff_ms, 0);
    r->backoff_ms =
        r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    if (was != LLMUX__REDIS_DOWN)
        notify(r, 0, why);
}

/* Drops a live connection ourselves (timeout, bad setup reply): pending
 * commands get their error from hiredis as it frees the context. */
static void drop(llmux__redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    went_down(r, why);
    if (ac) {
        ac->data = NULL; /* its disconnect callback is ours already */
        redisAsyncFree(ac);
    }
}

static void on_io_timeout(uv_timer_t *t)
{
    llmux__redis *r = t->data;
    char why[96];
    if (r->draining) { /* the close waited long enough */
        finish_free(r);
        return;
    }
    if (r->state == LLMUX__REDIS_CONNECTING)
        snprintf(why, sizeof why, "not connected within %ld ms", r->connect_ms);
    else
        snprintf(why, sizeof why, "no reply within %ld ms", r->cmd_ms);
    drop(r, why);
}

/* The timer runs while commands wait (it keeps the loop alive for them:
 * the poll handle does not) and is restarted by each reply. */
static void io_arm(llmux__redis *r)
{
    if (r->state == LLMUX__REDIS_CONNECTING)
        return; /* the connect timeout runs */
    if (r->pending)
        uv_timer_start(&r->io_t, on_io_timeout, (uint64_t)r->cmd_ms, 0);
    else if (r->draining)
        uv_timer_start(&r->io_t, on_drained, 0, 0);
    else
        uv_timer_stop(&r->io_t);
}

static void rcmd_free(rcmd *k)
{
    int i;
    for (i = 0; i < k->argc; i++)
        llmux__free(k->argv[i]);
    llmux__free(k->argv);
    llmux__free(k->argvlen);
    llmux__free(k);
}

static int send_rcmd(llmux__redis *r, rcmd *k, int argc, const char **argv,
                     const size_t *argvlen);

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    rcmd *k = priv;
    llmux__redis *r = k->r;
    redisReply *rep = reply;
    (void)ac;
    r->pending--;
    if (rep && rep->type == REDIS_REPLY_ERROR && k->s &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0 && r->ac) {
        /* the server lost the script (SCRIPT FLUSH, a restart): EVAL */
        const char **av = llmux__calloc((size_t)k->argc + 2, sizeof *av);
        size_t *al = llmux__calloc((size_t)k->argc + 2, sizeof *al);
        int i, ok = av && al;
        if (ok) {
            av[0] = "EVAL";
            al[0] = 4;
            av[1] = k->s->lua;
            al[1] = strlen(k->s->lua);
            for (i = 0; i < k->argc; i++) {
                av[i + 2] = k->argv[i];
                al[i + 2] = k->argvlen[i];
            }
            k->s = NULL; /* once */
            ok = send_rcmd(r, k, k->argc + 2, av, al) == 0;
        }
        llmux__free(av);
        llmux__free(al);
        if (ok) {
            io_arm(r);
            return;
        }
    }
    io_arm(r);
    if (k->cb)
        k->cb(r, rep,
              rep          ? NULL
              : r->closing ? "the client is closing"
                           : "the connection to Redis broke",
              k->ud);
    rcmd_free(k);
}

static int send_rcmd(llmux__redis *r, rcmd *k, int argc, const char **argv,
                     const size_t *argvlen)
{
    if (!r->ac || redisAsyncCommandArgv(r->ac, on_reply, k, argc, argv,
                                        argvlen) != REDIS_OK)
        return LLMUX_ELIMITS;
    r->pending++;
    return 0;
}

static int cmd(llmux__redis *r, llmux__redis_cb cb, void *ud, int argc,
               const char **argv, const size_t *argvlen)
{
    rcmd *k;
    int rc;
    if (r->state == LLMUX__REDIS_DOWN || !r->ac || r->closing)
        return LLMUX_ELIMITS;
    if (!(k = llmux__calloc(1, sizeof *k)))
        return LLMUX_ENOMEM;
    k->r = r;
    k->cb = cb;
    k->ud = ud;
    if ((rc = send_rcmd(r, k, argc, argv, argvlen)) != 0) {
        llmux__free(k);
        return rc;
    }
    io_arm(r);
    return 0;
}

int llmux__redis_cmd(llmux__redis *r, llmux__redis_cb cb, void *ud, int argc,
                     const char **argv, const size_t *argvlen)
{
    return cmd(r, cb, ud, argc, argv, argvlen);
}

/* The setup's last reply (or the first error of AUTH, SELECT, SCRIPT
 * LOAD): up, or dropped. */
static void on_setup(llmux__redis *r, struct redisReply *rep, const char *err,
                     void *ud)
{
    char why[200];
    int last = ud != NULL;
    if (r->closing || r->state != LLMUX__REDIS_CONNECTING)
        return;
    if (!rep) {
        went_down(r, err);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        /* the server's word on AUTH names no password */
        snprintf(why, sizeof why, "setting up the connection failed: %.150s",
                 rep->str);
        drop(r, why);
        return;
    }
    if (!last)
        return;
    r->state = LLMUX__REDIS_UP;
    r->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_stop(&r->io_t);
    io_arm(r);
    if (r->outage_logged)
        llmux__client_log(r->c, LLMUX_LOG_WARN, "redis %s: connected again",
                          r->shown);
    r->outage_logged = 0;
    notify(r, 1, NULL);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    llmux__redis *r = ac->data;
    char why[200];
    if (!r || r->ac != ac || status == REDIS_OK)
        return;
    snprintf(why, sizeof why, "cannot connect: %.150s", ac->errstr);
    went_down(r, why); /* hiredis frees ac after this */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    llmux__redis *r = ac->data;
    char why[200];
    if (!r || r->ac != ac)
        return;
    if (status == REDIS_OK)
        snprintf(why, sizeof why, "connection closed");
    else
        snprintf(why, sizeof why, "connection lost: %.150s",
                 ac->errstr[0] ? ac->errstr : "closed by the server");
    went_down(r, why);
}

/* Setup commands, queued by hiredis until the socket connects: AUTH,
 * SELECT, each script's SCRIPT LOAD, then PING whose reply says up. */
static int setup(llmux__redis *r)
{
    const char *av[3];
    size_t al[3];
    char db[16];
    llmux__redis_script *s;
    if (r->u.password) {
        int n = 0;
        av[n] = "AUTH";
        al[n++] = 4;
        if (r->u.user) {
            av[n] = r->u.user;
            al[n] = strlen(r->u.user);
            n++;
        }
        av[n] = r->u.password;
        al[n] = strlen(r->u.password);
        n++;
        if (cmd(r, on_setup, NULL, n, av, al))
            return -1;
    }
    if (r->u.db) {
        snprintf(db, sizeof db, "%d", r->u.db);
        av[0] = "SELECT";
        al[0] = 6;
        av[1] = db;
        al[1] = strlen(db);
        if (cmd(r, on_setup, NULL, 2, av, al))
            return -1;
    }
    for (s = r->scripts; s; s = s->next) {
        av[0] = "SCRIPT";
        al[0] = 6;
        av[1] = "LOAD";
        al[1] = 4;
        av[2] = s->lua;
        al[2] = strlen(s->lua);
        if (cmd(r, on_setup, NULL, 3, av, al))
            return -1;
    }
    av[0] = "PING";
    al[0] = 4;
    return cmd(r, on_setup, r, 1, av, al) ? -1 : 0;
}

static void connect_now(llmux__redis *r)
{
    redisAsyncContext *ac;
    char why[200];
    if (r->closing || r->state != LLMUX__REDIS_DOWN)
        return;
    ac = r->u.path ? redisAsyncConnectUnix(r->u.path)
                   : redisAsyncConnect(r->u.host, r->u.port);
    if (!ac) {
        went_down(r, "cannot connect: out of memory");
        return;
    }
    if (ac->err) {
        snprintf(why, sizeof why, "cannot connect: %.150s", ac->errstr);
        redisAsyncFree(ac); /* never attached: no handle to close */
        r->state = LLMUX__REDIS_CONNECTING; /* for went_down's notice */
        went_down(r, why);
        return;
    }
    if (redisLibuvAttach(ac, r->c->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(r, "cannot connect: out of memory");
        return;
    }
    /* an idle connection must not keep the loop alive: io_t does while
     * commands wait */
    uv_unref((uv_handle_t *)&((redisLibuvEvents *)ac->ev.data)->handle);
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = LLMUX__REDIS_CONNECTING;
    uv_timer_start(&r->io_t, on_io_timeout, (uint64_t)r->connect_ms, 0);
    if (setup(r))
        drop(r, "cannot connect: the setup commands were refused");
}

static void handle_closed(uv_handle_t *h)
{
    llmux__redis *r = h->data;
    void (*cb)(void *) = r->on_closed;
    void *ud = r->closed_ud;
    if (--r->handles)
        return;
    while (r->scripts) {
        llmux__redis_script *s = r->scripts;
        r->scripts = s->next;
        llmux__free(s->lua);
        llmux__free(s);
    }
    llmux__redis_url_free(&r->u);
    if (r->url)
        memset(r->url, 0, strlen(r->url));
    llmux__free(r->url);
    llmux__free(r->shown);
    llmux__free(r);
    if (cb)
        cb(ud);
}

llmux__redis *llmux__redis_new(struct llmux_client *c, const char *url,
                               int *code, char *err, size_t errlen)
{
    llmux__redis *r = llmux__calloc(1, sizeof *r);
    int rc;
    *code = LLMUX_ENOMEM;
    if (!r || !(r->url = llmux__strdup(url)) ||
        !(r->shown = llmux__url_masked(url))) {
        snprintf(err, errlen, "out of memory");
        if (r) {
            llmux__free(r->url);
            llmux__free(r);
        }
        return NULL;
    }
    if ((rc = llmux__redis_url_parse(url, &r->u, err, errlen)) != 0) {
        *code = rc;
        llmux__free(r->url);
        llmux__free(r->shown);
        llmux__free(r);
        return NULL;
    }
    *code = 0;
    r->c = c;
    r->connect_ms = 1000;
    r->cmd_ms = 1000;
    r->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(c->loop, &r->io_t);
    uv_timer_init(c->loop, &r->retry_t);
    r->io_t.data = r->retry_t.data = r;
    uv_unref((uv_handle_t *)&r->retry_t); /* retries alone keep no loop */
    r->handles = 2;
    connect_now(r);
    return r;
}

/* Closes what is left: the connection (commands still pending get their
 * error) and the timers. */
static void finish_free(llmux__redis *r)
{
    redisAsyncContext *ac;
    r->draining = 0;
    ac = r->ac;
    r->ac = NULL;
    r->state = LLMUX__REDIS_DOWN;
    /* the timers close before the poll handle hiredis closes below, so
     * the loop runs the poll's close callback first (libuv runs them
     * newest first) and nothing of hiredis is left when ours end */
    uv_close((uv_handle_t *)&r->io_t, handle_closed);
    uv_close((uv_handle_t *)&r->retry_t, handle_closed);
    if (ac)
        redisAsyncFree(ac); /* pending commands get their error now */
}

void llmux__redis_free(llmux__redis *r, void (*on_closed)(void *ud), void *ud)
{
    if (!r || r->closing)
        return;
    r->closing = 1;
    r->on_closed = on_closed;
    r->closed_ud = ud;
    uv_timer_stop(&r->retry_t);
    if (r->ac && r->state == LLMUX__REDIS_UP && r->pending) {
        /* what was sent just before the close (a response cache's store,
         * a usage correction) still reaches Redis: a short-lived process
         * loses none of it; the command timeout bounds the wait */
        r->draining = 1;
        return;
    }
    finish_free(r);
}

const char *llmux__redis_url_of(const llmux__redis *r)
{
    return r->url;
}

const char *llmux__redis_url_shown(const llmux__redis *r)
{
    return r->shown;
}

llmux__redis_state llmux__redis_state_of(const llmux__redis *r)
{
    return r->state;
}

const char *llmux__redis_why(const llmux__redis *r)
{
    return r->why;
}

struct llmux_client *llmux__redis_client(const llmux__redis *r)
{
    return r->c;
}

int llmux__redis_on_state(llmux__redis *r, llmux__redis_state_cb cb, void *ud)
{
    size_t i, free_at = LLMUX__REDIS_LISTENERS;
    for (i = 0; i < LLMUX__REDIS_LISTENERS; i++) {
        if (r->on_state[i].cb == cb && r->on_state[i].ud == ud)
            return 0; /* already told */
        if (!r->on_state[i].cb && free_at == LLMUX__REDIS_LISTENERS)
            free_at = i;
    }
    if (free_at == LLMUX__REDIS_LISTENERS)
        return -1;
    r->on_state[free_at].cb = cb;
    r->on_state[free_at].ud = ud;
    return 0;
}

llmux__redis *llmux__client_redis(struct llmux_client *c, const char *url,
                                  int *code, char *err, size_t errlen)
{
    if (!c->redis) {
        c->redis = llmux__redis_new(c, url, code, err, errlen);
        return c->redis;
    }
    if (strcmp(c->redis->url, url) != 0) {
        *code = LLMUX_ECONFIG;
        snprintf(err, errlen,
                 "this client shares its state through Redis at %s already; "
                 "one Redis server per client",
                 c->redis->shown);
        return NULL;
    }
    return c->redis;
}

char *llmux__redis_key(const char *prefix, const char *provider,
                       const char *endpoint, const char *api_key)
{
    size_t n = strlen(endpoint), a, b;
    char hash[65] = "", *k;
    if (api_key && *api_key &&
        llmux__sha256_hex(api_key, strlen(api_key), hash))
        return NULL;
    if (llmux__url_userinfo(endpoint, n, &a, &b)) { /* never a password */
        b++;                                        /* nor its '@' */
        n -= b - a;
    } else {
        a = b = 0;
    }
    k = llmux__malloc(strlen(prefix) + strlen(provider) + n + 70 + 3);
    if (!k)
        return NULL;
    sprintf(k, "%s:%s:%.*s%s%s%s", prefix, provider, (int)a, endpoint,
            endpoint + b, *hash ? ":" : "", hash);
    return k;
}

void llmux__redis_set_timeouts(llmux__redis *r, long connect_ms, long cmd_ms)
{
    if (connect_ms > 0)
        r->connect_ms = connect_ms;
    if (cmd_ms > 0)
        r->cmd_ms = cmd_ms;
}

llmux__redis_script *llmux__redis_script_add(llmux__redis *r, const char *lua)
{
    llmux__redis_script *s = llmux__calloc(1, sizeof *s);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;
    if (!s || !(s->lua = llmux__strdup(lua))) {
        llmux__free(s);
        return NULL;
    }
    EVP_Digest(lua, strlen(lua), md, &len, EVP_sha1(), NULL);
    for (i = 0; i < len && i < 20; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    s->next = r->scripts;
    r->scripts = s;
    return s;
}

int llmux__redis_eval(llmux__redis *r, llmux__redis_script *s,
                      llmux__redis_cb cb, void *ud, int numkeys, int argc,
                      const char **argv, const size_t *argvlen)
{
    const char *av[64];
    size_t al[64];
    char nk[16];
    rcmd *k;
    int i, rc;
    if (argc < 0 || argc > 60)
        return LLMUX_EINVAL;
    if (r->state == LLMUX__REDIS_DOWN || !r->ac || r->closing)
        return LLMUX_ELIMITS;
    snprintf(nk, sizeof nk, "%d", numkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = s->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen(nk);
    /* kept for EVAL on NOSCRIPT: numkeys and the arguments */
    if (!(k = llmux__calloc(1, sizeof *k)) ||
        !(k->argv = llmux__calloc((size_t)argc + 1, sizeof *k->argv)) ||
        !(k->argvlen = llmux__calloc((size_t)argc + 1, sizeof *k->argvlen))) {
        if (k)
            rcmd_free(k);
        return LLMUX_ENOMEM;
    }
    k->r = r;
    k->cb = cb;
    k->ud = ud;
    k->s = s;
    for (i = 0; i <= argc; i++) {
        const char *v = i ? argv[i - 1] : nk;
        size_t n = i ? argvlen[i - 1] : strlen(nk);
        if (!(k->argv[i] = llmux__strndup(v, n))) {
            rcmd_free(k);
            return LLMUX_ENOMEM;
        }
        k->argvlen[i] = n;
        k->argc = i + 1;
        if (i) {
            av[i + 2] = argv[i - 1];
            al[i + 2] = n;
        }
    }
    if ((rc = send_rcmd(r, k, argc + 3, av, al)) != 0) {
        rcmd_free(k);
        return rc;
    }
    io_arm(r);
    return 0;
}
