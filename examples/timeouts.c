/*
 * examples/timeouts.c: a timeout around every call. A client with
 * connect, first-byte and idle timeouts fires a few requests at once, each
 * with its own total deadline (Python's asyncio.wait_for), and prints which
 * finished and which timed out, with the message naming the timeout that
 * fired.
 *
 * Against llmux-mock (LLMUX_DEMO_BASE_URL=http://127.0.0.1:PORT, as for
 * examples/demo.c) some requests carry an X-Mock-Fault header that makes
 * the server slow: "delay_ms=3000" holds the answer back for 3 s, and
 * "stall_after=3" stops a stream after three events:
 *
 *   llmux-mock --port 8080 &
 *   LLMUX_DEMO_BASE_URL=http://127.0.0.1:8080 build/examples/timeouts
 *
 * With OPENAI_API_KEY set it asks the real service instead, and the slow
 * path is a long essay under a deadline too short for it. Exits 0 when
 * every request ended as expected (an answer, or the expected timeout),
 * 1 otherwise, 2 when it cannot start.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, and <uv.h> under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>
#include <uv.h>

typedef struct job {
    const char *label;
    const char *prompt;
    const char *fault; /* X-Mock-Fault header value, or NULL */
    int stream;
    long timeout_ms;    /* total deadline of this call, retries included */
    long first_byte_ms; /* 0: the client's */
    long idle_ms;       /* 0: the client's */
    int max_retries;    /* -1: the client's */
    const char *expect; /* NULL: an answer; else the timeout it names */
} job;

/* Against llmux-mock: two quick calls and three that hit a slow path. */
static const job mock_jobs[] = {
    {"quick answer", "Say hello.", NULL, 0, 2000, 0, 0, -1, NULL},
    {"quick stream", "Count to five.", NULL, 1, 2000, 0, 0, -1, NULL},
    /* the server answers after 3 s; this call may take 1.5 s in all */
    {"slow server", "Take your time.", "delay_ms=3000", 0, 1500, 0, 0, -1,
     "timeout"},
    /* no answer byte within 0.8 s; no retry (a timeout before any byte
     * would otherwise be retried, as a lost connection is) */
    {"slow headers", "Hello?", "delay_ms=3000", 0, 10000, 800, 0, 0,
     "first_byte_timeout"},
    /* three events, then silence: the idle timeout ends it */
    {"stalled stream", "Tell me a story.", "stall_after=3", 1, 10000, 0, 800,
     -1, "idle_timeout"},
};

/* Against the real service: the slow path is an essay under 0.5 s. */
static const job real_jobs[] = {
    {"quick answer", "Say hello.", NULL, 0, 20000, 0, 0, -1, NULL},
    {"quick stream", "Count to five.", NULL, 1, 20000, 0, 0, -1, NULL},
    {"long essay", "Write a 1500-word essay on the history of C.", NULL, 1, 500,
     0, 0, -1, "timeout"},
};

typedef struct slot {
    const job *j;
    int done;
    int status;
    int attempts;
    size_t streamed; /* bytes of text that arrived as chunks */
    double ms;
    char *text; /* the answer, or the error message */
} slot;

static uint64_t t0;

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    slot *s = ud;
    size_t len = 0;
    (void)req;
    llmux_chunk_text(ch, &len);
    s->streamed += len;
    return 0;
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    slot *s = ud;
    (void)req;
    s->done = 1;
    s->status = status;
    s->attempts = llmux_response_attempts(res);
    s->ms = (double)(uv_hrtime() - t0) / 1e6;
    s->text = strdup(status == 0 ? llmux_response_text(res, NULL)
                                 : llmux_response_error(res)->message);
}

/* Whether a finished call ended as its job expected. */
static int as_expected(const slot *s)
{
    if (!s->j->expect)
        return s->status == 0;
    return s->status == LLMUX_ETIMEDOUT && s->text &&
           strstr(s->text, s->j->expect) != NULL;
}

int main(void)
{
    const char *key = getenv("OPENAI_API_KEY");
    const char *mock = getenv("LLMUX_DEMO_BASE_URL");
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    const job *jobs;
    size_t n, i;
    slot *slots;
    llmux_client *c;
    uv_loop_t loop;
    char spec[512];
    int rc, bad = 0;

    if (key && *key) {
        snprintf(spec, sizeof spec, "openai/gpt-4o-mini");
        jobs = real_jobs;
        n = sizeof real_jobs / sizeof real_jobs[0];
    } else if (mock && *mock) {
        snprintf(spec, sizeof spec,
                 "openai/gpt-4o-mini;base_url=%s/v1;api_key=demo", mock);
        jobs = mock_jobs;
        n = sizeof mock_jobs / sizeof mock_jobs[0];
    } else {
        fprintf(stderr, "set OPENAI_API_KEY or LLMUX_DEMO_BASE_URL\n");
        return 2;
    }
    slots = calloc(n, sizeof *slots);
    if (!slots)
        return 2;

    /* the client's timeouts hold for every call that sets none itself */
    uv_loop_init(&loop);
    o.loop = &loop;
    o.connect_timeout_ms = 5000;     /* TCP + TLS */
    o.first_byte_timeout_ms = 10000; /* headers or first stream event */
    o.idle_timeout_ms = 5000;        /* gap between stream events */
    o.timeout_ms = 30000;            /* total, when a call sets none */
    if ((rc = llmux_client_new(&c, &o))) {
        fprintf(stderr, "client: %s\n", llmux_strerror(rc));
        return 2;
    }

    t0 = uv_hrtime();
    for (i = 0; i < n; i++) {
        const job *j = &jobs[i];
        llmux_request *req;
        char hdr[128];
        slots[i].j = j;
        rc = llmux_request_new(&req, LLMUX_OP_CHAT, spec);
        if (!rc)
            rc = llmux_request_add_message(req, LLMUX_ROLE_USER, j->prompt);
        if (!rc)
            rc = llmux_request_set_max_tokens(req, 60);
        if (!rc)
            rc = llmux_request_set_stream(req, j->stream);
        /* the timeout around this call */
        if (!rc)
            rc = llmux_request_set_timeout_ms(req, j->timeout_ms);
        if (!rc && j->first_byte_ms)
            rc = llmux_request_set_first_byte_timeout_ms(req, j->first_byte_ms);
        if (!rc && j->idle_ms)
            rc = llmux_request_set_idle_timeout_ms(req, j->idle_ms);
        if (!rc && j->max_retries >= 0)
            rc = llmux_request_set_max_retries(req, j->max_retries);
        if (!rc && j->fault) {
            snprintf(hdr, sizeof hdr, "X-Mock-Fault: %s", j->fault);
            rc = llmux_request_add_header(req, hdr);
        }
        if (!rc)
            rc = llmux_submit(c, req, on_chunk, on_done, &slots[i]);
        if (rc) {
            printf("%-15s not started: %s\n", j->label,
                   req ? llmux_request_errmsg(req) : llmux_strerror(rc));
            llmux_request_free(req);
            bad++;
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* every call runs concurrently */

    for (i = 0; i < n; i++) {
        const slot *s = &slots[i];
        if (!s->done)
            continue;
        if (s->status == 0)
            printf("%-15s finished  %7.1f ms  %s\n", s->j->label, s->ms,
                   s->text ? s->text : "");
        else
            printf("%-15s %-9s %7.1f ms  %s (%d attempt%s%s)\n", s->j->label,
                   s->status == LLMUX_ETIMEDOUT ? "TIMED OUT" : "FAILED", s->ms,
                   s->text ? s->text : "", s->attempts,
                   s->attempts == 1 ? "" : "s",
                   s->streamed ? ", partial text kept" : "");
        if (!as_expected(s)) {
            printf("%-15s   unexpected: wanted %s\n", s->j->label,
                   s->j->expect ? s->j->expect : "an answer");
            bad++;
        }
        free(s->text);
    }
    printf("%zu call(s); %s\n", n,
           bad ? "some did not end as expected" : "each ended as expected");
    llmux_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(slots);
    return bad ? 1 : 0;
}
