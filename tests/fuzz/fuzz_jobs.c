/*
 * tests/fuzz/fuzz_jobs.c: one plugin's provider batch job hooks
 * (job_encode, job_decode) through llmux__prepare and
 * llmux__decode_answer, as llmux_job_* drives them. Built once per plugin
 * with a batch API (fuzz_jobs_openai, fuzz_jobs_mistral) with its sources
 * compiled in and registered, as fuzz_plugin.c does.
 *
 * What reaches these hooks from outside: the batch input file (OpenAI
 * Batch lines, which Mistral's upload translates line by line), the
 * caller's metadata JSON and job or file ids (which become URL paths),
 * and the provider's answers (batch and job objects, file uploads, result
 * files that Mistral's are rewritten into OpenAI's output lines).
 *
 * Input: byte 0 picks the step (1 + byte % 5: upload, create, status,
 * cancel, content); byte 1 the mode: bit 0 gives a create step the rest
 * as its metadata JSON, bit 1 gives the id-taking steps the rest (up to
 * 128 bytes) as their id. The rest is also the upload's input file and,
 * in every case, the step's 2xx answer (or, with bit 2, an error answer
 * of status 400 + byte 1 >> 4).
 *
 * Checked: an encoded step's URL is the base URL and a path of
 * segments of id characters, none empty, "." or ".." (an id never
 * reaches another path, a query or a fragment), a given id one segment
 * of it; a decode's code agrees with the recorded error; the job's
 * counts are never below -1 and its fields read back; llmux's own decode
 * errors are one line.
 */
#include <string.h>

#include "fuzz_register.h"

#ifndef FUZZ_PROVIDER
#define FUZZ_PROVIDER "openai"
#endif
#define BASE "http://h/v1"
#define SPEC FUZZ_PROVIDER "/m;api_key=k;base_url=" BASE

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const llmux_provider *vt;
    (void)argc;
    (void)argv;
    vt = fuzz_register_plugin();
    FUZZ_CHECK(LLMUX_PROVIDER_HAS(vt, job_decode) && vt->job_encode &&
               vt->job_decode);
    return 0;
}

/* The URL of an encoded step: BASE, then '/'-separated segments of the
 * characters a job or file id may hold, none empty, "." or "..". */
static void check_url(const char *url)
{
    const char *p, *seg;
    FUZZ_CHECK(url != NULL);
    FUZZ_CHECK(strncmp(url, BASE "/", sizeof BASE) == 0);
    for (seg = p = url + sizeof BASE;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '/' || !c) {
            size_t n = (size_t)(p - seg);
            FUZZ_CHECK(n > 0 && !(n == 1 && seg[0] == '.') &&
                       !(n == 2 && seg[0] == '.' && seg[1] == '.'));
            if (!c)
                break;
            seg = p + 1;
            continue;
        }
        FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
    }
}

static void read_job(const llmux_response *res, int rc)
{
    const llmux_error *e = llmux_response_error(res);
    const struct llmux_job *j = res->o.job;
    int64_t total = 0, done = 0, failed = 0;
    size_t len = 0;
    if (rc) {
        FUZZ_CHECK(rc < 0 && e != NULL && e->code == rc);
        FUZZ_CHECK(e->message != NULL);
        if (rc == LLMUX_EPROTO && !e->type)
            FUZZ_CHECK(!strchr(e->message, '\n'));
        return;
    }
    FUZZ_CHECK(e == NULL);
    if (!j)
        return;
    llmux_job_counts(j, &total, &done, &failed);
    FUZZ_CHECK(total >= -1 && done >= -1 && failed >= -1);
    FUZZ_CHECK(llmux_job_state_name(llmux_job_get_state(j)) != NULL);
    (void)llmux_job_id(j);
    (void)llmux_job_state_raw(j);
    (void)llmux_job_input_file(j);
    (void)llmux_job_output_file(j);
    (void)llmux_job_error_file(j);
    (void)llmux_job_errors(j);
    if (llmux_job_content(j, &len) == NULL)
        FUZZ_CHECK(len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llmux_request *r = NULL;
    llmux_job_step *s;
    llmux__prepared p;
    llmux_response *res;
    unsigned mode;
    char *rest, *id = NULL;
    size_t len;
    long status = 200;
    int rc;

    if (size < 2)
        return 0;
    mode = data[1];
    len = size - 2;
    rest = fuzz_dupz(data + 2, len);
    FUZZ_CHECK(llmux_request_new(&r, LLMUX_OP_MODELS, SPEC) == 0);
    s = llmux__calloc(1, sizeof *s); /* the request frees it */
    FUZZ_CHECK(s != NULL);
    s->struct_size = sizeof *s;
    s->step = 1 + data[0] % 5;
    s->endpoint = "/v1/chat/completions";
    s->model = llmux_request_model(r);
    switch (s->step) {
    case LLMUX_JOB_STEP_UPLOAD:
        s->data = rest;
        s->data_len = len;
        break;
    case LLMUX_JOB_STEP_CREATE:
        s->id = "file-1";
        if (mode & 1)
            s->metadata_json = rest;
        break;
    default:
        s->id = "batch-1";
        break;
    }
    if ((mode & 2) && s->step != LLMUX_JOB_STEP_UPLOAD)
        s->id = id = fuzz_dupz(data + 2, len > 128 ? 128 : len);
    r->op = LLMUX__OP_JOB;
    r->job = s;

    rc = llmux__prepare(r, NULL, &p);
    if (rc != 0) {
        /* a bad id, metadata or input line is refused, with a message */
        FUZZ_CHECK(rc == LLMUX_EINVAL || rc == LLMUX_ENOTSUP);
        FUZZ_CHECK(llmux_request_errmsg(r) && *llmux_request_errmsg(r));
    } else {
        check_url(p.url);
        if (id && s->step != LLMUX_JOB_STEP_CREATE)
            /* an id is one segment of the path, whole (create's goes in
             * the body) */
            FUZZ_CHECK(!strchr(id, '/') && strstr(p.url, id));
        if (mode & 4)
            status = 400 + (long)(mode >> 4);
        res = llmux__response_new(r->op, FUZZ_PROVIDER);
        FUZZ_CHECK(res != NULL);
        rc = llmux__decode_answer(&p, status, "application/json", rest, len,
                                  res);
        if (status != 200)
            FUZZ_CHECK(rc < 0);
        read_job(res, rc);
        llmux_response_free(res);
    }
    llmux__prepared_free(&p); /* what a failed prepare holds too */
    llmux_request_free(r);
    free(id);
    free(rest);
    return 0;
}
