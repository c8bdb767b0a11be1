/*
 * tests/unit/plugin_test.h: scaffolding shared by the provider plugin
 * tests (test_openai, test_mistral, test_ollama, test_alephalpha).
 *
 * Each test drives its plugin through the core as the engine does:
 * requests built with the public setters are prepared with llmux__prepare
 * (which loads the plugin from LLMUX_BUILD_PLUGIN_DIR), answers are
 * decoded with llmux__decode_answer, and streams are cut by llmux__framer,
 * decoded with llmux__decode_event and folded with llmux__out_merge. The
 * helpers here do that plumbing; the assertions stay in the tests.
 *
 * A decoder test that is an input and what it must decode to is a row of
 * the test's table (pt_case): pt_run_tests runs each row as a cmocka case
 * of its own, named after the row, beside the tests written out in full.
 *
 * The JSON and request helpers that tests call on almost every line keep
 * short names (jget, jstr, prep_ok ...); the rest start with pt_.
 */
#ifndef LLMUX_TEST_PLUGIN_TEST_H
#define LLMUX_TEST_PLUGIN_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>

#include "internal.h"

/* ---- files ----------------------------------------------------------------*/

/** A whole file, NUL-terminated (free()); its size in *len if non-NULL. */
char *slurp(const char *path, size_t *len);
/** A NUL-terminated copy of s[0..n) (free()). */
char *pt_strndup(const char *s, size_t n);
/** An exact-size copy of s[0..n), no terminator: ASan catches any read
 * past the end (free()). */
char *pt_memdup(const char *s, size_t n);
/** The non-empty lines of `text` (changed in place) in *out (free() the
 * array); returns their number. */
size_t split_lines(char *text, char ***out);
/** "data: <line>\n\n" for each line, then "data: [DONE]\n\n": an SSE
 * stream of chunk payloads (llmux__free). */
char *pt_sse_wire(const char *const *lines, size_t n, size_t *len);

/** One recorded interaction of a VCR cassette (YAML). */
typedef struct cassette {
    char *req; /* request body */
    size_t req_len;
    long status;
    char *resp; /* response body */
    size_t resp_len;
} cassette;

/** Reads interaction `index` (from 0) of the cassette at `path`. */
void cassette_read(const char *path, int index, cassette *c);
void cassette_free(cassette *c);

/* ---- JSON -----------------------------------------------------------------*/

/** Parses a whole buffer as exactly one JSON value, strictly (fails the
 * test otherwise). */
json_object *parse_all(const char *s, size_t len);
/** Parses one JSON value of a recording or of expected text: like
 * parse_all, but a bare number or literal and trailing whitespace are
 * fine. */
json_object *parse_loose(const char *s, size_t len);
/** Member at a dotted path ("messages.1.content"); NULL if absent. */
json_object *jget(json_object *o, const char *path);
/** Whether the member at a dotted path exists (JSON null included). */
int jhas(json_object *o, const char *path);
/** The string at a dotted path (fails the test if it is none). */
const char *jstr(json_object *o, const char *path);
/** The integer at a dotted path (fails the test if it is none). */
int64_t jint(json_object *o, const char *path);
/** Structural equality with JSON text (parse_loose): every member and
 * type, not the order of members. */
void assert_json_eq(json_object *v, const char *json);

/* ---- requests -------------------------------------------------------------*/

/** A new request of `op` from config string `spec` (fails the test if
 * the core refuses it). */
llmux_request *new_req(llmux_op op, const char *spec);
/** new_req with the least content `op` needs: a user message "x" (chat),
 * the prompt "x" (complete), the input "x" (embed). */
llmux_request *pt_op_req(llmux_op op, const char *spec);
/** llmux__prepare, which must succeed. */
void prep_ok(llmux_request *r, llmux__prepared *p);
/** llmux__prepare must fail with `code` and, when `what` is non-NULL, a
 * message holding `what`. */
void pt_prep_fails(llmux_request *r, int code, const char *what);
/** The prepared body, which must be one JSON object (json_object_put). */
json_object *body_of(const llmux__prepared *p);
/** Value of header `name` (matched case-insensitively), or NULL. */
const char *header(const llmux__prepared *p, const char *name);

/* ---- the plugin under test ------------------------------------------------*/

typedef struct pt_stream pt_stream;

typedef struct pt_plugin {
    const char *name; /* the provider: responses, error message prefixes */
    int framing;      /* LLMUX_FRAMING_SSE or LLMUX_FRAMING_NDJSON */
    /* The chunk that ends a stream (LLMUX_EVENT_DONE) carries content:
     * Ollama's done:true line, Aleph Alpha's completion summary. It is
     * merged and counted; otherwise it is an end mark ("[DONE]"). */
    int merge_done;
    /* A prepared streaming request of op (chat or complete). */
    llmux_request *(*stream_req)(llmux_op op, llmux__prepared *p);
    /* A request of op with the least content it needs, whose answers the
     * table's rows decode; opts (may be NULL) end its config string. */
    llmux_request *(*answer_req)(llmux_op op, const char *opts);
} pt_plugin;

/* ---- whole answers --------------------------------------------------------*/

/**
 * Prepares `r` (a request of `op`; freed here) and decodes `body` (as an
 * exact-size copy) with HTTP `status` into a new response (the caller
 * frees it); *rc is llmux__decode_answer's result.
 */
llmux_response *pt_decode(const pt_plugin *pl, llmux_request *r, llmux_op op,
                          long status, const char *body, size_t len, int *rc);
/**
 * A decoded garbage body: rc and the response's error must be
 * LLMUX_EPROTO, with a one-line message "<name>: ..." that fits the
 * error buffer. Frees `res`.
 */
void pt_assert_proto(const pt_plugin *pl, llmux_response *res, int rc,
                     llmux_op op, const char *body, size_t len);

/* ---- streams --------------------------------------------------------------*/

/** One run of a stream through the framer and the decoder. */
struct pt_stream {
    const pt_plugin *pl;
    llmux__prepared *p; /* NULL once the request is freed */
    llmux_chunk ch;
    llmux_response *acc; /* everything merged */
    int done;            /* the decoder reported the end */
    int after_done;      /* events after the end (the engine ignores them) */
    int events;          /* chunks decoded and merged */
    int err;             /* the error that stopped the stream */
    char *err_msg, *err_type, *err_pcode;
    llmux__buf chunks; /* each merged chunk's llmux_chunk_to_json, a line
                          each */
};

/**
 * Runs `wire` through the framer cut at the sorted offsets `cuts` (each
 * piece in its own exact-size buffer) and decodes it as a stream of `op`
 * on prepared request `p`. Free with pt_stream_free.
 */
void pt_run_stream(const pt_plugin *pl, llmux__prepared *p, llmux_op op,
                   const char *wire, size_t len, const size_t *cuts,
                   size_t ncuts, pt_stream *s);
/** pt_run_stream on a fresh streaming request (freed before it returns);
 * returns pt_summary of the run. */
char *pt_run_once(const pt_plugin *pl, llmux_op op, const char *wire,
                  size_t len, const size_t *cuts, size_t ncuts, pt_stream *s);
/**
 * Runs the stream whole, byte by byte, and split in two at every offset
 * (every `stride`-th offset outside the first and last `edge` bytes when
 * stride > 1), each on a fresh request; every run must give the same
 * summary. Fills *whole with the whole run (pt_stream_free) and returns
 * its summary.
 */
char *pt_check_splits(const pt_plugin *pl, llmux_op op, const char *wire,
                      size_t len, size_t stride, size_t edge, pt_stream *whole);
/** Everything a run produced, to compare runs (llmux__free or free). */
char *pt_summary(const pt_stream *s);
void pt_stream_free(pt_stream *s);
/**
 * Decodes one event with payload data[0..len) on a fresh streaming
 * request of `op`; its error message in *msg and, when type is non-NULL,
 * its error type in *type (free() both). Returns the decoder's result.
 */
int pt_one_event(const pt_plugin *pl, llmux_op op, const char *data, size_t len,
                 char **msg, char **type);

/* ---- decoder tests as tables ----------------------------------------------*/

/** What a row of a decoder table does with its input. */
typedef enum pt_mode {
    PT_ANSWER,    /**< decodes it as a whole answer with HTTP `status` */
    PT_STREAM,    /**< runs it as a stream, whole, byte by byte and split in
                       two at every offset (pt_check_splits) */
    PT_EVENT,     /**< decodes it as one event payload (pt_one_event) */
    PT_PREFIXES,  /**< decodes every prefix as an answer: up to its last
                       non-blank byte each is a clean LLMUX_EPROTO
                       (pt_assert_proto), from there on each gives `code` */
    PT_EVENT_CUTS /**< frames it as a stream and decodes every proper
                       prefix of each event payload: each is a clean
                       LLMUX_EPROTO naming the provider */
} pt_mode;

/**
 * One decoder test. The input is `file` (a path; a ".yml" VCR cassette
 * gives its first answer, recorded with HTTP `status`; a ".chunks.txt"
 * file its lines as the data of an SSE stream ending in [DONE]) or `body`
 * (`len` bytes, strlen when 0).
 * `code` is what the decoding must give (the answer's or the stream's
 * code, or the event decoder's result), and then:
 *  - LLMUX_EPROTO: a clean protocol error, as pt_assert_proto says (an
 *    event's message "<provider>: ..."); 0 for an answer: no error at all;
 *    another code for an answer: an error of that code and HTTP status;
 *    an event that succeeds has no message;
 *  - `msg`: a fragment the error message holds;
 *  - `want`: JSON that the outcome (pt_outcome) must match: each member
 *    given must be there and equal, recursively; arrays have exactly the
 *    elements given; null means absent. Its strings may be single-quoted
 *    ('text'), as json-c's lenient parser reads them.
 */
typedef struct pt_case {
    const char *name; /**< the cmocka case's name (NULL: made of the rest) */
    pt_mode mode;
    llmux_op op;
    const char *opts; /**< ends the config string (answers only) */
    size_t inputs;    /**< an embed request's inputs (0 and 1: one) */
    const char *file;
    const char *body;
    size_t len;
    long status; /**< of an answer (0: 200) */
    int code;
    const char *msg;
    const char *want;
    size_t events; /**< PT_EVENT_CUTS: the first this many events (0: all) */
} pt_case;

/** A row: `body` as an answer of `op` is a clean LLMUX_EPROTO. */
#define PT_GARBAGE(op_, body_)                                                 \
    {                                                                          \
        .op = (op_), .body = (body_), .code = LLMUX_EPROTO                     \
    }
/** A row: `data` as one event payload of `op` gives `code`. */
#define PT_EVENT_CODE(op_, data_, code_)                                       \
    {                                                                          \
        .mode = PT_EVENT, .op = (op_), .body = (data_), .code = (code_)        \
    }

/**
 * What a decoded answer says, as JSON: text, reasoning, refusal, finish
 * (llmux_finish_name, or null), finish_raw, usage {prompt_tokens ...},
 * id, model, created, fingerprint, tool_calls [{index, id, name,
 * arguments}], embeddings [[...]], models [{id, owned_by, created}],
 * tokens [{token, id}], result (the result object), json (what
 * llmux_response_to_json gives), error {message, type, provider_code,
 * param, http_status} or null. A stream's adds done, after_done, events,
 * chunks (each merged chunk's llmux_chunk_to_json, in order) and its
 * error {message, type, provider_code}; an event's is only its error
 * {message, type}.
 */
json_object *pt_outcome(const llmux_response *res);
/** Fails the test unless `got` matches the JSON text `want` (pt_case). */
void pt_assert_match(json_object *got, const char *want);

/**
 * Runs `tests`, then one cmocka case per row of `cases` for plugin `pl`,
 * as one group (with pt_teardown); returns the number of failures.
 */
int pt_run_tests(const pt_plugin *pl, const struct CMUnitTest *tests,
                 size_t n_tests, const pt_case *cases, size_t n_cases);

/** Group teardown: unloads the plugins (so that leak checkers see a
 * clean exit). */
int pt_teardown(void **state);

#endif /* LLMUX_TEST_PLUGIN_TEST_H */
