/*
 * core/settings.c: the settings the core reads (base URL, key, timeouts,
 * retries, TLS, rate limits), each described once by LLMUX__SETTINGS
 * (internal.h): the check a config-string value passes when it is set,
 * and the resolver that gives a request its effective settings from its
 * setter, its config string, the client's options and the default. The
 * engine and call.c act on the result; none of them reads a setting's key
 * itself.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "redis.h"

const char *const llmux__auth_words[] = {"bearer", "optional", "none", NULL};
const char *const llmux__fallback_words[] = {"closed", "local", NULL};
const char *const llmux__local_words[] = {"local", NULL};
const char *const llmux__lru_words[] = {"lru", NULL};

enum check_kind {
    CHECK_ANY,     /* any text */
    CHECK_SECONDS, /* non-negative seconds, fractions allowed */
    CHECK_INT,     /* an integer in [min, max] */
    CHECK_WORD,    /* one of `words` (any case) */
    CHECK_REDIS,   /* one of `words` or a Redis URL (redis.c parses it) */
    CHECK_KEYPART, /* 1..64 of [A-Za-z0-9._:-]: safe inside a Redis key */
    CHECK_CACHE,   /* "yes", "no" or a TTL in seconds ("0" is "no") */
    CHECK_USD      /* a positive decimal, micro-dollars kept */
};

enum store_type { ST_STR, ST_MS, ST_INT, ST_RATE, ST_FLAG };

typedef struct setting {
    const char *key;
    enum store_type type;
    enum check_kind check;
    long min, max;            /* CHECK_INT */
    const char *const *words; /* CHECK_WORD: NULL-terminated */
    const char *wants;        /* the error's "wants ..." */
    double dflt;
    size_t off;           /* in llmux__settings */
    long req_off;         /* in llmux_request, -1 = no setter */
    size_t req_size;      /* of that member */
    long opt_off;         /* in llmux_client_options, -1 = none */
    size_t opt_size;      /* of that member */
    unsigned opt_version; /* the options' version that has it */
    const char *stage;
} setting;

#define LLMUX__CHECK(kind, min, max, words, wants)                             \
    CHECK_##kind, min, max, words, wants
#define REQ(m) (long)offsetof(llmux_request, m), sizeof(((llmux_request *)0)->m)
#define NOREQ  -1, 0
#define OPT(m, v)                                                              \
    (long)offsetof(llmux_client_options, m),                                   \
        sizeof(((llmux_client_options *)0)->m), v
#define NOOPT -1, 0, 0

static const setting settings[] = {
#define ROW(type, name, key, check, dflt, req, opt, stage)                     \
    {key, ST_##type, check, dflt, offsetof(llmux__settings, name),             \
     req, opt,       stage},
    LLMUX__SETTINGS(ROW)
#undef ROW
};

static const llmux__settings builtin = {
#define INIT(type, name, key, check, dflt, req, opt, stage)                    \
    (LLMUX__ST_##type)(dflt),
    LLMUX__SETTINGS(INIT)
#undef INIT
};

#undef LLMUX__CHECK
#undef REQ
#undef NOREQ
#undef OPT
#undef NOOPT

#define N_SETTINGS         (sizeof settings / sizeof settings[0])
#define AT(base, off, T)   (*(T *)((char *)(base) + (off)))
#define AT_C(base, off, T) (*(const T *)((const char *)(base) + (off)))

static size_t type_size(enum store_type t)
{
    switch (t) {
    case ST_STR:
        return sizeof(const char *);
    case ST_MS:
        return sizeof(long);
    case ST_RATE:
        return sizeof(double);
    default:
        return sizeof(int);
    }
}

/* The setting of key k (any case; config strings store keys lower-case,
 * so that is the fast path), or NULL for a provider option. */
static const setting *find_setting(const char *k)
{
    size_t i;
    const char *p;
    for (p = k; *p && !(*p >= 'A' && *p <= 'Z'); p++)
        ;
    for (i = 0; i < N_SETTINGS; i++)
        if (*p ? llmux__strcaseeq(k, settings[i].key)
               : k[0] == settings[i].key[0] && !strcmp(k, settings[i].key))
            return &settings[i];
    return NULL;
}

int llmux__is_core_key(const char *k)
{
    return find_setting(k) != NULL;
}

const char *llmux__setting_key(size_t i)
{
    return i < N_SETTINGS ? settings[i].key : NULL;
}

int llmux__settings_selfcheck(char *err, size_t errlen)
{
    size_t i;
    for (i = 0; i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        const char *bad = NULL;
        if (s->req_off >= 0 && s->req_size != type_size(s->type))
            bad = "its request member";
        else if (s->opt_off >= 0 && s->opt_size != type_size(s->type))
            bad = "its client option";
        else if (s->type == ST_STR && s->dflt != 0)
            bad = "a string's default (only NULL)";
        else if (!s->stage || !*s->stage)
            bad = "no stage";
        if (bad) {
            snprintf(err, errlen, "setting %s: %s does not fit its type",
                     s->key, bad);
            return -1;
        }
    }
    return 0;
}

/* Parses a non-negative decimal number of seconds (may have a fraction)
 * into milliseconds, without locale-dependent strtod. */
int llmux__parse_seconds_ms(const char *s, long *ms)
{
    long whole = 0, frac = 0, scale = 1000;
    const char *p = s;
    if (!s || !*s)
        return -1;
    while (*p >= '0' && *p <= '9') {
        if (whole > 100000000)
            return -1;
        whole = whole * 10 + (*p++ - '0');
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            scale /= 10; /* digits past milliseconds are dropped */
            frac += (*p++ - '0') * scale;
        }
    }
    if (*p || p == s || (p == s + 1 && *s == '.'))
        return -1;
    *ms = whole * 1000 + frac;
    if (*ms == 0 && strpbrk(s, "123456789"))
        *ms = 1; /* a positive duration below 1 ms is not "none" */
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Reads a config-string value into the setting's slot of `out`; 0, or -1
 * when it does not pass the setting's check (`out` untouched). */
static int parse_value(const setting *s, const char *v, llmux__settings *out)
{
    long n;
    size_t i;
    switch (s->check) {
    case CHECK_SECONDS:
        if (llmux__parse_seconds_ms(v, &n))
            return -1;
        break;
    case CHECK_INT:
        if (parse_int(v, s->min, s->max, &n))
            return -1;
        break;
    case CHECK_CACHE:
        if (llmux__strcaseeq(v, "yes"))
            n = LLMUX__CACHE_YES;
        else if (llmux__strcaseeq(v, "no"))
            n = LLMUX__CACHE_NO;
        else if (llmux__parse_seconds_ms(v, &n))
            return -1;
        else if (n == 0)
            n = LLMUX__CACHE_NO; /* kept for no time: not kept */
        break;
    case CHECK_USD: { /* digits[.digits], without the locale's strtod */
        const char *p = v;
        long frac = 0, scale = 1000000;
        for (n = 0; *p >= '0' && *p <= '9' && n < 1000000000L; p++)
            n = n * 10 + (*p - '0');
        if (p == v)
            return -1;
        if (*p == '.' && !(p[1] >= '0' && p[1] <= '9'))
            return -1; /* "1." */
        if (*p == '.')
            for (p++; *p >= '0' && *p <= '9' && scale > 1; p++)
                frac += (*p - '0') * (scale /= 10);
        if (*p || (n == 0 && frac == 0))
            return -1;
        n = n * 1000000 + frac; /* micro-dollars */
        break;
    }
    case CHECK_WORD:
        for (i = 0; s->words[i] && !llmux__strcaseeq(v, s->words[i]); i++)
            ;
        if (!s->words[i])
            return -1;
        n = 0;
        break;
    case CHECK_REDIS:
        for (i = 0; s->words[i] && !llmux__strcaseeq(v, s->words[i]); i++)
            ;
        if (!s->words[i]) {
            llmux__redis_url u;
            char err[16];
            if (llmux__redis_url_parse(v, &u, err, sizeof err))
                return -1;
            llmux__redis_url_free(&u);
        }
        n = 0;
        break;
    case CHECK_KEYPART:
        n = (long)strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
                            "YZ0123456789._:-");
        if (!*v || v[n] || n > 64)
            return -1;
        /* fall through */
    default:
        n = 0;
    }
    if (!out)
        return 0;
    switch (s->type) {
    case ST_STR:
        AT(out, s->off, const char *) = v;
        break;
    case ST_MS:
        AT(out, s->off, long) = n;
        break;
    case ST_RATE:
        AT(out, s->off, double) =
            s->check == CHECK_USD ? (double)n / 1e6 : (double)n;
        break;
    default:
        AT(out, s->off, int) = (int)n;
    }
    return 0;
}

int llmux__setting_check(const char *where, const char *key, const char *value,
                         char *err, size_t errlen)
{
    const setting *s = find_setting(key);
    char *shown;
    if (!s || parse_value(s, value, NULL) == 0)
        return 0;
    shown = llmux__url_masked(value); /* never a URL's password */
    snprintf(err, errlen, "%s: option \"%s\" wants %s, got \"%s\"", where, key,
             s->wants, shown ? shown : "(not shown: out of memory)");
    llmux__free(shown);
    return LLMUX_ECONFIG;
}

/* Copies the setting from `src` (a request's member or a client option at
 * `off`) when it is set there: 0 or less for a duration or a rate, below
 * 0 for a count, NULL for a string; a flag is always set. Returns 1 when
 * it was. */
static int take_if_set(const setting *s, const void *src, long off,
                       llmux__settings *out)
{
    switch (s->type) {
    case ST_STR: {
        const char *v = AT_C(src, off, char *);
        if (!v)
            return 0;
        AT(out, s->off, const char *) = v;
        return 1;
    }
    case ST_MS: {
        long v = AT_C(src, off, long);
        if (v <= 0)
            return 0;
        AT(out, s->off, long) = v;
        return 1;
    }
    case ST_RATE: {
        double v = AT_C(src, off, double);
        if (!(v > 0))
            return 0;
        AT(out, s->off, double) = v;
        return 1;
    }
    case ST_INT: {
        int v = AT_C(src, off, int);
        if (v < 0)
            return 0;
        AT(out, s->off, int) = v;
        return 1;
    }
    default:
        AT(out, s->off, int) = AT_C(src, off, int) != 0;
        return 1;
    }
}

void llmux__settings_free_defaults(llmux__settings *d)
{
    size_t i;
    for (i = 0; i < N_SETTINGS; i++)
        if (settings[i].type == ST_STR) {
            llmux__free((char *)AT(d, settings[i].off, const char *));
            AT(d, settings[i].off, const char *) = NULL;
        }
}

int llmux__settings_defaults(const llmux_client_options *o,
                             llmux__settings *out, char *err, size_t errlen)
{
    size_t i;
    *out = builtin;
    for (i = 0; o && i < N_SETTINGS; i++) {
        const setting *s = &settings[i];
        if (s->opt_off < 0 || o->version < s->opt_version ||
            !take_if_set(s, o, s->opt_off, out) || s->type != ST_STR)
            continue;
        if (llmux__setting_check("client options", s->key,
                                 AT(out, s->off, const char *), err, errlen)) {
            /* a checked string option: refused as a config string is,
             * with the same message (a URL's password masked) */
            AT(out, s->off, const char *) = NULL;
            llmux__settings_free_defaults(out);
            return LLMUX_ECONFIG;
        }
        /* the caller's string lives only during the call: the client's
         * own copy */
        if (!(AT(out, s->off, const char *) =
                  llmux__strdup(AT(out, s->off, const char *)))) {
            llmux__settings_free_defaults(out);
            return LLMUX_ENOMEM;
        }
    }
    return 0;
}

void llmux__settings_resolve(const llmux_request *req,
                             const llmux__settings *defaults,
                             const llmux_kv *layer, size_t n,
                             llmux__settings *out)
{
    const char *below;
    size_t i;
    *out = defaults ? *defaults : builtin;
    /* the provider's descriptor over the client's (checked as it loaded) */
    for (i = 0; i < n; i++) {
        const setting *s = find_setting(layer[i].key);
        if (s)
            (void)parse_value(s, layer[i].value, out);
    }
    /* the config string over the defaults: its keys were checked when
     * set; one that no longer passes (a fallback spec is checked too)
     * leaves the client's value */
    below = out->api_key; /* the client's or the descriptor's */
    for (i = 0; i < req->cfg.n_opts; i++) {
        const setting *s = find_setting(req->cfg.opts[i].key);
        if (s)
            (void)parse_value(s, req->cfg.opts[i].value, out);
    }
    /* api_key and api_key_env are one choice: the config string's
     * variable wins over a key the layers below gave */
    for (i = 0; below && out->api_key == below && i < req->cfg.n_opts; i++)
        if (llmux__strcaseeq(req->cfg.opts[i].key, "api_key_env"))
            out->api_key = NULL;
    /* the request's setters over both */
    for (i = 0; i < N_SETTINGS; i++)
        if (settings[i].req_off >= 0)
            (void)take_if_set(&settings[i], req, settings[i].req_off, out);
}
