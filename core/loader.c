/*
 * core/loader.c: the provider registry and plugin loading.
 *
 * A provider name resolves, in order, to (1) a provider registered
 * in-process with llmux_register_provider(), (2) in each plugin directory
 * (dirv_build; llmux_plugin_dirs_list() lists them) a descriptor
 * "<name>.conf" or else a module "<name>.so", (3) for a name holding
 * '/', the file it names (a module, or a descriptor when it ends in
 * ".conf"). Names are validated before any path is built from them.
 *
 * Modules are opened with libltdl from full paths we build ourselves
 * (lt_dlopenadvise with ext + local advice; the global search path is
 * never touched), and entered through "llmux_provider_entry" or its
 * "<module>_LTX_" form. Every resolved name gets its own llmux__provider
 * and provctx (init runs once per name with the descriptor's options);
 * two names on the same module share one lt_dlhandle through ltdl's own
 * reference count. Results are cached per name until
 * llmux__providers_cleanup(). One mutex serialises ltdl, the registry and
 * the cache, since libltdl is not known to be thread-safe.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ltdl.h>

#include "internal.h"

#if (defined(__unix__) || defined(__APPLE__)) && !defined(LLMUX_NO_DLFCN)
#include <dlfcn.h>
#define LLMUX__HAVE_DLFCN 1
#endif
#if defined(__linux__)
#include <elf.h>
#include <link.h> /* ElfW() */
#define LLMUX__HAVE_ELF 1
#endif

/* Platform suffix of loadable modules (libltdl keeps its own private). */
#if defined(LT_MODULE_EXT)
#define LLMUX__MODULE_EXT LT_MODULE_EXT
#elif defined(_WIN32)
#define LLMUX__MODULE_EXT ".dll"
#else
#define LLMUX__MODULE_EXT ".so"
#endif

#define LLMUX__CONF_EXT ".conf"
/* Descriptors are small; anything bigger is a mistake. */
#define LLMUX__DESC_MAX (64 * 1024)
#define LLMUX__BUILTIN  "built-in"

/* A cached provider: the shared view plus what only the loader needs. */
typedef struct loaded {
    llmux__provider pub;
    char *description; /* descriptor's, or NULL (then the plugin's) */
} loaded;

/* A parsed descriptor. */
typedef struct desc {
    char *path;
    char *module;
    int module_line;
    char *base_url, *api_key_env, *base_url_env, *description;
    /* set in the file; an empty value then means "none", not "inherit" */
    int has_base_url, has_api_key_env, has_base_url_env;
    llmux_kv *opts;
    size_t n_opts;
} desc;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_ltdl_ready;
static const llmux_provider **g_reg; /* registered in-process tables */
static size_t g_nreg, g_capreg;
static loaded **g_cache; /* resolved providers, in resolution order */
static size_t g_ncache, g_capcache;

/* ---- small helpers --------------------------------------------------------
 */

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ASCII letters and digits, whatever the locale. */
static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

static int is_name_char(int c)
{
    return is_alnum(c) || c == '_' || c == '.' || c == '-';
}

/* Provider and module names: [A-Za-z0-9_.-]+, not starting with '.'. */
static int valid_name(const char *s)
{
    const char *p;
    if (!s || !*s || *s == '.')
        return 0;
    for (p = s; *p; p++)
        if (!is_name_char((unsigned char)*p))
            return 0;
    return 1;
}

static char *join_path(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir);
    const char *sep = (n && dir[n - 1] == '/') ? "" : "/";
    return llmux__asprintf("%s%s%s%s", dir, sep, name, ext ? ext : "");
}

static void free_strv(char **v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        llmux__free(v[i]);
    llmux__free(v);
}

static void free_kvs(llmux_kv *kv, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        llmux__free((char *)kv[i].key);
        llmux__free((char *)kv[i].value);
    }
    llmux__free(kv);
}

/* The directory part of path, for resolving a descriptor's relative
 * module path. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return llmux__strdup(".");
    if (slash == path)
        return llmux__strdup("/");
    return llmux__strndup(path, (size_t)(slash - path));
}

/* ---- plugin directories ---------------------------------------------------
 */

static int strv_push_unique(char ***v, size_t *n, const char *s, size_t len)
{
    size_t i;
    char **nv, *copy;
    for (i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && memcmp((*v)[i], s, len) == 0)
            return 0;
    copy = llmux__strndup(s, len);
    nv = copy ? llmux__realloc(*v, (*n + 1) * sizeof *nv) : NULL;
    if (!nv) {
        llmux__free(copy);
        return LLMUX_ENOMEM;
    }
    nv[(*n)++] = copy;
    *v = nv;
    return 0;
}

/* The directories of the search with where each comes from. */
typedef struct dirv {
    char **v;
    int *src; /* llmux_plugin_dir_source */
    size_t n;
} dirv;

static void dirv_free(dirv *d)
{
    free_strv(d->v, d->n);
    llmux__free(d->src);
    memset(d, 0, sizeof *d);
}

static int dirv_push(dirv *d, const char *s, size_t len, int src)
{
    size_t n = d->n;
    int *ns;
    int rc = strv_push_unique(&d->v, &d->n, s, len);
    if (rc != 0 || d->n == n)
        return rc; /* failed, or a duplicate: the first place wins */
    ns = llmux__realloc(d->src, d->n * sizeof *ns);
    if (!ns) {
        llmux__free(d->v[--d->n]);
        return LLMUX_ENOMEM;
    }
    ns[n] = src;
    d->src = ns;
    return 0;
}

/* Splits a LT_PATHSEP_CHAR-separated list, skipping empty parts. */
static int dirv_push_list(dirv *d, const char *list, int src)
{
    const char *p = list, *e;
    if (!list)
        return 0;
    for (;;) {
        e = strchr(p, LT_PATHSEP_CHAR);
        if (!e)
            e = p + strlen(p);
        if (e > p && dirv_push(d, p, (size_t)(e - p), src) != 0)
            return LLMUX_ENOMEM;
        if (!*e)
            return 0;
        p = e + 1;
    }
}

/*
 * The installed plugin directory, found relative to the shared library
 * that holds this code, so that an installed tree works from any prefix
 * and keeps working when moved; no absolute path of the build or install
 * tree is compiled into libllmux.so. LLMUX_PLUGIN_RELDIR is relative to
 * the library's directory ("llmux/plugins.d"). Whoever can write there can
 * replace the library itself, so the directory adds no one who could not
 * already run code in the process.
 *
 * The static library has no such file: the program's directory is no
 * guide (a program in /tmp/x would search /tmp/lib/..., which anyone may
 * create), so it searches only the directory configured at build time.
 * NULL when there is no such directory or on allocation failure (*oom).
 */
#ifndef LLMUX_PLUGIN_RELDIR
#define LLMUX_PLUGIN_RELDIR "llmux/plugins.d"
#endif
static char *relative_dir(int *oom)
{
#if defined(LLMUX__HAVE_DLFCN) && !defined(LLMUX_STATIC_LIB)
    char *file = NULL, *dir, *out;
    Dl_info info;
    if (dladdr((void *)(uintptr_t)&llmux_providers_list, &info) &&
        info.dli_fname && info.dli_fname[0])
        file = realpath(info.dli_fname, NULL);
    if (!file)
        return NULL;
    dir = dir_of(file);
    free(file); /* from realpath: libc's allocator */
    out = dir ? join_path(dir, LLMUX_PLUGIN_RELDIR, NULL) : NULL;
    llmux__free(dir);
    if (!out)
        *oom = 1;
    return out;
#else
    (void)oom;
    return NULL;
#endif
}

/* $LLMUX_PLUGIN_PATH, unless the process runs with privileges it did not
 * start with (setuid, setgid, capabilities): then a user's environment
 * must not choose the code it loads. */
static const char *env_plugin_path(void)
{
#if defined(__GLIBC__) || defined(__linux__)
    return secure_getenv("LLMUX_PLUGIN_PATH");
#else
    return getenv("LLMUX_PLUGIN_PATH");
#endif
}

/* The directories to search, in order, without duplicates. */
static int dirv_build(const char *extra, dirv *d)
{
    int oom = 0;
    char *rel;
    int rc = dirv_push_list(d, env_plugin_path(), LLMUX_PLUGIN_DIR_ENV);
    if (rc == 0)
        rc = dirv_push_list(d, extra, LLMUX_PLUGIN_DIR_OPTION);
    rel = rc == 0 ? relative_dir(&oom) : NULL;
    if (oom)
        rc = LLMUX_ENOMEM;
    if (rc == 0 && rel)
        rc = dirv_push(d, rel, strlen(rel), LLMUX_PLUGIN_DIR_RELATIVE);
    llmux__free(rel);
#ifdef LLMUX_CONFIGURED_PLUGIN_DIR
    /* static builds only: the plugins installed with the library */
    if (rc == 0)
        rc = dirv_push(d, LLMUX_CONFIGURED_PLUGIN_DIR,
                       strlen(LLMUX_CONFIGURED_PLUGIN_DIR),
                       LLMUX_PLUGIN_DIR_CONFIGURED);
#endif
    if (rc != 0)
        dirv_free(d);
    return rc;
}

static int dir_list(const char *extra, char ***out, size_t *n)
{
    dirv d = {NULL, NULL, 0};
    int rc = dirv_build(extra, &d);
    if (rc != 0)
        return rc;
    llmux__free(d.src);
    *out = d.v;
    *n = d.n;
    return 0;
}

LLMUX_EXTERN int llmux_plugin_dirs_list(const char *plugin_path,
                                        llmux_plugin_dir_cb cb, void *userdata)
{
    dirv d = {NULL, NULL, 0};
    size_t i;
    int rc;
    if (!cb)
        return LLMUX_EINVAL;
    if ((rc = dirv_build(plugin_path, &d)) != 0)
        return rc;
    for (i = 0; i < d.n; i++) {
        llmux_plugin_dir info;
        memset(&info, 0, sizeof info);
        info.path = d.v[i];
        info.source = (llmux_plugin_dir_source)d.src[i];
        info.exists = is_dir(d.v[i]);
        if (cb(&info, userdata))
            break;
    }
    dirv_free(&d);
    return 0;
}

LLMUX_EXTERN const char *llmux_plugin_dir_source_name(int source)
{
    switch (source) {
    case LLMUX_PLUGIN_DIR_ENV:
        return "LLMUX_PLUGIN_PATH";
    case LLMUX_PLUGIN_DIR_OPTION:
        return "plugin_path";
    case LLMUX_PLUGIN_DIR_RELATIVE:
        return "relative";
    case LLMUX_PLUGIN_DIR_CONFIGURED:
        return "configured";
    default:
        return "unknown";
    }
}

/* "provider "x" not found; searched: /a, /b (does not exist)" */
static int not_found(const char *prefix, const char *what, const char *name,
                     char **dirs, size_t n, char *err, size_t errlen)
{
    llmux__buf b = {0};
    size_t i;
    llmux__buf_printf(&b, "%s%s \"%s\" not found; searched: ", prefix, what,
                      name);
    if (n == 0)
        llmux__buf_printf(&b, "(no plugin directories)");
    for (i = 0; i < n; i++)
        llmux__buf_printf(&b, "%s%s%s", i ? ", " : "", dirs[i],
                          is_dir(dirs[i]) ? "" : " (does not exist)");
    llmux__seterr(err, errlen, LLMUX_ENOPROVIDER, "%s",
                  b.p ? b.p : "provider not found");
    llmux__buf_free(&b);
    return LLMUX_ENOPROVIDER;
}

/* ---- provider table checks ------------------------------------------------
 */

int llmux__provider_check(const llmux_provider *vt, const char *what, char *err,
                          size_t errlen)
{
    const char *hook = NULL;
    if (!what)
        what = "provider";
    if (!vt)
        return llmux__seterr(err, errlen, LLMUX_EINVAL, "%s: no provider table",
                             what);
    /* Only abi_version and struct_size are safe to read before these. */
    if (vt->abi_version != LLMUX_PROVIDER_ABI)
        return llmux__seterr(err, errlen, LLMUX_EABI,
                             "plugin %s has ABI %u, core has %d", what,
                             (unsigned)vt->abi_version, LLMUX_PROVIDER_ABI);
    if (vt->struct_size < LLMUX_PROVIDER_V1_SIZE)
        return llmux__seterr(err, errlen, LLMUX_EPLUGINSIZE,
                             "plugin %s: struct_size %u smaller than "
                             "minimum %u",
                             what, (unsigned)vt->struct_size,
                             (unsigned)LLMUX_PROVIDER_V1_SIZE);
    if (!vt->name)
        return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                             "plugin %s: missing required field name", what);
    if (!vt->encode)
        hook = "encode";
    else if (!vt->decode)
        hook = "decode";
    else if ((vt->caps & LLMUX_CAP_STREAM) && !vt->decode_event)
        hook = "decode_event (needed for the stream capability)";
    if (hook)
        return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                             "plugin %s: missing required hook %s", what, hook);
    return 0;
}

/* ---- descriptors ----------------------------------------------------------
 */

static void desc_free(desc *d)
{
    llmux__free(d->path);
    llmux__free(d->module);
    llmux__free(d->base_url);
    llmux__free(d->api_key_env);
    llmux__free(d->base_url_env);
    llmux__free(d->description);
    free_kvs(d->opts, d->n_opts);
    memset(d, 0, sizeof *d);
}

/* Sets *slot to value (NULL when empty). */
static int set_str(char **slot, const char *value)
{
    char *v = NULL;
    if (*value && !(v = llmux__strdup(value)))
        return LLMUX_ENOMEM;
    llmux__free(*slot);
    *slot = v;
    return 0;
}

static int desc_set_opt(desc *d, const char *key, const char *value)
{
    size_t i;
    char *k, *v;
    llmux_kv *nkv;
    for (i = 0; i < d->n_opts; i++) {
        if (strcmp(d->opts[i].key, key) == 0) {
            if (!(v = llmux__strdup(value)))
                return LLMUX_ENOMEM;
            llmux__free((char *)d->opts[i].value);
            d->opts[i].value = v;
            return 0;
        }
    }
    k = llmux__strdup(key);
    v = llmux__strdup(value);
    nkv = (k && v) ? llmux__realloc(d->opts, (d->n_opts + 1) * sizeof *nkv)
                   : NULL;
    if (!nkv) {
        llmux__free(k);
        llmux__free(v);
        return LLMUX_ENOMEM;
    }
    nkv[d->n_opts].key = k;
    nkv[d->n_opts].value = v;
    d->opts = nkv;
    d->n_opts++;
    return 0;
}

/* Handles one "key = value" line (NUL-terminated, no line end). */
static int desc_line(desc *d, char *line, int lineno, char *err, size_t errlen)
{
    char *p = line, *eq, *key, *val, *end;
    size_t n;

    for (end = line; *end; end++) {
        unsigned char c = (unsigned char)*end;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                                 "%s:%d: control character in line", d->path,
                                 lineno);
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    eq = strchr(p, '=');
    if (!eq)
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "%s:%d: expected \"key = value\"", d->path,
                             lineno);
    /* key: trimmed, [A-Za-z0-9_.-]+, lower-cased */
    key = p;
    end = eq;
    while (end > key && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    if (!*key)
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "%s:%d: missing key before '='", d->path, lineno);
    for (p = key; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!is_name_char(c))
            return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                                 "%s:%d: invalid key \"%s\"", d->path, lineno,
                                 key);
        if (c >= 'A' && c <= 'Z')
            *p = (char)(c - 'A' + 'a');
    }
    /* value: trimmed, optional surrounding double quotes */
    val = eq + 1;
    while (*val == ' ' || *val == '\t')
        val++;
    n = strlen(val);
    while (n && (val[n - 1] == ' ' || val[n - 1] == '\t'))
        n--;
    val[n] = '\0';
    if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
        val[n - 1] = '\0';
        val++;
    }

    if (strcmp(key, "module") == 0) {
        if (!*val)
            return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                                 "%s:%d: empty module", d->path, lineno);
        d->module_line = lineno;
        return set_str(&d->module, val);
    }
    if (strcmp(key, "base_url") == 0) {
        d->has_base_url = 1;
        return set_str(&d->base_url, val);
    }
    if (strcmp(key, "api_key_env") == 0) {
        d->has_api_key_env = 1;
        return set_str(&d->api_key_env, val);
    }
    if (strcmp(key, "base_url_env") == 0) {
        d->has_base_url_env = 1;
        return set_str(&d->base_url_env, val);
    }
    if (strcmp(key, "description") == 0)
        return set_str(&d->description, val);
    return desc_set_opt(d, key, val);
}

/*
 * Parses descriptor text data[0..len) (writable, NUL at data[len]; lines
 * are cut in place) read from `path` into d. On error d is left empty.
 */
static int desc_parse_text(const char *path, char *data, size_t len, desc *d,
                           char *err, size_t errlen)
{
    char *line, *next;
    int lineno = 1, rc = 0;

    memset(d, 0, sizeof *d);
    if (!(d->path = llmux__strdup(path)))
        return LLMUX_ENOMEM;
    /* A NUL byte would silently cut a line short: reject it. */
    if (memchr(data, '\0', len)) {
        const char *z = memchr(data, '\0', len), *q;
        for (q = data; q < z; q++)
            lineno += *q == '\n';
        rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                           "%s:%d: NUL byte in file", path, lineno);
    }
    for (line = data; rc == 0 && line; line = next, lineno++) {
        size_t n;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[n - 1] = '\0';
        rc = desc_line(d, line, lineno, err, errlen);
    }
    if (rc == 0 && !d->module)
        rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                           "%s: missing required key \"module\"", path);
    if (rc != 0)
        desc_free(d);
    return rc;
}

static int desc_parse(const char *path, desc *d, char *err, size_t errlen)
{
    FILE *f;
    char *data;
    size_t len;
    int rc = 0;

    memset(d, 0, sizeof *d);
    f = fopen(path, "rb");
    if (!f)
        return llmux__seterr(err, errlen, LLMUX_ECONFIG, "%s: cannot read",
                             path);
    data = llmux__malloc(LLMUX__DESC_MAX + 1);
    if (!data) {
        fclose(f);
        return LLMUX_ENOMEM;
    }
    len = fread(data, 1, LLMUX__DESC_MAX + 1, f);
    if (ferror(f))
        rc = llmux__seterr(err, errlen, LLMUX_ECONFIG, "%s: read error", path);
    else if (len > LLMUX__DESC_MAX)
        rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                           "%s: larger than %d bytes", path, LLMUX__DESC_MAX);
    fclose(f);
    if (rc == 0) {
        data[len] = '\0';
        rc = desc_parse_text(path, data, len, d, err, errlen);
    }
    llmux__free(data);
    return rc;
}

int llmux__descriptor_parse(const char *path, const char *text, size_t len,
                            char **module, size_t *n_opts, char *err,
                            size_t errlen)
{
    desc d;
    char *data;
    int rc;

    *module = NULL;
    *n_opts = 0;
    if (len > LLMUX__DESC_MAX)
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "%s: larger than %d bytes", path, LLMUX__DESC_MAX);
    if (!(data = llmux__strndup(text, len)))
        return LLMUX_ENOMEM;
    rc = desc_parse_text(path, data, len, &d, err, errlen);
    llmux__free(data);
    if (rc == 0) {
        *module = d.module;
        *n_opts = d.n_opts;
        d.module = NULL;
        desc_free(&d);
    }
    return rc;
}

/* ---- modules --------------------------------------------------------------
 */

static int ltdl_ready(char *err, size_t errlen)
{
    if (!g_ltdl_ready) {
        if (lt_dlinit() != 0) {
            const char *e = lt_dlerror();
            return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                                 "cannot initialise libltdl: %s",
                                 e ? e : "unknown error");
        }
        g_ltdl_ready = 1;
    }
    return 0;
}

/* The module's name as ltdl derives it: basename without extension, with
 * characters other than [A-Za-z0-9_] turned into '_'. */
/* A module file's name without directory and extension. */
static char *module_label(const char *path)
{
    const char *base = strrchr(path, '/');
    char *s = llmux__strdup(base ? base + 1 : path), *dot;
    if (s && (dot = strrchr(s, '.')) != NULL && dot != s)
        *dot = '\0';
    return s;
}

static char *module_symname(const char *path)
{
    const char *base = strrchr(path, '/');
    char *s, *dot, *p;
    s = llmux__strdup(base ? base + 1 : path);
    if (!s)
        return NULL;
    if ((dot = strrchr(s, '.')) != NULL && dot != s)
        *dot = '\0';
    for (p = s; *p; p++)
        if (!is_alnum((unsigned char)*p))
            *p = '_';
    return s;
}

static void *find_entry(lt_dlhandle h, const char *path)
{
    void *sym = lt_dlsym(h, LLMUX_PROVIDER_ENTRY_SYMBOL);
    if (!sym) {
        char *mod = module_symname(path);
        char *ltx =
            mod ? llmux__asprintf("%s_LTX_%s", mod, LLMUX_PROVIDER_ENTRY_SYMBOL)
                : NULL;
        if (ltx)
            sym = lt_dlsym(h, ltx);
        llmux__free(ltx);
        llmux__free(mod);
    }
    return sym;
}

/* libltdl reports every failed open as "file not found"; for a file that
 * exists, ask the system loader for the real reason. */
static void load_reason(const char *path, char *buf, size_t len)
{
    const char *lt = lt_dlerror();
    if (!lt)
        lt = "unknown error";
#ifdef LLMUX__HAVE_DLFCN
    {
        void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
        const char *e = h ? NULL : dlerror();
        if (h)
            dlclose(h);
        if (e) {
            size_t n = strlen(path);
            /* glibc starts with the path, which the caller already says */
            if (strncmp(e, path, n) == 0 && strncmp(e + n, ": ", 2) == 0)
                e += n + 2;
            snprintf(buf, len, "%s (ltdl: %s)", e, lt);
            return;
        }
    }
#endif
    snprintf(buf, len, "%s", lt);
}

#ifdef LLMUX__HAVE_ELF
/*
 * glibc's dlopen maps segments without checking them against the file
 * size, so a truncated module (an interrupted copy) kills the process
 * with SIGBUS. Check that every loadable segment lies within the file.
 * Returns NULL when fine or not a native ELF file (dlopen judges those).
 */
static const char *elf_problem(const char *path)
{
    ElfW(Ehdr) eh;
    ElfW(Phdr) ph;
    struct stat st;
    FILE *f;
    size_t i;
    const char *bad = NULL;
    uint64_t size;

    if (stat(path, &st) != 0 || !(f = fopen(path, "rb")))
        return NULL;
    size = (uint64_t)st.st_size;
    if (fread(&eh, 1, sizeof eh, f) != sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        fclose(f);
        return NULL;
    }
    if (eh.e_ident[EI_CLASS] !=
            (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        eh.e_phentsize != sizeof ph) {
        fclose(f);
        return NULL;
    }
    if ((uint64_t)eh.e_phoff + (uint64_t)eh.e_phnum * sizeof ph > size)
        bad = "program headers beyond end of file";
    else if (fseek(f, (long)eh.e_phoff, SEEK_SET) != 0)
        bad = "cannot read program headers";
    for (i = 0; !bad && i < eh.e_phnum; i++) {
        if (fread(&ph, 1, sizeof ph, f) != sizeof ph)
            bad = "cannot read program headers";
        else if (ph.p_type == PT_LOAD &&
                 ((uint64_t)ph.p_offset > size ||
                  (uint64_t)ph.p_filesz > size - (uint64_t)ph.p_offset))
            bad = "segment beyond end of file";
    }
    fclose(f);
    return bad;
}
#endif

/*
 * Opens module file `path`, enters it and validates its table; messages
 * name the file. On success *hp holds one reference on the handle.
 */
static int open_module(const char *path, lt_dlhandle *hp,
                       const llmux_provider **vtp, char *err, size_t errlen)
{
    lt_dladvise adv;
    lt_dlhandle h;
    union {
        void *p;
        llmux_provider_entry_fn *f;
    } entry;
    const llmux_provider *vt;
    int rc;

    if ((rc = ltdl_ready(err, errlen)) != 0)
        return rc;
#ifdef LLMUX__HAVE_ELF
    {
        const char *bad = elf_problem(path);
        if (bad)
            return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                                 "%s: cannot load module: truncated or "
                                 "corrupt ELF file (%s)",
                                 path, bad);
    }
#endif
    if (lt_dladvise_init(&adv) != 0)
        return LLMUX_ENOMEM;
    if (lt_dladvise_ext(&adv) != 0 || lt_dladvise_local(&adv) != 0) {
        lt_dladvise_destroy(&adv);
        return LLMUX_ENOMEM;
    }
    h = lt_dlopenadvise(path, adv);
    lt_dladvise_destroy(&adv);
    if (!h) {
        char why[LLMUX__ERRBUF];
        load_reason(path, why, sizeof why);
        return llmux__seterr(err, errlen, LLMUX_EPLUGIN,
                             "%s: cannot load module: %s", path, why);
    }
    entry.p = find_entry(h, path);
    if (!entry.p) {
        lt_dlclose(h);
        return llmux__seterr(err, errlen, LLMUX_ENOTPLUGIN,
                             "%s: not an llmux plugin (no %s symbol)", path,
                             LLMUX_PROVIDER_ENTRY_SYMBOL);
    }
    vt = entry.f(&llmux__host, LLMUX_HOST_ABI);
    if (!vt) {
        lt_dlclose(h);
        return llmux__seterr(err, errlen, LLMUX_EABI,
                             "%s: plugin refused host ABI %d", path,
                             LLMUX_HOST_ABI);
    }
    if ((rc = llmux__provider_check(vt, path, err, errlen)) != 0) {
        lt_dlclose(h);
        return rc;
    }
    *hp = h;
    *vtp = vt;
    return 0;
}

/* The module file for `name` in `dir`, or NULL (*oom set on failure). */
static char *module_in_dir(const char *dir, const char *name, int *oom)
{
    char *path;
    if (ends_with(name, LLMUX__MODULE_EXT))
        path = join_path(dir, name, NULL);
    else
        path = join_path(dir, name, LLMUX__MODULE_EXT);
    if (!path) {
        *oom = 1;
        return NULL;
    }
    if (is_file(path))
        return path;
    llmux__free(path);
    return NULL;
}

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
    free_kvs(p->opts, p->n_opts);
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

/*
 * Builds the provider `name` from table `vt` (module file `path`, or
 * "built-in"), applies descriptor `d` (may be NULL), runs init and caches
 * it. Takes over `handle`: on failure it is closed.
 */
static int make_provider(const char *name, const llmux_provider *vt,
                         lt_dlhandle handle, const char *path, desc *d,
                         loaded **out, char *err, size_t errlen)
{
    loaded *l;
    llmux__provider *p;
    llmux_provider_config cfg;
    int oom = 0, rc;

    l = llmux__calloc(1, sizeof *l);
    if (!l) {
        if (handle)
            lt_dlclose(handle);
        return LLMUX_ENOMEM;
    }
    p = &l->pub;
    p->vt = vt;
    p->handle = handle;
    p->name = dup_or_null(name, &oom);
    /* the module as the user knows it: its file's name (a descriptor's
     * module key names the file), not the table's internal name */
    if (strcmp(path, LLMUX__BUILTIN) == 0)
        p->module = dup_or_null(d && d->module ? d->module : vt->name, &oom);
    else if (!oom && (p->module = module_label(path)) == NULL)
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
    desc d;
    const llmux_provider *vt = NULL;
    lt_dlhandle h = NULL;
    char *modpath = NULL;
    int rc, oom = 0;

    if ((rc = desc_parse(path, &d, err, errlen)) != 0)
        return rc;

    if (strchr(d.module, '/')) {
        /* a path: relative ones are relative to the descriptor */
        if (d.module[0] == '/') {
            modpath = llmux__strdup(d.module);
        } else {
            char *dir = dir_of(path);
            modpath = dir ? join_path(dir, d.module, NULL) : NULL;
            llmux__free(dir);
        }
        if (!modpath) {
            rc = LLMUX_ENOMEM;
        } else if (ends_with(modpath, LLMUX__CONF_EXT)) {
            rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                               "%s:%d: module \"%s\" is a descriptor; a "
                               "descriptor must name a module",
                               path, d.module_line, d.module);
        } else if (!is_file(modpath)) {
            rc = llmux__seterr(err, errlen, LLMUX_ENOPROVIDER,
                               "%s:%d: module file %s not found", path,
                               d.module_line, modpath);
        }
    } else if (!valid_name(d.module)) {
        rc = llmux__seterr(err, errlen, LLMUX_ECONFIG,
                           "%s:%d: invalid module name \"%s\"", path,
                           d.module_line, d.module);
    } else if ((vt = find_registered(d.module)) == NULL) {
        /* same search as for names, but modules only: no descriptor may
         * lead to another, so there are no loops */
        char **dirs;
        size_t n, i;
        if ((rc = dir_list(extra, &dirs, &n)) == 0) {
            for (i = 0; i < n && !modpath && !oom; i++)
                modpath = module_in_dir(dirs[i], d.module, &oom);
            if (oom)
                rc = LLMUX_ENOMEM;
            else if (!modpath)
                rc =
                    not_found(path, ": module", d.module, dirs, n, err, errlen);
            free_strv(dirs, n);
        }
    }
    if (rc == 0 && modpath) {
        rc = open_module(modpath, &h, &vt, err, errlen);
        if (rc != 0)
            prefix_err(path, err, errlen);
    }
    if (rc == 0)
        rc = make_provider(name, vt, h, modpath ? modpath : LLMUX__BUILTIN, &d,
                           out, err, errlen);
    llmux__free(modpath);
    desc_free(&d);
    return rc;
}

static int load_module_file(const char *name, const char *path, loaded **out,
                            char *err, size_t errlen)
{
    lt_dlhandle h;
    const llmux_provider *vt;
    int rc = open_module(path, &h, &vt, err, errlen);
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
        if (!is_file(name))
            return llmux__seterr(err, errlen, LLMUX_ENOPROVIDER,
                                 "provider \"%s\" not found: no such file",
                                 name);
        if (ends_with(name, LLMUX__CONF_EXT))
            return load_descriptor(name, name, extra, out, err, errlen);
        return load_module_file(name, name, out, err, errlen);
    }
    if (!valid_name(name))
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "invalid provider name \"%s\" (allowed: "
                             "A-Z a-z 0-9 _ . -, not starting with '.')",
                             name);

    /* 1. registered in-process */
    if ((vt = find_registered(name)) != NULL)
        return make_provider(name, vt, NULL, LLMUX__BUILTIN, NULL, out, err,
                             errlen);

    /* 2. each plugin directory: descriptor, then module */
    if ((rc = dir_list(extra, &dirs, &n)) != 0)
        return rc;
    /* the first directory holding the name decides, even if broken */
    for (i = 0, rc = 0, found = 0; i < n && !found && rc == 0; i++) {
        int oom = 0;
        char *path = join_path(dirs[i], name, LLMUX__CONF_EXT);
        if (!path) {
            rc = LLMUX_ENOMEM;
        } else if (is_file(path)) {
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
        rc = not_found("", "provider", name, dirs, n, err, errlen);
    free_strv(dirs, n);
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
    if (g_ltdl_ready) {
        lt_dlexit();
        g_ltdl_ready = 0;
    }
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
    if (!valid_name(p->name))
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

static void fill_info(const loaded *l, llmux_provider_info *info)
{
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

LLMUX_EXTERN int llmux_provider_probe(const char *name, const char *plugin_path,
                                      llmux_provider_info *info, char *errbuf,
                                      size_t errlen)
{
    const llmux__provider *p;
    int rc = llmux__provider_get(name, plugin_path, &p, errbuf, errlen);
    if (rc != 0) {
        if (info)
            memset(info, 0, sizeof *info);
        return rc;
    }
    if (info)
        fill_info((const loaded *)p, info);
    return 0;
}

/* Names already listed (a name found twice is listed once). */
typedef struct seen {
    char **v;
    size_t n;
} seen;

static int seen_has(const seen *s, const char *name)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return 1;
    return 0;
}

/* Resolves one name and hands it to the callback, broken or not. */
static int list_one(seen *s, const char *name, const char *file,
                    const char *plugin_path, llmux_provider_cb cb,
                    void *userdata)
{
    const llmux__provider *p;
    llmux_provider_info info;
    char err[1024];
    int rc;

    if (seen_has(s, name))
        return 0;
    if (strv_push_unique(&s->v, &s->n, name, strlen(name)) != 0)
        return LLMUX_ENOMEM;
    rc = llmux__provider_get(name, plugin_path, &p, err, sizeof err);
    if (rc == 0) {
        fill_info((const loaded *)p, &info);
    } else {
        memset(&info, 0, sizeof info);
        info.name = name;
        info.path = file;
        if (file && ends_with(file, LLMUX__CONF_EXT))
            info.descriptor = file;
        info.status = rc;
        info.error = err;
    }
    return cb(&info, userdata) ? 1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Candidate file names of one directory (".conf" and modules), sorted. */
static int scan_dir(const char *dir, char ***out, size_t *n)
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    char **v = NULL;
    size_t k = 0;
    *out = NULL;
    *n = 0;
    if (!dh)
        return 0; /* missing or unreadable: nothing to list */
    while ((de = readdir(dh)) != NULL) {
        const char *f = de->d_name;
        if (f[0] == '.' || (!ends_with(f, LLMUX__CONF_EXT) &&
                            !ends_with(f, LLMUX__MODULE_EXT)))
            continue;
        if (strv_push_unique(&v, &k, f, strlen(f)) != 0) {
            closedir(dh);
            free_strv(v, k);
            return LLMUX_ENOMEM;
        }
    }
    closedir(dh);
    if (k)
        qsort(v, k, sizeof *v, cmp_str);
    *out = v;
    *n = k;
    return 0;
}

static int list_dir(seen *s, const char *dir, const char *plugin_path,
                    llmux_provider_cb cb, void *userdata)
{
    char **files;
    size_t n, i;
    int rc = scan_dir(dir, &files, &n);
    for (i = 0; rc == 0 && i < n; i++) {
        const char *f = files[i];
        size_t flen = strlen(f);
        size_t elen = ends_with(f, LLMUX__CONF_EXT) ? strlen(LLMUX__CONF_EXT)
                                                    : strlen(LLMUX__MODULE_EXT);
        char *name = llmux__strndup(f, flen - elen);
        char *path = join_path(dir, f, NULL);
        if (!name || !path)
            rc = LLMUX_ENOMEM;
        else if (!is_file(path))
            rc = 0; /* a directory or dangling link */
        else if (!valid_name(name)) {
            /* listed so the user sees why it is never picked up */
            llmux_provider_info info;
            char err[LLMUX__ERRBUF];
            if (!seen_has(s, name)) {
                memset(&info, 0, sizeof info);
                info.name = name;
                info.path = path;
                info.status = LLMUX_ECONFIG;
                snprintf(err, sizeof err, "%s: invalid provider name \"%s\"",
                         path, name);
                info.error = err;
                if (strv_push_unique(&s->v, &s->n, name, strlen(name)) != 0)
                    rc = LLMUX_ENOMEM;
                else if (cb(&info, userdata))
                    rc = 1;
            }
        } else {
            rc = list_one(s, name, path, plugin_path, cb, userdata);
        }
        llmux__free(name);
        llmux__free(path);
    }
    free_strv(files, n);
    return rc;
}

LLMUX_EXTERN int llmux_providers_list(const char *plugin_path,
                                      llmux_provider_cb cb, void *userdata)
{
    seen s = {NULL, 0};
    char **names = NULL, **dirs = NULL;
    size_t nnames = 0, ndirs = 0, i;
    int rc = 0;

    if (!cb)
        return LLMUX_EINVAL;
    /* snapshot the registered names: the callback runs unlocked */
    pthread_mutex_lock(&g_lock);
    for (i = 0; i < g_nreg && rc == 0; i++)
        rc = strv_push_unique(&names, &nnames, g_reg[i]->name,
                              strlen(g_reg[i]->name));
    pthread_mutex_unlock(&g_lock);
    for (i = 0; i < nnames && rc == 0; i++)
        rc = list_one(&s, names[i], LLMUX__BUILTIN, plugin_path, cb, userdata);
    if (rc == 0)
        rc = dir_list(plugin_path, &dirs, &ndirs);
    for (i = 0; i < ndirs && rc == 0; i++)
        rc = list_dir(&s, dirs[i], plugin_path, cb, userdata);
    free_strv(names, nnames);
    free_strv(dirs, ndirs);
    free_strv(s.v, s.n);
    return rc == 1 ? 0 : rc; /* 1: stopped by the callback */
}

LLMUX_EXTERN char *llmux_caps_string(uint64_t caps, char *buf, size_t len)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {{LLMUX_CAP_CHAT, "chat"},
                 {LLMUX_CAP_STREAM, "stream"},
                 {LLMUX_CAP_COMPLETE, "complete"},
                 {LLMUX_CAP_EMBED, "embed"},
                 {LLMUX_CAP_MODELS, "models"},
                 {LLMUX_CAP_TOOLS, "tools"},
                 {LLMUX_CAP_JSON, "json"},
                 {LLMUX_CAP_TOKENIZE, "tokenize"},
                 {LLMUX_CAP_DETOKENIZE, "detokenize"},
                 {LLMUX_CAP_EVALUATE, "evaluate"}};
    size_t i, used = 0;
    if (!buf || !len)
        return buf;
    buf[0] = '\0';
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n;
        if (!(caps & names[i].bit))
            continue;
        n = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
                     names[i].name);
        if (n < 0 || (size_t)n >= len - used) {
            buf[used] = '\0'; /* no partial names */
            break;
        }
        used += (size_t)n;
    }
    return buf;
}
