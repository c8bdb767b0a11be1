/*
 * core/redis.h: the client's one connection to a Redis server (hiredis's
 * asynchronous API on the client's loop), for state shared between
 * processes: the limits backend (limits.c) and whatever else shares it.
 *
 * Nothing here blocks the loop or waits without a bound: a command gets a
 * reply or an error within the command timeout, a connection that does not
 * come up within the connect timeout is dropped, and a dropped connection
 * is retried with a growing backoff (100 ms doubling to 5 s) for as long
 * as the client lives. Call everything on the client's loop thread.
 */
#ifndef LLMUX_CORE_REDIS_H
#define LLMUX_CORE_REDIS_H

#include <stddef.h>

struct llmux_client;
struct redisReply;
typedef struct llmux__redis llmux__redis;
typedef struct llmux__redis_script llmux__redis_script;

/* Where a Redis URL points: redis://[[user]:password@]host[:port][/db],
 * unix:///path/to/sock[?db=N] or redis+unix://... Strings owned (free
 * with llmux__redis_url_free). */
typedef struct llmux__redis_url {
    char *host;     /* TCP host (NULL for a socket) */
    int port;       /* 6379 by default */
    char *path;     /* unix socket path (NULL for TCP) */
    char *user;     /* ACL user, or NULL */
    char *password; /* AUTH's password, or NULL */
    int db;         /* SELECT's database, 0 by default */
} llmux__redis_url;

/* Parses url into *out: 0, or LLMUX_ECONFIG with what is wrong in err
 * (never the password). */
int llmux__redis_url_parse(const char *url, llmux__redis_url *out, char *err,
                           size_t errlen);
void llmux__redis_url_free(llmux__redis_url *u);

typedef enum llmux__redis_state {
    LLMUX__REDIS_DOWN = 0,   /* not connected: commands fail at once */
    LLMUX__REDIS_CONNECTING, /* commands are sent once it is up */
    LLMUX__REDIS_UP
} llmux__redis_state;

/* A command's answer: `reply` (hiredis's, freed after the call), or NULL
 * with `err` saying why (the connection broke or timed out, or the client
 * is closing). An error reply from the server is a reply of type
 * REDIS_REPLY_ERROR. */
typedef void (*llmux__redis_cb)(llmux__redis *r, struct redisReply *reply,
                                const char *err, void *ud);
/* Told when the connection goes up or down (`why` says why it went
 * down; NULL when up). */
typedef void (*llmux__redis_state_cb)(llmux__redis *r, int up, const char *why,
                                      void *ud);

/* A connection for client c to url, connecting now (on c's loop). NULL
 * with the reason in err for a bad URL (LLMUX_ECONFIG in *code) or no
 * memory (LLMUX_ENOMEM). The client owns it: llmux__redis_free. */
llmux__redis *llmux__redis_new(struct llmux_client *c, const char *url,
                               int *code, char *err, size_t errlen);
/* Closes the connection (pending commands get their error) and frees r
 * once its handles closed, then calls on_closed(ud) (may be NULL): the
 * client's close waits for it. NULL r is fine (on_closed is not called). */
void llmux__redis_free(llmux__redis *r, void (*on_closed)(void *ud), void *ud);

/* The URL as given (not masked: it may hold a password) and masked. */
const char *llmux__redis_url_of(const llmux__redis *r);
const char *llmux__redis_url_shown(const llmux__redis *r);
llmux__redis_state llmux__redis_state_of(const llmux__redis *r);
/* Why the connection last went down ("" before that). */
const char *llmux__redis_why(const llmux__redis *r);
struct llmux_client *llmux__redis_client(const llmux__redis *r);
/* Adds a listener for up/down (the same cb and ud twice: once): 0, or -1
 * when LLMUX__REDIS_LISTENERS are there already. Listeners stay for r's
 * life. */
#define LLMUX__REDIS_LISTENERS 4
int llmux__redis_on_state(llmux__redis *r, llmux__redis_state_cb cb, void *ud);

/* The client's one Redis connection (c->redis), made now for url when it
 * has none: every user of shared state (limits, budgets, the cache) asks
 * through this, and all of them share the one server. NULL with *code and
 * err (never the password) for a bad URL, no memory, or a url other than
 * the server the client uses already (LLMUX_ECONFIG). */
llmux__redis *llmux__client_redis(struct llmux_client *c, const char *url,
                                  int *code, char *err, size_t errlen);
/* The Redis key of what belongs to an endpoint (its scheme://host:port,
 * any user:password@ left out) and an API key (may be NULL): prefix,
 * provider, endpoint and the key's SHA-256, never the key. Owned; NULL
 * without memory. */
char *llmux__redis_key(const char *prefix, const char *provider,
                       const char *endpoint, const char *api_key);
/* Timeouts in ms (tests shorten them): a command without a reply within
 * cmd_ms, a connection not up within connect_ms, breaks the connection. */
void llmux__redis_set_timeouts(llmux__redis *r, long connect_ms, long cmd_ms);

/* Sends a command (argv as hiredis's redisAsyncCommandArgv takes it,
 * copied). 0 when cb will be called exactly once; LLMUX_ELIMITS when the
 * connection is down (cb is not called), LLMUX_ENOMEM. */
int llmux__redis_cmd(llmux__redis *r, llmux__redis_cb cb, void *ud, int argc,
                     const char **argv, const size_t *argvlen);

/* A Lua script, loaded with SCRIPT LOAD on every connect and run with
 * EVALSHA (EVAL when the server answers NOSCRIPT). Owned by r; the text
 * is copied. NULL without memory. */
llmux__redis_script *llmux__redis_script_add(llmux__redis *r, const char *lua);
/* EVALSHA script numkeys args...: as llmux__redis_cmd. */
int llmux__redis_eval(llmux__redis *r, llmux__redis_script *s,
                      llmux__redis_cb cb, void *ud, int numkeys, int argc,
                      const char **argv, const size_t *argvlen);

#endif /* LLMUX_CORE_REDIS_H */
