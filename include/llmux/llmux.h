/*
 * llmux/llmux.h: the umbrella header. Include this one.
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

#endif /* LLMUX_LLMUX_H */
