/**
 * @file llmux/client.h
 * Clients, submission, cancellation, the blocking call.
 *
 * A client owns one libcurl multi handle driven by a libuv loop: either the
 * caller's (borrowed, `options.loop`) or a private one it creates. It never
 * touches uv_default_loop() and never starts threads. A client and all its
 * requests belong to the thread that runs its loop: call the functions
 * that take a client or a submitted request on that thread only (they are
 * not thread-safe). Separate clients on separate loops and threads are
 * independent. Done, chunk and batch callbacks run on the loop's thread,
 * from the loop, never inside the llmux call that caused them.
 */
#ifndef LLMUX_CLIENT_H
#define LLMUX_CLIENT_H

#include "common.h"
#include "errors.h"

LLMUX_BEGIN_DECL

/**
 * Receives log lines of a client (llmux_client_options.log), plugins'
 * lines included, on the thread of the call or loop that logged them.
 * `level` is an #llmux_log_level; `msg` is one line without a newline,
 * borrowed for the call; it never contains the API key or the credentials
 * of a URL. `userdata` is llmux_client_options.log_userdata.
 */
typedef void (*llmux_log_cb)(int level, const char *msg, void *userdata);

/** What a client hook (llmux_client_options.hook) is told of. */
typedef enum llmux_hook_kind {
    LLMUX_HOOK_ATTEMPT_START = 1, /**< an attempt is about to go on the wire */
    LLMUX_HOOK_ATTEMPT_END = 2,   /**< it ended: answered, failed, cut */
    LLMUX_HOOK_REQUEST_END = 3    /**< the request ended, before its done
                                       callback */
} llmux_hook_kind;

/**
 * One event of a request's life, for observing it (a tracer, metrics, a
 * log line). Members are named after the OpenTelemetry GenAI semantic
 * conventions (in the comments), so a tracer is a thin hook. Borrowed for
 * the hook's call; members after the first version are read only within
 * `struct_size` (the struct may grow at its end). Members marked "end"
 * are set for ATTEMPT_END and REQUEST_END only (-1, 0 or NULL at the
 * start).
 */
typedef struct llmux_hook_event {
    uint32_t struct_size;       /**< sizeof(llmux_hook_event) in the library */
    llmux_hook_kind kind;       /**< which event */
    const char *operation_name; /**< gen_ai.operation.name: "chat",
                                     "text_completion", "embeddings",
                                     "models", "tokenize", "detokenize",
                                     "evaluate" */
    const char *provider_name;  /**< gen_ai.provider.name: the provider as
                                     its config string names it */
    const char *request_model;  /**< gen_ai.request.model, or NULL */
    const char *server_address; /**< server.address: the endpoint's host */
    int server_port;            /**< server.port */
    const char *url; /**< the endpoint, without its query or credentials */
    int stream;      /**< gen_ai.request.stream */
    int attempt;     /**< 1, 2 ... within the config string being tried;
                          REQUEST_END: the attempts of the one that
                          answered last */
    int fallback;    /**< 0: the request's own config string; n: its n-th
                          fallback */
    int code;        /**< end: 0, or the llmux code it failed with */
    const char *error_type; /**< end: error.type, the code's name
                                 ("LLMUX_ERATELIMIT"), NULL on success */
    long http_status;       /**< end: http.response.status_code, 0 = none */
    double duration_s;      /**< end: gen_ai.client.operation.duration, of the
                                 attempt or (REQUEST_END) since submission */
    double time_to_first_chunk_s; /**< end: gen_ai.response.
                                       time_to_first_chunk, from the
                                       attempt's start to its first stream
                                       chunk; -1 when none */
    long long bytes_sent;         /**< end: request body bytes sent, or -1 */
    long long bytes_received;     /**< end: response body bytes received (as
                                       sent, before decompression), or -1 */
    const char *next;             /**< ATTEMPT_END: what follows: "retry" (after
                                       `retry_delay_s`), "fallback", or NULL (the
                                       request ends) */
    double retry_delay_s;         /**< ATTEMPT_END: the wait before the
                                       retry; -1 when none */
    long input_tokens;            /**< end: gen_ai.usage.input_tokens, or
                                       -1 */
    long output_tokens;           /**< end: gen_ai.usage.output_tokens */
    long cache_read_input_tokens; /**< end: gen_ai.usage.cache_read.
                                       input_tokens */
    long reasoning_output_tokens; /**< end: gen_ai.usage.reasoning.
                                       output_tokens */
    const char *response_id;      /**< end: gen_ai.response.id, or NULL */
    const char *response_model;   /**< end: gen_ai.response.model */
    const llmux_response *response; /**< end: what was decoded (every
                                         choice's finish reason:
                                         gen_ai.response.finish_reasons);
                                         borrowed; NULL at the start */
} llmux_hook_event;

/**
 * A client hook: told of each attempt's start and end and of each
 * request's end, on the client's loop thread (possibly inside
 * llmux_submit(), for a request that starts at once; never inside
 * another hook). Every attempt that starts ends exactly once; a
 * request's REQUEST_END comes right before its done callback (a request
 * handed over from another thread that fails before it is prepared gets
 * its done callback alone). It may read `req` and cancel it; it must not
 * free the client.
 */
typedef void (*llmux_hook_cb)(llmux_request *req, const llmux_hook_event *ev,
                              void *userdata);

/** The HTTP request a before_send hook may change (opaque). */
typedef struct llmux_http_edit llmux_http_edit;

/**
 * Runs once per config string tried (the request's own, then each
 * fallback's), before its first attempt, on the loop thread (inside
 * llmux_submit() for a request that starts at once). It may read the
 * URL, method and body, replace the body (the JSON it holds) and add or
 * replace headers; what it changes holds for the retries. Returning
 * non-zero refuses the call: the request fails with LLMUX_EUSER (from
 * llmux_submit(), or its done callback for a later config string); a
 * llmux_request_cancel() of the request from the hook stops it the same
 * way with LLMUX_ECANCELED. The hook is the application's own code: llmux
 * does not check what it sends.
 */
typedef int (*llmux_before_send_cb)(llmux_request *req, llmux_http_edit *edit,
                                    void *userdata);

/** The URL the request goes to (with its query). Borrowed. */
LLMUX_EXTERN const char *llmux_http_edit_url(const llmux_http_edit *e);
/** The HTTP method ("POST"). Borrowed. */
LLMUX_EXTERN const char *llmux_http_edit_method(const llmux_http_edit *e);
/** The body as the provider's plugin encoded it (or as the hook set it),
 * with its length in `len` (may be NULL); NULL for none. Borrowed until
 * the hook returns or sets another. */
LLMUX_EXTERN const char *llmux_http_edit_body(const llmux_http_edit *e,
                                              size_t *len);
/** Replaces the body with `len` bytes of `body` (copied). Returns 0,
 * LLMUX_EINVAL or LLMUX_ENOMEM. */
LLMUX_EXTERN int llmux_http_edit_set_body(llmux_http_edit *e, const char *body,
                                          size_t len);
/**
 * Adds header `header` ("Name: value", copied), replacing one of the
 * same name the request has (Authorization, for a token of your own).
 * LLMUX_EINVAL for a header without a name and ':', or holding CR or LF.
 */
LLMUX_EXTERN int llmux_http_edit_set_header(llmux_http_edit *e,
                                            const char *header);

/** A credential the callback answers with (llmux_credential_answer()). */
typedef enum llmux_credential_kind {
    /** An API key, sent as the provider takes keys ("Authorization:
     * Bearer KEY"; Azure OpenAI "api-key: KEY"). */
    LLMUX_CREDENTIAL_KEY = 0,
    /** An OAuth 2.0 access token (an Entra ID token for Azure OpenAI):
     * always "Authorization: Bearer TOKEN". */
    LLMUX_CREDENTIAL_BEARER = 1
} llmux_credential_kind;

/**
 * What a credential callback is asked for: the credential of one provider
 * at one endpoint. Borrowed for the callback's call only; members after
 * `struct_size` may be added at the end.
 */
typedef struct llmux_credential_query {
    uint32_t struct_size; /**< sizeof(llmux_credential_query) in the
                               library */
    const char *provider; /**< the config string's provider ("azure") */
    const char *endpoint; /**< "scheme://host[:port]" of the request's URL
                               (the port as the URL has it); credentials
                               are cached per provider and endpoint */
    const char *model;    /**< the model of the attempt that asked (others
                               of the same endpoint may share the answer) */
    const char *url;      /**< that attempt's URL (with its query) */
    int refresh; /**< 1 when the last answer for this provider and endpoint
                      was refused with HTTP 401: answer another one */
} llmux_credential_query;

/** A pending credential query: answer it with llmux_credential_answer() or
 * llmux_credential_fail(), exactly once. Opaque. */
typedef struct llmux_credential_reply llmux_credential_reply;

/**
 * The credential callback (client options version 6). The core calls it
 * on the loop thread before an attempt of a provider that authenticates
 * with a key (bearer or optional auth), unless the request sends a
 * credential header of its own, an answer for the same provider and
 * endpoint is cached and unexpired, or a query for them is pending
 * already (the attempt then waits for that one). Like before_send it may
 * run inside llmux_submit(), for a request that starts at once: a failure
 * answered inside the call, or a cancel of the request, is then
 * llmux_submit()'s return value (the request was not accepted, no done
 * callback); later it reaches the done callback. It must answer `reply`
 * exactly once: inside the call, or later on the loop thread (a token
 * refresh running on the loop), even after the client closed. Until then
 * the attempts wait, holding their in-flight slots and keeping the loop
 * running (llmux_client_run() waits for the answer); the request's total
 * deadline (timeout_ms) still runs, and a cancel ends the wait. With
 * llmux_run(), whose loop the callback cannot reach, answer inside the
 * call.
 */
typedef void (*llmux_credential_cb)(const llmux_credential_query *q,
                                    llmux_credential_reply *reply,
                                    void *userdata);

/**
 * Answers a credential query; call it on the client's loop thread.
 * `secret` (copied; NULL: the configured key, from api_key= or the
 * provider's environment variable, as without a callback) is sent as
 * `kind` says. `expires_at_ms` is when it expires, in milliseconds since
 * the Unix epoch (0: never): the answer is used until shortly before then
 * (30 s, or a tenth of its lifetime when shorter than 5 minutes), by every
 * attempt to that provider and endpoint, and asked for again after it or
 * after a 401. An answer already expired serves the waiting attempts only.
 * Returns 0, or LLMUX_EINVAL for a secret with a control character (the
 * waiting requests then fail with LLMUX_ECONFIG) or an unknown kind.
 * `reply` is freed: do not use it again.
 */
LLMUX_EXTERN int llmux_credential_answer(llmux_credential_reply *reply,
                                         const char *secret, int kind,
                                         int64_t expires_at_ms);

/**
 * Answers a credential query with a failure: the requests waiting for it
 * end with `code` (LLMUX_EAUTH when it is not one of the negative
 * LLMUX_E* codes) and
 * `message` (copied; may be NULL). Nothing is cached: the next attempt
 * asks again. Call it on the client's loop thread. `reply` is freed.
 */
LLMUX_EXTERN void llmux_credential_fail(llmux_credential_reply *reply, int code,
                                        const char *message);

/**
 * Client options. Initialise with LLMUX_CLIENT_OPTIONS_INIT (or
 * llmux_client_options_init()) and set what you need; zero/NULL fields
 * mean "default". Strings are copied by llmux_client_new(), so they need
 * not outlive the call. The struct only grows at its end; `version` tells
 * the library how much of it the caller's header had.
 */
typedef struct llmux_client_options {
    unsigned int version;       /**< LLMUX_CLIENT_OPTIONS_VERSION */
    struct uv_loop_s *loop;     /**< borrowed loop, or NULL for a private one */
    int max_retries;            /**< retry budget; -1 = default (2) */
    long timeout_ms;            /**< total deadline per request; 0 = none */
    long connect_timeout_ms;    /**< 0 = default (10 s) */
    const char *plugin_path;    /**< extra plugin directories, ':'-separated,
                                     searched after $LLMUX_PLUGIN_PATH */
    const char *const *headers; /**< "Name: value" sent on every request */
    size_t n_headers;           /**< number of entries in `headers` */
    size_t max_response_bytes;  /**< cap on one answer's bytes, a stream's
                                     included; 0 = 64 MiB (LLMUX_ETOOBIG) */
    size_t max_event_bytes;     /**< cap on one stream event and on any one
                                     line of a stream; 0 = 4 MiB */
    const char *proxy;    /**< proxy URL; NULL = curl's *_proxy variables */
    const char *ca_file;  /**< PEM bundle of trusted CAs; NULL = system */
    int insecure;         /**< 1 disables TLS verification (never default;
                               the first request that does it logs a
                               warning) */
    long max_connections; /**< total connection cap; 0 = unlimited */
    llmux_log_cb log;     /**< logging hook, may be NULL */
    void *log_userdata;   /**< passed to `log` as it is */
    int log_level; /**< highest level passed to `log` (an #llmux_log_level;
                        0 = errors only) */
    /* version 2 */
    long first_byte_timeout_ms; /**< no response byte (headers or first
                                     stream event) within this; 0 = none */
    long idle_timeout_ms;       /**< no byte for this long mid-response (after
                                     a whole reply's headers, or between
                                     stream events); 0 = none */
    size_t max_in_flight;       /**< requests in flight on the client; 0 = no
                                     limit. The rest wait in a FIFO queue.
                                     Whatever the limits, at most 64
                                     start per loop iteration; the rest
                                     wait for the next one */
    size_t max_in_flight_per_endpoint; /**< per base URL host; 0 = none */
    size_t max_queue;           /**< queued requests beyond which llmux_submit()
                                     fails with LLMUX_EQUEUEFULL; 0 = 100000.
                                     A request that waits only for the next
                                     loop iteration is accepted past it */
    double requests_per_minute; /**< per endpoint and API key, token bucket
                                     with one second of burst; 0 = no limit.
                                     The config-string key rpm= sets it for
                                     the request's endpoint and key */
    double tokens_per_minute;   /**< per endpoint and API key, estimated
                                     before sending (prompt characters / 4
                                     + max tokens), corrected by the
                                     reported usage; 0 = no limit;
                                     config-string key tpm= */
    /* version 3 */
    const char *key_env_allow; /**< ':'-separated names of environment
                                    variables the config-string key
                                    api_key_env may name besides those
                                    ending in KEY, TOKEN, SECRET or
                                    PASSWORD and the provider's own; NULL
                                    = none */
    /* version 4 */
    llmux_hook_cb hook; /**< told of every attempt's start and end and of
                             every request's end; NULL = none */
    llmux_before_send_cb before_send; /**< may change each config string's
                                           HTTP request, or refuse it; NULL
                                           = none */
    void *hook_userdata;              /**< passed to both as it is */
    /* version 5 */
    const char *prices_file; /**< a price table in data/prices.json's
                                  format whose entries add to and override
                                  the built-in one; read by
                                  llmux_client_new() (LLMUX_ECONFIG when it
                                  does not parse); NULL = none */
    double budget_usd;       /**< spend limit: once what answers cost
                                  (llmux_client_spend()) plus what requests
                                  in flight may still cost reaches it,
                                  llmux_submit() refuses new requests with
                                  LLMUX_EBUDGET; 0 = none. Shared by the
                                  processes naming the same budget_scope
                                  (version 8) on the Redis of `limits` */
    /* version 6 */
    llmux_credential_cb credential; /**< asked for the key or token of each
                                         attempt (see llmux_credential_cb);
                                         NULL = the configured keys */
    void *credential_userdata;      /**< passed to `credential` as it is */
    /* version 7 */
    const char *limits;          /**< where requests_per_minute and
                                      tokens_per_minute are counted: NULL or
                                      "local" = in this process; a Redis URL
                                      (redis://[[user]:password@]host[:port][/db],
                                      unix:///path[?db=N]) = shared by every
                                      process that names the same server, endpoint
                                      and API key. Also where shared budgets
                                      are counted. Config-string key limits= */
    const char *limits_prefix;   /**< the shared buckets' Redis key prefix;
                                      NULL = "llmux"; limits_prefix= */
    const char *limits_fallback; /**< when Redis is unreachable: "closed"
                                      (NULL, the default) fails requests
                                      with LLMUX_ELIMITS, "local" counts
                                      in this process meanwhile;
                                      limits_fallback= */
    long cache_ttl_ms;      /**< how long the response cache keeps an answer of
                                 a request with `cache=yes` (or of every request
                                 under `cache_all`); 0 = 300 s. `cache=SECONDS`
                                 in a config string sets a request's own */
    size_t cache_max_bytes; /**< the in-process response cache's size:
                                 answers and their bookkeeping; the least
                                 recently used go first; 0 = 64 MiB */
    size_t cache_max_entries; /**< its entries at most; 0 = 10000 */
    int cache_all;            /**< 1: every request is looked up in the
                                   response cache and its answer kept,
                                   unless its config string says
                                   `cache=no`; 0 (default): only those whose
                                   config string says `cache=yes` or
                                   `cache=SECONDS` */
    /* version 8 */
    const char *cache_backend; /**< where the response cache keeps answers:
                                    NULL or "lru" = in this process (bounded
                                    by cache_max_bytes and
                                    cache_max_entries); a Redis URL (as
                                    `limits`) = shared by every process
                                    naming it, under the keys
                                    `<limits_prefix>:cache:<SHA-256>`, each
                                    value at most cache_max_bytes (0: 8
                                    MiB). One Redis server per client: a
                                    `limits` URL naming another is
                                    LLMUX_ECONFIG. Redis down or failing is
                                    a miss, never a failed request.
                                    Config-string key cache_backend= */
    const char *budget_scope;  /**< a name for budget_usd's scope (1 to 128
                                    printable ASCII characters, no space;
                                    copied): with `limits` a Redis URL,
                                    every client of every process naming
                                    the same scope on that server shares
                                    one budget_usd total (and so does a
                                    request's llmux_request_set_budget() of
                                    that name); NULL = the client's own
                                    budget, as without Redis */
    long budget_window_ms;     /**< budget_usd's window: what was spent
                                    counts from the last multiple of it since
                                    the Unix epoch (86400000: a UTC day); 0 =
                                    none, the spend never resets. Also the
                                    default of config strings'
                                    budget_window= */
} llmux_client_options;

/** The newest llmux_client_options.version these headers know. */
#define LLMUX_CLIENT_OPTIONS_VERSION 8
/**
 * The defaults of llmux_client_options as designated initializers
 * (`version` LLMUX_CLIENT_OPTIONS_VERSION, `max_retries` -1; every other
 * field is zero), to name only what you change, in C99. Do not name
 * `version` or `max_retries` again after it (compilers warn about the
 * override; set max_retries afterwards instead); C++ has no use for it
 * (its designators must follow the members' order):
 *
 *     llmux_client_options o = {LLMUX_CLIENT_OPTIONS_DEFAULTS,
 *                               .timeout_ms = 30000, .max_in_flight = 64};
 */
#define LLMUX_CLIENT_OPTIONS_DEFAULTS                                          \
    .version = LLMUX_CLIENT_OPTIONS_VERSION, .max_retries = -1

/**
 * Initialiser of an llmux_client_options variable with every default:
 * `version` LLMUX_CLIENT_OPTIONS_VERSION, `max_retries` -1, all else zero.
 * Designated in C, so no list of positions has to follow the struct; in
 * C++ every field is listed, so -Wextra stays quiet there too.
 */
#if !defined(__cplusplus)
#define LLMUX_CLIENT_OPTIONS_INIT                                              \
    {                                                                          \
        LLMUX_CLIENT_OPTIONS_DEFAULTS                                          \
    }
#else
#define LLMUX_CLIENT_OPTIONS_INIT                                              \
    {                                                                          \
        LLMUX_CLIENT_OPTIONS_VERSION, NULL, -1, 0, 0, NULL, NULL, 0, 0, 0,     \
            NULL, NULL, 0, 0, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL,  \
            NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0,     \
            NULL, NULL, 0                                                      \
    }
#endif

/**
 * Fills the first `size` bytes of `opts` with defaults and sets `version`
 * to the newest one whose fields fit in them, so that a program built
 * against an older header never has bytes written past its struct. Does
 * nothing when `opts` is NULL or `size` is below the first version's
 * size. Call it through llmux_client_options_init().
 */
LLMUX_EXTERN void llmux_client_options_init_size(llmux_client_options *opts,
                                                 size_t size);

/**
 * Fills `*opts` with defaults (same as LLMUX_CLIENT_OPTIONS_INIT). A
 * macro: the size of the caller's struct goes with it to
 * llmux_client_options_init_size().
 */
#define llmux_client_options_init(opts)                                        \
    llmux_client_options_init_size((opts), sizeof *(opts))

/**
 * Process-wide initialisation (libcurl). Called implicitly by
 * llmux_client_new(); call it yourself before starting threads, because
 * it must not race other threads' use of llmux or libcurl. Calling it
 * again is harmless. Returns 0, or LLMUX_ENOMEM when libcurl cannot be
 * initialised.
 */
LLMUX_EXTERN int llmux_global_init(void);

/**
 * Releases process-wide state: tears down every loaded provider (their
 * teardown hooks run, modules are unloaded), forgets providers registered
 * with llmux_register_provider(), and cleans libcurl up. No client may
 * exist, and no other thread may be using llmux or libcurl. Strings from
 * llmux_provider_probe() are invalid afterwards. llmux_global_init() (or
 * a new client) starts over.
 */
LLMUX_EXTERN void llmux_global_cleanup(void);

/**
 * Creates a client. `opts` may be NULL for defaults. On success returns 0
 * and the caller owns `*out`, to end with llmux_client_close() or
 * llmux_client_free(); a borrowed loop must outlive the client until it
 * is closed. An idle client does not keep its loop running. Returns
 * LLMUX_EINVAL for a NULL `out`, an unknown options version, or a header
 * that is not one "Name: value" line; LLMUX_ECONFIG for a prices_file
 * that does not parse or a string option its config-string key would
 * refuse (`limits`, `limits_prefix`, `limits_fallback`, `cache_backend`...,
 * or `limits` and `cache_backend` naming two Redis servers; the log
 * callback is told which and why, a URL's password masked);
 * LLMUX_ENOMEM; or what llmux_global_init() returned. `*out` is NULL on
 * failure.
 */
LLMUX_EXTERN int llmux_client_new(llmux_client **out,
                                  const llmux_client_options *opts);

/**
 * Called once the client has released every handle and its memory; the
 * client pointer is invalid by then. `userdata` is the one given to
 * llmux_client_close().
 */
typedef void (*llmux_close_cb)(void *userdata);

/**
 * Starts closing the client: every request still queued or in flight gets
 * its done callback with LLMUX_ECANCELED (from the loop, not from this
 * call), then every handle is closed. With a borrowed loop keep running
 * it; `on_closed` (may be NULL) runs from the loop once the client's
 * memory is gone. With a private loop call llmux_client_free() afterwards
 * (it finishes the close and then calls `on_closed`). The client accepts
 * no submissions after this call (llmux_submit() returns
 * LLMUX_ECANCELED). NULL, or a client already closing, is a no-op.
 */
LLMUX_EXTERN void llmux_client_close(llmux_client *c, llmux_close_cb on_closed,
                                     void *userdata);

/**
 * Closes and frees a client. With a private loop it runs that loop until
 * every callback has run and closes the loop; called from inside one of
 * the client's callbacks it closes the client at once and the
 * llmux_client_run() that callback runs in frees it before returning (so
 * run a private loop with llmux_client_run(), not uv_run() on
 * llmux_client_loop()). With a borrowed loop it is
 * llmux_client_close(c, NULL, NULL). NULL is a no-op. `c` is invalid
 * afterwards.
 */
LLMUX_EXTERN void llmux_client_free(llmux_client *c);

/** Run modes for llmux_client_run(), as libuv's uv_run_mode. */
typedef enum llmux_run_mode {
    LLMUX_RUN_DEFAULT = 0, /**< until no request is left */
    LLMUX_RUN_ONCE = 1,    /**< one loop iteration, waiting for I/O */
    LLMUX_RUN_NOWAIT = 2   /**< one iteration, no waiting */
} llmux_run_mode;

/**
 * Runs a client's private loop (uv_run() with `mode`). Returns non-zero
 * while work remains, 0 when none, or LLMUX_EINVAL for a NULL client or
 * one on a borrowed loop (run that loop yourself). When a callback of this
 * run called llmux_client_free(), the client is freed before this returns
 * 0.
 */
LLMUX_EXTERN int llmux_client_run(llmux_client *c, llmux_run_mode mode);

/**
 * The loop the client runs on: the borrowed one, or the client's private
 * loop (owned by the client, valid until it is freed). NULL for NULL.
 */
LLMUX_EXTERN struct uv_loop_s *llmux_client_loop(const llmux_client *c);

/**
 * Requests submitted to the client whose done callback has not run yet
 * (queued or in flight); 0 for NULL.
 */
LLMUX_EXTERN size_t llmux_client_pending(const llmux_client *c);

/**
 * Counters of a client since it was created (llmux_client_stats()), or of
 * one provider (llmux_client_provider_stats()). Latencies are in ms;
 * percentiles come from a log-scale histogram (about 10% resolution) and
 * read 0 before the first sample. Fields are only ever appended, under a
 * new LLMUX_STATS_VERSION.
 */
typedef struct llmux_stats {
    unsigned int version; /**< set by the caller: LLMUX_STATS_VERSION */
    uint64_t requests;    /**< accepted by llmux_submit() */
    /** Requests finished: with success, with an error other than
     * LLMUX_ECANCELED, or cancelled. @{ */
    uint64_t succeeded, failed, canceled;
    /** @} */
    uint64_t attempts;             /**< HTTP attempts, retries included */
    uint64_t retries;              /**< of which retries */
    uint64_t retries_rate_limited; /**< retries after 429 */
    uint64_t retries_server;       /**< after 5xx, 408, 409 */
    uint64_t retries_transport;    /**< after connect errors, timeouts */
    /** Failed requests by the class of their code (llmux_err_class_of()):
     * the four add up to `failed`. @{ */
    uint64_t errors_provider, errors_usage, errors_transport, errors_local;
    /** @} */
    /** Reported usage: the tokens providers counted for the requests that
     * succeeded. @{ */
    uint64_t prompt_tokens, completion_tokens;
    /** @} */
    /** Requests in flight and waiting in the queue now. @{ */
    size_t in_flight, queued;
    /** @} */
    /** The highest `in_flight` and `queued` seen. @{ */
    size_t max_in_flight, max_queued;
    /** @} */
    /** Median and 99th percentile of the time requests waited in the queue
     * (only those that waited). @{ */
    double queue_wait_p50, queue_wait_p99;
    /** @} */
    /** Median, 90th and 99th percentile of the time from an attempt's
     * start to its first body byte. @{ */
    double first_byte_p50, first_byte_p90, first_byte_p99;
    /** @} */
    /** Median, 90th and 99th percentile of the time from llmux_submit() to
     * the done callback, retries and fallbacks included. @{ */
    double total_p50, total_p90, total_p99;
    /** @} */
    /* version 2 */
    /** The shared limits and budgets (limits=redis://...): their Redis
     * failures (a connection lost or refused, a command without an answer
     * in time, an error answer), and the requests let go by this
     * process's own buckets or budget totals meanwhile
     * (limits_fallback=local). 0 for a provider. @{ */
    uint64_t limits_backend_errors, limits_fallbacks;
    /** The response cache: lookups answered from it (counted in
     * `succeeded`, with no attempt, tokens or cost), lookups that went to
     * the provider (a backend failure or an unusable entry included), and
     * answers kept. @{ */
    uint64_t cache_hits, cache_misses, cache_stores;
    /** @} */
    /* version 3 */
    /** The response cache's shared store (cache_backend=redis://...): its
     * failures (a lookup or a store not answered, refused or without a
     * connection), each lookup's counted as a miss too. 0 for a provider. */
    uint64_t cache_backend_errors;
} llmux_stats;

/** The newest llmux_stats.version these headers know. */
#define LLMUX_STATS_VERSION 3

/**
 * Fills `*out` with the client's counters (set out->version first; the
 * caller owns `*out`; only the fields of that version are written).
 * Returns 0, or LLMUX_EINVAL for a NULL argument or an unknown version.
 */
LLMUX_EXTERN int llmux_client_stats(const llmux_client *c, llmux_stats *out);

/**
 * What the client's answers have cost so far, in USD, from their usage and
 * the price table (llmux_response_cost(); answers without a price count
 * nothing). `reserved` (may be NULL) receives what requests in flight may
 * still cost, as estimated when they were submitted under a budget_usd.
 * 0 for NULL. On the client's loop thread.
 */
LLMUX_EXTERN double llmux_client_spend(const llmux_client *c, double *reserved);

/**
 * The counters of the requests a provider answered (by the name in the
 * config string; a fallback counts for the provider that answered):
 * requests, attempts, outcomes, errors and tokens. Queue, in-flight and
 * latency fields read 0 (they are client-wide), as do the response
 * cache's counters (a hit is counted as a success of its provider, with
 * no attempt and no tokens), and so does everything
 * for a provider that answered nothing yet. Set out->version first.
 * Returns 0, or LLMUX_EINVAL for a NULL argument or an unknown version.
 */
LLMUX_EXTERN int llmux_client_provider_stats(const llmux_client *c,
                                             const char *provider,
                                             llmux_stats *out);

/**
 * Receives the result of a submitted request, exactly once, from the loop.
 * `status` is 0 or a negative llmux code; `res` is never NULL and carries
 * the error detail (llmux_response_error()) on failure. `res` is borrowed
 * until the callback returns (keep it with llmux_response_retain()). `req`
 * is freed by the library right after the callback returns.
 */
typedef void (*llmux_done_cb)(llmux_request *req, int status,
                              llmux_response *res, void *userdata);

/**
 * Receives each streamed delta, from the loop. `chunk` is borrowed for the
 * call; `req` is the submitted request (llmux_request_userdata() works);
 * `userdata` is the one given to llmux_submit(). Return 0 to go on;
 * non-zero cancels the transfer, and the done callback reports LLMUX_EUSER
 * with what was received so far. It may call llmux_request_pause() and
 * llmux_request_cancel() on `req`, and submit other requests.
 */
typedef int (*llmux_chunk_cb)(llmux_request *req, const llmux_chunk *chunk,
                              void *userdata);

/**
 * Submits a request. On success (0) the client takes ownership of `req`,
 * `on_done` runs exactly once from the loop (never inside this call), and
 * the request is freed after it. On failure (<0) no callback runs, the
 * caller still owns `req`, and llmux_request_errmsg(req) says why (an
 * unknown provider, a missing API key, an unsupported operation...).
 * `on_chunk` may be NULL; it is used for streamed requests. `on_done` may
 * be NULL too (the result is then dropped). Resolving the provider (and
 * loading its plugin the first time) and encoding happen in this call;
 * the transfer starts now, or waits in the client's queue under its
 * limits. Codes: LLMUX_EINVAL, LLMUX_ECANCELED (client closing),
 * LLMUX_EBUSY (already submitted), LLMUX_EQUEUEFULL, LLMUX_ENOMEM, and
 * those of resolving and encoding (LLMUX_ECONFIG, LLMUX_ENOPROVIDER and
 * the other plugin codes, LLMUX_ENOKEY, LLMUX_ENOTSUP).
 *
 * Thread-safe: from a thread other than the client's loop thread (the
 * one that created the client, or that runs llmux_client_run()), the
 * request is handed over through the client's uv_async and this returns
 * 0 at once (LLMUX_ECANCELED when the client is closing, LLMUX_ENOMEM);
 * everything else happens on the loop's thread, and what would have been
 * a failure here (a bad provider, a missing key, a full queue) reaches
 * `on_done` with its code, as does a close that comes first
 * (LLMUX_ECANCELED); the same request handed over twice gets LLMUX_EBUSY
 * through the second call's `on_done`. The loop must be running for it to
 * start (the client's async handle does not keep a loop alive by
 * itself). The loop's thread is the client's creator until
 * llmux_client_run() runs on another: start other threads' submissions
 * after that. Do not free the client while other threads may still
 * submit to it.
 */
LLMUX_EXTERN int llmux_submit(llmux_client *c, llmux_request *req,
                              llmux_chunk_cb on_chunk, llmux_done_cb on_done,
                              void *userdata);

/**
 * Cancels a submitted request: its transfer is stopped and closed (a
 * queued request leaves the queue at once and never reaches the server),
 * and its done callback runs from the loop with LLMUX_ECANCELED. Only
 * valid until its done callback has returned. Cancelling twice, or a
 * request that was never submitted, is harmless. Returns 0, or
 * LLMUX_EINVAL for NULL. Thread-safe as llmux_submit() is: from another
 * thread it is handed over to the loop's thread, and it still must not
 * come after the done callback has returned (the request is freed then);
 * the thread that submitted a request may cancel it right away.
 */
LLMUX_EXTERN int llmux_request_cancel(llmux_request *req);

/**
 * Backpressure for a stream whose consumer cannot keep up: no chunk
 * callback runs after this returns until llmux_request_resume(), and the
 * response is no longer read (curl pause), so a relay to a slow client
 * does not buffer without bound. Events already read wait inside llmux
 * (at most what one network read brought) and come first on resume; a stream
 * that ended meanwhile gets its done callback after them. The idle timeout is
 * suspended while paused, the total deadline runs until the answer has
 * fully arrived, and cancelling works as ever. May be called from the
 * chunk callback. Returns 0, or LLMUX_EINVAL when the request is not in
 * flight.
 */
LLMUX_EXTERN int llmux_request_pause(llmux_request *req);

/**
 * Resumes a paused request; data read meanwhile by the kernel is then
 * delivered from the loop (never inside this call). Resuming a request
 * that is not paused is harmless. Returns 0, or LLMUX_EINVAL when the
 * request is not in flight.
 */
LLMUX_EXTERN int llmux_request_resume(llmux_request *req);

/**
 * The blocking call, for scripts: runs `req` on a private client and loop
 * and returns when it is done. Must not be called from a thread that is
 * running an llmux loop (LLMUX_EBUSY when called from an llmux callback).
 * `req` stays the caller's. On return `*out` (may be NULL to ignore) is a
 * response the caller owns, free with llmux_response_free(), holding the
 * answer or the error (also when the request could not be started: an
 * unknown provider); it is NULL only when the call could not run at all
 * (LLMUX_EBUSY, LLMUX_EINVAL, or no memory for a client). Returns 0 or the
 * request's negative code. `opts` (may be NULL) configures the private
 * client; its `loop` is ignored. The request runs as a copy, so
 * `on_chunk` (may be NULL) receives that copy as its `req`, with
 * `userdata`. Blocks the calling thread, which may be any thread not
 * running an llmux loop.
 */
LLMUX_EXTERN int llmux_run(const llmux_request *req,
                           const llmux_client_options *opts,
                           llmux_chunk_cb on_chunk, void *userdata,
                           llmux_response **out);

LLMUX_END_DECL

#endif /* LLMUX_CLIENT_H */
