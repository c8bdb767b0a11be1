/*
 * llmux/builtin.h: the in-tree providers linked statically.
 *
 * A program linked with the static libraries (built with
 * -DLLMUX_STATIC=ON; name the archives, since libllmux.so sits beside
 * libllmux.a: `cc app.c $(pkg-config --cflags llmux-providers)
 * LIBDIR/libllmux-providers.a LIBDIR/libllmux.a $(pkg-config --libs
 * libcurl libuv json-c) -lltdl -lpthread`) needs no plugin files for the
 * in-tree providers: it registers them
 * in-process once, and they are then found by name before any plugin
 * directory. Descriptors (groq.conf and the like) still come from the
 * plugin directories and resolve their module to a registered provider.
 */
#ifndef LLMUX_BUILTIN_H
#define LLMUX_BUILTIN_H

#include "common.h"

LLMUX_BEGIN_DECL

/**
 * Registers every provider in libllmux-providers.a (openai, mistral,
 * ollama, alephalpha, azure) with llmux_register_provider(). Defined by
 * that archive only, not by libllmux.so: linking it requires the static
 * providers library. Safe to call more than once; call it before the
 * first request that names one of them. Returns 0, or the first error
 * (LLMUX_EABI when a provider refuses this library's host table, or a
 * code from llmux_register_provider()).
 */
int llmux_register_builtin_providers(void);

LLMUX_END_DECL

#endif /* LLMUX_BUILTIN_H */
