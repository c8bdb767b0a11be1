/*
 * providers/common/oai.h: the shared codec for OpenAI-shaped HTTP APIs.
 *
 * OpenAI, Mistral, Aleph Alpha chat and the many OpenAI-compatible servers
 * (vLLM, llama.cpp, Ollama /v1, LM Studio, Groq ...) speak variations of
 * one protocol: OpenAI's chat-completions shape. This codec implements it
 * once; a plugin describes its differences in an llmux_oai_dialect and
 * plugs the llmux_oai_* hooks into its provider table.
 *
 * Encoding follows the dialect strictly (field names, fields never to
 * send); decoding is generous for every dialect: content as a string, null
 * or an array of typed chunks, reasoning as "reasoning_content" or
 * "reasoning", tool calls without `index` or `type`, and every common
 * shape of error body.
 *
 * The codec is a static library linked into each plugin; it does no I/O
 * and hands everything to the core through the host table.
 */
#ifndef LLMUX_PROVIDERS_OAI_H
#define LLMUX_PROVIDERS_OAI_H

#include <llmux/client.h> /* log levels */
#include <llmux/sys/provider.h>

#include <json-c/json.h>

#include "pjson.h" /* the JSON and text helpers the codec is built on */

struct json_object;
struct json_tokener;

/* Bits of llmux_oai_dialect.flags. */
/** Send `name` on tool-result messages (Mistral wants the tool's name). */
#define LLMUX_OAI_TOOL_MSG_NAME (1u << 0)
/** Send an assistant message's reasoning under `reasoning_field`. */
#define LLMUX_OAI_SEND_REASONING (1u << 1)

/** Kinds of JSON handed to a dialect's fixup hook. */
#define LLMUX_OAI_RESPONSE 1 /* a whole 2xx body */
#define LLMUX_OAI_EVENT    2 /* one stream event */
#define LLMUX_OAI_ERROR    3 /* an error body (non-2xx) */

/** A provider option copied into an HTTP header when set. */
typedef struct llmux_oai_header_opt {
    const char *option; /* option key, e.g. "organization" */
    const char *header; /* header name, e.g. "OpenAI-Organization" */
} llmux_oai_header_opt;

typedef struct llmux_oai_dialect llmux_oai_dialect;

/**
 * A plugin's differences from OpenAI. Plugins keep one as a static const;
 * llmux_oai_dialect_configure() derives one from descriptor options. All
 * strings are borrowed and must outlive every call using the dialect.
 */
struct llmux_oai_dialect {
    const char *name; /**< prefix of error messages, e.g. "openai" */

    /* Paths appended to the base URL; NULL: the operation is unsupported. */
    const char *chat_path;     /**< "/chat/completions" */
    const char *complete_path; /**< "/completions" */
    const char *embed_path;    /**< "/embeddings" */
    const char *models_path;   /**< "/models" */

    /** Chat max-tokens field ("max_completion_tokens"; Mistral
     * "max_tokens"). The "max_tokens_field" option overrides it. */
    const char *max_tokens_field;
    /** Text-completion max-tokens field ("max_tokens"). */
    const char *complete_max_tokens_field;
    /** Seed field ("seed"; Mistral "random_seed"); NULL: never sent. */
    const char *seed_field;
    /** Send stream_options {"include_usage":true} with stream:true. */
    int stream_usage;
    /** LLMUX_OAI_* flags. */
    unsigned flags;
    /** Field for an assistant message's reasoning (with
     * LLMUX_OAI_SEND_REASONING), e.g. "reasoning_content". */
    const char *reasoning_field;
    /** NULL-terminated list of body fields never sent, whatever their
     * source (typed parameters, options, extra_json); may be NULL. */
    const char *const *never_send;
    /** Options copied into headers, ended by {NULL, NULL}; may be NULL. */
    const llmux_oai_header_opt *header_options;
    /** Options copied as string fields into chat bodies, NULL-terminated
     * (OpenAI: reasoning_effort, service_tier, user); may be NULL. */
    const char *const *body_options;

    /**
     * Optional. Called with the finished request body (a json-c object the
     * hook may change) before it is serialised: e.g. a messages fix-up.
     * Returns 0 or an llmux code (host->log the detail).
     */
    int (*patch_request)(const llmux_oai_dialect *d, const llmux_host *host,
                         llmux_call *call, struct json_object *body);
    /**
     * Optional. Called with each parsed body or event (kind is one of
     * LLMUX_OAI_RESPONSE, _EVENT, _ERROR) before the standard decoding.
     * The hook may change `root`. Setting *handled to non-zero skips the
     * standard decoding and makes the hook's return value the result.
     */
    int (*fixup)(const llmux_oai_dialect *d, const llmux_host *host,
                 llmux_call *call, int kind, struct json_object *root,
                 llmux_out *out, int *handled);
    void *userdata; /**< for the hooks */
};

/** The descriptor keys llmux_oai_provider_init reads (see
 * llmux_oai_dialect_configure), as entries of a plugin's options table:
 * read from a descriptor only. max_tokens_field, which a config string may
 * give too, is each plugin's own entry. */
/* clang-format off */
#define LLMUX_OAI_DESCRIPTOR_OPTIONS                                           \
    {"complete_max_tokens_field", LLMUX_OPTION_DESCRIPTOR},                    \
    {"seed_field", LLMUX_OPTION_DESCRIPTOR},                                   \
    {"stream_usage", LLMUX_OPTION_DESCRIPTOR},                                 \
    {"never_send", LLMUX_OPTION_DESCRIPTOR},                                   \
    {"chat_path", LLMUX_OPTION_DESCRIPTOR},                                    \
    {"complete_path", LLMUX_OPTION_DESCRIPTOR},                                \
    {"embed_path", LLMUX_OPTION_DESCRIPTOR},                                   \
    {"models_path", LLMUX_OPTION_DESCRIPTOR}
/* clang-format on */

/* ---- provider hooks ------------------------------------------------------ */

/** Builds the HTTP request for call->params (encode hook). */
int llmux_oai_encode(const llmux_oai_dialect *d, const llmux_host *host,
                     llmux_call *call, llmux_http_request *http);
/** Decodes a 2xx body by call->params->op (decode hook). */
int llmux_oai_decode(const llmux_oai_dialect *d, const llmux_host *host,
                     llmux_call *call, const llmux_http_response *resp,
                     llmux_out *out);
/**
 * Decodes one SSE event (decode_event hook): 0, LLMUX_EVENT_DONE at
 * "[DONE]", LLMUX_EPROVIDER for an error event, LLMUX_EPROTO for garbage.
 * The codec owns call->state (created on the first event): which of
 * id/model/created/system_fingerprint were sent already (chunks repeat them;
 * they are passed on once), and the stream's tool calls, so that deltas with or
 * without `index` and `id` (OpenAI, Mistral, Ollama) reach the right call,
 * numbered 0, 1, ... in order of appearance. Release it with
 * llmux_oai_call_end.
 */
int llmux_oai_decode_event(const llmux_oai_dialect *d, const llmux_host *host,
                           llmux_call *call, const llmux_event *ev,
                           llmux_out *out);
/** Parses an error body into out_provider_error (decode_error hook);
 * sets nothing when the body has no recognisable shape. Returns 0. */
int llmux_oai_decode_error(const llmux_oai_dialect *d, const llmux_host *host,
                           llmux_call *call, const llmux_http_response *resp,
                           llmux_out *out);
/** Frees what the codec kept in call->state (call_end hook). */
void llmux_oai_call_end(const llmux_host *host, llmux_call *call);

/* ---- dialects from descriptor options ----------------------------------- */

/**
 * Derives a dialect from `base`, the name the provider is loaded under
 * (error messages use it; may be NULL) and descriptor options:
 * max_tokens_field, complete_max_tokens_field, seed_field ("" or "none":
 * never send), stream_usage (0/1/true/false/yes/no/on/off), never_send
 * (comma-separated fields, added to base's), chat_path, complete_path,
 * embed_path, models_path ("" or "none": unsupported). Sets *out to NULL
 * when nothing differs from base (use base), else to a dialect allocated
 * with host->alloc (free with llmux_oai_dialect_free). Returns 0,
 * LLMUX_ENOMEM, or LLMUX_ECONFIG (after host->log) for a bad value.
 */
int llmux_oai_dialect_configure(const llmux_oai_dialect *base,
                                const llmux_host *host, const char *name,
                                const llmux_kv *opts, size_t n_opts,
                                llmux_oai_dialect **out);
void llmux_oai_dialect_free(const llmux_host *host, llmux_oai_dialect *d);

/* ---- building blocks for plugins with their own shapes ------------------- */

/* (The generic JSON, text and error helpers are in pjson.h.) */

/** The llmux_finish for a provider's finish reason (unknown -> STOP). */
int llmux_oai_finish(const char *s);

/** Emits finish_reason `fr` (a string; null/other types ignored) as
 * LLMUX_F_FINISH and LLMUX_F_FINISH_RAW. */
int llmux_oai_put_finish(const llmux_host *host, llmux_out *out,
                         struct json_object *fr);

/**
 * Emits message/delta content: a string to `field`, an array of typed
 * chunks ({"type":"text","text"} to `field`, {"type":"thinking",
 * "thinking":[..]} to LLMUX_F_REASONING); null is ignored.
 */
int llmux_oai_put_content(const llmux_host *host, llmux_out *out,
                          struct json_object *content, int field);

/** Emits the fields of an OpenAI "usage" object (null ignored). */
int llmux_oai_put_usage(const llmux_host *host, llmux_out *out,
                        struct json_object *usage);

/** Emits an array of tool calls (message or delta shape). */
int llmux_oai_put_tool_calls(const llmux_host *host, llmux_out *out,
                             struct json_object *calls);

/** Emits an array of OpenAI token entries ({"token","logprob","bytes",
 * "top_logprobs"}) as the current choice's content logprobs; null is
 * "not reported". LLMUX_EPROTO for another shape. Nothing when the core
 * has no out_logprob. */
int llmux_oai_put_logprobs(const llmux_host *host, llmux_out *out,
                           struct json_object *tokens);

/** Hands each member of object `obj` whose key is not in `known` (a
 * NULL-terminated list of the keys the decoder read) to the core with
 * host->out_json at `where` (LLMUX_JSON_AT_*); null members are skipped.
 * Nothing when the core has no out_json or obj is no object. */
int llmux_oai_put_extras(const llmux_host *host, llmux_out *out,
                         struct json_object *obj, int where,
                         const char *const *known);

/** A patch_request hook for OpenAI's chat API itself: refuses the content
 * parts it has no form for (document_url, Mistral's) with LLMUX_ENOTSUP
 * naming the part, where sending them would be a 400. */
int llmux_oai_patch_openai(const llmux_oai_dialect *d, const llmux_host *h,
                           llmux_call *call, struct json_object *body);

/** Calls fn for each content part of each message of a chat body (the
 * "content" arrays), with its "type" ("" when none) and its message's
 * position; stops at fn's first non-zero return and returns it. fn may
 * change the part. */
int llmux_oai_each_part(struct json_object *body,
                        int (*fn)(struct json_object *part, const char *type,
                                  size_t msg, void *ud),
                        void *ud);

/** True when `key` is in the dialect's never_send list. */
int llmux_oai_never(const llmux_oai_dialect *d, const char *key);

/* ---- ready-made provider hooks ------------------------------------------- */

/*
 * For a plugin that is a dialect and nothing more: its init hook calls
 * llmux_oai_provider_init with its dialect, and its provider table names
 * the llmux_oai_provider_* functions for the other hooks. The provider
 * context holds the host table and the dialect (derived from descriptor
 * options as llmux_oai_dialect_configure does).
 */
int llmux_oai_provider_init(const llmux_oai_dialect *base,
                            const llmux_host *host,
                            const llmux_provider_config *cfg, void **provctx);
void llmux_oai_provider_teardown(void *provctx);
int llmux_oai_provider_encode(void *provctx, llmux_call *call,
                              llmux_http_request *http);
int llmux_oai_provider_decode(void *provctx, llmux_call *call,
                              const llmux_http_response *resp, llmux_out *out);
int llmux_oai_provider_decode_event(void *provctx, llmux_call *call,
                                    const llmux_event *ev, llmux_out *out);
int llmux_oai_provider_decode_error(void *provctx, llmux_call *call,
                                    const llmux_http_response *resp,
                                    llmux_out *out);
void llmux_oai_provider_call_end(void *provctx, llmux_call *call);
/* llmux_provider.rate_limits for OpenAI's x-ratelimit-remaining-requests,
 * -tokens and x-ratelimit-reset-requests (durations such as "6m0s") and
 * Mistral's x-ratelimit-remaining-req-minute and -tokens-minute. */
int llmux_oai_rate_limits(void *provctx, const llmux_http_response *resp,
                          llmux_rate_limits *out);
/** The dialect in a context from llmux_oai_provider_init, for plugins
 * that wrap these hooks with their own (Aleph Alpha). */
const llmux_oai_dialect *llmux_oai_provider_dialect(void *provctx);

#endif /* LLMUX_PROVIDERS_OAI_H */
