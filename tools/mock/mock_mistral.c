/*
 * mock_mistral.c: Mistral's wire protocol for the mock server (WIRE.md §2),
 * served under /mistral: /v1/chat/completions, /v1/fim/completions,
 * /v1/embeddings and GET /v1/models.
 *
 * Like the real service it validates strictly: a body member outside the
 * endpoint's published fields (max_completion_tokens, seed, stream_options,
 * store, user, ...) gets 422 extra_forbidden, and a `tool` message directly
 * followed by a `user` message gets 400 invalid_request_message_order.
 * Replies are OpenAI's chat shape in Mistral's dialect (mock_chat.c): ids of
 * 32 hex digits, tool calls without type, streams whose last content chunk
 * carries finish_reason and usage, "p" padding. Error bodies take the
 * shape the service uses for each status: {"detail":..} (401),
 * {"message":..} (429), {"object":"error","message":{"detail":[..]}} (422)
 * and the flat {"object":"error","message","type","param","code"} else.
 */
#include "mock_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define jget    llmux__mock_get
#define jstr    llmux__mock_str
#define jint    llmux__mock_int
#define jadd    json_object_object_add
#define jstring llmux__mock_jstr

#define MIS_ID_FMT "6d6f636b%024lx" /* 32 hex digits, "mock" in front */

static const mock_oai_dialect mis_dialect = {MIS_ID_FMT, NULL, "call_mock_0001",
                                             MOCK_OAI_MISTRAL};

/* The published request fields of each endpoint; anything else is 422. */
static const char *const chat_fields[] = {"model",
                                          "messages",
                                          "temperature",
                                          "top_p",
                                          "max_tokens",
                                          "stream",
                                          "stop",
                                          "random_seed",
                                          "response_format",
                                          "tools",
                                          "tool_choice",
                                          "presence_penalty",
                                          "frequency_penalty",
                                          "n",
                                          "parallel_tool_calls",
                                          "prediction",
                                          "safe_prompt",
                                          "prompt_mode",
                                          "reasoning_effort",
                                          "metadata",
                                          "prompt_cache_key",
                                          "guardrails",
                                          NULL};
static const char *const fim_fields[] = {
    "model", "prompt", "suffix",      "max_tokens", "min_tokens", "temperature",
    "top_p", "stop",   "random_seed", "stream",     "metadata",   NULL};
static const char *const embed_fields[] = {
    "model",    "input", "output_dimension", "output_dtype", "encoding_format",
    "metadata", NULL};

/* ---- errors and auth --------------------------------------------------- */

/* {"object":"error","message":<msg>,"type",..,"param",..,"code",..};
 * consumes `msg`. */
static void flat_error(mock_ctx *ctx, int status, json_object *msg,
                       const char *type, const char *param, const char *code)
{
    json_object *root = json_object_new_object();

    jadd(root, "object", jstring("error"));
    jadd(root, "message", msg);
    jadd(root, "type", jstring(type));
    jadd(root, "param", param ? jstring(param) : NULL);
    jadd(root, "code", code ? jstring(code) : NULL);
    llmux__mock_reply_json(ctx->reply, status, root);
}

/* 422 with one FastAPI detail entry per item of `entries` (consumed). */
static void validation_error(mock_ctx *ctx, json_object *entries)
{
    json_object *msg = json_object_new_object();

    jadd(msg, "detail", entries);
    flat_error(ctx, 422, msg, "invalid_request_error", NULL, NULL);
}

static json_object *detail_new(const char *type, const char *field,
                               const char *text, json_object *input)
{
    json_object *d = json_object_new_object();
    json_object *loc = json_object_new_array();

    json_object_array_add(loc, jstring("body"));
    if (field)
        json_object_array_add(loc, jstring(field));
    jadd(d, "type", jstring(type));
    jadd(d, "loc", loc);
    jadd(d, "msg", jstring(text));
    jadd(d, "input", input);
    return d;
}

static void mis_error(mock_ctx *ctx, int status, const char *type,
                      const char *code, const char *param, const char *message)
{
    json_object *root;
    char fallback[64];

    if (status == 401 || status == 429) {
        root = json_object_new_object();
        if (status == 401)
            jadd(root, "detail",
                 jstring(message ? message : "Invalid API Key"));
        else
            jadd(root, "message",
                 jstring(message ? message : "Requests rate limit exceeded"));
        llmux__mock_reply_json(ctx->reply, status, root);
        return;
    }
    if (status == 422) {
        json_object *entries = json_object_new_array();
        json_object_array_add(
            entries, detail_new("value_error", param,
                                message ? message : "Invalid request", NULL));
        validation_error(ctx, entries);
        return;
    }
    if (!message) {
        if (status >= 500)
            message = "Internal server error";
        else if (status == 404)
            message = "Not Found";
        else {
            snprintf(fallback, sizeof(fallback), "Mock error %d.", status);
            message = fallback;
        }
    }
    if (status >= 500)
        type = "internal_error";
    flat_error(ctx, status, jstring(message),
               type ? type : "invalid_request_error", param, code);
}

/* The service's mid-stream error is undocumented; the mock sends OpenAI's
 * convention, an event with an "error" object. */
static void mis_stream_error(mock_ctx *ctx, const char *message)
{
    llmux__mock_sse_error(ctx, message, "internal_error");
}

static int mis_auth(mock_ctx *ctx)
{
    const char *key = llmux__mock_bearer(ctx);

    if (!key) {
        /* The older gateway's shape. */
        json_object *root = json_object_new_object();
        char *rid = llmux__mock_strdupf("req_mock_%lu", ctx->seq);
        jadd(root, "message", jstring("Unauthorized"));
        jadd(root, "request_id", jstring(rid));
        free(rid);
        llmux__mock_reply_json(ctx->reply, 401, root);
        return -1;
    }
    if (strcmp(key, "bad-key") == 0) {
        mis_error(ctx, 401, NULL, NULL, NULL, "Invalid API Key");
        return -1;
    }
    return 0;
}

/* ---- validation -------------------------------------------------------- */

static int listed(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

/* 422 extra_forbidden for every member not in `allowed`; returns -1 when
 * the reply is written. */
static int extra_fields(mock_ctx *ctx, const char *const *allowed)
{
    json_object *entries = NULL;

    json_object_object_foreach(ctx->json, key, val)
    {
        if (listed(allowed, key))
            continue;
        if (!entries)
            entries = json_object_new_array();
        json_object_array_add(entries,
                              detail_new("extra_forbidden", key,
                                         "Extra inputs are not permitted",
                                         json_object_get(val)));
    }
    if (!entries)
        return 0;
    validation_error(ctx, entries);
    return -1;
}

/* Model present and known; returns -1 when the reply is written. */
static int model_ok(mock_ctx *ctx)
{
    char *msg;

    if (!ctx->model) {
        json_object *entries = json_object_new_array();
        json_object_array_add(
            entries, detail_new("missing", "model", "Field required", NULL));
        validation_error(ctx, entries);
        return -1;
    }
    if (strcmp(ctx->model, "missing") != 0)
        return 0;
    msg = llmux__mock_strdupf("Invalid model: %s", ctx->model);
    flat_error(ctx, 400, jstring(msg), "invalid_model", NULL, "1500");
    free(msg);
    return -1;
}

/* Mistral wants an assistant turn between a tool result and the next user
 * message (recorded: 400, code "3230"). */
static int role_order(mock_ctx *ctx, json_object *msgs)
{
    size_t i, n = json_object_array_length(msgs);

    for (i = 0; i + 1 < n; i++) {
        const char *a = jstr(json_object_array_get_idx(msgs, i), "role");
        const char *b = jstr(json_object_array_get_idx(msgs, i + 1), "role");
        if (a && b && strcmp(a, "tool") == 0 && strcmp(b, "user") == 0) {
            flat_error(ctx, 400,
                       jstring("Unexpected role 'user' after role 'tool'"),
                       "invalid_request_message_order", NULL, "3230");
            return -1;
        }
    }
    return 0;
}

/* ---- handlers ---------------------------------------------------------- */

static int stream_flag(mock_ctx *ctx)
{
    return llmux__mock_true(ctx->json, "stream");
}

static void mis_chat(mock_ctx *ctx)
{
    json_object *req = ctx->json;
    mock_chat_in in;
    mock_chat_plan p;

    memset(&in, 0, sizeof(in));
    if (extra_fields(ctx, chat_fields) < 0 || model_ok(ctx) < 0 ||
        llmux__mock_chat_check(ctx, &in.messages) < 0 ||
        role_order(ctx, in.messages) < 0)
        return;
    /* tool_choice: auto, any, required, none or a named function */
    in.tool = llmux__mock_pick_tool(req);
    in.max_tokens = jint(req, "max_tokens");
    in.json_reply = llmux__mock_json_mode(req);
    if (llmux__mock_chat_plan(ctx, &in, &p) < 0)
        return;
    llmux__mock_oai_chat(ctx, &p, &mis_dialect, stream_flag(ctx), 0);
    llmux__mock_chat_plan_free(&p);
}

/* FIM: the answer completes `prompt`; `suffix` is accepted and only
 * recorded. The reply has the chat shape, as the real endpoint's. */
static void mis_fim(mock_ctx *ctx)
{
    const char *prompt = jstr(ctx->json, "prompt");
    mock_chat_plan p;

    if (extra_fields(ctx, fim_fields) < 0 || model_ok(ctx) < 0)
        return;
    if (!prompt) {
        json_object *entries = json_object_new_array();
        json_object_array_add(
            entries,
            detail_new(jget(ctx->json, "prompt") ? "string_type" : "missing",
                       "prompt", "Input should be a valid string", NULL));
        validation_error(ctx, entries);
        return;
    }
    if (llmux__mock_text_plan(ctx, prompt, jint(ctx->json, "max_tokens"), &p) <
        0)
        return;
    llmux__mock_oai_chat(ctx, &p, &mis_dialect, stream_flag(ctx), 0);
    llmux__mock_chat_plan_free(&p);
}

static void mis_embeddings(mock_ctx *ctx)
{
    char *id;

    if (extra_fields(ctx, embed_fields) < 0 || model_ok(ctx) < 0)
        return;
    id = llmux__mock_strdupf(MIS_ID_FMT, ctx->seq);
    if (!id) {
        ctx->reply->oom = 1;
        return;
    }
    llmux__mock_oai_embed_list(ctx, id);
    free(id);
}

static void mis_models(mock_ctx *ctx)
{
    static const struct {
        const char *id;
        int chat, fim, tools;
        long context;
    } models[] = {
        {"mistral-small-latest", 1, 0, 1, 131072},
        {"mistral-large-latest", 1, 0, 1, 131072},
        {"codestral-latest", 1, 1, 1, 262144},
        {"mistral-embed", 0, 0, 0, 8192},
    };
    json_object *root = json_object_new_object();
    json_object *data = json_object_new_array();
    size_t i;

    jadd(root, "object", jstring("list"));
    for (i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        json_object *m = json_object_new_object();
        json_object *caps = json_object_new_object();
        jadd(m, "id", jstring(models[i].id));
        jadd(m, "object", jstring("model"));
        jadd(m, "created", json_object_new_int64(MOCK_CREATED));
        jadd(m, "owned_by", jstring("mistralai"));
        jadd(caps, "completion_chat", json_object_new_boolean(models[i].chat));
        jadd(caps, "completion_fim", json_object_new_boolean(models[i].fim));
        jadd(caps, "function_calling",
             json_object_new_boolean(models[i].tools));
        jadd(caps, "vision", json_object_new_boolean(0));
        jadd(m, "capabilities", caps);
        jadd(m, "name", jstring(models[i].id));
        jadd(m, "description", jstring("Mock model"));
        jadd(m, "max_context_length", json_object_new_int64(models[i].context));
        jadd(m, "aliases", json_object_new_array());
        jadd(m, "deprecation", NULL);
        jadd(m, "default_model_temperature", json_object_new_double(0.3));
        jadd(m, "type", jstring("base"));
        json_object_array_add(data, m);
    }
    jadd(root, "data", data);
    llmux__mock_reply_json(ctx->reply, 200, root);
}

/* huge=N: a chat.completion whose content is n bytes of 'x'. */
static void mis_huge(mock_ctx *ctx, size_t n)
{
    if (!ctx->model)
        ctx->model = "mistral-small-latest";
    llmux__mock_oai_huge(ctx, &mis_dialect, n);
}

/* ---- protocol table entry ---------------------------------------------- */

static const mock_route mis_routes[] = {
    {"POST", "/v1/chat/completions", MOCK_ROUTE_JSON, mis_chat},
    {"POST", "/v1/fim/completions", MOCK_ROUTE_JSON, mis_fim},
    {"POST", "/v1/embeddings", MOCK_ROUTE_JSON, mis_embeddings},
    {"GET", "/v1/models", 0, mis_models},
    {"POST", "/v1/files", 0, llmux__mock_file_upload},
    {"GET", "/v1/files/*/content", MOCK_ROUTE_ID, llmux__mock_file_content},
    {"POST", "/v1/batch/jobs", MOCK_ROUTE_JSON, llmux__mock_batch_create},
    {"GET", "/v1/batch/jobs/*", MOCK_ROUTE_ID, llmux__mock_batch_get},
    {"POST", "/v1/batch/jobs/*/cancel", MOCK_ROUTE_ID,
     llmux__mock_batch_cancel},
    {NULL, NULL, 0, NULL},
};

const mock_protocol llmux__mock_mistral = {
    "mistral", "/mistral",       mis_routes, mis_auth,
    mis_error, mis_stream_error, mis_huge,
};
