/**
 * @file llmux/common.h
 * Export macros, C/C++ linkage and forward declarations
 * shared by every public llmux header.
 *
 * Users never need <uv.h> to include llmux headers: the loop type is only
 * forward-declared here.
 *
 * Ownership, for the whole API: a pointer a function returns is borrowed
 * unless its documentation says "caller owns" and names the function that
 * frees it; strings passed in are copied before the call returns, so
 * callers may free theirs at once.
 */
#ifndef LLMUX_COMMON_H
#define LLMUX_COMMON_H

#include <stddef.h>
#include <stdint.h>

/**
 * @def LLMUX_BEGIN_DECL
 * Opens C linkage (`extern "C" {`) in C++; nothing in C. Every llmux
 * header wraps its declarations in LLMUX_BEGIN_DECL ... LLMUX_END_DECL.
 * @def LLMUX_END_DECL
 * Closes what LLMUX_BEGIN_DECL opened.
 */
#ifdef __cplusplus
#define LLMUX_BEGIN_DECL extern "C" {
#define LLMUX_END_DECL   }
#else
#define LLMUX_BEGIN_DECL
#define LLMUX_END_DECL
#endif

/**
 * Marks a function exported from libllmux: default visibility with GCC and
 * clang (the library is built with hidden visibility, so only these are
 * its ABI), dllexport/dllimport on Windows.
 */
#if defined(_WIN32)
#if defined(LLMUX_BUILDING)
#define LLMUX_EXTERN __declspec(dllexport)
#else
#define LLMUX_EXTERN __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define LLMUX_EXTERN __attribute__((visibility("default")))
#else
#define LLMUX_EXTERN
#endif

/**
 * printf-style format checking where the compiler supports it: argument
 * `fmt` is the format and `args` the first checked argument (1-based).
 */
#if defined(__GNUC__)
#define LLMUX_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LLMUX_PRINTF(fmt, args)
#endif

/* libuv's loop type, forward-declared so <uv.h> is not required. */
struct uv_loop_s;

LLMUX_BEGIN_DECL

/** Log levels, a lower level more severe: of the client's logging hook
 * (llmux_client_options.log, llmux/client.h) and of a plugin's host->log
 * (llmux/sys/provider.h), which is why it lives here. */
typedef enum llmux_log_level {
    LLMUX_LOG_ERROR = 0, /**< errors: a plugin's reason for failing a
                              request, a client that cannot close cleanly */
    LLMUX_LOG_WARN = 1,  /**< something to fix (TLS verification off...) */
    LLMUX_LOG_INFO = 2,  /**< retries and fallbacks */
    LLMUX_LOG_DEBUG = 3  /**< each HTTP attempt: method, URL (without query
                              and credentials), status, outcome */
} llmux_log_level;

typedef struct llmux_client llmux_client;     /**< a connection pool on a loop
                                                   (llmux/client.h) */
typedef struct llmux_request llmux_request;   /**< one operation to run
                                                   (llmux/request.h) */
typedef struct llmux_response llmux_response; /**< a finished operation
                                                   (llmux/response.h) */
typedef struct llmux_chunk llmux_chunk;       /**< one streamed delta
                                                   (llmux/response.h) */

/**
 * One tool call: in a response, in a stream delta, or in an assistant
 * message of a request. `arguments` is always a JSON-encoded string (the
 * OpenAI convention), whatever shape the provider used on the wire.
 * In a stream delta any field may be NULL and `arguments` is a fragment to
 * append to the call with the same `index`.
 */
typedef struct llmux_tool_call {
    int index;             /**< position of the call in the message */
    const char *id;        /**< provider's call id, may be NULL */
    const char *name;      /**< function name, may be NULL in deltas */
    const char *arguments; /**< JSON text (or fragment), never NULL */
} llmux_tool_call;

/**
 * Frees memory that llmux returned with "free with llmux_free()" (the JSON
 * of llmux_response_to_json() and llmux_chunk_to_json(), the text of
 * llmux_mask_secret()). It is the library's own free(), so it is safe
 * where the program and libllmux use different C runtimes. NULL is a
 * no-op. Never use it on requests, responses or clients: they have their
 * own free functions.
 */
LLMUX_EXTERN void llmux_free(void *ptr);

LLMUX_END_DECL

#endif /* LLMUX_COMMON_H */
