// Compiles every public header as C++ (-pedantic -Werror).
#include <llmux/llmux.h>
#include <llmux/builtin.h>
#include <llmux/sys/provider.h>

extern "C" int llmux_headertest_cxx(void);
extern "C" int llmux_headertest_cxx(void)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    return static_cast<int>(o.version) + (LLMUX_OK == 0);
}
