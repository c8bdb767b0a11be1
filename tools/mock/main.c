/*
 * main.c: the llmux-mock program, a thin command-line wrapper around the
 * in-process mock server (llmux_mock.h). It prints one "listening" line on
 * stdout once the socket listens, optionally writes the port to a file,
 * and exits cleanly (every handle closed, loop closed) on SIGINT/SIGTERM.
 */
#include "llmux_mock.h"
#include "mock_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uv_signal_t sig_int, sig_term;
static llmux_mock *the_mock;

static void usage(FILE *f)
{
    fputs("usage: llmux-mock [--host H] [--port N] [--latency MS]\n"
          "                  [--chunk-delay MS] [--accept-delay MS]\n"
          "                  [--backlog N] [--fault SPEC]...\n"
          "                  [--fault-all SPEC] [--port-file FILE] "
          "[--quiet]\n"
          "                  [--batch-seconds S]\n"
          "Serves OpenAI (any path), Mistral (/mistral/v1/...), Ollama\n"
          "(/ollama/api/...), Aleph Alpha (/aleph/...) and Azure OpenAI\n"
          "(/openai/...) with deterministic answers.\n"
          "SPEC is ';'-separated directives, e.g. "
          "'status=429;retry_after=1'.\n"
          "--batch-seconds: how long a batch job runs (default 0.5).\n",
          f);
}

/* Seconds with a fraction ("0.5"), 0.001 to 3600, as whole ms. */
static int parse_seconds(const char *opt, const char *v, int *ms)
{
    char *end;
    double d;
    errno = 0;
    d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= 0.001 && d <= 3600)) {
        fprintf(stderr,
                "llmux-mock: %s needs seconds from 0.001 to 3600, "
                "not '%s'\n",
                opt, v);
        return -1;
    }
    *ms = (int)(d * 1000 + 0.5);
    return 0;
}

static int parse_int(const char *opt, const char *v, int max, int *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > max) {
        fprintf(stderr, "llmux-mock: %s: bad number '%s'\n", opt, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int check_spec(const char *spec)
{
    mock_fault f;
    char err[160];

    if (llmux__mock_fault_parse(&f, spec, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmux-mock: bad fault spec '%s': %s\n", spec, err);
        return -1;
    }
    llmux__mock_fault_clear(&f);
    return 0;
}

/* Writes "PORT\n" to `path` through a temporary file and a rename, so a
 * reader never sees a half-written file. */
static int write_port_file(const char *path, int port)
{
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    FILE *f;
    int ok;

    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) {
        free(tmp);
        return -1;
    }
    ok = fprintf(f, "%d\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok)
        remove(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    if (!uv_is_closing((uv_handle_t *)&sig_int)) {
        uv_close((uv_handle_t *)&sig_int, NULL);
        uv_close((uv_handle_t *)&sig_term, NULL);
    }
    llmux_mock_close(the_mock, NULL, NULL);
}

int main(int argc, char **argv)
{
    llmux_mock_options o = LLMUX_MOCK_OPTIONS_INIT;
    const char *fault_all = NULL, *port_file = NULL;
    const char **faults;
    size_t n_faults = 0, i;
    uv_loop_t loop;
    int a, rc, status = 0;

    faults = calloc((size_t)argc + 1, sizeof(*faults));
    if (!faults)
        return 1;
    for (a = 1; a < argc; a++) {
        const char *arg = argv[a], *val = NULL;
        int takes = strcmp(arg, "--host") == 0 || strcmp(arg, "--port") == 0 ||
                    strcmp(arg, "--latency") == 0 ||
                    strcmp(arg, "--chunk-delay") == 0 ||
                    strcmp(arg, "--accept-delay") == 0 ||
                    strcmp(arg, "--backlog") == 0 ||
                    strcmp(arg, "--fault") == 0 ||
                    strcmp(arg, "--fault-all") == 0 ||
                    strcmp(arg, "--port-file") == 0 ||
                    strcmp(arg, "--batch-seconds") == 0;
        rc = 0;
        if (takes) {
            if (a + 1 >= argc) {
                fprintf(stderr, "llmux-mock: %s needs a value\n", arg);
                free(faults);
                return 2;
            }
            val = argv[++a];
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            free(faults);
            return 0;
        } else if (strcmp(arg, "--quiet") == 0) {
            o.quiet = 1;
        } else if (strcmp(arg, "--host") == 0) {
            o.host = val;
        } else if (strcmp(arg, "--port") == 0) {
            rc = parse_int(arg, val, 65535, &o.port);
        } else if (strcmp(arg, "--latency") == 0) {
            rc = parse_int(arg, val, 3600000, &o.latency_ms);
        } else if (strcmp(arg, "--chunk-delay") == 0) {
            rc = parse_int(arg, val, 3600000, &o.chunk_delay_ms);
        } else if (strcmp(arg, "--accept-delay") == 0) {
            rc = parse_int(arg, val, 3600000, &o.accept_delay_ms);
        } else if (strcmp(arg, "--backlog") == 0) {
            rc = parse_int(arg, val, 65535, &o.backlog);
        } else if (strcmp(arg, "--fault") == 0) {
            rc = check_spec(val);
            faults[n_faults++] = val;
        } else if (strcmp(arg, "--fault-all") == 0) {
            rc = check_spec(val);
            fault_all = val;
        } else if (strcmp(arg, "--port-file") == 0) {
            port_file = val;
        } else if (strcmp(arg, "--batch-seconds") == 0) {
            rc = parse_seconds(arg, val, &o.batch_ms);
        } else {
            fprintf(stderr, "llmux-mock: unknown argument '%s'\n", arg);
            usage(stderr);
            rc = -1;
        }
        if (rc < 0) {
            free(faults);
            return 2;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&loop) != 0) {
        free(faults);
        return 1;
    }
    rc = llmux_mock_start(&the_mock, &loop, &o);
    if (rc < 0) {
        fprintf(stderr, "llmux-mock: cannot listen on %s:%d: %s\n",
                o.host ? o.host : "127.0.0.1", o.port, uv_strerror(rc));
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        free(faults);
        return 1;
    }
    for (i = 0; i < n_faults; i++)
        llmux_mock_push_fault(the_mock, faults[i]);
    free(faults);
    if (fault_all)
        llmux_mock_set_fault_all(the_mock, fault_all);
    if (port_file && write_port_file(port_file, llmux_mock_port(the_mock))) {
        fprintf(stderr, "llmux-mock: cannot write %s\n", port_file);
        status = 1;
        llmux_mock_close(the_mock, NULL, NULL);
    } else {
        const char *host = o.host ? o.host : "127.0.0.1";
        int v6 = strchr(host, ':') != NULL;
        uv_signal_init(&loop, &sig_int);
        uv_signal_init(&loop, &sig_term);
        uv_signal_start(&sig_int, on_signal, SIGINT);
        uv_signal_start(&sig_term, on_signal, SIGTERM);
        printf("llmux-mock listening on http://%s%s%s:%d\n", v6 ? "[" : "",
               host, v6 ? "]" : "", llmux_mock_port(the_mock));
        fflush(stdout);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "llmux-mock: loop still busy at exit\n");
        status = 1;
    }
    return status;
}
