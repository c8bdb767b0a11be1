/*
 * tools/cli/llmux.c: the `llmux` command-line tool.
 *
 * A thin client of the public API (the include/llmux headers only; json-c
 * writes `providers --json`): it parses the command line, builds one
 * request, runs it with the blocking llmux_run() and prints the answer as
 * text or as OpenAI-shaped JSON; `batch` builds a request per input line
 * and runs them with llmux_as_completed() on a private client, printing a
 * JSON line per request. Its output formats and exit statuses are a
 * contract that scripts depend on; the help texts below (`llmux --help`,
 * `llmux COMMAND --help`) and docs/man/llmux.1.scd are their reference.
 *
 * Locale: the program never calls setlocale(), so it stays in the "C"
 * locale; numbers are parsed and printed with '.' whatever LC_NUMERIC
 * says in the environment.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include <llmux/llmux.h>

/* Exit statuses (see overview_tail). */
#define EXIT_PROVIDER  1
#define EXIT_USAGE     2
#define EXIT_TRANSPORT 3

/* ---- commands and options ------------------------------------------------ */

/* Which command runs: the subset of options each accepts follows. */
enum cmd {
    CMD_CHAT = 1,
    CMD_COMPLETE = 2,
    CMD_EMBED = 4,
    CMD_MODELS = 8,
    CMD_TOKENIZE = 16,
    CMD_DETOKENIZE = 32,
    CMD_EVALUATE = 64,
    CMD_BATCH = 128,
    CMD_PROVIDERS = 256
};

#define CMD_GEN  (CMD_CHAT | CMD_COMPLETE)
#define CMD_TASK (CMD_TOKENIZE | CMD_DETOKENIZE | CMD_EVALUATE)
/* the commands sending one request */
#define CMD_ONE (CMD_GEN | CMD_EMBED | CMD_MODELS | CMD_TASK)
/* the commands sending requests */
#define CMD_ALL (CMD_ONE | CMD_BATCH)
/* the commands with stage timeouts and fallbacks */
#define CMD_RESIL (CMD_GEN | CMD_EMBED | CMD_BATCH)

enum opt_id {
    O_MODEL,
    O_BASE_URL,
    O_API_KEY,
    O_SYSTEM,
    O_MAX_TOKENS,
    O_TEMPERATURE,
    O_TOP_P,
    O_STOP,
    O_SEED,
    O_TIMEOUT,
    O_RETRIES,
    O_CONNECT_TIMEOUT,
    O_FIRST_BYTE_TIMEOUT,
    O_IDLE_TIMEOUT,
    O_FALLBACK,
    O_VERBOSE,
    O_STREAM,
    O_JSON,
    O_REQUEST_FILE,
    O_EXPECTED,
    O_CONCURRENCY,
    O_RPM,
    O_TPM,
    O_AS_COMPLETED,
    O_FAIL_FAST,
    O_JSONL,
    O_HELP
};

/*
 * One option. The table is the single source of what each command accepts
 * and of the options part of its help: a command's --help lists exactly
 * the rows whose `cmds` include it, so the two cannot disagree. A name
 * may have several rows (for commands where it means different things);
 * the row for the running command wins.
 */
typedef struct opt_def {
    const char *name; /* long name without "--" */
    char short_name;  /* or 0 */
    const char *arg;  /* the value's name in the help, NULL: takes none */
    int id;
    unsigned cmds;    /* commands accepting it */
    const char *help; /* lines of at most HELP_TEXT_WIDTH columns */
} opt_def;

static const opt_def opt_defs[] = {
    {"model", 'm', "SPEC", O_MODEL, CMD_ALL,
     "provider and model, a config string:\n"
     "provider/model[;key=value...] (see llmux --help)"},
    {"base-url", 0, "URL", O_BASE_URL, CMD_ALL,
     "the provider's base URL (default: the SPEC's\n"
     "base_url=, the provider's variable, its default)"},
    {"api-key", 0, "KEY", O_API_KEY, CMD_ALL,
     "API key (default: the SPEC's api_key=, or the\n"
     "provider's variable, e.g. OPENAI_API_KEY)"},
    {"system", 's', "TEXT", O_SYSTEM, CMD_CHAT | CMD_BATCH, "system prompt"},
    {"max-tokens", 0, "N", O_MAX_TOKENS, CMD_GEN | CMD_BATCH,
     "maximum tokens to generate"},
    {"temperature", 0, "X", O_TEMPERATURE, CMD_GEN | CMD_BATCH,
     "sampling temperature"},
    {"top-p", 0, "X", O_TOP_P, CMD_GEN | CMD_BATCH, "nucleus sampling"},
    {"stop", 0, "S", O_STOP, CMD_GEN | CMD_BATCH, "stop sequence (repeatable)"},
    {"seed", 0, "N", O_SEED, CMD_GEN | CMD_BATCH, "sampling seed"},
    {"timeout", 0, "SECONDS", O_TIMEOUT, CMD_ALL,
     "deadline for the whole request, retries (and\n"
     "fallbacks) included; fractions allowed; 0 = none"},
    {"retries", 0, "N", O_RETRIES, CMD_ALL,
     "retry budget, 0 to 100 (default 2)"},
    {"connect-timeout", 0, "SECONDS", O_CONNECT_TIMEOUT, CMD_RESIL,
     "time allowed to connect (default 10; must be\n"
     "above 0)"},
    {"first-byte-timeout", 0, "SECONDS", O_FIRST_BYTE_TIMEOUT, CMD_RESIL,
     "time allowed until the answer's first byte\n"
     "(headers, or a stream's first event); 0 = none,\n"
     "the default"},
    {"idle-timeout", 0, "SECONDS", O_IDLE_TIMEOUT, CMD_RESIL,
     "longest silence in the middle of an answer, e.g.\n"
     "between stream events; 0 = none, the default"},
    {"fallback", 0, "SPEC", O_FALLBACK, CMD_RESIL,
     "(repeatable, tried in order) a config string to\n"
     "send the request to when it still fails after its\n"
     "retries with a rate limit, an overload or other\n"
     "5xx, a timeout, a connection failure or a\n"
     "context-length error (never once a stream printed\n"
     "text). --base-url and --api-key apply to -m's SPEC\n"
     "only; a fallback's settings come from its own\n"
     "SPEC; --retries and the stage timeouts hold for\n"
     "each, and --timeout's deadline covers them all.\n"
     "The output is the same whichever answers"},
    {"verbose", 'v', NULL, O_VERBOSE, CMD_GEN | CMD_EMBED,
     "when a fallback answered, say so on stderr:\n"
     "  llmux: answered by <provider> (fallback N)"},
    {"verbose", 'v', NULL, O_VERBOSE, CMD_PROVIDERS,
     "first print the plugin directories in search\n"
     "order, where each comes from and whether it\n"
     "exists; add each provider's key variable to the\n"
     "table (no effect with --json)"},
    {"stream", 0, NULL, O_STREAM, CMD_GEN, "print the answer as it arrives"},
    {"json", 0, NULL, O_JSON, CMD_ONE | CMD_PROVIDERS,
     "print JSON (see output)"},
    {"request-file", 0, "FILE", O_REQUEST_FILE, CMD_CHAT,
     "an OpenAI-style chat request JSON (messages,\n"
     "tools, response_format...) instead of PROMPT;\n"
     "\"-\" reads stdin. PROMPT words given too are\n"
     "appended as a user message. Other flags override\n"
     "the file (--stop adds a stop). Without -m the\n"
     "file's \"model\" is the SPEC"},
    {"expected", 0, "TEXT", O_EXPECTED, CMD_EVALUATE,
     "the completion to score (required)"},
    {"concurrency", 0, "N", O_CONCURRENCY, CMD_BATCH,
     "requests in flight at once (default 8)"},
    {"rpm", 0, "N", O_RPM, CMD_BATCH,
     "requests per minute at most (per endpoint and API\n"
     "key; 0 = no limit, the default)"},
    {"tpm", 0, "N", O_TPM, CMD_BATCH,
     "tokens per minute at most, estimated before\n"
     "sending, corrected by the usage (0 = no limit)"},
    {"as-completed", 0, NULL, O_AS_COMPLETED, CMD_BATCH,
     "print each result when it finishes, not in input\n"
     "order"},
    {"fail-fast", 0, NULL, O_FAIL_FAST, CMD_BATCH,
     "the first failure cancels the rest"},
    {"jsonl", 0, NULL, O_JSONL, CMD_BATCH,
     "each input line is an OpenAI-style chat request\n"
     "JSON (as chat's --request-file) instead of a\n"
     "prompt; without -m each line's \"model\" is its\n"
     "SPEC. A line that is not a valid request gets its\n"
     "error line; the others run"},
    {"help", 'h', NULL, O_HELP, CMD_ALL | CMD_PROVIDERS,
     "print this help and exit"},
};

#define N_OPT_DEFS (sizeof opt_defs / sizeof opt_defs[0])

/* The column where option descriptions start, and their width. */
#define HELP_COL        28
#define HELP_TEXT_WIDTH (80 - HELP_COL)

/* One command: its help beyond the options, which come from opt_defs. */
typedef struct cmd_def {
    const char *name;
    int cmd;
    const char *synopsis; /* after "usage: llmux " */
    const char *summary;  /* its line in the overview */
    const char *text;     /* what it does, reads and prints */
    const char *example;  /* lines of examples */
} cmd_def;

static const cmd_def cmd_defs[] = {
    {"chat", CMD_CHAT, "chat -m SPEC [options] [PROMPT...]",
     "chat completion: the model's answer to PROMPT",
     "Sends PROMPT (its words joined by spaces) as a user message and prints\n"
     "the answer. With no PROMPT, or PROMPT \"-\", the prompt is read from\n"
     "stdin, its trailing newline removed. An empty prompt is a usage error.\n"
     "-m is required unless --request-file names the model.\n"
     "\n"
     "output:\n"
     "  the answer's text and a newline (with --stream, the text as it\n"
     "  arrives). An answer that is only tool calls prints one line per\n"
     "  call:\n"
     "    tool_call <id> <name> <arguments>\n"
     "  where <arguments> is the call's JSON text.\n"
     "  --json: one chat.completion object; with --stream, one\n"
     "  chat.completion.chunk object per line.\n",
     "  llmux chat -m openai/gpt-4o-mini \"Name three prime numbers\"\n"
     "  echo \"Why is the sky blue?\" | llmux chat -m ollama/llama3.2 "
     "--stream\n"},
    {"complete", CMD_COMPLETE, "complete -m SPEC [options] [PROMPT...]",
     "text completion: the text that follows PROMPT",
     "Sends PROMPT (its words joined by spaces) for a text completion (the\n"
     "legacy completions endpoint) and prints the continuation. With no\n"
     "PROMPT, or PROMPT \"-\", the prompt is read from stdin, its trailing\n"
     "newline removed. An empty prompt is a usage error.\n"
     "\n"
     "output:\n"
     "  the text and a newline (with --stream, as it arrives).\n"
     "  --json: one text_completion object; with --stream, one\n"
     "  text_completion chunk per line.\n",
     "  llmux complete -m openai/gpt-3.5-turbo-instruct \"Once upon a "
     "time\"\n"},
    {"embed", CMD_EMBED, "embed -m SPEC [options] [TEXT...]",
     "embeddings, one vector per input text",
     "Embeds each TEXT as one input. With no TEXT, or TEXT \"-\", the\n"
     "inputs are read from stdin, one per non-empty line.\n"
     "\n"
     "output:\n"
     "  one line per input: its floats, separated by spaces.\n"
     "  --json: a \"list\" object of \"embedding\" objects.\n",
     "  llmux embed -m openai/text-embedding-3-small \"first text\" "
     "\"second\"\n"},
    {"models", CMD_MODELS, "models -m PROVIDER[/...] [options]",
     "the model ids a provider offers",
     "Asks the provider for its models. -m names the provider; a whole\n"
     "SPEC (with its base_url=, api_key=...) works too.\n"
     "\n"
     "output:\n"
     "  one model id per line.\n"
     "  --json: a \"list\" object of model objects.\n",
     "  llmux models -m openai\n"
     "  llmux models -m \"ollama;base_url=http://gpu:11434\"\n"},
    {"tokenize", CMD_TOKENIZE, "tokenize -m SPEC [options] [TEXT...]",
     "the tokens of a text (an optional capability)",
     "Tokenizes TEXT (its words joined by spaces). With no TEXT, or TEXT\n"
     "\"-\", the text is read from stdin, its trailing newline removed. An\n"
     "empty text is a usage error. An optional capability (Aleph Alpha has\n"
     "it); other providers answer \"not supported\" (exit 2).\n"
     "\n"
     "output:\n"
     "  one line per token: <id>, a tab, the token's text as the provider\n"
     "  gave it (<id> is -1 when unknown; the text is empty when the\n"
     "  provider gave only ids).\n"
     "  --json: {\"tokens\": [...], \"token_ids\": [...]}.\n",
     "  llmux tokenize -m alephalpha/luminous-base \"Hello world\"\n"},
    {"detokenize", CMD_DETOKENIZE, "detokenize -m SPEC [options] [ID...]",
     "the text of token ids (an optional capability)",
     "Turns token ids back into text. The ids are separated by white space,\n"
     "in one argument or several; with no ID, or ID \"-\", they are read\n"
     "from stdin. An optional capability (Aleph Alpha has it); other\n"
     "providers answer \"not supported\" (exit 2).\n"
     "\n"
     "output:\n"
     "  the text and a newline.\n"
     "  --json: {\"text\": ...}.\n",
     "  llmux detokenize -m alephalpha/luminous-base 15496 995\n"},
    {"evaluate", CMD_EVALUATE,
     "evaluate -m SPEC --expected TEXT [options] [PROMPT...]",
     "how likely a text follows PROMPT (an optional capability)",
     "Scores how likely --expected's TEXT follows PROMPT (log\n"
     "probabilities). PROMPT is read as chat's is. An optional capability\n"
     "(Aleph Alpha has it); other providers answer \"not supported\"\n"
     "(exit 2).\n"
     "\n"
     "output:\n"
     "  the provider's result object as JSON on one line (the same with\n"
     "  --json).\n",
     "  llmux evaluate -m alephalpha/luminous-base --expected \" Paris\" \\\n"
     "      \"The capital of France is\"\n"},
    {"batch", CMD_BATCH, "batch -m SPEC [options] [FILE]",
     "a chat completion for each line of a file, run concurrently",
     "Sends each non-empty line of FILE (or stdin, or FILE \"-\") as the\n"
     "prompt of a chat completion, --concurrency at a time. -m is required\n"
     "unless --jsonl lines name their model.\n"
     "\n"
     "output:\n"
     "  one JSON object per line for each non-empty input line, in input\n"
     "  order (--as-completed: as they finish); \"index\" counts prompts\n"
     "  from 0, \"line\" is the input line:\n"
     "    {\"index\":0,\"line\":1,\"status\":\"ok\",\n"
     "     \"response\":{...chat.completion...}}\n"
     "    {\"index\":1,\"line\":2,\"status\":\"error\",\n"
     "     \"error\":{\"code\":\"LLMUX_EPROVIDER\",\n"
     "     \"message\":...,\"http_status\":429,...}}\n"
     "  (\"fallback\":N when a fallback answered). Every prompt gets its\n"
     "  line; the exit status is that of the first failure in input order.\n",
     "  llmux batch -m openai/gpt-4o-mini --concurrency 4 prompts.txt "
     ">out.jsonl\n"},
    {"providers", CMD_PROVIDERS, "providers [-v] [--json]",
     "the provider plugins found, and where they were searched for",
     "Lists every provider found: those registered in the program, then\n"
     "each plugin directory's descriptors (NAME.conf) and modules\n"
     "(NAME.so), in search order; a name found twice is listed where it\n"
     "resolves. Broken plugins are listed with their error. When no\n"
     "provider at all is found it says so on stderr and exits 2.\n"
     "\n"
     "output:\n"
     "  a table with a header: NAME, MODULE (the module implementing it),\n"
     "  SOURCE (the descriptor or module file, or \"built-in\") and\n"
     "  CAPABILITIES (for a broken plugin: \"broken: <error>\"); -v adds\n"
     "  API_KEY_ENV, the variable its key is read from.\n"
     "  --json: an array with an object per provider: name, module, path,\n"
     "  descriptor, version, description, base_url, api_key_env, caps (an\n"
     "  array of strings) and status (\"ok\", or the error code's name\n"
     "  with \"error\" saying why it is broken); null where unknown.\n",
     "  llmux providers -v\n"
     "  llmux providers --json\n"},
};

#define N_CMD_DEFS (sizeof cmd_defs / sizeof cmd_defs[0])

/*
 * `llmux --help`. The variables are those read by the CLI and the library
 * (LLMUX_PLUGIN_PATH) and those the in-tree providers and descriptors
 * name (providers/x/x.c, plugins.d/x.conf): tests/cli checks the list
 * against the sources.
 */
static const char overview_head[] =
    "usage: llmux COMMAND [options] [arguments]\n"
    "       llmux COMMAND --help\n"
    "       llmux help [COMMAND] | --help | -V | --version\n"
    "\n"
    "commands:\n";

static const char overview_tail[] =
    "  help [COMMAND]  this text, or the help of COMMAND\n"
    "  version         the library's version (also -V, --version)\n"
    "\n"
    "'llmux COMMAND --help' shows the options of COMMAND, its output and an\n"
    "example.\n"
    "\n"
    "SPEC, the value of -m, is a config string provider/model[;key=value...]:\n"
    "  openai/gpt-4o-mini    ollama/llama3:8b\n"
    "  \"openai/gpt-4o-mini;base_url=http://127.0.0.1:8080/v1\"\n"
    "Options may come before or after the arguments; \"--\" ends them.\n"
    "A command reading its input from stdin says so on stderr when stdin\n"
    "is a terminal; end the input there with one Ctrl-D.\n"
    "\n"
    "Errors are one line on stderr:\n"
    "  llmux: <provider>: <message> (HTTP <status>)\n"
    "and a usage error adds one line: try 'llmux COMMAND --help'.\n"
    "\n"
    "exit status:\n"
    "  0  success\n"
    "  1  the provider answered with an error (an HTTP error status, an\n"
    "     error inside a stream, a malformed answer)\n"
    "  2  usage or configuration error (bad flag or value, empty prompt,\n"
    "     unknown provider, missing API key, an operation the provider\n"
    "     does not support; providers: no provider found)\n"
    "  3  transport error (cannot connect, timeout, stream cut off); also\n"
    "     local failures (out of memory, cannot write the output). A\n"
    "     timeout's message names the one that fired: timeout (the total\n"
    "     deadline), connect_timeout, first_byte_timeout or idle_timeout\n"
    "\n"
    "environment:\n"
    "  LLMUX_PLUGIN_PATH  plugin directories searched first, ':'-separated\n"
    "  each provider's API key and base URL, unless --api-key, --base-url\n"
    "  or the SPEC's api_key=, base_url= give them:\n"
    "    OPENAI_API_KEY, OPENAI_BASE_URL          openai\n"
    "    MISTRAL_API_KEY, MISTRAL_BASE_URL        mistral\n"
    "    OLLAMA_API_KEY, OLLAMA_HOST              ollama (OLLAMA_HOST: a URL,\n"
    "                                             host or host:port)\n"
    "    AA_TOKEN, AA_BASE_URL                    alephalpha\n"
    "    DEEPSEEK_API_KEY, DEEPSEEK_BASE_URL      deepseek\n"
    "    GROQ_API_KEY, GROQ_BASE_URL              groq\n"
    "    LLAMACPP_API_KEY, LLAMACPP_BASE_URL      llamacpp\n"
    "    LMSTUDIO_API_KEY, LMSTUDIO_BASE_URL      lmstudio\n"
    "    OPENROUTER_API_KEY, OPENROUTER_BASE_URL  openrouter\n"
    "    TOGETHER_API_KEY, TOGETHER_BASE_URL      together\n"
    "    VLLM_API_KEY, VLLM_BASE_URL              vllm\n"
    "  Other descriptors may name more variables; 'llmux providers -v'\n"
    "  shows each provider's key variable. api_key_env=NAME in a SPEC reads\n"
    "  the key from $NAME (a name ending in KEY, TOKEN, SECRET or PASSWORD).\n"
    "  libcurl reads http_proxy, https_proxy, ALL_PROXY and NO_PROXY unless\n"
    "  the SPEC sets proxy=.\n";

/* Flags recording which optional settings were given. */
#define HAS_MAX_TOKENS  (1u << 0)
#define HAS_TEMPERATURE (1u << 1)
#define HAS_TOP_P       (1u << 2)
#define HAS_SEED        (1u << 3)
#define HAS_TIMEOUT     (1u << 4)
#define HAS_RETRIES     (1u << 5)
#define HAS_CONNECT     (1u << 6)
#define HAS_FIRST_BYTE  (1u << 7)
#define HAS_IDLE        (1u << 8)

/* The parsed command line. Strings point into argv. */
typedef struct cli {
    int cmd;
    const char *cmd_name;
    const char *spec;
    const char *base_url;
    const char *api_key;
    const char *system;
    const char *request_file;
    const char *expected; /* evaluate */
    const char **stops;
    size_t n_stops;
    long max_tokens;
    double temperature, top_p;
    long long seed;
    long timeout_ms;
    long connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    int retries;
    unsigned has;
    int stream, json, help, verbose;
    long concurrency; /* batch */
    long rpm, tpm;
    int as_completed, fail_fast, jsonl;
    const char **fallbacks; /* --fallback SPECs, in order */
    size_t n_fallbacks;
    char **words;
    size_t n_words;
    /* secrets to keep out of every message */
    const char *secret1;
    char *secret2;     /* api_key=... found in the spec (owned) */
    char **fb_secrets; /* api_key=... of each fallback (owned, or NULL) */
} cli;

static void die_oom(void)
{
    fputs("llmux: out of memory\n", stderr);
    exit(EXIT_TRANSPORT);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_oom();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die_oom();
    return q;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Masks `secret` in the heap string *s where it can be the key (the
 * library's rules: llmux_mask_secret). */
static void scrub(char **s, const char *secret)
{
    char *m, *copy;
    if (!*s || !secret || !*secret)
        return;
    if (!(m = llmux_mask_secret(*s, secret)))
        die_oom();
    copy = xmalloc(strlen(m) + 1);
    strcpy(copy, m);
    llmux_free(m);
    free(*s);
    *s = copy;
}

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* The value of api_key in a config string, or NULL: the last one, as the
 * parser keeps the last of duplicates; whitespace around the key and the
 * value trimmed, and a {...} value to its matching '}', as it reads them. */
static char *spec_secret(const char *spec)
{
    const char *p, *k, *v, *end, *found = NULL, *found_end = NULL;
    if (!spec)
        return NULL;
    for (p = spec; p; p = *end ? end + 1 : NULL) {
        for (k = p; blank(*k); k++)
            ;
        end = k + strcspn(k, ";");
        for (v = k; v < k + 7 && lower((unsigned char)*v) == "api_key"[v - k];
             v++)
            ; /* keys match in any case */
        if (v < k + 7)
            continue;
        while (blank(*v))
            v++;
        if (*v != '=')
            continue;
        for (v++; blank(*v); v++)
            ;
        if (*v == '{') { /* to the matching '}': braces nest */
            int depth = 1;
            for (end = ++v; *end; end++) {
                if (*end == '{')
                    depth++;
                else if (*end == '}' && --depth == 0)
                    break;
            }
            found_end = end;
            if (*end)
                end += strcspn(end, ";"); /* the segment's end */
        } else {
            for (found_end = end; found_end > v && blank(found_end[-1]);
                 found_end--)
                ;
        }
        found = v;
    }
    if (!found || found_end == found)
        return NULL;
    {
        char *r = xmalloc((size_t)(found_end - found) + 1);
        memcpy(r, found, (size_t)(found_end - found));
        r[found_end - found] = '\0';
        return r;
    }
}

/* A copy of `text` (caller frees) with the command line's secrets
 * replaced by "***". */
static char *scrubbed(const cli *c, const char *text)
{
    size_t n = strlen(text);
    char *s = xmalloc(n + 1);
    memcpy(s, text, n + 1);
    if (c) {
        size_t i;
        scrub(&s, c->secret1);
        scrub(&s, c->secret2);
        for (i = 0; c->fb_secrets && i < c->n_fallbacks; i++)
            scrub(&s, c->fb_secrets[i]);
    }
    return s;
}

/* Notes the api_key=... of the SPEC and of each --fallback, to keep them
 * out of every message. */
static void note_secrets(cli *c)
{
    size_t i;
    c->secret2 = spec_secret(c->spec);
    if (!c->n_fallbacks)
        return;
    c->fb_secrets = xmalloc(c->n_fallbacks * sizeof *c->fb_secrets);
    for (i = 0; i < c->n_fallbacks; i++)
        c->fb_secrets[i] = spec_secret(c->fallbacks[i]);
}

/*
 * Prints "llmux: <text>" on one line to stderr: secrets replaced by "***",
 * control characters by spaces.
 */
static void print_error_line(const cli *c, const char *text)
{
    char *s = scrubbed(c, text), *p;
    for (p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    /* no trailing blanks from a message ending in a newline */
    while (p > s && p[-1] == ' ')
        *--p = '\0';
    fprintf(stderr, "llmux: %s\n", s);
    free(s);
}

static void errorf(const cli *c, const char *fmt, ...) LLMUX_PRINTF(2, 3);

static void errorf(const cli *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_error_line(c, buf);
}

/*
 * Prints the error line and where to find help on stderr; returns 2. Not
 * the help itself: pages of text would bury the one line that matters.
 */
static int usage_error(const cli *c, const char *fmt, ...) LLMUX_PRINTF(2, 3);

static int usage_error(const cli *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_error_line(c, buf);
    if (c && c->cmd_name)
        fprintf(stderr, "try 'llmux %s --help'\n", c->cmd_name);
    else
        fputs("try 'llmux --help'\n", stderr);
    return EXIT_USAGE;
}

/* ---- help ---------------------------------------------------------------- */

/* Prints text indented by `indent` columns after each newline in it. */
static void put_indented(const char *text, int indent)
{
    const char *p;
    for (p = text; *p; p++) {
        fputc(*p, stdout);
        if (*p == '\n' && p[1])
            printf("%*s", indent, "");
    }
}

/* One option's lines: "  -m, --model SPEC" then its description. */
static void print_opt_help(const opt_def *d)
{
    int n;
    if (d->short_name)
        n = printf("  -%c, --%s", d->short_name, d->name);
    else
        n = printf("      --%s", d->name);
    if (d->arg)
        n += printf(" %s", d->arg);
    if (n > HELP_COL - 2) { /* too long to share a line with the text */
        fputc('\n', stdout);
        n = 0;
    }
    printf("%*s", HELP_COL - n, "");
    put_indented(d->help, HELP_COL);
    fputc('\n', stdout);
}

/* `llmux COMMAND --help`: usage, what it does, its options, examples. */
static void print_cmd_help(const cmd_def *cd)
{
    size_t i;
    /* the overview's summary as a sentence */
    printf("usage: llmux %s\n\n%c%s.\n\n", cd->synopsis,
           toupper((unsigned char)cd->summary[0]), cd->summary + 1);
    fputs(cd->text, stdout);
    fputs("\noptions:\n", stdout);
    for (i = 0; i < N_OPT_DEFS; i++)
        if (opt_defs[i].cmds & (unsigned)cd->cmd)
            print_opt_help(&opt_defs[i]);
    printf("\nexamples:\n%s", cd->example);
    fputs("\nSee 'llmux --help' for SPEC, the exit statuses and the "
          "environment.\n",
          stdout);
}

/* `llmux --help`: the commands, the notes they share, exit statuses and
 * environment. */
static void print_overview(void)
{
    size_t i;
    fputs(overview_head, stdout);
    for (i = 0; i < N_CMD_DEFS; i++)
        printf("  %-14s  %s\n", cmd_defs[i].name, cmd_defs[i].summary);
    fputs(overview_tail, stdout);
}

static const cmd_def *find_cmd(const char *name)
{
    size_t i;
    for (i = 0; i < N_CMD_DEFS; i++)
        if (strcmp(cmd_defs[i].name, name) == 0)
            return &cmd_defs[i];
    return NULL;
}

static const cmd_def *cmd_def_of(int cmd)
{
    size_t i;
    for (i = 0; i < N_CMD_DEFS; i++)
        if (cmd_defs[i].cmd == cmd)
            return &cmd_defs[i];
    return NULL;
}

/* Exit status for an llmux code (see overview_tail). */
static int exit_status(int code)
{
    switch (llmux_err_class_of(code)) {
    case LLMUX_CLASS_NONE:
        return 0;
    case LLMUX_CLASS_PROVIDER:
        return EXIT_PROVIDER;
    case LLMUX_CLASS_USAGE:
        return EXIT_USAGE;
    case LLMUX_CLASS_TRANSPORT:
    case LLMUX_CLASS_LOCAL: /* out of memory, canceled, aborted */
    default:
        return EXIT_TRANSPORT;
    }
}

/* ---- number parsing (locale-independent) --------------------------------- */

/* Optional sign, digits; nothing else. */
static int parse_ll(const char *s, int allow_neg, long long max, long long *out)
{
    int neg = 0;
    unsigned long long v = 0;
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (neg && !allow_neg)
        return -1;
    if (!(*s >= '0' && *s <= '9'))
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > ((unsigned long long)max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (*s)
        return -1;
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

/* 10^n; exact for n <= 22. */
static double pow10i(long n)
{
    double p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/*
 * A decimal number: [+-]digits[.digits][(e|E)[+-]digits], '.' as the
 * separator. Converted by hand so LC_NUMERIC can never matter: the digits
 * make an integer mantissa scaled once by an exact power of ten, so short
 * inputs like "0.7" come out correctly rounded, as strtod would give.
 */
static int parse_double(const char *s, double *out)
{
    unsigned long long m = 0;
    long exp = 0, e = 0;
    int neg = 0, digits = 0, eneg = 0;
    double v;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (m < 100000000000000000ULL)
            m = m * 10 + (unsigned)(*s - '0');
        else
            exp++; /* digits past 17 only scale */
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (m < 100000000000000000ULL) {
                m = m * 10 + (unsigned)(*s - '0');
                exp--;
            }
    if (!digits)
        return -1;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            eneg = *s++ == '-';
        if (!(*s >= '0' && *s <= '9'))
            return -1;
        for (; *s >= '0' && *s <= '9'; s++)
            if (e < 100000)
                e = e * 10 + (*s - '0');
        exp += eneg ? -e : e;
    }
    if (*s)
        return -1;
    v = (double)m;
    if (m && exp > 300)
        return -1; /* too large to mean anything here */
    if (exp < -340 || !m)
        v = 0;
    else if (exp < 0)
        v = -exp > 22 ? v / pow10i(22) / pow10i(-exp - 22) : v / pow10i(-exp);
    else
        v *= pow10i(exp);
    *out = neg ? -v : v;
    return 0;
}

/* ---- command line ------------------------------------------------------- */

/*
 * The row for option `name` (`len` bytes): the one for command `cmd` when
 * there is one (a name may mean different things to different commands),
 * else any, for the "not an option of" message.
 */
static const opt_def *find_long(const char *name, size_t len, int cmd)
{
    size_t i;
    const opt_def *any = NULL;
    for (i = 0; i < N_OPT_DEFS; i++)
        if (strlen(opt_defs[i].name) == len &&
            strncmp(opt_defs[i].name, name, len) == 0) {
            if (opt_defs[i].cmds & (unsigned)cmd)
                return &opt_defs[i];
            if (!any)
                any = &opt_defs[i];
        }
    return any;
}

static const opt_def *find_short(char ch, int cmd)
{
    size_t i;
    const opt_def *any = NULL;
    for (i = 0; i < N_OPT_DEFS; i++)
        if (opt_defs[i].short_name == ch) {
            if (opt_defs[i].cmds & (unsigned)cmd)
                return &opt_defs[i];
            if (!any)
                any = &opt_defs[i];
        }
    return any;
}

/*
 * A duration flag's value in ms: a number of seconds (fractions allowed),
 * at most 2e6; 0 only when `allow_zero`. A positive value below 1 ms is
 * 1 ms, never "none". Returns 0 or an exit status (message printed).
 */
static int parse_duration(const cli *c, const char *flag, const char *v,
                          int allow_zero, long *ms)
{
    double x;
    if (parse_double(v, &x) || x < 0 || x > 2e6 || (!allow_zero && x == 0)) {
        errorf(c, "%s: not a %s number of seconds", flag,
               allow_zero ? "non-negative" : "positive");
        return EXIT_USAGE;
    }
    *ms = (long)(x * 1000.0 + 0.5);
    if (x > 0 && *ms == 0)
        *ms = 1;
    return 0;
}

/* Stores one option. Returns 0 or an exit status. */
static int set_opt(cli *c, const opt_def *d, const char *flag, const char *v)
{
    long long ll;
    double x;
    int st;
    switch (d->id) {
    case O_MODEL:
        c->spec = v;
        break;
    case O_BASE_URL:
        c->base_url = v;
        break;
    case O_API_KEY:
        c->api_key = v;
        c->secret1 = v;
        break;
    case O_SYSTEM:
        c->system = v;
        break;
    case O_MAX_TOKENS:
        if (parse_ll(v, 0, 2147483647LL, &ll)) {
            errorf(c, "%s: not a non-negative integer", flag);
            return EXIT_USAGE;
        }
        c->max_tokens = (long)ll;
        c->has |= HAS_MAX_TOKENS;
        break;
    case O_TEMPERATURE:
    case O_TOP_P:
        if (parse_double(v, &x)) {
            errorf(c, "%s: not a number", flag);
            return EXIT_USAGE;
        }
        if (d->id == O_TEMPERATURE) {
            c->temperature = x;
            c->has |= HAS_TEMPERATURE;
        } else {
            c->top_p = x;
            c->has |= HAS_TOP_P;
        }
        break;
    case O_STOP:
        c->stops =
            xrealloc((void *)c->stops, (c->n_stops + 1) * sizeof *c->stops);
        c->stops[c->n_stops++] = v;
        break;
    case O_SEED:
        if (parse_ll(v, 1, 9223372036854775807LL, &ll)) {
            errorf(c, "%s: not an integer", flag);
            return EXIT_USAGE;
        }
        c->seed = ll;
        c->has |= HAS_SEED;
        break;
    case O_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 1, &c->timeout_ms)))
            return st;
        c->has |= HAS_TIMEOUT;
        break;
    case O_CONNECT_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 0, &c->connect_timeout_ms)))
            return st;
        c->has |= HAS_CONNECT;
        break;
    case O_FIRST_BYTE_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 1, &c->first_byte_timeout_ms)))
            return st;
        c->has |= HAS_FIRST_BYTE;
        break;
    case O_IDLE_TIMEOUT:
        if ((st = parse_duration(c, flag, v, 1, &c->idle_timeout_ms)))
            return st;
        c->has |= HAS_IDLE;
        break;
    case O_FALLBACK:
        c->fallbacks = xrealloc((void *)c->fallbacks,
                                (c->n_fallbacks + 1) * sizeof *c->fallbacks);
        c->fallbacks[c->n_fallbacks++] = v;
        break;
    case O_VERBOSE:
        c->verbose = 1;
        break;
    case O_RETRIES:
        if (parse_ll(v, 0, 100, &ll)) {
            errorf(c, "%s: not an integer from 0 to 100", flag);
            return EXIT_USAGE;
        }
        c->retries = (int)ll;
        c->has |= HAS_RETRIES;
        break;
    case O_STREAM:
        c->stream = 1;
        break;
    case O_JSON:
        c->json = 1;
        break;
    case O_REQUEST_FILE:
        c->request_file = v;
        break;
    case O_EXPECTED:
        c->expected = v;
        break;
    case O_CONCURRENCY:
    case O_RPM:
    case O_TPM:
        if (parse_ll(v, 0, 1000000000LL, &ll) ||
            (d->id == O_CONCURRENCY && ll == 0)) {
            errorf(c, "%s: not a %s integer", flag,
                   d->id == O_CONCURRENCY ? "positive" : "non-negative");
            return EXIT_USAGE;
        }
        if (d->id == O_CONCURRENCY)
            c->concurrency = (long)ll;
        else if (d->id == O_RPM)
            c->rpm = (long)ll;
        else
            c->tpm = (long)ll;
        break;
    case O_AS_COMPLETED:
        c->as_completed = 1;
        break;
    case O_FAIL_FAST:
        c->fail_fast = 1;
        break;
    case O_JSONL:
        c->jsonl = 1;
        break;
    case O_HELP:
        c->help = 1;
        break;
    }
    return 0;
}

/* Parses argv[first..]. Returns 0 or an exit status (message printed). */
static int parse_args(cli *c, int argc, char **argv, int first)
{
    int i, rest = 0;
    c->words = xmalloc((size_t)argc * sizeof *c->words);
    for (i = first; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char flag[64];
        const opt_def *d;
        int rc;
        if (rest || a[0] != '-' || a[1] == '\0') {
            c->words[c->n_words++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            rest = 1;
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            d = find_long(a + 2, len, c->cmd);
            /* the name only: what follows '=' may be a key (--api_key=) */
            if (!d)
                return usage_error(c, "unknown option \"--%.*s\"",
                                   (int)(len > 64 ? 64 : len), a + 2);
            snprintf(flag, sizeof flag, "--%s", d->name);
            if (eq) {
                if (!d->arg)
                    return usage_error(c, "%s takes no value", flag);
                val = eq + 1;
            }
        } else {
            d = find_short(a[1], c->cmd);
            /* the letter only: what follows may be a value */
            if (!d)
                return usage_error(c, "unknown option \"-%c\"", a[1]);
            snprintf(flag, sizeof flag, "-%c", d->short_name);
            if (a[2] != '\0') {
                if (!d->arg)
                    return usage_error(c, "%s takes no value (in \"-%c...\")",
                                       flag, a[1]);
                val = a + 2;
            }
        }
        if (!(d->cmds & (unsigned)c->cmd))
            return usage_error(c, "%s is not an option of \"%s\"", flag,
                               c->cmd_name);
        if (d->arg && !val) {
            if (i + 1 >= argc)
                return usage_error(c, "%s needs a value", flag);
            val = argv[++i];
        }
        if ((rc = set_opt(c, d, flag, val)))
            return rc;
    }
    return 0;
}

/* ---- input -------------------------------------------------------------- */

/*
 * Whether a read from a terminal in canonical mode that returned `got`
 * bytes of the `want` asked for, the last one `last`, ended at the end of
 * the input. The terminal returns a line at a time: a read ending without
 * a line end (newline, or the EOL characters when set) was cut short by
 * Ctrl-D pushing a partial line, which the user meant as the end. stdio
 * would read on and wait for a second Ctrl-D.
 */
static int tty_eof_after(const struct termios *t, ssize_t got, size_t want,
                         char last)
{
    unsigned char u = (unsigned char)last;
    if (last == '\n' || (size_t)got >= want)
        return 0;
#ifdef _POSIX_VDISABLE
    if (t->c_cc[VEOL] != _POSIX_VDISABLE && u == t->c_cc[VEOL])
        return 0;
#ifdef VEOL2
    if (t->c_cc[VEOL2] != _POSIX_VDISABLE && u == t->c_cc[VEOL2])
        return 0;
#endif
#else
    (void)t;
    (void)u;
#endif
    return 1;
}

/*
 * Reads all of `fd` with read(2). From a terminal the input ends at the
 * first Ctrl-D, after a partial line too. NULL on a read error (errno
 * set).
 */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = xmalloc(cap);
    struct termios t;
    int canon = isatty(fd) && tcgetattr(fd, &t) == 0 && (t.c_lflag & ICANON);
    for (;;) {
        ssize_t got;
        size_t want;
        if (cap - n < 1024) {
            if (cap > SIZE_MAX / 2) { /* a 32-bit process: no wrap-around */
                free(b);
                errno = ENOMEM;
                return NULL;
            }
            b = xrealloc(b, cap *= 2);
        }
        want = cap - n - 1;
        got = read(fd, b + n, want);
        if (got < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            free(b);
            errno = e ? e : EIO;
            return NULL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (canon && tty_eof_after(&t, got, want, b[n - 1]))
            break;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/*
 * Reads stdin, or the file `path` ("-" is stdin). From a terminal, says
 * first on stderr what is read and how to end it (`hint`: "the prompt
 * from the terminal; end it"): a program silently waiting for input
 * looks hung.
 */
static char *read_input(const cli *c, const char *what, const char *hint,
                        const char *path, size_t *len)
{
    int fd = 0, e;
    char *b;
    if (path && strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY);
        if (fd < 0) {
            errorf(c, "%s: %s: %s", what, path, strerror(errno));
            return NULL;
        }
    } else if (isatty(0)) {
        fprintf(stderr, "llmux: reading %s with Ctrl-D\n", hint);
    }
    b = read_all(fd, len);
    e = errno;
    if (!b)
        errorf(c, "%s: %s: %s", what, fd == 0 ? "stdin" : path, strerror(e));
    if (fd != 0)
        close(fd);
    return b;
}

/* Removes trailing newlines (and the '\r' of CRLF). */
static void chomp(char *s, size_t *len)
{
    while (*len && (s[*len - 1] == '\n' || s[*len - 1] == '\r'))
        s[--*len] = '\0';
}

static int words_are_stdin(const cli *c)
{
    return c->n_words == 0 ||
           (c->n_words == 1 && strcmp(c->words[0], "-") == 0);
}

static char *join_words(const cli *c)
{
    size_t i, n = 1;
    char *s, *p;
    for (i = 0; i < c->n_words; i++)
        n += strlen(c->words[i]) + 1;
    p = s = xmalloc(n);
    for (i = 0; i < c->n_words; i++) {
        size_t l = strlen(c->words[i]);
        if (i)
            *p++ = ' ';
        memcpy(p, c->words[i], l);
        p += l;
    }
    *p = '\0';
    return s;
}

/*
 * The prompt (tokenize: the text): the words, or stdin. An empty one is a
 * usage error: sending it would only earn a provider's error, or an
 * answer to nothing. NULL after printing an error.
 */
static char *get_prompt(const cli *c)
{
    const char *noun = c->cmd == CMD_TOKENIZE ? "text" : "prompt";
    size_t len;
    char *s;
    if (!words_are_stdin(c)) {
        s = join_words(c);
    } else {
        s = read_input(c, noun,
                       c->cmd == CMD_TOKENIZE
                           ? "the text from the terminal; end it"
                           : "the prompt from the terminal; end it",
                       "-", &len);
        if (s)
            chomp(s, &len);
    }
    if (s && !*s) {
        free(s);
        usage_error(c, "%s: the %s is empty", c->cmd_name, noun);
        return NULL;
    }
    return s;
}

/* ---- output ------------------------------------------------------------- */

typedef struct run_ctx {
    const cli *c;
    int streamed;  /* chunks were printed */
    int text_seen; /* some delta carried text */
    int out_errno; /* stdout failed (errno), 0 if fine */
} run_ctx;

/* The first error writing stdout (errno), 0 while all is well. */
static int g_out_errno;

/* Flushes stdout and records a failure. Returns 0 when all is well. */
static int flush_out(void)
{
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && !g_out_errno)
        g_out_errno = errno ? errno : EIO;
    return g_out_errno;
}

static int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud)
{
    run_ctx *x = ud;
    (void)req;
    if (g_out_errno)
        return 1; /* stop the transfer: nobody reads us */
    x->streamed = 1;
    if (x->c->json) {
        char *s = llmux_chunk_to_json(ch);
        if (!s)
            return 1; /* out of memory: reported as aborted */
        fputs(s, stdout);
        fputc('\n', stdout);
        llmux_free(s);
    } else {
        size_t len = 0;
        const char *t = llmux_chunk_text(ch, &len);
        if (t && len) {
            fwrite(t, 1, len, stdout);
            x->text_seen = 1;
        }
    }
    return flush_out() ? 1 : 0;
}

/* Prints one argument string on a single line (JSON whitespace only). */
static void put_one_line(const char *s)
{
    for (; *s; s++)
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, stdout);
}

static void print_tool_calls(const llmux_response *res)
{
    size_t i, n = llmux_response_tool_call_count(res);
    for (i = 0; i < n; i++) {
        const llmux_tool_call *tc = llmux_response_tool_call(res, i);
        if (!tc)
            continue;
        printf("tool_call %s %s ", tc->id && *tc->id ? tc->id : "-",
               tc->name && *tc->name ? tc->name : "-");
        put_one_line(tc->arguments ? tc->arguments : "{}");
        fputc('\n', stdout);
    }
}

/* Prints a successful answer (the part not already streamed). Returns 0,
 * or -1 when out of memory (reported). */
static int print_answer(const cli *c, const run_ctx *x,
                        const llmux_response *res)
{
    size_t len = 0, i, n;
    const char *t;
    if (c->json) {
        char *s;
        if (x->streamed)
            return 0; /* the chunks were the answer */
        s = llmux_response_to_json(res);
        if (!s) {
            fputs("llmux: out of memory\n", stderr);
            return -1;
        }
        fputs(s, stdout);
        fputc('\n', stdout);
        llmux_free(s);
        return 0;
    }
    switch (c->cmd) {
    case CMD_EMBED:
        n = llmux_response_embedding_count(res);
        for (i = 0; i < n; i++) {
            size_t dim = 0, k;
            const float *v = llmux_response_embedding(res, i, &dim);
            for (k = 0; v && k < dim; k++) {
                char num[32];
                if (llmux_format_number(num, sizeof num, v[k], 1) < 0)
                    strcpy(num, "null"); /* NaN or infinite */
                printf(k ? " %s" : "%s", num);
            }
            fputc('\n', stdout);
        }
        return 0;
    case CMD_MODELS:
        n = llmux_response_model_count(res);
        for (i = 0; i < n; i++) {
            const char *id = llmux_response_model_id(res, i);
            if (id)
                printf("%s\n", id);
        }
        return 0;
    case CMD_TOKENIZE:
        n = llmux_response_token_count(res);
        for (i = 0; i < n; i++) {
            long long id = -1;
            const char *tok = llmux_response_token(res, i, &id);
            printf("%lld\t%s\n", id >= 0 ? id : -1LL, tok ? tok : "");
        }
        return 0;
    case CMD_EVALUATE: {
        /* no plainer form than the result object itself: one line */
        char *s = llmux_response_to_json(res);
        if (!s) {
            fputs("llmux: out of memory\n", stderr);
            return -1;
        }
        put_one_line(s);
        fputc('\n', stdout);
        llmux_free(s);
        return 0;
    }
    case CMD_DETOKENIZE:
        t = llmux_response_text(res, &len);
        if (t && len)
            fwrite(t, 1, len, stdout);
        fputc('\n', stdout);
        return 0;
    default:
        break;
    }
    if (x->streamed) {
        /* the text went out as deltas: end it as the plain output does */
        if (x->text_seen || !llmux_response_tool_call_count(res))
            fputc('\n', stdout);
        if (!x->text_seen)
            print_tool_calls(res);
        return 0;
    }
    t = llmux_response_text(res, &len);
    if (!len && llmux_response_refusal(res))
        t = llmux_response_refusal(res), len = strlen(t);
    if (len || !llmux_response_tool_call_count(res)) {
        fwrite(t, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (!len)
        print_tool_calls(res);
    return 0;
}

/*
 * Prints the error of a failed request as one line:
 *   llmux: <provider>: <message> (HTTP <status>)
 * The core's transport and configuration messages already start with
 * "<provider>: "; a provider's own message does not.
 */
static void print_failure(const cli *c, const llmux_request *req, int rc,
                          const llmux_response *res)
{
    const llmux_error *e = res ? llmux_response_error(res) : NULL;
    const char *msg = e && e->message && *e->message ? e->message : NULL;
    const char *prov = e && e->provider ? e->provider : NULL;
    char status[48] = "";
    char *line;
    size_t n;

    if (!prov && req)
        prov = llmux_request_provider(req);
    if (!msg)
        msg = llmux_strerror(e ? e->code : rc);
    if (e && e->http_status >= 400) {
        snprintf(status, sizeof status, "HTTP %ld", e->http_status);
        if (strstr(msg, status))
            status[0] = '\0'; /* already said */
    }
    n = (prov ? strlen(prov) : 0) + strlen(msg) + sizeof status + 8;
    line = xmalloc(n);
    line[0] = '\0';
    if (prov && *prov &&
        !(strncmp(msg, prov, strlen(prov)) == 0 && msg[strlen(prov)] == ':')) {
        strcat(line, prov);
        strcat(line, ": ");
    }
    strcat(line, msg);
    if (status[0]) {
        strcat(line, " (");
        strcat(line, status);
        strcat(line, ")");
    }
    print_error_line(c, line);
    free(line);
}

/* A failing request setter: prints why, returns the exit status. */
static int setter_failed(const cli *c, const llmux_request *req,
                         const char *what, int rc)
{
    const char *m = req ? llmux_request_errmsg(req) : "";
    if (m && *m)
        errorf(c, "%s: %s", what, m);
    else if (rc == LLMUX_EINVAL)
        errorf(c, "%s: invalid value", what);
    else
        errorf(c, "%s: %s", what, llmux_strerror(rc));
    return exit_status(rc);
}

/* A bad --fallback SPEC: says which one and why. Returns the status. */
static int fallback_failed(const cli *c, const llmux_request *req, size_t i,
                           int rc)
{
    const char *m = llmux_request_errmsg(req);
    if (m && strncmp(m, "fallback: ", 10) == 0)
        m += 10; /* the flag already says it */
    if (c->n_fallbacks > 1)
        errorf(c, "--fallback #%zu: %s", i + 1,
               m && *m ? m : llmux_strerror(rc));
    else
        errorf(c, "--fallback: %s", m && *m ? m : llmux_strerror(rc));
    return exit_status(rc);
}

/* The operation a command runs. */
static llmux_op cmd_op(int cmd)
{
    switch (cmd) {
    case CMD_COMPLETE:
        return LLMUX_OP_COMPLETE;
    case CMD_EMBED:
        return LLMUX_OP_EMBED;
    case CMD_MODELS:
        return LLMUX_OP_MODELS;
    case CMD_TOKENIZE:
        return LLMUX_OP_TOKENIZE;
    case CMD_DETOKENIZE:
        return LLMUX_OP_DETOKENIZE;
    case CMD_EVALUATE:
        return LLMUX_OP_EVALUATE;
    default:
        return LLMUX_OP_CHAT;
    }
}

/*
 * Checks a --fallback SPEC before anything is sent, as -m's SPEC is
 * checked: a bad string, a missing model or an unknown (or broken)
 * provider is a usage error now, not a surprise when the primary fails.
 * Returns 0, or an exit status after printing why.
 */
static int check_fallback(const cli *c, size_t i)
{
    llmux_request *t = NULL;
    llmux_provider_info info;
    char err[1024] = "";
    const char *prov, *model;
    int rc = llmux_request_new(&t, cmd_op(c->cmd), c->fallbacks[i]);
    if (rc) {
        snprintf(err, sizeof err, "%s",
                 t && *llmux_request_errmsg(t) ? llmux_request_errmsg(t)
                                               : llmux_strerror(rc));
    } else {
        prov = llmux_request_provider(t);
        model = llmux_request_model(t);
        if (!prov || !*prov) {
            rc = LLMUX_ECONFIG;
            snprintf(err, sizeof err, "no provider given");
        } else if (!model || !*model) {
            rc = LLMUX_ECONFIG;
            snprintf(err, sizeof err,
                     "no model given: use \"%s/<model>\" in the config "
                     "string",
                     prov);
        } else if ((rc = llmux_provider_probe(prov, NULL, &info, err,
                                              sizeof err)) &&
                   !err[0]) {
            snprintf(err, sizeof err, "%s: %s", prov, llmux_strerror(rc));
        }
    }
    llmux_request_free(t);
    if (!rc)
        return 0;
    if (c->n_fallbacks > 1)
        errorf(c, "--fallback #%zu: %s", i + 1, err);
    else
        errorf(c, "--fallback: %s", err);
    return exit_status(rc);
}

/* Sets a seconds-valued core option ("timeout"...) from milliseconds. */
static int set_seconds_option(llmux_request *req, const char *key, long ms)
{
    char v[48];
    snprintf(v, sizeof v, "%ld.%03ld", ms / 1000, ms % 1000);
    return llmux_request_set_option(req, key, v);
}

/* ---- commands ----------------------------------------------------------- */

/* Applies the command-line settings to `req`. Returns 0 or exit status. */
static int apply_opts(const cli *c, llmux_request *req)
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
    for (i = 0; i < c->n_fallbacks; i++) {
        int st = check_fallback(c, i);
        if (st)
            return st;
        if ((rc = llmux_request_add_fallback(req, c->fallbacks[i])))
            return fallback_failed(c, req, i, rc);
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
    }
    if (rc) {
        st = setter_failed(c, req, "input", rc);
        llmux_request_free(req);
        return st;
    }
    *out = req;
    return 0;
}

static int run_request(cli *c)
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
    }
    llmux_response_free(res);
    llmux_request_free(req);
    return st;
}

/* ---- batch -------------------------------------------------------------- */

/* One prompt of a batch. */
typedef struct batch_item {
    long line;           /* its line in the input, from 1 */
    int status;          /* 1 until it finished */
    llmux_response *res; /* retained until printed */
    char *msg;           /* why a --jsonl line was refused (owned) */
    int printed;
} batch_item;

typedef struct batch_run {
    const cli *c;
    batch_item *items;
    size_t n;
    size_t *map; /* the batch's request j is items[map[j]] */
    size_t next; /* input order: the first not printed yet */
    int done;
} batch_run;

/* Writes `s` as a JSON string: '"' and '\' escaped, control characters
 * as \u00XX, other bytes (UTF-8) as they are. */
static void put_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch < 0x20 || ch == 0x7f)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* Prints ,"name":"value" with the command line's secrets masked, when
 * value is set. */
static void put_error_field(const cli *c, const char *name, const char *value)
{
    char *v;
    if (!value || !*value)
        return;
    v = scrubbed(c, value);
    printf(",\"%s\":", name);
    put_json_str(v);
    free(v);
}

/* Prints the result line of prompt i and lets its response go. */
static void print_item(batch_run *r, size_t i)
{
    batch_item *it = &r->items[i];
    const llmux_error *e = it->res ? llmux_response_error(it->res) : NULL;
    printf("{\"index\":%zu,\"line\":%ld,", i, it->line);
    if (it->status == 0 && it->res && !e) {
        char *j = llmux_response_to_json(it->res);
        if (!j)
            die_oom();
        fputs("\"status\":\"ok\",", stdout);
        if (llmux_response_fallback(it->res) > 0)
            printf("\"fallback\":%d,", llmux_response_fallback(it->res));
        printf("\"response\":%s}\n", j);
        llmux_free(j);
    } else {
        int code = it->status < 0 ? it->status : e ? e->code : LLMUX_ECANCELED;
        char *msg = scrubbed(r->c, it->msg ? it->msg
                                   : e && e->message && *e->message
                                       ? e->message
                                       : llmux_strerror(code));
        printf("\"status\":\"error\",\"error\":{\"code\":\"%s\",\"message\":",
               llmux_err_name(code));
        put_json_str(msg);
        free(msg);
        if (e && e->http_status)
            printf(",\"http_status\":%ld", e->http_status);
        if (e && e->provider && *e->provider) {
            fputs(",\"provider\":", stdout);
            put_json_str(e->provider);
        }
        put_error_field(r->c, "type", e ? e->type : NULL);
        put_error_field(r->c, "provider_code", e ? e->provider_code : NULL);
        put_error_field(r->c, "param", e ? e->param : NULL);
        if (it->res)
            printf(",\"attempts\":%d", llmux_response_attempts(it->res));
        fputs("}}\n", stdout);
    }
    flush_out(); /* a line at a time, for whoever reads the pipe */
    llmux_response_free(it->res);
    it->res = NULL;
    free(it->msg);
    it->msg = NULL;
    it->printed = 1;
}

/* Prints, in input order, what finished and was not printed yet. */
static void print_ready(batch_run *r)
{
    while (r->next < r->n && r->items[r->next].status != 1)
        print_item(r, r->next++);
}

static void on_batch_item(llmux_batch *b, size_t j, int status,
                          llmux_response *res, void *ud)
{
    batch_run *r = ud;
    size_t i = r->map[j];
    (void)b;
    r->items[i].status = status;
    r->items[i].res = res ? llmux_response_retain(res) : NULL;
    if (r->c->as_completed)
        print_item(r, i);
    else
        print_ready(r);
}

/* Prints what is left in input order: requests that never ran (cancelled
 * by --fail-fast) and, in input order, those waiting for them. */
static void on_batch_done(llmux_batch *b, int status, void *ud)
{
    batch_run *r = ud;
    size_t i, j;
    (void)status;
    for (j = 0; j < llmux_batch_size(b); j++) {
        batch_item *it = &r->items[r->map[j]];
        if (it->status == 1) {
            llmux_response *res = llmux_batch_response(b, j);
            int st = llmux_batch_status(b, j);
            it->status = st == 1 ? LLMUX_ECANCELED : st;
            it->res = res ? llmux_response_retain(res) : NULL;
        }
    }
    for (i = 0; i < r->n; i++)
        if (!r->items[i].printed)
            print_item(r, i);
    r->next = r->n;
    r->done = 1;
}

/* Splits the input into prompts, one per non-empty line. */
static size_t batch_prompts(char *text, char ***prompts, long **lines)
{
    size_t n = 0, cap = 0;
    long line = 0;
    char *p = text, *nl;
    *prompts = NULL;
    *lines = NULL;
    for (; *p; p = nl) {
        size_t len;
        line++;
        nl = strchr(p, '\n');
        if (nl)
            *nl++ = '\0';
        else
            nl = p + strlen(p);
        len = strlen(p);
        if (len && p[len - 1] == '\r')
            p[--len] = '\0';
        if (!len)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *prompts = xrealloc(*prompts, cap * sizeof **prompts);
            *lines = xrealloc(*lines, cap * sizeof **lines);
        }
        (*prompts)[n] = p;
        (*lines)[n++] = line;
    }
    return n;
}

static int run_batch(cli *c)
{
    llmux_client_options o = LLMUX_CLIENT_OPTIONS_INIT;
    llmux_batch_options bo = LLMUX_BATCH_OPTIONS_INIT;
    llmux_client *cl = NULL;
    llmux_request **reqs = NULL;
    batch_run r;
    char *text, **prompts = NULL;
    long *lines = NULL;
    size_t len, n, i, m = 0, made = 0;
    int rc, st = 0;

    if (c->help) {
        print_cmd_help(cmd_def_of(c->cmd));
        return 0;
    }
    if (!c->spec && !c->jsonl)
        return usage_error(c, "batch: -m SPEC is required");
    if (c->n_words > 1)
        return usage_error(c, "batch: one input FILE at most, got \"%s\" too",
                           c->words[1]);
    note_secrets(c);
    text = read_input(c, "input",
                      c->jsonl ? "the requests from the terminal, one per "
                                 "line; end them"
                               : "the prompts from the terminal, one per "
                                 "line; end them",
                      c->n_words ? c->words[0] : "-", &len);
    if (!text)
        return EXIT_USAGE;
    if (memchr(text, '\0', len)) {
        errorf(c, "input: contains a NUL byte");
        free(text);
        return EXIT_USAGE;
    }
    n = batch_prompts(text, &prompts, &lines);
    memset(&r, 0, sizeof r);
    r.c = c;
    r.n = n;
    if (n) {
        reqs = xmalloc(n * sizeof *reqs);
        r.items = xmalloc(n * sizeof *r.items);
        r.map = xmalloc(n * sizeof *r.map);
    }
    for (i = 0; i < n; i++) {
        llmux_request *req = NULL;
        batch_item *it = &r.items[i];
        it->line = lines[i];
        it->status = 1;
        it->res = NULL;
        it->msg = NULL;
        it->printed = 0;
        if (c->jsonl) {
            /* a bad line is that line's error, not the batch's */
            /* lines often come from other programs: a line's "model"
             * names a provider and model, never endpoints or keys */
            rc = llmux_request_new_json(&req, c->spec, prompts[i],
                                        strlen(prompts[i]));
            if (rc) {
                const char *em = req ? llmux_request_errmsg(req) : "";
                size_t ml;
                em = em && *em ? em : llmux_strerror(rc);
                ml = strlen(em) + 1;
                it->msg = xmalloc(ml);
                memcpy(it->msg, em, ml);
                it->status = rc;
                llmux_request_free(req);
                continue;
            }
        } else if ((rc = llmux_request_new(&req, LLMUX_OP_CHAT, c->spec))) {
            const char *em = req ? llmux_request_errmsg(req) : "";
            errorf(c, "%s", em && *em ? em : llmux_strerror(rc));
            llmux_request_free(req);
            st = exit_status(rc);
            break;
        }
        reqs[m] = req;
        r.map[m++] = i;
        made = m;
        if ((st = apply_opts(c, req)))
            break;
        if (!c->jsonl && (rc = llmux_request_add_message(req, LLMUX_ROLE_USER,
                                                         prompts[i]))) {
            st = setter_failed(c, req, "input", rc);
            break;
        }
    }
    if (!st && n) {
        /* lines refused up front: printed first with --as-completed, in
         * their place otherwise */
        for (i = 0; c->as_completed && i < n; i++)
            if (r.items[i].status != 1)
                print_item(&r, i);
        if (!c->as_completed)
            print_ready(&r);
    }
    if (!st && m) {
        o.requests_per_minute = (double)c->rpm;
        o.tokens_per_minute = (double)c->tpm;
        bo.concurrency = c->concurrency ? (size_t)c->concurrency : 8;
        bo.fail_fast = c->fail_fast;
        if ((rc = llmux_client_new(&cl, &o)) ||
            (rc = llmux_as_completed(NULL, cl, reqs, m, &bo, on_batch_item,
                                     on_batch_done, &r))) {
            errorf(c, "batch: %s", llmux_strerror(rc));
            st = exit_status(rc);
        } else {
            made = 0; /* the batch owns them now */
            while (!r.done)
                llmux_client_run(cl, LLMUX_RUN_ONCE);
        }
        llmux_client_free(cl);
    }
    /* the status of the first failure in input order */
    for (i = 0; i < n && !st; i++)
        st = r.items[i].status == 1 ? 0 : exit_status(r.items[i].status);
    for (i = 0; i < made; i++)
        llmux_request_free(reqs[i]);
    for (i = 0; i < n; i++)
        free(r.items[i].msg);
    free(reqs);
    free(r.map);
    free(r.items);
    free(prompts);
    free(lines);
    free(text);
    return st;
}

/* ---- providers ---------------------------------------------------------- */

/* What `providers` shows of one provider: copies, as the library's
 * strings live only during its callback. */
typedef struct prov_row {
    char *name, *module, *path, *descriptor, *version, *description;
    char *base_url, *api_key_env, *error;
    uint64_t caps;
    int status;
} prov_row;

typedef struct prov_list {
    prov_row *v;
    size_t n, cap;
} prov_list;

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, surrogates or code points above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n, i;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* A copy of s, or NULL for NULL. Control characters become spaces, so a
 * plugin's error message cannot break a table line, and bytes that are
 * not UTF-8 (a file name, a descriptor's description) become U+FFFD, so
 * `--json` is always valid JSON text. */
static char *dup_clean(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char *d, *o;
    if (!s)
        return NULL;
    o = d = xmalloc(3 * strlen(s) + 1); /* each byte at most U+FFFD */
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        } else if (n == 1) {
            *o++ = (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return d;
}

static int collect_provider(const llmux_provider_info *info, void *ud)
{
    prov_list *l = ud;
    prov_row *r;
    if (l->n == l->cap)
        l->v =
            xrealloc(l->v, (l->cap = l->cap ? 2 * l->cap : 16) * sizeof *l->v);
    r = &l->v[l->n++];
    r->name = dup_clean(info->name);
    r->module = dup_clean(info->module);
    r->path = dup_clean(info->path);
    r->descriptor = dup_clean(info->descriptor);
    r->version = dup_clean(info->version);
    r->description = dup_clean(info->description);
    r->base_url = dup_clean(info->base_url);
    r->api_key_env = dup_clean(info->api_key_env);
    r->error =
        dup_clean(info->status && !info->error ? llmux_strerror(info->status)
                                               : info->error);
    r->caps = info->caps;
    r->status = info->status;
    return 0;
}

static void prov_list_free(prov_list *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        prov_row *r = &l->v[i];
        free(r->name);
        free(r->module);
        free(r->path);
        free(r->descriptor);
        free(r->version);
        free(r->description);
        free(r->base_url);
        free(r->api_key_env);
        free(r->error);
    }
    free(l->v);
}

/* One plugin directory, for -v. */
typedef struct dir_row {
    char *path;
    const char *source; /* static */
    int exists;
} dir_row;

typedef struct dir_list {
    dir_row *v;
    size_t n;
} dir_list;

static int collect_dir(const llmux_plugin_dir *d, void *ud)
{
    dir_list *l = ud;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n].path = dup_clean(d->path);
    l->v[l->n].source = llmux_plugin_dir_source_name((int)d->source);
    l->v[l->n].exists = d->exists;
    l->n++;
    return 0;
}

/* -v: the directories in search order, the source column aligned. */
static int print_plugin_dirs(const cli *c)
{
    dir_list l = {NULL, 0};
    size_t i, w = 0;
    int rc = llmux_plugin_dirs_list(NULL, collect_dir, &l);
    if (rc) {
        errorf(c, "providers: %s", llmux_strerror(rc));
    } else {
        for (i = 0; i < l.n; i++)
            if (strlen(l.v[i].source) > w)
                w = strlen(l.v[i].source);
        printf("plugin directories, in search order:\n");
        for (i = 0; i < l.n; i++)
            printf("  %-*s  %s%s\n", (int)w, l.v[i].source, l.v[i].path,
                   l.v[i].exists ? "" : " (does not exist)");
        if (!l.n)
            printf("  (none)\n");
        fputc('\n', stdout);
    }
    for (i = 0; i < l.n; i++)
        free(l.v[i].path);
    free(l.v);
    return rc ? exit_status(rc) : 0;
}

enum { PC_NAME, PC_MODULE, PC_KEY, PC_SOURCE, PC_CAPS, PC_N };

/*
 * The table: a header, then a line per provider, each column as wide as
 * its widest cell; the last column is not padded. Broken plugins show
 * their error where the capabilities would be.
 */
static void print_provider_table(const prov_list *l, int verbose)
{
    static const char *const head[PC_N] = {"NAME", "MODULE", "API_KEY_ENV",
                                           "SOURCE", "CAPABILITIES"};
    size_t w[PC_N], i, k, n = l->n + 1;
    char **cells = xmalloc(n * PC_N * sizeof *cells);
    for (k = 0; k < PC_N; k++) {
        cells[k] = xmalloc(strlen(head[k]) + 1);
        strcpy(cells[k], head[k]);
    }
    for (i = 0; i < l->n; i++) {
        const prov_row *r = &l->v[i];
        char **row = cells + (i + 1) * PC_N, caps[256];
        const char *src = r->descriptor ? r->descriptor
                          : r->path     ? r->path
                                        : "-";
        row[PC_NAME] = dup_clean(r->name ? r->name : "?");
        row[PC_MODULE] = dup_clean(r->module ? r->module : "-");
        row[PC_KEY] = dup_clean(r->api_key_env ? r->api_key_env : "-");
        row[PC_SOURCE] = dup_clean(src);
        if (r->status) {
            row[PC_CAPS] = xmalloc(strlen(r->error) + sizeof "broken: ");
            sprintf(row[PC_CAPS], "broken: %s", r->error);
        } else {
            llmux_caps_string(r->caps, caps, sizeof caps);
            row[PC_CAPS] = dup_clean(caps[0] ? caps : "-");
        }
    }
    for (k = 0; k < PC_N; k++) {
        w[k] = 0;
        for (i = 0; i < n; i++)
            if (strlen(cells[i * PC_N + k]) > w[k])
                w[k] = strlen(cells[i * PC_N + k]);
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < PC_N; k++) {
            if (k == PC_KEY && !verbose)
                continue;
            if (k == PC_N - 1)
                printf("%s\n", cells[i * PC_N + k]);
            else
                printf("%-*s  ", (int)w[k], cells[i * PC_N + k]);
        }
    }
    for (i = 0; i < n * PC_N; i++)
        free(cells[i]);
    free(cells);
}

static json_object *json_str_or_null(const char *s)
{
    json_object *o;
    if (!s)
        return NULL; /* json-c's null */
    if (!(o = json_object_new_string(s)))
        die_oom();
    return o;
}

static void json_put(json_object *obj, const char *key, json_object *v)
{
    if (json_object_object_add(obj, key, v) != 0)
        die_oom();
}

/* --json: built with json-c, so names, paths and errors are always
 * escaped right. */
static void print_provider_json(const prov_list *l)
{
    json_object *arr = json_object_new_array();
    size_t i;
    if (!arr)
        die_oom();
    for (i = 0; i < l->n; i++) {
        const prov_row *r = &l->v[i];
        json_object *o = json_object_new_object(), *caps;
        char buf[256], *p, *save = NULL;
        if (!o || !(caps = json_object_new_array()))
            die_oom();
        json_put(o, "name", json_str_or_null(r->name));
        json_put(o, "module", json_str_or_null(r->module));
        json_put(o, "path", json_str_or_null(r->path));
        json_put(o, "descriptor", json_str_or_null(r->descriptor));
        json_put(o, "version", json_str_or_null(r->version));
        json_put(o, "description", json_str_or_null(r->description));
        json_put(o, "base_url", json_str_or_null(r->base_url));
        json_put(o, "api_key_env", json_str_or_null(r->api_key_env));
        llmux_caps_string(r->status ? 0 : r->caps, buf, sizeof buf);
        for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
            if (json_object_array_add(caps, json_str_or_null(p)) != 0)
                die_oom();
        json_put(o, "caps", caps);
        json_put(
            o, "status",
            json_str_or_null(r->status ? llmux_err_name(r->status) : "ok"));
        if (r->status)
            json_put(o, "error", json_str_or_null(r->error));
        if (json_object_array_add(arr, o) != 0)
            die_oom();
    }
    {
        const char *s = json_object_to_json_string_ext(
            arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                     JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
            die_oom();
        printf("%s\n", s);
    }
    json_object_put(arr);
}

static int run_providers(cli *c)
{
    prov_list l = {NULL, 0, 0};
    int rc, st = 0;
    if (c->help) {
        print_cmd_help(cmd_def_of(c->cmd));
        return 0;
    }
    if (c->n_words)
        return usage_error(c, "providers: unexpected argument \"%s\"",
                           c->words[0]);
    if (c->verbose && !c->json && (st = print_plugin_dirs(c)))
        return st;
    rc = llmux_providers_list(NULL, collect_provider, &l);
    if (rc) {
        errorf(c, "providers: %s", llmux_strerror(rc));
        st = exit_status(rc);
    } else {
        if (c->json)
            print_provider_json(&l);
        else if (l.n)
            print_provider_table(&l, c->verbose);
        if (!l.n) {
            /* LLMUX_ENOPROVIDER's status, as for a provider not found */
            if (c->verbose && !c->json)
                errorf(c, "providers: no provider found in these "
                          "directories");
            else
                errorf(c, "providers: no provider found (see 'llmux "
                          "providers -v' for the directories searched)");
            st = exit_status(LLMUX_ENOPROVIDER);
        }
    }
    prov_list_free(&l);
    return st;
}

/* ---- main --------------------------------------------------------------- */

/*
 * Flushes stdout at exit. A closed pipe (`| head`) is not an error: the
 * reader has what it wanted. Any other write error is (exit 3).
 */
static int finish_output(int st)
{
    flush_out();
    if (!g_out_errno || g_out_errno == EPIPE)
        return st;
    fprintf(stderr, "llmux: write error: %s\n", strerror(g_out_errno));
    return st ? st : EXIT_TRANSPORT;
}

int main(int argc, char **argv)
{
    const cmd_def *cd;
    cli c;
    size_t i;
    int st;

    /* `llmux ... | head` must end quietly, not by SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    memset(&c, 0, sizeof c);

    if (argc < 2)
        return usage_error(NULL, "%s", "no command given");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        /* `llmux help chat` is `llmux chat --help` */
        if (argc > 3)
            return usage_error(NULL,
                               "help: one COMMAND at most, got \"%s\" "
                               "too",
                               argv[3]);
        if (argc == 3 && !(cd = find_cmd(argv[2])))
            return usage_error(NULL, "help: unknown command \"%s\"", argv[2]);
        if (argc == 3)
            print_cmd_help(cd);
        else
            print_overview();
        return finish_output(0);
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
        strcmp(argv[1], "version") == 0) {
        /* the library's version: the one actually linked at run time */
        printf("llmux %s\n", llmux_version_string());
        return finish_output(0);
    }
    if (!(cd = find_cmd(argv[1]))) {
        if (argv[1][0] == '-')
            return usage_error(NULL,
                               "unknown option \"%s\" (a COMMAND comes "
                               "first)",
                               argv[1]);
        return usage_error(NULL, "unknown command \"%s\"", argv[1]);
    }
    c.cmd = cd->cmd;
    c.cmd_name = cd->name;

    st = parse_args(&c, argc, argv, 2);
    if (st == 0)
        st = c.cmd == CMD_BATCH       ? run_batch(&c)
             : c.cmd == CMD_PROVIDERS ? run_providers(&c)
                                      : run_request(&c);
    free(c.words);
    free((void *)c.stops);
    free((void *)c.fallbacks);
    free(c.secret2);
    if (c.fb_secrets) {
        for (i = 0; i < c.n_fallbacks; i++)
            free(c.fb_secrets[i]);
        free(c.fb_secrets);
    }
    llmux_global_cleanup();
    return finish_output(st);
}
