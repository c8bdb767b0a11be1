/*
 * tests/mock/test_hooks.c: the client hooks end to end against llmux-mock:
 * every attempt's start and end told exactly once and in order, retries,
 * fallbacks, streams and cancellation included; the request's end right
 * before its done callback; what before_send changes reaching the server,
 * and its refusal.
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

/* What the hooks saw, in order. */
typedef struct seen {
    int kind;
    int attempt, fallback, code, stream, port;
    long http_status;
    char next[16], error_type[32], provider[32], operation[32], host[64],
        url[256], model[64], response_id[64];
    double duration, ttfc, retry_delay;
    long long sent, received;
    long in_tok, out_tok;
    int done_before; /* the request's done callback had run already */
} seen;

static struct recorder {
    seen ev[32];
    int n;
    int before_send; /* before_send calls */
    int refuse;      /* before_send refuses */
    int cancel;      /* before_send cancels its own request */
    int edit;        /* before_send edits body and headers */
} rec;

static void copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static void on_hook(llmux_request *req, const llmux_hook_event *ev, void *ud)
{
    struct recorder *r = ud;
    const mock_call *mc = llmux_request_userdata(req);
    seen *s;
    assert_ptr_equal(r, &rec);
    assert_true(ev->struct_size >= sizeof *ev);
    assert_true(r->n < 32);
    s = &r->ev[r->n++];
    memset(s, 0, sizeof *s);
    s->kind = ev->kind;
    s->attempt = ev->attempt;
    s->fallback = ev->fallback;
    s->code = ev->code;
    s->stream = ev->stream;
    s->port = ev->server_port;
    s->http_status = ev->http_status;
    copy(s->next, sizeof s->next, ev->next);
    copy(s->error_type, sizeof s->error_type, ev->error_type);
    copy(s->provider, sizeof s->provider, ev->provider_name);
    copy(s->operation, sizeof s->operation, ev->operation_name);
    copy(s->host, sizeof s->host, ev->server_address);
    copy(s->url, sizeof s->url, ev->url);
    copy(s->model, sizeof s->model, ev->request_model);
    copy(s->response_id, sizeof s->response_id, ev->response_id);
    s->duration = ev->duration_s;
    s->ttfc = ev->time_to_first_chunk_s;
    s->retry_delay = ev->retry_delay_s;
    s->sent = ev->bytes_sent;
    s->received = ev->bytes_received;
    s->in_tok = ev->input_tokens;
    s->out_tok = ev->output_tokens;
    s->done_before = mc && mc->calls > 0;
    if (ev->kind == LLMUX_HOOK_ATTEMPT_START)
        assert_null(ev->response);
    else
        assert_non_null(ev->response);
}

static int on_before_send(llmux_request *req, llmux_http_edit *e, void *ud)
{
    struct recorder *r = ud;
    r->before_send++;
    if (r->cancel)
        assert_int_equal(llmux_request_cancel(req), 0);
    assert_string_equal(llmux_http_edit_method(e), "POST");
    assert_non_null(strstr(llmux_http_edit_url(e), "/chat/completions"));
    if (r->edit) {
        size_t len;
        const char *b = llmux_http_edit_body(e, &len);
        char *nb = malloc(len + 32);
        /* a field of our own, at the body's start */
        assert_true(len > 2 && b[0] == '{');
        memcpy(nb, "{\"user\":\"hooked\",", 17);
        memcpy(nb + 17, b + 1, len - 1);
        assert_int_equal(llmux_http_edit_set_body(e, nb, len + 16), 0);
        free(nb);
        assert_int_equal(llmux_http_edit_set_header(e, "X-Trace: t-1"), 0);
        assert_int_equal(
            llmux_http_edit_set_header(e, "authorization: Bearer sk-hooked"),
            0);
        assert_int_equal(llmux_http_edit_set_header(e, "no colon"),
                         LLMUX_EINVAL);
        assert_int_equal(llmux_http_edit_set_header(e, ": v"), LLMUX_EINVAL);
        assert_int_equal(llmux_http_edit_set_header(e, "X-A: b\r\nX-C: d"),
                         LLMUX_EINVAL);
    }
    return r->refuse;
}

static const llmux_client_options hooked = {
    LLMUX_CLIENT_OPTIONS_DEFAULTS, .hook = on_hook,
    .before_send = on_before_send, .hook_userdata = &rec};
static mock_env_config hooked_env = {&hooked, NULL};

static llmux_request *chat(mock_env *e, const char *model, const char *fault)
{
    llmux_request *req;
    char spec[512];
    snprintf(spec, sizeof spec, "openai/%s;base_url=%s;api_key=sk-test", model,
             e->base);
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, "a b c"),
                     0);
    if (fault) {
        char h[256];
        snprintf(h, sizeof h, "X-Mock-Fault: %s", fault);
        assert_int_equal(llmux_request_add_header(req, h), 0);
    }
    return req;
}

static void reset(void)
{
    memset(&rec, 0, sizeof rec);
}

/* The kinds seen, as a string: S(tart) E(nd) R(equest end). */
static const char *kinds(void)
{
    static char k[40];
    int i;
    for (i = 0; i < rec.n; i++)
        k[i] = rec.ev[i].kind == LLMUX_HOOK_ATTEMPT_START ? 'S'
               : rec.ev[i].kind == LLMUX_HOOK_ATTEMPT_END ? 'E'
                                                          : 'R';
    k[i] = '\0';
    return k;
}

static void test_one_attempt(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    const seen *s, *end, *req_end;
    reset();
    assert_int_equal(mock_env_call(e, chat(e, "gpt-4o-mini", NULL), &c), 0);
    assert_string_equal(kinds(), "SER");
    assert_int_equal(rec.before_send, 1);
    s = &rec.ev[0];
    end = &rec.ev[1];
    req_end = &rec.ev[2];
    assert_string_equal(s->operation, "chat");
    assert_string_equal(s->provider, "openai");
    assert_string_equal(s->model, "gpt-4o-mini");
    assert_string_equal(s->host, "127.0.0.1");
    assert_int_equal(s->port, llmux_mock_port(e->mock));
    assert_non_null(strstr(s->url, "/v1/chat/completions"));
    assert_int_equal(s->attempt, 1);
    assert_int_equal(s->fallback, 0);
    assert_int_equal(s->stream, 0);
    assert_true(s->duration == 0 && s->sent == -1 && s->in_tok == -1);
    assert_int_equal(end->code, 0);
    assert_int_equal(end->http_status, 200);
    assert_string_equal(end->error_type, "");
    assert_string_equal(end->next, "");
    assert_true(end->duration > 0);
    assert_true(end->ttfc == -1); /* not a stream */
    assert_true(end->sent > 0 && end->received > 0);
    assert_int_equal(end->in_tok, 3);
    assert_int_equal(end->out_tok, 6);
    assert_string_equal(end->response_id, "chatcmpl-mock-1");
    assert_int_equal(req_end->code, 0);
    assert_int_equal(req_end->attempt, 1);
    assert_true(req_end->duration >= 0);
    /* the request's end comes before its done callback, never after */
    assert_false(req_end->done_before);
    mock_call_free(&c);
}

static void test_retry_then_success(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    reset();
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=503;retry_after=0"),
                     0);
    assert_int_equal(mock_env_call(e, chat(e, "gpt-4o-mini", NULL), &c), 0);
    assert_string_equal(kinds(), "SESER");
    assert_int_equal(rec.before_send, 1); /* once per config string */
    assert_int_equal(rec.ev[1].http_status, 503);
    assert_int_equal(rec.ev[1].code, LLMUX_EPROVIDER);
    assert_string_equal(rec.ev[1].error_type, "LLMUX_EPROVIDER");
    assert_string_equal(rec.ev[1].next, "retry");
    assert_true(rec.ev[1].retry_delay >= 0);
    assert_int_equal(rec.ev[2].attempt, 2);
    assert_int_equal(rec.ev[3].code, 0);
    assert_true(rec.ev[3].retry_delay == -1);
    assert_int_equal(rec.ev[4].attempt, 2);
    mock_call_free(&c);
}

static void test_fallback(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *req = chat(e, "gpt-4o-mini#status=500", NULL);
    char fb[512];
    reset();
    assert_int_equal(llmux_request_set_max_retries(req, 0), 0);
    snprintf(fb, sizeof fb, "openai/gpt-4o;base_url=%s;api_key=sk-test",
             e->base);
    assert_int_equal(llmux_request_add_fallback(req, fb), 0);
    assert_int_equal(mock_env_call(e, req, &c), 0);
    assert_string_equal(kinds(), "SESER");
    assert_int_equal(rec.before_send, 2); /* the fallback's own request */
    assert_string_equal(rec.ev[1].next, "fallback");
    assert_int_equal(rec.ev[1].http_status, 500);
    assert_int_equal(rec.ev[2].fallback, 1);
    assert_int_equal(rec.ev[2].attempt, 1);
    assert_string_equal(rec.ev[2].model, "gpt-4o");
    assert_int_equal(rec.ev[4].fallback, 1);
    assert_int_equal(rec.ev[4].code, 0);
    mock_call_free(&c);
}

static void test_stream_and_cancel(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *req = chat(e, "gpt-4o-mini", NULL);
    reset();
    assert_int_equal(llmux_request_set_stream(req, 1), 0);
    assert_int_equal(mock_env_call(e, req, &c), 0);
    assert_string_equal(kinds(), "SER");
    assert_int_equal(rec.ev[0].stream, 1);
    assert_true(rec.ev[1].ttfc >= 0 && rec.ev[1].ttfc <= rec.ev[1].duration);
    mock_call_free(&c);

    /* a stream that stalls, cancelled: its attempt still ends, once */
    reset();
    req = chat(e, "gpt-4o-mini", "stall_after=2");
    assert_int_equal(llmux_request_set_stream(req, 1), 0);
    mock_env_submit(e, req, &c);
    while (!c.chunks)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(llmux_request_cancel(req), 0);
    mock_env_wait(e, &c);
    assert_int_equal(c.status, LLMUX_ECANCELED);
    assert_string_equal(kinds(), "SER");
    assert_int_equal(rec.ev[1].code, LLMUX_ECANCELED);
    assert_int_equal(rec.ev[2].code, LLMUX_ECANCELED);
    mock_call_free(&c);
}

static void test_before_send_edits(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    const llmux_mock_record *r;
    reset();
    rec.edit = 1;
    assert_int_equal(mock_env_call(e, chat(e, "gpt-4o-mini", NULL), &c), 0);
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
    r = llmux_mock_request(e->mock, 0);
    assert_non_null(strstr(r->body, "\"user\":\"hooked\""));
    assert_non_null(strstr(r->body, "\"messages\""));
    assert_string_equal(llmux_mock_record_header(r, "X-Trace"), "t-1");
    /* replaced, not added beside the key */
    assert_string_equal(llmux_mock_record_header(r, "Authorization"),
                        "Bearer sk-hooked");
    mock_call_free(&c);
}

static void test_before_send_refuses(void **state)
{
    mock_env *e = *state;
    llmux_request *req = chat(e, "gpt-4o-mini", NULL);
    reset();
    rec.refuse = 1;
    assert_int_equal(llmux_submit(e->client, req, NULL, NULL, NULL),
                     LLMUX_EUSER);
    assert_non_null(strstr(llmux_request_errmsg(req), "before_send"));
    assert_int_equal(rec.n, 0); /* no attempt started */
    assert_int_equal(llmux_mock_request_count(e->mock), 0);
    llmux_request_free(req);
}

/* before_send cancelling its own request: the attempt never starts,
 * llmux_submit() says so, and the queue it may come from stays whole. */
static void test_before_send_cancels(void **state)
{
    mock_env *e = *state;
    llmux_request *req = chat(e, "gpt-4o-mini", NULL);
    mock_call c = {0};
    reset();
    rec.cancel = 1;
    assert_int_equal(llmux_submit(e->client, req, NULL, NULL, NULL),
                     LLMUX_ECANCELED);
    assert_non_null(strstr(llmux_request_errmsg(req), "before_send"));
    assert_int_equal(rec.n, 0);
    assert_int_equal(llmux_mock_request_count(e->mock), 0);
    llmux_request_free(req);
    /* the next request is not affected */
    rec.cancel = 0;
    assert_int_equal(mock_env_call(e, chat(e, "gpt-4o-mini", NULL), &c), 0);
    mock_call_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        mock_env_test_with(test_one_attempt, &hooked_env),
        mock_env_test_with(test_retry_then_success, &hooked_env),
        mock_env_test_with(test_fallback, &hooked_env),
        mock_env_test_with(test_stream_and_cancel, &hooked_env),
        mock_env_test_with(test_before_send_edits, &hooked_env),
        mock_env_test_with(test_before_send_refuses, &hooked_env),
        mock_env_test_with(test_before_send_cancels, &hooked_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
