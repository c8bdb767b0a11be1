/**
 * @file llmux/response.h
 * Reading responses and stream chunks.
 *
 * Both follow OpenAI's chat-completions shape whatever the provider said on
 * the wire. All returned pointers are borrowed from the response or chunk:
 * valid while the response is (until the done callback returns, or the
 * last llmux_response_free()), and for a chunk during its callback only.
 * All text is valid UTF-8. Every accessor accepts NULL and then returns
 * its "none" value (NULL, "", 0 or -1).
 */
#ifndef LLMUX_RESPONSE_H
#define LLMUX_RESPONSE_H

#include "common.h"
#include "errors.h"
#include "request.h"

LLMUX_BEGIN_DECL

/** Normalised finish reasons. */
typedef enum llmux_finish {
    LLMUX_FINISH_NONE = 0,           /**< not finished (or not reported) */
    LLMUX_FINISH_STOP = 1,           /**< a natural end or a stop sequence */
    LLMUX_FINISH_LENGTH = 2,         /**< the token limit was reached */
    LLMUX_FINISH_TOOL_CALLS = 3,     /**< the model called tools */
    LLMUX_FINISH_CONTENT_FILTER = 4, /**< the provider's filter cut it */
    LLMUX_FINISH_ERROR = 5           /**< it failed after text arrived */
} llmux_finish;

/**
 * The OpenAI name of `f`: "stop", "length", "tool_calls", "content_filter",
 * "error", or NULL for LLMUX_FINISH_NONE and unknown values. Static.
 */
LLMUX_EXTERN const char *llmux_finish_name(llmux_finish f);

/** Token usage; -1 where the provider did not report a count. */
typedef struct llmux_usage {
    long prompt_tokens;     /**< tokens of the input, or -1 */
    long completion_tokens; /**< tokens generated, or -1 */
    long total_tokens;      /**< as the provider reported it, or -1 (the JSON of
                                 llmux_response_to_json() then adds the two) */
    long cached_tokens;     /**< prompt tokens served from cache, or -1 */
    long reasoning_tokens;  /**< completion tokens spent reasoning, or -1 */
} llmux_usage;

/**
 * One answer of a chat or text completion: responses hold one per choice
 * the provider returned (`n` > 1 asks for several), stream chunks one per
 * choice their event carried. Opaque; borrowed from its response or chunk
 * and read with the llmux_choice_* functions.
 */
typedef struct llmux_choice llmux_choice;

/** Which token list of a choice: its content's or its refusal's. */
typedef enum llmux_logprobs_list {
    LLMUX_LOGPROBS_CONTENT = 0, /**< the tokens of the text */
    LLMUX_LOGPROBS_REFUSAL = 1  /**< the tokens of the refusal */
} llmux_logprobs_list;

/**
 * One token's log probability (`logprobs: true`), with the likeliest
 * tokens at its place (`top_logprobs: N`). Borrowed from its choice; read
 * it only through the pointer llmux_choice_logprob() returns (the struct
 * may grow at its end).
 */
typedef struct llmux_logprob {
    const char *token; /**< the token as text, valid UTF-8 (a token holding
                            part of a character shows U+FFFD: `bytes` has
                            what it really is) */
    double logprob;    /**< its log probability (OpenAI sends -9999.0 for
                            a token outside the top 20) */
    const unsigned char *bytes;      /**< its UTF-8 bytes as the provider gave
                                          them, or NULL when it gave none */
    size_t n_bytes;                  /**< entries in `bytes` */
    const struct llmux_logprob *top; /**< the alternatives at this place,
                                          likeliest first (their own `top`
                                          is NULL) */
    size_t n_top;                    /**< entries in `top` */
} llmux_logprob;

/* ---- responses ----------------------------------------------------------- */

/**
 * Keeps `res` alive past its callback: takes a reference and returns
 * `res` (NULL for NULL). Balance each with llmux_response_free(). The
 * count is not atomic: retain and free on the client's loop thread, or
 * hand the response over to another thread as a whole.
 */
LLMUX_EXTERN llmux_response *llmux_response_retain(llmux_response *res);
/**
 * Drops a reference taken by llmux_response_retain() or given by
 * llmux_run() or llmux_gather_run(); the last one frees the response and
 * everything borrowed from it. NULL is a no-op. Never free the borrowed
 * response of a callback without having retained it.
 */
LLMUX_EXTERN void llmux_response_free(llmux_response *res);

/** The operation of the request that produced `res`. */
LLMUX_EXTERN llmux_op llmux_response_op(const llmux_response *res);
/**
 * The error, or NULL on success. Borrowed from the response; see
 * #llmux_error.
 */
LLMUX_EXTERN const llmux_error *llmux_response_error(const llmux_response *res);
/** HTTP status of the last attempt (0 if none). */
LLMUX_EXTERN long llmux_response_http_status(const llmux_response *res);
/** Attempts made (1 + retries) with the config string that answered. */
LLMUX_EXTERN int llmux_response_attempts(const llmux_response *res);
/**
 * 1 when the answer came from the client's response cache (the config
 * string's `cache=` or the client option `cache_all`): no attempt was
 * made (llmux_response_attempts() is 0), its usage is the one the
 * provider reported when it was kept, and its cost is 0 (nothing is
 * charged to a budget again). 0 otherwise, and for NULL.
 */
LLMUX_EXTERN int llmux_response_cached(const llmux_response *res);
/** Which config string answered: 0 the request's own, n its n-th
 * fallback (llmux_request_add_fallback()). */
LLMUX_EXTERN int llmux_response_fallback(const llmux_response *res);
/**
 * The provider's body as received on the last attempt (the answer, or
 * the error body), byte for byte and NUL-terminated, or NULL when there
 * was none (a transport failure) or the answer streamed (see
 * llmux_chunk_raw()). `len` (may be NULL) receives its length, which may
 * be shorter than strlen's if the body holds NUL bytes. Borrowed from the
 * response: it lives as long as `res`. Not UTF-8-checked: it is what the
 * server sent.
 */
LLMUX_EXTERN const char *llmux_response_raw(const llmux_response *res,
                                            size_t *len);

/**
 * The provider that answered, by the name its config string used (a
 * fallback's when one answered).
 */
LLMUX_EXTERN const char *llmux_response_provider(const llmux_response *res);
/** The model as the provider reported it, or NULL. */
LLMUX_EXTERN const char *llmux_response_model(const llmux_response *res);
/** The provider's id of the answer ("chatcmpl-..."), or NULL. */
LLMUX_EXTERN const char *llmux_response_id(const llmux_response *res);
/** When the provider says it created the answer, in Unix seconds; 0 when
 * it did not say. */
LLMUX_EXTERN long long llmux_response_created(const llmux_response *res);

/**
 * Assistant text (chat) or completion text of choice 0; "" when none,
 * never NULL. A stream's response holds all of its deltas. `len` (may be
 * NULL) receives the length in bytes. The reasoning, refusal, finish and
 * tool-call accessors below read choice 0 too; llmux_response_choice()
 * reads the others.
 */
LLMUX_EXTERN const char *llmux_response_text(const llmux_response *res,
                                             size_t *len);
/** Reasoning/thinking text, or NULL. */
LLMUX_EXTERN const char *llmux_response_reasoning(const llmux_response *res);
/** The model's refusal message, or NULL. */
LLMUX_EXTERN const char *llmux_response_refusal(const llmux_response *res);
/** Why the answer ended, normalised; see #llmux_finish. */
LLMUX_EXTERN llmux_finish llmux_response_finish(const llmux_response *res);
/** The provider's own finish reason text, or NULL. */
LLMUX_EXTERN const char *llmux_response_finish_raw(const llmux_response *res);

/** How many tool calls the answer made. */
LLMUX_EXTERN size_t llmux_response_tool_call_count(const llmux_response *res);
/**
 * The i-th tool call, in index order, or NULL when out of range; its
 * arguments are complete JSON text (a stream's fragments joined).
 */
LLMUX_EXTERN const llmux_tool_call *
llmux_response_tool_call(const llmux_response *res, size_t i);

/** Usage; never NULL (counts are -1 when unknown). */
LLMUX_EXTERN const llmux_usage *llmux_response_usage(const llmux_response *res);

/**
 * What the answer cost in USD: its usage at the price of the provider's
 * model in the client's price table (the built-in data/prices.json, and
 * the client's prices_file). `known` (may be NULL) receives 1 when it was
 * priced, 0 when the model has no price or the provider reported no usage
 * (and 0 is returned). Cached prompt tokens cost the cached-input price.
 */
LLMUX_EXTERN double llmux_response_cost(const llmux_response *res, int *known);

/**
 * How many choices a chat or completion answer holds, at least 1 for a
 * successful one (an answer without choices reads as one empty choice 0);
 * 0 for other operations and NULL.
 */
LLMUX_EXTERN size_t llmux_response_choice_count(const llmux_response *res);
/**
 * The i-th choice, in index order (choice i usually has index i; see
 * llmux_choice_index()), or NULL when out of range. Borrowed from `res`.
 */
LLMUX_EXTERN const llmux_choice *
llmux_response_choice(const llmux_response *res, size_t i);

/**
 * A top-level field the provider sent that llmux does not model
 * ("service_tier", "prompt_filter_results" ...) as JSON text, or NULL.
 * Such fields reappear in llmux_response_to_json(). Borrowed from `res`
 * (valid until the next call for the same response). A stream's response
 * holds each field's last value.
 */
LLMUX_EXTERN const char *llmux_response_field(const llmux_response *res,
                                              const char *key);

/* ---- choices ------------------------------------------------------------- */

/** The choice's index as the provider numbered it (0 for n = 1); -1 for
 * NULL. */
LLMUX_EXTERN int llmux_choice_index(const llmux_choice *c);
/** Its text ("" when none, never NULL); `len` (may be NULL) receives the
 * length in bytes. A chunk's choice holds that event's delta. */
LLMUX_EXTERN const char *llmux_choice_text(const llmux_choice *c, size_t *len);
/** Its reasoning text, or NULL. */
LLMUX_EXTERN const char *llmux_choice_reasoning(const llmux_choice *c);
/** Its refusal message, or NULL. */
LLMUX_EXTERN const char *llmux_choice_refusal(const llmux_choice *c);
/** Why it ended, normalised (LLMUX_FINISH_NONE in a chunk that does not
 * end it). */
LLMUX_EXTERN llmux_finish llmux_choice_finish(const llmux_choice *c);
/** The provider's own finish reason text, or NULL. */
LLMUX_EXTERN const char *llmux_choice_finish_raw(const llmux_choice *c);
/** How many tool calls (or, in a chunk, tool-call deltas) it holds. */
LLMUX_EXTERN size_t llmux_choice_tool_call_count(const llmux_choice *c);
/** The i-th tool call in index order, or NULL when out of range. */
LLMUX_EXTERN const llmux_tool_call *
llmux_choice_tool_call(const llmux_choice *c, size_t i);
/**
 * Whether the provider reported logprobs for `list` of this choice (1),
 * or not (0): a list can be reported and empty.
 */
LLMUX_EXTERN int llmux_choice_has_logprobs(const llmux_choice *c,
                                           llmux_logprobs_list list);
/** How many tokens `list` holds (0 when not reported). */
LLMUX_EXTERN size_t llmux_choice_logprob_count(const llmux_choice *c,
                                               llmux_logprobs_list list);
/** The i-th token of `list`, in order, or NULL when out of range. */
LLMUX_EXTERN const llmux_logprob *
llmux_choice_logprob(const llmux_choice *c, llmux_logprobs_list list, size_t i);
/**
 * A field of the choice or of its message (its delta, in a chunk) that
 * llmux does not model ("annotations", "audio",
 * "content_filter_results" ...) as JSON text, or NULL; the message's is
 * looked up first. Borrowed (valid until the next call for the same
 * choice). A stream's response holds a message's (delta's) fields
 * accumulated as OpenAI's SDKs do: strings appended, arrays extended
 * (elements with the same "index" merged), objects merged member by
 * member, other values replaced; a choice's own fields, restated by each
 * event, hold the last value.
 */
LLMUX_EXTERN const char *llmux_choice_field(const llmux_choice *c,
                                            const char *key);

/** Embeddings: how many vectors, one per input. */
LLMUX_EXTERN size_t llmux_response_embedding_count(const llmux_response *res);
/**
 * Embeddings: the i-th vector, in input order, with its dimension in
 * `*dim` (may be NULL); NULL (and 0) when out of range.
 */
LLMUX_EXTERN const float *llmux_response_embedding(const llmux_response *res,
                                                   size_t i, size_t *dim);

/**
 * Writes `v` in the fewest significant digits that read back as the same
 * value: as a float (single != 0, how embeddings are kept) or a double,
 * with '.' as the decimal point in every locale; how llmux prints numbers
 * in its JSON. `buf` must hold at least 32 bytes (`len`). Returns the
 * length, or -1 for NaN, infinities or a smaller buffer. Thread-safe.
 */
LLMUX_EXTERN int llmux_format_number(char *buf, size_t len, double v,
                                     int single);

/** Model listing: how many model ids. */
LLMUX_EXTERN size_t llmux_response_model_count(const llmux_response *res);
/** Model listing: the i-th model id, or NULL when out of range. */
LLMUX_EXTERN const char *llmux_response_model_id(const llmux_response *res,
                                                 size_t i);

/** Tokenize: how many tokens. */
LLMUX_EXTERN size_t llmux_response_token_count(const llmux_response *res);
/**
 * Tokenize: the i-th token's text (NULL when the provider gave only ids,
 * or out of range) with its id in `*id` (may be NULL; -1 when unknown).
 */
LLMUX_EXTERN const char *llmux_response_token(const llmux_response *res,
                                              size_t i, long long *id);

/** Evaluate (and other provider-specific tasks): the provider's result
 * object as JSON text, or NULL. */
LLMUX_EXTERN const char *llmux_response_result_json(const llmux_response *res);

/**
 * The response as one OpenAI-shaped JSON object: "chat.completion" or
 * "text_completion" with every choice in index order, its logprobs and
 * the fields llmux does not model (llmux_response_field(),
 * llmux_choice_field()) where OpenAI puts them, an embeddings "list" or a
 * models "list"; for tokenize
 * {"tokens":[...],"token_ids":[...]}, for detokenize {"text":"..."}, for
 * evaluate the provider's result object; for a failed request
 * {"error":{...}}. Caller owns the string: free with llmux_free(). NULL
 * for NULL or out of memory.
 */
LLMUX_EXTERN char *llmux_response_to_json(const llmux_response *res);

/* ---- stream chunks ------------------------------------------------------- */

/**
 * This delta's text for choice 0 ("" when none, never NULL); `len` (may
 * be NULL) receives its length in bytes. The reasoning, finish and
 * tool-call accessors below read choice 0 too; llmux_chunk_choice() reads
 * every choice.
 */
LLMUX_EXTERN const char *llmux_chunk_text(const llmux_chunk *ch, size_t *len);
/**
 * The provider's stream event this chunk was decoded from (an SSE event's
 * data, an NDJSON line), NUL-terminated, with its length in `len` (may be
 * NULL); NULL outside a chunk callback's call. Borrowed: valid only during
 * the chunk callback. Not UTF-8-checked: it is what the server sent.
 */
LLMUX_EXTERN const char *llmux_chunk_raw(const llmux_chunk *ch, size_t *len);
/** This delta's reasoning text, or NULL. */
LLMUX_EXTERN const char *llmux_chunk_reasoning(const llmux_chunk *ch);
/** The finish reason, on the chunk that ends the answer; else
 * LLMUX_FINISH_NONE. */
LLMUX_EXTERN llmux_finish llmux_chunk_finish(const llmux_chunk *ch);
/** How many tool-call deltas this chunk carries. */
LLMUX_EXTERN size_t llmux_chunk_tool_call_count(const llmux_chunk *ch);
/**
 * The i-th tool-call delta, or NULL when out of range: append its
 * `arguments` to the call with the same index (id and name come once,
 * usually first). The done callback's response holds the calls whole.
 */
LLMUX_EXTERN const llmux_tool_call *llmux_chunk_tool_call(const llmux_chunk *ch,
                                                          size_t i);
/**
 * How many choices this chunk carries deltas for (0 for a chunk that
 * carries only usage or other top-level fields). With `n` > 1, OpenAI
 * sends one choice per event, interleaved.
 */
LLMUX_EXTERN size_t llmux_chunk_choice_count(const llmux_chunk *ch);
/** The i-th choice of this chunk, in index order, or NULL when out of
 * range. Borrowed: valid during the chunk callback only. */
LLMUX_EXTERN const llmux_choice *llmux_chunk_choice(const llmux_chunk *ch,
                                                    size_t i);
/** A top-level field of this event that llmux does not model, as JSON
 * text, or NULL (see llmux_response_field()). */
LLMUX_EXTERN const char *llmux_chunk_field(const llmux_chunk *ch,
                                           const char *key);
/** Usage if this chunk carries it, else NULL. */
LLMUX_EXTERN const llmux_usage *llmux_chunk_usage(const llmux_chunk *ch);
/** The operation of the stream (chat or complete). */
LLMUX_EXTERN llmux_op llmux_chunk_op(const llmux_chunk *ch);
/**
 * 1 when the stream is replayed from the client's response cache (see
 * llmux_response_cached()), from its first chunk on; 0 otherwise, and
 * for NULL.
 */
LLMUX_EXTERN int llmux_chunk_cached(const llmux_chunk *ch);

/**
 * The chunk as one OpenAI-shaped JSON object ("chat.completion.chunk", or
 * "text_completion" with choices[].text for completions), with each choice
 * the event carried (llmux_chunk_choice()), its logprobs and the fields
 * llmux does not model. Caller owns the
 * string: free with llmux_free(). NULL for NULL or out of memory.
 */
LLMUX_EXTERN char *llmux_chunk_to_json(const llmux_chunk *ch);

LLMUX_END_DECL

#endif /* LLMUX_RESPONSE_H */
