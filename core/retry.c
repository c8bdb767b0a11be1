/*
 * core/retry.c: the retry policy: which failures are tried again, after
 * how long (Retry-After, exponential backoff with jitter, within the
 * deadline), and which may move on to a fallback. It decides; xfer.c acts.
 */
#include "engine.h"

/* The wait a server asks for, from its retry-after-ms and Retry-After
 * header values (either may be NULL), in ms; -1 when absent or bad. */
double llmux__retry_after_ms(const char *ms_value, const char *value)
{
    char *end;
    double d;
    if (ms_value) {
        long ms = strtol(ms_value, &end, 10);
        if (end != ms_value && ms >= 0)
            return (double)ms;
    }
    if (!value)
        return -1;
    {
        long s = strtol(value, &end, 10);
        if (end != value && *end == '\0' && s >= 0)
            return (double)s * 1000.0;
    }
    d = (double)curl_getdate(value, NULL);
    if (d > 0) {
        double delta = (d - (double)time(NULL)) * 1000.0;
        return delta > 0 ? delta : 0;
    }
    return -1;
}

/* As the official SDKs: timeouts, lock conflicts, rate limits and every
 * server error (529, "overloaded", included). */
static int retryable_status(long s)
{
    return s == 408 || s == 409 || s == 429 || (s >= 500 && s <= 599);
}

/* Decides whether to try again; returns the delay in ms or -1. The full
 * policy (budgets per endpoint, rate limits) comes with the resilience
 * layer; this is the per-request part: statuses, x-should-retry,
 * Retry-After, exponential backoff with jitter. */
double llmux__retry_delay(xfer *x, int code, long status, int transport,
                          const char *should)
{
    double d;
    if (x->cancel || x->delivered || x->c->closing ||
        x->attempts > x->set.max_retries)
        return -1;
    if (should && !strcasecmp(should, "false"))
        return -1;
    if (!(should && !strcasecmp(should, "true"))) {
        if (code == LLMUX_ETRANSPORT || code == LLMUX_ETIMEDOUT) {
            if (transport != CURLE_COULDNT_CONNECT &&
                transport != CURLE_OPERATION_TIMEDOUT &&
                transport != CURLE_GOT_NOTHING &&
                transport != CURLE_SEND_ERROR && transport != CURLE_RECV_ERROR)
                return -1;
            if (status > 0)
                return -1; /* the answer began (then a reset, a cut, a
                              stall): the work may be done, report it */
        } else if (!retryable_status(status)) {
            return -1;
        }
        if (status == 429 && x->res->o.err_pcode &&
            !strcmp(x->res->o.err_pcode, "insufficient_quota"))
            return -1; /* billing, not load */
    }
    if (x->retry_after_ms >= 0) {
        if (x->retry_after_ms > RETRY_AFTER_CAP_MS)
            return -1;
        d = x->retry_after_ms;
    } else {
        /* min(b * 2^n, 8 s), as the README says, whatever b is */
        double base = (double)x->set.retry_backoff_ms;
        int i;
        for (i = 1; i < x->attempts && base < BACKOFF_CAP_MS; i++)
            base *= 2;
        if (base > BACKOFF_CAP_MS)
            base = BACKOFF_CAP_MS;
        /* xorshift jitter in [0.75, 1]: no global rand() state */
        x->c->rng ^= x->c->rng << 13;
        x->c->rng ^= x->c->rng >> 7;
        x->c->rng ^= x->c->rng << 17;
        d = base * (1.0 - 0.25 * (double)(x->c->rng % 1000) / 1000.0);
    }
    if (x->deadline && uv_now(x->c->loop) + (uint64_t)d >= x->deadline)
        return -1;
    return d;
}

/* Whether a request that failed for good may move on to a fallback: rate
 * limits, overload and other 5xx, timeouts, connection failures and
 * context-length errors; never once the caller has seen chunks. */
int llmux__fallback_worthy(const xfer *x, int code, long status)
{
    if (x->cancel || x->delivered || x->c->closing ||
        x->req->next_fallback >= x->req->n_fallbacks)
        return 0;
    switch (code) {
    case LLMUX_ERATELIMIT:
    case LLMUX_ETIMEDOUT:
    case LLMUX_ETRANSPORT:
        return 1;
    case LLMUX_EPROVIDER:
        if (status >= 500 || status == 408)
            return 1;
        return llmux__classify_error(&x->prep, status, &x->res->o) ==
               LLMUX_ERROR_KIND_CONTEXT_LENGTH;
    default:
        return 0;
    }
}
