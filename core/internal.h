/*
 * core/internal.h: declarations shared by the core's translation units and
 * by the unit tests (which link the static core library). Nothing here is
 * exported from libllmux; names use the llmux__ prefix.
 */
#ifndef LLMUX_CORE_INTERNAL_H
#define LLMUX_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include <llmux/llmux.h>
#include <llmux/sys/provider.h>

struct json_object;

#define LLMUX__ERRBUF 256
/* Room for messages that list directories (provider not found). */
#define LLMUX__MSGBUF 2048

/* ---- alloc.c: allocation and small string helpers ------------------------ */

void *llmux__malloc(size_t n);
void *llmux__calloc(size_t n, size_t m);
void *llmux__realloc(void *p, size_t n);
void llmux__free(void *p);
char *llmux__strdup(const char *s); /* NULL -> NULL */
/* Frees an array of n owned strings and the array (NULL, 0: nothing). */
void llmux__strv_free(char **v, size_t n);
char *llmux__strndup(const char *s, size_t n); /* always NUL-terminates */
char *llmux__asprintf(const char *fmt, ...) LLMUX_PRINTF(1, 2);
int llmux__strcaseeq(const char *a, const char *b); /* ASCII, NULL-safe */
/* The first alen bytes of a, then b and c (either may be NULL), in one
 * allocation: the hot path's cheap alternative to asprintf. */
char *llmux__concat(const char *a, size_t alen, const char *b, const char *c);
/* snprintf into buf (NULL/0 allowed); returns code, for one-line errors */
int llmux__seterr(char *buf, size_t len, int code, const char *fmt, ...)
    LLMUX_PRINTF(4, 5);

/* Growable byte buffer, always NUL-terminated once non-empty. */
typedef struct llmux__buf {
    char *p;
    size_t len, cap;
} llmux__buf;
int llmux__buf_append(llmux__buf *b, const char *s, size_t n);
int llmux__buf_printf(llmux__buf *b, const char *fmt, ...) LLMUX_PRINTF(2, 3);
void llmux__buf_reset(llmux__buf *b); /* len = 0, keeps memory */
void llmux__buf_free(llmux__buf *b);

/* ---- text.c: UTF-8 repair, secret masking, numbers ---------------------- */

/* The length of the longest well-formed UTF-8 prefix of s[0..n). */
size_t llmux__utf8_valid(const char *s, size_t n);
/* Appends s[0..n) with each ill-formed sequence replaced by U+FFFD. */
int llmux__buf_append_utf8(llmux__buf *b, const char *s, size_t n);
/* strndup with ill-formed UTF-8 replaced by U+FFFD. */
char *llmux__strndup_utf8(const char *s, size_t n);
/* Replaces the message in *slot with a UTF-8 copy of msg (NULL clears);
 * without memory, *slot is cleared. */
void llmux__set_msg(char **slot, const char *msg);
/* Replace *dst with a copy of s[0..len) (set_text: as valid UTF-8, U+FFFD
 * for ill-formed sequences). 0 or LLMUX_ENOMEM (then *dst is kept). */
int llmux__set_str(char **dst, const char *s, size_t len);
int llmux__set_text(char **dst, const char *s, size_t len);

/* Keys shorter than this are masked only where a credential is written
 * (after "Bearer", "api_key=", "x-api-key:", in a URL's userinfo): a short
 * "key" such as "ollama" or "t" is also an ordinary word. */
#define LLMUX__SECRET_MIN 8
/* A copy of text with the secret masked as "***" wherever it can be the
 * key: everywhere when it is LLMUX__SECRET_MIN bytes or longer, else only
 * as a whole word where a credential is written. NULL on out of memory. */
char *llmux__mask(const char *text, const char *secret);
/* llmux__mask on a heap string, replaced in place. */
void llmux__mask_in(char **s, const char *secret);

/* v in the fewest significant digits that read back as v (as a float when
 * single), '.' as the radix in every locale; -1 for NaN, infinities or
 * cap < 32. */
int llmux__fmt_number(char *buf, size_t cap, double v, int single);

/* ---- config.c: config strings -------------------------------------------- */

/*
 * A parsed config string. Keys are lower-cased; values are unquoted
 * ("{a;b}" -> "a;b"). `opts` holds every key=value pair except provider
 * and model, in the order written; a later duplicate replaces an earlier
 * one. All strings are owned.
 */
typedef struct llmux__config {
    char *provider;
    char *model; /* may be NULL ("ollama" alone, for models listing) */
    llmux_kv *opts;
    size_t n_opts;
} llmux__config;

/*
 * Parses `spec`. Short form "provider/model" or "provider:model" (split at
 * the first '/' or ':'), then ";key=value" pairs; or the long form
 * "provider=x;model=y;...". On error returns LLMUX_ECONFIG and writes a
 * message naming the bad part into err; *out is left empty.
 */
int llmux__config_parse(const char *spec, llmux__config *out, char *err,
                        size_t errlen);
/* Limits of a config string (specs may come from request JSON or batch
 * lines): its length in bytes and its number of key=value options. */
#define LLMUX__CONFIG_MAX_LEN  65536
#define LLMUX__CONFIG_MAX_OPTS 256
void llmux__config_free(llmux__config *c);
/* Value for key (case-insensitive), or NULL. */
const char *llmux__config_get(const llmux__config *c, const char *key);
/* Sets (replaces) key=value; key is lower-cased. */
int llmux__config_set(llmux__config *c, const char *key, const char *value);
int llmux__config_copy(llmux__config *dst, const llmux__config *src);
/* Does the name k[0..n) end in key, token, secret or password (any case),
 * as the names of credentials do (api_key, OPENAI_API_KEY, AA_TOKEN,
 * db_password)? Config keys, variables and header names alike. */
int llmux__secret_name(const char *k, size_t n);
/* The user:password of a URL in s[0..n) (scheme://user:pass@host/...):
 * sets [*a, *b) and returns 1; 0 when there is none (*a, *b untouched). */
int llmux__url_userinfo(const char *s, size_t n, size_t *a, size_t *b);
/* A copy of `url` to show (in a log line or an error): everything from
 * its "://" to its last '@' becomes "***", so that a password is hidden
 * even when it holds a '/', '?' or '#' the URL's grammar would end it at
 * (the caller frees it; NULL when out of memory). */
char *llmux__url_masked(const char *url);

/* ---- framer.c: incremental SSE and NDJSON splitting ---------------------- */

/* Receives one event; return non-zero to stop feeding (returned as is). */
typedef int (*llmux__event_fn)(void *userdata, const llmux_event *ev);

/*
 * Incremental framer. Fed whatever byte chunks arrive, it emits complete
 * events in linear time (each byte is examined once). SSE follows the
 * WHATWG rules: "field: value" or "field:value" lines, `data` lines joined
 * with "\n", `event`/`id` fields, ':' comments, and LF, CRLF or CR line
 * ends (also split across chunks); a blank line dispatches an event with
 * data. NDJSON emits each non-blank line (CRLF tolerated). Buffers grow
 * lazily and no event may exceed max_event bytes (LLMUX_ETOOBIG).
 */
typedef struct llmux__framer {
    int kind;         /* LLMUX_FRAMING_SSE or LLMUX_FRAMING_NDJSON */
    size_t max_event; /* bytes */
    llmux__buf line;  /* current incomplete line */
    llmux__buf data;  /* SSE: data of the event being assembled */
    llmux__buf event; /* SSE: event name */
    llmux__buf id;    /* SSE: last event id */
    int has_data;     /* SSE: a data field was seen in this event */
    int skip_lf;      /* previous chunk ended with CR: drop a leading LF */
    int bom_checked;  /* leading UTF-8 BOM handled */
} llmux__framer;

/* The cap on one event (and on any one line, comments and event:/id:
 * lines included) when none is given: 4 MiB. */
#define LLMUX__MAX_EVENT_DEFAULT (4u * 1024u * 1024u)
/* max_event 0 means LLMUX__MAX_EVENT_DEFAULT: there is always a cap. */
void llmux__framer_init(llmux__framer *f, int kind, size_t max_event);
/* Returns 0, LLMUX_ETOOBIG, LLMUX_ENOMEM, or the callback's non-zero. */
int llmux__framer_feed(llmux__framer *f, const char *p, size_t n,
                       llmux__event_fn fn, void *userdata);
/*
 * As framer_feed, but an event callback may return LLMUX__FRAMER_STOP: the
 * framer stops right after that event's line and returns it, with *used
 * the bytes of p it consumed (the rest is to be fed again later, in
 * order). *used is n for any other return.
 */
#define LLMUX__FRAMER_STOP 1
int llmux__framer_feed_part(llmux__framer *f, const char *p, size_t n,
                            llmux__event_fn fn, void *userdata, size_t *used);
/*
 * At end of input. NDJSON: emits a final line that lacks its newline.
 * SSE: a pending event without its blank line is dispatched as well (many
 * servers omit the final blank line). Returns as framer_feed.
 */
int llmux__framer_finish(llmux__framer *f, llmux__event_fn fn, void *userdata);
/* True if bytes of an incomplete event are buffered. */
int llmux__framer_pending(const llmux__framer *f);
void llmux__framer_free(llmux__framer *f);

/* ---- the loader: provider registry and plugin loading ------------------- */
/* registry.c: llmux__provider_get, llmux__providers_cleanup; module.c:
 * llmux__provider_check; descriptor.c: llmux__descriptor_parse. The
 * loader's other parts and what they share are in core/loader.h. */

/* A resolved provider: a module plus the name and defaults it is used
 * under (a descriptor may map "groq" onto module "openai"). Lives until
 * llmux__providers_cleanup(). */
typedef struct llmux__provider {
    char *name;       /* name in config strings */
    char *module;     /* module name */
    char *path;       /* module file, or "built-in" */
    char *descriptor; /* descriptor file, or NULL */
    const llmux_provider *vt;
    void *provctx;
    char *base_url;     /* descriptor's, else vt->default_base_url */
    char *api_key_env;  /* descriptor's, else vt's (may be NULL) */
    char *base_url_env; /* descriptor's, else vt's (may be NULL) */
    llmux_kv *opts;     /* descriptor's other keys (provider options) */
    size_t n_opts;
    void *handle; /* lt_dlhandle, or NULL for built-ins */
} llmux__provider;

/*
 * Resolves `name` (see llmux/providers.h for the search order; extra_dirs
 * is the client's plugin_path, may be NULL). Thread-safe; the result is
 * cached per name for the process. On failure returns the code and writes
 * the reason (for "not found": every directory searched).
 */
int llmux__provider_get(const char *name, const char *extra_dirs,
                        const llmux__provider **out, char *err, size_t errlen);
/* Validates a provider table (ABI, size, required hooks). */
int llmux__provider_check(const llmux_provider *vt, const char *what, char *err,
                          size_t errlen);
void llmux__providers_cleanup(void);
/*
 * Parses descriptor text text[0..len) (the ".conf" syntax; may hold any
 * bytes) as the loader parses the file `path` (named in messages). On
 * success *module is the module it names (llmux__free) and *n_opts the
 * number of provider options; otherwise returns LLMUX_ECONFIG (or
 * LLMUX_ENOMEM) with the reason in err.
 */
int llmux__descriptor_parse(const char *path, const char *text, size_t len,
                            char **module, size_t *n_opts, char *err,
                            size_t errlen);

/* ---- response.c: the response model (responses, chunks, JSON) ----------- */

/* Tool calls per response or stream: out_tool_call refuses an index from
 * here on with LLMUX_EPROTO (no model makes that many calls at once, and
 * each chunk's calls are found in the stream's by a linear search). */
#define LLMUX__MAX_TOOL_CALLS 1024

typedef struct llmux__call_slot {
    llmux_tool_call pub; /* pointers into the fields below */
    char *id;
    char *name;
    llmux__buf args;
} llmux__call_slot;

typedef struct llmux__vec {
    float *v;
    size_t n;
    int index; /* input position the provider gave */
} llmux__vec;

typedef struct llmux__token {
    char *text; /* may be NULL */
    int64_t id; /* -1 when unknown */
} llmux__token;

typedef struct llmux__model {
    char *id;
    char *owned_by;
    int64_t created;
} llmux__model;

/* Choices per response: out_choice refuses an index from here on with
 * LLMUX_EPROTO (OpenAI allows n up to 128; choices are found by a linear
 * search). */
#define LLMUX__MAX_CHOICES 1024

/* One token of a logprobs list; its strings are owned (cast) and pub.top
 * points at `top`. */
typedef struct llmux__lp {
    llmux_logprob pub;
    llmux_logprob *top; /* alternatives, their token and bytes owned */
    size_t cap_top;
} llmux__lp;

typedef struct llmux__lp_list {
    llmux__lp *v;
    size_t n, cap;
    int set; /* reported by the provider (even empty) */
} llmux__lp_list;

/* A choice (choice.c); the public llmux_choice. */
/* The strings of accumulated fields that grow along a stream: each one's
 * bytes gather in a buffer (its json-c userdata), written into it once by
 * llmux__extra_flush. json-c copies a whole string whenever it is set, so
 * appending each delta to it made a long streamed string (audio's base64
 * data) quadratic. */
typedef struct llmux__xgrow {
    struct json_object **v; /* a reference each */
    size_t n, cap;
} llmux__xgrow;

struct llmux_choice {
    int index;
    llmux__buf text;
    llmux__buf reasoning;
    llmux__buf refusal;
    int finish;
    char *finish_raw;
    llmux__call_slot *calls;
    size_t n_calls, cap_calls;
    llmux__lp_list lp[2];         /* LLMUX_LOGPROBS_CONTENT, _REFUSAL */
    struct json_object *extra[2]; /* fields not modelled: the choice's and
                                     its message's (extra.c) */
    llmux__xgrow grow; /* extra[1]'s strings growing along a stream */
    int first;         /* a chunk's: the stream's first piece of this choice, so
                          its OpenAI delta names the role (deliver.c sets it) */
};
#define LLMUX__X_CHOICE  0
#define LLMUX__X_MESSAGE 1

/* What a decoder builds: a whole response or one stream chunk. */
struct llmux_out {
    int is_chunk;
    int op;
    char *id;
    char *model;
    char *fingerprint;
    int64_t created;
    /* choices in index order; slots up to cap_choices may keep buffers
     * from an earlier use (a chunk is reused for every event) */
    struct llmux_choice *choices;
    size_t n_choices, cap_choices;
    int cur;                         /* out_choice: where fields go */
    struct json_object *extra_top;   /* top-level fields not modelled */
    struct json_object *extra_usage; /* usage members not modelled */
    llmux_usage usage;
    int has_usage;
    llmux__vec *embs;
    size_t n_embs, cap_embs;
    llmux__model *models;
    size_t n_models, cap_models;
    llmux__token *tokens;
    size_t n_tokens, cap_tokens;
    char *result_json;     /* provider's result object (evaluate) */
    struct llmux_job *job; /* a job step's answer (job_str, job_int),
                              created on first use */
    /* errors reported by the decoder */
    int err_code; /* set_error / out_provider_error, 0 if none */
    char *err_type, *err_pcode, *err_param, *err_msg;
};

struct llmux_chunk {
    struct llmux_out o;
    const struct llmux_out *acc; /* the stream so far: id/model fallback */
    const char *raw;             /* the event, during the chunk callback */
    size_t raw_len;
    int cached; /* replayed from the response cache (cache.c) */
};

struct llmux_response {
    struct llmux_out o;
    int refs;
    char *provider;
    long http_status;
    int attempts;
    int fallback; /* 0, or which fallback answered */
    int has_error;
    llmux_error err;   /* pub view; strings point into o.err_* or below */
    char *err_message; /* owned final message */
    char *raw;         /* the last attempt's body as received, or NULL */
    size_t raw_len;
    double cost;    /* USD, from the usage and the client's prices */
    int cost_known; /* a price and a usage were found */
    int cached;     /* answered from the response cache (cache.c) */
};

/* ---- choice.c: choices, their tool calls and logprobs ------------------- */

/* The choice of `index` in o, created in index order when missing; NULL
 * without memory. */
struct llmux_choice *llmux__out_choice(struct llmux_out *o, int index);
/* Empties c; keep: its buffers stay allocated for reuse. */
void llmux__choice_clear(struct llmux_choice *c, int keep);
/* Whether c holds anything: text, a call, a finish, logprobs, a field. */
int llmux__choice_has_content(const struct llmux_choice *c);
/* Folds a chunk's choice into the stream's (text appended, calls merged
 * by index, logprobs appended, fields accumulated). */
int llmux__choice_merge(struct llmux_choice *acc,
                        const struct llmux_choice *ch);
/* The tool-call slot of `index` in c (created in index order), or NULL
 * without memory. */
llmux__call_slot *llmux__choice_slot(struct llmux_choice *c, int index);
/* Sets a slot's id and name (when given) and appends to its arguments. */
int llmux__out_slot_update(llmux__call_slot *s, const char *id, size_t id_len,
                           const char *name, size_t name_len, const char *args,
                           size_t args_len);
/* Appends a token (or with top, an alternative of the last one) to list
 * `list` of c; token NULL only marks the list reported. */
int llmux__choice_logprob(struct llmux_choice *c, int list, const char *token,
                          size_t len, double logprob,
                          const unsigned char *bytes, size_t n_bytes, int top);

/* ---- extra.c: fields the common shape does not model -------------------- */

/* Keeps `key` = json[0..len) (one JSON value) in the object *slot
 * (created). LLMUX_EINVAL for bad JSON, LLMUX_ENOMEM. */
int llmux__extra_set(struct json_object **slot, const char *key,
                     const char *json, size_t len);
/* Folds the fields of `from` into *acc: with `grow` (choice and message
 * fields of a stream: accumulate) appends strings (into grow's buffers)
 * and arrays and merges objects; without, each key is replaced. */
int llmux__extra_merge(struct json_object **acc, struct json_object *from,
                       llmux__xgrow *grow);
/* Writes the gathered strings into their objects and empties `g`: 0, or
 * LLMUX_ENOMEM (the strings that could not be written keep what they had
 * before the stream grew them). */
int llmux__extra_flush(llmux__xgrow *g);
/* Adds to `ours` (a JSON object being written) each field of `extra` it
 * lacks, and recursively into objects both have: the core's values win. */
void llmux__extra_under(struct json_object *ours, struct json_object *extra);
/* The JSON text of `key` in extra, or NULL; borrowed from extra. */
const char *llmux__extra_get(struct json_object *extra, const char *key);
/* Frees *slot; NULL after. */
void llmux__extra_free(struct json_object **slot);

/* ---- prices.c: what answers cost ---------------------------------------- */

/* USD per 1,000,000 tokens. */
typedef struct llmux__price {
    double input, cached_input, output;
} llmux__price;
typedef struct llmux__prices llmux__prices;

/* Parses a price table (data/prices.json's format) from json[0..len):
 * 0 and *out, or LLMUX_ECONFIG with the reason in err, LLMUX_ENOMEM. */
int llmux__prices_load(const char *json, size_t len, llmux__prices **out,
                       char *err, size_t errlen);
void llmux__prices_free(llmux__prices *t);
/* The compiled-in table (NULL if it did not load). Thread-safe. */
const llmux__prices *llmux__prices_builtin(void);
/* The price of provider's model in t (exact name, longest "name-" prefix,
 * or "*"): 1 and *out, or 0. */
int llmux__price_find(const llmux__prices *t, const char *provider,
                      const char *model, llmux__price *out);
/* USD for usage u at price p (cached prompt tokens at cached_input). */
double llmux__cost(const llmux__price *p, const llmux_usage *u);

/* ---- response.c --------------------------------------------------------- */

void llmux__out_init(struct llmux_out *o, int op, int is_chunk);
void llmux__out_reset(struct llmux_out *o); /* empties, keeps buffers */
void llmux__out_free(struct llmux_out *o);
/* Folds a stream chunk into the accumulated response. */
int llmux__out_merge(struct llmux_out *acc, const struct llmux_out *chunk);
/* Writes the strings a stream grew into acc's fields (llmux__xgrow): once,
 * when the stream ended, before anyone reads them. 0 or LLMUX_ENOMEM. */
int llmux__out_flush(struct llmux_out *acc);

/* The total token count: the reported one, else prompt + completion
 * (the known ones, at most LONG_MAX). */
long llmux__usage_total(const llmux_usage *u);

llmux_response *llmux__response_new(int op, const char *provider);
/* Records the final error on `res` (message copied; never the key). */
void llmux__response_fail(llmux_response *res, int code, long http_status,
                          int transport, const char *message);

/* Masks `key` (llmux__mask) in the error of `res`: message, type, code
 * and param. */
void llmux__response_mask(llmux_response *res, const char *key);

/* ---- host.c: the host table, the plugins' side of the boundary --------- */

/* The host table the core hands to plugins. */
extern const llmux_host llmux__host;

/* Where plugin log lines go while the core calls into a plugin. */
typedef struct llmux__log_target {
    char **errmsg;      /* error lines replace *errmsg (may be NULL) */
    const char *secret; /* the API key of the call: masked (may be NULL) */
    llmux_log_cb log;   /* client hook (may be NULL) */
    void *log_ud;
    int log_level;
} llmux__log_target;
/* Sets the target for this thread; returns the previous one. */
llmux__log_target llmux__log_target_swap(llmux__log_target t);
/* While the core calls into a plugin whose key is `secret`: the current
 * target's hook, with error lines kept in *errmsg (a string the caller
 * frees; errmsg may be NULL) and the key masked. Returns the previous
 * target, to be swapped back. */
llmux__log_target llmux__log_target_call(char **errmsg, const char *secret);
/* Plugin log lines, masked, to the current target (host->log). */
void llmux__vlog_plugin(int level, const char *fmt, va_list ap);

struct llmux_http_request {
    char *method;
    char *path;
    char **headers; /* "Name: value" */
    size_t n_headers;
    char *body;
    size_t body_len;
    int framing;
};
void llmux__http_free(struct llmux_http_request *h);

/* ---- client.c ------------------------------------------------------------ */

/* Copies a caller's options (NULL: the defaults) into a whole struct of
 * this version, reading no field past the caller's version; LLMUX_EINVAL
 * for an unknown version. */
int llmux__client_options_copy(llmux_client_options *dst,
                               const llmux_client_options *src);

/* ---- request.c (request_json.c: the JSON import, on top of it) ----------- */

struct llmux__xfer; /* the engine's per-request state (client.c) */

/*
 * The plain fields of a request, described once. The struct's members,
 * llmux_request_free, llmux_request_dup, the params handed to plugins
 * (call.c) and the checks of tests/unit/test_request.c all come from this
 * list, so a field cannot be stored and then forgotten by dup, by the
 * plugins or by the JSON import.
 * - SCALAR(type, name, json, to, pname): copied by value;
 * - STR(name, json, to, pname): an owned string or NULL;
 * - STRV(name, count, json, to, pname, pcount): an owned array of owned
 *   strings and its length.
 * json: the key of OpenAI request JSON that sets it (request_json.c's
 * import_json), "*" for every key no other field takes, NULL for none.
 * to: PLUGIN, handed to plugins as llmux_params' `pname` (and `pcount`),
 * or ENGINE, read by the core only (pname is then `none`).
 * Messages, token ids and the config string are kept by hand below (one
 * each, with their own shapes).
 */
#define LLMUX__REQUEST_FIELDS(SCALAR, STR, STRV)                               \
    /* LLMUX_HAS_*: which optional numbers are set (with their keys) */        \
    SCALAR(unsigned, has, "max_tokens", PLUGIN, has)                           \
    SCALAR(int64_t, max_tokens, "max_tokens", PLUGIN, max_tokens)              \
    SCALAR(double, temperature, "temperature", PLUGIN, temperature)            \
    SCALAR(double, top_p, "top_p", PLUGIN, top_p)                              \
    SCALAR(int64_t, seed, "seed", PLUGIN, seed)                                \
    SCALAR(int, stream, "stream", PLUGIN, stream)                              \
    SCALAR(long, timeout_ms, NULL, ENGINE, none) /* 0 = client default */      \
    SCALAR(long, connect_timeout_ms, NULL, ENGINE, none)                       \
    SCALAR(long, first_byte_timeout_ms, NULL, ENGINE, none)                    \
    SCALAR(long, idle_timeout_ms, NULL, ENGINE, none)                          \
    SCALAR(int, max_retries, NULL, ENGINE, none) /* -1 = client default */     \
    SCALAR(double, budget_usd, NULL, ENGINE, none) /* with budget_scope */     \
    STR(budget_scope, NULL, ENGINE, none) /* budget.c: charged to it too */   \
    SCALAR(long, budget_window_ms, NULL, ENGINE, none) /* its window */        \
    STR(tools_json, "tools", PLUGIN, tools_json)                               \
    STR(tool_choice_json, "tool_choice", PLUGIN, tool_choice_json)             \
    STR(response_format_json, "response_format", PLUGIN, response_format_json) \
    STR(prompt, NULL, PLUGIN, prompt)                                          \
    STR(suffix, NULL, PLUGIN, suffix)                                          \
    /* request JSON keys no field models, as JSON */                           \
    STR(extra_json, "*", PLUGIN, extra_json)                                   \
    STR(expected, NULL, PLUGIN, expected) /* evaluate */                       \
    STRV(stops, n_stops, "stop", PLUGIN, stop, n_stop)                         \
    STRV(inputs, n_inputs, NULL, PLUGIN, input, n_input)                       \
    STRV(headers, n_headers, NULL, ENGINE, none, none)                         \
    /* config strings to try next, in order */                                 \
    STRV(fallbacks, n_fallbacks, NULL, ENGINE, none, none)

/* LLMUX__IF_PLUGIN(code) is the code, LLMUX__IF_ENGINE(code) nothing: for
 * the `to` column of LLMUX__REQUEST_FIELDS. */
#define LLMUX__IF_PLUGIN(...) __VA_ARGS__
#define LLMUX__IF_ENGINE(...)

#define LLMUX__REQ_DECL_SCALAR(type, name, json, to, pname) type name;
#define LLMUX__REQ_DECL_STR(name, json, to, pname)          char *name;
#define LLMUX__REQ_DECL_STRV(name, count, json, to, pname, pcount)             \
    char **name;                                                               \
    size_t count;

struct llmux_request {
    int op;
    llmux__config cfg; /* provider, model, options (from the spec) */
    char *errmsg;      /* why the last failing call failed, or NULL */
    llmux_msg *msgs;
    size_t n_msgs, cap_msgs;
    int64_t *token_ids; /* detokenize */
    size_t n_token_ids;
    LLMUX__REQUEST_FIELDS(LLMUX__REQ_DECL_SCALAR, LLMUX__REQ_DECL_STR,
                          LLMUX__REQ_DECL_STRV)
    size_t next_fallback; /* engine: fallbacks used so far */
    llmux_kv *popts;      /* provider options handed to the plugin */
    size_t n_popts;
    llmux_params params; /* the view handed to the plugin */
    /* engine */
    struct llmux__xfer *x;       /* non-NULL while submitted */
    uint64_t serial;             /* llmux_submit's number for it: a cancel
                                    handed over matches it */
    llmux_job_step *job;         /* LLMUX__OP_JOB: the step (jobs.c), owned */
    struct llmux_client *client; /* the client it was last submitted to
                                    (set by llmux_submit on any thread:
                                    where a cancel goes) */
    void *userdata;
};

/* ---- jobs.c: provider batch jobs ---------------------------------------- */

/* The operation of a job step's request: not an llmux_op (the public
 * enum never shows it), so llmux_request_new() refuses it. */
#define LLMUX__OP_JOB 100

struct llmux_job {
    char *id, *state_raw, *input_file, *output_file, *error_file, *model,
        *endpoint, *errors;
    int state;
    int64_t total, completed, failed, created, finished;
    llmux__buf content;
    int has_content; /* a content step answered */
};
/* jobinfo.c: the job o decodes into, created on first use (NULL without
 * memory); freeing one. */
struct llmux_job *llmux__out_job(struct llmux_out *o);
void llmux__job_free(struct llmux_job *j);

/* The depth of llmux user callbacks running on this thread (adds delta,
 * returns the new depth): the blocking calls refuse to run inside one. */
int llmux__callback_depth(int delta);

/* Whether s may name a budget scope: 1..128 printable ASCII, no space
 * (request.c). */
int llmux__budget_name_ok(const char *s);
/* Replaces req->errmsg with a copy of msg (NULL clears it). */
void llmux__request_seterr(llmux_request *r, const char *msg);
/* Sets req->errmsg from the format and returns `code`. */
int llmux__request_fail(llmux_request *r, int code, const char *fmt, ...)
    LLMUX_PRINTF(3, 4);
/* Frees the provider options handed to the plugin (req->popts). */
void llmux__request_free_popts(llmux_request *r);
/* The next message slot of r (r->msgs[r->n_msgs]: zeroed, with role),
 * growing the array; NULL without memory. The caller fills it, then counts
 * it (r->n_msgs++) or frees what it filled (llmux__request_free_msg). */
llmux_msg *llmux__request_new_msg(llmux_request *r, int role);
/* Frees what a message owns (not m itself). */
void llmux__request_free_msg(llmux_msg *m);

struct json_object;
/* o as compact JSON text (no escaped slashes), owned; NULL without
 * memory. */
char *llmux__request_json_text(struct json_object *o);
/* s[0..len) parsed as one JSON value (only whitespace may follow), or NULL
 * when it does not parse. */
struct json_object *llmux__request_parse_json(const char *s, size_t len);

/* ---- settings.c: the core's settings, described once -------------------- */

/*
 * Every setting the core reads, once: X(type, name, key, check, dflt, req,
 * opt, stage).
 * - type: how the effective value is kept (LLMUX__ST_<type> below): STR a
 *   string, MS a duration in ms (0 = none), INT an int, RATE a double, FLAG
 *   0 or 1;
 * - name: the member of llmux__settings; key: the config-string key;
 * - check: how a config-string value is checked when it is set
 *   (LLMUX__CHECK(kind, min, max, words, wants), see settings.c);
 * - dflt: the built-in default;
 * - req: the llmux_request member its setter fills (REQ(member): 0 or less
 *   for MS, below 0 for INT, means not set), or NOREQ;
 * - opt: the llmux_client_options member (OPT(member, version): read when
 *   the caller's options have that version; 0 or less, NULL or below 0 for
 *   INT mean not set), or NOOPT;
 * - stage: where the engine acts on it.
 * llmux__settings_resolve() gives a request its effective settings: the
 * request's setter, then its config string, then its provider's
 * descriptor, then the client's options, then the default. Adding a setting is
 * a row here and the code that acts on it.
 */
#define LLMUX__SETTINGS(X)                                                     \
    X(STR, base_url, "base_url", LLMUX__CHECK(ANY, 0, 0, NULL, NULL), 0,       \
      NOREQ, NOOPT, "prepare (call.c): the provider's URL")                    \
    X(STR, api_key, "api_key", LLMUX__CHECK(ANY, 0, 0, NULL, NULL), 0, NOREQ,  \
      NOOPT, "prepare: the key itself")                                        \
    X(STR, api_key_env, "api_key_env", LLMUX__CHECK(ANY, 0, 0, NULL, NULL), 0, \
      NOREQ, NOOPT, "prepare: the variable holding the key")                   \
    X(STR, auth, "auth",                                                       \
      LLMUX__CHECK(WORD, 0, 0, llmux__auth_words, "bearer, optional or none"), \
      0, NOREQ, NOOPT, "prepare: whether a key is sent")                       \
    X(MS, timeout_ms, "timeout", LLMUX__CHECK(SECONDS, 0, 0, NULL, "seconds"), \
      0, REQ(timeout_ms), OPT(timeout_ms, 1),                                  \
      "submit (xfer.c): the deadline from submission, fallbacks included")     \
    X(MS, connect_timeout_ms, "connect_timeout",                               \
      LLMUX__CHECK(SECONDS, 0, 0, NULL, "seconds"), 10000,                     \
      REQ(connect_timeout_ms), OPT(connect_timeout_ms, 1),                     \
      "attempt (xfer.c): curl's connect timeout")                              \
    X(MS, first_byte_timeout_ms, "first_byte_timeout",                         \
      LLMUX__CHECK(SECONDS, 0, 0, NULL, "seconds"), 0,                         \
      REQ(first_byte_timeout_ms), OPT(first_byte_timeout_ms, 2),               \
      "attempt: the first-byte watchdog")                                      \
    X(MS, idle_timeout_ms, "idle_timeout",                                     \
      LLMUX__CHECK(SECONDS, 0, 0, NULL, "seconds"), 0, REQ(idle_timeout_ms),   \
      OPT(idle_timeout_ms, 2), "attempt: the idle watchdog")                   \
    X(INT, max_retries, "max_retries",                                         \
      LLMUX__CHECK(INT, 0, 100, NULL, "0..100"), 2, REQ(max_retries),          \
      OPT(max_retries, 1), "retry policy (xfer.c): the retry budget")          \
    X(MS, retry_backoff_ms, "retry_backoff",                                   \
      LLMUX__CHECK(SECONDS, 0, 0, NULL, "seconds"), 500, NOREQ, NOOPT,         \
      "retry policy: the first wait without a Retry-After; doubles")           \
    X(STR, proxy, "proxy", LLMUX__CHECK(ANY, 0, 0, NULL, NULL), 0, NOREQ,      \
      OPT(proxy, 1), "attempt: curl's proxy")                                  \
    X(STR, ca_file, "ca_file", LLMUX__CHECK(ANY, 0, 0, NULL, NULL), 0, NOREQ,  \
      OPT(ca_file, 1), "attempt: the CA bundle")                               \
    X(FLAG, insecure, "insecure", LLMUX__CHECK(INT, 0, 1, NULL, "0 or 1"), 0,  \
      NOREQ, OPT(insecure, 1), "attempt: TLS verification off")                \
    X(RATE, rpm, "rpm",                                                        \
      LLMUX__CHECK(INT, 1, 1000000000L, NULL,                                  \
                   "a positive integer per minute"),                           \
      0, NOREQ, OPT(requests_per_minute, 2),                                   \
      "limits (limits.c): the endpoint's request bucket")                      \
    X(RATE, tpm, "tpm",                                                        \
      LLMUX__CHECK(INT, 1, 1000000000L, NULL,                                  \
                   "a positive integer per minute"),                           \
      0, NOREQ, OPT(tokens_per_minute, 2),                                     \
      "limits: the endpoint's token bucket")                                   \
    X(STR, limits, "limits",                                                   \
      LLMUX__CHECK(REDIS, 0, 0, llmux__local_words,                            \
                   "local or a Redis URL (redis://[:password@]host[:port]"     \
                   "[/db], unix:///path[?db=N])"),                             \
      0, NOREQ, OPT(limits, 7),                                                \
      "limits: the rpm and tpm buckets' backend, in-process or shared")        \
    X(STR, limits_prefix, "limits_prefix",                                     \
      LLMUX__CHECK(KEYPART, 0, 0, NULL,                                        \
                   "letters, digits and ._-: (at most 64)"),                   \
      0, NOREQ, OPT(limits_prefix, 7),                                         \
      "limits: the shared buckets' Redis key prefix (default llmux)")          \
    X(STR, limits_fallback, "limits_fallback",                                 \
      LLMUX__CHECK(WORD, 0, 0, llmux__fallback_words, "closed or local"), 0,   \
      NOREQ, OPT(limits_fallback, 7),                                          \
      "limits: Redis unreachable: fail (closed) or in-process buckets")        \
    X(RATE, budget_usd, "budget_usd",                                          \
      LLMUX__CHECK(USD, 0, 0, NULL,                                            \
                   "a positive amount in USD (12.50, at most 6 decimals)"),    \
      0, NOREQ, NOOPT,                                                         \
      "budget (budget.c): the endpoint and API key's spend limit")             \
    X(MS, budget_window_ms, "budget_window",                                   \
      LLMUX__CHECK(SECONDS, 0, 0, NULL, "seconds (86400: a day)"), 0, NOREQ,   \
      OPT(budget_window_ms, 8),                                                \
      "budget: budget_usd= resets at each multiple of it since the epoch")     \
    X(MS, cache, "cache",                                                      \
      LLMUX__CHECK(CACHE, 0, 0, NULL, "yes, no or a TTL in seconds"), 0,       \
      NOREQ, NOOPT,                                                            \
      "submit (cache.c): answered from the response cache, kept there")        \
    X(STR, cache_backend, "cache_backend",                                     \
      LLMUX__CHECK(REDIS, 0, 0, llmux__lru_words,                              \
                   "lru or a Redis URL (redis://[:password@]host[:port]"       \
                   "[/db], unix:///path[?db=N])"),                             \
      0, NOREQ, OPT(cache_backend, 8),                                         \
      "submit (cache.c): the response cache's store, in-process or shared")

/* The `cache` setting's value besides a TTL in ms: not given (0, the
 * client's cache_all decides), `cache=no`, `cache=yes` (the client's TTL). */
#define LLMUX__CACHE_UNSET 0
#define LLMUX__CACHE_NO    (-1)
#define LLMUX__CACHE_YES   (-2)

#define LLMUX__ST_STR  const char *
#define LLMUX__ST_MS   long
#define LLMUX__ST_INT  int
#define LLMUX__ST_RATE double
#define LLMUX__ST_FLAG int

extern const char *const llmux__auth_words[];
extern const char *const llmux__fallback_words[];
/* CHECK_REDIS's word besides a URL: limits= says local, cache_backend= lru */
extern const char *const llmux__local_words[];
extern const char *const llmux__lru_words[];

/* A request's effective settings. In a client's defaults the strings are
 * the client's own copies; in a resolved request's they are borrowed from
 * its config string or the client, valid while both are unchanged. */
typedef struct llmux__settings {
#define LLMUX__SET_DECL(type, name, key, check, dflt, req, opt, stage)         \
    LLMUX__ST_##type name;
    LLMUX__SETTINGS(LLMUX__SET_DECL)
#undef LLMUX__SET_DECL
} llmux__settings;

/* The defaults a client's options give (strings copied: free them with
 * llmux__settings_free_defaults). Returns 0, LLMUX_ENOMEM, or
 * LLMUX_ECONFIG for a string option its setting's check refuses, with
 * err saying which and why (as llmux__setting_check). */
int llmux__settings_defaults(const llmux_client_options *opts,
                             llmux__settings *out, char *err, size_t errlen);
void llmux__settings_free_defaults(llmux__settings *s);
/* `req`'s effective settings over the core keys among the descriptor's
 * `layer` (n entries; may be NULL), over `defaults` (a client's, or NULL
 * for the built-in ones). */
void llmux__settings_resolve(const llmux_request *req,
                             const llmux__settings *defaults,
                             const llmux_kv *layer, size_t n,
                             llmux__settings *out);
/* Is k a core setting of the config string, not an option for the
 * provider? (any case) */
int llmux__is_core_key(const char *k);
/* Checks a value of a core setting (nothing for other keys) given in
 * `where` ("config string", a descriptor's path): 0, or LLMUX_ECONFIG with
 * a message naming where, the key and what it wants in err. */
int llmux__setting_check(const char *where, const char *key, const char *value,
                         char *err, size_t errlen);

/* The key of setting i, in the table's order; NULL past the last. */
const char *llmux__setting_key(size_t i);
/* Checks that every row's request member and client option have its
 * type's size: 0, or -1 with the row named in err. */
int llmux__settings_selfcheck(char *err, size_t errlen);

/* Parses non-negative decimal seconds ("30", "0.5") into milliseconds
 * without the locale-dependent strtod. Returns 0, or -1 when malformed. */
int llmux__parse_seconds_ms(const char *s, long *ms);

/* SHA-256 of p[0..n) as 64 lower-case hex digits and a NUL in out (text.c).
 * 0, or LLMUX_ENOMEM when OpenSSL cannot make a digest context. */
int llmux__sha256_hex(const void *p, size_t n, char out[65]);

/* ---- call.c: the core calling plugins ------------------------------------ */

/* Everything resolved for sending a request: provider, URL, key. */
typedef struct llmux__prepared {
    const llmux__provider *prov;
    char *url;      /* base_url + path */
    char *api_key;  /* what is sent (may be NULL); never logged */
    char *conf_key; /* cred: the configured key, as api_key= or the
                       environment gave it (may be NULL) */
    int auth;       /* LLMUX_AUTH_* */
    int cred;       /* the client's credential callback picks api_key for
                       each attempt, and the engine sends it */
    struct llmux_http_request http;
    llmux_call call;
    const llmux_job_step *job; /* a job step's (the request's), or NULL */
} llmux__prepared;

/*
 * Resolves the provider of `req`, picks base URL and API key (config
 * string, then environment variables named by descriptor/plugin, then
 * defaults), and encodes the HTTP request. Used by the engine and by tests
 * that check what a plugin sends. On failure writes the reason to the
 * request's errmsg and returns the code. Either way `out` is the
 * caller's to free with llmux__prepared_free (a failure may leave the
 * key or the plugin's call state in it).
 */
int llmux__prepare(llmux_request *req, const char *extra_dirs,
                   llmux__prepared *out);
/* As llmux__prepare, resolving the request's settings into `set` (may be
 * NULL) over `defaults` (a client's; NULL = the built-in ones) and its
 * provider's descriptor, with the client's key_env_allow list
 * (':'-separated variable names api_key_env may name besides
 * credential-like ones). With `cred_cb` (the client has a credential
 * callback) a keyed provider's credential is left to the engine: out->cred
 * is set, the configured key moves to out->conf_key, and a missing one is
 * not an error here. */
int llmux__prepare_ex(llmux_request *req, const llmux__settings *defaults,
                      llmux__settings *set, const char *extra_dirs,
                      const char *key_env_allow, int cred_cb,
                      llmux__prepared *out);
void llmux__prepared_free(llmux__prepared *p);
/* The key the request's lane (rate limits) is counted under: the
 * configured one, whatever a credential callback answers. */
#define llmux__lane_key(p) ((p)->cred ? (p)->conf_key : (p)->api_key)
/* The credential header line for `secret` unless h has that header
 * already: the provider's auth_header ("api-key: SECRET") or
 * "Authorization: Bearer SECRET" (always when `bearer`). 0 with *line (to
 * free with llmux__secret_free) or NULL, or LLMUX_ENOMEM. */
int llmux__auth_line(const llmux__provider *p,
                     const struct llmux_http_request *h, const char *secret,
                     int bearer, char **line);
/* registry.c: whether provider table vt reads option k from a config
 * string (descriptor 0) or a descriptor (1): listed in its options (a
 * descriptor-only one only from a descriptor), or it has no list. */
int llmux__plugin_reads(const llmux_provider *vt, const char *k,
                        int descriptor);
/* "a, b; the core's: c, d": the options vt reads from a config string
 * (descriptor 0) or a descriptor (1), then the core's settings. */
void llmux__options_list(const llmux_provider *vt, int descriptor, char *list,
                         size_t len);
/* Whether h carries a credential header of its own: Authorization, or the
 * provider's auth_header. */
int llmux__has_auth(const llmux__provider *p,
                    const struct llmux_http_request *h);
/* Zeroes and frees a string that held a secret (NULL: nothing). */
void llmux__secret_free(char *s);

/* Decodes a complete HTTP answer of `p` into `res` (success or error). */
int llmux__decode_answer(llmux__prepared *p, long status, const char *ctype,
                         const char *body, size_t len, llmux_response *res);
/* Decodes one stream event into `chunk` (reset first); returns as the
 * plugin's decode_event. */
int llmux__decode_event(llmux__prepared *p, const llmux_event *ev,
                        llmux_chunk *chunk);

/* The kind of a provider error (o's type, code, message) as the plugin's
 * classify_error tells; LLMUX_ERROR_KIND_OTHER when it has no say. */
int llmux__classify_error(const llmux__prepared *p, long status,
                          const struct llmux_out *o);
/* A response's rate-limit headers read by the plugin's rate_limits hook
 * through `header`/`header_ctx` into `rl`: 0, or -1 without the hook. */
int llmux__read_rate_limits(const llmux__prepared *p, long status,
                            const char *(*header)(const llmux_http_response *,
                                                  const char *),
                            void *header_ctx, llmux_rate_limits *rl);

#endif /* LLMUX_CORE_INTERNAL_H */
