/*
 * tests/fuzz/fuzz_plugin.c: one provider plugin's decode, decode_event and
 * decode_error through the plugin ABI, driven as the engine drives them.
 * Built once per plugin (fuzz_openai, fuzz_mistral, fuzz_ollama,
 * fuzz_alephalpha) with that plugin's sources compiled in and registered
 * with llmux_register_provider, so its coverage counts like the core's.
 *
 * Input: byte 0 picks the operation among those the plugin offers; byte 1
 * the mode: bits 0-1: 0 a 2xx answer, 1 an error answer (status from bits
 * 4-7, plugin_statuses), 2 and 3 a stream (chat and completion only; other
 * operations decode a 2xx answer); bit 2 adds a tool and a tool choice,
 * bit 3 a JSON response format, bit 4 two inputs or tokens instead of one.
 * The rest is the body or the stream, framed as the plugin's requests ask.
 *
 * Each input gets a fresh request from
 * "<plugin>/x;api_key=k;base_url=http://h", prepared with llmux__prepare;
 * the answer goes through llmux__decode_answer, or each stream event
 * through llmux__decode_event and llmux__out_merge until the end mark or
 * an error. Results are read back through the public getters and their
 * JSON forms; llmux__prepared_free ends the call (call_end frees the
 * plugin's stream state). Checked: the code agrees with the recorded
 * error, token counts are never below -1 and llmux's own decode errors
 * are one line.
 */
#include <string.h>

#include "fuzz_register.h"

#ifndef FUZZ_PROVIDER
#define FUZZ_PROVIDER "openai"
#endif
#define SPEC FUZZ_PROVIDER "/x;api_key=k;base_url=http://h"

static const long plugin_statuses[16] = {400, 401, 402, 403, 404, 408,
                                         409, 413, 422, 429, 500, 502,
                                         503, 504, 529, 302};

static const llmux_provider *vt;
static int ops[8];
static size_t n_ops;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const struct {
        int op;
        uint64_t cap;
    } all[] = {{LLMUX_OP_CHAT, LLMUX_CAP_CHAT},
               {LLMUX_OP_COMPLETE, LLMUX_CAP_COMPLETE},
               {LLMUX_OP_EMBED, LLMUX_CAP_EMBED},
               {LLMUX_OP_MODELS, LLMUX_CAP_MODELS},
               {LLMUX_OP_TOKENIZE, LLMUX_CAP_TOKENIZE},
               {LLMUX_OP_DETOKENIZE, LLMUX_CAP_DETOKENIZE},
               {LLMUX_OP_EVALUATE, LLMUX_CAP_EVALUATE}};
    size_t i;
    (void)argc;
    (void)argv;
    vt = fuzz_register_plugin();
    for (i = 0; i < sizeof all / sizeof all[0]; i++)
        if (vt->caps & all[i].cap)
            ops[n_ops++] = all[i].op;
    FUZZ_CHECK(n_ops > 0);
    return 0;
}

/* A request of op with the least content it needs, and what mode asks. */
static llmux_request *make_request(int op, unsigned mode, int stream)
{
    llmux_request *r = NULL;
    int two = (mode & 16) != 0;
    FUZZ_CHECK(llmux_request_new(&r, (llmux_op)op, SPEC) == 0);
    switch (op) {
    case LLMUX_OP_CHAT:
        FUZZ_CHECK(llmux_request_add_message(r, LLMUX_ROLE_USER, "x") == 0);
        if (mode & 4) {
            FUZZ_CHECK(llmux_request_add_tool(
                           r, "f", "d",
                           "{\"type\":\"object\",\"properties\":{}}") == 0);
            FUZZ_CHECK(llmux_request_set_tool_choice(r, "auto") == 0);
        }
        if (mode & 8)
            FUZZ_CHECK(llmux_request_set_response_format(
                           r, "{\"type\":\"json_object\"}") == 0);
        break;
    case LLMUX_OP_COMPLETE:
    case LLMUX_OP_TOKENIZE:
    case LLMUX_OP_EVALUATE:
        FUZZ_CHECK(llmux_request_set_prompt(r, "x") == 0);
        if (op == LLMUX_OP_EVALUATE)
            FUZZ_CHECK(llmux_request_set_expected(r, "y") == 0);
        break;
    case LLMUX_OP_EMBED:
        FUZZ_CHECK(llmux_request_add_input(r, "x") == 0);
        if (two)
            FUZZ_CHECK(llmux_request_add_input(r, "y") == 0);
        break;
    case LLMUX_OP_DETOKENIZE:
        FUZZ_CHECK(llmux_request_add_token_id(r, 1) == 0);
        if (two)
            FUZZ_CHECK(llmux_request_add_token_id(r, 2) == 0);
        break;
    default:
        break;
    }
    if (stream)
        FUZZ_CHECK(llmux_request_set_stream(r, 1) == 0);
    return r;
}

static void check_usage(const llmux_usage *u)
{
    FUZZ_CHECK(u->prompt_tokens >= -1 && u->completion_tokens >= -1 &&
               u->total_tokens >= -1 && u->cached_tokens >= -1 &&
               u->reasoning_tokens >= -1);
}

/* Every error has a message; llmux's own (a body it cannot decode: no
 * provider error type) is one line. The provider's may be several. */
static void check_message(int code, const char *type, const char *msg)
{
    FUZZ_CHECK(msg != NULL);
    if (code == LLMUX_EPROTO && !type)
        FUZZ_CHECK(!strchr(msg, '\n'));
}

/* Reads everything back, as an application would. */
static void read_response(const llmux_response *res, int rc)
{
    const llmux_error *e = llmux_response_error(res);
    size_t i, n, len, dim;
    long long id;
    char *json;

    if (rc) {
        FUZZ_CHECK(rc < 0 && e != NULL && e->code == rc);
        check_message(rc, e->type, e->message);
    } else {
        FUZZ_CHECK(e == NULL);
    }
    check_usage(llmux_response_usage(res));
    (void)llmux_response_text(res, &len);
    n = llmux_response_tool_call_count(res);
    for (i = 0; i < n; i++)
        FUZZ_CHECK(llmux_response_tool_call(res, i)->arguments != NULL);
    FUZZ_CHECK(llmux_response_tool_call(res, n) == NULL);
    n = llmux_response_embedding_count(res);
    for (i = 0; i < n; i++)
        FUZZ_CHECK(llmux_response_embedding(res, i, &dim) != NULL || !dim);
    n = llmux_response_model_count(res);
    for (i = 0; i < n; i++)
        FUZZ_CHECK(llmux_response_model_id(res, i) != NULL);
    n = llmux_response_token_count(res);
    for (i = 0; i < n; i++) {
        (void)llmux_response_token(res, i, &id);
        FUZZ_CHECK(id >= -1);
    }
    json = llmux_response_to_json(res);
    FUZZ_CHECK(json != NULL);
    llmux_free(json);
}

typedef struct stream_run {
    llmux__prepared *p;
    llmux_chunk ch;
    llmux_response *acc;
    int done, err;
} stream_run;

static int on_event(void *ud, const llmux_event *ev)
{
    stream_run *s = ud;
    const llmux_usage *u;
    char *json;
    int rc;
    if (s->done || s->err)
        return 0; /* the engine ignores what follows the end */
    rc = llmux__decode_event(s->p, ev, &s->ch);
    if (rc < 0) {
        FUZZ_CHECK(s->ch.o.err_code == rc);
        check_message(rc, s->ch.o.err_type, s->ch.o.err_msg);
        s->err = rc;
        return 0;
    }
    FUZZ_CHECK(rc == 0 || rc == LLMUX_EVENT_DONE);
    if (rc == LLMUX_EVENT_DONE)
        s->done = 1;
    if ((u = llmux_chunk_usage(&s->ch)) != NULL)
        check_usage(u);
    json = llmux_chunk_to_json(&s->ch);
    FUZZ_CHECK(json != NULL);
    llmux_free(json);
    FUZZ_CHECK(llmux__out_merge(&s->acc->o, &s->ch.o) == 0);
    return 0;
}

static void run_stream(llmux__prepared *p, int op, const char *body, size_t len)
{
    llmux__framer f;
    stream_run s;
    int framing = p->http.framing ? p->http.framing : vt->framing, rc;

    memset(&s, 0, sizeof s);
    s.p = p;
    llmux__out_init(&s.ch.o, op, 1);
    s.acc = llmux__response_new(op, FUZZ_PROVIDER);
    FUZZ_CHECK(s.acc != NULL);
    s.ch.acc = &s.acc->o;
    llmux__framer_init(&f, framing, 1 << 20);
    rc = llmux__framer_feed(&f, body, len, on_event, &s);
    if (rc == 0)
        rc = llmux__framer_finish(&f, on_event, &s);
    FUZZ_CHECK(rc == 0 || rc == LLMUX_ETOOBIG);
    llmux__framer_free(&f);
    FUZZ_CHECK(llmux__out_flush(&s.acc->o) == 0); /* as the engine does */
    if (!s.err)
        read_response(s.acc, 0);
    llmux__out_free(&s.ch.o);
    llmux_response_free(s.acc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llmux_request *r;
    llmux__prepared p;
    llmux_response *res;
    unsigned mode;
    int op, stream, rc;
    long status = 200;
    char *body;
    size_t len;

    if (size < 2)
        return 0;
    op = ops[data[0] % n_ops];
    mode = data[1];
    stream = (mode & 2) && (op == LLMUX_OP_CHAT || op == LLMUX_OP_COMPLETE);
    if ((mode & 3) == 1)
        status = plugin_statuses[mode >> 4];
    /* NUL-terminated, as the ABI promises, and no byte more */
    len = size - 2;
    body = malloc(len + 1);
    FUZZ_CHECK(body != NULL);
    memcpy(body, data + 2, len);
    body[len] = '\0';

    r = make_request(op, mode, stream);
    rc = llmux__prepare(r, NULL, &p);
    if (rc != 0) {
        /* the plugin may refuse what mode asked (tools, formats) */
        FUZZ_CHECK(rc == LLMUX_ENOTSUP || rc == LLMUX_EINVAL);
    } else if (stream) {
        run_stream(&p, op, body, len);
    } else {
        res = llmux__response_new(op, FUZZ_PROVIDER);
        FUZZ_CHECK(res != NULL);
        rc = llmux__decode_answer(&p, status, "application/json", body, len,
                                  res);
        if (status != 200)
            FUZZ_CHECK(rc < 0);
        read_response(res, rc);
        llmux_response_free(res);
    }
    llmux__prepared_free(&p);
    llmux_request_free(r);
    free(body);
    return 0;
}
