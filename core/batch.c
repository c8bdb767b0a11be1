/*
 * core/batch.c: many requests at once (llmux/batch.h): gather,
 * as-completed, race and the blocking gather.
 *
 * One engine serves the three forms, built on the public submission API
 * (llmux_submit, llmux_request_cancel), so it inherits the client's
 * guarantees: every submitted request's done callback runs exactly once,
 * from the loop. A batch is one allocation: its header and a slot per
 * request holding the request (while queued or in flight) and then its
 * status and response.
 *
 *   start: validate everything, take the requests, submit up to the
 *   concurrency limit -> each request's done callback records the result,
 *   submits the next queued request, maybe stops the batch (fail_fast, a
 *   race won, llmux_batch_cancel) -> when every slot is finished: the
 *   batch's done callback, then free.
 *
 * Work per request is O(1): queued requests are the slots from `next` on,
 * results are written straight into their slot, and item callbacks follow
 * completion order through an intrusive FIFO of slots. Stopping a batch
 * walks the slots once.
 *
 * User callbacks never run inside a call the user made (llmux_gather,
 * llmux_batch_cancel...): results that appear there (a request that could
 * not be submitted, queued requests cancelled) wait for the loop, on a
 * zero-delay uv timer created only when needed and closed before the
 * batch's memory is released. Results that appear in a request's done
 * callback (already on the loop) are delivered at its end.
 *
 * Details the header leaves open:
 * - A request that llmux_submit() refuses after the batch was accepted (an
 *   unknown provider, a missing key, LLMUX_EQUEUEFULL) finishes with that
 *   code and a response carrying the reason, as llmux_run() does; only
 *   queued requests that were cancelled have no response.
 * - The overall status is the first failure in completion order;
 *   llmux_batch_cancel() counts as a failure (LLMUX_ECANCELED) at the time
 *   it is called when something was left to cancel. A race that has a
 *   winner reports 0 whatever happened to the losers.
 * - Refusals (EINVAL for NULL entries or bad options, EBUSY for a request
 *   already submitted, held by another batch or listed twice, ECANCELED
 *   for a closing client) leave every request as it was.
 * - llmux_gather_run() refuses (LLMUX_EBUSY) inside any llmux callback
 *   (request or batch), as llmux_run() does.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "internal.h"

enum bkind { KIND_GATHER, KIND_AS_COMPLETED, KIND_RACE };
enum bstate { S_QUEUED, S_FLIGHT, S_DONE };

/* llmux_batch_status() of a request that has not finished */
#define NOT_FINISHED 1

typedef struct bslot {
    llmux_batch *b;
    llmux_request *req;  /* the batch's while queued, the client's while in
                            flight, NULL once finished */
    llmux_response *res; /* one reference owned by the batch, or NULL */
    int status;          /* NOT_FINISHED, 0 or a negative code */
    int state;           /* enum bstate */
    union {
        void *saved_ud;     /* while starting: the request's userdata */
        struct bslot *next; /* finished, item callback pending */
    } u;
} bslot;

struct llmux_batch {
    llmux_client *c;
    int kind;
    size_t n;
    size_t concurrency; /* 0 = all at once */
    int fail_fast;
    llmux_batch_item_cb item;
    llmux_batch_done_cb done;
    void *ud;
    size_t next;      /* first slot not yet submitted */
    size_t in_flight; /* submitted, done callback not yet run */
    size_t finished;
    int first_err; /* first failure's code, in completion order */
    long winner;   /* race: index of the first success, or -1 */
    int stopping;  /* no more submissions; the rest is cancelled */
    int canceled;  /* llmux_batch_cancel() was called */
    int depth;     /* inside the batch's own code: defer user callbacks */
    int done_run;  /* the done callback has started */
    int timer_on;  /* `timer` initialised, not yet closed */
    uv_timer_t timer;
    bslot *qhead, *qtail; /* finished slots awaiting their item callback */
    bslot slots[];
};

/* Marks requests that a batch holds but has not submitted: a second
 * batch (or the same array twice) is refused. llmux_submit() replaces the
 * mark with the batch's slot. */
static char queued_mark;

static void stop(llmux_batch *b);

/* ---- results ------------------------------------------------------------- */

/* Stores a finished request's result (`res` is a reference the batch now
 * owns, or NULL) and applies the batch's rules: first error, race winner,
 * fail_fast. */
static void record(llmux_batch *b, bslot *s, int status, llmux_response *res)
{
    s->state = S_DONE;
    s->status = status;
    s->res = res;
    b->finished++;
    if (b->item) {
        s->u.next = NULL;
        if (b->qtail)
            b->qtail->u.next = s;
        else
            b->qhead = s;
        b->qtail = s;
    }
    if (status == 0) {
        if (b->kind == KIND_RACE && b->winner < 0 && !b->canceled) {
            b->winner = (long)(s - b->slots);
            stop(b); /* the losers' transfers are closed */
        }
        return;
    }
    if (!b->first_err)
        b->first_err = status;
    if (b->fail_fast)
        stop(b);
}

/* A request that llmux_submit() refused: the batch still owns it. Its
 * result is the code and a response carrying the reason (as llmux_run()
 * gives for a request that could not start). */
static void submit_failed(llmux_batch *b, bslot *s, int rc)
{
    llmux_request *req = s->req;
    llmux_response *res =
        llmux__response_new(llmux_request_op(req), llmux_request_provider(req));
    if (res)
        llmux__response_fail(res, rc, 0, 0, llmux_request_errmsg(req));
    llmux_request_free(req);
    s->req = NULL;
    record(b, s, rc, res);
}

/* Cancels what is left: in-flight requests through the client (their done
 * callbacks follow from the loop), queued ones at once (they never start:
 * LLMUX_ECANCELED without a response). Runs once per batch. */
static void stop(llmux_batch *b)
{
    size_t i, end = b->next;
    if (b->stopping)
        return;
    b->stopping = 1;
    b->next = b->n; /* nothing more is submitted */
    for (i = 0; i < end; i++)
        if (b->slots[i].state == S_FLIGHT)
            llmux_request_cancel(b->slots[i].req);
    for (i = end; i < b->n; i++) {
        bslot *s = &b->slots[i];
        llmux_request_free(s->req);
        s->req = NULL;
        record(b, s, LLMUX_ECANCELED, NULL);
    }
}

/* ---- running ------------------------------------------------------------- */

static void on_request_done(llmux_request *req, int status, llmux_response *res,
                            void *ud);

/* Submits queued requests while the concurrency limit allows. */
static void fill(llmux_batch *b)
{
    while (!b->stopping && b->next < b->n &&
           (!b->concurrency || b->in_flight < b->concurrency)) {
        bslot *s = &b->slots[b->next++];
        int rc = llmux_submit(b->c, s->req, NULL, on_request_done, s);
        if (rc == 0) {
            s->state = S_FLIGHT;
            b->in_flight++;
        } else if (rc == LLMUX_ECANCELED) {
            /* the client is closing: this one and the rest never start */
            b->next--;
            stop(b);
        } else {
            submit_failed(b, s, rc);
        }
    }
}

static void timer_closed(uv_handle_t *h)
{
    llmux__free(h->data);
}

/* After the done callback: the responses, any request still held (none in
 * practice: every slot is finished) and the batch itself. */
static void batch_free(llmux_batch *b)
{
    size_t i;
    for (i = 0; i < b->n; i++) {
        llmux_response_free(b->slots[i].res);
        if (b->slots[i].state != S_FLIGHT)
            llmux_request_free(b->slots[i].req);
    }
    if (b->timer_on)
        uv_close((uv_handle_t *)&b->timer, timer_closed);
    else
        llmux__free(b);
}

static void finish(llmux_batch *b)
{
    int status = b->first_err;
    if (b->kind == KIND_RACE && b->winner >= 0)
        status = 0;
    b->done_run = 1;
    if (b->done) {
        b->depth++;
        llmux__callback_depth(1);
        b->done(b, status, b->ud);
        llmux__callback_depth(-1);
        b->depth--;
    }
    batch_free(b);
}

static void on_timer(uv_timer_t *t);

/*
 * Delivers what is pending: item callbacks in completion order, then the
 * done callback once every slot is finished. From the loop (`on_loop`) it
 * does so now; from a user's call it arms the zero-delay timer instead.
 * Nested calls (a user callback cancelling the batch) leave the work to the
 * outermost one.
 */
static void pump(llmux_batch *b, int on_loop)
{
    if (b->depth || b->done_run)
        return;
    if (!on_loop) {
        if (b->qhead || b->finished == b->n) {
            if (!b->timer_on) {
                uv_timer_init(llmux_client_loop(b->c), &b->timer);
                b->timer.data = b;
                b->timer_on = 1;
            }
            uv_timer_start(&b->timer, on_timer, 0, 0);
        }
        return;
    }
    b->depth++;
    while (b->qhead) {
        bslot *s = b->qhead;
        b->qhead = s->u.next;
        if (!b->qhead)
            b->qtail = NULL;
        s->u.next = NULL;
        llmux__callback_depth(1);
        b->item(b, (size_t)(s - b->slots), s->status, s->res, b->ud);
        llmux__callback_depth(-1);
    }
    b->depth--;
    if (b->finished == b->n)
        finish(b);
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data, 1);
}

/* A submitted request finished (from the loop): record, refill, deliver. */
static void on_request_done(llmux_request *req, int status, llmux_response *res,
                            void *ud)
{
    bslot *s = ud;
    llmux_batch *b = s->b;
    (void)req;
    b->depth++;
    s->req = NULL; /* the client frees it after this callback */
    b->in_flight--;
    record(b, s, status, llmux_response_retain(res));
    fill(b);
    b->depth--;
    pump(b, 1);
}

/* ---- starting ------------------------------------------------------------ */

/* Gives the requests back untouched (their userdata as found). */
static void unmark(llmux_batch *b, size_t upto)
{
    size_t i;
    for (i = 0; i < upto; i++)
        b->slots[i].req->userdata = b->slots[i].u.saved_ud;
}

/* Marks every request as the batch's, validating first: a refused call
 * (a NULL, a request already submitted or in a batch) leaves every
 * request as it was. */
static int take_all(llmux_batch *b, llmux_request *const *reqs)
{
    size_t i;
    for (i = 0; i < b->n; i++) {
        llmux_request *r = reqs[i];
        int rc = 0;
        if (!r)
            rc = LLMUX_EINVAL;
        else if (r->x || r->userdata == &queued_mark) {
            if (!r->x) /* a submitted one is the client's: leave it be */
                llmux__request_seterr(r, "request is already in a batch, "
                                         "or twice in this one");
            rc = LLMUX_EBUSY;
        }
        if (rc) {
            unmark(b, i);
            return rc;
        }
        b->slots[i].b = b;
        b->slots[i].req = r;
        b->slots[i].status = NOT_FINISHED;
        b->slots[i].u.saved_ud = r->userdata;
        r->userdata = &queued_mark;
    }
    return 0;
}

static int start(llmux_batch **out, int kind, llmux_client *c,
                 llmux_request *const *reqs, size_t n,
                 const llmux_batch_options *opts, llmux_batch_item_cb item,
                 llmux_batch_done_cb done, void *userdata)
{
    llmux_batch *b;
    int rc = 0;
    if (out)
        *out = NULL;
    if (!c || (n && !reqs))
        return LLMUX_EINVAL;
    if (opts &&
        (opts->version == 0 || opts->version > LLMUX_BATCH_OPTIONS_VERSION))
        return LLMUX_EINVAL;
    if (n > (SIZE_MAX - sizeof *b) / sizeof(bslot))
        return LLMUX_ENOMEM;
    b = llmux__calloc(1, sizeof *b + n * sizeof(bslot));
    if (!b)
        return LLMUX_ENOMEM;
    b->c = c;
    b->kind = kind;
    b->n = n;
    b->concurrency = opts && kind != KIND_RACE ? opts->concurrency : 0;
    b->fail_fast = opts && kind != KIND_RACE ? opts->fail_fast : 0;
    b->item = item;
    b->done = done;
    b->ud = userdata;
    b->winner = -1;

    if ((rc = take_all(b, reqs))) {
        llmux__free(b);
        return rc;
    }

    b->depth++;
    if (n) {
        /* A closing client refuses every submission: then refuse the whole
         * call while nothing was taken. llmux_submit() checks that first,
         * so the first refusal tells. */
        bslot *s = &b->slots[0];
        rc = llmux_submit(c, s->req, NULL, on_request_done, s);
        if (rc == LLMUX_ECANCELED) {
            unmark(b, n);
            llmux__free(b);
            return rc;
        }
        b->next = 1;
        if (rc == 0) {
            s->state = S_FLIGHT;
            b->in_flight++;
        } else {
            submit_failed(b, s, rc);
        }
    }
    fill(b);
    b->depth--;
    if (out)
        *out = b;
    pump(b, 0); /* results already known reach the user from the loop */
    return 0;
}

LLMUX_EXTERN int llmux_gather(llmux_batch **out, llmux_client *c,
                              llmux_request *const *reqs, size_t n,
                              const llmux_batch_options *opts,
                              llmux_batch_done_cb done, void *userdata)
{
    return start(out, KIND_GATHER, c, reqs, n, opts, NULL, done, userdata);
}

LLMUX_EXTERN int llmux_as_completed(llmux_batch **out, llmux_client *c,
                                    llmux_request *const *reqs, size_t n,
                                    const llmux_batch_options *opts,
                                    llmux_batch_item_cb item,
                                    llmux_batch_done_cb done, void *userdata)
{
    return start(out, KIND_AS_COMPLETED, c, reqs, n, opts, item, done,
                 userdata);
}

LLMUX_EXTERN int llmux_race(llmux_batch **out, llmux_client *c,
                            llmux_request *const *reqs, size_t n,
                            llmux_batch_done_cb done, void *userdata)
{
    if (out)
        *out = NULL;
    if (n == 0)
        return LLMUX_EINVAL; /* nobody to win */
    return start(out, KIND_RACE, c, reqs, n, NULL, NULL, done, userdata);
}

/* ---- control and results ------------------------------------------------- */

LLMUX_EXTERN int llmux_batch_cancel(llmux_batch *b)
{
    if (!b)
        return LLMUX_EINVAL;
    if (b->done_run || b->finished == b->n)
        return 0; /* nothing left to cancel */
    b->canceled = 1;
    if (!b->first_err)
        b->first_err = LLMUX_ECANCELED;
    b->depth++;
    stop(b);
    b->depth--;
    pump(b, 0);
    return 0;
}

LLMUX_EXTERN size_t llmux_batch_size(const llmux_batch *b)
{
    return b ? b->n : 0;
}

LLMUX_EXTERN int llmux_batch_status(const llmux_batch *b, size_t i)
{
    if (!b || i >= b->n)
        return LLMUX_EINVAL;
    return b->slots[i].status;
}

LLMUX_EXTERN llmux_response *llmux_batch_response(const llmux_batch *b,
                                                  size_t i)
{
    if (!b || i >= b->n)
        return NULL;
    return b->slots[i].res;
}

LLMUX_EXTERN long llmux_batch_winner(const llmux_batch *b)
{
    return b ? b->winner : -1;
}

LLMUX_EXTERN void *llmux_batch_userdata(const llmux_batch *b)
{
    return b ? b->ud : NULL;
}

/* ---- the blocking gather ------------------------------------------------- */

typedef struct run_state {
    llmux_response **out;
    int *status;
    int rc;
    int done;
} run_state;

static void run_done(llmux_batch *b, int status, void *ud)
{
    run_state *st = ud;
    size_t i, n = llmux_batch_size(b);
    for (i = 0; i < n; i++) {
        if (st->out)
            st->out[i] = llmux_response_retain(llmux_batch_response(b, i));
        if (st->status)
            st->status[i] = llmux_batch_status(b, i);
    }
    st->rc = status;
    st->done = 1;
}

LLMUX_EXTERN int llmux_gather_run(llmux_request *const *reqs, size_t n,
                                  const llmux_client_options *copts,
                                  const llmux_batch_options *opts,
                                  llmux_response **out, int *status)
{
    llmux_client_options o;
    llmux_client *c = NULL;
    llmux_request **copies = NULL;
    run_state st;
    size_t i, made = 0;
    int rc;

    for (i = 0; out && i < n; i++)
        out[i] = NULL;
    if (n && !reqs) {
        rc = LLMUX_EINVAL;
        goto early;
    }
    if (llmux__callback_depth(0)) {
        rc = LLMUX_EBUSY; /* the client's callbacks: llmux_run's check */
        goto early;
    }
    for (i = 0; i < n; i++)
        if (!reqs[i]) {
            rc = LLMUX_EINVAL;
            goto early;
        }
    if ((rc = llmux__client_options_copy(&o, copts)))
        goto early;
    o.loop = NULL;
    if (n && !(copies = llmux__calloc(n, sizeof *copies))) {
        rc = LLMUX_ENOMEM;
        goto early;
    }
    for (made = 0; made < n; made++)
        if (!(copies[made] = llmux_request_dup(reqs[made]))) {
            rc = LLMUX_ENOMEM;
            goto fail;
        }
    if ((rc = llmux_client_new(&c, &o)))
        goto fail;
    memset(&st, 0, sizeof st);
    st.out = out;
    st.status = status;
    rc = llmux_gather(NULL, c, copies, n, opts, run_done, &st);
    if (rc)
        goto fail;
    llmux__free(copies); /* the batch owns the requests now */
    while (!st.done)
        uv_run(llmux_client_loop(c), UV_RUN_ONCE);
    llmux_client_free(c);
    return st.rc;
fail:
    for (i = 0; i < made; i++)
        llmux_request_free(copies[i]);
    llmux__free(copies);
    llmux_client_free(c);
early:
    for (i = 0; status && i < n; i++)
        status[i] = rc;
    return rc;
}
