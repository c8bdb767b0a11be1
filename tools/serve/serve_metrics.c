/* llmux serve: GET /metrics (Prometheus text format 0.0.4) and the JSON
 * access log. Each request the router answers is a "call" (serve.h): its
 * labels and outcome are gathered while it runs and counted, timed and
 * logged once, when both h2o and the upstream are done with it.
 *
 * Labels stay bounded: endpoints are a fixed list, routes come from the
 * config ("passthrough" for a plain provider/model), providers from the
 * library's plugins, statuses and error codes from the gateway's code. */
#define SERVE_INTERNAL
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- counters and histograms --------------------------------------------- */

/* Seconds, 5 ms to 60 s: a cached answer to a long generation. */
static const double bucket_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                   1,     2.5,  5,     10,   30,  60};
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0])

/* One label set of a family: a counter, or a histogram (per-bucket
 * counts, made cumulative when written). */
typedef struct series {
    struct series *next;
    char *labels; /* as written: a="x",b="y" (escaped) */
    uint64_t value;
    uint64_t buckets[N_BUCKETS + 1]; /* the last: above 60 s */
    double sum;
} series;

typedef struct family {
    const char *name, *help;
    int histogram;
    series *head, **tail; /* in order of first use */
} family;

enum {
    F_REQUESTS,
    F_ERRORS,
    F_TOKENS,
    F_FALLBACKS,
    F_LATENCY,
    F_TTFT,
    N_FAMILIES
};

static const struct {
    const char *name, *help;
    int histogram;
} family_def[N_FAMILIES] = {
    {"llmux_serve_requests_total",
     "Requests answered, by endpoint, route, provider and HTTP status.", 0},
    {"llmux_serve_errors_total",
     "Error answers, by OpenAI error type and code (an llmux code name or "
     "the gateway's own).",
     0},
    {"llmux_serve_tokens_total",
     "Tokens the providers reported, by route, provider and type (prompt "
     "or completion).",
     0},
    {"llmux_serve_fallbacks_total",
     "Requests a route's fallback answered, by route and provider.", 0},
    {"llmux_serve_request_duration_seconds",
     "Time from a request's arrival to the end of its answer.", 1},
    {"llmux_serve_time_to_first_token_seconds",
     "Time from a stream request's arrival to its first event.", 1},
};

/* The library's own counters (llmux_client_stats()), one line each. */
static const struct {
    const char *name, *help;
    size_t off;
    int gauge; /* a size_t gauge; else a uint64_t counter */
} client_stat[] = {
#define CS(n, f, h)                                                            \
    {                                                                          \
        "llmux_client_" n, h, offsetof(llmux_stats, f), 0                      \
    }
#define CG(n, f, h)                                                            \
    {                                                                          \
        "llmux_client_" n, h, offsetof(llmux_stats, f), 1                      \
    }
#define CC(n, f, h)                                                            \
    {                                                                          \
        "llmux_cache_" n, h, offsetof(llmux_stats, f), 0                       \
    }
    CS("requests_total", requests, "Requests the client accepted."),
    CS("succeeded_total", succeeded, "Requests that succeeded."),
    CS("failed_total", failed, "Requests that failed (not canceled)."),
    CS("canceled_total", canceled, "Requests canceled."),
    CS("attempts_total", attempts, "HTTP attempts, retries included."),
    CS("retries_total", retries, "Retries."),
    CG("in_flight", in_flight, "Requests the client has in flight."),
    CG("queued", queued, "Requests waiting in the client's queue."),
    CS("limits_backend_errors_total", limits_backend_errors,
       "Failures of the shared limits' Redis (redis: in the config)."),
    CS("limits_fallbacks_total", limits_fallbacks,
       "Requests let go by local buckets while Redis was unreachable."),
    CC("hits_total", cache_hits,
       "Requests answered from the response cache (routes with cache:)."),
    CC("misses_total", cache_misses,
       "Requests looked up in the response cache and sent to the provider."),
    CC("stores_total", cache_stores, "Answers kept in the response cache."),
    CC("backend_errors_total", cache_backend_errors,
       "Failures of the response cache's Redis (limits.cache_backend: "
       "redis), each a miss."),
#undef CS
#undef CG
#undef CC
};

/* The gateway's limit rejections (serve.h: serve.rejected_*), one line
 * each. */
static const struct {
    const char *limit;
    size_t off;
} rejected[] = {
    {"max_body", offsetof(serve, rejected_body)},
    {"max_header", offsetof(serve, rejected_header)},
    {"max_in_flight", offsetof(serve, rejected_in_flight)},
    {"max_connections", offsetof(serve, rejected_connections)},
    {"key", offsetof(serve, rejected_auth)},
    {"key_models", offsetof(serve, rejected_model)},
    {"key_rpm", offsetof(serve, rejected_rpm)},
    {"key_tpm", offsetof(serve, rejected_tpm)},
};

typedef struct text {
    char *p;
    size_t len, cap;
    int oom;
} text;

/* Room for n more bytes and a NUL; 0, or -1 (t->oom set). */
static int reserve(text *t, size_t n)
{
    size_t cap;
    char *np;
    if (t->cap - t->len > n)
        return 0;
    cap = t->cap ? t->cap * 2 : 16384;
    while (cap - t->len <= n)
        cap *= 2;
    if (!(np = realloc(t->p, cap))) {
        t->oom = 1;
        return -1;
    }
    t->p = np;
    t->cap = cap;
    return 0;
}

static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    int n;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->p ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        if (reserve(t, (size_t)n))
            return;
    }
}

typedef struct serve_metrics {
    family fam[N_FAMILIES];
    text labels;      /* find_series()'s scratch */
    text line;        /* log_call()'s scratch */
    size_t in_flight; /* calls begun and not yet ended */
    int log_fd;       /* -1: off */
    char *log_path;   /* NULL: stderr or off */
} serve_metrics;

/* Appends n bytes of s to `t`, keeping it NUL-terminated: the label keys
 * of every request are built with this, not with printf (four lookups a
 * request made vsnprintf a tenth of the gateway's instructions). */
static void put_mem(text *t, const char *s, size_t n)
{
    if (reserve(t, n))
        return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

/* Appends `key="v"` to `t`, \\, " and newline escaped, after a comma
 * unless first. */
static void put_label(text *t, const char *key, const char *v)
{
    size_t n;
    if (t->len)
        put_mem(t, ",", 1);
    put_mem(t, key, strlen(key));
    put_mem(t, "=\"", 2);
    while (v && *v) {
        n = strcspn(v, "\\\"\n");
        put_mem(t, v, n);
        v += n;
        if (*v) {
            put_mem(t, *v == '\n' ? "\\n" : *v == '"' ? "\\\"" : "\\\\", 2);
            v++;
        }
    }
    put_mem(t, "\"", 1);
}

/* The series of family `f` with the labels given as NULL-terminated key,
 * value pairs; created at first use. NULL when out of memory (that sample
 * is then lost, nothing else). */
static series *find_series(serve_metrics *m, int f, ...)
{
    family *fam = &m->fam[f];
    text *t = &m->labels;
    const char *k;
    series *s;
    va_list ap;
    t->len = 0;
    t->oom = 0;
    put_mem(t, "", 0);
    va_start(ap, f);
    while ((k = va_arg(ap, const char *)))
        put_label(t, k, va_arg(ap, const char *));
    va_end(ap);
    if (t->oom)
        return NULL;
    for (s = fam->head; s; s = s->next)
        if (!strcmp(s->labels, t->p))
            return s;
    if (!(s = calloc(1, sizeof *s)) || !(s->labels = strdup(t->p))) {
        free(s);
        return NULL;
    }
    *fam->tail = s;
    fam->tail = &s->next;
    return s;
}

static void observe(series *s, double seconds)
{
    size_t i;
    if (!s)
        return;
    for (i = 0; i < N_BUCKETS && seconds > bucket_le[i]; i++)
        ;
    s->buckets[i]++;
    s->value++;
    s->sum += seconds;
}

static void count(series *s, uint64_t n)
{
    if (s)
        s->value += n;
}

/* ---- calls --------------------------------------------------------------- */

struct serve_call {
    serve *s;
    int refs; /* the HTTP side, and the upstream while held */
    uint64_t t0, t_first, t_end; /* uv_hrtime(): arrival, a stream's first
                                    event (0: none), the answer's end */
    char time[32];               /* arrival, RFC 3339 UTC with ms */
    const char *endpoint;        /* a static label */
    char *method;
    char *path; /* as sent, without the query (it may carry a key) */
    char *route, *provider, *model, *key_name;
    char type[32], code[48]; /* of an error answer; "" when none */
    int status;              /* HTTP status answered; 0: none (client left) */
    long tokens_in, tokens_out, retries; /* -1: unknown */
    int fallback;
};

/* h2o keeps no user pointer in a request: the call rides in its `env`
 * vector (name/value pairs only h2o's fastcgi and mruby handlers read,
 * which the gateway does not use), under this name. */
static const char call_env[] = "llmux-serve-call";

static serve_call *call_of(h2o_req_t *req)
{
    size_t i;
    for (i = 0; i + 1 < req->env.size; i += 2)
        if (req->env.entries[i].base == call_env)
            return (serve_call *)(void *)req->env.entries[i + 1].base;
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = dup_or_null(v);
}

static void log_call(serve_metrics *m, const serve_call *c, double latency);

static const char *status_label(int status, char *buf)
{
    snprintf(buf, 8, "%d", status);
    return buf;
}

/* Both sides are done: count, time and log the call, and free it. */
static void call_end(serve_call *c)
{
    serve_metrics *m = c->s->metrics;
    const char *route = c->route ? c->route : "";
    const char *prov = c->provider ? c->provider : "";
    double latency = (double)(c->t_end - c->t0) / 1e9;
    char st[8];
    if (!c->status)
        c->status = 499; /* the client left before any answer (nginx's) */
    count(find_series(m, F_REQUESTS, "endpoint", c->endpoint, "route", route,
                      "provider", prov, "status", status_label(c->status, st),
                      (char *)NULL),
          1);
    if (c->code[0] || c->type[0])
        count(find_series(m, F_ERRORS, "type", c->type, "code", c->code,
                          (char *)NULL),
              1);
    if (c->tokens_in > 0)
        count(find_series(m, F_TOKENS, "route", route, "provider", prov, "type",
                          "prompt", (char *)NULL),
              (uint64_t)c->tokens_in);
    if (c->tokens_out > 0)
        count(find_series(m, F_TOKENS, "route", route, "provider", prov, "type",
                          "completion", (char *)NULL),
              (uint64_t)c->tokens_out);
    if (c->fallback > 0)
        count(find_series(m, F_FALLBACKS, "route", route, "provider", prov,
                          (char *)NULL),
              1);
    observe(find_series(m, F_LATENCY, "endpoint", c->endpoint, "route", route,
                        (char *)NULL),
            latency);
    if (c->t_first)
        observe(find_series(m, F_TTFT, "route", route, (char *)NULL),
                (double)(c->t_first - c->t0) / 1e9);
    log_call(m, c, latency);
    m->in_flight--;
    free(c->path);
    free(c->method);
    free(c->route);
    free(c->provider);
    free(c->model);
    free(c->key_name);
    free(c);
}

static void call_release(serve_call *c)
{
    if (--c->refs == 0)
        call_end(c);
}

/* The HTTP side's hold, in the request's pool. */
typedef struct call_ref {
    h2o_req_t *req;
    serve_call *c;
} call_ref;

/* h2o frees the request: its answer is complete, or its client left. */
static void on_call_dispose(void *data)
{
    h2o_req_t *req = ((call_ref *)data)->req;
    serve_call *c = ((call_ref *)data)->c;
    c->status = req->res.status;
    c->t_end = uv_hrtime();
    req->env.size = 0; /* nothing may find the call through req now */
    call_release(c);
}

static const char *endpoint_of(h2o_iovec_t path)
{
    static const char *const known[] = {"/v1/chat/completions",
                                        "/v1/completions",
                                        "/v1/embeddings",
                                        "/v1/models",
                                        "/health",
                                        "/metrics",
                                        "/"};
    size_t i;
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (h2o_memis(path.base, path.len, known[i], strlen(known[i])))
            return known[i];
    return "other";
}

/* `len` bytes of the client's as printable ASCII (others %XX), so that a
 * log line is valid UTF-8 JSON whatever was sent. */
static char *printable(const char *p, size_t len)
{
    char *out = malloc(3 * len + 1), *o = out;
    size_t i;
    if (!out)
        return NULL;
    for (i = 0; i < len; i++) {
        unsigned char b = (unsigned char)p[i];
        if (b > 0x20 && b < 0x7f)
            *o++ = (char)b;
        else
            o += sprintf(o, "%%%02X", b);
    }
    *o = 0;
    return out;
}

void serve_call_begin(serve *s, h2o_req_t *req)
{
    serve_call *c;
    call_ref *ref;
    struct timespec ts;
    struct tm tm;
    size_t n;
    if (!s->metrics || call_of(req) || !(c = calloc(1, sizeof *c)))
        return; /* out of memory: this request goes uncounted */
    n = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (!(c->path = printable(req->path.base, n < 512 ? n : 512))) {
        free(c);
        return;
    }
    if (!(c->method = printable(req->method.base,
                                req->method.len < 16 ? req->method.len : 16))) {
        free(c->path);
        free(c);
        return;
    }
    c->s = s;
    c->refs = 1;
    c->t0 = uv_hrtime();
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(c->time, sizeof c->time, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(c->time + n, sizeof c->time - n, ".%03dZ",
             (int)(ts.tv_nsec / 1000000));
    c->endpoint = endpoint_of(req->path_normalized);
    c->tokens_in = c->tokens_out = c->retries = -1;
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(call_env, 0);
    req->env.entries[req->env.size++] = h2o_iovec_init(c, 0);
    ref = h2o_mem_alloc_shared(&req->pool, sizeof *ref, on_call_dispose);
    ref->req = req;
    ref->c = c;
    s->metrics->in_flight++;
}

void serve_call_route(h2o_req_t *req, const char *route)
{
    serve_call *c = call_of(req);
    if (c)
        set_str(&c->route, route);
}

void serve_call_key(h2o_req_t *req, const char *key_name)
{
    serve_call *c = call_of(req);
    if (c)
        set_str(&c->key_name, key_name);
}

static void set_error(serve_call *c, const char *type, const char *code)
{
    snprintf(c->type, sizeof c->type, "%s", type ? type : "");
    snprintf(c->code, sizeof c->code, "%s", code ? code : "");
}

void serve_call_error(h2o_req_t *req, const char *type, const char *code)
{
    serve_call *c = call_of(req);
    if (c)
        set_error(c, type, code);
}

serve_call *serve_call_hold(h2o_req_t *req)
{
    serve_call *c = call_of(req);
    if (c)
        c->refs++;
    return c;
}

void serve_call_first_byte(serve_call *c)
{
    if (c && !c->t_first)
        c->t_first = uv_hrtime();
}

void serve_call_upstream(serve_call *c, const llmux_request *lr, int status,
                         const llmux_response *res)
{
    const llmux_usage *u;
    const char *model;
    int attempts;
    if (!c)
        return;
    if (res) {
        int hit = llmux_response_cached(res); /* no tokens counted now */
        u = llmux_response_usage(res);
        c->tokens_in = hit ? 0 : u->prompt_tokens;
        c->tokens_out = hit ? 0 : u->completion_tokens;
        attempts = llmux_response_attempts(res);
        c->retries = attempts > 0 ? attempts - 1 : 0;
        c->fallback = llmux_response_fallback(res);
        set_str(&c->provider, llmux_response_provider(res));
    }
    model = res ? llmux_response_model(res) : NULL;
    set_str(&c->model, model ? model : llmux_request_model(lr));
    serve_utf8_scrub(c->model); /* a client's bytes, for the log */
    /* no provider without an answer: the request's could be any name a
     * passthrough client made up, and a label per name would grow
     * /metrics without bound */
    if (status) {
        /* a stream that fails after its first event answers no error
         * object of its own: name the failure here */
        const char *type;
        serve_status_of(status, 0, &type);
        set_error(c, type, llmux_err_name(status));
    }
    call_release(c);
}

/* ---- the access log ------------------------------------------------------ */

/* A JSON string (NULL: null). The strings are valid UTF-8 already (a
 * client's model is scrubbed, the path printable ASCII, the rest the
 * config's or llmux's): only '"', '\\' and control bytes are escaped. The
 * line is built by hand, not with json-c: a json-c object per request
 * cost the gateway a tenth of its instructions. */
static void put_json_str(text *t, const char *s)
{
    char b[8];
    size_t n;
    if (!s) {
        put_mem(t, "null", 4);
        return;
    }
    put_mem(t, "\"", 1);
    while (*s) {
        for (n = 0; (unsigned char)s[n] >= 0x20 && s[n] != '"' && s[n] != '\\';
             n++)
            ;
        put_mem(t, s, n);
        s += n;
        if (*s) {
            if (*s == '"' || *s == '\\') {
                b[0] = '\\';
                b[1] = *s;
                put_mem(t, b, 2);
            } else {
                snprintf(b, sizeof b, "\\u%04x", (unsigned char)*s);
                put_mem(t, b, 6);
            }
            s++;
        }
    }
    put_mem(t, "\"", 1);
}

/* `,"key":` then a whole number, or null when negative. */
static void put_count(text *t, const char *key, long n)
{
    char b[48];
    int k = n >= 0 ? snprintf(b, sizeof b, ",\"%s\":%ld", key, n)
                   : snprintf(b, sizeof b, ",\"%s\":null", key);
    put_mem(t, b, (size_t)k);
}

/* `,"key":` then milliseconds to 0.1 ms (not 12.300000000000001), or null
 * when negative. */
static void put_ms(text *t, const char *key, double seconds)
{
    char b[64];
    int k = seconds >= 0
                ? snprintf(b, sizeof b, ",\"%s\":%.1f", key, seconds * 1e3)
                : snprintf(b, sizeof b, ",\"%s\":null", key);
    put_mem(t, b, (size_t)k);
}

static void put_field(text *t, const char *key, const char *s)
{
    put_mem(t, ",\"", 2);
    put_mem(t, key, strlen(key));
    put_mem(t, "\":", 2);
    put_json_str(t, s);
}

/* One JSON line per call, written with a single write(2) so that lines
 * never interleave (O_APPEND for a file). /health and /metrics are left
 * out: probes and scrapers every few seconds would drown the requests. */
static void log_call(serve_metrics *m, const serve_call *c, double latency)
{
    text *t = &m->line;
    if (m->log_fd < 0 || !strcmp(c->endpoint, "/health") ||
        !strcmp(c->endpoint, "/metrics"))
        return;
    t->len = 0;
    t->oom = 0;
    put_mem(t, "{\"time\":", 8);
    put_json_str(t, c->time);
    put_field(t, "key", c->key_name ? c->key_name : "-");
    put_field(t, "method", c->method);
    put_field(t, "path", c->path);
    put_field(t, "route", c->route);
    put_field(t, "provider", c->provider);
    put_field(t, "model", c->model);
    put_count(t, "status", c->status);
    put_count(t, "tokens_in", c->tokens_in);
    put_count(t, "tokens_out", c->tokens_out);
    put_ms(t, "latency_ms", latency);
    put_ms(t, "ttft_ms", c->t_first ? (double)(c->t_first - c->t0) / 1e9 : -1);
    put_count(t, "retries", c->retries);
    put_count(t, "fallback", c->fallback > 0 ? c->fallback : -1);
    put_field(t, "error", c->code[0] ? c->code : NULL);
    put_mem(t, "}\n", 2);
    if (!t->oom) {
        /* a log that cannot be written loses the line, not the answer */
        ssize_t w = write(m->log_fd, t->p, t->len);
        (void)w;
    }
}

static int open_log(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        snprintf(err, errlen, "cannot open the access log %s (log.access): %s",
                 path, strerror(errno));
    return fd;
}

int serve_log_reopen(serve *s, char *err, size_t errlen)
{
    serve_metrics *m = s->metrics;
    int fd;
    if (!m || !m->log_path)
        return 0; /* stderr or off: nothing to reopen */
    if ((fd = open_log(m->log_path, err, errlen)) < 0)
        return -1;
    close(m->log_fd);
    m->log_fd = fd;
    return 0;
}

int serve_metrics_init(serve *s, char *err, size_t errlen)
{
    serve_metrics *m = calloc(1, sizeof *m);
    const char *log = s->cfg.access_log;
    size_t i;
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (i = 0; i < N_FAMILIES; i++) {
        m->fam[i].name = family_def[i].name;
        m->fam[i].help = family_def[i].help;
        m->fam[i].histogram = family_def[i].histogram;
        m->fam[i].tail = &m->fam[i].head;
    }
    m->log_fd = STDERR_FILENO;
    if (log && !strcmp(log, "off"))
        m->log_fd = -1;
    else if (log && strcmp(log, "stderr")) {
        if (!(m->log_path = strdup(log)) ||
            (m->log_fd = open_log(log, err, errlen)) < 0) {
            free(m->log_path);
            free(m);
            return -1;
        }
    }
    s->metrics = m;
    return 0;
}

void serve_metrics_free(serve *s)
{
    serve_metrics *m = s->metrics;
    size_t i;
    if (!m)
        return;
    for (i = 0; i < N_FAMILIES; i++) {
        series *x = m->fam[i].head, *next;
        for (; x; x = next) {
            next = x->next;
            free(x->labels);
            free(x);
        }
    }
    free(m->labels.p);
    free(m->line.p);
    if (m->log_path)
        close(m->log_fd);
    free(m->log_path);
    free(m);
    s->metrics = NULL;
}

/* ---- GET /metrics -------------------------------------------------------- */

static void put_head(text *t, const char *name, const char *help,
                     const char *type)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_family(text *t, const family *f)
{
    const series *s;
    size_t i;
    put_head(t, f->name, f->help, f->histogram ? "histogram" : "counter");
    for (s = f->head; s; s = s->next) {
        const char *sep = s->labels[0] ? "," : "";
        uint64_t cum = 0;
        if (!f->histogram) {
            put(t, "%s{%s} %" PRIu64 "\n", f->name, s->labels, s->value);
            continue;
        }
        for (i = 0; i <= N_BUCKETS; i++) {
            char le[16] = "+Inf";
            cum += s->buckets[i];
            if (i < N_BUCKETS)
                snprintf(le, sizeof le, "%g", bucket_le[i]);
            put(t, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name, s->labels,
                sep, le, cum);
        }
        put(t, "%s_sum{%s} %.6f\n%s_count{%s} %" PRIu64 "\n", f->name,
            s->labels, s->sum, f->name, s->labels, s->value);
    }
}

void serve_handle_metrics(serve *s, h2o_req_t *req)
{
    serve_metrics *m = s->metrics;
    text t = {NULL, 0, 0, 0};
    llmux_stats st;
    size_t i;
    for (i = 0; i < N_FAMILIES; i++)
        put_family(&t, &m->fam[i]);
    put_head(&t, "llmux_serve_requests_in_flight",
             "Requests being answered (this scrape not counted).", "gauge");
    put(&t, "llmux_serve_requests_in_flight %zu\n",
        m->in_flight ? m->in_flight - 1 : 0);
    put_head(&t, "llmux_serve_connections_open", "Client connections open.",
             "gauge");
    put(&t, "llmux_serve_connections_open %zu\n", s->conns);
    put_head(&t, "llmux_serve_rejected_total",
             "Requests refused by a limit of the gateway, by limit.",
             "counter");
    for (i = 0; i < sizeof rejected / sizeof rejected[0]; i++)
        put(&t, "llmux_serve_rejected_total{limit=\"%s\"} %zu\n",
            rejected[i].limit,
            *(const size_t *)(const void *)((const char *)s + rejected[i].off));
    st.version = LLMUX_STATS_VERSION;
    if (llmux_client_stats(s->client, &st) == 0)
        for (i = 0; i < sizeof client_stat / sizeof client_stat[0]; i++) {
            const char *f = (const char *)&st + client_stat[i].off;
            put_head(&t, client_stat[i].name, client_stat[i].help,
                     client_stat[i].gauge ? "gauge" : "counter");
            if (client_stat[i].gauge)
                put(&t, "%s %zu\n", client_stat[i].name,
                    *(const size_t *)(const void *)f);
            else
                put(&t, "%s %" PRIu64 "\n", client_stat[i].name,
                    *(const uint64_t *)(const void *)f);
        }
    if (t.oom) {
        serve_send_error(req, 500, "server_error", NULL, NULL, "out of memory");
    } else {
        req->res.status = 200;
        req->res.reason = "OK";
        req->res.content_length = t.len;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                       NULL,
                       H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
        h2o_send_inline(req, t.p, t.len);
    }
    free(t.p);
}
