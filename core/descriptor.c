/*
 * core/descriptor.c: descriptors, the plugins.d/<name>.conf files that
 * map a provider name onto a module with its own base URL, key variable
 * and provider options: reading and parsing them (llmux__desc_parse), and
 * the text-only entry the fuzzer uses (llmux__descriptor_parse). Calls
 * only loader_util.c.
 */
#include <stdio.h>
#include <string.h>

#include "loader.h"

/* Descriptors are small; anything bigger is a mistake. */
#define LLMUX__DESC_MAX (64 * 1024)

void llmux__desc_free(llmux__desc *d)
{
    llmux__free(d->path);
    llmux__free(d->module);
    llmux__free(d->base_url);
    llmux__free(d->api_key_env);
    llmux__free(d->base_url_env);
    llmux__free(d->description);
    llmux__kvs_free(d->opts, d->n_opts);
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

static int desc_set_opt(llmux__desc *d, const char *key, const char *value)
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
static int desc_line(llmux__desc *d, char *line, int lineno, char *err,
                     size_t errlen)
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
        if (!llmux__is_name_char(c))
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
static int desc_parse_text(const char *path, char *data, size_t len,
                           llmux__desc *d, char *err, size_t errlen)
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
        llmux__desc_free(d);
    return rc;
}

int llmux__desc_parse(const char *path, llmux__desc *d, char *err,
                      size_t errlen)
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
    llmux__desc d;
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
        llmux__desc_free(&d);
    }
    return rc;
}
