/*
 * providers/openai/openai.c: the OpenAI provider plugin.
 *
 * Chat completions, legacy text completions, embeddings and the model list
 * of https://api.openai.com/v1, and of any OpenAI-compatible server a
 * descriptor maps onto this module (its options can adjust the dialect:
 * see llmux_oai_dialect_configure). All the protocol work is done by the
 * shared codec in providers/common/oai.c; this file only describes
 * OpenAI's dialect and fills in the provider table.
 */
#include <llmux/sys/provider.h>
#include <llmux/version.h>

#include "oai.h"
#include "ojob.h"

static const llmux_host *openai_host;

static const llmux_oai_header_opt openai_headers[] = {
    {"organization", "OpenAI-Organization"},
    {"project", "OpenAI-Project"},
    {NULL, NULL}};

static const char *const openai_body_options[] = {"reasoning_effort",
                                                  "service_tier", "user", NULL};

static const llmux_oai_dialect openai_dialect = {
    "openai",                /* name */
    "/chat/completions",     /* chat_path */
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
    openai_headers,          /* header_options */
    openai_body_options,     /* body_options */
    llmux_oai_patch_openai,  /* patch_request */
    NULL,                    /* fixup */
    NULL                     /* userdata */
};

static int openai_init(const llmux_host *host, const llmux_provider_config *cfg,
                       void **provctx)
{
    /* a descriptor's options may adjust the dialect (max_tokens_field...) */
    return llmux_oai_provider_init(&openai_dialect, host, cfg, provctx);
}

/* What a config string may say to this plugin besides the core's keys:
 * the dialect's header and body options and the codec's own. */
static const llmux_option_def openai_options[] = {
    {"organization", LLMUX_OPTION_HEADER},
    {"project", LLMUX_OPTION_HEADER},
    {"reasoning_effort", LLMUX_OPTION_BODY},
    {"service_tier", LLMUX_OPTION_BODY},
    {"user", LLMUX_OPTION_BODY},
    {"dimensions", LLMUX_OPTION_BODY},
    {"max_tokens_field", 0},
    LLMUX_OAI_DESCRIPTOR_OPTIONS,
    {NULL, 0}};

/* Batch jobs: OpenAI's Batch API (files and batches, ojob.c). */
static int openai_job_encode(void *provctx, llmux_call *call,
                             const llmux_job_step *s, llmux_http_request *http)
{
    (void)provctx;
    return llmux_ojob_openai_encode(openai_host, call->provider, s, http);
}

static int openai_job_decode(void *provctx, llmux_call *call,
                             const llmux_job_step *s,
                             const llmux_http_response *resp, llmux_out *out)
{
    (void)provctx;
    return llmux_ojob_openai_decode(openai_host, call->provider, s, resp, out);
}

static const llmux_provider openai_provider = {
    LLMUX_PROVIDER_ABI,
    sizeof(llmux_provider),
    "openai",
    LLMUX_VERSION_STRING,
    "OpenAI API: chat, legacy completions, embeddings, models",
    LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_COMPLETE | LLMUX_CAP_EMBED |
        LLMUX_CAP_MODELS | LLMUX_CAP_TOOLS | LLMUX_CAP_JSON,
    LLMUX_FRAMING_SSE,
    LLMUX_AUTH_BEARER,
    "https://api.openai.com/v1",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    openai_init,
    llmux_oai_provider_teardown,
    llmux_oai_provider_encode,
    llmux_oai_provider_decode,
    llmux_oai_provider_decode_event,
    llmux_oai_provider_decode_error,
    llmux_oai_provider_call_end,
    0, /* default_port */
    llmux_oai_rate_limits,
    llmux_pj_classify_error,
    openai_options,
    NULL, /* auth_header: Authorization */
    openai_job_encode,
    openai_job_decode};

LLMUX_DEFINE_PROVIDER(openai_provider, openai_host)
