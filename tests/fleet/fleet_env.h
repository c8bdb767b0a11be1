/*
 * tests/fleet/fleet_env.h: a real redis-server for the fleet tests, on a
 * unix socket in a private temporary directory (no port to collide with
 * other tests running in parallel), started and stopped by the test.
 */
#ifndef LLMUX_TESTS_FLEET_ENV_H
#define LLMUX_TESTS_FLEET_ENV_H

#include <stddef.h>
#include <sys/types.h>

typedef struct fleet_redis {
    char dir[256];  /* the temporary directory */
    char sock[300]; /* DIR/r.sock */
    char url[320];  /* unix://DIR/r.sock */
    pid_t pid;      /* 0 when not running */
} fleet_redis;

/* Whether redis-server can be run; when not, the test prints why and
 * exits 77 (skipped). */
void fleet_redis_require(void);
/* A new directory and a server in it; 0, or -1 with the reason on
 * stderr. */
int fleet_redis_start(fleet_redis *r);
/* Starts the server again on the same socket (after fleet_redis_kill). */
int fleet_redis_restart(fleet_redis *r);
/* SIGKILLs the server and waits for it (the socket file stays). */
void fleet_redis_kill(fleet_redis *r);
/* Stops the server (if running) and removes the directory. */
void fleet_redis_stop(fleet_redis *r);
struct CMUnitTest;
/* A test program's main: skips (77) without redis-server, else runs the
 * cmocka group with the server r started for it, then stops it. */
int fleet_main(fleet_redis *r, const char *name, const struct CMUnitTest *tests,
               size_t n);
/* Processes a test runs at once: how many exited, and how many of those
 * failed (a status other than 0, or a signal). */
typedef struct fleet_procs {
    int exited, failed;
} fleet_procs;
struct uv_loop_s;
struct uv_process_s;
/* Starts args[0] with args (stdio inherited, so its messages reach the
 * test's log) on loop, its exit counted in *n (p closed then). Asserts
 * that it started. */
void fleet_spawn(struct uv_loop_s *loop, struct uv_process_s *p, char **args,
                 fleet_procs *n);
/* Milliseconds of a monotonic clock. */
double fleet_now_ms(void);

#endif
