/*
 * core/errors.c: error names, messages and classes, generated from the one
 * LLMUX_ERRNO_MAP list; plus the run-time version.
 */
#include "internal.h"

LLMUX_EXTERN const char *llmux_strerror(int code)
{
    switch (code) {
#define LLMUX__ERR_STR(name, value, msg)                                       \
    case value:                                                                \
        return msg;
        LLMUX_ERRNO_MAP(LLMUX__ERR_STR)
#undef LLMUX__ERR_STR
    }
    return "unknown error";
}

LLMUX_EXTERN const char *llmux_err_name(int code)
{
    switch (code) {
#define LLMUX__ERR_NAME(name, value, msg)                                      \
    case value:                                                                \
        return "LLMUX_" #name;
        LLMUX_ERRNO_MAP(LLMUX__ERR_NAME)
#undef LLMUX__ERR_NAME
    }
    return "LLMUX_UNKNOWN";
}

LLMUX_EXTERN llmux_err_class llmux_err_class_of(int code)
{
    switch (code) {
    case LLMUX_OK:
        return LLMUX_CLASS_NONE;
    case LLMUX_EPROVIDER:
    case LLMUX_EAUTH:
    case LLMUX_ERATELIMIT:
    case LLMUX_EPROTO:
        return LLMUX_CLASS_PROVIDER;
    case LLMUX_ETRANSPORT:
    case LLMUX_ETIMEDOUT:
    case LLMUX_ETOOBIG:
    case LLMUX_ELIMITS:
        return LLMUX_CLASS_TRANSPORT;
    case LLMUX_ECANCELED:
    case LLMUX_EUSER:
    case LLMUX_ENOMEM:
    case LLMUX_EBUSY:
    case LLMUX_EQUEUEFULL:
    case LLMUX_EBUDGET:
        return LLMUX_CLASS_LOCAL;
    default:
        return LLMUX_CLASS_USAGE;
    }
}

LLMUX_EXTERN unsigned int llmux_version(void)
{
    return LLMUX_VERSION_NUM;
}

LLMUX_EXTERN const char *llmux_version_string(void)
{
    return LLMUX_VERSION_STRING;
}
