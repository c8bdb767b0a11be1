/*
 * tools/cli/llmux.c: the `llmux` command-line tool.
 *
 * A thin client of the public API (the include/llmux headers only; json-c
 * writes `providers --json`): it parses the command line, builds one
 * request, runs it with the blocking llmux_run() and prints the answer as
 * text or as OpenAI-shaped JSON; `batch` (tool_batch.c) reads input lines
 * as capacity frees up, submits a request per line on a private client
 * and loop, and writes a JSON line per request as each ends;
 * `batch submit|status|fetch|cancel` (tool_pbatch.c) drive a provider's
 * own Batch API. Its output formats and exit statuses are a
 * contract that scripts depend on; the help texts below (`llmux --help`,
 * `llmux COMMAND --help`) and docs/man/llmux.1.scd are their reference.
 *
 * Locale: the program never calls setlocale(), so it stays in the "C"
 * locale; numbers are parsed and printed with '.' whatever LC_NUMERIC
 * says in the environment.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include <llmux/llmux.h>

#include "cli.h"

/* ---- main --------------------------------------------------------------- */

/*
 * Flushes stdout at exit. A closed pipe (`| head`) is not an error: the
 * reader has what it wanted. Any other write error is (exit 3).
 */
static int finish_output(int st)
{
    flush_out();
    if (!g_out_errno || g_out_errno == EPIPE)
        return st;
    fprintf(stderr, "llmux: write error: %s\n", strerror(g_out_errno));
    return st ? st : EXIT_TRANSPORT;
}

int main(int argc, char **argv)
{
    const cmd_def *cd;
    cli c;
    size_t i;
    int st;

    /* `llmux ... | head` must end quietly, not by SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    memset(&c, 0, sizeof c);

    if (argc < 2)
        return usage_error(NULL, "%s", "no command given");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        /* `llmux help chat` is `llmux chat --help` */
        if (argc > 3)
            return usage_error(NULL,
                               "help: one COMMAND at most, got \"%s\" "
                               "too",
                               argv[3]);
        if (argc == 3 && !(cd = find_cmd(argv[2])))
            return usage_error(NULL, "help: unknown command \"%s\"", argv[2]);
        if (argc == 3)
            print_cmd_help(cd);
        else
            print_overview();
        return finish_output(0);
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
        strcmp(argv[1], "version") == 0) {
        /* the library's version: the one actually linked at run time */
        printf("llmux %s\n", llmux_version_string());
        return finish_output(0);
    }
    if (!(cd = find_cmd(argv[1]))) {
        if (argv[1][0] == '-')
            return usage_error(NULL,
                               "unknown option \"%s\" (a COMMAND comes "
                               "first)",
                               argv[1]);
        return usage_error(NULL, "unknown command \"%s\"", argv[1]);
    }
    c.cmd = cd->cmd;
    c.cmd_name = cd->name;

    st = parse_args(&c, argc, argv, 2);
    if (st == 0)
        st = c.cmd == CMD_BATCH       ? run_batch(&c)
             : c.cmd == CMD_PROVIDERS ? run_providers(&c)
             : c.cmd == CMD_SERVE     ? run_serve(&c)
                                      : run_request(&c);
    free(c.words);
    free((void *)c.stops);
    free((void *)c.fallbacks);
    free((void *)c.fields);
    free((void *)c.headers);
    free((void *)c.images);
    free(c.secret2);
    for (i = 0; i < c.n_cmd_secrets; i++) {
        memset(c.cmd_secrets[i], 0, strlen(c.cmd_secrets[i]));
        free(c.cmd_secrets[i]);
    }
    free(c.cmd_secrets);
    if (c.fb_secrets) {
        for (i = 0; i < c.n_fallbacks; i++)
            free(c.fb_secrets[i]);
        free(c.fb_secrets);
    }
    llmux_global_cleanup();
    return finish_output(st);
}
