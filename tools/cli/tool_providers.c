/*
 * tools/cli/tool_providers.c: providers: the aligned table, --json and the
 * search directories (-v).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include <llmux/llmux.h>

#include "cli.h"

/* ---- providers ---------------------------------------------------------- */

/* What `providers` shows of one provider: copies, as the library's
 * strings live only during its callback. */
typedef struct prov_row {
    char *name, *module, *path, *descriptor, *version, *description;
    char *base_url, *api_key_env, *error;
    uint64_t caps;
    int status;
} prov_row;

typedef struct prov_list {
    prov_row *v;
    size_t n, cap;
} prov_list;

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, surrogates or code points above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n, i;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* A copy of s, or NULL for NULL. Control characters become spaces, so a
 * plugin's error message cannot break a table line, and bytes that are
 * not UTF-8 (a file name, a descriptor's description) become U+FFFD, so
 * `--json` is always valid JSON text. */
static char *dup_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char *d, *o;
    if (!s)
        return NULL;
    o = d = xmalloc(3 * strlen(s) + 1); /* each byte at most U+FFFD */
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        } else if (n == 1) {
            *o++ = (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return d;
}

static int collect_provider(const llmux_provider_info *info, void *ud)
{
    prov_list *l = ud;
    prov_row *r;
    if (l->n == l->cap)
        l->v =
            xrealloc(l->v, (l->cap = l->cap ? 2 * l->cap : 16) * sizeof *l->v);
    r = &l->v[l->n++];
    r->name = dup_clean(info->name);
    r->module = dup_clean(info->module);
    r->path = dup_clean(info->path);
    r->descriptor = dup_clean(info->descriptor);
    r->version = dup_clean(info->version);
    r->description = dup_clean(info->description);
    r->base_url = dup_clean(info->base_url);
    r->api_key_env = dup_clean(info->api_key_env);
    r->error =
        dup_clean(info->status && !info->error ? llmux_strerror(info->status)
                                               : info->error);
    r->caps = info->caps;
    r->status = info->status;
    return 0;
}

static void prov_list_free(prov_list *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        prov_row *r = &l->v[i];
        free(r->name);
        free(r->module);
        free(r->path);
        free(r->descriptor);
        free(r->version);
        free(r->description);
        free(r->base_url);
        free(r->api_key_env);
        free(r->error);
    }
    free(l->v);
}

/* One plugin directory, for -v. */
typedef struct dir_row {
    char *path;
    const char *source; /* static */
    int exists;
} dir_row;

typedef struct dir_list {
    dir_row *v;
    size_t n;
} dir_list;

static int collect_dir(const llmux_plugin_dir *d, void *ud)
{
    dir_list *l = ud;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n].path = dup_clean(d->path);
    l->v[l->n].source = llmux_plugin_dir_source_name((int)d->source);
    l->v[l->n].exists = d->exists;
    l->n++;
    return 0;
}

/* -v: the directories in search order, the source column aligned. */
static int print_plugin_dirs(const cli *c)
{
    dir_list l = {NULL, 0};
    size_t i, w = 0;
    int rc = llmux_plugin_dirs_list(NULL, collect_dir, &l);
    if (rc) {
        errorf(c, "providers: %s", llmux_strerror(rc));
    } else {
        for (i = 0; i < l.n; i++)
            if (strlen(l.v[i].source) > w)
                w = strlen(l.v[i].source);
        printf("plugin directories, in search order:\n");
        for (i = 0; i < l.n; i++)
            printf("  %-*s  %s%s\n", (int)w, l.v[i].source, l.v[i].path,
                   l.v[i].exists ? "" : " (does not exist)");
        if (!l.n)
            printf("  (none)\n");
        fputc('\n', stdout);
    }
    for (i = 0; i < l.n; i++)
        free(l.v[i].path);
    free(l.v);
    return rc ? exit_status(rc) : 0;
}

enum { PC_NAME, PC_MODULE, PC_KEY, PC_SOURCE, PC_CAPS, PC_N };

/*
 * The table: a header, then a line per provider, each column as wide as
 * its widest cell; the last column is not padded. Broken plugins show
 * their error where the capabilities would be.
 */
static void print_provider_table(const prov_list *l, int verbose)
{
    static const char *const head[PC_N] = {"NAME", "MODULE", "API_KEY_ENV",
                                           "SOURCE", "CAPABILITIES"};
    size_t w[PC_N], i, k, n = l->n + 1;
    char **cells = xmalloc(n * PC_N * sizeof *cells);
    for (k = 0; k < PC_N; k++) {
        cells[k] = xmalloc(strlen(head[k]) + 1);
        strcpy(cells[k], head[k]);
    }
    for (i = 0; i < l->n; i++) {
        const prov_row *r = &l->v[i];
        char **row = cells + (i + 1) * PC_N, caps[256];
        const char *src = r->descriptor ? r->descriptor
                          : r->path     ? r->path
                                        : "-";
        row[PC_NAME] = dup_clean(r->name ? r->name : "?");
        row[PC_MODULE] = dup_clean(r->module ? r->module : "-");
        row[PC_KEY] = dup_clean(r->api_key_env ? r->api_key_env : "-");
        row[PC_SOURCE] = dup_clean(src);
        if (r->status) {
            row[PC_CAPS] = xmalloc(strlen(r->error) + sizeof "broken: ");
            sprintf(row[PC_CAPS], "broken: %s", r->error);
        } else {
            llmux_caps_string(r->caps, caps, sizeof caps);
            row[PC_CAPS] = dup_clean(caps[0] ? caps : "-");
        }
    }
    for (k = 0; k < PC_N; k++) {
        w[k] = 0;
        for (i = 0; i < n; i++)
            if (strlen(cells[i * PC_N + k]) > w[k])
                w[k] = strlen(cells[i * PC_N + k]);
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < PC_N; k++) {
            if (k == PC_KEY && !verbose)
                continue;
            if (k == PC_N - 1)
                printf("%s\n", cells[i * PC_N + k]);
            else
                printf("%-*s  ", (int)w[k], cells[i * PC_N + k]);
        }
    }
    for (i = 0; i < n * PC_N; i++)
        free(cells[i]);
    free(cells);
}

static json_object *json_str_or_null(const char *s)
{
    json_object *o;
    if (!s)
        return NULL; /* json-c's null */
    if (!(o = json_object_new_string(s)))
        die_oom();
    return o;
}

static void json_put(json_object *obj, const char *key, json_object *v)
{
    if (json_object_object_add(obj, key, v) != 0)
        die_oom();
}

/* --json: built with json-c, so names, paths and errors are always
 * escaped right. */
static void print_provider_json(const prov_list *l)
{
    json_object *arr = json_object_new_array();
    size_t i;
    if (!arr)
        die_oom();
    for (i = 0; i < l->n; i++) {
        const prov_row *r = &l->v[i];
        json_object *o = json_object_new_object(), *caps;
        char buf[256], *p, *save = NULL;
        if (!o || !(caps = json_object_new_array()))
            die_oom();
        json_put(o, "name", json_str_or_null(r->name));
        json_put(o, "module", json_str_or_null(r->module));
        json_put(o, "path", json_str_or_null(r->path));
        json_put(o, "descriptor", json_str_or_null(r->descriptor));
        json_put(o, "version", json_str_or_null(r->version));
        json_put(o, "description", json_str_or_null(r->description));
        json_put(o, "base_url", json_str_or_null(r->base_url));
        json_put(o, "api_key_env", json_str_or_null(r->api_key_env));
        llmux_caps_string(r->status ? 0 : r->caps, buf, sizeof buf);
        for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
            if (json_object_array_add(caps, json_str_or_null(p)) != 0)
                die_oom();
        json_put(o, "caps", caps);
        json_put(
            o, "status",
            json_str_or_null(r->status ? llmux_err_name(r->status) : "ok"));
        if (r->status)
            json_put(o, "error", json_str_or_null(r->error));
        if (json_object_array_add(arr, o) != 0)
            die_oom();
    }
    {
        const char *s = json_object_to_json_string_ext(
            arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                     JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
            die_oom();
        printf("%s\n", s);
    }
    json_object_put(arr);
}

int run_providers(cli *c)
{
    prov_list l = {NULL, 0, 0};
    int rc, st = 0;
    if (c->help) {
        print_cmd_help(cmd_def_of(c->cmd));
        return 0;
    }
    if (c->n_words)
        return usage_error(c, "providers: unexpected argument \"%s\"",
                           c->words[0]);
    if (c->verbose && !c->json && (st = print_plugin_dirs(c)))
        return st;
    rc = llmux_providers_list(NULL, collect_provider, &l);
    if (rc) {
        errorf(c, "providers: %s", llmux_strerror(rc));
        st = exit_status(rc);
    } else {
        if (c->json)
            print_provider_json(&l);
        else if (l.n)
            print_provider_table(&l, c->verbose);
        if (!l.n) {
            /* LLMUX_ENOPROVIDER's status, as for a provider not found */
            if (c->verbose && !c->json)
                errorf(c, "providers: no provider found in these "
                          "directories");
            else
                errorf(c, "providers: no provider found (see 'llmux "
                          "providers -v' for the directories searched)");
            st = exit_status(LLMUX_ENOPROVIDER);
        }
    }
    prov_list_free(&l);
    return st;
}
