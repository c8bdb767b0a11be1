/*
 * core/cache.h: the exact-match response cache's parts that know nothing
 * of the engine: the backend interface (asynchronous, so a networked
 * store such as Redis fits it), the in-process LRU backend, the key and
 * the stored value's encoding. The engine's side (what is looked up,
 * replayed and stored) is in cache.c too, declared in engine.h.
 */
#ifndef LLMUX_CORE_CACHE_H
#define LLMUX_CORE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* A key: SHA-256 of the request's canonical form, as 64 hex digits. */
#define LLMUX__CACHE_KEY_LEN 64

/*
 * What a lookup found: found 1 with the value val[0..len) (borrowed for
 * the call only), found 0 for none, or found < 0 when the backend failed
 * (the request then goes to the provider as on a miss). Called exactly
 * once per get: inside it or later from the loop, and at the latest when
 * the backend is freed (with a failure).
 */
typedef void (*llmux__cache_get_cb)(void *ud, int found, const char *val,
                                    size_t len);

typedef struct llmux__cache_backend llmux__cache_backend;
struct llmux__cache_backend {
    const char *name; /* "lru", "redis": for logs */
    size_t max_val;   /* the largest value put may keep: a stream longer
                         is not even recorded */
    /* Looks `key` (LLMUX__CACHE_KEY_LEN hex digits, NUL-terminated) up. */
    void (*get)(llmux__cache_backend *b, const char *key,
                llmux__cache_get_cb cb, void *ud);
    /* Keeps a copy of val[0..len) under `key` for ttl_ms. 0, or a negative
     * code when it is not kept (too big, no memory, the backend down):
     * nothing is lost but a later hit. */
    int (*put)(llmux__cache_backend *b, const char *key, const char *val,
               size_t len, uint64_t ttl_ms);
    /* Answers the lookups still pending with a failure, then frees b. */
    void (*free)(llmux__cache_backend *b);
};

struct llmux__redis;
/*
 * The Redis backend (cache_redis.c), on the client's one Redis connection
 * r (redis.h; the client owns and frees both, the connection first): get
 * is GET <prefix>:cache:<key>, put is SET of that key with the value as
 * it is (binary-safe) and PX ttl_ms. A value above max_val is not put.
 * A Redis error, a command without a reply in time or no connection is a
 * failure (found < 0 for a get), counted in c's cache_backend_errors and
 * logged once until Redis answers again. NULL without memory.
 */
llmux__cache_backend *llmux__cache_redis_new(struct llmux_client *c,
                                             struct llmux__redis *r,
                                             const char *prefix,
                                             size_t max_val);
/* The prefix b was made with. */
const char *llmux__cache_redis_prefix(const llmux__cache_backend *b);

/* The LRU's clock in ms (monotonic); now(ud). */
typedef uint64_t (*llmux__cache_clock)(void *ud);

/*
 * The in-process LRU backend: at most max_entries entries holding at most
 * max_bytes (values, keys and each entry's bookkeeping counted), the
 * least recently used evicted first; get and put are O(1) (a hash table
 * and a list). An entry past its TTL is a miss and is evicted when looked
 * up, or when it reaches the list's end. `clock` NULL: uv_hrtime(). get
 * answers inside the call. NULL without memory.
 */
llmux__cache_backend *llmux__cache_lru_new(size_t max_bytes, size_t max_entries,
                                           llmux__cache_clock clock,
                                           void *clock_ud);
/* The LRU's entries and bytes now (tests). */
void llmux__cache_lru_usage(const llmux__cache_backend *b, size_t *entries,
                            size_t *bytes);

/*
 * The value: the provider's own answer, so that a hit is decoded by the
 * same plugin into the same response (fields not modelled included) and
 * rendered in OpenAI's shape like any other. A whole reply ('R'): status,
 * content type and body. A stream ('S'): its events in order, each with
 * its SSE event name and id (or none) and its data, through the end
 * marker. The encoding: "LXC1", the kind byte, then for a reply the
 * status as 4 bytes and two strings; for a stream, three strings per
 * event; a string is a 4-byte big-endian length (0xffffffff: none) and
 * its bytes.
 */
#define LLMUX__CACHE_REPLY  'R'
#define LLMUX__CACHE_STREAM 'S'
/* Appends the header of a value of `kind` to b. */
int llmux__cache_val_begin(llmux__buf *b, int kind);
/* Appends a reply's fields (after its header). */
int llmux__cache_val_reply(llmux__buf *b, long status, const char *ctype,
                           const char *body, size_t len);
/* Appends one stream event. */
int llmux__cache_val_event(llmux__buf *b, const char *event, const char *id,
                           const char *data, size_t len);

/* A value being read: the reader's position in it. */
typedef struct llmux__cache_rd {
    const char *p;
    size_t len, pos;
} llmux__cache_rd;
/* Checks the header: the kind, or -1 when v[0..len) is no value. */
int llmux__cache_val_kind(llmux__cache_rd *r, const char *v, size_t len);
/* A reply's fields (pointers into the value; ctype and body are not
 * NUL-terminated: their lengths are given). 0, or -1 when malformed. */
int llmux__cache_val_read_reply(llmux__cache_rd *r, long *status,
                                const char **ctype, size_t *ctype_len,
                                const char **body, size_t *body_len);
/* The next stream event: 1 and its parts (NULL when none), 0 at the end,
 * -1 when malformed. */
int llmux__cache_val_read_event(llmux__cache_rd *r, const char **event,
                                size_t *event_len, const char **id,
                                size_t *id_len, const char **data,
                                size_t *data_len);

#endif /* LLMUX_CORE_CACHE_H */
