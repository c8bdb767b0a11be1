/* llmux-serve: the gateway as a program of its own (also `llmux serve`). */
#define SERVE_INTERNAL
#include "serve.h"

int main(int argc, char **argv)
{
    return llmux_serve_main(argc, argv);
}
