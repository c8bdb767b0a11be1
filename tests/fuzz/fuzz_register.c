/*
 * tests/fuzz/fuzz_register.c: registers the provider plugin compiled into
 * a fuzz target (its sources are part of the binary, so libFuzzer sees
 * its coverage like the core's) through the plugin ABI, as the loader
 * would load it: its entry point with the host table, then
 * llmux_register_provider.
 */
#include "fuzz_register.h"

/* Defined by LLMUX_DEFINE_PROVIDER in the plugin's source. */
const llmux_provider *llmux_provider_entry(const llmux_host *host,
                                           uint32_t host_abi);

const llmux_provider *fuzz_register_plugin(void)
{
    const llmux_provider *vt =
        llmux_provider_entry(llmux_host_table(), LLMUX_HOST_ABI);
    FUZZ_CHECK(vt != NULL);
    FUZZ_CHECK(llmux_register_provider(vt) == 0);
    return vt;
}
