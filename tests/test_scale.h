/*
 * tests/test_scale.h: how much of an exhaustive or randomized loop a test
 * runs. Natively and under ASan the loops run in full (every split offset,
 * every random round); under valgrind memcheck, 20-50 times slower, they
 * take an even sample instead, so the valgrind-labelled tests stay within
 * CI's time while still running every code path.
 */
#ifndef LLMUX_TESTS_TEST_SCALE_H
#define LLMUX_TESTS_TEST_SCALE_H

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define LLMUX_TEST_ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef LLMUX_TEST_ON_VALGRIND
#define LLMUX_TEST_ON_VALGRIND() 0
#endif

/* n rounds natively; n / div (at least 1) under valgrind. */
#define LLMUX_TEST_REPS(n, div)                                                \
    (LLMUX_TEST_ON_VALGRIND() ? ((n) / (div) > 0 ? (n) / (div) : 1) : (n))

/* The step between tried offsets: 1 natively (every one), k under
 * valgrind. */
#define LLMUX_TEST_STRIDE(k) (LLMUX_TEST_ON_VALGRIND() ? (size_t)(k) : 1u)

#endif
