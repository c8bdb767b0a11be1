/*
 * tests/plugins/testmod.c: the test modules, one source built several
 * times with one TESTMOD_<KIND> defined: a minimal valid provider (GOOD,
 * and LTXMOD which only exports the "<module>_LTX_" entry) and modules
 * broken in exactly one way each (BAD_ABI, SHORT_STRUCT, NO_ENTRY,
 * NULL_ENTRY, MISSING_HOOK, INIT_FAILS). V1 is a valid module whose table
 * says it is as long as the first version (LLMUX_PROVIDER_V1_SIZE), as a
 * plugin built against the first header is: the members after it hold
 * poison the core must never read.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/sys/provider.h>

#include "testmod.h"

#if defined(TESTMOD_GOOD)
#define KIND "good"
#elif defined(TESTMOD_LTXMOD)
#define KIND "ltxmod"
#elif defined(TESTMOD_BAD_ABI)
#define KIND "bad_abi"
#elif defined(TESTMOD_SHORT_STRUCT)
#define KIND "short_struct"
#elif defined(TESTMOD_NO_ENTRY)
#define KIND "no_entry"
#elif defined(TESTMOD_NULL_ENTRY)
#define KIND "null_entry"
#elif defined(TESTMOD_MISSING_HOOK)
#define KIND "missing_hook"
#elif defined(TESTMOD_INIT_FAILS)
#define KIND "init_fails"
#elif defined(TESTMOD_V1)
#define KIND "v1"
#else
#error "define one TESTMOD_<KIND>"
#endif

static const llmux_host *host;
static int inits;

static void copy(char *dst, size_t len, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= len)
        n = len - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static int tm_init(const llmux_host *h, const llmux_provider_config *cfg,
                   void **provctx)
{
    testmod_ctx *c;
    size_t i;
#ifdef TESTMOD_INIT_FAILS
    (void)h;
    (void)cfg;
    (void)provctx;
    return -42;
#endif
    c = h->alloc(sizeof *c);
    if (!c)
        return -2;
    memset(c, 0, sizeof *c);
    c->magic = TESTMOD_MAGIC;
    copy(c->name, sizeof c->name, cfg->name);
    for (i = 0; i < cfg->n_options; i++)
        if (strcmp(cfg->options[i].key, "flavour") == 0)
            copy(c->flavour, sizeof c->flavour, cfg->options[i].value);
    c->n_options = (int)cfg->n_options;
    c->seq = ++inits;
    *provctx = c;
    return 0;
}

static void tm_teardown(void *provctx)
{
    testmod_ctx *c = provctx;
    if (c) {
        c->magic = 0;
        host->free(c);
    }
}

#ifndef TESTMOD_MISSING_HOOK
static int tm_encode(void *provctx, llmux_call *call, llmux_http_request *r)
{
    (void)provctx;
    (void)call;
#ifdef TESTMOD_V1
    return host->http_path(r, "/chat");
#else
    (void)r;
    return 0;
#endif
}
#endif

static int tm_decode(void *provctx, llmux_call *call,
                     const llmux_http_response *resp, llmux_out *out)
{
    (void)provctx;
    (void)call;
    (void)resp;
    (void)out;
    return 0;
}

static int tm_decode_event(void *provctx, llmux_call *call,
                           const llmux_event *ev, llmux_out *out)
{
    (void)provctx;
    (void)call;
    (void)ev;
    (void)out;
    return LLMUX_EVENT_DONE;
}

#ifdef TESTMOD_V1
/* Beyond a version-1 table: a core that calls these read past it. */
static int poison_rate_limits(void *provctx, const llmux_http_response *r,
                              llmux_rate_limits *out)
{
    (void)provctx;
    (void)r;
    (void)out;
    abort();
}
static int poison_classify(void *provctx, long status, const char *type,
                           const char *code, const char *message)
{
    (void)provctx;
    (void)status;
    (void)type;
    (void)code;
    (void)message;
    abort();
}
/* an options list that takes no key: a core reading it would refuse the
 * test's option */
static const llmux_option_def poison_options[] = {{NULL, 0}};
#endif

static const llmux_provider table = {
#ifdef TESTMOD_BAD_ABI
    .abi_version = 999,
#else
    .abi_version = LLMUX_PROVIDER_ABI,
#endif
#ifdef TESTMOD_SHORT_STRUCT
    .struct_size = offsetof(llmux_provider, decode),
#elif defined(TESTMOD_V1)
    .struct_size = LLMUX_PROVIDER_V1_SIZE,
    .default_port = 1,
    .rate_limits = poison_rate_limits,
    .classify_error = poison_classify,
    .options = poison_options,
#else
    .struct_size = sizeof(llmux_provider),
#endif
    .name = KIND,
    .version = "1.2.3",
    .description = "test module " KIND,
    .caps = LLMUX_CAP_CHAT | LLMUX_CAP_STREAM | LLMUX_CAP_MODELS,
    .framing = LLMUX_FRAMING_SSE,
    .auth = LLMUX_AUTH_OPTIONAL,
    .default_base_url = "http://" KIND ".invalid/v1",
    .api_key_env = "TESTMOD_API_KEY",
    .base_url_env = "TESTMOD_BASE_URL",
    .init = tm_init,
    .teardown = tm_teardown,
#ifndef TESTMOD_MISSING_HOOK
    .encode = tm_encode,
#endif
    .decode = tm_decode,
    .decode_event = tm_decode_event,
};

#if defined(TESTMOD_NO_ENTRY)
/* Exports nothing: every symbol is hidden. */
const llmux_provider *testmod_unused(void);
const llmux_provider *testmod_unused(void)
{
    return &table;
}
#elif defined(TESTMOD_NULL_ENTRY)
LLMUX_PLUGIN_EXPORT const llmux_provider *
llmux_provider_entry(const llmux_host *h, uint32_t abi);
const llmux_provider *llmux_provider_entry(const llmux_host *h, uint32_t abi)
{
    (void)h;
    (void)abi;
    (void)table;
    return NULL; /* refuses every host */
}
#elif defined(TESTMOD_LTXMOD)
/* Only the libtool-prefixed name, as if built for dlpreopening. */
LLMUX_PLUGIN_EXPORT const llmux_provider *
ltxmod_LTX_llmux_provider_entry(const llmux_host *h, uint32_t abi);
const llmux_provider *ltxmod_LTX_llmux_provider_entry(const llmux_host *h,
                                                      uint32_t abi)
{
    if (abi != LLMUX_HOST_ABI || !h)
        return NULL;
    host = h;
    return &table;
}
#else
LLMUX_DEFINE_PROVIDER(table, host)
#endif
