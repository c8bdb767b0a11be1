/* llmux serve: an OpenAI-compatible gateway (first step). Shared between
 * the config reader and the server. */
#ifndef LLMUX_SERVE_H
#define LLMUX_SERVE_H

#include <stddef.h>

/* A model name clients send, and the llmux config strings tried for it in
 * order: the first, then its fallbacks. */
typedef struct serve_route {
    char *name;
    char **specs;
    size_t n_specs;
} serve_route;

typedef struct serve_config {
    char *listen; /* "HOST:PORT", NULL: 127.0.0.1:8080 */
    serve_route *routes;
    size_t n_routes;
} serve_config;

/* Reads the YAML file `path` into `cfg` (zeroed by the caller). Returns 0,
 * or -1 with a message naming the file, the line and the key written to
 * `err` (`errlen` bytes); `cfg` is then freed. */
int serve_config_load(serve_config *cfg, const char *path, char *err,
                      size_t errlen);
void serve_config_free(serve_config *cfg);
const serve_route *serve_config_route(const serve_config *cfg,
                                      const char *name);

#endif /* LLMUX_SERVE_H */
