/*
 * tools/cli/llmux.c: the `llmux` command-line tool.
 *
 * A thin client of the public API (the include/llmux headers only): it parses
 * the command line, builds one request, runs it with the blocking llmux_run()
 * and prints the answer as text or as OpenAI-shaped JSON; `batch` builds a
 * request per input line and runs them with llmux_as_completed() on a
 * private client, printing a JSON line per request. Its output
 * formats and exit statuses are a contract that scripts depend on; the
 * usage text below is their reference.
 *
 * Locale: the program never calls setlocale(), so it stays in the "C"
 * locale; numbers are parsed and printed with '.' whatever LC_NUMERIC
 * says in the environment.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmux/llmux.h>

/* Exit statuses (see usage). */
#define EXIT_PROVIDER  1
#define EXIT_USAGE     2
#define EXIT_TRANSPORT 3

static const char usage_text[] =
    "usage: llmux <command> [options] [arguments]\n"
    "\n"
    "commands:\n"
    "  chat -m SPEC [options] [PROMPT...]      chat completion (PROMPT words\n"
    "                                          are joined by spaces)\n"
    "  complete -m SPEC [options] [PROMPT...]  text completion\n"
    "  embed -m SPEC [--json] TEXT...          embeddings, one input per TEXT\n"
    "  models -m PROVIDER[/...] [--json]       the provider's model ids\n"
    "  tokenize -m SPEC [--json] [TEXT...]     the tokens of TEXT (words\n"
    "                                          joined by spaces)\n"
    "  detokenize -m SPEC [--json] [ID...]     the text of token ids\n"
    "  evaluate -m SPEC --expected TEXT [--json] [PROMPT...]\n"
    "                                          how likely TEXT follows\n"
    "                                          PROMPT (log probabilities)\n"
    "  batch -m SPEC [options] [FILE]          a chat completion for each\n"
    "                                          non-empty line of FILE (or\n"
    "                                          stdin), run concurrently\n"
    "  providers                               the provider plugins found\n"
    "  help, --help                            this text\n"
    "  --version                               the version\n"
    "\n"
    "With no PROMPT (or PROMPT \"-\") the prompt is read from stdin, with its\n"
    "trailing newline removed; the same for tokenize's TEXT. embed with no\n"
    "TEXT (or \"-\") reads stdin, one input per non-empty line. detokenize\n"
    "with no ID (or \"-\") reads the ids from stdin; ids are separated by\n"
    "white space, in one argument or several.\n"
    "tokenize, detokenize and evaluate are optional capabilities (Aleph\n"
    "Alpha has them); other providers answer \"not supported\" (exit 2).\n"
    "\n"
    "SPEC is a config string, provider/model[;key=value...], e.g.\n"
    "  openai/gpt-4o-mini    ollama/llama3:8b\n"
    "  \"openai/gpt-4o-mini;base_url=http://127.0.0.1:8080/v1\"\n"
    "\n"
    "options:\n"
    "  -m, --model SPEC       provider and model (required)\n"
    "  --base-url URL         provider base URL\n"
    "  --api-key KEY          API key (default: the provider's variable,\n"
    "                         e.g. OPENAI_API_KEY)\n"
    "  -s, --system TEXT      system prompt (chat, batch)\n"
    "  --max-tokens N         maximum tokens to generate\n"
    "  --temperature X        sampling temperature\n"
    "  --top-p X              nucleus sampling\n"
    "  --stop S               stop sequence (repeatable)\n"
    "  --seed N               sampling seed\n"
    "  --timeout SECONDS      deadline for the whole request, retries\n"
    "                         included (fractions allowed; 0 = none)\n"
    "  --retries N            retry budget (default 2)\n"
    "  --connect-timeout SECONDS\n"
    "                         (chat, complete, embed, batch) time allowed\n"
    "                         to connect (default 10; must be above 0)\n"
    "  --first-byte-timeout SECONDS\n"
    "                         (chat, complete, embed, batch) time allowed\n"
    "                         until the answer's first byte (headers, or a\n"
    "                         stream's first event); 0 = none, the default\n"
    "  --idle-timeout SECONDS (chat, complete, embed, batch) longest silence\n"
    "                         in the middle of an answer, e.g. between\n"
    "                         stream events; 0 = none, the default\n"
    "  --fallback SPEC        (chat, complete, embed, batch; repeatable,\n"
    "                         tried in order) a config string to send the\n"
    "                         request to when it still fails after its\n"
    "                         retries with a rate limit, an overload or\n"
    "                         other 5xx, a timeout, a connection failure or\n"
    "                         a context-length error (never once a stream\n"
    "                         printed text). --base-url and --api-key apply\n"
    "                         to -m's SPEC only; a fallback's settings come\n"
    "                         from its own SPEC; --retries and the stage\n"
    "                         timeouts hold for each, and --timeout's\n"
    "                         deadline covers them all. The output is the\n"
    "                         same whichever answers\n"
    "  -v, --verbose          (chat, complete, embed) when a fallback\n"
    "                         answered, say so on stderr:\n"
    "                           llmux: answered by <provider> (fallback N)\n"
    "  --stream               print the answer as it arrives\n"
    "  --json                 print OpenAI-shaped JSON\n"
    "  --expected TEXT        (evaluate, required) the completion to score\n"
    "  --request-file FILE    (chat) an OpenAI-style chat request JSON\n"
    "                         (messages, tools, response_format...) instead\n"
    "                         of PROMPT; \"-\" reads stdin. PROMPT words "
    "given\n"
    "                         too are appended as a user message. Other\n"
    "                         flags override the file (--stop adds a stop).\n"
    "                         Without -m the file's \"model\" is the SPEC.\n"
    "  --concurrency N        (batch) requests in flight at once (default 8)\n"
    "  --rpm N                (batch) requests per minute at most (per\n"
    "                         endpoint and API key; 0 = no limit)\n"
    "  --tpm N                (batch) tokens per minute at most, estimated\n"
    "                         before sending, corrected by the usage\n"
    "  --as-completed         (batch) print each result when it finishes,\n"
    "                         not in input order\n"
    "  --fail-fast            (batch) the first failure cancels the rest\n"
    "  --jsonl                (batch) each input line is an OpenAI-style chat\n"
    "                         request JSON (as --request-file) instead of a\n"
    "                         prompt; without -m each line's \"model\" is its\n"
    "                         SPEC. A line that is not a valid request gets\n"
    "                         its error line; the others run\n"
    "  -h, --help             this text\n"
    "embed accepts only -m, --json, --base-url, --api-key, --timeout,\n"
    "--retries, --connect-timeout, --first-byte-timeout, --idle-timeout,\n"
    "--fallback and -v; models, tokenize, detokenize and evaluate accept\n"
    "only -m, --json, --base-url, --api-key, --timeout and --retries\n"
    "(evaluate also --expected). batch accepts the options of chat except\n"
    "--stream, --json, --request-file and -v, plus its own.\n"
    "\n"
    "output:\n"
    "  chat, complete  the text and a newline (with --stream, the text as it\n"
    "                  arrives). A chat answer that is only tool calls\n"
    "                  prints one line per call:\n"
    "                    tool_call <id> <name> <arguments>\n"
    "                  where <arguments> is the call's JSON text\n"
    "  embed           one line per input: its floats, space-separated\n"
    "  models          one model id per line\n"
    "  tokenize        one line per token: <id>, a tab, the token's text as\n"
    "                  the provider gave it (<id> is -1 when unknown; the\n"
    "                  text is empty when the provider gave only ids)\n"
    "  detokenize      the text and a newline\n"
    "  evaluate        the provider's result object as JSON on one line\n"
    "                  (the same as with --json)\n"
    "  providers       one line per provider: name, capabilities, file\n"
    "                  (for a descriptor: file.conf -> module (module file));\n"
    "                  for a broken one: name, \"broken\", file, error\n"
    "  --json          one JSON object: chat.completion, text_completion, or\n"
    "                  a \"list\" (embed, models); with --stream one chunk "
    "per\n"
    "                  line (chat.completion.chunk, or text_completion);\n"
    "                  tokenize: {\"tokens\": [...], \"token_ids\": [...]},\n"
    "                  detokenize: {\"text\": ...}, evaluate: the provider's\n"
    "                  result object\n"
    "  batch           one JSON object per line for each non-empty input\n"
    "                  line, in input order (--as-completed: as they\n"
    "                  finish); \"index\" counts prompts from 0, \"line\"\n"
    "                  is the input line:\n"
    "                    {\"index\":0,\"line\":1,\"status\":\"ok\",\n"
    "                     \"response\":{...chat.completion...}}\n"
    "                    {\"index\":1,\"line\":2,\"status\":\"error\",\n"
    "                     \"error\":{\"code\":\"LLMUX_EPROVIDER\",\n"
    "                     \"message\":...,\"http_status\":429,...}}\n"
    "                  (\"fallback\":N when a fallback answered). Every\n"
    "                  prompt gets its line; the exit status is that of the\n"
    "                  first failure in input order\n"
    "\n"
    "Errors are one line on stderr:\n"
    "  llmux: <provider>: <message> (HTTP <status>)\n"
    "\n"
    "exit status:\n"
    "  0  success\n"
    "  1  the provider answered with an error (an HTTP error status, an\n"
    "     error inside a stream, a malformed answer)\n"
    "  2  usage or configuration error (bad flag or value, unknown provider,\n"
    "     missing API key, an operation the provider does not support)\n"
    "  3  transport error (cannot connect, timeout, stream cut off); also\n"
    "     local failures (out of memory, cannot write the output). A\n"
    "     timeout's message names the one that fired: timeout (the total\n"
    "     deadline), connect_timeout, first_byte_timeout or idle_timeout\n"
    "\n"
    "environment:\n"
    "  LLMUX_PLUGIN_PATH      extra plugin directories, ':'-separated\n";

/* ---- small helpers ------------------------------------------------------ */

/* Which command runs: the subset of options each accepts follows. */
enum cmd {
    CMD_CHAT = 1,
    CMD_COMPLETE = 2,
    CMD_EMBED = 4,
    CMD_MODELS = 8,
    CMD_TOKENIZE = 16,
    CMD_DETOKENIZE = 32,
    CMD_EVALUATE = 64,
    CMD_BATCH = 128
};

#define CMD_GEN  (CMD_CHAT | CMD_COMPLETE)
#define CMD_TASK (CMD_TOKENIZE | CMD_DETOKENIZE | CMD_EVALUATE)
/* the commands sending one request */
#define CMD_ONE (CMD_GEN | CMD_EMBED | CMD_MODELS | CMD_TASK)
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

typedef struct opt_def {
    const char *name; /* long name without "--" */
    char short_name;  /* or 0 */
    int has_arg;
    int id;
    unsigned cmds; /* commands accepting it */
} opt_def;

static const opt_def opt_defs[] = {
    {"model", 'm', 1, O_MODEL, CMD_ALL},
    {"base-url", 0, 1, O_BASE_URL, CMD_ALL},
    {"api-key", 0, 1, O_API_KEY, CMD_ALL},
    {"system", 's', 1, O_SYSTEM, CMD_CHAT | CMD_BATCH},
    {"max-tokens", 0, 1, O_MAX_TOKENS, CMD_GEN | CMD_BATCH},
    {"temperature", 0, 1, O_TEMPERATURE, CMD_GEN | CMD_BATCH},
    {"top-p", 0, 1, O_TOP_P, CMD_GEN | CMD_BATCH},
    {"stop", 0, 1, O_STOP, CMD_GEN | CMD_BATCH},
    {"seed", 0, 1, O_SEED, CMD_GEN | CMD_BATCH},
    {"timeout", 0, 1, O_TIMEOUT, CMD_ALL},
    {"retries", 0, 1, O_RETRIES, CMD_ALL},
    {"connect-timeout", 0, 1, O_CONNECT_TIMEOUT, CMD_RESIL},
    {"first-byte-timeout", 0, 1, O_FIRST_BYTE_TIMEOUT, CMD_RESIL},
    {"idle-timeout", 0, 1, O_IDLE_TIMEOUT, CMD_RESIL},
    {"fallback", 0, 1, O_FALLBACK, CMD_RESIL},
    {"verbose", 'v', 0, O_VERBOSE, CMD_GEN | CMD_EMBED},
    {"stream", 0, 0, O_STREAM, CMD_GEN},
    {"json", 0, 0, O_JSON, CMD_ONE},
    {"request-file", 0, 1, O_REQUEST_FILE, CMD_CHAT},
    {"expected", 0, 1, O_EXPECTED, CMD_EVALUATE},
    {"concurrency", 0, 1, O_CONCURRENCY, CMD_BATCH},
    {"rpm", 0, 1, O_RPM, CMD_BATCH},
    {"tpm", 0, 1, O_TPM, CMD_BATCH},
    {"as-completed", 0, 0, O_AS_COMPLETED, CMD_BATCH},
    {"fail-fast", 0, 0, O_FAIL_FAST, CMD_BATCH},
    {"jsonl", 0, 0, O_JSONL, CMD_BATCH},
    {"help", 'h', 0, O_HELP, CMD_ALL},
};

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

/* Prints the error line, then the usage, on stderr; returns 2. */
static int usage_error(const cli *c, const char *fmt, ...) LLMUX_PRINTF(2, 3);

static int usage_error(const cli *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_error_line(c, buf);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* Exit status for an llmux code (see usage). */
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

static const opt_def *find_long(const char *name, size_t len)
{
    size_t i;
    for (i = 0; i < sizeof opt_defs / sizeof opt_defs[0]; i++)
        if (strlen(opt_defs[i].name) == len &&
            strncmp(opt_defs[i].name, name, len) == 0)
            return &opt_defs[i];
    return NULL;
}

static const opt_def *find_short(char ch)
{
    size_t i;
    for (i = 0; i < sizeof opt_defs / sizeof opt_defs[0]; i++)
        if (opt_defs[i].short_name == ch)
            return &opt_defs[i];
    return NULL;
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
            d = find_long(a + 2, len);
            if (!d)
                return usage_error(c, "unknown option \"%s\"", a);
            snprintf(flag, sizeof flag, "--%s", d->name);
            if (eq) {
                if (!d->has_arg)
                    return usage_error(c, "%s takes no value", flag);
                val = eq + 1;
            }
        } else {
            d = find_short(a[1]);
            if (!d)
                return usage_error(c, "unknown option \"%s\"", a);
            snprintf(flag, sizeof flag, "-%c", d->short_name);
            if (a[2] != '\0') {
                if (!d->has_arg)
                    return usage_error(c, "unknown option \"%s\"", a);
                val = a + 2;
            }
        }
        if (!(d->cmds & (unsigned)c->cmd))
            return usage_error(c, "%s is not an option of \"%s\"", flag,
                               c->cmd_name);
        if (d->has_arg && !val) {
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

/* Reads a whole stream. NULL on a read error (errno set). */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0, got;
    char *b = xmalloc(cap);
    for (;;) {
        if (cap - n < 1024)
            b = xrealloc(b, cap *= 2);
        got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                free(b);
                errno = e ? e : EIO;
                return NULL;
            }
            break;
        }
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* Reads stdin, or the file `path` ("-" is stdin). */
static char *read_input(const cli *c, const char *what, const char *path,
                        size_t *len)
{
    FILE *f = stdin;
    char *b;
    if (path && strcmp(path, "-") != 0) {
        f = fopen(path, "rb");
        if (!f) {
            errorf(c, "%s: %s: %s", what, path, strerror(errno));
            return NULL;
        }
    }
    b = read_all(f, len);
    if (!b)
        errorf(c, "%s: %s: %s", what, f == stdin ? "stdin" : path,
               strerror(errno));
    if (f != stdin)
        fclose(f);
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

/* The prompt: the words, or stdin. NULL after printing an error. */
static char *get_prompt(const cli *c)
{
    size_t len;
    char *s;
    if (!words_are_stdin(c))
        return join_words(c);
    s = read_input(c, "prompt", "-", &len);
    if (s)
        chomp(s, &len);
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
        s = read_input(c, "input", "-", &len);
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
        char *text = read_input(c, "--request-file", c->request_file, &len);
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
            char *s = read_input(c, "input", "-", &len), *line, *nl;
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
        fputs(usage_text, stdout);
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
        fputs(usage_text, stdout);
        return 0;
    }
    if (!c->spec && !c->jsonl)
        return usage_error(c, "batch: -m SPEC is required");
    if (c->n_words > 1)
        return usage_error(c, "batch: one input FILE at most, got \"%s\" too",
                           c->words[1]);
    note_secrets(c);
    text = read_input(c, "input", c->n_words ? c->words[0] : "-", &len);
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

static int print_provider(const llmux_provider_info *info, void *ud)
{
    char caps[128];
    (void)ud;
    if (info->status != 0) {
        printf("%s  broken  %s  %s\n", info->name ? info->name : "?",
               info->path ? info->path : "-",
               info->error ? info->error : llmux_strerror(info->status));
    } else {
        llmux_caps_string(info->caps, caps, sizeof caps);
        printf("%s  %s  ", info->name ? info->name : "?", caps[0] ? caps : "-");
        if (info->descriptor)
            printf("%s -> %s (%s)\n", info->descriptor,
                   info->module ? info->module : "?",
                   info->path ? info->path : "?");
        else
            printf("%s\n", info->path ? info->path : "?");
    }
    return ferror(stdout) ? 1 : 0;
}

static int cmd_providers(cli *c, int argc, char **argv)
{
    int i, rc;
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        return usage_error(c, "providers: unexpected argument \"%s\"", argv[i]);
    }
    rc = llmux_providers_list(NULL, print_provider, NULL);
    if (rc) {
        errorf(c, "providers: %s", llmux_strerror(rc));
        return exit_status(rc);
    }
    return 0;
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
    static const struct {
        const char *name;
        int cmd;
    } cmds[] = {{"chat", CMD_CHAT},         {"complete", CMD_COMPLETE},
                {"embed", CMD_EMBED},       {"models", CMD_MODELS},
                {"tokenize", CMD_TOKENIZE}, {"detokenize", CMD_DETOKENIZE},
                {"evaluate", CMD_EVALUATE}, {"batch", CMD_BATCH}};
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
        fputs(usage_text, stdout);
        return finish_output(0);
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("llmux %s\n", llmux_version_string());
        return finish_output(0);
    }
    if (strcmp(argv[1], "providers") == 0) {
        c.cmd_name = "providers";
        st = cmd_providers(&c, argc, argv);
        llmux_global_cleanup();
        return finish_output(st);
    }
    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            break;
    if (i == sizeof cmds / sizeof cmds[0])
        return usage_error(NULL, "unknown command \"%s\"", argv[1]);
    c.cmd = cmds[i].cmd;
    c.cmd_name = cmds[i].name;

    st = parse_args(&c, argc, argv, 2);
    if (st == 0)
        st = c.cmd == CMD_BATCH ? run_batch(&c) : run_request(&c);
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
