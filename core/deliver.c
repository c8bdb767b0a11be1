/*
 * core/deliver.c: a stream's events on their way to the caller: each
 * decoded by the plugin, merged into the response and handed to the chunk
 * callback, which may stop, cancel or pause the stream; the bytes held
 * while paused are fed on resume. xfer.c feeds it; it decides nothing
 * about the transfer.
 */
#include "engine.h"

/* Copies the stream chunk's error report into the response. */
static void take_chunk_error(xfer *x)
{
    struct llmux_out *a = &x->res->o, *b = &x->live->chunk.o;
#define MOVE(f)                                                                \
    do {                                                                       \
        llmux__free(a->f);                                                     \
        a->f = b->f;                                                           \
        b->f = NULL;                                                           \
    } while (0)
    MOVE(err_type);
    MOVE(err_pcode);
    MOVE(err_param);
    MOVE(err_msg);
#undef MOVE
    a->err_code = b->err_code;
}

/* What a chunk carries: 2 for a choice's content or usage (the answer
 * began: no retry from here on), 1 for top-level fields only (service_tier
 * on a role chunk, Azure's filter preamble: passed on, but nothing of the
 * answer yet), 0 for nothing. */
static int chunk_has_content(const struct llmux_out *o)
{
    size_t i;
    if (o->has_usage)
        return 2;
    for (i = 0; i < o->n_choices; i++)
        if (llmux__choice_has_content(&o->choices[i]))
            return 2;
    return o->extra_top || o->extra_usage;
}

/* Marks each choice of the chunk ch that the stream so far (acc, before
 * ch is merged) has said nothing for: OpenAI's first delta of a choice
 * carries its role, and clients (the OpenAI SDKs) rely on it. */
static void mark_first(const struct llmux_out *acc, struct llmux_out *ch)
{
    size_t i, k;
    for (i = 0; i < ch->n_choices; i++) {
        struct llmux_choice *c = &ch->choices[i];
        c->first = 1;
        for (k = 0; k < acc->n_choices; k++)
            if (acc->choices[k].index == c->index &&
                llmux__choice_has_content(&acc->choices[k]))
                c->first = 0;
    }
}

int llmux__on_event(void *ud, const llmux_event *ev)
{
    xfer *x = ud;
    int rc, content;
    if (x->got_done)
        return 0; /* anything after the end marker is ignored */
    x->events++;
    if (x->cache)
        llmux__cache_record(x, ev);
    rc = llmux__decode_event(&x->prep, ev, &x->live->chunk);
    if (rc < 0) {
        take_chunk_error(x);
        x->err = rc;
        return rc;
    }
    if (rc == LLMUX_EVENT_DONE)
        x->got_done = 1;
    /* once per event: merging does not change the chunk */
    content = chunk_has_content(&x->live->chunk.o);
    if (!content && !x->live->chunk.o.id)
        return 0;
    mark_first(&x->res->o, &x->live->chunk.o);
    if (llmux__out_merge(&x->res->o, &x->live->chunk.o)) {
        x->err = LLMUX_ENOMEM;
        return LLMUX_ENOMEM;
    }
    if (!content)
        return 0; /* metadata only (id, model): nothing to deliver */
    if (content == 2) {
        x->delivered = 1;
        if (!x->t_first_ns)
            x->t_first_ns = uv_hrtime(); /* the hooks' time to first chunk */
    }
    if (x->on_chunk && !x->cancel) {
        int stop;
        x->live->chunk.acc = &x->res->o;
        x->live->chunk.raw = ev->data;
        x->live->chunk.raw_len = ev->data_len;
        llmux__callback_depth(1);
        stop = x->on_chunk(x->req, &x->live->chunk, x->ud);
        llmux__callback_depth(-1);
        x->live->chunk.raw = NULL;
        x->live->chunk.raw_len = 0;
        if (stop) {
            x->err = LLMUX_EUSER;
            return LLMUX_EUSER;
        }
    }
    if (x->cancel)
        return x->cancel;
    /* paused by the callback: no more events until resumed */
    return x->paused ? LLMUX__FRAMER_STOP : 0;
}

/* Feeds the bytes held since a pause. Returns 1 when a callback paused
 * again (the rest stays held), else 0 (errors are left in x->err, for
 * curl's next write or the pending finish to report). */
int llmux__feed_held(xfer *x)
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

int llmux__replay(xfer *x)
{
    llmux__request_seterr(x->req, NULL); /* what the replay says, if any */
    for (;;) {
        llmux_event ev;
        int rc;
        if (x->paused)
            return 1;
        rc = llmux__cache_next_event(x, &ev);
        if (rc < 0)
            return rc;
        if (rc == 0 && !x->got_done)
            llmux__request_seterr(x->req, "response cache: the cached "
                                          "stream has no end marker");
        if (rc == 0)
            return x->got_done ? 0 : LLMUX_EPROTO;
        rc = llmux__on_event(x, &ev);
        if (x->cancel)
            return 1; /* on the defer list: finished there */
        if (rc && rc != LLMUX__FRAMER_STOP) /* STOP: paused, above */
            return rc;
    }
}
