/*
 * tests/mock/test_injection.c: CR/LF never reaches the wire. Every entry
 * point that ends up in the request line or a header (model name, config
 * options the plugin turns into headers, extra headers of the request and
 * of the client, base_url, proxy, api_key from the config string, the
 * environment or request JSON, fallbacks) is tried with "\r\nX-Evil: 1"
 * inside. Each attempt must be refused (at once, or by its done callback)
 * and the in-process mock must never see an X-Evil header.
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

#define EVIL "\r\nX-Evil: 1"

/* No request the mock received carries an X-Evil header, a header value
 * with CR or LF, or "X-Evil" in its path. */
static void assert_clean(const mock_env *e)
{
    size_t i, k;
    for (i = 0; i < llmux_mock_request_count(e->mock); i++) {
        const llmux_mock_record *rec = llmux_mock_request(e->mock, i);
        assert_null(llmux_mock_record_header(rec, "X-Evil"));
        assert_null(strstr(rec->path, "X-Evil"));
        for (k = 0; k < rec->n_headers; k++)
            assert_null(strpbrk(rec->headers[k].value, "\r\n"));
    }
}

/* Submits req (owned) and requires failure: at submit or in on_done. */
static void expect_refused(mock_env *e, llmux_request *req, const char *what)
{
    mock_call c = {0};
    int rc = llmux_submit(e->client, req, NULL, mock_call_on_done, &c);
    if (rc == 0) {
        mock_env_wait(e, &c);
        assert_int_equal(c.calls, 1);
        if (c.status == 0)
            fail_msg("%s: sent successfully", what);
        mock_call_free(&c);
    } else {
        llmux_request_free(req);
    }
    assert_clean(e);
}

static llmux_request *chat(const char *spec)
{
    llmux_request *req = NULL;
    if (llmux_request_new(&req, LLMUX_OP_CHAT, spec) != 0) {
        llmux_request_free(req);
        return NULL;
    }
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, "hi"), 0);
    return req;
}

static void test_no_crlf_reaches_the_wire(void **state)
{
    mock_env *e = *state;
    char spec[512], base[256];
    llmux_request *req;
    snprintf(base, sizeof base, "base_url=%s;api_key=sk-test", e->base);

    /* the model name: refused by the parser and by set_model */
    snprintf(spec, sizeof spec, "openai/x" EVIL ";%s", base);
    assert_null(chat(spec));
    snprintf(spec, sizeof spec, "openai/x;%s", base);
    req = chat(spec);
    snprintf(spec, sizeof spec, "openai/y" EVIL ";%s", base);
    assert_int_equal(llmux_request_set_model(req, spec), LLMUX_ECONFIG);
    llmux_request_free(req);

    /* a provider option the plugin sends as a header (OpenAI-Organization)
     * in the config string (braces allow any byte) and through the setter */
    snprintf(spec, sizeof spec, "openai/x;organization={o" EVIL "};%s", base);
    expect_refused(e, chat(spec), "organization= in the spec");
    snprintf(spec, sizeof spec, "openai/x;%s", base);
    req = chat(spec);
    assert_int_equal(llmux_request_set_option(req, "project", "p" EVIL), 0);
    expect_refused(e, req, "project set as an option");

    /* the request's and the client's extra headers */
    req = chat(spec);
    assert_int_equal(llmux_request_add_header(req, "X-A: 1" EVIL),
                     LLMUX_EINVAL);
    assert_int_equal(llmux_request_add_header(req, "X-A" EVIL ": 1"),
                     LLMUX_EINVAL);
    llmux_request_free(req);
    {
        llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
        const char *h[] = {"X-A: 1" EVIL};
        llmux_client *c = NULL;
        o.loop = &e->loop;
        o.headers = h;
        o.n_headers = 1;
        assert_int_equal(llmux_client_new(&c, &o), LLMUX_EINVAL);
        assert_null(c);
    }

    /* base_url and proxy */
    snprintf(spec, sizeof spec, "openai/x;base_url={%s" EVIL "};api_key=k",
             e->base);
    expect_refused(e, chat(spec), "base_url");
    snprintf(spec, sizeof spec, "openai/x;base_url={%s/" EVIL "/};api_key=k",
             e->base);
    expect_refused(e, chat(spec), "base_url path");
    snprintf(spec, sizeof spec,
             "openai/x;%s;proxy={http://127.0.0.1:9" EVIL "}", base);
    expect_refused(e, chat(spec), "proxy");

    /* the API key: in the spec, from the environment */
    snprintf(spec, sizeof spec, "openai/x;base_url=%s;api_key={k" EVIL "}",
             e->base);
    expect_refused(e, chat(spec), "api_key");
    setenv("LLMUX_TEST_INJECT_KEY", "k" EVIL, 1);
    snprintf(spec, sizeof spec,
             "openai/x;base_url=%s;api_key_env=LLMUX_TEST_INJECT_KEY", e->base);
    expect_refused(e, chat(spec), "api_key from the environment");
    unsetenv("LLMUX_TEST_INJECT_KEY");

    /* request JSON: the model, and the whole spec when trusted */
    {
        char js[512];
        int rc;
        snprintf(js, sizeof js,
                 "{\"model\":\"openai/x\\r\\nX-Evil: 1\",\"messages\":"
                 "[{\"role\":\"user\",\"content\":\"hi\"}]}");
        req = NULL;
        assert_int_equal(llmux_request_new_json(&req, NULL, js, strlen(js)),
                         LLMUX_ECONFIG);
        llmux_request_free(req);
        snprintf(js, sizeof js,
                 "{\"model\":\"openai/x;base_url=%s;api_key=k;"
                 "organization={o\\r\\nX-Evil: 1}\",\"messages\":"
                 "[{\"role\":\"user\",\"content\":\"hi\"}]}",
                 e->base);
        rc = llmux_request_new_json_ex(&req, NULL, js, strlen(js),
                                       LLMUX_JSON_TRUSTED);
        assert_int_equal(rc, 0);
        expect_refused(e, req, "organization in trusted JSON");
    }

    /* a fallback's model */
    snprintf(spec, sizeof spec, "openai/x#status=503;%s;max_retries=0", base);
    req = chat(spec);
    snprintf(spec, sizeof spec, "openai/z" EVIL ";%s", base);
    assert_int_equal(llmux_request_add_fallback(req, spec), LLMUX_ECONFIG);
    llmux_request_free(req);

    /* and a clean request still goes through, with no X-Evil */
    snprintf(spec, sizeof spec, "openai/x;%s", base);
    {
        mock_call c = {0};
        assert_int_equal(mock_env_call(e, chat(spec), &c), 0);
        mock_call_free(&c);
    }
    assert_true(llmux_mock_request_count(e->mock) >= 1);
    assert_clean(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        mock_env_test(test_no_crlf_reaches_the_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
