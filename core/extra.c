/*
 * core/extra.c: the fields a provider sends that the common shape does
 * not model (service_tier, annotations, audio, content filter results
 * ...). Plugins hand them over as JSON text (host->out_json); they are
 * kept as json-c objects per place (top, usage, choice, message), folded
 * together along a stream, read back by key and written into the
 * OpenAI-shaped JSON under the core's own fields.
 */
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

/* Nesting accepted in a field's value: deeper is refused, not recursed. */
#define EXTRA_DEPTH 64

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One JSON value from json[0..len), its strings valid UTF-8, in *out
 * (json-c's null is NULL). LLMUX_EINVAL when it is not exactly one
 * value. */
static int parse_value(const char *json, size_t len, json_object **out)
{
    json_tokener *tok;
    json_object *v;
    char *text;
    size_t n, used;
    int rc = LLMUX_EINVAL;
    *out = NULL;
    if (!json || !len || len > 0x7FFFFFF0u || memchr(json, '\0', len))
        return LLMUX_EINVAL;
    /* bytes >= 0x80 are legal only inside strings: repairing the text
     * keeps it JSON and makes every string in it valid UTF-8 */
    if (!(text = llmux__strndup_utf8(json, len)))
        return LLMUX_ENOMEM;
    n = strlen(text);
    if (!(tok = json_tokener_new_ex(EXTRA_DEPTH))) {
        llmux__free(text);
        return LLMUX_ENOMEM;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT); /* JSON, no more */
    v = json_tokener_parse_ex(tok, text, (int)n);
    used = (size_t)json_tokener_get_parse_end(tok);
    if (!v && json_tokener_get_error(tok) == json_tokener_continue) {
        v = json_tokener_parse_ex(tok, "", 1); /* ends a bare number */
        used = n;
    }
    if (json_tokener_get_error(tok) == json_tokener_success) {
        while (used < n && is_space(text[used]))
            used++;
        if (used >= n) { /* nothing after the value */
            *out = v;
            v = NULL;
            rc = 0;
        }
    }
    json_object_put(v);
    json_tokener_free(tok);
    llmux__free(text);
    return rc;
}

int llmux__extra_set(json_object **slot, const char *key, const char *json,
                     size_t len)
{
    json_object *v;
    int rc;
    if (!key || !*key)
        return LLMUX_EINVAL;
    if ((rc = parse_value(json, len, &v)) != 0)
        return rc;
    if (!*slot && !(*slot = json_object_new_object())) {
        json_object_put(v);
        return LLMUX_ENOMEM;
    }
    if (json_object_object_add(*slot, key, v) != 0) {
        json_object_put(v);
        return LLMUX_ENOMEM;
    }
    return 0;
}

static json_object *copy(json_object *v)
{
    json_object *c = NULL;
    if (!v)
        return NULL;
    if (json_object_deep_copy(v, &c, NULL) != 0)
        return NULL;
    return c;
}

static int accumulate(json_object *acc, json_object *delta, int depth,
                      llmux__xgrow *g);

static void grow_free(json_object *o, void *ud)
{
    (void)o;
    llmux__buf_free(ud);
    llmux__free(ud);
}

/* Appends string v to string a, in a's buffer (made on its first
 * append, and a kept in g until llmux__extra_flush). */
static int grow_append(llmux__xgrow *g, json_object *a, json_object *v)
{
    llmux__buf *b = json_object_get_userdata(a);
    if (!b) {
        if (g->n == g->cap) {
            size_t cap = g->cap ? 2 * g->cap : 4;
            json_object **nv = llmux__realloc(g->v, cap * sizeof *nv);
            if (!nv)
                return LLMUX_ENOMEM;
            g->v = nv;
            g->cap = cap;
        }
        if (!(b = llmux__calloc(1, sizeof *b)))
            return LLMUX_ENOMEM;
        if (llmux__buf_append(b, json_object_get_string(a),
                              (size_t)json_object_get_string_len(a))) {
            grow_free(a, b);
            return LLMUX_ENOMEM;
        }
        json_object_set_userdata(a, b, grow_free);
        g->v[g->n++] = json_object_get(a);
    }
    return llmux__buf_append(b, json_object_get_string(v),
                             (size_t)json_object_get_string_len(v))
               ? LLMUX_ENOMEM
               : 0;
}

int llmux__extra_flush(llmux__xgrow *g)
{
    size_t i;
    int rc = 0;
    for (i = 0; i < g->n; i++) {
        llmux__buf *b = json_object_get_userdata(g->v[i]);
        if (b &&
            !json_object_set_string_len(g->v[i], b->p ? b->p : "", (int)b->len))
            rc = LLMUX_ENOMEM;
        json_object_set_userdata(g->v[i], NULL, NULL); /* frees b */
        json_object_put(g->v[i]);
    }
    llmux__free(g->v);
    memset(g, 0, sizeof *g);
    return rc;
}

/* The element of array `arr` whose "index" equals e's, or NULL. */
static json_object *same_index(json_object *arr, json_object *e)
{
    json_object *want, *have;
    size_t i, n = json_object_array_length(arr);
    if (!json_object_object_get_ex(e, "index", &want) ||
        !json_object_is_type(want, json_type_int))
        return NULL;
    for (i = 0; i < n; i++) {
        json_object *a = json_object_array_get_idx(arr, i);
        if (json_object_is_type(a, json_type_object) &&
            json_object_object_get_ex(a, "index", &have) &&
            json_object_is_type(have, json_type_int) &&
            json_object_get_int64(have) == json_object_get_int64(want))
            return a;
    }
    return NULL;
}

/* acc[key] folded with delta value v (see llmux__extra_merge). */
static int accumulate_member(json_object *acc, const char *key, json_object *v,
                             int depth, llmux__xgrow *g)
{
    json_object *a = NULL, *c;
    json_type ta, tv = json_object_get_type(v);
    if (!v)
        return 0; /* null adds nothing to what came before */
    if (!json_object_object_get_ex(acc, key, &a) || !a ||
        strcmp(key, "index") == 0 || strcmp(key, "type") == 0)
        goto replace;
    ta = json_object_get_type(a);
    if (ta == json_type_string && tv == json_type_string)
        return grow_append(g, a, v);
    if (ta == json_type_object && tv == json_type_object)
        return accumulate(a, v, depth + 1, g);
    if (ta == json_type_array && tv == json_type_array) {
        size_t i, n = json_object_array_length(v);
        for (i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i), *m;
            int rc;
            if (json_object_is_type(e, json_type_object) &&
                (m = same_index(a, e)) != NULL) {
                if ((rc = accumulate(m, e, depth + 1, g)) != 0)
                    return rc;
                continue;
            }
            c = copy(e);
            if ((e && !c) || json_object_array_add(a, c) != 0) {
                json_object_put(c);
                return LLMUX_ENOMEM;
            }
        }
        return 0;
    }
replace:
    if (!(c = copy(v)))
        return LLMUX_ENOMEM;
    if (json_object_object_add(acc, key, c) != 0) {
        json_object_put(c);
        return LLMUX_ENOMEM;
    }
    return 0;
}

static int accumulate(json_object *acc, json_object *delta, int depth,
                      llmux__xgrow *g)
{
    int rc;
    if (depth > EXTRA_DEPTH) /* values are parsed to this depth at most */
        return 0;
    json_object_object_foreach(delta, k, v)
    {
        if ((rc = accumulate_member(acc, k, v, depth, g)) != 0)
            return rc;
    }
    return 0;
}

int llmux__extra_merge(json_object **acc, json_object *from, llmux__xgrow *grow)
{
    if (!from)
        return 0;
    if (!*acc) {
        *acc = copy(from);
        return *acc ? 0 : LLMUX_ENOMEM;
    }
    if (grow)
        return accumulate(*acc, from, 0, grow);
    json_object_object_foreach(from, k, v)
    {
        json_object *c = copy(v);
        if ((v && !c) || json_object_object_add(*acc, k, c) != 0) {
            json_object_put(c);
            return LLMUX_ENOMEM;
        }
    }
    return 0;
}

void llmux__extra_under(json_object *ours, json_object *extra)
{
    if (!ours || !extra)
        return;
    json_object_object_foreach(extra, k, v)
    {
        json_object *mine;
        if (!json_object_object_get_ex(ours, k, &mine)) {
            /* shared, not copied: the written object only reads it */
            if (json_object_object_add(ours, k, json_object_get(v)) != 0)
                json_object_put(v);
        } else if (json_object_is_type(mine, json_type_object) &&
                   json_object_is_type(v, json_type_object)) {
            llmux__extra_under(mine, v);
        }
    }
}

const char *llmux__extra_get(json_object *extra, const char *key)
{
    json_object *v;
    if (!extra || !key || !json_object_object_get_ex(extra, key, &v))
        return NULL;
    if (!v)
        return "null";
    return json_object_to_json_string_ext(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

void llmux__extra_free(json_object **slot)
{
    json_object_put(*slot);
    *slot = NULL;
}
