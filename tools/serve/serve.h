/* llmux serve: an OpenAI-compatible gateway. Internal to tools/serve:
 * the config (serve_config.c), the HTTP helpers and the router
 * (serve_http.c), the OpenAI endpoints (serve_openai.c) and the server's
 * life (serve.c: listening, signals, shutdown; serve_life.c: reload,
 * timers, the drain's parts). */
#ifndef LLMUX_SERVE_H
#define LLMUX_SERVE_H

#include <stddef.h>

/* A model name clients send, and the llmux config strings tried for it in
 * order: the first, then its fallbacks. */
typedef struct serve_route {
    char *name;
    char **specs;
    size_t n_specs;
    long cache_ttl_ms; /* the route's `cache:` TTL: its answers are looked
                          up in and kept in the response cache; 0 = not */
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
    long drain_timeout_ms;   /* shutdown's wait for requests; default 30 s
                                (0: none, what is in flight is canceled) */
    long heartbeat_ms; /* an SSE comment on a stream this long idle; 15 s */
    size_t cache_max_bytes;   /* the response cache's size; 64 MiB */
    size_t cache_max_entries; /* its entries; 10000 */
    int cache_redis; /* cache_backend: redis (the redis: entry's server:
                        every replica's answers shared), else lru (this
                        process's own) */
} serve_limits;

#define SERVE_LIMITS_INIT                                                      \
    {                                                                          \
        8u << 20, 64u << 10, 4096, 10000, 60000, 0, 30000, 15000, 64u << 20,   \
            10000, 0                                                           \
    }

/* keys: a virtual key clients send (Authorization: Bearer, or api-key).
 * Only its SHA-256 is kept, so that a key's value is never printed and
 * every comparison is between two fixed-size digests. */
typedef struct serve_key {
    char *name;               /* names the key in logs and metrics */
    unsigned char digest[32]; /* SHA-256 of the key */
    char **models;            /* the routes it may use; NULL: all */
    size_t n_models;
    double rpm, tpm;       /* requests and tokens a minute; 0: no limit */
    double budget_usd;     /* spend limit (the library's scope "key:NAME",
                              shared through redis:); 0: none */
    long budget_window_ms; /* the budget's window (a day: 86400000);
                              0: the spend never resets */
} serve_key;
/* tls: HTTPS (and HTTP/2 through ALPN) with a certificate and key. */
typedef struct serve_tls {
    char *cert, *key; /* PEM files; NULL: plain HTTP */
    int min_version;  /* 12 (TLS 1.2, the default) or 13 */
    void *ctx;        /* the SSL_CTX built and checked when the config loads */
} serve_tls;

/* redis: rpm and tpm shared with every process naming the same server
 * (llmux's limits=, limits_prefix=, limits_fallback=); NULL: unset. */
typedef struct serve_redis {
    char *url;      /* NULL: the limits stay in this process */
    char *prefix;   /* the keys' prefix; NULL: llmux's default */
    char *fallback; /* "closed" (NULL) or "local" */
} serve_redis;

typedef struct serve_config {
    char *listen;     /* "HOST:PORT", NULL: 127.0.0.1:8080 */
    char *access_log; /* log.access: NULL (stderr), "off", or a file path */
    serve_limits limits;
    serve_tls tls;
    serve_route *routes;
    size_t n_routes;
    serve_key *keys; /* none: no auth (and loopback listen only) */
    size_t n_keys;
    int passthrough; /* a model that is no route may be "provider/model" */
    serve_redis redis;
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

/* serve_tls.c: an OpenSSL server context (SSL_CTX) for the PEM files
 * `cert` (the chain) and `key`, offering h2 and http/1.1 through ALPN.
 * NULL on failure, with a message in `err` and "cert" or "key" in *which
 * (the setting at fault). */
void *serve_tls_new(const char *cert, const char *key, int min_version,
                    const char **which, char *err, size_t errlen);
void serve_tls_free(void *ctx);

/* ---- the server ---------------------------------------------------------- */

#ifdef SERVE_INTERNAL
#include <h2o.h>
#include <llmux/llmux.h>
#include <uv.h>

/* One deadline in a serve_deadlines list (serve_life.c). */
typedef struct serve_deadline {
    h2o_linklist_t link;
    uint64_t at; /* uv_now() time it fires */
    void (*cb)(struct serve_deadline *d);
} serve_deadline;

/* Deadlines sorted by time on one uv timer, armed for the first: O(1) to
 * set when every new deadline is the latest (one timeout value for all,
 * the usual case), so 10,000 streams cost one timer, not 10,000. */
typedef struct serve_deadlines {
    uv_timer_t timer;
    h2o_linklist_t list;
} serve_deadlines;

/* A config generation: requests hold the one they were admitted under
 * (pointers into its routes, names, keys stay valid until they end). The
 * current one's config is serve.cfg; a reload moves it into `cfg` here
 * (a struct copy: its heap data keeps its addresses) while it is held. */
typedef struct serve_gen {
    unsigned refs;
    serve_config cfg; /* filled when retired */
} serve_gen;

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
    /* keys and limits (serve_keys.c) */
    struct serve_keystate **keystates; /* per-key state, by name */
    size_t n_keystates;
    struct serve_keystate *auth;   /* the key of the request being routed:
                                      valid during serve_on_req only */
    size_t in_flight;              /* chat requests being answered */
    int accept_paused;             /* at max_connections: a connection waits */
    size_t rejected_auth;          /* 401: missing or unknown key */
    size_t rejected_model;         /* 403: a model the key may not use */
    size_t rejected_rpm;           /* 429: a key's requests a minute */
    size_t rejected_tpm;           /* 429: a key's tokens a minute */
    size_t rejected_in_flight;     /* 503: limits.max_in_flight */
    size_t rejected_header;        /* 431: limits.max_header */
    size_t rejected_connections;   /* held back at limits.max_connections
                                      (served once one closes, not refused) */
    struct serve_metrics *metrics; /* serve_metrics.c: counters, access log */
    /* limit rejections above and here, exported as
     * llmux_serve_rejected_total{limit} (the table in serve_metrics.c names
     * each) */
    size_t rejected_body; /* 413: limits.max_body */
    /* lifecycle (serve_life.c) */
    const char *config_path;
    int listen_from_cli; /* --listen given: the config's is unused */
    serve_gen *gen;      /* the current config's generation */
    uv_signal_t sig_hup;
    uv_timer_t drain_timer;     /* drain_timeout, then the force-close */
    int draining;               /* 1: draining, 2: canceling what is left */
    h2o_linklist_t pendings;    /* requests in flight (pending.link) */
    h2o_linklist_t conn_list;   /* open connections (serve_conn.link) */
    serve_deadlines heartbeats; /* SSE streams: last event + heartbeat */
    serve_deadlines timeouts;   /* requests: start + request_timeout */
    serve_deadlines stalls;     /* writes: handed to h2o + idle_timeout */
    void **watch;               /* fd -> pending watched for a hang-up */
    size_t n_watch;
} serve;

/* serve_http.c: answers, and the router h2o calls for every request */
/* Replaces each byte of `s` that is not part of a valid UTF-8 sequence
 * with '?', in place (NULL is a no-op): what the gateway writes as JSON
 * is always valid UTF-8, whatever bytes a client sent. */
void serve_utf8_scrub(char *s);
void serve_send_json(h2o_req_t *req, int status, const char *body, size_t len);
/* OpenAI's error object {"error":{"message","type","param","code"}}
 * as text (free() it; NULL: out of memory), and as an answer. */
char *serve_error_json(const char *type, const char *param, const char *code,
                       const char *message);
void serve_send_error(h2o_req_t *req, int status, const char *type,
                      const char *param, const char *code, const char *message);
/* The HTTP status and OpenAI error type for an llmux failure `code`;
 * `upstream_status` is the provider's HTTP status (0: none). */
int serve_status_of(int code, long upstream_status, const char **type);
/* The error object's "code" for a library code: OpenAI's
 * "insufficient_quota" for a spent budget, else the code's name. */
const char *serve_code_of(int code);
/* A failed request's answer: the status, the OpenAI error object naming
 * the provider, Retry-After on a 429. */
void serve_send_failure(h2o_req_t *req, int code, const llmux_response *res);
int serve_on_req(serve *s, h2o_req_t *req);

/* serve_openai.c: the endpoints in OpenAI's shapes. One handler for
 * POST /v1/chat/completions, /v1/completions and /v1/embeddings (`op`). */
int serve_handle_op(serve *s, h2o_req_t *req, llmux_op op);
void serve_handle_models(serve *s, h2o_req_t *req);

/* serve_page.c: the browser page at GET / (tools/serve/page.html) */
void serve_handle_page(h2o_req_t *req);
/* serve_keys.c: virtual keys and the gateway's own limits.
 * A key's state (its token buckets) lives in a refcounted serve_keystate
 * found by the key's name; a request holds a reference from admission to
 * its end, so that a reload replacing cfg.keys (serve_keys_bind) keeps the
 * buckets of keys it keeps and frees the others' once their last request
 * ends. */
typedef struct serve_keystate serve_keystate;
/* (Re)binds the states to s->cfg.keys: call after loading a config. */
int serve_keys_bind(serve *s);
void serve_keys_free(serve *s);
/* The router's checks: the header size, and the key of a /v1/ request
 * (into s->auth). Return 0, or -1 with the error answer sent. */
int serve_check_header(serve *s, h2o_req_t *req);
int serve_authenticate(serve *s, h2o_req_t *req);
/* May the request's key (s->auth) use `model`? */
int serve_key_allows(const serve *s, const serve_keystate *ks,
                     const char *model);
/* Admission of a model request: its key's model list, rpm and tpm (with
 * `estimate` tokens reserved), and limits.max_in_flight. Returns 0 with
 * a reference on *out (NULL without keys) and in_flight counted, or -1
 * with the error answer sent. */
int serve_admit(serve *s, h2o_req_t *req, const char *model, double estimate,
                serve_keystate **out);
/* The end of an admitted request: the tpm reservation corrected with the
 * tokens `usage` reports, the reference dropped, in_flight uncounted. */
void serve_release(serve *s, serve_keystate *ks, double estimate,
                   const llmux_usage *usage);
const char *serve_keystate_name(const serve_keystate *ks);
/* The key's budget_usd (0: none, or no key). */
double serve_keystate_budget(const serve_keystate *ks);
long serve_keystate_budget_window(const serve_keystate *ks);
/* Is the listen address loopback (127.0.0.0/8, ::1)? */
int serve_is_loopback(const struct sockaddr *sa);
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
/* serve_life.c: config generations and reload, deadlines, drain */
serve_gen *serve_gen_hold(serve *s);
void serve_gen_release(serve *s, serve_gen *g);
/* SIGHUP: reads the config file again and swaps it in, or keeps the old
 * one and says why on stderr. */
void serve_reload(serve *s);
void serve_deadlines_init(serve *s, serve_deadlines *dl);
void serve_deadlines_close(serve_deadlines *dl);
void serve_deadline_set(serve_deadlines *dl, serve_deadline *d, uint64_t at);
void serve_deadline_clear(serve_deadline *d);
/* The h2o idle timeouts from limits.idle_timeout_ms; -1 at shutdown:
 * idle connections close now. */
void serve_apply_idle_timeout(serve *s, long ms);
/* limits.idle_timeout_ms as h2o's timeout (0, off: a year; -1: 0) */
uint64_t serve_idle_timeout_of(long ms);
/* A request was released (s->in_flight is down): the drain may be over. */
void serve_drain_check(serve *s);
/* Watches an HTTP/1 request's socket while it is answered, so that a
 * client leaving is noticed at once (serve_life.c says why and how);
 * `pending` is told through serve_pending_client_left(). Returns the fd
 * watched, or -1 (HTTP/2, or no socket). */
int serve_watch_client(serve *s, h2o_req_t *req, void *pending);
/* Stops watching `fd` (-1: nothing); `req` NULL when it is being freed. */
void serve_unwatch_client(serve *s, int fd, h2o_req_t *req);

/* serve_openai.c: cancels the requests in flight, each answered with
 * `status` and OpenAI's error object (an error event as a stream's last
 * one) */
void serve_cancel_all(serve *s, int status, const char *code,
                      const char *message);
void serve_pending_client_left(void *pending);

/* serve.c: the whole program, `llmux serve ARGS` and llmux-serve */
int llmux_serve_main(int argc, char **argv);

/* serve_stall.c: LLMUX_SERVE_STALL=1, the loop's worst stall on exit */
void serve_stall_start(uv_loop_t *loop);
void serve_stall_report(void);
#endif /* SERVE_INTERNAL */

#endif /* LLMUX_SERVE_H */
