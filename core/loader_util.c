/*
 * core/loader_util.c: the small helpers the loader's parts (loader.h)
 * share: file tests, path joining, provider and module name validation,
 * and lists of strings and of key/value pairs. Calls only alloc.c.
 */
#include <string.h>
#include <sys/stat.h>

#include "loader.h"

int llmux__is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int llmux__ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ASCII letters and digits, whatever the locale. */
int llmux__is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

int llmux__is_name_char(int c)
{
    return llmux__is_alnum(c) || c == '_' || c == '.' || c == '-';
}

/* Provider and module names: [A-Za-z0-9_.-]+, not starting with '.'. */
int llmux__valid_name(const char *s)
{
    const char *p;
    if (!s || !*s || *s == '.')
        return 0;
    for (p = s; *p; p++)
        if (!llmux__is_name_char((unsigned char)*p))
            return 0;
    return 1;
}

char *llmux__join_path(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir);
    const char *sep = (n && dir[n - 1] == '/') ? "" : "/";
    return llmux__asprintf("%s%s%s%s", dir, sep, name, ext ? ext : "");
}

void llmux__kvs_free(llmux_kv *kv, size_t n)
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
char *llmux__dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return llmux__strdup(".");
    if (slash == path)
        return llmux__strdup("/");
    return llmux__strndup(path, (size_t)(slash - path));
}

int llmux__strv_push_unique(char ***v, size_t *n, const char *s, size_t len)
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
