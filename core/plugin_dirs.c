/*
 * core/plugin_dirs.c: where plugins are searched for: the plugin
 * directories in order ($LLMUX_PLUGIN_PATH through secure_getenv, the
 * client's plugin_path, the directory beside the loaded library found with
 * dladdr, or the configured one of the static library), the public
 * llmux_plugin_dirs_list() and llmux_plugin_dir_source_name(), and the
 * "not found; searched: ..." message that lists them. Calls only
 * loader_util.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader.h"

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The directories of the search with where each comes from. */
typedef struct dirv {
    char **v;
    int *src; /* llmux_plugin_dir_source */
    size_t n;
} dirv;

static void dirv_free(dirv *d)
{
    llmux__strv_free(d->v, d->n);
    llmux__free(d->src);
    memset(d, 0, sizeof *d);
}

static int dirv_push(dirv *d, const char *s, size_t len, int src)
{
    size_t n = d->n;
    int *ns;
    int rc = llmux__strv_push_unique(&d->v, &d->n, s, len);
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
    if (dladdr((void *)(uintptr_t)&llmux_plugin_dirs_list, &info) &&
        info.dli_fname && info.dli_fname[0])
        file = realpath(info.dli_fname, NULL);
    if (!file)
        return NULL;
    dir = llmux__dir_of(file);
    free(file); /* from realpath: libc's allocator */
    out = dir ? llmux__join_path(dir, LLMUX_PLUGIN_RELDIR, NULL) : NULL;
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

int llmux__dir_list(const char *extra, char ***out, size_t *n)
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
int llmux__not_found(const char *prefix, const char *what, const char *name,
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
