/*
 * llmux/errors.h: error codes and the error record.
 *
 * Every llmux function that can fail returns 0 or a negative llmux code.
 * Codes are never renumbered; retired codes stay reserved.
 */
#ifndef LLMUX_ERRORS_H
#define LLMUX_ERRORS_H

#include "common.h"

/* XX(name, value, message): the single list behind the enum, the names and
 * the messages. Append only. */
#define LLMUX_ERRNO_MAP(XX)                                                    \
    XX(OK, 0, "success")                                                       \
    XX(EINVAL, -1, "invalid argument")                                         \
    XX(ENOMEM, -2, "out of memory")                                            \
    XX(ECONFIG, -3, "bad configuration")                                       \
    XX(ENOPROVIDER, -4, "provider not found")                                  \
    XX(ENOTPLUGIN, -5, "not an llmux plugin")                                  \
    XX(EABI, -6, "plugin ABI mismatch")                                        \
    XX(EPLUGINSIZE, -7, "plugin structure too small")                          \
    XX(EPLUGIN, -8, "broken plugin")                                           \
    XX(ENOKEY, -9, "missing API key")                                          \
    XX(ENOTSUP, -10, "operation not supported by provider")                    \
    XX(ETRANSPORT, -11, "transport error")                                     \
    XX(ETIMEDOUT, -12, "timed out")                                            \
    XX(ETOOBIG, -13, "response too large")                                     \
    XX(EPROVIDER, -14, "provider returned an error")                           \
    XX(EAUTH, -15, "authentication failed")                                    \
    XX(ERATELIMIT, -16, "rate limited")                                        \
    XX(EPROTO, -17, "malformed provider response")                             \
    XX(ECANCELED, -18, "canceled")                                             \
    XX(EUSER, -19, "aborted by callback")                                      \
    XX(EBUSY, -20, "resource busy or wrong thread")                            \
    XX(EQUEUEFULL, -21, "request queue full")

LLMUX_BEGIN_DECL

typedef enum llmux_code {
#define LLMUX__ERR_ENUM(name, value, msg) LLMUX_##name = value,
    LLMUX_ERRNO_MAP(LLMUX__ERR_ENUM)
#undef LLMUX__ERR_ENUM
        LLMUX__ERR_LAST = -22 /* never use: one past the lowest code */
} llmux_code;

/** A human-readable message for `code`. Static string, never NULL. */
LLMUX_EXTERN const char *llmux_strerror(int code);

/** The code's symbolic name, e.g. "LLMUX_EAUTH". Static, never NULL. */
LLMUX_EXTERN const char *llmux_err_name(int code);

/**
 * Classes of error, for callers that only need to know what to do next:
 * fix the call (usage), the provider said no (provider), or the network
 * failed (transport). Mirrors the CLI's exit statuses 2, 1 and 3.
 */
typedef enum llmux_err_class {
    LLMUX_CLASS_NONE = 0,      /**< success */
    LLMUX_CLASS_PROVIDER = 1,  /**< the provider answered with an error */
    LLMUX_CLASS_USAGE = 2,     /**< bad argument, config, plugin, key */
    LLMUX_CLASS_TRANSPORT = 3, /**< connect, timeout, cut stream, size */
    LLMUX_CLASS_LOCAL = 4      /**< canceled, aborted, out of memory,
                                    queue full */
} llmux_err_class;

/** Which class `code` belongs to. */
LLMUX_EXTERN llmux_err_class llmux_err_class_of(int code);

/**
 * Everything known about a failed request. Library-owned and read-only;
 * valid as long as the response that carries it. Fields are only ever
 * appended in later versions.
 */
typedef struct llmux_error {
    int code;             /**< negative llmux code */
    long http_status;     /**< HTTP status, 0 if no response was received */
    int transport;        /**< CURLcode of the failed transfer, or 0 */
    const char *provider; /**< provider name, may be NULL */
    const char *type;     /**< provider error type, may be NULL */
    const char *provider_code; /**< provider error code, may be NULL */
    const char *param;   /**< offending parameter per provider, may be NULL */
    const char *message; /**< provider's own text or transport reason;
                              never NULL, never contains the API key */
    int attempts;        /**< HTTP attempts made, retries included */
    double retry_after;  /**< seconds the server asked to wait, or -1 */
} llmux_error;

/**
 * A copy of `text` with `secret` (an API key) replaced by "***" wherever
 * it can be that key: wherever it appears when it is 8 bytes or longer;
 * a shorter one only as a whole word where a credential is written (after
 * "Bearer", after a name ending in key, token, secret, password or
 * authorization followed by ':' or '=', as the password of a URL).
 * Elsewhere a short "key" such as "ollama" is an ordinary word and stays. llmux applies this to every
 * message and error field it produces; it is exported for programs that
 * print text of their own. Returns NULL for NULL text or out of memory.
 * Caller owns the result: free with llmux_free().
 */
LLMUX_EXTERN char *llmux_mask_secret(const char *text, const char *secret);

LLMUX_END_DECL

#endif /* LLMUX_ERRORS_H */
