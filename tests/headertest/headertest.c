/* Compiles every public header as strict C99 (-pedantic -Werror). */
#include <llmux/llmux.h>
#include <llmux/builtin.h>
#include <llmux/sys/provider.h>

int llmux_headertest_c(void);
int llmux_headertest_c(void)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    /* the defaults by name, then one's own fields (-Wextra stays quiet) */
    llmux_client_options o2 = {LLMUX_CLIENT_OPTIONS_DEFAULTS,
                               .timeout_ms = 5000};
    llmux_batch_options b = LLMUX_BATCH_OPTIONS_INIT;
    llmux_batch_options b2 = {LLMUX_BATCH_OPTIONS_DEFAULTS, .fail_fast = 1};
    if (o.max_retries != -1 || o2.max_retries != -1 || o2.timeout_ms != 5000 ||
        o2.version != o.version || o.loop || o.key_env_allow ||
        b.version != b2.version || b.fail_fast || !b2.fail_fast)
        return -1;
    return (int)o.version + LLMUX_VERSION_AT_LEAST(0, 0, 1) +
           (int)(LLMUX_PROVIDER_V1_SIZE > 0);
}
