/*
 * core/wire.c: libcurl's multi interface driven by libuv: one uv_poll per
 * socket and one uv_timer, handing curl's socket and timer events to
 * curl_multi_socket_action (finished transfers and the watchdogs are
 * xfer.c's).
 */
#include "engine.h"

/* ---- curl <-> uv wiring -------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    llmux__sock *s = h->data;
    struct llmux_client *c = s->c;
    int running, flags = 0;
    /* An error (a connection reset) comes without events: curl then
     * reads and writes the socket itself, so the data that arrived before
     * the reset reaches the caller and the reset is reported as such.
     * CURL_CSELECT_ERR alone made curl drop both ("select/poll returned
     * error"). */
    if (status < 0)
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    {
        llmux__log_target old = llmux__client_log_target(c);
        c->in_curl++;
        curl_multi_socket_action(c->multi, s->fd, flags, &running);
        c->in_curl--;
        llmux__check_multi_info(c);
        llmux__log_target_swap(old);
    }
}

static void on_curl_timer(uv_timer_t *t)
{
    struct llmux_client *c = t->data;
    int running;
    llmux__log_target old = llmux__client_log_target(c);
    c->in_curl++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl--;
    llmux__check_multi_info(c); /* transfers also end on the timer path */
    llmux__log_target_swap(old);
}

int llmux__curl_timer_cb(CURLM *m, long ms, void *ud)
{
    struct llmux_client *c = ud;
    (void)m;
    if (ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_curl_timer, (uint64_t)ms, 0);
    return 0;
}

int llmux__curl_socket_cb(CURL *e, curl_socket_t fd, int action, void *ud,
                          void *sockp)
{
    struct llmux_client *c = ud;
    llmux__sock *s = sockp;
    int ev = 0;
    (void)e;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            llmux__sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = llmux__calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd)) {
            llmux__free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        c->handles_open++;
        curl_multi_assign(c->multi, fd, s);
    }
    if (action != CURL_POLL_OUT)
        ev |= UV_READABLE;
    if (action != CURL_POLL_IN)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}
