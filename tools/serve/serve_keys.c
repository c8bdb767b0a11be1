/* llmux serve: virtual keys and the gateway's own limits on requests.
 *
 * A client presents a key as `Authorization: Bearer KEY` (what the OpenAI
 * SDKs send) or `api-key: KEY` (Azure's SDK). Its SHA-256 is compared with
 * every configured key's digest with CRYPTO_memcmp, visiting all of them
 * whatever matches, so that neither the position of a match nor how much
 * of a key is right shows in the time taken; hashing first makes the
 * compared lengths fixed (a prefix of a key is just another digest).
 *
 * Per-key limits are token buckets holding a minute's worth: rpm requests
 * and tpm tokens, refilled continuously. rpm takes one request at
 * admission. tpm cannot know a request's tokens in advance, so admission
 * reserves an estimate (the body's bytes / 4 for the prompt, plus its
 * max_tokens) and needs that much in the bucket (or a full bucket, for a
 * request estimated above a minute's worth); the request's end corrects
 * the reservation with the tokens the response reports (refunded in full
 * for a failure without an answer; kept as estimated when a provider
 * reports no usage). A bucket may so go below zero: later requests wait
 * until it refills, which is what Retry-After says.
 *
 * A key's state lives in a refcounted serve_keystate, looked up by the
 * key's name: the table (s->keystates, parallel to s->cfg.keys) holds one
 * reference and each admitted request another. serve_keys_bind, called
 * after a config (re)load, keeps the state (and bucket levels) of a name
 * the new config keeps and drops the table's reference on the others,
 * which are freed when their last request ends; so a request's key_name
 * stays valid until the request is released. */
#define SERVE_INTERNAL
#include "serve.h"

#include <math.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    double cap;   /* a minute's worth; 0: no limit */
    double level; /* what is left; below 0 after an underestimate */
    uint64_t at;  /* loop time of the last refill, ms */
} bucket;

struct serve_keystate {
    char *name; /* its own copy: outlives a reload of the config */
    size_t refs;
    const serve_key *key; /* in s->cfg.keys; NULL once a reload dropped it */
    bucket req, tok;
};

/* ---- buckets ------------------------------------------------------------- */

static void bucket_refill(bucket *b, uint64_t now)
{
    if (now > b->at)
        b->level =
            fmin(b->cap, b->level + b->cap * (double)(now - b->at) / 60000.0);
    b->at = now;
}

static void bucket_set(bucket *b, double cap, uint64_t now)
{
    if (!b->at || !b->cap) /* new, or had no limit: full */
        b->level = cap;
    else { /* kept: what is left stays, up to the new limit */
        bucket_refill(b, now);
        b->level = fmin(b->level, cap);
    }
    b->cap = cap;
    b->at = now;
}

/* Seconds until the bucket holds `need`, rounded up (at least 1). */
static long bucket_wait(const bucket *b, double need)
{
    double s = (need - b->level) * 60.0 / b->cap;
    return s < 1 ? 1 : s > 86400 ? 86400 : (long)ceil(s);
}

/* ---- the key table ------------------------------------------------------- */

static void keystate_unref(serve_keystate *ks)
{
    if (ks && !--ks->refs) {
        free(ks->name);
        free(ks);
    }
}

static serve_keystate *keystate_find(serve *s, const char *name, size_t *at)
{
    size_t j;
    for (j = 0; j < s->n_keystates; j++)
        if (s->keystates[j] && !strcmp(s->keystates[j]->name, name)) {
            *at = j;
            return s->keystates[j];
        }
    return NULL;
}

int serve_keys_bind(serve *s)
{
    serve_keystate **next = NULL;
    uint64_t now = uv_now(&s->loop) + 1; /* never 0: 0 marks a new bucket */
    size_t i, j = 0; /* set by keystate_find when it finds */
    if (s->cfg.n_keys && !(next = calloc(s->cfg.n_keys, sizeof *next)))
        return -1;
    /* first the new states, so that running out of memory leaves the old
     * table as it was */
    for (i = 0; i < s->cfg.n_keys; i++)
        if (!keystate_find(s, s->cfg.keys[i].name, &j) &&
            (!(next[i] = calloc(1, sizeof *next[i])) ||
             !(next[i]->name = strdup(s->cfg.keys[i].name)))) {
            for (j = 0; j <= i && j < s->cfg.n_keys; j++)
                if (next[j]) {
                    free(next[j]->name);
                    free(next[j]);
                }
            free(next);
            return -1;
        }
    for (i = 0; i < s->cfg.n_keys; i++) {
        const serve_key *k = &s->cfg.keys[i];
        if (next[i])
            next[i]->refs = 1;
        else { /* kept: its buckets go on */
            next[i] = keystate_find(s, k->name, &j);
            s->keystates[j] = NULL;
        }
        next[i]->key = k;
        bucket_set(&next[i]->req, k->rpm, now);
        bucket_set(&next[i]->tok, k->tpm, now);
    }
    serve_keys_free(s);
    s->keystates = next;
    s->n_keystates = s->cfg.n_keys;
    return 0;
}

void serve_keys_free(serve *s)
{
    size_t i;
    for (i = 0; i < s->n_keystates; i++)
        if (s->keystates[i]) {
            s->keystates[i]->key = NULL;
            keystate_unref(s->keystates[i]);
        }
    free(s->keystates);
    s->keystates = NULL;
    s->n_keystates = 0;
}

const char *serve_keystate_name(const serve_keystate *ks)
{
    return ks ? ks->name : NULL;
}

double serve_keystate_budget(const serve_keystate *ks)
{
    return ks && ks->key ? ks->key->budget_usd : 0;
}

long serve_keystate_budget_window(const serve_keystate *ks)
{
    return ks && ks->key ? ks->key->budget_window_ms : 0;
}

/* ---- the router's checks ------------------------------------------------- */

int serve_check_header(serve *s, h2o_req_t *req)
{
    size_t n = req->method.len + req->path.len, i;
    char msg[256];
    for (i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len +
             req->headers.entries[i].value.len + 4; /* ": " and CRLF */
    if (n <= s->cfg.limits.max_header)
        return 0;
    s->rejected_header++;
    snprintf(msg, sizeof msg,
             "the request's headers (%zu bytes) are larger than the "
             "gateway's limit of %zu bytes (limits.max_header)",
             n, s->cfg.limits.max_header);
    serve_send_error(req, 431, "invalid_request_error", NULL,
                     "request_header_too_large", msg);
    return -1;
}

static h2o_iovec_t presented_key(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t v;
    if (i >= 0) {
        v = req->headers.entries[i].value;
        if (v.len > 7 && h2o_lcstris(v.base, 6, H2O_STRLIT("bearer")) &&
            v.base[6] == ' ') {
            v.base += 7;
            v.len -= 7;
            while (v.len && v.base[0] == ' ')
                v.base++, v.len--;
            while (v.len && v.base[v.len - 1] == ' ')
                v.len--;
            return v;
        }
        return h2o_iovec_init(NULL, 0);
    }
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("api-key"), -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

/* A 401: the message never repeats what was presented. */
static int deny_key(serve *s, h2o_req_t *req, const char *msg)
{
    s->rejected_auth++;
    serve_send_error(req, 401, "invalid_request_error", NULL, "invalid_api_key",
                     msg);
    return -1;
}

int serve_authenticate(serve *s, h2o_req_t *req)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    h2o_iovec_t key;
    size_t i, found = 0, idx = 0;
    s->auth = NULL;
    if (!s->cfg.n_keys)
        return 0;
    key = presented_key(req);
    if (!key.len)
        return deny_key(s, req,
                        "You didn't provide an API key: send it as "
                        "'Authorization: Bearer KEY' (or 'api-key: KEY')");
    SHA256((const unsigned char *)key.base, key.len, d);
    /* every key visited, whatever matched; the match selected by mask */
    for (i = 0; i < s->cfg.n_keys; i++) {
        size_t eq =
            (size_t)(CRYPTO_memcmp(d, s->cfg.keys[i].digest, sizeof d) == 0);
        size_t mask = (size_t)0 - eq;
        idx |= i & mask;
        found |= mask;
    }
    OPENSSL_cleanse(d, sizeof d);
    if (!found)
        return deny_key(s, req,
                        "Incorrect API key provided (the key is not one of "
                        "this gateway's keys)");
    s->auth = s->keystates[idx];
    return 0;
}

int serve_key_allows(const serve *s, const serve_keystate *ks,
                     const char *model)
{
    size_t i;
    (void)s;
    if (!ks)
        return 1; /* no keys: every route */
    if (!ks->key)
        return 0; /* a reload dropped the key */
    if (!ks->key->models)
        return 1;
    for (i = 0; i < ks->key->n_models; i++)
        if (!strcmp(ks->key->models[i], model))
            return 1;
    return 0;
}

/* ---- admission ----------------------------------------------------------- */

static void send_limited(h2o_req_t *req, int status, const char *type,
                         const char *code, long retry_after, const char *msg)
{
    char ra[32];
    int n = snprintf(ra, sizeof ra, "%ld", retry_after);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&req->pool, ra, n).base, n);
    serve_send_error(req, status, type, NULL, code, msg);
}

int serve_admit(serve *s, h2o_req_t *req, const char *model, double estimate,
                serve_keystate **out)
{
    serve_keystate *ks = s->auth;
    uint64_t now = uv_now(&s->loop) + 1;
    double need;
    char msg[512];
    *out = NULL;
    if (ks) /* the access log names the key of a refused request too */
        serve_call_key(req, ks->name);
    if (!serve_key_allows(s, ks, model)) {
        s->rejected_model++;
        snprintf(msg, sizeof msg,
                 "The key '%s' may not use the model '%s' (its models: in "
                 "the gateway's config)",
                 ks->name, model);
        serve_send_error(req, 403, "invalid_request_error", "model",
                         "model_not_allowed", msg);
        return -1;
    }
    /* the gateway's own bound first: a refused request costs no quota */
    if (s->in_flight >= s->cfg.limits.max_in_flight) {
        s->rejected_in_flight++;
        snprintf(msg, sizeof msg,
                 "The gateway is answering its limit of %zu requests at once "
                 "(limits.max_in_flight); retry shortly",
                 s->cfg.limits.max_in_flight);
        send_limited(req, 503, "api_error", "max_in_flight", 1, msg);
        return -1;
    }
    if (ks && ks->req.cap) {
        bucket_refill(&ks->req, now);
        if (ks->req.level < 1) {
            s->rejected_rpm++;
            snprintf(msg, sizeof msg,
                     "Rate limit reached for key '%s' on requests per min "
                     "(RPM): limit %.0f",
                     ks->name, ks->req.cap);
            send_limited(req, 429, "requests", "rate_limit_exceeded",
                         bucket_wait(&ks->req, 1), msg);
            return -1;
        }
    }
    if (ks && ks->tok.cap) {
        bucket_refill(&ks->tok, now);
        need = fmax(1, fmin(estimate, ks->tok.cap));
        if (ks->tok.level < need) {
            s->rejected_tpm++;
            snprintf(msg, sizeof msg,
                     "Rate limit reached for key '%s' on tokens per min "
                     "(TPM): limit %.0f, requested about %.0f",
                     ks->name, ks->tok.cap, estimate);
            send_limited(req, 429, "tokens", "rate_limit_exceeded",
                         bucket_wait(&ks->tok, need), msg);
            return -1;
        }
    }
    if (ks) {
        if (ks->req.cap)
            ks->req.level -= 1;
        if (ks->tok.cap) /* at most a minute's worth: a huge max_tokens
                            may not lock the key out for hours */
            ks->tok.level -= fmin(estimate, ks->tok.cap);
        ks->refs++;
    }
    s->in_flight++;
    *out = ks;
    return 0;
}

void serve_release(serve *s, serve_keystate *ks, double estimate,
                   const llmux_usage *usage)
{
    s->in_flight--;
    if (!ks)
        return;
    if (ks->tok.cap) {
        double reserved = fmin(estimate, ks->tok.cap); /* as serve_admit */
        double used = reserved; /* no usage reported: as reserved */
        if (!usage)
            used = 0; /* failed before any of an answer reached the client */
        else if (usage->total_tokens >= 0)
            used = (double)usage->total_tokens;
        else if (usage->prompt_tokens >= 0 && usage->completion_tokens >= 0)
            used = (double)(usage->prompt_tokens + usage->completion_tokens);
        ks->tok.level = fmin(ks->tok.cap, ks->tok.level + reserved - used);
    }
    keystate_unref(ks);
}

int serve_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >>
                24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}
