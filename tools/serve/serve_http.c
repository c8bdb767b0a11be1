/* llmux serve: answers (JSON, OpenAI's error object, the status of an
 * llmux failure) and the router h2o hands every request to. */
#define SERVE_INTERNAL
#include "serve.h"

#include <json-c/json.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- responses ----------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

void serve_send_json(h2o_req_t *req, int status, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, len);
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0: no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], need, cp, i;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, cp = c & 0x07;
    else
        return 0;
    if (n < need + 1)
        return 0;
    for (i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need + 1;
}

void serve_utf8_scrub(char *s)
{
    size_t n = s ? strlen(s) : 0, i = 0, k;
    while (i < n) {
        if ((k = utf8_seq((const unsigned char *)s + i, n - i)))
            i += k;
        else
            s[i++] = '?';
    }
}

char *serve_error_json(const char *type, const char *param, const char *code,
                       const char *message)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    char *text, *msg = strdup(message ? message : "");
    /* JSON out is valid UTF-8: a message may quote a client's bytes, or be
     * cut inside a character by a fixed buffer */
    serve_utf8_scrub(msg);
    json_object_object_add(e, "message",
                           json_object_new_string(msg ? msg : "out of memory"));
    free(msg);
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "param",
                           param ? json_object_new_string(param) : NULL);
    json_object_object_add(e, "code",
                           code ? json_object_new_string(code) : NULL);
    json_object_object_add(o, "error", e);
    text = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return text;
}

void serve_send_error(h2o_req_t *req, int status, const char *type,
                      const char *param, const char *code, const char *message)
{
    char *text = serve_error_json(type, param, code, message);
    serve_call_error(req, type, code);
    if (text)
        serve_send_json(req, status, text, strlen(text));
    else
        serve_send_json(req, 500,
                        H2O_STRLIT("{\"error\":{\"message\":"
                                   "\"out of memory\",\"type\":"
                                   "\"server_error\",\"param\":"
                                   "null,\"code\":null}}"));
    free(text);
}

int serve_status_of(int code, long upstream_status, const char **type)
{
    switch (code) {
    case LLMUX_EINVAL:
    case LLMUX_ENOTSUP:
        *type = "invalid_request_error";
        return 400;
    case LLMUX_ERATELIMIT:
        *type = "rate_limit_error";
        return 429;
    case LLMUX_EBUDGET: /* OpenAI's answer to a spent quota */
        *type = "insufficient_quota";
        return 429;
    case LLMUX_ETIMEDOUT:
        *type = "api_error";
        return 504;
    case LLMUX_EQUEUEFULL:
    case LLMUX_ECANCELED:
    case LLMUX_ELIMITS: /* the shared limits' Redis: try again later */
        *type = "api_error";
        return 503;
    case LLMUX_EPROVIDER:
        /* the provider refused the request itself (a bad parameter, a
         * context too long): the client's to fix */
        if (upstream_status >= 400 && upstream_status < 500 &&
            upstream_status != 401 && upstream_status != 403 &&
            upstream_status != 429) {
            *type = "invalid_request_error";
            return (int)upstream_status;
        }
        *type = "api_error";
        return 502;
    case LLMUX_ETRANSPORT:
    case LLMUX_ETOOBIG:
    case LLMUX_EPROTO:
    case LLMUX_EAUTH: /* the gateway's upstream key, not the client's */
        *type = "api_error";
        return 502;
    default: /* the gateway's own config: a missing key, a provider */
        *type = "server_error";
        return 500;
    }
}

const char *serve_code_of(int code)
{
    return code == LLMUX_EBUDGET ? "insufficient_quota" : llmux_err_name(code);
}

void serve_send_failure(h2o_req_t *req, int code, const llmux_response *res)
{
    const llmux_error *e = llmux_response_error(res);
    const char *type;
    int st = serve_status_of(code, e ? e->http_status : 0, &type);
    char msg[1024];
    size_t pl = e && e->provider ? strlen(e->provider) : 0;
    /* name the provider once: its message may start with it */
    if (pl &&
        !(strncmp(e->message, e->provider, pl) == 0 && e->message[pl] == ':'))
        snprintf(msg, sizeof msg, "upstream %s: %s", e->provider, e->message);
    else
        snprintf(msg, sizeof msg, "%s", e ? e->message : llmux_strerror(code));
    if (st == 429 && e && e->retry_after >= 0) {
        char ra[32];
        int n = snprintf(ra, sizeof ra, "%.0f", e->retry_after + 0.5);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER,
                       NULL, h2o_strdup(&req->pool, ra, n).base, n);
    }
    serve_send_error(req, st, type, e ? e->param : NULL, serve_code_of(code),
                     msg);
}

/* ---- the router -----------------------------------------------------------
 */

static int is(h2o_iovec_t v, const char *s)
{
    return h2o_memis(v.base, v.len, s, strlen(s));
}

/* Is the host of `authority` (HOST[:PORT]) a loopback name or address
 * (the same test as the listen address's, serve_is_loopback)? */
static int loopback_host(h2o_iovec_t a)
{
    char host[64];
    size_t n = 0;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    if (a.len && a.base[0] == '[') { /* [IPv6]:port */
        while (n + 1 < a.len && a.base[n + 1] != ']')
            n++;
        if (n >= sizeof host)
            return 0;
        memcpy(host, a.base + 1, n);
        host[n] = 0;
        return uv_ip6_addr(host, 0, &in6) == 0 &&
               serve_is_loopback((struct sockaddr *)&in6);
    }
    while (n < a.len && a.base[n] != ':')
        n++;
    if (n >= sizeof host)
        return 0;
    memcpy(host, a.base, n);
    host[n] = 0;
    if (!strcasecmp(host, "localhost"))
        return 1;
    return uv_ip4_addr(host, 0, &in4) == 0 &&
           serve_is_loopback((struct sockaddr *)&in4);
}

/* What a browser on another site could make the gateway do: a POST from
 * another origin (CORS lets a "simple" text/plain POST through unasked)
 * is refused by its Origin header; and without keys, where anyone who
 * reaches the gateway may use it, only a loopback Host is answered, so
 * that a site rebinding its DNS name to 127.0.0.1 gets nothing. Returns
 * 0, or -1 with the error answer sent. */
static int browser_guard(serve *s, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    char msg[256];
    if (i >= 0) {
        h2o_iovec_t o = req->headers.entries[i].value;
        const char *sep = memchr(o.base, '/', o.len);
        /* scheme://authority: the authority must be the request's own */
        if (!sep || (size_t)(sep - o.base) + 2 > o.len || sep[1] != '/' ||
            !h2o_lcstris(sep + 2, o.len - (size_t)(sep + 2 - o.base),
                         req->authority.base, req->authority.len)) {
            serve_send_error(req, 403, "invalid_request_error", NULL,
                             "cross_origin",
                             "requests from another origin (a page of "
                             "another site) are refused");
            return -1;
        }
    }
    if (!s->cfg.n_keys && !loopback_host(req->authority)) {
        snprintf(msg, sizeof msg,
                 "without keys this gateway answers only requests for a "
                 "loopback host (localhost, 127.0.0.1, [::1]), not '%.*s'",
                 (int)(req->authority.len > 64 ? 64 : req->authority.len),
                 req->authority.base);
        serve_send_error(req, 403, "invalid_request_error", NULL,
                         "host_not_allowed", msg);
        return -1;
    }
    return 0;
}

int serve_on_req(serve *s, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    int get = is(req->method, "GET"), post = is(req->method, "POST");
    serve_call_begin(s, req); /* counted and logged when it ends */
    /* limits.max_header, where a browser's request comes from, then the
     * key of any /v1/ request and, with keys, of /metrics (into s->auth) */
    s->auth = NULL;
    if (serve_check_header(s, req) || browser_guard(s, req) ||
        (((path.len >= 4 && !memcmp(path.base, "/v1/", 4)) ||
          (s->cfg.n_keys && is(path, "/metrics"))) &&
         serve_authenticate(s, req)))
        return 0;
    if (is(path, "/")) {
        if (!get && !is(req->method, "HEAD"))
            goto method;
        serve_handle_page(req);
        return 0;
    }
    if (is(path, "/health")) {
        if (!get)
            goto method;
        if (s->closing)
            serve_send_error(req, 503, "api_error", NULL, NULL,
                             "shutting down");
        else
            serve_send_json(req, 200, H2O_STRLIT("{\"status\":\"ok\"}"));
        return 0;
    }
    if (is(path, "/metrics")) {
        if (!get)
            goto method;
        serve_handle_metrics(s, req);
        return 0;
    }
    if (is(path, "/v1/models")) {
        if (!get)
            goto method;
        serve_handle_models(s, req);
        return 0;
    }
    if (is(path, "/v1/chat/completions") || is(path, "/v1/completions") ||
        is(path, "/v1/embeddings")) {
        if (!post)
            goto method;
        if (s->closing) {
            serve_send_error(req, 503, "api_error", NULL, NULL,
                             "shutting down");
            return 0;
        }
        return serve_handle_op(s, req,
                               is(path, "/v1/chat/completions") ? LLMUX_OP_CHAT
                               : is(path, "/v1/completions") ? LLMUX_OP_COMPLETE
                                                             : LLMUX_OP_EMBED);
    }
    serve_send_error(req, 404, "invalid_request_error", NULL, "not_found",
                     "unknown path");
    return 0;
method:
    serve_send_error(req, 405, "invalid_request_error", NULL,
                     "method_not_allowed", "method not allowed on this path");
    return 0;
}
