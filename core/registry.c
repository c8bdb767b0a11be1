/*
 * core/registry.c: the provider registry, the cache of resolved providers,
 * and the resolution of a name (registered, descriptor, module, path).
 *
 * A provider name resolves, in order, to (1) a provider registered
 * in-process with llmux_register_provider(), (2) in each plugin directory
 * (plugin_dirs.c; llmux_plugin_dirs_list() lists them) a descriptor
 * "<name>.conf" or else a module "<name>.so", (3) for a name holding
 * '/', the file it names (a module, or a descriptor when it ends in
 * ".conf"). Names are validated before any path is built from them.
 *
 * Modules are opened by module.c, descriptors read by descriptor.c. Every
 * resolved name gets its own llmux__provider and provctx (init runs once
 * per name with the descriptor's options); two names on the same module
 * share one lt_dlhandle through ltdl's own reference count. Results are
 * cached per name until llmux__providers_cleanup(). One mutex serialises
 * ltdl, the registry and the cache, since libltdl is not known to be
 * thread-safe.
 *
 * Calls plugin_dirs.c, descriptor.c, module.c and loader_util.c; called
 * by listing.c, call.c and client.c (loader.h has the whole picture).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"

/* A cached provider: the shared view plus what only the loader needs. */
typedef struct loaded {
    llmux__provider pub;
    char *description; /* descriptor's, or NULL (then the plugin's) */
} loaded;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const llmux_provider **g_reg; /* registered in-process tables */
static size_t g_nreg, g_capreg;
static loaded **g_cache; /* resolved providers, in resolution order */
static size_t g_ncache, g_capcache;

/* ---- the registry and the cache -------------------------------------------
 */

static const llmux_provider *find_registered(const char *name)
{
    size_t i;
    for (i = 0; i < g_nreg; i++)
        if (strcmp(g_reg[i]->name, name) == 0)
            return g_reg[i];
    return NULL;
}

static loaded *find_cached(const char *name)
{
    size_t i;
    for (i = 0; i < g_ncache; i++)
        if (strcmp(g_cache[i]->pub.name, name) == 0)
            return g_cache[i];
    return NULL;
}

/* The module file for `name` in `dir`, or NULL (*oom set on failure). */
static char *module_in_dir(const char *dir, const char *name, int *oom)
{
    char *path;
    if (llmux__ends_with(name, LLMUX__MODULE_EXT))
        path = llmux__join_path(dir, name, NULL);
    else
        path = llmux__join_path(dir, name, LLMUX__MODULE_EXT);
    if (!path) {
        *oom = 1;
        return NULL;
    }
    if (llmux__is_file(path))
        return path;
    llmux__free(path);
    return NULL;
}

static void loaded_free(loaded *l)
{
    llmux__provider *p = &l->pub;
    llmux__free(p->name);
    llmux__free(p->module);
    llmux__free(p->path);
    llmux__free(p->descriptor);
    llmux__free(p->base_url);
    llmux__free(p->api_key_env);
    llmux__free(p->base_url_env);
    llmux__kvs_free(p->opts, p->n_opts);
    llmux__free(l->description);
    llmux__free(l);
}

static char *dup_or_null(const char *s, int *oom)
{
    char *d = NULL;
    if (s && !(d = llmux__strdup(s)))
        *oom = 1;
    return d;
}

int llmux__plugin_reads(const llmux_provider *vt, const char *k, int descriptor)
{
    const llmux_option_def *o;
    if (!LLMUX_PROVIDER_HAS(vt, options) || !vt->options)
        return 1;
    for (o = vt->options; o->name; o++)
        if ((descriptor || !(o->flags & LLMUX_OPTION_DESCRIPTOR)) &&
            (!strcmp(o->name, "*") || llmux__strcaseeq(o->name, k)))
            return 1;
    return 0;
}

void llmux__options_list(const llmux_provider *vt, int descriptor, char *list,
                         size_t len)
{
    const llmux_option_def *o;
    const char *k;
    size_t n = 0, i;
    list[0] = '\0';
    for (o = vt->options; o && o->name && n < len; o++)
        if (descriptor || !(o->flags & LLMUX_OPTION_DESCRIPTOR))
            n += (size_t)snprintf(list + n, len - n, "%s%s", n ? ", " : "",
                                  o->name);
    for (i = 0; (k = llmux__setting_key(i)) != NULL && n < len; i++)
        n += (size_t)snprintf(
            list + n, len - n, "%s%s",
            !i ? (n ? "; the core's: " : "the core's: ") : ", ", k);
}

/* Whether the module checks its descriptors' keys: it lists one read
 * from a descriptor only. */
static int checks_descriptors(const llmux_provider *vt)
{
    const llmux_option_def *o;
    if (!LLMUX_PROVIDER_HAS(vt, options) || !vt->options)
        return 0;
    for (o = vt->options; o->name; o++)
        if (o->flags & LLMUX_OPTION_DESCRIPTOR)
            return 1;
    return 0;
}

/*
 * Builds the provider `name` from table `vt` (module file `path`, or
 * "built-in"), applies descriptor `d` (may be NULL), runs init and caches
 * it. Takes over `handle`: on failure it is closed.
 */
/* A loaded provider's names, paths and endpoint defaults: the
 * descriptor's where it sets them (its options move over), else the
 * module's. Sets *oom when a copy fails. */
static void describe(loaded *l, const char *name, const llmux_provider *vt,
                     lt_dlhandle handle, const char *path, llmux__desc *d,
                     int *oom_out)
{
    llmux__provider *p = &l->pub;
    int oom = *oom_out;
    p->vt = vt;
    p->handle = handle;
    p->name = dup_or_null(name, &oom);
    /* the module as the user knows it: its file's name (a descriptor's
     * module key names the file), not the table's internal name */
    if (strcmp(path, LLMUX__BUILTIN) == 0)
        p->module = dup_or_null(d && d->module ? d->module : vt->name, &oom);
    else if (!oom && (p->module = llmux__module_label(path)) == NULL)
        oom = 1;
    p->path = dup_or_null(path, &oom);
    if (d) {
        p->descriptor = dup_or_null(d->path, &oom);
        p->base_url = dup_or_null(d->base_url, &oom);
        p->api_key_env = dup_or_null(d->api_key_env, &oom);
        p->base_url_env = dup_or_null(d->base_url_env, &oom);
        l->description = dup_or_null(d->description, &oom);
        /* the descriptor's options move over */
        p->opts = d->opts;
        p->n_opts = d->n_opts;
        d->opts = NULL;
        d->n_opts = 0;
    }
    /* what the descriptor does not set comes from the module */
    if (!d || !d->has_base_url)
        p->base_url = dup_or_null(vt->default_base_url, &oom);
    /* A descriptor that points the module at another endpoint must not
     * inherit the module's variables: OPENAI_API_KEY would be sent to that
     * endpoint, and OPENAI_BASE_URL would redirect its traffic. */
    if (!d || (!d->has_api_key_env && !d->has_base_url))
        p->api_key_env = dup_or_null(vt->api_key_env, &oom);
    if (!d || (!d->has_base_url_env && !d->has_base_url))
        p->base_url_env = dup_or_null(vt->base_url_env, &oom);
    *oom_out = oom;
}

static int make_provider(const char *name, const llmux_provider *vt,
                         lt_dlhandle handle, const char *path, llmux__desc *d,
                         loaded **out, char *err, size_t errlen)
{
    loaded *l;
    llmux__provider *p;
    llmux_provider_config cfg;
    int oom = 0, rc;
    size_t i;

    l = llmux__calloc(1, sizeof *l);
    if (!l) {
        if (handle)
            lt_dlclose(handle);
        return LLMUX_ENOMEM;
    }
    p = &l->pub;
    describe(l, name, vt, handle, path, d, &oom);
    if (!oom && g_ncache == g_capcache) {
        size_t cap = g_capcache ? g_capcache * 2 : 8;
        loaded **nc = llmux__realloc(g_cache, cap * sizeof *nc);
        if (nc) {
            g_cache = nc;
            g_capcache = cap;
        } else {
            oom = 1;
        }
    }
    if (oom) {
        rc = LLMUX_ENOMEM;
        goto fail;
    }
    /* the descriptor's core settings (timeout, auth ...) apply to every
     * request of this name: a bad value fails the load, not each request;
     * another key must be the module's when the module checks them */
    for (i = 0; i < p->n_opts; i++) {
        const char *k = p->opts[i].key;
        char list[LLMUX__MSGBUF / 2];
        if ((rc = llmux__setting_check(p->descriptor, k, p->opts[i].value, err,
                                       errlen)) != 0)
            goto fail;
        if (llmux__is_core_key(k) || !checks_descriptors(vt) ||
            llmux__plugin_reads(vt, k, 1))
            continue;
        llmux__options_list(vt, 1, list, sizeof list);
        rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                           "%s: unknown key \"%s\" (module %s reads: %s)",
                           p->descriptor, k, p->module ? p->module : vt->name,
                           list);
        goto fail;
    }
    if (vt->init) {
        cfg.struct_size = (uint32_t)sizeof cfg;
        cfg.name = p->name;
        cfg.options = p->opts;
        cfg.n_options = p->n_opts;
        rc = vt->init(&llmux__host, &cfg, &p->provctx);
        if (rc != 0) {
            rc = llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                               "%s: init failed for provider \"%s\" (%d)", path,
                               name, rc);
            goto fail;
        }
    }
    g_cache[g_ncache++] = l;
    *out = l;
    return 0;

fail:
    if (p->handle)
        lt_dlclose(p->handle);
    loaded_free(l);
    return rc;
}

/* Prefixes the message in err with "<descriptor>: " (in place). */
static void prefix_err(const char *prefix, char *err, size_t errlen)
{
    char *tmp;
    if (!err || !errlen)
        return;
    tmp = llmux__asprintf("%s: %s", prefix, err);
    if (tmp) {
        snprintf(err, errlen, "%s", tmp);
        llmux__free(tmp);
    }
}

/* Loads provider `name` from the descriptor at `path`. */
static int load_descriptor(const char *name, const char *path,
                           const char *extra, loaded **out, char *err,
                           size_t errlen)
{
    llmux__desc d;
    const llmux_provider *vt = NULL;
    lt_dlhandle h = NULL;
    char *modpath = NULL;
    int rc, oom = 0;

    if ((rc = llmux__desc_parse(path, &d, err, errlen)) != 0)
        return rc;

    if (strchr(d.module, '/')) {
        /* a path: relative ones are relative to the descriptor */
        if (d.module[0] == '/') {
            modpath = llmux__strdup(d.module);
        } else {
            char *dir = llmux__dir_of(path);
            modpath = dir ? llmux__join_path(dir, d.module, NULL) : NULL;
            llmux__free(dir);
        }
        if (!modpath) {
            rc = LLMUX_ENOMEM;
        } else if (llmux__ends_with(modpath, LLMUX__CONF_EXT)) {
            rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                               "%s:%d: module \"%s\" is a descriptor; a "
                               "descriptor must name a module",
                               path, d.module_line, d.module);
        } else if (!llmux__is_file(modpath)) {
            rc = llmux__seterr(err, errlen, LLMUX_ENOPROVIDER,
                               "%s:%d: module file %s not found", path,
                               d.module_line, modpath);
        }
    } else if (!llmux__valid_name(d.module)) {
        rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                           "%s:%d: invalid module name \"%s\"", path,
                           d.module_line, d.module);
    } else if ((vt = find_registered(d.module)) == NULL) {
        /* same search as for names, but modules only: no descriptor may
         * lead to another, so there are no loops */
        char **dirs;
        size_t n, i;
        if ((rc = llmux__dir_list(extra, &dirs, &n)) == 0) {
            for (i = 0; i < n && !modpath && !oom; i++)
                modpath = module_in_dir(dirs[i], d.module, &oom);
            if (oom)
                rc = LLMUX_ENOMEM;
            else if (!modpath)
                rc = llmux__not_found(path, ": module", d.module, dirs, n, err,
                                      errlen);
            llmux__strv_free(dirs, n);
        }
    }
    if (rc == 0 && modpath) {
        rc = llmux__module_open(modpath, &h, &vt, err, errlen);
        if (rc != 0)
            prefix_err(path, err, errlen);
    }
    if (rc == 0)
        rc = make_provider(name, vt, h, modpath ? modpath : LLMUX__BUILTIN, &d,
                           out, err, errlen);
    llmux__free(modpath);
    llmux__desc_free(&d);
    return rc;
}

static int load_module_file(const char *name, const char *path, loaded **out,
                            char *err, size_t errlen)
{
    lt_dlhandle h;
    const llmux_provider *vt;
    int rc = llmux__module_open(path, &h, &vt, err, errlen);
    if (rc != 0)
        return rc;
    return make_provider(name, vt, h, path, NULL, out, err, errlen);
}

/* Resolves `name` with the lock held. */
static int resolve(const char *name, const char *extra, loaded **out, char *err,
                   size_t errlen)
{
    const llmux_provider *vt;
    char **dirs;
    size_t n, i;
    int rc, found;

    if ((*out = find_cached(name)) != NULL)
        return 0;

    /* 3. a direct path */
    if (strchr(name, '/')) {
        if (!llmux__is_file(name))
            return llmux__seterr(err, errlen, LLMUX_ENOPROVIDER,
                                 "provider \"%s\" not found: no such file",
                                 name);
        if (llmux__ends_with(name, LLMUX__CONF_EXT))
            return load_descriptor(name, name, extra, out, err, errlen);
        return load_module_file(name, name, out, err, errlen);
    }
    if (!llmux__valid_name(name))
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "invalid provider name \"%s\" (allowed: "
                             "A-Z a-z 0-9 _ . -, not starting with '.')",
                             name);

    /* 1. registered in-process */
    if ((vt = find_registered(name)) != NULL)
        return make_provider(name, vt, NULL, LLMUX__BUILTIN, NULL, out, err,
                             errlen);

    /* 2. each plugin directory: descriptor, then module */
    if ((rc = llmux__dir_list(extra, &dirs, &n)) != 0)
        return rc;
    /* the first directory holding the name decides, even if broken */
    for (i = 0, rc = 0, found = 0; i < n && !found && rc == 0; i++) {
        int oom = 0;
        char *path = llmux__join_path(dirs[i], name, LLMUX__CONF_EXT);
        if (!path) {
            rc = LLMUX_ENOMEM;
        } else if (llmux__is_file(path)) {
            found = 1;
            rc = load_descriptor(name, path, extra, out, err, errlen);
        } else {
            llmux__free(path);
            path = module_in_dir(dirs[i], name, &oom);
            if (oom) {
                rc = LLMUX_ENOMEM;
            } else if (path) {
                found = 1;
                rc = load_module_file(name, path, out, err, errlen);
            }
        }
        llmux__free(path);
    }
    if (rc == 0 && !found)
        rc = llmux__not_found("", "provider", name, dirs, n, err, errlen);
    llmux__strv_free(dirs, n);
    return rc;
}

int llmux__provider_get(const char *name, const char *extra_dirs,
                        const llmux__provider **out, char *err, size_t errlen)
{
    loaded *l = NULL;
    int rc;
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return llmux__seterr(err, errlen, LLMUX_EINVAL, "no output");
    *out = NULL;
    if (!name || !*name)
        return llmux__seterr(err, errlen, LLMUX_EINVAL,
                             "no provider name given");
    pthread_mutex_lock(&g_lock);
    rc = resolve(name, extra_dirs, &l, err, errlen);
    pthread_mutex_unlock(&g_lock);
    if (rc == LLMUX_ENOMEM && err && errlen && !err[0])
        llmux__seterr(err, errlen, rc, "out of memory loading \"%s\"", name);
    if (rc == 0)
        *out = &l->pub;
    return rc;
}

void llmux__providers_cleanup(void)
{
    size_t i;
    pthread_mutex_lock(&g_lock);
    /* tear down in reverse order; a module stays loaded until its last
     * provider has been torn down (ltdl counts references) */
    for (i = g_ncache; i-- > 0;) {
        llmux__provider *p = &g_cache[i]->pub;
        if (p->vt->teardown)
            p->vt->teardown(p->provctx);
        if (p->handle)
            lt_dlclose((lt_dlhandle)p->handle);
        loaded_free(g_cache[i]);
    }
    llmux__free(g_cache);
    g_cache = NULL;
    g_ncache = g_capcache = 0;
    llmux__free(g_reg);
    g_reg = NULL;
    g_nreg = g_capreg = 0;
    llmux__ltdl_exit();
    pthread_mutex_unlock(&g_lock);
}

/* ---- public API -----------------------------------------------------------
 */

LLMUX_EXTERN const llmux_host *llmux_host_table(void)
{
    return &llmux__host;
}

LLMUX_EXTERN int llmux_register_provider(const llmux_provider *p)
{
    int rc;
    const llmux_provider *old;
    if (!p)
        return LLMUX_EINVAL;
    if ((rc = llmux__provider_check(p, "(registered)", NULL, 0)) != 0)
        return rc;
    if (!llmux__valid_name(p->name))
        return LLMUX_EINVAL;
    pthread_mutex_lock(&g_lock);
    old = find_registered(p->name);
    if (old) {
        /* the same table again is harmless; another one is a conflict */
        rc = old == p ? 0 : LLMUX_EINVAL;
    } else if (g_nreg == g_capreg) {
        size_t cap = g_capreg ? g_capreg * 2 : 4;
        const llmux_provider **nr = llmux__realloc(g_reg, cap * sizeof *nr);
        if (!nr) {
            rc = LLMUX_ENOMEM;
        } else {
            g_reg = nr;
            g_capreg = cap;
        }
    }
    if (rc == 0 && !old)
        g_reg[g_nreg++] = p;
    pthread_mutex_unlock(&g_lock);
    return rc;
}

/* ---- for the listing (listing.c) ------------------------------------------
 */

/*
 * A copy of the registered names, in order, for a listing whose callback
 * runs unlocked. On failure *names keeps what was copied (the caller
 * frees it).
 */
int llmux__registered_names(char ***names, size_t *n)
{
    size_t i;
    int rc = 0;
    pthread_mutex_lock(&g_lock);
    for (i = 0; i < g_nreg && rc == 0; i++)
        rc = llmux__strv_push_unique(names, n, g_reg[i]->name,
                                     strlen(g_reg[i]->name));
    pthread_mutex_unlock(&g_lock);
    return rc;
}

void llmux__provider_info_fill(const llmux__provider *pub,
                               llmux_provider_info *info)
{
    const loaded *l = (const loaded *)pub;
    const llmux__provider *p = &l->pub;
    memset(info, 0, sizeof *info);
    info->name = p->name;
    info->module = p->module;
    info->path = p->path;
    info->descriptor = p->descriptor;
    info->version = p->vt->version;
    info->description = l->description ? l->description : p->vt->description;
    info->base_url = p->base_url;
    info->api_key_env = p->api_key_env;
    info->caps = p->vt->caps;
}
