/*
 * llmux/request.h: building a request.
 *
 * A request names its provider and model with a config string and is
 * filled with typed setters, or from an OpenAI-style chat request JSON.
 * Input strings are always copied, so callers may free theirs at once.
 * Setters return 0 or a negative code; a failing setter records why in
 * llmux_request_errmsg().
 *
 * Config string: "provider/model" or "provider:model", split at the FIRST
 * '/' or ':' (the model keeps the rest: "ollama/llama3:8b"), then optional
 * ";key=value" pairs: base_url, api_key, api_key_env, timeout (seconds),
 * connect_timeout, first_byte_timeout, idle_timeout, max_retries, proxy,
 * ca_file, and any provider option.
 * The long form "provider=openai;model=gpt-4o-mini;base_url=..." works
 * too. Keys are case-insensitive; "{...}" quotes a value holding ';'.
 */
#ifndef LLMUX_REQUEST_H
#define LLMUX_REQUEST_H

#include "common.h"

LLMUX_BEGIN_DECL

/** What a request does. */
typedef enum llmux_op {
    LLMUX_OP_CHAT = 1,       /**< chat completion (messages in) */
    LLMUX_OP_COMPLETE = 2,   /**< text completion (prompt in) */
    LLMUX_OP_EMBED = 3,      /**< embeddings (one or many inputs) */
    LLMUX_OP_MODELS = 4,     /**< list the provider's models */
    LLMUX_OP_TOKENIZE = 5,   /**< prompt -> tokens and token ids */
    LLMUX_OP_DETOKENIZE = 6, /**< token ids -> text */
    LLMUX_OP_EVALUATE = 7    /**< prompt + expected completion -> scores */
} llmux_op;

/** Message roles. */
typedef enum llmux_role {
    LLMUX_ROLE_SYSTEM = 1,
    LLMUX_ROLE_USER = 2,
    LLMUX_ROLE_ASSISTANT = 3,
    LLMUX_ROLE_TOOL = 4,
    LLMUX_ROLE_DEVELOPER = 5
} llmux_role;

/**
 * Creates an empty request for `op` on `spec` (a config string; may be NULL
 * and set later with llmux_request_set_model()). Returns LLMUX_ECONFIG for
 * a bad spec, with *out still created so llmux_request_errmsg() can say
 * which part was wrong; the caller owns *out whenever it is non-NULL and
 * frees it with llmux_request_free().
 */
LLMUX_EXTERN int llmux_request_new(llmux_request **out, llmux_op op,
                                   const char *spec);

/**
 * Creates a chat request from an OpenAI-style chat request JSON (messages,
 * tools, tool_choice, response_format, max_tokens, max_completion_tokens,
 * temperature, top_p, stop, seed, stream; other fields are passed to the
 * provider as they are). `spec` may be NULL when the JSON's "model" names
 * the provider and model ("openai/gpt-4o-mini"); the JSON's "model" may
 * not carry ";key=value" options (base_url, api_key_env, insecure...):
 * request JSON often comes from outside and must not choose endpoints,
 * credentials or TLS settings. Same as llmux_request_new_json_ex() with
 * flags 0. Errors as llmux_request_new(); LLMUX_EINVAL names the bad
 * field. The caller owns *out whenever it is non-NULL.
 */
LLMUX_EXTERN int llmux_request_new_json(llmux_request **out, const char *spec,
                                        const char *json, size_t len);

/** Flag of llmux_request_new_json_ex(): the JSON is the caller's own (a
 * local file, not a network client's), so when `spec` is NULL its "model"
 * may be a whole config string, options included. */
#define LLMUX_JSON_TRUSTED 1u

/** llmux_request_new_json() with flags (LLMUX_JSON_*). */
LLMUX_EXTERN int llmux_request_new_json_ex(llmux_request **out,
                                           const char *spec, const char *json,
                                           size_t len, unsigned flags);

/** Frees a request the caller owns. NULL is a no-op. */
LLMUX_EXTERN void llmux_request_free(llmux_request *req);

/** A copy of `req`, owned by the caller (free with llmux_request_free). */
LLMUX_EXTERN llmux_request *llmux_request_dup(const llmux_request *req);

/** Why the last failing call on `req` failed; "" if none. Borrowed. */
LLMUX_EXTERN const char *llmux_request_errmsg(const llmux_request *req);

/** The request's operation. */
LLMUX_EXTERN llmux_op llmux_request_op(const llmux_request *req);

/** Provider and model named by the config string (borrowed; may be NULL). */
LLMUX_EXTERN const char *llmux_request_provider(const llmux_request *req);
LLMUX_EXTERN const char *llmux_request_model(const llmux_request *req);

/** Sets provider, model and options from a config string. */
LLMUX_EXTERN int llmux_request_set_model(llmux_request *req, const char *spec);

/** Sets one option as if it were in the config string ("base_url", ...). */
LLMUX_EXTERN int llmux_request_set_option(llmux_request *req, const char *key,
                                          const char *value);

/** Appends a message with plain text content (NULL for none). */
LLMUX_EXTERN int llmux_request_add_message(llmux_request *req, llmux_role role,
                                           const char *content);

/** Appends a tool result message answering `tool_call_id`. */
LLMUX_EXTERN int llmux_request_add_tool_result(llmux_request *req,
                                               const char *tool_call_id,
                                               const char *content);

/**
 * Appends an assistant message that made tool calls (for conversation
 * history). `content` may be NULL; each call's arguments is JSON text.
 */
LLMUX_EXTERN int llmux_request_add_tool_calls(llmux_request *req,
                                              const char *content,
                                              const llmux_tool_call *calls,
                                              size_t n);

/** Appends one message given as an OpenAI message JSON object. */
LLMUX_EXTERN int llmux_request_add_message_json(llmux_request *req,
                                                const char *json, size_t len);

/** System prompt: shorthand for a leading system message. */
LLMUX_EXTERN int llmux_request_set_system(llmux_request *req, const char *text);

LLMUX_EXTERN int llmux_request_set_max_tokens(llmux_request *req, long n);
LLMUX_EXTERN int llmux_request_set_temperature(llmux_request *req, double t);
LLMUX_EXTERN int llmux_request_set_top_p(llmux_request *req, double p);
LLMUX_EXTERN int llmux_request_set_seed(llmux_request *req, long long seed);
/** Appends a stop sequence. */
LLMUX_EXTERN int llmux_request_add_stop(llmux_request *req, const char *stop);
/** Non-zero asks for a streamed answer, delivered to the chunk callback. */
LLMUX_EXTERN int llmux_request_set_stream(llmux_request *req, int stream);

/** Adds a function tool; `parameters_json` is a JSON Schema (may be NULL). */
LLMUX_EXTERN int llmux_request_add_tool(llmux_request *req, const char *name,
                                        const char *description,
                                        const char *parameters_json);
/** Replaces all tools with an OpenAI "tools" JSON array. */
LLMUX_EXTERN int llmux_request_set_tools_json(llmux_request *req,
                                              const char *json);
/** "auto", "none", "required", a function name, or a JSON object. */
LLMUX_EXTERN int llmux_request_set_tool_choice(llmux_request *req,
                                               const char *choice);
/** An OpenAI response_format JSON object ({"type":"json_object"} ...). */
LLMUX_EXTERN int llmux_request_set_response_format(llmux_request *req,
                                                   const char *json);

/** Text completion (also tokenize and evaluate): the prompt, and an
 * optional suffix (fill-in-the-middle where the provider supports it). */
LLMUX_EXTERN int llmux_request_set_prompt(llmux_request *req, const char *p);
LLMUX_EXTERN int llmux_request_set_suffix(llmux_request *req, const char *s);

/** Detokenize: appends one token id. */
LLMUX_EXTERN int llmux_request_add_token_id(llmux_request *req, long long id);

/** Evaluate: the completion whose likelihood the provider scores. */
LLMUX_EXTERN int llmux_request_set_expected(llmux_request *req,
                                            const char *text);

/** Embeddings: appends one input string. */
LLMUX_EXTERN int llmux_request_add_input(llmux_request *req, const char *text);

/** Adds a "Name: value" header to this request only. */
LLMUX_EXTERN int llmux_request_add_header(llmux_request *req,
                                          const char *header);
/** Total deadline for this request in ms (0 = client default). */
LLMUX_EXTERN int llmux_request_set_timeout_ms(llmux_request *req, long ms);
/** Stage timeouts for this request in ms (0 = client default): connect,
 * first response byte (headers or first stream event), idle gap between
 * bytes mid-response. The total deadline is llmux_request_set_timeout_ms. */
LLMUX_EXTERN int llmux_request_set_connect_timeout_ms(llmux_request *req,
                                                      long ms);
LLMUX_EXTERN int llmux_request_set_first_byte_timeout_ms(llmux_request *req,
                                                         long ms);
LLMUX_EXTERN int llmux_request_set_idle_timeout_ms(llmux_request *req, long ms);
/**
 * Appends a fallback config string: when the request still fails after its
 * retries with a rate limit, an overload or other 5xx, a timeout, a
 * connection failure or a context-length error, and nothing was streamed
 * to the caller yet, it is sent again to the next fallback (with retries of
 * its own). llmux_response_provider() and llmux_response_fallback() tell
 * which one answered. Fails with LLMUX_ECONFIG for a bad config string.
 */
LLMUX_EXTERN int llmux_request_add_fallback(llmux_request *req,
                                            const char *spec);
/** Retry budget for this request (-1 = client default). */
LLMUX_EXTERN int llmux_request_set_max_retries(llmux_request *req, int n);

/** The userdata passed to llmux_submit(), for use inside callbacks. */
LLMUX_EXTERN void *llmux_request_userdata(const llmux_request *req);

LLMUX_END_DECL

#endif /* LLMUX_REQUEST_H */
