/*
 * bench/llmux-bench.c: the benchmark workload through llmux's public API.
 *
 *   llmux-bench [--stream] N C BASE_URL
 *
 * Sends N chat completions ("openai/gpt-4o-mini", the prompt shape of
 * ../shared/bench-peers) to BASE_URL/chat/completions with C in flight on
 * one client, checks every answer (non-empty text, finish reason; for
 * streams the chunk count too) and exits non-zero on any failure. It
 * prints one summary line; CPU time and memory are measured from outside
 * (bench/run.sh, /usr/bin/time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>

static llmux_client *client;
static char spec[512];
static long total, started, done, failed, chars, chunks;
static int stream;

static void start_one(void);

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    (void)req;
    (void)ch;
    (void)ud;
    chunks++;
    return 0;
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    size_t len = 0;
    (void)req;
    (void)ud;
    llmux_response_text(res, &len);
    if (status != 0 || len == 0 ||
        llmux_response_finish(res) != LLMUX_FINISH_STOP) {
        const llmux_error *e = llmux_response_error(res);
        if (failed++ < 5)
            fprintf(stderr, "llmux-bench: request failed: %s\n",
                    e ? e->message : "empty answer");
    }
    chars += (long)len;
    done++;
    if (started < total)
        start_one();
}

static void start_one(void)
{
    llmux_request *req;
    char content[96];
    int rc;
    snprintf(content, sizeof content,
             "Prompt %ld: what is the capital of France?", started);
    if (llmux_request_new(&req, LLMUX_OP_CHAT, spec) ||
        llmux_request_add_message(req, LLMUX_ROLE_USER, content) ||
        llmux_request_set_max_tokens(req, 64) ||
        llmux_request_set_stream(req, stream)) {
        fprintf(stderr, "llmux-bench: %s\n", llmux_request_errmsg(req));
        exit(1);
    }
    rc = llmux_submit(client, req, stream ? on_chunk : NULL, on_done, NULL);
    if (rc) {
        fprintf(stderr, "llmux-bench: submit: %s\n", llmux_request_errmsg(req));
        exit(1);
    }
    started++;
}

int main(int argc, char **argv)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    long conc, i;
    int a = 1;
    if (argc > 1 && strcmp(argv[1], "--stream") == 0) {
        stream = 1;
        a++;
    }
    if (argc - a != 3) {
        fprintf(stderr, "usage: llmux-bench [--stream] N C BASE_URL\n");
        return 2;
    }
    total = atol(argv[a]);
    conc = atol(argv[a + 1]);
    if (total <= 0 || conc <= 0) {
        fprintf(stderr, "llmux-bench: N and C must be positive\n");
        return 2;
    }
    snprintf(spec, sizeof spec,
             "openai/gpt-4o-mini;base_url=%s;api_key=sk-test;max_retries=0",
             argv[a + 2]);
    o.max_connections = conc;
    if (llmux_client_new(&client, &o)) {
        fprintf(stderr, "llmux-bench: cannot create client\n");
        return 1;
    }
    for (i = 0; i < conc && i < total; i++)
        start_one();
    while (done < total)
        llmux_client_run(client, LLMUX_RUN_ONCE);
    llmux_client_free(client);
    llmux_global_cleanup();
    printf("llmux ok=%ld failed=%ld chars=%ld chunks=%ld\n", done - failed,
           failed, chars, chunks);
    if (stream && failed == 0 && chunks < total * 100) {
        fprintf(stderr, "llmux-bench: expected at least 100 chunks per "
                        "stream\n");
        return 1;
    }
    return failed ? 1 : 0;
}
