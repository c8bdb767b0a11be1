/*
 * core/text.c: what llmux does to text before it leaves the library:
 * UTF-8 repair (invalid sequences become U+FFFD), secret masking in
 * messages, and numbers in their shortest round-trip form.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

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

void llmux__set_msg(char **slot, const char *msg)
{
    llmux__free(*slot);
    *slot = msg ? llmux__strndup_utf8(msg, strlen(msg)) : NULL;
}

int llmux__set_str(char **dst, const char *s, size_t len)
{
    char *d = llmux__strndup(s, len);
    if (!d)
        return LLMUX_ENOMEM;
    llmux__free(*dst);
    *dst = d;
    return 0;
}

/* Every string a plugin hands over for a response is kept as valid UTF-8
 * (ill-formed sequences become U+FFFD), so accessors and JSON output are
 * too. */
int llmux__set_text(char **dst, const char *s, size_t len)
{
    char *d = llmux__strndup_utf8(s, len);
    if (!d)
        return LLMUX_ENOMEM;
    llmux__free(*dst);
    *dst = d;
    return 0;
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
    size_t i = at, e, b;
    if (s[at + n] == '@')
        return 1;
    /* each backward scan is bounded, so that many occurrences of a short
     * key cost linear time: quotes and blanks around a ':' or '=' are a
     * few bytes, and only the last 13 bytes of a name are compared */
    while (i > 0 && at - i < 16 && quote_or_space(s[i - 1]))
        i--;
    if (i > 0 && (s[i - 1] == ':' || s[i - 1] == '=')) {
        size_t eq = --i;
        while (i > 0 && eq - i < 16 && quote_or_space(s[i - 1]))
            i--;
    }
    /* the word before: "Bearer", or a header, query or config name */
    for (e = i, b = i;
         b > 0 && e - b < 13 && name_char((unsigned char)s[b - 1]); b--)
        ;
    return llmux__secret_name(s + b, e - b) ||
           ends_with(s + b, e - b, "bearer") ||
           ends_with(s + b, e - b, "authorization");
}

/* The next occurrence of the n-byte needle in h[0..hn), or NULL. Not
 * strstr: sanitizers check the whole rest of the text on every strstr or
 * memmem, which made many occurrences quadratic; memchr is checked only
 * up to what it finds. */
static const char *find(const char *h, size_t hn, const char *needle, size_t n)
{
    const char *end = h + hn, *p = h;
    while ((size_t)(end - p) >= n &&
           (p = memchr(p, needle[0], (size_t)(end - p) - n + 1)) != NULL) {
        if (memcmp(p + 1, needle + 1, n - 1) == 0)
            return p;
        p++;
    }
    return NULL;
}

char *llmux__mask(const char *text, const char *secret)
{
    llmux__buf b = {0};
    const char *p, *from = text, *end;
    size_t n;

    if (!text)
        return NULL;
    n = secret ? strlen(secret) : 0;
    end = text + strlen(text);
    if (!n || !(p = find(text, (size_t)(end - text), secret, n)))
        return llmux__strdup(text);
    for (; p; p = find(p, (size_t)(end - p), secret, n)) {
        size_t at = (size_t)(p - text);
        /* a long key is masked wherever it appears (next to a letter too:
         * "Bearer%20<key>", "\\n<key>" in JSON text, the key twice); a
         * short one only as a whole word where a credential is written */
        if (n >= LLMUX__SECRET_MIN ||
            ((at == 0 || !alnum((unsigned char)p[-1])) &&
             !alnum((unsigned char)p[n]) && credential_place(text, at, n))) {
            if (llmux__buf_append(&b, from, (size_t)(p - from)) ||
                llmux__buf_append(&b, "***", 3))
                goto nomem;
            from = p + n;
            p += n;
        } else {
            p++;
        }
    }
    if (from == text) /* no occurrence was the key */
        return llmux__strdup(text);
    if (llmux__buf_append(&b, from, (size_t)(end - from)) == 0)
        return b.p; /* holds at least one "***" */
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

/*
 * The shortest form is found from one "%.*e" of v with more significant
 * digits than it can need (17 for a float, which needs at most 9; 25 for
 * a double, at most 17), so that rounding them again to p digits rounds
 * as the exact value would, barring a carry across the spare digits: that
 * digit string rounded to p digits is the candidate of p digits, which
 * strtof/strtod reads back as a plain "<digits>e<exp>" (no radix, so the
 * locale plays no part; and a wrong candidate is only ever a longer one).
 * The fewest digits that read back as v are found by a binary search
 * (more digits never read back worse); the result is then written as
 * "%.*g" of that precision would write it, with '.' as the radix.
 */

#define DEC_DIGITS 25 /* the most digits taken (a double's) */

typedef struct dec {
    char d[DEC_DIGITS]; /* significant digits, no leading zero */
    int n;              /* how many */
    int exp; /* v = 0.d[0]d[1]... * 10^(exp + 1), i.e. d[0] at 10^exp */
} dec;

/* Rounds `all` (n digits) to p digits into out, as printf rounds: half
 * up, an exact tie to even (carry included). */
static void dec_round(const dec *all, int p, dec *out)
{
    int i, up = 0;
    *out = *all;
    out->n = p;
    if (p < all->n && all->d[p] > '5') {
        up = 1;
    } else if (p < all->n && all->d[p] == '5') {
        for (i = p + 1; i < all->n && all->d[i] == '0'; i++)
            ;
        up = i < all->n || (all->d[p - 1] - '0') % 2 == 1;
    }
    if (up) {
        for (i = p - 1; i >= 0 && out->d[i] == '9'; i--)
            out->d[i] = '0';
        if (i >= 0) {
            out->d[i]++;
        } else { /* 9.99 -> 10.0: one digit more at the front */
            out->d[0] = '1';
            for (i = 1; i < p; i++)
                out->d[i] = '0';
            out->exp++;
        }
    }
    while (out->n > 1 && out->d[out->n - 1] == '0')
        out->n--;
}

/* Does the candidate read back as v? ("-<digits>e<exp>", built by hand:
 * a snprintf here cost more than the rest together) */
static int dec_reads_back(const dec *c, int neg, double v, int single)
{
    char s[DEC_DIGITS + 16], tmp[8];
    size_t o = 0, t = 0;
    int e = c->exp - (c->n - 1), ue = e < 0 ? -e : e;
    if (neg)
        s[o++] = '-';
    memcpy(s + o, c->d, (size_t)c->n);
    o += (size_t)c->n;
    s[o++] = 'e';
    if (e < 0)
        s[o++] = '-';
    do
        tmp[t++] = (char)('0' + ue % 10);
    while ((ue /= 10) > 0);
    while (t)
        s[o++] = tmp[--t];
    s[o] = '\0';
    return single ? strtof(s, NULL) == (float)v : strtod(s, NULL) == v;
}

/* Writes c as "%.*g" with precision p would, '.' as the radix. */
static int dec_write(char *buf, size_t cap, const dec *c, int neg, int p)
{
    size_t o = 0;
    int i;
    if (neg)
        buf[o++] = '-';
    if (c->exp < -4 || c->exp >= p) { /* d.ddde+XX */
        buf[o++] = c->d[0];
        if (c->n > 1) {
            buf[o++] = '.';
            for (i = 1; i < c->n; i++)
                buf[o++] = c->d[i];
        }
        o += (size_t)snprintf(buf + o, cap - o, "e%c%02d",
                              c->exp < 0 ? '-' : '+',
                              c->exp < 0 ? -c->exp : c->exp);
    } else if (c->exp < 0) { /* 0.000ddd */
        buf[o++] = '0';
        buf[o++] = '.';
        for (i = -1; i > c->exp; i--)
            buf[o++] = '0';
        for (i = 0; i < c->n; i++)
            buf[o++] = c->d[i];
    } else { /* ddd[.ddd], zeros up to the radix */
        for (i = 0; i <= c->exp || i < c->n; i++) {
            if (i == c->exp + 1)
                buf[o++] = '.';
            buf[o++] = i < c->n ? c->d[i] : '0';
        }
    }
    buf[o] = '\0';
    return (int)o;
}

int llmux__fmt_number(char *buf, size_t cap, double v, int single)
{
    char raw[DEC_DIGITS + 16];
    const char *r;
    dec all, c;
    int lo = 1, hi, want, neg, n;

    if (!buf || cap < 32)
        return -1;
    if (single) {
        float f = (float)v; /* out of range: infinite */
        if (!isfinite(v) || fabs(v) > FLT_MAX || !isfinite(f))
            return -1;
        v = f;
    } else if (!isfinite(v)) {
        return -1;
    }
    neg = signbit(v) != 0;
    if (v == 0)
        return snprintf(buf, cap, "%s", neg ? "-0" : "0");
    /* "1.234...e-03" (the radix is the locale's: skipped as whatever is
     * not a digit) */
    hi = single ? 9 : 17;
    want = single ? 17 : DEC_DIGITS;
    n = snprintf(raw, sizeof raw, "%.*e", want - 1, fabs(v));
    if (n <= 0 || (size_t)n >= sizeof raw)
        return -1;
    all.n = 0;
    for (r = raw; *r && *r != 'e' && all.n < want; r++)
        if (*r >= '0' && *r <= '9')
            all.d[all.n++] = *r;
    r = strchr(r, 'e');
    if (!r || all.n != want)
        return -1;
    all.exp = atoi(r + 1);
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        dec_round(&all, mid, &c);
        if (dec_reads_back(&c, neg, v, single))
            hi = mid;
        else
            lo = mid + 1;
    }
    dec_round(&all, lo, &c);
    return dec_write(buf, cap, &c, neg, lo);
}

LLMUX_EXTERN int llmux_format_number(char *buf, size_t len, double v,
                                     int single)
{
    return llmux__fmt_number(buf, len, v, single);
}

/* ---- SHA-256 (the response cache's keys, the shared limits' key hashes) */

int llmux__sha256_hex(const void *p, size_t n, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;
    if (!ctx)
        return LLMUX_ENOMEM;
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, p, n) == 1 &&
         EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return LLMUX_ENOMEM;
    for (i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * len] = '\0';
    return 0;
}
