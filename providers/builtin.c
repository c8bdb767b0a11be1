/*
 * providers/builtin.c: llmux_register_builtin_providers() for programs
 * that link the in-tree providers statically (libllmux-providers.a).
 * Each provider's entry point is compiled under its own name
 * (llmux_provider_entry_<name>, providers/CMakeLists.txt); the list comes
 * from the build, so a provider added there is registered here too.
 */
#include <llmux/builtin.h>
#include <llmux/sys/provider.h>

#define LLMUX_BUILTIN(n)                                                       \
    const llmux_provider *llmux_provider_entry_##n(const llmux_host *h,        \
                                                   uint32_t abi);
#include "builtin_list.h"
#undef LLMUX_BUILTIN

int llmux_register_builtin_providers(void)
{
    const llmux_host *h = llmux_host_table();
    const llmux_provider *vt;
    int rc;
#define LLMUX_BUILTIN(n)                                                       \
    vt = llmux_provider_entry_##n(h, LLMUX_HOST_ABI);                          \
    if (!vt)                                                                   \
        return LLMUX_EABI;                                                     \
    if ((rc = llmux_register_provider(vt)) != 0)                               \
        return rc;
#include "builtin_list.h"
#undef LLMUX_BUILTIN
    return 0;
}
