/* llmux serve: an OpenAI-compatible gateway. Internal to tools/serve:
 * the config (serve_config.c), the HTTP helpers and the router
 * (serve_http.c), the OpenAI endpoints (serve_openai.c) and the server's
 * life (serve.c: listening, signals, shutdown). */
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

/* limits: the gateway's own bounds (sizes in bytes, times in ms; 0 turns
 * a timeout or the heartbeat off). */
typedef struct serve_limits {
    size_t max_body;         /* a request body; default 8 MiB */
    size_t max_header;       /* a request's headers; default 64 KiB */
    size_t max_connections;  /* open client connections; default 4096 */
    size_t max_in_flight;    /* requests being answered; default 10000 */
    long idle_timeout_ms;    /* a connection with nothing to do; default 60 s */
    long request_timeout_ms; /* one request, start to end; default 0 (off:
                                the route's own timeouts bound it) */
    long drain_timeout_ms;   /* shutdown's wait for requests; default 30 s */
    long heartbeat_ms; /* an SSE comment on a stream this long idle; 15 s */
} serve_limits;

#define SERVE_LIMITS_INIT                                                      \
    {                                                                          \
        8u << 20, 64u << 10, 4096, 10000, 60000, 0, 30000, 15000               \
    }

typedef struct serve_config {
    char *listen; /* "HOST:PORT", NULL: 127.0.0.1:8080 */
    serve_limits limits;
    serve_route *routes;
    size_t n_routes;
    int passthrough; /* a model that is no route may be "provider/model" */
} serve_config;

/* Reads the YAML file `path` into `cfg` (zeroed by the caller; unset
 * limits get SERVE_LIMITS_INIT's values). Returns 0,
 * or -1 with a message naming the file, the line and the key written to
 * `err` (`errlen` bytes); `cfg` is then freed. */
int serve_config_load(serve_config *cfg, const char *path, char *err,
                      size_t errlen);
void serve_config_free(serve_config *cfg);
const serve_route *serve_config_route(const serve_config *cfg,
                                      const char *name);

/* ---- the server ---------------------------------------------------------- */

#ifdef SERVE_INTERNAL
#include <h2o.h>
#include <llmux/llmux.h>
#include <uv.h>

typedef struct serve {
    uv_loop_t loop;
    serve_config cfg;
    llmux_client *client;
    h2o_globalconf_t h2o_cfg;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    uv_signal_t sig_term, sig_int;
    int closing;
    int client_closed;
    size_t conns; /* accepted connections not yet closed */
} serve;

/* serve_http.c: answers, and the router h2o calls for every request */
void serve_send_json(h2o_req_t *req, int status, const char *body, size_t len);
/* OpenAI's error object {"error":{"message","type","param","code"}}. */
void serve_send_error(h2o_req_t *req, int status, const char *type,
                      const char *param, const char *code, const char *message);
/* The HTTP status and OpenAI error type for an llmux failure `code`;
 * `upstream_status` is the provider's HTTP status (0: none). */
int serve_status_of(int code, long upstream_status, const char **type);
/* A failed request's answer: the status, the OpenAI error object naming
 * the provider, Retry-After on a 429. */
void serve_send_failure(h2o_req_t *req, int code, const llmux_response *res);
int serve_on_req(serve *s, h2o_req_t *req);

/* serve_openai.c: the endpoints in OpenAI's shapes. One handler for
 * POST /v1/chat/completions, /v1/completions and /v1/embeddings (`op`). */
int serve_handle_op(serve *s, h2o_req_t *req, llmux_op op);
void serve_handle_models(serve *s, h2o_req_t *req);

/* serve.c: the whole program, `llmux serve ARGS` and llmux-serve */
int llmux_serve_main(int argc, char **argv);
#endif /* SERVE_INTERNAL */

#endif /* LLMUX_SERVE_H */
