/*
 * tools/cli/tool_pbatch.c: `llmux batch submit|status|fetch|cancel`, the
 * providers' own Batch APIs (OpenAI's batches, Mistral's batch jobs)
 * through llmux/jobs.h. An id alone does not say which provider holds it,
 * so every subcommand takes the provider: -m SPEC or --provider NAME (the
 * config string gives base_url, the key and the other options).
 * `llmux batch` without these words is the local runner (tool_batch.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

enum { P_SUBMIT = 1, P_STATUS, P_FETCH, P_CANCEL };

/* What the job's callback left for the command. */
typedef struct pjob {
    const cli *c;
    int sub;
    int done, code, st;
} pjob;

static int sub_of(const char *w)
{
    return strcmp(w, "submit") == 0   ? P_SUBMIT
           : strcmp(w, "status") == 0 ? P_STATUS
           : strcmp(w, "fetch") == 0  ? P_FETCH
           : strcmp(w, "cancel") == 0 ? P_CANCEL
                                      : 0;
}

int pbatch_word(const cli *c)
{
    return c->n_words && sub_of(c->words[0]);
}

static void put_field(const char *key, const char *v)
{
    printf("%s: %s\n", key, v && *v ? v : "-");
}

static void print_job(const llmux_job *j)
{
    int64_t total, done, failed;
    llmux_job_state s = llmux_job_get_state(j);
    put_field("id", llmux_job_id(j));
    printf("status: %s (%s)\n", llmux_job_state_name(s),
           llmux_job_state_raw(j) ? llmux_job_state_raw(j) : "?");
    llmux_job_counts(j, &total, &done, &failed);
    if (total >= 0)
        printf("requests: %" PRId64 " total, %" PRId64 " completed, %" PRId64
               " failed\n",
               total, done < 0 ? 0 : done, failed < 0 ? 0 : failed);
    put_field("model", llmux_job_model(j));
    put_field("input_file", llmux_job_input_file(j));
    put_field("output_file", llmux_job_output_file(j));
    put_field("error_file", llmux_job_error_file(j));
    if (llmux_job_errors(j))
        put_field("errors", llmux_job_errors(j));
    if (llmux_job_created_at(j))
        printf("created_at: %" PRId64 "\n", llmux_job_created_at(j));
    if (llmux_job_finished_at(j))
        printf("finished_at: %" PRId64 "\n", llmux_job_finished_at(j));
}

static json_object *jstr_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static json_object *jcount(int64_t n)
{
    return n >= 0 ? json_object_new_int64(n) : NULL;
}

/* --json: the job as one object on one line. */
static void print_job_json(const llmux_job *j)
{
    json_object *o = json_object_new_object(), *rc = json_object_new_object();
    int64_t total, done, failed;
    llmux_job_counts(j, &total, &done, &failed);
    json_object_object_add(o, "id", jstr_or_null(llmux_job_id(j)));
    json_object_object_add(
        o, "status",
        json_object_new_string(llmux_job_state_name(llmux_job_get_state(j))));
    json_object_object_add(o, "status_raw",
                           jstr_or_null(llmux_job_state_raw(j)));
    json_object_object_add(rc, "total", jcount(total));
    json_object_object_add(rc, "completed", jcount(done));
    json_object_object_add(rc, "failed", jcount(failed));
    json_object_object_add(o, "request_counts", rc);
    json_object_object_add(o, "model", jstr_or_null(llmux_job_model(j)));
    json_object_object_add(o, "input_file_id",
                           jstr_or_null(llmux_job_input_file(j)));
    json_object_object_add(o, "output_file_id",
                           jstr_or_null(llmux_job_output_file(j)));
    json_object_object_add(o, "error_file_id",
                           jstr_or_null(llmux_job_error_file(j)));
    json_object_object_add(o, "errors", jstr_or_null(llmux_job_errors(j)));
    json_object_object_add(o, "created_at",
                           llmux_job_created_at(j)
                               ? json_object_new_int64(llmux_job_created_at(j))
                               : NULL);
    json_object_object_add(o, "finished_at",
                           llmux_job_finished_at(j)
                               ? json_object_new_int64(llmux_job_finished_at(j))
                               : NULL);
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

/* Writes the results to -o FILE (or stdout), whole, and says where. */
static int write_results(const cli *c, const char *data, size_t len)
{
    const char *path = c->output;
    FILE *f = path ? fopen(path, "wb") : stdout;
    int bad;
    if (!f) {
        errorf(c, "batch fetch: %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    bad = len && fwrite(data, 1, len, f) != len;
    bad |= path ? fclose(f) != 0 : fflush(f) != 0;
    if (bad) {
        errorf(c, "batch fetch: cannot write %s", path ? path : "stdout");
        return EXIT_TRANSPORT;
    }
    return 0;
}

static void on_job(int code, const llmux_job *job, const char *message,
                   void *ud)
{
    pjob *p = ud;
    const cli *c = p->c;
    p->done = 1;
    p->code = code;
    if (code) {
        errorf(c, "batch %s: %s", c->words[0], message ? message : "failed");
        if (code == LLMUX_ENOTSUP)
            errorf(c, "the local runner sends the same requests one by one: "
                      "llmux batch -m SPEC FILE");
        p->st = exit_status(code);
        return;
    }
    switch (p->sub) {
    case P_SUBMIT:
        /* the id alone on stdout, for scripts; the whole job with -v */
        if (c->json)
            print_job_json(job);
        else if (c->verbose)
            print_job(job);
        else
            printf("%s\n", llmux_job_id(job) ? llmux_job_id(job) : "");
        break;
    case P_FETCH: {
        size_t len;
        const char *data = llmux_job_content(job, &len);
        p->st = write_results(c, data ? data : "", len);
        if (!p->st && c->verbose)
            errorf(c, "batch fetch: %zu bytes of %s", len,
                   c->job_errors ? "errors" : "results");
        return;
    }
    default:
        if (c->json)
            print_job_json(job);
        else
            print_job(job);
        break;
    }
}

/* The config string: the SPEC (or provider) with --base-url and --api-key
 * added. NULL after a message. */
static char *job_config(const cli *c)
{
    const char *base = c->spec ? c->spec : c->provider;
    size_t n = strlen(base) + 32 + (c->base_url ? strlen(c->base_url) : 0) +
               (c->api_key ? strlen(c->api_key) : 0);
    char *s;
    if ((c->base_url && strchr(c->base_url, ';')) ||
        (c->api_key && strchr(c->api_key, ';'))) {
        errorf(c, "batch: %s may not hold ';'",
               c->base_url && strchr(c->base_url, ';') ? "--base-url"
                                                       : "--api-key");
        return NULL;
    }
    s = xmalloc(n);
    snprintf(s, n, "%s%s%s%s%s", base, c->base_url ? ";base_url=" : "",
             c->base_url ? c->base_url : "", c->api_key ? ";api_key=" : "",
             c->api_key ? c->api_key : "");
    return s;
}

int run_pbatch(cli *c)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *cl = NULL;
    pjob p;
    char *cfg, *text = NULL;
    size_t len = 0;
    int sub = sub_of(c->words[0]), rc;

    if (c->spec && c->provider)
        return usage_error(c,
                           "batch %s: give -m SPEC or --provider NAME, "
                           "not both",
                           c->words[0]);
    if (!c->spec && !c->provider)
        return usage_error(c,
                           "batch %s: the provider is required (-m SPEC or "
                           "--provider NAME): an id does not say which",
                           c->words[0]);
    if (c->n_words != 2)
        return usage_error(c, "batch %s: one %s, got %zu arguments",
                           c->words[0], sub == P_SUBMIT ? "FILE" : "ID",
                           c->n_words - 1);
    if (c->job_errors && sub != P_FETCH)
        return usage_error(c, "--errors is an option of \"batch fetch\"");
    if (c->json && sub == P_FETCH)
        return usage_error(c, "batch fetch: --json: the results are JSON "
                              "lines already");
    if (c->output && sub != P_FETCH)
        return usage_error(c, "-o is an option of \"batch fetch\"");
    note_secrets(c);
    if (sub == P_SUBMIT) {
        text = read_input(c, "input",
                          "the OpenAI Batch lines from the terminal; end them",
                          c->words[1], &len);
        if (!text)
            return EXIT_USAGE;
    }
    if (!(cfg = job_config(c))) {
        free(text);
        return EXIT_USAGE;
    }
    memset(&p, 0, sizeof p);
    p.c = c;
    p.sub = sub;
    cli_credentials(c, &o);
    rc = llmux_client_new(&cl, &o);
    if (!rc) {
        switch (sub) {
        case P_SUBMIT:
            rc = llmux_job_submit(cl, cfg, text, len, NULL, on_job, &p);
            break;
        case P_STATUS:
            rc = llmux_job_status(cl, cfg, c->words[1], on_job, &p);
            break;
        case P_CANCEL:
            rc = llmux_job_cancel(cl, cfg, c->words[1], on_job, &p);
            break;
        default:
            rc = llmux_job_fetch(cl, cfg, c->words[1],
                                 c->job_errors ? LLMUX_JOB_ERRORS
                                               : LLMUX_JOB_OUTPUT,
                                 on_job, &p);
            break;
        }
    }
    if (rc) {
        errorf(c, "batch %s: %s", c->words[0], llmux_strerror(rc));
        p.st = exit_status(rc);
    } else {
        while (!p.done)
            llmux_client_run(cl, LLMUX_RUN_ONCE);
    }
    llmux_client_free(cl);
    free(cfg);
    free(text);
    if (!p.st && flush_out())
        p.st = EXIT_TRANSPORT;
    return p.st;
}
