/*
 * tests/plugins/test_template.c: the template plugin of plugins.d/template,
 * built as a plugin author would build it (llmux's headers and json-c
 * only) into a directory of its own, loaded from the client's plugin_path
 * and run against llmux-mock: answers, streams, provider errors, garbage,
 * cut streams, what it does not support, and its descriptor option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "mock/mock_env.h"

/* A chat request to `provider/model` at the mock's `path`. */
static llmux_request *chat(mock_env *e, const char *provider, const char *model,
                           const char *path, int stream)
{
    llmux_request *req;
    char spec[256];
    snprintf(spec, sizeof spec,
             "%s/%s;base_url=http://127.0.0.1:%d%s;api_key=sk-test", provider,
             model, llmux_mock_port(e->mock), path);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_SYSTEM, "Be."),
                     0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, "hello"),
                     0);
    assert_int_equal(llmux_request_set_max_tokens(req, 32), 0);
    assert_int_equal(llmux_request_set_stream(req, stream), 0);
    return req;
}

/* Faults for llmux-mock, as its X-Mock-Fault header. */
static llmux_request *fault(llmux_request *req, const char *spec)
{
    char h[160];
    snprintf(h, sizeof h, "X-Mock-Fault: %s", spec);
    assert_int_equal(llmux_request_add_header(req, h), 0);
    return req;
}

static const char *errmsg(const mock_call *r)
{
    return r->err && r->err->message ? r->err->message : "";
}

static void test_answer(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    const llmux_usage *u;
    mock_env_call(e, chat(e, "template", "gpt-4o-mini", "/v1", 0), &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: hello");
    assert_string_equal(llmux_response_model(r.res), "gpt-4o-mini");
    assert_int_equal(llmux_response_finish(r.res), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_finish_raw(r.res), "stop");
    u = llmux_response_usage(r.res);
    assert_non_null(u);
    assert_true(u->prompt_tokens > 0);
    assert_int_equal(u->total_tokens, u->prompt_tokens + u->completion_tokens);
    mock_call_free(&r);
}

static void test_stream(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    mock_env_call(e, chat(e, "template", "gpt-4o-mini#events=5", "/v1", 1), &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.text_len, strlen("tok0 tok1 tok2 tok3 tok4"));
    assert_memory_equal(r.text, "tok0 tok1 tok2 tok3 tok4", r.text_len);
    assert_true(r.chunks >= 5);
    /* the response folds the chunks */
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "tok0 tok1 tok2 tok3 tok4");
    assert_int_equal(llmux_response_finish(r.res), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_model(r.res), "gpt-4o-mini");
    assert_non_null(llmux_response_usage(r.res));
    assert_true(llmux_response_usage(r.res)->completion_tokens > 0);
    mock_call_free(&r);
}

static void test_errors(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    const llmux_error *err;

    /* a provider's error body */
    mock_env_call(e, chat(e, "template", "m#status=400", "/v1", 0), &r);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    err = r.err;
    assert_int_equal(err->http_status, 400);
    assert_string_equal(err->type, "invalid_request_error");
    assert_true(strlen(err->message) > 0);
    mock_call_free(&r);

    /* garbage where JSON belongs: named, never a crash */
    mock_env_call(e, chat(e, "template", "m#body=garbage", "/v1", 0), &r);
    assert_int_equal(r.status, LLMUX_EPROTO);
    assert_non_null(strstr(errmsg(&r), "template: response is not a JSON"));
    mock_call_free(&r);

    /* an error event inside a stream, after two good ones */
    mock_env_call(e,
                  fault(chat(e, "template", "m", "/v1", 1),
                        "events=5;stream_error_after=2"),
                  &r);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_string_equal(errmsg(&r), "mock stream error");
    /* the mock's first event carries only the role */
    assert_int_equal(r.text_len, strlen("tok0"));
    assert_memory_equal(r.text, "tok0", r.text_len);
    mock_call_free(&r);

    /* a stream cut before its end marker */
    mock_env_call(
        e, fault(chat(e, "template", "m", "/v1", 1), "events=6;cut_after=3"),
        &r);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    /* what came is kept */
    assert_int_equal(r.text_len, strlen("tok0 tok1"));
    assert_memory_equal(r.text, "tok0 tok1", r.text_len);
    assert_non_null(strstr(errmsg(&r), "template: stream cut off after 3"));
    mock_call_free(&r);
}

static void test_unsupported(void **state)
{
    mock_env *e = *state;
    llmux_request *req;
    char spec[128];
    mock_call r = {0};
    snprintf(spec, sizeof spec, "template/m;base_url=http://127.0.0.1:%d/v1",
             llmux_mock_port(e->mock));
    /* embeddings: not in the table's capabilities */
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_EMBED, spec), 0);
    assert_int_equal(llmux_request_add_input(req, "x"), 0);
    assert_int_equal(llmux_submit(e->client, req, NULL, mock_call_on_done, &r),
                     LLMUX_ENOTSUP);
    llmux_request_free(req);
    /* a tool message: refused by encode */
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_TOOL, "42"), 0);
    assert_int_equal(llmux_submit(e->client, req, NULL, mock_call_on_done, &r),
                     LLMUX_ENOTSUP);
    llmux_request_free(req);
}

/* tplalias.conf publishes the module with chat_path=/v1/chat/completions,
 * so a base URL without /v1 works; tplbad.conf's chat_path is refused by
 * the module's init. */
static void test_descriptor_option(void **state)
{
    mock_env *e = *state;
    mock_call r = {0};
    llmux_request *req;
    mock_env_call(e, chat(e, "tplalias", "gpt-4o-mini", "", 0), &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: hello");
    mock_call_free(&r);
    req = chat(e, "tplbad", "m", "/v1", 0);
    assert_int_equal(llmux_submit(e->client, req, NULL, mock_call_on_done, &r),
                     LLMUX_EPLUGIN);
    llmux_request_free(req);
}

int main(void)
{
    /* every test's client: the template's directory, no retries */
    llmux_client_options co = LLMUX_CLIENT_OPTIONS_INIT;
    mock_env_config tpl = {&co, NULL};
    const struct CMUnitTest tests[] = {
        mock_env_test_with(test_answer, &tpl),
        mock_env_test_with(test_stream, &tpl),
        mock_env_test_with(test_errors, &tpl),
        mock_env_test_with(test_unsupported, &tpl),
        mock_env_test_with(test_descriptor_option, &tpl),
    };
    int rc;
    co.plugin_path = TEMPLATE_DIR;
    co.max_retries = 0;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    llmux_global_cleanup();
    return rc;
}
