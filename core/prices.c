/*
 * core/prices.c: the price table (data/prices.json, compiled in as
 * llmux__prices_data, and a client's prices_file on top) and what an
 * answer costs from its usage. Prices are in USD per 1,000,000 tokens.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "internal.h"

/* data/prices.json, generated into the build (core/CMakeLists.txt) */
extern const unsigned char llmux__prices_data[];
extern const unsigned long llmux__prices_size;

typedef struct price_entry {
    char *provider, *model; /* model "*": every model of the provider */
    llmux__price p;
} price_entry;

struct llmux__prices {
    price_entry *v;
    size_t n;
};

void llmux__prices_free(llmux__prices *t)
{
    size_t i;
    if (!t)
        return;
    for (i = 0; i < t->n; i++) {
        llmux__free(t->v[i].provider);
        llmux__free(t->v[i].model);
    }
    llmux__free(t->v);
    llmux__free(t);
}

/* A price member: a number >= 0, or absent (*out = dflt). */
static int price_of(json_object *m, const char *key, double dflt, double *out)
{
    json_object *v;
    if (!json_object_object_get_ex(m, key, &v)) {
        *out = dflt;
        return 0;
    }
    if (!json_object_is_type(v, json_type_double) &&
        !json_object_is_type(v, json_type_int))
        return -1;
    *out = json_object_get_double(v);
    return isfinite(*out) && *out >= 0 ? 0 : -1;
}

static int add_entry(llmux__prices *t, size_t *cap, const char *provider,
                     const char *model, const llmux__price *p)
{
    price_entry *e;
    if (t->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        price_entry *nv = llmux__realloc(t->v, nc * sizeof *nv);
        if (!nv)
            return LLMUX_ENOMEM;
        t->v = nv;
        *cap = nc;
    }
    e = &t->v[t->n];
    e->provider = llmux__strdup(provider);
    e->model = llmux__strdup(model);
    e->p = *p;
    if (!e->provider || !e->model) {
        llmux__free(e->provider);
        llmux__free(e->model);
        return LLMUX_ENOMEM;
    }
    t->n++;
    return 0;
}

/* One provider's "models" object into t. */
static int load_models(llmux__prices *t, size_t *cap, const char *provider,
                       json_object *models, char *err, size_t errlen)
{
    json_object_object_foreach(models, model, m)
    {
        llmux__price p;
        int rc;
        if (!json_object_is_type(m, json_type_object) ||
            price_of(m, "input", -1, &p.input) || p.input < 0 ||
            price_of(m, "output", -1, &p.output) || p.output < 0 ||
            price_of(m, "cached_input", p.input, &p.cached_input)) {
            snprintf(err, errlen,
                     "prices: %s/%s needs \"input\" and \"output\" (and "
                     "may have \"cached_input\"): numbers of 0 or more, in "
                     "USD per million tokens",
                     provider, model);
            return LLMUX_ECONFIG;
        }
        if ((rc = add_entry(t, cap, provider, model, &p)) != 0)
            return rc;
    }
    return 0;
}

int llmux__prices_load(const char *json, size_t len, llmux__prices **out,
                       char *err, size_t errlen)
{
    json_tokener *tok;
    json_object *root = NULL, *provs;
    llmux__prices *t;
    size_t cap = 0;
    int rc = 0;
    *out = NULL;
    if (len > 0x7FFFFFF0u || memchr(json, '\0', len)) {
        snprintf(err, errlen, "prices: not JSON text");
        return LLMUX_ECONFIG;
    }
    if (!(tok = json_tokener_new()))
        return LLMUX_ENOMEM;
    root = json_tokener_parse_ex(tok, json, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        snprintf(err, errlen, "prices: invalid JSON (%s)",
                 json_tokener_error_desc(json_tokener_get_error(tok)));
        json_object_put(root);
        json_tokener_free(tok);
        return LLMUX_ECONFIG;
    }
    json_tokener_free(tok);
    if (!json_object_object_get_ex(root, "providers", &provs) ||
        !json_object_is_type(provs, json_type_object)) {
        snprintf(err, errlen, "prices: no \"providers\" object");
        json_object_put(root);
        return LLMUX_ECONFIG;
    }
    if (!(t = llmux__calloc(1, sizeof *t))) {
        json_object_put(root);
        return LLMUX_ENOMEM;
    }
    {
        json_object_object_foreach(provs, provider, pv)
        {
            json_object *models;
            if (!json_object_object_get_ex(pv, "models", &models) ||
                !json_object_is_type(models, json_type_object)) {
                snprintf(err, errlen, "prices: %s has no \"models\" object",
                         provider);
                rc = LLMUX_ECONFIG;
                break;
            }
            if ((rc = load_models(t, &cap, provider, models, err, errlen)))
                break;
        }
    }
    json_object_put(root);
    if (rc) {
        llmux__prices_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static llmux__prices *builtin;

static void load_builtin(void)
{
    char err[LLMUX__ERRBUF];
    /* checked by the tests; a table that does not load prices nothing */
    llmux__prices_load((const char *)llmux__prices_data,
                       (size_t)llmux__prices_size, &builtin, err, sizeof err);
}

const llmux__prices *llmux__prices_builtin(void)
{
    pthread_once(&builtin_once, load_builtin);
    return builtin;
}

/* How well `key` names `model`: exact (beats everything), a prefix
 * followed by '-' (the longer the better), "*" (last), or 0 for no. */
static size_t model_match(const char *key, const char *model)
{
    size_t k = strlen(key);
    if (strcmp(key, model) == 0)
        return (size_t)-1;
    if (strcmp(key, "*") == 0)
        return 1;
    if (strncmp(key, model, k) == 0 && model[k] == '-')
        return k + 1;
    return 0;
}

int llmux__price_find(const llmux__prices *t, const char *provider,
                      const char *model, llmux__price *out)
{
    size_t i, best = 0;
    if (!t || !provider || !model)
        return 0;
    for (i = 0; i < t->n; i++) {
        size_t m;
        if (strcasecmp(t->v[i].provider, provider) != 0)
            continue;
        m = model_match(t->v[i].model, model);
        if (m > best) {
            best = m;
            *out = t->v[i].p;
        }
    }
    return best > 0;
}

double llmux__cost(const llmux__price *p, const llmux_usage *u)
{
    double prompt = u->prompt_tokens > 0 ? (double)u->prompt_tokens : 0;
    double cached = u->cached_tokens > 0 ? (double)u->cached_tokens : 0;
    double out = u->completion_tokens > 0 ? (double)u->completion_tokens : 0;
    if (cached > prompt)
        cached = prompt;
    return ((prompt - cached) * p->input + cached * p->cached_input +
            out * p->output) /
           1e6;
}
