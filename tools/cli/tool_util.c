/*
 * tools/cli/tool_util.c: memory that never fails quietly, error lines, and
 * the secrets kept out of them.
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

void die_oom(void)
{
    fputs("llmux: out of memory\n", stderr);
    exit(EXIT_TRANSPORT);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die_oom();
    return q;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Masks `secret` in the heap string *s where it can be the key (the
 * library's rules: llmux_mask_secret). */
static void scrub(char **s, const char *secret)
{
    char *m, *copy;
    if (!*s || !secret || !*secret)
        return;
    if (!(m = llmux_mask_secret(*s, secret)))
        die_oom();
    copy = xmalloc(strlen(m) + 1);
    strcpy(copy, m);
    llmux_free(m);
    free(*s);
    *s = copy;
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* The value of api_key in a config string, or NULL: the last one, as the
 * parser keeps the last of duplicates; whitespace around the key and the
 * value trimmed, and a {...} value to its matching '}', as it reads them. */
static char *spec_secret(const char *spec)
{
    const char *p, *k, *v, *end, *found = NULL, *found_end = NULL;
    if (!spec)
        return NULL;
    for (p = spec; p; p = *end ? end + 1 : NULL) {
        for (k = p; blank(*k); k++)
            ;
        end = k + strcspn(k, ";");
        for (v = k; v < k + 7 && lower((unsigned char)*v) == "api_key"[v - k];
             v++)
            ; /* keys match in any case */
        if (v < k + 7)
            continue;
        while (blank(*v))
            v++;
        if (*v != '=')
            continue;
        for (v++; blank(*v); v++)
            ;
        if (*v == '{') { /* to the matching '}': braces nest */
            int depth = 1;
            for (end = ++v; *end; end++) {
                if (*end == '{')
                    depth++;
                else if (*end == '}' && --depth == 0)
                    break;
            }
            found_end = end;
            if (*end)
                end += strcspn(end, ";"); /* the segment's end */
        } else {
            for (found_end = end; found_end > v && blank(found_end[-1]);
                 found_end--)
                ;
        }
        found = v;
    }
    if (!found || found_end == found)
        return NULL;
    {
        char *r = xmalloc((size_t)(found_end - found) + 1);
        memcpy(r, found, (size_t)(found_end - found));
        r[found_end - found] = '\0';
        return r;
    }
}

/* A copy of `text` (caller frees) with the command line's secrets
 * replaced by "***". */
char *scrubbed(const cli *c, const char *text)
{
    size_t n = strlen(text);
    char *s = xmalloc(n + 1);
    memcpy(s, text, n + 1);
    if (c) {
        size_t i;
        scrub(&s, c->secret1);
        scrub(&s, c->secret2);
        for (i = 0; c->fb_secrets && i < c->n_fallbacks; i++)
            scrub(&s, c->fb_secrets[i]);
        for (i = 0; i < c->n_cmd_secrets; i++)
            scrub(&s, c->cmd_secrets[i]);
    }
    return s;
}

/* Notes the api_key=... of the SPEC and of each --fallback, to keep them
 * out of every message. */
void note_secrets(cli *c)
{
    size_t i;
    c->secret2 = spec_secret(c->spec);
    if (!c->n_fallbacks)
        return;
    c->fb_secrets = xmalloc(c->n_fallbacks * sizeof *c->fb_secrets);
    for (i = 0; i < c->n_fallbacks; i++)
        c->fb_secrets[i] = spec_secret(c->fallbacks[i]);
}

/*
 * Prints "llmux: <text>" on one line to stderr: secrets replaced by "***",
 * control characters by spaces.
 */
void print_error_line(const cli *c, const char *text)
{
    char *s = scrubbed(c, text), *p;
    for (p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    /* no trailing blanks from a message ending in a newline */
    while (p > s && p[-1] == ' ')
        *--p = '\0';
    fprintf(stderr, "llmux: %s\n", s);
    free(s);
}

void errorf(const cli *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_error_line(c, buf);
}

/*
 * Prints the error line and where to find help on stderr; returns 2. Not
 * the help itself: pages of text would bury the one line that matters.
 */
int usage_error(const cli *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_error_line(c, buf);
    if (c && c->cmd_name)
        fprintf(stderr, "try 'llmux %s --help'\n", c->cmd_name);
    else
        fputs("try 'llmux --help'\n", stderr);
    return EXIT_USAGE;
}

void json_str_to(void (*put)(void *, const char *, size_t), void *ud,
                 const char *s)
{
    put(ud, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char e[8];
        if (ch == '"' || ch == '\\') {
            e[0] = '\\';
            e[1] = (char)ch;
            put(ud, e, 2);
        } else if (ch == '\n')
            put(ud, "\\n", 2);
        else if (ch < 0x20 || ch == 0x7f)
            put(ud, e, (size_t)snprintf(e, sizeof e, "\\u%04x", ch));
        else
            put(ud, (const char *)&ch, 1);
    }
    put(ud, "\"", 1);
}

static void put_stdout(void *ud, const char *s, size_t n)
{
    (void)ud;
    fwrite(s, 1, n, stdout);
}

void put_json_str(const char *s)
{
    json_str_to(put_stdout, NULL, s);
}
