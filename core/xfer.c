/*
 * core/xfer.c: the life of a transfer once submitted: its attempts (a curl
 * easy handle each) and their stage watchdogs, the finished transfers curl
 * reports and what follows (a retry as retry.c decides, a fallback, the
 * end), the done callback exactly once, the defer list that finishes and
 * resumes transfers outside curl callbacks and user calls, and the start
 * of queued transfers as the limits allow.
 */
#include "engine.h"

/* ---- transfers ----------------------------------------------------------- */

static uint64_t now_ms(struct llmux_client *c)
{
    return uv_now(c->loop);
}

/* The first-byte / idle watchdog fired: end the attempt as a timeout. */
static void on_watchdog(uv_timer_t *t)
{
    xfer *x = t->data;
    llmux__log_target old;
    if (x->state != X_ACTIVE || !x->easy)
        return;
    x->timeout_which = x->answered ? "idle_timeout" : "first_byte_timeout";
    old = llmux__client_log_target(x->c);
    llmux__xfer_done(x, CURLE_OPERATION_TIMEDOUT);
    llmux__log_target_swap(old);
}

/* Starts x's one timer (made on first use) with `cb` in `ms`. */
static void timer_start(xfer *x, uv_timer_cb cb, uint64_t ms)
{
    if (!x->timer_on) {
        uv_timer_init(x->c->loop, &x->timer);
        x->timer.data = x;
        x->timer_on = 1;
        x->c->handles_open++;
    }
    uv_timer_start(&x->timer, cb, ms, 0);
}

void llmux__watchdog_arm(xfer *x, long ms)
{
    timer_start(x, on_watchdog, (uint64_t)ms);
}

static int is_json_ctype(const char *ct)
{
    return ct && (strncasecmp(ct, "application/json", 16) == 0);
}

/* This attempt's body goes through the framer: a streamed request
 * answered 2xx with anything but JSON (an error comes whole). */
static int body_streams(xfer *x)
{
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    return x->req->stream && status >= 200 && status < 300 &&
           !is_json_ctype(ct);
}

/* The first byte of the answer: the first-byte watchdog is met and the
 * idle one (the longest silence mid-answer) takes over. */
static void answer_began(xfer *x)
{
    if (x->answered)
        return;
    x->answered = 1;
    if (x->set.idle_timeout_ms && !x->paused)
        llmux__watchdog_arm(x, x->set.idle_timeout_ms);
    else if (x->set.first_byte_timeout_ms && x->timer_on)
        uv_timer_stop(&x->timer);
}

/* Header lines; the blank one ends them. A whole reply has begun with
 * its headers (a body stalled after them is an idle timeout, not a
 * first-byte one, and there is one even without a first_byte_timeout); a
 * stream begins with its first event. */
static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    long status = 0;
    if (len > 2 || (len && p[0] != '\r' && p[0] != '\n'))
        return len;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && !body_streams(x))
        answer_began(x); /* not for a 1xx: its headers come next */
    return len;
}

static size_t on_write(char *p, size_t sz, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = sz * n;
    int rc;
    if (x->cancel || x->err)
        return 0; /* aborts the transfer */
    x->received += len;
    if (x->received > x->c->max_response) {
        x->err = LLMUX_ETOOBIG;
        return 0;
    }
    if (x->answered && x->set.idle_timeout_ms && !x->paused)
        llmux__watchdog_arm(
            x, x->set.idle_timeout_ms); /* bytes arrived: the gap restarts */
    if (!x->started) {
        x->started = 1;
        /* the stats' first byte is the body's, whether or not the end of
         * the headers was watched */
        llmux__hist_add(&x->c->h_first_byte,
                        (uv_now(x->c->loop) - x->t_attempt) * 10);
        answer_began(x);
        x->streaming = body_streams(x);
        if (x->streaming)
            llmux__framer_init(&x->live->framer, x->prep.http.framing,
                               x->c->max_event);
    }
    if (!x->streaming) {
        if (llmux__buf_append(&x->body, p, len)) {
            x->err = LLMUX_ENOMEM;
            return 0;
        }
        return len;
    }
    if (x->live->held.len) /* still holding: keep the order */
        rc = llmux__buf_append(&x->live->held, p, len) ? LLMUX_ENOMEM : 0;
    else {
        size_t used;
        rc = llmux__framer_feed_part(&x->live->framer, p, len, llmux__on_event,
                                     x, &used);
        if (rc == LLMUX__FRAMER_STOP)
            rc = used < len &&
                         llmux__buf_append(&x->live->held, p + used, len - used)
                     ? LLMUX_ENOMEM
                     : 0;
    }
    if (rc) {
        if (!x->err)
            x->err = rc;
        return 0;
    }
    return len;
}

const char *llmux__hdr(CURL *e, const char *name)
{
    struct curl_header *h;
    if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        return h->value;
    return NULL;
}

static void on_retry_timer(uv_timer_t *t)
{
    xfer *x = t->data;
    int rc;
    llmux__log_target old;
    if (x->state != X_WAIT || x->cancel)
        return; /* a cancelled wait is finished by llmux__on_defer */
    old = llmux__client_log_target(x->c);
    rc = llmux__xfer_attempt(x);
    if (rc) /* the hook's or the credential's message, if any */
        llmux__xfer_finish(x, rc, 0, x->req->errmsg);
    llmux__log_target_swap(old);
}

static void reset_attempt(xfer *x)
{
    /* the plugin's per-call state (stream bookkeeping) starts afresh */
    if (x->prep.call.state && x->prep.prov->vt->call_end)
        x->prep.prov->vt->call_end(x->prep.prov->provctx, &x->prep.call);
    x->prep.call.state = NULL;
    if (x->easy) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    llmux__buf_free(&x->body);
    if (x->live) {
        llmux__framer_free(&x->live->framer);
        llmux__buf_free(&x->live->held);
        x->live->errbuf[0] = '\0';
    }
    x->done_pending = 0;
    if (x->timer_on && x->state == X_ACTIVE)
        uv_timer_stop(&x->timer); /* the watchdog of the attempt ending */
    x->timeout_which = NULL;
    x->started = x->answered = x->streaming = x->got_done = 0;
    x->err = 0;
    x->received = 0;
    x->events = 0;
}

static void live_free(xfer *x)
{
    if (!x->live)
        return;
    llmux__framer_free(&x->live->framer);
    llmux__buf_free(&x->live->held);
    llmux__out_free(&x->live->chunk.o);
    llmux__free(x->live);
    x->live = NULL;
}

/* Moves a failed request on to its next fallback config string: a fresh
 * prepare, response and retry budget; the total deadline goes on. Returns
 * 0 when the new attempt started or was queued. */
static int use_fallback(xfer *x)
{
    struct llmux_client *c = x->c;
    llmux_request *req = x->req;
    llmux__config cfg;
    char prev[128];
    int rc;

    snprintf(prev, sizeof prev, "%s/%s", req->cfg.provider,
             req->cfg.model ? req->cfg.model : "");
    memset(&cfg, 0, sizeof cfg);
    rc = llmux__config_parse(req->fallbacks[req->next_fallback++], &cfg, NULL,
                             0);
    if (rc)
        return rc;
    llmux__config_free(&req->cfg);
    req->cfg = cfg;
    llmux__client_log(c, LLMUX_LOG_INFO, "%s failed; falling back to %s/%s",
                      prev, cfg.provider, cfg.model ? cfg.model : "");
    reset_attempt(x);
    llmux__give_slot(x); /* llmux__pump below */
    llmux__prepared_free(&x->prep);
    /* the fallback's own settings (timeouts, retries, TLS, rate limits)
     * and request */
    {
        llmux__log_target old = llmux__client_log_target(c);
        rc = llmux__prepare_ex(req, &c->defaults, &x->set, c->plugin_path,
                               c->key_env_allow, c->credential != NULL,
                               &x->prep);
        llmux__log_target_swap(old);
    }
    if (rc)
        return rc;
    if (x->set.timeout_ms > 0) {
        /* counted from submission: it may end the request earlier */
        uint64_t d = x->t_submit + (uint64_t)x->set.timeout_ms;
        if (!x->deadline || d < x->deadline)
            x->deadline = d;
    }
    x->edited = 0; /* the fallback's own request: before_send sees it */
    x->cred_refreshed = 0;
    x->cred_asked = 0;
    {
        llmux_response *nr = llmux__response_new(req->op, req->cfg.provider);
        if (!nr)
            return LLMUX_ENOMEM; /* the old response still reports */
        llmux_response_free(x->res);
        x->res = nr;
    }
    x->res->fallback = (int)req->next_fallback;
    x->attempts = 0;
    x->ep = llmux__endpoint_get(c, x->prep.url, llmux__lane_key(&x->prep));
    if (!x->ep)
        return LLMUX_ENOMEM;
    if ((rc = llmux__endpoint_limits(c, x)) || (rc = llmux__budget_refit(x)))
        return rc; /* the fallback's own rate limits and budgets */
    x->est_tokens = x->ep->tk.rate ? llmux__estimate_tokens(req) : 0;
    if (llmux__can_start_x(c, x->ep, x)) {
        llmux__take_slot(x);
        rc = llmux__xfer_attempt(x);
    } else {
        llmux__enqueue(x);
    }
    llmux__pump(c);
    return rc;
}

/* resp->header for the rate-limit hook: the attempt's response headers. */
static const char *easy_header(const llmux_http_response *resp,
                               const char *name)
{
    return llmux__hdr((CURL *)resp->header_ctx, name);
}

/* The answer's word on the endpoint's limits (limits.c), with what the
 * provider's rate-limit headers say as its plugin reads them. */
static void rate_feedback(xfer *x, long status)
{
    llmux_rate_limits rl;
    int have = 0;
    if (!llmux__rate_feedback_wanted(x->ep, status))
        return;
    have = llmux__read_rate_limits(&x->prep, status, easy_header, x->easy,
                                   &rl) == 0;
    llmux__rate_feedback(x->c, x->ep, uv_now(x->c->loop), status,
                         x->retry_after_ms, have ? &rl : NULL);
}

/* The message of a transfer curl ended with `result`: the timeout that
 * fired, a stream cut off, or curl's reason. */
static void transport_message(xfer *x, CURLcode result, char *msg, size_t len)
{
    const char *prov = x->prep.call.provider;
    const char *why =
        x->live->errbuf[0] ? x->live->errbuf : curl_easy_strerror(result);
    curl_off_t conn = 0;
    if (result != CURLE_OPERATION_TIMEDOUT) {
        if (x->streaming)
            snprintf(msg, len, "%s: stream cut off after %ld events: %s", prov,
                     x->events, why);
        else
            snprintf(msg, len, "%s: %s", prov, why);
        return;
    }
    curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &conn);
    if (x->timeout_which && !strcmp(x->timeout_which, "idle_timeout"))
        snprintf(msg, len,
                 "%s: idle_timeout: no data for %ld ms after %ld events", prov,
                 x->set.idle_timeout_ms, x->events);
    else if (x->timeout_which)
        snprintf(msg, len, "%s: first_byte_timeout: no answer within %ld ms",
                 prov, x->set.first_byte_timeout_ms);
    else if (conn == 0 && (!x->deadline || uv_now(x->c->loop) < x->deadline))
        snprintf(msg, len, "%s: connect_timeout: no connection within %ld ms",
                 prov, x->set.connect_timeout_ms);
    else
        snprintf(msg, len, "%s: timeout: the total deadline passed%s", prov,
                 x->streaming ? " mid-stream" : "");
}

/* What this attempt came to: 0, or the error code with its message in
 * msg (and curl's code in *transport for a transport failure). A whole
 * answer is decoded into the response here; a stream's last bytes go
 * through the framer. */
static int attempt_outcome(xfer *x, CURLcode result, long status,
                           const char *ct, int *transport, char *msg,
                           size_t len)
{
    struct llmux_client *c = x->c;
    int code = 0;
    if (x->cancel)
        return x->cancel;
    if (x->err) {
        if (x->err == LLMUX_ETOOBIG)
            snprintf(msg, len, "%s: response larger than the %zu-byte limit",
                     x->prep.call.provider,
                     x->streaming && x->received <= c->max_response
                         ? c->max_event
                         : c->max_response);
        return x->err;
    }
    if (result != CURLE_OK && !(x->streaming && x->got_done)) {
        *transport = (int)result;
        transport_message(x, result, msg, len);
        return result == CURLE_OPERATION_TIMEDOUT ? LLMUX_ETIMEDOUT
                                                  : LLMUX_ETRANSPORT;
    }
    if (x->streaming) {
        int rc = llmux__framer_finish(&x->live->framer, llmux__on_event, x);
        if (rc == LLMUX__FRAMER_STOP)
            rc = 0; /* the last event; a pause after it changes nothing */
        if (rc)
            return x->err ? x->err : rc;
        if (!x->got_done) {
            snprintf(msg, len,
                     "%s: stream ended after %ld events without its end "
                     "marker",
                     x->prep.call.provider, x->events);
            return LLMUX_ETRANSPORT;
        }
        return 0;
    }
    code = llmux__decode_answer(&x->prep, status, ct, x->body.p, x->body.len,
                                x->res);
    if (code) {
        /* keep the decoded message; llmux__xfer_finish records it again */
        snprintf(msg, len, "%s",
                 x->res->err_message ? x->res->err_message : "");
        x->res->has_error = 0;
    }
    return code;
}

/* The attempt in the debug log: the URL without its query (a plugin may
 * put a key there) and without a user:password. */
static void log_attempt(xfer *x, long status, int code)
{
    struct llmux_client *c = x->c;
    const char *u = x->prep.url;
    size_t n = strcspn(u, "?"), a = n, b = n;
    int cred;
    if (!c->log || c->log_level < LLMUX_LOG_DEBUG)
        return;
    cred = llmux__url_userinfo(u, n, &a, &b);
    llmux__client_log(
        c, LLMUX_LOG_DEBUG, "%s %.*s%s%.*s -> HTTP %ld, %s (attempt %d)",
        x->prep.http.method, (int)a, u, cred ? "***" : "", (int)(n - b), u + b,
        status, code ? llmux_err_name(code) : "ok", x->attempts);
}

/* Waits `delay` ms on x's timer, then tries again (on_retry_timer). */
static void schedule_retry(xfer *x, int code, long status, double delay)
{
    struct llmux_client *c = x->c;
    llmux__client_log(c, LLMUX_LOG_INFO, "%s: retrying in %.0f ms after %s",
                      x->prep.call.provider, delay, llmux_err_name(code));
    c->st.retries++;
    if (status == 429)
        c->st.retries_rate_limited++;
    else if (status >= 400)
        c->st.retries_server++;
    else
        c->st.retries_transport++;
    reset_attempt(x);
    /* a fresh response for the next attempt, errors included */
    llmux__out_reset(&x->res->o);
    x->state = X_WAIT;
    timer_start(x, on_retry_timer, (uint64_t)delay);
}

/* One transfer finished in curl: decide the outcome of this attempt. */
void llmux__xfer_done(xfer *x, CURLcode result)
{
    long status = 0;
    char *ct = NULL;
    const char *should = NULL;
    int code, transport = 0, fallback;
    char msg[2 * LLMUX__ERRBUF] = "";
    double delay;

    curl_multi_remove_handle(x->c->multi, x->easy);
    if (x->live && x->live->held.len && !x->cancel && !x->err) {
        /* paused with events still held: they go first, on resume */
        x->done_pending = 1;
        x->done_result = result;
        return;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    x->retry_after_ms = -1;
    /* retry hints matter only for failures; skip the header scans else */
    if (result != CURLE_OK || status >= 400) {
        x->retry_after_ms =
            llmux__retry_after_ms(llmux__hdr(x->easy, "retry-after-ms"),
                                  llmux__hdr(x->easy, "retry-after"));
        should = llmux__hdr(x->easy, "x-should-retry");
    }
    x->res->http_status = status;
    x->res->err.retry_after =
        x->retry_after_ms >= 0 ? x->retry_after_ms / 1000.0 : -1;
    if (status > 0)
        rate_feedback(x, status);

    code = attempt_outcome(x, result, status, ct, &transport, msg, sizeof msg);
    log_attempt(x, status, code);
    if (code == LLMUX_EAUTH && status == 401 && x->cred_asked &&
        !x->cred_refreshed) {
        /* the callback's answer was refused: ask it again, once */
        x->cred_refreshed = 1;
        llmux__cred_refused(x);
        llmux__hook_attempt_end(x, code, status, "retry", 0);
        schedule_retry(x, code, status, 0);
        return;
    }
    if (code &&
        (delay = llmux__retry_delay(x, code, status, transport, should)) >= 0) {
        llmux__hook_attempt_end(x, code, status, "retry", delay);
        schedule_retry(x, code, status, delay);
        return;
    }
    fallback = code && llmux__fallback_worthy(x, code, status);
    llmux__hook_attempt_end(x, code, status, fallback ? "fallback" : NULL, -1);
    if (fallback) {
        int rc = use_fallback(x);
        if (rc == 0)
            return;
        code = rc;               /* the fallback could not even start */
        x->res->http_status = 0; /* not the failed primary's status */
        snprintf(msg, sizeof msg, "fallback: %s",
                 x->req->errmsg ? x->req->errmsg : llmux_strerror(rc));
    }
    llmux__cache_store(x, code, status, ct); /* a complete success only */
    llmux__xfer_finish(x, code, transport, msg[0] ? msg : NULL);
}

void llmux__check_multi_info(struct llmux_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        xfer *x = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x)
            llmux__xfer_done(x, m->data.result);
    }
}

static int add_slist(struct curl_slist **l, const char *s)
{
    struct curl_slist *n = curl_slist_append(*l, s);
    if (!n)
        return LLMUX_ENOMEM;
    *l = n;
    return 0;
}

/* The request's headers, then the client's, on x->hdrs. */
static int build_headers(xfer *x)
{
    const struct llmux_http_request *h = &x->prep.http;
    struct llmux_client *c = x->c;
    size_t i;
    for (i = 0; i < h->n_headers; i++)
        if (add_slist(&x->hdrs, h->headers[i]))
            return LLMUX_ENOMEM;
    for (i = 0; i < c->n_headers; i++)
        if (add_slist(&x->hdrs, c->headers[i]))
            return LLMUX_ENOMEM;
    if (x->prep.cred && x->prep.api_key) { /* this attempt's credential */
        char *line;
        int rc = llmux__auth_line(x->prep.prov, h, x->prep.api_key,
                                  x->cred_bearer, &line);
        if (!rc && line)
            rc = add_slist(&x->hdrs, line);
        llmux__secret_free(line);
        if (rc)
            return rc;
    }
    /* no "Expect: 100-continue" round trip for large bodies */
    if (h->body_len > 1024 && add_slist(&x->hdrs, "Expect:"))
        return LLMUX_ENOMEM;
    return 0;
}

/* The method and the body of the plugin's request. */
static void set_method(CURL *e, const struct llmux_http_request *h)
{
    if (h->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)h->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, h->body);
    }
    if (strcmp(h->method, "GET") == 0 && !h->body)
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    else if (!h->body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L); /* an empty POST body */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (strcmp(h->method, "GET") != 0 && strcmp(h->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, h->method);
}

/* Proxy and TLS, as x's settings say; turning verification off warns once
 * per client. */
static void set_tls(xfer *x, CURL *e)
{
    struct llmux_client *c = x->c;
    if (x->set.proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, x->set.proxy);
    if (x->set.ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, x->set.ca_file);
    if (!x->set.insecure)
        return;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    if (!c->warned_insecure) {
        c->warned_insecure = 1;
        llmux__client_log(c, LLMUX_LOG_WARN,
                          "TLS certificate verification is off (insecure=1): "
                          "anyone on the path can read the traffic and the "
                          "API key");
    }
}

/* A configured easy handle for x's next attempt, within `timeout` ms of
 * the deadline (0 = none). */
static CURL *new_easy(xfer *x, long timeout)
{
    struct llmux_client *c = x->c;
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, x->prep.url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* Waiting to multiplex pays off only where TLS ALPN can offer HTTP/2;
     * over plain http it would hold new transfers to a host behind the
     * first one's response. */
    if (strncmp(x->prep.url, "https://", 8) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (x->set.first_byte_timeout_ms || x->set.idle_timeout_ms) {
        /* the end of the headers hands a whole reply from the first-byte
         * watchdog to the idle one; without watchdogs the first body
         * byte marks the answer's start, and curl skips the callback
         * (about 2 % of a plain request's instructions) */
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    }
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->live->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->set.connect_timeout_ms);
    if (timeout > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    if (x->req->stream)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, STREAM_BUFFER);
    set_method(e, &x->prep.http);
    set_tls(x, e);
    return e;
}

/* The total deadline passed while x waited for its credential. */
static void on_wait_deadline(uv_timer_t *t)
{
    xfer *x = t->data;
    llmux__log_target old;
    if (x->state != X_WAIT || x->cred_state != CRED_WAIT || x->cancel)
        return;
    llmux__cred_forget(x);
    old = llmux__client_log_target(x->c);
    llmux__xfer_finish(x, LLMUX_ETIMEDOUT, 0,
                       "timed out waiting for the credential callback");
    llmux__log_target_swap(old);
}

/* Starts one attempt: a configured easy handle added to the multi. */
int llmux__xfer_attempt(xfer *x)
{
    struct llmux_client *c = x->c;
    long timeout = 0;
    int rc;

    reset_attempt(x);
    llmux__request_seterr(x->req, NULL); /* what this attempt says, if any */
    if (x->deadline) {
        uint64_t now = now_ms(c);
        if (now >= x->deadline)
            return LLMUX_ETIMEDOUT;
        timeout = (long)(x->deadline - now);
    }
    if (!x->live) { /* kept across retries, freed when the request ends */
        if (!(x->live = llmux__calloc(1, sizeof *x->live)))
            return LLMUX_ENOMEM;
        llmux__out_init(&x->live->chunk.o, x->req->op, 1);
    }
    if ((rc = llmux__hook_before_send(x)) != 0)
        return rc;
    if (c->credential && (rc = llmux__cred_fetch(x)) != 0) {
        if (rc != LLMUX__CRED_WAIT)
            return rc;
        /* llmux__on_defer goes on once it is answered; the total deadline
         * still runs */
        x->state = X_WAIT;
        if (x->deadline)
            timer_start(x, on_wait_deadline, (uint64_t)timeout);
        return 0;
    }
    if ((rc = build_headers(x)) || !(x->easy = new_easy(x, timeout)))
        return rc ? rc : LLMUX_ENOMEM;
    x->attempts++;
    x->res->attempts = x->attempts;
    x->state = X_ACTIVE;
    x->t_attempt = uv_now(c->loop);
    c->st.attempts++;
    if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
        return LLMUX_ENOMEM;
    llmux__hook_attempt_start(x);
    if (x->set.first_byte_timeout_ms)
        llmux__watchdog_arm(x, x->set.first_byte_timeout_ms);
    return 0;
}

static void xfer_timer_closed(uv_handle_t *h)
{
    xfer *x = h->data;
    struct llmux_client *c = x->c;
    x->timer_on = 0;
    llmux__xfer_release(x);
    c->handles_open--;
    llmux__client_maybe_closed(c);
}

/* The end of a request: the done callback, exactly once, then freeing. */
void llmux__xfer_finish(xfer *x, int code, int transport, const char *msg)
{
    struct llmux_client *c = x->c;
    llmux_request *req = x->req;
    llmux_response *res = x->res;

    if (x->state == X_ACTIVE && x->easy)
        curl_multi_remove_handle(c->multi, x->easy);
    llmux__cred_forget(x); /* no longer waiting for a credential */
    llmux__cache_forget(x);
    /* an attempt cut short (cancelled, closed, out of time) ends here */
    llmux__hook_attempt_end(x, code, res->http_status, NULL, -1);
    if (!x->streaming && x->body.p && !res->raw) {
        /* the last attempt's body as received: moved, not copied */
        res->raw = x->body.p;
        res->raw_len = x->body.len;
        memset(&x->body, 0, sizeof x->body);
    }
    reset_attempt(x);
    if (llmux__out_flush(&res->o) && !code)
        code = LLMUX_ENOMEM; /* a streamed field could not be written */
    x->state = X_DONE;
    llmux__release_slot(x); /* may start queued requests */
    llmux__hist_add(&c->h_total, (uv_now(c->loop) - x->t_submit) * 10);
    if (code == 0 && x->ep && x->ep->tk.rate && res->o.has_usage &&
        !res->cached)
        /* charge what the request really cost, not the estimate */
        llmux__limits_used(x, llmux__usage_total(&res->o.usage));
    llmux__stats_count(c, code, res, x->attempts);
    llmux__spend_count(x);
    if (code)
        llmux__response_fail(res, code, res->http_status, transport, msg);
    llmux__response_mask(res, x->prep.api_key);
    /* unlink before the callback so llmux_client_pending() is accurate */
    if (x->prev)
        x->prev->next = x->next;
    else
        c->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    c->pending--;

    llmux__hook_request_end(x, code);
    llmux__callback_depth(1);
    if (x->on_done)
        x->on_done(req, code, res, x->ud);
    llmux__callback_depth(-1);

    llmux_response_free(res);
    live_free(x);
    llmux__prepared_free(&x->prep);
    req->x = NULL;
    if (x->owns_req)
        llmux_request_free(req);
    if (x->timer_on)
        uv_close((uv_handle_t *)&x->timer, xfer_timer_closed);
    llmux__xfer_release(x);
    llmux__client_maybe_closed(c);
}

/* Frees a transfer llmux_submit() did not accept: no callback runs. */
void llmux__xfer_discard(xfer *x)
{
    if (x->easy)
        curl_multi_remove_handle(x->c->multi, x->easy);
    llmux__cred_forget(x);
    llmux__cache_forget(x);
    reset_attempt(x);
    if (x->res)
        llmux_response_free(x->res);
    live_free(x);
    llmux__prepared_free(&x->prep);
    llmux__free(x);
}

/* ---- the defer list: finishing outside curl callbacks and user calls ----- */

/* Frees a finished transfer once nothing refers to it any more: not the
 * defer list, not its retry timer's pending close. */
void llmux__xfer_release(xfer *x)
{
    if (x->state == X_DONE && !x->queued && !x->timer_on)
        llmux__free(x);
}

/* A resume asked for by llmux_request_resume(): the events held since the
 * pause first, then curl reads again. */
static void defer_resume(xfer *x)
{
    struct llmux_client *c = x->c;
    x->resume_pending = 0;
    if (x->state != X_ACTIVE || !x->easy || x->paused)
        return;
    /* curl may hand over what it held right here: count both as inside
     * curl so callbacks submitting are deferred */
    c->in_curl++;
    if (llmux__feed_held(x)) {
        c->in_curl--;
        return; /* paused again */
    }
    if (x->done_pending || x->err) {
        /* the answer was complete, or a held event failed (a callback
         * stopped the stream, a bad event): finish now rather than wait for
         * bytes that may not come */
        CURLcode r = x->done_pending ? x->done_result : CURLE_WRITE_ERROR;
        c->in_curl--;
        x->done_pending = 0;
        llmux__xfer_done(x, r);
        return;
    }
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
    c->in_curl--;
    if (x->state == X_ACTIVE && x->err)
        /* a callback stopped the stream during that delivery: curl says so
         * only when its socket next moves */
        llmux__xfer_done(x, CURLE_WRITE_ERROR);
    else if (x->set.idle_timeout_ms && x->state == X_ACTIVE)
        llmux__watchdog_arm(x, x->set.idle_timeout_ms);
    llmux__check_multi_info(c);
}

/* A start llmux_submit() left to the loop (it was inside curl). */
static void defer_start(xfer *x)
{
    struct llmux_client *c = x->c;
    int rc;
    x->start_pending = 0;
    if (!llmux__can_start_x(c, x->ep, x)) {
        llmux__enqueue(x); /* its place was reserved by llmux_submit */
        llmux__pump(c);
        return;
    }
    llmux__take_slot(x);
    rc = llmux__xfer_attempt(x);
    if (rc)
        llmux__xfer_finish(x, rc, 0, x->req->errmsg);
}

/* x's cache lookup answered (a hit or a miss), or its replay resumed. */
static void defer_cache(xfer *x)
{
    int rc =
        llmux__cache_replaying(x) ? LLMUX__CACHE_STREAM : llmux__cache_hit(x);
    if (rc == LLMUX__CACHE_MISS)
        defer_start(x); /* to the provider */
    else if (rc != LLMUX__CACHE_STREAM || (rc = llmux__replay(x)) <= 0)
        llmux__xfer_finish(x, rc == LLMUX__CACHE_REPLY ? 0 : rc, 0,
                           x->req->errmsg);
}

/* The credential x waited for came: its attempt goes on, or the request
 * ends with the callback's failure. */
static void defer_credential(xfer *x)
{
    int rc;
    if (x->timer_on)
        uv_timer_stop(&x->timer); /* the total deadline's wait */
    if (x->cred_state == CRED_FAIL) {
        char msg[LLMUX__ERRBUF];
        snprintf(msg, sizeof msg, "%s", x->cred_msg ? x->cred_msg : "");
        rc = x->cred_code;
        llmux__cred_forget(x);
        llmux__xfer_finish(x, rc, 0, msg);
        return;
    }
    if ((rc = llmux__xfer_attempt(x)) != 0)
        llmux__xfer_finish(x, rc, 0, x->req->errmsg);
}

/* The defer timer: each transfer on the list is resumed, started or
 * finished (cancelled, or a start that failed), outside curl callbacks
 * and user calls. */
void llmux__on_defer(uv_timer_t *t)
{
    struct llmux_client *c = t->data;
    llmux__log_target old = llmux__client_log_target(c);
    c->in_defer = 1;
    while (c->qhead) {
        xfer *x = c->qhead;
        c->qhead = x->qnext;
        if (!c->qhead)
            c->qtail = NULL;
        x->qnext = NULL;
        x->queued = 0;
        if (x->state == X_DONE) {
            llmux__xfer_release(x); /* finished while queued */
            continue;
        }
        if (llmux__cache_ready(x) && !x->cancel && !c->closing) {
            defer_cache(x);
            continue;
        }
        if (x->resume_pending && !x->cancel && !c->closing) {
            defer_resume(x);
            continue;
        }
        if (x->start_pending && !x->cancel && !c->closing) {
            defer_start(x);
            continue;
        }
        if ((x->cred_state == CRED_HAVE || x->cred_state == CRED_FAIL) &&
            !x->cancel && !c->closing) {
            defer_credential(x);
            continue;
        }
        if (x->defer_code && !x->cancel) {
            /* a failed start, with its message if it had one */
            llmux__xfer_finish(x, x->defer_code, 0, x->req->errmsg);
            continue;
        }
        if (x->state == X_QUEUED)
            llmux__dequeue(x);
        if (x->state == X_WAIT && x->timer_on)
            uv_timer_stop(&x->timer);
        llmux__xfer_finish(x, x->cancel ? x->cancel : LLMUX_ECANCELED, 0, NULL);
    }
    if (!c->closing)
        uv_unref((uv_handle_t *)&c->defer);
    llmux__client_maybe_closed(c); /* frees nothing yet: that waits for close
                               callbacks, so `c` stays valid here */
    c->in_defer = 0;
    llmux__log_target_swap(old);
}

void llmux__defer_push(xfer *x)
{
    struct llmux_client *c = x->c;
    if (x->queued)
        return;
    x->queued = 1;
    x->qnext = NULL;
    if (c->qtail)
        c->qtail->qnext = x;
    else
        c->qhead = x;
    c->qtail = x;
    uv_ref((uv_handle_t *)&c->defer);
    uv_timer_start(&c->defer, llmux__on_defer, 0, 0);
}

/* ---- starting queued transfers as the limits allow ----------------------- */

void llmux__on_pump(uv_timer_t *t)
{
    llmux__pump(t->data);
}

/* Before each poll: a new budget of starts, and the requests that waited
 * only for it start (their curl timer then makes the poll not block). */
void llmux__on_turn(uv_prepare_t *p)
{
    struct llmux_client *c = p->data;
    c->turn_starts = 0;
    if (c->turn_held) {
        c->turn_held = 0;
        uv_unref((uv_handle_t *)&c->turn);
        llmux__pump(c); /* may hold again */
    }
}

/* Starts queued requests while the limits allow, oldest first across
 * endpoints. O(endpoints) per start. A start that fails is finished from
 * the defer timer, so done callbacks never nest here. */
void llmux__pump(struct llmux_client *c)
{
    xfer *r; /* shared limits unreachable, no fallback: end from defer */
    while (c->redis && !c->closing && (r = llmux__limits_refused(c))) {
        r->defer_code = LLMUX_ELIMITS;
        llmux__defer_push(r);
    }
    while (c->queued && !c->closing &&
           (!c->max_in_flight || c->in_flight < c->max_in_flight)) {
        llmux__endpoint *best;
        xfer *x;
        int rc;
        uint64_t wake = 0;
        if (c->turn_starts >= STARTS_PER_TURN) {
            llmux__turn_hold(c); /* llmux__on_turn goes on */
            return;
        }
        best = llmux__next_endpoint(c, &wake);
        if (!best) {
            if (wake)
                uv_timer_start(&c->pump_t, llmux__on_pump, wake, 0);
            return;
        }
        x = best->qhead;
        llmux__dequeue(x);
        x->state = X_WAIT; /* out of the queue: a hook's cancel must not
                              dequeue it again */
        llmux__take_slot(x);
        rc = llmux__xfer_attempt(x);
        if (rc) {
            x->state = X_WAIT;
            x->defer_code = rc;
            llmux__defer_push(x);
        }
    }
}

/* Gives the slot back and lets the queue use it. */
void llmux__release_slot(xfer *x)
{
    if (!x->holds_slot)
        return;
    llmux__give_slot(x);
    llmux__pump(x->c);
}
