/*
 * examples/relay.c: relaying a stream to a slower consumer, with
 * backpressure. The consumer (think of a browser on a slow link) takes 16
 * bytes every 10 ms; the relay pauses the stream when 256 bytes wait for
 * it and resumes once fewer than 64 do, so its buffer stays bounded
 * however fast the model writes.
 *   LLMUX_DEMO_BASE_URL=http://127.0.0.1:PORT build/examples/relay
 * (a llmux-mock server), or with OPENAI_API_KEY against the real service.
 */
#define _POSIX_C_SOURCE 200809L /* for <uv.h> under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>
#include <uv.h>

#define HIGH_WATER 256
#define LOW_WATER  64
#define TICK_BYTES 16
#define TICK_MS    10

typedef struct relay {
    llmux_request *req;
    uv_timer_t tick;
    char *buf; /* waiting for the consumer */
    size_t len, cap;
    size_t max_len;     /* the most ever waiting */
    size_t sent;        /* bytes the consumer took */
    int paused, pauses; /* the stream is paused; how often it was */
    int done, status;
} relay;

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    relay *r = ud;
    size_t n;
    const char *text = llmux_chunk_text(ch, &n);
    if (!n) /* role and finish chunks carry no text */
        return 0;
    if (r->len + n > r->cap) {
        char *b = realloc(r->buf, r->cap = (r->len + n) * 2);
        if (!b)
            return 1; /* stops the stream: LLMUX_EUSER */
        r->buf = b;
    }
    memcpy(r->buf + r->len, text, n);
    r->len += n;
    if (r->len > r->max_len)
        r->max_len = r->len;
    if (!r->paused && r->len >= HIGH_WATER) {
        llmux_request_pause(req); /* no chunk until the resume */
        r->paused = 1;
        r->pauses++;
    }
    return 0;
}

/* The slow consumer: a few bytes a tick, then resume below low water. */
static void on_tick(uv_timer_t *t)
{
    relay *r = t->data;
    size_t n = r->len < TICK_BYTES ? r->len : TICK_BYTES;
    if (n) { /* the first ticks may come before the first chunk */
        fwrite(r->buf, 1, n, stdout);
        fflush(stdout);
        memmove(r->buf, r->buf + n, r->len - n);
        r->len -= n;
        r->sent += n;
    }
    if (r->paused && r->len < LOW_WATER) {
        llmux_request_resume(r->req);
        r->paused = 0;
    }
    if (r->done && !r->len)
        uv_timer_stop(t);
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    relay *r = ud;
    (void)req;
    r->done = 1;
    r->status = status;
    if (status)
        fprintf(stderr, "\nerror: %s\n", llmux_response_error(res)->message);
}

static void on_closed(void *ud)
{
    (void)ud;
}

int main(void)
{
    const char *mock = getenv("LLMUX_DEMO_BASE_URL");
    const char *key = getenv("OPENAI_API_KEY");
    char spec[256];
    uv_loop_t loop;
    llmux_client *client;
    llmux_client_options opts = LLMUX_CLIENT_OPTIONS_INIT;
    relay r;

    if (mock) /* the mock writes 200 tokens as fast as it can */
        snprintf(spec, sizeof spec,
                 "openai/gpt-4o-mini#events=200;base_url=%s/v1;api_key=mock",
                 mock);
    else if (key)
        snprintf(spec, sizeof spec, "openai/gpt-4o-mini");
    else {
        fprintf(stderr, "set OPENAI_API_KEY or LLMUX_DEMO_BASE_URL\n");
        return 2;
    }
    memset(&r, 0, sizeof r);
    uv_loop_init(&loop);
    opts.loop = &loop;
    if (llmux_client_new(&client, &opts) != 0)
        return 1;
    llmux_request_new(&r.req, LLMUX_OP_CHAT, spec);
    llmux_request_add_message(r.req, LLMUX_ROLE_USER,
                              "Write two paragraphs about rivers.");
    llmux_request_set_stream(r.req, 1);
    uv_timer_init(&loop, &r.tick);
    r.tick.data = &r;
    uv_timer_start(&r.tick, on_tick, TICK_MS, TICK_MS);
    if (llmux_submit(client, r.req, on_chunk, on_done, &r) != 0) {
        fprintf(stderr, "error: %s\n", llmux_request_errmsg(r.req));
        llmux_request_free(r.req);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* until answered and fully relayed */
    printf("\n[relayed %zu bytes; at most %zu waiting (pause at %d); "
           "paused %d time(s)]\n",
           r.sent, r.max_len, HIGH_WATER, r.pauses);
    llmux_client_close(client, on_closed, NULL);
    uv_close((uv_handle_t *)&r.tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(r.buf);
    return r.status == 0 ? 0 : 1;
}
