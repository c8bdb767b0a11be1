/* llmux serve: the YAML config file, read with libyaml's document loader.
 * Keys of this step: listen (HOST:PORT) and routes (a model name -> one
 * config string or a list of them). Any other key is refused, so that a
 * setting the gateway does not apply yet (keys:, limits:) is never
 * silently ignored. */
#include "serve.h"

#include <llmux/llmux.h>
#include <stdarg.h>
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

/* Checks a config string the way a request will use it, so a typo fails
 * at start rather than on the first request. */
static int check_spec(reader *r, const yaml_node_t *n, const char *route,
                      const char *spec)
{
    llmux_request *req = NULL;
    int rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
    if (rc) {
        fail(r, n, "key 'routes.%s': bad config string \"%s\": %s", route, spec,
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
        if (v && v->type == YAML_SEQUENCE_NODE) {
            yaml_node_item_t *i;
            for (i = v->data.sequence.items.start;
                 i < v->data.sequence.items.top; i++)
                if (add_spec(r, rt, yaml_document_get_node(r->doc, *i)))
                    return -1;
            if (!rt->n_specs)
                return fail(r, v, "key 'routes.%s': an empty list", name);
        } else if (add_spec(r, rt, v))
            return -1;
    }
    return 0;
}

static int read_root(reader *r, serve_config *cfg)
{
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
        if (!strcmp(key, "listen")) {
            const char *s = scalar(v);
            if (!s || !strchr(s, ':'))
                return fail(r, v, "key 'listen': want HOST:PORT");
            free(cfg->listen);
            if (!(cfg->listen = strdup(s)))
                return fail(r, v, "out of memory");
        } else if (!strcmp(key, "routes")) {
            if (read_routes(r, cfg, v))
                return -1;
            have_routes = 1;
        } else
            return fail(r, k,
                        "key '%s': unknown or not supported yet (this "
                        "step reads listen and routes)",
                        key);
    }
    if (!have_routes || !cfg->n_routes)
        return fail(r, root, "key 'routes': missing or empty");
    return 0;
}

int serve_config_load(serve_config *cfg, const char *path, char *err,
                      size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    reader r = {&doc, path, err, errlen};
    FILE *f = fopen(path, "rb");
    int rc;
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
    for (i = 0; i < cfg->n_routes; i++) {
        for (j = 0; j < cfg->routes[i].n_specs; j++)
            free(cfg->routes[i].specs[j]);
        free(cfg->routes[i].specs);
        free(cfg->routes[i].name);
    }
    free(cfg->routes);
    free(cfg->listen);
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
