/*
 * bench/llmux-bench.c: the benchmark workload through llmux's public API.
 *
 *   llmux-bench [--stream] [--queue] [--stats] [--stall] [--mem]
 *               [--model M] [--ramp K] N C BASE_URL
 *
 * Sends N chat completions ("openai/gpt-4o-mini", the prompt shape of
 * ../shared/bench-peers) to BASE_URL/chat/completions with C in flight on
 * one client, checks every answer (non-empty text, finish reason "stop";
 * for streams at least two chunks, and the same number of chunks in every
 * stream, as the canned servers send) and exits non-zero on any failure.
 * It prints one summary line on stdout; CPU time and memory are measured
 * from outside (bench/run.sh, /usr/bin/time).
 *
 * By default the benchmark keeps C requests in flight itself (a new one is
 * submitted from each done callback). --queue submits all N at once on a
 * client with max_in_flight = C and max_queue = N, so the engine's FIFO
 * queue does the limiting. --stats prints llmux_client_stats() on stderr;
 * --stall measures the loop's busy time per iteration (everything but the
 * wait for I/O, from uv_metrics_idle_time) and prints the largest; --mem
 * samples the heap in use (mallinfo2) every 50 ms and prints the peak with
 * the process's VmHWM. --ramp K submits the first requests K per loop
 * iteration instead of all before the loop runs. --model replaces
 * "gpt-4o-mini" (llmux-mock takes directives after '#', e.g.
 * "gpt-4o-mini#events=12").
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>
#include <uv.h>

static llmux_client *client;
static char spec[512];
static long total, started, done, failed, chars, chunks;
static long *stream_chunks; /* per request, streams only */
static int stream, queue_mode, want_stats, want_stall, want_mem;
static long ramp, initial; /* --ramp: submit at most `ramp` a loop turn */
static uv_prepare_t ramp_h;

/* --stall: loop iterations and their busy time */
static uv_check_t check_h;
static uint64_t last_check_ns, last_idle_ns, worst_busy_ns;
static uint64_t iterations, over_10ms, over_100ms;

/* --mem: peak heap in use */
static uv_timer_t mem_t;
static size_t heap_peak;

static void start_one(void);

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    (void)req;
    (void)ch;
    stream_chunks[(intptr_t)ud]++;
    chunks++;
    return 0;
}

static void fail(const char *why)
{
    if (failed++ < 5)
        fprintf(stderr, "llmux-bench: request failed: %s\n", why);
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    size_t len = 0;
    (void)req;
    llmux_response_text(res, &len);
    if (status != 0 || len == 0 ||
        llmux_response_finish(res) != LLMUX_FINISH_STOP) {
        const llmux_error *e = llmux_response_error(res);
        fail(e ? e->message : "empty answer");
        if (stream)
            stream_chunks[(intptr_t)ud] = -1; /* counted already */
    }
    chars += (long)len;
    done++;
    if (!queue_mode && started < total)
        start_one();
}

static void start_one(void)
{
    llmux_request *req;
    char content[96];
    int rc;
    snprintf(content, sizeof content,
             "Prompt %ld: what is the capital of France?", started);
    if (llmux_request_new(&req, LLMUX_OP_CHAT, spec) ||
        llmux_request_add_message(req, LLMUX_ROLE_USER, content) ||
        llmux_request_set_max_tokens(req, 64) ||
        llmux_request_set_stream(req, stream)) {
        fprintf(stderr, "llmux-bench: %s\n", llmux_request_errmsg(req));
        exit(1);
    }
    rc = llmux_submit(client, req, stream ? on_chunk : NULL, on_done,
                      (void *)(intptr_t)started);
    if (rc) {
        fprintf(stderr, "llmux-bench: submit: %s\n", llmux_request_errmsg(req));
        exit(1);
    }
    started++;
}

/* Once every stream is done: each successful one delivered at least two
 * chunks, and as many as every other (the servers' answers are canned). */
static void check_stream_counts(void)
{
    long i, first = -1;
    for (i = 0; i < total; i++) {
        if (stream_chunks[i] < 0)
            continue;
        if (stream_chunks[i] < 2) {
            fail("stream with fewer than two chunks");
            continue;
        }
        if (first < 0)
            first = stream_chunks[i];
        else if (stream_chunks[i] != first)
            fail("streams with different numbers of chunks");
    }
}

/* --ramp: the next `ramp` of the initial submissions, before the poll */
static void on_ramp(uv_prepare_t *h)
{
    long k;
    for (k = 0; k < ramp && started < initial; k++)
        start_one();
    if (started >= initial)
        uv_prepare_stop(h);
}

/* One iteration ends: its busy time is the wall time since the previous
 * iteration ended minus the time spent waiting in the poll. */
static void on_check(uv_check_t *h)
{
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(h->loop);
    uint64_t busy = (now - last_check_ns) - (idle - last_idle_ns);
    if (busy > worst_busy_ns)
        worst_busy_ns = busy;
    if (busy > 10000000u)
        over_10ms++;
    if (busy > 100000000u)
        over_100ms++;
    iterations++;
    last_check_ns = now;
    last_idle_ns = idle;
}

static void on_mem_timer(uv_timer_t *t)
{
    struct mallinfo2 mi = mallinfo2();
    (void)t;
    if (mi.uordblks + mi.hblkhd > heap_peak)
        heap_peak = mi.uordblks + mi.hblkhd;
}

static long vm_hwm_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = atol(line + 6);
    fclose(f);
    return kib;
}

static void print_stats(void)
{
    llmux_stats st;
    memset(&st, 0, sizeof st);
    st.version = LLMUX_STATS_VERSION;
    if (llmux_client_stats(client, &st)) {
        fprintf(stderr, "llmux-bench: llmux_client_stats failed\n");
        return;
    }
    fprintf(stderr,
            "llmux-stats requests=%llu succeeded=%llu failed=%llu "
            "attempts=%llu max_in_flight=%zu max_queued=%zu "
            "queue_wait_ms p50=%.1f p99=%.1f first_byte_ms p50=%.1f "
            "p99=%.1f total_ms p50=%.1f p99=%.1f\n",
            (unsigned long long)st.requests, (unsigned long long)st.succeeded,
            (unsigned long long)st.failed, (unsigned long long)st.attempts,
            st.max_in_flight, st.max_queued, st.queue_wait_p50,
            st.queue_wait_p99, st.first_byte_p50, st.first_byte_p99,
            st.total_p50, st.total_p99);
}

static void usage(void)
{
    fprintf(stderr, "usage: llmux-bench [--stream] [--queue] [--stats] "
                    "[--stall] [--mem] [--model M] [--ramp K] N C "
                    "BASE_URL\n");
    exit(2);
}

int main(int argc, char **argv)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    const char *model = "gpt-4o-mini";
    long conc, i;
    int a = 1;
    uint64_t t0, t_submitted;
    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
        if (strcmp(argv[a], "--stream") == 0)
            stream = 1;
        else if (strcmp(argv[a], "--queue") == 0)
            queue_mode = 1;
        else if (strcmp(argv[a], "--stats") == 0)
            want_stats = 1;
        else if (strcmp(argv[a], "--stall") == 0)
            want_stall = 1;
        else if (strcmp(argv[a], "--mem") == 0)
            want_mem = 1;
        else if (strcmp(argv[a], "--model") == 0 && a + 1 < argc)
            model = argv[++a];
        else if (strcmp(argv[a], "--ramp") == 0 && a + 1 < argc &&
                 (ramp = atol(argv[++a])) > 0)
            ;
        else
            usage();
    }
    if (argc - a != 3)
        usage();
    total = atol(argv[a]);
    conc = atol(argv[a + 1]);
    if (total <= 0 || conc <= 0) {
        fprintf(stderr, "llmux-bench: N and C must be positive\n");
        return 2;
    }
    snprintf(spec, sizeof spec,
             "openai/%s;base_url=%s;api_key=sk-test;max_retries=0", model,
             argv[a + 2]);
    if (stream &&
        !(stream_chunks = calloc((size_t)total, sizeof *stream_chunks))) {
        fprintf(stderr, "llmux-bench: out of memory\n");
        return 1;
    }
    o.max_connections = conc;
    if (queue_mode) {
        o.max_in_flight = (size_t)conc;
        o.max_queue = (size_t)total;
    }
    if (llmux_client_new(&client, &o)) {
        fprintf(stderr, "llmux-bench: cannot create client\n");
        return 1;
    }
    if (want_stall) {
        uv_loop_t *loop = llmux_client_loop(client);
        if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME)) {
            fprintf(stderr, "llmux-bench: no idle-time metrics\n");
            return 1;
        }
        uv_check_init(loop, &check_h);
        uv_check_start(&check_h, on_check);
        uv_unref((uv_handle_t *)&check_h);
    }
    if (want_mem) {
        uv_timer_init(llmux_client_loop(client), &mem_t);
        uv_timer_start(&mem_t, on_mem_timer, 50, 50);
        uv_unref((uv_handle_t *)&mem_t);
    }
    t0 = uv_hrtime();
    initial = queue_mode || conc > total ? total : conc;
    for (i = 0; i < initial && (!ramp || i < ramp); i++)
        start_one();
    if (ramp) {
        uv_prepare_init(llmux_client_loop(client), &ramp_h);
        if (started < initial)
            uv_prepare_start(&ramp_h, on_ramp);
    }
    t_submitted = uv_hrtime();
    last_check_ns = t_submitted;
    if (want_stall)
        last_idle_ns = uv_metrics_idle_time(llmux_client_loop(client));
    while (done < total)
        llmux_client_run(client, LLMUX_RUN_ONCE);
    if (stream)
        check_stream_counts();
    if (want_stats)
        print_stats();
    if (want_stall) {
        fprintf(stderr,
                "llmux-stall submit_ms=%.1f run_ms=%.1f iterations=%llu "
                "worst_busy_ms=%.1f over_10ms=%llu over_100ms=%llu\n",
                (double)(t_submitted - t0) / 1e6,
                (double)(uv_hrtime() - t_submitted) / 1e6,
                (unsigned long long)iterations, (double)worst_busy_ns / 1e6,
                (unsigned long long)over_10ms, (unsigned long long)over_100ms);
        uv_close((uv_handle_t *)&check_h, NULL);
    }
    if (want_mem) {
        on_mem_timer(&mem_t);
        fprintf(stderr, "llmux-mem heap_peak_kib=%zu vm_hwm_kib=%ld\n",
                heap_peak / 1024, vm_hwm_kib());
        uv_close((uv_handle_t *)&mem_t, NULL);
    }
    if (ramp)
        uv_close((uv_handle_t *)&ramp_h, NULL);
    llmux_client_free(client);
    llmux_global_cleanup();
    free(stream_chunks);
    printf("llmux ok=%ld failed=%ld chars=%ld chunks=%ld\n", done - failed,
           failed, chars, chunks);
    return failed ? 1 : 0;
}
