/*
 * tests/unit/plugin_test.c: scaffolding shared by the provider plugin
 * tests: files and recordings, JSON paths, requests, decoding and running
 * streams through the framer (see plugin_test.h).
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

/* An optional error field: absent when `want` is NULL. */
static void opt_str(const pt_err_case *c, const char *got, const char *want)
{
    if (want)
        assert_string_equal(got ? got : "(null)", want);
    else if (got)
        fail_msg("%s: unexpected %s", c->body, got);
}

void pt_check_error(const pt_err_case *c, llmux_response *res, int rc)
{
    const llmux_error *e = llmux_response_error(res);
    assert_int_equal(rc, c->code);
    assert_non_null(e);
    assert_int_equal(e->code, c->code);
    assert_int_equal(e->http_status, c->status);
    opt_str(c, e->type, c->type);
    opt_str(c, e->provider_code, c->pcode);
    opt_str(c, e->param, c->param);
    if (strcmp(e->message, c->message) != 0)
        fail_msg("%s:\nmessage \"%s\"\nwant    \"%s\"", c->body, e->message,
                 c->message);
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
    assert_non_null(b.p);
    return b.p;
}

void pt_stream_free(pt_stream *s)
{
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
