// Compiles every public header as C++ (-pedantic -Werror): once in the
// compiler's default standard, once as C++20, the function renamed for
// each (tests/headertest/CMakeLists.txt).
#include <llmux/llmux.h>
#include <llmux/builtin.h>
#include <llmux/sys/provider.h>

extern "C" int llmux_headertest_cxx(void);
extern "C" int llmux_headertest_cxx(void)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_batch_options b = LLMUX_BATCH_OPTIONS_INIT;
    if (o.max_retries != -1 || o.loop || b.concurrency || b.fail_fast)
        return -1;
    return static_cast<int>(o.version) + (LLMUX_OK == 0);
}
