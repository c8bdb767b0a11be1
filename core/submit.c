/*
 * core/submit.c: what a caller does to a request on a client: submit it
 * (settings resolved, prepared, then started, queued or refused when the
 * queue is full), pause, resume and cancel it. The transfer's life after
 * that is xfer.c's.
 */
#include "engine.h"

/* Resolves x's settings, prepares its HTTP request (the plugin's
 * encode) and sets up what the engine keeps for it: the response, the
 * deadline, the endpoint with its limits. */
static int prepare(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_request *req = x->req;
    llmux__log_target old;
    int rc;
    llmux__settings_resolve(req, &c->defaults, &x->set);
    old = llmux__client_log_target(c);
    rc = llmux__prepare_ex(req, &x->set, c->plugin_path, c->key_env_allow,
                           &x->prep);
    llmux__log_target_swap(old);
    if (rc)
        return rc;
    if (!(x->res = llmux__response_new(req->op, req->cfg.provider)))
        return LLMUX_ENOMEM;
    /* uv_now is cached per loop iteration; refresh it so the deadline
     * counts from now */
    uv_update_time(c->loop);
    x->t_submit = uv_now(c->loop);
    if (x->set.timeout_ms > 0)
        x->deadline = x->t_submit + (uint64_t)x->set.timeout_ms;
    x->seq = ++c->seq;
    if (!(x->ep = llmux__endpoint_get(c, x->prep.url, x->prep.api_key)))
        return LLMUX_ENOMEM;
    llmux__endpoint_limits(c, x->ep, &x->set);
    /* the estimate walks every message: only for token-limited endpoints */
    x->est_tokens = x->ep->tk.rate ? llmux__estimate_tokens(req) : 0;
    return 0;
}

/* Starts x, queues it, or refuses it when the queue is full
 * (LLMUX_EQUEUEFULL); another code when its start failed. */
static int admit(xfer *x)
{
    struct llmux_client *c = x->c;
    int rc;
    if (c->in_curl) {
        /* inside a curl callback (a chunk callback submitting): curl
         * refuses new handles here, so the defer timer starts it (its
         * place in the queue is counted now) */
        if (c->queued + c->pending - c->in_flight >= c->max_queue &&
            !llmux__limits_allow(c, x->ep, x))
            return LLMUX_EQUEUEFULL;
        x->state = X_WAIT;
        x->start_pending = 1;
        return 0;
    }
    if (llmux__can_start_x(c, x->ep, x)) {
        llmux__take_slot(x);
        rc = llmux__xfer_attempt(x);
        if (rc)
            llmux__give_slot(x);
        return rc;
    }
    if (llmux__limits_allow(c, x->ep, x)) {
        /* only this iteration's starts are used up: the next iteration
         * starts it (not bounded by max_queue, as it would have started) */
        llmux__enqueue(x);
        llmux__turn_hold(c);
        return 0;
    }
    if (c->queued >= c->max_queue)
        return LLMUX_EQUEUEFULL;
    llmux__enqueue(x);
    llmux__pump(c); /* arms the wake-up when a rate limit is what blocks */
    return 0;
}

LLMUX_EXTERN int llmux_submit(llmux_client *c, llmux_request *req,
                              llmux_chunk_cb on_chunk, llmux_done_cb on_done,
                              void *userdata)
{
    xfer *x;
    int rc;
    char m[160];
    if (!c || !req)
        return LLMUX_EINVAL;
    if (c->closing) {
        llmux__request_seterr(req, "client is closing");
        return LLMUX_ECANCELED;
    }
    if (req->x) {
        llmux__request_seterr(req, "request is already submitted");
        return LLMUX_EBUSY;
    }
    x = llmux__calloc(1, sizeof *x);
    if (!x)
        return LLMUX_ENOMEM;
    x->c = c;
    x->req = req;
    x->on_chunk = on_chunk;
    x->on_done = on_done;
    x->ud = userdata;
    x->owns_req = 1;
    if ((rc = prepare(x)) != 0) {
        llmux__xfer_discard(x);
        return rc;
    }
    if ((rc = admit(x)) != 0) {
        if (rc == LLMUX_EQUEUEFULL)
            snprintf(m, sizeof m,
                     "request queue full (%zu waiting, max_queue %zu): submit "
                     "fewer at once or raise max_queue",
                     c->queued, c->max_queue);
        else
            snprintf(m, sizeof m, "cannot start transfer: %s",
                     llmux_strerror(rc));
        llmux__request_seterr(req, m);
        llmux__xfer_discard(x);
        return rc;
    }
    req->x = x;
    req->userdata = userdata;
    x->next = c->head;
    if (c->head)
        c->head->prev = x;
    c->head = x;
    c->pending++;
    c->st.requests++;
    if (x->start_pending)
        llmux__defer_push(x);
    return 0;
}

LLMUX_EXTERN int llmux_request_pause(llmux_request *req)
{
    xfer *x = req ? req->x : NULL;
    if (!x || x->state != X_ACTIVE || !x->easy || x->cancel)
        return LLMUX_EINVAL;
    if (x->paused)
        return 0;
    x->paused = 1;
    x->resume_pending = 0;
    curl_easy_pause(x->easy, CURLPAUSE_RECV);
    if (x->timer_on && x->set.idle_timeout_ms)
        uv_timer_stop(&x->timer); /* a slow consumer is not an idle server */
    return 0;
}

LLMUX_EXTERN int llmux_request_resume(llmux_request *req)
{
    xfer *x = req ? req->x : NULL;
    if (!x || x->state != X_ACTIVE || !x->easy)
        return LLMUX_EINVAL;
    if (!x->paused)
        return 0;
    x->paused = 0;
    x->resume_pending = 1;
    llmux__defer_push(x);
    return 0;
}

LLMUX_EXTERN int llmux_request_cancel(llmux_request *req)
{
    xfer *x;
    if (!req)
        return LLMUX_EINVAL;
    x = req->x;
    if (!x || x->state == X_DONE || x->cancel)
        return 0;
    x->cancel = LLMUX_ECANCELED;
    if (x->state == X_QUEUED) {
        /* out of the queue now: a slot freed before llmux__on_defer gets to it
         * must not start it */
        llmux__dequeue(x);
        x->state = X_WAIT;
    }
    llmux__defer_push(x);
    return 0;
}
