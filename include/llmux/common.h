/*
 * llmux/common.h: export macros, C/C++ linkage and forward declarations
 * shared by every public llmux header.
 *
 * Users never need <uv.h> to include llmux headers: the loop type is only
 * forward-declared here.
 */
#ifndef LLMUX_COMMON_H
#define LLMUX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define LLMUX_BEGIN_DECL extern "C" {
#define LLMUX_END_DECL   }
#else
#define LLMUX_BEGIN_DECL
#define LLMUX_END_DECL
#endif

/** Marks a symbol exported from libllmux. */
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

/** printf-style format checking where the compiler supports it. */
#if defined(__GNUC__)
#define LLMUX_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LLMUX_PRINTF(fmt, args)
#endif

/* libuv's loop type, forward-declared so <uv.h> is not required. */
struct uv_loop_s;

LLMUX_BEGIN_DECL

typedef struct llmux_client llmux_client;   /**< a connection pool on a loop */
typedef struct llmux_request llmux_request; /**< one operation to run */
typedef struct llmux_response llmux_response; /**< a finished operation */
typedef struct llmux_chunk llmux_chunk;       /**< one streamed delta */

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

/** Frees memory that llmux returned with "free with llmux_free()". */
LLMUX_EXTERN void llmux_free(void *ptr);

LLMUX_END_DECL

#endif /* LLMUX_COMMON_H */
