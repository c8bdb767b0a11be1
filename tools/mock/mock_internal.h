/*
 * mock_internal.h: declarations shared by the mock server's files.
 *
 * mock_server.c owns sockets, HTTP parsing, records, fault resolution and
 * the response engine (pacing, stalls, cuts). Each wire protocol lives in
 * its own file (mock_openai.c, mock_mistral.c, mock_ollama.c, mock_aleph.c,
 * mock_azure.c)
 * and only builds replies: a whole body, or a list of framed stream events
 * that the engine sends one by one. mock_chat.c decides the normalized
 * answer every protocol gives and writes OpenAI's chat shape, which
 * Mistral and Aleph Alpha reuse with a dialect; mock_util.c holds the
 * shared helpers.
 */
#ifndef LLMUX_MOCK_INTERNAL_H
#define LLMUX_MOCK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "llmux_mock.h"

#define MOCK_CREATED     1700000000L   /* "created" in every response */
#define MOCK_MAX_REQUEST (8u << 20)    /* body limit: larger gets 413 */
#define MOCK_MAX_HEADERS 256           /* more header lines get 400 */
#define MOCK_MAX_HUGE    (1024L << 20) /* cap of the huge=N directive */
#define MOCK_EMBED_DIM   8             /* floats per mock embedding */

/* ---- growable buffer --------------------------------------------------- */

/*
 * Byte buffer kept NUL-terminated. After an allocation failure `oom` is set
 * and later appends do nothing, so callers check once at the end.
 */
typedef struct mock_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} mock_buf;

void llmux__mock_buf_add(mock_buf *b, const void *p, size_t n);
void llmux__mock_buf_adds(mock_buf *b, const char *s);
void llmux__mock_buf_printf(mock_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empties `b` and returns its storage (caller frees); never NULL unless
 * oom. */
char *llmux__mock_buf_steal(mock_buf *b, size_t *len);
void llmux__mock_buf_free(mock_buf *b);

/* ---- faults ------------------------------------------------------------ */

enum mock_body_fault {
    MOCK_BODY_NONE = 0,
    MOCK_BODY_GARBAGE,   /* 200 with a non-JSON body */
    MOCK_BODY_TEXT,      /* the status with a plain-text body */
    MOCK_BODY_TRUNCATED, /* the normal reply cut in the middle, then close */
    MOCK_BODY_HTML       /* the status with a proxy's HTML error page */
};

/* A parsed fault spec. Numbers are -1 when unset; strings are owned. */
typedef struct mock_fault {
    int status; /* 0: unset */
    char *code;
    char *message;
    char *retry_after; /* Retry-After value as given */
    long retry_after_ms;
    long delay_ms;
    long stall_after;
    long cut_after;
    long reset;       /* 1: RST as soon as the request is read */
    long reset_after; /* cut_after, with an RST instead of a FIN */
    long stream_error_after;
    long huge;
    long events;
    int body;           /* enum mock_body_fault */
    char *content_type; /* replaces the reply's Content-Type */
    mock_buf headers;   /* extra "Name: Value\r\n" lines */
} mock_fault;

void llmux__mock_fault_init(mock_fault *f);
void llmux__mock_fault_clear(mock_fault *f);
/* Parses `spec` into `f` (initialised first). Returns 0, or -1 and a
 * message in err. With `lenient`, unknown directives and parts without
 * '=' are skipped (for specs riding in a model name next to other keys);
 * bad values of known directives still fail. */
int llmux__mock_fault_parse(mock_fault *f, const char *spec, int lenient,
                            char *err, size_t errlen);
/* True when no directive is set. */
int llmux__mock_fault_empty(const mock_fault *f);
/* True when the fault replaces the whole reply (status>=400, body other
 * than truncated, huge). */
int llmux__mock_fault_replaces(const mock_fault *f);

/* ---- replies ----------------------------------------------------------- */

/*
 * What a handler produces. A whole reply has its bytes in `body`. A stream
 * (stream != 0) has its framed events concatenated in `body`, event i
 * ending at ev_end[i]; the engine adds the chunked framing and pacing.
 */
typedef struct mock_reply {
    int status;
    const char *content_type; /* static string */
    char *ctype_override;     /* owned; wins over content_type when set */
    mock_buf headers;         /* extra "Name: Value\r\n" lines */
    int stream;
    mock_buf body;
    size_t *ev_end;
    size_t n_events;
    size_t ev_cap;
    int oom;
} mock_reply;

void llmux__mock_reply_clear(mock_reply *r);
/* Compact JSON text of `o`; owned by `o`. */
const char *llmux__mock_json_text(json_object *o, size_t *len);
/* Whole reply: `status` with the JSON text of `o`; consumes `o`. */
void llmux__mock_reply_json(mock_reply *r, int status, json_object *o);
/* Whole reply with a copy of `text` and the given content type. */
void llmux__mock_reply_text(mock_reply *r, int status, const char *ctype,
                            const char *text, size_t len);
/* Turns `r` into a 200 stream of content type `ctype` with no events. */
void llmux__mock_reply_stream(mock_reply *r, const char *ctype);
/* Appends one already framed event (copied). */
void llmux__mock_event_raw(mock_reply *r, const char *data, size_t len);
/* Appends the SSE event "data: <text>\n\n". */
void llmux__mock_sse_text(mock_reply *r, const char *text);
/* Appends "data: <json>\n\n"; consumes `o`. */
void llmux__mock_sse_json(mock_reply *r, json_object *o);
/* Appends the NDJSON line "<json>\n"; consumes `o`. */
void llmux__mock_ndjson(mock_reply *r, json_object *o);
/* Adds a response header line to r->headers. */
void llmux__mock_reply_header(mock_reply *r, const char *name,
                              const char *value);

/* ---- request context and protocol table --------------------------------- */

struct mock_protocol;

/* Everything a handler may look at; all borrowed for the call. */
typedef struct mock_ctx {
    llmux_mock *mock;
    const struct mock_protocol *proto;
    const llmux_mock_record *rec;
    const char *path;        /* path part of the target, no query */
    json_object *json;       /* parsed body (an object), or NULL */
    const char *model;       /* "model" with any "#spec" removed, or NULL */
    const mock_fault *fault; /* never NULL; all unset when no fault */
    unsigned long seq;       /* response counter, for ids */
    mock_reply *reply;       /* where the handler writes */
} mock_ctx;

typedef void (*mock_handler)(mock_ctx *ctx);

#define MOCK_ROUTE_JSON 1u /* the body must be a JSON object */
#define MOCK_ROUTE_ID   2u /* the suffix has one '*': an id segment */

/* One endpoint: method and path suffix ("/chat/completions"). */
typedef struct mock_route {
    const char *method;
    const char *suffix;
    unsigned flags;
    mock_handler handle;
} mock_route;

/*
 * A wire protocol. A protocol with a `prefix` ("/mistral") owns every path
 * that starts with it (followed by '/' or the end); the one without a
 * prefix (OpenAI) gets all other paths. Within its paths, routes are tried
 * in order (put longer suffixes first), so any base below the prefix works.
 */
typedef struct mock_protocol {
    const char *name;
    const char *prefix;       /* NULL: the default protocol */
    const mock_route *routes; /* ends with a {NULL} entry */
    /* Returns 0 if the request may go on, else fills ctx->reply (401). */
    int (*check_auth)(mock_ctx *ctx);
    /* Whole error reply. type/code/param/message may be NULL: the protocol
     * then picks its defaults for `status`. */
    void (*error)(mock_ctx *ctx, int status, const char *type, const char *code,
                  const char *param, const char *message);
    /* Appends the protocol's in-stream error event (stream_error_after). */
    void (*stream_error)(mock_ctx *ctx, const char *message);
    /* Whole 200 reply whose main text is n bytes of 'x' (huge=N); NULL
     * uses the first protocol's. */
    void (*huge)(mock_ctx *ctx, size_t n);
} mock_protocol;

/* ---- batch files and jobs (mock_batch.c) -------------------------------- */

#define MOCK_BATCH_MS      500         /* a job's run, by default */
#define MOCK_STORE_MAX     (64u << 20) /* bytes of files kept, at most */
#define MOCK_STORE_MAX_IDS 4096        /* files and jobs kept, at most */

struct mock_store;
/* The mock's store slot (created by the batch handlers on first use). */
struct mock_store **llmux__mock_store_slot(llmux_mock *m);
void llmux__mock_store_free(struct mock_store *s);
/* How long a job runs, in ms (llmux_mock_options.batch_ms). */
int llmux__mock_batch_ms(const llmux_mock *m);
/* The batch routes' handlers, for OpenAI's and Mistral's tables: they
 * tell the dialect by ctx->proto. */
void llmux__mock_file_upload(mock_ctx *ctx);
void llmux__mock_file_content(mock_ctx *ctx);
void llmux__mock_batch_create(mock_ctx *ctx);
void llmux__mock_batch_get(mock_ctx *ctx);
void llmux__mock_batch_cancel(mock_ctx *ctx);

extern const mock_protocol llmux__mock_openai;
extern const mock_protocol llmux__mock_mistral;
extern const mock_protocol llmux__mock_ollama;
extern const mock_protocol llmux__mock_aleph;
extern const mock_protocol llmux__mock_azure;

/* ---- JSON helpers ------------------------------------------------------ */

/* The key of an "Authorization: Bearer <key>" request header (spaces after
 * "Bearer " skipped), or NULL when there is none or it is empty. */
const char *llmux__mock_bearer(const mock_ctx *ctx);
/* Appends the OpenAI-style stream error event {"error":{"message",
 * "type","param":null,"code":null}} (message NULL: a default). */
void llmux__mock_sse_error(mock_ctx *ctx, const char *message,
                           const char *type);
/* True when the request's response_format asks for JSON (json_object or
 * json_schema). */
int llmux__mock_json_mode(json_object *req);
/* True when the request path ends with `suffix`. */
int llmux__mock_path_ends(const mock_ctx *ctx, const char *suffix);

/* Member `key` of object `o`, or NULL (also when `o` is not an object). */
json_object *llmux__mock_get(json_object *o, const char *key);
/* String member, or NULL when absent or not a string. */
const char *llmux__mock_str(json_object *o, const char *key);
/* True when the member is the boolean true. */
int llmux__mock_true(json_object *o, const char *key);
/* Non-negative integer member (capped at 1e9), or -1. */
long llmux__mock_int(json_object *o, const char *key);
/* New JSON string; NULL gives "". */
json_object *llmux__mock_jstr(const char *s);
/*
 * The texts of an embeddings "input": a string or an array of strings.
 * Returns their number (0 for an empty array), or -1 when `input` is
 * missing or of another type, or holds something else than strings (then
 * *bad_item is set to 1, else to 0).
 */
long llmux__mock_inputs(json_object *input, int *bad_item);
/* Text i of an "input" that llmux__mock_inputs accepted; length in *len. */
const char *llmux__mock_input_text(json_object *input, size_t i, size_t *len);
/* JSON array of the MOCK_EMBED_DIM floats of the text's embedding. */
json_object *llmux__mock_embedding_json(const char *s, size_t len);
/* Appends the text of a message "content": a string, or the "text" of
 * every text part of an array; anything else adds nothing. */
void llmux__mock_content_text(json_object *content, mock_buf *out);
/*
 * For huge=N: the reply body already holds JSON with the member `mark`
 * (e.g. "\"content\":\"\"", an empty string); inserts n bytes of 'x'
 * into that string. Sets reply->oom when the mark is missing.
 */
void llmux__mock_splice_x(mock_reply *r, const char *mark, size_t n);

/* ---- the normalized answer (mock_chat.c) ------------------------------ */

/* What a chat reply says, decided before any protocol formats it. */
typedef struct mock_chat_plan {
    size_t prompt_tokens;
    size_t completion_tokens;
    const char *finish; /* "stop", "length" or "tool_calls" */
    char *content;      /* the text, or NULL for a tool call */
    char *tool_name;    /* the tool called, or NULL */
    char *tool_args;    /* JSON text of the arguments: {"input":"..."} */
    /* OpenAI's dialect only (others answer one choice, no logprobs) */
    int n;            /* choices: choice i > 0 says "(choice i)" after
                         the text; 0 reads as 1 */
    int logprobs;     /* each piece of text is a token with logprobs */
    int top_logprobs; /* alternatives per token: the token itself, then
                         "alt1", "alt2" ... each 1 less likely */
} mock_chat_plan;

/* What a protocol read from its own request fields. */
typedef struct mock_chat_in {
    json_object *messages; /* a non-empty array */
    const char *tool;      /* tool to call after a user message, or NULL */
    long max_tokens;       /* -1: no limit */
    int json_reply;        /* JSON mode: the reply is {"reply":"..."} */
} mock_chat_in;

/*
 * Checks "model" and "messages" (a non-empty array); on failure writes a
 * 400 through the protocol's error builder and returns -1.
 */
int llmux__mock_chat_check(mock_ctx *ctx, json_object **messages);
/* The tool the request asks for ("tools" and OpenAI's "tool_choice"):
 * the named one, else the first; NULL for none or tool_choice "none". */
const char *llmux__mock_pick_tool(json_object *req);
/* Fills `p`; returns 0, or -1 (reply->oom set) when out of memory. */
int llmux__mock_chat_plan(mock_ctx *ctx, const mock_chat_in *in,
                          mock_chat_plan *p);
void llmux__mock_chat_plan_free(mock_chat_plan *p);
/*
 * Text completion of `prompt`: "Mock completion of: <prompt>" (or the
 * events=N text), truncated to max words (-1: none). Fills a plan with no
 * tool call; returns 0 or -1 (reply->oom set).
 */
int llmux__mock_text_plan(mock_ctx *ctx, const char *prompt, long max,
                          mock_chat_plan *p);

/* ---- OpenAI's chat shape with dialects (mock_chat.c) ------------------ */

/*
 * Dialect flags. REFUSAL: message.refusal null (OpenAI). LOGPROBS:
 * choice.logprobs null. TOOLTYPE: tool calls carry "type", and streams send
 * them OpenAI's way (index, then argument fragments). MISTRAL: Mistral's
 * whole message (content "" beside tool calls, tool_calls null beside text)
 * and streams (the last piece's chunk carries finish_reason and usage, "p"
 * padding, a tool call whole in the finishing chunk, no usage option).
 */
#define MOCK_OAI_REFUSAL  1u
#define MOCK_OAI_LOGPROBS 2u
#define MOCK_OAI_TOOLTYPE 4u
#define MOCK_OAI_MISTRAL  8u

typedef struct mock_oai_dialect {
    const char *id_fmt;      /* printf format of the id, given the seq */
    const char *fingerprint; /* system_fingerprint, or NULL for none */
    const char *tool_id;     /* id of the tool call */
    unsigned flags;
} mock_oai_dialect;

/* Writes `p` as a chat.completion, or as chat.completion.chunk SSE events
 * ending with [DONE] when `stream`. `include_usage` adds OpenAI's usage
 * chunk (ignored with MOCK_OAI_MISTRAL, which always sends usage). */
void llmux__mock_oai_chat(mock_ctx *ctx, const mock_chat_plan *p,
                          const mock_oai_dialect *d, int stream,
                          int include_usage);
/* huge=N: a whole chat.completion in dialect `d` whose content is n bytes
 * of 'x' (ctx->model must be set). */
void llmux__mock_oai_huge(mock_ctx *ctx, const mock_oai_dialect *d, size_t n);
/* Builds the OpenAI-shaped embedding list of "input" (a string or an array
 * of strings) and replies with it (or a 400); `id` adds an "id" member. */
void llmux__mock_oai_embed_list(mock_ctx *ctx, const char *id);

/* ---- text helpers ------------------------------------------------------ */

/* Whitespace-separated words in s[0..len). */
size_t llmux__mock_count_words(const char *s, size_t len);
/*
 * Splits `s` into stream pieces, one per word: each piece is the whitespace
 * before a word plus the word (trailing whitespace joins the last piece),
 * so the pieces concatenate to `s`. ends[i] is the end offset of piece i.
 * Returns the count; *ends is malloc'd (caller frees) or NULL when 0.
 */
size_t llmux__mock_pieces(const char *s, size_t **ends);
/* Malloc'd copy of `s` up to the end of its n-th word (n may be 0). */
char *llmux__mock_first_words(const char *s, size_t n);
/* Malloc'd "tok0 tok1 ... tok<n-1>". */
char *llmux__mock_tok_text(long n);
/* Length of the next piece of s[0..len) of about `want` bytes that does
 * not split a UTF-8 sequence. */
size_t llmux__mock_utf8_cut(const char *s, size_t len, size_t want);
/* FNV-1a 64 hash. */
uint64_t llmux__mock_hash(const char *s, size_t len);
/* Fills v[0..MOCK_EMBED_DIM) from the hash of the text; values in [-1,1],
 * rounded to 6 decimals. */
void llmux__mock_embedding(const char *s, size_t len, double *v);
/* Malloc'd printf. */
char *llmux__mock_strdupf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
char *llmux__mock_strdup(const char *s);
/* ASCII case-insensitive equality. */
int llmux__mock_streq_ci(const char *a, const char *b);

/* Logging to stderr unless the mock is quiet. */
void llmux__mock_log(const llmux_mock *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* LLMUX_MOCK_INTERNAL_H */
