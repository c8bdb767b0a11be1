/*
 * tools/cli/cli.h: what the parts of the `llmux` command-line tool share:
 * the parsed command line (struct cli), the command and option ids, exit
 * statuses, and the functions each part offers the others. The parts,
 * split by concern as curl's tool_*.c are:
 *
 *   llmux.c           main: the command's dispatch and the exit status
 *   tool_cmds.c       the command and option tables, and every help text
 *   tool_args.c       the command line and locale-independent numbers
 *   tool_util.c       memory, error lines, keeping secrets out of them
 *   tool_io.c         reading prompts and input, printing answers
 *   tool_ops.c        one request: chat, complete, embed, models, ...
 *   tool_batch.c      batch: a request per input line
 *   tool_providers.c  providers: the table, --json and -v
 */
#ifndef LLMUX_TOOL_CLI_H
#define LLMUX_TOOL_CLI_H

#include <stddef.h>

#include <llmux/llmux.h>

/* Exit statuses (see overview_tail). */
#define EXIT_PROVIDER  1
#define EXIT_USAGE     2
#define EXIT_TRANSPORT 3
/* batch stopped by SIGINT or SIGTERM (128 + SIGINT, as a shell says) */
#define EXIT_INTERRUPTED 130

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
    CMD_PROVIDERS = 256,
    CMD_SERVE = 512
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
    O_KEY_CMD,
    O_TOKEN_CMD,
    O_SYSTEM,
    O_MAX_TOKENS,
    O_TEMPERATURE,
    O_TOP_P,
    O_STOP,
    O_SEED,
    O_N,
    O_LOGPROBS,
    O_TOP_LOGPROBS,
    O_TIMEOUT,
    O_RETRIES,
    O_CONNECT_TIMEOUT,
    O_FIRST_BYTE_TIMEOUT,
    O_IDLE_TIMEOUT,
    O_FALLBACK,
    O_FIELD,
    O_IMAGE,
    O_HEADER,
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
    O_ORDERED,
    O_OUTPUT,
    O_RESUME,
    O_SHARD,
    O_QUIET,
    O_CONFIG,
    O_LISTEN,
    O_PORT_FILE,
    /* batch submit/status/fetch/cancel (tool_pbatch.c) */
    O_PROVIDER,
    O_JOB_ERRORS,
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

/* One command: its help beyond the options, which come from opt_defs. */
typedef struct cmd_def {
    const char *name;
    int cmd;
    const char *synopsis; /* after "usage: llmux " */
    const char *summary;  /* its line in the overview */
    const char *text;     /* what it does, reads and prints */
    const char *example;  /* lines of examples */
} cmd_def;

/* Flags recording which optional settings were given. */
#define HAS_MAX_TOKENS   (1u << 0)
#define HAS_TEMPERATURE  (1u << 1)
#define HAS_TOP_P        (1u << 2)
#define HAS_SEED         (1u << 3)
#define HAS_TIMEOUT      (1u << 4)
#define HAS_RETRIES      (1u << 5)
#define HAS_CONNECT      (1u << 6)
#define HAS_FIRST_BYTE   (1u << 7)
#define HAS_IDLE         (1u << 8)
#define HAS_N            (1u << 9)
#define HAS_LOGPROBS     (1u << 10)
#define HAS_TOP_LOGPROBS (1u << 11)

/* The parsed command line. Strings point into argv. */
typedef struct cli {
    int cmd;
    const char *cmd_name;
    const char *spec;
    const char *base_url;
    const char *api_key;
    const char *key_cmd, *token_cmd; /* --key-cmd, --token-cmd */
    const char *system;
    const char *request_file;
    const char *expected; /* evaluate */
    const char **stops;
    size_t n_stops;
    long max_tokens;
    double temperature, top_p;
    long long seed;
    long n_choices;    /* --n */
    long top_logprobs; /* --top-logprobs */
    long timeout_ms;
    long connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    int retries;
    unsigned has;
    int stream, json, help, verbose;
    long concurrency; /* batch */
    long rpm, tpm;
    int as_completed, fail_fast, jsonl;
    int ordered, resume, quiet; /* batch */
    const char *output;         /* batch -o FILE */
    long shard_i, shard_n;      /* batch --shard I/N (shard_n 0: none) */
    const char *config, *listen, *port_file; /* serve */
    const char *provider;                    /* batch submit/...: --provider */
    int job_errors;                          /* batch fetch --errors */
    const char **fallbacks;                  /* --fallback SPECs, in order */
    size_t n_fallbacks;
    const char **fields; /* --field KEY=JSON, in order */
    size_t n_fields;
    const char **headers; /* --header 'Name: value', in order */
    size_t n_headers;
    const char **images; /* --image PATH|URL, in order */
    size_t n_images;
    char **words;
    size_t n_words;
    /* secrets to keep out of every message */
    const char *secret1;
    char *secret2;      /* api_key=... found in the spec (owned) */
    char **fb_secrets;  /* api_key=... of each fallback (owned, or NULL) */
    char **cmd_secrets; /* what --key-cmd/--token-cmd printed (owned) */
    size_t n_cmd_secrets;
} cli;

typedef struct run_ctx {
    const cli *c;
    int streamed;  /* chunks were printed */
    int text_seen; /* some delta carried text */
    int out_errno; /* stdout failed (errno), 0 if fine */
} run_ctx;

/* The number of rows in opt_defs. */
extern const size_t n_opt_defs;

int parse_ll(const char *s, int allow_neg, long long max, long long *out);
int parse_args(cli *c, int argc, char **argv, int first);
int run_batch(cli *c);
extern const opt_def opt_defs[];
void print_cmd_help(const cmd_def *cd);
void print_overview(void);
const cmd_def *find_cmd(const char *name);
const cmd_def *cmd_def_of(int cmd);
int exit_status(int code);
char *read_input(const cli *c, const char *what, const char *hint,
                 const char *path, size_t *len);
int words_are_stdin(const cli *c);
char *join_words(const cli *c);
char *get_prompt(const cli *c);
extern int g_out_errno;
int flush_out(void);
int on_chunk(llmux_request *req, const llmux_chunk *ch, void *ud);
int print_answer(const cli *c, const run_ctx *x, const llmux_response *res);
void print_failure(const cli *c, const llmux_request *req, int rc,
                   const llmux_response *res);
int setter_failed(const cli *c, const llmux_request *req, const char *what,
                  int rc);
int fallback_failed(const cli *c, const llmux_request *req, size_t i, int rc);
llmux_op cmd_op(int cmd);
int check_fallback(const cli *c, size_t i);
int set_seconds_option(llmux_request *req, const char *key, long ms);
int apply_opts(const cli *c, llmux_request *req);
int run_request(cli *c);
int run_providers(cli *c);

/* tool_pbatch.c: `llmux batch submit|status|fetch|cancel`, the
 * providers' Batch APIs. pbatch_word: whether the first operand is one of
 * those words. */
int pbatch_word(const cli *c);
int run_pbatch(cli *c);

/* tool_serve.c: `llmux serve`, the gateway (tools/serve) */
int run_serve(cli *c);
#if defined(__GNUC__)
#define TOOL_NORETURN __attribute__((noreturn))
#else
#define TOOL_NORETURN
#endif
/* "llmux: out of memory" and exit 3. */
void die_oom(void) TOOL_NORETURN;
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *scrubbed(const cli *c, const char *text);
void note_secrets(cli *c);
void print_error_line(const cli *c, const char *text);
/* Writes `s` as a JSON string to stdout: '"' and '\' escaped, control
 * characters as \u00XX, other bytes (UTF-8) as they are. */
void put_json_str(const char *s);
/* Hands `s` as a JSON string to put(ud, bytes, n), piece by piece: '"'
 * and '\\' escaped, control characters as \u00XX, other bytes (UTF-8) as
 * they are. put_json_str() is it onto stdout. */
void json_str_to(void (*put)(void *, const char *, size_t), void *ud,
                 const char *s);
void errorf(const cli *c, const char *fmt, ...) LLMUX_PRINTF(2, 3);
/* tool_cred.c: the credential callback of --key-cmd and --token-cmd into
 * `o` (nothing without them). */
void cli_credentials(cli *c, llmux_client_options *o);
int usage_error(const cli *c, const char *fmt, ...) LLMUX_PRINTF(2, 3);

#endif /* LLMUX_TOOL_CLI_H */
