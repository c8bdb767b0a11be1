/*
 * tools/cli/tool_batch.c: batch: a chat completion per input line, run
 * concurrently, a JSON line each.
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

/* ---- batch -------------------------------------------------------------- */

/* One prompt of a batch. */
typedef struct batch_item {
    long line;           /* its line in the input, from 1 */
    int status;          /* 1 until it finished */
    llmux_response *res; /* retained until printed */
    char *msg;           /* why a --jsonl line was refused (owned) */
    int printed;
} batch_item;

typedef struct batch_run {
    const cli *c;
    batch_item *items;
    size_t n;
    size_t *map; /* the batch's request j is items[map[j]] */
    size_t next; /* input order: the first not printed yet */
    int done;
} batch_run;

/* Prints ,"name":"value" with the command line's secrets masked, when
 * value is set. */
static void put_error_field(const cli *c, const char *name, const char *value)
{
    char *v;
    if (!value || !*value)
        return;
    v = scrubbed(c, value);
    printf(",\"%s\":", name);
    put_json_str(v);
    free(v);
}

/* Prints the result line of prompt i and lets its response go. */
static void print_item(batch_run *r, size_t i)
{
    batch_item *it = &r->items[i];
    const llmux_error *e = it->res ? llmux_response_error(it->res) : NULL;
    printf("{\"index\":%zu,\"line\":%ld,", i, it->line);
    if (it->status == 0 && it->res && !e) {
        char *j = llmux_response_to_json(it->res);
        if (!j)
            die_oom();
        fputs("\"status\":\"ok\",", stdout);
        if (llmux_response_fallback(it->res) > 0)
            printf("\"fallback\":%d,", llmux_response_fallback(it->res));
        printf("\"response\":%s}\n", j);
        llmux_free(j);
    } else {
        int code = it->status < 0 ? it->status : e ? e->code : LLMUX_ECANCELED;
        char *msg = scrubbed(r->c, it->msg ? it->msg
                                   : e && e->message && *e->message
                                       ? e->message
                                       : llmux_strerror(code));
        printf("\"status\":\"error\",\"error\":{\"code\":\"%s\",\"message\":",
               llmux_err_name(code));
        put_json_str(msg);
        free(msg);
        if (e && e->http_status)
            printf(",\"http_status\":%ld", e->http_status);
        if (e && e->provider && *e->provider) {
            fputs(",\"provider\":", stdout);
            put_json_str(e->provider);
        }
        put_error_field(r->c, "type", e ? e->type : NULL);
        put_error_field(r->c, "provider_code", e ? e->provider_code : NULL);
        put_error_field(r->c, "param", e ? e->param : NULL);
        if (it->res)
            printf(",\"attempts\":%d", llmux_response_attempts(it->res));
        fputs("}}\n", stdout);
    }
    flush_out(); /* a line at a time, for whoever reads the pipe */
    llmux_response_free(it->res);
    it->res = NULL;
    free(it->msg);
    it->msg = NULL;
    it->printed = 1;
}

/* Prints, in input order, what finished and was not printed yet. */
static void print_ready(batch_run *r)
{
    while (r->next < r->n && r->items[r->next].status != 1)
        print_item(r, r->next++);
}

static void on_batch_item(llmux_batch *b, size_t j, int status,
                          llmux_response *res, void *ud)
{
    batch_run *r = ud;
    size_t i = r->map[j];
    (void)b;
    r->items[i].status = status;
    r->items[i].res = res ? llmux_response_retain(res) : NULL;
    if (r->c->as_completed)
        print_item(r, i);
    else
        print_ready(r);
}

/* Prints what is left in input order: requests that never ran (cancelled
 * by --fail-fast) and, in input order, those waiting for them. */
static void on_batch_done(llmux_batch *b, int status, void *ud)
{
    batch_run *r = ud;
    size_t i, j;
    (void)status;
    for (j = 0; j < llmux_batch_size(b); j++) {
        batch_item *it = &r->items[r->map[j]];
        if (it->status == 1) {
            llmux_response *res = llmux_batch_response(b, j);
            int st = llmux_batch_status(b, j);
            it->status = st == 1 ? LLMUX_ECANCELED : st;
            it->res = res ? llmux_response_retain(res) : NULL;
        }
    }
    for (i = 0; i < r->n; i++)
        if (!r->items[i].printed)
            print_item(r, i);
    r->next = r->n;
    r->done = 1;
}

/* Splits the input into prompts, one per non-empty line. */
static size_t batch_prompts(char *text, char ***prompts, long **lines)
{
    size_t n = 0, cap = 0;
    long line = 0;
    char *p = text, *nl;
    *prompts = NULL;
    *lines = NULL;
    for (; *p; p = nl) {
        size_t len;
        line++;
        nl = strchr(p, '\n');
        if (nl)
            *nl++ = '\0';
        else
            nl = p + strlen(p);
        len = strlen(p);
        if (len && p[len - 1] == '\r')
            p[--len] = '\0';
        if (!len)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *prompts = xrealloc(*prompts, cap * sizeof **prompts);
            *lines = xrealloc(*lines, cap * sizeof **lines);
        }
        (*prompts)[n] = p;
        (*lines)[n++] = line;
    }
    return n;
}

int run_batch(cli *c)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_batch_options bo = LLMUX_BATCH_OPTIONS_INIT;
    llmux_client *cl = NULL;
    llmux_request **reqs = NULL;
    batch_run r;
    char *text, **prompts = NULL;
    long *lines = NULL;
    size_t len, n, i, m = 0, made = 0;
    int rc, st = 0;

    if (!c->help && pbatch_word(c))
        return run_pbatch(c); /* the providers' Batch APIs */
    if (c->provider || c->output || c->job_errors || c->json)
        return usage_error(c,
                           "%s is an option of batch "
                           "submit/status/fetch/cancel",
                           c->provider ? "--provider"
                           : c->output ? "-o"
                           : c->json   ? "--json"
                                       : "--errors");
    if (c->help) {
        print_cmd_help(cmd_def_of(c->cmd));
        return 0;
    }
    if (!c->spec && !c->jsonl)
        return usage_error(c, "batch: -m SPEC is required");
    if (c->n_words > 1)
        return usage_error(c, "batch: one input FILE at most, got \"%s\" too",
                           c->words[1]);
    note_secrets(c);
    text = read_input(c, "input",
                      c->jsonl ? "the requests from the terminal, one per "
                                 "line; end them"
                               : "the prompts from the terminal, one per "
                                 "line; end them",
                      c->n_words ? c->words[0] : "-", &len);
    if (!text)
        return EXIT_USAGE;
    if (memchr(text, '\0', len)) {
        errorf(c, "input: contains a NUL byte");
        free(text);
        return EXIT_USAGE;
    }
    n = batch_prompts(text, &prompts, &lines);
    memset(&r, 0, sizeof r);
    r.c = c;
    r.n = n;
    if (n) {
        reqs = xmalloc(n * sizeof *reqs);
        r.items = xmalloc(n * sizeof *r.items);
        r.map = xmalloc(n * sizeof *r.map);
    }
    for (i = 0; i < n; i++) {
        llmux_request *req = NULL;
        batch_item *it = &r.items[i];
        it->line = lines[i];
        it->status = 1;
        it->res = NULL;
        it->msg = NULL;
        it->printed = 0;
        if (c->jsonl) {
            /* a bad line is that line's error, not the batch's */
            /* lines often come from other programs: a line's "model"
             * names a provider and model, never endpoints or keys */
            rc = llmux_request_new_json(&req, c->spec, prompts[i],
                                        strlen(prompts[i]));
            if (rc) {
                const char *em = req ? llmux_request_errmsg(req) : "";
                size_t ml;
                em = em && *em ? em : llmux_strerror(rc);
                ml = strlen(em) + 1;
                it->msg = xmalloc(ml);
                memcpy(it->msg, em, ml);
                it->status = rc;
                llmux_request_free(req);
                continue;
            }
        } else if ((rc = llmux_request_new(&req, LLMUX_OP_CHAT, c->spec))) {
            const char *em = req ? llmux_request_errmsg(req) : "";
            errorf(c, "%s", em && *em ? em : llmux_strerror(rc));
            llmux_request_free(req);
            st = exit_status(rc);
            break;
        }
        reqs[m] = req;
        r.map[m++] = i;
        made = m;
        if ((st = apply_opts(c, req)))
            break;
        if (!c->jsonl && (rc = llmux_request_add_message(req, LLMUX_ROLE_USER,
                                                         prompts[i]))) {
            st = setter_failed(c, req, "input", rc);
            break;
        }
    }
    if (!st && n) {
        /* lines refused up front: printed first with --as-completed, in
         * their place otherwise */
        for (i = 0; c->as_completed && i < n; i++)
            if (r.items[i].status != 1)
                print_item(&r, i);
        if (!c->as_completed)
            print_ready(&r);
    }
    if (!st && m) {
        o.requests_per_minute = (double)c->rpm;
        o.tokens_per_minute = (double)c->tpm;
        bo.concurrency = c->concurrency ? (size_t)c->concurrency : 8;
        bo.fail_fast = c->fail_fast;
        cli_credentials(c, &o);
        if ((rc = llmux_client_new(&cl, &o)) ||
            (rc = llmux_as_completed(NULL, cl, reqs, m, &bo, on_batch_item,
                                     on_batch_done, &r))) {
            errorf(c, "batch: %s", llmux_strerror(rc));
            st = exit_status(rc);
        } else {
            made = 0; /* the batch owns them now */
            while (!r.done)
                llmux_client_run(cl, LLMUX_RUN_ONCE);
        }
        llmux_client_free(cl);
    }
    /* the status of the first failure in input order */
    for (i = 0; i < n && !st; i++)
        st = r.items[i].status == 1 ? 0 : exit_status(r.items[i].status);
    for (i = 0; i < made; i++)
        llmux_request_free(reqs[i]);
    for (i = 0; i < n; i++)
        free(r.items[i].msg);
    free(reqs);
    free(r.map);
    free(r.items);
    free(prompts);
    free(lines);
    free(text);
    return st;
}
