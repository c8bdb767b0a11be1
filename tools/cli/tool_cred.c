/*
 * tools/cli/tool_cred.c: --key-cmd and --token-cmd. The command prints the
 * API key or the access token on its first line and, optionally, when it
 * expires (Unix seconds) on its second, as
 *
 *     az account get-access-token --resource \
 *         https://cognitiveservices.azure.com \
 *         --query "[accessToken,expires_on]" -o tsv
 *
 * does. The library's credential callback runs it (with /bin/sh) when it
 * needs one: before the first request to a provider and endpoint, once
 * the answer expires, and after a 401, with LLMUX_PROVIDER,
 * LLMUX_ENDPOINT, LLMUX_MODEL and LLMUX_REFRESH (1 after a 401) in its
 * environment. Its output is never printed.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

/* Runs the command; its output in buf. NULL and a reason in why, or the
 * output. */
static char *run_cmd(const char *cmd, char *buf, size_t len, char *why,
                     size_t wlen)
{
    FILE *f;
    size_t n = 0, got;
    int st;
    fflush(NULL);
    if (!(f = popen(cmd, "r"))) {
        snprintf(why, wlen, "cannot run the command: %s", strerror(errno));
        return NULL;
    }
    while (n < len - 1 && (got = fread(buf + n, 1, len - 1 - n, f)) > 0)
        n += got;
    buf[n] = '\0';
    if (n == len - 1) { /* more than a credential: read it all, refuse */
        char sink[4096];
        while (fread(sink, 1, sizeof sink, f) > 0)
            ;
    }
    st = pclose(f);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (st != -1 && WIFEXITED(st))
            snprintf(why, wlen, "the command exited with status %d",
                     WEXITSTATUS(st));
        else
            snprintf(why, wlen, "the command did not exit normally");
        return NULL;
    }
    if (n == len - 1) {
        snprintf(why, wlen, "the command printed more than %d bytes",
                 CMD_OUT_MAX - 1);
        return NULL;
    }
    return buf;
}

static void on_credential(const llmux_credential_query *q,
                          llmux_credential_reply *reply, void *ud)
{
    cli *c = ud;
    const char *flag = c->token_cmd ? "--token-cmd" : "--key-cmd";
    char *buf = xmalloc(CMD_OUT_MAX), *out, *rest, *secret, *exp_s, *end;
    char why[256], msg[320];
    long long exp = 0;
    setenv("LLMUX_PROVIDER", q->provider, 1);
    setenv("LLMUX_ENDPOINT", q->endpoint, 1);
    setenv("LLMUX_MODEL", q->model ? q->model : "", 1);
    setenv("LLMUX_REFRESH", q->refresh ? "1" : "0", 1);
    out = run_cmd(c->token_cmd ? c->token_cmd : c->key_cmd, buf, CMD_OUT_MAX,
                  why, sizeof why);
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
        if (c->cmd_secret) {
            memset(c->cmd_secret, 0, strlen(c->cmd_secret));
            free(c->cmd_secret);
        }
        c->cmd_secret = memcpy(xmalloc(n), secret, n);
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
