/*
 * tools/cli/tool_cmds.c: the command and option tables (what each command
 * accepts) and every help text.
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

#include "cli.h"

/* ---- commands and options ------------------------------------------------ */

const opt_def opt_defs[] = {
    {"model", 'm', "SPEC", O_MODEL, CMD_ALL,
     "provider and model, a config string:\n"
     "provider/model[;key=value...] (see llmux --help)"},
    {"base-url", 0, "URL", O_BASE_URL, CMD_ALL,
     "the provider's base URL (default: the SPEC's\n"
     "base_url=, the provider's variable, its default)"},
    {"api-key", 0, "KEY", O_API_KEY, CMD_ALL,
     "API key (default: the SPEC's api_key=, or the\n"
     "provider's variable, e.g. OPENAI_API_KEY)"},
    {"key-cmd", 0, "CMD", O_KEY_CMD, CMD_ALL,
     "a command that prints the API key (and, on a\n"
     "second line, when it expires in Unix seconds);\n"
     "run with /bin/sh when a key is needed: first,\n"
     "once it expires and after a 401 (LLMUX_REFRESH=1\n"
     "then; LLMUX_PROVIDER, LLMUX_ENDPOINT, LLMUX_MODEL\n"
     "too)"},
    {"token-cmd", 0, "CMD", O_TOKEN_CMD, CMD_ALL,
     "as --key-cmd, for an access token sent as\n"
     "'Authorization: Bearer' (an Entra ID token for\n"
     "azure: az account get-access-token --resource\n"
     "https://cognitiveservices.azure.com --query\n"
     "\"[accessToken,expires_on]\" -o tsv)"},
    {"system", 's', "TEXT", O_SYSTEM, CMD_CHAT | CMD_BATCH, "system prompt"},
    {"max-tokens", 0, "N", O_MAX_TOKENS, CMD_GEN | CMD_BATCH,
     "maximum tokens to generate"},
    {"temperature", 0, "X", O_TEMPERATURE, CMD_GEN | CMD_BATCH,
     "sampling temperature"},
    {"top-p", 0, "X", O_TOP_P, CMD_GEN | CMD_BATCH, "nucleus sampling"},
    {"stop", 0, "S", O_STOP, CMD_GEN | CMD_BATCH, "stop sequence (repeatable)"},
    {"seed", 0, "N", O_SEED, CMD_GEN | CMD_BATCH, "sampling seed"},
    {"n", 0, "N", O_N, CMD_GEN | CMD_BATCH,
     "answers to generate (choices); each is printed,\n"
     "choice 1 on under a '--- choice N ---' line"},
    {"logprobs", 0, NULL, O_LOGPROBS, CMD_GEN | CMD_BATCH,
     "ask for each token's log probability; printed\n"
     "after the text, a token per line (refused by\n"
     "providers without them, as Mistral)"},
    {"top-logprobs", 0, "N", O_TOP_LOGPROBS, CMD_GEN | CMD_BATCH,
     "and the N likeliest tokens at each place (implies\n"
     "--logprobs)"},
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
    {"field", 0, "KEY=JSON", O_FIELD, CMD_GEN | CMD_EMBED | CMD_BATCH,
     "(repeatable) set a field of the request body by\n"
     "its OpenAI name to a JSON value, e.g.\n"
     "--field 'logit_bias={\"50256\":-100}'. A field\n"
     "llmux models (temperature, stop, tools...) is\n"
     "checked and translated for the provider; any\n"
     "other is sent as given"},
    {"image", 0, "PATH|URL", O_IMAGE, CMD_CHAT,
     "(repeatable) an image sent with the prompt: a\n"
     "file (png, jpg, gif or webp, sent as its bytes)\n"
     "or an http(s) URL; providers that cannot take it\n"
     "refuse it (exit 2)"},
    {"header", 0, "'NAME: VALUE'", O_HEADER, CMD_ALL,
     "(repeatable) an HTTP header to send with the\n"
     "request"},
    {"verbose", 'v', NULL, O_VERBOSE, CMD_GEN | CMD_EMBED,
     "when a fallback answered, say so on stderr:\n"
     "  llmux: answered by <provider> (fallback N)\n"
     "and what the answer cost (data/prices.json):\n"
     "  llmux: cost $0.000012 (<provider> <model>, ...)"},
    {"verbose", 'v', NULL, O_VERBOSE, CMD_PROVIDERS,
     "first print the plugin directories in search\n"
     "order, where each comes from and whether it\n"
     "exists; add each provider's key variable to the\n"
     "table (no effect with --json)"},
    {"stream", 0, NULL, O_STREAM, CMD_GEN, "print the answer as it arrives"},
    {"json", 0, NULL, O_JSON, CMD_ONE | CMD_PROVIDERS | CMD_BATCH,
     "print JSON (see output; batch: submit, status and\n"
     "cancel print the job as a JSON object)"},
    {"request-file", 0, "FILE", O_REQUEST_FILE, CMD_CHAT,
     "an OpenAI-style chat request JSON (messages,\n"
     "tools, response_format...) instead of PROMPT;\n"
     "\"-\" reads stdin. PROMPT words given too are\n"
     "appended as a user message. Other flags override\n"
     "the file (--stop adds a stop). Without -m the\n"
     "file's \"model\" is the SPEC"},
    {"expected", 0, "TEXT", O_EXPECTED, CMD_EVALUATE,
     "the completion to score (required)"},
    {"concurrency", 'j', "N", O_CONCURRENCY, CMD_BATCH,
     "requests in flight at once (default 8); input is\n"
     "read only as they finish"},
    {"rpm", 0, "N", O_RPM, CMD_BATCH,
     "requests per minute at most (per endpoint and API\n"
     "key; 0 = no limit, the default)"},
    {"tpm", 0, "N", O_TPM, CMD_BATCH,
     "tokens per minute at most, estimated before\n"
     "sending, corrected by the usage (0 = no limit)"},
    {"as-completed", 0, NULL, O_AS_COMPLETED, CMD_BATCH,
     "write each result when it finishes (the default;\n"
     "kept for scripts that ask for it)"},
    {"ordered", 0, NULL, O_ORDERED, CMD_BATCH,
     "write the results in input order; a slow request\n"
     "holds back at most 2 x --concurrency results\n"
     "(input waits meanwhile)"},
    {"output", 'o', "FILE", O_OUTPUT, CMD_BATCH,
     "write the result lines to FILE (made afresh;\n"
     "appended to with --resume), each whole with one\n"
     "write; fetch: the job's results (default stdout)"},
    {"resume", 0, NULL, O_RESUME, CMD_BATCH,
     "continue the job whose results -o FILE holds:\n"
     "lines whose id already has a success there are\n"
     "skipped, failures run again, a cut last line is\n"
     "removed"},
    {"shard", 0, "I/N", O_SHARD, CMD_BATCH,
     "take only the lines whose id hashes to I:\n"
     "FNV-1a 64 of the id's bytes mod N equals I, so N\n"
     "machines split one file with no coordination"},
    {"quiet", 'q', NULL, O_QUIET, CMD_BATCH,
     "no progress line and no summary on stderr"},
    {"fail-fast", 0, NULL, O_FAIL_FAST, CMD_BATCH,
     "the first failure cancels the rest"},
    {"jsonl", 0, NULL, O_JSONL, CMD_BATCH,
     "each input line is an OpenAI-style chat request\n"
     "JSON (as chat's --request-file) instead of a\n"
     "prompt; without -m each line's \"model\" is its\n"
     "SPEC. A line that is not a valid request gets its\n"
     "error line; the others run"},
    {"config", 0, "FILE", O_CONFIG, CMD_SERVE,
     "the gateway's YAML config: listen, routes, keys,\n"
     "limits... (required; see the README's Gateway)"},
    {"listen", 0, "HOST:PORT", O_LISTEN, CMD_SERVE,
     "where to listen, over the config's listen:\n"
     "(default 127.0.0.1:8080); port 0 picks a free one"},
    {"port-file", 0, "FILE", O_PORT_FILE, CMD_SERVE,
     "once listening, write the port there"},
    /* the providers' Batch APIs: batch submit|status|fetch|cancel */
    {"provider", 0, "NAME", O_PROVIDER, CMD_BATCH,
     "submit/status/fetch/cancel: the provider holding\n"
     "the job (or -m SPEC), as a config string"},
    {"errors", 0, NULL, O_JOB_ERRORS, CMD_BATCH,
     "fetch: the job's error file instead of its output"},
    {"help", 'h', NULL, O_HELP, CMD_ALL | CMD_PROVIDERS | CMD_SERVE,
     "print this help and exit"},
};

const size_t n_opt_defs = sizeof opt_defs / sizeof opt_defs[0];

/* The column where option descriptions start, and their width. */
#define HELP_COL        28
#define HELP_TEXT_WIDTH (80 - HELP_COL)

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
    {"batch", CMD_BATCH,
     "batch -m SPEC [options] [FILE]\n"
     "       llmux batch submit|status|fetch|cancel (-m SPEC|--provider NAME) "
     "FILE|ID",
     "a request for each line of a file, run concurrently",
     "Runs a request for each non-empty line of FILE (or stdin, or FILE\n"
     "\"-\"), --concurrency at a time. Lines are read only as requests\n"
     "finish, so memory stays bounded however long FILE is. The first\n"
     "non-empty line says what the lines are:\n"
     "  a prompt (a chat completion each); with --jsonl an OpenAI-style\n"
     "  chat request JSON; or, detected by itself, an OpenAI Batch API\n"
     "  input line {\"custom_id\",\"method\":\"POST\",\"url\",\"body\"}\n"
     "  whose url is /v1/chat/completions, /v1/completions or\n"
     "  /v1/embeddings. -m gives the provider and its options for every\n"
     "  line; a body's \"model\" picks the model when present, a plain\n"
     "  name only (without -m, which --jsonl allows, it is the line's\n"
     "  provider/model). A line of another kind, an unknown url, a model\n"
     "  with options or a line that is not JSON gets its error line; the\n"
     "  others run.\n"
     "A line's id is its custom_id, or else its line number. --shard I/N\n"
     "takes the lines whose id's FNV-1a 64 hash mod N is I. -o FILE\n"
     "writes each result line whole with one write; --resume skips the\n"
     "ids FILE already holds a success for (failures run again). SIGINT\n"
     "or SIGTERM stops reading, waits for the requests in flight (a\n"
     "second signal cancels them), writes their lines and exits 130.\n"
     "On stderr: a progress line when it is a terminal (at most 10 a\n"
     "second) and a summary line at the end (--quiet: neither).\n"
     "\n"
     "output:\n"
     "  a line per result, as each finishes (--ordered: in input order).\n"
     "  For OpenAI Batch input, OpenAI Batch output lines:\n"
     "    {\"id\":\"batch_req_...\",\"custom_id\":\"a\",\"response\":\n"
     "     {\"status_code\":200,\"request_id\":null,\"body\":{...}},\n"
     "     \"error\":null}\n"
     "  (a provider's HTTP error: its status_code and {\"error\":...} body;\n"
     "  other failures: \"response\":null,\"error\":{\"code\",\"message\"}).\n"
     "  For prompts and --jsonl, \"index\" counts non-empty lines from 0\n"
     "  and \"line\" is the input line:\n"
     "    {\"index\":0,\"line\":1,\"status\":\"ok\",\n"
     "     \"response\":{...chat.completion...}}\n"
     "    {\"index\":1,\"line\":2,\"status\":\"error\",\n"
     "     \"error\":{\"code\":\"LLMUX_EPROVIDER\",\n"
     "     \"message\":...,\"http_status\":429,...}}\n"
     "  (\"fallback\":N when a fallback answered). Every line taken gets\n"
     "  its result line; the exit status is that of the first failure in\n"
     "  input order.\n"
     "\n"
     "provider batch jobs (OpenAI's Batch API, Mistral's batch jobs; half\n"
     "the price, done within 24 hours), each with -m SPEC or --provider:\n"
     "  batch submit FILE   uploads FILE (OpenAI Batch lines: custom_id,\n"
     "                      method, url, body) and creates the job; prints\n"
     "                      its id (-v: the whole job)\n"
     "  batch status ID     prints the job: status, request counts, files\n"
     "  batch fetch ID      writes its results (OpenAI Batch output lines,\n"
     "                      for every provider) to -o FILE or stdout;\n"
     "                      --errors: the failed requests' lines\n"
     "  batch cancel ID     cancels it (partial results stay)\n"
     "--json: submit, status and cancel print the job as one JSON object:\n"
     "  id, status, status_raw, request_counts {total, completed, failed},\n"
     "  model, input_file_id, output_file_id, error_file_id, errors,\n"
     "  created_at, finished_at (null where unknown).\n"
     "A provider without a batch API fails and names the local runner.\n",
     "  llmux batch -m openai/gpt-4o-mini --concurrency 4 prompts.txt "
     ">out.jsonl\n"
     "  llmux batch -m openai/gpt-4o-mini -j 64 -o out.jsonl --resume "
     "batch.jsonl\n"
     "  llmux batch -m openai/gpt-4o-mini --shard 1/3 -o out.1.jsonl "
     "batch.jsonl\n"
     "  id=$(llmux batch submit --provider openai requests.jsonl)\n"
     "  llmux batch status --provider openai \"$id\"\n"
     "  llmux batch fetch --provider openai \"$id\" -o results.jsonl\n"},
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
    {"serve", CMD_SERVE,
     "serve --config FILE [--listen HOST:PORT] [--port-file FILE]",
     "an OpenAI-compatible HTTP gateway to every provider",
     "Serves OpenAI's HTTP API (chat completions, completions, embeddings,\n"
     "models) in front of the config's routes: a client names a route as\n"
     "its model and llmux sends the request to the route's config strings,\n"
     "the first and then its fallbacks. Runs until SIGTERM or SIGINT,\n"
     "then finishes the requests in flight and exits 0. The same program\n"
     "is installed as llmux-serve.\n"
     "\n"
     "output:\n"
     "  once it accepts, on stderr:\n"
     "    llmux serve: listening on http://HOST:PORT\n"
     "  a bad config is one line naming the file's line and the key\n"
     "  (exit 2).\n",
     "  llmux serve --config examples/gateway.yaml\n"
     "  llmux serve --config gw.yaml --listen 127.0.0.1:0 --port-file "
     "port\n"},
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
    "  130  batch: stopped by SIGINT or SIGTERM (what finished is written;\n"
    "     --resume runs the rest)\n"
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
    "    AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT\n"
    "                                             azure (OPENAI_API_VERSION:\n"
    "                                             its api version; else v1)\n"
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
void print_cmd_help(const cmd_def *cd)
{
    size_t i;
    /* the overview's summary as a sentence */
    printf("usage: llmux %s\n\n%c%s.\n\n", cd->synopsis,
           toupper((unsigned char)cd->summary[0]), cd->summary + 1);
    fputs(cd->text, stdout);
    fputs("\noptions:\n", stdout);
    for (i = 0; i < n_opt_defs; i++)
        if (opt_defs[i].cmds & (unsigned)cd->cmd)
            print_opt_help(&opt_defs[i]);
    printf("\nexamples:\n%s", cd->example);
    fputs("\nSee 'llmux --help' for SPEC, the exit statuses and the "
          "environment.\n",
          stdout);
}

/* `llmux --help`: the commands, the notes they share, exit statuses and
 * environment. */
void print_overview(void)
{
    size_t i;
    fputs(overview_head, stdout);
    for (i = 0; i < N_CMD_DEFS; i++)
        printf("  %-14s  %s\n", cmd_defs[i].name, cmd_defs[i].summary);
    fputs(overview_tail, stdout);
}

const cmd_def *find_cmd(const char *name)
{
    size_t i;
    for (i = 0; i < N_CMD_DEFS; i++)
        if (strcmp(cmd_defs[i].name, name) == 0)
            return &cmd_defs[i];
    return NULL;
}

const cmd_def *cmd_def_of(int cmd)
{
    size_t i;
    for (i = 0; i < N_CMD_DEFS; i++)
        if (cmd_defs[i].cmd == cmd)
            return &cmd_defs[i];
    return NULL;
}

/* Exit status for an llmux code (see overview_tail). */
int exit_status(int code)
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
