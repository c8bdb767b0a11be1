/*
 * tests/plugins/testmod.h: what the test modules share with test_plugins.c
 * (the provider context the `good` module creates in init).
 */
#ifndef LLMUX_TESTMOD_H
#define LLMUX_TESTMOD_H

#define TESTMOD_MAGIC 0x600dU

typedef struct testmod_ctx {
    unsigned magic;   /* TESTMOD_MAGIC */
    char name[64];    /* cfg->name it was created for */
    char flavour[64]; /* descriptor option "flavour", or "" */
    int n_options;    /* cfg->n_options */
    int seq;          /* how many inits the module had, this one included */
} testmod_ctx;

#endif /* LLMUX_TESTMOD_H */
