/*
 * tests/mock/test_jobs.c: provider batch jobs (llmux/jobs.h) end to end
 * against llmux-mock's OpenAI and Mistral batch endpoints: submit, poll
 * until completed, fetch an output line per custom_id with the mock
 * chat's real answer, cancel with partial results; the input checks; ids
 * that would reach another path; providers without a batch API.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "mock_env.h"

/* What one job function's callback saw. */
typedef struct jres {
    int calls, code;
    char msg[512];
    char id[128];
    int state;
    char raw[64];
    int64_t total, completed, failed;
    char *content;
    size_t content_len;
    char output_file[128], error_file[128], input_file[128];
} jres;

static void copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

static void on_job(int code, const llmux_job *job, const char *message,
                   void *ud)
{
    jres *r = ud;
    const char *c;
    size_t len;
    r->calls++;
    r->code = code;
    copy(r->msg, sizeof r->msg, message);
    copy(r->id, sizeof r->id, llmux_job_id(job));
    copy(r->raw, sizeof r->raw, llmux_job_state_raw(job));
    copy(r->output_file, sizeof r->output_file, llmux_job_output_file(job));
    copy(r->error_file, sizeof r->error_file, llmux_job_error_file(job));
    copy(r->input_file, sizeof r->input_file, llmux_job_input_file(job));
    r->state = llmux_job_get_state(job);
    llmux_job_counts(job, &r->total, &r->completed, &r->failed);
    free(r->content);
    r->content = NULL;
    if ((c = llmux_job_content(job, &len)) != NULL) {
        r->content = malloc(len + 1);
        memcpy(r->content, c, len);
        r->content[len] = '\0';
        r->content_len = len;
    }
}

static void wait_job(mock_env *e, jres *r)
{
    mock_env_run_until(e, &r->calls);
    assert_int_equal(r->calls, 1);
}

static mock_env_config batch_fast = {
    NULL, &(llmux_mock_options){.version = LLMUX_MOCK_OPTIONS_VERSION,
                                .quiet = 1,
                                .batch_ms = 300}};

/* Cancel tests: long enough that the cancel always lands mid-run. */
static mock_env_config batch_slow = {
    NULL, &(llmux_mock_options){.version = LLMUX_MOCK_OPTIONS_VERSION,
                                .quiet = 1,
                                .batch_ms = 10000}};

static void spec_of(mock_env *e, char *buf, size_t cap, const char *provider)
{
    int mistral = strncmp(provider, "mistral", 7) == 0;
    snprintf(buf, cap, "%s;base_url=http://127.0.0.1:%d%s;api_key=sk-test",
             provider, llmux_mock_port(e->mock), mistral ? "/mistral" : "/v1");
}

/* n OpenAI Batch lines asking "question i". */
static char *input_lines(int n, const char *model)
{
    size_t cap = (size_t)n * 256 + 1, used = 0;
    char *s = malloc(cap);
    int i;
    s[0] = '\0';
    for (i = 0; i < n; i++)
        used += (size_t)snprintf(
            s + used, cap - used,
            "{\"custom_id\":\"req-%d\",\"method\":\"POST\",\"url\":\"/v1/chat/"
            "completions\",\"body\":{\"model\":\"%s\",\"messages\":[{\"role\":"
            "\"user\",\"content\":\"question %d\"}],\"seed\":7}}\n",
            i, model, i);
    return s;
}

/* Polls until the job ends; returns the last state. */
static int poll_until_final(mock_env *e, const char *spec, const char *id,
                            jres *st)
{
    int i;
    for (i = 0; i < 400; i++) {
        memset(st, 0, sizeof *st);
        assert_int_equal(llmux_job_status(e->client, spec, id, on_job, st), 0);
        assert_int_equal(st->calls, 0); /* never inside the call */
        wait_job(e, st);
        assert_int_equal(st->code, 0);
        if (llmux_job_state_final((llmux_job_state)st->state))
            return st->state;
        uv_sleep(20);
    }
    fail_msg("job %s never ended", id);
    return -1;
}

/* Every line of `content` is an OpenAI Batch output line answering one
 * of req-0..req-(n-1) with the mock's chat answer to "question i"; each
 * id exactly once. */
static void check_output(const char *content, int n, int request_id)
{
    int *seen = calloc((size_t)n, sizeof *seen), count = 0, i;
    const char *p = content;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = strndup(p, len);
        json_object *o = json_tokener_parse(line), *resp, *body, *msg, *v;
        const char *cid, *text;
        char want[64];
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "custom_id", &v));
        cid = json_object_get_string(v);
        assert_int_equal(strncmp(cid, "req-", 4), 0);
        i = atoi(cid + 4);
        assert_true(i >= 0 && i < n);
        seen[i]++;
        assert_true(json_object_object_get_ex(o, "error", &v));
        assert_null(v);
        assert_true(json_object_object_get_ex(o, "response", &resp));
        assert_true(json_object_object_get_ex(resp, "status_code", &v));
        assert_int_equal(json_object_get_int(v), 200);
        /* OpenAI's envelope has request_id: Mistral's gets it (null) */
        assert_true(json_object_object_get_ex(resp, "request_id", &v));
        if (request_id)
            assert_non_null(v);
        else
            assert_null(v);
        assert_true(json_object_object_get_ex(resp, "body", &body));
        msg = json_object_array_get_idx(json_object_object_get(body, "choices"),
                                        0);
        msg = json_object_object_get(msg, "message");
        text = json_object_get_string(json_object_object_get(msg, "content"));
        assert_non_null(text);
        snprintf(want, sizeof want, "question %d", i);
        assert_non_null(strstr(text, want)); /* the mock echoes the prompt */
        json_object_put(o);
        free(line);
        count++;
        p += len + (nl ? 1 : 0);
    }
    assert_int_equal(count, n);
    for (i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
}

static void full_flow(mock_env *e, const char *provider, const char *model,
                      int request_id)
{
    char spec[256];
    char *in = input_lines(5, model);
    jres sub = {0}, st, fe = {0}, er = {0};
    spec_of(e, spec, sizeof spec, provider);

    assert_int_equal(
        llmux_job_submit(e->client, spec, in, strlen(in), NULL, on_job, &sub),
        0);
    assert_int_equal(sub.calls, 0);
    wait_job(e, &sub);
    assert_int_equal(sub.code, 0);
    assert_true(sub.id[0] != '\0');
    assert_true(sub.input_file[0] != '\0');
    assert_true(sub.state == LLMUX_JOB_VALIDATING ||
                sub.state == LLMUX_JOB_IN_PROGRESS);

    /* not ended yet: fetch says so */
    assert_int_equal(
        llmux_job_fetch(e->client, spec, sub.id, LLMUX_JOB_OUTPUT, on_job, &fe),
        0);
    wait_job(e, &fe);
    if (fe.code) {
        assert_int_equal(fe.code, LLMUX_EBUSY);
        assert_non_null(strstr(fe.msg, "has not ended"));
    }

    assert_int_equal(poll_until_final(e, spec, sub.id, &st),
                     LLMUX_JOB_COMPLETED);
    assert_int_equal(st.total, 5);
    assert_int_equal(st.completed, 5);
    assert_int_equal(st.failed, 0);
    assert_true(st.output_file[0] != '\0');
    assert_string_equal(st.error_file, "");

    free(fe.content);
    memset(&fe, 0, sizeof fe);
    assert_int_equal(
        llmux_job_fetch(e->client, spec, sub.id, LLMUX_JOB_OUTPUT, on_job, &fe),
        0);
    wait_job(e, &fe);
    assert_int_equal(fe.code, 0);
    assert_int_equal(fe.state, LLMUX_JOB_COMPLETED);
    assert_non_null(fe.content);
    check_output(fe.content, 5, request_id);

    /* no error file: empty results */
    assert_int_equal(
        llmux_job_fetch(e->client, spec, sub.id, LLMUX_JOB_ERRORS, on_job, &er),
        0);
    wait_job(e, &er);
    assert_int_equal(er.code, 0);
    assert_non_null(er.content);
    assert_int_equal(er.content_len, 0);

    free(fe.content);
    free(er.content);
    free(sub.content);
    free(st.content);
    free(in);
}

static void test_openai_flow(void **state)
{
    full_flow(*state, "openai", "gpt-4o-mini", 1);
}

static void test_mistral_flow(void **state)
{
    /* the model goes on the job; lines become {custom_id, body} in
     * Mistral's shape (seed -> random_seed: its chat route refuses seed) */
    full_flow(*state, "mistral", "mistral-small-latest", 0);
}

static void cancel_flow(mock_env *e, const char *provider, const char *model)
{
    char spec[256];
    char *in = input_lines(40, model);
    jres sub = {0}, ca = {0}, st, fe = {0};
    spec_of(e, spec, sizeof spec, provider);
    assert_int_equal(
        llmux_job_submit(e->client, spec, in, strlen(in), NULL, on_job, &sub),
        0);
    wait_job(e, &sub);
    assert_int_equal(sub.code, 0);
    /* the mock's clock: its first quarter (2.5 s) validating */
    assert_int_equal(sub.state, LLMUX_JOB_VALIDATING);
    /* past the first quarter of the mock's 10 s (lines are answered
     * from then on), well before its end */
    uv_sleep(3000);
    memset(&st, 0, sizeof st);
    assert_int_equal(llmux_job_status(e->client, spec, sub.id, on_job, &st), 0);
    wait_job(e, &st);
    assert_int_equal(st.code, 0);
    assert_int_equal(st.state, LLMUX_JOB_IN_PROGRESS);
    assert_true(st.completed > 0 && st.completed < 40);
    assert_int_equal(st.total, 40);
    free(st.content);
    assert_int_equal(llmux_job_cancel(e->client, spec, sub.id, on_job, &ca), 0);
    wait_job(e, &ca);
    assert_int_equal(ca.code, 0);
    assert_int_equal(ca.state, LLMUX_JOB_CANCELLING);
    assert_int_equal(poll_until_final(e, spec, sub.id, &st),
                     LLMUX_JOB_CANCELLED);
    /* partial results: some lines answered, not all */
    assert_true(st.completed > 0 && st.completed < 40);
    assert_int_equal(
        llmux_job_fetch(e->client, spec, sub.id, LLMUX_JOB_OUTPUT, on_job, &fe),
        0);
    wait_job(e, &fe);
    assert_int_equal(fe.code, 0);
    {
        int lines = 0;
        const char *p;
        for (p = fe.content; *p; p++)
            lines += *p == '\n';
        assert_int_equal(lines, st.completed);
    }
    free(fe.content);
    free(st.content);
    free(ca.content);
    free(sub.content);
    free(in);
}

static void test_openai_cancel(void **state)
{
    cancel_flow(*state, "openai", "gpt-4o-mini");
}

static void test_mistral_cancel(void **state)
{
    cancel_flow(*state, "mistral", "mistral-small-latest");
}

/* Bad input is refused before anything is sent, naming the line. */
static void test_input_checked(void **state)
{
    mock_env *e = *state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/"
         "completions\",\"body\":{}}\nnot json\n",
         "line 2: not a JSON object"},
        {"{\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}",
         "line 1: no custom_id"},
        {"{\"custom_id\":\"a\",\"method\":\"GET\",\"url\":\"/v1/chat/"
         "completions\",\"body\":{}}",
         "method must be"},
        {"{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/"
         "completions\",\"body\":{}}\n{\"custom_id\":\"a\",\"method\":"
         "\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}",
         "\"a\" is used twice"},
        {"{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/"
         "completions\",\"body\":{}}\n{\"custom_id\":\"b\",\"method\":"
         "\"POST\",\"url\":\"/v1/embeddings\",\"body\":{}}",
         "line 2: url /v1/embeddings is not the job's endpoint"},
        {"\n\n", "no requests"},
    };
    char spec[256];
    size_t i, before = llmux_mock_request_count(e->mock);
    spec_of(e, spec, sizeof spec, "openai");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jres r = {0};
        assert_int_equal(llmux_job_submit(e->client, spec, cases[i].in,
                                          strlen(cases[i].in), NULL, on_job,
                                          &r),
                         0);
        assert_int_equal(r.calls, 0);
        wait_job(e, &r);
        assert_int_equal(r.code, LLMUX_EINVAL);
        if (!strstr(r.msg, cases[i].want))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, r.msg, cases[i].want);
    }
    assert_int_equal(llmux_mock_request_count(e->mock), before);
}

/* A Mistral job needs one model; a line naming another is refused. */
static void test_mistral_model_rules(void **state)
{
    mock_env *e = *state;
    const char *two =
        "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/"
        "completions\",\"body\":{\"model\":\"m1\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"x\"}]}}\n"
        "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/chat/"
        "completions\",\"body\":{\"model\":\"m2\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"y\"}]}}\n";
    char spec[256];
    jres r = {0}, r2 = {0};
    spec_of(e, spec, sizeof spec, "mistral");
    assert_int_equal(
        llmux_job_submit(e->client, spec, two, strlen(two), NULL, on_job, &r),
        0);
    wait_job(e, &r);
    assert_int_equal(r.code, LLMUX_EINVAL);
    assert_non_null(strstr(r.msg, "needs a model"));
    spec_of(e, spec, sizeof spec, "mistral/m1");
    assert_int_equal(
        llmux_job_submit(e->client, spec, two, strlen(two), NULL, on_job, &r2),
        0);
    wait_job(e, &r2);
    assert_int_equal(r2.code, LLMUX_EINVAL);
    assert_non_null(strstr(r2.msg, "line 2: model m2 is not the job's m1"));
}

/* An id never reaches another path; the key never reaches a message. */
static void test_ids_checked(void **state)
{
    mock_env *e = *state;
    static const char *const bad[] = {"../models", "a/b", "x?y=1", "..", ""};
    char spec[256];
    size_t i, before = llmux_mock_request_count(e->mock);
    spec_of(e, spec, sizeof spec, "openai");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jres r = {0};
        int rc = llmux_job_status(e->client, spec, bad[i], on_job, &r);
        if (!*bad[i]) {
            assert_int_equal(rc, LLMUX_EINVAL); /* refused in the call */
            continue;
        }
        assert_int_equal(rc, 0);
        wait_job(e, &r);
        assert_int_equal(r.code, LLMUX_EINVAL);
        assert_non_null(strstr(r.msg, "is not a job or file id"));
    }
    assert_int_equal(llmux_mock_request_count(e->mock), before);
    {
        jres r = {0};
        assert_int_equal(
            llmux_job_status(e->client, spec, "batch-nope", on_job, &r), 0);
        wait_job(e, &r);
        assert_int_equal(r.code, LLMUX_EPROVIDER);
        assert_non_null(strstr(r.msg, "batch-nope"));
        assert_null(strstr(r.msg, "sk-test"));
    }
}

/* Providers without a batch API say so, naming the provider. */
static void test_enotsup(void **state)
{
    mock_env *e = *state;
    static const char *const specs[] = {
        "ollama/llama3;base_url=http://127.0.0.1:9/ollama",
        "alephalpha/luminous;base_url=http://127.0.0.1:9/aleph;api_key=k"};
    const char *in = "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/"
                     "chat/completions\",\"body\":{}}";
    size_t i;
    for (i = 0; i < 2; i++) {
        jres r = {0}, s = {0};
        assert_int_equal(llmux_job_submit(e->client, specs[i], in, strlen(in),
                                          NULL, on_job, &r),
                         0);
        wait_job(e, &r);
        assert_int_equal(r.code, LLMUX_ENOTSUP);
        assert_non_null(strstr(r.msg, i ? "alephalpha" : "ollama"));
        assert_non_null(strstr(r.msg, "batch jobs are not supported"));
        assert_int_equal(
            llmux_job_status(e->client, specs[i], "job1", on_job, &s), 0);
        wait_job(e, &s);
        assert_int_equal(s.code, LLMUX_ENOTSUP);
    }
}

/* A step the provider refuses ends the chain with its error: an upload
 * refused is not followed by a create. */
static void test_upload_refused(void **state)
{
    mock_env *e = *state;
    char spec[256];
    char *in = input_lines(2, "gpt-4o-mini");
    jres r = {0};
    size_t before = llmux_mock_request_count(e->mock);
    spec_of(e, spec, sizeof spec, "openai");
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=400"), 0);
    assert_int_equal(
        llmux_job_submit(e->client, spec, in, strlen(in), NULL, on_job, &r), 0);
    wait_job(e, &r);
    assert_int_equal(r.code, LLMUX_EPROVIDER);
    assert_true(r.msg[0] != '\0');
    assert_null(strstr(r.msg, "sk-test"));
    assert_int_equal(llmux_mock_request_count(e->mock), before + 1);
    assert_string_equal(llmux_mock_request(e->mock, before)->path, "/v1/files");
    free(r.content);
    free(in);
}

/* A job whose input the provider refuses ends failed, with the reason. */
static void test_failed_job(void **state)
{
    mock_env *e = *state;
    /* passes llmux's checks, but the mock wants messages... it answers
     * each line; a line the chat route refuses lands in the error file */
    const char *in =
        "{\"custom_id\":\"ok\",\"method\":\"POST\",\"url\":\"/v1/chat/"
        "completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"messages\":[{"
        "\"role\":\"user\",\"content\":\"hi\"}]}}\n"
        "{\"custom_id\":\"bad\",\"method\":\"POST\",\"url\":\"/v1/chat/"
        "completions\",\"body\":{\"model\":\"gpt-4o-mini\"}}\n";
    char spec[256];
    jres sub = {0}, st, er = {0};
    spec_of(e, spec, sizeof spec, "openai");
    assert_int_equal(
        llmux_job_submit(e->client, spec, in, strlen(in), NULL, on_job, &sub),
        0);
    wait_job(e, &sub);
    assert_int_equal(sub.code, 0);
    assert_int_equal(poll_until_final(e, spec, sub.id, &st),
                     LLMUX_JOB_COMPLETED);
    assert_int_equal(st.completed, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(
        llmux_job_fetch(e->client, spec, sub.id, LLMUX_JOB_ERRORS, on_job, &er),
        0);
    wait_job(e, &er);
    assert_int_equal(er.code, 0);
    assert_non_null(strstr(er.content, "\"custom_id\":\"bad\""));
    assert_non_null(strstr(er.content, "\"status_code\":400"));
    assert_null(strstr(er.content, "\"custom_id\":\"ok\""));
    free(er.content);
    free(st.content);
    free(sub.content);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        mock_env_test_with(test_openai_flow, &batch_fast),
        mock_env_test_with(test_mistral_flow, &batch_fast),
        mock_env_test_with(test_openai_cancel, &batch_slow),
        mock_env_test_with(test_mistral_cancel, &batch_slow),
        mock_env_test(test_input_checked),
        mock_env_test(test_mistral_model_rules),
        mock_env_test(test_ids_checked),
        mock_env_test(test_enotsup),
        mock_env_test_with(test_failed_job, &batch_fast),
        mock_env_test(test_upload_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
