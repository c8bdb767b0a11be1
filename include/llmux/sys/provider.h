/**
 * @file llmux/sys/provider.h
 * The provider plugin ABI, for plugin authors.
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
 *
 * Everything the core hands to a hook (params, call, responses, events and
 * their strings) is borrowed for that call. The hooks of one request run
 * on the thread of its client's loop, but clients on several threads share
 * one loaded plugin: keep no mutable globals; the provider context is
 * read-only after init, per-request state lives in llmux_call.state.
 * Never log or store the API key. llmux-plugin(7) tells the whole story;
 * plugins.d/template/template.c is a complete plugin to start from.
 */
#ifndef LLMUX_SYS_PROVIDER_H
#define LLMUX_SYS_PROVIDER_H

#include <stdarg.h>

#include "../common.h"
#include "../errors.h"
#include "../request.h"
#include "../response.h"
#include "../providers.h"
#include "../jobs.h"

LLMUX_BEGIN_DECL

/** Bumped only on an incompatible change of the provider table. */
#define LLMUX_PROVIDER_ABI 1
/** Bumped only on an incompatible change of the host table. */
#define LLMUX_HOST_ABI 1

/*
 * Stream framings the core splits for the provider (llmux_provider.framing,
 * llmux_host.http_framing); each piece reaches decode_event as one event.
 */
#define LLMUX_FRAMING_SSE    1 /**< text/event-stream: server-sent events */
#define LLMUX_FRAMING_NDJSON 2 /**< one JSON object per line */

/*
 * How the core authenticates requests (llmux_provider.auth; the config
 * string and descriptor key auth= override it with bearer, optional or
 * none). Without a key, BEARER fails the request with LLMUX_ENOKEY. With
 * PLUGIN the core adds nothing and hands the key to encode in
 * llmux_call.api_key.
 */
#define LLMUX_AUTH_BEARER   0 /**< "Authorization: Bearer KEY"; key required */
#define LLMUX_AUTH_OPTIONAL 1 /**< Bearer when a key is set, else nothing */
#define LLMUX_AUTH_NONE     2 /**< never */
#define LLMUX_AUTH_PLUGIN   3 /**< plugin adds its own header from api_key */

/** A key/value pair (config options). Borrowed. */
typedef struct llmux_kv {
    const char *key;   /**< the option's name; compare it case-insensitively */
    const char *value; /**< its value, never NULL */
} llmux_kv;

/** One message of the common request. Borrowed during encode. */
typedef struct llmux_msg {
    int role;                 /**< llmux_role */
    const char *content;      /**< text content, or NULL */
    const char *content_json; /**< non-string content (an array of parts
                                   ...) as JSON text, or NULL */
    const char *name;         /**< optional participant/tool name */
    const char *tool_call_id; /**< for role tool */
    const llmux_tool_call *tool_calls; /**< for role assistant */
    size_t n_tool_calls;               /**< entries in `tool_calls` */
    const char *reasoning;             /**< assistant reasoning text, or NULL */
} llmux_msg;

/* Bits of llmux_params.has: which optional numbers are set. Send a number
 * only when its bit is set. */
#define LLMUX_HAS_MAX_TOKENS  (1u << 0) /**< max_tokens is set */
#define LLMUX_HAS_TEMPERATURE (1u << 1) /**< temperature is set */
#define LLMUX_HAS_TOP_P       (1u << 2) /**< top_p is set */
#define LLMUX_HAS_SEED        (1u << 3) /**< seed is set */

/**
 * The common request, OpenAI-shaped. Borrowed during the hook call. Which
 * fields matter depends on `op`; the core has checked that the operation's
 * input is there (messages for chat, a prompt for completions...).
 */
typedef struct llmux_params {
    uint32_t struct_size; /**< sizeof(llmux_params) in the core: read a
                               field added later only within it */
    int op;               /**< llmux_op */
    const char *model;    /**< model name (the config string's model part) */
    const llmux_msg *messages; /**< chat: the conversation, in order */
    size_t n_messages;         /**< entries in `messages` */
    const char *prompt;        /**< text completion */
    const char *suffix;        /**< text completion, may be NULL */
    const char *const *input;  /**< embeddings */
    size_t n_input;            /**< entries in `input` */
    unsigned has;              /**< LLMUX_HAS_* */
    int64_t max_tokens; /**< tokens to generate, >= 0 (LLMUX_HAS_MAX_TOKENS) */
    double temperature; /**< 0 to 10 (LLMUX_HAS_TEMPERATURE) */
    double top_p;       /**< 0 to 1 (LLMUX_HAS_TOP_P) */
    int64_t seed;       /**< sampling seed (LLMUX_HAS_SEED) */
    const char *const *stop;          /**< stop sequences */
    size_t n_stop;                    /**< entries in `stop` */
    const char *tools_json;           /**< OpenAI "tools" array, or NULL */
    const char *tool_choice_json;     /**< JSON value, or NULL */
    const char *response_format_json; /**< JSON object, or NULL */
    int stream; /**< non-zero: the caller wants the answer streamed */
    const llmux_kv *options;  /**< provider options: the config string's,
                                   then the descriptor's (core keys such as
                                   base_url are not among them); read them
                                   with llmux_host.option */
    size_t n_options;         /**< entries in `options` */
    const char *extra_json;   /**< other request-JSON fields as a JSON object
                                   to merge into the body, or NULL */
    const int64_t *token_ids; /**< detokenize */
    size_t n_token_ids;       /**< entries in `token_ids` */
    const char *expected;     /**< evaluate: the expected completion */
} llmux_params;

/**
 * Per-request context handed to every hook of one request (the same
 * object across its hooks, retries included; a fallback gets its own).
 */
typedef struct llmux_call {
    uint32_t struct_size;       /**< sizeof(llmux_call) in the core */
    const llmux_params *params; /**< the request */
    const char *provider;       /**< provider name as the user wrote it */
    const char *api_key;        /**< for LLMUX_AUTH_PLUGIN only; never log it */
    void *state;                /**< the plugin's per-request state (streams);
                                     freed by the plugin's call_end hook */
} llmux_call;

/** Opaque HTTP request under construction (see llmux_host.http_*). */
typedef struct llmux_http_request llmux_http_request;

/** A received HTTP response. Borrowed during decode. */
typedef struct llmux_http_response {
    uint32_t struct_size;     /**< sizeof(llmux_http_response) in the core */
    long status;              /**< the HTTP status */
    const char *content_type; /**< may be NULL */
    const char *body; /**< NUL-terminated; may hold NULs before body_len */
    size_t body_len;  /**< bytes in `body`, at most max_response_bytes */
    /* Version 1 ends here; read a later member only when
     * LLMUX_HTTP_RESPONSE_HAS says the core's struct has it. */

    /** A response header's value by name (any case; the first one when
     * repeated), or NULL; the value is borrowed for the hook's call. The
     * function itself is NULL where the core has no headers to give (the
     * decode hooks, for now): check it before calling. */
    const char *(*header)(const struct llmux_http_response *resp,
                          const char *name);
    void *header_ctx; /**< the core's, for `header` */
} llmux_http_response;

/** True when response `r` (of r->struct_size bytes) has member `m`. */
#define LLMUX_HTTP_RESPONSE_HAS(r, m)                                          \
    ((r)->struct_size >= offsetof(llmux_http_response, m) + sizeof((r)->m))

/**
 * What a response's headers say of the caller's rate limits
 * (llmux_provider.rate_limits). The core fills every number with -1
 * (unknown) before the call; the plugin sets what the provider told.
 * May grow at its end.
 */
typedef struct llmux_rate_limits {
    uint32_t struct_size;      /**< sizeof(llmux_rate_limits) in the core */
    double requests_remaining; /**< requests left in the window, or -1 */
    double requests_reset_ms;  /**< until the request window resets, or -1 */
    double tokens_remaining;   /**< tokens left in the window, or -1 */
    double tokens_reset_ms;    /**< until the token window resets, or -1 */
} llmux_rate_limits;

/** What kind of failure a provider error is
 * (llmux_provider.classify_error). */
typedef enum llmux_error_kind {
    LLMUX_ERROR_KIND_OTHER = 0,          /**< nothing more specific */
    LLMUX_ERROR_KIND_CONTEXT_LENGTH = 1, /**< the input is too long for the
                                              model: a fallback with a larger
                                              context may succeed */
    LLMUX_ERROR_KIND_QUOTA = 2,          /**< the account's quota or credits
                                              are spent */
    LLMUX_ERROR_KIND_OVERLOADED = 3,     /**< the provider is busy: try later */
    LLMUX_ERROR_KIND_FILTERED = 4        /**< refused by a content filter */
} llmux_error_kind;

/**
 * One provider option a plugin reads from the config string
 * (llmux_provider.options): a key other than the core's settings.
 */
typedef struct llmux_option_def {
    const char *name; /**< the key, lower-case; "*" accepts every other
                           key; NULL ends the list */
    unsigned flags;   /**< LLMUX_OPTION_* */
} llmux_option_def;

/** The option is sent as the request body field of the same name. */
#define LLMUX_OPTION_BODY 1u
/** The option is sent as an HTTP header. */
#define LLMUX_OPTION_HEADER 2u
/** The option is read from a descriptor only (by init, configuring the
 * provider): a config string may not give it. A plugin that lists one
 * has its descriptors' keys checked too: a key that is neither a core
 * setting nor listed (with any flags) fails the load. */
#define LLMUX_OPTION_DESCRIPTOR 4u

/** One stream event: an SSE event or an NDJSON line. Borrowed. */
typedef struct llmux_event {
    uint32_t struct_size; /**< sizeof(llmux_event) in the core */
    const char *event;    /**< SSE "event:" name, or NULL */
    const char *id;       /**< SSE "id:", or NULL */
    const char *data;     /**< payload, NUL-terminated (SSE: the data lines
                               joined by newlines) */
    size_t data_len;      /**< bytes in `data`, at most max_event_bytes */
} llmux_event;

/** Opaque response or chunk under construction (see llmux_host.out_*). */
typedef struct llmux_out llmux_out;

/**
 * Fields for llmux_host.out_str / out_int. A string field set again
 * replaces the former value, except the appended ones; an int field
 * replaces. Token counts below 0 mean unknown.
 */
typedef enum llmux_field {
    LLMUX_F_ID = 1,                  /**< str: the answer's id */
    LLMUX_F_MODEL = 2,               /**< str: the model that answered */
    LLMUX_F_CREATED = 3,             /**< int, unix seconds */
    LLMUX_F_TEXT = 4,                /**< str, appended */
    LLMUX_F_REASONING = 5,           /**< str, appended */
    LLMUX_F_REFUSAL = 6,             /**< str, appended */
    LLMUX_F_FINISH = 7,              /**< int, llmux_finish */
    LLMUX_F_FINISH_RAW = 8,          /**< str, provider's finish reason */
    LLMUX_F_PROMPT_TOKENS = 9,       /**< int */
    LLMUX_F_COMPLETION_TOKENS = 10,  /**< int */
    LLMUX_F_TOTAL_TOKENS = 11,       /**< int */
    LLMUX_F_CACHED_TOKENS = 12,      /**< int: prompt tokens from cache */
    LLMUX_F_REASONING_TOKENS = 13,   /**< int: completion tokens spent
                                          reasoning */
    LLMUX_F_SYSTEM_FINGERPRINT = 14, /**< str */
    LLMUX_F_RESULT_JSON = 15         /**< str: the provider's result object
                                          (evaluate), JSON text */
} llmux_field;

/** One part of a multipart/form-data body (llmux_host.http_form).
 * Borrowed during the call; the core copies it. */
typedef struct llmux_form_part {
    const char *name;         /**< the field's name; required */
    const char *filename;     /**< a file part's file name, or NULL for a
                                   plain field */
    const char *content_type; /**< a file part's type, or NULL
                                   (application/octet-stream) */
    const char *data;         /**< the value or the file's bytes (may hold
                                   NULs) */
    size_t len;               /**< bytes in `data` */
} llmux_form_part;

/**
 * Fields of a provider batch job for llmux_host.job_str / job_int (the
 * job hooks' decode). A string set again replaces the former value,
 * except LLMUX_JF_CONTENT, which is appended.
 */
typedef enum llmux_job_field {
    LLMUX_JF_ID = 1,          /**< str: the job's id */
    LLMUX_JF_STATE = 2,       /**< int: an llmux_job_state */
    LLMUX_JF_STATE_RAW = 3,   /**< str: the provider's word for it */
    LLMUX_JF_TOTAL = 4,       /**< int: requests in the job */
    LLMUX_JF_COMPLETED = 5,   /**< int: requests answered */
    LLMUX_JF_FAILED = 6,      /**< int: requests failed */
    LLMUX_JF_INPUT_FILE = 7,  /**< str: the input file's id (upload) */
    LLMUX_JF_OUTPUT_FILE = 8, /**< str: the output file's id */
    LLMUX_JF_ERROR_FILE = 9,  /**< str: the error file's id */
    LLMUX_JF_CREATED = 10,    /**< int: Unix seconds */
    LLMUX_JF_FINISHED = 11,   /**< int: Unix seconds of its end */
    LLMUX_JF_MODEL = 12,      /**< str */
    LLMUX_JF_ENDPOINT = 13,   /**< str: "/v1/chat/completions" */
    LLMUX_JF_ERRORS = 14,     /**< str: why the job failed */
    LLMUX_JF_CONTENT = 15     /**< str, appended: results as OpenAI
                                   Batch output lines (content step) */
} llmux_job_field;

/* The steps of a provider batch job (llmux_job_step.step). */
#define LLMUX_JOB_STEP_UPLOAD  1 /**< upload the input file */
#define LLMUX_JOB_STEP_CREATE  2 /**< create the job of an uploaded file */
#define LLMUX_JOB_STEP_STATUS  3 /**< get the job */
#define LLMUX_JOB_STEP_CANCEL  4 /**< cancel the job */
#define LLMUX_JOB_STEP_CONTENT 5 /**< download a result file */

/** One step of a provider batch job, for the job hooks. Borrowed. */
typedef struct llmux_job_step {
    uint32_t struct_size;      /**< sizeof(llmux_job_step) in the core */
    int step;                  /**< LLMUX_JOB_STEP_* */
    const char *id;            /**< CREATE: the uploaded file's id; STATUS,
                                    CANCEL: the job's id; CONTENT: the file's */
    const char *data;          /**< UPLOAD: the input, OpenAI Batch lines the
                                    core has checked (the plugin translates
                                    them to its provider's) */
    size_t data_len;           /**< bytes in `data` */
    const char *endpoint;      /**< UPLOAD, CREATE: "/v1/chat/completions" */
    const char *model;         /**< UPLOAD, CREATE: the job's model, or NULL */
    const char *metadata_json; /**< CREATE: a JSON object, or NULL */
    int timeout_hours;         /**< CREATE: 0 = the provider's default */
} llmux_job_step;

/** Return value of decode_event: the event ended the stream. */
#define LLMUX_EVENT_DONE 1

/**
 * What the core offers plugins. Read a member only if it lies within
 * `struct_size` (LLMUX_HOST_HAS). The table is static and valid for the
 * life of the process. Every function that returns int returns 0, or
 * LLMUX_EINVAL for a NULL object or a bad argument, or LLMUX_ENOMEM; the
 * http_* ones work on the request of encode only, the out_* ones on the
 * `out` of the decode hook they are called from.
 */
typedef struct llmux_host {
    uint32_t abi_version; /**< LLMUX_HOST_ABI */
    uint32_t struct_size; /**< sizeof(llmux_host) in the core */

    /** The core's allocator, for the plugin's own memory (its context,
     * per-request state); what it returns is freed with `free`. */
    void *(*alloc)(size_t n);
    /** Resizes memory from `alloc`, as realloc() does. */
    void *(*realloc)(void *p, size_t n);
    /** Frees memory from `alloc` or `realloc`; NULL is a no-op. */
    void (*free)(void *p);
    /** `level` is an llmux_log_level; lines go to the logging hook of the
     * client whose request is being worked on, cut at 255 bytes, the API
     * key masked. An LLMUX_LOG_ERROR line logged in encode becomes the
     * request's error message, and one logged in decode the failure's
     * message when the plugin set none with set_error. */
    void (*log)(int level, const char *fmt, ...) LLMUX_PRINTF(2, 3);

    /* HTTP request building (encode). Strings are copied. */
    /** The HTTP method; default: POST when a body was set, else GET. */
    int (*http_method)(llmux_http_request *r, const char *method);
    /** Path (and query) appended to the base URL ("/chat/completions");
     * required: encode must set one */
    int (*http_path)(llmux_http_request *r, const char *path);
    /** Adds header `name: value`; LLMUX_EINVAL for a name holding ':', CR
     * or LF, or a value holding CR or LF. The core adds Authorization (by
     * `auth`, unless the plugin set one), Content-Type: application/json
     * (with a body), Accept (by stream and framing) unless the plugin set
     * them, then User-Agent and the client's and request's headers. */
    int (*http_header)(llmux_http_request *r, const char *name,
                       const char *value);
    /** The request body, `len` bytes (may hold NULs), copied. */
    int (*http_body)(llmux_http_request *r, const char *body, size_t len);
    /** Stream framing of this request's answer (default: the provider's) */
    int (*http_framing)(llmux_http_request *r, int framing);

    /* Response / chunk building (decode, decode_event, decode_error). */
    /** Sets string `field` (an llmux_field) from `len` bytes of `s` (NULL
     * only with `len` 0). Ill-formed UTF-8 becomes U+FFFD. Unknown fields
     * are ignored and return 0 (forward compatibility). */
    int (*out_str)(llmux_out *o, int field, const char *s, size_t len);
    /** Sets integer `field` (an llmux_field); LLMUX_EINVAL for a finish
     * reason out of range. Unknown fields are ignored. */
    int (*out_int)(llmux_out *o, int field, int64_t v);
    /** Sets id/name when non-NULL and appends `args` to tool call `index`
     * (0 to 1023; a larger index is refused with LLMUX_EPROTO). */
    int (*out_tool_call)(llmux_out *o, int index, const char *id,
                         const char *name, const char *args, size_t args_len);
    /** Adds an embedding of `n` floats (copied) for input `index`; the
     * core orders them by index. */
    int (*out_embedding)(llmux_out *o, int index, const float *v, size_t n);
    /** Adds a model to a listing: its id (required), owner (may be NULL)
     * and creation time in Unix seconds (0 when unknown). */
    int (*out_model)(llmux_out *o, const char *id, const char *owned_by,
                     int64_t created);
    /** The provider's error (error bodies, errors inside streams); each
     * string may be NULL. The request then fails: with LLMUX_EPROVIDER
     * from decode and decode_event, with the HTTP status's code (EAUTH,
     * ERATELIMIT, EPROVIDER) from decode_error. */
    int (*out_provider_error)(llmux_out *o, const char *type, const char *code,
                              const char *param, const char *message);
    /** A decode failure: code (LLMUX_EPROTO...; anything not negative
     * reads as LLMUX_EPROTO) and a printf-style message, cut at 255 bytes.
     * The request fails with that code even if the hook returns 0. */
    int (*set_error)(llmux_out *o, int code, const char *fmt, ...)
        LLMUX_PRINTF(3, 4);

    /** The value of option `key` (case-insensitive) in params, or NULL.
     * The config string's value wins over the descriptor's. Borrowed. */
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

    /** Where the choice-level fields set next go (text, reasoning,
     * refusal, finish reasons, tool calls, logprobs and the
     * LLMUX_JSON_AT_CHOICE and _MESSAGE fields): choice `index`, 0 to
     * 1023 (a larger one is LLMUX_EPROTO), until the next out_choice.
     * Every out starts at choice 0: a plugin that decodes one choice
     * never calls it. */
    int (*out_choice)(llmux_out *o, int index);
    /** Appends a token to list `list` (an llmux_logprobs_list) of the
     * current choice's logprobs: its text (`len` bytes, ill-formed UTF-8
     * becomes U+FFFD), log probability and UTF-8 bytes (`bytes` NULL: the
     * provider gave none). With LLMUX_LOGPROB_TOP it is an alternative of
     * the list's last token instead (LLMUX_EINVAL when there is none). A
     * NULL token only marks the list as reported (an empty list is not
     * the same as none). */
    int (*out_logprob)(llmux_out *o, int list, const char *token, size_t len,
                       double logprob, const unsigned char *bytes,
                       size_t n_bytes, unsigned flags);
    /** Keeps a field the common shape does not model, so that it reaches
     * the caller (llmux_response_field, llmux_choice_field) and the
     * OpenAI-shaped JSON: `len` bytes of JSON text under `key`, at
     * `where` (LLMUX_JSON_AT_*). Name it as OpenAI would, at the place
     * OpenAI would put it. A field the core models (content, usage
     * counts ...) keeps the core's value in the JSON. Setting a key
     * again replaces it. LLMUX_EINVAL for text that is not one JSON
     * value. */
    int (*out_json)(llmux_out *o, int where, const char *key, const char *json,
                    size_t len);

    /** Sets the body to the multipart/form-data of the `n` parts (copied)
     * and Content-Type to match, with a boundary the core picks so that
     * it occurs in no part. Names and file names are escaped as browsers
     * do (" CR LF as %22 %0D %0A). LLMUX_EINVAL for a part without a
     * name or with NULL data and a length. (Job hooks' encode.) */
    int (*http_form)(llmux_http_request *r, const llmux_form_part *parts,
                     size_t n);
    /** Sets string `field` (an llmux_job_field) of the job being decoded
     * from `len` bytes of `s`; LLMUX_JF_CONTENT is appended. Unknown
     * fields are ignored. (Job hooks' decode.) */
    int (*job_str)(llmux_out *o, int field, const char *s, size_t len);
    /** Sets integer `field` (an llmux_job_field) of the job being
     * decoded; LLMUX_EINVAL for a state out of range. */
    int (*job_int)(llmux_out *o, int field, int64_t v);
} llmux_host;

/** out_logprob: the token is an alternative of the list's last one. */
#define LLMUX_LOGPROB_TOP 1u

/* Where out_json puts a field, in OpenAI's shapes. */
#define LLMUX_JSON_AT_TOP     1 /**< the response or chunk object */
#define LLMUX_JSON_AT_CHOICE  2 /**< the current choice object */
#define LLMUX_JSON_AT_MESSAGE 3 /**< its message (a chunk: its delta) */
#define LLMUX_JSON_AT_USAGE   4 /**< the usage object */

/** True when host table `h` has member `m`. */
#define LLMUX_HOST_HAS(h, m)                                                   \
    ((h)->struct_size >= offsetof(llmux_host, m) + sizeof((h)->m))

/** Arguments for a provider's init hook; borrowed during the call. */
typedef struct llmux_provider_config {
    uint32_t struct_size;    /**< sizeof(llmux_provider_config) in the core */
    const char *name;        /**< the name it is loaded under ("groq" for a
                                  descriptor mapping groq onto openai) */
    const llmux_kv *options; /**< descriptor options: its keys other than
                                  module, base_url, api_key_env,
                                  base_url_env and description */
    size_t n_options;        /**< entries in `options` */
} llmux_provider_config;

/**
 * The provider table a plugin returns. It must stay valid and unchanged
 * while the plugin is loaded (a static const object). Only the hooks
 * marked required must be set; the core checks the table when loading it
 * and refuses it with LLMUX_EABI, LLMUX_EPLUGINSIZE or LLMUX_EPLUGIN.
 */
typedef struct llmux_provider {
    uint32_t abi_version;         /**< LLMUX_PROVIDER_ABI */
    uint32_t struct_size;         /**< sizeof(llmux_provider) in the plugin */
    const char *name;             /**< module name ("openai"); required */
    const char *version;          /**< the plugin's version, may be NULL */
    const char *description;      /**< one line for listings, may be NULL */
    uint64_t caps;                /**< LLMUX_CAP_* */
    int framing;                  /**< LLMUX_FRAMING_* for streams */
    int auth;                     /**< LLMUX_AUTH_* */
    const char *default_base_url; /**< as "https://api.openai.com/v1" */
    const char *api_key_env;      /**< as "OPENAI_API_KEY", or NULL */
    const char *base_url_env;     /**< as "OPENAI_BASE_URL", or NULL */

    /** Optional: creates the provider context (read-only afterwards: it is
     * shared by all clients and threads). Runs once per name loaded (a
     * descriptor is a name of its own, with its options), when the name
     * is first needed. Non-zero fails the load with LLMUX_EPLUGIN. Without
     * init, provctx is NULL. */
    int (*init)(const llmux_host *host, const llmux_provider_config *cfg,
                void **provctx);
    /** Optional: frees the context, at llmux_global_cleanup(). */
    void (*teardown)(void *provctx);
    /** Required: builds the HTTP request for call->params. Returns 0, or
     * LLMUX_ENOTSUP / LLMUX_EINVAL with host->log for detail. Runs in
     * llmux_submit() (and again for each fallback); a positive return
     * reads as LLMUX_EPLUGIN. */
    int (*encode)(void *provctx, llmux_call *call, llmux_http_request *http);
    /** Required: decodes a successful (2xx) body into `out`: 0, or a
     * negative code (with set_error for the message). */
    int (*decode)(void *provctx, llmux_call *call,
                  const llmux_http_response *resp, llmux_out *out);
    /** Required for LLMUX_CAP_STREAM: decodes one event into the chunk
     * `out`: 0, LLMUX_EVENT_DONE at the end marker, or a negative code
     * (out_provider_error for an error sent inside the stream). */
    int (*decode_event)(void *provctx, llmux_call *call, const llmux_event *ev,
                        llmux_out *out);
    /** Optional: parses an error body (non-2xx) into out_provider_error.
     * Without it, or when it sets nothing, the raw body is the message.
     * Its return value is ignored. */
    int (*decode_error)(void *provctx, llmux_call *call,
                        const llmux_http_response *resp, llmux_out *out);
    /** Optional: releases call->state: called whenever state is non-NULL
     * at the end of each request and before a retry starts over. */
    void (*call_end)(void *provctx, llmux_call *call);
    /* Version 1 ends here. Append only; the core reads a later member only
     * when LLMUX_PROVIDER_HAS says the plugin's table has it. */

    /** Port for a host taken from base_url_env without scheme or port (as
     * OLLAMA_HOST="gpu" means http://gpu:11434); 0 = none. */
    int default_port;

    /** Optional: reads the provider's rate-limit headers of a response
     * (any status) through resp->header into `out`, so the core can slow
     * the endpoint's token buckets down to what is left. Returns 0. The
     * core keeps only what HTTP itself says (Retry-After). */
    int (*rate_limits)(void *provctx, const llmux_http_response *resp,
                       llmux_rate_limits *out);
    /** Optional: the kind of a failed request's provider error, an
     * llmux_error_kind, from what the provider answered: the HTTP status
     * and the error's type, code and message as decode_error or the
     * decoders set them (each may be NULL). The core moves a request to
     * its next fallback on LLMUX_ERROR_KIND_CONTEXT_LENGTH. */
    int (*classify_error)(void *provctx, long status, const char *type,
                          const char *code, const char *message);
    /** Optional: the provider options this plugin reads from a config
     * string, ended by an entry whose name is NULL. With it the core
     * refuses any other key before encode (LLMUX_ECONFIG naming the key
     * and listing these and the core's); an entry named "*" accepts every
     * other key (as Ollama's sampling options). Without it every key is
     * handed to the plugin unchecked. A descriptor's keys are checked
     * against it only when it lists an LLMUX_OPTION_DESCRIPTOR entry. */
    const llmux_option_def *options;

    /** Optional: the header an API key goes in, as "api-key" (Azure
     * OpenAI): with BEARER or OPTIONAL auth the core sends "NAME: KEY"
     * instead of "Authorization: Bearer KEY". A bearer token from the
     * client's credential callback still goes in Authorization. NULL:
     * Authorization. */
    const char *auth_header;

    /** Optional, with job_decode: provider batch jobs (llmux/jobs.h).
     * Builds the HTTP request of job step `step` as encode does (http_form
     * for an upload); call->params has the model and the options only.
     * Returns 0, or LLMUX_ENOTSUP / LLMUX_EINVAL with host->log. Without
     * it the job functions fail with LLMUX_ENOTSUP. */
    int (*job_encode)(void *provctx, llmux_call *call,
                      const llmux_job_step *step, llmux_http_request *http);
    /** Optional, with job_encode: decodes step `step`'s 2xx answer with
     * job_str and job_int (an error answer goes to decode_error): the
     * job's fields, an upload's LLMUX_JF_INPUT_FILE, a download's
     * LLMUX_JF_CONTENT as OpenAI Batch output lines. 0 or a negative code
     * (set_error for the message). */
    int (*job_decode)(void *provctx, llmux_call *call,
                      const llmux_job_step *step,
                      const llmux_http_response *resp, llmux_out *out);
} llmux_provider;

/** True when provider table `p` (of p->struct_size bytes) has member `m`. */
#define LLMUX_PROVIDER_HAS(p, m)                                               \
    ((p)->struct_size >= offsetof(llmux_provider, m) + sizeof((p)->m))

/** Size of the first version of llmux_provider: the smallest accepted. */
#define LLMUX_PROVIDER_V1_SIZE                                                 \
    (offsetof(llmux_provider, call_end) + sizeof(void (*)(void)))

/**
 * The entry point's type: given the host table and the host's ABI, it
 * returns the plugin's provider table, or NULL when it cannot work with
 * that host (the load then fails with LLMUX_EABI). Called once per module
 * load, under the loader's lock.
 */
typedef const llmux_provider *(llmux_provider_entry_fn)(const llmux_host *host,
                                                        uint32_t host_abi);
/** The entry point's symbol name ("<module>_LTX_llmux_provider_entry",
 * libtool's form, is accepted too). */
#define LLMUX_PROVIDER_ENTRY_SYMBOL "llmux_provider_entry"

/**
 * @def LLMUX_PLUGIN_EXPORT
 * Makes the entry point visible from a plugin built with
 * -fvisibility=hidden (dllexport on Windows).
 */
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
 * (returns NULL, so the load fails with LLMUX_EABI) a host whose ABI is
 * not this header's LLMUX_HOST_ABI. Use it once, at file scope.
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
 * checks a loaded plugin goes through; LLMUX_EINVAL for NULL, an invalid
 * name, or a name another table has. Registering the same table again is
 * harmless. llmux_global_cleanup() forgets registrations. Thread-safe.
 */
LLMUX_EXTERN int llmux_register_provider(const llmux_provider *p);

/** The host table, for providers compiled into the application; static,
 * valid for the life of the process. */
LLMUX_EXTERN const llmux_host *llmux_host_table(void);

LLMUX_END_DECL

#endif /* LLMUX_SYS_PROVIDER_H */
