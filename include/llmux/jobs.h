/**
 * @file llmux/jobs.h
 * Provider batch jobs: OpenAI's Batch API and Mistral's batch jobs.
 *
 * A job is a file of requests the provider runs on its own time (within
 * 24 hours, at about half the price). llmux_job_submit() uploads an
 * OpenAI Batch input file (one `{"custom_id","method","url","body"}` line
 * per request) and creates the job; llmux_job_status() polls it,
 * llmux_job_cancel() cancels it and llmux_job_fetch() downloads its
 * results, as OpenAI Batch output lines
 * (`{"id","custom_id","response":{"status_code","request_id","body"},
 * "error"}`) whatever the provider: the provider's plugin translates the
 * input lines and the results (Mistral takes `{"custom_id","body"}` lines
 * and the model on the job).
 *
 * Every step is an HTTP request of the client, under its limits, retries
 * and timeouts, encoded and decoded by the provider's plugin (the
 * llmux_provider job hooks). A provider without them fails with
 * LLMUX_ENOTSUP; the local runner (llmux_batch_*, the CLI's
 * `llmux batch`) then does the same work with ordinary requests.
 *
 * All functions run on the client's loop thread (the one that created the
 * client, or runs llmux_client_run()) and never block. Each one that
 * returns 0 runs its callback exactly once, from the loop, never inside
 * the call; one that returns an error runs none.
 */
#ifndef LLMUX_JOBS_H
#define LLMUX_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "client.h"
#include "errors.h"

LLMUX_BEGIN_DECL

/** What a job reports of itself; owned by the library, borrowed by the
 * callback it is handed to. */
typedef struct llmux_job llmux_job;

/** A job's state, the same words for every provider (its own word is
 * llmux_job_state_raw()). */
typedef enum llmux_job_state {
    LLMUX_JOB_UNKNOWN = 0,     /**< a word this version does not know */
    LLMUX_JOB_VALIDATING = 1,  /**< queued, input being checked (Mistral's
                                    QUEUED) */
    LLMUX_JOB_IN_PROGRESS = 2, /**< running (Mistral's RUNNING) */
    LLMUX_JOB_FINALIZING = 3,  /**< writing the results */
    LLMUX_JOB_COMPLETED = 4,   /**< done: results ready (Mistral's SUCCESS);
                                    each request may still have failed */
    LLMUX_JOB_FAILED = 5,      /**< the input was refused */
    LLMUX_JOB_EXPIRED = 6,     /**< not done in time (Mistral's
                                    TIMEOUT_EXCEEDED); partial results */
    LLMUX_JOB_CANCELLING = 7,  /**< cancel asked (Mistral's
                                    CANCELLATION_REQUESTED) */
    LLMUX_JOB_CANCELLED = 8    /**< cancelled; partial results */
} llmux_job_state;

/** Options of llmux_job_submit(); initialise with LLMUX_JOB_OPTIONS_INIT.
 * Strings are copied during the call. */
typedef struct llmux_job_options {
    unsigned int version;      /**< LLMUX_JOB_OPTIONS_VERSION */
    const char *endpoint;      /**< "/v1/chat/completions" (the default: the
                                    input lines' url, which must all agree) */
    const char *model;         /**< the job's model where the provider takes one
                                    (Mistral); NULL: the config string's, else
                                    the lines' body.model, which must agree */
    const char *metadata_json; /**< a JSON object of strings to keep with
                                    the job, or NULL */
    int timeout_hours;         /**< Mistral's timeout_hours; 0: the provider's
                                    default (OpenAI's window is always 24h) */
} llmux_job_options;

/** The newest llmux_job_options.version these headers know. */
#define LLMUX_JOB_OPTIONS_VERSION 1
/** Initialiser of an llmux_job_options variable: all defaults. */
#define LLMUX_JOB_OPTIONS_INIT                                                 \
    {                                                                          \
        LLMUX_JOB_OPTIONS_VERSION, NULL, NULL, NULL, 0                         \
    }

/** Which results llmux_job_fetch() downloads. */
#define LLMUX_JOB_OUTPUT 0 /**< the output file: the answered requests */
#define LLMUX_JOB_ERRORS 1 /**< the error file: the failed requests */

/**
 * The end of a job function, exactly once, from the loop. `code` is 0 or
 * a negative llmux code; `message` says what failed (NULL on success; the
 * API key never appears in it). `job` is what the provider answered last
 * (NULL when nothing was learnt), borrowed until the callback returns.
 */
typedef void (*llmux_job_cb)(int code, const llmux_job *job,
                             const char *message, void *userdata);

/**
 * Uploads `jsonl` (`len` bytes of OpenAI Batch input lines, copied during
 * the call) and creates a job of it at the provider of `config` (a config
 * string: "openai", "openai/gpt-4o-mini", "mistral/mistral-small-latest",
 * with its options: base_url, api_key...). The input is checked first:
 * every line an object with a unique string custom_id, method POST, the
 * same url and an object body; a bad line fails with LLMUX_EINVAL naming
 * its number. The callback's job has the job's id (llmux_job_id()) and
 * state. `opt` may be NULL. Returns 0, or LLMUX_EINVAL for a NULL
 * argument or an options version it does not know, LLMUX_ENOMEM, or
 * LLMUX_EBUSY off the loop's thread.
 */
LLMUX_EXTERN int llmux_job_submit(llmux_client *c, const char *config,
                                  const char *jsonl, size_t len,
                                  const llmux_job_options *opt, llmux_job_cb cb,
                                  void *userdata);

/** Asks the provider of `config` for job `id`'s state and counts. The
 * callback's job has them. Returns as llmux_job_submit(). */
LLMUX_EXTERN int llmux_job_status(llmux_client *c, const char *config,
                                  const char *id, llmux_job_cb cb,
                                  void *userdata);

/** Cancels job `id`; the callback's job has the state that follows
 * (usually cancelling). Returns as llmux_job_submit(). */
LLMUX_EXTERN int llmux_job_cancel(llmux_client *c, const char *config,
                                  const char *id, llmux_job_cb cb,
                                  void *userdata);

/**
 * Downloads the results of job `id`: its output file (`which`
 * LLMUX_JOB_OUTPUT) or error file (LLMUX_JOB_ERRORS), as OpenAI Batch
 * output lines (llmux_job_content()). Polls the job first: one that has
 * not ended fails with LLMUX_EBUSY naming its state; one without such a
 * file succeeds with empty content. Results larger than the client's
 * max_response_bytes fail with LLMUX_ETOOBIG. Returns as
 * llmux_job_submit().
 */
LLMUX_EXTERN int llmux_job_fetch(llmux_client *c, const char *config,
                                 const char *id, int which, llmux_job_cb cb,
                                 void *userdata);

/** The job's id, or NULL. Borrowed, like every string below. */
LLMUX_EXTERN const char *llmux_job_id(const llmux_job *job);
/** The job's state in llmux's words. */
LLMUX_EXTERN llmux_job_state llmux_job_get_state(const llmux_job *job);
/** The provider's own word for the state ("in_progress", "RUNNING"), or
 * NULL. */
LLMUX_EXTERN const char *llmux_job_state_raw(const llmux_job *job);
/** The state's name: "validating", "in_progress", ... "unknown". Static. */
LLMUX_EXTERN const char *llmux_job_state_name(llmux_job_state s);
/** Whether a job in state `s` has ended (completed, failed, expired,
 * cancelled). */
LLMUX_EXTERN int llmux_job_state_final(llmux_job_state s);
/** Request counts: total, completed (answered) and failed; -1 when the
 * provider said nothing. Any pointer may be NULL. */
LLMUX_EXTERN void llmux_job_counts(const llmux_job *job, int64_t *total,
                                   int64_t *completed, int64_t *failed);
/** The id of the uploaded input file, or NULL. */
LLMUX_EXTERN const char *llmux_job_input_file(const llmux_job *job);
/** The id of the output file, or NULL (none yet, or nothing answered). */
LLMUX_EXTERN const char *llmux_job_output_file(const llmux_job *job);
/** The id of the error file, or NULL. */
LLMUX_EXTERN const char *llmux_job_error_file(const llmux_job *job);
/** The job's model, or NULL when the provider did not say. */
LLMUX_EXTERN const char *llmux_job_model(const llmux_job *job);
/** The job's endpoint ("/v1/chat/completions"), or NULL. */
LLMUX_EXTERN const char *llmux_job_endpoint(const llmux_job *job);
/** What the provider said of a failed job's input, or NULL. */
LLMUX_EXTERN const char *llmux_job_errors(const llmux_job *job);
/** When the job was created, in Unix seconds; 0 when unknown. */
LLMUX_EXTERN int64_t llmux_job_created_at(const llmux_job *job);
/** When it ended (completed, failed, expired or cancelled), in Unix
 * seconds; 0 when it has not (or the provider did not say). */
LLMUX_EXTERN int64_t llmux_job_finished_at(const llmux_job *job);
/** llmux_job_fetch(): the results, `*len` bytes of OpenAI Batch output
 * lines (an empty string when there were none); NULL for the other
 * functions. */
LLMUX_EXTERN const char *llmux_job_content(const llmux_job *job, size_t *len);

LLMUX_END_DECL

#endif /* LLMUX_JOBS_H */
