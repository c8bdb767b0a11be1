/*
 * core/request.c: requests: construction, setters, dup and free, and the
 * JSON text helpers the setters and the JSON import share. The
 * OpenAI-style request JSON import is request_json.c's (it calls this file;
 * this file calls nothing there). What a plugin makes of a request is
 * call.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "internal.h"

/* ---- construction -------------------------------------------------------- */

int llmux__request_fail(llmux_request *r, int code, const char *fmt, ...)
{
    va_list ap;
    char buf[LLMUX__MSGBUF];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    llmux__request_seterr(r, buf);
    return code;
}

LLMUX_EXTERN int llmux_request_new(llmux_request **out, llmux_op op,
                                   const char *spec)
{
    llmux_request *r;
    if (!out)
        return LLMUX_EINVAL;
    *out = NULL;
    if (op < LLMUX_OP_CHAT || op > LLMUX_OP_EVALUATE)
        return LLMUX_EINVAL;
    r = llmux__calloc(1, sizeof *r);
    if (!r)
        return LLMUX_ENOMEM;
    r->op = op;
    r->max_retries = -1;
    *out = r;
    return spec ? llmux_request_set_model(r, spec) : 0;
}

void llmux__request_free_msg(llmux_msg *m)
{
    size_t i;
    llmux__free((char *)m->content);
    llmux__free((char *)m->content_json);
    llmux__free((char *)m->name);
    llmux__free((char *)m->tool_call_id);
    llmux__free((char *)m->reasoning);
    for (i = 0; i < m->n_tool_calls; i++) {
        llmux__free((char *)m->tool_calls[i].id);
        llmux__free((char *)m->tool_calls[i].name);
        llmux__free((char *)m->tool_calls[i].arguments);
    }
    llmux__free((void *)m->tool_calls);
}

void llmux__request_free_popts(llmux_request *r)
{
    llmux__free(r->popts);
    r->popts = NULL;
    r->n_popts = 0;
}

void llmux__request_seterr(llmux_request *r, const char *msg)
{
    llmux__set_msg(&r->errmsg, msg);
}

LLMUX_EXTERN void llmux_request_free(llmux_request *r)
{
    size_t i;
    if (!r)
        return;
    llmux__free(r->errmsg);
    llmux__config_free(&r->cfg);
    for (i = 0; i < r->n_msgs; i++)
        llmux__request_free_msg(&r->msgs[i]);
    llmux__free(r->msgs);
    llmux__free(r->token_ids);
#define FREE_SCALAR(type, name, json, to, pname)
#define FREE_STR(name, json, to, pname) llmux__free(r->name);
#define FREE_STRV(name, count, json, to, pname, pcount)                        \
    llmux__strv_free(r->name, r->count);
    LLMUX__REQUEST_FIELDS(FREE_SCALAR, FREE_STR, FREE_STRV)
#undef FREE_SCALAR
#undef FREE_STR
#undef FREE_STRV
    llmux__request_free_popts(r);
    llmux__free(r->job); /* its strings are the job's (jobs.c) */
    llmux__free(r);
}

static int dup_strv(char ***dst, char *const *src, size_t n)
{
    size_t i;
    *dst = NULL;
    if (!n)
        return 0;
    *dst = llmux__calloc(n, sizeof **dst);
    if (!*dst)
        return LLMUX_ENOMEM;
    for (i = 0; i < n; i++)
        if (!((*dst)[i] = llmux__strdup(src[i]))) {
            llmux__strv_free(*dst, i);
            *dst = NULL;
            return LLMUX_ENOMEM;
        }
    return 0;
}

static int dup_msg(llmux_msg *d, const llmux_msg *s)
{
    size_t i;
    llmux_tool_call *tc;
    memset(d, 0, sizeof *d);
    d->role = s->role;
    if ((s->content && !(d->content = llmux__strdup(s->content))) ||
        (s->content_json &&
         !(d->content_json = llmux__strdup(s->content_json))) ||
        (s->name && !(d->name = llmux__strdup(s->name))) ||
        (s->tool_call_id &&
         !(d->tool_call_id = llmux__strdup(s->tool_call_id))) ||
        (s->reasoning && !(d->reasoning = llmux__strdup(s->reasoning))))
        return LLMUX_ENOMEM;
    if (!s->n_tool_calls)
        return 0;
    tc = llmux__calloc(s->n_tool_calls, sizeof *tc);
    if (!tc)
        return LLMUX_ENOMEM;
    d->tool_calls = tc;
    d->n_tool_calls = s->n_tool_calls;
    for (i = 0; i < s->n_tool_calls; i++) {
        tc[i].index = s->tool_calls[i].index;
        tc[i].id = llmux__strdup(s->tool_calls[i].id);
        tc[i].name = llmux__strdup(s->tool_calls[i].name);
        tc[i].arguments = llmux__strdup(s->tool_calls[i].arguments);
        if (!tc[i].arguments)
            return LLMUX_ENOMEM;
    }
    return 0;
}

LLMUX_EXTERN llmux_request *llmux_request_dup(const llmux_request *s)
{
    llmux_request *r;
    size_t i;
    if (!s)
        return NULL;
    r = llmux__calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->op = s->op;
    if (s->errmsg && !(r->errmsg = llmux__strdup(s->errmsg)))
        goto oom;
#define DUP_SCALAR(type, name, json, to, pname) r->name = s->name;
#define DUP_STR(name, json, to, pname)                                         \
    if (s->name && !(r->name = llmux__strdup(s->name)))                        \
        goto oom;
#define DUP_STRV(name, count, json, to, pname, pcount)                         \
    if (dup_strv(&r->name, s->name, s->count))                                 \
        goto oom;                                                              \
    r->count = s->count;
    LLMUX__REQUEST_FIELDS(DUP_SCALAR, DUP_STR, DUP_STRV)
#undef DUP_SCALAR
#undef DUP_STR
#undef DUP_STRV
    if (llmux__config_copy(&r->cfg, &s->cfg))
        goto oom;
    if (s->n_msgs) {
        r->msgs = llmux__calloc(s->n_msgs, sizeof *r->msgs);
        if (!r->msgs)
            goto oom;
        r->cap_msgs = s->n_msgs;
        for (i = 0; i < s->n_msgs; i++) {
            r->n_msgs++;
            if (dup_msg(&r->msgs[i], &s->msgs[i]))
                goto oom;
        }
    }
    if (s->n_token_ids) {
        r->token_ids = llmux__malloc(s->n_token_ids * sizeof *r->token_ids);
        if (!r->token_ids)
            goto oom;
        memcpy(r->token_ids, s->token_ids,
               s->n_token_ids * sizeof *r->token_ids);
        r->n_token_ids = s->n_token_ids;
    }
    return r;
oom:
    llmux_request_free(r);
    return NULL;
}

LLMUX_EXTERN const char *llmux_request_errmsg(const llmux_request *r)
{
    if (!r)
        return "invalid request";
    return r->errmsg ? r->errmsg : "";
}

LLMUX_EXTERN llmux_op llmux_request_op(const llmux_request *r)
{
    return r ? (llmux_op)r->op : (llmux_op)0;
}

LLMUX_EXTERN const char *llmux_request_provider(const llmux_request *r)
{
    return r ? r->cfg.provider : NULL;
}

LLMUX_EXTERN const char *llmux_request_model(const llmux_request *r)
{
    return r ? r->cfg.model : NULL;
}

LLMUX_EXTERN void *llmux_request_userdata(const llmux_request *r)
{
    return r ? r->userdata : NULL;
}

/* A core setting's value checked as it is set (settings.c); the reason
 * goes to r's errmsg. */
static int check_setting(llmux_request *r, const char *key, const char *value)
{
    char err[LLMUX__MSGBUF];
    int rc = llmux__setting_check("config string", key, value, err, sizeof err);
    if (rc)
        llmux__request_seterr(r, err);
    return rc;
}

LLMUX_EXTERN int llmux_request_set_model(llmux_request *r, const char *spec)
{
    llmux__config c;
    size_t i;
    int rc;
    if (!r)
        return LLMUX_EINVAL;
    memset(&c, 0, sizeof c);
    {
        char buf[LLMUX__MSGBUF];
        rc = llmux__config_parse(spec, &c, buf, sizeof buf);
        if (rc) {
            llmux__request_seterr(r, buf);
            return rc;
        }
    }
    for (i = 0; i < c.n_opts; i++) {
        if (llmux__is_core_key(c.opts[i].key) &&
            (rc = check_setting(r, c.opts[i].key, c.opts[i].value))) {
            llmux__config_free(&c);
            return rc;
        }
    }
    llmux__config_free(&r->cfg);
    r->cfg = c;
    llmux__request_seterr(r, NULL);
    return 0;
}

LLMUX_EXTERN int llmux_request_set_option(llmux_request *r, const char *key,
                                          const char *value)
{
    int rc;
    if (!r || !key || !*key || !value)
        return LLMUX_EINVAL;
    if (llmux__is_core_key(key) && (rc = check_setting(r, key, value)))
        return rc;
    if ((rc = llmux__config_set(&r->cfg, key, value)))
        return llmux__request_fail(r, rc, "cannot set option \"%s\"", key);
    return 0;
}

llmux_msg *llmux__request_new_msg(llmux_request *r, int role)
{
    llmux_msg *m;
    if (r->n_msgs == r->cap_msgs) {
        size_t cap = r->cap_msgs ? r->cap_msgs * 2 : 4;
        llmux_msg *n = llmux__realloc(r->msgs, cap * sizeof *n);
        if (!n)
            return NULL;
        r->msgs = n;
        r->cap_msgs = cap;
    }
    m = &r->msgs[r->n_msgs];
    memset(m, 0, sizeof *m);
    m->role = role;
    return m;
}

static int valid_role(int role)
{
    return role >= LLMUX_ROLE_SYSTEM && role <= LLMUX_ROLE_DEVELOPER;
}

LLMUX_EXTERN int llmux_request_add_message(llmux_request *r, llmux_role role,
                                           const char *content)
{
    llmux_msg *m;
    if (!r || !valid_role(role))
        return LLMUX_EINVAL;
    if (!(m = llmux__request_new_msg(r, role)))
        return LLMUX_ENOMEM;
    if (content && !(m->content = llmux__strdup(content)))
        return LLMUX_ENOMEM;
    r->n_msgs++;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_system(llmux_request *r, const char *text)
{
    llmux_msg *m;
    if (!r || !text)
        return LLMUX_EINVAL;
    if (r->n_msgs && r->msgs[0].role == LLMUX_ROLE_SYSTEM) {
        char *d = llmux__strdup(text);
        if (!d)
            return LLMUX_ENOMEM;
        llmux__free((char *)r->msgs[0].content);
        r->msgs[0].content = d;
        return 0;
    }
    /* makes room for one more, at r->msgs[r->n_msgs] */
    if (!llmux__request_new_msg(r, LLMUX_ROLE_SYSTEM))
        return LLMUX_ENOMEM;
    m = &r->msgs[r->n_msgs];
    if (!(m->content = llmux__strdup(text)))
        return LLMUX_ENOMEM;
    {
        llmux_msg tmp = *m;
        memmove(r->msgs + 1, r->msgs, r->n_msgs * sizeof *r->msgs);
        r->msgs[0] = tmp;
    }
    r->n_msgs++;
    return 0;
}

LLMUX_EXTERN int llmux_request_add_tool_result(llmux_request *r,
                                               const char *tool_call_id,
                                               const char *content)
{
    llmux_msg *m;
    if (!r || !tool_call_id)
        return LLMUX_EINVAL;
    if (!(m = llmux__request_new_msg(r, LLMUX_ROLE_TOOL)))
        return LLMUX_ENOMEM;
    m->tool_call_id = llmux__strdup(tool_call_id);
    m->content = llmux__strdup(content ? content : "");
    if (!m->tool_call_id || !m->content) {
        llmux__request_free_msg(m);
        return LLMUX_ENOMEM;
    }
    r->n_msgs++;
    return 0;
}

LLMUX_EXTERN int llmux_request_add_tool_calls(llmux_request *r,
                                              const char *content,
                                              const llmux_tool_call *calls,
                                              size_t n)
{
    llmux_msg tmp, *m;
    size_t i;
    if (!r || (!calls && n))
        return LLMUX_EINVAL;
    for (i = 0; i < n; i++)
        if (!calls[i].name || !calls[i].arguments)
            return llmux__request_fail(r, LLMUX_EINVAL,
                                       "tool call %zu lacks name or "
                                       "arguments",
                                       i);
    memset(&tmp, 0, sizeof tmp);
    tmp.role = LLMUX_ROLE_ASSISTANT;
    tmp.content = content;
    tmp.tool_calls = calls;
    tmp.n_tool_calls = n;
    if (!(m = llmux__request_new_msg(r, LLMUX_ROLE_ASSISTANT)))
        return LLMUX_ENOMEM;
    if (dup_msg(m, &tmp)) {
        llmux__request_free_msg(m);
        return LLMUX_ENOMEM;
    }
    for (i = 0; i < n; i++)
        ((llmux_tool_call *)m->tool_calls)[i].index = (int)i;
    r->n_msgs++;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_max_tokens(llmux_request *r, long n)
{
    if (!r || n < 0)
        return LLMUX_EINVAL;
    r->max_tokens = n;
    r->has |= LLMUX_HAS_MAX_TOKENS;
    return 0;
}

int llmux__budget_name_ok(const char *s)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
            return 0;
    return n >= 1 && n <= 128;
}

LLMUX_EXTERN int llmux_request_set_budget(llmux_request *r, const char *scope,
                                          double usd, long window_ms)
{
    char *copy = NULL;
    if (!r || (scope && (!llmux__budget_name_ok(scope) || !(usd > 0) ||
                         usd > 1e15 || window_ms < 0)))
        return LLMUX_EINVAL;
    if (scope && !(copy = llmux__strdup(scope)))
        return LLMUX_ENOMEM;
    llmux__free(r->budget_scope);
    r->budget_scope = copy;
    r->budget_usd = scope ? usd : 0;
    r->budget_window_ms = scope ? window_ms : 0;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_temperature(llmux_request *r, double t)
{
    if (!r || !(t >= 0.0 && t <= 10.0))
        return LLMUX_EINVAL;
    r->temperature = t;
    r->has |= LLMUX_HAS_TEMPERATURE;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_top_p(llmux_request *r, double p)
{
    if (!r || !(p >= 0.0 && p <= 1.0))
        return LLMUX_EINVAL;
    r->top_p = p;
    r->has |= LLMUX_HAS_TOP_P;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_seed(llmux_request *r, long long seed)
{
    if (!r)
        return LLMUX_EINVAL;
    r->seed = seed;
    r->has |= LLMUX_HAS_SEED;
    return 0;
}

static int push_str(char ***v, size_t *n, const char *s)
{
    char **nv;
    char *d = llmux__strdup(s);
    if (!d)
        return LLMUX_ENOMEM;
    nv = llmux__realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) {
        llmux__free(d);
        return LLMUX_ENOMEM;
    }
    nv[(*n)++] = d;
    *v = nv;
    return 0;
}

LLMUX_EXTERN int llmux_request_add_stop(llmux_request *r, const char *stop)
{
    if (!r || !stop)
        return LLMUX_EINVAL;
    return push_str(&r->stops, &r->n_stops, stop);
}

LLMUX_EXTERN int llmux_request_set_stream(llmux_request *r, int stream)
{
    if (!r)
        return LLMUX_EINVAL;
    r->stream = stream != 0;
    return 0;
}

/* ---- JSON text (the JSON import's too) ----------------------------------- */

char *llmux__request_json_text(json_object *o)
{
    size_t len;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    return llmux__strndup(s, len);
}

json_object *llmux__request_parse_json(const char *s, size_t len)
{
    json_tokener *tok;
    json_object *o;
    if (!s || len > (size_t)0x7fffffff)
        return NULL;
    tok = json_tokener_new();
    if (!tok)
        return NULL;
    o = json_tokener_parse_ex(tok, s, (int)len);
    if (o && tok->char_offset < (int)len) {
        /* only whitespace may follow */
        const char *p = s + tok->char_offset;
        while (p < s + len &&
               (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p != s + len) {
            json_object_put(o);
            o = NULL;
        }
    } else if (!o || json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static int replace_str(char **dst, const char *s)
{
    char *d = NULL;
    if (s && !(d = llmux__strdup(s)))
        return LLMUX_ENOMEM;
    llmux__free(*dst);
    *dst = d;
    return 0;
}

/* Checks that `json` parses and is of type t (json_type_null: any). */
static int check_json(llmux_request *r, const char *what, const char *json,
                      json_type t)
{
    json_object *o = llmux__request_parse_json(json, strlen(json));
    int ok = o != NULL && (t == json_type_null || json_object_is_type(o, t));
    json_object_put(o);
    if (!ok)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "%s: invalid JSON or wrong type", what);
    return 0;
}

LLMUX_EXTERN int llmux_request_add_tool(llmux_request *r, const char *name,
                                        const char *description,
                                        const char *parameters_json)
{
    json_object *arr = NULL, *t, *f, *p = NULL;
    int rc;
    if (!r || !name || !*name)
        return LLMUX_EINVAL;
    if (parameters_json) {
        p = llmux__request_parse_json(parameters_json, strlen(parameters_json));
        if (!p || !json_object_is_type(p, json_type_object)) {
            json_object_put(p);
            return llmux__request_fail(
                r, LLMUX_EINVAL,
                "tool \"%s\": parameters are not a JSON object", name);
        }
    }
    if (r->tools_json)
        arr = llmux__request_parse_json(r->tools_json, strlen(r->tools_json));
    if (!arr)
        arr = json_object_new_array();
    t = json_object_new_object();
    f = json_object_new_object();
    json_object_object_add(t, "type", json_object_new_string("function"));
    json_object_object_add(f, "name", json_object_new_string(name));
    if (description)
        json_object_object_add(f, "description",
                               json_object_new_string(description));
    json_object_object_add(
        f, "parameters",
        p ? p : json_tokener_parse("{\"type\":\"object\",\"properties\":{}}"));
    json_object_object_add(t, "function", f);
    json_object_array_add(arr, t);
    {
        char *s = llmux__request_json_text(arr);
        rc = s ? 0 : LLMUX_ENOMEM;
        if (s) {
            llmux__free(r->tools_json);
            r->tools_json = s;
        }
    }
    json_object_put(arr);
    return rc;
}

LLMUX_EXTERN int llmux_request_set_tools_json(llmux_request *r,
                                              const char *json)
{
    int rc;
    if (!r)
        return LLMUX_EINVAL;
    if (json && (rc = check_json(r, "tools", json, json_type_array)))
        return rc;
    return replace_str(&r->tools_json, json);
}

LLMUX_EXTERN int llmux_request_set_tool_choice(llmux_request *r,
                                               const char *choice)
{
    char *s;
    int rc;
    if (!r)
        return LLMUX_EINVAL;
    if (!choice)
        return replace_str(&r->tool_choice_json, NULL);
    while (*choice == ' ')
        choice++;
    if (*choice == '{' || *choice == '"') {
        if ((rc = check_json(r, "tool_choice", choice, json_type_null)))
            return rc;
        return replace_str(&r->tool_choice_json, choice);
    }
    if (!strcmp(choice, "auto") || !strcmp(choice, "none") ||
        !strcmp(choice, "required"))
        s = llmux__asprintf("\"%s\"", choice);
    else {
        json_object *o = json_object_new_object(),
                    *f = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("function"));
        json_object_object_add(f, "name", json_object_new_string(choice));
        json_object_object_add(o, "function", f);
        s = llmux__request_json_text(o);
        json_object_put(o);
    }
    if (!s)
        return LLMUX_ENOMEM;
    llmux__free(r->tool_choice_json);
    r->tool_choice_json = s;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_response_format(llmux_request *r,
                                                   const char *json)
{
    int rc;
    if (!r)
        return LLMUX_EINVAL;
    if (json && (rc = check_json(r, "response_format", json, json_type_object)))
        return rc;
    return replace_str(&r->response_format_json, json);
}

LLMUX_EXTERN int llmux_request_set_prompt(llmux_request *r, const char *p)
{
    if (!r || !p)
        return LLMUX_EINVAL;
    return replace_str(&r->prompt, p);
}

LLMUX_EXTERN int llmux_request_set_suffix(llmux_request *r, const char *s)
{
    if (!r)
        return LLMUX_EINVAL;
    return replace_str(&r->suffix, s);
}

LLMUX_EXTERN int llmux_request_add_token_id(llmux_request *r, long long id)
{
    int64_t *n;
    if (!r || id < 0)
        return LLMUX_EINVAL;
    n = llmux__realloc(r->token_ids, (r->n_token_ids + 1) * sizeof *n);
    if (!n)
        return LLMUX_ENOMEM;
    n[r->n_token_ids++] = (int64_t)id;
    r->token_ids = n;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_expected(llmux_request *r, const char *text)
{
    if (!r || !text)
        return LLMUX_EINVAL;
    return replace_str(&r->expected, text);
}

LLMUX_EXTERN int llmux_request_add_input(llmux_request *r, const char *text)
{
    if (!r || !text)
        return LLMUX_EINVAL;
    return push_str(&r->inputs, &r->n_inputs, text);
}

LLMUX_EXTERN int llmux_request_add_header(llmux_request *r, const char *h)
{
    const char *colon;
    if (!r || !h)
        return LLMUX_EINVAL;
    colon = strchr(h, ':');
    if (!colon || colon == h || strpbrk(h, "\r\n"))
        return llmux__request_fail(
            r, LLMUX_EINVAL, "header must be \"Name: value\" on one line");
    return push_str(&r->headers, &r->n_headers, h);
}

LLMUX_EXTERN int llmux_request_set_timeout_ms(llmux_request *r, long ms)
{
    if (!r || ms < 0)
        return LLMUX_EINVAL;
    r->timeout_ms = ms;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_connect_timeout_ms(llmux_request *r, long ms)
{
    if (!r || ms < 0)
        return LLMUX_EINVAL;
    r->connect_timeout_ms = ms;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_first_byte_timeout_ms(llmux_request *r,
                                                         long ms)
{
    if (!r || ms < 0)
        return LLMUX_EINVAL;
    r->first_byte_timeout_ms = ms;
    return 0;
}

LLMUX_EXTERN int llmux_request_set_idle_timeout_ms(llmux_request *r, long ms)
{
    if (!r || ms < 0)
        return LLMUX_EINVAL;
    r->idle_timeout_ms = ms;
    return 0;
}

LLMUX_EXTERN int llmux_request_add_fallback(llmux_request *r, const char *spec)
{
    llmux__config c;
    char buf[LLMUX__MSGBUF];
    int rc;
    if (!r || !spec)
        return LLMUX_EINVAL;
    size_t i;
    memset(&c, 0, sizeof c);
    rc = llmux__config_parse(spec, &c, buf, sizeof buf);
    if (rc)
        return llmux__request_fail(r, rc, "fallback: %s", buf);
    /* the same checks as llmux_request_set_model: fail now, not later */
    for (i = 0; i < c.n_opts && !rc; i++)
        if (llmux__is_core_key(c.opts[i].key))
            rc = check_setting(r, c.opts[i].key, c.opts[i].value);
    if (!rc && (!c.model || !*c.model) && r->op != LLMUX_OP_MODELS)
        rc = llmux__request_fail(r, LLMUX_ECONFIG,
                                 "fallback: no model given for \"%s\"",
                                 c.provider);
    llmux__config_free(&c);
    if (rc) {
        if (r->errmsg && strncmp(r->errmsg, "fallback", 8) != 0) {
            char m[LLMUX__MSGBUF];
            snprintf(m, sizeof m, "fallback: %s", r->errmsg);
            llmux__request_seterr(r, m);
        }
        return rc;
    }
    return push_str(&r->fallbacks, &r->n_fallbacks, spec);
}

LLMUX_EXTERN int llmux_request_set_max_retries(llmux_request *r, int n)
{
    if (!r || n < -1 || n > 100)
        return LLMUX_EINVAL;
    r->max_retries = n;
    return 0;
}
