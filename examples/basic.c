/* examples/basic.c: one chat completion, blocking. The README's example.
 *   basic "openai/gpt-4o-mini" "Why is the sky blue?" */
#include <stdio.h>
#include <llmux/llmux.h>

int main(int argc, char **argv)
{
    llmux_request *req;
    llmux_response *res = NULL;
    const char *spec = argc > 1 ? argv[1] : "openai/gpt-4o-mini";
    int rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
    if (rc == 0)
        rc = llmux_request_add_message(req, LLMUX_ROLE_USER,
                                       argc > 2 ? argv[2] : "Say hello.");
    if (rc == 0)
        rc = llmux_run(req, NULL, NULL, NULL, &res); /* private loop */
    if (rc == 0)
        printf("%s\n", llmux_response_text(res, NULL));
    else
        fprintf(stderr, "error: %s\n",
                res ? llmux_response_error(res)->message
                    : llmux_request_errmsg(req));
    llmux_response_free(res);
    llmux_request_free(req);
    return rc == 0 ? 0 : 1;
}
