/*
 * core/stats.c: the client's counters: outcomes per client and per
 * provider, and log-scale latency histograms.
 */
#include "engine.h"

/* ---- histograms ---------------------------------------------------------- */

void llmux__hist_add(llmux__hist *h, uint64_t ms_tenths)
{
    unsigned idx = 0;
    if (ms_tenths > 0) {
        unsigned lg = 0;
        uint64_t v = ms_tenths;
        while (v >> (lg + 1))
            lg++;
        /* 4 sub-buckets from the two bits below the leading one */
        idx = 1 + lg * 4 +
              (unsigned)(lg >= 2 ? (ms_tenths >> (lg - 2)) & 3
                                 : (ms_tenths << (2 - lg)) & 3);
        if (idx >= HIST_BUCKETS)
            idx = HIST_BUCKETS - 1;
    }
    h->b[idx]++;
    h->n++;
}

/* The value (ms) below which a fraction q of the samples lie. */
double llmux__hist_pct(const llmux__hist *h, double q)
{
    uint64_t want, acc = 0;
    unsigned i;
    if (!h->n)
        return 0;
    want = (uint64_t)(q * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        acc += h->b[i];
        if (acc > want)
            break;
    }
    if (i == 0)
        return 0;
    {
        unsigned lg = (i - 1) / 4, sub = (i - 1) % 4;
        double lo = (double)((uint64_t)1 << lg) * (1.0 + sub / 4.0);
        double hi = (double)((uint64_t)1 << lg) * (1.0 + (sub + 1) / 4.0);
        return (lo + hi) / 2.0 / 10.0; /* tenths of ms -> ms */
    }
}

/* Outcome counters of a finished request. */
static void count_outcome(llmux_stats *st, int code, const llmux_response *res)
{
    if (code == 0) {
        st->succeeded++;
        if (res->cached)
            return; /* no provider counted tokens for it this time */
        if (res->o.usage.prompt_tokens > 0)
            st->prompt_tokens += (uint64_t)res->o.usage.prompt_tokens;
        if (res->o.usage.completion_tokens > 0)
            st->completion_tokens += (uint64_t)res->o.usage.completion_tokens;
        return;
    }
    if (code == LLMUX_ECANCELED) {
        st->canceled++;
        return;
    }
    st->failed++;
    switch (llmux_err_class_of(code)) {
    case LLMUX_CLASS_PROVIDER:
        st->errors_provider++;
        break;
    case LLMUX_CLASS_TRANSPORT:
        st->errors_transport++;
        break;
    case LLMUX_CLASS_USAGE:
        st->errors_usage++;
        break;
    default:
        st->errors_local++;
        break;
    }
}

/* The counters of one provider name, created on first use. */
static llmux_stats *provider_stats(struct llmux_client *c, const char *name)
{
    llmux__pstat *p;
    if (!name)
        return NULL;
    for (p = c->pstats; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return &p->st;
    p = llmux__calloc(1, sizeof *p);
    if (!p || !(p->name = llmux__strdup(name))) {
        llmux__free(p);
        return NULL;
    }
    p->next = c->pstats;
    c->pstats = p;
    return &p->st;
}

/* Counts a finished request: the client's outcome counters and those of
 * the provider that answered (a fallback's, maybe). */
void llmux__stats_count(struct llmux_client *c, int code,
                        const llmux_response *res, int attempts)
{
    llmux_stats *ps;
    count_outcome(&c->st, code, res);
    ps = provider_stats(c, res->provider);
    if (ps) {
        ps->requests++;
        ps->attempts += (uint64_t)attempts;
        count_outcome(ps, code, res);
    }
}

/* ---- spend and budget ---------------------------------------------------- */

/* The characters of a parts array's text: base64 payloads (images,
 * audio, files as data) are priced by their own rules, not as text. */
static size_t json_text_chars(const char *s)
{
    size_t n = 0;
    const char *b;
    while ((b = strstr(s, "base64,")) != NULL) {
        n += (size_t)(b - s) + 7;
        s = b + 7;
        s += strcspn(s, "\""); /* to the end of the string */
    }
    return n + strlen(s);
}

/* Tokens a request will likely cost before it is sent: its text at about
 * four characters a token, plus the completion it may ask for. */
double llmux__estimate_tokens(const llmux_request *r)
{
    size_t chars = 0, i;
    for (i = 0; i < r->n_msgs; i++) {
        if (r->msgs[i].content)
            chars += strlen(r->msgs[i].content);
        if (r->msgs[i].content_json)
            chars += json_text_chars(r->msgs[i].content_json);
    }
    if (r->prompt)
        chars += strlen(r->prompt);
    for (i = 0; i < r->n_inputs; i++)
        chars += strlen(r->inputs[i]);
    return (double)chars / 4.0 + 1.0 +
           (r->has & LLMUX_HAS_MAX_TOKENS ? (double)r->max_tokens : 0.0);
}

int llmux__price_for(struct llmux_client *c, const char *provider,
                     const char *model, llmux__price *p)
{
    return llmux__price_find(c->prices, provider, model, p) ||
           llmux__price_find(llmux__prices_builtin(), provider, model, p);
}
