/*
 * examples/as_completed.c: prints each answer as soon as it arrives, with
 * the index of its prompt, then how many succeeded.
 *
 *   as_completed [CONCURRENCY]      (default 4)
 *
 * With OPENAI_API_KEY set it asks the real service; otherwise
 * LLMUX_DEMO_BASE_URL must point at a llmux-mock server
 * (http://127.0.0.1:PORT), as for examples/demo.c.
 */
#define _POSIX_C_SOURCE 200809L /* <uv.h> under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>
#include <uv.h>

static const char *const prompts[] = {
    "Name a prime number.",
    "What colour is the sky on Mars?",
    "Give me a word that rhymes with loop.",
    "What is the capital of Australia?",
    "Say hello in Finnish.",
    "How many legs does a spider have?",
    "Name a sorting algorithm.",
    "What does HTTP stand for?",
};
#define N_PROMPTS (sizeof prompts / sizeof prompts[0])

typedef struct state {
    uint64_t t0;
    size_t ok;
    int status;
} state;

/* Runs once per prompt, in the order the answers arrive. */
static void on_item(llmux_batch *b, size_t index, int status,
                    llmux_response *res, void *ud)
{
    state *st = ud;
    double ms = (double)(uv_hrtime() - st->t0) / 1e6;
    (void)b;
    if (status == 0) {
        st->ok++;
        printf("%7.1f ms  [%zu] %s\n", ms, index,
               llmux_response_text(res, NULL));
    } else {
        printf("%7.1f ms  [%zu] error: %s\n", ms, index,
               res ? llmux_response_error(res)->message
                   : llmux_strerror(status));
    }
}

static void on_done(llmux_batch *b, int status, void *ud)
{
    state *st = ud;
    st->status = status;
    printf("%zu of %zu answered\n", st->ok, llmux_batch_size(b));
}

int main(int argc, char **argv)
{
    const char *key = getenv("OPENAI_API_KEY");
    const char *mock = getenv("LLMUX_DEMO_BASE_URL");
    llmux_batch_options bo = LLMUX_BATCH_OPTIONS_INIT;
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *reqs[N_PROMPTS];
    llmux_client *c;
    uv_loop_t loop;
    state st;
    char spec[512];
    size_t i;
    int rc;

    bo.concurrency = argc > 1 ? strtoul(argv[1], NULL, 10) : 4;
    if (key && *key)
        snprintf(spec, sizeof spec, "openai/gpt-4o-mini");
    else if (mock && *mock)
        snprintf(spec, sizeof spec,
                 "openai/gpt-4o-mini;base_url=%s/v1;api_key=demo", mock);
    else {
        fprintf(stderr, "set OPENAI_API_KEY or LLMUX_DEMO_BASE_URL\n");
        return 2;
    }
    for (i = 0; i < N_PROMPTS; i++) {
        if (llmux_request_new(&reqs[i], LLMUX_OP_CHAT, spec) ||
            llmux_request_add_message(reqs[i], LLMUX_ROLE_USER, prompts[i]) ||
            llmux_request_set_max_tokens(reqs[i], 40)) {
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
    memset(&st, 0, sizeof st);
    st.t0 = uv_hrtime();
    rc = llmux_as_completed(NULL, c, reqs, N_PROMPTS, &bo, on_item, on_done,
                            &st);
    if (rc) {
        fprintf(stderr, "as_completed: %s\n", llmux_strerror(rc));
        for (i = 0; i < N_PROMPTS; i++)
            llmux_request_free(reqs[i]);
        return 2;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    llmux_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return st.status == 0 ? 0 : 1;
}
