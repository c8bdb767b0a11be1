/*
 * tests/fuzz/fuzz.h: what every fuzz target shares. Each target defines
 * LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize); under
 * LLMUX_FUZZ libFuzzer drives it, otherwise replay.c's main() runs it over
 * the files and directories on its command line.
 */
#ifndef LLMUX_TEST_FUZZ_H
#define LLMUX_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property the target checks: abort (libFuzzer keeps the input). */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* A NUL-terminated copy of d[0..n), to free(). */
static inline char *fuzz_dupz(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL);
    if (n)
        memcpy(s, d, n);
    s[n] = '\0';
    return s;
}

#endif /* LLMUX_TEST_FUZZ_H */
