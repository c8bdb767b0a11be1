/*
 * tests/fuzz/fuzz_config.c: the config-string parser (llmux__config_parse,
 * core/config.c) and the URL userinfo finder it uses to hide passwords.
 *
 * Input: the config string (cut at its first NUL, as a C string is). On
 * success the result must follow the documented rules: a provider made of
 * [A-Za-z0-9_.-], a model that is absent or non-empty and free of control
 * characters, unique lower-cased keys that llmux__config_get finds, and a
 * copy equal to the original. On failure: LLMUX_ECONFIG, an empty result
 * and a one-line message that fits the buffer.
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static void check_parsed(const llmux__config *c)
{
    const char *s;
    size_t i, j;
    llmux__config copy;

    FUZZ_CHECK(c->provider && *c->provider);
    for (s = c->provider; *s; s++)
        FUZZ_CHECK(name_char(*s));
    if (c->model) {
        FUZZ_CHECK(*c->model);
        for (s = c->model; *s; s++)
            FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
    }
    for (i = 0; i < c->n_opts; i++) {
        const char *k = c->opts[i].key;
        FUZZ_CHECK(k && *k && c->opts[i].value);
        for (s = k; *s; s++)
            FUZZ_CHECK(name_char(*s) && !(*s >= 'A' && *s <= 'Z'));
        FUZZ_CHECK(strcmp(k, "provider") != 0 && strcmp(k, "model") != 0);
        for (j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(c->opts[j].key, k) != 0);
        FUZZ_CHECK(llmux__config_get(c, k) == c->opts[i].value);
    }
    FUZZ_CHECK(llmux__config_copy(&copy, c) == 0);
    FUZZ_CHECK(strcmp(copy.provider, c->provider) == 0);
    FUZZ_CHECK(!copy.model == !c->model);
    FUZZ_CHECK(!c->model || strcmp(copy.model, c->model) == 0);
    FUZZ_CHECK(copy.n_opts == c->n_opts);
    for (i = 0; i < c->n_opts; i++) {
        FUZZ_CHECK(strcmp(copy.opts[i].key, c->opts[i].key) == 0);
        FUZZ_CHECK(strcmp(copy.opts[i].value, c->opts[i].value) == 0);
    }
    /* replacing a value keeps one entry per key */
    FUZZ_CHECK(llmux__config_set(&copy, "Timeout", "1") == 0);
    FUZZ_CHECK(strcmp(llmux__config_get(&copy, "timeout"), "1") == 0);
    llmux__config_free(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 1), err[LLMUX__ERRBUF];
    llmux__config c;
    size_t a, b;
    int rc;

    FUZZ_CHECK(spec != NULL);
    memcpy(spec, data, size);
    spec[size] = '\0';
    if (llmux__url_userinfo(spec, size, &a, &b))
        FUZZ_CHECK(a <= b && b < size && spec[b] == '@');

    memset(err, 'x', sizeof err);
    rc = llmux__config_parse(spec, &c, err, sizeof err);
    if (rc == 0) {
        check_parsed(&c);
    } else {
        FUZZ_CHECK(rc == LLMUX_ECONFIG);
        FUZZ_CHECK(!c.provider && !c.model && !c.opts && !c.n_opts);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) && err[0]);
        FUZZ_CHECK(!strchr(err, '\n'));
    }
    llmux__config_free(&c);
    free(spec);
    return 0;
}
