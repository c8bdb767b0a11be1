/*
 * tests/mock/test_credentials.c: the client's credential callback end to
 * end against llmux-mock: what it is asked, the header its answer becomes,
 * answers cached until they expire, one query for many waiting requests,
 * answers given later on the loop, the refresh after a 401, failures,
 * the configured key, Azure's api-key header against a bearer token, and
 * requests cancelled, timed out or closed while
 * they wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "mock/mock_env.h"

/* What the callback is to answer, and what it was asked. */
static struct cred {
    int calls;
    int later;              /* keep the reply; the test answers it */
    int fail;               /* answer with llmux_credential_fail */
    int fail_from;          /* from this call on (0: fail says) */
    const char *secrets[4]; /* the answer of call i (the last one after) */
    int kind;
    int64_t expires; /* 0: never; 1: long expired; >1: ms from now */
    llmux_credential_reply *reply;
    char provider[32], endpoint[128], model[64], url[256];
    int refresh[8];
} cr;

static void reset(void)
{
    memset(&cr, 0, sizeof cr);
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void answer(llmux_credential_reply *r)
{
    int i = cr.calls - 1 < 3 ? cr.calls - 1 : 3;
    const char *s = cr.secrets[i] ? cr.secrets[i] : cr.secrets[0];
    int64_t exp = cr.expires > 1 ? now_ms() + cr.expires : cr.expires;
    if (cr.fail || (cr.fail_from && cr.calls >= cr.fail_from)) {
        llmux_credential_fail(r, LLMUX_EAUTH, "vault is sealed");
        return;
    }
    assert_int_equal(llmux_credential_answer(r, s, cr.kind, exp), 0);
}

static void on_credential(const llmux_credential_query *q,
                          llmux_credential_reply *r, void *ud)
{
    assert_ptr_equal(ud, &cr);
    assert_true(q->struct_size >= sizeof *q);
    if (cr.calls < 8)
        cr.refresh[cr.calls] = q->refresh;
    cr.calls++;
    snprintf(cr.provider, sizeof cr.provider, "%s", q->provider);
    snprintf(cr.endpoint, sizeof cr.endpoint, "%s", q->endpoint);
    snprintf(cr.model, sizeof cr.model, "%s", q->model ? q->model : "");
    snprintf(cr.url, sizeof cr.url, "%s", q->url);
    if (cr.later) {
        assert_null(cr.reply); /* one query at a time */
        cr.reply = r;
        return;
    }
    answer(r);
}

static const llmux_client_options with_cb = {LLMUX_CLIENT_OPTIONS_DEFAULTS,
                                             .credential = on_credential,
                                             .credential_userdata = &cr};
static mock_env_config cb_env = {&with_cb, NULL};

static const llmux_client_options with_cb_deadline = {
    LLMUX_CLIENT_OPTIONS_DEFAULTS, .timeout_ms = 100,
    .credential = on_credential, .credential_userdata = &cr};
static mock_env_config deadline_env = {&with_cb_deadline, NULL};

/* A chat request to the mock; `key` is the config string's api_key (NULL:
 * none). */
static llmux_request *chat(mock_env *e, const char *key)
{
    llmux_request *req;
    char spec[512];
    snprintf(spec, sizeof spec, "openai/gpt-4o-mini;base_url=%s%s%s", e->base,
             key ? ";api_key=" : "", key ? key : "");
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, "hi"), 0);
    return req;
}

/* Replaces the environment's client with one made with `o`. */
static void new_client(mock_env *e, const llmux_client_options *o)
{
    llmux_client_options own = *o;
    mock_env_close_client(e);
    e->client_closed = 0;
    own.loop = &e->loop;
    assert_int_equal(llmux_client_new(&e->client, &own), 0);
}

static void set_flag(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static const char *sent_auth(mock_env *e, size_t i)
{
    const llmux_mock_record *r = llmux_mock_request(e->mock, i);
    assert_non_null(r);
    return llmux_mock_record_header(r, "Authorization");
}

/* The answer given inside the call becomes the Bearer header, and is
 * asked for once while it lasts; the query names provider, endpoint,
 * model and URL. */
static void test_answer_cached(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    char ep[128];
    int i;
    reset();
    cr.secrets[0] = "sk-from-vault";
    cr.expires = 3600 * 1000; /* an hour from now */
    for (i = 0; i < 3; i++) {
        assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
        mock_call_free(&c);
    }
    assert_int_equal(cr.calls, 1);
    assert_int_equal(cr.refresh[0], 0);
    assert_string_equal(cr.provider, "openai");
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", llmux_mock_port(e->mock));
    assert_string_equal(cr.endpoint, ep);
    assert_string_equal(cr.model, "gpt-4o-mini");
    assert_non_null(strstr(cr.url, "/v1/chat/completions"));
    for (i = 0; i < 3; i++)
        assert_string_equal(sent_auth(e, (size_t)i), "Bearer sk-from-vault");
}

/* An answer that expires is asked for again after it; one already
 * expired serves only the request that asked. */
static void test_expiry(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    uv_timer_t t;
    int fired = 0;
    reset();
    cr.secrets[0] = "sk-short";
    /* expired on arrival: every request asks */
    cr.expires = 1;
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    mock_call_free(&c);
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    mock_call_free(&c);
    assert_int_equal(cr.calls, 2);
    assert_string_equal(sent_auth(e, 1), "Bearer sk-short");
    cr.calls = 0;
    cr.expires = 300; /* used for 270 ms */
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    mock_call_free(&c);
    assert_int_equal(cr.calls, 1);
    /* 400 ms later it has expired */
    uv_timer_init(&e->loop, &t);
    t.data = &fired;
    uv_timer_start(&t, set_flag, 400, 0);
    mock_env_run_until(e, &fired);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    mock_call_free(&c);
    assert_int_equal(cr.calls, 2);
}

/* Answered later, from the loop: every request that needed it meanwhile
 * waited for that one query, and all of them go on with its answer. */
static void test_async_single_query(void **state)
{
    mock_env *e = *state;
    mock_call c[5];
    size_t i;
    reset();
    cr.later = 1;
    cr.secrets[0] = "sk-later";
    memset(c, 0, sizeof c);
    for (i = 0; i < 5; i++)
        mock_env_submit(e, chat(e, NULL), &c[i]);
    assert_int_equal(cr.calls, 1);
    assert_non_null(cr.reply);
    assert_int_equal(llmux_mock_request_count(e->mock), 0); /* all wait */
    answer(cr.reply);
    cr.reply = NULL;
    for (i = 0; i < 5; i++)
        assert_int_equal(c[i].calls, 0); /* not inside the answer */
    mock_env_wait_all(e, c, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(c[i].status, 0);
        assert_string_equal(sent_auth(e, i), "Bearer sk-later");
    }
    mock_call_free_all(c, 5);
    assert_int_equal(cr.calls, 1);
}

/* A 401 to the answer: it is dropped, the callback is asked again with
 * refresh set, and the request goes on with the new one. A second 401
 * ends the request: the refresh is tried once. */
static void test_refresh_after_401(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    reset();
    cr.secrets[0] = "bad-key"; /* the mock refuses it */
    cr.secrets[1] = "sk-fresh";
    cr.expires = 0; /* never expires: only the 401 drops it */
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    assert_int_equal(llmux_response_attempts(c.res), 2);
    mock_call_free(&c);
    assert_int_equal(cr.calls, 2);
    assert_int_equal(cr.refresh[0], 0);
    assert_int_equal(cr.refresh[1], 1);
    assert_string_equal(sent_auth(e, 0), "Bearer bad-key");
    assert_string_equal(sent_auth(e, 1), "Bearer sk-fresh");
    /* the fresh one is cached */
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    mock_call_free(&c);
    assert_int_equal(cr.calls, 2);

    reset();
    new_client(e, &with_cb);
    cr.secrets[0] = "bad-key";
    cr.secrets[1] = "bad-key";
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), LLMUX_EAUTH);
    assert_int_equal(cr.calls, 2);
    assert_int_equal(llmux_response_attempts(c.res), 2);
    /* the key the mock echoes is masked in the message */
    assert_null(strstr(c.err->message, "bad-key"));
    mock_call_free(&c);
}

/* A failed answer ends the requests waiting for it with its code and
 * message, and is not cached. */
static void test_fail(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *req = chat(e, NULL);
    reset();
    cr.fail = 1;
    assert_int_equal(llmux_submit(e->client, req, NULL, NULL, NULL),
                     LLMUX_EAUTH);
    assert_non_null(strstr(llmux_request_errmsg(req), "vault is sealed"));
    llmux_request_free(req);
    assert_int_equal(cr.calls, 1);
    /* later, from the loop */
    cr.later = 1;
    mock_env_submit(e, chat(e, NULL), &c);
    assert_int_equal(cr.calls, 2);
    answer(cr.reply);
    cr.reply = NULL;
    mock_env_wait(e, &c);
    assert_int_equal(c.status, LLMUX_EAUTH);
    assert_string_equal(c.err->message, "vault is sealed");
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), 0);
}

/* A NULL answer sends the configured key; without one a provider that
 * needs a key fails with LLMUX_ENOKEY naming its variable. A bearer
 * token goes in Authorization; a header the request sets itself wins. */
static void test_configured_key_and_kinds(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *req;
    reset();
    cr.expires = 1; /* ask every time */
    cr.secrets[0] = NULL;
    assert_int_equal(mock_env_call(e, chat(e, "sk-configured"), &c), 0);
    mock_call_free(&c);
    assert_string_equal(sent_auth(e, 0), "Bearer sk-configured");
    req = chat(e, NULL);
    unsetenv("OPENAI_API_KEY");
    assert_int_equal(llmux_submit(e->client, req, NULL, NULL, NULL),
                     LLMUX_ENOKEY);
    assert_non_null(strstr(llmux_request_errmsg(req), "OPENAI_API_KEY"));
    llmux_request_free(req);

    cr.secrets[0] = "tok-entra";
    cr.kind = LLMUX_CREDENTIAL_BEARER;
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    mock_call_free(&c);
    assert_string_equal(sent_auth(e, 1), "Bearer tok-entra");

    req = chat(e, NULL);
    assert_int_equal(
        llmux_request_add_header(req, "Authorization: Bearer sk-own"), 0);
    cr.calls = 0;
    assert_int_equal(mock_env_call(e, req, &c), 0);
    mock_call_free(&c);
    assert_string_equal(sent_auth(e, 2), "Bearer sk-own");
    assert_int_equal(cr.calls, 0); /* not asked: the request has its own */
}

/* A failure answered for a retry ends the request with its own message,
 * not the one of the attempt before. */
static void test_fail_on_retry(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    reset();
    cr.secrets[0] = "sk-1";
    cr.expires = 1; /* ask for each attempt */
    cr.fail_from = 2;
    assert_int_equal(llmux_mock_push_fault(e->mock, "status=500"), 0);
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), LLMUX_EAUTH);
    assert_int_equal(cr.calls, 2);
    assert_string_equal(c.err->message, "vault is sealed");
    mock_call_free(&c);
    assert_int_equal(llmux_mock_request_count(e->mock), 1);
}

/* Azure takes a key in its api-key header and an Entra ID token as a
 * bearer token: the kind of the answer picks the header. */
static void test_azure_key_or_token(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    const llmux_mock_record *r;
    llmux_request *req;
    char spec[256];
    int kind;
    reset();
    cr.expires = 1; /* ask every time */
    snprintf(spec, sizeof spec,
             "azure/dep-1;base_url=http://127.0.0.1:%d;api_version=2024-10-21",
             llmux_mock_port(e->mock));
    for (kind = 0; kind < 2; kind++) {
        cr.kind = kind ? LLMUX_CREDENTIAL_BEARER : LLMUX_CREDENTIAL_KEY;
        cr.secrets[0] = kind ? "tok-entra" : "az-key";
        assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
        assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, "hi"),
                         0);
        assert_int_equal(mock_env_call(e, req, &c), 0);
        mock_call_free(&c);
        assert_string_equal(cr.provider, "azure");
        r = llmux_mock_request(e->mock, (size_t)kind);
        assert_non_null(r);
        assert_string_equal(r->path, "/openai/deployments/dep-1/chat/"
                                     "completions?api-version=2024-10-21");
        if (kind) {
            assert_string_equal(llmux_mock_record_header(r, "Authorization"),
                                "Bearer tok-entra");
            assert_null(llmux_mock_record_header(r, "api-key"));
        } else {
            assert_string_equal(llmux_mock_record_header(r, "api-key"),
                                "az-key");
            assert_null(llmux_mock_record_header(r, "Authorization"));
        }
    }
}

/* Bad answers: a control character or an unknown kind fail the waiting
 * request (LLMUX_ECONFIG) and llmux_credential_answer says EINVAL. */
static void bad_answer(const llmux_credential_query *q,
                       llmux_credential_reply *r, void *ud)
{
    (void)q;
    cr.calls++;
    if (*(int *)ud)
        assert_int_equal(llmux_credential_answer(r, "sk-a\r\nX-Evil: 1",
                                                 LLMUX_CREDENTIAL_KEY, 0),
                         LLMUX_EINVAL);
    else
        assert_int_equal(llmux_credential_answer(r, "sk-a", 7, 0),
                         LLMUX_EINVAL);
}

static void test_bad_answers(void **state)
{
    mock_env *e = *state;
    llmux_client_options o = with_cb;
    llmux_request *req;
    int crlf;
    reset();
    o.credential = bad_answer;
    o.credential_userdata = &crlf;
    new_client(e, &o);
    for (crlf = 0; crlf < 2; crlf++) {
        req = chat(e, NULL);
        assert_int_equal(llmux_submit(e->client, req, NULL, NULL, NULL),
                         LLMUX_ECONFIG);
        assert_non_null(strstr(llmux_request_errmsg(req), "credential"));
        llmux_request_free(req);
    }
    assert_int_equal(cr.calls, 2);
    assert_int_equal(llmux_mock_request_count(e->mock), 0);
}

/* Cancelled while it waits: done with LLMUX_ECANCELED, nothing sent; the
 * answer that comes later serves nobody and frees its reply. */
static void test_cancel_while_waiting(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    llmux_request *req = chat(e, NULL);
    reset();
    cr.later = 1;
    cr.secrets[0] = "sk-late";
    mock_env_submit(e, req, &c);
    assert_int_equal(llmux_request_cancel(req), 0);
    mock_env_wait(e, &c);
    assert_int_equal(c.status, LLMUX_ECANCELED);
    mock_call_free(&c);
    answer(cr.reply);
    cr.reply = NULL;
    assert_int_equal(llmux_mock_request_count(e->mock), 0);
    /* the answer was cached for the next one */
    assert_int_equal(mock_env_call(e, chat(e, NULL), &c), 0);
    mock_call_free(&c);
    assert_int_equal(cr.calls, 1);
}

/* The total deadline runs while a request waits for its credential. */
static void test_deadline_while_waiting(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    reset();
    cr.later = 1;
    mock_env_submit(e, chat(e, NULL), &c);
    mock_env_wait(e, &c);
    assert_int_equal(c.status, LLMUX_ETIMEDOUT);
    assert_non_null(strstr(c.err->message, "credential"));
    mock_call_free(&c);
    cr.secrets[0] = "sk-x";
    answer(cr.reply);
    cr.reply = NULL;
}

/* The client closes with a query pending: its requests end cancelled,
 * and the answer given after the close only frees the reply. */
static void test_close_while_waiting(void **state)
{
    mock_env *e = *state;
    mock_call c = {0};
    reset();
    cr.later = 1;
    mock_env_submit(e, chat(e, NULL), &c);
    mock_env_close_client(e);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, LLMUX_ECANCELED);
    mock_call_free(&c);
    cr.secrets[0] = "sk-after";
    answer(cr.reply);
    cr.reply = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        mock_env_test_with(test_answer_cached, &cb_env),
        mock_env_test_with(test_expiry, &cb_env),
        mock_env_test_with(test_async_single_query, &cb_env),
        mock_env_test_with(test_refresh_after_401, &cb_env),
        mock_env_test_with(test_fail, &cb_env),
        mock_env_test_with(test_configured_key_and_kinds, &cb_env),
        mock_env_test_with(test_fail_on_retry, &cb_env),
        mock_env_test_with(test_azure_key_or_token, &cb_env),
        mock_env_test_with(test_bad_answers, &cb_env),
        mock_env_test_with(test_cancel_while_waiting, &cb_env),
        mock_env_test_with(test_deadline_while_waiting, &deadline_env),
        mock_env_test_with(test_close_while_waiting, &cb_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
