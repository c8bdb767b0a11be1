/*
 * mock_openai.c: the OpenAI wire protocol for the mock server (WIRE.md §1):
 * chat completions (plain, JSON mode, tool calls; whole or SSE-streamed),
 * legacy text completions, embeddings and the model list, plus OpenAI's
 * Bearer auth and {"error":{message,type,param,code}} bodies.
 *
 * Every answer is a pure function of the request and the response counter.
 * The answer itself and the chat shape live in mock_chat.c (shared with
 * the other protocols); this file holds OpenAI's own parts.
 */
#include "mock_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OAI_FINGERPRINT  "fp_mock"
#define OAI_TOOL_CALL_ID "call_mock_0001"

#define jget    llmux__mock_get
#define jbool   llmux__mock_true
#define jint    llmux__mock_int
#define jadd    json_object_object_add
#define jstring llmux__mock_jstr

static json_object *usage_new(size_t prompt, size_t completion)
{
    json_object *u = json_object_new_object();

    jadd(u, "prompt_tokens", json_object_new_int64((int64_t)prompt));
    jadd(u, "completion_tokens", json_object_new_int64((int64_t)completion));
    jadd(u, "total_tokens",
         json_object_new_int64((int64_t)(prompt + completion)));
    return u;
}

/* ---- errors and auth ---------------------------------------------------- */

static const char *default_type(int status)
{
    if (status == 429)
        return "rate_limit_exceeded";
    if (status >= 500)
        return "server_error";
    return "invalid_request_error";
}

static void oai_error(mock_ctx *ctx, int status, const char *type,
                      const char *code, const char *param, const char *message)
{
    json_object *root = json_object_new_object();
    json_object *err = json_object_new_object();
    char fallback[64];

    if (!message) {
        if (status == 429)
            message = "Rate limit reached for requests (mock).";
        else if (status >= 500)
            message = "The server had an error while processing your "
                      "request. Sorry about that! (mock)";
        else {
            snprintf(fallback, sizeof(fallback), "Mock error %d.", status);
            message = fallback;
        }
    }
    if (!code && status == 429)
        code = "rate_limit_exceeded";
    jadd(err, "message", jstring(message));
    jadd(err, "type", jstring(type ? type : default_type(status)));
    jadd(err, "param", param ? jstring(param) : NULL);
    jadd(err, "code", code ? jstring(code) : NULL);
    jadd(root, "error", err);
    llmux__mock_reply_json(ctx->reply, status, root);
}

static void bad_request(mock_ctx *ctx, const char *message, const char *param)
{
    oai_error(ctx, 400, "invalid_request_error", NULL, param, message);
}

static void oai_stream_error(mock_ctx *ctx, const char *message)
{
    llmux__mock_sse_error(ctx, message, "server_error");
}

static int oai_auth(mock_ctx *ctx)
{
    const char *key = llmux__mock_bearer(ctx);

    if (!key) {
        oai_error(ctx, 401, "invalid_request_error", NULL, NULL,
                  "You didn't provide an API key. You need to provide your "
                  "API key in an Authorization header using Bearer auth "
                  "(i.e. Authorization: Bearer YOUR_KEY). (mock)");
        return -1;
    }
    if (strcmp(key, "bad-key") == 0) {
        /* Like the real service, show only the ends of the key. */
        oai_error(ctx, 401, "invalid_request_error", "invalid_api_key", NULL,
                  "Incorrect API key provided: ba***ey. You can find your "
                  "API key at https://platform.openai.com/account/api-keys.");
        return -1;
    }
    return 0;
}

/* ---- chat completions --------------------------------------------------- */

static const mock_oai_dialect oai_dialect = {
    "chatcmpl-mock-%lu", OAI_FINGERPRINT, OAI_TOOL_CALL_ID,
    MOCK_OAI_REFUSAL | MOCK_OAI_LOGPROBS | MOCK_OAI_TOOLTYPE};

/* n, logprobs and top_logprobs as OpenAI checks them (400 otherwise). */
static int oai_choices_check(mock_ctx *ctx, json_object *req)
{
    json_object *n = jget(req, "n"), *top = jget(req, "top_logprobs");
    if (n && (!json_object_is_type(n, json_type_int) || jint(req, "n") < 1 ||
              jint(req, "n") > 128)) {
        ctx->proto->error(ctx, 400, "invalid_request_error",
                          "integer_below_min_value", "n",
                          "Invalid 'n': integer between 1 and 128 expected.");
        return -1;
    }
    if (top &&
        (!json_object_is_type(top, json_type_int) ||
         jint(req, "top_logprobs") < 0 || jint(req, "top_logprobs") > 20)) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL,
                          "top_logprobs",
                          "Invalid 'top_logprobs': integer between 0 and 20 "
                          "expected.");
        return -1;
    }
    if (top && !jbool(req, "logprobs")) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL,
                          "top_logprobs",
                          "Invalid value for 'top_logprobs': 'logprobs' must "
                          "be set to true.");
        return -1;
    }
    return 0;
}

static void oai_chat(mock_ctx *ctx)
{
    json_object *req = ctx->json;
    mock_chat_in in;
    mock_chat_plan p;

    memset(&in, 0, sizeof(in));
    if (llmux__mock_chat_check(ctx, &in.messages) < 0)
        return;
    in.tool = llmux__mock_pick_tool(req);
    in.max_tokens = jint(req, "max_completion_tokens");
    if (in.max_tokens < 0)
        in.max_tokens = jint(req, "max_tokens");
    in.json_reply = llmux__mock_json_mode(req);
    if (oai_choices_check(ctx, req) < 0 ||
        llmux__mock_chat_plan(ctx, &in, &p) < 0)
        return;
    p.n = jget(req, "n") ? (int)jint(req, "n") : 1;
    p.logprobs = jbool(req, "logprobs");
    p.top_logprobs =
        jget(req, "top_logprobs") ? (int)jint(req, "top_logprobs") : 0;
    if (p.n > 1 && p.tool_name) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "n",
                          "llmux-mock answers n > 1 with text only");
        llmux__mock_chat_plan_free(&p);
        return;
    }
    llmux__mock_oai_chat(ctx, &p, &oai_dialect, jbool(req, "stream"),
                         jbool(jget(req, "stream_options"), "include_usage"));
    llmux__mock_chat_plan_free(&p);
}

/* ---- legacy completions ------------------------------------------------- */

static json_object *text_chunk(mock_ctx *ctx, const char *id, const char *text,
                               size_t len, const char *finish)
{
    json_object *root = json_object_new_object();
    json_object *choices = json_object_new_array();

    jadd(root, "id", jstring(id));
    jadd(root, "object", jstring("text_completion"));
    jadd(root, "created", json_object_new_int64(MOCK_CREATED));
    jadd(root, "model", jstring(ctx->model));
    if (text) {
        json_object *c = json_object_new_object();
        jadd(c, "text", json_object_new_string_len(text, (int)len));
        jadd(c, "index", json_object_new_int(0));
        jadd(c, "logprobs", NULL);
        jadd(c, "finish_reason", finish ? jstring(finish) : NULL);
        json_object_array_add(choices, c);
    }
    jadd(root, "choices", choices);
    return root;
}

static void oai_completions(mock_ctx *ctx)
{
    json_object *req = ctx->json, *prompt = jget(req, "prompt"), *o;
    const char *ptext = NULL, *text;
    char *id;
    mock_chat_plan p;
    int include_usage = jbool(jget(req, "stream_options"), "include_usage");

    if (!ctx->model) {
        bad_request(ctx, "you must provide a model parameter", "model");
        return;
    }
    if (prompt && json_object_is_type(prompt, json_type_string))
        ptext = json_object_get_string(prompt);
    else if (prompt && json_object_is_type(prompt, json_type_array) &&
             json_object_array_length(prompt) > 0) {
        o = json_object_array_get_idx(prompt, 0);
        if (json_object_is_type(o, json_type_string))
            ptext = json_object_get_string(o);
    }
    if (!ptext) {
        bad_request(ctx, "'prompt' must be a string or an array of strings",
                    "prompt");
        return;
    }
    if (llmux__mock_text_plan(ctx, ptext, jint(req, "max_tokens"), &p) < 0)
        return;
    id = llmux__mock_strdupf("cmpl-mock-%lu", ctx->seq);
    if (!id) {
        llmux__mock_chat_plan_free(&p);
        ctx->reply->oom = 1;
        return;
    }
    text = p.content;

    if (jbool(req, "stream")) {
        mock_reply *r = ctx->reply;
        size_t *ends = NULL, n, i, start = 0;
        llmux__mock_reply_stream(r, "text/event-stream");
        n = llmux__mock_pieces(text, &ends);
        for (i = 0; i < n; i++) {
            o = text_chunk(ctx, id, text + start, ends[i] - start, NULL);
            if (include_usage)
                jadd(o, "usage", NULL);
            llmux__mock_sse_json(r, o);
            start = ends[i];
        }
        free(ends);
        o = text_chunk(ctx, id, "", 0, p.finish);
        if (include_usage)
            jadd(o, "usage", NULL);
        llmux__mock_sse_json(r, o);
        if (include_usage) {
            o = text_chunk(ctx, id, NULL, 0, NULL);
            jadd(o, "usage", usage_new(p.prompt_tokens, p.completion_tokens));
            llmux__mock_sse_json(r, o);
        }
        llmux__mock_sse_text(r, "[DONE]");
    } else {
        o = text_chunk(ctx, id, text, strlen(text), p.finish);
        jadd(o, "usage", usage_new(p.prompt_tokens, p.completion_tokens));
        llmux__mock_reply_json(ctx->reply, 200, o);
    }
    llmux__mock_chat_plan_free(&p);
    free(id);
}

/* ---- embeddings and models ---------------------------------------------- */

static void oai_embeddings(mock_ctx *ctx)
{
    llmux__mock_oai_embed_list(ctx, NULL);
}

static void oai_models(mock_ctx *ctx)
{
    static const char *const ids[] = {"gpt-4o-mini", "gpt-4o",
                                      "text-embedding-3-small", "mock-model"};
    json_object *root = json_object_new_object();
    json_object *data = json_object_new_array();
    size_t i;

    jadd(root, "object", jstring("list"));
    for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        json_object *m = json_object_new_object();
        jadd(m, "id", jstring(ids[i]));
        jadd(m, "object", jstring("model"));
        jadd(m, "created", json_object_new_int64(MOCK_CREATED));
        jadd(m, "owned_by", jstring("mock"));
        json_object_array_add(data, m);
    }
    jadd(root, "data", data);
    llmux__mock_reply_json(ctx->reply, 200, root);
}

/* huge=N: a valid chat.completion whose content is n bytes of 'x'. Built
 * around json-c's text so the big content is never copied twice. */
static void oai_huge(mock_ctx *ctx, size_t n)
{
    if (!ctx->model)
        ctx->model = "mock-model";
    llmux__mock_oai_huge(ctx, &oai_dialect, n);
}

/* ---- protocol table entry ----------------------------------------------- */

static const mock_route oai_routes[] = {
    {"POST", "/chat/completions", MOCK_ROUTE_JSON, oai_chat},
    {"POST", "/completions", MOCK_ROUTE_JSON, oai_completions},
    {"POST", "/embeddings", MOCK_ROUTE_JSON, oai_embeddings},
    {"GET", "/models", 0, oai_models},
    {"POST", "/files", 0, llmux__mock_file_upload},
    {"GET", "/files/*/content", MOCK_ROUTE_ID, llmux__mock_file_content},
    {"POST", "/batches", MOCK_ROUTE_JSON, llmux__mock_batch_create},
    {"GET", "/batches/*", MOCK_ROUTE_ID, llmux__mock_batch_get},
    {"POST", "/batches/*/cancel", MOCK_ROUTE_ID, llmux__mock_batch_cancel},
    {NULL, NULL, 0, NULL},
};

const mock_protocol llmux__mock_openai = {
    "openai", NULL, oai_routes, oai_auth, oai_error, oai_stream_error, oai_huge,
};
