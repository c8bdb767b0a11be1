/*
 * mock_openai.c: the OpenAI wire protocol for the mock server (WIRE.md §1):
 * chat completions (plain, JSON mode, tool calls; whole or SSE-streamed),
 * legacy text completions, embeddings and the model list, plus OpenAI's
 * Bearer auth and {"error":{message,type,param,code}} bodies.
 *
 * Every answer is a pure function of the request and the response counter.
 */
#include "mock_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OAI_FINGERPRINT  "fp_mock"
#define OAI_TOOL_CALL_ID "call_mock_0001"
#define OAI_ARG_PIECE    5 /* bytes per streamed tool-argument fragment */

/* ---- small JSON helpers ------------------------------------------------- */

static json_object *jget(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (o && json_object_is_type(o, json_type_object) &&
        json_object_object_get_ex(o, key, &v))
        return v;
    return NULL;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v = jget(o, key);

    return v && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int jbool(json_object *o, const char *key)
{
    json_object *v = jget(o, key);

    return v && json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

/* Integer field, or -1 when absent or not a non-negative integer. */
static long jint(json_object *o, const char *key)
{
    json_object *v = jget(o, key);
    int64_t n;

    if (!v || !json_object_is_type(v, json_type_int))
        return -1;
    n = json_object_get_int64(v);
    return n < 0 ? -1 : (long)(n > 1000000000 ? 1000000000 : n);
}

static void jadd(json_object *o, const char *key, json_object *v)
{
    json_object_object_add(o, key, v);
}

static json_object *jstring(const char *s)
{
    return json_object_new_string(s ? s : "");
}

/* Appends the text of a message "content": a string, or the "text" of
 * every text part of an array; anything else adds nothing. */
static void content_text(json_object *content, mock_buf *out)
{
    size_t i, n;

    if (!content)
        return;
    if (json_object_is_type(content, json_type_string)) {
        llmux__mock_buf_add(out, json_object_get_string(content),
                            (size_t)json_object_get_string_len(content));
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    n = json_object_array_length(content);
    for (i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(content, i);
        const char *type = jstr(part, "type");
        const char *text = jstr(part, "text");
        if (text && (!type || strcmp(type, "text") == 0))
            llmux__mock_buf_adds(out, text);
    }
}

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
    json_object *root = json_object_new_object();
    json_object *err = json_object_new_object();

    jadd(err, "message", jstring(message ? message : "mock stream error"));
    jadd(err, "type", jstring("server_error"));
    jadd(err, "param", NULL);
    jadd(err, "code", NULL);
    jadd(root, "error", err);
    llmux__mock_sse_json(ctx->reply, root);
}

static int oai_auth(mock_ctx *ctx)
{
    const char *h = llmux_mock_record_header(ctx->rec, "Authorization");
    const char *key = NULL;

    if (h && strncmp(h, "Bearer ", 7) == 0) {
        key = h + 7;
        while (*key == ' ')
            key++;
        if (!*key)
            key = NULL;
    }
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

/* What the assistant says, decided before any formatting. */
typedef struct chat_plan {
    char *id;
    size_t prompt_tokens;
    size_t completion_tokens;
    const char *finish;
    char *content;   /* text content, or NULL for a tool call */
    char *tool_name; /* tool call, or NULL */
    char *tool_args; /* JSON text of the arguments */
    int include_usage;
} chat_plan;

static void plan_free(chat_plan *p)
{
    free(p->id);
    free(p->content);
    free(p->tool_name);
    free(p->tool_args);
}

/* Name of the tool to call, or NULL when no tool call is due. */
static const char *pick_tool(json_object *req)
{
    json_object *tools = jget(req, "tools");
    json_object *choice = jget(req, "tool_choice");
    const char *name;

    if (!tools || !json_object_is_type(tools, json_type_array) ||
        json_object_array_length(tools) == 0)
        return NULL;
    if (choice && json_object_is_type(choice, json_type_string) &&
        strcmp(json_object_get_string(choice), "none") == 0)
        return NULL;
    name = jstr(jget(choice, "function"), "name");
    if (name)
        return name;
    name = jstr(jget(json_object_array_get_idx(tools, 0), "function"), "name");
    return name ? name : "tool";
}

/* Fills `p` from the request; returns -1 after writing a 400 reply. */
static int chat_plan_make(mock_ctx *ctx, chat_plan *p)
{
    json_object *req = ctx->json, *msgs = jget(req, "messages"), *last;
    json_object *fmt_type;
    const char *last_role, *tool;
    mock_buf user = {0}, all = {0}, reply = {0};
    size_t i, n, words;
    long max;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    if (!ctx->model) {
        bad_request(ctx, "you must provide a model parameter", "model");
        return -1;
    }
    if (!msgs || !json_object_is_type(msgs, json_type_array) ||
        json_object_array_length(msgs) == 0) {
        bad_request(ctx, "'messages' must be a non-empty array", "messages");
        return -1;
    }
    n = json_object_array_length(msgs);
    for (i = 0; i < n; i++) {
        mock_buf t = {0};
        content_text(jget(json_object_array_get_idx(msgs, i), "content"), &t);
        p->prompt_tokens +=
            llmux__mock_count_words(t.data ? t.data : "", t.len);
        llmux__mock_buf_free(&t);
    }
    for (i = n; i-- > 0;) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = jstr(m, "role");
        if (role && strcmp(role, "user") == 0) {
            content_text(jget(m, "content"), &user);
            break;
        }
    }
    last = json_object_array_get_idx(msgs, n - 1);
    last_role = jstr(last, "role");
    if (!last_role)
        last_role = "";
    p->id = llmux__mock_strdupf("chatcmpl-mock-%lu", ctx->seq);
    p->include_usage = jbool(jget(req, "stream_options"), "include_usage");
    tool = pick_tool(req);

    if (tool && strcmp(last_role, "user") == 0) {
        json_object *args = json_object_new_object();
        size_t len;
        jadd(args, "input", jstring(user.data));
        p->tool_name = llmux__mock_strdup(tool);
        p->tool_args = llmux__mock_strdup(llmux__mock_json_text(args, &len));
        json_object_put(args);
        p->completion_tokens =
            llmux__mock_count_words(p->tool_args ? p->tool_args : "",
                                    p->tool_args ? strlen(p->tool_args) : 0);
        p->finish = "tool_calls";
        goto out;
    }

    if (ctx->fault->events >= 0) {
        char *t = llmux__mock_tok_text(ctx->fault->events);
        llmux__mock_buf_adds(&reply, t ? t : "");
        free(t);
    } else if (strcmp(last_role, "tool") == 0) {
        content_text(jget(last, "content"), &all);
        llmux__mock_buf_printf(&reply, "Mock reply to: tool result %s",
                               all.data ? all.data : "");
    } else {
        llmux__mock_buf_printf(&reply, "Mock reply to: %s",
                               user.data ? user.data : "");
    }
    p->content = llmux__mock_buf_steal(&reply, NULL);
    if (!p->content) {
        rc = -1;
        goto out;
    }
    max = jint(req, "max_completion_tokens");
    if (max < 0)
        max = jint(req, "max_tokens");
    words = llmux__mock_count_words(p->content, strlen(p->content));
    p->finish = "stop";
    if (max >= 0 && words > (size_t)max) {
        char *cut = llmux__mock_first_words(p->content, (size_t)max);
        if (cut) {
            free(p->content);
            p->content = cut;
        }
        words = (size_t)max;
        p->finish = "length";
    }
    p->completion_tokens = words;
    fmt_type = jget(jget(req, "response_format"), "type");
    if (fmt_type && json_object_is_type(fmt_type, json_type_string) &&
        (strcmp(json_object_get_string(fmt_type), "json_object") == 0 ||
         strcmp(json_object_get_string(fmt_type), "json_schema") == 0)) {
        json_object *o = json_object_new_object();
        size_t len;
        jadd(o, "reply", jstring(p->content));
        free(p->content);
        p->content = llmux__mock_strdup(llmux__mock_json_text(o, &len));
        json_object_put(o);
    }
out:
    llmux__mock_buf_free(&user);
    llmux__mock_buf_free(&all);
    llmux__mock_buf_free(&reply);
    if (!p->id || (!p->content && !p->tool_args))
        rc = -1;
    if (rc < 0)
        ctx->reply->oom = 1;
    return rc;
}

static json_object *tool_call_new(const chat_plan *p, int with_index,
                                  const char *args)
{
    json_object *tc = json_object_new_object();
    json_object *fn = json_object_new_object();

    if (with_index)
        jadd(tc, "index", json_object_new_int(0));
    jadd(tc, "id", jstring(OAI_TOOL_CALL_ID));
    jadd(tc, "type", jstring("function"));
    jadd(fn, "name", jstring(p->tool_name));
    jadd(fn, "arguments", jstring(args));
    jadd(tc, "function", fn);
    return tc;
}

static void chat_whole(mock_ctx *ctx, const chat_plan *p)
{
    json_object *root = json_object_new_object();
    json_object *choices = json_object_new_array();
    json_object *choice = json_object_new_object();
    json_object *msg = json_object_new_object();

    jadd(root, "id", jstring(p->id));
    jadd(root, "object", jstring("chat.completion"));
    jadd(root, "created", json_object_new_int64(MOCK_CREATED));
    jadd(root, "model", jstring(ctx->model));
    jadd(choice, "index", json_object_new_int(0));
    jadd(msg, "role", jstring("assistant"));
    jadd(msg, "content", p->content ? jstring(p->content) : NULL);
    jadd(msg, "refusal", NULL);
    if (p->tool_name) {
        json_object *calls = json_object_new_array();
        json_object_array_add(calls, tool_call_new(p, 0, p->tool_args));
        jadd(msg, "tool_calls", calls);
    }
    jadd(choice, "message", msg);
    jadd(choice, "logprobs", NULL);
    jadd(choice, "finish_reason", jstring(p->finish));
    json_object_array_add(choices, choice);
    jadd(root, "choices", choices);
    jadd(root, "usage", usage_new(p->prompt_tokens, p->completion_tokens));
    jadd(root, "system_fingerprint", jstring(OAI_FINGERPRINT));
    llmux__mock_reply_json(ctx->reply, 200, root);
}

/* A chunk with one choice carrying `delta` (consumed). */
static json_object *chat_chunk(mock_ctx *ctx, const chat_plan *p,
                               json_object *delta, const char *finish)
{
    json_object *root = json_object_new_object();
    json_object *choices = json_object_new_array();

    jadd(root, "id", jstring(p->id));
    jadd(root, "object", jstring("chat.completion.chunk"));
    jadd(root, "created", json_object_new_int64(MOCK_CREATED));
    jadd(root, "model", jstring(ctx->model));
    jadd(root, "system_fingerprint", jstring(OAI_FINGERPRINT));
    if (delta) {
        json_object *choice = json_object_new_object();
        jadd(choice, "index", json_object_new_int(0));
        jadd(choice, "delta", delta);
        jadd(choice, "logprobs", NULL);
        jadd(choice, "finish_reason", finish ? jstring(finish) : NULL);
        json_object_array_add(choices, choice);
    }
    jadd(root, "choices", choices);
    if (p->include_usage)
        jadd(root, "usage",
             delta ? NULL : usage_new(p->prompt_tokens, p->completion_tokens));
    return root;
}

static void chat_stream(mock_ctx *ctx, const chat_plan *p)
{
    mock_reply *r = ctx->reply;
    json_object *delta;

    llmux__mock_reply_stream(r, "text/event-stream");
    delta = json_object_new_object();
    jadd(delta, "role", jstring("assistant"));
    if (p->tool_name) {
        const char *a = p->tool_args;
        size_t len = strlen(a), off = 0;
        json_object *calls = json_object_new_array();
        jadd(delta, "content", NULL);
        json_object_array_add(calls, tool_call_new(p, 1, ""));
        jadd(delta, "tool_calls", calls);
        llmux__mock_sse_json(r, chat_chunk(ctx, p, delta, NULL));
        while (off < len) {
            size_t n = llmux__mock_utf8_cut(a + off, len - off, OAI_ARG_PIECE);
            json_object *tc = json_object_new_object();
            json_object *fn = json_object_new_object();
            json_object *frag = json_object_new_string_len(a + off, (int)n);
            calls = json_object_new_array();
            jadd(tc, "index", json_object_new_int(0));
            jadd(fn, "arguments", frag);
            jadd(tc, "function", fn);
            json_object_array_add(calls, tc);
            delta = json_object_new_object();
            jadd(delta, "tool_calls", calls);
            llmux__mock_sse_json(r, chat_chunk(ctx, p, delta, NULL));
            off += n;
        }
    } else {
        size_t *ends = NULL, n, i, start = 0;
        jadd(delta, "content", jstring(""));
        llmux__mock_sse_json(r, chat_chunk(ctx, p, delta, NULL));
        n = llmux__mock_pieces(p->content, &ends);
        for (i = 0; i < n; i++) {
            delta = json_object_new_object();
            jadd(delta, "content",
                 json_object_new_string_len(p->content + start,
                                            (int)(ends[i] - start)));
            llmux__mock_sse_json(r, chat_chunk(ctx, p, delta, NULL));
            start = ends[i];
        }
        free(ends);
    }
    llmux__mock_sse_json(
        r, chat_chunk(ctx, p, json_object_new_object(), p->finish));
    if (p->include_usage)
        llmux__mock_sse_json(r, chat_chunk(ctx, p, NULL, NULL));
    llmux__mock_sse_text(r, "[DONE]");
}

static void oai_chat(mock_ctx *ctx)
{
    chat_plan p;

    if (chat_plan_make(ctx, &p) == 0) {
        if (jbool(ctx->json, "stream"))
            chat_stream(ctx, &p);
        else
            chat_whole(ctx, &p);
    }
    plan_free(&p);
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
    const char *ptext = NULL, *finish = "stop";
    char *text, *id;
    size_t prompt_tokens, words;
    long max = jint(req, "max_tokens");
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
    prompt_tokens = llmux__mock_count_words(ptext, strlen(ptext));
    if (ctx->fault->events >= 0) {
        char *t = llmux__mock_tok_text(ctx->fault->events);
        text = t ? t : NULL;
    } else {
        text = llmux__mock_strdupf("Mock completion of: %s", ptext);
    }
    id = llmux__mock_strdupf("cmpl-mock-%lu", ctx->seq);
    if (!text || !id) {
        free(text);
        free(id);
        ctx->reply->oom = 1;
        return;
    }
    words = llmux__mock_count_words(text, strlen(text));
    if (max >= 0 && words > (size_t)max) {
        char *cut = llmux__mock_first_words(text, (size_t)max);
        if (cut) {
            free(text);
            text = cut;
        }
        words = (size_t)max;
        finish = "length";
    }

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
        o = text_chunk(ctx, id, "", 0, finish);
        if (include_usage)
            jadd(o, "usage", NULL);
        llmux__mock_sse_json(r, o);
        if (include_usage) {
            o = text_chunk(ctx, id, NULL, 0, NULL);
            jadd(o, "usage", usage_new(prompt_tokens, words));
            llmux__mock_sse_json(r, o);
        }
        llmux__mock_sse_text(r, "[DONE]");
    } else {
        o = text_chunk(ctx, id, text, strlen(text), finish);
        jadd(o, "usage", usage_new(prompt_tokens, words));
        llmux__mock_reply_json(ctx->reply, 200, o);
    }
    free(text);
    free(id);
}

/* ---- embeddings and models ---------------------------------------------- */

static void oai_embeddings(mock_ctx *ctx)
{
    json_object *input = jget(ctx->json, "input");
    json_object *root, *data, *usage;
    size_t i, n, words = 0;

    if (!ctx->model) {
        bad_request(ctx, "you must provide a model parameter", "model");
        return;
    }
    if (input && json_object_is_type(input, json_type_string)) {
        n = 1;
    } else if (input && json_object_is_type(input, json_type_array) &&
               json_object_array_length(input) > 0) {
        n = json_object_array_length(input);
        for (i = 0; i < n; i++)
            if (!json_object_is_type(json_object_array_get_idx(input, i),
                                     json_type_string))
                break;
        if (i < n) {
            bad_request(ctx, "the mock takes only string inputs", "input");
            return;
        }
    } else {
        bad_request(ctx, "'input' must be a string or an array of strings",
                    "input");
        return;
    }
    root = json_object_new_object();
    data = json_object_new_array();
    jadd(root, "object", jstring("list"));
    for (i = 0; i < n; i++) {
        json_object *s = json_object_is_type(input, json_type_string)
                             ? input
                             : json_object_array_get_idx(input, i);
        const char *text = json_object_get_string(s);
        size_t len = (size_t)json_object_get_string_len(s);
        json_object *item = json_object_new_object();
        json_object *vec = json_object_new_array();
        double v[MOCK_EMBED_DIM];
        int k;

        words += llmux__mock_count_words(text, len);
        llmux__mock_embedding(text, len, v);
        for (k = 0; k < MOCK_EMBED_DIM; k++) {
            char num[32];
            snprintf(num, sizeof(num), "%.6f", v[k]);
            json_object_array_add(vec, json_object_new_double_s(v[k], num));
        }
        jadd(item, "object", jstring("embedding"));
        jadd(item, "index", json_object_new_int((int)i));
        jadd(item, "embedding", vec);
        json_object_array_add(data, item);
    }
    jadd(root, "data", data);
    jadd(root, "model", jstring(ctx->model));
    usage = json_object_new_object();
    jadd(usage, "prompt_tokens", json_object_new_int64((int64_t)words));
    jadd(usage, "total_tokens", json_object_new_int64((int64_t)words));
    jadd(root, "usage", usage);
    llmux__mock_reply_json(ctx->reply, 200, root);
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
    static const char mark[] = "\"content\":\"\"";
    chat_plan p;
    const char *text, *at;
    size_t len, head;
    mock_buf *b = &ctx->reply->body;

    memset(&p, 0, sizeof(p));
    p.id = llmux__mock_strdupf("chatcmpl-mock-%lu", ctx->seq);
    p.content = llmux__mock_strdup("");
    p.finish = "stop";
    p.completion_tokens = n ? 1 : 0;
    if (!ctx->model)
        ctx->model = "mock-model";
    chat_whole(ctx, &p);
    plan_free(&p);
    /* chat_whole left the JSON text in the body: splice the x's in. */
    text = b->data ? b->data : "";
    len = b->len;
    at = strstr(text, mark);
    if (!at) {
        ctx->reply->oom = 1;
        return;
    }
    head = (size_t)(at - text) + sizeof(mark) - 2; /* just after '"' */
    {
        mock_buf out = {0};
        char xs[4096];
        size_t left = n;
        memset(xs, 'x', sizeof(xs));
        llmux__mock_buf_add(&out, text, head);
        while (left) {
            size_t k = left < sizeof(xs) ? left : sizeof(xs);
            llmux__mock_buf_add(&out, xs, k);
            left -= k;
        }
        llmux__mock_buf_add(&out, text + head, len - head);
        llmux__mock_buf_free(b);
        *b = out;
    }
}

/* ---- protocol table entry ----------------------------------------------- */

static const mock_route oai_routes[] = {
    {"POST", "/chat/completions", MOCK_ROUTE_JSON, oai_chat},
    {"POST", "/completions", MOCK_ROUTE_JSON, oai_completions},
    {"POST", "/embeddings", MOCK_ROUTE_JSON, oai_embeddings},
    {"GET", "/models", 0, oai_models},
    {NULL, NULL, 0, NULL},
};

const mock_protocol llmux__mock_openai = {
    "openai", oai_routes, oai_auth, oai_error, oai_stream_error, oai_huge,
};
