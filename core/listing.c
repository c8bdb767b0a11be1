/*
 * core/listing.c: what the library tells about providers:
 * llmux_provider_probe(), llmux_providers_list() (the registered names,
 * then each plugin directory's descriptors and modules, each name once,
 * broken ones with their error) and llmux_caps_string(). Calls
 * registry.c (to resolve each name), plugin_dirs.c and loader_util.c.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

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
        llmux__provider_info_fill(p, info);
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
    if (llmux__strv_push_unique(&s->v, &s->n, name, strlen(name)) != 0)
        return LLMUX_ENOMEM;
    rc = llmux__provider_get(name, plugin_path, &p, err, sizeof err);
    if (rc == 0) {
        llmux__provider_info_fill(p, &info);
    } else {
        memset(&info, 0, sizeof info);
        info.name = name;
        info.path = file;
        if (file && llmux__ends_with(file, LLMUX__CONF_EXT))
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
        if (f[0] == '.' || (!llmux__ends_with(f, LLMUX__CONF_EXT) &&
                            !llmux__ends_with(f, LLMUX__MODULE_EXT)))
            continue;
        if (llmux__strv_push_unique(&v, &k, f, strlen(f)) != 0) {
            closedir(dh);
            llmux__strv_free(v, k);
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
        size_t elen = llmux__ends_with(f, LLMUX__CONF_EXT)
                          ? strlen(LLMUX__CONF_EXT)
                          : strlen(LLMUX__MODULE_EXT);
        char *name = llmux__strndup(f, flen - elen);
        char *path = llmux__join_path(dir, f, NULL);
        if (!name || !path)
            rc = LLMUX_ENOMEM;
        else if (!llmux__is_file(path))
            rc = 0; /* a directory or dangling link */
        else if (!llmux__valid_name(name)) {
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
                if (llmux__strv_push_unique(&s->v, &s->n, name, strlen(name)) !=
                    0)
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
    llmux__strv_free(files, n);
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
    rc = llmux__registered_names(&names, &nnames);
    for (i = 0; i < nnames && rc == 0; i++)
        rc = list_one(&s, names[i], LLMUX__BUILTIN, plugin_path, cb, userdata);
    if (rc == 0)
        rc = llmux__dir_list(plugin_path, &dirs, &ndirs);
    for (i = 0; i < ndirs && rc == 0; i++)
        rc = list_dir(&s, dirs[i], plugin_path, cb, userdata);
    llmux__strv_free(names, nnames);
    llmux__strv_free(dirs, ndirs);
    llmux__strv_free(s.v, s.n);
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
