/*
 * mock_ollama.c: Ollama's native API for the mock server (WIRE.md §3),
 * served under /ollama: /api/chat, /api/generate, /api/embed and
 * GET /api/tags.
 *
 * Faithful to what a client must cope with: "stream" defaults to TRUE, so
 * a request without "stream": false gets an NDJSON stream
 * (application/x-ndjson, one object per line, the last with "done": true,
 * done_reason and the token counts prompt_eval_count / eval_count); options
 * live under "options" (num_predict is the max tokens); tool-call arguments
 * are JSON objects, calls carry no id and every streamed call is whole with
 * index 0; done_reason stays "stop" after a tool call; a chat without
 * messages (or a generate without prompt) only loads the model and answers
 * done_reason "load" ("unload" with keep_alive 0). No auth is needed; a
 * Bearer token is accepted (the key "bad-key" gets 401, as hosted Ollama
 * would). Errors are {"error":"text"}; model "missing" gets Ollama's 404.
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

#define OLL_CREATED_AT "2023-08-04T19:22:45.499127Z"
#define OLL_NDJSON     "application/x-ndjson"

/* ---- errors and auth --------------------------------------------------- */

static void oll_error(mock_ctx *ctx, int status, const char *type,
                      const char *code, const char *param, const char *message)
{
    json_object *root = json_object_new_object();
    char fallback[64];

    (void)type;
    (void)code;
    (void)param;
    if (!message) {
        switch (status) {
        case 400:
            message = "invalid request";
            break;
        case 401:
            message = "unauthorized";
            break;
        case 404:
            message = "not found";
            break;
        case 429:
            message = "too many requests";
            break;
        case 500:
            message = "an internal error occurred (mock)";
            break;
        case 503:
            message = "server busy, please try again.  maximum pending "
                      "requests exceeded";
            break;
        default:
            snprintf(fallback, sizeof(fallback), "mock error %d", status);
            message = fallback;
        }
    }
    jadd(root, "error", jstring(message));
    llmux__mock_reply_json(ctx->reply, status, root);
}

/* After a stream has started, an error is one more line. */
static void oll_stream_error(mock_ctx *ctx, const char *message)
{
    json_object *root = json_object_new_object();

    jadd(root, "error", jstring(message ? message : "mock stream error"));
    llmux__mock_ndjson(ctx->reply, root);
}

static int oll_auth(mock_ctx *ctx)
{
    const char *h = llmux_mock_record_header(ctx->rec, "Authorization");

    if (h && strcmp(h, "Bearer bad-key") == 0) {
        oll_error(ctx, 401, NULL, NULL, NULL, "unauthorized");
        return -1;
    }
    return 0;
}

/* ---- shared pieces ----------------------------------------------------- */

/* Checks "model" and "stream"; sets *stream (default true). Returns -1
 * when the error reply is written. */
static int oll_common(mock_ctx *ctx, int *stream)
{
    json_object *s = jget(ctx->json, "stream");

    if (!ctx->model || !*ctx->model) {
        oll_error(ctx, 400, NULL, NULL, NULL, "model is required");
        return -1;
    }
    if (strcmp(ctx->model, "missing") == 0) {
        char *msg = llmux__mock_strdupf(
            "model \"%s\" not found, try pulling it first", ctx->model);
        oll_error(ctx, 404, NULL, NULL, NULL, msg ? msg : "not found");
        free(msg);
        return -1;
    }
    if (s && !json_object_is_type(s, json_type_boolean) &&
        !json_object_is_type(s, json_type_null)) {
        oll_error(ctx, 400, NULL, NULL, NULL,
                  "json: cannot unmarshal into Go struct field "
                  "stream of type bool");
        return -1;
    }
    *stream = !s || json_object_is_type(s, json_type_null) ||
              json_object_get_boolean(s);
    if (jget(ctx->json, "options") &&
        !json_object_is_type(jget(ctx->json, "options"), json_type_object)) {
        oll_error(ctx, 400, NULL, NULL, NULL,
                  "json: cannot unmarshal options into map");
        return -1;
    }
    return 0;
}

/* The start of every response object. */
static json_object *oll_head(mock_ctx *ctx)
{
    json_object *o = json_object_new_object();

    jadd(o, "model", jstring(ctx->model));
    jadd(o, "created_at", jstring(OLL_CREATED_AT));
    return o;
}

/* Adds done, done_reason and the metrics of the final object. */
static void oll_done(json_object *o, const char *reason, size_t prompt,
                     size_t eval)
{
    jadd(o, "done_reason", jstring(reason));
    jadd(o, "done", json_object_new_boolean(1));
    jadd(o, "total_duration", json_object_new_int64(4883583458LL));
    jadd(o, "load_duration", json_object_new_int64(1334875));
    jadd(o, "prompt_eval_count", json_object_new_int64((int64_t)prompt));
    jadd(o, "prompt_eval_duration", json_object_new_int64(342546000));
    jadd(o, "eval_count", json_object_new_int64((int64_t)eval));
    jadd(o, "eval_duration", json_object_new_int64(4535599000LL));
}

static const char *done_reason(const mock_chat_plan *p)
{
    /* Ollama ends tool calls with "stop" too. */
    return strcmp(p->finish, "length") == 0 ? "length" : "stop";
}

/* The reply to a request that only loads (or unloads) the model. */
static void oll_load(mock_ctx *ctx, const char *field)
{
    json_object *o = oll_head(ctx);
    json_object *ka = jget(ctx->json, "keep_alive");
    int unload = ka && ((json_object_is_type(ka, json_type_int) &&
                         json_object_get_int64(ka) == 0) ||
                        (json_object_is_type(ka, json_type_string) &&
                         strcmp(json_object_get_string(ka), "0") == 0));

    if (strcmp(field, "message") == 0) {
        json_object *m = json_object_new_object();
        jadd(m, "role", jstring("assistant"));
        jadd(m, "content", jstring(""));
        jadd(o, "message", m);
    } else {
        jadd(o, "response", jstring(""));
    }
    jadd(o, "done_reason", jstring(unload ? "unload" : "load"));
    jadd(o, "done", json_object_new_boolean(1));
    llmux__mock_reply_json(ctx->reply, 200, o);
}

static long num_predict(mock_ctx *ctx)
{
    return jint(jget(ctx->json, "options"), "num_predict");
}

/* ---- /api/chat --------------------------------------------------------- */

static json_object *message_new(const char *content, const mock_chat_plan *p)
{
    json_object *m = json_object_new_object();

    jadd(m, "role", jstring("assistant"));
    jadd(m, "content", jstring(content));
    if (p && p->tool_name) {
        json_object *calls = json_object_new_array();
        json_object *tc = json_object_new_object();
        json_object *fn = json_object_new_object();
        json_object *args = json_tokener_parse(p->tool_args);
        jadd(fn, "index", json_object_new_int(0));
        jadd(fn, "name", jstring(p->tool_name));
        jadd(fn, "arguments", args ? args : json_object_new_object());
        jadd(tc, "function", fn);
        json_object_array_add(calls, tc);
        jadd(m, "tool_calls", calls);
    }
    return m;
}

static void oll_chat(mock_ctx *ctx)
{
    json_object *req = ctx->json, *msgs = jget(req, "messages"), *fmt, *o;
    mock_chat_in in;
    mock_chat_plan p;
    int stream;

    if (oll_common(ctx, &stream) < 0)
        return;
    if (msgs && !json_object_is_type(msgs, json_type_array)) {
        oll_error(ctx, 400, NULL, NULL, NULL,
                  "json: cannot unmarshal messages into []api.Message");
        return;
    }
    if (!msgs || json_object_array_length(msgs) == 0) {
        oll_load(ctx, "message");
        return;
    }
    memset(&in, 0, sizeof(in));
    in.messages = msgs;
    in.tool = llmux__mock_pick_tool(req);
    in.max_tokens = num_predict(ctx);
    fmt = jget(req, "format");
    in.json_reply = fmt && (json_object_is_type(fmt, json_type_object) ||
                            (json_object_is_type(fmt, json_type_string) &&
                             json_object_get_string_len(fmt) > 0));
    if (llmux__mock_chat_plan(ctx, &in, &p) < 0)
        return;
    if (!stream) {
        o = oll_head(ctx);
        jadd(o, "message", message_new(p.content, &p));
        oll_done(o, done_reason(&p), p.prompt_tokens, p.completion_tokens);
        llmux__mock_reply_json(ctx->reply, 200, o);
    } else {
        mock_reply *r = ctx->reply;
        llmux__mock_reply_stream(r, OLL_NDJSON);
        if (p.tool_name) {
            o = oll_head(ctx);
            jadd(o, "message", message_new("", &p));
            jadd(o, "done", json_object_new_boolean(0));
            llmux__mock_ndjson(r, o);
        } else {
            size_t *ends = NULL, n, i, start = 0;
            n = llmux__mock_pieces(p.content, &ends);
            for (i = 0; i < n; i++) {
                json_object *m = json_object_new_object();
                jadd(m, "role", jstring("assistant"));
                jadd(m, "content",
                     json_object_new_string_len(p.content + start,
                                                (int)(ends[i] - start)));
                o = oll_head(ctx);
                jadd(o, "message", m);
                jadd(o, "done", json_object_new_boolean(0));
                llmux__mock_ndjson(r, o);
                start = ends[i];
            }
            free(ends);
        }
        o = oll_head(ctx);
        jadd(o, "message", message_new("", NULL));
        oll_done(o, done_reason(&p), p.prompt_tokens, p.completion_tokens);
        llmux__mock_ndjson(r, o);
    }
    llmux__mock_chat_plan_free(&p);
}

/* ---- /api/generate ----------------------------------------------------- */

/* The deprecated "context": token ids of the prompt's words. */
static json_object *context_new(const char *prompt)
{
    json_object *a = json_object_new_array();
    size_t *ends = NULL, n = llmux__mock_pieces(prompt, &ends), i, start = 0;

    for (i = 0; i < n; i++) {
        uint64_t h = llmux__mock_hash(prompt + start, ends[i] - start);
        json_object_array_add(a, json_object_new_int((int)(h % 128000)));
        start = ends[i];
    }
    free(ends);
    return a;
}

static void oll_generate(mock_ctx *ctx)
{
    json_object *pv = jget(ctx->json, "prompt"), *o;
    const char *prompt;
    mock_chat_plan p;
    int stream;

    if (oll_common(ctx, &stream) < 0)
        return;
    if (pv && !json_object_is_type(pv, json_type_string)) {
        oll_error(ctx, 400, NULL, NULL, NULL,
                  "json: cannot unmarshal prompt into string");
        return;
    }
    prompt = pv ? json_object_get_string(pv) : "";
    if (!*prompt) {
        oll_load(ctx, "response");
        return;
    }
    /* "suffix", "system", "template", "raw" are accepted and ignored. */
    if (llmux__mock_text_plan(ctx, prompt, num_predict(ctx), &p) < 0)
        return;
    if (!stream) {
        o = oll_head(ctx);
        jadd(o, "response", jstring(p.content));
        oll_done(o, done_reason(&p), p.prompt_tokens, p.completion_tokens);
        jadd(o, "context", context_new(prompt));
        llmux__mock_reply_json(ctx->reply, 200, o);
    } else {
        mock_reply *r = ctx->reply;
        size_t *ends = NULL, n, i, start = 0;
        llmux__mock_reply_stream(r, OLL_NDJSON);
        n = llmux__mock_pieces(p.content, &ends);
        for (i = 0; i < n; i++) {
            o = oll_head(ctx);
            jadd(o, "response",
                 json_object_new_string_len(p.content + start,
                                            (int)(ends[i] - start)));
            jadd(o, "done", json_object_new_boolean(0));
            llmux__mock_ndjson(r, o);
            start = ends[i];
        }
        free(ends);
        o = oll_head(ctx);
        jadd(o, "response", jstring(""));
        oll_done(o, done_reason(&p), p.prompt_tokens, p.completion_tokens);
        jadd(o, "context", context_new(prompt));
        llmux__mock_ndjson(r, o);
    }
    llmux__mock_chat_plan_free(&p);
}

/* ---- /api/embed and /api/tags ------------------------------------------ */

static void oll_embed(mock_ctx *ctx)
{
    json_object *input = jget(ctx->json, "input"), *root, *vecs;
    size_t i, n, words = 0;
    long count;
    int stream, bad_item;

    if (oll_common(ctx, &stream) < 0)
        return;
    count = llmux__mock_inputs(input, &bad_item);
    if (count < 0) {
        oll_error(ctx, 400, NULL, NULL, NULL,
                  "invalid input type: want a string or an array of "
                  "strings");
        return;
    }
    n = (size_t)count;
    root = json_object_new_object();
    vecs = json_object_new_array();
    jadd(root, "model", jstring(ctx->model));
    for (i = 0; i < n; i++) {
        size_t len;
        const char *text = llmux__mock_input_text(input, i, &len);
        words += llmux__mock_count_words(text, len);
        json_object_array_add(vecs, llmux__mock_embedding_json(text, len));
    }
    jadd(root, "embeddings", vecs);
    jadd(root, "total_duration", json_object_new_int64(14143917));
    jadd(root, "load_duration", json_object_new_int64(1019500));
    jadd(root, "prompt_eval_count", json_object_new_int64((int64_t)words));
    llmux__mock_reply_json(ctx->reply, 200, root);
}

static void oll_tags(mock_ctx *ctx)
{
    static const struct {
        const char *name, *family, *size;
        long bytes;
    } models[] = {
        {"llama3.2:latest", "llama", "3.2B", 2019393189L},
        {"llama3:8b", "llama", "8.0B", 4661224676L},
        {"qwen3:latest", "qwen3", "8.2B", 5225388164L},
        {"all-minilm:latest", "bert", "23M", 45960996L},
    };
    json_object *root = json_object_new_object();
    json_object *list = json_object_new_array();
    size_t i;

    for (i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        json_object *m = json_object_new_object();
        json_object *d = json_object_new_object();
        json_object *fams = json_object_new_array();
        char digest[80];
        snprintf(digest, sizeof(digest), "%016llx%048d",
                 (unsigned long long)llmux__mock_hash(models[i].name,
                                                      strlen(models[i].name)),
                 0);
        jadd(m, "name", jstring(models[i].name));
        jadd(m, "model", jstring(models[i].name));
        jadd(m, "modified_at", jstring("2025-05-04T17:37:44.706015396-07:00"));
        jadd(m, "size", json_object_new_int64(models[i].bytes));
        jadd(m, "digest", jstring(digest));
        jadd(d, "parent_model", jstring(""));
        jadd(d, "format", jstring("gguf"));
        jadd(d, "family", jstring(models[i].family));
        json_object_array_add(fams, jstring(models[i].family));
        jadd(d, "families", fams);
        jadd(d, "parameter_size", jstring(models[i].size));
        jadd(d, "quantization_level", jstring("Q4_K_M"));
        jadd(m, "details", d);
        json_object_array_add(list, m);
    }
    jadd(root, "models", list);
    llmux__mock_reply_json(ctx->reply, 200, root);
}

/* huge=N: a finished /api/chat (or /api/generate) reply whose text is n
 * bytes of 'x'. */
static void oll_huge(mock_ctx *ctx, size_t n)
{
    int gen = llmux__mock_path_ends(ctx, "/api/generate");
    json_object *o;

    if (!ctx->model)
        ctx->model = "llama3.2";
    o = oll_head(ctx);
    if (gen)
        jadd(o, "response", jstring(""));
    else
        jadd(o, "message", message_new("", NULL));
    oll_done(o, "stop", 0, n ? 1 : 0);
    llmux__mock_reply_json(ctx->reply, 200, o);
    llmux__mock_splice_x(ctx->reply,
                         gen ? "\"response\":\"\"" : "\"content\":\"\"", n);
}

/* ---- protocol table entry ---------------------------------------------- */

static const mock_route oll_routes[] = {
    {"POST", "/api/chat", MOCK_ROUTE_JSON, oll_chat},
    {"POST", "/api/generate", MOCK_ROUTE_JSON, oll_generate},
    {"POST", "/api/embed", MOCK_ROUTE_JSON, oll_embed},
    {"GET", "/api/tags", 0, oll_tags},
    {NULL, NULL, 0, NULL},
};

const mock_protocol llmux__mock_ollama = {
    "ollama",  "/ollama",        oll_routes, oll_auth,
    oll_error, oll_stream_error, oll_huge,
};
