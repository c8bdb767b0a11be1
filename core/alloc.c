/*
 * core/alloc.c: the core's allocation wrappers, growable buffers and small
 * string helpers. Everything the core allocates goes through here, so one
 * allocator serves the core and the plugins (via the host table).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void *llmux__malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void *llmux__calloc(size_t n, size_t m)
{
    return calloc(n ? n : 1, m ? m : 1);
}

void *llmux__realloc(void *p, size_t n)
{
    return realloc(p, n ? n : 1);
}

void llmux__free(void *p)
{
    free(p);
}

LLMUX_EXTERN void llmux_free(void *ptr)
{
    llmux__free(ptr);
}

char *llmux__strndup(const char *s, size_t n)
{
    char *d;
    if (!s)
        return NULL;
    d = llmux__malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *llmux__strdup(const char *s)
{
    return s ? llmux__strndup(s, strlen(s)) : NULL;
}

char *llmux__asprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = llmux__malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *llmux__concat(const char *a, size_t alen, const char *b, const char *c)
{
    size_t bl = b ? strlen(b) : 0, cl = c ? strlen(c) : 0;
    char *d = llmux__malloc(alen + bl + cl + 1);
    if (!d)
        return NULL;
    memcpy(d, a, alen);
    if (bl)
        memcpy(d + alen, b, bl);
    if (cl)
        memcpy(d + alen + bl, c, cl);
    d[alen + bl + cl] = '\0';
    return d;
}

int llmux__strcaseeq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    while (*a && *b) {
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
        a++;
        b++;
    }
    return *a == *b;
}

int llmux__seterr(char *buf, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    if (buf && len) {
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

int llmux__buf_append(llmux__buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        p = llmux__realloc(b->p, cap);
        if (!p)
            return LLMUX_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int llmux__buf_printf(llmux__buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char small[256];
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return LLMUX_EINVAL;
    if ((size_t)n < sizeof small)
        return llmux__buf_append(b, small, (size_t)n);
    {
        char *big = llmux__malloc((size_t)n + 1);
        int rc;
        if (!big)
            return LLMUX_ENOMEM;
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        rc = llmux__buf_append(b, big, (size_t)n);
        llmux__free(big);
        return rc;
    }
}

void llmux__buf_reset(llmux__buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void llmux__buf_free(llmux__buf *b)
{
    llmux__free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Frees an array of n owned strings and the array. */
void llmux__strv_free(char **v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        llmux__free(v[i]);
    llmux__free(v);
}

void llmux__secret_free(char *s)
{
    if (!s)
        return;
    memset(s, 0, strlen(s));
    llmux__free(s);
}
