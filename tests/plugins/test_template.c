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

typedef mock_env env;

typedef struct result {
    int calls, status, chunks;
    char text[256];
    size_t len;
    llmux_response *res;
} result;

static void env_start(env *e)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    o.plugin_path = TEMPLATE_DIR;
    o.max_retries = 0;
    mock_env_start(e, &o, NULL);
}

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    result *r = ud;
    size_t n = 0;
    const char *t = llmux_chunk_text(ch, &n);
    (void)req;
    r->chunks++;
    if (t && n < sizeof r->text - r->len) {
        memcpy(r->text + r->len, t, n);
        r->len += n;
    }
    return 0;
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    result *r = ud;
    (void)req;
    r->calls++;
    r->status = status;
    r->res = llmux_response_retain(res);
}

/* A chat request to `provider/model` at the mock's `path`. */
static llmux_request *chat(env *e, const char *provider, const char *model,
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

static void ask(env *e, llmux_request *req, result *r, int stream)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(
        llmux_submit(e->client, req, stream ? on_chunk : NULL, on_done, r), 0);
    mock_env_run_until(e, &r->calls);
    assert_int_equal(r->calls, 1);
}

static const char *errmsg(const result *r)
{
    const llmux_error *err = llmux_response_error(r->res);
    return err && err->message ? err->message : "";
}

static void test_answer(void **state)
{
    env e;
    result r;
    const llmux_usage *u;
    (void)state;
    env_start(&e);
    ask(&e, chat(&e, "template", "gpt-4o-mini", "/v1", 0), &r, 0);
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
    llmux_response_free(r.res);
    mock_env_stop(&e);
}

static void test_stream(void **state)
{
    env e;
    result r;
    (void)state;
    env_start(&e);
    ask(&e, chat(&e, "template", "gpt-4o-mini#events=5", "/v1", 1), &r, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.len, strlen("tok0 tok1 tok2 tok3 tok4"));
    assert_memory_equal(r.text, "tok0 tok1 tok2 tok3 tok4", r.len);
    assert_true(r.chunks >= 5);
    /* the response folds the chunks */
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "tok0 tok1 tok2 tok3 tok4");
    assert_int_equal(llmux_response_finish(r.res), LLMUX_FINISH_STOP);
    assert_string_equal(llmux_response_model(r.res), "gpt-4o-mini");
    assert_non_null(llmux_response_usage(r.res));
    assert_true(llmux_response_usage(r.res)->completion_tokens > 0);
    llmux_response_free(r.res);
    mock_env_stop(&e);
}

static void test_errors(void **state)
{
    env e;
    result r;
    const llmux_error *err;
    (void)state;
    env_start(&e);

    /* a provider's error body */
    ask(&e, chat(&e, "template", "m#status=400", "/v1", 0), &r, 0);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    err = llmux_response_error(r.res);
    assert_int_equal(err->http_status, 400);
    assert_string_equal(err->type, "invalid_request_error");
    assert_true(strlen(err->message) > 0);
    llmux_response_free(r.res);

    /* garbage where JSON belongs: named, never a crash */
    ask(&e, chat(&e, "template", "m#body=garbage", "/v1", 0), &r, 0);
    assert_int_equal(r.status, LLMUX_EPROTO);
    assert_non_null(strstr(errmsg(&r), "template: response is not a JSON"));
    llmux_response_free(r.res);

    /* an error event inside a stream, after two good ones */
    ask(&e,
        fault(chat(&e, "template", "m", "/v1", 1),
              "events=5;stream_error_after=2"),
        &r, 1);
    assert_int_equal(r.status, LLMUX_EPROVIDER);
    assert_string_equal(errmsg(&r), "mock stream error");
    /* the mock's first event carries only the role */
    assert_int_equal(r.len, strlen("tok0"));
    assert_memory_equal(r.text, "tok0", r.len);
    llmux_response_free(r.res);

    /* a stream cut before its end marker */
    ask(&e, fault(chat(&e, "template", "m", "/v1", 1), "events=6;cut_after=3"),
        &r, 1);
    assert_int_equal(r.status, LLMUX_ETRANSPORT);
    assert_int_equal(r.len, strlen("tok0 tok1"));
    assert_memory_equal(r.text, "tok0 tok1", r.len); /* what came is kept */
    assert_non_null(strstr(errmsg(&r), "template: stream cut off after 3"));
    llmux_response_free(r.res);
    mock_env_stop(&e);
}

static void test_unsupported(void **state)
{
    env e;
    llmux_request *req;
    char spec[128];
    result r;
    (void)state;
    env_start(&e);
    snprintf(spec, sizeof spec, "template/m;base_url=http://127.0.0.1:%d/v1",
             llmux_mock_port(e.mock));
    /* embeddings: not in the table's capabilities */
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_EMBED, spec), 0);
    assert_int_equal(llmux_request_add_input(req, "x"), 0);
    assert_int_equal(llmux_submit(e.client, req, NULL, on_done, &r),
                     LLMUX_ENOTSUP);
    llmux_request_free(req);
    /* a tool message: refused by encode */
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_TOOL, "42"), 0);
    assert_int_equal(llmux_submit(e.client, req, NULL, on_done, &r),
                     LLMUX_ENOTSUP);
    llmux_request_free(req);
    mock_env_stop(&e);
}

/* tplalias.conf publishes the module with chat_path=/v1/chat/completions,
 * so a base URL without /v1 works; tplbad.conf's chat_path is refused by
 * the module's init. */
static void test_descriptor_option(void **state)
{
    env e;
    result r;
    llmux_request *req;
    (void)state;
    env_start(&e);
    ask(&e, chat(&e, "tplalias", "gpt-4o-mini", "", 0), &r, 0);
    assert_int_equal(r.status, 0);
    assert_string_equal(llmux_response_text(r.res, NULL),
                        "Mock reply to: hello");
    llmux_response_free(r.res);
    req = chat(&e, "tplbad", "m", "/v1", 0);
    assert_int_equal(llmux_submit(e.client, req, NULL, on_done, &r),
                     LLMUX_EPLUGIN);
    llmux_request_free(req);
    mock_env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_descriptor_option),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    llmux_global_cleanup();
    return rc;
}
