/*
 * tools/cli/tool_ops.c: the commands that send one request: chat, complete,
 * embed, models, tokenize, detokenize, evaluate.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include <llmux/llmux.h>

#include "cli.h"

/* ---- commands ----------------------------------------------------------- */

/* Applies the command-line settings to `req`. Returns 0 or exit status. */
int apply_opts(const cli *c, llmux_request *req)
{
    size_t i;
    int rc;
    if (c->base_url &&
        (rc = llmux_request_set_option(req, "base_url", c->base_url)))
        return setter_failed(c, req, "--base-url", rc);
    if (c->api_key &&
        (rc = llmux_request_set_option(req, "api_key", c->api_key)))
        return setter_failed(c, req, "--api-key", rc);
    if (c->system && (rc = llmux_request_set_system(req, c->system)))
        return setter_failed(c, req, "--system", rc);
    if ((c->has & HAS_MAX_TOKENS) &&
        (rc = llmux_request_set_max_tokens(req, c->max_tokens)))
        return setter_failed(c, req, "--max-tokens", rc);
    if ((c->has & HAS_TEMPERATURE) &&
        (rc = llmux_request_set_temperature(req, c->temperature))) {
        errorf(c, "--temperature: out of range");
        return exit_status(rc);
    }
    if ((c->has & HAS_TOP_P) && (rc = llmux_request_set_top_p(req, c->top_p))) {
        errorf(c, "--top-p: out of range (0 to 1)");
        return exit_status(rc);
    }
    if ((c->has & HAS_SEED) && (rc = llmux_request_set_seed(req, c->seed)))
        return setter_failed(c, req, "--seed", rc);
    for (i = 0; i < c->n_stops; i++)
        if ((rc = llmux_request_add_stop(req, c->stops[i])))
            return setter_failed(c, req, "--stop", rc);
    if (c->stream && (rc = llmux_request_set_stream(req, 1)))
        return setter_failed(c, req, "--stream", rc);
    /*
     * The setters bound the request; the same values also go in as
     * options, because the config string's timeout= and max_retries=
     * would otherwise win over the flags.
     */
    if ((c->has & HAS_TIMEOUT) &&
        ((rc = llmux_request_set_timeout_ms(req, c->timeout_ms)) ||
         (rc = set_seconds_option(req, "timeout", c->timeout_ms))))
        return setter_failed(c, req, "--timeout", rc);
    if (c->has & HAS_RETRIES) {
        char v[16];
        snprintf(v, sizeof v, "%d", c->retries);
        if ((rc = llmux_request_set_max_retries(req, c->retries)) ||
            (rc = llmux_request_set_option(req, "max_retries", v)))
            return setter_failed(c, req, "--retries", rc);
    }
    /*
     * Stage timeouts: the setters hold for the fallbacks too; the option
     * makes "0 = none" override the SPEC's own key (a setter's 0 means
     * "the default").
     */
    if ((c->has & HAS_CONNECT) &&
        ((rc = llmux_request_set_connect_timeout_ms(req,
                                                    c->connect_timeout_ms)) ||
         (rc = set_seconds_option(req, "connect_timeout",
                                  c->connect_timeout_ms))))
        return setter_failed(c, req, "--connect-timeout", rc);
    if ((c->has & HAS_FIRST_BYTE) &&
        ((rc = llmux_request_set_first_byte_timeout_ms(
              req, c->first_byte_timeout_ms)) ||
         (rc = set_seconds_option(req, "first_byte_timeout",
                                  c->first_byte_timeout_ms))))
        return setter_failed(c, req, "--first-byte-timeout", rc);
    if ((c->has & HAS_IDLE) &&
        ((rc = llmux_request_set_idle_timeout_ms(req, c->idle_timeout_ms)) ||
         (rc = set_seconds_option(req, "idle_timeout", c->idle_timeout_ms))))
        return setter_failed(c, req, "--idle-timeout", rc);
    for (i = 0; i < c->n_fields; i++) {
        const char *eq = strchr(c->fields[i], '=');
        char key[256];
        size_t klen = (size_t)(eq - c->fields[i]);
        if (klen >= sizeof key) {
            errorf(c, "--field: the key is too long");
            return EXIT_USAGE;
        }
        memcpy(key, c->fields[i], klen);
        key[klen] = '\0';
        if ((rc = llmux_request_set_field(req, key, eq + 1)))
            return setter_failed(c, req, "--field", rc);
    }
    if (c->has & HAS_N) {
        char v[24];
        snprintf(v, sizeof v, "%ld", c->n_choices);
        if ((rc = llmux_request_set_field(req, "n", v)))
            return setter_failed(c, req, "--n", rc);
    }
    if ((c->has & HAS_LOGPROBS) &&
        (rc = llmux_request_set_field(req, "logprobs", "true")))
        return setter_failed(c, req, "--logprobs", rc);
    if (c->has & HAS_TOP_LOGPROBS) {
        char v[24];
        snprintf(v, sizeof v, "%ld", c->top_logprobs);
        if ((rc = llmux_request_set_field(req, "top_logprobs", v)))
            return setter_failed(c, req, "--top-logprobs", rc);
    }
    for (i = 0; i < c->n_headers; i++)
        if ((rc = llmux_request_add_header(req, c->headers[i])))
            return setter_failed(c, req, "--header", rc);
    for (i = 0; i < c->n_fallbacks; i++) {
        int st = check_fallback(c, i);
        if (st)
            return st;
        if ((rc = llmux_request_add_fallback(req, c->fallbacks[i])))
            return fallback_failed(c, req, i, rc);
    }
    return 0;
}

/* -v: what the answer cost, or why that is not known, on stderr:
 *   llmux: cost $0.000012 (openai gpt-4o-mini-2024-07-18, 12 + 30 tokens)
 * or that it came from the response cache (`;cache=`), at no cost. */
static void print_cost(const cli *c, const llmux_response *res)
{
    int known;
    double usd = llmux_response_cost(res, &known);
    const llmux_usage *u = llmux_response_usage(res);
    const char *p = llmux_response_provider(res);
    const char *m = llmux_response_model(res);
    if (llmux_response_cached(res))
        errorf(c, "cost $0: answered from the response cache");
    else if (known)
        errorf(c, "cost $%.6f (%s %s, %ld + %ld tokens)", usd, p ? p : "?",
               m ? m : "?", u->prompt_tokens > 0 ? u->prompt_tokens : 0L,
               u->completion_tokens > 0 ? u->completion_tokens : 0L);
    else if (u->prompt_tokens < 0 && u->completion_tokens < 0)
        errorf(c, "cost unknown: the provider reported no usage");
    else
        errorf(c, "cost unknown: no price for %s %s (data/prices.json)",
               p ? p : "?", m ? m : "?");
}

/* The MIME type of an image file, by its name's extension, or NULL. */
static const char *image_mime(const char *path)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {{".png", "image/png"},
                 {".jpg", "image/jpeg"},
                 {".jpeg", "image/jpeg"},
                 {".gif", "image/gif"},
                 {".webp", "image/webp"}};
    size_t n = strlen(path), i;
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcasecmp(path + n - e, types[i].ext) == 0)
            return types[i].mime;
    }
    return NULL;
}

/* --image: each file's bytes or URL as an image part of the prompt's
 * user message. 0, or an exit status after printing why. */
static int add_images(const cli *c, llmux_request *req)
{
    size_t i;
    for (i = 0; i < c->n_images; i++) {
        const char *v = c->images[i];
        int rc;
        if (!strncmp(v, "http://", 7) || !strncmp(v, "https://", 8)) {
            rc = llmux_request_add_image_url(req, LLMUX_ROLE_USER, v, NULL);
        } else {
            const char *mime = image_mime(v);
            size_t len;
            char *b;
            if (!mime) {
                errorf(c,
                       "--image: %s: not a png, jpg, gif or webp file name, "
                       "nor an http(s) URL",
                       v);
                return EXIT_USAGE;
            }
            if (!(b = read_input(c, "--image", "", v, &len)))
                return EXIT_USAGE;
            rc = llmux_request_add_image(req, LLMUX_ROLE_USER, mime, b, len,
                                         NULL);
            free(b);
        }
        if (rc)
            return setter_failed(c, req, "--image", rc);
    }
    return 0;
}

/*
 * Detokenize: appends the white-space-separated token ids in `s` (which it
 * modifies). Returns 0, or an exit status after printing why.
 */
static int add_token_ids(const cli *c, llmux_request *req, char *s)
{
    static const char ws[] = " \t\r\n\v\f";
    char *id, *save = NULL;
    long long v;
    int rc;
    for (id = strtok_r(s, ws, &save); id; id = strtok_r(NULL, ws, &save)) {
        if (parse_ll(id, 0, 9223372036854775807LL, &v)) {
            errorf(c,
                   "detokenize: \"%s\" is not a token id (a "
                   "non-negative integer)",
                   id);
            return EXIT_USAGE;
        }
        if ((rc = llmux_request_add_token_id(req, v)))
            return setter_failed(c, req, "token id", rc);
    }
    return 0;
}

/* Detokenize: the ids from the words, or stdin. Returns 0 or a status. */
static int set_token_ids(const cli *c, llmux_request *req)
{
    char *s;
    int st;
    size_t len;
    if (words_are_stdin(c)) {
        s = read_input(c, "input", "the token ids from the terminal; end them",
                       "-", &len);
        if (!s)
            return EXIT_USAGE;
    } else {
        s = join_words(c);
    }
    st = add_token_ids(c, req, s);
    free(s);
    return st;
}

/* Creates the request for the command and fills its input. */
static int build_request(const cli *c, llmux_request **out)
{
    llmux_request *req = NULL;
    int rc = 0, st;
    *out = NULL;

    if (c->request_file) {
        size_t len;
        char *text = read_input(c, "--request-file",
                                "the request JSON from the terminal; end it",
                                c->request_file, &len);
        if (!text)
            return EXIT_USAGE;
        /* the user's own file: its "model" may be a whole config string */
        rc = llmux_request_new_json_ex(&req, c->spec, text, len,
                                       LLMUX_JSON_TRUSTED);
        free(text);
    } else {
        rc = llmux_request_new(&req, cmd_op(c->cmd), c->spec);
    }
    if (rc) {
        const char *m = req ? llmux_request_errmsg(req) : "";
        if (m && *m)
            errorf(c, "%s", m);
        else
            errorf(c, "%s", llmux_strerror(rc));
        llmux_request_free(req);
        return exit_status(rc);
    }
    if ((st = apply_opts(c, req))) {
        llmux_request_free(req);
        return st;
    }

    if (c->cmd == CMD_EMBED) {
        if (words_are_stdin(c)) {
            size_t len;
            char *s = read_input(c, "input",
                                 "the inputs from the terminal, one per "
                                 "line; end them",
                                 "-", &len),
                 *line, *nl;
            if (!s) {
                llmux_request_free(req);
                return EXIT_USAGE;
            }
            for (line = s; !rc && *line; line = nl) {
                nl = strchr(line, '\n');
                if (nl)
                    *nl++ = '\0';
                else
                    nl = line + strlen(line);
                if (*line && line[strlen(line) - 1] == '\r')
                    line[strlen(line) - 1] = '\0';
                if (*line)
                    rc = llmux_request_add_input(req, line);
            }
            free(s);
        } else {
            size_t i;
            for (i = 0; !rc && i < c->n_words; i++)
                rc = llmux_request_add_input(req, c->words[i]);
        }
    } else if (c->cmd == CMD_DETOKENIZE) {
        if ((st = set_token_ids(c, req))) {
            llmux_request_free(req);
            return st;
        }
    } else if (c->cmd != CMD_MODELS) {
        /* with --request-file, PROMPT words add a user message */
        if (!c->request_file || c->n_words > 0) {
            char *p = get_prompt(c);
            if (!p) {
                llmux_request_free(req);
                return EXIT_USAGE;
            }
            rc = c->cmd == CMD_CHAT
                     ? llmux_request_add_message(req, LLMUX_ROLE_USER, p)
                     : llmux_request_set_prompt(req, p);
            free(p);
        }
        if (!rc && c->cmd == CMD_EVALUATE)
            rc = llmux_request_set_expected(req, c->expected);
        if (!rc && (st = add_images(c, req)) != 0) {
            llmux_request_free(req);
            return st;
        }
    }
    if (rc) {
        st = setter_failed(c, req, "input", rc);
        llmux_request_free(req);
        return st;
    }
    *out = req;
    return 0;
}

int run_request(cli *c)
{
    llmux_request *req;
    llmux_response *res = NULL;
    llmux_client_options opts = LLMUX_CLIENT_OPTIONS_INIT;
    run_ctx x;
    int rc, st;

    if (c->help) {
        print_cmd_help(cmd_def_of(c->cmd));
        return 0;
    }
    if (!c->spec && !c->request_file)
        return usage_error(c, "%s: -m SPEC is required", c->cmd_name);
    if (c->cmd == CMD_MODELS && c->n_words)
        return usage_error(c, "models: unexpected argument \"%s\"",
                           c->words[0]);
    if (c->cmd == CMD_EVALUATE && !c->expected)
        return usage_error(c, "evaluate: --expected TEXT is required");
    if (c->request_file && strcmp(c->request_file, "-") == 0 &&
        c->n_words == 1 && strcmp(c->words[0], "-") == 0)
        return usage_error(c, "--request-file - and PROMPT - both read "
                              "stdin");
    note_secrets(c);

    if ((st = build_request(c, &req)))
        return st;

    memset(&x, 0, sizeof x);
    x.c = c;
    llmux_client_options_init(&opts);
    cli_credentials(c, &opts);
    rc = llmux_run(req, &opts, on_chunk, &x, &res);

    if (g_out_errno) {
        /* stdout failed while streaming: main() reports it, if at all */
        st = 0;
    } else if (rc || !res || llmux_response_error(res)) {
        if (x.text_seen) /* end the partial answer's line */
            fputc('\n', stdout);
        flush_out();
        print_failure(c, req, rc ? rc : LLMUX_ENOMEM, res);
        st = exit_status(rc ? rc
                         : llmux_response_error(res)
                             ? llmux_response_error(res)->code
                             : LLMUX_ENOMEM);
    } else {
        errno = 0;
        st = print_answer(c, &x, res) ? EXIT_TRANSPORT : 0;
        if (ferror(stdout) && !g_out_errno)
            g_out_errno = errno ? errno : EIO;
        flush_out();
        if (c->verbose && llmux_response_fallback(res) > 0) {
            const char *p = llmux_response_provider(res);
            errorf(c, "answered by %s (fallback %d)", p && *p ? p : "?",
                   llmux_response_fallback(res));
        }
        if (c->verbose)
            print_cost(c, res);
    }
    llmux_response_free(res);
    llmux_request_free(req);
    return st;
}
