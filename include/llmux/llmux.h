/**
 * @file llmux/llmux.h
 * The umbrella header. Include this one.
 *
 * `#include <llmux/llmux.h>` brings the whole application API: requests
 * (llmux/request.h), clients and submission (llmux/client.h), responses
 * and stream chunks (llmux/response.h), batches (llmux/batch.h), provider
 * discovery (llmux/providers.h), error codes (llmux/errors.h) and the
 * version (llmux/version.h). Plugin authors include llmux/sys/provider.h
 * instead.
 */
#ifndef LLMUX_LLMUX_H
#define LLMUX_LLMUX_H

#include "common.h"
#include <llmux/version.h> /* generated when llmux was built */
#include "errors.h"
#include "request.h"
#include "response.h"
#include "client.h"
#include "providers.h"
#include "batch.h"
#include "jobs.h"

#endif /* LLMUX_LLMUX_H */
