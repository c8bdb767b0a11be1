/*
 * llmux/response.h: reading responses and stream chunks.
 *
 * Both follow OpenAI's chat-completions shape whatever the provider said on
 * the wire. All returned pointers are borrowed from the response or chunk.
 */
#ifndef LLMUX_RESPONSE_H
#define LLMUX_RESPONSE_H

#include "common.h"
#include "errors.h"
#include "request.h"

LLMUX_BEGIN_DECL

/** Normalised finish reasons. */
typedef enum llmux_finish {
    LLMUX_FINISH_NONE = 0, /**< not finished (or not reported) */
    LLMUX_FINISH_STOP = 1,
    LLMUX_FINISH_LENGTH = 2,
    LLMUX_FINISH_TOOL_CALLS = 3,
    LLMUX_FINISH_CONTENT_FILTER = 4,
    LLMUX_FINISH_ERROR = 5
} llmux_finish;

/** "stop", "length", "tool_calls", "content_filter", "error" or NULL. */
LLMUX_EXTERN const char *llmux_finish_name(llmux_finish f);

/** Token usage; -1 where the provider did not report a count. */
typedef struct llmux_usage {
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    long cached_tokens;    /**< prompt tokens served from cache, or -1 */
    long reasoning_tokens; /**< completion tokens spent reasoning, or -1 */
} llmux_usage;

/* ---- responses ----------------------------------------------------------- */

/** Keeps `res` alive past its callback; balance with llmux_response_free. */
LLMUX_EXTERN llmux_response *llmux_response_retain(llmux_response *res);
/** Drops a reference taken by retain or given by llmux_run(). NULL ok. */
LLMUX_EXTERN void llmux_response_free(llmux_response *res);

LLMUX_EXTERN llmux_op llmux_response_op(const llmux_response *res);
/** The error, or NULL on success. */
LLMUX_EXTERN const llmux_error *llmux_response_error(const llmux_response *res);
/** HTTP status of the last attempt (0 if none). */
LLMUX_EXTERN long llmux_response_http_status(const llmux_response *res);
/** Attempts made (1 + retries) with the config string that answered. */
LLMUX_EXTERN int llmux_response_attempts(const llmux_response *res);
/** Which config string answered: 0 the request's own, n its n-th
 * fallback (llmux_request_add_fallback()). */
LLMUX_EXTERN int llmux_response_fallback(const llmux_response *res);

LLMUX_EXTERN const char *llmux_response_provider(const llmux_response *res);
LLMUX_EXTERN const char *llmux_response_model(const llmux_response *res);
LLMUX_EXTERN const char *llmux_response_id(const llmux_response *res);
LLMUX_EXTERN long long llmux_response_created(const llmux_response *res);

/** Assistant text (chat) or completion text; "" when none. */
LLMUX_EXTERN const char *llmux_response_text(const llmux_response *res,
                                             size_t *len);
/** Reasoning/thinking text, or NULL. */
LLMUX_EXTERN const char *llmux_response_reasoning(const llmux_response *res);
/** The model's refusal message, or NULL. */
LLMUX_EXTERN const char *llmux_response_refusal(const llmux_response *res);
LLMUX_EXTERN llmux_finish llmux_response_finish(const llmux_response *res);
/** The provider's own finish reason text, or NULL. */
LLMUX_EXTERN const char *llmux_response_finish_raw(const llmux_response *res);

LLMUX_EXTERN size_t llmux_response_tool_call_count(const llmux_response *res);
/** The i-th tool call, or NULL when out of range. */
LLMUX_EXTERN const llmux_tool_call *
llmux_response_tool_call(const llmux_response *res, size_t i);

/** Usage; never NULL (counts are -1 when unknown). */
LLMUX_EXTERN const llmux_usage *llmux_response_usage(const llmux_response *res);

/** Embeddings: how many vectors, and the i-th with its dimension. */
LLMUX_EXTERN size_t llmux_response_embedding_count(const llmux_response *res);
LLMUX_EXTERN const float *llmux_response_embedding(const llmux_response *res,
                                                   size_t i, size_t *dim);

/**
 * Writes `v` in the fewest significant digits that read back as the same
 * value: as a float (single != 0, how embeddings are kept) or a double,
 * with '.' as the decimal point in every locale; how llmux prints numbers
 * in its JSON. `buf` must hold at least 32 bytes. Returns the length, or
 * -1 for NaN, infinities or a smaller buffer.
 */
LLMUX_EXTERN int llmux_format_number(char *buf, size_t len, double v,
                                     int single);

/** Model listing: how many ids, and the i-th. */
LLMUX_EXTERN size_t llmux_response_model_count(const llmux_response *res);
LLMUX_EXTERN const char *llmux_response_model_id(const llmux_response *res,
                                                 size_t i);

/** Tokenize: how many tokens, and the i-th token's text (NULL when the
 * provider gave only ids) with its id in *id (-1 when unknown). */
LLMUX_EXTERN size_t llmux_response_token_count(const llmux_response *res);
LLMUX_EXTERN const char *llmux_response_token(const llmux_response *res,
                                              size_t i, long long *id);

/** Evaluate (and other provider-specific tasks): the provider's result
 * object as JSON text, or NULL. */
LLMUX_EXTERN const char *llmux_response_result_json(const llmux_response *res);

/**
 * The response as one OpenAI-shaped JSON object: "chat.completion",
 * "text_completion", an embeddings "list" or a models "list"; for tokenize
 * {"tokens":[...],"token_ids":[...]}, for detokenize {"text":"..."}, for
 * evaluate the provider's result object; for a failed request
 * {"error":{...}}. Caller owns the string: free with llmux_free().
 */
LLMUX_EXTERN char *llmux_response_to_json(const llmux_response *res);

/* ---- stream chunks ------------------------------------------------------- */

/** This delta's text ("" when none). */
LLMUX_EXTERN const char *llmux_chunk_text(const llmux_chunk *ch, size_t *len);
/** This delta's reasoning text, or NULL. */
LLMUX_EXTERN const char *llmux_chunk_reasoning(const llmux_chunk *ch);
LLMUX_EXTERN llmux_finish llmux_chunk_finish(const llmux_chunk *ch);
/** Tool-call deltas: append each `arguments` to the call with its index. */
LLMUX_EXTERN size_t llmux_chunk_tool_call_count(const llmux_chunk *ch);
LLMUX_EXTERN const llmux_tool_call *llmux_chunk_tool_call(const llmux_chunk *ch,
                                                          size_t i);
/** Usage if this chunk carries it, else NULL. */
LLMUX_EXTERN const llmux_usage *llmux_chunk_usage(const llmux_chunk *ch);
/** The operation of the stream (chat or complete). */
LLMUX_EXTERN llmux_op llmux_chunk_op(const llmux_chunk *ch);

/**
 * The chunk as one OpenAI-shaped JSON object ("chat.completion.chunk", or
 * "text_completion" with choices[].text for completions). Caller owns the
 * string: free with llmux_free().
 */
LLMUX_EXTERN char *llmux_chunk_to_json(const llmux_chunk *ch);

LLMUX_END_DECL

#endif /* LLMUX_RESPONSE_H */
