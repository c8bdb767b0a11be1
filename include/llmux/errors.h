/**
 * @file llmux/errors.h
 * Error codes and the error record.
 *
 * Every llmux function that can fail returns 0 or a negative llmux code.
 * Codes are never renumbered; retired codes stay reserved.
 */
#ifndef LLMUX_ERRORS_H
#define LLMUX_ERRORS_H

#include "common.h"

/**
 * The single list behind #llmux_code, llmux_err_name() and
 * llmux_strerror(): XX(name, value, message) once per code, `name` without
 * its LLMUX_ prefix. Append only. Programs may expand it with an XX of
 * their own, to build a table of the codes for instance.
 */
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
    XX(EQUEUEFULL, -21, "request queue full")                                  \
    XX(EBUDGET, -22, "spend limit reached")                                   \
    XX(ELIMITS, -23, "shared limits unavailable")

LLMUX_BEGIN_DECL

/**
 * The llmux return codes: 0 for success, negative for failure. Functions
 * return them as `int`; llmux_err_class_of() sorts them by what to do
 * next.
 */
typedef enum llmux_code {
#define LLMUX__ERR_ENUM(name, value, msg) LLMUX_##name = value,
    LLMUX_ERRNO_MAP(LLMUX__ERR_ENUM)
#undef LLMUX__ERR_ENUM
        LLMUX__ERR_LAST = -24 /**< not a code: one past the lowest code,
                                   for range checks; never use */
} llmux_code;

/** @var LLMUX_OK
 * Success. */
/** @var LLMUX_EINVAL
 * An argument is invalid: a NULL that may not be NULL, a value out of
 * range, malformed JSON, a request that lacks what its operation needs. */
/** @var LLMUX_ENOMEM
 * An allocation failed. */
/** @var LLMUX_ECONFIG
 * A config string, one of its options or a descriptor (.conf) is wrong;
 * the message names the part. */
/** @var LLMUX_ENOPROVIDER
 * No provider of that name in-process or in any plugin directory; the
 * message lists the directories searched. */
/** @var LLMUX_ENOTPLUGIN
 * The module loads but exports no `llmux_provider_entry`. */
/** @var LLMUX_EABI
 * The plugin refused the host ABI, or its provider table has another
 * abi_version than the core's #LLMUX_PROVIDER_ABI. */
/** @var LLMUX_EPLUGINSIZE
 * The plugin's provider table is smaller than the first ABI version's
 * (#LLMUX_PROVIDER_V1_SIZE). */
/** @var LLMUX_EPLUGIN
 * A plugin is broken: it cannot be loaded, lacks a required field or hook,
 * its init hook failed, or a hook returned something it may not. */
/** @var LLMUX_ENOKEY
 * The provider needs an API key and none was found in the config string
 * or the environment variable it names. */
/** @var LLMUX_ENOTSUP
 * The provider does not support the operation (or streaming), or the
 * plugin cannot express the request. */
/** @var LLMUX_ETRANSPORT
 * The transfer failed: no connection, a reset, a cut or truncated body.
 * llmux_error.transport holds the CURLcode. */
/** @var LLMUX_ETIMEDOUT
 * A timeout fired (total, connect, first byte or idle); the message names
 * the one. */
/** @var LLMUX_ETOOBIG
 * The answer crossed max_response_bytes, or one stream event or line
 * crossed max_event_bytes. */
/** @var LLMUX_EPROVIDER
 * The provider answered with an error: an HTTP error status other than
 * 401, 403 and 429, an error body under 2xx, or an error inside a stream.
 */
/** @var LLMUX_EAUTH
 * The provider refused the credentials (HTTP 401 or 403). */
/** @var LLMUX_ERATELIMIT
 * The provider rate-limited the request (HTTP 429) and no retry was left.
 */
/** @var LLMUX_EPROTO
 * The provider's answer is not what its protocol says: a body or event
 * that does not decode. */
/** @var LLMUX_ECANCELED
 * The request was cancelled: llmux_request_cancel(), llmux_client_close(),
 * llmux_batch_cancel(), a batch's fail_fast or a lost race; also a
 * submission to a closing client. */
/** @var LLMUX_EUSER
 * The chunk callback returned non-zero and so stopped the stream. */
/** @var LLMUX_EBUSY
 * Not now: a request already submitted (or already in a batch), or a
 * blocking call (llmux_run(), llmux_gather_run()) made from inside an
 * llmux callback. */
/** @var LLMUX_EQUEUEFULL
 * llmux_submit() found max_queue requests already waiting. */
/** @var LLMUX_EBUDGET
 * A budget the request is charged to (the client's budget_usd, its
 * config string's budget_usd=, its llmux_request_set_budget() scope) is
 * spent, with what requests in flight may still spend: from
 * llmux_submit(), or from the done callback of a request that waited
 * for a shared budget's total. The message names the budget. */
/** @var LLMUX_ELIMITS
 * The shared limits or budgets (limits=redis://...) could not be asked:
 * Redis is unreachable or did not answer in time, and limits_fallback is
 * closed. The message names the backend (its password masked) and what
 * failed. */

/**
 * A human-readable message for `code` ("invalid argument"), or "unknown
 * error" for a value that is no llmux code. Static string, never NULL.
 * Callable from any thread.
 */
LLMUX_EXTERN const char *llmux_strerror(int code);

/**
 * The code's symbolic name, such as "LLMUX_EAUTH", or "LLMUX_UNKNOWN" for a
 * value that is no llmux code. Static string, never NULL.
 */
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
                                    queue full, budget spent */
} llmux_err_class;

/**
 * Which class `code` belongs to: 0 is #LLMUX_CLASS_NONE; the provider's
 * refusals (EPROVIDER, EAUTH, ERATELIMIT, EPROTO) are
 * #LLMUX_CLASS_PROVIDER; ETRANSPORT, ETIMEDOUT, ETOOBIG and ELIMITS are
 * #LLMUX_CLASS_TRANSPORT; ECANCELED, EUSER, ENOMEM, EBUSY, EQUEUEFULL and
 * EBUDGET are #LLMUX_CLASS_LOCAL; every other value, unknown ones included, is
 * #LLMUX_CLASS_USAGE.
 */
LLMUX_EXTERN llmux_err_class llmux_err_class_of(int code);

/**
 * Everything known about a failed request (llmux_response_error()).
 * Library-owned and read-only; it and its strings are valid as long as the
 * response that carries it. Every string is valid UTF-8. Fields are only
 * ever appended in later versions.
 */
typedef struct llmux_error {
    int code;             /**< negative llmux code */
    long http_status;     /**< HTTP status, 0 if no response was received */
    int transport;        /**< CURLcode of the failed transfer, or 0 */
    const char *provider; /**< provider name as the config string that
                               answered gave it, may be NULL */
    const char *type;     /**< provider error type, may be NULL */
    const char *provider_code; /**< provider error code, may be NULL */
    const char *param;   /**< offending parameter per provider, may be NULL */
    const char *message; /**< provider's own text or transport reason;
                              never NULL, never contains the API key */
    int attempts;        /**< HTTP attempts made with the config string that
                              answered, retries included */
    double retry_after;  /**< seconds the server asked to wait (Retry-After,
                              retry-after-ms), or -1 */
} llmux_error;

/**
 * A copy of `text` with `secret` (an API key) replaced by "***" wherever
 * it can be that key: wherever it appears when it is 8 bytes or longer;
 * a shorter one only as a whole word where a credential is written (after
 * "Bearer", after a name ending in key, token, secret, password or
 * authorization followed by ':' or '=', as the password of a URL).
 * Elsewhere a short "key" such as "ollama" is an ordinary word and stays.
 * llmux applies this to every message and error field it produces; it is
 * exported for programs that print text of their own. A NULL or empty
 * `secret` gives an unchanged copy. Returns NULL for NULL text or out of
 * memory. Caller owns the result: free with llmux_free().
 */
LLMUX_EXTERN char *llmux_mask_secret(const char *text, const char *secret);

LLMUX_END_DECL

#endif /* LLMUX_ERRORS_H */
