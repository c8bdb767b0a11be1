/*
 * tests/fuzz/fuzz_register.h: the plugin compiled into a fuzz target.
 */
#ifndef LLMUX_TEST_FUZZ_REGISTER_H
#define LLMUX_TEST_FUZZ_REGISTER_H

#include "fuzz.h"
#include "internal.h"

/* Registers the plugin linked into this binary and returns its table;
 * aborts when the core refuses it. */
const llmux_provider *fuzz_register_plugin(void);

#endif /* LLMUX_TEST_FUZZ_REGISTER_H */
