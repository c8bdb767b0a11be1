/*
 * providers/common/pjson.c: JSON and text helpers shared by the provider
 * plugins and the OpenAI-shape codec (see pjson.h).
 */
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pjson.h"

/* ---- text ---------------------------------------------------------------- */

int llmux_pj_caseeq(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z')
            ca += 'a' - 'A';
        if (cb >= 'A' && cb <= 'Z')
            cb += 'a' - 'A';
        if (ca != cb)
            return 0;
        if (!ca)
            return 1;
    }
}

int llmux_pj_bool(const char *v)
{
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    static const char *const no[] = {"0", "false", "no", "off", NULL};
    int i;
    for (i = 0; v && yes[i]; i++)
        if (llmux_pj_caseeq(v, yes[i]))
            return 1;
    for (i = 0; v && no[i]; i++)
        if (llmux_pj_caseeq(v, no[i]))
            return 0;
    return -1;
}

int llmux_pj_parse_i64(const char *s, size_t n, int sign, int64_t *out)
{
    int64_t v = 0;
    size_t i = 0;
    int neg = 0;
    if (sign && n && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return -1;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

int llmux_pj_parse_uint(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    return llmux_pj_parse_i64(s, strlen(s), 0, out);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

const char *llmux_pj_trim(const char *s, size_t *len)
{
    size_t n = *len;
    while (n && is_space(*s))
        s++, n--;
    while (n && is_space(s[n - 1]))
        n--;
    *len = n;
    return s;
}

const char *llmux_pj_option(const llmux_host *h, const llmux_params *p,
                            const char *key)
{
    if (!LLMUX_HOST_HAS(h, option) || !h->option)
        return NULL;
    return h->option(p, key);
}

/* ---- JSON values --------------------------------------------------------- */

json_object *llmux_pj_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_is_type(o, json_type_object))
        return NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

const char *llmux_pj_get_str(json_object *o, const char *key, size_t *len)
{
    json_object *v = llmux_pj_get(o, key);
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

int llmux_pj_is_number(json_object *v)
{
    return json_object_is_type(v, json_type_double) ||
           json_object_is_type(v, json_type_int);
}

int llmux_pj_as_int(json_object *v, int64_t *out)
{
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double x = json_object_get_double(v);
        if (x >= -9.0e15 && x <= 9.0e15 && x == (double)(int64_t)x) {
            *out = (int64_t)x;
            return 1;
        }
    }
    return 0;
}

int64_t llmux_pj_add_counts(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

const char *llmux_pj_text(json_object *v, size_t *len)
{
    return json_object_to_json_string_length(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

int llmux_pj_set(json_object *obj, const char *key, json_object *v)
{
    if (!v)
        return LLMUX_ENOMEM;
    if (json_object_object_add(obj, key, v) != 0) {
        json_object_put(v);
        return LLMUX_ENOMEM;
    }
    return 0;
}

int llmux_pj_push_str(json_object *arr, const char *s)
{
    json_object *v = json_object_new_string(s);
    if (!v || json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        return LLMUX_ENOMEM;
    }
    return 0;
}

json_object *llmux_pj_push_object(json_object *arr)
{
    json_object *o = json_object_new_object();
    if (o && json_object_array_add(arr, o) != 0) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

json_object *llmux_pj_str_array(const char *const *v, size_t n)
{
    json_object *arr = json_object_new_array_ext((int)n);
    size_t i;
    if (!arr)
        return NULL;
    for (i = 0; i < n; i++) {
        if (llmux_pj_push_str(arr, v[i] ? v[i] : "") != 0) {
            json_object_put(arr);
            return NULL;
        }
    }
    return arr;
}

int llmux_pj_add_double(const llmux_host *h, json_object *obj, const char *key,
                        double v)
{
    char buf[48];
    json_object *num;
    if (!isfinite(v))
        return LLMUX_EINVAL;
    if (LLMUX_HOST_HAS(h, format_number)) {
        if (h->format_number(buf, sizeof buf, v, 0) < 0)
            return LLMUX_EINVAL;
    } else {
        /* an older core: 17 digits always read back; only the radix
         * depends on the locale (whatever is not a digit, sign or
         * exponent mark, possibly several bytes, becomes '.') */
        char raw[48];
        size_t i, j = 0;
        int dot = 0;
        snprintf(raw, sizeof raw, "%.17g", v);
        for (i = 0; raw[i]; i++) {
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
    }
    num = json_object_new_double_s(v, buf);
    if (!num)
        return LLMUX_ENOMEM;
    if (json_object_object_add_ex(obj, key, num,
                                  JSON_C_OBJECT_ADD_CONSTANT_KEY) != 0) {
        json_object_put(num);
        return LLMUX_ENOMEM;
    }
    return 0;
}

int llmux_pj_floats(const llmux_host *h, json_object *arr, float **buf,
                    size_t *cap, size_t *n)
{
    size_t i, dim;
    if (!json_object_is_type(arr, json_type_array))
        return LLMUX_EPROTO;
    dim = json_object_array_length(arr);
    if (dim > *cap) {
        float *p = h->realloc(*buf, dim * sizeof(float));
        if (!p)
            return LLMUX_ENOMEM;
        *buf = p;
        *cap = dim;
    }
    for (i = 0; i < dim; i++) {
        json_object *x = json_object_array_get_idx(arr, i);
        if (!llmux_pj_is_number(x))
            return LLMUX_EPROTO;
        (*buf)[i] = (float)json_object_get_double(x);
    }
    *n = dim;
    return 0;
}

/* ---- parsing ------------------------------------------------------------- */

json_tokener *llmux_pj_tokener(int depth)
{
    json_tokener *tok = json_tokener_new_ex(depth);
    if (tok)
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    return tok;
}

/* The spares of llmux_pj_tok_take: a slot keeps the depth it was first
 * given, so a depth finds its slot or the first unused one. */
#define SPARES 4
static pthread_mutex_t g_spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int depth; /* 0: unused */
    json_tokener *tok;
} g_spare[SPARES];

json_tokener *llmux_pj_tok_take(int depth)
{
    json_tokener *tok = NULL;
    int i;
    pthread_mutex_lock(&g_spare_lock);
    for (i = 0; i < SPARES && g_spare[i].depth; i++)
        if (g_spare[i].depth == depth) {
            tok = g_spare[i].tok;
            g_spare[i].tok = NULL;
            break;
        }
    pthread_mutex_unlock(&g_spare_lock);
    return tok ? tok : llmux_pj_tokener(depth);
}

void llmux_pj_tok_give(json_tokener *tok, int depth)
{
    int i;
    if (!tok)
        return;
    pthread_mutex_lock(&g_spare_lock);
    for (i = 0; i < SPARES; i++)
        if (!g_spare[i].depth || g_spare[i].depth == depth)
            break;
    if (i < SPARES && !g_spare[i].tok) {
        g_spare[i].depth = depth;
        g_spare[i].tok = tok;
        tok = NULL;
    }
    pthread_mutex_unlock(&g_spare_lock);
    if (tok)
        json_tokener_free(tok);
}

void llmux_pj_tok_drain(void)
{
    json_tokener *toks[SPARES];
    int i;
    pthread_mutex_lock(&g_spare_lock);
    for (i = 0; i < SPARES; i++) {
        toks[i] = g_spare[i].tok;
        g_spare[i].tok = NULL;
    }
    pthread_mutex_unlock(&g_spare_lock);
    for (i = 0; i < SPARES; i++)
        if (toks[i])
            json_tokener_free(toks[i]);
}

int llmux_pj_parse(json_tokener *tok, const char *s, size_t len,
                   json_object **out)
{
    json_object *o;
    enum json_tokener_error err;
    *out = NULL;
    /* json-c stops at a NUL byte: whatever followed would go unseen */
    if (!s || len > 0x7FFFFFF0u || memchr(s, '\0', len))
        return LLMUX_EPROTO;
    json_tokener_reset(tok);
    o = json_tokener_parse_ex(tok, s, (int)len);
    err = json_tokener_get_error(tok);
    if (!o && err == json_tokener_continue) {
        /* A top-level number or literal needs a terminator to end. */
        o = json_tokener_parse_ex(tok, "", 1);
        err = json_tokener_get_error(tok);
    }
    if (err != json_tokener_success) {
        json_object_put(o);
        json_tokener_reset(tok);
        return LLMUX_EPROTO;
    }
    *out = o;
    return 0;
}

int llmux_pj_user_json(const llmux_host *h, const char *name,
                       json_tokener **tok, int depth, const char *text,
                       const char *what, json_object **out)
{
    *out = NULL;
    if (!*tok) {
        *tok = llmux_pj_tok_take(depth);
        if (!*tok)
            return LLMUX_ENOMEM;
    }
    if (llmux_pj_parse(*tok, text, strlen(text), out) != 0) {
        h->log(LLMUX_LOG_ERROR, "%s: invalid JSON in %s", name, what);
        return LLMUX_EINVAL;
    }
    return 0;
}

int llmux_pj_http_json(const llmux_host *h, llmux_http_request *http,
                       json_object *body)
{
    size_t len = 0;
    const char *s = llmux_pj_text(body, &len);
    return s ? h->http_body(http, s, len) : LLMUX_ENOMEM;
}

void *llmux_pj_state_new(const llmux_host *h, llmux_out *out, const char *name,
                         size_t size)
{
    void *st = h->alloc(size);
    if (st) {
        memset(st, 0, size);
        return st;
    }
    h->set_error(out, LLMUX_ENOMEM, "%s: out of memory", name);
    return NULL;
}

/* ---- errors -------------------------------------------------------------- */

const char *llmux_pj_snippet(char *buf, const char *s, size_t len)
{
    size_t n = len, i;
    if (!s || !len) {
        strcpy(buf, "(empty)");
        return buf;
    }
    if (n > LLMUX_PJ_SNIPPET) {
        n = LLMUX_PJ_SNIPPET;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
    }
    if (n < len)
        memcpy(buf + i, "...", 4);
    else
        buf[i] = '\0';
    return buf;
}

int llmux_pj_proto(const llmux_host *h, llmux_out *out, const char *name,
                   const char *what, const char *s, size_t len)
{
    char buf[LLMUX_PJ_SNIPPET + 8];
    h->set_error(out, LLMUX_EPROTO, "%s: %s: %s", name, what,
                 llmux_pj_snippet(buf, s, len));
    return LLMUX_EPROTO;
}

/* Text of a scalar member for error fields: strings as they are, numbers
 * and booleans as JSON text, objects serialised; NULL for null/absent. */
static const char *scalar_text(json_object *v)
{
    size_t len;
    if (!v)
        return NULL;
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return llmux_pj_text(v, &len);
}

int llmux_pj_put_error(const llmux_host *h, llmux_out *out, json_object *root)
{
    json_object *e, *msg, *src = root;
    const char *m = NULL;
    size_t len;
    if (!json_object_is_type(root, json_type_object))
        return 0;
    e = llmux_pj_get(root, "error");
    if (json_object_is_type(e, json_type_object)) {
        /* {"error":{"message","type","param","code"}} */
        src = e;
        msg = llmux_pj_get(e, "message");
        m = msg ? scalar_text(msg) : llmux_pj_text(e, &len);
    } else if (json_object_is_type(e, json_type_string)) {
        /* {"error":"text"} (Ollama; Aleph Alpha adds "code") */
        m = json_object_get_string(e);
    } else if (e) {
        m = scalar_text(e); /* an array, a number ... */
    } else if ((msg = llmux_pj_get(root, "message")) != NULL) {
        /* flat {"object":"error","message":..,"type":..,"code":..} */
        m = scalar_text(msg);
    } else if ((msg = llmux_pj_get(root, "detail")) != NULL) {
        m = scalar_text(msg); /* {"detail":"text"} or {"detail":[..]} */
    } else {
        return 0;
    }
    return h->out_provider_error(out, scalar_text(llmux_pj_get(src, "type")),
                                 scalar_text(llmux_pj_get(src, "code")),
                                 scalar_text(llmux_pj_get(src, "param")),
                                 m ? m : "") == 0
               ? 1
               : LLMUX_ENOMEM;
}

int llmux_pj_body_error(const llmux_host *h, llmux_out *out, json_object *root,
                        const char *s, size_t len)
{
    char buf[LLMUX_PJ_SNIPPET + 8];
    int rc = llmux_pj_put_error(h, out, root);
    if (rc < 0)
        return rc;
    if (rc == 0) /* an error without a known shape */
        h->out_provider_error(out, NULL, NULL, NULL,
                              llmux_pj_snippet(buf, s, len));
    return LLMUX_EPROVIDER;
}

int llmux_pj_classify_error(void *provctx, long status, const char *type,
                            const char *code, const char *message)
{
    const char *pc = code, *m = message;
    (void)provctx;
    (void)status;
    (void)type;
    if ((pc && strstr(pc, "context_length")) ||
        (m && (strstr(m, "context length") || strstr(m, "context_length") ||
               strstr(m, "maximum context"))))
        return LLMUX_ERROR_KIND_CONTEXT_LENGTH;
    return LLMUX_ERROR_KIND_OTHER;
}
