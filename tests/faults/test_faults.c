/*
 * tests/faults/test_faults.c: the fault matrix, a cancel storm and a
 * close storm, end to end against llmux-mock on the test's loop.
 *
 * The matrix crosses every provider (OpenAI, Mistral, Ollama, Aleph
 * Alpha) with every fault llmux-mock injects, plain and streamed: each
 * cell is a batch of requests (200, or LLMUX_FAULTS_REQUESTS) at 32 in
 * flight on a fresh loop, mock and client, and every request is held to
 * the policy of README.md ("Errors"): its code and class, HTTP status,
 * attempts (llmux's count and the mock's records of it), what reached
 * the chunk callback, exactly one done callback, never inside
 * llmux_submit(). Each cell then checks that nothing is pending or in
 * flight and that the loop closes. A table (expected against got,
 * requests, attempts, time) is printed; a bad cell fails the test once
 * the whole table is out.
 *
 * The storms use a seeded PRNG (LLMUX_FAULTS_SEED repeats a run; the
 * seed is printed): the cancel storm cancels a random half of a mixed
 * batch at random moments (right after llmux_submit(), while queued,
 * from a timer, from a chunk callback, during a retry wait); the close
 * storm closes or frees the client with everything in flight (from a
 * timer, a chunk callback, a done callback, and a private loop's
 * llmux_client_free()). Both check every done callback once and
 * LLMUX_ECANCELED for all that had not finished.
 *
 * LLMUX_FAULTS_ONLY=text runs only the cells whose "provider fault mode"
 * contains it (and the storms of providers containing it);
 * LLMUX_FAULTS_TEST=pattern only the tests it matches (test_*_storm).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include <llmux/llmux.h>

#include "mock/mock_env.h"

#define IN_FLIGHT    32
#define MAX_RESPONSE (64 * 1024) /* the client's cap; huge= goes past it */
#define PROMPT_TAIL  "one two three four five six"
#define BACKOFF      ";retry_backoff=0.01" /* 10, 20 ms: fast cells */

/* ---- knobs --------------------------------------------------------------- */

static int g_requests = 200;
static uint64_t g_seed;
static const char *g_only;

static long env_long(const char *name, long dflt, long lo, long hi)
{
    const char *v = getenv(name);
    char *end;
    long n;
    if (!v || !*v)
        return dflt;
    n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi) {
        print_error("%s=%s: want %ld..%ld\n", name, v, lo, hi);
        fail();
    }
    return n;
}

/* xorshift64*: the storms' choices, repeatable from the seed. */
static uint64_t g_rng;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 2685821657736338717ull) >> 33) % n;
}

static int selected(const char *what)
{
    return !g_only || strstr(what, g_only) != NULL;
}

/* ---- providers ----------------------------------------------------------- */

typedef struct provider {
    const char *name;
    const char *path;  /* under the mock's port */
    const char *model; /* one the mock's protocol serves */
} provider;

static const provider providers[] = {
    {"openai", "/v1", "gpt-4o-mini"},
    {"mistral", "/mistral", "mistral-small-latest"},
    {"ollama", "/ollama", "llama3:8b"},
    {"alephalpha", "/aleph", "llama-3.1-8b-instruct"},
};
#define N_PROV (sizeof providers / sizeof providers[0])

/* A chat request to provider p on the mock's port, with config-string
 * options `opts` (";key=value..."), asking about request `id`. */
static llmux_request *chat(int port, const provider *p, const char *opts,
                           int id)
{
    llmux_request *req;
    char spec[512], prompt[64];
    snprintf(spec, sizeof spec,
             "%s/%s;base_url=http://127.0.0.1:%d%s;api_key=sk-faults" BACKOFF
             "%s",
             p->name, p->model, port, p->path, opts ? opts : "");
    assert_int_equal(llmux_request_new(&req, LLMUX_OP_CHAT, spec), 0);
    snprintf(prompt, sizeof prompt, "[r%d] " PROMPT_TAIL, id);
    assert_int_equal(llmux_request_add_message(req, LLMUX_ROLE_USER, prompt),
                     0);
    return req;
}

/* Adds an llmux-mock fault spec for every attempt of `req` (the header
 * carries ';', which the config string cannot). */
static void with_fault(llmux_request *req, const char *spec)
{
    char h[256];
    snprintf(h, sizeof h, "X-Mock-Fault: %s", spec);
    assert_int_equal(llmux_request_add_header(req, h), 0);
}

/* What the mock says to request `id` when nothing goes wrong. */
static void full_reply(int id, char *out, size_t n)
{
    snprintf(out, n, "Mock reply to: [r%d] " PROMPT_TAIL, id);
}

/* How many times the mock saw each request: counts[id] from the "[rID]"
 * in the recorded bodies. Returns the number of records. */
static size_t mock_counts(const mock_env *e, int *counts, int n)
{
    size_t i, total = llmux_mock_request_count(e->mock);
    memset(counts, 0, (size_t)n * sizeof *counts);
    for (i = 0; i < total; i++) {
        const char *b = strstr(llmux_mock_request(e->mock, i)->body, "[r");
        int id = b ? atoi(b + 2) : -1;
        if (id >= 0 && id < n)
            counts[id]++;
    }
    return total;
}

/* ---- running the loop ---------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    (void)t; /* wakes uv_run so the caller's bound is checked */
}

/* Runs `loop` until done(ud) or `ms` of wall time; returns done(ud). A
 * ticking timer keeps a hung loop from blocking forever. */
static int run_until(uv_loop_t *loop, int (*done)(void *), void *ud,
                     uint64_t ms)
{
    uv_timer_t tick;
    uint64_t t0 = uv_hrtime();
    int ok;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 50, 50);
    while (!(ok = done(ud)) && (uv_hrtime() - t0) / 1000000u < ms)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static int mock_idle(void *ud)
{
    return llmux_mock_in_flight(ud) == 0;
}

/* The mock forgets a request once its client left; give it the time. */
static int mock_settles(mock_env *e)
{
    return run_until(&e->loop, mock_idle, e->mock, 10000);
}

/* ---- the matrix ---------------------------------------------------------- */

enum chunks {
    CH_NONE = 0, /* no chunk reaches the caller */
    CH_SOME,     /* some do, and the response keeps what they said */
    CH_ALL       /* the whole reply */
};

/* What every request of a cell must end with. */
typedef struct outcome {
    int code;        /* llmux code, 0 for success */
    long http;       /* HTTP status of the last attempt, 0 for none */
    int tries;       /* attempts, retries included */
    int chunks;      /* enum chunks; streams only */
    const char *msg; /* in the error message, or NULL */
} outcome;

#define RETRIES 2 /* the default budget: 3 attempts */
#define TRIES   (RETRIES + 1)

typedef struct fault {
    const char *name;
    const char *spec; /* the mock's fault, on every attempt */
    const char *opts; /* config-string options of the cell */
    outcome plain, stream;
    double retry_after;        /* llmux_error.retry_after, -1 for none */
    const char *pcode[N_PROV]; /* provider_code by provider, NULL: none */
} fault;

/* Every fault llmux-mock injects, and what the README's policy makes of
 * it. Statuses the README lists as retryable (429, 5xx, and connection
 * failures before the answer) take all attempts; an answer that began
 * (a cut, a stall, a bad or oversized body) is reported, not retried. */
static const fault faults[] = {
    {"429 storm",
     "status=429;retry_after=1;retry_after_ms=15",
     "",
     {LLMUX_ERATELIMIT, 429, TRIES, CH_NONE, NULL},
     {LLMUX_ERATELIMIT, 429, TRIES, CH_NONE, NULL},
     0.015,
     {"rate_limit_exceeded", NULL, NULL, "TOO_MANY_REQUESTS"}},
    {"503",
     "status=503",
     "",
     {LLMUX_EPROVIDER, 503, TRIES, CH_NONE, NULL},
     {LLMUX_EPROVIDER, 503, TRIES, CH_NONE, NULL},
     -1,
     {NULL, NULL, NULL, "QUEUE_FULL"}},
    {"529",
     "status=529",
     "",
     {LLMUX_EPROVIDER, 529, TRIES, CH_NONE, NULL},
     {LLMUX_EPROVIDER, 529, TRIES, CH_NONE, NULL},
     -1,
     {NULL, NULL, NULL, "INTERNAL_ERROR"}},
    {"reset before headers",
     "reset=1",
     "",
     {LLMUX_ETRANSPORT, 0, TRIES, CH_NONE, "reset"},
     {LLMUX_ETRANSPORT, 0, TRIES, CH_NONE, "reset"},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"reset mid-stream",
     "reset_after=3",
     "",
     {LLMUX_ETRANSPORT, 200, 1, CH_NONE, "reset"},
     {LLMUX_ETRANSPORT, 200, 1, CH_SOME, "reset"},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"stall mid-stream",
     "stall_after=3",
     ";idle_timeout=0.1",
     {LLMUX_ETIMEDOUT, 200, 1, CH_NONE, "idle_timeout"},
     {LLMUX_ETIMEDOUT, 200, 1, CH_SOME, "idle_timeout"},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"slow headers",
     "delay_ms=60000",
     ";first_byte_timeout=0.1",
     {LLMUX_ETIMEDOUT, 0, TRIES, CH_NONE, "first_byte_timeout"},
     {LLMUX_ETIMEDOUT, 0, TRIES, CH_NONE, "first_byte_timeout"},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"garbage 200",
     "body=garbage",
     "",
     {LLMUX_EPROTO, 200, 1, CH_NONE, NULL},
     {LLMUX_EPROTO, 200, 1, CH_NONE, NULL},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"truncated body",
     "body=truncated",
     "",
     {LLMUX_ETRANSPORT, 200, 1, CH_NONE, NULL},
     {LLMUX_ETRANSPORT, 200, 1, CH_SOME, NULL},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"oversized body",
     "huge=200000",
     "",
     {LLMUX_ETOOBIG, 200, 1, CH_NONE, "65536"},
     {LLMUX_ETOOBIG, 200, 1, CH_NONE, "65536"},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"wrong content type",
     "content_type=text/plain",
     "",
     {0, 200, 1, CH_NONE, NULL},
     {0, 200, 1, CH_ALL, NULL},
     -1,
     {NULL, NULL, NULL, NULL}},
    {"HTML error page",
     "body=html",
     "",
     {LLMUX_EPROVIDER, 502, TRIES, CH_NONE, "502 Bad Gateway"},
     {LLMUX_EPROVIDER, 502, TRIES, CH_NONE, "502 Bad Gateway"},
     -1,
     {NULL, NULL, NULL, NULL}},
};
#define N_FAULTS (sizeof faults / sizeof faults[0])

/* What went wrong in a batch: how often, and the first time. */
typedef struct report {
    int bad;
    char first[512];
} report;

static void note(report *rp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(report *rp, const char *fmt, ...)
{
    va_list ap;
    if (rp->bad++)
        return;
    va_start(ap, fmt);
    vsnprintf(rp->first, sizeof rp->first, fmt, ap);
    va_end(ap);
}

typedef struct cell cell;
typedef struct storm storm;

/* One request of a batch, and what came of it. */
typedef struct rq {
    cell *c;  /* the matrix cell, or */
    storm *s; /* the storm it belongs to */
    llmux_request *req;
    int id;
    int in_submit, calls, status, tries, chunks;
    long http;
    size_t chunk_bytes;
    /* storms */
    int kind;      /* index in kinds[] */
    int how;       /* enum cancel_how */
    int at_chunk;  /* C_CHUNK: cancel in this chunk callback */
    int cancelled; /* llmux_request_cancel() ran before its done */
    uv_timer_t t;  /* C_QUEUED, C_TIMER and C_RETRY cancel from it */
    int timer_on;  /* t is initialised */
} rq;

struct cell {
    const provider *p;
    const fault *f;
    const outcome *want;
    int stream, n, done;
    int differ; /* requests whose outcome is not the expected one */
    rq *r;
    report rep;
};

static const char *class_name(int code)
{
    static const char *const names[] = {"ok", "provider", "usage", "transport",
                                        "local"};
    return names[llmux_err_class_of(code)];
}

/* "provider ERATELIMIT 429 x3 +chunks" */
static void outcome_text(char *out, size_t n, int code, long http, int tries,
                         int stream, int chunks)
{
    static const char *const ch[] = {"", " +chunks", " +all"};
    snprintf(out, n, "%s %s %ld x%d%s", class_name(code),
             code ? llmux_err_name(code) + 6 : "OK", http, tries,
             stream ? ch[chunks] : "");
}

/* Counts what reached the chunk callback. */
static void count_chunk(rq *r, const llmux_chunk *ch)
{
    size_t len = 0;
    llmux_chunk_text(ch, &len);
    r->chunks++;
    r->chunk_bytes += len;
}

static int cell_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    (void)req;
    count_chunk(ud, ch);
    return 0;
}

/* Notes the done callback in r; returns why it is wrong before even
 * looking at the outcome (inside llmux_submit, a second one), or NULL. */
static const char *count_done(rq *r, int status, const llmux_response *res)
{
    r->calls++;
    r->status = status;
    r->http = llmux_response_http_status(res);
    r->tries = llmux_response_attempts(res);
    return r->in_submit   ? "done inside llmux_submit"
           : r->calls > 1 ? "a second done callback"
                          : NULL;
}

/* Why request r's response does not match the cell, or NULL. */
static const char *mismatch(const cell *c, const rq *r,
                            const llmux_response *res, int status)
{
    const outcome *w = c->want;
    const llmux_error *err = llmux_response_error(res);
    const char *text = llmux_response_text(res, NULL);
    const char *pcode = c->f->pcode[c->p - providers];
    double ra = c->f->retry_after;
    char full[128];
    size_t tl = text ? strlen(text) : 0;
    full_reply(r->id, full, sizeof full);
    if (status != w->code)
        return "code";
    if (llmux_err_class_of(status) != llmux_err_class_of(w->code))
        return "class";
    if (r->http != w->http)
        return "http_status";
    if (r->tries != w->tries)
        return "attempts";
    if (!status != !err)
        return "error record";
    if (err && (err->code != status || err->http_status != w->http ||
                err->attempts != w->tries))
        return "llmux_error fields";
    if (err && w->msg && !strstr(err->message, w->msg))
        return "message";
    if (err &&
        (pcode ? !err->provider_code || strcmp(err->provider_code, pcode) != 0
               : err->provider_code != NULL))
        return "provider_code";
    if (err && (ra < 0 ? err->retry_after >= 0
                       : err->retry_after < ra - 0.0005 ||
                             err->retry_after > ra + 0.0005))
        return "retry_after";
    if (!status && (!text || strcmp(text, full) != 0))
        return "reply text";
    if (r->chunk_bytes != (c->stream && w->chunks ? tl : 0))
        return "chunks against the response text";
    switch (c->stream ? w->chunks : CH_NONE) {
    case CH_NONE:
        return r->chunks ? "chunks" : NULL;
    case CH_SOME: /* a proper prefix of the reply, kept */
        return !r->chunks || !tl || tl >= strlen(full) ||
                       strncmp(text, full, tl) != 0
                   ? "partial text"
                   : NULL;
    default:
        return strcmp(text, full) != 0 ? "streamed text" : NULL;
    }
}

static void cell_done(llmux_request *req, int status, llmux_response *res,
                      void *ud)
{
    rq *r = ud;
    cell *c = r->c;
    const char *why = count_done(r, status, res);
    (void)req;
    c->done++;
    if (!why)
        why = mismatch(c, r, res, status);
    if (why) {
        char got[96];
        const llmux_error *err = llmux_response_error(res);
        c->differ++;
        outcome_text(got, sizeof got, status, r->http, r->tries, c->stream, 0);
        note(&c->rep,
             "r%d: %s wrong: got %s, %d chunks, code %s, message \"%s\"", r->id,
             why, got, r->chunks,
             err && err->provider_code ? err->provider_code : "-",
             err ? err->message : "-");
    }
}

static int cell_finished(void *ud)
{
    const cell *c = ud;
    return c->done >= c->n;
}

/* After a batch: nothing pending, the mock idle, and every request seen
 * by the mock as often as llmux counted its attempts. Returns the sum of
 * attempts; *records gets the mock's count. */
static long batch_checks(mock_env *e, rq *r, int n, report *rp, size_t *records)
{
    int *counts = calloc((size_t)n, sizeof *counts), i;
    long attempts = 0;
    assert_non_null(counts);
    if (e->client && llmux_client_pending(e->client) != 0)
        note(rp, "%zu still pending", llmux_client_pending(e->client));
    if (!mock_settles(e))
        note(rp, "the mock still has %d in flight",
             llmux_mock_in_flight(e->mock));
    *records = mock_counts(e, counts, n);
    for (i = 0; i < n; i++) {
        attempts += r[i].tries;
        if (r[i].calls != 1)
            note(rp, "r%d: %d done callbacks", i, r[i].calls);
        else if (counts[i] != r[i].tries && r[i].status != LLMUX_ECANCELED)
            note(rp, "r%d: the mock saw %d attempts, llmux counted %d", i,
                 counts[i], r[i].tries);
    }
    free(counts);
    return attempts;
}

/* One cell: a batch through a fresh loop, mock and client. Returns 0 when
 * every check held; prints its table row either way. */
static int run_cell(const provider *p, const fault *f, int stream)
{
    mock_env e;
    cell c;
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    char want[96], got[96];
    int i;
    long attempts;
    size_t records;
    uint64_t t0, ms;

    memset(&c, 0, sizeof c);
    c.p = p;
    c.f = f;
    c.stream = stream;
    c.want = stream ? &f->stream : &f->plain;
    c.n = g_requests;
    c.r = calloc((size_t)c.n, sizeof *c.r);
    assert_non_null(c.r);
    o.max_in_flight = IN_FLIGHT;
    o.max_response_bytes = MAX_RESPONSE;
    mock_env_start(&e, &o, NULL);
    llmux_mock_set_fault_all(e.mock, f->spec);

    t0 = uv_hrtime();
    for (i = 0; i < c.n; i++) {
        rq *r = &c.r[i];
        llmux_request *req = chat(llmux_mock_port(e.mock), p, f->opts, i);
        r->c = &c;
        r->id = i;
        llmux_request_set_stream(req, stream);
        r->in_submit = 1;
        assert_int_equal(llmux_submit(e.client, req, cell_chunk, cell_done, r),
                         0);
        r->in_submit = 0;
    }
    if (!run_until(&e.loop, cell_finished, &c, 120000)) {
        note(&c.rep, "hang: %d of %d requests not done after 120 s",
             c.n - c.done, c.n);
        mock_env_close_client(&e); /* cancels the rest */
    }
    ms = (uv_hrtime() - t0) / 1000000u;
    attempts = batch_checks(&e, c.r, c.n, &c.rep, &records);
    if ((long)records != attempts)
        note(&c.rep, "the mock saw %zu requests, llmux counted %ld attempts",
             records, attempts);

    outcome_text(want, sizeof want, c.want->code, c.want->http, c.want->tries,
                 stream, c.want->chunks);
    if (c.differ)
        snprintf(got, sizeof got, "%d of %d differ", c.differ, c.n);
    else
        snprintf(got, sizeof got, "%s", c.rep.bad ? "see below" : want);
    print_message("%-10s %-20s %-6s %-31s %-31s %4d %5ld %5zu %6llu%s\n",
                  p->name, f->name, stream ? "stream" : "plain", want, got, c.n,
                  attempts, records, (unsigned long long)ms,
                  c.rep.bad ? "  FAIL" : "");
    if (c.rep.bad)
        print_message("    %s\n", c.rep.first);
    free(c.r);
    mock_env_stop(&e);
    return c.rep.bad ? -1 : 0;
}

static void test_fault_matrix(void **state)
{
    size_t p, f;
    int stream, bad = 0, cells = 0;
    uint64_t t0 = uv_hrtime();
    (void)state;
    print_message("fault matrix: %d requests a cell (LLMUX_FAULTS_REQUESTS), "
                  "%d in flight, %d retries\n",
                  g_requests, IN_FLIGHT, RETRIES);
    print_message("%-10s %-20s %-6s %-31s %-31s %4s %5s %5s %6s\n", "provider",
                  "fault", "mode", "expected", "got", "reqs", "tries", "mock",
                  "ms");
    for (f = 0; f < N_FAULTS; f++)
        for (p = 0; p < N_PROV; p++)
            for (stream = 0; stream < 2; stream++) {
                char what[160];
                snprintf(what, sizeof what, "%s %s %s", providers[p].name,
                         faults[f].name, stream ? "stream" : "plain");
                if (!selected(what))
                    continue;
                cells++;
                bad += run_cell(&providers[p], &faults[f], stream) != 0;
            }
    print_message("%d cells, %d bad, %llu ms\n", cells, bad,
                  (unsigned long long)((uv_hrtime() - t0) / 1000000u));
    assert_int_equal(bad, 0);
}

/* ---- storms -------------------------------------------------------------- */

/*
 * What a storm's requests ask of the mock (its chunk pacing is 10 ms an
 * event). The first kinds hold their slot 300 ms or more, so that until
 * 50 ms nothing leaves the 32 slots but what the storm cancels.
 */
typedef struct kind {
    const char *name;
    const char *fault; /* X-Mock-Fault, or NULL */
    const char *opts;  /* config-string options */
    int stream;
    int events;      /* events=N: the reply is tok0..tokN-1; 0: the usual */
    int code, tries; /* when nothing cancels it */
} kind;

static const kind kinds[] = {
    {"slow", "delay_ms=300", "", 0, 0, 0, 1},
    {"retry wait", "status=503;retry_after_ms=400", ";max_retries=1", 0, 0,
     LLMUX_EPROVIDER, 2},
    {"paced", "events=40", "", 1, 40, 0, 1},
    {"stall", "stall_after=3", ";idle_timeout=0.3", 1, 0, LLMUX_ETIMEDOUT, 1},
    {"ok", NULL, "", 0, 0, 0, 1},
    {"stream", NULL, "", 1, 0, 0, 1},
    {"failing", "status=500;retry_after_ms=20", ";max_retries=1", 0, 0,
     LLMUX_EPROVIDER, 2},
    {"garbage", "body=garbage", "", 0, 0, LLMUX_EPROTO, 1},
};
enum {
    K_SLOW,
    K_RETRY,
    K_PACED,
    K_STALL,
    N_HOLDING /* the kinds above hold their slot */
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])
#define HOLDERS (2 * IN_FLIGHT) /* requests 0..63 are holding kinds */

enum cancel_how {
    C_NONE = 0,
    C_SUBMIT, /* right after llmux_submit(), before the loop runs */
    C_QUEUED, /* from a timer at 1-40 ms: surely still queued */
    C_TIMER,  /* from a timer at 50-600 ms: whatever it is doing */
    C_CHUNK,  /* from its chunk callback */
    C_RETRY,  /* from a timer at 150-350 ms: in its retry wait */
    N_HOW
};

static const char *const how_names[N_HOW] = {
    "none", "at submit", "while queued", "timer", "chunk", "retry wait"};

enum close_how {
    X_TIMER = 0, /* llmux_client_close() from a timer */
    X_CHUNK,     /* llmux_client_close() from a chunk callback */
    X_DONE,      /* llmux_client_free() (borrowed loop) from a done callback */
    X_PRIVATE,   /* llmux_client_free() of a private-loop client, from a
                    done callback */
    N_CLOSE
};

static const char *const close_names[N_CLOSE] = {
    "close from a timer", "close from a chunk callback",
    "free from a done callback", "free of a private loop from a done"};

struct storm {
    const provider *p;
    uv_loop_t *loop;
    llmux_client *client;
    llmux_mock *mock;
    int n, done;
    int counts[N_HOW];   /* cancels by how */
    int late;            /* timer cancels that found the request done */
    int closing;         /* close: the client was closed or freed */
    int close_after;     /* close: in this chunk / done callback */
    int close_how, seen; /* close: enum close_how, callbacks so far */
    int in_close;        /* inside llmux_client_close()/free() */
    int freed, mock_closed, client_closed;
    uint64_t t_base; /* loop time before the first submit */
    rq *r;
    report rep;
};

/* The text a kind's request gets when nothing goes wrong. */
static void kind_reply(const rq *r, char *out, size_t n)
{
    const kind *k = &kinds[r->kind];
    size_t len = 0;
    int i;
    if (!k->events) {
        full_reply(r->id, out, n);
        return;
    }
    out[0] = '\0';
    for (i = 0; i < k->events && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%stok%d", i ? " " : "", i);
}

/* Why a storm request's outcome is wrong, or NULL. One cancelled before
 * its done ends in LLMUX_ECANCELED, as does every one a close caught;
 * the others end as their kind does. */
static const char *storm_mismatch(const storm *s, const rq *r, int status,
                                  const llmux_response *res)
{
    const kind *k = &kinds[r->kind];
    const char *text = llmux_response_text(res, NULL);
    char full[512];
    if (r->cancelled && r->how == C_CHUNK && r->chunks != r->at_chunk)
        return "a chunk after the cancel";
    if (r->cancelled || s->closing)
        return status == LLMUX_ECANCELED ? NULL : "not ECANCELED";
    if (status != k->code)
        return "code";
    if (r->tries != k->tries)
        return "attempts";
    kind_reply(r, full, sizeof full);
    if (!status && (!text || strcmp(text, full) != 0))
        return "reply text";
    if (k->stream && !status && r->chunk_bytes != strlen(full))
        return "streamed text";
    return NULL;
}

static void storm_cancel(rq *r)
{
    if (r->calls)
        r->s->late++; /* done already: too late, and invalid */
    else if (!r->cancelled) {
        r->cancelled = 1;
        assert_int_equal(llmux_request_cancel(r->req), 0);
    }
}

static void on_cancel_timer(uv_timer_t *t)
{
    storm_cancel(t->data);
}

/* Closes (or frees) the storm's client, the way s->close_how says. */
static void storm_close(storm *s)
{
    s->closing = 1;
    s->in_close = 1;
    if (s->close_how == X_PRIVATE) {
        llmux_mock_close(s->mock, mock_env_set_flag, &s->mock_closed);
        llmux_client_free(s->client); /* finished by llmux_client_run */
        s->freed = 1;
    } else if (s->close_how == X_DONE) {
        llmux_client_free(s->client); /* a borrowed loop: closes */
        s->freed = 1;
    } else {
        llmux_client_close(s->client, mock_env_set_flag, &s->client_closed);
    }
    s->in_close = 0;
}

static void on_close_timer(uv_timer_t *t)
{
    storm_close(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static int storm_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    rq *r = ud;
    storm *s = r->s;
    (void)req;
    count_chunk(r, ch);
    if (r->how == C_CHUNK && r->chunks == r->at_chunk)
        storm_cancel(r);
    if (!s->closing && s->close_how == X_CHUNK && ++s->seen == s->close_after)
        storm_close(s);
    return 0;
}

static void storm_done(llmux_request *req, int status, llmux_response *res,
                       void *ud)
{
    rq *r = ud;
    storm *s = r->s;
    const char *why = count_done(r, status, res);
    (void)req;
    s->done++;
    if (s->in_close)
        why = "done inside the close";
    if (!why)
        why = storm_mismatch(s, r, status, res);
    if (why)
        note(&s->rep, "r%d (%s, cancel: %s %d): %s: got %s x%d, %d chunks",
             r->id, kinds[r->kind].name, how_names[r->how], r->at_chunk, why,
             llmux_err_name(status), r->tries, r->chunks);
    if (!s->closing && (s->close_how == X_DONE || s->close_how == X_PRIVATE) &&
        ++s->seen == s->close_after)
        storm_close(s);
}

static int storm_finished(void *ud)
{
    const storm *s = ud;
    return s->done >= s->n;
}

/* A kind for request i (holders first) and, in a cancel storm, how and
 * when to cancel it: half of them, by whatever suits the kind. */
static void storm_plan(storm *s, rq *r, int cancel)
{
    int i = r->id;
    r->kind = i < HOLDERS ? (int)rnd(N_HOLDING)
                          : N_HOLDING + (int)rnd(N_KINDS - N_HOLDING);
    r->how = C_NONE;
    if (!cancel || rnd(2)) {
        s->counts[C_NONE]++;
        return;
    }
    switch (rnd(4)) {
    case 0: /* started or queued (see keep_queue_still) */
        r->how = C_SUBMIT;
        break;
    case 1: /* only behind the holders is a request surely queued */
        r->how = i >= HOLDERS ? C_QUEUED : C_TIMER;
        break;
    case 2:
        r->how = C_TIMER;
        break;
    default:
        if (kinds[r->kind].code == LLMUX_EPROVIDER && i < HOLDERS)
            r->how = C_RETRY;
        else if (kinds[r->kind].stream && r->kind != K_STALL)
            r->how = C_CHUNK; /* not a stall: it has 2 chunks at most */
        else
            r->how = C_TIMER;
    }
    /* a holder's chunks come 10 ms apart: the 8th after 50 ms */
    r->at_chunk = r->how != C_CHUNK ? 0
                  : i < HOLDERS     ? 8 + (int)rnd(20)
                                    : 1 + (int)rnd(8);
    s->counts[r->how]++;
}

/* Submits request r of a storm and arms its cancel. */
static void storm_submit(storm *s, rq *r)
{
    const kind *k = &kinds[r->kind];
    uint64_t at = 0;
    r->req = chat(llmux_mock_port(s->mock), s->p, k->opts, r->id);
    if (k->fault)
        with_fault(r->req, k->fault);
    llmux_request_set_stream(r->req, k->stream);
    r->in_submit = 1;
    assert_int_equal(
        llmux_submit(s->client, r->req, storm_chunk, storm_done, r), 0);
    r->in_submit = 0;
    switch (r->how) {
    case C_SUBMIT:
        storm_cancel(r);
        break;
    case C_QUEUED:
        at = 1 + rnd(40);
        break;
    case C_TIMER:
        at = 50 + rnd(551);
        break;
    case C_RETRY:
        at = 150 + rnd(201);
        break;
    }
    if (at) {
        /* `at` counts from the first submit: however long submitting
         * takes (the loop does not run meanwhile), the 1-40 ms cancels
         * come before anything that frees a slot */
        uint64_t now = uv_now(s->loop) - s->t_base;
        uv_timer_init(s->loop, &r->t);
        r->t.data = r;
        r->timer_on = 1;
        uv_timer_start(&r->t, on_cancel_timer, at > now ? at - now : 0, 0);
    }
}

static void storm_free(storm *s)
{
    int i;
    for (i = 0; i < s->n; i++)
        if (s->r[i].timer_on)
            uv_close((uv_handle_t *)&s->r[i].t, NULL);
    uv_run(s->loop, UV_RUN_NOWAIT);
    free(s->r);
}

/* A storm of requests to provider p, planned (kinds, cancels) but not
 * submitted; enough of them to queue two behind the holders. */
static void storm_init(storm *s, const provider *p, int cancel, int close)
{
    int i;
    memset(s, 0, sizeof *s);
    s->p = p;
    s->close_how = close;
    s->close_after = 1 + (int)rnd(close == X_CHUNK ? 60 : 40);
    s->n = g_requests > HOLDERS + 2 ? g_requests : HOLDERS + 2;
    s->r = calloc((size_t)s->n, sizeof *s->r);
    assert_non_null(s->r);
    for (i = 0; i < s->n; i++) {
        s->r[i].s = s;
        s->r[i].id = i;
        storm_plan(s, &s->r[i], cancel);
    }
}

/* Its loop, mock (pacing streams 10 ms an event) and client. */
static void storm_env(storm *s, mock_env *e)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    o.max_in_flight = IN_FLIGHT;
    mo.quiet = 1;
    mo.chunk_delay_ms = 10;
    mock_env_start(e, &o, &mo);
    s->loop = &e->loop;
    s->client = e->client;
    s->mock = e->mock;
    uv_update_time(s->loop);
    s->t_base = uv_now(s->loop);
}

static int flag_set(void *ud)
{
    return *(const int *)ud;
}

/* After a storm's requests: the checks every batch gets (`e` NULL: the
 * client and the mock are gone, only the callbacks are checked), the
 * queue's promise, the client's counters; then its line. */
static void storm_end(storm *s, mock_env *e, const char *what, uint64_t t0)
{
    size_t records;
    int i, canceled = 0, *counts = calloc((size_t)s->n, sizeof *counts);
    assert_non_null(counts);
    if (e) {
        batch_checks(e, s->r, s->n, &s->rep, &records);
        mock_counts(e, counts, s->n);
    }
    for (i = 0; i < s->n; i++) {
        const rq *r = &s->r[i];
        canceled += r->status == LLMUX_ECANCELED;
        if (!e && r->calls != 1)
            note(&s->rep, "r%d: %d done callbacks", i, r->calls);
        /* a request cancelled while queued never reaches the server,
         * nor counts an attempt; one cancelled in its retry wait is not
         * retried; none is seen more often than llmux counted */
        if (r->cancelled &&
            (r->how == C_QUEUED || (r->how == C_SUBMIT && i >= IN_FLIGHT)) &&
            (counts[i] || r->tries))
            note(&s->rep,
                 "r%d, cancelled while queued: %d attempts, %d at the mock", i,
                 r->tries, counts[i]);
        if ((r->cancelled && r->how == C_RETRY && counts[i] > 1) ||
            counts[i] > r->tries)
            note(&s->rep, "r%d (cancel %s): %d attempts, %d at the mock", i,
                 how_names[r->how], r->tries, counts[i]);
    }
    free(counts);
    if (e && e->client && !s->closing) {
        llmux_stats st;
        memset(&st, 0, sizeof st);
        st.version = LLMUX_STATS_VERSION;
        assert_int_equal(llmux_client_stats(e->client, &st), 0);
        if (st.canceled != (uint64_t)canceled || st.requests != (uint64_t)s->n)
            note(&s->rep, "stats: %llu canceled, %llu requests",
                 (unsigned long long)st.canceled,
                 (unsigned long long)st.requests);
    }
    print_message("%-10s %-36s %4d requests, %3d cancelled, %5llu ms%s\n",
                  s->p->name, what, s->n, canceled,
                  (unsigned long long)((uv_hrtime() - t0) / 1000000u),
                  s->rep.bad ? "  FAIL" : "");
    if (s->rep.bad)
        print_message("    %s\n", s->rep.first);
}

/* Request i is of kind k and cancelled `how`: every way is in every
 * cancel storm, whatever the dice said. */
static void force(storm *s, int i, int k, int how)
{
    rq *r = &s->r[i];
    s->counts[r->how]--;
    s->counts[how]++;
    r->kind = k;
    r->how = how;
    r->at_chunk = how == C_CHUNK ? 8 + (int)rnd(20) : 0;
}

/* At most this many of a holder's first IN_FLIGHT leave at submit: the
 * next holders, never cancelled before 50 ms, take their slots, so that
 * what stands behind the holders is surely queued until then. */
static void keep_queue_still(storm *s)
{
    int i, left = 0, freed = 0;
    for (i = IN_FLIGHT; i < HOLDERS; i++)
        left += s->r[i].how != C_SUBMIT;
    for (i = 0; i < IN_FLIGHT; i++)
        if (s->r[i].how == C_SUBMIT && ++freed > left) {
            s->r[i].how = C_NONE;
            s->counts[C_SUBMIT]--;
            s->counts[C_NONE]++;
        }
}

/*
 * The cancel storm: a mixed batch (slow answers, retry waits, paced and
 * stalled streams, then quick answers, streams and failures), and a
 * random half cancelled: right after llmux_submit(), while queued, from
 * a timer, from its chunk callback, during its retry wait.
 */
static void test_cancel_storm(void **state)
{
    size_t p;
    int failed = 0;
    (void)state;
    g_rng = g_seed;
    print_message("cancel storm: seed %llu (LLMUX_FAULTS_SEED=%llu repeats "
                  "it)\n",
                  (unsigned long long)g_seed, (unsigned long long)g_seed);
    for (p = 0; p < N_PROV; p++) {
        mock_env e;
        storm s;
        char what[160];
        int i;
        uint64_t t0;
        if (!selected(providers[p].name))
            continue;
        storm_init(&s, &providers[p], 1, N_CLOSE);
        force(&s, 0, K_RETRY, C_RETRY);
        force(&s, 1, K_PACED, C_CHUNK);
        force(&s, 2, s.r[2].kind, C_TIMER);
        force(&s, 3, s.r[3].kind, C_SUBMIT); /* started */
        force(&s, HOLDERS, s.r[HOLDERS].kind, C_QUEUED);
        force(&s, HOLDERS + 1, s.r[HOLDERS + 1].kind, C_SUBMIT); /* queued */
        keep_queue_still(&s);
        storm_env(&s, &e);
        t0 = uv_hrtime();
        for (i = 0; i < s.n; i++)
            storm_submit(&s, &s.r[i]);
        if (!run_until(s.loop, storm_finished, &s, 60000))
            note(&s.rep, "hang: %d of %d not done after 60 s", s.n - s.done,
                 s.n);
        snprintf(what, sizeof what,
                 "cancel: %d submit, %d queued, %d timer (%d late), "
                 "%d chunk, %d retry",
                 s.counts[C_SUBMIT], s.counts[C_QUEUED], s.counts[C_TIMER],
                 s.late, s.counts[C_CHUNK], s.counts[C_RETRY]);
        storm_end(&s, &e, what, t0);
        failed += s.rep.bad != 0;
        storm_free(&s);
        mock_env_stop(&e);
    }
    assert_int_equal(failed, 0);
}

/* Error lines from a private-loop client ("private loop still has
 * handles"). */
static void on_log(int level, const char *msg, void *ud)
{
    if (level == LLMUX_LOG_ERROR)
        note(ud, "client log: %s", msg);
}

/* A close storm on a private-loop client with the mock on its loop: a
 * done callback closes the mock and frees the client, which the
 * llmux_client_run() of that callback finishes. */
static void close_private(storm *s, uint64_t t0)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_mock_options mo = LLMUX_MOCK_OPTIONS_INIT;
    int i;
    o.max_in_flight = IN_FLIGHT;
    o.log = on_log;
    o.log_userdata = &s->rep;
    o.log_level = LLMUX_LOG_ERROR;
    assert_int_equal(llmux_client_new(&s->client, &o), 0);
    s->loop = llmux_client_loop(s->client);
    mo.quiet = 1;
    mo.chunk_delay_ms = 10;
    assert_int_equal(llmux_mock_start(&s->mock, s->loop, &mo), 0);
    for (i = 0; i < s->n; i++)
        storm_submit(s, &s->r[i]);
    for (i = 0; i < 1000000 && !s->freed; i++)
        llmux_client_run(s->client, LLMUX_RUN_ONCE);
    /* the run that called back freed the client, its loop and the mock */
    if (!s->freed || !s->mock_closed)
        note(&s->rep, "not closed: freed %d, mock closed %d", s->freed,
             s->mock_closed);
    storm_end(s, NULL, close_names[X_PRIVATE], t0);
    free(s->r);
}

/*
 * The close storm: the client closed or freed with everything in flight
 * (slow answers, retry waits, paced and stalled streams, a queue), at a
 * random moment, from a timer, a chunk callback or a done callback, and
 * a private loop's client freed from a done callback. Every request gets
 * its done callback once, never inside the close; all but those done
 * before get LLMUX_ECANCELED.
 */
static void test_close_storm(void **state)
{
    size_t p;
    int how, failed = 0;
    (void)state;
    g_rng = g_seed ^ 0x5DEECE66Dull;
    print_message("close storm: seed %llu\n", (unsigned long long)g_seed);
    for (p = 0; p < N_PROV; p++)
        for (how = 0; how < N_CLOSE; how++) {
            mock_env e;
            storm s;
            uv_timer_t t;
            int i;
            uint64_t t0 = uv_hrtime();
            if (!selected(providers[p].name))
                continue;
            storm_init(&s, &providers[p], 0, how);
            if (how == X_PRIVATE) {
                close_private(&s, t0);
                failed += s.rep.bad != 0;
                continue;
            }
            storm_env(&s, &e);
            if (how == X_TIMER) {
                uv_timer_init(s.loop, &t);
                t.data = &s;
                uv_timer_start(&t, on_close_timer, rnd(300), 0);
            }
            for (i = 0; i < s.n; i++)
                storm_submit(&s, &s.r[i]);
            if (!run_until(s.loop, storm_finished, &s, 60000))
                note(&s.rep, "hang: %d of %d not done after 60 s", s.n - s.done,
                     s.n);
            if (!s.closing) {
                note(&s.rep, "every request done before the close");
                if (how == X_TIMER)
                    uv_close((uv_handle_t *)&t, NULL);
                storm_close(&s);
            }
            if (how != X_DONE &&
                !run_until(s.loop, flag_set, &s.client_closed, 10000))
                note(&s.rep, "no close callback");
            e.client = NULL; /* closed or freed */
            e.client_closed = 1;
            storm_end(&s, &e, close_names[how], t0);
            failed += s.rep.bad != 0;
            storm_free(&s);
            mock_env_stop(&e);
        }
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_matrix),
        cmocka_unit_test(test_cancel_storm),
        cmocka_unit_test(test_close_storm),
    };
    g_requests = (int)env_long("LLMUX_FAULTS_REQUESTS", 200, 1, 100000);
    g_seed = (uint64_t)env_long("LLMUX_FAULTS_SEED",
                                1 + (long)(uv_hrtime() % 1000000007u), 1,
                                0x7fffffffL);
    g_only = getenv("LLMUX_FAULTS_ONLY");
    if (getenv("LLMUX_FAULTS_TEST")) /* test_cancel_storm, test_*_storm */
        cmocka_set_test_filter(getenv("LLMUX_FAULTS_TEST"));
    setenv("OPENAI_API_KEY", "", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
