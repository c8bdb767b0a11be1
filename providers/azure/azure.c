/*
 * providers/azure/azure.c: the Azure OpenAI provider plugin.
 *
 * Azure OpenAI speaks OpenAI's protocol under other URLs and another
 * header. A resource (https://RESOURCE.openai.azure.com, the base URL)
 * serves two surfaces:
 *   - the deployments API: /openai/deployments/DEPLOYMENT/chat/completions
 *     ?api-version=VERSION (the deployment in the path; the body's model
 *     is ignored);
 *   - the v1 API: /openai/v1/chat/completions, the deployment as the
 *     body's model, no api-version.
 * The config string's api_version= (else OPENAI_API_VERSION) picks a
 * dated version of the deployments API; "v1", or no version at all, picks
 * the v1 API, Microsoft's recommended surface. The key goes in the
 * `api-key` header (auth_header); the core puts a bearer token from the
 * client's credential callback in Authorization instead.
 *
 * Everything else is the shared codec of providers/common/oai.c: this file
 * describes the dialect and builds the path of each request. The
 * deployment name may come from untrusted input (a request JSON), so it is
 * percent-encoded into its path segment, and the api version, from a
 * config string or the environment, must be a plain token.
 */
#include <stdlib.h>
#include <string.h>

#include <llmux/sys/provider.h>
#include <llmux/version.h>

#include "oai.h"

#define AZURE_VERSION_MAX 64 /* longer api versions are refused */

static const llmux_host *azure_host;

static const char *const azure_body_options[] = {"reasoning_effort",
                                                 "service_tier", "user", NULL};

/* Azure's content filter adds fields (prompt_filter_results,
 * content_filter_results) that the codec hands on as extras. Its stream
 * opens with a filter preamble whose id and model are "" (which the codec
 * skips) and whose created is 0: dropped here, so that the first real
 * chunk's time is the answer's. */
static int azure_fixup(const llmux_oai_dialect *d, const llmux_host *host,
                       llmux_call *call, int kind, struct json_object *root,
                       llmux_out *out, int *handled)
{
    int64_t created;
    (void)d;
    (void)host;
    (void)call;
    (void)out;
    *handled = 0;
    if (kind == LLMUX_OAI_EVENT &&
        llmux_pj_as_int(llmux_pj_get(root, "created"), &created) &&
        created == 0)
        json_object_object_del(root, "created");
    return 0;
}

static const llmux_oai_dialect azure_dialect = {
    "azure",                 /* name */
    "/chat/completions",     /* chat_path: after the deployment's prefix */
    "/completions",          /* complete_path */
    "/embeddings",           /* embed_path */
    "/models",               /* models_path */
    "max_completion_tokens", /* max_tokens_field */
    "max_tokens",            /* complete_max_tokens_field */
    "seed",                  /* seed_field */
    1,                       /* stream_usage */
    0,                       /* flags */
    NULL,                    /* reasoning_field */
    NULL,                    /* never_send */
    NULL,                    /* header_options */
    azure_body_options,      /* body_options */
    llmux_oai_patch_openai,  /* patch_request */
    azure_fixup,             /* fixup */
    NULL                     /* userdata */
};

static int azure_init(const llmux_host *host, const llmux_provider_config *cfg,
                      void **provctx)
{
    return llmux_oai_provider_init(&azure_dialect, host, cfg, provctx);
}

/* The api version: the api_version option, else OPENAI_API_VERSION, else
 * "v1". NULL (after logging) for one holding anything but letters,
 * digits, '.', '_' and '-': it goes into the query unencoded. */
static const char *api_version(const llmux_params *p)
{
    const char *v = llmux_pj_option(azure_host, p, "api_version");
    size_t n;
    if (!v || !*v)
        v = getenv("OPENAI_API_VERSION");
    if (!v || !*v)
        return "v1";
    n = strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789._-");
    if (v[n] || n > AZURE_VERSION_MAX) {
        azure_host->log(LLMUX_LOG_ERROR,
                        "azure: api_version must be letters, digits, '.', "
                        "'_' and '-', at most %d of them",
                        AZURE_VERSION_MAX);
        return NULL;
    }
    return v;
}

/* Appends s, every byte outside [A-Za-z0-9._~-] percent-encoded, at *o. */
static char *put_segment(char *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
            c == '-') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    return o;
}

/*
 * The path of a request whose dialect path (its tail) is `tail`:
 * /openai/v1TAIL for the v1 API, else /openai/deployments/DEPLOYMENT
 * TAIL?api-version=VERSION (the model list: /openai/models?api-version=).
 * Sets *out (host->free) and returns 0, or LLMUX_EINVAL (after logging)
 * for a deployment no path can hold, or LLMUX_ENOMEM.
 */
static int azure_path(const llmux_params *p, const char *version,
                      const char *tail, char **out)
{
    static const char v1[] = "/openai/v1", deps[] = "/openai/deployments/",
                      models[] = "/openai", query[] = "?api-version=";
    const char *dep = p->model ? p->model : "";
    char *path, *o;
    size_t n;
    if (llmux_pj_caseeq(version, "v1")) {
        n = sizeof v1 + strlen(tail);
        if (!(*out = azure_host->alloc(n)))
            return LLMUX_ENOMEM;
        strcpy(*out, v1);
        strcat(*out, tail);
        return 0;
    }
    if (p->op != LLMUX_OP_MODELS &&
        (!*dep || strcmp(dep, ".") == 0 || strcmp(dep, "..") == 0)) {
        /* "." and ".." would be dot-segments: the URL would lose one */
        azure_host->log(LLMUX_LOG_ERROR, "azure: %s deployment name",
                        *dep ? "invalid" : "no");
        return LLMUX_EINVAL;
    }
    n = sizeof deps + 3 * strlen(dep) + strlen(tail) + sizeof query +
        strlen(version);
    if (!(path = azure_host->alloc(n)))
        return LLMUX_ENOMEM;
    if (p->op == LLMUX_OP_MODELS) {
        strcpy(path, models);
        o = path + strlen(path);
    } else {
        strcpy(path, deps);
        o = put_segment(path + strlen(path), dep);
    }
    *o = '\0';
    strcat(o, tail);
    strcat(o, query);
    strcat(o, version);
    *out = path;
    return 0;
}

static int azure_encode(void *provctx, llmux_call *call,
                        llmux_http_request *http)
{
    llmux_oai_dialect d = *llmux_oai_provider_dialect(provctx);
    const llmux_params *p = call->params;
    const char **slot = NULL, *version;
    char *path;
    int rc;
    switch (p->op) {
    case LLMUX_OP_CHAT:
        slot = &d.chat_path;
        break;
    case LLMUX_OP_COMPLETE:
        slot = &d.complete_path;
        break;
    case LLMUX_OP_EMBED:
        slot = &d.embed_path;
        break;
    case LLMUX_OP_MODELS:
        slot = &d.models_path;
        break;
    }
    if (!slot || !*slot)
        return LLMUX_ENOTSUP;
    if (!(version = api_version(p)))
        return LLMUX_EINVAL;
    if ((rc = azure_path(p, version, *slot, &path)) != 0)
        return rc;
    *slot = path;
    rc = llmux_oai_encode(&d, azure_host, call, http);
    azure_host->free(path);
    return rc;
}

/* OpenAI's kinds, and Azure's content filter: a 400 with code
 * "content_filter" for a filtered prompt. */
static int azure_classify_error(void *provctx, long status, const char *type,
                                const char *code, const char *message)
{
    if (code && strcmp(code, "content_filter") == 0)
        return LLMUX_ERROR_KIND_FILTERED;
    return llmux_pj_classify_error(provctx, status, type, code, message);
}

/* What a config string may say to this plugin besides the core's keys. */
static const llmux_option_def azure_options[] = {
    {"api_version", 0},
    {"reasoning_effort", LLMUX_OPTION_BODY},
    {"service_tier", LLMUX_OPTION_BODY},
    {"user", LLMUX_OPTION_BODY},
    {"dimensions", LLMUX_OPTION_BODY},
    {"max_tokens_field", 0},
    LLMUX_OAI_DESCRIPTOR_OPTIONS,
    {NULL, 0}};

static const llmux_provider azure_provider = {
    LLMUX_PROVIDER_ABI,
    sizeof(llmux_provider),
    "azure",
    LLMUX_VERSION_STRING,
    "Azure OpenAI: chat, legacy completions, embeddings, models",
    LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_COMPLETE | LLMUX_CAP_EMBED |
        LLMUX_CAP_MODELS | LLMUX_CAP_TOOLS | LLMUX_CAP_JSON,
    LLMUX_FRAMING_SSE,
    LLMUX_AUTH_BEARER,
    NULL, /* default_base_url: every resource has its own */
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    azure_init,
    llmux_oai_provider_teardown,
    azure_encode,
    llmux_oai_provider_decode,
    llmux_oai_provider_decode_event,
    llmux_oai_provider_decode_error,
    llmux_oai_provider_call_end,
    0, /* default_port */
    llmux_oai_rate_limits,
    azure_classify_error,
    azure_options,
    "api-key", /* auth_header */
    NULL,      /* job_encode: Azure's batches are not wired yet */
    NULL       /* job_decode */
};

LLMUX_DEFINE_PROVIDER(azure_provider, azure_host)
