/*
 * core/client.c: the client: global init, logging, llmux_client_new,
 * llmux_submit, the defer list (finishing outside curl callbacks and user
 * calls) and closing. The rest of the engine is named in engine.h.
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
    llmux__settings_free_defaults(&c->defaults);
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
    c->max_response = opts->max_response_bytes ? opts->max_response_bytes
                                               : DEFAULT_MAX_RESPONSE;
    c->max_event =
        opts->max_event_bytes ? opts->max_event_bytes : DEFAULT_MAX_EVENT;
    c->max_connections = opts->max_connections;
    c->log = opts->log;
    c->log_ud = opts->log_userdata;
    c->log_level = opts->log_level;
    c->max_queue = 100000;
    if (opts->version >= 2) {
        c->max_in_flight = opts->max_in_flight;
        c->max_per_endpoint = opts->max_in_flight_per_endpoint;
        if (opts->max_queue)
            c->max_queue = opts->max_queue;
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
        llmux__settings_defaults(opts, &c->defaults))
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
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, llmux__curl_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, llmux__curl_timer_cb);
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
    uv_prepare_start(&c->turn, llmux__on_turn);
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
    out->queue_wait_p50 = llmux__hist_pct(&c->h_queue, 0.50);
    out->queue_wait_p99 = llmux__hist_pct(&c->h_queue, 0.99);
    out->first_byte_p50 = llmux__hist_pct(&c->h_first_byte, 0.50);
    out->first_byte_p90 = llmux__hist_pct(&c->h_first_byte, 0.90);
    out->first_byte_p99 = llmux__hist_pct(&c->h_first_byte, 0.99);
    out->total_p50 = llmux__hist_pct(&c->h_total, 0.50);
    out->total_p90 = llmux__hist_pct(&c->h_total, 0.90);
    out->total_p99 = llmux__hist_pct(&c->h_total, 0.99);
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
    if (c->free_pending && !llmux__callback_depth(0)) {
        llmux_client_free(c); /* asked for from a callback of this run */
        return 0;
    }
    return rc;
}

/* ---- the defer list: finishing outside curl callbacks and user calls ----- */

/* Frees a finished transfer once nothing refers to it any more: not the
 * defer list, not its retry timer's pending close. */
void llmux__xfer_release(xfer *x)
{
    if (x->state == X_DONE && !x->queued && !x->timer_on)
        llmux__free(x);
}

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
    rc = llmux__framer_feed_part(&x->live->framer, h->p, h->len,
                                 llmux__on_event, x, &used);
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

void llmux__on_defer(uv_timer_t *t)
{
    struct llmux_client *c = t->data;
    llmux__log_target old = llmux__client_log_target(c);
    c->in_defer = 1;
    while (c->qhead) {
        xfer *x = c->qhead;
        c->qhead = x->qnext;
        if (!c->qhead)
            c->qtail = NULL;
        x->qnext = NULL;
        x->queued = 0;
        if (x->state == X_DONE) {
            llmux__xfer_release(x); /* finished while queued */
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
                    llmux__xfer_done(x, r);
                    continue;
                }
                curl_easy_pause(x->easy, CURLPAUSE_CONT);
                c->in_curl--;
                if (x->state == X_ACTIVE && x->err)
                    /* a callback stopped the stream during that delivery:
                     * curl says so only when its socket next moves */
                    llmux__xfer_done(x, CURLE_WRITE_ERROR);
                else if (x->set.idle_timeout_ms && x->state == X_ACTIVE)
                    llmux__watchdog_arm(x, x->set.idle_timeout_ms);
                llmux__check_multi_info(c);
            }
            continue;
        }
        if (x->start_pending && !x->cancel && !c->closing) {
            int rc;
            x->start_pending = 0;
            if (!llmux__can_start_x(c, x->ep, x)) {
                llmux__enqueue(x); /* its place was reserved by llmux_submit */
                llmux__pump(c);
                continue;
            }
            llmux__take_slot(x);
            rc = llmux__xfer_attempt(x);
            if (rc)
                llmux__xfer_finish(x, rc, 0, NULL);
            continue;
        }
        if (x->defer_code && !x->cancel) {
            llmux__xfer_finish(x, x->defer_code, 0, NULL); /* a failed start */
            continue;
        }
        if (x->state == X_QUEUED)
            llmux__dequeue(x);
        if (x->state == X_WAIT && x->timer_on)
            uv_timer_stop(&x->timer);
        llmux__xfer_finish(x, x->cancel ? x->cancel : LLMUX_ECANCELED, 0, NULL);
    }
    if (!c->closing)
        uv_unref((uv_handle_t *)&c->defer);
    llmux__client_maybe_closed(c); /* frees nothing yet: that waits for close
                               callbacks, so `c` stays valid here */
    c->in_defer = 0;
    llmux__log_target_swap(old);
}

void llmux__defer_push(xfer *x)
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
    uv_timer_start(&c->defer, llmux__on_defer, 0, 0);
}

/* ---- closing ------------------------------------------------------------- */

static void client_handle_closed(uv_handle_t *h)
{
    struct llmux_client *c = h->data;
    c->handles_open--;
    llmux__client_maybe_closed(c);
}

void llmux__client_maybe_closed(struct llmux_client *c)
{
    if (!c->closing)
        return;
    if (c->closing == 1) {
        /* Releasing curl must not happen inside a curl call or while
         * llmux__check_multi_info() walks curl's messages (a done callback may
         * close the client): leave it to the defer timer. */
        if (c->head || c->qhead || !c->in_defer) {
            if (!c->head && !c->qhead)
                uv_timer_start(&c->defer, llmux__on_defer, 0, 0);
            return;
        }
        c->closing = 2;
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
        while (c->socks)
            llmux__sock_close(c->socks);
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
        client_free_mem(c);
        if (cb)
            cb(ud);
    }
}
