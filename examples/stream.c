/*
 * examples/stream.c: streaming on the caller's own libuv loop.
 *   stream "openai/gpt-4o-mini" "Tell me a short story."
 * Prints deltas as they arrive, then the usage.
 */
#define _POSIX_C_SOURCE 200809L /* for <uv.h> under -std=c99 */
#include <stdio.h>

#include <llmux/llmux.h>
#include <uv.h>

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    size_t len;
    const char *text = llmux_chunk_text(ch, &len);
    (void)req;
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0; /* non-zero would stop the stream */
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    (void)req;
    *(int *)ud = status;
    if (status == 0) {
        const llmux_usage *u = llmux_response_usage(res);
        printf("\n[%s, %ld prompt + %ld completion tokens]\n",
               llmux_finish_name(llmux_response_finish(res)), u->prompt_tokens,
               u->completion_tokens);
    } else {
        fprintf(stderr, "\nerror: %s\n", llmux_response_error(res)->message);
    }
}

static void on_closed(void *ud)
{
    (void)ud;
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    llmux_client *client;
    llmux_client_options opts = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_request *req;
    int status = -1;

    uv_loop_init(&loop);
    opts.loop = &loop; /* borrowed: llmux never runs or closes it */
    if (llmux_client_new(&client, &opts) != 0)
        return 1;
    llmux_request_new(&req, LLMUX_OP_CHAT,
                      argc > 1 ? argv[1] : "openai/gpt-4o-mini");
    llmux_request_add_message(req, LLMUX_ROLE_USER,
                              argc > 2 ? argv[2] : "Count to five.");
    llmux_request_set_stream(req, 1);
    if (llmux_submit(client, req, on_chunk, on_done, &status) != 0) {
        fprintf(stderr, "error: %s\n", llmux_request_errmsg(req));
        llmux_request_free(req); /* still ours when submit fails */
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* returns when the request is done */
    llmux_client_close(client, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* lets the client release its handles */
    uv_loop_close(&loop);
    return status == 0 ? 0 : 1;
}
