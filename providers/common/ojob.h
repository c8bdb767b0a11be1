/*
 * providers/common/ojob.h: provider batch jobs for the plugins (the job
 * hooks of llmux_provider): OpenAI's Batch API (files and batches) whole,
 * and the pieces other batch APIs share with it (parsing a job answer,
 * checking an id that goes into a path, walking JSONL). Nothing here does
 * I/O; every call goes through the host table `h`, and `name` is the
 * provider's name for messages.
 */
#ifndef LLMUX_PROVIDERS_OJOB_H
#define LLMUX_PROVIDERS_OJOB_H

#include <stddef.h>

#include <llmux/sys/provider.h>

#include <json-c/json.h>

/** OpenAI's job steps under a base URL ending in /v1: POST /files
 * (multipart, purpose batch), POST /batches, GET /batches/{id}, POST
 * /batches/{id}/cancel, GET /files/{id}/content. */
int llmux_ojob_openai_encode(const llmux_host *h, const char *name,
                             const llmux_job_step *s, llmux_http_request *http);
/** Decodes their answers: the file object, the batch object, the output
 * lines (already OpenAI's). */
int llmux_ojob_openai_decode(const llmux_host *h, const char *name,
                             const llmux_job_step *s,
                             const llmux_http_response *resp, llmux_out *out);

/** An id the caller gave, checked before it goes into a path: letters,
 * digits, '-', '_' and '.' (not "." or ".."), at most 256 bytes, so that
 * no id reaches another endpoint. 0, or LLMUX_EINVAL after h->log. */
int llmux_ojob_check_id(const llmux_host *h, const char *name, const char *id);

/** A 2xx job answer parsed as a JSON object into *root (caller puts it).
 * 0, or LLMUX_EPROTO with set_error. */
int llmux_ojob_parse(const llmux_host *h, const char *name,
                     const llmux_http_response *resp, llmux_out *out,
                     json_object **root);

/** s[0..n) parsed as one JSON value into *out (caller puts it): 0,
 * LLMUX_EPROTO or LLMUX_ENOMEM. */
int llmux_ojob_parse_text(const char *s, size_t n, json_object **out);

/** Member `key` of `o`, when a string, as job field `field`. */
int llmux_ojob_str(const llmux_host *h, llmux_out *out, int field,
                   json_object *o, const char *key);
/** Member `key` of `o`, when an integer, as job field `field`. */
int llmux_ojob_int(const llmux_host *h, llmux_out *out, int field,
                   json_object *o, const char *key);

/** Calls fn for each non-blank line of s[0..len) with its number (from
 * 1); stops at the first non-zero return, which it returns. */
int llmux_ojob_lines(const char *s, size_t len,
                     int (*fn)(void *ud, size_t no, const char *line, size_t n),
                     void *ud);

/** The multipart upload of `data` as file "batch.jsonl" with
 * purpose=batch to `path`. */
int llmux_ojob_upload(const llmux_host *h, llmux_http_request *http,
                      const char *path, const char *data, size_t len);

/** A provider's word for a job state. */
typedef struct llmux_ojob_word {
    const char *word;
    int state; /**< llmux_job_state */
} llmux_ojob_word;

/** The llmux_job_state of `word` in map[0..n), LLMUX_JOB_UNKNOWN when not
 * there. */
int llmux_ojob_state(const llmux_ojob_word *map, size_t n, const char *word);

/** The steps that only name an id: STATUS (GET jobs/{id}), CANCEL (POST
 * jobs/{id}/cancel) and CONTENT (GET files/{id}/content), the id checked
 * first. `files` and `jobs` are the provider's paths ("/files",
 * "/batches"). LLMUX_ENOTSUP (logged) for another step. */
int llmux_ojob_id_step(const llmux_host *h, const char *name,
                       const llmux_job_step *s, const char *files,
                       const char *jobs, llmux_http_request *http);

/** Adds the step's metadata (JSON text the caller gave) to `body` as
 * "metadata". 0, LLMUX_EINVAL (logged) or LLMUX_ENOMEM. */
int llmux_ojob_metadata(const llmux_host *h, const char *name,
                        const llmux_job_step *s, json_object *body);

/** Decodes an upload's answer, a file object: its id as
 * LLMUX_JF_INPUT_FILE. */
int llmux_ojob_decode_upload(const llmux_host *h, const char *name,
                             const llmux_http_response *resp, llmux_out *out);

#endif /* LLMUX_PROVIDERS_OJOB_H */
