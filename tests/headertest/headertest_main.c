/* Links both header-test objects against libllmux and checks the values. */
#include <stdio.h>
#include <string.h>

#include <llmux/llmux.h>

int llmux_headertest_c(void);
int llmux_headertest_cxx(void);
int llmux_headertest_cxx20(void);

int main(void)
{
    if (llmux_headertest_c() != (int)LLMUX_CLIENT_OPTIONS_VERSION + 2 ||
        llmux_headertest_cxx() != (int)LLMUX_CLIENT_OPTIONS_VERSION + 1 ||
        llmux_headertest_cxx20() != (int)LLMUX_CLIENT_OPTIONS_VERSION + 1) {
        fprintf(stderr, "header test values wrong\n");
        return 1;
    }
    if (llmux_version() != LLMUX_VERSION_NUM ||
        strcmp(llmux_version_string(), LLMUX_VERSION_STRING) != 0) {
        fprintf(stderr, "runtime version differs from headers\n");
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
