/*
 * tests/fuzz/fuzz_request_json.c: requests from JSON text
 * (llmux_request_new_json, llmux_request_add_message_json), then what the
 * core does with an accepted request: llmux_request_dup and encoding by
 * the OpenAI plugin (compiled in and registered) through llmux__prepare.
 *
 * Input: byte 0: bit 0 picks add_message_json (onto a chat request)
 * instead of new_json, bit 1 gives new_json no config string (the JSON's
 * "model" is then the config string); the rest is the JSON text, in an
 * exact-size buffer (it need not be NUL-terminated). Bit 2 instead calls
 * llmux_request_set_field on a chat request: the rest is the key, a NUL,
 * then the value (both NUL-terminated copies).
 */
#include <string.h>

#include "fuzz_register.h"

#define SPEC "openai/x;api_key=k;base_url=http://h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_register_plugin();
    return 0;
}

/* An accepted request: a copy, and the encoded HTTP request when it is
 * for the compiled-in plugin. */
static void use_request(llmux_request *r)
{
    llmux_request *d = llmux_request_dup(r);
    llmux__prepared p;
    const char *prov = llmux_request_provider(r);
    FUZZ_CHECK(d != NULL);
    FUZZ_CHECK(llmux_request_op(d) == llmux_request_op(r));
    llmux_request_free(d);
    if (!prov || strcmp(prov, "openai") != 0)
        return;
    if (llmux__prepare(r, NULL, &p) == 0) {
        FUZZ_CHECK(p.http.body && p.http.body_len == strlen(p.http.body));
        FUZZ_CHECK(p.url != NULL);
    } else {
        FUZZ_CHECK(llmux_request_errmsg(r) != NULL);
    }
    llmux__prepared_free(&p);
}

/* llmux_request_set_field with a key and a value from the input. */
static int set_field(const uint8_t *data, size_t size)
{
    llmux_request *r = NULL;
    const uint8_t *nul = memchr(data, 0, size);
    size_t klen = nul ? (size_t)(nul - data) : size;
    char *key = malloc(klen + 1), *value;
    size_t vlen = nul ? size - klen - 1 : 0;
    int rc;
    FUZZ_CHECK(key != NULL);
    memcpy(key, data, klen);
    key[klen] = '\0';
    value = malloc(vlen + 1);
    FUZZ_CHECK(value != NULL);
    if (vlen)
        memcpy(value, nul + 1, vlen);
    value[vlen] = '\0';
    FUZZ_CHECK(llmux_request_new(&r, LLMUX_OP_CHAT, SPEC) == 0);
    FUZZ_CHECK(llmux_request_add_message(r, LLMUX_ROLE_USER, "hi") == 0);
    rc = llmux_request_set_field(r, key, value);
    if (rc == 0) {
        /* twice: setting a field again replaces it */
        FUZZ_CHECK(llmux_request_set_field(r, key, value) == 0);
        use_request(r);
    } else {
        FUZZ_CHECK(rc < 0 && llmux_request_errmsg(r) != NULL);
    }
    llmux_request_free(r);
    free(key);
    free(value);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llmux_request *r = NULL;
    char *json;
    size_t len;
    int rc;

    if (size < 1)
        return 0;
    if (data[0] & 4)
        return set_field(data + 1, size - 1);
    len = size - 1;
    json = malloc(len ? len : 1);
    FUZZ_CHECK(json != NULL);
    memcpy(json, data + 1, len);
    if (data[0] & 1) {
        FUZZ_CHECK(llmux_request_new(&r, LLMUX_OP_CHAT, SPEC) == 0);
        rc = llmux_request_add_message_json(r, json, len);
    } else {
        rc = llmux_request_new_json(&r, (data[0] & 2) ? NULL : SPEC, json, len);
    }
    free(json);
    FUZZ_CHECK(r != NULL);
    if (rc == 0)
        use_request(r);
    else
        FUZZ_CHECK(rc < 0 && llmux_request_errmsg(r) != NULL);
    llmux_request_free(r);
    return 0;
}
