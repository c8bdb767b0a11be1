/*
 * tools/cli/tool_cred.c: --key-cmd and --token-cmd. The command prints the
 * API key or the access token on its first line and, optionally, when it
 * expires (Unix seconds) on its second, as
 *
 *     az account get-access-token --resource \
 *         https://cognitiveservices.azure.com \
 *         --query "[accessToken,expires_on]" -o tsv
 *
 * does. The library's credential callback runs it (with /bin/sh, stdin
 * from /dev/null) when it
 * needs one: before the first request to a provider and endpoint, once
 * the answer expires, and after a 401, with LLMUX_PROVIDER,
 * LLMUX_ENDPOINT, LLMUX_MODEL and LLMUX_REFRESH (1 after a 401) in its
 * environment. Its output is never printed.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMD_OUT_MAX 65536

/* Ends s at its first line, without trailing blanks. */
static char *first_line(char *s, char **rest)
{
    char *e = s + strcspn(s, "\n");
    *rest = *e ? e + 1 : e;
    *e = '\0';
    while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

extern char **environ;

/* The environment of the command: this process's, with the query's
 * LLMUX_* variables first (set for the child only: setenv here could race
 * the resolver's threads). The strings after the first n are borrowed. */
static char **child_env(const llmux_credential_query *q, size_t *n)
{
    const char *names[] = {"LLMUX_PROVIDER", "LLMUX_ENDPOINT", "LLMUX_MODEL",
                           "LLMUX_REFRESH"};
    const char *vals[4];
    size_t i, k = 0, m = 0;
    char **env;
    vals[0] = q->provider;
    vals[1] = q->endpoint;
    vals[2] = q->model ? q->model : "";
    vals[3] = q->refresh ? "1" : "0";
    while (environ && environ[m])
        m++;
    env = xmalloc((m + 5) * sizeof *env);
    for (i = 0; i < 4; i++) {
        size_t a = strlen(names[i]), b = strlen(vals[i]);
        env[k] = xmalloc(a + b + 2);
        memcpy(env[k], names[i], a);
        env[k][a] = '=';
        memcpy(env[k] + a + 1, vals[i], b + 1);
        k++;
    }
    *n = k;
    for (i = 0; i < m; i++)
        if (strncmp(environ[i], "LLMUX_PROVIDER=", 15) &&
            strncmp(environ[i], "LLMUX_ENDPOINT=", 15) &&
            strncmp(environ[i], "LLMUX_MODEL=", 12) &&
            strncmp(environ[i], "LLMUX_REFRESH=", 14))
            env[k++] = environ[i];
    env[k] = NULL;
    return env;
}

/* Runs the command with /bin/sh, stdin from /dev/null; its output in buf.
 * NULL and a reason in why, or the output. */
static char *run_cmd(const char *cmd, char **env, char *buf, size_t len,
                     char *why, size_t wlen)
{
    char *argv[4];
    posix_spawn_file_actions_t fa;
    size_t n = 0;
    ssize_t got;
    pid_t pid;
    int fds[2], st, rc;
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = (char *)cmd;
    argv[3] = NULL;
    fflush(NULL);
    if (pipe(fds) != 0) {
        snprintf(why, wlen, "cannot run the command: %s", strerror(errno));
        return NULL;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        snprintf(why, wlen, "cannot run the command: %s", strerror(rc));
        return NULL;
    }
    /* all of it is read (a credential is small; more is refused) */
    while ((got = read(fds[0], n < len - 1 ? buf + n : why,
                       n < len - 1 ? len - 1 - n : wlen)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            break;
        if (n < len - 1)
            n += (size_t)got;
        else
            n = len; /* past the cap */
    }
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFEXITED(st))
            snprintf(why, wlen, "the command exited with status %d",
                     WEXITSTATUS(st));
        else
            snprintf(why, wlen, "the command did not exit normally");
        return NULL;
    }
    if (n >= len) {
        snprintf(why, wlen, "the command printed more than %zu bytes", len - 1);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void on_credential(const llmux_credential_query *q,
                          llmux_credential_reply *reply, void *ud)
{
    cli *c = ud;
    const char *flag = c->token_cmd ? "--token-cmd" : "--key-cmd";
    char *buf = xmalloc(CMD_OUT_MAX), *out, *rest, *secret, *exp_s, *end;
    char why[256], msg[320], **env;
    long long exp = 0;
    size_t i, own;
    env = child_env(q, &own);
    out = run_cmd(c->token_cmd ? c->token_cmd : c->key_cmd, env, buf,
                  CMD_OUT_MAX, why, sizeof why);
    for (i = 0; i < own; i++)
        free(env[i]);
    free(env);
    if (out) {
        secret = first_line(out, &rest);
        exp_s = first_line(rest, &rest);
        why[0] = '\0';
        if (*exp_s) {
            errno = 0;
            exp = strtoll(exp_s, &end, 10);
            if (errno || *end || exp <= 0 || exp > 1LL << 40)
                snprintf(why, sizeof why,
                         "the command's second line is not a Unix time in "
                         "seconds");
        }
        if (!*secret)
            snprintf(why, sizeof why, "the command printed no %s",
                     c->token_cmd ? "token" : "key");
        for (end = secret; *end && !why[0]; end++)
            if ((unsigned char)*end < 0x20 || *end == 0x7f)
                snprintf(why, sizeof why,
                         "the command printed a control character");
    }
    if (!out || why[0]) {
        snprintf(msg, sizeof msg, "%s: %s", flag, why);
        llmux_credential_fail(reply, LLMUX_EAUTH, msg);
    } else {
        /* kept out of every message this program prints */
        size_t n = strlen(secret) + 1;
        c->cmd_secrets = xrealloc(c->cmd_secrets, (c->n_cmd_secrets + 1) *
                                                      sizeof *c->cmd_secrets);
        c->cmd_secrets[c->n_cmd_secrets++] = memcpy(xmalloc(n), secret, n);
        (void)llmux_credential_answer(reply, secret,
                                      c->token_cmd ? LLMUX_CREDENTIAL_BEARER
                                                   : LLMUX_CREDENTIAL_KEY,
                                      exp * 1000);
    }
    memset(buf, 0, CMD_OUT_MAX);
    free(buf);
}

void cli_credentials(cli *c, llmux_client_options *o)
{
    if (!c->key_cmd && !c->token_cmd)
        return;
    o->credential = on_credential;
    o->credential_userdata = c;
}
