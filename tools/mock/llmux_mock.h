/*
 * llmux_mock.h: in-process API of the llmux mock provider server.
 *
 * The mock is a small HTTP/1.1 server on a caller-owned libuv loop that
 * speaks the providers' wire protocols with deterministic answers, records
 * every request it receives and injects faults on demand. Tests start it on
 * 127.0.0.1 port 0, read the port back and point a client at
 * http://127.0.0.1:PORT/v1 (OpenAI), .../mistral, .../ollama or .../aleph.
 *
 * Threading: a mock belongs to the thread that runs its loop; no function
 * here is thread-safe. Call them from that thread, between or during
 * uv_run() calls (never from another thread while the loop runs).
 *
 * Errors are negative libuv codes (UV_EINVAL, UV_ENOMEM, UV_EADDRINUSE...).
 *
 * The server writes to sockets with write(2): llmux_mock_start() sets
 * SIGPIPE to SIG_IGN when it is still at its default disposition, so a
 * client that vanishes mid-response cannot kill the process.
 */
#ifndef LLMUX_MOCK_H
#define LLMUX_MOCK_H

#include <stddef.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A running mock server. Opaque; created by llmux_mock_start(). */
typedef struct llmux_mock llmux_mock;

#define LLMUX_MOCK_OPTIONS_VERSION 1

/** Options for llmux_mock_start(); initialise with LLMUX_MOCK_OPTIONS_INIT. */
typedef struct llmux_mock_options {
    unsigned version;   /* LLMUX_MOCK_OPTIONS_VERSION */
    const char *host;   /* address to bind; NULL means "127.0.0.1" */
    int port;           /* 0 picks a free port */
    int latency_ms;     /* delay before the response headers */
    int chunk_delay_ms; /* delay between two stream events */
    int quiet;          /* non-zero: no log lines on stderr */
    /* Slow accept: each new connection is accepted only this many ms after
     * it is noticed, one at a time (libuv stops accepting meanwhile, so
     * later connections wait in the kernel's queue). 0: at once. */
    int accept_delay_ms;
    /* listen(2) backlog; 0 means the default (4096). With accept delays, a
     * small backlog leaves further connects unanswered at the TCP level. */
    int backlog;
    /* How long a batch job (OpenAI's /v1/batches, Mistral's
     * /v1/batch/jobs) takes from creation to completed, in ms; its state
     * and counts move with the clock. 0 means 500. */
    int batch_ms;
} llmux_mock_options;

#define LLMUX_MOCK_OPTIONS_INIT                                                \
    {                                                                          \
        LLMUX_MOCK_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, 0                  \
    }

/** One request header as received (name keeps the client's spelling). */
typedef struct llmux_mock_header {
    const char *name;
    const char *value;
} llmux_mock_header;

/** A recorded request. Every string is NUL-terminated. */
typedef struct llmux_mock_record {
    const char *method;               /* "POST" */
    const char *path;                 /* request target, query included */
    const llmux_mock_header *headers; /* n_headers entries, in order */
    size_t n_headers;
    const char *body; /* "" when there was no body */
    size_t body_len;  /* may hold NULs: use this length */
} llmux_mock_record;

/**
 * Starts a mock listening on o->host:o->port on `loop`.
 * `o` may be NULL for the defaults; it is copied, strings included.
 * Returns 0 and sets *out, or a negative libuv code and sets *out to NULL.
 * Ownership: the caller owns *out and must release it with
 * llmux_mock_close(), then keep running the loop until on_closed fires.
 * On failure nothing is left on the loop.
 */
int llmux_mock_start(llmux_mock **out, uv_loop_t *loop,
                     const llmux_mock_options *o);

/** The bound TCP port. Borrowed read; `m` keeps ownership. */
int llmux_mock_port(const llmux_mock *m);

/**
 * Closes the listener, every connection and every timer (stalled and
 * streaming responses are cut). Memory is released from the libuv close
 * callbacks; `m` is freed before on_closed(ud) runs, so `m` must not be
 * used after on_closed. on_closed may be NULL. NULL `m`, or a second call
 * before on_closed has run, is a no-op.
 */
void llmux_mock_close(llmux_mock *m, void (*on_closed)(void *ud), void *ud);

/**
 * Appends a fault spec to the FIFO script: each scripted spec applies to
 * exactly one later request that does not already carry a fault (through
 * an X-Mock-Fault header or a "model#spec" suffix). `spec` is validated
 * and copied. Returns 0, UV_EINVAL for a bad spec, or UV_ENOMEM.
 *
 * A spec is ";"-separated directives: status=N code=STR message=STR
 * retry_after=S retry_after_ms=N body=garbage|text|truncated|html
 * content_type=STR delay_ms=N stall_after=N cut_after=N reset_after=N
 * reset=1 stream_error_after=N huge=N header=Name:Value events=N (see
 * tools/mock/README.md for their meaning).
 */
int llmux_mock_push_fault(llmux_mock *m, const char *spec);

/**
 * Sets (copy of `spec_or_NULL`) or clears the fault applied to every
 * request that no other source gave a fault. An invalid spec clears it
 * and the error is logged unless quiet. Returns nothing; see push_fault.
 */
void llmux_mock_set_fault_all(llmux_mock *m, const char *spec_or_NULL);

/** Number of recorded requests (control endpoints are not recorded). */
size_t llmux_mock_request_count(const llmux_mock *m);

/**
 * The i-th recorded request, oldest first, or NULL when i is out of range.
 * Borrowed: valid until llmux_mock_reset() or llmux_mock_close().
 */
const llmux_mock_record *llmux_mock_request(const llmux_mock *m, size_t i);

/**
 * Value of the first header called `name` (ASCII case-insensitive) in
 * `rec`, or NULL. Borrowed from `rec`.
 */
const char *llmux_mock_record_header(const llmux_mock_record *rec,
                                     const char *name);

/** Highest number of requests in flight at once since start or reset. */
int llmux_mock_max_concurrent(const llmux_mock *m);

/** Requests currently in flight (received, response not yet finished). */
int llmux_mock_in_flight(const llmux_mock *m);

/**
 * Frees every record (invalidating pointers from llmux_mock_request()),
 * sets the request count to 0, max_concurrent to the current in-flight
 * count and restarts the response id counter. Fault settings are kept.
 */
void llmux_mock_reset(llmux_mock *m);

#ifdef __cplusplus
}
#endif

#endif /* LLMUX_MOCK_H */
