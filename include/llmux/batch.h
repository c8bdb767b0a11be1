/**
 * @file llmux/batch.h
 * Many requests at once.
 *
 * gather: N requests, one callback when all are done, results in input
 * order, each with its own status. as-completed: a callback per request in
 * completion order, then one at the end. race: the same question to
 * several config strings; the first success wins and the losers' transfers
 * are cancelled (their sockets closed). All run on the client's loop and
 * never block; each has a concurrency limit of its own, within the
 * client's limits. Callbacks run from the loop, never inside the call that
 * started or cancelled the batch. Requests run by a batch are not
 * streamed to any chunk callback; their responses hold the whole answer.
 */
#ifndef LLMUX_BATCH_H
#define LLMUX_BATCH_H

#include "common.h"
#include "client.h"
#include "errors.h"

LLMUX_BEGIN_DECL

/** A running batch: owned by the library, valid until its done callback
 * returns. */
typedef struct llmux_batch llmux_batch;

/** Batch options; initialise with LLMUX_BATCH_OPTIONS_INIT. */
typedef struct llmux_batch_options {
    unsigned int version; /**< LLMUX_BATCH_OPTIONS_VERSION */
    size_t concurrency;   /**< requests in flight at once; 0 = all */
    int fail_fast;        /**< non-zero: the first failure cancels the rest */
} llmux_batch_options;

/** The newest llmux_batch_options.version these headers know. */
#define LLMUX_BATCH_OPTIONS_VERSION 1
/** The defaults of llmux_batch_options as designated initializers, to
 * name only what you change (C99; do not name `version` again):
 * `llmux_batch_options o = {LLMUX_BATCH_OPTIONS_DEFAULTS, .fail_fast = 1};` */
#define LLMUX_BATCH_OPTIONS_DEFAULTS .version = LLMUX_BATCH_OPTIONS_VERSION

/** Initialiser of an llmux_batch_options variable: all requests at once,
 * no fail_fast. */
#if !defined(__cplusplus)
#define LLMUX_BATCH_OPTIONS_INIT                                               \
    {                                                                          \
        LLMUX_BATCH_OPTIONS_DEFAULTS                                           \
    }
#else
#define LLMUX_BATCH_OPTIONS_INIT                                               \
    {                                                                          \
        LLMUX_BATCH_OPTIONS_VERSION, 0, 0                                      \
    }
#endif

/**
 * Runs once per request in completion order (as-completed only). `index`
 * is the request's position in the input array, `status` its code (0 or
 * negative); `res` is borrowed for the call (keep it with
 * llmux_response_retain()) and NULL for a queued request that was
 * cancelled.
 */
typedef void (*llmux_batch_item_cb)(llmux_batch *b, size_t index, int status,
                                    llmux_response *res, void *userdata);

/**
 * Runs exactly once, from the loop, when every request of the batch has
 * finished (or was cancelled). `status` is 0 when all succeeded (race: when
 * one did), else the first failure's code (LLMUX_ECANCELED after
 * llmux_batch_cancel()). The per-request results can be read with
 * llmux_batch_status() / llmux_batch_response() during this callback; the
 * batch and its responses are freed when it returns.
 */
typedef void (*llmux_batch_done_cb)(llmux_batch *b, int status, void *userdata);

/**
 * gather: runs the `n` requests of `reqs` on client `c`, results in input
 * order. On success (0) the batch takes ownership of every request in
 * `reqs` (the array itself stays the caller's) and `done` runs exactly
 * once, also when `n` is 0; *out (may be NULL) is the batch, valid until
 * `done` returns. A request the client refuses (unknown provider, missing
 * key...) finishes with that code and a response carrying the reason; the
 * others go on. On failure nothing was submitted, no callback runs and the
 * caller keeps the requests: LLMUX_EINVAL (no client, a NULL request, bad
 * options), LLMUX_EBUSY (a request already submitted, in another batch, or
 * listed twice), LLMUX_ECANCELED (the client is closing), LLMUX_ENOMEM.
 * `opts` may be NULL.
 */
LLMUX_EXTERN int llmux_gather(llmux_batch **out, llmux_client *c,
                              llmux_request *const *reqs, size_t n,
                              const llmux_batch_options *opts,
                              llmux_batch_done_cb done, void *userdata);

/**
 * as-completed: as llmux_gather(), plus `item` (may be NULL) per finished
 * request in completion order, before `done`.
 */
LLMUX_EXTERN int llmux_as_completed(llmux_batch **out, llmux_client *c,
                                    llmux_request *const *reqs, size_t n,
                                    const llmux_batch_options *opts,
                                    llmux_batch_item_cb item,
                                    llmux_batch_done_cb done, void *userdata);

/**
 * race: all requests at once (typically the same question to different
 * config strings); the first success wins and every other request is
 * cancelled. llmux_batch_winner() tells which won. The done status is 0
 * when one won, else the first failure's code. Returns and owns as
 * llmux_gather(); `n` 0 is LLMUX_EINVAL.
 */
LLMUX_EXTERN int llmux_race(llmux_batch **out, llmux_client *c,
                            llmux_request *const *reqs, size_t n,
                            llmux_batch_done_cb done, void *userdata);

/**
 * Cancels what is queued and in flight; finished results are kept. The
 * done callback still runs once, from the loop, with LLMUX_ECANCELED
 * unless a failure came first or nothing was left. Only valid until then.
 * Returns 0, or LLMUX_EINVAL for NULL.
 */
LLMUX_EXTERN int llmux_batch_cancel(llmux_batch *b);

/** Number of requests in the batch; 0 for NULL. */
LLMUX_EXTERN size_t llmux_batch_size(const llmux_batch *b);

/**
 * Result of request `i`: 0, a negative code, or 1 while not finished;
 * LLMUX_EINVAL when `i` is out of range.
 */
LLMUX_EXTERN int llmux_batch_status(const llmux_batch *b, size_t i);

/** Response of request `i` (borrowed from the batch), or NULL when it did
 * not finish (queued requests that were cancelled). */
LLMUX_EXTERN llmux_response *llmux_batch_response(const llmux_batch *b,
                                                  size_t i);

/** race: index of the winning request, or -1 when none succeeded. */
LLMUX_EXTERN long llmux_batch_winner(const llmux_batch *b);

/** The userdata given when the batch was started; NULL for NULL. */
LLMUX_EXTERN void *llmux_batch_userdata(const llmux_batch *b);

/**
 * Blocking gather for scripts: runs `reqs` on a private client and loop
 * (`copts` may be NULL) and returns when all are done. The requests stay
 * the caller's. `out` (n slots, may be NULL) receives a response per
 * request that the caller frees with llmux_response_free() (NULL where the
 * request never ran); `status` (n slots, may be NULL) each one's code.
 * Returns 0 when all succeeded, else the first failure's code. Must not be
 * called from an llmux callback (LLMUX_EBUSY).
 */
LLMUX_EXTERN int llmux_gather_run(llmux_request *const *reqs, size_t n,
                                  const llmux_client_options *copts,
                                  const llmux_batch_options *opts,
                                  llmux_response **out, int *status);

LLMUX_END_DECL

#endif /* LLMUX_BATCH_H */
