/*
 * core/text.c: what llmux does to text before it leaves the library:
 * UTF-8 repair (invalid sequences become U+FFFD), secret masking in
 * messages, and numbers in their shortest round-trip form.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- UTF-8 --------------------------------------------------------------- */

/*
 * The length of the well-formed UTF-8 sequence at s[0..n) (n > 0), or 0
 * when it is ill-formed; then *bad is the length of its maximal
 * ill-formed subpart (at least 1), replaced by one U+FFFD as WHATWG and
 * Unicode recommend. Overlong forms, surrogates and code points above
 * U+10FFFF are ill-formed.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len, i;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    for (i = 1; i < len; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return len;
}

size_t llmux__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k, bad;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if (!(k = utf8_seq(p + i, n - i, &bad)))
            return i;
        i += k;
    }
    return n;
}

int llmux__buf_append_utf8(llmux__buf *b, const char *s, size_t n)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = llmux__utf8_valid(s, n), from = 0, k, bad;

    if (i == n)
        return llmux__buf_append(b, s, n);
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if ((k = utf8_seq(p + i, n - i, &bad))) {
            i += k;
            continue;
        }
        if (llmux__buf_append(b, s + from, i - from) ||
            llmux__buf_append(b, fffd, 3))
            return LLMUX_ENOMEM;
        i += bad;
        from = i;
    }
    return llmux__buf_append(b, s + from, n - from);
}

char *llmux__strndup_utf8(const char *s, size_t n)
{
    llmux__buf b = {0};
    if (llmux__utf8_valid(s, n) == n)
        return llmux__strndup(s, n);
    if (llmux__buf_append_utf8(&b, s, n)) {
        llmux__buf_free(&b);
        return NULL;
    }
    return b.p; /* non-empty: at least one U+FFFD */
}

/* ---- secrets ------------------------------------------------------------- */

/* Letters and digits: an occurrence of the key right next to one is part
 * of some longer word, not the key. */
static int alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* Bytes of header, query-parameter and config-key names. */
static int name_char(unsigned char c)
{
    return alnum(c) || c == '-' || c == '_';
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Does s[0..n) end with the lower-case word w (any case)? */
static int ends_with(const char *s, size_t n, const char *w)
{
    size_t m = strlen(w), i;
    if (n < m)
        return 0;
    for (i = 0; i < m; i++)
        if (lower((unsigned char)s[n - m + i]) != w[i])
            return 0;
    return 1;
}

static int quote_or_space(char c)
{
    return c == ' ' || c == '\t' || c == '"' || c == '\'';
}

/*
 * Is s[at..at+n) written where a credential goes: after "Bearer", after
 * "<name>:" or "<name>=" where the name ends in key, token, secret,
 * password or authorization (a header or query echo, a config string,
 * JSON), or as the password of a URL (followed by '@')?
 */
static int credential_place(const char *s, size_t at, size_t n)
{
    static const char *const names[] = {"key",      "token",  "secret",
                                        "password", "bearer", "authorization"};
    size_t i = at, e, b, k;
    if (s[at + n] == '@')
        return 1;
    while (i > 0 && quote_or_space(s[i - 1]))
        i--;
    if (i > 0 && (s[i - 1] == ':' || s[i - 1] == '=')) {
        i--;
        while (i > 0 && quote_or_space(s[i - 1]))
            i--;
    }
    /* the word before: "Bearer", or a header, query or config name */
    for (e = i, b = i; b > 0 && name_char((unsigned char)s[b - 1]); b--)
        ;
    for (k = 0; k < sizeof names / sizeof names[0]; k++)
        if (ends_with(s + b, e - b, names[k]))
            return 1;
    return 0;
}

char *llmux__mask(const char *text, const char *secret)
{
    llmux__buf b = {0};
    const char *p, *from = text;
    size_t n;

    if (!text)
        return NULL;
    n = secret ? strlen(secret) : 0;
    if (!n || !(p = strstr(text, secret)))
        return llmux__strdup(text);
    for (; p; p = strstr(p, secret)) {
        size_t at = (size_t)(p - text);
        int whole = (at == 0 || !alnum((unsigned char)p[-1])) &&
                    !alnum((unsigned char)p[n]);
        if (whole &&
            (n >= LLMUX__SECRET_MIN || credential_place(text, at, n))) {
            if (llmux__buf_append(&b, from, (size_t)(p - from)) ||
                llmux__buf_append(&b, "***", 3))
                goto nomem;
            from = p + n;
            p += n;
        } else {
            p++;
        }
    }
    if (llmux__buf_append(&b, from, strlen(from)) == 0 && b.p)
        return b.p;
    if (!b.p) /* the whole text was the key */
        return llmux__strdup("");
nomem:
    llmux__buf_free(&b);
    return NULL;
}

void llmux__mask_in(char **s, const char *secret)
{
    char *m;
    if (!s || !*s || !secret || !*secret || !strstr(*s, secret))
        return;
    m = llmux__mask(*s, secret);
    if (m) {
        llmux__free(*s);
        *s = m;
    } else {
        /* no memory for the masked copy: lose the text, never show the
         * key */
        (*s)[0] = '\0';
    }
}

LLMUX_EXTERN char *llmux_mask_secret(const char *text, const char *secret)
{
    return llmux__mask(text, secret);
}

/* ---- numbers ------------------------------------------------------------- */

/* "%.*g" of v in the process locale, as strtod reads it back. */
static int fmt_raw(char *raw, size_t cap, int prec, double v)
{
    int n = snprintf(raw, cap, "%.*g", prec, v);
    return n > 0 && (size_t)n < cap ? n : -1;
}

int llmux__fmt_number(char *buf, size_t cap, double v, int single)
{
    char raw[64];
    int lo = 1, hi = single ? 9 : 17, dot = 0;
    size_t i, j = 0;

    if (!buf || cap < 32 || !isfinite(v))
        return -1;
    if (single)
        v = (double)(float)v;
    /* the fewest significant digits that read back as v: a binary search
     * (more digits never read back worse); 0 and -0 need one */
    while (lo < hi && v != 0) {
        int mid = (lo + hi) / 2;
        if (fmt_raw(raw, sizeof raw, mid, v) < 0)
            return -1;
        /* read back in the same locale as snprintf's */
        if (single ? strtof(raw, NULL) == (float)v : strtod(raw, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (fmt_raw(raw, sizeof raw, lo, v) < 0)
        return -1;
    /* '.' whatever the locale's radix (which may be several bytes):
     * whatever is not a digit, sign or exponent mark is the radix */
    for (i = 0; raw[i] && j + 1 < cap; i++) {
        char c = raw[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
            buf[j++] = c;
            dot = 0;
        } else if (!dot) {
            buf[j++] = '.';
            dot = 1;
        }
    }
    buf[j] = '\0';
    return (int)j;
}

LLMUX_EXTERN int llmux_format_number(char *buf, size_t len, double v,
                                     int single)
{
    return llmux__fmt_number(buf, len, v, single);
}
