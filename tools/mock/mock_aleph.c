/*
 * mock_aleph.c: Aleph Alpha's API (PhariaAI inference, WIRE.md §4) for the
 * mock server, served under /aleph (a "?nice=true" query is accepted):
 * /chat/completions, /complete, /semantic_embed, /batch_semantic_embed,
 * /embed, /embeddings, /evaluate, /tokenize, /detokenize and
 * GET /models_available.
 *
 * /complete answers {"completions":[..],"model_version",
 * "num_tokens_prompt_total","num_tokens_generated"} and streams SSE events
 * typed stream_chunk (one per word), stream_summary and completion_summary,
 * with no [DONE]. Chat is OpenAI's shape (mock_chat.c) with
 * stream_options.include_usage, max_tokens (or the Python client's
 * maximum_tokens); it rejects parallel_tool_calls and any response_format
 * but json_schema (400), and models named luminous-* (400
 * MISSING_CAPABILITY, as recorded). Errors are {"error":"text",
 * "code":"UPPER_CASE"}; status=503 faults say QUEUE_FULL.
 *
 * The tasks are deterministic: tokenize gives one token per word, "Ġ" +
 * word, id = hash(word) % 100000; detokenize gives "tok<id>" per id,
 * joined by spaces; evaluate's log_probability is -(1 + h % 255) / 16 for
 * a hash h of prompt and expected completion.
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

#define AA_VERSION "2022-04"  /* model_version in every task reply */
#define AA_TOKENS  100000     /* token ids are below this */
#define AA_G       "\xc4\xa0" /* "Ġ", the tokenizer's space mark */
#define AA_NO_CHAT "luminous-"

static const mock_oai_dialect aa_dialect = {
    "5f1c0d2e-0000-4000-8000-%012lx", ".unknown.", "call_mock_0001",
    MOCK_OAI_LOGPROBS | MOCK_OAI_TOOLTYPE};

/* ---- errors and auth --------------------------------------------------- */

static const char *default_code(int status)
{
    switch (status) {
    case 401:
        return "UNAUTHENTICATED";
    case 402:
        return "CREDITS_EXHAUSTED";
    case 403:
        return "FORBIDDEN";
    case 404:
        return "NOT_FOUND";
    case 408:
        return "TIMEOUT";
    case 429:
        return "TOO_MANY_REQUESTS";
    case 503:
        return "QUEUE_FULL";
    default:
        return status >= 500 ? "INTERNAL_ERROR" : "INVALID_INPUT";
    }
}

static void aa_error(mock_ctx *ctx, int status, const char *type,
                     const char *code, const char *param, const char *message)
{
    json_object *root = json_object_new_object();
    char fallback[64];

    (void)type;
    (void)param;
    if (!message) {
        if (status == 503)
            message = "The server is currently busy. Please try again "
                      "later. (mock)";
        else if (status == 429)
            message = "Too many requests (mock)";
        else if (status >= 500)
            message = "Internal server error (mock)";
        else {
            snprintf(fallback, sizeof(fallback), "Mock error %d.", status);
            message = fallback;
        }
    }
    jadd(root, "error", jstring(message));
    jadd(root, "code", jstring(code ? code : default_code(status)));
    llmux__mock_reply_json(ctx->reply, status, root);
}

static void bad_input(mock_ctx *ctx, const char *message)
{
    aa_error(ctx, 400, NULL, "INVALID_INPUT", NULL, message);
}

/* Mid-stream errors use the error body's shape as one more event. */
static void aa_stream_error(mock_ctx *ctx, const char *message)
{
    json_object *root = json_object_new_object();

    jadd(root, "error", jstring(message ? message : "mock stream error"));
    jadd(root, "code", jstring("INTERNAL_ERROR"));
    llmux__mock_sse_json(ctx->reply, root);
}

static int aa_auth(mock_ctx *ctx)
{
    const char *key = llmux__mock_bearer(ctx);

    if (!key || strcmp(key, "bad-key") == 0) {
        aa_error(ctx, 401, NULL, "UNAUTHENTICATED", NULL,
                 key ? "The provided token is invalid. (mock)"
                     : "No token provided in the Authorization header. "
                       "(mock)");
        return -1;
    }
    return 0;
}

/* ---- shared pieces ----------------------------------------------------- */

/* "model" present and known; returns -1 when the error reply is written. */
static int model_ok(mock_ctx *ctx)
{
    char *msg;

    if (!ctx->model) {
        bad_input(ctx, "missing field `model`");
        return -1;
    }
    if (strcmp(ctx->model, "missing") != 0)
        return 0;
    msg =
        llmux__mock_strdupf("Model '%s' is not available. (mock)", ctx->model);
    aa_error(ctx, 404, NULL, "UNKNOWN_MODEL", NULL, msg);
    free(msg);
    return -1;
}

/* The text of a prompt: a string, or the "data" of the text items of a
 * multimodal item list (image and token_ids items add no text). Returns
 * 0, or -1 when `prompt` is not a prompt. */
static int prompt_text(json_object *prompt, mock_buf *out)
{
    size_t i, n;

    if (prompt && json_object_is_type(prompt, json_type_string)) {
        llmux__mock_buf_adds(out, json_object_get_string(prompt));
        return 0;
    }
    if (!prompt || !json_object_is_type(prompt, json_type_array))
        return -1;
    n = json_object_array_length(prompt);
    for (i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(prompt, i);
        const char *type = jstr(item, "type");
        json_object *data = jget(item, "data");
        if (!type || !data)
            return -1;
        if (strcmp(type, "text") == 0) {
            if (!json_object_is_type(data, json_type_string))
                return -1;
            llmux__mock_buf_adds(out, json_object_get_string(data));
        } else if (strcmp(type, "image") != 0 &&
                   strcmp(type, "token_ids") != 0) {
            return -1;
        }
    }
    return 0;
}

/* Reads member `key` as a prompt into `out` (NUL-terminated, never NULL
 * data on success); writes a 400 and returns -1 when it is not one. */
static int get_prompt(mock_ctx *ctx, json_object *o, const char *key,
                      mock_buf *out)
{
    char msg[96];

    if (prompt_text(jget(o, key), out) < 0 || out->oom) {
        llmux__mock_buf_free(out);
        snprintf(msg, sizeof(msg),
                 "`%s` must be a string or a list of prompt items", key);
        bad_input(ctx, msg);
        return -1;
    }
    if (!out->data)
        llmux__mock_buf_add(out, "", 0);
    return 0;
}

static int stream_flag(mock_ctx *ctx)
{
    return llmux__mock_true(ctx->json, "stream");
}

static const char *aa_finish(const mock_chat_plan *p)
{
    return strcmp(p->finish, "length") == 0 ? "maximum_tokens" : "end_of_text";
}

/* ---- /complete --------------------------------------------------------- */

static void aa_complete(mock_ctx *ctx)
{
    mock_buf prompt = {0};
    mock_chat_plan p;
    json_object *o, *list, *c;

    if (model_ok(ctx) < 0 || get_prompt(ctx, ctx->json, "prompt", &prompt) < 0)
        return;
    /* maximum_tokens null or absent: until the end of text */
    if (llmux__mock_text_plan(ctx, prompt.data,
                              jint(ctx->json, "maximum_tokens"), &p) < 0) {
        llmux__mock_buf_free(&prompt);
        return;
    }
    llmux__mock_buf_free(&prompt);
    if (stream_flag(ctx)) {
        mock_reply *r = ctx->reply;
        size_t *ends = NULL, n, i, start = 0;
        llmux__mock_reply_stream(r, "text/event-stream");
        n = llmux__mock_pieces(p.content, &ends);
        for (i = 0; i < n; i++) {
            o = json_object_new_object();
            jadd(o, "type", jstring("stream_chunk"));
            jadd(o, "index", json_object_new_int(0));
            jadd(o, "completion",
                 json_object_new_string_len(p.content + start,
                                            (int)(ends[i] - start)));
            llmux__mock_sse_json(r, o);
            start = ends[i];
        }
        free(ends);
        o = json_object_new_object();
        jadd(o, "type", jstring("stream_summary"));
        jadd(o, "index", json_object_new_int(0));
        jadd(o, "model_version", jstring(AA_VERSION));
        jadd(o, "finish_reason", jstring(aa_finish(&p)));
        llmux__mock_sse_json(r, o);
        o = json_object_new_object();
        jadd(o, "type", jstring("completion_summary"));
        jadd(o, "num_tokens_prompt_total",
             json_object_new_int64((int64_t)p.prompt_tokens));
        jadd(o, "num_tokens_generated",
             json_object_new_int64((int64_t)p.completion_tokens));
        llmux__mock_sse_json(r, o);
    } else {
        o = json_object_new_object();
        list = json_object_new_array();
        c = json_object_new_object();
        jadd(c, "index", json_object_new_int(0));
        jadd(c, "completion", jstring(p.content));
        jadd(c, "finish_reason", jstring(aa_finish(&p)));
        json_object_array_add(list, c);
        jadd(o, "completions", list);
        jadd(o, "model_version", jstring(AA_VERSION));
        jadd(o, "num_tokens_prompt_total",
             json_object_new_int64((int64_t)p.prompt_tokens));
        jadd(o, "num_tokens_generated",
             json_object_new_int64((int64_t)p.completion_tokens));
        llmux__mock_reply_json(ctx->reply, 200, o);
    }
    llmux__mock_chat_plan_free(&p);
}

/* ---- /chat/completions ------------------------------------------------- */

static void aa_chat(mock_ctx *ctx)
{
    json_object *req = ctx->json, *fmt;
    mock_chat_in in;
    mock_chat_plan p;

    memset(&in, 0, sizeof(in));
    if (model_ok(ctx) < 0)
        return;
    if (strncmp(ctx->model, AA_NO_CHAT, strlen(AA_NO_CHAT)) == 0) {
        aa_error(ctx, 400, NULL, "MISSING_CAPABILITY", NULL,
                 "Sadly the model you chose does not provide that "
                 "capability: This model does not support chat "
                 "conversations. You could try to choose another model.");
        return;
    }
    if (jget(req, "parallel_tool_calls")) {
        bad_input(ctx, "`parallel_tool_calls` is not supported");
        return;
    }
    fmt = jget(req, "response_format");
    if (fmt && !json_object_is_type(fmt, json_type_null)) {
        const char *type = jstr(fmt, "type");
        if (!type || strcmp(type, "json_schema") != 0) {
            bad_input(ctx, "`response_format` supports only the type "
                           "`json_schema`");
            return;
        }
        in.json_reply = 1;
    }
    if (llmux__mock_chat_check(ctx, &in.messages) < 0)
        return;
    in.tool = llmux__mock_pick_tool(req);
    in.max_tokens = jint(req, "max_tokens");
    if (in.max_tokens < 0)
        in.max_tokens = jint(req, "maximum_tokens");
    if (llmux__mock_chat_plan(ctx, &in, &p) < 0)
        return;
    llmux__mock_oai_chat(
        ctx, &p, &aa_dialect, stream_flag(ctx),
        llmux__mock_true(jget(req, "stream_options"), "include_usage"));
    llmux__mock_chat_plan_free(&p);
}

/* ---- embeddings -------------------------------------------------------- */

static json_object *version_reply(void)
{
    json_object *o = json_object_new_object();

    jadd(o, "model_version", jstring(AA_VERSION));
    return o;
}

static int representation_ok(mock_ctx *ctx)
{
    json_object *v = jget(ctx->json, "representation");
    const char *r = jstr(ctx->json, "representation");

    if (!v || (r && (strcmp(r, "symmetric") == 0 ||
                     strcmp(r, "document") == 0 || strcmp(r, "query") == 0)))
        return 0;
    bad_input(ctx, "`representation` must be symmetric, document or query");
    return -1;
}

static void aa_semantic_embed(mock_ctx *ctx)
{
    mock_buf prompt = {0};
    json_object *o;

    if (model_ok(ctx) < 0 || representation_ok(ctx) < 0 ||
        get_prompt(ctx, ctx->json, "prompt", &prompt) < 0)
        return;
    o = version_reply();
    jadd(o, "embedding", llmux__mock_embedding_json(prompt.data, prompt.len));
    jadd(o, "num_tokens_prompt_total",
         json_object_new_int64(
             (int64_t)llmux__mock_count_words(prompt.data, prompt.len)));
    llmux__mock_buf_free(&prompt);
    llmux__mock_reply_json(ctx->reply, 200, o);
}

static void aa_batch_semantic_embed(mock_ctx *ctx)
{
    json_object *prompts = jget(ctx->json, "prompts"), *o, *vecs;
    size_t i, n, words = 0;

    if (model_ok(ctx) < 0 || representation_ok(ctx) < 0)
        return;
    if (!prompts || !json_object_is_type(prompts, json_type_array) ||
        json_object_array_length(prompts) == 0) {
        bad_input(ctx, "`prompts` must be a non-empty list of prompts");
        return;
    }
    n = json_object_array_length(prompts);
    vecs = json_object_new_array();
    for (i = 0; i < n; i++) {
        mock_buf t = {0};
        if (prompt_text(json_object_array_get_idx(prompts, i), &t) < 0) {
            llmux__mock_buf_free(&t);
            json_object_put(vecs);
            bad_input(ctx, "`prompts` must be a non-empty list of prompts");
            return;
        }
        words += llmux__mock_count_words(t.data ? t.data : "", t.len);
        json_object_array_add(
            vecs, llmux__mock_embedding_json(t.data ? t.data : "", t.len));
        llmux__mock_buf_free(&t);
    }
    o = version_reply();
    jadd(o, "embeddings", vecs);
    jadd(o, "num_tokens_prompt_total", json_object_new_int64((int64_t)words));
    llmux__mock_reply_json(ctx->reply, 200, o);
}

/* /embed: one vector (the text's) per requested layer and pooling. Layer
 * -k is named after the 41-layer mock model's layer 41-k. */
static void aa_embed(mock_ctx *ctx)
{
    static const char *const poolings[] = {"mean", "max", "last_token",
                                           "abs_max", NULL};
    json_object *layers = jget(ctx->json, "layers");
    json_object *pooling = jget(ctx->json, "pooling");
    json_object *o, *emb;
    mock_buf prompt = {0};
    size_t i, k, nl, np;

    if (model_ok(ctx) < 0)
        return;
    if (!layers || !json_object_is_type(layers, json_type_array) ||
        (nl = json_object_array_length(layers)) == 0 || !pooling ||
        !json_object_is_type(pooling, json_type_array) ||
        (np = json_object_array_length(pooling)) == 0) {
        bad_input(ctx, "`layers` and `pooling` must be non-empty lists");
        return;
    }
    for (i = 0; i < nl; i++) {
        json_object *l = json_object_array_get_idx(layers, i);
        int64_t v = json_object_get_int64(l);
        if (!json_object_is_type(l, json_type_int) || v < -41 || v > 40) {
            bad_input(ctx, "`layers` holds layer numbers from -41 to 40");
            return;
        }
    }
    for (k = 0; k < np; k++) {
        json_object *pv = json_object_array_get_idx(pooling, k);
        const char *const *q = poolings;
        if (json_object_is_type(pv, json_type_string))
            for (; *q && strcmp(*q, json_object_get_string(pv)) != 0; q++)
                ;
        if (!json_object_is_type(pv, json_type_string) || !*q) {
            bad_input(ctx, "`pooling` holds mean, max, last_token or "
                           "abs_max");
            return;
        }
    }
    if (get_prompt(ctx, ctx->json, "prompt", &prompt) < 0)
        return;
    emb = json_object_new_object();
    for (i = 0; i < nl; i++) {
        int64_t v = json_object_get_int64(json_object_array_get_idx(layers, i));
        json_object *layer = json_object_new_object();
        char name[32];
        snprintf(name, sizeof(name), "layer_%d", (int)(v < 0 ? 41 + v : v));
        for (k = 0; k < np; k++)
            jadd(layer,
                 json_object_get_string(json_object_array_get_idx(pooling, k)),
                 llmux__mock_embedding_json(prompt.data, prompt.len));
        jadd(emb, name, layer);
    }
    o = version_reply();
    jadd(o, "embeddings", emb);
    jadd(o, "tokens", NULL);
    jadd(o, "num_tokens_prompt_total",
         json_object_new_int64(
             (int64_t)llmux__mock_count_words(prompt.data, prompt.len)));
    llmux__mock_buf_free(&prompt);
    llmux__mock_reply_json(ctx->reply, 200, o);
}

/* /embeddings: OpenAI-compatible, but `user` is rejected. */
static void aa_embeddings(mock_ctx *ctx)
{
    if (model_ok(ctx) < 0)
        return;
    if (jget(ctx->json, "user")) {
        bad_input(ctx, "`user` is not supported");
        return;
    }
    llmux__mock_oai_embed_list(ctx, NULL);
}

/* ---- tokenize, detokenize, evaluate ------------------------------------ */

static int token_id(const char *word, size_t len)
{
    return (int)(llmux__mock_hash(word, len) % AA_TOKENS);
}

/* A flag defaulting to true when absent. */
static int flag_on(json_object *o, const char *key)
{
    json_object *v = jget(o, key);

    return !v || !json_object_is_type(v, json_type_boolean) ||
           json_object_get_boolean(v);
}

static void aa_tokenize(mock_ctx *ctx)
{
    const char *prompt = jstr(ctx->json, "prompt");
    json_object *o, *toks, *ids;
    size_t *ends = NULL, n, i, start = 0;
    int want_toks = flag_on(ctx->json, "tokens");
    int want_ids = flag_on(ctx->json, "token_ids");

    if (model_ok(ctx) < 0)
        return;
    if (!prompt) {
        bad_input(ctx, "`prompt` must be a string");
        return;
    }
    toks = json_object_new_array();
    ids = json_object_new_array();
    n = llmux__mock_pieces(prompt, &ends);
    for (i = 0; i < n; i++) {
        const char *w = prompt + start;
        size_t len = ends[i] - start;
        mock_buf t = {0};
        /* the piece without its surrounding whitespace */
        while (len && strchr(" \t\r\n\f\v", *w))
            w++, len--;
        while (len && strchr(" \t\r\n\f\v", w[len - 1]))
            len--;
        llmux__mock_buf_adds(&t, AA_G);
        llmux__mock_buf_add(&t, w, len);
        json_object_array_add(
            toks, json_object_new_string_len(t.data ? t.data : "", (int)t.len));
        json_object_array_add(ids, json_object_new_int(token_id(w, len)));
        llmux__mock_buf_free(&t);
        start = ends[i];
    }
    free(ends);
    o = json_object_new_object();
    if (want_toks) {
        jadd(o, "tokens", toks);
    } else {
        json_object_put(toks);
        jadd(o, "tokens", NULL);
    }
    if (want_ids) {
        jadd(o, "token_ids", ids);
    } else {
        json_object_put(ids);
        jadd(o, "token_ids", NULL);
    }
    llmux__mock_reply_json(ctx->reply, 200, o);
}

static void aa_detokenize(mock_ctx *ctx)
{
    json_object *ids = jget(ctx->json, "token_ids"), *o;
    mock_buf text = {0};
    size_t i, n;

    if (model_ok(ctx) < 0)
        return;
    if (!ids || !json_object_is_type(ids, json_type_array)) {
        bad_input(ctx, "`token_ids` must be a list of token ids");
        return;
    }
    n = json_object_array_length(ids);
    for (i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(ids, i);
        int64_t id = json_object_get_int64(v);
        if (!json_object_is_type(v, json_type_int) || id < 0 ||
            id >= AA_TOKENS) {
            llmux__mock_buf_free(&text);
            bad_input(ctx, "`token_ids` holds ids outside the vocabulary");
            return;
        }
        llmux__mock_buf_printf(&text, i ? " tok%lld" : "tok%lld",
                               (long long)id);
    }
    o = json_object_new_object();
    jadd(o, "result", jstring(text.data));
    llmux__mock_buf_free(&text);
    llmux__mock_reply_json(ctx->reply, 200, o);
}

/* Code points of a UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static void aa_evaluate(mock_ctx *ctx)
{
    const char *expected = jstr(ctx->json, "completion_expected");
    mock_buf prompt = {0}, key = {0};
    json_object *o, *res;
    char *greedy = NULL, *full;
    size_t tokens, chars;
    double lp;
    const char *e;

    if (model_ok(ctx) < 0)
        return;
    if (!expected || !*expected) {
        bad_input(ctx, "`completion_expected` must have at least one "
                       "character");
        return;
    }
    if (get_prompt(ctx, ctx->json, "prompt", &prompt) < 0)
        return;
    tokens = llmux__mock_count_words(expected, strlen(expected));
    if (tokens == 0)
        tokens = 1;
    chars = utf8_chars(expected);
    llmux__mock_buf_printf(&key, "%s\x1f%s", prompt.data, expected);
    lp = -(double)(1 +
                   llmux__mock_hash(key.data ? key.data : "", key.len) % 255) /
         16.0;
    /* What the mock would have said: the first words of its completion. */
    full = llmux__mock_strdupf("Mock completion of: %s", prompt.data);
    if (full)
        greedy = llmux__mock_first_words(full, tokens);
    if (!greedy || key.oom) {
        ctx->reply->oom = 1;
        goto out;
    }
    for (e = expected; *e && strchr(" \t\r\n", *e); e++)
        ;
    res = json_object_new_object();
    jadd(res, "log_probability", json_object_new_double(lp));
    jadd(res, "log_perplexity", json_object_new_double(-lp));
    jadd(res, "log_perplexity_per_token",
         json_object_new_double(-lp / (double)tokens));
    jadd(res, "log_perplexity_per_character",
         json_object_new_double(-lp / (double)chars));
    jadd(res, "correct_greedy",
         json_object_new_boolean(strcmp(e, greedy) == 0));
    jadd(res, "token_count", json_object_new_int64((int64_t)tokens));
    jadd(res, "character_count", json_object_new_int64((int64_t)chars));
    jadd(res, "completion", jstring(greedy));
    o = version_reply();
    jadd(o, "result", res);
    jadd(o, "num_tokens_prompt_total",
         json_object_new_int64(
             (int64_t)(llmux__mock_count_words(prompt.data, prompt.len) +
                       tokens)));
    llmux__mock_reply_json(ctx->reply, 200, o);
out:
    free(full);
    free(greedy);
    llmux__mock_buf_free(&key);
    llmux__mock_buf_free(&prompt);
}

/* ---- models ------------------------------------------------------------ */

static void aa_models(mock_ctx *ctx)
{
    static const struct {
        const char *name;
        int chat, image;
        long context;
    } models[] = {
        {"luminous-base", 0, 1, 2048},
        {"llama-3.1-8b-instruct", 1, 0, 8192},
        {"llama-3.3-70b-instruct", 1, 0, 8192},
        {"pharia-1-embedding-4608-control", 0, 0, 2048},
    };
    json_object *list = json_object_new_array();
    size_t i;

    for (i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        json_object *m = json_object_new_object();
        json_object *types = json_object_new_array();
        json_object *hostings = json_object_new_array();
        json_object_array_add(types, jstring("symmetric_128"));
        json_object_array_add(hostings, jstring("aleph-alpha"));
        jadd(m, "name", jstring(models[i].name));
        jadd(m, "description", jstring("Mock model"));
        jadd(m, "max_context_size", json_object_new_int64(models[i].context));
        jadd(m, "hostings", hostings);
        jadd(m, "image_support", json_object_new_boolean(models[i].image));
        jadd(m, "qa_support", json_object_new_boolean(0));
        jadd(m, "summarization_support", json_object_new_boolean(0));
        jadd(m, "embedding_types", types);
        jadd(m, "maximum_completion_tokens", json_object_new_int(8192));
        jadd(m, "aligned", json_object_new_boolean(models[i].chat));
        jadd(m, "chat", json_object_new_boolean(models[i].chat));
        json_object_array_add(list, m);
    }
    llmux__mock_reply_json(ctx->reply, 200, list);
}

/* huge=N: a /complete reply (on that path) or a chat.completion whose
 * text is n bytes of 'x'. */
static void aa_huge(mock_ctx *ctx, size_t n)
{
    if (!ctx->model)
        ctx->model = "llama-3.1-8b-instruct";
    if (llmux__mock_path_ends(ctx, "/complete")) {
        json_object *o = json_object_new_object();
        json_object *list = json_object_new_array();
        json_object *c = json_object_new_object();
        jadd(c, "index", json_object_new_int(0));
        jadd(c, "completion", jstring(""));
        jadd(c, "finish_reason", jstring("end_of_text"));
        json_object_array_add(list, c);
        jadd(o, "completions", list);
        jadd(o, "model_version", jstring(AA_VERSION));
        jadd(o, "num_tokens_prompt_total", json_object_new_int(0));
        jadd(o, "num_tokens_generated", json_object_new_int(n ? 1 : 0));
        llmux__mock_reply_json(ctx->reply, 200, o);
        llmux__mock_splice_x(ctx->reply, "\"completion\":\"\"", n);
        return;
    }
    llmux__mock_oai_huge(ctx, &aa_dialect, n);
}

/* ---- protocol table entry ---------------------------------------------- */

static const mock_route aa_routes[] = {
    {"POST", "/chat/completions", MOCK_ROUTE_JSON, aa_chat},
    {"POST", "/batch_semantic_embed", MOCK_ROUTE_JSON, aa_batch_semantic_embed},
    {"POST", "/semantic_embed", MOCK_ROUTE_JSON, aa_semantic_embed},
    {"POST", "/embeddings", MOCK_ROUTE_JSON, aa_embeddings},
    {"POST", "/embed", MOCK_ROUTE_JSON, aa_embed},
    {"POST", "/complete", MOCK_ROUTE_JSON, aa_complete},
    {"POST", "/evaluate", MOCK_ROUTE_JSON, aa_evaluate},
    {"POST", "/detokenize", MOCK_ROUTE_JSON, aa_detokenize},
    {"POST", "/tokenize", MOCK_ROUTE_JSON, aa_tokenize},
    {"GET", "/models_available", 0, aa_models},
    {NULL, NULL, 0, NULL},
};

const mock_protocol llmux__mock_aleph = {
    "alephalpha", "/aleph",        aa_routes, aa_auth,
    aa_error,     aa_stream_error, aa_huge,
};
