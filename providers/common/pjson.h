/*
 * providers/common/pjson.h: small JSON and text helpers shared by the
 * provider plugins (json-c lookups, strict parsing, option values, error
 * snippets, float vectors).
 *
 * They live in the static library llmux_oai next to the OpenAI-shape codec
 * (oai.h includes this header), so plugins with their own wire shapes
 * (Ollama, Aleph Alpha's native endpoints) use the same pieces as the
 * codec. Their prefix is llmux_pj_ ("plugin JSON"), not the codec's
 * llmux_oai_: they belong to no one wire format. Nothing here does I/O;
 * host-table calls go through `h`.
 */
#ifndef LLMUX_PROVIDERS_PJSON_H
#define LLMUX_PROVIDERS_PJSON_H

#include <stddef.h>
#include <stdint.h>

#include <llmux/sys/provider.h>

#include <json-c/json.h>

/* ---- text ---------------------------------------------------------------- */

/** True when a and b are equal ignoring ASCII case. */
int llmux_pj_caseeq(const char *a, const char *b);

/** An option's boolean value: 1 for 1/true/yes/on, 0 for 0/false/no/off
 * (any case), -1 for anything else or NULL. */
int llmux_pj_bool(const char *v);

/**
 * A decimal integer from s[0..n), with an optional sign when `sign` is
 * non-zero, strictly (nothing else, no overflow). Returns 0 or -1.
 */
int llmux_pj_parse_i64(const char *s, size_t n, int sign, int64_t *out);

/** A non-negative decimal integer, the whole string: 0, or -1 when `s`
 * is NULL, empty or anything else. */
int llmux_pj_parse_uint(const char *s, int64_t *out);

/** Skips leading and trailing JSON whitespace of s[0..*len): returns the
 * new start and sets *len. */
const char *llmux_pj_trim(const char *s, size_t *len);

/** Provider option `key` of a request through the host table, or NULL
 * (also when the host has no option hook). */
const char *llmux_pj_option(const llmux_host *h, const llmux_params *p,
                            const char *key);

/* ---- JSON values --------------------------------------------------------- */

/** Member `key` of `o` when `o` is an object; NULL when absent. */
struct json_object *llmux_pj_get(struct json_object *o, const char *key);
/** A string member (its length in *len when len is non-NULL), or NULL. */
const char *llmux_pj_get_str(struct json_object *o, const char *key,
                             size_t *len);
/** An integer value (a JSON int, or a double holding a whole number):
 * 1 with *out set, else 0. */
int llmux_pj_as_int(struct json_object *v, int64_t *out);
/** Whether v is a JSON number (int or double); NULL is not. */
int llmux_pj_is_number(struct json_object *v);

/** a + b for token counts (both >= 0), saturating at INT64_MAX: a server
 * may send any number. */
int64_t llmux_pj_add_counts(int64_t a, int64_t b);
/** Compact JSON text of any value (no escaped slashes), owned by `v`;
 * NULL when out of memory. */
const char *llmux_pj_text(struct json_object *v, size_t *len);

/** Sets member `key` (copied) of obj to `v`, which it owns; NULL v means
 * out of memory. Returns 0 or LLMUX_ENOMEM. */
int llmux_pj_set(struct json_object *obj, const char *key,
                 struct json_object *v);
/** Appends string `s` to array `arr`. Returns 0 or LLMUX_ENOMEM. */
int llmux_pj_push_str(struct json_object *arr, const char *s);
/** A new object appended to array `arr` (which owns it), or NULL when
 * out of memory. */
struct json_object *llmux_pj_push_object(struct json_object *arr);
/** A new array of the n strings v (NULL items as ""), or NULL when out of
 * memory. */
struct json_object *llmux_pj_str_array(const char *const *v, size_t n);

/**
 * Adds a double as a JSON number in the fewest significant digits that
 * read back as the same double ("0.7", not "0.69999999999999996"; 0.1 +
 * 0.2 as "0.30000000000000004"), independent of the C locale: the host's
 * format_number (17 digits with a core that lacks it).
 * Returns 0, LLMUX_EINVAL for NaN/infinity, or LLMUX_ENOMEM.
 */
int llmux_pj_add_double(const llmux_host *h, struct json_object *obj,
                        const char *key, double v);

/**
 * Copies a JSON array of numbers into *buf (grown with h->realloc, *cap
 * its size in floats) and sets *n. Returns 0, LLMUX_EPROTO when `arr` is
 * not an array of numbers, or LLMUX_ENOMEM.
 */
int llmux_pj_floats(const llmux_host *h, struct json_object *arr, float **buf,
                    size_t *cap, size_t *n);

/* ---- parsing ------------------------------------------------------------- */

/* A strict json_tokener with the given nesting depth (caller frees). */
json_tokener *llmux_pj_tokener(int depth);

/*
 * Tokeners lent for one parse. llmux_pj_parse resets its tokener first, so
 * nothing carries over between parses and neither a request nor a stream
 * needs a tokener of its own: each module keeps one spare per depth (a
 * handful of depths) under a mutex, since clients on several threads share
 * a plugin. 10,000 streams in flight then hold no tokener at all between
 * events, and a plain request allocates none.
 *
 * llmux_pj_tok_take returns the spare of `depth` or a new tokener (NULL
 * when out of memory); llmux_pj_tok_give hands it back (NULL is ignored;
 * one more than the spare is freed); llmux_pj_tok_drain frees the spares
 * (from the provider's teardown: a module unloaded later would leak them).
 */
json_tokener *llmux_pj_tok_take(int depth);
void llmux_pj_tok_give(json_tokener *tok, int depth);
void llmux_pj_tok_drain(void);

/**
 * Parses exactly one JSON value from s[0..len) (trailing whitespace
 * allowed) with `tok` (reset first). Returns 0 and *out (caller puts it;
 * NULL for JSON null), or LLMUX_EPROTO for invalid or truncated input.
 */
int llmux_pj_parse(struct json_tokener *tok, const char *s, size_t len,
                   struct json_object **out);

/**
 * Parses JSON text the user gave for field `what` of a request, with
 * *tok (taken with llmux_pj_tok_take(depth) on first use; the caller
 * gives it back). Returns
 * 0 and *out (NULL for JSON null), LLMUX_ENOMEM, or LLMUX_EINVAL after
 * logging "<name>: invalid JSON in <what>".
 */
int llmux_pj_user_json(const llmux_host *h, const char *name,
                       struct json_tokener **tok, int depth, const char *text,
                       const char *what, struct json_object **out);

/** Serialises `body` (llmux_pj_text) as the request body. Returns 0 or
 * an llmux code. */
int llmux_pj_http_json(const llmux_host *h, llmux_http_request *http,
                       struct json_object *body);

/**
 * A zeroed per-request state of `size` bytes (free it with h->free). NULL
 * when out of memory, after set_error "<name>: out of memory".
 */
void *llmux_pj_state_new(const llmux_host *h, llmux_out *out, const char *name,
                         size_t size);

/* ---- errors -------------------------------------------------------------- */

/* Longest excerpt of a bad body quoted in error messages. */
#define LLMUX_PJ_SNIPPET 80
/*
 * Writes at most LLMUX_PJ_SNIPPET bytes of `s` into buf (which holds
 * LLMUX_PJ_SNIPPET + 8 bytes), control bytes as spaces, never cutting a
 * UTF-8 sequence, "..." when cut; "(empty)" for no bytes. Returns buf.
 */
const char *llmux_pj_snippet(char *buf, const char *s, size_t len);

/** Sets LLMUX_EPROTO with "<name>: <what>: <snippet of s>"; returns
 * LLMUX_EPROTO. */
int llmux_pj_proto(const llmux_host *h, llmux_out *out, const char *name,
                   const char *what, const char *s, size_t len);

/**
 * Recognises an error object in a parsed body ({"error":{..}},
 * {"error":"text"}, flat {"message":..}, {"detail":..}) and emits it with
 * out_provider_error. Returns 1 when one was found, 0 when not, or a
 * negative code from the host.
 */
int llmux_pj_put_error(const llmux_host *h, llmux_out *out,
                       struct json_object *root);

/** The provider's error inside a 2xx body or a stream event/line `s`:
 * llmux_pj_put_error, else a snippet of `s` as the message. Returns
 * LLMUX_EPROVIDER, or a negative code from the host. */
int llmux_pj_body_error(const llmux_host *h, llmux_out *out,
                        struct json_object *root, const char *s, size_t len);

/**
 * llmux_provider.classify_error for providers whose errors say "context
 * length" in their code or text (OpenAI's context_length_exceeded,
 * Mistral's, Ollama's and vLLM's messages): LLMUX_ERROR_KIND_CONTEXT_LENGTH
 * for those, LLMUX_ERROR_KIND_OTHER for the rest.
 */
int llmux_pj_classify_error(void *provctx, long status, const char *type,
                            const char *code, const char *message);

#endif /* LLMUX_PROVIDERS_PJSON_H */
