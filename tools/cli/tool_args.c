/*
 * tools/cli/tool_args.c: the command line, and numbers parsed without the
 * locale.
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

/* ---- number parsing (locale-independent) --------------------------------- */

/* Optional sign, digits; nothing else. */
int parse_ll(const char *s, int allow_neg, long long max, long long *out)
{
    int neg = 0;
    unsigned long long v = 0;
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (neg && !allow_neg)
        return -1;
    if (!(*s >= '0' && *s <= '9'))
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > ((unsigned long long)max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*s)
        return -1;
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

/* 10^n; exact for n <= 22. */
static double pow10i(long n)
{
    double p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/*
 * A decimal number: [+-]digits[.digits][(e|E)[+-]digits], '.' as the
 * separator. Converted by hand so LC_NUMERIC can never matter: the digits
 * make an integer mantissa scaled once by an exact power of ten, so short
 * inputs like "0.7" come out correctly rounded, as strtod would give.
 */
static int parse_double(const char *s, double *out)
{
    unsigned long long m = 0;
    long exp = 0, e = 0;
    int neg = 0, digits = 0, eneg = 0;
    double v;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (m < 100000000000000000ULL)
            m = m * 10 + (unsigned)(*s - '0');
        else
            exp++; /* digits past 17 only scale */
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (m < 100000000000000000ULL) {
                m = m * 10 + (unsigned)(*s - '0');
                exp--;
            }
    if (!digits)
        return -1;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            eneg = *s++ == '-';
        if (!(*s >= '0' && *s <= '9'))
            return -1;
        for (; *s >= '0' && *s <= '9'; s++)
            if (e < 100000)
                e = e * 10 + (*s - '0');
        exp += eneg ? -e : e;
    }
    if (*s)
        return -1;
    v = (double)m;
    if (m && exp > 300)
        return -1; /* too large to mean anything here */
    if (exp < -340 || !m)
        v = 0;
    else if (exp < 0)
        v = -exp > 22 ? v / pow10i(22) / pow10i(-exp - 22) : v / pow10i(-exp);
    else
        v *= pow10i(exp);
    *out = neg ? -v : v;
    return 0;
}

/* ---- command line ------------------------------------------------------- */

/*
 * The row for option `name` (`len` bytes): the one for command `cmd` when
 * there is one (a name may mean different things to different commands),
 * else any, for the "not an option of" message.
 */
static const opt_def *find_long(const char *name, size_t len, int cmd)
{
    size_t i;
    const opt_def *any = NULL;
    for (i = 0; i < n_opt_defs; i++)
        if (strlen(opt_defs[i].name) == len &&
            strncmp(opt_defs[i].name, name, len) == 0) {
            if (opt_defs[i].cmds & (unsigned)cmd)
                return &opt_defs[i];
            if (!any)
                any = &opt_defs[i];
        }
    return any;
}

static const opt_def *find_short(char ch, int cmd)
{
    size_t i;
    const opt_def *any = NULL;
    for (i = 0; i < n_opt_defs; i++)
        if (opt_defs[i].short_name == ch) {
            if (opt_defs[i].cmds & (unsigned)cmd)
                return &opt_defs[i];
            if (!any)
                any = &opt_defs[i];
        }
    return any;
}

/*
 * A duration flag's value in ms: a number of seconds (fractions allowed),
 * at most 2e6; 0 only when `allow_zero`. A positive value below 1 ms is
 * 1 ms, never "none". Returns 0 or an exit status (message printed).
 */
static int parse_duration(const cli *c, const char *flag, const char *v,
                          int allow_zero, long *ms)
{
    double x;
    if (parse_double(v, &x) || x < 0 || x > 2e6 || (!allow_zero && x == 0)) {
        errorf(c, "%s: not a %s number of seconds", flag,
               allow_zero ? "non-negative" : "positive");
        return EXIT_USAGE;
    }
    *ms = (long)(x * 1000.0 + 0.5);
    if (x > 0 && *ms == 0)
        *ms = 1;
    return 0;
}

/* Stores one option. Returns 0 or an exit status. */
static int set_opt(cli *c, const opt_def *d, const char *flag, const char *v)
{
    long long ll;
    double x;
    int st;
    switch (d->id) {
    case O_MODEL:
        c->spec = v;
        break;
    case O_BASE_URL:
        c->base_url = v;
        break;
    case O_API_KEY:
        c->api_key = v;
        c->secret1 = v;
        break;
    case O_KEY_CMD:
        c->key_cmd = v;
        break;
    case O_TOKEN_CMD:
        c->token_cmd = v;
        break;
    case O_SYSTEM:
        c->system = v;
        break;
    case O_MAX_TOKENS:
        if (parse_ll(v, 0, 2147483647LL, &ll)) {
            errorf(c, "%s: not a non-negative integer", flag);
            return EXIT_USAGE;
        }
        c->max_tokens = (long)ll;
        c->has |= HAS_MAX_TOKENS;
        break;
    case O_TEMPERATURE:
    case O_TOP_P:
        if (parse_double(v, &x)) {
            errorf(c, "%s: not a number", flag);
            return EXIT_USAGE;
        }
        if (d->id == O_TEMPERATURE) {
            c->temperature = x;
            c->has |= HAS_TEMPERATURE;
        } else {
            c->top_p = x;
            c->has |= HAS_TOP_P;
        }
        break;
    case O_STOP:
        c->stops =
            xrealloc((void *)c->stops, (c->n_stops + 1) * sizeof *c->stops);
        c->stops[c->n_stops++] = v;
        break;
    case O_SEED:
        if (parse_ll(v, 1, 9223372036854775807LL, &ll)) {
            errorf(c, "%s: not an integer", flag);
            return EXIT_USAGE;
        }
        c->seed = ll;
        c->has |= HAS_SEED;
        break;
    case O_N:
        if (parse_ll(v, 0, 1000000, &ll) || ll < 1) {
            errorf(c, "%s: not a positive integer", flag);
            return EXIT_USAGE;
        }
        c->n_choices = (long)ll;
        c->has |= HAS_N;
        break;
    case O_LOGPROBS:
        c->has |= HAS_LOGPROBS;
        break;
    case O_TOP_LOGPROBS:
        if (parse_ll(v, 0, 1000000, &ll)) {
            errorf(c, "%s: not an integer of 0 or more", flag);
            return EXIT_USAGE;
        }
        c->top_logprobs = (long)ll;
        c->has |= HAS_TOP_LOGPROBS | HAS_LOGPROBS;
        break;
    case O_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 1, &c->timeout_ms)))
            return st;
        c->has |= HAS_TIMEOUT;
        break;
    case O_CONNECT_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 0, &c->connect_timeout_ms)))
            return st;
        c->has |= HAS_CONNECT;
        break;
    case O_FIRST_BYTE_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 1, &c->first_byte_timeout_ms)))
            return st;
        c->has |= HAS_FIRST_BYTE;
        break;
    case O_IDLE_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 1, &c->idle_timeout_ms)))
            return st;
        c->has |= HAS_IDLE;
        break;
    case O_FALLBACK:
        c->fallbacks = xrealloc((void *)c->fallbacks,
                                (c->n_fallbacks + 1) * sizeof *c->fallbacks);
        c->fallbacks[c->n_fallbacks++] = v;
        break;
    case O_FIELD: {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v) {
            errorf(c, "%s: wants KEY=JSON (a field name, '=', a JSON value)",
                   flag);
            return EXIT_USAGE;
        }
        c->fields =
            xrealloc((void *)c->fields, (c->n_fields + 1) * sizeof *c->fields);
        c->fields[c->n_fields++] = v;
        break;
    }
    case O_HEADER:
        c->headers = xrealloc((void *)c->headers,
                              (c->n_headers + 1) * sizeof *c->headers);
        c->headers[c->n_headers++] = v;
        break;
    case O_IMAGE:
        c->images =
            xrealloc((void *)c->images, (c->n_images + 1) * sizeof *c->images);
        c->images[c->n_images++] = v;
        break;
    case O_VERBOSE:
        c->verbose = 1;
        break;
    case O_RETRIES:
        if (parse_ll(v, 0, 100, &ll)) {
            errorf(c, "%s: not an integer from 0 to 100", flag);
            return EXIT_USAGE;
        }
        c->retries = (int)ll;
        c->has |= HAS_RETRIES;
        break;
    case O_STREAM:
        c->stream = 1;
        break;
    case O_JSON:
        c->json = 1;
        break;
    case O_REQUEST_FILE:
        c->request_file = v;
        break;
    case O_EXPECTED:
        c->expected = v;
        break;
    case O_CONCURRENCY:
    case O_RPM:
    case O_TPM:
        if (parse_ll(v, 0, 1000000000LL, &ll) ||
            (d->id == O_CONCURRENCY && ll == 0)) {
            errorf(c, "%s: not a %s integer", flag,
                   d->id == O_CONCURRENCY ? "positive" : "non-negative");
            return EXIT_USAGE;
        }
        if (d->id == O_CONCURRENCY)
            c->concurrency = (long)ll;
        else if (d->id == O_RPM)
            c->rpm = (long)ll;
        else
            c->tpm = (long)ll;
        break;
    case O_AS_COMPLETED:
        c->as_completed = 1;
        break;
    case O_FAIL_FAST:
        c->fail_fast = 1;
        break;
    case O_JSONL:
        c->jsonl = 1;
        break;
    case O_ORDERED:
        c->ordered = 1;
        break;
    case O_OUTPUT:
        c->output = strcmp(v, "-") ? v : NULL; /* "-": stdout, as without */
        break;
    case O_RESUME:
        c->resume = 1;
        break;
    case O_QUIET:
        c->quiet = 1;
        break;
    case O_SHARD: {
        /* I/N: two decimal integers, 0 <= I < N */
        const char *sl = strchr(v, '/');
        char num[24];
        long long i = -1, n = 0;
        size_t il = sl ? (size_t)(sl - v) : 0;
        if (sl && il && il < sizeof num) {
            memcpy(num, v, il);
            num[il] = '\0';
            if (parse_ll(num, 0, 1000000, &i) ||
                parse_ll(sl + 1, 0, 1000000, &n))
                i = -1;
        }
        if (i < 0 || n < 1 || i >= n) {
            errorf(c, "%s: wants I/N, two integers with 0 <= I < N (e.g. 0/3)",
                   flag);
            return EXIT_USAGE;
        }
        c->shard_i = (long)i;
        c->shard_n = (long)n;
        break;
    }
    case O_CONFIG:
        c->config = v;
        break;
    case O_LISTEN:
        c->listen = v;
        break;
    case O_PORT_FILE:
        c->port_file = v;
        break;
    case O_PROVIDER:
        c->provider = v;
        break;
    case O_JOB_ERRORS:
        c->job_errors = 1;
        break;
    case O_HELP:
        c->help = 1;
        break;
    }
    return 0;
}

/* Parses argv[first..]. Returns 0 or an exit status (message printed). */
int parse_args(cli *c, int argc, char **argv, int first)
{
    int i, rest = 0;
    c->words = xmalloc((size_t)argc * sizeof *c->words);
    for (i = first; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char flag[64];
        const opt_def *d;
        int rc;
        if (rest || a[0] != '-' || a[1] == '\0') {
            c->words[c->n_words++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            rest = 1;
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            d = find_long(a + 2, len, c->cmd);
            /* the name only: what follows '=' may be a key (--api_key=) */
            if (!d)
                return usage_error(c, "unknown option \"--%.*s\"",
                                   (int)(len > 64 ? 64 : len), a + 2);
            snprintf(flag, sizeof flag, "--%s", d->name);
            if (eq) {
                if (!d->arg)
                    return usage_error(c, "%s takes no value", flag);
                val = eq + 1;
            }
        } else {
            d = find_short(a[1], c->cmd);
            /* the letter only: what follows may be a value */
            if (!d)
                return usage_error(c, "unknown option \"-%c\"", a[1]);
            snprintf(flag, sizeof flag, "-%c", d->short_name);
            if (a[2] != '\0') {
                if (!d->arg)
                    return usage_error(c, "%s takes no value (in \"-%c...\")",
                                       flag, a[1]);
                val = a + 2;
            }
        }
        if (!(d->cmds & (unsigned)c->cmd))
            return usage_error(c, "%s is not an option of \"%s\"", flag,
                               c->cmd_name);
        if (d->arg && !val) {
            if (i + 1 >= argc)
                return usage_error(c, "%s needs a value", flag);
            val = argv[++i];
        }
        if ((rc = set_opt(c, d, flag, val)))
            return rc;
    }
    if (c->key_cmd && c->token_cmd)
        return usage_error(c, "--key-cmd and --token-cmd: give one");
    if ((c->key_cmd || c->token_cmd) && c->api_key)
        return usage_error(c, "%s and --api-key: give one",
                           c->key_cmd ? "--key-cmd" : "--token-cmd");
    return 0;
}
