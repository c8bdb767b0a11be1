/*
 * tests/fleet/fleet_env.c: redis-server for the fleet tests (fleet_env.h).
 */
#include "fleet_env.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    fleet_procs *n = p->data;
    if (status != 0 || sig != 0)
        n->failed++;
    n->exited++;
    uv_close((uv_handle_t *)p, NULL);
}

void fleet_spawn(uv_loop_t *loop, uv_process_t *p, char **args, fleet_procs *n)
{
    uv_process_options_t po;
    uv_stdio_container_t io[3];
    int k;
    memset(&po, 0, sizeof po);
    for (k = 0; k < 3; k++) {
        io[k].flags = UV_INHERIT_FD;
        io[k].data.fd = k;
    }
    po.stdio = io;
    po.stdio_count = 3;
    po.file = args[0];
    po.args = args;
    po.exit_cb = on_exit_cb;
    p->data = n;
    assert_int_equal(uv_spawn(loop, p, &po), 0);
}

double fleet_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void fleet_redis_require(void)
{
    if (system("redis-server --version >/dev/null 2>&1") != 0) {
        printf("SKIP: redis-server is not installed (Debian: apt-get install "
               "redis-server)\n");
        exit(77);
    }
}

static int spawn(fleet_redis *r)
{
    double end;
    struct stat st;
    unlink(r->sock);
    r->pid = fork();
    if (r->pid < 0) {
        r->pid = 0;
        perror("fork");
        return -1;
    }
    if (r->pid == 0) {
        char log[300];
        snprintf(log, sizeof log, "%s/redis.log", r->dir);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket",
               r->sock, "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--logfile", log, "--dir", r->dir, (char *)NULL);
        _exit(127);
    }
    /* up once its socket exists */
    end = fleet_now_ms() + 10000;
    while (fleet_now_ms() < end) {
        int status;
        if (stat(r->sock, &st) == 0)
            return 0;
        if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
            fprintf(stderr, "redis-server exited (see %s/redis.log)\n", r->dir);
            r->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "redis-server did not create %s within 10 s\n", r->sock);
    fleet_redis_kill(r);
    return -1;
}

int fleet_redis_start(fleet_redis *r)
{
    const char *tmp = getenv("TMPDIR");
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s/llmux-fleet-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(r->dir)) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(r->sock, sizeof r->sock, "%s/r.sock", r->dir);
    snprintf(r->url, sizeof r->url, "unix://%s", r->sock);
    return spawn(r);
}

int fleet_redis_restart(fleet_redis *r)
{
    if (r->pid)
        fleet_redis_kill(r);
    return spawn(r);
}

void fleet_redis_kill(fleet_redis *r)
{
    int status;
    if (!r->pid)
        return;
    kill(r->pid, SIGCONT); /* if a test stopped it */
    kill(r->pid, SIGKILL);
    while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->pid = 0;
}

void fleet_redis_stop(fleet_redis *r)
{
    char cmd[400];
    fleet_redis_kill(r);
    if (r->dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", r->dir);
        r->dir[0] = 0;
    }
}

int fleet_main(fleet_redis *r, const char *name, const struct CMUnitTest *tests,
               size_t n)
{
    int rc;
    fleet_redis_require();
    if (fleet_redis_start(r))
        return 1;
    rc = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    fleet_redis_stop(r);
    return rc;
}
