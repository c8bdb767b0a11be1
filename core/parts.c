/*
 * core/parts.c: typed content parts (text, image by URL or bytes, input
 * audio, file): each call appends one part to a message's content, kept
 * as OpenAI's array of parts (llmux_msg.content_json), which every plugin
 * translates into its provider's shape or refuses by name. Appending
 * splices the new part's JSON onto the array text (no re-parse), but
 * still measures the text so far: N parts of S bytes in all cost
 * O(N * S); keeping the length beside the message would make it linear.
 */
#include <string.h>

#include <json-c/json.h>

#include "internal.h"

/* Standard base64 of p[0..n), NUL-terminated (llmux__free); the prefix
 * (may be "") comes first. */
static char *b64_with(const char *prefix, const unsigned char *p, size_t n)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pl = strlen(prefix), i, o = pl;
    char *out;
    if (n > ((size_t)-1 - pl - 1) / 4 * 3 - 3)
        return NULL;
    out = llmux__malloc(pl + (n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    memcpy(out, prefix, pl);
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* A MIME type as data URLs carry it: type/subtype of token characters. */
static int valid_mime(const char *m)
{
    const char *slash = m ? strchr(m, '/') : NULL;
    size_t i;
    if (!slash || slash == m || !slash[1])
        return 0;
    for (i = 0; m[i]; i++)
        if (!((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= 'A' && m[i] <= 'Z') ||
              (m[i] >= '0' && m[i] <= '9') || strchr("/+-.", m[i])))
            return 0;
    return strchr(slash + 1, '/') == NULL;
}

/* The message parts go to: the last one when it has `role` and carries
 * neither tool calls nor a tool result, else a new one (NULL, *fresh set,
 * not yet counted). */
static llmux_msg *target(llmux_request *r, int role, int *fresh)
{
    llmux_msg *m = r->n_msgs ? &r->msgs[r->n_msgs - 1] : NULL;
    *fresh = 0;
    if (m && m->role == role && !m->n_tool_calls && !m->tool_call_id &&
        (!m->content_json || m->content_json[0] == '['))
        return m;
    *fresh = 1;
    return llmux__request_new_msg(r, role);
}

/* Appends `part` (consumed) to m's content as an array of parts: a plain
 * text content becomes its first text part. */
static int splice(llmux_msg *m, json_object *part)
{
    const char *pj = json_object_to_json_string_ext(
        part, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t pl = pj ? strlen(pj) : 0, ol, tl = 0;
    const char *tj = NULL;
    json_object *tp = NULL;
    char *n;
    if (!pj) {
        json_object_put(part);
        return LLMUX_ENOMEM;
    }
    if (!m->content_json && m->content && *m->content) {
        tp = json_object_new_object();
        if (!tp ||
            json_object_object_add(tp, "type",
                                   json_object_new_string("text")) ||
            json_object_object_add(tp, "text",
                                   json_object_new_string(m->content)) ||
            !(tj = json_object_to_json_string_ext(
                  tp,
                  JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE))) {
            json_object_put(tp);
            json_object_put(part);
            return LLMUX_ENOMEM;
        }
        tl = strlen(tj);
    }
    ol = m->content_json ? strlen(m->content_json) : 0;
    /* "[...]" + "," + part + "]", or "[" text "," part "]" */
    n = llmux__realloc((char *)m->content_json, ol + tl + pl + 4);
    if (!n) {
        json_object_put(tp);
        json_object_put(part);
        return LLMUX_ENOMEM;
    }
    if (ol)
        m->content_json = n; /* unchanged so far, maybe moved */
    if (ol) {
        size_t at = ol, b;
        int empty;
        while (at && strchr(" \t\r\n", n[at - 1]))
            at--;
        if (!at || n[at - 1] != ']') { /* not an array: left as it was */
            json_object_put(tp);
            json_object_put(part);
            return LLMUX_EINVAL;
        }
        at--; /* the closing ']' */
        for (b = at; b && strchr(" \t\r\n", n[b - 1]); b--)
            ;
        empty = b && n[b - 1] == '[';
        if (!empty)
            n[at++] = ',';
        memcpy(n + at, pj, pl);
        n[at + pl] = ']';
        n[at + pl + 1] = '\0';
    } else {
        size_t at = 0;
        n[at++] = '[';
        if (tl) {
            memcpy(n + at, tj, tl);
            at += tl;
            n[at++] = ',';
        }
        memcpy(n + at, pj, pl);
        at += pl;
        n[at++] = ']';
        n[at] = '\0';
        llmux__free((char *)m->content);
        m->content = NULL;
    }
    m->content_json = n;
    json_object_put(tp);
    json_object_put(part);
    return 0;
}

/* Adds `part` (consumed) for `role`: to the last message, or a new one. */
static int add_part(llmux_request *r, llmux_role role, json_object *part)
{
    int fresh, rc;
    llmux_msg *m;
    if (!part)
        return LLMUX_ENOMEM;
    if (!r || role < LLMUX_ROLE_SYSTEM || role > LLMUX_ROLE_DEVELOPER) {
        json_object_put(part);
        return LLMUX_EINVAL;
    }
    if (!(m = target(r, role, &fresh))) {
        json_object_put(part);
        return LLMUX_ENOMEM;
    }
    rc = splice(m, part);
    if (fresh) {
        if (rc) {
            llmux__request_free_msg(m);
            return rc;
        }
        r->n_msgs++;
    }
    return rc;
}

/* {"type": type, type: value} */
static json_object *typed(const char *type, json_object *value)
{
    json_object *p = json_object_new_object();
    if (!p || !value ||
        json_object_object_add(p, "type", json_object_new_string(type)) ||
        json_object_object_add(p, type, value)) {
        json_object_put(p);
        json_object_put(value);
        return NULL;
    }
    return p;
}

LLMUX_EXTERN int llmux_request_add_text_part(llmux_request *req,
                                             llmux_role role, const char *text)
{
    json_object *p;
    if (!text)
        return LLMUX_EINVAL;
    p = json_object_new_object();
    if (!p ||
        json_object_object_add(p, "type", json_object_new_string("text")) ||
        json_object_object_add(p, "text", json_object_new_string(text))) {
        json_object_put(p);
        return LLMUX_ENOMEM;
    }
    return add_part(req, role, p);
}

/* {"type":"image_url","image_url":{"url":url[,"detail":detail]}} */
static int image_part(llmux_request *req, llmux_role role, const char *url,
                      const char *detail)
{
    json_object *o = json_object_new_object();
    if (!o || json_object_object_add(o, "url", json_object_new_string(url)) ||
        (detail &&
         json_object_object_add(o, "detail", json_object_new_string(detail)))) {
        json_object_put(o);
        return LLMUX_ENOMEM;
    }
    return add_part(req, role, typed("image_url", o));
}

static int valid_detail(const char *d)
{
    return !d || !strcmp(d, "auto") || !strcmp(d, "low") || !strcmp(d, "high");
}

LLMUX_EXTERN int llmux_request_add_image_url(llmux_request *req,
                                             llmux_role role, const char *url,
                                             const char *detail)
{
    if (!url || !valid_detail(detail) ||
        (strncmp(url, "https://", 8) && strncmp(url, "http://", 7) &&
         strncmp(url, "data:", 5)))
        return LLMUX_EINVAL;
    return image_part(req, role, url, detail);
}

LLMUX_EXTERN int llmux_request_add_image(llmux_request *req, llmux_role role,
                                         const char *mime, const void *bytes,
                                         size_t len, const char *detail)
{
    char prefix[96], *url;
    int rc;
    if ((!bytes && len) || !valid_mime(mime) || strlen(mime) > 64 ||
        strncmp(mime, "image/", 6) || !valid_detail(detail))
        return LLMUX_EINVAL;
    snprintf(prefix, sizeof prefix, "data:%s;base64,", mime);
    if (!(url = b64_with(prefix, bytes, len)))
        return LLMUX_ENOMEM;
    rc = image_part(req, role, url, detail);
    llmux__free(url);
    return rc;
}

LLMUX_EXTERN int llmux_request_add_audio(llmux_request *req, llmux_role role,
                                         const char *format, const void *bytes,
                                         size_t len)
{
    json_object *o;
    char *data;
    if ((!bytes && len) || !format ||
        (strcmp(format, "wav") && strcmp(format, "mp3")))
        return LLMUX_EINVAL;
    if (!(data = b64_with("", bytes, len)))
        return LLMUX_ENOMEM;
    o = json_object_new_object();
    if (!o || json_object_object_add(o, "data", json_object_new_string(data)) ||
        json_object_object_add(o, "format", json_object_new_string(format))) {
        json_object_put(o);
        llmux__free(data);
        return LLMUX_ENOMEM;
    }
    llmux__free(data);
    return add_part(req, role, typed("input_audio", o));
}

LLMUX_EXTERN int llmux_request_add_file(llmux_request *req, llmux_role role,
                                        const char *filename, const char *mime,
                                        const void *bytes, size_t len)
{
    char prefix[96], *data;
    json_object *o;
    if ((!bytes && len) || !filename || !*filename || !valid_mime(mime) ||
        strlen(mime) > 64)
        return LLMUX_EINVAL;
    snprintf(prefix, sizeof prefix, "data:%s;base64,", mime);
    if (!(data = b64_with(prefix, bytes, len)))
        return LLMUX_ENOMEM;
    o = json_object_new_object();
    if (!o ||
        json_object_object_add(o, "filename",
                               json_object_new_string(filename)) ||
        json_object_object_add(o, "file_data", json_object_new_string(data))) {
        json_object_put(o);
        llmux__free(data);
        return LLMUX_ENOMEM;
    }
    llmux__free(data);
    return add_part(req, role, typed("file", o));
}

LLMUX_EXTERN int llmux_request_add_file_id(llmux_request *req, llmux_role role,
                                           const char *file_id)
{
    json_object *o;
    if (!file_id || !*file_id)
        return LLMUX_EINVAL;
    o = json_object_new_object();
    if (!o ||
        json_object_object_add(o, "file_id", json_object_new_string(file_id))) {
        json_object_put(o);
        return LLMUX_ENOMEM;
    }
    return add_part(req, role, typed("file", o));
}

LLMUX_EXTERN int llmux_request_add_document_url(llmux_request *req,
                                                llmux_role role,
                                                const char *url,
                                                const char *name)
{
    json_object *p;
    if (!url || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) ||
        (name && !*name))
        return LLMUX_EINVAL;
    if (!(p = typed("document_url", json_object_new_string(url))))
        return LLMUX_ENOMEM;
    if (name && json_object_object_add(p, "document_name",
                                       json_object_new_string(name))) {
        json_object_put(p);
        return LLMUX_ENOMEM;
    }
    return add_part(req, role, p);
}
