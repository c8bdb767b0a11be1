/*
 * mock_chat.c: what every mock protocol answers, and OpenAI's chat shape.
 *
 * The plan functions decide the normalized answer from the request's
 * messages or prompt (reply text, usage word counts, max-tokens truncation,
 * the tool call), so that OpenAI, Mistral, Ollama and Aleph Alpha give the
 * same content in their own formats. llmux__mock_oai_chat() writes a plan
 * as an OpenAI chat.completion (whole or SSE chunks); Mistral and Aleph
 * Alpha use it with a dialect that states their differences.
 */
#include "mock_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARG_PIECE 5 /* bytes per streamed tool-argument fragment */

#define jget    llmux__mock_get
#define jstr    llmux__mock_str
#define jadd    json_object_object_add
#define jstring llmux__mock_jstr

/* ---- plans ------------------------------------------------------------- */

int llmux__mock_chat_check(mock_ctx *ctx, json_object **messages)
{
    json_object *msgs = jget(ctx->json, "messages");

    if (!ctx->model) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "model",
                          "you must provide a model parameter");
        return -1;
    }
    if (!msgs || !json_object_is_type(msgs, json_type_array) ||
        json_object_array_length(msgs) == 0) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "messages",
                          "'messages' must be a non-empty array");
        return -1;
    }
    *messages = msgs;
    return 0;
}

const char *llmux__mock_pick_tool(json_object *req)
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

void llmux__mock_chat_plan_free(mock_chat_plan *p)
{
    free(p->content);
    free(p->tool_name);
    free(p->tool_args);
    memset(p, 0, sizeof(*p));
}

/* Cuts p->content to `max` words (-1: no limit) and sets the finish
 * reason and completion count. */
static void truncate_plan(mock_chat_plan *p, long max)
{
    size_t words = llmux__mock_count_words(p->content, strlen(p->content));

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
}

int llmux__mock_chat_plan(mock_ctx *ctx, const mock_chat_in *in,
                          mock_chat_plan *p)
{
    json_object *msgs = in->messages, *last;
    const char *last_role;
    mock_buf user = {0}, all = {0}, reply = {0};
    size_t i, n = json_object_array_length(msgs);
    int rc = 0;

    memset(p, 0, sizeof(*p));
    for (i = 0; i < n; i++) {
        mock_buf t = {0};
        llmux__mock_content_text(
            jget(json_object_array_get_idx(msgs, i), "content"), &t);
        p->prompt_tokens +=
            llmux__mock_count_words(t.data ? t.data : "", t.len);
        llmux__mock_buf_free(&t);
    }
    for (i = n; i-- > 0;) {
        json_object *m = json_object_array_get_idx(msgs, i);
        const char *role = jstr(m, "role");
        if (role && strcmp(role, "user") == 0) {
            llmux__mock_content_text(jget(m, "content"), &user);
            break;
        }
    }
    last = json_object_array_get_idx(msgs, n - 1);
    last_role = jstr(last, "role");
    if (!last_role)
        last_role = "";

    if (in->tool && strcmp(last_role, "user") == 0) {
        json_object *args = json_object_new_object();
        size_t len;
        jadd(args, "input", jstring(user.data));
        p->tool_name = llmux__mock_strdup(in->tool);
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
        llmux__mock_content_text(jget(last, "content"), &all);
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
    truncate_plan(p, in->max_tokens);
    if (in->json_reply) {
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
    if (!p->content && !p->tool_args)
        rc = -1;
    if (rc < 0) {
        llmux__mock_chat_plan_free(p);
        ctx->reply->oom = 1;
    }
    return rc;
}

int llmux__mock_text_plan(mock_ctx *ctx, const char *prompt, long max,
                          mock_chat_plan *p)
{
    memset(p, 0, sizeof(*p));
    p->prompt_tokens = llmux__mock_count_words(prompt, strlen(prompt));
    if (ctx->fault->events >= 0)
        p->content = llmux__mock_tok_text(ctx->fault->events);
    else
        p->content = llmux__mock_strdupf("Mock completion of: %s", prompt);
    if (!p->content) {
        ctx->reply->oom = 1;
        return -1;
    }
    truncate_plan(p, max);
    return 0;
}

/* ---- OpenAI's chat shape ----------------------------------------------- */

static json_object *tool_call_new(const mock_oai_dialect *d,
                                  const mock_chat_plan *p, int with_index,
                                  const char *args)
{
    json_object *tc = json_object_new_object();
    json_object *fn = json_object_new_object();

    if (with_index)
        jadd(tc, "index", json_object_new_int(0));
    jadd(tc, "id", jstring(d->tool_id));
    if (d->flags & MOCK_OAI_TOOLTYPE)
        jadd(tc, "type", jstring("function"));
    jadd(fn, "name", jstring(p->tool_name));
    jadd(fn, "arguments", jstring(args));
    jadd(tc, "function", fn);
    return tc;
}

static size_t completion_words(const mock_chat_plan *p);

static json_object *usage_new(const mock_chat_plan *p)
{
    json_object *u = json_object_new_object();

    jadd(u, "prompt_tokens", json_object_new_int64((int64_t)p->prompt_tokens));
    jadd(u, "completion_tokens",
         json_object_new_int64((int64_t)completion_words(p)));
    jadd(u, "total_tokens",
         json_object_new_int64(
             (int64_t)(p->prompt_tokens + completion_words(p))));
    return u;
}

/* ---- n choices and logprobs (OpenAI) ----------------------------------- */

static int n_choices(const mock_chat_plan *p)
{
    return p->n > 1 ? p->n : 1;
}

/* Choice i's text: the plan's, and "(choice i)" after it for i > 0. */
static char *choice_text(const mock_chat_plan *p, int i)
{
    if (!p->content)
        return NULL;
    return i ? llmux__mock_strdupf("%s (choice %d)", p->content, i)
             : llmux__mock_strdup(p->content);
}

/* One token entry: text[0..len), logprob -(k+1)/8, its bytes. */
static json_object *token_entry(const char *text, size_t len, double lp)
{
    json_object *t = json_object_new_object(), *b = json_object_new_array();
    size_t i;
    jadd(t, "token", json_object_new_string_len(text, (int)len));
    jadd(t, "logprob", json_object_new_double(lp));
    for (i = 0; i < len; i++)
        json_object_array_add(b, json_object_new_int((unsigned char)text[i]));
    jadd(t, "bytes", b);
    return t;
}

/* The k-th token of a choice with its top_logprobs. */
static json_object *logprob_of(const mock_chat_plan *p, const char *text,
                               size_t len, size_t k)
{
    double lp = -(double)(k + 1) / 8;
    json_object *t = token_entry(text, len, lp), *top = json_object_new_array();
    int a;
    for (a = 0; a < p->top_logprobs; a++) {
        char alt[16];
        int n = snprintf(alt, sizeof alt, "alt%d", a);
        json_object_array_add(top, a ? token_entry(alt, (size_t)n, lp - a)
                                     : token_entry(text, len, lp));
    }
    jadd(t, "top_logprobs", top);
    return t;
}

/* {"content":[...],"refusal":null} of the pieces of text up to ends[i]
 * for i in [from, to). */
static json_object *logprobs_of(const mock_chat_plan *p, const char *text,
                                const size_t *ends, size_t from, size_t to)
{
    json_object *lp = json_object_new_object(), *c = json_object_new_array();
    size_t i, start = from ? ends[from - 1] : 0;
    for (i = from; i < to; i++) {
        json_object_array_add(c,
                              logprob_of(p, text + start, ends[i] - start, i));
        start = ends[i];
    }
    jadd(lp, "content", c);
    jadd(lp, "refusal", NULL);
    return lp;
}

/* The completion tokens of all choices: each choice's words. */
static size_t completion_words(const mock_chat_plan *p)
{
    size_t words = p->completion_tokens;
    int i;
    for (i = 1; i < n_choices(p); i++) {
        char *t = choice_text(p, i);
        if (t)
            words += llmux__mock_count_words(t, strlen(t));
        free(t);
    }
    return words;
}

static json_object *whole_choice(const mock_chat_plan *p,
                                 const mock_oai_dialect *d, int i)
{
    json_object *choice = json_object_new_object();
    json_object *msg = json_object_new_object();
    int mistral = (d->flags & MOCK_OAI_MISTRAL) != 0;
    char *text = choice_text(p, i);

    jadd(choice, "index", json_object_new_int(i));
    jadd(msg, "role", jstring("assistant"));
    /* Mistral sends "" beside tool calls, OpenAI null. */
    jadd(msg, "content", text || mistral ? jstring(text) : NULL);
    if (d->flags & MOCK_OAI_REFUSAL)
        jadd(msg, "refusal", NULL);
    if (p->tool_name) {
        json_object *calls = json_object_new_array();
        json_object_array_add(calls, tool_call_new(d, p, 0, p->tool_args));
        jadd(msg, "tool_calls", calls);
    } else if (mistral) {
        jadd(msg, "tool_calls", NULL);
    }
    jadd(choice, "message", msg);
    if (p->logprobs && text) {
        size_t *ends = NULL, n = llmux__mock_pieces(text, &ends);
        jadd(choice, "logprobs", logprobs_of(p, text, ends, 0, n));
        free(ends);
    } else if (d->flags & MOCK_OAI_LOGPROBS) {
        jadd(choice, "logprobs", NULL);
    }
    jadd(choice, "finish_reason", jstring(p->finish));
    free(text);
    return choice;
}

static void chat_whole(mock_ctx *ctx, const mock_chat_plan *p,
                       const mock_oai_dialect *d, const char *id)
{
    json_object *root = json_object_new_object();
    json_object *choices = json_object_new_array();
    json_object *u;
    int i;

    jadd(root, "id", jstring(id));
    jadd(root, "object", jstring("chat.completion"));
    jadd(root, "created", json_object_new_int64(MOCK_CREATED));
    jadd(root, "model", jstring(ctx->model));
    for (i = 0; i < n_choices(p); i++)
        json_object_array_add(choices, whole_choice(p, d, i));
    jadd(root, "choices", choices);
    u = usage_new(p);
    jadd(root, "usage", u);
    if (d->fingerprint)
        jadd(root, "system_fingerprint", jstring(d->fingerprint));
    llmux__mock_reply_json(ctx->reply, 200, root);
}

/* A chunk with one choice carrying `delta` (consumed), or with no choice
 * when `delta` is NULL. */
static json_object *chat_chunk_of(mock_ctx *ctx, const mock_oai_dialect *d,
                                  const char *id, int index, json_object *delta,
                                  json_object *logprobs, const char *finish);

static json_object *chat_chunk(mock_ctx *ctx, const mock_oai_dialect *d,
                               const char *id, json_object *delta,
                               const char *finish)
{
    return chat_chunk_of(ctx, d, id, 0, delta, NULL, finish);
}

/* A chunk of choice `index` carrying `delta` and `logprobs` (both
 * consumed; logprobs NULL: null), or with no choice when `delta` is NULL. */
static json_object *chat_chunk_of(mock_ctx *ctx, const mock_oai_dialect *d,
                                  const char *id, int index, json_object *delta,
                                  json_object *logprobs, const char *finish)
{
    json_object *root = json_object_new_object();
    json_object *choices = json_object_new_array();

    jadd(root, "id", jstring(id));
    jadd(root, "object", jstring("chat.completion.chunk"));
    jadd(root, "created", json_object_new_int64(MOCK_CREATED));
    jadd(root, "model", jstring(ctx->model));
    if (d->fingerprint)
        jadd(root, "system_fingerprint", jstring(d->fingerprint));
    if (delta) {
        json_object *choice = json_object_new_object();
        jadd(choice, "index", json_object_new_int(index));
        jadd(choice, "delta", delta);
        if (logprobs || (d->flags & MOCK_OAI_LOGPROBS))
            jadd(choice, "logprobs", logprobs);
        jadd(choice, "finish_reason", finish ? jstring(finish) : NULL);
        json_object_array_add(choices, choice);
    }
    jadd(root, "choices", choices);
    return root;
}

/* Writes chunk o with "usage": null when the stream ends with usage. */
static void send_chunk(mock_reply *r, json_object *o, int include_usage)
{
    if (include_usage)
        jadd(o, "usage", NULL);
    llmux__mock_sse_json(r, o);
}

/* Text answers: each choice's role chunk, then their pieces interleaved
 * one choice per chunk (0, 1, ..., 0, 1, ...) as OpenAI sends n > 1, each
 * with its token's logprobs when asked, then each choice's finish chunk. */
static void stream_text(mock_ctx *ctx, const mock_chat_plan *p,
                        const mock_oai_dialect *d, const char *id,
                        int include_usage)
{
    int nc = n_choices(p), i;
    char **text = calloc((size_t)nc, sizeof *text);
    size_t **ends = calloc((size_t)nc, sizeof *ends);
    size_t *n = calloc((size_t)nc, sizeof *n), k, most = 0;

    if (!text || !ends || !n) {
        ctx->reply->oom = 1;
        goto out;
    }
    for (i = 0; i < nc; i++) {
        json_object *delta = json_object_new_object(), *lp = NULL;
        text[i] = choice_text(p, i);
        n[i] = text[i] ? llmux__mock_pieces(text[i], &ends[i]) : 0;
        if (n[i] > most)
            most = n[i];
        jadd(delta, "role", jstring("assistant"));
        jadd(delta, "content", jstring(""));
        if (p->logprobs)
            lp = logprobs_of(p, text[i], ends[i], 0, 0);
        send_chunk(ctx->reply, chat_chunk_of(ctx, d, id, i, delta, lp, NULL),
                   include_usage);
    }
    for (k = 0; k < most; k++)
        for (i = 0; i < nc; i++) {
            size_t start;
            json_object *delta, *lp = NULL;
            if (k >= n[i])
                continue; /* this choice's text is shorter */
            start = k ? ends[i][k - 1] : 0;
            delta = json_object_new_object();
            jadd(delta, "content",
                 json_object_new_string_len(text[i] + start,
                                            (int)(ends[i][k] - start)));
            if (p->logprobs)
                lp = logprobs_of(p, text[i], ends[i], k, k + 1);
            send_chunk(ctx->reply,
                       chat_chunk_of(ctx, d, id, i, delta, lp, NULL),
                       include_usage);
        }
    for (i = 0; i < nc; i++)
        send_chunk(ctx->reply,
                   chat_chunk_of(ctx, d, id, i, json_object_new_object(), NULL,
                                 p->finish),
                   include_usage);
out:
    for (i = 0; text && ends && i < nc; i++) {
        free(text[i]);
        free(ends[i]);
    }
    free(text);
    free(ends);
    free(n);
}

/* OpenAI (and Aleph Alpha) streaming: role chunk, content pieces or tool
 * call with argument fragments, finish chunk, optional usage chunk. */
static void stream_openai(mock_ctx *ctx, const mock_chat_plan *p,
                          const mock_oai_dialect *d, const char *id,
                          int include_usage)
{
    mock_reply *r = ctx->reply;
    json_object *delta, *o;

    delta = json_object_new_object();
    jadd(delta, "role", jstring("assistant"));
    if (p->tool_name) {
        const char *a = p->tool_args;
        size_t len = strlen(a), off = 0;
        json_object *calls = json_object_new_array();
        jadd(delta, "content", NULL);
        json_object_array_add(calls, tool_call_new(d, p, 1, ""));
        jadd(delta, "tool_calls", calls);
        o = chat_chunk(ctx, d, id, delta, NULL);
        if (include_usage)
            jadd(o, "usage", NULL);
        llmux__mock_sse_json(r, o);
        while (off < len) {
            size_t n = llmux__mock_utf8_cut(a + off, len - off, ARG_PIECE);
            json_object *tc = json_object_new_object();
            json_object *fn = json_object_new_object();
            calls = json_object_new_array();
            jadd(tc, "index", json_object_new_int(0));
            jadd(fn, "arguments", json_object_new_string_len(a + off, (int)n));
            jadd(tc, "function", fn);
            json_object_array_add(calls, tc);
            delta = json_object_new_object();
            jadd(delta, "tool_calls", calls);
            o = chat_chunk(ctx, d, id, delta, NULL);
            if (include_usage)
                jadd(o, "usage", NULL);
            llmux__mock_sse_json(r, o);
            off += n;
        }
    } else {
        json_object_put(delta);
        stream_text(ctx, p, d, id, include_usage);
    }
    if (p->tool_name) {
        o = chat_chunk(ctx, d, id, json_object_new_object(), p->finish);
        if (include_usage)
            jadd(o, "usage", NULL);
        llmux__mock_sse_json(r, o);
    }
    if (include_usage) {
        o = chat_chunk(ctx, d, id, NULL, NULL);
        jadd(o, "usage", usage_new(p));
        llmux__mock_sse_json(r, o);
    }
}

/* The "p" padding Mistral adds to chunks: a deterministic run of letters. */
static json_object *padding(size_t i)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz";

    return json_object_new_string_len(abc, (int)(1 + i * 7 % 25));
}

/* Mistral streaming: role chunk, then the pieces, the last one carrying
 * finish_reason and usage; a tool call arrives whole (no index, no type)
 * in the finishing chunk. */
static void stream_mistral(mock_ctx *ctx, const mock_chat_plan *p,
                           const mock_oai_dialect *d, const char *id)
{
    mock_reply *r = ctx->reply;
    json_object *delta, *o;
    size_t *ends = NULL, n = 0, i, start = 0;

    delta = json_object_new_object();
    jadd(delta, "role", jstring("assistant"));
    jadd(delta, "content", jstring(""));
    llmux__mock_sse_json(r, chat_chunk(ctx, d, id, delta, NULL));
    if (p->content)
        n = llmux__mock_pieces(p->content, &ends);
    for (i = 0; i < n; i++) {
        int last = i + 1 == n;
        delta = json_object_new_object();
        jadd(delta, "content",
             json_object_new_string_len(p->content + start,
                                        (int)(ends[i] - start)));
        o = chat_chunk(ctx, d, id, delta, last ? p->finish : NULL);
        if (last)
            jadd(o, "usage", usage_new(p));
        jadd(o, "p", padding(i));
        llmux__mock_sse_json(r, o);
        start = ends[i];
    }
    free(ends);
    if (n == 0) {
        delta = json_object_new_object();
        jadd(delta, "content", jstring(""));
        if (p->tool_name) {
            json_object *calls = json_object_new_array();
            json_object_array_add(calls, tool_call_new(d, p, 0, p->tool_args));
            jadd(delta, "tool_calls", calls);
        }
        o = chat_chunk(ctx, d, id, delta, p->finish);
        jadd(o, "usage", usage_new(p));
        jadd(o, "p", padding(0));
        llmux__mock_sse_json(r, o);
    }
}

void llmux__mock_oai_chat(mock_ctx *ctx, const mock_chat_plan *p,
                          const mock_oai_dialect *d, int stream,
                          int include_usage)
{
    char *id = llmux__mock_strdupf(d->id_fmt, ctx->seq);

    if (!id) {
        ctx->reply->oom = 1;
        return;
    }
    if (!stream) {
        chat_whole(ctx, p, d, id);
    } else {
        llmux__mock_reply_stream(ctx->reply, "text/event-stream");
        if (d->flags & MOCK_OAI_MISTRAL)
            stream_mistral(ctx, p, d, id);
        else
            stream_openai(ctx, p, d, id, include_usage);
        llmux__mock_sse_text(ctx->reply, "[DONE]");
    }
    free(id);
}

void llmux__mock_oai_huge(mock_ctx *ctx, const mock_oai_dialect *d, size_t n)
{
    mock_chat_plan p;

    memset(&p, 0, sizeof(p));
    p.content = llmux__mock_strdup("");
    p.finish = "stop";
    p.completion_tokens = n ? 1 : 0;
    if (p.content)
        llmux__mock_oai_chat(ctx, &p, d, 0, 0);
    llmux__mock_chat_plan_free(&p);
    llmux__mock_splice_x(ctx->reply, "\"content\":\"\"", n);
}

/* ---- OpenAI-shaped embeddings ------------------------------------------ */

void llmux__mock_oai_embed_list(mock_ctx *ctx, const char *id)
{
    json_object *input = jget(ctx->json, "input");
    json_object *root, *data, *usage;
    size_t i, n, words = 0;
    long count;
    int bad_item;

    if (!ctx->model) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "model",
                          "you must provide a model parameter");
        return;
    }
    count = llmux__mock_inputs(input, &bad_item);
    if (bad_item) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "input",
                          "the mock takes only string inputs");
        return;
    }
    if (count <= 0) {
        ctx->proto->error(ctx, 400, "invalid_request_error", NULL, "input",
                          "'input' must be a string or an array of strings");
        return;
    }
    n = (size_t)count;
    root = json_object_new_object();
    data = json_object_new_array();
    if (id)
        jadd(root, "id", jstring(id));
    jadd(root, "object", jstring("list"));
    for (i = 0; i < n; i++) {
        size_t len;
        const char *text = llmux__mock_input_text(input, i, &len);
        json_object *item = json_object_new_object();

        words += llmux__mock_count_words(text, len);
        jadd(item, "object", jstring("embedding"));
        jadd(item, "index", json_object_new_int((int)i));
        jadd(item, "embedding", llmux__mock_embedding_json(text, len));
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
