#define _GNU_SOURCE /* memmem */
/*
 * tests/unit/test_job_codec.c: provider batch jobs below the engine: the
 * host's multipart builder (http_form), and the OpenAI and Mistral
 * plugins' job hooks through llmux__prepare and llmux__decode_answer:
 * each step's HTTP request, Mistral's translation of the input lines,
 * the batch and job objects of ../shared/design/WIRE.md sections 8.2 and
 * 8.3, and Mistral's result lines made OpenAI's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plugin_test.h"

#define OAI "openai;base_url=http://127.0.0.1:9/v1;api_key=sk-test"
#define MIS                                                                    \
    "mistral/mistral-small-latest;base_url=http://127.0.0.1:9/"                \
    "mistral;api_key=k"

/* A job step request: `step` with `id`, `data` and the chat endpoint. */
static llmux_request *job_req(const char *spec, int step, const char *id,
                              const char *data)
{
    llmux_request *r = new_req(LLMUX_OP_MODELS, spec);
    llmux_job_step *s = llmux__calloc(1, sizeof *s);
    assert_non_null(s);
    s->struct_size = sizeof *s;
    s->step = step;
    s->id = id;
    s->data = data;
    s->data_len = data ? strlen(data) : 0;
    s->endpoint = "/v1/chat/completions";
    s->model = llmux_request_model(r);
    r->op = LLMUX__OP_JOB;
    r->job = s;
    return r;
}

/* The boundary of a multipart Content-Type. */
static const char *boundary_of(const char *ctype)
{
    const char *b = strstr(ctype, "boundary=");
    assert_non_null(b);
    return b + 9;
}

static void test_form(void **state)
{
    struct llmux_http_request h;
    static const char data[] = "line1\n\0--x\r\n--llmux-form-\n";
    llmux_form_part parts[2];
    const char *ct = NULL, *b;
    char want[1024];
    size_t i;
    int n;
    (void)state;
    memset(&h, 0, sizeof h);
    memset(parts, 0, sizeof parts);
    parts[0].name = "purpose";
    parts[0].data = "batch";
    parts[0].len = 5;
    parts[1].name = "fi\"le";
    parts[1].filename = "a\"b\r\nc.jsonl";
    parts[1].content_type = "application/jsonl";
    parts[1].data = data;
    parts[1].len = sizeof data - 1; /* a NUL inside */
    assert_int_equal(llmux__host.http_form(&h, parts, 2), 0);
    for (i = 0; i < h.n_headers; i++)
        if (strncmp(h.headers[i], "Content-Type: ", 14) == 0)
            ct = h.headers[i] + 14;
    assert_non_null(ct);
    assert_int_equal(strncmp(ct, "multipart/form-data; boundary=", 30), 0);
    b = boundary_of(ct);
    assert_true(strlen(b) >= 16);
    /* the boundary occurs in no part */
    assert_null(memmem(data, sizeof data - 1, b, strlen(b)));
    n = snprintf(want, sizeof want,
                 "--%s\r\nContent-Disposition: form-data; name=\"purpose\"\r\n"
                 "\r\nbatch\r\n"
                 "--%s\r\nContent-Disposition: form-data; name=\"fi%%22le\"; "
                 "filename=\"a%%22b%%0D%%0Ac.jsonl\"\r\nContent-Type: "
                 "application/jsonl\r\n\r\n",
                 b, b);
    assert_true(h.body_len > (size_t)n);
    assert_memory_equal(h.body, want, (size_t)n);
    assert_memory_equal(h.body + n, data, sizeof data - 1);
    snprintf(want, sizeof want, "\r\n--%s--\r\n", b);
    assert_int_equal(h.body_len, (size_t)n + sizeof data - 1 + strlen(want));
    assert_memory_equal(h.body + n + sizeof data - 1, want, strlen(want));
    llmux__http_free(&h);

    /* refused: a part without a name, NULL data with a length */
    parts[0].name = NULL;
    assert_int_equal(llmux__host.http_form(&h, parts, 1), LLMUX_EINVAL);
    parts[0].name = "x";
    parts[0].data = NULL;
    assert_int_equal(llmux__host.http_form(&h, parts, 1), LLMUX_EINVAL);
    llmux__http_free(&h);
}

static void test_openai_steps(void **state)
{
    static const char in[] =
        "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/chat/"
        "completions\",\"body\":{\"model\":\"gpt-4o-mini\"}}\n";
    llmux__prepared p;
    llmux_request *r;
    json_object *b;
    (void)state;

    r = job_req(OAI, LLMUX_JOB_STEP_UPLOAD, NULL, in);
    prep_ok(r, &p);
    assert_string_equal(p.http.method, "POST");
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/files");
    assert_int_equal(strncmp(header(&p, "Content-Type"),
                             "multipart/form-data; boundary=", 30),
                     0);
    assert_non_null(strstr(p.http.body, "name=\"purpose\"\r\n\r\nbatch\r\n"));
    assert_non_null(strstr(p.http.body, in)); /* OpenAI's lines as given */
    assert_string_equal(header(&p, "Authorization"), "Bearer sk-test");
    llmux__prepared_free(&p);
    llmux_request_free(r);

    r = job_req(OAI, LLMUX_JOB_STEP_CREATE, "file-abc123", NULL);
    r->job->metadata_json = "{\"run\":\"7\"}";
    prep_ok(r, &p);
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/batches");
    b = body_of(&p);
    assert_string_equal(jstr(b, "input_file_id"), "file-abc123");
    assert_string_equal(jstr(b, "endpoint"), "/v1/chat/completions");
    assert_string_equal(jstr(b, "completion_window"), "24h");
    assert_string_equal(jstr(b, "metadata.run"), "7");
    json_object_put(b);
    llmux__prepared_free(&p);
    llmux_request_free(r);

    /* OpenAI has one window: another timeout is refused, not dropped */
    r = job_req(OAI, LLMUX_JOB_STEP_CREATE, "file-abc123", NULL);
    r->job->timeout_hours = 48;
    pt_prep_fails(r, LLMUX_EINVAL, "timeout_hours=48");
    llmux_request_free(r);

    r = job_req(OAI, LLMUX_JOB_STEP_STATUS, "batch_abc", NULL);
    prep_ok(r, &p);
    assert_string_equal(p.http.method, "GET");
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/batches/batch_abc");
    llmux__prepared_free(&p);
    llmux_request_free(r);

    r = job_req(OAI, LLMUX_JOB_STEP_CANCEL, "batch_abc", NULL);
    prep_ok(r, &p);
    assert_string_equal(p.http.method, "POST");
    assert_string_equal(p.url,
                        "http://127.0.0.1:9/v1/batches/batch_abc/cancel");
    llmux__prepared_free(&p);
    llmux_request_free(r);

    r = job_req(OAI, LLMUX_JOB_STEP_CONTENT, "file-xyz", NULL);
    prep_ok(r, &p);
    assert_string_equal(p.url, "http://127.0.0.1:9/v1/files/file-xyz/content");
    llmux__prepared_free(&p);
    llmux_request_free(r);

    /* an id never reaches another path */
    r = job_req(OAI, LLMUX_JOB_STEP_STATUS, "../files", NULL);
    pt_prep_fails(r, LLMUX_EINVAL, "is not a job or file id");
    llmux_request_free(r);
}

static void test_mistral_upload_translates(void **state)
{
    static const char in[] =
        "{\"custom_id\":\"0\",\"method\":\"POST\",\"url\":\"/v1/chat/"
        "completions\",\"body\":{\"model\":\"mistral-small-latest\","
        "\"messages\":[{\"role\":\"developer\",\"content\":\"d\"},{\"role\":"
        "\"user\",\"content\":\"hi\"}],\"seed\":3,"
        "\"max_completion_tokens\":9}}\n\n";
    static const char bad[] =
        "{\"custom_id\":\"0\",\"method\":\"POST\",\"url\":\"/v1/chat/"
        "completions\",\"body\":{\"messages\":[],\"logprobs\":true}}\n";
    llmux__prepared p;
    llmux_request *r;
    const char *line, *end;
    json_object *o;
    (void)state;
    r = job_req(MIS, LLMUX_JOB_STEP_UPLOAD, NULL, in);
    prep_ok(r, &p);
    assert_string_equal(p.url, "http://127.0.0.1:9/mistral/v1/files");
    line = strstr(p.http.body, "\r\n\r\n{\"custom_id\"");
    assert_non_null(line);
    line = strstr(line, "{");
    end = strchr(line, '\n');
    o = parse_all(line, (size_t)(end - line));
    assert_json_eq(o, "{\"custom_id\":\"0\",\"body\":{\"messages\":[{\"role\":"
                      "\"system\",\"content\":\"d\"},{\"role\":\"user\","
                      "\"content\":\"hi\"}],\"random_seed\":3,"
                      "\"max_tokens\":9}}");
    json_object_put(o);
    llmux__prepared_free(&p);
    llmux_request_free(r);

    r = job_req(MIS, LLMUX_JOB_STEP_UPLOAD, NULL, bad);
    pt_prep_fails(r, LLMUX_EINVAL, "line 1: field \"logprobs\"");
    llmux_request_free(r);

    r = job_req(MIS, LLMUX_JOB_STEP_CREATE, "6d6f636b-0000-4000-8000-1", NULL);
    r->job->timeout_hours = 48;
    prep_ok(r, &p);
    assert_string_equal(p.url, "http://127.0.0.1:9/mistral/v1/batch/jobs");
    o = body_of(&p);
    assert_json_eq(o, "{\"input_files\":[\"6d6f636b-0000-4000-8000-1\"],"
                      "\"endpoint\":\"/v1/chat/completions\",\"model\":"
                      "\"mistral-small-latest\",\"timeout_hours\":48}");
    json_object_put(o);
    llmux__prepared_free(&p);
    llmux_request_free(r);
}

/* Decodes `body` as the answer to `step` of provider `spec`. */
static llmux_response *decode_step(const char *spec, int step, const char *body,
                                   int want_rc)
{
    llmux_request *r = job_req(spec, step, "x1", "");
    llmux__prepared p;
    llmux_response *res;
    if (step == LLMUX_JOB_STEP_UPLOAD) {
        r->job->data = "{\"custom_id\":\"a\",\"body\":{}}";
        r->job->data_len = strlen(r->job->data);
    }
    prep_ok(r, &p);
    res = llmux__response_new(LLMUX__OP_JOB, "x");
    assert_non_null(res);
    assert_int_equal(llmux__decode_answer(&p, 200, "application/json", body,
                                          strlen(body), res),
                     want_rc);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    return res;
}

static void test_openai_batch_object(void **state)
{
    /* WIRE.md 8.2: a batch whose requests all failed ends completed with
     * only an error file (kaapi-backend#723) */
    static const char body[] =
        "{\"id\":\"batch_abc123\",\"object\":\"batch\",\"endpoint\":\"/v1/"
        "chat/completions\",\"errors\":null,\"input_file_id\":\"file-abc123\","
        "\"completion_window\":\"24h\",\"status\":\"completed\","
        "\"output_file_id\":null,\"error_file_id\":\"file-err9\","
        "\"created_at\":1711471533,\"in_progress_at\":1711471538,"
        "\"expires_at\":1711557933,\"completed_at\":1711493133,"
        "\"request_counts\":{\"total\":9,\"completed\":0,\"failed\":9},"
        "\"metadata\":null}";
    static const char failed[] =
        "{\"id\":\"batch_f\",\"object\":\"batch\",\"status\":\"failed\","
        "\"input_file_id\":\"file-1\",\"failed_at\":1711471600,\"errors\":{"
        "\"object\":\"list\",\"data\":[{\"code\":\"invalid_json_line\","
        "\"message\":\"bad\",\"param\":null,\"line\":3}]}}";
    llmux_response *res;
    struct llmux_job *j;
    (void)state;
    res = decode_step(OAI, LLMUX_JOB_STEP_STATUS, body, 0);
    j = res->o.job;
    assert_non_null(j);
    assert_string_equal(j->id, "batch_abc123");
    assert_int_equal(j->state, LLMUX_JOB_COMPLETED);
    assert_string_equal(j->state_raw, "completed");
    assert_int_equal(j->total, 9);
    assert_int_equal(j->completed, 0);
    assert_int_equal(j->failed, 9);
    assert_null(j->output_file);
    assert_string_equal(j->error_file, "file-err9");
    assert_string_equal(j->input_file, "file-abc123");
    assert_int_equal(j->created, 1711471533);
    assert_int_equal(j->finished, 1711493133);
    llmux_response_free(res);

    res = decode_step(OAI, LLMUX_JOB_STEP_CANCEL, failed, 0);
    j = res->o.job;
    assert_int_equal(j->state, LLMUX_JOB_FAILED);
    assert_string_equal(j->errors, "line 3: bad");
    assert_int_equal(j->finished, 1711471600);
    assert_int_equal(j->total, -1); /* not said */
    llmux_response_free(res);

    /* an unknown word is kept, read as unknown */
    res = decode_step(OAI, LLMUX_JOB_STEP_STATUS,
                      "{\"id\":\"b\",\"status\":\"paused\"}", 0);
    assert_int_equal(res->o.job->state, LLMUX_JOB_UNKNOWN);
    assert_string_equal(res->o.job->state_raw, "paused");
    llmux_response_free(res);

    /* not a batch: a protocol error, not an empty job */
    res = decode_step(OAI, LLMUX_JOB_STEP_STATUS, "[1]", LLMUX_EPROTO);
    llmux_response_free(res);
    res =
        decode_step(OAI, LLMUX_JOB_STEP_STATUS, "{\"id\":\"b\"}", LLMUX_EPROTO);
    llmux_response_free(res);

    /* the file object of an upload */
    res = decode_step(OAI, LLMUX_JOB_STEP_UPLOAD,
                      "{\"id\":\"file-abc123\",\"object\":\"file\",\"bytes\":"
                      "120000,\"created_at\":1677610602,\"filename\":"
                      "\"mydata.jsonl\",\"purpose\":\"batch\"}",
                      0);
    assert_string_equal(res->o.job->input_file, "file-abc123");
    llmux_response_free(res);
}

static void test_mistral_job_object(void **state)
{
    /* WIRE.md 8.3's BatchJobOut */
    static const char body[] =
        "{\"id\":\"b6f4a1c2-0000-4000-8000-000000000001\",\"object\":"
        "\"batch\",\"input_files\":[\"f0000000-0000-4000-8000-000000000002\"],"
        "\"metadata\":null,\"endpoint\":\"/v1/chat/completions\",\"model\":"
        "\"mistral-small-latest\",\"agent_id\":null,\"output_file\":null,"
        "\"error_file\":null,\"errors\":[{\"message\":\"Invalid line\","
        "\"count\":2}],\"outputs\":null,\"status\":\"RUNNING\","
        "\"created_at\":1732400000,\"total_requests\":10,"
        "\"completed_requests\":6,\"succeeded_requests\":5,"
        "\"failed_requests\":1,\"started_at\":1732400010,"
        "\"completed_at\":null}";
    static const char *const words[] = {"QUEUED",
                                        "SUCCESS",
                                        "FAILED",
                                        "TIMEOUT_EXCEEDED",
                                        "CANCELLATION_REQUESTED",
                                        "CANCELLED"};
    static const int states[] = {LLMUX_JOB_VALIDATING, LLMUX_JOB_COMPLETED,
                                 LLMUX_JOB_FAILED,     LLMUX_JOB_EXPIRED,
                                 LLMUX_JOB_CANCELLING, LLMUX_JOB_CANCELLED};
    llmux_response *res;
    struct llmux_job *j;
    size_t i;
    char buf[128];
    (void)state;
    res = decode_step(MIS, LLMUX_JOB_STEP_STATUS, body, 0);
    j = res->o.job;
    assert_string_equal(j->id, "b6f4a1c2-0000-4000-8000-000000000001");
    assert_int_equal(j->state, LLMUX_JOB_IN_PROGRESS);
    assert_string_equal(j->state_raw, "RUNNING");
    assert_string_equal(j->input_file, "f0000000-0000-4000-8000-000000000002");
    assert_string_equal(j->model, "mistral-small-latest");
    assert_int_equal(j->total, 10);
    assert_int_equal(j->completed, 5); /* succeeded: answered */
    assert_int_equal(j->failed, 1);
    assert_null(j->output_file);
    assert_string_equal(j->errors, "Invalid line (2 times)");
    assert_int_equal(j->finished, 0);
    llmux_response_free(res);
    for (i = 0; i < sizeof words / sizeof words[0]; i++) {
        snprintf(buf, sizeof buf, "{\"id\":\"j\",\"status\":\"%s\"}", words[i]);
        res = decode_step(MIS, LLMUX_JOB_STEP_STATUS, buf, 0);
        assert_int_equal(res->o.job->state, states[i]);
        llmux_response_free(res);
    }
}

static void test_mistral_results(void **state)
{
    /* the recorded line of WIRE.md 8.3: OpenAI's envelope without
     * response.request_id */
    static const char body[] =
        "{\"id\":\"0-61c18c3c\",\"custom_id\":\"0\",\"response\":{"
        "\"status_code\":200,\"body\":{\"id\":\"7f38\",\"object\":\"chat."
        "completion\",\"model\":\"pixtral-large-latest\",\"created\":"
        "1732400353,\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":\"x\"},\"finish_reason\":\"model_length\"}"
        "]}},\"error\":null}\n";
    llmux_response *res;
    json_object *o;
    const char *c;
    (void)state;
    res = decode_step(MIS, LLMUX_JOB_STEP_CONTENT, body, 0);
    assert_true(res->o.job->has_content);
    c = res->o.job->content.p;
    assert_int_equal(c[res->o.job->content.len - 1], '\n');
    o = parse_all(c, res->o.job->content.len);
    assert_string_equal(jstr(o, "custom_id"), "0");
    assert_true(jhas(o, "response.request_id"));
    assert_null(jget(o, "response.request_id"));
    assert_string_equal(jstr(o, "response.body.choices.0.finish_reason"),
                        "length");
    json_object_put(o);
    llmux_response_free(res);

    res = decode_step(MIS, LLMUX_JOB_STEP_CONTENT, "{\"a\":1}\nnot json\n",
                      LLMUX_EPROTO);
    llmux_response_free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_openai_steps),
        cmocka_unit_test(test_mistral_upload_translates),
        cmocka_unit_test(test_openai_batch_object),
        cmocka_unit_test(test_mistral_job_object),
        cmocka_unit_test(test_mistral_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
