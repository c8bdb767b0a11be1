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
    char *listen;     /* "HOST:PORT", NULL: 127.0.0.1:8080 */
    char *access_log; /* log.access: NULL (stderr), "off", or a file path */
    serve_limits limits;
    serve_route *routes;
    size_t n_routes;
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
    size_t conns;                  /* accepted connections not yet closed */
    struct serve_metrics *metrics; /* serve_metrics.c: counters, access log */
    /* limit rejections, exported as llmux_serve_rejected_total{limit} (the
     * table in serve_metrics.c names each) */
    size_t rejected_body;
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

/* serve_openai.c: the endpoints in OpenAI's shapes */
int serve_handle_chat(serve *s, h2o_req_t *req);
void serve_handle_models(serve *s, h2o_req_t *req);

/* serve_metrics.c: GET /metrics and the JSON access log. A "call" is one
 * request the router answers, from serve_call_begin() (the router, for
 * every request) until both h2o has disposed of the request and, when the
 * handler sent one upstream, the llmux done callback has reported it
 * (serve_call_upstream()); it is then counted and logged. Handlers label
 * it while they decide (route, key), hold it for the upstream side, and
 * mark the first byte of a stream. */
typedef struct serve_call serve_call;
/* Sets up the counters and opens cfg.access_log; -1 with a message naming
 * the file in `err`. */
int serve_metrics_init(serve *s, char *err, size_t errlen);
void serve_metrics_free(serve *s);
/* Reopens the access log file (SIGHUP, after rotation); keeps the old one
 * and returns -1 with the reason in `err` when it cannot. */
int serve_log_reopen(serve *s, char *err, size_t errlen);
void serve_call_begin(serve *s, h2o_req_t *req);
/* The route label: a config route's name, or "passthrough" for a plain
 * provider/model (never the model a client made up: labels stay
 * bounded). */
void serve_call_route(h2o_req_t *req, const char *route);
/* The virtual key's name (never the key) for the log; NULL: "-". */
void serve_call_key(h2o_req_t *req, const char *key_name);
/* The OpenAI error type and code of an error answer (serve_send_error). */
void serve_call_error(h2o_req_t *req, const char *type, const char *code);
/* Keeps the call open until serve_call_upstream(): the request went
 * upstream. NULL when the request has no call. */
serve_call *serve_call_hold(h2o_req_t *req);
/* A stream's first event goes out: time to first token. */
void serve_call_first_byte(serve_call *c);
/* The upstream's outcome (provider, model, tokens, retries, fallback;
 * `res` may be NULL) and the end of the hold. */
void serve_call_upstream(serve_call *c, const llmux_request *lr, int status,
                         const llmux_response *res);
void serve_handle_metrics(serve *s, h2o_req_t *req);

/* serve.c: the whole program, `llmux serve ARGS` and llmux-serve */
int llmux_serve_main(int argc, char **argv);
#endif /* SERVE_INTERNAL */

#endif /* LLMUX_SERVE_H */
