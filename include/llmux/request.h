/**
 * @file llmux/request.h
 * Building a request.
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
 * connect_timeout, first_byte_timeout, idle_timeout, max_retries,
 * retry_backoff, proxy, ca_file, insecure, auth, rpm, tpm, and any
 * provider option.
 * The long form "provider=openai;model=gpt-4o-mini;base_url=..." works
 * too. Keys are case-insensitive; "{...}" quotes a value holding ';'.
 * A config string is trusted input: it chooses the endpoint, the key and
 * TLS settings, so never build one from text an outsider controls.
 *
 * A request is not thread-safe; before submission it belongs to its
 * creator, after a successful llmux_submit() to the client.
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

/** Message roles, as OpenAI names them. */
typedef enum llmux_role {
    LLMUX_ROLE_SYSTEM = 1,    /**< "system": instructions */
    LLMUX_ROLE_USER = 2,      /**< "user" */
    LLMUX_ROLE_ASSISTANT = 3, /**< "assistant": the model's earlier turns */
    LLMUX_ROLE_TOOL = 4,      /**< "tool": a tool call's result */
    LLMUX_ROLE_DEVELOPER = 5  /**< "developer": instructions (providers
                                   without the role get "system") */
} llmux_role;

/**
 * Creates an empty request for `op` on `spec` (a config string; may be NULL
 * and set later with llmux_request_set_model()). Returns LLMUX_ECONFIG for
 * a bad spec, with *out still created so llmux_request_errmsg() can say
 * which part was wrong; the caller owns *out whenever it is non-NULL and
 * frees it with llmux_request_free(). Returns LLMUX_EINVAL (NULL `out`,
 * unknown `op`) or LLMUX_ENOMEM with *out NULL.
 */
LLMUX_EXTERN int llmux_request_new(llmux_request **out, llmux_op op,
                                   const char *spec);

/**
 * Creates a chat request from an OpenAI-style chat request JSON of `len`
 * bytes (need not be NUL-terminated; messages,
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

/**
 * llmux_request_new_json() with flags (LLMUX_JSON_*; 0 is
 * llmux_request_new_json() itself).
 */
LLMUX_EXTERN int llmux_request_new_json_ex(llmux_request **out,
                                           const char *spec, const char *json,
                                           size_t len, unsigned flags);

/**
 * Creates a request for `op` from the OpenAI-style request JSON of that
 * op, `len` bytes (need not be NUL-terminated):
 * - LLMUX_OP_CHAT: a chat completion body, as llmux_request_new_json_ex();
 * - LLMUX_OP_COMPLETE: a text completion body: prompt (a string, or an
 *   array of one string), suffix, max_tokens, temperature, top_p, stop,
 *   seed, stream; other fields (n, logprobs, echo, best_of, user...) are
 *   passed to the provider as they are;
 * - LLMUX_OP_EMBED: an embeddings body: input (a string or an array of
 *   strings), encoding_format ("float" or "base64": the response holds
 *   numbers either way, a caller answering in base64 encodes them),
 *   dimensions (the provider option of that name); other fields (user...)
 *   are passed to the provider as they are.
 * A key the library reads for another op only (messages or tools in a
 * completion, stream or temperature in embeddings) is LLMUX_EINVAL naming
 * it rather than dropped; several prompts or token-id inputs are
 * LLMUX_ENOTSUP naming the field; a missing prompt or input is
 * LLMUX_EINVAL. `spec`, the JSON's "model" and `flags` (LLMUX_JSON_*) as
 * llmux_request_new_json_ex(). An `op` without such a body (MODELS,
 * TOKENIZE...) is LLMUX_EINVAL with *out NULL; other errors as
 * llmux_request_new_json(). The caller owns *out whenever it is non-NULL
 * and frees it with llmux_request_free(); `json` and `spec` are borrowed
 * for the call.
 */
LLMUX_EXTERN int llmux_request_new_json_op(llmux_request **out, llmux_op op,
                                           const char *spec, const char *json,
                                           size_t len, unsigned flags);

/**
 * Frees a request the caller owns, with every string it holds. NULL is a
 * no-op. Never free a request a client or batch has taken: the library
 * frees those after their done callback.
 */
LLMUX_EXTERN void llmux_request_free(llmux_request *req);

/**
 * A deep copy of `req` (config string, messages, parameters, fallbacks,
 * headers, timeouts), owned by the caller: free with llmux_request_free().
 * The copy is not submitted and has no userdata. NULL for NULL or out of
 * memory.
 */
LLMUX_EXTERN llmux_request *llmux_request_dup(const llmux_request *req);

/**
 * Why the last failing call on `req` failed; "" if none, "invalid request"
 * for NULL. Borrowed from the request: valid until the next call that
 * changes it, or until the request is freed.
 */
LLMUX_EXTERN const char *llmux_request_errmsg(const llmux_request *req);

/** The request's operation; 0 for NULL. */
LLMUX_EXTERN llmux_op llmux_request_op(const llmux_request *req);

/**
 * The provider named by the config string; borrowed from the request, NULL
 * when none is set yet.
 */
LLMUX_EXTERN const char *llmux_request_provider(const llmux_request *req);
/**
 * The model named by the config string; borrowed from the request, NULL
 * when none is set (a model listing needs none).
 */
LLMUX_EXTERN const char *llmux_request_model(const llmux_request *req);

/**
 * Sets provider, model and options from a config string, replacing all
 * three. Core options (timeout=, max_retries=, rpm=...) are checked now.
 * Returns 0, LLMUX_EINVAL, LLMUX_ENOMEM, or LLMUX_ECONFIG with the
 * request's error message naming the wrong part; on failure the request
 * keeps its former config string.
 */
LLMUX_EXTERN int llmux_request_set_model(llmux_request *req, const char *spec);

/**
 * Sets one option as if it were in the config string ("base_url", ...),
 * replacing a former value of the same key; "provider" and "model" set
 * those. `key` must be non-empty and `value` non-NULL. Returns 0,
 * LLMUX_EINVAL, LLMUX_ENOMEM, or LLMUX_ECONFIG (a bad value for a core
 * key, an invalid key, more than 256 options).
 */
LLMUX_EXTERN int llmux_request_set_option(llmux_request *req, const char *key,
                                          const char *value);

/**
 * Appends a message with plain text content (NULL for none). Returns 0,
 * LLMUX_EINVAL (no request, unknown role) or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_add_message(llmux_request *req, llmux_role role,
                                           const char *content);

/*
 * Typed content parts. Each call appends one part to the content of the
 * last message when it has `role` (and is no tool call or tool result),
 * else to a new message of `role`; a plain text content becomes the first
 * text part. The content is kept in OpenAI's shape (an array of parts)
 * and each provider's plugin translates it, or refuses a part its API
 * cannot take with LLMUX_ENOTSUP naming it at llmux_submit(): Ollama takes
 * images as bytes only, Mistral no files as bytes, Aleph Alpha images only,
 * OpenAI (and Azure, and the servers of its descriptors) no document URLs.
 * Bytes are copied (base64-encoded). Each returns 0, LLMUX_EINVAL (no
 * request, an unknown role, a bad argument as described) or LLMUX_ENOMEM.
 */

/** A text part. */
LLMUX_EXTERN int llmux_request_add_text_part(llmux_request *req,
                                             llmux_role role, const char *text);
/** An image by URL: http(s):// or a data: URL; `detail` NULL, "auto",
 * "low" or "high". */
LLMUX_EXTERN int llmux_request_add_image_url(llmux_request *req,
                                             llmux_role role, const char *url,
                                             const char *detail);
/** An image's bytes with its MIME type ("image/png", "image/jpeg" ...),
 * sent as a data: URL; `detail` as for llmux_request_add_image_url(). */
LLMUX_EXTERN int llmux_request_add_image(llmux_request *req, llmux_role role,
                                         const char *mime, const void *bytes,
                                         size_t len, const char *detail);
/** Input audio: its bytes and `format`, "wav" or "mp3". */
LLMUX_EXTERN int llmux_request_add_audio(llmux_request *req, llmux_role role,
                                         const char *format, const void *bytes,
                                         size_t len);
/** A file (a PDF ...): its name, MIME type and bytes. */
LLMUX_EXTERN int llmux_request_add_file(llmux_request *req, llmux_role role,
                                        const char *filename, const char *mime,
                                        const void *bytes, size_t len);
/** A file uploaded before through the provider's file API, by the id it
 * gave (OpenAI's "file-...", Mistral's UUID). */
LLMUX_EXTERN int llmux_request_add_file_id(llmux_request *req, llmux_role role,
                                           const char *file_id);
/** A document (a PDF ...) by its http(s) URL, for the provider to fetch,
 * with an optional `name` (NULL, or not empty). OpenAI's chat API has no
 * such part: this is Mistral's document_url, and the OpenAI-shaped
 * plugins refuse it. */
LLMUX_EXTERN int llmux_request_add_document_url(llmux_request *req,
                                                llmux_role role,
                                                const char *url,
                                                const char *name);

/**
 * Appends a tool result message answering `tool_call_id` (required) with
 * `content` (NULL reads as ""). Returns 0, LLMUX_EINVAL or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_add_tool_result(llmux_request *req,
                                               const char *tool_call_id,
                                               const char *content);

/**
 * Appends an assistant message that made tool calls (for conversation
 * history). `content` may be NULL; `calls` is an array of `n` calls, each
 * with a name and arguments (JSON text), and an id where the provider gave
 * one. Everything is copied; the calls are numbered by their position.
 * Returns 0, LLMUX_EINVAL (a call without name or arguments) or
 * LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_add_tool_calls(llmux_request *req,
                                              const char *content,
                                              const llmux_tool_call *calls,
                                              size_t n);

/**
 * Sets one field of the request by its name in OpenAI's request JSON, to
 * `json_value`, one JSON value as text ("0.2", "[\"END\"]", "\"auto\"",
 * "{\"50256\": -100}"). A field llmux models (max_tokens,
 * max_completion_tokens, temperature, top_p, seed, stop, stream, tools,
 * tool_choice, response_format) is read as llmux_request_new_json() reads
 * it, with the same checks, and the provider translates it as it does its
 * setter's value; setting it again replaces it (a "stop" list too). Any
 * other field is kept and merged into the provider's request body as
 * given (Ollama puts the names of its sampling options under "options");
 * a plugin leaves out a field it sets itself or one its API refuses (the
 * README lists them per provider). "model", "messages" and
 * "stream_options" are refused: use
 * the config string, the message functions and nothing (usage is always
 * asked for). `req`, `key` and `json_value` are borrowed for the call.
 * Returns 0, LLMUX_EINVAL (a refused key, a value that is not one JSON
 * value, or one the field does not take; the error message names the
 * field) or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_set_field(llmux_request *req, const char *key,
                                         const char *json_value);

/**
 * Appends one message given as an OpenAI message JSON object of `len`
 * bytes: role, content (a string, or parts kept as JSON), name,
 * tool_call_id (required for role "tool"), tool_calls, reasoning_content.
 * Returns 0, LLMUX_EINVAL (invalid JSON or message; the error message
 * says which field) or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_add_message_json(llmux_request *req,
                                                const char *json, size_t len);

/**
 * System prompt: shorthand for a leading system message. Replaces the
 * text of the first message when it is a system message, else inserts
 * one before all others. `text` must be non-NULL.
 */
LLMUX_EXTERN int llmux_request_set_system(llmux_request *req, const char *text);

/*
 * Sampling parameters. Each is sent only once set (llmux_params.has), in
 * the provider's own field; a provider that has no such field ignores it.
 * Each returns 0, or LLMUX_EINVAL for no request or a value out of range.
 */
/** The most tokens to generate, `n` >= 0. */
LLMUX_EXTERN int llmux_request_set_max_tokens(llmux_request *req, long n);
/** Sampling temperature, 0 to 10 (providers may allow less). */
LLMUX_EXTERN int llmux_request_set_temperature(llmux_request *req, double t);
/** Nucleus sampling: the probability mass to sample from, 0 to 1. */
LLMUX_EXTERN int llmux_request_set_top_p(llmux_request *req, double p);
/** Seed for providers that sample reproducibly; any value. */
LLMUX_EXTERN int llmux_request_set_seed(llmux_request *req, long long seed);
/** Appends a stop sequence (non-NULL; copied). */
LLMUX_EXTERN int llmux_request_add_stop(llmux_request *req, const char *stop);
/**
 * Non-zero asks for a streamed answer, delivered to the chunk callback;
 * the done callback still gets the whole response. A provider without
 * LLMUX_CAP_STREAM makes llmux_submit() fail with LLMUX_ENOTSUP.
 */
LLMUX_EXTERN int llmux_request_set_stream(llmux_request *req, int stream);

/**
 * Appends a function tool named `name` (non-empty) with an optional
 * `description`; `parameters_json` is a JSON Schema object (NULL: no
 * parameters). Returns 0, LLMUX_EINVAL (parameters not a JSON object) or
 * LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_add_tool(llmux_request *req, const char *name,
                                        const char *description,
                                        const char *parameters_json);
/**
 * Replaces all tools with an OpenAI "tools" JSON array; NULL removes
 * them. Returns 0, LLMUX_EINVAL (not a JSON array) or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_set_tools_json(llmux_request *req,
                                              const char *json);
/**
 * Tool choice: "auto", "none", "required", a function name (the model must
 * call it), or JSON text starting with '{' or '"' sent as it is; NULL
 * removes it. Returns 0, LLMUX_EINVAL (invalid JSON) or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_set_tool_choice(llmux_request *req,
                                               const char *choice);
/**
 * An OpenAI response_format JSON object ({"type":"json_object"}, or
 * "json_schema" with its schema); NULL removes it. Returns 0,
 * LLMUX_EINVAL (not a JSON object) or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_set_response_format(llmux_request *req,
                                                   const char *json);

/**
 * Text completion (also tokenize and evaluate): the prompt, non-NULL,
 * replacing a former one. Returns 0, LLMUX_EINVAL or LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_set_prompt(llmux_request *req, const char *p);
/**
 * Text completion: an optional suffix after the insertion point
 * (fill-in-the-middle where the provider supports it); NULL removes it.
 */
LLMUX_EXTERN int llmux_request_set_suffix(llmux_request *req, const char *s);

/** Detokenize: appends one token id (>= 0, else LLMUX_EINVAL). */
LLMUX_EXTERN int llmux_request_add_token_id(llmux_request *req, long long id);

/**
 * Evaluate: the completion whose likelihood after the prompt the provider
 * scores; non-NULL.
 */
LLMUX_EXTERN int llmux_request_set_expected(llmux_request *req,
                                            const char *text);

/** Embeddings: appends one input string (non-NULL; copied). */
LLMUX_EXTERN int llmux_request_add_input(llmux_request *req, const char *text);

/**
 * Adds a "Name: value" header to this request only, sent after the
 * client's headers. Returns LLMUX_EINVAL for anything but one such line.
 */
LLMUX_EXTERN int llmux_request_add_header(llmux_request *req,
                                          const char *header);
/**
 * Total deadline for this request in ms, retries and fallbacks included
 * (0 = the config string's timeout=, else the client's). Returns 0, or
 * LLMUX_EINVAL for a negative value.
 */
LLMUX_EXTERN int llmux_request_set_timeout_ms(llmux_request *req, long ms);
/*
 * Stage timeouts for this request in ms (0 = the config string's key,
 * else the client's option): connect, first response byte (headers or
 * first stream event), idle gap between bytes mid-response. The total
 * deadline is llmux_request_set_timeout_ms(). Each returns 0, or
 * LLMUX_EINVAL for a negative value.
 */
/** Connect timeout in ms for each attempt (0 = connect_timeout=, else the
 * client's connect_timeout_ms, 10 s by default). */
LLMUX_EXTERN int llmux_request_set_connect_timeout_ms(llmux_request *req,
                                                      long ms);
/** Wait in ms for the first response byte, headers or first stream event
 * (0 = first_byte_timeout=, else the client's; none by default). */
LLMUX_EXTERN int llmux_request_set_first_byte_timeout_ms(llmux_request *req,
                                                         long ms);
/** Longest silence in ms mid-response, after a whole reply's headers or
 * between stream events (0 = idle_timeout=, else the client's; none by
 * default). */
LLMUX_EXTERN int llmux_request_set_idle_timeout_ms(llmux_request *req, long ms);
/**
 * Appends a fallback config string: when the request still fails after its
 * retries with a rate limit, an overload or other 5xx, a timeout, a
 * connection failure or a context-length error, and nothing was streamed
 * to the caller yet, it is sent again to the next fallback.
 * The fallback's settings are resolved as the request's were (the
 * request's setters, then the fallback's config string, then the client's
 * options): its retry budget, timeouts, TLS settings and rate limits
 * apply to it; its timeout= counts from submission and may only end the
 * request earlier. llmux_response_provider() and llmux_response_fallback()
 * tell which one answered. Fails with LLMUX_ECONFIG for a bad config
 * string.
 */
LLMUX_EXTERN int llmux_request_add_fallback(llmux_request *req,
                                            const char *spec);
/**
 * Retry budget for this request, 0 to 100 (-1 = the config string's
 * max_retries=, else the client's). Returns 0, or LLMUX_EINVAL out of
 * range.
 */
LLMUX_EXTERN int llmux_request_set_max_retries(llmux_request *req, int n);
/**
 * Charges the request to the budget scope `scope` (a user, a tenant, a
 * gateway's virtual key: 1 to 128 printable ASCII characters without
 * spaces; copied) besides the client's budget_usd and its config string's
 * budget_usd=: llmux_submit() refuses it with LLMUX_EBUDGET, its message
 * naming the scope, once what the scope's answers cost, plus what its
 * requests in flight may still cost, reaches `usd`. The scope is this
 * client's; with the config string's `limits=` (or the client's option
 * `limits`) a Redis URL, it is shared by every process naming it on that
 * server, and a scope this process has not read lately is read before the
 * request starts (its done callback then ends it with LLMUX_EBUDGET when
 * the scope is spent). `window_ms` above 0 makes it a spend per window:
 * what was spent counts from the last multiple of window_ms since the
 * Unix epoch (86400000: a UTC day); 0: the spend never resets. The last
 * request naming a scope sets its limit and window. With a Redis
 * `limits`, the same name as a client's budget_scope is the same scope
 * (in one process alone they are two). NULL scope clears it. Returns
 * 0, or LLMUX_EINVAL (a bad name, usd not above 0, a negative window),
 * LLMUX_ENOMEM.
 */
LLMUX_EXTERN int llmux_request_set_budget(llmux_request *req, const char *scope,
                                          double usd, long window_ms);

/**
 * The userdata passed to llmux_submit(), for use inside callbacks; NULL
 * before submission. Requests run by a batch, and the copy llmux_run()
 * runs, carry the library's own value here.
 */
LLMUX_EXTERN void *llmux_request_userdata(const llmux_request *req);

LLMUX_END_DECL

#endif /* LLMUX_REQUEST_H */
