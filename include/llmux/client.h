/*
 * llmux/client.h: clients, submission, cancellation, the blocking call.
 *
 * A client owns one libcurl multi handle driven by a libuv loop: either the
 * caller's (borrowed, `options.loop`) or a private one it creates. It never
 * touches uv_default_loop() and never starts threads. A client and all its
 * requests belong to the thread that runs its loop.
 */
#ifndef LLMUX_CLIENT_H
#define LLMUX_CLIENT_H

#include "common.h"
#include "errors.h"

LLMUX_BEGIN_DECL

/** Log levels for the logging hook. */
typedef enum llmux_log_level {
    LLMUX_LOG_ERROR = 0,
    LLMUX_LOG_WARN = 1,
    LLMUX_LOG_INFO = 2,
    LLMUX_LOG_DEBUG = 3
} llmux_log_level;

/** Receives log lines. `msg` is borrowed; it never contains API keys or
 * the credentials of a URL. */
typedef void (*llmux_log_cb)(int level, const char *msg, void *userdata);

/**
 * Client options. Initialise with LLMUX_CLIENT_OPTIONS_INIT (or
 * llmux_client_options_init()) and set what you need; zero/NULL fields
 * mean "default". Strings are copied by llmux_client_new().
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
    size_t n_headers;
    size_t max_response_bytes; /**< cap on one answer's bytes, a stream's
                                    included; 0 = 64 MiB (LLMUX_ETOOBIG) */
    size_t max_event_bytes;    /**< cap on one stream event and on any one
                                    line of a stream; 0 = 4 MiB */
    const char *proxy;    /**< proxy URL; NULL = curl's *_proxy variables */
    const char *ca_file;  /**< PEM bundle of trusted CAs; NULL = system */
    int insecure;         /**< 1 disables TLS verification (never default;
                               the first request that does it logs a
                               warning) */
    long max_connections; /**< total connection cap; 0 = unlimited */
    llmux_log_cb log;     /**< logging hook, may be NULL */
    void *log_userdata;
    int log_level; /**< highest level passed to `log` */
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
} llmux_client_options;

#define LLMUX_CLIENT_OPTIONS_VERSION 3
/* Every field listed, so -Wextra stays quiet in user code. */
#define LLMUX_CLIENT_OPTIONS_INIT                                              \
    {                                                                          \
        LLMUX_CLIENT_OPTIONS_VERSION, NULL, -1, 0, 0, NULL, NULL, 0, 0, 0,     \
            NULL, NULL, 0, 0, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, NULL         \
    }

/**
 * Fills the first `size` bytes of `opts` with defaults and sets `version`
 * to the newest one whose fields fit in them, so that a program built
 * against an older header never has bytes written past its struct. Call
 * it through llmux_client_options_init().
 */
LLMUX_EXTERN void llmux_client_options_init_size(llmux_client_options *opts,
                                                 size_t size);

/** Fills `opts` with defaults (same as LLMUX_CLIENT_OPTIONS_INIT). A
 * macro: the size of the caller's struct goes with it. */
#define llmux_client_options_init(opts)                                        \
    llmux_client_options_init_size((opts), sizeof *(opts))

/**
 * Process-wide initialisation (libcurl). Called implicitly by
 * llmux_client_new(); call it yourself before starting threads, because
 * it must not race other threads' use of llmux or libcurl.
 */
LLMUX_EXTERN int llmux_global_init(void);

/** Releases process-wide state. No client may exist. */
LLMUX_EXTERN void llmux_global_cleanup(void);

/**
 * Creates a client. `opts` may be NULL for defaults. On success the caller
 * owns `*out` and ends it with llmux_client_close() or llmux_client_free().
 */
LLMUX_EXTERN int llmux_client_new(llmux_client **out,
                                  const llmux_client_options *opts);

/** Called once the client has released every handle and its memory. */
typedef void (*llmux_close_cb)(void *userdata);

/**
 * Starts closing the client: every request still queued or in flight gets
 * its done callback with LLMUX_ECANCELED (from the loop, not from this
 * call), then every handle is closed. With a borrowed loop keep running
 * it; `on_closed` (may be NULL) runs from the loop once the client's
 * memory is gone. With a private loop call llmux_client_free() afterwards
 * (it finishes the close and then calls `on_closed`). The client accepts
 * no submissions after this call.
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

/** Run modes for llmux_client_run(), as uv_run_mode. */
typedef enum llmux_run_mode {
    LLMUX_RUN_DEFAULT = 0, /**< until no request is left */
    LLMUX_RUN_ONCE = 1,    /**< one loop iteration, waiting for I/O */
    LLMUX_RUN_NOWAIT = 2   /**< one iteration, no waiting */
} llmux_run_mode;

/**
 * Runs a client's private loop. Returns non-zero while work remains, 0 when
 * none, or LLMUX_EINVAL for a client on a borrowed loop. When a callback
 * of this run called llmux_client_free(), the client is freed before this
 * returns 0.
 */
LLMUX_EXTERN int llmux_client_run(llmux_client *c, llmux_run_mode mode);

/** The loop the client runs on (borrowed from the client). */
LLMUX_EXTERN struct uv_loop_s *llmux_client_loop(const llmux_client *c);

/** Requests queued or in flight on the client. */
LLMUX_EXTERN size_t llmux_client_pending(const llmux_client *c);

/** Counters of a client since it was created. Latencies are in ms;
 * percentiles come from a log-scale histogram (about 10% resolution). */
typedef struct llmux_stats {
    unsigned int version; /**< set by the caller: LLMUX_STATS_VERSION */
    uint64_t requests;    /**< accepted by llmux_submit() */
    uint64_t succeeded, failed, canceled;
    uint64_t attempts;             /**< HTTP attempts, retries included */
    uint64_t retries;              /**< of which retries */
    uint64_t retries_rate_limited; /**< retries after 429 */
    uint64_t retries_server;       /**< after 5xx, 408, 409 */
    uint64_t retries_transport;    /**< after connect errors, timeouts */
    uint64_t errors_provider, errors_usage, errors_transport, errors_local;
    uint64_t prompt_tokens, completion_tokens; /**< reported usage */
    size_t in_flight, queued;                  /**< now */
    size_t max_in_flight, max_queued;          /**< highest seen */
    double queue_wait_p50, queue_wait_p99;
    /** ms from an attempt's start to its first body byte */
    double first_byte_p50, first_byte_p90, first_byte_p99;
    double total_p50, total_p90, total_p99;
} llmux_stats;

#define LLMUX_STATS_VERSION 1

/** Fills `*out` (set out->version first). Returns 0 or LLMUX_EINVAL. */
LLMUX_EXTERN int llmux_client_stats(const llmux_client *c, llmux_stats *out);

/** The counters of the requests a provider answered (by the name in the
 * config string; a fallback counts for the provider that answered):
 * requests, attempts, outcomes, errors and tokens. Queue, in-flight and
 * latency fields read 0 (they are client-wide). */
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
 * Receives each streamed delta. `chunk` is borrowed for the call. Return 0
 * to go on; non-zero cancels the transfer, and the done callback reports
 * LLMUX_EUSER with what was received so far.
 */
typedef int (*llmux_chunk_cb)(llmux_request *req, const llmux_chunk *chunk,
                              void *userdata);

/**
 * Submits a request. On success (0) the client takes ownership of `req`,
 * `on_done` runs exactly once from the loop (never inside this call), and
 * the request is freed after it. On failure (<0) no callback runs, the
 * caller still owns `req`, and llmux_request_errmsg(req) says why (an
 * unknown provider, a missing API key, an unsupported operation...).
 * `on_chunk` may be NULL; it is used for streamed requests.
 */
LLMUX_EXTERN int llmux_submit(llmux_client *c, llmux_request *req,
                              llmux_chunk_cb on_chunk, llmux_done_cb on_done,
                              void *userdata);

/**
 * Cancels a submitted request: its transfer is stopped and closed, and
 * its done callback runs from the loop with LLMUX_ECANCELED. Only valid
 * until its done callback has returned. Cancelling twice is harmless.
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

/** Resumes a paused request; data read meanwhile by the kernel is then
 * delivered from the loop (never inside this call). */
LLMUX_EXTERN int llmux_request_resume(llmux_request *req);

/**
 * The blocking call, for scripts: runs `req` on a private client and loop
 * and returns when it is done. Must not be called from a thread that is
 * running an llmux loop (LLMUX_EBUSY when called from an llmux callback).
 * `req` stays the caller's. On return `*out` (may be NULL to ignore) is a
 * response the caller owns, free with llmux_response_free(), holding the
 * answer or the error (also when the request could not be started, e.g. an
 * unknown provider); it is NULL only when the call could not run at all
 * (LLMUX_EBUSY, LLMUX_EINVAL, or no memory for a client). Returns 0 or the
 * request's negative code.
 */
LLMUX_EXTERN int llmux_run(const llmux_request *req,
                           const llmux_client_options *opts,
                           llmux_chunk_cb on_chunk, void *userdata,
                           llmux_response **out);

LLMUX_END_DECL

#endif /* LLMUX_CLIENT_H */
