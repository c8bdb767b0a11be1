/*
 * tools/cli/tool_io.c: reading prompts and input (a terminal ends at one
 * Ctrl-D), and printing answers as text or JSON.
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

/* ---- input -------------------------------------------------------------- */

/*
 * Whether a read from a terminal in canonical mode that returned `got`
 * bytes of the `want` asked for, the last one `last`, ended at the end of
 * the input. The terminal returns a line at a time: a read ending without
 * a line end (newline, or the EOL characters when set) was cut short by
 * Ctrl-D pushing a partial line, which the user meant as the end. stdio
 * would read on and wait for a second Ctrl-D.
 */
static int tty_eof_after(const struct termios *t, ssize_t got, size_t want,
                         char last)
{
    unsigned char u = (unsigned char)last;
    if (last == '\n' || (size_t)got >= want)
        return 0;
#ifdef _POSIX_VDISABLE
    if (t->c_cc[VEOL] != _POSIX_VDISABLE && u == t->c_cc[VEOL])
        return 0;
#ifdef VEOL2
    if (t->c_cc[VEOL2] != _POSIX_VDISABLE && u == t->c_cc[VEOL2])
        return 0;
#endif
#else
    (void)t;
    (void)u;
#endif
    return 1;
}

/*
 * Reads all of `fd` with read(2). From a terminal the input ends at the
 * first Ctrl-D, after a partial line too. NULL on a read error (errno
 * set).
 */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = xmalloc(cap);
    struct termios t;
    int canon = isatty(fd) && tcgetattr(fd, &t) == 0 && (t.c_lflag & ICANON);
    for (;;) {
        ssize_t got;
        size_t want;
        if (cap - n < 1024) {
            if (cap > SIZE_MAX / 2) { /* a 32-bit process: no wrap-around */
                free(b);
                errno = ENOMEM;
                return NULL;
            }
            b = xrealloc(b, cap *= 2);
        }
        want = cap - n - 1;
        got = read(fd, b + n, want);
        if (got < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            free(b);
            errno = e ? e : EIO;
            return NULL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (canon && tty_eof_after(&t, got, want, b[n - 1]))
            break;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/*
 * Reads stdin, or the file `path` ("-" is stdin). From a terminal, says
 * first on stderr what is read and how to end it (`hint`: "the prompt
 * from the terminal; end it"): a program silently waiting for input
 * looks hung.
 */
char *read_input(const cli *c, const char *what, const char *hint,
                 const char *path, size_t *len)
{
    int fd = 0, e;
    char *b;
    if (path && strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY);
        if (fd < 0) {
            errorf(c, "%s: %s: %s", what, path, strerror(errno));
            return NULL;
        }
    } else if (isatty(0)) {
        fprintf(stderr, "llmux: reading %s with Ctrl-D\n", hint);
    }
    b = read_all(fd, len);
    e = errno;
    if (!b)
        errorf(c, "%s: %s: %s", what, fd == 0 ? "stdin" : path, strerror(e));
    if (fd != 0)
        close(fd);
    return b;
}

/* Removes trailing newlines (and the '\r' of CRLF). */
static void chomp(char *s, size_t *len)
{
    while (*len && (s[*len - 1] == '\n' || s[*len - 1] == '\r'))
        s[--*len] = '\0';
}

int words_are_stdin(const cli *c)
{
    return c->n_words == 0 ||
           (c->n_words == 1 && strcmp(c->words[0], "-") == 0);
}

char *join_words(const cli *c)
{
    size_t i, n = 1;
    char *s, *p;
    for (i = 0; i < c->n_words; i++)
        n += strlen(c->words[i]) + 1;
    p = s = xmalloc(n);
    for (i = 0; i < c->n_words; i++) {
        size_t l = strlen(c->words[i]);
        if (i)
            *p++ = ' ';
        memcpy(p, c->words[i], l);
        p += l;
    }
    *p = '\0';
    return s;
}

/*
 * The prompt (tokenize: the text): the words, or stdin. An empty one is a
 * usage error: sending it would only earn a provider's error, or an
 * answer to nothing. NULL after printing an error.
 */
char *get_prompt(const cli *c)
{
    const char *noun = c->cmd == CMD_TOKENIZE ? "text" : "prompt";
    size_t len;
    char *s;
    if (!words_are_stdin(c)) {
        s = join_words(c);
    } else {
        s = read_input(c, noun,
                       c->cmd == CMD_TOKENIZE
                           ? "the text from the terminal; end it"
                           : "the prompt from the terminal; end it",
                       "-", &len);
        if (s)
            chomp(s, &len);
    }
    if (s && !*s) {
        free(s);
        usage_error(c, "%s: the %s is empty", c->cmd_name, noun);
        return NULL;
    }
    return s;
}

/* ---- output ------------------------------------------------------------- */

/* The first error writing stdout (errno), 0 while all is well. */
int g_out_errno;

/* Flushes stdout and records a failure. Returns 0 when all is well. */
int flush_out(void)
{
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && !g_out_errno)
        g_out_errno = errno ? errno : EIO;
    return g_out_errno;
}

int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    run_ctx *x = ud;
    (void)req;
    if (g_out_errno)
        return 1; /* stop the transfer: nobody reads us */
    x->streamed = 1;
    if (x->c->json) {
        char *s = llmux_chunk_to_json(ch);
        if (!s)
            return 1; /* out of memory: reported as aborted */
        fputs(s, stdout);
        fputc('\n', stdout);
        llmux_free(s);
    } else {
        size_t len = 0;
        const char *t = llmux_chunk_text(ch, &len);
        if (t && len) {
            fwrite(t, 1, len, stdout);
            x->text_seen = 1;
        }
    }
    return flush_out() ? 1 : 0;
}

/* Prints one argument string on a single line (JSON whitespace only). */
static void put_one_line(const char *s)
{
    for (; *s; s++)
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, stdout);
}

static void print_tool_calls(const llmux_choice *ch)
{
    size_t i, n = llmux_choice_tool_call_count(ch);
    for (i = 0; i < n; i++) {
        const llmux_tool_call *tc = llmux_choice_tool_call(ch, i);
        if (!tc)
            continue;
        printf("tool_call %s %s ", tc->id && *tc->id ? tc->id : "-",
               tc->name && *tc->name ? tc->name : "-");
        put_one_line(tc->arguments ? tc->arguments : "{}");
        fputc('\n', stdout);
    }
}

/* A choice's logprobs, a token per line after a "logprobs:" line:
 *   -0.1250 "Mock" (alternatives: "Mock" -0.1250, "alt1" -1.1250) */
static void print_logprobs(const llmux_choice *ch)
{
    size_t i, k, n = llmux_choice_logprob_count(ch, LLMUX_LOGPROBS_CONTENT);
    if (!llmux_choice_has_logprobs(ch, LLMUX_LOGPROBS_CONTENT))
        return;
    fputs("logprobs:\n", stdout);
    for (i = 0; i < n; i++) {
        const llmux_logprob *lp =
            llmux_choice_logprob(ch, LLMUX_LOGPROBS_CONTENT, i);
        printf("%10.4f ", lp->logprob);
        put_json_str(lp->token);
        for (k = 0; k < lp->n_top; k++) {
            fputs(k ? ", " : " (alternatives: ", stdout);
            put_json_str(lp->top[k].token);
            printf(" %.4f", lp->top[k].logprob);
        }
        fputs(lp->n_top ? ")\n" : "\n", stdout);
    }
}

/* One choice of a whole answer: its text (or refusal, or tool calls),
 * then its logprobs. */
static void print_choice(const llmux_choice *ch)
{
    size_t len = 0;
    const char *t = llmux_choice_text(ch, &len);
    if (!len && llmux_choice_refusal(ch))
        t = llmux_choice_refusal(ch), len = strlen(t);
    if (len || !llmux_choice_tool_call_count(ch)) {
        fwrite(t, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (!len)
        print_tool_calls(ch);
    print_logprobs(ch);
}

/* Choices after the first, each under a "--- choice N ---" line. */
static void print_more_choices(const llmux_response *res)
{
    size_t i, n = llmux_response_choice_count(res);
    for (i = 1; i < n; i++) {
        const llmux_choice *ch = llmux_response_choice(res, i);
        printf("--- choice %d ---\n", llmux_choice_index(ch));
        print_choice(ch);
    }
}

/* Prints a successful answer (the part not already streamed). Returns 0,
 * or -1 when out of memory (reported). */
int print_answer(const cli *c, const run_ctx *x, const llmux_response *res)
{
    size_t len = 0, i, n;
    const char *t;
    if (c->json) {
        char *s;
        if (x->streamed)
            return 0; /* the chunks were the answer */
        s = llmux_response_to_json(res);
        if (!s) {
            fputs("llmux: out of memory\n", stderr);
            return -1;
        }
        fputs(s, stdout);
        fputc('\n', stdout);
        llmux_free(s);
        return 0;
    }
    switch (c->cmd) {
    case CMD_EMBED:
        n = llmux_response_embedding_count(res);
        for (i = 0; i < n; i++) {
            size_t dim = 0, k;
            const float *v = llmux_response_embedding(res, i, &dim);
            for (k = 0; v && k < dim; k++) {
                char num[32];
                if (llmux_format_number(num, sizeof num, v[k], 1) < 0)
                    strcpy(num, "null"); /* NaN or infinite */
                printf(k ? " %s" : "%s", num);
            }
            fputc('\n', stdout);
        }
        return 0;
    case CMD_MODELS:
        n = llmux_response_model_count(res);
        for (i = 0; i < n; i++) {
            const char *id = llmux_response_model_id(res, i);
            if (id)
                printf("%s\n", id);
        }
        return 0;
    case CMD_TOKENIZE:
        n = llmux_response_token_count(res);
        for (i = 0; i < n; i++) {
            long long id = -1;
            const char *tok = llmux_response_token(res, i, &id);
            printf("%lld\t%s\n", id >= 0 ? id : -1LL, tok ? tok : "");
        }
        return 0;
    case CMD_EVALUATE: {
        /* no plainer form than the result object itself: one line */
        char *s = llmux_response_to_json(res);
        if (!s) {
            fputs("llmux: out of memory\n", stderr);
            return -1;
        }
        put_one_line(s);
        fputc('\n', stdout);
        llmux_free(s);
        return 0;
    }
    case CMD_DETOKENIZE:
        t = llmux_response_text(res, &len);
        if (t && len)
            fwrite(t, 1, len, stdout);
        fputc('\n', stdout);
        return 0;
    default:
        break;
    }
    if (x->streamed) {
        /* choice 0 went out as deltas: end it as the plain output does,
         * then the other choices whole */
        const llmux_choice *c0 = llmux_response_choice(res, 0);
        if (x->text_seen || !llmux_choice_tool_call_count(c0))
            fputc('\n', stdout);
        if (!x->text_seen)
            print_tool_calls(c0);
        print_logprobs(c0);
        print_more_choices(res);
        return 0;
    }
    print_choice(llmux_response_choice(res, 0));
    print_more_choices(res);
    return 0;
}

/*
 * Prints the error of a failed request as one line:
 *   llmux: <provider>: <message> (HTTP <status>)
 * The core's transport and configuration messages already start with
 * "<provider>: "; a provider's own message does not.
 */
void print_failure(const cli *c, const llmux_request *req, int rc,
                   const llmux_response *res)
{
    const llmux_error *e = res ? llmux_response_error(res) : NULL;
    const char *msg = e && e->message && *e->message ? e->message : NULL;
    const char *prov = e && e->provider ? e->provider : NULL;
    char status[48] = "";
    char *line;
    size_t n;

    if (!prov && req)
        prov = llmux_request_provider(req);
    if (!msg)
        msg = llmux_strerror(e ? e->code : rc);
    if (e && e->http_status >= 400) {
        snprintf(status, sizeof status, "HTTP %ld", e->http_status);
        if (strstr(msg, status))
            status[0] = '\0'; /* already said */
    }
    n = (prov ? strlen(prov) : 0) + strlen(msg) + sizeof status + 8;
    line = xmalloc(n);
    line[0] = '\0';
    if (prov && *prov &&
        !(strncmp(msg, prov, strlen(prov)) == 0 && msg[strlen(prov)] == ':')) {
        strcat(line, prov);
        strcat(line, ": ");
    }
    strcat(line, msg);
    if (status[0]) {
        strcat(line, " (");
        strcat(line, status);
        strcat(line, ")");
    }
    print_error_line(c, line);
    free(line);
}

/* A failing request setter: prints why, returns the exit status. */
int setter_failed(const cli *c, const llmux_request *req, const char *what,
                  int rc)
{
    const char *m = req ? llmux_request_errmsg(req) : "";
    if (m && *m)
        errorf(c, "%s: %s", what, m);
    else if (rc == LLMUX_EINVAL)
        errorf(c, "%s: invalid value", what);
    else
        errorf(c, "%s: %s", what, llmux_strerror(rc));
    return exit_status(rc);
}

/* A bad --fallback SPEC: says which one and why. Returns the status. */
int fallback_failed(const cli *c, const llmux_request *req, size_t i, int rc)
{
    const char *m = llmux_request_errmsg(req);
    if (m && strncmp(m, "fallback: ", 10) == 0)
        m += 10; /* the flag already says it */
    if (c->n_fallbacks > 1)
        errorf(c, "--fallback #%zu: %s", i + 1,
               m && *m ? m : llmux_strerror(rc));
    else
        errorf(c, "--fallback: %s", m && *m ? m : llmux_strerror(rc));
    return exit_status(rc);
}

/* The operation a command runs. */
llmux_op cmd_op(int cmd)
{
    switch (cmd) {
    case CMD_COMPLETE:
        return LLMUX_OP_COMPLETE;
    case CMD_EMBED:
        return LLMUX_OP_EMBED;
    case CMD_MODELS:
        return LLMUX_OP_MODELS;
    case CMD_TOKENIZE:
        return LLMUX_OP_TOKENIZE;
    case CMD_DETOKENIZE:
        return LLMUX_OP_DETOKENIZE;
    case CMD_EVALUATE:
        return LLMUX_OP_EVALUATE;
    default:
        return LLMUX_OP_CHAT;
    }
}

/*
 * Checks a --fallback SPEC before anything is sent, as -m's SPEC is
 * checked: a bad string, a missing model or an unknown (or broken)
 * provider is a usage error now, not a surprise when the primary fails.
 * Returns 0, or an exit status after printing why.
 */
int check_fallback(const cli *c, size_t i)
{
    llmux_request *t = NULL;
    llmux_provider_info info;
    char err[1024] = "";
    const char *prov, *model;
    int rc = llmux_request_new(&t, cmd_op(c->cmd), c->fallbacks[i]);
    if (rc) {
        snprintf(err, sizeof err, "%s",
                 t && *llmux_request_errmsg(t) ? llmux_request_errmsg(t)
                                               : llmux_strerror(rc));
    } else {
        prov = llmux_request_provider(t);
        model = llmux_request_model(t);
        if (!prov || !*prov) {
            rc = LLMUX_ECONFIG;
            snprintf(err, sizeof err, "no provider given");
        } else if (!model || !*model) {
            rc = LLMUX_ECONFIG;
            snprintf(err, sizeof err,
                     "no model given: use \"%s/<model>\" in the config "
                     "string",
                     prov);
        } else if ((rc = llmux_provider_probe(prov, NULL, &info, err,
                                              sizeof err)) &&
                   !err[0]) {
            snprintf(err, sizeof err, "%s: %s", prov, llmux_strerror(rc));
        }
    }
    llmux_request_free(t);
    if (!rc)
        return 0;
    if (c->n_fallbacks > 1)
        errorf(c, "--fallback #%zu: %s", i + 1, err);
    else
        errorf(c, "--fallback: %s", err);
    return exit_status(rc);
}

/* Sets a seconds-valued core option ("timeout"...) from milliseconds. */
int set_seconds_option(llmux_request *req, const char *key, long ms)
{
    char v[48];
    snprintf(v, sizeof v, "%ld.%03ld", ms / 1000, ms % 1000);
    return llmux_request_set_option(req, key, v);
}
