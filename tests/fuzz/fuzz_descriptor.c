/*
 * tests/fuzz/fuzz_descriptor.c: the ".conf" provider descriptor parser of
 * core/descriptor.c (llmux__descriptor_parse, the text half of reading a
 * descriptor file) on arbitrary bytes.
 *
 * On success it must name a non-empty module; on failure the code is
 * LLMUX_ECONFIG with a one-line message that fits the buffer and starts
 * with the file's name.
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[LLMUX__ERRBUF], *module = (char *)"unset";
    size_t n_opts = 99;
    int rc;

    memset(err, 'x', sizeof err);
    err[0] = '\0';
    rc = llmux__descriptor_parse("fuzz.conf", (const char *)data, size, &module,
                                 &n_opts, err, sizeof err);
    if (rc == 0) {
        FUZZ_CHECK(module && *module);
        FUZZ_CHECK(!strpbrk(module, "\r\n"));
    } else {
        FUZZ_CHECK(rc == LLMUX_ECONFIG);
        FUZZ_CHECK(!module && n_opts == 0);
        FUZZ_CHECK(strncmp(err, "fuzz.conf:", 10) == 0);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) && !strchr(err, '\n'));
    }
    llmux__free(module);
    return 0;
}
