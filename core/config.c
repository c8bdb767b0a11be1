/*
 * core/config.c: the config string parser ("openai/gpt-4o;timeout=30",
 * "provider=openai;model=gpt-4o-mini;base_url=...") and the small
 * key/value store behind it.
 *
 * Grammar and rules:
 * - Long form when an '=' comes before any '/', ':' or ';': the whole
 *   string is ';'-separated key=value pairs and `provider` is required.
 * - Otherwise short form: the text up to the first ';' is the provider,
 *   optionally followed by '/' or ':' and the model (split at the FIRST
 *   '/' or ':', the model keeps the rest, "ollama/llama3:8b"); a bare
 *   "ollama" names the provider only. ";key=value" pairs may follow.
 * - Keys are ASCII letters, digits, '_', '.', '-', matched
 *   case-insensitively and stored lower-cased. Whitespace around keys and
 *   values is trimmed. Empty segments (";;", a trailing ';') are skipped.
 *   A later duplicate replaces the earlier value (in place). `provider`
 *   and `model` may also appear as pairs in the short form and then
 *   override the leading part.
 * - Quoting: a value starting with '{' runs to its matching '}' (braces
 *   nest, so "{{x}}" is "{x}" and JSON objects fit); inside, everything is
 *   kept verbatim, ';' and whitespace included. After the closing '}' only
 *   whitespace may come before the next ';' or the end: "{a}b" is an
 *   error (it would otherwise swallow the segments after it).
 * - Limits: at most LLMUX__CONFIG_MAX_LEN bytes and LLMUX__CONFIG_MAX_OPTS
 *   options, so that parsing stays linear in the length: a duplicate check
 *   compares at most LLMUX__CONFIG_MAX_OPTS keys.
 * - Provider names use [A-Za-z0-9_.-]; models must be non-empty and free
 *   of control characters.
 * Error messages never show a secret: whenever the spec is quoted, the
 * values of api_key and of any key ending in "key", "token", "secret" or
 * "password" are replaced by "***", and so is the user:password part of a
 * URL in any value (proxy=http://user:pass@host).
 */
#include <string.h>

#include "internal.h"

#define CFG_QUOTE 160 /* longest quoted part in an error message */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static void trim(const char **a, const char **b)
{
    while (*a < *b && is_space(**a))
        (*a)++;
    while (*b > *a && is_space((*b)[-1]))
        (*b)--;
}

/* Case-insensitive: does s[0..n) equal the lower-case word w? */
static int word_eq(const char *s, size_t n, const char *w)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!w[i] || lower(s[i]) != w[i])
            return 0;
    return w[n] == '\0';
}

/*
 * Copies s[0..n) into dst for an error message: control characters as
 * \xHH, '"' and '\' escaped, cut with "..." when too long.
 */
static void quote(char *dst, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= cap) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            if (c == '"' || c == '\\')
                dst[o++] = '\\';
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}

/* One ";"-separated segment of key=value form. */
typedef struct cfg_seg {
    const char *start;   /* first byte of the segment */
    const char *k0, *k1; /* trimmed key */
    const char *eq;      /* the '=', or NULL */
    const char *v0, *v1; /* trimmed value, or the inside of {...} */
    int unterminated;    /* '{' without its closing '}' */
    int junk;            /* text after the closing '}' */
    const char *raw_end; /* end of the segment's text (before ';') */
    const char *next;    /* next segment, or NULL at the end */
} cfg_seg;

static void scan_seg(const char *s, cfg_seg *g)
{
    const char *p = s;

    memset(g, 0, sizeof *g);
    g->start = s;
    while (*p && *p != '=' && *p != ';')
        p++;
    g->k0 = s;
    g->k1 = p;
    trim(&g->k0, &g->k1);
    if (*p != '=') {
        g->v0 = g->v1 = g->raw_end = p;
        g->next = *p ? p + 1 : NULL;
        return;
    }
    g->eq = p++;
    while (is_space(*p))
        p++;
    if (*p == '{') {
        const char *q = p + 1;
        size_t depth = 1;
        for (; *q; q++) {
            if (*q == '{')
                depth++;
            else if (*q == '}' && --depth == 0)
                break;
        }
        g->v0 = p + 1;
        if (!*q) {
            g->v1 = g->raw_end = q;
            g->unterminated = 1;
            g->next = NULL;
            return;
        }
        g->v1 = q++;
        while (is_space(*q))
            q++;
        if (*q && *q != ';') {
            /* junk after the '}': an error; the segment ends at the next
             * ';' so that what follows is still seen (and redacted) */
            g->junk = 1;
            q += strcspn(q, ";");
        }
        g->raw_end = q;
        g->next = *q ? q + 1 : NULL;
        return;
    }
    g->v0 = p;
    while (*p && *p != ';')
        p++;
    g->v1 = g->raw_end = p;
    trim(&g->v0, &g->v1);
    g->next = *p ? p + 1 : NULL;
}

/* Long form iff an '=' comes before any '/', ':' or ';'. */
static int is_long_form(const char *spec)
{
    const char *p = spec + strcspn(spec, "=/:;");
    return *p == '=';
}

/* A key whose value is a secret (internal.h): also the rule for
 * api_key_env's variables and for credential names in messages. */
int llmux__secret_name(const char *k, size_t n)
{
    static const char *const ends[] = {"key", "token", "secret", "password"};
    size_t i;
    for (i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        size_t m = strlen(ends[i]);
        if (n >= m && word_eq(k + n - m, m, ends[i]))
            return 1;
    }
    return 0;
}

int llmux__url_userinfo(const char *s, size_t n, size_t *a, size_t *b)
{
    size_t i, end;
    const char *at = NULL;
    for (i = 0; i + 3 <= n; i++)
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/')
            break;
    if (i + 3 > n)
        return 0;
    for (end = i + 3; end < n && !strchr("/?#", s[end]); end++)
        if (s[end] == '@')
            at = s + end;
    if (!at)
        return 0; /* *a and *b untouched */
    *a = i + 3;
    *b = (size_t)(at - s);
    return 1;
}

char *llmux__url_masked(const char *url)
{
    const char *p = strstr(url, "://"), *at = strrchr(url, '@');
    size_t a, n = strlen(url);
    char *out;
    if (!p || !at || at < p + 3)
        return llmux__strdup(url);
    a = (size_t)(p + 3 - url);
    if (!(out = llmux__malloc(n + 4)))
        return NULL;
    memcpy(out, url, a);
    memcpy(out + a, "***", 3);
    memcpy(out + a + 3, at, n - (size_t)(at - url) + 1);
    return out;
}

/* Appends v[0..n) with a URL's user:password as "***". */
static int append_value(llmux__buf *b, const char *v, size_t n)
{
    size_t a, e;
    if (!llmux__url_userinfo(v, n, &a, &e))
        return llmux__buf_append(b, v, n);
    return llmux__buf_append(b, v, a) == 0 &&
                   llmux__buf_append(b, "***", 3) == 0 &&
                   llmux__buf_append(b, v + e, n - e) == 0
               ? 0
               : LLMUX_ENOMEM;
}

/*
 * The spec for error messages, quoted, secrets replaced by "***" (see the
 * top of this file). Written into dst (cap bytes).
 */
static void redact(char *dst, size_t cap, const char *spec)
{
    llmux__buf b = {0};
    const char *s = spec;
    int ok = 1;

    if (!is_long_form(spec)) {
        size_t n = strcspn(spec, ";");
        ok = llmux__buf_append(&b, spec, n) == 0;
        s = spec[n] ? spec + n + 1 : NULL;
        if (s && ok)
            ok = llmux__buf_append(&b, ";", 1) == 0;
    }
    while (s && ok) {
        cfg_seg g;
        scan_seg(s, &g);
        if (g.eq && llmux__secret_name(g.k0, (size_t)(g.k1 - g.k0))) {
            ok = llmux__buf_append(&b, g.start, (size_t)(g.eq + 1 - g.start)) ==
                     0 &&
                 llmux__buf_append(&b, "***", 3) == 0;
        } else {
            ok = append_value(&b, g.start, (size_t)(g.raw_end - g.start)) == 0;
        }
        if (ok && g.next)
            ok = llmux__buf_append(&b, ";", 1) == 0;
        s = g.next;
    }
    if (ok && b.p)
        quote(dst, cap, b.p, b.len);
    else if (ok)
        quote(dst, cap, "", 0);
    else
        quote(dst, cap, "(spec)", 6);
    llmux__buf_free(&b);
}

static int fail_spec(char *err, size_t errlen, const char *spec,
                     const char *what)
{
    char q[CFG_QUOTE];
    redact(q, sizeof q, spec);
    return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                         "config string: %s in \"%s\"", what, q);
}

/* ---- the store ---------------------------------------------------------- */

void llmux__config_free(llmux__config *c)
{
    size_t i;
    if (!c)
        return;
    llmux__free(c->provider);
    llmux__free(c->model);
    for (i = 0; i < c->n_opts; i++) {
        llmux__free((char *)c->opts[i].key);
        llmux__free((char *)c->opts[i].value);
    }
    llmux__free(c->opts);
    memset(c, 0, sizeof *c);
}

/* Replaces *slot by a copy of v[0..n) (v NULL: by NULL). */
static int set_str(char **slot, const char *v, size_t n)
{
    char *d = NULL;
    if (v && !(d = llmux__strndup(v, n)))
        return LLMUX_ENOMEM;
    llmux__free(*slot);
    *slot = d;
    return 0;
}

/* The position of option k[0..kn) in c, or -1 (at most
 * LLMUX__CONFIG_MAX_OPTS compared). */
static long find_opt(const llmux__config *c, const char *k, size_t kn)
{
    size_t i;
    for (i = 0; i < c->n_opts; i++)
        if (strlen(c->opts[i].key) == kn && word_eq(k, kn, c->opts[i].key))
            return (long)i;
    return -1;
}

/*
 * Sets key k[0..kn) (any case) to v[0..vn); v NULL removes the option (or
 * clears provider/model). A new option is refused (LLMUX_ECONFIG) beyond
 * LLMUX__CONFIG_MAX_OPTS.
 */
static int set_n(llmux__config *c, const char *k, size_t kn, const char *v,
                 size_t vn)
{
    size_t i;
    long at;
    char *key, *val;
    llmux_kv *o;

    if (word_eq(k, kn, "provider"))
        return set_str(&c->provider, v, vn);
    if (word_eq(k, kn, "model"))
        return set_str(&c->model, v, vn);
    if ((at = find_opt(c, k, kn)) >= 0) {
        i = (size_t)at;
        if (!v) {
            llmux__free((char *)c->opts[i].key);
            llmux__free((char *)c->opts[i].value);
            memmove(c->opts + i, c->opts + i + 1,
                    (c->n_opts - i - 1) * sizeof *c->opts);
            c->n_opts--;
            return 0;
        }
        if (!(val = llmux__strndup(v, vn)))
            return LLMUX_ENOMEM;
        llmux__free((char *)c->opts[i].value);
        c->opts[i].value = val;
        return 0;
    }
    if (!v)
        return 0;
    if (c->n_opts >= LLMUX__CONFIG_MAX_OPTS)
        return LLMUX_ECONFIG;
    key = llmux__strndup(k, kn);
    val = llmux__strndup(v, vn);
    o = (key && val) ? llmux__realloc(c->opts, (c->n_opts + 1) * sizeof *o)
                     : NULL;
    if (!o) {
        llmux__free(key);
        llmux__free(val);
        return LLMUX_ENOMEM;
    }
    for (i = 0; i < kn; i++)
        key[i] = lower(key[i]);
    o[c->n_opts].key = key;
    o[c->n_opts].value = val;
    c->opts = o;
    c->n_opts++;
    return 0;
}

const char *llmux__config_get(const llmux__config *c, const char *key)
{
    size_t i;
    const char *k;
    if (!c || !key)
        return NULL;
    for (k = key; *k && !(*k >= 'A' && *k <= 'Z'); k++)
        ;
    if (*k) { /* the caller's key has capitals: compare case-insensitively */
        if (llmux__strcaseeq(key, "provider"))
            return c->provider;
        if (llmux__strcaseeq(key, "model"))
            return c->model;
        for (i = 0; i < c->n_opts; i++)
            if (llmux__strcaseeq(c->opts[i].key, key))
                return c->opts[i].value;
        return NULL;
    }
    /* stored keys are lower-case, so an exact match suffices */
    if (strcmp(key, "provider") == 0)
        return c->provider;
    if (strcmp(key, "model") == 0)
        return c->model;
    for (i = 0; i < c->n_opts; i++)
        if (strcmp(c->opts[i].key, key) == 0)
            return c->opts[i].value;
    return NULL;
}

/*
 * Key must be a valid option name; value NULL removes the option (or
 * clears the model). Returns 0, LLMUX_EINVAL (bad key), LLMUX_ECONFIG
 * (invalid provider name or model) or LLMUX_ENOMEM.
 */
int llmux__config_set(llmux__config *c, const char *key, const char *value)
{
    size_t i, kn;
    if (!c || !key || !*key)
        return LLMUX_EINVAL;
    kn = strlen(key);
    for (i = 0; i < kn; i++)
        if (!is_name_char(key[i]))
            return LLMUX_EINVAL;
    if (llmux__strcaseeq(key, "provider")) {
        if (!value || !*value)
            return LLMUX_ECONFIG;
        for (i = 0; value[i]; i++)
            if (!is_name_char(value[i]))
                return LLMUX_ECONFIG;
    } else if (llmux__strcaseeq(key, "model") && value) {
        if (!*value)
            return LLMUX_ECONFIG;
        for (i = 0; value[i]; i++)
            if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                return LLMUX_ECONFIG;
    }
    return set_n(c, key, kn, value, value ? strlen(value) : 0);
}

int llmux__config_copy(llmux__config *dst, const llmux__config *src)
{
    size_t i;
    memset(dst, 0, sizeof *dst);
    if (!src)
        return 0;
    if ((src->provider && !(dst->provider = llmux__strdup(src->provider))) ||
        (src->model && !(dst->model = llmux__strdup(src->model))))
        goto nomem;
    if (src->n_opts) {
        dst->opts = llmux__calloc(src->n_opts, sizeof *dst->opts);
        if (!dst->opts)
            goto nomem;
        for (i = 0; i < src->n_opts; i++) {
            dst->opts[i].key = llmux__strdup(src->opts[i].key);
            dst->opts[i].value = llmux__strdup(src->opts[i].value);
            dst->n_opts = i + 1;
            if (!dst->opts[i].key || !dst->opts[i].value)
                goto nomem;
        }
    }
    return 0;
nomem:
    llmux__config_free(dst);
    return LLMUX_ENOMEM;
}

/* ---- the parser --------------------------------------------------------- */

/* Checks a provider name; on error writes the message. */
static int check_provider(const char *name, size_t n, char *err, size_t errlen)
{
    char q[CFG_QUOTE], bad[16];
    size_t i;
    for (i = 0; i < n; i++)
        if (!is_name_char(name[i]))
            break;
    if (i == n)
        return 0;
    quote(bad, sizeof bad, name + i, 1);
    quote(q, sizeof q, name, n);
    return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                         "config string: invalid character '%s' in provider "
                         "name \"%s\" (allowed: A-Z a-z 0-9 _ . -)",
                         bad, q);
}

static int check_model(const char *m, char *err, size_t errlen)
{
    char q[CFG_QUOTE];
    size_t i;
    for (i = 0; m[i]; i++)
        if ((unsigned char)m[i] < 0x20 || m[i] == 0x7f)
            break;
    if (!m[i])
        return 0;
    quote(q, sizeof q, m, strlen(m));
    return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                         "config string: control character in model name "
                         "\"%s\"",
                         q);
}

/* Parses ";"-separated pairs from s (NULL: none) into c. */
static int parse_pairs(const char *spec, const char *s, llmux__config *c,
                       char *err, size_t errlen)
{
    char q[CFG_QUOTE];
    size_t i;
    int rc;

    while (s) {
        cfg_seg g;
        size_t kn;
        scan_seg(s, &g);
        kn = (size_t)(g.k1 - g.k0);
        if (!g.eq) {
            if (kn) {
                char what[CFG_QUOTE + 40];
                quote(q, sizeof q, g.k0, kn);
                snprintf(what, sizeof what, "option \"%s\" has no '='", q);
                return fail_spec(err, errlen, spec, what);
            }
            s = g.next; /* empty segment */
            continue;
        }
        if (!kn) {
            /* quote the segment with its leading ';' when it has one */
            const char *a =
                g.start > spec && g.start[-1] == ';' ? g.start - 1 : g.start;
            quote(q, sizeof q, a, (size_t)(g.raw_end - a));
            return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                                 "config string: empty option name at \"%s\"",
                                 q);
        }
        for (i = 0; i < kn; i++)
            if (!is_name_char(g.k0[i]))
                break;
        if (i < kn) {
            char bad[16];
            quote(bad, sizeof bad, g.k0 + i, 1);
            quote(q, sizeof q, g.k0, kn);
            return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                                 "config string: invalid character '%s' in "
                                 "option name \"%s\"",
                                 bad, q);
        }
        if (g.unterminated) {
            quote(q, sizeof q, g.k0, kn);
            return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                                 "config string: unterminated '{' in option "
                                 "\"%s\"",
                                 q);
        }
        if (g.junk) {
            char what[CFG_QUOTE + 60];
            quote(q, sizeof q, g.k0, kn);
            snprintf(what, sizeof what,
                     "text after the closing '}' of option \"%s\"", q);
            return fail_spec(err, errlen, spec, what);
        }
        rc = set_n(c, g.k0, kn, g.v0, (size_t)(g.v1 - g.v0));
        if (rc == LLMUX_ECONFIG)
            return llmux__seterr(err, errlen, rc,
                                 "config string: more than %d options",
                                 LLMUX__CONFIG_MAX_OPTS);
        if (rc)
            return llmux__seterr(err, errlen, rc, "config string: %s",
                                 llmux_strerror(rc));
        s = g.next;
    }
    return 0;
}

/* Short form: "provider[/model][;pairs]". */
static int parse_short(const char *spec, llmux__config *c, char *err,
                       size_t errlen)
{
    char q[CFG_QUOTE];
    size_t seg = strcspn(spec, ";");
    size_t sep = strcspn(spec, "/:");
    const char *p0 = spec, *p1, *m0, *m1;
    int rc;

    if (sep > seg)
        sep = seg;
    p1 = spec + sep;
    trim(&p0, &p1);
    if (p0 == p1)
        return fail_spec(err, errlen, spec, "empty provider name");
    if ((rc = check_provider(p0, (size_t)(p1 - p0), err, errlen)) != 0)
        return rc;
    if ((rc = set_str(&c->provider, p0, (size_t)(p1 - p0))) != 0)
        return llmux__seterr(err, errlen, rc, "config string: %s",
                             llmux_strerror(rc));
    if (sep < seg) {
        m0 = spec + sep + 1;
        m1 = spec + seg;
        trim(&m0, &m1);
        if (m0 == m1) {
            quote(q, sizeof q, spec, sep + 1);
            return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                                 "config string: empty model after \"%s\"", q);
        }
        if ((rc = set_str(&c->model, m0, (size_t)(m1 - m0))) != 0)
            return llmux__seterr(err, errlen, rc, "config string: %s",
                                 llmux_strerror(rc));
    }
    return parse_pairs(spec, spec[seg] ? spec + seg + 1 : NULL, c, err, errlen);
}

int llmux__config_parse(const char *spec, llmux__config *out, char *err,
                        size_t errlen)
{
    llmux__config c = {0};
    const char *s;
    int rc;

    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (!spec)
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "config string: none given (NULL)");
    if (strlen(spec) > LLMUX__CONFIG_MAX_LEN)
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "config string: longer than %d bytes",
                             LLMUX__CONFIG_MAX_LEN);
    for (s = spec; is_space(*s); s++)
        ;
    if (!*s)
        return llmux__seterr(err, errlen, LLMUX_ECONFIG,
                             "config string: empty");

    if (is_long_form(spec))
        rc = parse_pairs(spec, spec, &c, err, errlen);
    else
        rc = parse_short(spec, &c, err, errlen);

    /* provider and model, wherever they came from */
    if (rc == 0) {
        if (!c.provider)
            rc = fail_spec(err, errlen, spec, "no provider");
        else if (!*c.provider)
            rc = fail_spec(err, errlen, spec, "empty provider name");
        else
            rc = check_provider(c.provider, strlen(c.provider), err, errlen);
    }
    if (rc == 0 && c.model) {
        if (!*c.model)
            rc = fail_spec(err, errlen, spec, "empty model");
        else
            rc = check_model(c.model, err, errlen);
    }
    if (rc) {
        llmux__config_free(&c);
        return rc;
    }
    *out = c;
    return 0;
}
