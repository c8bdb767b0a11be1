/*
 * core/call.c: the core calling into a plugin, the offline half of a
 * request's life: resolving the provider, base URL, API key and headers,
 * encoding through the plugin (llmux__prepare), and decoding answers,
 * errors and stream events through it (llmux__decode_answer,
 * llmux__decode_event), with the plugin's log lines routed and masked
 * (host.c). The engine (client.c) does the I/O in between; tests drive
 * these functions directly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "internal.h"

/* ---- prepare: resolve, authenticate, encode ------------------------------ */

static const char *op_name(int op)
{
    switch (op) {
    case LLMUX_OP_CHAT:
        return "chat";
    case LLMUX_OP_COMPLETE:
        return "text completion";
    case LLMUX_OP_EMBED:
        return "embeddings";
    case LLMUX_OP_MODELS:
        return "model listing";
    case LLMUX_OP_TOKENIZE:
        return "tokenize";
    case LLMUX_OP_DETOKENIZE:
        return "detokenize";
    case LLMUX_OP_EVALUATE:
        return "evaluate";
    case LLMUX__OP_JOB:
        return "provider batch jobs";
    default:
        return "this operation";
    }
}

static uint64_t op_cap(int op)
{
    switch (op) {
    case LLMUX_OP_CHAT:
        return LLMUX_CAP_CHAT;
    case LLMUX_OP_COMPLETE:
        return LLMUX_CAP_COMPLETE;
    case LLMUX_OP_EMBED:
        return LLMUX_CAP_EMBED;
    case LLMUX_OP_MODELS:
        return LLMUX_CAP_MODELS;
    case LLMUX_OP_TOKENIZE:
        return LLMUX_CAP_TOKENIZE;
    case LLMUX_OP_DETOKENIZE:
        return LLMUX_CAP_DETOKENIZE;
    case LLMUX_OP_EVALUATE:
        return LLMUX_CAP_EVALUATE;
    default:
        return ~(uint64_t)0;
    }
}

static const char *env_nonempty(const char *name)
{
    const char *v = name && *name ? getenv(name) : NULL;
    return v && *v ? v : NULL;
}

/* A config-string key neither the core nor the plugin reads: the error
 * names it and lists what is read. */
static int unknown_option(llmux_request *r, const llmux__provider *p,
                          const char *key)
{
    char list[LLMUX__MSGBUF / 2];
    llmux__options_list(p->vt, 0, list, sizeof list);
    return llmux__request_fail(
        r, LLMUX_ECONFIG,
        "%s: unknown option \"%s\" in the config string (its options: %s); "
        "a request body field is set with llmux_request_set_field "
        "(the CLI's --field)",
        r->cfg.provider, key, list);
}

/* The plugin sees the config string's provider options first, then the
 * descriptor's. A config-string key the plugin declares it does not read
 * is refused. */
static int build_popts(llmux_request *r, const llmux__provider *p)
{
    size_t i, n = 0;
    for (i = 0; i < r->cfg.n_opts; i++)
        if (!llmux__is_core_key(r->cfg.opts[i].key) &&
            !llmux__plugin_reads(p->vt, r->cfg.opts[i].key, 0))
            return unknown_option(r, p, r->cfg.opts[i].key);
    llmux__request_free_popts(r);
    r->popts = llmux__calloc(r->cfg.n_opts + p->n_opts + 1, sizeof *r->popts);
    if (!r->popts)
        return LLMUX_ENOMEM;
    for (i = 0; i < r->cfg.n_opts; i++)
        if (!llmux__is_core_key(r->cfg.opts[i].key))
            r->popts[n++] = r->cfg.opts[i];
    for (i = 0; i < p->n_opts; i++)
        if (!llmux__is_core_key(p->opts[i].key))
            r->popts[n++] = p->opts[i];
    r->n_popts = n;
    return 0;
}

/* The view handed to the plugin: the fields LLMUX__REQUEST_FIELDS marks
 * PLUGIN, the messages, the token ids, the model and the provider
 * options. */
static void fill_params(llmux_request *r)
{
    llmux_params *pr = &r->params;
    memset(pr, 0, sizeof *pr);
    pr->struct_size = sizeof *pr;
    pr->op = r->op;
    pr->model = r->cfg.model;
    pr->messages = r->msgs;
    pr->n_messages = r->n_msgs;
    pr->options = r->popts;
    pr->n_options = r->n_popts;
    pr->token_ids = r->token_ids;
    pr->n_token_ids = r->n_token_ids;
#define FILL_SCALAR(type, name, json, to, pname)                               \
    LLMUX__IF_##to(pr->pname = r->name;)
#define FILL_STR(name, json, to, pname) LLMUX__IF_##to(pr->pname = r->name;)
#define FILL_STRV(name, count, json, to, pname, pcount)                        \
    LLMUX__IF_##to(pr->pname = (const char *const *)r->name;                   \
                   pr->pcount = r->count;)
    LLMUX__REQUEST_FIELDS(FILL_SCALAR, FILL_STR, FILL_STRV)
#undef FILL_SCALAR
#undef FILL_STR
#undef FILL_STRV
}

static int auth_mode(const llmux__settings *set, const llmux__provider *p)
{
    const char *a = set->auth;
    if (a && llmux__strcaseeq(a, "optional"))
        return LLMUX_AUTH_OPTIONAL;
    if (a && llmux__strcaseeq(a, "none"))
        return LLMUX_AUTH_NONE;
    if (a && llmux__strcaseeq(a, "bearer"))
        return LLMUX_AUTH_BEARER;
    return p->vt->auth;
}

static int add_header(struct llmux_http_request *h, const char *name,
                      const char *value)
{
    return llmux__host.http_header(h, name, value);
}

static int has_header(const struct llmux_http_request *h, const char *name)
{
    size_t i, n = strlen(name);
    for (i = 0; i < h->n_headers; i++)
        if (strncasecmp(h->headers[i], name, n) == 0 && h->headers[i][n] == ':')
            return 1;
    return 0;
}

/* Is `v` listed in the ':'-separated `list`? */
static int listed(const char *list, const char *v)
{
    size_t n = strlen(v);
    while (list && *list) {
        size_t k = strcspn(list, ":");
        if (k == n && strncmp(list, v, n) == 0)
            return 1;
        list += k + (list[k] == ':');
    }
    return 0;
}

/* api_key_env may only name a variable that looks like a credential, the
 * provider's own, or one the client allows: a config string from outside
 * must not send $HOME, or any other variable, as a Bearer token. */
static int check_key_env(llmux_request *r, const llmux__provider *p,
                         const char *kenv, const char *allow)
{
    size_t i;
    for (i = 0; kenv[i]; i++)
        if (!((kenv[i] >= 'A' && kenv[i] <= 'Z') ||
              (kenv[i] >= 'a' && kenv[i] <= 'z') || kenv[i] == '_' ||
              (i && kenv[i] >= '0' && kenv[i] <= '9')))
            break;
    if (!i || kenv[i])
        return llmux__request_fail(r, LLMUX_ECONFIG,
                                   "%s: api_key_env is not a variable name",
                                   r->cfg.provider);
    if (llmux__secret_name(kenv, strlen(kenv)) ||
        (p->api_key_env && strcmp(kenv, p->api_key_env) == 0) ||
        listed(allow, kenv))
        return 0;
    return llmux__request_fail(
        r, LLMUX_ECONFIG,
        "%s: api_key_env=%s does not name a credential variable (its "
        "name must end in KEY, TOKEN, SECRET or PASSWORD, or the "
        "client must allow it: key_env_allow)",
        r->cfg.provider, kenv);
}

int llmux__prepare(llmux_request *r, const char *extra_dirs,
                   llmux__prepared *out)
{
    return llmux__prepare_ex(r, NULL, NULL, extra_dirs, NULL, 0, out);
}

/* What the provider and the request itself must have: the operation and
 * streaming among the provider's capabilities, a model, and the op's own
 * inputs. */
static int check_request(llmux_request *r, const llmux__provider *p)
{
    if (r->op == LLMUX__OP_JOB) {
        if (!LLMUX_PROVIDER_HAS(p->vt, job_decode) || !p->vt->job_encode ||
            !p->vt->job_decode)
            return llmux__request_fail(
                r, LLMUX_ENOTSUP,
                "%s: provider batch jobs are not supported by this provider "
                "(the local runner sends the same requests one by one)",
                r->cfg.provider);
        return r->job ? 0 : LLMUX_EINVAL;
    }
    if (!(p->vt->caps & op_cap(r->op)))
        return llmux__request_fail(r, LLMUX_ENOTSUP,
                                   "%s: %s is not supported by this "
                                   "provider",
                                   r->cfg.provider, op_name(r->op));
    if (r->stream && r->op != LLMUX_OP_MODELS && r->op != LLMUX_OP_EMBED &&
        !(p->vt->caps & LLMUX_CAP_STREAM))
        return llmux__request_fail(
            r, LLMUX_ENOTSUP, "%s: streaming is not supported by this provider",
            r->cfg.provider);
    if (r->op != LLMUX_OP_MODELS && (!r->cfg.model || !*r->cfg.model))
        return llmux__request_fail(
            r, LLMUX_ECONFIG,
            "no model given: use \"%s/<model>\" in the config string",
            r->cfg.provider);
    if (r->op == LLMUX_OP_CHAT && !r->n_msgs)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "chat request has no messages");
    if (r->op == LLMUX_OP_COMPLETE && !r->prompt)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "text completion has no prompt");
    if (r->op == LLMUX_OP_EMBED && !r->n_inputs)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "embeddings request has no input");
    if ((r->op == LLMUX_OP_TOKENIZE || r->op == LLMUX_OP_EVALUATE) &&
        !r->prompt)
        return llmux__request_fail(r, LLMUX_EINVAL, "%s request has no prompt",
                                   op_name(r->op));
    if (r->op == LLMUX_OP_EVALUATE && !r->expected)
        return llmux__request_fail(
            r, LLMUX_EINVAL, "evaluate request has no expected completion");
    if (r->op == LLMUX_OP_DETOKENIZE && !r->n_token_ids)
        return llmux__request_fail(r, LLMUX_EINVAL,
                                   "detokenize request has no token ids");
    return 0;
}

/* The base URL: base_url=, else the provider's variable (a bare host, as
 * OLLAMA_HOST takes, written into buf), else the provider's default. */
static int resolve_base_url(llmux_request *r, const llmux__provider *p,
                            const llmux__settings *set, char *buf, size_t len,
                            const char **out)
{
    const char *base = set->base_url;
    if (!base && (base = env_nonempty(p->base_url_env)) != NULL &&
        !strstr(base, "://")) {
        /* "gpu" or "gpu:8080" from the environment, as OLLAMA_HOST takes:
         * http://, and the provider's port when none is given */
        int port =
            LLMUX_PROVIDER_HAS(p->vt, default_port) ? p->vt->default_port : 0;
        const char *colon = strrchr(base, ':');
        int has_port = colon && !strchr(colon, ']');
        /* ":8080" means this machine, as Ollama's own tools read it */
        int n = snprintf(buf, len, "http://%s%s",
                         base[0] == ':' ? "127.0.0.1" : "", base);
        if (n > 0 && (size_t)n < len && port > 0 && !has_port)
            n = snprintf(buf + n, len - (size_t)n, ":%d", port) + n;
        if (n < 0 || (size_t)n >= len)
            return llmux__request_fail(r, LLMUX_ECONFIG, "%s: %s is too long",
                                       r->cfg.provider, p->base_url_env);
        base = buf;
    }
    if (!base)
        base = p->base_url;
    if (!base || !*base)
        return llmux__request_fail(
            r, LLMUX_ECONFIG,
            "%s: no base URL (set base_url=... in the config string%s%s)",
            r->cfg.provider, p->base_url_env ? ", or " : "",
            p->base_url_env ? p->base_url_env : "");
    if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8))
        return llmux__request_fail(
            r, LLMUX_ECONFIG,
            "%s: base URL must start with http:// or https://",
            r->cfg.provider);
    *out = base;
    return 0;
}

/* The API key: api_key=, else the variable api_key_env= names (if the
 * client allows it), else the provider's; copied into out->api_key
 * without trailing whitespace. Missing is an error only for bearer
 * auth. */
static int resolve_key(llmux_request *r, const llmux__provider *p,
                       const llmux__settings *set, const char *key_env_allow,
                       int auth, llmux__prepared *out)
{
    const char *key = set->api_key && *set->api_key ? set->api_key : NULL;
    const char *kenv = set->api_key_env;
    size_t klen, i;
    int rc;
    if (kenv && (rc = check_key_env(r, p, kenv, key_env_allow)))
        return rc;
    if (!key && kenv)
        key = env_nonempty(kenv);
    if (!key && !kenv)
        key = env_nonempty(p->api_key_env);
    if (!key && auth == LLMUX_AUTH_BEARER && !out->cred) {
        const char *var = kenv ? kenv : p->api_key_env;
        if (var)
            return llmux__request_fail(
                r, LLMUX_ENOKEY, "%s: missing API key (set %s or api_key=...)",
                r->cfg.provider, var);
        return llmux__request_fail(r, LLMUX_ENOKEY,
                                   "%s: missing API key (set api_key=...)",
                                   r->cfg.provider);
    }
    if (!key)
        return 0;
    /* keys read from files often end in a newline: drop trailing
     * whitespace; anything else unprintable would break the header */
    klen = strlen(key);
    while (klen && (key[klen - 1] == '\n' || key[klen - 1] == '\r' ||
                    key[klen - 1] == ' ' || key[klen - 1] == '\t'))
        klen--;
    for (i = 0; i < klen; i++)
        if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
            return llmux__request_fail(
                r, LLMUX_ECONFIG,
                "%s: the API key (%s) contains a control "
                "character",
                r->cfg.provider,
                set->api_key     ? "api_key="
                : kenv           ? kenv
                : p->api_key_env ? p->api_key_env
                                 : "api_key");
    if (!(out->api_key = llmux__strndup(key, klen)))
        return LLMUX_ENOMEM;
    if (out->cred) { /* the engine picks what each attempt sends */
        out->conf_key = out->api_key;
        out->api_key = NULL;
    }
    return 0;
}

/* The plugin's encode, with its log lines routed to the request's error;
 * then the method when the plugin set none. */
static int encode(llmux_request *r, const llmux__provider *p, int auth,
                  llmux__prepared *out)
{
    llmux__log_target old;
    int rc;
    out->call.struct_size = sizeof out->call;
    out->call.params = &r->params;
    out->call.provider = r->cfg.provider;
    out->call.api_key = auth == LLMUX_AUTH_PLUGIN ? out->api_key : NULL;
    out->http.framing = p->vt->framing;
    llmux__request_seterr(r, NULL);
    old = llmux__log_target_call(&r->errmsg, out->api_key);
    rc = r->op == LLMUX__OP_JOB
             ? p->vt->job_encode(p->provctx, &out->call, r->job, &out->http)
             : p->vt->encode(p->provctx, &out->call, &out->http);
    llmux__log_target_swap(old);
    if (rc) {
        if (rc > 0)
            rc = LLMUX_EPLUGIN;
        if (!r->errmsg)
            llmux__request_fail(r, rc, "%s: cannot encode the request: %s",
                                r->cfg.provider, llmux_strerror(rc));
        llmux__mask_in(&r->errmsg, out->api_key);
        return rc;
    }
    if (!out->http.path)
        return llmux__request_fail(r, LLMUX_EPLUGIN,
                                   "%s: plugin set no request path",
                                   r->cfg.provider);
    if (!out->http.method &&
        llmux__host.http_method(&out->http, out->http.body ? "POST" : "GET"))
        return LLMUX_ENOMEM;
    return 0;
}

int llmux__has_auth(const llmux__provider *p,
                    const struct llmux_http_request *h)
{
    return has_header(h, "Authorization") ||
           (LLMUX_PROVIDER_HAS(p->vt, auth_header) && p->vt->auth_header &&
            *p->vt->auth_header && has_header(h, p->vt->auth_header));
}

int llmux__auth_line(const llmux__provider *p,
                     const struct llmux_http_request *h, const char *secret,
                     int bearer, char **line)
{
    const char *name = "Authorization";
    *line = NULL;
    if (!bearer && LLMUX_PROVIDER_HAS(p->vt, auth_header) &&
        p->vt->auth_header && *p->vt->auth_header)
        name = p->vt->auth_header;
    if (has_header(h, name))
        return 0; /* the request's own (a header or before_send) wins */
    *line = strcmp(name, "Authorization") == 0
                ? llmux__concat("Authorization: Bearer ", 22, secret, NULL)
                : llmux__concat(name, strlen(name), ": ", secret);
    return *line ? 0 : LLMUX_ENOMEM;
}

/* The headers the core adds to the plugin's (the engine adds User-Agent
 * and the client's): Authorization, Content-Type, Accept, then the
 * request's own. */
/* Appends the header line `line` (taken over; NULL: out of memory) to h;
 * on failure it is freed as a secret. */
static int push_line(struct llmux_http_request *h, char *line)
{
    char **v;
    if (!line)
        return LLMUX_ENOMEM;
    if (!(v = llmux__realloc(h->headers, (h->n_headers + 1) * sizeof *v))) {
        llmux__secret_free(line);
        return LLMUX_ENOMEM;
    }
    h->headers = v;
    v[h->n_headers++] = line;
    return 0;
}

static int core_headers(llmux_request *r, int auth, llmux__prepared *out)
{
    const char *key = out->api_key;
    size_t i;
    int rc;
    if (key && !out->cred &&
        (auth == LLMUX_AUTH_BEARER || auth == LLMUX_AUTH_OPTIONAL)) {
        char *line;
        if ((rc = llmux__auth_line(out->prov, &out->http, key, 0, &line)) ||
            (line && (rc = push_line(&out->http, line))))
            return rc;
    }
    if (out->http.body && !has_header(&out->http, "Content-Type") &&
        (rc = add_header(&out->http, "Content-Type", "application/json")))
        return rc;
    if (!has_header(&out->http, "Accept") &&
        (rc = add_header(&out->http, "Accept",
                         !r->stream ? "application/json"
                         : out->http.framing == LLMUX_FRAMING_NDJSON
                             ? "application/x-ndjson"
                             : "text/event-stream")))
        return rc;
    for (i = 0; i < r->n_headers; i++)
        if ((rc = push_line(&out->http, llmux__strdup(r->headers[i]))))
            return rc;
    return 0;
}

int llmux__prepare_ex(llmux_request *r, const llmux__settings *defaults,
                      llmux__settings *set, const char *extra_dirs,
                      const char *key_env_allow, int cred_cb,
                      llmux__prepared *out)
{
    llmux__settings own;
    const llmux__provider *p;
    const char *base = NULL;
    int rc, auth;
    size_t blen;
    char envbase[512], buf[LLMUX__MSGBUF];

    memset(out, 0, sizeof *out);
    if (!set)
        set = &own;
    rc = r->cfg.provider ? llmux__provider_get(r->cfg.provider, extra_dirs, &p,
                                               buf, sizeof buf)
                         : LLMUX_ECONFIG;
    /* the descriptor's core keys are a layer of the settings; without a
     * provider there is none, but `set` is still resolved */
    llmux__settings_resolve(r, defaults, rc ? NULL : p->opts,
                            rc ? 0 : p->n_opts, set);
    if (!r->cfg.provider)
        return llmux__request_fail(
            r, LLMUX_ECONFIG,
            "no provider given (config string \"provider/model\")");
    if (rc) {
        llmux__request_seterr(r, buf);
        return rc;
    }
    out->prov = p;
    out->auth = auth = auth_mode(set, p);
    out->cred =
        cred_cb && (auth == LLMUX_AUTH_BEARER || auth == LLMUX_AUTH_OPTIONAL);
    if ((rc = check_request(r, p)) ||
        (rc = resolve_base_url(r, p, set, envbase, sizeof envbase, &base)) ||
        (rc = resolve_key(r, p, set, key_env_allow, auth, out)) ||
        (rc = build_popts(r, p)))
        return rc;
    fill_params(r);
    out->job = r->op == LLMUX__OP_JOB ? r->job : NULL;
    if ((rc = encode(r, p, auth, out)))
        return rc;
    /* URL: base without trailing '/', then the path with a leading '/' */
    blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    out->url = llmux__concat(base, blen, out->http.path[0] == '/' ? "" : "/",
                             out->http.path);
    if (!out->url)
        return LLMUX_ENOMEM;
    return core_headers(r, auth, out);
}

void llmux__prepared_free(llmux__prepared *p)
{
    if (p->prov && p->prov->vt->call_end && p->call.state)
        p->prov->vt->call_end(p->prov->provctx, &p->call);
    p->call.state = NULL;
    llmux__http_free(&p->http);
    llmux__free(p->url);
    llmux__secret_free(p->api_key);
    llmux__secret_free(p->conf_key);
    memset(p, 0, sizeof *p);
}

/* ---- decoding ------------------------------------------------------------ */

static int emb_cmp(const void *a, const void *b)
{
    const llmux__vec *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

/* The message for a failed HTTP status when the plugin found none: the raw
 * body, trimmed, one line, at most 300 bytes. */
static char *raw_message(const char *body, size_t len, long status)
{
    llmux__buf b = {0};
    size_t i, n = 0;
    while (len &&
           (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')) {
        body++;
        len--;
    }
    while (len && (body[len - 1] == ' ' || body[len - 1] == '\n' ||
                   body[len - 1] == '\r' || body[len - 1] == '\t'))
        len--;
    if (!len)
        return llmux__asprintf("HTTP %ld with an empty body", status);
    for (i = 0; i < len && n < 300; i++, n++) {
        char c = body[i];
        if (c == '\n' || c == '\r' || c == '\t' || c == '\0')
            c = ' ';
        if (llmux__buf_append(&b, &c, 1)) {
            llmux__buf_free(&b);
            return NULL;
        }
    }
    if (i < len)
        llmux__buf_append(&b, "...", 3);
    return b.p;
}

int llmux__decode_answer(llmux__prepared *p, long status, const char *ctype,
                         const char *body, size_t len, llmux_response *res)
{
    const llmux_provider *vt = p->prov->vt;
    llmux_http_response hr;
    llmux__log_target old;
    int rc;
    char errbuf[LLMUX__ERRBUF] = "";
    char *perr = NULL; /* the plugin's error log lines, the last kept */

    memset(&hr, 0, sizeof hr);
    hr.struct_size = sizeof hr;
    hr.status = status;
    hr.content_type = ctype;
    hr.body = body ? body : "";
    hr.body_len = body ? len : 0;
    res->http_status = status;
    old = llmux__log_target_call(&perr, p->api_key);

    if (status >= 200 && status < 300) {
        rc = p->job ? vt->job_decode(p->prov->provctx, &p->call, p->job, &hr,
                                     &res->o)
                    : vt->decode(p->prov->provctx, &p->call, &hr, &res->o);
        llmux__log_target_swap(old);
        if (rc > 0)
            rc = 0;
        if (!rc && res->o.err_code)
            rc = res->o.err_code;
        if (rc) {
            if (!res->o.err_msg && perr)
                snprintf(errbuf, sizeof errbuf, "%s", perr);
            else if (!res->o.err_msg)
                snprintf(errbuf, sizeof errbuf,
                         "%s: could not decode the response (%s)",
                         p->call.provider, llmux_strerror(rc));
            llmux__response_fail(res, rc, status, 0, errbuf[0] ? errbuf : NULL);
            llmux__response_mask(res, p->api_key);
            llmux__free(perr);
            return rc;
        }
        if (res->o.n_embs > 1)
            qsort(res->o.embs, res->o.n_embs, sizeof *res->o.embs, emb_cmp);
        llmux__free(perr);
        return 0;
    }

    /* An HTTP error: the provider's error body, else the raw text. */
    if (vt->decode_error)
        vt->decode_error(p->prov->provctx, &p->call, &hr, &res->o);
    llmux__log_target_swap(old);
    if (status == 401 || status == 403)
        rc = LLMUX_EAUTH;
    else if (status == 429)
        rc = LLMUX_ERATELIMIT;
    else
        rc = LLMUX_EPROVIDER;
    {
        char *msg = res->o.err_msg && *res->o.err_msg
                        ? llmux__strdup(res->o.err_msg)
                        : raw_message(hr.body, hr.body_len, status);
        llmux__response_fail(res, rc, status, 0, msg);
        llmux__free(msg);
    }
    llmux__response_mask(res, p->api_key);
    llmux__free(perr);
    return rc;
}

int llmux__decode_event(llmux__prepared *p, const llmux_event *ev,
                        llmux_chunk *chunk)
{
    const llmux_provider *vt = p->prov->vt;
    llmux__log_target old;
    char *perr = NULL; /* the plugin's error log lines, the last kept */
    int rc;
    llmux__out_reset(&chunk->o);
    old = llmux__log_target_call(&perr, p->api_key);
    rc = vt->decode_event(p->prov->provctx, &p->call, ev, &chunk->o);
    llmux__log_target_swap(old);
    if (rc < 0 && !chunk->o.err_code) {
        if (perr)
            llmux__host.set_error(&chunk->o, rc, "%s", perr);
        else
            llmux__host.set_error(&chunk->o, rc, "%s: bad stream event (%s)",
                                  p->call.provider, llmux_strerror(rc));
    }
    llmux__free(perr);
    if (rc >= 0 && chunk->o.err_code)
        rc = chunk->o.err_code;
    return rc;
}

/* The kind of a provider error (o's type, code and message), as the
 * plugin tells (classify_error); LLMUX_ERROR_KIND_OTHER when it has no
 * say. */
int llmux__classify_error(const llmux__prepared *p, long status,
                          const struct llmux_out *o)
{
    const llmux__provider *prov = p->prov;
    llmux__log_target old;
    int kind;
    if (!prov || !LLMUX_PROVIDER_HAS(prov->vt, classify_error) ||
        !prov->vt->classify_error)
        return LLMUX_ERROR_KIND_OTHER;
    old = llmux__log_target_call(NULL, p->api_key);
    kind = prov->vt->classify_error(prov->provctx, status, o->err_type,
                                    o->err_pcode, o->err_msg);
    llmux__log_target_swap(old);
    return kind;
}

/* What the provider's rate-limit headers say is left, read by its plugin
 * (rate_limits) through `header`; 0, or -1 when the plugin has no such
 * hook (`rl` is then untouched). */
int llmux__read_rate_limits(const llmux__prepared *p, long status,
                            const char *(*header)(const llmux_http_response *,
                                                  const char *),
                            void *header_ctx, llmux_rate_limits *rl)
{
    const llmux__provider *prov = p->prov;
    llmux_http_response hr;
    llmux__log_target old;
    if (!prov || !LLMUX_PROVIDER_HAS(prov->vt, rate_limits) ||
        !prov->vt->rate_limits)
        return -1;
    memset(&hr, 0, sizeof hr);
    hr.struct_size = sizeof hr;
    hr.status = status;
    hr.body = "";
    hr.header = header;
    hr.header_ctx = header_ctx;
    memset(rl, 0, sizeof *rl);
    rl->struct_size = sizeof *rl;
    rl->requests_remaining = rl->requests_reset_ms = -1;
    rl->tokens_remaining = rl->tokens_reset_ms = -1;
    old = llmux__log_target_call(NULL, p->api_key);
    prov->vt->rate_limits(prov->provctx, &hr, rl);
    llmux__log_target_swap(old);
    return 0;
}
