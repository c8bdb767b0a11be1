/*
 * core/stats.c: log-scale latency histograms for the client's counters.
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
