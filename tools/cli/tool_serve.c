/*
 * tools/cli/tool_serve.c: `llmux serve`, the OpenAI-compatible gateway.
 * The server is tools/serve's llmux_serve_main(), linked in when the build
 * found libh2o and libyaml; llmux-serve is the same code as a program of
 * its own.
 */
#include <stdio.h>

#include "cli.h"

#ifdef LLMUX_HAVE_SERVE
int llmux_serve_main(int argc, char **argv);
#endif

int run_serve(cli *c)
{
    if (c->help) {
        print_cmd_help(cmd_def_of(c->cmd));
        return 0;
    }
    if (c->n_words)
        return usage_error(c, "serve: unexpected argument \"%s\"", c->words[0]);
    if (!c->config)
        return usage_error(c, "serve: --config FILE is required");
#ifdef LLMUX_HAVE_SERVE
    {
        char *argv[8];
        int n = 0;
        argv[n++] = "llmux serve";
        argv[n++] = "--config";
        argv[n++] = (char *)c->config;
        if (c->listen) {
            argv[n++] = "--listen";
            argv[n++] = (char *)c->listen;
        }
        if (c->port_file) {
            argv[n++] = "--port-file";
            argv[n++] = (char *)c->port_file;
        }
        argv[n] = NULL;
        fflush(stdout);
        return llmux_serve_main(n, argv);
    }
#else
    fputs("llmux: serve: this llmux was built without the gateway (it "
          "needs libh2o and libyaml)\n",
          stderr);
    return EXIT_USAGE;
#endif
}
