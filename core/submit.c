/*
 * core/submit.c: what a caller does to a request on a client: submit it
 * (settings resolved, prepared, then started, queued or refused when the
 * queue is full), pause, resume and cancel it; from another thread,
 * submit and cancel are handed over to the loop's thread through the
 * client's uv_async. The transfer's life after that is xfer.c's.
 */
#include "engine.h"

static int submit_here(llmux_client *c, llmux_request *req,
                       llmux_chunk_cb on_chunk, llmux_done_cb on_done,
                       void *userdata);
static int cancel_here(llmux_request *req);

/* ---- from other threads --------------------------------------------------
 */

/* A submission or cancellation waiting for the loop's thread. */
typedef struct llmux__xop {
    llmux_request *req;
    llmux_chunk_cb on_chunk;
    llmux_done_cb on_done;
    void *ud;
    uint64_t serial; /* the request's, when the call was made */
    int cancel;      /* a cancellation, not a submission */
    int canceled;    /* a submission cancelled before it was taken */
    struct llmux__xop *next;
} xop;

/* Numbers submissions, on every thread. */
static uint64_t next_serial(void)
{
    static uint64_t n;
    return __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED);
}

int llmux__on_owner(struct llmux_client *c)
{
    uv_thread_t self = uv_thread_self();
    int mine;
    /* under the lock: llmux_client_run() on another thread may change it */
    uv_mutex_lock(&c->xq_lock);
    mine = uv_thread_equal(&c->owner, &self);
    uv_mutex_unlock(&c->xq_lock);
    return mine;
}

/* Queues op for the loop's thread; LLMUX_ECANCELED once the client is
 * closing (op freed). */
static int hand_over(struct llmux_client *c, xop *op)
{
    uv_mutex_lock(&c->xq_lock);
    if (c->xq_closed) {
        uv_mutex_unlock(&c->xq_lock);
        llmux__free(op);
        return LLMUX_ECANCELED;
    }
    if (c->xq_tail)
        c->xq_tail->next = op;
    else
        c->xq_head = op;
    c->xq_tail = op;
    /* under the lock: the handle is closed only after xq_closed is set */
    uv_async_send(&c->async);
    uv_mutex_unlock(&c->xq_lock);
    return 0;
}

/* The response of a handed-over failure when even that cannot be
 * allocated: never freed (its count never reaches 0). */
static llmux_response *oom_response(void)
{
    static llmux_response r;
    if (!r.refs) {
        r.refs = 1 << 30;
        r.has_error = 1;
        r.err.code = LLMUX_ENOMEM;
        r.err.message = "out of memory";
        r.err.retry_after = -1;
        llmux__out_init(&r.o, 0, 0);
    }
    return &r;
}

/* A handed-over request that could not be submitted: its done callback
 * still runs, once, with the code and why (no hook event: it never
 * started); then it is freed, as the client owned it, unless it is in
 * flight already (handed over twice: LLMUX_EBUSY). */
static void fail_handed(xop *op, int code)
{
    llmux_request *req = op->req;
    llmux_response *res = llmux__response_new(req->op, req->cfg.provider);
    if (res)
        llmux__response_fail(res, code, 0, 0, req->errmsg);
    else
        res = oom_response();
    llmux__callback_depth(1);
    if (op->on_done)
        op->on_done(req, code, res, op->ud);
    llmux__callback_depth(-1);
    llmux_response_free(res);
    if (code != LLMUX_EBUSY)
        llmux_request_free(req);
}

/* The transfer of c's request req submitted as `serial`, if it is still
 * in flight (a cancellation handed over may arrive after its request
 * ended and was freed, and its memory reused: it is then not touched). */
static xfer *in_flight(struct llmux_client *c, const llmux_request *req,
                       uint64_t serial)
{
    xfer *x;
    for (x = c->head; x; x = x->next)
        if (x->req == req && x->serial == serial)
            return x;
    return NULL;
}

static xop *take_all(struct llmux_client *c)
{
    xop *list;
    uv_mutex_lock(&c->xq_lock);
    list = c->xq_head;
    c->xq_head = c->xq_tail = NULL;
    uv_mutex_unlock(&c->xq_lock);
    return list;
}

void llmux__on_handover(uv_async_t *a)
{
    struct llmux_client *c = a->data;
    xop *op = take_all(c), *next;
    for (; op; op = next) {
        int rc;
        next = op->next;
        if (op->cancel) {
            if (in_flight(c, op->req, op->serial))
                cancel_here(op->req);
        } else if (op->canceled) {
            llmux__request_seterr(op->req, "canceled before it started");
            fail_handed(op, LLMUX_ECANCELED);
        } else if (c->closing) {
            /* handed over before the close: ended, canceled */
            llmux__request_seterr(op->req, "client is closing");
            fail_handed(op, LLMUX_ECANCELED);
        } else if ((rc = submit_here(c, op->req, op->on_chunk, op->on_done,
                                     op->ud)) != 0) {
            fail_handed(op, rc);
        }
        llmux__free(op);
    }
    if (c->closing)
        llmux__client_maybe_closed(c); /* it waited for this queue */
}

void llmux__handover_close(struct llmux_client *c)
{
    uv_mutex_lock(&c->xq_lock);
    c->xq_closed = 1;
    /* what is queued ends from the loop (llmux__on_handover), never
     * inside the close */
    if (c->xq_head)
        uv_async_send(&c->async);
    uv_mutex_unlock(&c->xq_lock);
}

/* ---- on the loop's thread ------------------------------------------------
 */

/* Resolves x's settings, prepares its HTTP request (the plugin's
 * encode) and sets up what the engine keeps for it: the response, the
 * deadline, the endpoint with its limits. */
static int prepare(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_request *req = x->req;
    llmux__log_target old;
    int rc;
    old = llmux__client_log_target(c);
    rc = llmux__prepare_ex(req, &c->defaults, &x->set, c->plugin_path,
                           c->key_env_allow, c->credential != NULL, &x->prep);
    llmux__log_target_swap(old);
    if (rc)
        return rc;
    if (!(x->res = llmux__response_new(req->op, req->cfg.provider)))
        return LLMUX_ENOMEM;
    /* uv_now is cached per loop iteration; refresh it so the deadline
     * counts from now */
    uv_update_time(c->loop);
    x->t_submit = uv_now(c->loop);
    x->t_submit_ns = c->hook ? uv_hrtime() : 0;
    if (x->set.timeout_ms > 0)
        x->deadline = x->t_submit + (uint64_t)x->set.timeout_ms;
    x->seq = ++c->seq;
    if (!(x->ep =
              llmux__endpoint_get(c, x->prep.url, llmux__lane_key(&x->prep))))
        return LLMUX_ENOMEM;
    if ((rc = llmux__endpoint_limits(c, x)) != 0)
        return rc;
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
        if (llmux__queue_full(c) && !llmux__limits_allow(c, x->ep, x))
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
    xop *op;
    if (!c || !req)
        return LLMUX_EINVAL;
    if (llmux__on_owner(c)) {
        if (!req->x) /* not the number of a submission in flight */
            req->serial = next_serial();
        return submit_here(c, req, on_chunk, on_done, userdata);
    }
    if (!(op = llmux__calloc(1, sizeof *op)))
        return LLMUX_ENOMEM;
    op->req = req;
    op->on_chunk = on_chunk;
    op->on_done = on_done;
    op->ud = userdata;
    op->serial = req->serial = next_serial();
    req->client = c; /* before the loop's thread may see it */
    if (hand_over(c, op) != 0) {
        req->client = NULL; /* still the caller's, with no client */
        llmux__request_seterr(req, "client is closing");
        return LLMUX_ECANCELED;
    }
    return 0;
}

/* A request that waited for a shared budget's read (budget.c): it goes
 * on as a new submission would (its cache lookup, then its start), or
 * ends with the code it was given, from the loop. */
static void budget_answered(xfer *x)
{
    int rc = x->defer_code;
    if (rc == 0 && (rc = llmux__cache_begin(x, llmux__defer_push)) == 0)
        x->start_pending = 1;
    if (rc < 0)
        x->defer_code = rc;
    if (rc <= 0)
        llmux__defer_push(x);
}

static int submit_here(llmux_client *c, llmux_request *req,
                       llmux_chunk_cb on_chunk, llmux_done_cb on_done,
                       void *userdata)
{
    xfer *x;
    int rc;
    char m[160];
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
    x->serial = req->serial;
    x->on_chunk = on_chunk;
    x->on_done = on_done;
    x->ud = userdata;
    x->owns_req = 1;
    if ((rc = prepare(x)) != 0 ||
        (rc = llmux__budget_admit(x, budget_answered)) < 0) {
        llmux__budget_release(x);
        llmux__xfer_discard(x);
        return rc;
    }
    req->x = x; /* a hook's cancel inside admit() finds it */
    if (c != req->client)
        req->client = c;
    /* a cached request starts (or queues) only after a miss, from the
     * loop; its place in the queue is counted now */
    if (rc == 1) /* it waits for a shared budget's read: counted as queued */
        rc = llmux__queue_full(c) ? LLMUX_EQUEUEFULL : 0;
    else if ((rc = llmux__cache_begin(x, llmux__defer_push)) == 1)
        rc = 0;
    else if (rc == 0)
        rc = admit(x);
    if (rc != 0) {
        req->x = NULL;
        llmux__budget_release(x); /* not accepted: nothing held */
        if (rc == LLMUX_EQUEUEFULL)
            snprintf(m, sizeof m,
                     "request queue full (%zu waiting, max_queue %zu): submit "
                     "fewer at once or raise max_queue",
                     c->queued, c->max_queue);
        else if (!req->errmsg) /* the hooks and the callbacks say why */
            snprintf(m, sizeof m, "cannot start transfer: %s",
                     llmux_strerror(rc));
        if (rc == LLMUX_EQUEUEFULL || !req->errmsg)
            llmux__request_seterr(req, m);
        llmux__xfer_discard(x);
        return rc;
    }
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
    if (x && llmux__cache_replaying(x) && !x->cancel) {
        x->paused = 1; /* the replay stops after this event */
        return 0;
    }
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
    if (x && llmux__cache_replaying(x)) {
        if (x->paused) {
            x->paused = 0; /* llmux__on_defer replays on */
            llmux__defer_push(x);
        }
        return 0;
    }
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
    struct llmux_client *c;
    xop *op;
    if (!req)
        return LLMUX_EINVAL;
    c = req->client;
    if (c && llmux__on_owner(c) && !req->x) {
        /* handed over by another thread and not taken yet: it ends
         * canceled when it is */
        uv_mutex_lock(&c->xq_lock);
        for (op = c->xq_head; op; op = op->next)
            if (op->req == req && !op->cancel)
                op->canceled = 1;
        uv_mutex_unlock(&c->xq_lock);
        return 0;
    }
    if (!c || llmux__on_owner(c))
        return cancel_here(req);
    if (!(op = llmux__calloc(1, sizeof *op)))
        return LLMUX_ENOMEM;
    op->req = req;
    op->serial = req->serial;
    op->cancel = 1;
    hand_over(c, op); /* a closing client cancels it anyway */
    return 0;
}

static int cancel_here(llmux_request *req)
{
    xfer *x;
    x = req->x;
    if (x && x->in_hook && !x->cancel) {
        /* from before_send: the attempt it runs for does not start */
        x->cancel = LLMUX_ECANCELED;
        return 0;
    }
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

/* ---- answers to the credential callback ---------------------------------
 */

/* The attempts an answer serves go on from the loop (llmux__on_defer). */
static void credential_resume(xfer *w)
{
    while (w) {
        xfer *next = w->cred_next;
        w->cred_next = NULL;
        llmux__defer_push(w); /* answered: CRED_HAVE or CRED_FAIL */
        w = next;
    }
}

LLMUX_EXTERN int llmux_credential_answer(llmux_credential_reply *reply,
                                         const char *secret, int kind,
                                         int64_t expires_at_ms)
{
    const char *s;
    if (!reply)
        return LLMUX_EINVAL;
    if (kind != LLMUX_CREDENTIAL_KEY && kind != LLMUX_CREDENTIAL_BEARER) {
        credential_resume(llmux__cred_answer(
            reply, NULL, 0, 0, LLMUX_ECONFIG,
            "the credential callback answered an unknown kind"));
        return LLMUX_EINVAL;
    }
    for (s = secret; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            credential_resume(llmux__cred_answer(
                reply, NULL, 0, 0, LLMUX_ECONFIG,
                "the credential callback answered a secret with a control "
                "character"));
            return LLMUX_EINVAL;
        }
    credential_resume(llmux__cred_answer(reply, secret,
                                         kind == LLMUX_CREDENTIAL_BEARER,
                                         expires_at_ms, 0, NULL));
    return 0;
}

LLMUX_EXTERN void llmux_credential_fail(llmux_credential_reply *reply, int code,
                                        const char *message)
{
    if (!reply)
        return;
    if (code >= 0 || strcmp(llmux_err_name(code), "LLMUX_UNKNOWN") == 0)
        code = LLMUX_EAUTH;
    credential_resume(llmux__cred_answer(reply, NULL, 0, 0, code,
                                         message ? message
                                                 : "the credential callback "
                                                   "failed"));
}
