/*
 * core/run.c: the blocking llmux_run(): a private loop and client around
 * one request.
 */
#include "engine.h"

/* ---- the blocking call --------------------------------------------------- */

typedef struct run_state {
    llmux_response *res;
    int status;
    int done;
} run_state;

static void run_done(llmux_request *req, int status, llmux_response *res,
                     void *ud)
{
    run_state *s = ud;
    (void)req;
    s->res = llmux_response_retain(res);
    s->status = status;
    s->done = 1;
}

typedef struct run_chunk {
    llmux_chunk_cb cb;
    void *ud;
    run_state st;
} run_chunk;

static int run_on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    run_chunk *rc = ud;
    return rc->cb ? rc->cb(req, ch, rc->ud) : 0;
}

static void run_done2(llmux_request *req, int status, llmux_response *res,
                      void *ud)
{
    run_chunk *rc = ud;
    run_done(req, status, res, &rc->st);
}

LLMUX_EXTERN int llmux_run(const llmux_request *req,
                           const llmux_client_options *opts,
                           llmux_chunk_cb on_chunk, void *userdata,
                           llmux_response **out)
{
    llmux_client_options o;
    llmux_client *c;
    llmux_request *copy;
    run_chunk rc;
    int err;
    if (out)
        *out = NULL;
    if (!req)
        return LLMUX_EINVAL;
    if (llmux__callback_depth(0))
        return LLMUX_EBUSY;
    if ((err = llmux__client_options_copy(&o, opts)))
        return err;
    o.loop = NULL;
    if ((err = llmux_client_new(&c, &o)))
        return err;
    copy = llmux_request_dup(req);
    if (!copy) {
        llmux_client_free(c);
        return LLMUX_ENOMEM;
    }
    memset(&rc, 0, sizeof rc);
    rc.cb = on_chunk;
    rc.ud = userdata;
    err = llmux_submit(c, copy, run_on_chunk, run_done2, &rc);
    if (err) {
        /* the message lives in the copy; hand it back in a response */
        if (out) {
            *out = llmux__response_new(copy->op, copy->cfg.provider);
            if (*out)
                llmux__response_fail(*out, err, 0, 0, copy->errmsg);
        }
        llmux_request_free(copy);
        llmux_client_free(c);
        return err;
    }
    while (!rc.st.done)
        uv_run(c->loop, UV_RUN_ONCE);
    llmux_client_free(c);
    if (out)
        *out = rc.st.res;
    else
        llmux_response_free(rc.st.res);
    return rc.st.status;
}
