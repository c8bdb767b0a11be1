/*
 * examples/trace.c: observing every attempt with the client hook, as a
 * tracer would. The hook prints one JSON line per attempt and one per
 * request, their keys the OpenTelemetry GenAI attribute names (so these
 * lines map onto spans and metrics as they are), to stderr beside the
 * answers on stdout.
 *
 *   build/examples/trace SPEC [PROMPT...]
 *
 * Against llmux-mock, with one 503 scripted so that the first request
 * is retried:
 *
 *   llmux-mock --port 8080 --fault "status=503;retry_after=0" &
 *   build/examples/trace \
 *       "openai/gpt-4o-mini;base_url=http://127.0.0.1:8080/v1;api_key=x" \
 *       "Say hello."
 *
 * It sends the prompt twice, once streamed. Exits 0 when both answered,
 * 1 otherwise, 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L /* <uv.h> under -std=c99 */
#include <stdio.h>
#include <string.h>

#include <llmux/llmux.h>

/* A JSON string; the values here are names, URLs and ids. */
static void jstr(const char *k, const char *v)
{
    fprintf(stderr, ",\"%s\":", k);
    if (!v) {
        fputs("null", stderr);
        return;
    }
    fputc('"', stderr);
    for (; *v; v++)
        if (*v == '"' || *v == '\\')
            fprintf(stderr, "\\%c", *v);
        else if ((unsigned char)*v < 0x20)
            fprintf(stderr, "\\u%04x", (unsigned char)*v);
        else
            fputc(*v, stderr);
    fputc('"', stderr);
}

/* A count, or null when unknown (-1). */
static void jnum(const char *k, long long v)
{
    if (v < 0)
        fprintf(stderr, ",\"%s\":null", k);
    else
        fprintf(stderr, ",\"%s\":%lld", k, v);
}

static void on_hook(llmux_request *req, const llmux_hook_event *ev, void *ud)
{
    const char *what = ev->kind == LLMUX_HOOK_ATTEMPT_START ? "attempt_start"
                       : ev->kind == LLMUX_HOOK_ATTEMPT_END ? "attempt_end"
                                                            : "request_end";
    (void)req;
    (void)ud;
    if (ev->kind == LLMUX_HOOK_ATTEMPT_START)
        return; /* one line per attempt: its end says it all */
    fprintf(stderr, "{\"event\":\"%s\"", what);
    jstr("gen_ai.operation.name", ev->operation_name);
    jstr("gen_ai.provider.name", ev->provider_name);
    jstr("gen_ai.request.model", ev->request_model);
    fprintf(stderr, ",\"gen_ai.request.stream\":%s",
            ev->stream ? "true" : "false");
    jstr("server.address", ev->server_address);
    jnum("server.port", ev->server_port);
    jnum("llmux.attempt", ev->attempt);
    jnum("llmux.fallback", ev->fallback);
    jnum("http.response.status_code", ev->http_status);
    jstr("error.type", ev->error_type);
    jstr("llmux.next", ev->next);
    fprintf(stderr, ",\"gen_ai.client.operation.duration\":%.6f",
            ev->duration_s);
    if (ev->time_to_first_chunk_s >= 0)
        fprintf(stderr, ",\"gen_ai.response.time_to_first_chunk\":%.6f",
                ev->time_to_first_chunk_s);
    jnum("gen_ai.usage.input_tokens", ev->input_tokens);
    jnum("gen_ai.usage.output_tokens", ev->output_tokens);
    jstr("gen_ai.response.id", ev->response_id);
    jstr("gen_ai.response.model", ev->response_model);
    if (ev->code == 0 && ev->response) {
        size_t i, n = llmux_response_choice_count(ev->response);
        fputs(",\"gen_ai.response.finish_reasons\":[", stderr);
        for (i = 0; i < n; i++) {
            const char *f = llmux_finish_name(
                llmux_choice_finish(llmux_response_choice(ev->response, i)));
            fprintf(stderr, "%s\"%s\"", i ? "," : "", f ? f : "");
        }
        fputc(']', stderr);
    }
    fputs("}\n", stderr);
}

typedef struct call {
    int done, status, stream;
} call;

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    size_t len;
    const char *t = llmux_chunk_text(ch, &len);
    (void)req;
    (void)ud;
    fwrite(t, 1, len, stdout);
    return 0;
}

static void on_done(llmux_request *req, int status, llmux_response *res,
                    void *ud)
{
    call *c = ud;
    (void)req;
    c->done = 1;
    c->status = status;
    if (status == 0 && !c->stream)
        fputs(llmux_response_text(res, NULL), stdout);
    else if (status)
        fprintf(stderr, "trace: %s\n", llmux_response_error(res)->message);
    fputc('\n', stdout);
}

int main(int argc, char **argv)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_client *client;
    call calls[2] = {{0, 0, 0}, {0, 0, 1}};
    char prompt[1024] = "";
    int i, rc, failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: trace SPEC [PROMPT...]\n");
        return 2;
    }
    for (i = 2; i < argc; i++)
        snprintf(prompt + strlen(prompt), sizeof prompt - strlen(prompt),
                 "%s%s", i > 2 ? " " : "", argv[i]);
    o.hook = on_hook;
    if ((rc = llmux_client_new(&client, &o)) != 0) {
        fprintf(stderr, "trace: %s\n", llmux_strerror(rc));
        return 2;
    }
    /* one after the other, so the lines of each stay together */
    for (i = 0; i < 2; i++) {
        llmux_request *req;
        if ((rc = llmux_request_new(&req, LLMUX_OP_CHAT, argv[1])) != 0 ||
            (rc = llmux_request_add_message(req, LLMUX_ROLE_USER,
                                            *prompt ? prompt : "Hello")) ||
            (rc = llmux_request_set_stream(req, calls[i].stream))) {
            fprintf(stderr, "trace: %s\n", llmux_request_errmsg(req));
            llmux_request_free(req);
            llmux_client_free(client);
            return 2;
        }
        if ((rc = llmux_submit(client, req, on_chunk, on_done, &calls[i]))) {
            fprintf(stderr, "trace: %s\n", llmux_request_errmsg(req));
            llmux_request_free(req);
            llmux_client_free(client);
            return 2;
        }
        llmux_client_run(client, LLMUX_RUN_DEFAULT);
        failed |= !calls[i].done || calls[i].status != 0;
    }
    llmux_client_free(client);
    return failed ? 1 : 0;
}
