/*
 * mock_azure.c: the Azure OpenAI wire protocol for the mock server
 * (WIRE.md §8.1), under /openai:
 *   - the deployments API, /openai/deployments/DEPLOYMENT/chat/completions,
 *     /completions and /embeddings, and the model list /openai/models,
 *     each requiring the api-version query parameter;
 *   - the v1 API, /openai/v1/chat/completions ... /openai/v1/models,
 *     without it (the deployment is the body's model).
 * A key goes in `api-key: KEY` or, as an Entra ID token would,
 * `Authorization: Bearer KEY`; "bad-key" is refused as a wrong key is.
 *
 * The answers are OpenAI's (the handlers of mock_openai.c), with the
 * deployment as the model on the deployments API and Azure's content
 * filter results added: prompt_filter_results and per-choice
 * content_filter_results in whole chat answers, and a stream that opens
 * with the filter preamble (empty choices, empty id and model, created 0).
 */
#include "mock_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define jadd    json_object_object_add
#define jstring llmux__mock_jstr

#define AZ_DENIED                                                              \
    "Access denied due to invalid subscription key or wrong API endpoint. "    \
    "Make sure to provide a valid key for an active subscription and use a "   \
    "correct regional API endpoint for your resource."

/* ---- errors and auth ---------------------------------------------------- */

/* Azure's error body: OpenAI's, its code the status when none is given. */
static void az_error(mock_ctx *ctx, int status, const char *type,
                     const char *code, const char *param, const char *message)
{
    json_object *root = json_object_new_object();
    json_object *err = json_object_new_object();
    char num[16];

    snprintf(num, sizeof(num), "%d", status);
    if (!message) {
        if (status == 404)
            message = "Resource not found";
        else if (status == 429)
            message = "Requests to the ChatCompletions_Create Operation have "
                      "exceeded token rate limit of your current pricing "
                      "tier. Please retry after 1 second. (mock)";
        else if (status >= 500)
            message = "The server had an error while processing your "
                      "request. (mock)";
        else
            message = "Mock error.";
    }
    jadd(err, "code", jstring(code ? code : num));
    jadd(err, "message", jstring(message));
    if (param)
        jadd(err, "param", jstring(param));
    if (type)
        jadd(err, "type", jstring(type));
    jadd(root, "error", err);
    llmux__mock_reply_json(ctx->reply, status, root);
}

static void az_stream_error(mock_ctx *ctx, const char *message)
{
    llmux__mock_sse_error(ctx, message, "server_error");
}

static int az_auth(mock_ctx *ctx)
{
    const char *key = llmux_mock_record_header(ctx->rec, "api-key");

    if (!key || !*key)
        key = llmux__mock_bearer(ctx);
    if (!key || !*key || strcmp(key, "bad-key") == 0) {
        az_error(ctx, 401, NULL, "401", NULL, AZ_DENIED);
        return -1;
    }
    return 0;
}

/* ---- paths -------------------------------------------------------------- */

/* The value of query parameter `name` in the request target, or NULL;
 * borrowed, up to the next '&' or '#' (*len). */
static const char *query_param(const mock_ctx *ctx, const char *name,
                               size_t *len)
{
    const char *q = strchr(ctx->rec->path, '?');
    size_t n = strlen(name);

    while (q) {
        q++;
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            q += n + 1;
            *len = strcspn(q, "&#");
            return q;
        }
        q = strchr(q, '&');
    }
    return NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Malloc'd percent-decoding of s[0..n), cut at a '#' (the mock's fault
 * suffix, which the body's model carried too); NULL for a bad escape. */
static char *seg_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    size_t i;

    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
        } else if (i + 2 < n && hexval(s[i + 1]) >= 0 &&
                   hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            free(out);
            return NULL;
        }
    }
    *o = '\0';
    o = strchr(out, '#');
    if (o)
        *o = '\0';
    return out;
}

/*
 * Checks the path of an operation whose OpenAI path is `tail`: /openai/v1
 * TAIL, or /openai/deployments/DEPLOYMENT TAIL (for the model list
 * /openai TAIL) with an api-version. Sets *deployment (malloc'd) for the
 * deployments API. Returns 0, or -1 after writing Azure's 404.
 */
static int az_target(mock_ctx *ctx, const char *tail, char **deployment)
{
    static const char v1[] = "/openai/v1", deps[] = "/openai/deployments/";
    const char *p = ctx->path, *seg;
    size_t plen = strlen(p), tlen = strlen(tail), vlen = 0, slen;

    *deployment = NULL;
    if (plen == sizeof(v1) - 1 + tlen && strncmp(p, v1, sizeof(v1) - 1) == 0)
        return 0;
    if (strncmp(p, deps, sizeof(deps) - 1) == 0 &&
        plen > sizeof(deps) - 1 + tlen) {
        /* one segment between the prefix and the tail */
        seg = p + sizeof(deps) - 1;
        slen = plen - tlen - (sizeof(deps) - 1);
        if (!memchr(seg, '/', slen))
            *deployment = seg_decode(seg, slen);
        if (!*deployment || !**deployment) {
            free(*deployment);
            *deployment = NULL;
            az_error(ctx, 404, NULL, NULL, NULL, NULL);
            return -1;
        }
    } else if (strcmp(tail, "/models") != 0 ||
               strcmp(p, "/openai/models") != 0) {
        az_error(ctx, 404, NULL, NULL, NULL, NULL);
        return -1;
    }
    /* the deployments API and the model list: api-version required */
    if (!query_param(ctx, "api-version", &vlen) || !vlen) {
        free(*deployment);
        *deployment = NULL;
        az_error(ctx, 404, NULL, NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* ---- filter results ----------------------------------------------------- */

/* {"hate":{"filtered":false,"severity":"safe"}, ...} */
static json_object *filter_results(void)
{
    static const char *const cats[] = {"hate", "self_harm", "sexual",
                                       "violence"};
    json_object *o = json_object_new_object();
    size_t i;

    for (i = 0; i < sizeof(cats) / sizeof(cats[0]); i++) {
        json_object *c = json_object_new_object();
        jadd(c, "filtered", json_object_new_boolean(0));
        jadd(c, "severity", jstring("safe"));
        jadd(o, cats[i], c);
    }
    return o;
}

/* [{"prompt_index":0,"content_filter_results":{...}}] */
static json_object *prompt_filter_results(void)
{
    json_object *a = json_object_new_array();
    json_object *e = json_object_new_object();

    jadd(e, "prompt_index", json_object_new_int(0));
    jadd(e, "content_filter_results", filter_results());
    json_object_array_add(a, e);
    return a;
}

/* Adds the filter results to the whole chat answer in ctx->reply. */
static void annotate_answer(mock_ctx *ctx)
{
    mock_reply *r = ctx->reply;
    json_object *o, *choices;
    size_t i, n;

    o = json_tokener_parse(r->body.data ? r->body.data : "");
    if (!o) {
        r->oom = 1;
        return;
    }
    choices = llmux__mock_get(o, "choices");
    n = json_object_is_type(choices, json_type_array)
            ? json_object_array_length(choices)
            : 0;
    for (i = 0; i < n; i++)
        jadd(json_object_array_get_idx(choices, i), "content_filter_results",
             filter_results());
    jadd(o, "prompt_filter_results", prompt_filter_results());
    llmux__mock_reply_json(r, r->status, o);
}

/* Puts the filter preamble before the stream's first event. */
static void stream_preamble(mock_ctx *ctx)
{
    mock_reply *r = ctx->reply;
    size_t *ends = r->ev_end, n = r->n_events, i, start = 0;
    size_t len = 0;
    char *events = llmux__mock_buf_steal(&r->body, &len);
    json_object *pre = json_object_new_object();

    r->ev_end = NULL;
    r->ev_cap = r->n_events = 0;
    if (!events) {
        json_object_put(pre);
        free(ends);
        r->oom = 1;
        return;
    }
    jadd(pre, "choices", json_object_new_array());
    jadd(pre, "created", json_object_new_int(0));
    jadd(pre, "id", jstring(""));
    jadd(pre, "model", jstring(""));
    jadd(pre, "object", jstring(""));
    jadd(pre, "prompt_filter_results", prompt_filter_results());
    jadd(pre, "usage", NULL);
    llmux__mock_sse_json(r, pre);
    for (i = 0; i < n; i++) {
        llmux__mock_event_raw(r, events + start, ends[i] - start);
        start = ends[i];
    }
    free(events);
    free(ends);
}

/* ---- operations --------------------------------------------------------- */

/* Runs OpenAI's handler for `tail` on an Azure path. */
static void az_run(mock_ctx *ctx, const char *tail, int annotate)
{
    const mock_route *rt;
    const char *body_model = ctx->model;
    char *dep;

    if (az_target(ctx, tail, &dep) < 0)
        return;
    if (dep) /* the deployments API: the path names the model */
        ctx->model = dep;
    for (rt = llmux__mock_openai.routes; rt->method; rt++)
        if (strcmp(rt->suffix, tail) == 0)
            break;
    if (rt->handle)
        rt->handle(ctx);
    if (annotate && ctx->reply->status == 200 && !ctx->reply->oom) {
        if (ctx->reply->stream)
            stream_preamble(ctx);
        else
            annotate_answer(ctx);
    }
    ctx->model = body_model;
    free(dep);
}

static void az_chat(mock_ctx *ctx)
{
    az_run(ctx, "/chat/completions", 1);
}

static void az_completions(mock_ctx *ctx)
{
    az_run(ctx, "/completions", 0);
}

static void az_embeddings(mock_ctx *ctx)
{
    az_run(ctx, "/embeddings", 0);
}

static void az_models(mock_ctx *ctx)
{
    az_run(ctx, "/models", 0);
}

/* ---- protocol table entry ----------------------------------------------- */

static const mock_route az_routes[] = {
    {"POST", "/chat/completions", MOCK_ROUTE_JSON, az_chat},
    {"POST", "/completions", MOCK_ROUTE_JSON, az_completions},
    {"POST", "/embeddings", MOCK_ROUTE_JSON, az_embeddings},
    {"GET", "/models", 0, az_models},
    {NULL, NULL, 0, NULL},
};

const mock_protocol llmux__mock_azure = {
    "azure", "/openai", az_routes, az_auth, az_error, az_stream_error, NULL,
};
