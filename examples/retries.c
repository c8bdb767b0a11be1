/*
 * examples/retries.c: retries on rate limits (what tenacity does by hand
 * in Python). One request meets HTTP 429 twice; the client waits as each
 * Retry-After header asks (on a uv timer, never sleeping), tries again and
 * gets the answer. It prints the retries as the client logs them, the
 * attempts the response reports, and the client's counters.
 *
 * Against llmux-mock, script the two 429s (each --fault applies to one
 * later HTTP request, in order) and point LLMUX_DEMO_BASE_URL at it:
 *
 *   llmux-mock --port 8080 --fault "status=429;retry_after=1" \
 *       --fault "status=429;retry_after=1" &
 *   LLMUX_DEMO_BASE_URL=http://127.0.0.1:8080 build/examples/retries
 *
 * With OPENAI_API_KEY set it asks the real service, where a 429 is up to
 * the service. Exits 0 when the answer arrived (against llmux-mock: after
 * exactly two rate-limited attempts, each Retry-After honoured), 1
 * otherwise, 2 when it cannot start. A mock's script is used up by one
 * run: restart llmux-mock to run it again.
 */
#define _POSIX_C_SOURCE 200809L /* <uv.h> under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>
#include <uv.h>

typedef struct result {
    int done;
    int status;
    int attempts;
    long http_status;
    double seconds;
    char text[512];
} result;

static uint64_t t0;

/* The client's log hook: its retry decisions, as they happen. */
static void on_log(int level, const char *msg, void *ud)
{
    (void)level;
    (void)ud;
    printf("[%5.2f s] %s\n", (double)(uv_hrtime() - t0) / 1e9, msg);
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    result *r = ud;
    (void)req;
    r->done = 1;
    r->status = status;
    r->attempts = llmux_response_attempts(res);
    r->http_status = llmux_response_http_status(res);
    r->seconds = (double)(uv_hrtime() - t0) / 1e9;
    snprintf(r->text, sizeof r->text, "%s",
             status == 0 ? llmux_response_text(res, NULL)
                         : llmux_response_error(res)->message);
}

int main(void)
{
    const char *key = getenv("OPENAI_API_KEY");
    const char *mock = getenv("LLMUX_DEMO_BASE_URL");
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_stats st;
    llmux_client *c;
    llmux_request *req;
    result r;
    char spec[512];
    int rc, ok;

    if (key && *key)
        snprintf(spec, sizeof spec, "openai/gpt-4o-mini");
    else if (mock && *mock)
        snprintf(spec, sizeof spec,
                 "openai/gpt-4o-mini;base_url=%s/v1;api_key=demo", mock);
    else {
        fprintf(stderr, "set OPENAI_API_KEY or LLMUX_DEMO_BASE_URL\n");
        return 2;
    }

    /* a client on a private loop; INFO logs show each retry */
    o.log = on_log;
    o.log_level = LLMUX_LOG_INFO;
    o.max_retries = 4; /* the default is 2; Retry-After is honoured up to
                          60 s, otherwise the backoff is exponential */
    if ((rc = llmux_client_new(&c, &o))) {
        fprintf(stderr, "client: %s\n", llmux_strerror(rc));
        return 2;
    }
    rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
    if (!rc)
        rc = llmux_request_add_message(req, LLMUX_ROLE_USER,
                                       "Name one reason to retry politely.");
    if (!rc)
        rc = llmux_request_set_max_tokens(req, 60);
    memset(&r, 0, sizeof r);
    t0 = uv_hrtime();
    if (!rc)
        rc = llmux_submit(c, req, NULL, on_done, &r);
    if (rc) {
        fprintf(stderr, "error: %s\n",
                req ? llmux_request_errmsg(req) : llmux_strerror(rc));
        llmux_request_free(req);
        llmux_client_free(c);
        return 2;
    }
    llmux_client_run(c, LLMUX_RUN_DEFAULT); /* until the request is done */

    if (r.status == 0)
        printf("answer after %d attempt(s), %.2f s: %s\n", r.attempts,
               r.seconds, r.text);
    else
        printf("failed after %d attempt(s), %.2f s: %s (HTTP %ld)\n",
               r.attempts, r.seconds, r.text, r.http_status);

    st.version = LLMUX_STATS_VERSION;
    if (llmux_client_stats(c, &st) == 0)
        printf("client counters: %llu request(s), %llu attempt(s), "
               "%llu retr%s (%llu after a rate limit, %llu after a server "
               "error, %llu after a transport error)\n",
               (unsigned long long)st.requests, (unsigned long long)st.attempts,
               (unsigned long long)st.retries, st.retries == 1 ? "y" : "ies",
               (unsigned long long)st.retries_rate_limited,
               (unsigned long long)st.retries_server,
               (unsigned long long)st.retries_transport);
    else
        memset(&st, 0, sizeof st);
    llmux_client_free(c);

    ok = r.done && r.status == 0;
    if (ok && !(key && *key)) {
        /* the scripted mock: two 429s with Retry-After: 1, then 200 */
        ok =
            r.attempts == 3 && st.retries_rate_limited == 2 && r.seconds >= 1.9;
        if (!ok)
            printf("expected 3 attempts, 2 rate-limit retries and about 2 s "
                   "of waiting; was llmux-mock started with the two --fault "
                   "options (see the top of examples/retries.c)?\n");
    }
    return ok ? 0 : 1;
}
