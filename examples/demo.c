/*
 * examples/demo.c: one request per available provider, all at once, on
 * one loop, then the answers and the elapsed time.
 *
 * A provider is "available" when its plugin is installed and either its
 * API key (for Ollama: OLLAMA_HOST) is in the environment, and then the
 * real service answers, or LLMUX_DEMO_BASE_URL points at a llmux-mock
 * server, which then answers for the providers without keys.
 * `./build.sh demo` starts llmux-mock and runs this.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, and <uv.h> under -std=c99 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>
#include <uv.h>

typedef struct provider {
    const char *name;
    const char *model;
    const char *key_env;
    const char *mock_path; /* path prefix of this protocol on llmux-mock */
} provider;

/* key_env names the variable that selects the real service: an API key,
 * or for Ollama the server's address. */
static const provider providers[] = {
    {"openai", "gpt-4o-mini", "OPENAI_API_KEY", "/v1"},
    {"mistral", "mistral-small-latest", "MISTRAL_API_KEY", "/mistral"},
    {"ollama", "llama3.2", "OLLAMA_HOST", "/ollama"},
    {"alephalpha", "llama-3.1-8b-instruct", "AA_TOKEN", "/aleph"},
};
#define N_PROVIDERS (sizeof providers / sizeof providers[0])

typedef struct slot {
    const provider *p;
    int done;
    int status;
    char *answer;
    double ms;
    int mock;
} slot;

static uint64_t t0;
static uv_loop_t loop;

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    slot *s = ud;
    (void)req;
    s->done = 1;
    s->status = status;
    s->ms = (double)(uv_hrtime() - t0) / 1e6;
    s->answer = strdup(status == 0 ? llmux_response_text(res, NULL)
                                   : llmux_response_error(res)->message);
}

int main(void)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *c;
    slot slots[N_PROVIDERS];
    const char *mock = getenv("LLMUX_DEMO_BASE_URL");
    size_t i, started = 0;
    int failures = 0;

    uv_loop_init(&loop);
    o.loop = &loop;
    if (llmux_client_new(&c, &o))
        return 1;
    memset(slots, 0, sizeof slots);
    t0 = uv_hrtime();
    for (i = 0; i < N_PROVIDERS; i++) {
        const provider *p = &providers[i];
        const char *key = getenv(p->key_env);
        char spec[512];
        llmux_request *req;
        slots[i].p = p;
        {
            llmux_provider_info info;
            char err[256];
            if (llmux_provider_probe(p->name, NULL, &info, err, sizeof err)) {
                printf("%-10s skipped: %s\n", p->name, err);
                slots[i].done = -1;
                continue;
            }
        }
        if (key && *key)
            snprintf(spec, sizeof spec, "%s/%s", p->name, p->model);
        else if (mock) {
            snprintf(spec, sizeof spec, "%s/%s;base_url=%s%s;api_key=demo",
                     p->name, p->model, mock, p->mock_path);
            slots[i].mock = 1;
        } else {
            printf("%-10s skipped (set %s or LLMUX_DEMO_BASE_URL)\n", p->name,
                   p->key_env);
            slots[i].done = -1;
            continue;
        }
        llmux_request_new(&req, LLMUX_OP_CHAT, spec);
        llmux_request_add_message(
            req, LLMUX_ROLE_USER,
            "In one sentence: why do programmers like C?");
        llmux_request_set_max_tokens(req, 60);
        if (llmux_submit(c, req, NULL, on_done, &slots[i]) != 0) {
            printf("%-10s error: %s\n", p->name, llmux_request_errmsg(req));
            llmux_request_free(req);
            slots[i].done = -1;
            failures++;
            continue;
        }
        started++;
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* all requests run concurrently */
    for (i = 0; i < N_PROVIDERS; i++) {
        if (slots[i].done != 1)
            continue;
        printf("%-10s %-5s %7.1f ms  %s%s\n", slots[i].p->name,
               slots[i].status == 0 ? "ok" : "ERROR", slots[i].ms,
               slots[i].mock ? "[mock] " : "", slots[i].answer);
        failures += slots[i].status != 0;
        free(slots[i].answer);
    }
    printf("%zu request(s) in %.1f ms total\n", started,
           (double)(uv_hrtime() - t0) / 1e6);
    llmux_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return failures ? 1 : 0;
}
