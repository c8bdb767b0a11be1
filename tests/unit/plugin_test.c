/*
 * tests/unit/plugin_test.c: scaffolding shared by the provider plugin
 * tests: files and recordings, JSON paths, requests, decoding and running
 * streams through the framer, and the runner of the decoder tables (see
 * plugin_test.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugin_test.h"
#include "test_scale.h"

/* ---- files ----------------------------------------------------------------*/

char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

char *pt_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *pt_memdup(const char *s, size_t n)
{
    char *d = malloc(n ? n : 1);
    assert_non_null(d);
    memcpy(d, s, n);
    return d;
}

size_t split_lines(char *text, char ***out)
{
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v), *p = text;
    assert_non_null(v);
    while (p && *p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*p) {
            if (n == cap) {
                cap *= 2;
                v = realloc(v, cap * sizeof *v);
                assert_non_null(v);
            }
            v[n++] = p;
        }
        p = nl ? nl + 1 : NULL;
    }
    *out = v;
    return n;
}

char *pt_sse_wire(const char *const *lines, size_t n, size_t *len)
{
    llmux__buf b = {0};
    size_t i;
    for (i = 0; i < n; i++)
        assert_int_equal(llmux__buf_printf(&b, "data: %s\n\n", lines[i]), 0);
    assert_int_equal(llmux__buf_printf(&b, "data: [DONE]\n\n"), 0);
    *len = b.len;
    return b.p;
}

/* ---- VCR cassettes (YAML) -------------------------------------------------*/

static int b64(int c)
{
    const char *a =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(a, c) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Decodes base64 text (whitespace skipped, '=' ends it) into b. */
static void b64_decode(const char *s, size_t n, llmux__buf *b)
{
    unsigned acc = 0;
    int bits = 0;
    size_t i;
    for (i = 0; i < n && s[i] != '='; i++) {
        int v = b64((unsigned char)s[i]);
        char c;
        if (v < 0)
            continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            c = (char)((acc >> bits) & 0xFF);
            assert_int_equal(llmux__buf_append(b, &c, 1), 0);
        }
    }
}

static size_t indent_of(const char *line)
{
    size_t n = 0;
    while (line[n] == ' ')
        n++;
    return n;
}

static int blank_line(const char *line)
{
    line += indent_of(line);
    return *line == '\n' || *line == '\0';
}

/* A YAML block scalar ("|", "|-", "|+", also after "!binary ") starting at
 * its header; lines more indented than `parent`. */
static void yaml_block(const char *p, size_t parent, int binary, llmux__buf *b)
{
    const char *hdr = strchr(p, '|'), *line;
    char chomp;
    size_t ind = 0, keep;
    llmux__buf raw = {0};
    assert_non_null(hdr);
    chomp = hdr[1];
    line = strchr(hdr, '\n');
    assert_non_null(line);
    for (line++; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (blank_line(line)) {
            assert_int_equal(llmux__buf_append(&raw, "\n", 1), 0);
        } else {
            if (!ind)
                ind = indent_of(line);
            if (indent_of(line) < ind || ind <= parent)
                break;
            assert_int_equal(llmux__buf_append(&raw, line + ind, n - ind), 0);
            assert_int_equal(llmux__buf_append(&raw, "\n", 1), 0);
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    /* chomping: "-" strips the final line breaks, "+" keeps them, none
     * keeps one */
    keep = raw.len;
    while (keep && raw.p[keep - 1] == '\n')
        keep--;
    if (chomp == '+')
        keep = raw.len;
    else if (chomp != '-' && keep < raw.len)
        keep++;
    if (binary)
        b64_decode(raw.p ? raw.p : "", keep, b);
    else if (keep)
        assert_int_equal(llmux__buf_append(b, raw.p, keep), 0);
    llmux__buf_free(&raw);
}

/* A single-quoted YAML scalar starting at its quote: '' is a quote; a line
 * break and the next line's indentation fold to one space, and each empty
 * line in between is a newline. */
static void yaml_quoted(const char *q, llmux__buf *b)
{
    size_t line_start = 0;
    assert_int_equal(*q, '\'');
    for (q++;;) {
        if (!*q)
            fail_msg("unterminated quoted scalar");
        if (*q == '\'' && q[1] == '\'') {
            assert_int_equal(llmux__buf_append(b, "'", 1), 0);
            q += 2;
        } else if (*q == '\'') {
            break;
        } else if (*q == '\n') {
            int empties = 0;
            while (b->len > line_start &&
                   (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t'))
                b->len--;
            for (q++;;) {
                const char *r = q + indent_of(q);
                if (*r != '\n') {
                    q = r;
                    break;
                }
                empties++;
                q = r + 1;
            }
            if (!empties)
                assert_int_equal(llmux__buf_append(b, " ", 1), 0);
            while (empties--)
                assert_int_equal(llmux__buf_append(b, "\n", 1), 0);
            line_start = b->len;
        } else {
            assert_int_equal(llmux__buf_append(b, q, 1), 0);
            q++;
        }
    }
    if (b->p)
        b->p[b->len] = '\0';
}

/* The scalar after "string:" at p, whose key has indentation `ind`. */
static char *yaml_string(const char *p, size_t ind, size_t *len)
{
    llmux__buf b = {0};
    p = strstr(p, "string:");
    assert_non_null(p);
    p += 7;
    while (*p == ' ')
        p++;
    if (*p == '\'')
        yaml_quoted(p, &b);
    else if (strncmp(p, "!binary", 7) == 0)
        yaml_block(p, ind, 1, &b);
    else if (*p == '|')
        yaml_block(p, ind, 0, &b);
    else
        fail_msg("unexpected YAML scalar: %.20s", p);
    assert_int_equal(llmux__buf_append(&b, "", 0), 0);
    if (!b.p) {
        b.p = llmux__malloc(1);
        assert_non_null(b.p);
        b.p[0] = '\0';
    }
    *len = b.len;
    return b.p;
}

void cassette_read(const char *path, int index, cassette *c)
{
    char *y = slurp(path, NULL);
    const char *p = y, *req, *resp;
    int i;
    for (i = 0; i <= index; i++) {
        p = strstr(p, "\n- request:");
        assert_non_null(p);
        p++;
    }
    req = strstr(p, "\n    body:");
    resp = strstr(p, "\n  response:");
    assert_non_null(req);
    assert_non_null(resp);
    assert_true(req < resp);
    c->req = yaml_string(req, 6, &c->req_len);
    p = strstr(resp, "\n      code: ");
    assert_non_null(p);
    c->status = strtol(p + 13, NULL, 10);
    p = strstr(resp, "\n    body:");
    assert_non_null(p);
    c->resp = yaml_string(p, 6, &c->resp_len);
    free(y);
}

void cassette_free(cassette *c)
{
    llmux__free(c->req);
    llmux__free(c->resp);
}

/* ---- JSON -----------------------------------------------------------------*/

json_object *parse_all(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, s, (int)len);
    if (!o || json_tokener_get_parse_end(tok) != len)
        fail_msg("not one JSON value: %.*s", (int)len, s);
    json_tokener_free(tok);
    return o;
}

json_object *parse_loose(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, s, (int)len);
    if (!o && json_tokener_get_error(tok) == json_tokener_continue)
        o = json_tokener_parse_ex(tok, "", 1); /* a bare literal or number */
    else if (!o || json_tokener_get_parse_end(tok) != len) {
        /* trailing whitespace is fine */
        size_t end = json_tokener_get_parse_end(tok);
        while (o && end < len && strchr(" \t\r\n", s[end]))
            end++;
        if (!o || end != len)
            fail_msg("not one JSON value: %.*s", (int)(len > 80 ? 80 : len), s);
    }
    json_tokener_free(tok);
    return o;
}

json_object *jget(json_object *o, const char *path)
{
    char buf[256], *seg, *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (seg = strtok_r(buf, ".", &save); seg && o;
         seg = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            size_t i = (size_t)atoi(seg);
            o = i < json_object_array_length(o)
                    ? json_object_array_get_idx(o, i)
                    : NULL;
        } else if (!json_object_object_get_ex(o, seg, &o)) {
            return NULL;
        }
    }
    return o;
}

int jhas(json_object *o, const char *path)
{
    char buf[256], *dot;
    snprintf(buf, sizeof buf, "%s", path);
    dot = strrchr(buf, '.');
    if (!dot)
        return json_object_object_get_ex(o, buf, NULL);
    *dot = '\0';
    return json_object_object_get_ex(jget(o, buf), dot + 1, NULL);
}

const char *jstr(json_object *o, const char *path)
{
    json_object *v = jget(o, path);
    if (!json_object_is_type(v, json_type_string))
        fail_msg("%s is not a string", path);
    return json_object_get_string(v);
}

int64_t jint(json_object *o, const char *path)
{
    json_object *v = jget(o, path);
    if (!json_object_is_type(v, json_type_int))
        fail_msg("%s is not an integer", path);
    return json_object_get_int64(v);
}

void assert_json_eq(json_object *v, const char *json)
{
    json_object *want = parse_loose(json, strlen(json));
    if (!json_object_equal(v, want))
        fail_msg("got  %s\nwant %s",
                 v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN)
                   : "(absent)",
                 json);
    json_object_put(want);
}

/* ---- requests -------------------------------------------------------------*/

llmux_request *new_req(llmux_op op, const char *spec)
{
    llmux_request *r = NULL;
    int rc = llmux_request_new(&r, op, spec);
    if (rc != 0)
        fail_msg("llmux_request_new(%s): %d %s", spec, rc,
                 r ? llmux_request_errmsg(r) : "");
    return r;
}

llmux_request *pt_op_req(llmux_op op, const char *spec)
{
    llmux_request *r = new_req(op, spec);
    if (op == LLMUX_OP_CHAT)
        assert_int_equal(llmux_request_add_message(r, LLMUX_ROLE_USER, "x"), 0);
    else if (op == LLMUX_OP_COMPLETE)
        assert_int_equal(llmux_request_set_prompt(r, "x"), 0);
    else if (op == LLMUX_OP_EMBED)
        assert_int_equal(llmux_request_add_input(r, "x"), 0);
    return r;
}

void prep_ok(llmux_request *r, llmux__prepared *p)
{
    int rc = llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, p);
    if (rc != 0)
        fail_msg("llmux__prepare: %d (%s) %s", rc, llmux_err_name(rc),
                 llmux_request_errmsg(r));
}

void pt_prep_fails(llmux_request *r, int code, const char *what)
{
    llmux__prepared p;
    int rc = llmux__prepare(r, LLMUX_BUILD_PLUGIN_DIR, &p);
    const char *msg = llmux_request_errmsg(r);
    if (rc != code)
        fail_msg("llmux__prepare: %d (%s), want %d: %s", rc, llmux_err_name(rc),
                 code, msg ? msg : "");
    if (what) {
        assert_non_null(msg);
        if (!strstr(msg, what))
            fail_msg("message \"%s\" lacks \"%s\"", msg, what);
    }
    llmux__prepared_free(&p);
}

json_object *body_of(const llmux__prepared *p)
{
    json_object *o;
    assert_non_null(p->http.body);
    o = parse_all(p->http.body, p->http.body_len);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

const char *header(const llmux__prepared *p, const char *name)
{
    size_t i, n = strlen(name);
    for (i = 0; i < p->http.n_headers; i++) {
        const char *h = p->http.headers[i];
        if (strncasecmp(h, name, n) == 0 && h[n] == ':')
            return h[n + 1] == ' ' ? h + n + 2 : h + n + 1;
    }
    return NULL;
}

/* ---- whole answers --------------------------------------------------------*/

llmux_response *pt_decode(const pt_plugin *pl, llmux_request *r, llmux_op op,
                          long status, const char *body, size_t len, int *rc)
{
    llmux__prepared p;
    llmux_response *res;
    char *copy = pt_memdup(body, len);
    prep_ok(r, &p);
    res = llmux__response_new(op, pl->name);
    assert_non_null(res);
    *rc = llmux__decode_answer(&p, status, "application/json", copy, len, res);
    free(copy);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    return res;
}

void pt_assert_proto(const pt_plugin *pl, llmux_response *res, int rc,
                     llmux_op op, const char *body, size_t len)
{
    const llmux_error *e;
    size_t n = strlen(pl->name);
    if (rc != LLMUX_EPROTO)
        fail_msg("op %d body \"%.*s\" (%zu bytes): rc %d", op,
                 (int)(len > 60 ? 60 : len), body, len, rc);
    e = llmux_response_error(res);
    assert_non_null(e);
    assert_int_equal(e->code, LLMUX_EPROTO);
    if (strncmp(e->message, pl->name, n) != 0 || e->message[n] != ':' ||
        e->message[n + 1] != ' ')
        fail_msg("message \"%s\" does not start with \"%s: \"", e->message,
                 pl->name);
    assert_null(strchr(e->message, '\n'));
    assert_true(strlen(e->message) < LLMUX__ERRBUF);
    llmux_response_free(res);
}

/* ---- streams --------------------------------------------------------------*/

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int on_event(void *ud, const llmux_event *ev)
{
    pt_stream *s = ud;
    int rc;
    if (s->done) {
        s->after_done++;
        return 0;
    }
    rc = llmux__decode_event(s->p, ev, &s->ch);
    if (rc == LLMUX_EVENT_DONE && !s->pl->merge_done) {
        s->done = 1; /* an end mark: nothing to merge */
        return 0;
    }
    if (rc < 0) {
        s->err = rc;
        s->err_msg = dup_or_null(s->ch.o.err_msg);
        s->err_type = dup_or_null(s->ch.o.err_type);
        s->err_pcode = dup_or_null(s->ch.o.err_pcode);
        return rc;
    }
    if (rc == LLMUX_EVENT_DONE)
        s->done = 1;
    else
        assert_int_equal(rc, 0);
    assert_int_equal(s->ch.o.err_code, 0);
    /* as the engine does */
    assert_int_equal(llmux__out_merge(&s->acc->o, &s->ch.o), 0);
    s->events++;
    {
        char *js = llmux_chunk_to_json(&s->ch);
        assert_non_null(js);
        assert_int_equal(llmux__buf_printf(&s->chunks, "%s\n", js), 0);
        llmux_free(js);
    }
    return 0;
}

void pt_run_stream(const pt_plugin *pl, llmux__prepared *p, llmux_op op,
                   const char *wire, size_t len, const size_t *cuts,
                   size_t ncuts, pt_stream *s)
{
    llmux__framer f;
    size_t i, at = 0;
    int rc = 0;
    memset(s, 0, sizeof *s);
    s->pl = pl;
    s->p = p;
    llmux__out_init(&s->ch.o, op, 1);
    s->acc = llmux__response_new(op, pl->name);
    assert_non_null(s->acc);
    s->ch.acc = &s->acc->o;
    llmux__framer_init(&f, pl->framing, 1 << 20);
    for (i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        char *piece = pt_memdup(wire + at, end - at);
        rc = llmux__framer_feed(&f, piece, end - at, on_event, s);
        free(piece);
        at = end;
    }
    if (rc == 0)
        rc = llmux__framer_finish(&f, on_event, s);
    llmux__framer_free(&f);
    assert_int_equal(rc, s->err);
    /* as the engine does when a stream ends */
    assert_int_equal(llmux__out_flush(&s->acc->o), 0);
}

char *pt_run_once(const pt_plugin *pl, llmux_op op, const char *wire,
                  size_t len, const size_t *cuts, size_t ncuts, pt_stream *s)
{
    llmux__prepared p;
    llmux_request *r = pl->stream_req(op, &p);
    char *sum;
    pt_run_stream(pl, &p, op, wire, len, cuts, ncuts, s);
    sum = pt_summary(s);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    s->p = NULL;
    return sum;
}

char *pt_check_splits(const pt_plugin *pl, llmux_op op, const char *wire,
                      size_t len, size_t stride, size_t edge, pt_stream *whole)
{
    pt_stream s;
    char *want, *got;
    size_t k, *all;

    want = pt_run_once(pl, op, wire, len, NULL, 0, whole);
    if (LLMUX_TEST_ON_VALGRIND()) { /* a sample: see test_scale.h */
        stride = stride * 10 > 97 ? stride * 10 : 97;
        edge = edge < 64 ? edge : 64;
    }

    /* byte by byte: every offset is a boundary at once */
    all = malloc((len + 1) * sizeof *all);
    assert_non_null(all);
    for (k = 0; k < len; k++)
        all[k] = k + 1;
    got = pt_run_once(pl, op, wire, len, all, len ? len - 1 : 0, &s);
    assert_string_equal(got, want);
    llmux__free(got);
    pt_stream_free(&s);
    free(all);

    for (k = 1; k < len; k++) {
        if (stride > 1 && k > edge && k + edge < len && k % stride)
            continue;
        /* a fresh call state for each run */
        got = pt_run_once(pl, op, wire, len, &k, 1, &s);
        if (strcmp(got, want) != 0)
            fail_msg("split at %zu:\n%s\nwant:\n%s", k, got, want);
        llmux__free(got);
        pt_stream_free(&s);
    }
    return want;
}

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

char *pt_summary(const pt_stream *s)
{
    const llmux_response *r = s->acc;
    const llmux_usage *u = llmux_response_usage(r);
    llmux__buf b = {0};
    size_t i;
    llmux__buf_printf(
        &b,
        "done=%d after=%d err=%d msg=%s type=%s pcode=%s events=%d\n"
        "text=%s\nreasoning=%s\nrefusal=%s\nfinish=%d raw=%s\n"
        "usage=%ld/%ld/%ld/%ld/%ld\nid=%s model=%s created=%lld\n",
        s->done, s->after_done, s->err, or_dash(s->err_msg),
        or_dash(s->err_type), or_dash(s->err_pcode), s->events,
        llmux_response_text(r, NULL), or_dash(llmux_response_reasoning(r)),
        or_dash(llmux_response_refusal(r)), llmux_response_finish(r),
        or_dash(llmux_response_finish_raw(r)), u->prompt_tokens,
        u->completion_tokens, u->total_tokens, u->cached_tokens,
        u->reasoning_tokens, or_dash(llmux_response_id(r)),
        or_dash(llmux_response_model(r)), llmux_response_created(r));
    for (i = 0; i < llmux_response_tool_call_count(r); i++) {
        const llmux_tool_call *tc = llmux_response_tool_call(r, i);
        llmux__buf_printf(&b, "call %d id=%s name=%s args=%s\n", tc->index,
                          or_dash(tc->id), or_dash(tc->name), tc->arguments);
    }
    /* every choice, logprob and field, and each chunk as the caller saw
     * it: a cut anywhere must change none of them */
    {
        char *js = llmux_response_to_json(r);
        llmux__buf_printf(&b, "json=%s\nchunks:\n%s", or_dash(js),
                          s->chunks.p ? s->chunks.p : "");
        llmux_free(js);
    }
    assert_non_null(b.p);
    return b.p;
}

void pt_stream_free(pt_stream *s)
{
    llmux__buf_free(&s->chunks);
    llmux__out_free(&s->ch.o);
    llmux_response_free(s->acc);
    free(s->err_msg);
    free(s->err_type);
    free(s->err_pcode);
}

int pt_one_event(const pt_plugin *pl, llmux_op op, const char *data, size_t len,
                 char **msg, char **type)
{
    llmux__prepared p;
    llmux_request *r = pl->stream_req(op, &p);
    llmux_chunk ch;
    llmux_event ev;
    char *copy = pt_strndup(data, len);
    int rc;
    memset(&ch, 0, sizeof ch);
    llmux__out_init(&ch.o, op, 1);
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    ev.data = copy;
    ev.data_len = len;
    rc = llmux__decode_event(&p, &ev, &ch);
    *msg = dup_or_null(ch.o.err_msg);
    if (type)
        *type = dup_or_null(ch.o.err_type);
    llmux__out_free(&ch.o);
    free(copy);
    llmux__prepared_free(&p);
    llmux_request_free(r);
    return rc;
}

int pt_teardown(void **state)
{
    (void)state;
    llmux__providers_cleanup();
    return 0;
}

/* ---- decoder tests as tables ----------------------------------------------*/

static json_object *jstr_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

static void jadd(json_object *o, const char *key, json_object *v)
{
    assert_int_equal(json_object_object_add(o, key, v), 0);
}

/* A finish reason by its name; an unknown value as its number. */
static json_object *finish_json(llmux_finish f)
{
    const char *n = llmux_finish_name(f);
    if (n)
        return json_object_new_string(n);
    return f == LLMUX_FINISH_NONE ? NULL : json_object_new_int((int)f);
}

static json_object *usage_json(const llmux_usage *u)
{
    json_object *o = json_object_new_object();
    jadd(o, "prompt_tokens", json_object_new_int64(u->prompt_tokens));
    jadd(o, "completion_tokens", json_object_new_int64(u->completion_tokens));
    jadd(o, "total_tokens", json_object_new_int64(u->total_tokens));
    jadd(o, "cached_tokens", json_object_new_int64(u->cached_tokens));
    jadd(o, "reasoning_tokens", json_object_new_int64(u->reasoning_tokens));
    return o;
}

json_object *pt_outcome(const llmux_response *res)
{
    json_object *o = json_object_new_object(), *a;
    const llmux_error *e = llmux_response_error(res);
    const char *text, *rj;
    char *js;
    size_t i, k, n;
    text = llmux_response_text(res, &n);
    jadd(o, "text", json_object_new_string_len(text, (int)n));
    jadd(o, "reasoning", jstr_or_null(llmux_response_reasoning(res)));
    jadd(o, "refusal", jstr_or_null(llmux_response_refusal(res)));
    jadd(o, "finish", finish_json(llmux_response_finish(res)));
    jadd(o, "finish_raw", jstr_or_null(llmux_response_finish_raw(res)));
    jadd(o, "usage", usage_json(llmux_response_usage(res)));
    jadd(o, "id", jstr_or_null(llmux_response_id(res)));
    jadd(o, "model", jstr_or_null(llmux_response_model(res)));
    jadd(o, "created", json_object_new_int64(llmux_response_created(res)));
    jadd(o, "fingerprint", jstr_or_null(res->o.fingerprint));
    a = json_object_new_array();
    for (i = 0; i < llmux_response_tool_call_count(res); i++) {
        const llmux_tool_call *tc = llmux_response_tool_call(res, i);
        json_object *c = json_object_new_object();
        jadd(c, "index", json_object_new_int(tc->index));
        jadd(c, "id", jstr_or_null(tc->id));
        jadd(c, "name", jstr_or_null(tc->name));
        jadd(c, "arguments", jstr_or_null(tc->arguments));
        json_object_array_add(a, c);
    }
    jadd(o, "tool_calls", a);
    a = json_object_new_array();
    for (i = 0; i < llmux_response_embedding_count(res); i++) {
        const float *v = llmux_response_embedding(res, i, &n);
        json_object *vec = json_object_new_array();
        for (k = 0; v && k < n; k++)
            json_object_array_add(vec, json_object_new_double(v[k]));
        json_object_array_add(a, vec);
    }
    jadd(o, "embeddings", a);
    a = json_object_new_array();
    for (i = 0; i < llmux_response_model_count(res); i++) {
        json_object *m = json_object_new_object();
        jadd(m, "id", jstr_or_null(llmux_response_model_id(res, i)));
        jadd(m, "owned_by", jstr_or_null(res->o.models[i].owned_by));
        jadd(m, "created", json_object_new_int64(res->o.models[i].created));
        json_object_array_add(a, m);
    }
    jadd(o, "models", a);
    a = json_object_new_array();
    for (i = 0; i < llmux_response_token_count(res); i++) {
        long long id;
        const char *t = llmux_response_token(res, i, &id);
        json_object *tok = json_object_new_object();
        jadd(tok, "token", jstr_or_null(t));
        jadd(tok, "id", json_object_new_int64(id));
        json_object_array_add(a, tok);
    }
    jadd(o, "tokens", a);
    rj = llmux_response_result_json(res);
    jadd(o, "result", rj ? parse_all(rj, strlen(rj)) : NULL);
    js = llmux_response_to_json(res);
    assert_non_null(js);
    jadd(o, "json", parse_all(js, strlen(js)));
    llmux_free(js);
    if (e) {
        json_object *err = json_object_new_object();
        jadd(err, "message", jstr_or_null(e->message));
        jadd(err, "type", jstr_or_null(e->type));
        jadd(err, "provider_code", jstr_or_null(e->provider_code));
        jadd(err, "param", jstr_or_null(e->param));
        jadd(err, "http_status", json_object_new_int64(e->http_status));
        jadd(o, "error", err);
    } else {
        jadd(o, "error", NULL);
    }
    return o;
}

static int is_number(json_object *v)
{
    return json_object_is_type(v, json_type_int) ||
           json_object_is_type(v, json_type_double);
}

/* Numbers are equal as integers when both are, else as doubles; below
 * "embeddings" as the floats they were kept as. */
static int same_number(json_object *got, json_object *want, int as_float)
{
    double g = json_object_get_double(got), w = json_object_get_double(want);
    if (json_object_is_type(got, json_type_int) &&
        json_object_is_type(want, json_type_int))
        return json_object_get_int64(got) == json_object_get_int64(want);
    return as_float ? (float)g == (float)w : g == w;
}

static void match(json_object *got, json_object *want, const char *path,
                  int as_float)
{
    char sub[256];
    size_t i;
    int ok = 1;
    switch (json_object_get_type(want)) {
    case json_type_null:
        ok = got == NULL;
        break;
    case json_type_object:
        if (!json_object_is_type(got, json_type_object)) {
            ok = 0;
            break;
        }
        json_object_object_foreach(want, key, val)
        {
            json_object *g = NULL;
            json_object_object_get_ex(got, key, &g);
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
            match(g, val, sub, as_float || strcmp(key, "embeddings") == 0);
        }
        break;
    case json_type_array:
        if (!json_object_is_type(got, json_type_array) ||
            json_object_array_length(got) != json_object_array_length(want)) {
            ok = 0;
            break;
        }
        for (i = 0; i < json_object_array_length(want); i++) {
            snprintf(sub, sizeof sub, "%s%s%zu", path, *path ? "." : "", i);
            match(json_object_array_get_idx(got, i),
                  json_object_array_get_idx(want, i), sub, as_float);
        }
        break;
    case json_type_string:
        ok = json_object_is_type(got, json_type_string) &&
             json_object_get_string_len(got) ==
                 json_object_get_string_len(want) &&
             memcmp(json_object_get_string(got), json_object_get_string(want),
                    (size_t)json_object_get_string_len(want)) == 0;
        break;
    case json_type_boolean:
        ok = json_object_is_type(got, json_type_boolean) &&
             json_object_get_boolean(got) == json_object_get_boolean(want);
        break;
    default:
        ok = is_number(got) && same_number(got, want, as_float);
        break;
    }
    if (!ok)
        fail_msg(
            "%s:\ngot  %s\nwant %s", path[0] ? path : "(outcome)",
            got ? json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN)
                : "(absent)",
            json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
}

/* The JSON text of a row: its strings may also be single-quoted, which
 * json-c's lenient parser reads (and a table reads more easily). */
static json_object *parse_want(const char *s)
{
    json_tokener *tok = json_tokener_new();
    size_t len = strlen(s);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len)
        fail_msg("not one JSON value: %s", s);
    json_tokener_free(tok);
    return o;
}

void pt_assert_match(json_object *got, const char *want)
{
    json_object *w = parse_want(want);
    match(got, w, "", 0);
    json_object_put(w);
}

/* A row's input, and what holds it. */
typedef struct pt_input {
    const char *p;
    size_t len;
    char *owned; /* free() */
    char *wire;  /* llmux__free() */
    cassette cas;
    int has_cas;
} pt_input;

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

static void input_read(const pt_case *c, pt_input *in)
{
    memset(in, 0, sizeof *in);
    if (!c->file) {
        assert_non_null(c->body);
        in->p = c->body;
        in->len = c->len ? c->len : strlen(c->body);
    } else if (ends_with(c->file, ".yml")) {
        cassette_read(c->file, 0, &in->cas);
        in->has_cas = 1;
        /* decoded with the status it was recorded with */
        assert_int_equal(in->cas.status, c->status ? c->status : 200);
        in->p = in->cas.resp;
        in->len = in->cas.resp_len;
    } else if (ends_with(c->file, ".chunks.txt")) {
        char **lines;
        size_t n;
        in->owned = slurp(c->file, NULL);
        n = split_lines(in->owned, &lines);
        in->wire = pt_sse_wire((const char *const *)lines, n, &in->len);
        in->p = in->wire;
        free(lines);
    } else {
        in->owned = slurp(c->file, &in->len);
        in->p = in->owned;
    }
}

static void input_free(pt_input *in)
{
    free(in->owned);
    llmux__free(in->wire);
    if (in->has_cas)
        cassette_free(&in->cas);
}

static llmux_request *answer_req(const pt_plugin *pl, const pt_case *c)
{
    llmux_request *r;
    size_t i;
    assert_non_null(pl->answer_req);
    r = pl->answer_req(c->op, c->opts);
    for (i = 1; i < c->inputs; i++)
        assert_int_equal(llmux_request_add_input(r, "more"), 0);
    return r;
}

static void check_code(const char *what, int rc, int want)
{
    if (rc != want)
        fail_msg("%s: %d (%s), want %d (%s)", what, rc, llmux_err_name(rc),
                 want, llmux_err_name(want));
}

static void check_fragment(const char *msg, const char *frag)
{
    if (frag && (!msg || !strstr(msg, frag)))
        fail_msg("message \"%s\" lacks \"%s\"", msg ? msg : "(none)", frag);
}

/* The checks of an answer's result; frees res. */
static void check_answer(const pt_plugin *pl, const pt_case *c,
                         llmux_response *res, int rc, const char *body,
                         size_t len, int with_want)
{
    const llmux_error *e = llmux_response_error(res);
    long status = c->status ? c->status : 200;
    check_code("decoding", rc, c->code);
    if (c->code == 0) {
        if (e)
            fail_msg("unexpected error: %s", e->message);
    } else {
        assert_non_null(e);
        assert_int_equal(e->code, c->code);
        assert_int_equal(e->http_status, status);
        check_fragment(e->message, c->msg);
    }
    if (with_want && c->want) {
        json_object *o = pt_outcome(res);
        pt_assert_match(o, c->want);
        json_object_put(o);
    }
    if (c->code == LLMUX_EPROTO)
        pt_assert_proto(pl, res, rc, c->op, body, len);
    else
        llmux_response_free(res);
}

static void run_answer(const pt_plugin *pl, const pt_case *c,
                       const pt_input *in)
{
    long status = c->status ? c->status : 200;
    int rc;
    llmux_response *res =
        pt_decode(pl, answer_req(pl, c), c->op, status, in->p, in->len, &rc);
    check_answer(pl, c, res, rc, in->p, in->len, 1);
}

static void run_prefixes(const pt_plugin *pl, const pt_case *c,
                         const pt_input *in)
{
    size_t k, end = in->len;
    while (end && strchr(" \t\r\n", in->p[end - 1]))
        end--;
    for (k = 0; k <= in->len; k++) {
        int rc;
        llmux_response *res =
            pt_decode(pl, answer_req(pl, c), c->op, 200, in->p, k, &rc);
        if (k < end)
            pt_assert_proto(pl, res, rc, c->op, in->p, k);
        else
            check_answer(pl, c, res, rc, in->p, k, k == in->len);
    }
}

static void run_stream(const pt_plugin *pl, const pt_case *c,
                       const pt_input *in)
{
    pt_stream s;
    char *sum = pt_check_splits(pl, c->op, in->p, in->len, 1, 0, &s);
    check_code("the stream", s.err, c->code);
    check_fragment(s.err_msg, c->msg);
    if (c->want) {
        json_object *o = pt_outcome(s.acc), *err = NULL;
        jadd(o, "done", json_object_new_int(s.done));
        jadd(o, "after_done", json_object_new_int(s.after_done));
        jadd(o, "events", json_object_new_int(s.events));
        {
            json_object *arr = json_object_new_array();
            char *lines = s.chunks.p ? strdup(s.chunks.p) : NULL, *save = NULL,
                 *line;
            for (line = lines ? strtok_r(lines, "\n", &save) : NULL; line;
                 line = strtok_r(NULL, "\n", &save))
                json_object_array_add(arr, parse_all(line, strlen(line)));
            free(lines);
            jadd(o, "chunks", arr);
        }
        if (s.err) {
            err = json_object_new_object();
            jadd(err, "message", jstr_or_null(s.err_msg));
            jadd(err, "type", jstr_or_null(s.err_type));
            jadd(err, "provider_code", jstr_or_null(s.err_pcode));
        }
        jadd(o, "error", err);
        pt_assert_match(o, c->want);
        json_object_put(o);
    }
    pt_stream_free(&s);
    llmux__free(sum);
}

/* The checks of one decoded event payload. */
static void check_event(const pt_plugin *pl, const pt_case *c, int rc,
                        char *msg, char *type)
{
    size_t n = strlen(pl->name);
    check_code("the event", rc, c->code);
    if (rc >= 0 && msg)
        fail_msg("a message for a good event: %s", msg);
    if (rc < 0 && !msg)
        fail_msg("no message for an event that failed");
    if (rc == LLMUX_EPROTO &&
        (strncmp(msg, pl->name, n) != 0 || strncmp(msg + n, ": ", 2) != 0))
        fail_msg("message \"%s\" does not start with \"%s: \"", msg, pl->name);
    check_fragment(msg, c->msg);
    if (c->want) {
        json_object *o = json_object_new_object(), *err = NULL;
        if (rc < 0) {
            err = json_object_new_object();
            jadd(err, "message", jstr_or_null(msg));
            jadd(err, "type", jstr_or_null(type));
        }
        jadd(o, "error", err);
        pt_assert_match(o, c->want);
        json_object_put(o);
    }
    free(msg);
    free(type);
}

static void run_event(const pt_plugin *pl, const pt_case *c, const pt_input *in)
{
    char *msg, *type;
    int rc = pt_one_event(pl, c->op, in->p, in->len, &msg, &type);
    check_event(pl, c, rc, msg, type);
}

/* The payloads of a framed stream. */
typedef struct payloads {
    char **v;
    size_t n;
} payloads;

static int collect(void *ud, const llmux_event *ev)
{
    payloads *ps = ud;
    char **v = realloc(ps->v, (ps->n + 1) * sizeof *v);
    assert_non_null(v);
    ps->v = v;
    ps->v[ps->n++] = pt_strndup(ev->data, ev->data_len);
    return 0;
}

static void run_event_cuts(const pt_plugin *pl, const pt_case *c,
                           const pt_input *in)
{
    payloads ps = {NULL, 0};
    llmux__framer f;
    size_t i, k, used = 0;
    llmux__framer_init(&f, pl->framing, 1 << 20);
    assert_int_equal(llmux__framer_feed(&f, in->p, in->len, collect, &ps), 0);
    assert_int_equal(llmux__framer_finish(&f, collect, &ps), 0);
    llmux__framer_free(&f);
    for (i = 0; i < ps.n; i++) {
        size_t len = strlen(ps.v[i]);
        while (len && strchr(" \t\r\n", ps.v[i][len - 1]))
            len--;
        if (len && strcmp(ps.v[i], "[DONE]") != 0 &&
            (!c->events || used < c->events)) {
            used++;
            for (k = 1; k < len; k++) {
                char *msg, *type;
                int rc = pt_one_event(pl, c->op, ps.v[i], k, &msg, &type);
                if (rc != c->code)
                    fail_msg("event %zu cut at %zu: %d: %.*s", i, k, rc, (int)k,
                             ps.v[i]);
                check_event(pl, c, rc, msg, type);
            }
        }
        free(ps.v[i]);
    }
    free(ps.v);
    assert_true(used > 0);
}

/* A row and its plugin: a cmocka case's state. */
typedef struct pt_row {
    const pt_plugin *pl;
    const pt_case *c;
} pt_row;

static void run_row(void **state)
{
    /* by pt_mode */
    static void (*const run[])(const pt_plugin *, const pt_case *,
                               const pt_input *) = {
        run_answer, run_stream, run_event, run_prefixes, run_event_cuts};
    const pt_row *row = *state;
    const pt_case *c = row->c;
    pt_input in;
    if (c->mode != PT_ANSWER && c->mode != PT_PREFIXES &&
        (c->opts || c->inputs > 1))
        fail_msg("a stream's request takes no options or inputs");
    input_read(c, &in);
    run[c->mode](row->pl, c, &in);
    input_free(&in);
}

/* A row without a name is called after its mode, operation and input
 * (a file's name, or the body quoted on one line: at most 48 bytes, others
 * than printable ASCII escaped). Runs before any test: no assertions. */
static char *row_name(const pt_case *c)
{
    static const char *const modes[] = {"answer", "stream", "event", "prefixes",
                                        "event cuts"};
    static const char *const ops[] = {"?",          "chat",    "complete",
                                      "embed",      "models",  "tokenize",
                                      "detokenize", "evaluate"};
    const char *in = c->file ? c->file : c->body ? c->body : "";
    size_t i, at, cap = 512, n;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    if (c->name) {
        snprintf(b, cap, "%s", c->name);
        return b;
    }
    if (c->file && strrchr(in, '/'))
        in = strrchr(in, '/') + 1;
    n = c->file ? strlen(in) : (c->len ? c->len : strlen(in));
    at = (size_t)snprintf(b, cap, "%s %s", modes[c->mode],
                          ops[c->op >= 1 && c->op <= 7 ? c->op : 0]);
    if (c->status && c->status != 200)
        at += (size_t)snprintf(b + at, cap - at, " %ld", c->status);
    if (c->opts)
        at += (size_t)snprintf(b + at, cap - at, " [%.100s]", c->opts);
    if (c->inputs > 1)
        at += (size_t)snprintf(b + at, cap - at, " x%zu", c->inputs);
    at += (size_t)snprintf(b + at, cap - at, c->file ? " " : " '");
    for (i = 0; i < n && i < 48; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch < 0x20 || ch >= 0x7f)
            at += (size_t)snprintf(b + at, cap - at, "\\x%02x", ch);
        else
            b[at++] = (char)ch;
    }
    snprintf(b + at, cap - at, "%s%s", n > 48 ? "..." : "", c->file ? "" : "'");
    return b;
}

int pt_run_tests(const pt_plugin *pl, const struct CMUnitTest *tests,
                 size_t n_tests, const pt_case *cases, size_t n_cases)
{
    struct CMUnitTest *all = calloc(n_tests + n_cases, sizeof *all);
    pt_row *rows = calloc(n_cases ? n_cases : 1, sizeof *rows);
    size_t i;
    int failed;
    if (!all || !rows)
        return 1;
    memcpy(all, tests, n_tests * sizeof *tests);
    for (i = 0; i < n_cases; i++) {
        rows[i].pl = pl;
        rows[i].c = &cases[i];
        if (!(all[n_tests + i].name = row_name(&cases[i])))
            return 1;
        all[n_tests + i].test_func = run_row;
        all[n_tests + i].initial_state = &rows[i];
    }
    failed = _cmocka_run_group_tests("tests", all, n_tests + n_cases, NULL,
                                     pt_teardown);
    for (i = 0; i < n_cases; i++)
        free((char *)all[n_tests + i].name);
    free(rows);
    free(all);
    return failed;
}
