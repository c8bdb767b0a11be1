/* Compiles every public header as strict C99 (-pedantic -Werror). */
#include <llmux/llmux.h>
#include <llmux/builtin.h>
#include <llmux/sys/provider.h>

int llmux_headertest_c(void);
int llmux_headertest_c(void)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    return (int)o.version + LLMUX_VERSION_AT_LEAST(0, 0, 1) +
           (int)(LLMUX_PROVIDER_V1_SIZE > 0);
}
