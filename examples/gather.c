/*
 * examples/gather.c: many prompts, a limited number in flight, every
 * result back in input order with its own status; then a summary.
 *
 *   gather [N [CONCURRENCY]]      (default 1000 prompts, 40 at a time)
 *
 * With OPENAI_API_KEY set it asks the real service (mind the bill: pass a
 * small N); otherwise LLMUX_DEMO_BASE_URL must point at a llmux-mock
 * server (http://127.0.0.1:PORT), as for examples/demo.c.
 */
#define _POSIX_C_SOURCE 200809L /* <uv.h> under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>
#include <uv.h>

typedef struct summary {
    int done;
    int status;
    size_t ok, failed;
    const char *first_error;
    char first_error_buf[256];
    uint64_t t0, t1;
} summary;

/* Runs once, from the loop, when every prompt has finished. */
static void on_done(llmux_batch *b, int status, void *ud)
{
    summary *s = ud;
    size_t i, n = llmux_batch_size(b);
    s->t1 = uv_hrtime();
    s->done = 1;
    s->status = status;
    for (i = 0; i < n; i++) {
        llmux_response *res = llmux_batch_response(b, i);
        if (llmux_batch_status(b, i) == 0) {
            s->ok++;
            if (i < 3) /* a taste of the answers, in input order */
                printf("[%zu] %s\n", i, llmux_response_text(res, NULL));
            continue;
        }
        s->failed++;
        if (!s->first_error) {
            snprintf(s->first_error_buf, sizeof s->first_error_buf, "[%zu] %s",
                     i,
                     res ? llmux_response_error(res)->message
                         : llmux_strerror(llmux_batch_status(b, i)));
            s->first_error = s->first_error_buf;
        }
    }
}

int main(int argc, char **argv)
{
    const char *key = getenv("OPENAI_API_KEY");
    const char *mock = getenv("LLMUX_DEMO_BASE_URL");
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    llmux_batch_options bo = LLMUX_BATCH_OPTIONS_INIT;
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request **reqs;
    llmux_client *c;
    uv_loop_t loop;
    summary s;
    char spec[512];
    size_t i;
    int rc;

    bo.concurrency = argc > 2 ? strtoul(argv[2], NULL, 10) : 40;
    if (key && *key)
        snprintf(spec, sizeof spec, "openai/gpt-4o-mini");
    else if (mock && *mock)
        snprintf(spec, sizeof spec,
                 "openai/gpt-4o-mini;base_url=%s/v1;api_key=demo", mock);
    else {
        fprintf(stderr, "set OPENAI_API_KEY or LLMUX_DEMO_BASE_URL\n");
        return 2;
    }
    if (n == 0 || !(reqs = calloc(n, sizeof *reqs)))
        return 2;
    for (i = 0; i < n; i++) {
        char prompt[64];
        snprintf(prompt, sizeof prompt, "What is %zu + %zu?", i, i);
        if (llmux_request_new(&reqs[i], LLMUX_OP_CHAT, spec) ||
            llmux_request_add_message(reqs[i], LLMUX_ROLE_USER, prompt) ||
            llmux_request_set_max_tokens(reqs[i], 20)) {
            fprintf(stderr, "error: %s\n", llmux_request_errmsg(reqs[i]));
            return 2;
        }
    }

    uv_loop_init(&loop);
    co.loop = &loop;
    if ((rc = llmux_client_new(&c, &co))) {
        fprintf(stderr, "client: %s\n", llmux_strerror(rc));
        return 2;
    }
    memset(&s, 0, sizeof s);
    s.t0 = uv_hrtime();
    /* the batch owns the requests from here; the array stays ours */
    rc = llmux_gather(NULL, c, reqs, n, &bo, on_done, &s);
    if (rc) {
        fprintf(stderr, "gather: %s\n", llmux_strerror(rc));
        for (i = 0; i < n; i++)
            llmux_request_free(reqs[i]);
        return 2;
    }
    free(reqs);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once all are done */

    printf("%zu prompts, %zu at a time: %zu succeeded, %zu failed in "
           "%.1f ms\n",
           n, bo.concurrency, s.ok, s.failed, (double)(s.t1 - s.t0) / 1e6);
    if (s.first_error)
        printf("first error: %s\n", s.first_error);
    llmux_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return s.done && s.status == 0 ? 0 : 1;
}
