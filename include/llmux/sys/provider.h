/*
 * llmux/sys/provider.h: the provider plugin ABI, for plugin authors.
 *
 * A provider only translates. It turns the common request (llmux_params)
 * into an HTTP description and turns HTTP responses, stream events and
 * error bodies back into the common shape through the host's builder
 * functions. It does no I/O and links neither libcurl nor libuv; the core
 * owns transport, retries, limits, timeouts and cancellation.
 *
 * A plugin is a shared object exporting `llmux_provider_entry` (use
 * LLMUX_DEFINE_PROVIDER). The core calls it with its host table and host
 * ABI; the plugin returns its provider table, or NULL if it cannot work
 * with that host. Both tables start with abi_version and struct_size and
 * only ever grow at the end: each side reads a field only when it lies
 * within the other side's struct_size.
 *
 * Nothing allocated by the plugin crosses to the core: the plugin hands
 * data over with the host's builder functions, which copy.
 */
#ifndef LLMUX_SYS_PROVIDER_H
#define LLMUX_SYS_PROVIDER_H

#include <stdarg.h>

#include "../client.h" /* llmux_log_level, for host->log */
#include "../common.h"
#include "../errors.h"
#include "../request.h"
#include "../response.h"
#include "../providers.h"

LLMUX_BEGIN_DECL

/** Bumped only on an incompatible change of the provider table. */
#define LLMUX_PROVIDER_ABI 1
/** Bumped only on an incompatible change of the host table. */
#define LLMUX_HOST_ABI 1

/** Stream framings the core splits for the provider. */
#define LLMUX_FRAMING_SSE    1 /* text/event-stream */
#define LLMUX_FRAMING_NDJSON 2 /* one JSON object per line */

/** How the core authenticates requests (llmux_provider.auth). */
#define LLMUX_AUTH_BEARER   0 /* "Authorization: Bearer <key>"; key required */
#define LLMUX_AUTH_OPTIONAL 1 /* Bearer when a key is set, else nothing */
#define LLMUX_AUTH_NONE     2 /* never */
#define LLMUX_AUTH_PLUGIN   3 /* plugin adds its own header from api_key */

/** A key/value pair (config options). Borrowed. */
typedef struct llmux_kv {
    const char *key;
    const char *value;
} llmux_kv;

/** One message of the common request. Borrowed during encode. */
typedef struct llmux_msg {
    int role;                          /**< llmux_role */
    const char *content;               /**< text content, or NULL */
    const char *content_json;          /**< non-string content (e.g. an array of
                                            parts) as JSON text, or NULL */
    const char *name;                  /**< optional participant/tool name */
    const char *tool_call_id;          /**< for role tool */
    const llmux_tool_call *tool_calls; /**< for role assistant */
    size_t n_tool_calls;
    const char *reasoning; /**< assistant reasoning text, or NULL */
} llmux_msg;

/* Bits of llmux_params.has: which optional numbers are set. */
#define LLMUX_HAS_MAX_TOKENS  (1u << 0)
#define LLMUX_HAS_TEMPERATURE (1u << 1)
#define LLMUX_HAS_TOP_P       (1u << 2)
#define LLMUX_HAS_SEED        (1u << 3)

/** The common request, OpenAI-shaped. Borrowed during the hook call. */
typedef struct llmux_params {
    uint32_t struct_size;
    int op;            /**< llmux_op */
    const char *model; /**< model name (the config string's model part) */
    const llmux_msg *messages;
    size_t n_messages;
    const char *prompt;       /**< text completion */
    const char *suffix;       /**< text completion, may be NULL */
    const char *const *input; /**< embeddings */
    size_t n_input;
    unsigned has; /**< LLMUX_HAS_* */
    int64_t max_tokens;
    double temperature;
    double top_p;
    int64_t seed;
    const char *const *stop;
    size_t n_stop;
    const char *tools_json;           /**< OpenAI "tools" array, or NULL */
    const char *tool_choice_json;     /**< JSON value, or NULL */
    const char *response_format_json; /**< JSON object, or NULL */
    int stream;
    const llmux_kv *options; /**< provider options from the config string */
    size_t n_options;
    const char *extra_json;   /**< other request-JSON fields as a JSON object
                                   to merge into the body, or NULL */
    const int64_t *token_ids; /**< detokenize */
    size_t n_token_ids;
    const char *expected; /**< evaluate: the expected completion */
} llmux_params;

/** Per-request context handed to every hook of one request. */
typedef struct llmux_call {
    uint32_t struct_size;
    const llmux_params *params;
    const char *provider; /**< provider name as the user wrote it */
    const char *api_key;  /**< for LLMUX_AUTH_PLUGIN only; never log it */
    void *state;          /**< the plugin's per-request state (streams);
                               freed by the plugin's call_end hook */
} llmux_call;

/** Opaque HTTP request under construction (see llmux_host.http_*). */
typedef struct llmux_http_request llmux_http_request;

/** A received HTTP response. Borrowed during decode. */
typedef struct llmux_http_response {
    uint32_t struct_size;
    long status;
    const char *content_type; /**< may be NULL */
    const char *body; /**< NUL-terminated; may hold NULs before body_len */
    size_t body_len;
} llmux_http_response;

/** One stream event: an SSE event or an NDJSON line. Borrowed. */
typedef struct llmux_event {
    uint32_t struct_size;
    const char *event; /**< SSE "event:" name, or NULL */
    const char *id;    /**< SSE "id:", or NULL */
    const char *data;  /**< payload, NUL-terminated */
    size_t data_len;
} llmux_event;

/** Opaque response or chunk under construction (see llmux_host.out_*). */
typedef struct llmux_out llmux_out;

/** Fields for llmux_host.out_str / out_int. */
typedef enum llmux_field {
    LLMUX_F_ID = 1,                  /* str */
    LLMUX_F_MODEL = 2,               /* str */
    LLMUX_F_CREATED = 3,             /* int, unix seconds */
    LLMUX_F_TEXT = 4,                /* str, appended */
    LLMUX_F_REASONING = 5,           /* str, appended */
    LLMUX_F_REFUSAL = 6,             /* str, appended */
    LLMUX_F_FINISH = 7,              /* int, llmux_finish */
    LLMUX_F_FINISH_RAW = 8,          /* str, provider's finish reason */
    LLMUX_F_PROMPT_TOKENS = 9,       /* int */
    LLMUX_F_COMPLETION_TOKENS = 10,  /* int */
    LLMUX_F_TOTAL_TOKENS = 11,       /* int */
    LLMUX_F_CACHED_TOKENS = 12,      /* int */
    LLMUX_F_REASONING_TOKENS = 13,   /* int */
    LLMUX_F_SYSTEM_FINGERPRINT = 14, /* str */
    LLMUX_F_RESULT_JSON = 15 /* str: the provider's result object (evaluate) */
} llmux_field;

/** Return value of decode_event: the event ended the stream. */
#define LLMUX_EVENT_DONE 1

/**
 * What the core offers plugins. Read a member only if it lies within
 * `struct_size` (LLMUX_HOST_HAS).
 */
typedef struct llmux_host {
    uint32_t abi_version; /**< LLMUX_HOST_ABI */
    uint32_t struct_size; /**< sizeof(llmux_host) in the core */

    void *(*alloc)(size_t n);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
    /** `level` is an llmux_log_level; lines go to the logging hook of the
     * client whose request is being worked on */
    void (*log)(int level, const char *fmt, ...) LLMUX_PRINTF(2, 3);

    /* HTTP request building (encode). Strings are copied. */
    int (*http_method)(llmux_http_request *r, const char *method);
    /** Path (and query) appended to the base URL, e.g. "/chat/completions" */
    int (*http_path)(llmux_http_request *r, const char *path);
    int (*http_header)(llmux_http_request *r, const char *name,
                       const char *value);
    int (*http_body)(llmux_http_request *r, const char *body, size_t len);
    /** Stream framing of this request's answer (default: the provider's) */
    int (*http_framing)(llmux_http_request *r, int framing);

    /* Response / chunk building (decode, decode_event, decode_error). */
    int (*out_str)(llmux_out *o, int field, const char *s, size_t len);
    int (*out_int)(llmux_out *o, int field, int64_t v);
    /** Sets id/name when non-NULL and appends `args` to tool call `index`
     * (0 to 1023; a larger index is refused with LLMUX_EPROTO). */
    int (*out_tool_call)(llmux_out *o, int index, const char *id,
                         const char *name, const char *args, size_t args_len);
    int (*out_embedding)(llmux_out *o, int index, const float *v, size_t n);
    int (*out_model)(llmux_out *o, const char *id, const char *owned_by,
                     int64_t created);
    /** The provider's error (error bodies, errors inside streams). */
    int (*out_provider_error)(llmux_out *o, const char *type, const char *code,
                              const char *param, const char *message);
    /** A decode failure: code (e.g. LLMUX_EPROTO) and a message. */
    int (*set_error)(llmux_out *o, int code, const char *fmt, ...)
        LLMUX_PRINTF(3, 4);

    /** The value of option `key` (case-insensitive) in params, or NULL. */
    const char *(*option)(const llmux_params *p, const char *key);

    /** Appends one token (tokenize): its text (may be NULL) and id (-1 when
     * unknown). */
    int (*out_token)(llmux_out *o, const char *text, size_t len, int64_t id);
    /* Added after the first release: check with LLMUX_HOST_HAS. */

    /** Writes v in the fewest digits that read back as the same double (or
     * float, when single), '.' as the radix in every locale: how request
     * numbers pass through unchanged. `cap` at least 32; returns the
     * length, or -1 for NaN and infinities. */
    int (*format_number)(char *buf, size_t cap, double v, int single);
} llmux_host;

/** True when host table `h` has member `m`. */
#define LLMUX_HOST_HAS(h, m)                                                   \
    ((h)->struct_size >= offsetof(llmux_host, m) + sizeof((h)->m))

/** Arguments for a provider's init hook. */
typedef struct llmux_provider_config {
    uint32_t struct_size;
    const char *name;        /**< the name it is loaded under ("groq" for a
                                  descriptor mapping groq onto openai) */
    const llmux_kv *options; /**< descriptor options */
    size_t n_options;
} llmux_provider_config;

/** The provider table a plugin returns. */
typedef struct llmux_provider {
    uint32_t abi_version; /**< LLMUX_PROVIDER_ABI */
    uint32_t struct_size; /**< sizeof(llmux_provider) in the plugin */
    const char *name;     /**< module name, e.g. "openai" */
    const char *version;
    const char *description;
    uint64_t caps;                /**< LLMUX_CAP_* */
    int framing;                  /**< LLMUX_FRAMING_* for streams */
    int auth;                     /**< LLMUX_AUTH_* */
    const char *default_base_url; /**< e.g. "https://api.openai.com/v1" */
    const char *api_key_env;      /**< e.g. "OPENAI_API_KEY", or NULL */
    const char *base_url_env;     /**< e.g. "OPENAI_BASE_URL", or NULL */

    /** Optional. Creates the provider context (read-only afterwards: it is
     * shared by all clients and threads). */
    int (*init)(const llmux_host *host, const llmux_provider_config *cfg,
                void **provctx);
    /** Optional. Frees the context. */
    void (*teardown)(void *provctx);
    /** Required. Builds the HTTP request for call->params. Returns 0, or
     * LLMUX_ENOTSUP / LLMUX_EINVAL with host->log for detail. */
    int (*encode)(void *provctx, llmux_call *call, llmux_http_request *http);
    /** Required. Decodes a successful (2xx) body into `out`. */
    int (*decode)(void *provctx, llmux_call *call,
                  const llmux_http_response *resp, llmux_out *out);
    /** Required for LLMUX_CAP_STREAM. Decodes one event into the chunk
     * `out`: 0, LLMUX_EVENT_DONE at the end marker, or a negative code
     * (out_provider_error for an error sent inside the stream). */
    int (*decode_event)(void *provctx, llmux_call *call, const llmux_event *ev,
                        llmux_out *out);
    /** Optional. Parses an error body (non-2xx) into out_provider_error.
     * Without it, or when it sets nothing, the raw body is the message. */
    int (*decode_error)(void *provctx, llmux_call *call,
                        const llmux_http_response *resp, llmux_out *out);
    /** Optional. Releases call->state at the end of each request. */
    void (*call_end)(void *provctx, llmux_call *call);
    /* Version 1 ends here. Append only; the core reads a later member only
     * when LLMUX_PROVIDER_HAS says the plugin's table has it. */

    /** Port for a host taken from base_url_env without scheme or port (as
     * OLLAMA_HOST="gpu" means http://gpu:11434); 0 = none. */
    int default_port;
} llmux_provider;

/** True when provider table `p` (of p->struct_size bytes) has member `m`. */
#define LLMUX_PROVIDER_HAS(p, m)                                               \
    ((p)->struct_size >= offsetof(llmux_provider, m) + sizeof((p)->m))

/** Size of the first version of llmux_provider: the smallest accepted. */
#define LLMUX_PROVIDER_V1_SIZE                                                 \
    (offsetof(llmux_provider, call_end) + sizeof(void (*)(void)))

/** The entry point's type and symbol name. */
typedef const llmux_provider *(llmux_provider_entry_fn)(const llmux_host *host,
                                                        uint32_t host_abi);
#define LLMUX_PROVIDER_ENTRY_SYMBOL "llmux_provider_entry"

#if defined(_WIN32)
#define LLMUX_PLUGIN_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define LLMUX_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define LLMUX_PLUGIN_EXPORT
#endif

/**
 * Defines the entry point returning `table` (an llmux_provider) and saving
 * the host table in `hostvar` (a `static const llmux_host *`). Refuses
 * hosts older than this header's host ABI.
 */
#define LLMUX_DEFINE_PROVIDER(table, hostvar)                                  \
    LLMUX_BEGIN_DECL                                                           \
    LLMUX_PLUGIN_EXPORT const llmux_provider *llmux_provider_entry(            \
        const llmux_host *llmux__h, uint32_t llmux__abi);                      \
    LLMUX_END_DECL                                                             \
    const llmux_provider *llmux_provider_entry(const llmux_host *llmux__h,     \
                                               uint32_t llmux__abi)            \
    {                                                                          \
        if (llmux__abi != LLMUX_HOST_ABI || llmux__h == NULL)                  \
            return NULL;                                                       \
        (hostvar) = llmux__h;                                                  \
        return &(table);                                                       \
    }

/**
 * Registers a provider compiled into the application (static builds,
 * tests): it is then found by name before any plugin directory. The table
 * must outlive every client. Returns 0, or an llmux code from the same
 * checks a loaded plugin goes through.
 */
LLMUX_EXTERN int llmux_register_provider(const llmux_provider *p);

/** The host table, for providers compiled into the application. */
LLMUX_EXTERN const llmux_host *llmux_host_table(void);

LLMUX_END_DECL

#endif /* LLMUX_SYS_PROVIDER_H */
