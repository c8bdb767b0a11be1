/* llmux serve: the YAML config file, read with libyaml's document loader.
 * Keys: listen (HOST:PORT), routes (a model name -> one config string or
 * a list of them), limits (sizes and times), keys (the virtual keys
 * clients use), log (the access log) and tls (certificate and key files).
 * Any other key is refused, so that a setting the gateway does not apply
 * is never silently ignored. */
#include "serve.h"

#include <ctype.h>
#include <errno.h>
#include <llmux/llmux.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct reader {
    yaml_document_t *doc;
    const char *path;
    char *err;
    size_t errlen;
} reader;

static int fail(reader *r, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s:%lu: %s", r->path,
             n ? (unsigned long)n->start_mark.line + 1 : 1UL, msg);
    return -1;
}

static const char *scalar(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

/* libyaml keeps a key given twice in one mapping, and the later would
 * silently win (a second keys: list replacing the first): refused. The
 * pairs before `p` are known and distinct (else reading stopped there),
 * so this costs at most the number of keys the mapping may hold. */
static int twice(reader *r, const yaml_node_t *map, const yaml_node_pair_t *p,
                 const char *where)
{
    const yaml_node_pair_t *q;
    const char *key = scalar(yaml_document_get_node(r->doc, p->key));
    for (q = map->data.mapping.pairs.start; key && q < p; q++) {
        const yaml_node_t *qk = yaml_document_get_node(r->doc, q->key);
        const char *k2 = scalar(qk);
        if (k2 && !strcmp(key, k2))
            return fail(r, yaml_document_get_node(r->doc, p->key),
                        "key '%s%s': given twice (first on line %lu)", where,
                        key, (unsigned long)qk->start_mark.line + 1);
    }
    return 0;
}

/* Checks a config string the way a request will use it, so a typo fails
 * at start rather than on the first request. */
static int check_spec(reader *r, const yaml_node_t *n, const char *route,
                      const char *spec)
{
    llmux_request *req = NULL;
    int rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
    if (rc) {
        /* the library's message shows the string with its secrets masked:
         * never quote it here, it may hold an api_key= */
        fail(r, n, "key 'routes.%s': bad config string: %s", route,
             req ? llmux_request_errmsg(req) : llmux_strerror(rc));
        llmux_request_free(req);
        return -1;
    }
    llmux_request_free(req);
    return 0;
}

static int add_spec(reader *r, serve_route *rt, const yaml_node_t *n)
{
    const char *s = scalar(n);
    char **v;
    if (!s || !*s)
        return fail(r, n,
                    "key 'routes.%s': each entry must be a non-empty "
                    "llmux config string",
                    rt->name);
    if (check_spec(r, n, rt->name, s))
        return -1;
    v = realloc(rt->specs, (rt->n_specs + 1) * sizeof *v);
    if (!v)
        return fail(r, n, "out of memory");
    rt->specs = v;
    if (!(v[rt->n_specs] = strdup(s)))
        return fail(r, n, "out of memory");
    rt->n_specs++;
    return 0;
}

/* A route's config strings: one, or a list (the first, then its
 * fallbacks). */
static int read_specs(reader *r, serve_route *rt, yaml_node_t *v)
{
    yaml_node_item_t *i;
    if (!v || v->type != YAML_SEQUENCE_NODE)
        return add_spec(r, rt, v);
    for (i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++)
        if (add_spec(r, rt, yaml_document_get_node(r->doc, *i)))
            return -1;
    if (!rt->n_specs)
        return fail(r, v, "key 'routes.%s': an empty list", rt->name);
    return 0;
}

static int parse_duration(const char *s, long *out_ms);

/* A route written as a mapping: `models:` (its config strings) and
 * `cache:` (a TTL such as 5m, or no). */
static int read_route_map(reader *r, serve_route *rt, yaml_node_t *map)
{
    yaml_node_pair_t *p;
    int have_models = 0;
    char where[160];
    snprintf(where, sizeof where, "routes.%s.", rt->name);
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
        const char *key = scalar(k), *s;
        if (twice(r, map, p, where))
            return -1;
        if (key && !strcmp(key, "models")) {
            have_models = 1;
            if (read_specs(r, rt, v))
                return -1;
        } else if (key && !strcmp(key, "cache")) {
            s = scalar(v);
            if (s &&
                (!strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "false")))
                rt->cache_ttl_ms = 0;
            else if (!s || parse_duration(s, &rt->cache_ttl_ms) ||
                     rt->cache_ttl_ms <= 0)
                return fail(r, v,
                            "key 'routes.%s.cache': wants a TTL (30s, 5m, "
                            "1h; at most a day) or no",
                            rt->name);
        } else
            return fail(r, k,
                        "key 'routes.%s': unknown key '%s' (models, cache)",
                        rt->name, key ? key : "");
    }
    if (!have_models)
        return fail(r, map, "key 'routes.%s': no 'models'", rt->name);
    return 0;
}

static int read_routes(reader *r, serve_config *cfg, yaml_node_t *map)
{
    yaml_node_pair_t *p;
    if (map->type != YAML_MAPPING_NODE)
        return fail(r, map,
                    "key 'routes': must be a mapping of model names to "
                    "config strings");
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
        const char *name = scalar(k);
        serve_route *rt;
        if (!name || !*name)
            return fail(r, k,
                        "key 'routes': a model name must be a "
                        "non-empty string");
        if (strchr(name, ';'))
            return fail(r, k,
                        "key 'routes.%s': a model name may not contain ';'",
                        name);
        if (serve_config_route(cfg, name))
            return fail(r, k, "key 'routes.%s': defined twice", name);
        rt = realloc(cfg->routes, (cfg->n_routes + 1) * sizeof *rt);
        if (!rt)
            return fail(r, k, "out of memory");
        cfg->routes = rt;
        rt = &cfg->routes[cfg->n_routes];
        memset(rt, 0, sizeof *rt);
        if (!(rt->name = strdup(name)))
            return fail(r, k, "out of memory");
        cfg->n_routes++;
        if (v && v->type == YAML_MAPPING_NODE ? read_route_map(r, rt, v)
                                              : read_specs(r, rt, v))
            return -1;
    }
    return 0;
}

/* A number and one of `units` after it (spaces between allowed, "" for
 * none), scaled by that unit; -1 unless it is at most `max` after
 * scaling. */
typedef struct unit {
    const char *name;
    double scale;
} unit;

static int parse_scaled(const char *s, const unit *units, size_t n, double max,
                        double *out)
{
    char *end;
    double v;
    size_t i;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || !isfinite(v))
        return -1;
    while (*end == ' ')
        end++;
    for (i = 0; i < n; i++)
        if (!strcmp(end, units[i].name)) {
            v *= units[i].scale;
            if (v > max)
                return -1;
            *out = v;
            return 0;
        }
    return -1;
}

/* "8MiB", "512KiB", "65536", "1GB": bytes, at most 1 TiB. */
static int parse_size(const char *s, size_t *out)
{
    static const unit units[] = {{"", 1},
                                 {"B", 1},
                                 {"KiB", 1024.0},
                                 {"MiB", 1048576.0},
                                 {"GiB", 1073741824.0},
                                 {"KB", 1e3},
                                 {"MB", 1e6},
                                 {"GB", 1e9}};
    double v;
    if (parse_scaled(s, units, sizeof units / sizeof units[0], 1099511627776.0,
                     &v))
        return -1;
    *out = (size_t)v;
    return 0;
}

/* "30s", "500ms", "2m", "1h", "10" (seconds): milliseconds, at most a
 * day. */
static int parse_duration(const char *s, long *out_ms)
{
    static const unit units[] = {
        {"", 1000}, {"s", 1000}, {"ms", 1}, {"m", 60000}, {"h", 3600000}};
    double v;
    if (parse_scaled(s, units, sizeof units / sizeof units[0], 86400000.0, &v))
        return -1;
    *out_ms = (long)(v + 0.5);
    return 0;
}

/* A budget's window: "1d", "12h", "30m", "90s", "3600" (seconds), at
 * most a year. */
static int parse_window(const char *s, long *out_ms)
{
    static const unit units[] = {
        {"", 1000}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    double v;
    if (parse_scaled(s, units, sizeof units / sizeof units[0], 366 * 86400000.0,
                     &v) ||
        v < 1000)
        return -1;
    *out_ms = (long)(v + 0.5);
    return 0;
}

static int read_limits(reader *r, serve_config *cfg, yaml_node_t *map)
{
    static const struct {
        const char *key;
        int is_size; /* else a duration */
        size_t off;
        size_t min; /* sizes: the smallest allowed */
    } keys[] = {
        {"max_body", 1, offsetof(serve_limits, max_body), 1},
        {"max_header", 1, offsetof(serve_limits, max_header), 1024},
        {"max_connections", 1, offsetof(serve_limits, max_connections), 1},
        {"max_in_flight", 1, offsetof(serve_limits, max_in_flight), 1},
        {"idle_timeout", 0, offsetof(serve_limits, idle_timeout_ms), 0},
        {"request_timeout", 0, offsetof(serve_limits, request_timeout_ms), 0},
        {"drain_timeout", 0, offsetof(serve_limits, drain_timeout_ms), 0},
        {"heartbeat", 0, offsetof(serve_limits, heartbeat_ms), 0},
        {"cache_max_bytes", 1, offsetof(serve_limits, cache_max_bytes), 1},
        {"cache_max_entries", 1, offsetof(serve_limits, cache_max_entries), 1},
    };
    yaml_node_pair_t *p;
    size_t i;
    if (map->type != YAML_MAPPING_NODE)
        return fail(r, map,
                    "key 'limits': must be a mapping (max_body: 8MiB, "
                    "drain_timeout: 30s, ...)");
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
        const char *key = scalar(k), *val = scalar(v);
        char *field;
        if (twice(r, map, p, "limits."))
            return -1;
        if (key && !strcmp(key, "cache_backend")) {
            if (!val || (strcmp(val, "lru") && strcmp(val, "redis")))
                return fail(r, v,
                            "key 'limits.cache_backend': want lru (this "
                            "process) or redis (the redis: entry's server)");
            cfg->limits.cache_redis = !strcmp(val, "redis");
            continue;
        }
        for (i = 0; key && i < sizeof keys / sizeof keys[0]; i++)
            if (!strcmp(key, keys[i].key))
                break;
        if (!key || i == sizeof keys / sizeof keys[0])
            return fail(r, k,
                        "key 'limits.%s': unknown (max_body, max_header, "
                        "max_connections, max_in_flight, idle_timeout, "
                        "request_timeout, drain_timeout, heartbeat, "
                        "cache_max_bytes, cache_max_entries, "
                        "cache_backend)",
                        key ? key : "?");
        field = (char *)&cfg->limits + keys[i].off;
        if (keys[i].is_size) {
            size_t n;
            if (parse_size(val, &n) || n < keys[i].min)
                return fail(r, v,
                            "key 'limits.%s': want a size of at least %zu "
                            "(a number, or with B, KiB, MiB, GiB, KB, MB, "
                            "GB)",
                            key, keys[i].min);
            memcpy(field, &n, sizeof n);
        } else {
            long ms;
            if (parse_duration(val, &ms))
                return fail(r, v,
                            "key 'limits.%s': want a duration (30s, "
                            "500ms, 2m, 1h; a bare number is seconds; 0 "
                            "is off)",
                            key);
            memcpy(field, &ms, sizeof ms);
        }
    }
    return 0;
}

/* A positive whole number (rpm, tpm), at most 1e12. */
static int parse_count(const char *s, double *out)
{
    char *end;
    unsigned long long v;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > 1000000000000ULL)
        return -1;
    *out = (double)v;
    return 0;
}

/* An amount in USD above 0, at most 1e12 ("12.50"). */
static int parse_usd(const char *s, double *out)
{
    static const unit none[] = {{"", 1}};
    double v;
    if (parse_scaled(s, none, 1, 1e12, &v) || !(v > 0))
        return -1;
    *out = v;
    return 0;
}

/* One entry of keys: {key | key_env, name, models, rpm, tpm, budget_usd,
 * budget_window}.
 * Messages name the entry (keys[I]) and its name, never the key's value. */
static int read_key(reader *r, serve_config *cfg, yaml_node_t *map, size_t ki)
{
    serve_key *k = &cfg->keys[ki];
    const char *value = NULL;
    yaml_node_t *value_node = map;
    yaml_node_pair_t *p;
    size_t j;
    if (map->type != YAML_MAPPING_NODE)
        return fail(r, map,
                    "key 'keys[%zu]': want a mapping {key: ..., name: ...}",
                    ki);
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
        const char *key = scalar(kn), *val = scalar(v);
        char where[32];
        if (!key)
            return fail(r, kn, "key 'keys[%zu]': a key must be a string", ki);
        snprintf(where, sizeof where, "keys[%zu].", ki);
        if (twice(r, map, p, where))
            return -1;
        if (!strcmp(key, "key") || !strcmp(key, "key_env")) {
            if (value)
                return fail(r, kn,
                            "key 'keys[%zu].%s': give one of key and key_env",
                            ki, key);
            if (!val || !*val)
                return fail(r, v, "key 'keys[%zu].%s': want a non-empty string",
                            ki, key);
            value_node = v;
            if (key[3]) { /* key_env */
                value = getenv(val);
                if (!value)
                    return fail(r, v,
                                "key 'keys[%zu].key_env': variable %s is not "
                                "set",
                                ki, val);
                if (!*value)
                    return fail(r, v,
                                "key 'keys[%zu].key_env': variable %s is "
                                "empty",
                                ki, val);
            } else
                value = val;
        } else if (!strcmp(key, "name")) {
            if (!val || !*val)
                return fail(r, v,
                            "key 'keys[%zu].name': want a non-empty "
                            "string",
                            ki);
            for (j = 0; j < ki; j++)
                if (!strcmp(cfg->keys[j].name, val))
                    return fail(r, v,
                                "key 'keys[%zu].name': '%s' is also the name "
                                "of keys[%zu]",
                                ki, val, j);
            free(k->name);
            if (!(k->name = strdup(val)))
                return fail(r, v, "out of memory");
        } else if (!strcmp(key, "models")) {
            yaml_node_item_t *i;
            if (v->type != YAML_SEQUENCE_NODE)
                return fail(
                    r, v, "key 'keys[%zu].models': want a list of routes", ki);
            free(k->models);
            k->n_models = 0;
            if (!(k->models = calloc((size_t)(v->data.sequence.items.top -
                                              v->data.sequence.items.start) +
                                         1,
                                     sizeof *k->models)))
                return fail(r, v, "out of memory");
            for (i = v->data.sequence.items.start;
                 i < v->data.sequence.items.top; i++) {
                yaml_node_t *m = yaml_document_get_node(r->doc, *i);
                const char *name = scalar(m);
                if (!name || !serve_config_route(cfg, name))
                    return fail(r, m,
                                "key 'keys[%zu].models': '%s' is not a route "
                                "of routes:",
                                ki, name ? name : "?");
                if (!(k->models[k->n_models++] = strdup(name)))
                    return fail(r, m, "out of memory");
            }
        } else if (!strcmp(key, "rpm") || !strcmp(key, "tpm")) {
            if (parse_count(val, key[0] == 'r' ? &k->rpm : &k->tpm))
                return fail(r, v,
                            "key 'keys[%zu].%s': want a whole number above 0",
                            ki, key);
        } else if (!strcmp(key, "budget_usd")) {
            if (parse_usd(val, &k->budget_usd))
                return fail(r, v,
                            "key 'keys[%zu].budget_usd': want an amount in "
                            "USD above 0 (12.50)",
                            ki);
        } else if (!strcmp(key, "budget_window")) {
            if (parse_window(val, &k->budget_window_ms))
                return fail(r, v,
                            "key 'keys[%zu].budget_window': want a duration "
                            "from 1s to 366d (1d, 12h, 30m)",
                            ki);
        } else
            return fail(r, kn,
                        "key 'keys[%zu].%s': unknown (key, key_env, name, "
                        "models, rpm, tpm, budget_usd, budget_window)",
                        ki, key);
    }
    if (!value)
        return fail(r, map, "key 'keys[%zu]': key or key_env is required", ki);
    if (!k->name)
        return fail(r, map, "key 'keys[%zu].name': required", ki);
    if (k->budget_window_ms && !(k->budget_usd > 0))
        return fail(r, map,
                    "key 'keys[%zu].budget_window': wants budget_usd too", ki);
    if (k->budget_usd > 0) { /* its scope "key:NAME" names it in Redis */
        const char *c;
        for (c = k->name; *c && *c > ' ' && *c < 0x7f; c++)
            ;
        if (*c || strlen(k->name) > 120)
            return fail(r, map,
                        "key 'keys[%zu].name': a key with budget_usd needs a "
                        "name of at most 120 printable ASCII characters "
                        "without spaces",
                        ki);
    }
    SHA256((const unsigned char *)value, strlen(value), k->digest);
    for (j = 0; j < ki; j++)
        if (!CRYPTO_memcmp(cfg->keys[j].digest, k->digest, sizeof k->digest))
            return fail(r, value_node,
                        "key 'keys[%zu]' (%s): the same key as keys[%zu] (%s)",
                        ki, k->name, j, cfg->keys[j].name);
    return 0;
}

/* Read after routes (whatever their order in the file), so that a key's
 * models can be checked against them. */
static int read_keys(reader *r, serve_config *cfg, yaml_node_t *seq)
{
    yaml_node_item_t *i;
    if (seq->type != YAML_SEQUENCE_NODE)
        return fail(r, seq, "key 'keys': want a list of {key: ..., name: ...}");
    cfg->keys = calloc((size_t)(seq->data.sequence.items.top -
                                seq->data.sequence.items.start) +
                           1,
                       sizeof *cfg->keys);
    if (!cfg->keys)
        return fail(r, seq, "out of memory");
    for (i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++)
        /* counted first, so that serve_config_free frees a half-read one */
        if (read_key(r, cfg, yaml_document_get_node(r->doc, *i), cfg->n_keys++))
            return -1;
    return 0;
}

/* log: {access: stderr | off | PATH} */
static int read_log(reader *r, serve_config *cfg, yaml_node_t *map)
{
    yaml_node_pair_t *p;
    if (map->type != YAML_MAPPING_NODE)
        return fail(r, map, "key 'log': must be a mapping (access: stderr)");
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
        const char *key = scalar(k), *val = scalar(v);
        if (!key || strcmp(key, "access"))
            return fail(r, k, "key 'log.%s': unknown (access)",
                        key ? key : "?");
        if (twice(r, map, p, "log."))
            return -1;
        if (!val || !*val)
            return fail(r, v,
                        "key 'log.access': want stderr, off or a file path");
        free(cfg->access_log);
        if (!(cfg->access_log = strdup(val)))
            return fail(r, v, "out of memory");
    }
    return 0;
}

/* tls: {cert: FILE, key: FILE, min_version: TLS1.2|TLS1.3}. The files are
 * loaded here, so that a bad path or a key that does not match the
 * certificate is an error naming the line and the key, at start. */
static int read_tls(reader *r, serve_config *cfg, yaml_node_t *map)
{
    yaml_node_t *nodes[3] = {NULL, NULL, NULL}; /* cert, key, min_version */
    static const char *const names[3] = {"cert", "key", "min_version"};
    yaml_node_pair_t *p;
    const char *which;
    char msg[512];
    size_t i;
    if (map->type != YAML_MAPPING_NODE)
        return fail(r, map,
                    "key 'tls': must be a mapping (cert: FILE, key: FILE)");
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        const char *key = scalar(k), *val;
        if (twice(r, map, p, "tls."))
            return -1;
        for (i = 0; key && i < 3; i++)
            if (!strcmp(key, names[i]))
                break;
        if (!key || i == 3)
            return fail(r, k, "key 'tls.%s': unknown (cert, key, min_version)",
                        key ? key : "?");
        nodes[i] = yaml_document_get_node(r->doc, p->value);
        if (!(val = scalar(nodes[i])) || !*val)
            return fail(r, nodes[i], "key 'tls.%s': want a %s", key,
                        i < 2 ? "file name" : "TLS1.2 or TLS1.3");
    }
    if (!nodes[0] || !nodes[1])
        return fail(r, map, "key 'tls.%s': missing (tls needs cert and key)",
                    nodes[0] ? "key" : "cert");
    cfg->tls.min_version = 12;
    if (nodes[2]) {
        const char *v = scalar(nodes[2]);
        if (!strcmp(v, "TLS1.3"))
            cfg->tls.min_version = 13;
        else if (strcmp(v, "TLS1.2"))
            return fail(r, nodes[2],
                        "key 'tls.min_version': want TLS1.2 or TLS1.3");
    }
    serve_tls_free(cfg->tls.ctx);
    free(cfg->tls.cert);
    free(cfg->tls.key);
    cfg->tls.cert = strdup(scalar(nodes[0]));
    cfg->tls.key = strdup(scalar(nodes[1]));
    if (!cfg->tls.cert || !cfg->tls.key)
        return fail(r, map, "out of memory");
    cfg->tls.ctx = serve_tls_new(cfg->tls.cert, cfg->tls.key,
                                 cfg->tls.min_version, &which, msg, sizeof msg);
    if (!cfg->tls.ctx) {
        yaml_node_t *at = map; /* the line of the setting at fault */
        for (i = 0; i < 3; i++)
            if (!strcmp(which, names[i]) && nodes[i])
                at = nodes[i];
        return fail(r, at, "key 'tls.%s': %s", which, msg);
    }
    return 0;
}

/* YAML 1.1's booleans as libyaml hands them over: plain scalars. */
static int read_bool(reader *r, yaml_node_t *v, const char *key, int *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "on"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "off"};
    const char *s = scalar(v);
    size_t i;
    for (i = 0; s && i < sizeof yes / sizeof *yes; i++) {
        if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
            *out = !strcmp(s, yes[i]);
            return 0;
        }
    }
    return fail(r, v, "key '%s': want true or false", key);
}

/* redis: url, prefix, fallback: checked by llmux itself (a config
 * string carrying them), so the gateway refuses what the client would,
 * with its message (a password masked). */
static int read_redis(reader *r, serve_config *cfg, yaml_node_t *map)
{
    static const char *const names[3] = {"url", "prefix", "fallback"};
    static const char *const keys[3] = {"limits", "limits_prefix",
                                        "limits_fallback"};
    char **slots[3];
    yaml_node_pair_t *p;
    size_t i;
    slots[0] = &cfg->redis.url;
    slots[1] = &cfg->redis.prefix;
    slots[2] = &cfg->redis.fallback;
    if (map->type != YAML_MAPPING_NODE)
        return fail(
            r, map,
            "key 'redis': must be a mapping (url: redis://HOST:PORT/DB, "
            "prefix:, fallback: closed|local)");
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
        const char *key = scalar(k), *val = scalar(v);
        llmux_request *req = NULL;
        char spec[2048];
        int rc;
        if (twice(r, map, p, "redis."))
            return -1;
        for (i = 0; key && i < 3; i++)
            if (!strcmp(key, names[i]))
                break;
        if (!key || i == 3)
            return fail(r, k, "key 'redis.%s': unknown (url, prefix, fallback)",
                        key ? key : "?");
        if (!val || !*val || strchr(val, ';'))
            return fail(r, v, "key 'redis.%s': want a value without ';'", key);
        snprintf(spec, sizeof spec, "openai/m;%s=%s", keys[i], val);
        rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
        if (rc) {
            const char *m = req ? llmux_request_errmsg(req) : NULL;
            const char *w = m ? strstr(m, "wants ") : NULL;
            rc = fail(r, v, "key 'redis.%s': %s", key,
                      w ? w : llmux_strerror(rc));
            llmux_request_free(req);
            return rc;
        }
        llmux_request_free(req);
        free(*slots[i]);
        if (!(*slots[i] = strdup(val)))
            return fail(r, v, "out of memory");
    }
    if (!cfg->redis.url)
        return fail(r, map, "key 'redis.url': missing");
    return 0;
}

static int read_root(reader *r, serve_config *cfg)
{
    yaml_node_t *keys = NULL;
    yaml_node_t *root = yaml_document_get_root_node(r->doc);
    yaml_node_pair_t *p;
    int have_routes = 0;
    if (!root)
        return fail(r, NULL, "empty config (want listen: and routes:)");
    if (root->type != YAML_MAPPING_NODE)
        return fail(r, root,
                    "the config must be a mapping (listen:, "
                    "routes:)");
    for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
        const char *key = scalar(k);
        if (!key)
            return fail(r, k, "a key must be a string");
        if (twice(r, root, p, ""))
            return -1;
        if (!strcmp(key, "listen")) {
            const char *s = scalar(v);
            if (!s || !strchr(s, ':'))
                return fail(r, v, "key 'listen': want HOST:PORT");
            free(cfg->listen);
            if (!(cfg->listen = strdup(s)))
                return fail(r, v, "out of memory");
        } else if (!strcmp(key, "limits")) {
            if (read_limits(r, cfg, v))
                return -1;
        } else if (!strcmp(key, "log")) {
            if (read_log(r, cfg, v))
                return -1;
        } else if (!strcmp(key, "routes")) {
            if (read_routes(r, cfg, v))
                return -1;
            have_routes = 1;
        } else if (!strcmp(key, "keys")) {
            keys = v;
        } else if (!strcmp(key, "tls")) {
            if (read_tls(r, cfg, v))
                return -1;
        } else if (!strcmp(key, "passthrough")) {
            if (read_bool(r, v, key, &cfg->passthrough))
                return -1;
        } else if (!strcmp(key, "redis")) {
            if (read_redis(r, cfg, v))
                return -1;
        } else
            return fail(r, k,
                        "key '%s': unknown (listen, routes, limits, keys, "
                        "log, tls, passthrough, redis)",
                        key);
    }
    if (!have_routes || !cfg->n_routes)
        return fail(r, root, "key 'routes': missing or empty");
    if (cfg->limits.cache_redis && !cfg->redis.url)
        return fail(r, root,
                    "key 'limits.cache_backend': redis wants the redis: "
                    "entry (url: redis://HOST:PORT/DB)");
    if (keys && read_keys(r, cfg, keys))
        return -1;
    return 0;
}

int serve_config_load(serve_config *cfg, const char *path, char *err,
                      size_t errlen)
{
    static const serve_limits defaults = SERVE_LIMITS_INIT;
    yaml_parser_t parser;
    yaml_document_t doc;
    reader r = {&doc, path, err, errlen};
    FILE *f = fopen(path, "rb");
    int rc;
    cfg->limits = defaults;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%lu: YAML: %s", path,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "cannot parse");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    rc = read_root(&r, cfg);
    if (!rc) { /* a second document ("---") would be silently ignored */
        yaml_document_t more;
        if (!yaml_parser_load(&parser, &more)) {
            snprintf(err, errlen, "%s:%lu: YAML: %s", path,
                     (unsigned long)parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "cannot parse");
            rc = -1;
        } else {
            yaml_node_t *root2 = yaml_document_get_root_node(&more);
            if (root2) {
                snprintf(err, errlen,
                         "%s:%lu: a second YAML document: the config is one",
                         path, (unsigned long)root2->start_mark.line + 1);
                rc = -1;
            }
            yaml_document_delete(&more);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc)
        serve_config_free(cfg);
    return rc;
}

void serve_config_free(serve_config *cfg)
{
    size_t i, j;
    if (cfg->redis.url) /* it may hold a password */
        OPENSSL_cleanse(cfg->redis.url, strlen(cfg->redis.url));
    free(cfg->redis.url);
    free(cfg->redis.prefix);
    free(cfg->redis.fallback);
    for (i = 0; i < cfg->n_routes; i++) {
        for (j = 0; j < cfg->routes[i].n_specs; j++)
            free(cfg->routes[i].specs[j]);
        free(cfg->routes[i].specs);
        free(cfg->routes[i].name);
    }
    free(cfg->routes);
    for (i = 0; i < cfg->n_keys; i++) {
        for (j = 0; j < cfg->keys[i].n_models; j++)
            free(cfg->keys[i].models[j]);
        free(cfg->keys[i].models);
        free(cfg->keys[i].name);
        OPENSSL_cleanse(cfg->keys[i].digest, sizeof cfg->keys[i].digest);
    }
    free(cfg->keys);
    free(cfg->listen);
    free(cfg->access_log);
    serve_tls_free(cfg->tls.ctx);
    free(cfg->tls.cert);
    free(cfg->tls.key);
    memset(cfg, 0, sizeof *cfg);
}

const serve_route *serve_config_route(const serve_config *cfg, const char *name)
{
    size_t i;
    for (i = 0; i < cfg->n_routes; i++)
        if (!strcmp(cfg->routes[i].name, name))
            return &cfg->routes[i];
    return NULL;
}
