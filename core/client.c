/*
 * core/client.c: the client's public life: global init, options,
 * llmux_client_new, its counters, its private loop's run, close and free.
 * The close's steps are closing.c's; the rest of the engine is named in
 * engine.h.
 */
#include "engine.h"

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

/* ---- client -------------------------------------------------------------- */

/* Where each version's fields end. */
#define OPTIONS_V1_SIZE offsetof(llmux_client_options, first_byte_timeout_ms)
#define OPTIONS_V2_SIZE offsetof(llmux_client_options, key_env_allow)
#define OPTIONS_V3_SIZE offsetof(llmux_client_options, hook)
#define OPTIONS_V4_SIZE offsetof(llmux_client_options, prices_file)
#define OPTIONS_V5_SIZE offsetof(llmux_client_options, credential)
#define OPTIONS_V6_SIZE offsetof(llmux_client_options, limits)
#define OPTIONS_V7_SIZE offsetof(llmux_client_options, cache_backend)
/* Where versions 1 and 2 of llmux_stats end. */
#define STATS_V1_SIZE offsetof(llmux_stats, limits_backend_errors)
#define STATS_V2_SIZE offsetof(llmux_stats, cache_backend_errors)

LLMUX_EXTERN void llmux_client_options_init_size(llmux_client_options *o,
                                                 size_t size)
{
    if (!o || size < OPTIONS_V1_SIZE)
        return;
    if (size > sizeof *o)
        size = sizeof *o;
    memset(o, 0, size);
    o->version = size >= sizeof *o         ? LLMUX_CLIENT_OPTIONS_VERSION
                 : size >= OPTIONS_V7_SIZE ? 7
                 : size >= OPTIONS_V6_SIZE ? 6
                 : size >= OPTIONS_V5_SIZE ? 5
                 : size >= OPTIONS_V4_SIZE ? 4
                 : size >= OPTIONS_V3_SIZE ? 3
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
           src->version >= 8   ? sizeof *dst
           : src->version == 7 ? OPTIONS_V7_SIZE
           : src->version == 6 ? OPTIONS_V6_SIZE
           : src->version == 5 ? OPTIONS_V5_SIZE
           : src->version == 4 ? OPTIONS_V4_SIZE
           : src->version == 3 ? OPTIONS_V3_SIZE
           : src->version == 2 ? OPTIONS_V2_SIZE
                               : OPTIONS_V1_SIZE);
    return 0;
}

/* The client's prices_file, on top of the built-in table. */
static int load_prices(struct llmux_client *c, const char *path)
{
    char err[LLMUX__ERRBUF];
    llmux__buf text = {0};
    char chunk[4096];
    size_t n;
    int rc;
    FILE *f = fopen(path, "rb");
    if (!f) {
        llmux__client_log(c, LLMUX_LOG_ERROR, "prices_file %s: cannot open it",
                          path);
        return LLMUX_ECONFIG;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (llmux__buf_append(&text, chunk, n)) {
            fclose(f);
            llmux__buf_free(&text);
            return LLMUX_ENOMEM;
        }
    if (ferror(f)) { /* a directory, an I/O error: not a short table */
        fclose(f);
        llmux__buf_free(&text);
        llmux__client_log(c, LLMUX_LOG_ERROR, "prices_file %s: cannot read it",
                          path);
        return LLMUX_ECONFIG;
    }
    fclose(f);
    rc = llmux__prices_load(text.p ? text.p : "", text.len, &c->prices, err,
                            sizeof err);
    llmux__buf_free(&text);
    if (rc == LLMUX_ECONFIG)
        llmux__client_log(c, LLMUX_LOG_ERROR, "prices_file %s: %s", path, err);
    return rc;
}

LLMUX_EXTERN double llmux_client_spend(const llmux_client *c, double *reserved)
{
    if (reserved)
        *reserved = c ? c->reserved : 0;
    return c ? c->spend : 0;
}

/* Whether s names a Redis server (not the in-process word). */
static int is_url(const char *s)
{
    return s && strstr(s, "://") != NULL;
}

/* The client shares its state through one Redis server (redis.h): a
 * `limits` and a `cache_backend` naming two are refused now, not at the
 * first request that needs both. */
static int one_redis(struct llmux_client *c, const llmux__settings *d)
{
    char *a, *b;
    if (!is_url(d->limits) || !is_url(d->cache_backend) ||
        strcmp(d->limits, d->cache_backend) == 0)
        return 0;
    a = llmux__url_masked(d->limits);
    b = llmux__url_masked(d->cache_backend);
    llmux__client_log(c, LLMUX_LOG_ERROR,
                      "client options: limits (%s) and cache_backend (%s) "
                      "name two Redis servers; one Redis server per client",
                      a ? a : "?", b ? b : "?");
    llmux__free(a);
    llmux__free(b);
    return LLMUX_ECONFIG;
}

/* The options the client keeps: sizes, limits, logging, the settings'
 * defaults and copies of the strings. Returns 0, LLMUX_EINVAL for a bad
 * header or LLMUX_ENOMEM. */
static int take_options(struct llmux_client *c, const llmux_client_options *o)
{
    size_t i;
    int rc;
    char err[LLMUX__ERRBUF];
    c->max_response =
        o->max_response_bytes ? o->max_response_bytes : DEFAULT_MAX_RESPONSE;
    c->max_event = o->max_event_bytes ? o->max_event_bytes : DEFAULT_MAX_EVENT;
    c->max_connections = o->max_connections;
    c->log = o->log;
    c->log_ud = o->log_userdata;
    c->log_level = o->log_level;
    if (o->version >= 4) {
        c->hook = o->hook;
        c->before_send = o->before_send;
        c->hook_ud = o->hook_userdata;
    }
    if (o->version >= 5) {
        if (o->budget_usd < 0 || o->budget_usd != o->budget_usd)
            return LLMUX_EINVAL;
        c->budget = o->budget_usd;
        if (o->prices_file && (rc = load_prices(c, o->prices_file)) != 0)
            return rc;
    }
    if (o->version >= 6) {
        c->credential = o->credential;
        c->credential_ud = o->credential_userdata;
    }
    c->cache_ttl_ms = DEFAULT_CACHE_TTL_MS;
    c->cache_max_bytes = DEFAULT_CACHE_MAX_BYTES;
    c->cache_max_entries = DEFAULT_CACHE_MAX_ENTRIES;
    c->cache_max_value = DEFAULT_CACHE_MAX_VALUE;
    if (o->version >= 7) {
        if (o->cache_ttl_ms < 0)
            return LLMUX_EINVAL;
        if (o->cache_ttl_ms)
            c->cache_ttl_ms = o->cache_ttl_ms;
        if (o->cache_max_bytes)
            c->cache_max_bytes = c->cache_max_value = o->cache_max_bytes;
        if (o->cache_max_entries)
            c->cache_max_entries = o->cache_max_entries;
        c->cache_all = o->cache_all != 0;
    }
    if ((rc = llmux__budget_init(c)) != 0)
        return rc;
    if (o->version >= 8 && o->budget_scope) {
        if (!llmux__budget_name_ok(o->budget_scope)) {
            llmux__client_log(c, LLMUX_LOG_ERROR,
                              "budget_scope wants 1 to 128 printable ASCII "
                              "characters without spaces");
            return LLMUX_ECONFIG;
        }
        if (!(c->budget_label = llmux__strdup(o->budget_scope)))
            return LLMUX_ENOMEM;
    }
    c->max_queue = 100000;
    if (o->version >= 2) {
        c->max_in_flight = o->max_in_flight;
        c->max_per_endpoint = o->max_in_flight_per_endpoint;
        if (o->max_queue)
            c->max_queue = o->max_queue;
    }
    if ((o->version >= 3 && o->key_env_allow &&
         !(c->key_env_allow = llmux__strdup(o->key_env_allow))) ||
        (o->plugin_path && !(c->plugin_path = llmux__strdup(o->plugin_path))))
        return LLMUX_ENOMEM;
    /* string options are checked as the config-string keys are, with the
     * same message (a URL's password masked) */
    if ((rc = llmux__settings_defaults(o, &c->defaults, err, sizeof err))) {
        if (rc == LLMUX_ECONFIG)
            llmux__client_log(c, LLMUX_LOG_ERROR, "%s", err);
        return rc;
    }
    if ((rc = one_redis(c, &c->defaults)) != 0)
        return rc;
    if (!o->n_headers)
        return 0;
    if (!o->headers)
        return LLMUX_EINVAL;
    if (!(c->headers = llmux__calloc(o->n_headers, sizeof *c->headers)))
        return LLMUX_ENOMEM;
    for (i = 0; i < o->n_headers; i++) {
        const char *h = o->headers[i];
        if (!h || !strchr(h, ':') || strpbrk(h, "\r\n"))
            return LLMUX_EINVAL;
        if (!(c->headers[c->n_headers++] = llmux__strdup(h)))
            return LLMUX_ENOMEM;
    }
    return 0;
}

/* The loop (the caller's or a private one), curl's multi handle driven by
 * it (wire.c), and the client's own handles. */
static int start_engine(struct llmux_client *c, struct uv_loop_s *loop)
{
    if (loop) {
        c->loop = loop;
    } else {
        if (uv_loop_init(&c->own_loop))
            return LLMUX_ENOMEM;
        c->loop = &c->own_loop;
        c->owns_loop = 1;
    }
    c->multi = curl_multi_init();
    if (!c->multi) {
        if (c->owns_loop)
            uv_loop_close(&c->own_loop);
        return LLMUX_ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, llmux__curl_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, llmux__curl_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if (c->max_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                          c->max_connections);
    if (uv_mutex_init(&c->xq_lock) != 0) {
        curl_multi_cleanup(c->multi);
        if (c->owns_loop)
            uv_loop_close(&c->own_loop);
        return LLMUX_ENOMEM;
    }
    c->xq_lock_ok = 1;
    c->owner = uv_thread_self();
    uv_timer_init(c->loop, &c->timer);
    uv_timer_init(c->loop, &c->defer);
    c->on_defer = llmux__on_defer;
    uv_timer_init(c->loop, &c->pump_t);
    c->on_pump = llmux__on_pump;
    uv_timer_init(c->loop, &c->budget_t);
    c->budget_t.data = c;
    uv_unref((uv_handle_t *)&c->budget_t); /* keeps no loop alive */
    uv_prepare_init(c->loop, &c->turn);
    uv_async_init(c->loop, &c->async, llmux__on_handover);
    c->timer.data = c;
    c->defer.data = c;
    c->pump_t.data = c;
    c->turn.data = c;
    c->async.data = c;
    c->handles_open = 6;
    /* an idle client must not keep the loop alive */
    uv_unref((uv_handle_t *)&c->defer);
    uv_unref((uv_handle_t *)&c->turn);
    uv_unref((uv_handle_t *)&c->async);
    uv_prepare_start(&c->turn, llmux__on_turn);
    return 0;
}

LLMUX_EXTERN int llmux_client_new(llmux_client **out,
                                  const llmux_client_options *opts)
{
    llmux_client_options def;
    struct llmux_client *c;
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
    c->rng =
        (uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL) ^ 0x9E3779B97F4A7C15ull;
    snprintf(c->user_agent, sizeof c->user_agent, "llmux/%s",
             LLMUX_VERSION_STRING);
    if ((rc = take_options(c, opts)) || (rc = start_engine(c, opts->loop))) {
        llmux__client_free_mem(c);
        return rc;
    }
    *out = c;
    return 0;
}

LLMUX_EXTERN struct uv_loop_s *llmux_client_loop(const llmux_client *c)
{
    return c ? c->loop : NULL;
}

LLMUX_EXTERN size_t llmux_client_pending(const llmux_client *c)
{
    return c ? c->pending : 0;
}

/* Copies st into the caller's *out, no further than its version's
 * fields reach (a version 1 caller's struct ends before the limits', a
 * version 2 one's before the cache backend's). */
static void stats_out(const llmux_stats *st, llmux_stats *out)
{
    unsigned int v = out->version;
    memcpy(out, st,
           v >= 3   ? sizeof *out
           : v == 2 ? STATS_V2_SIZE
                    : STATS_V1_SIZE);
    out->version = v;
}

LLMUX_EXTERN int llmux_client_stats(const llmux_client *c, llmux_stats *out)
{
    llmux_stats s;
    if (!c || !out || out->version == 0 || out->version > LLMUX_STATS_VERSION)
        return LLMUX_EINVAL;
    s = c->st;
    s.in_flight = c->in_flight;
    s.queued = c->queued;
    s.queue_wait_p50 = llmux__hist_pct(&c->h_queue, 0.50);
    s.queue_wait_p99 = llmux__hist_pct(&c->h_queue, 0.99);
    s.first_byte_p50 = llmux__hist_pct(&c->h_first_byte, 0.50);
    s.first_byte_p90 = llmux__hist_pct(&c->h_first_byte, 0.90);
    s.first_byte_p99 = llmux__hist_pct(&c->h_first_byte, 0.99);
    s.total_p50 = llmux__hist_pct(&c->h_total, 0.50);
    s.total_p90 = llmux__hist_pct(&c->h_total, 0.90);
    s.total_p99 = llmux__hist_pct(&c->h_total, 0.99);
    stats_out(&s, out);
    return 0;
}

LLMUX_EXTERN int llmux_client_provider_stats(const llmux_client *c,
                                             const char *provider,
                                             llmux_stats *out)
{
    const llmux__pstat *p;
    llmux_stats zero;
    if (!c || !provider || !out || out->version == 0 ||
        out->version > LLMUX_STATS_VERSION)
        return LLMUX_EINVAL;
    for (p = c->pstats; p; p = p->next)
        if (strcmp(p->name, provider) == 0) {
            stats_out(&p->st, out);
            return 0;
        }
    memset(&zero, 0, sizeof zero);
    stats_out(&zero, out); /* none yet: all zero */
    return 0;
}

LLMUX_EXTERN int llmux_client_run(llmux_client *c, llmux_run_mode mode)
{
    uv_run_mode m = mode == LLMUX_RUN_ONCE     ? UV_RUN_ONCE
                    : mode == LLMUX_RUN_NOWAIT ? UV_RUN_NOWAIT
                                               : UV_RUN_DEFAULT;
    int rc;
    uv_thread_t self = uv_thread_self();
    if (!c || !c->owns_loop)
        return LLMUX_EINVAL;
    /* the private loop's thread is the one running it (other threads read
     * it, under the lock, to decide on a handover) */
    uv_mutex_lock(&c->xq_lock);
    c->owner = self;
    uv_mutex_unlock(&c->xq_lock);
    rc = uv_run(c->loop, m);
    if (c->free_pending && !llmux__callback_depth(0)) {
        llmux_client_free(c); /* asked for from a callback of this run */
        return 0;
    }
    return rc;
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
    /* what other threads handed over and the loop has not taken yet ends
     * now, canceled; they can hand over nothing more */
    llmux__handover_close(c);
    for (x = c->head; x; x = x->next) {
        if (!x->cancel)
            x->cancel = LLMUX_ECANCELED;
        llmux__defer_push(x);
    }
    /* always pass through the loop once, even with nothing in flight */
    uv_ref((uv_handle_t *)&c->defer);
    uv_timer_start(&c->defer, llmux__on_defer, 0, 0);
}

LLMUX_EXTERN void llmux_client_free(llmux_client *c)
{
    if (!c)
        return;
    if (llmux__callback_depth(0) && c->owns_loop) {
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
            llmux__client_log(c, LLMUX_LOG_ERROR,
                              "private loop still has handles");
        llmux__client_free_mem(c);
        if (cb)
            cb(ud);
    }
}
