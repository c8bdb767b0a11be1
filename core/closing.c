/*
 * core/closing.c: closing a client, step by step as its transfers finish
 * and its handles close (curl released from the defer timer, never inside
 * a curl call), the sockets' poll handles, and the client's memory. The
 * parts above call llmux__client_maybe_closed() whenever something that
 * could end the close is done; it names nothing above it.
 */
#include "engine.h"
#include "redis.h"

void llmux__client_free_mem(struct llmux_client *c)
{
    size_t i;
    while (c->pstats) {
        llmux__pstat *p = c->pstats;
        c->pstats = p->next;
        llmux__free(p->name);
        llmux__free(p);
    }
    while (c->endpoints) {
        llmux__endpoint *e = c->endpoints;
        c->endpoints = e->next;
        llmux__free(e->key);
        llmux__free(e->rkey);
        llmux__free(e);
    }
    for (i = 0; i < c->n_headers; i++)
        llmux__free(c->headers[i]);
    llmux__free(c->headers);
    llmux__free(c->plugin_path);
    llmux__free(c->key_env_allow);
    llmux__settings_free_defaults(&c->defaults);
    llmux__prices_free(c->prices);
    llmux__creds_free(c);
    llmux__budget_free(c);
    if (c->cache)
        c->cache->free(c->cache);
    if (c->cache_redis) /* its connection closed first: nothing pending */
        c->cache_redis->free(c->cache_redis);
    if (c->xq_lock_ok)
        uv_mutex_destroy(&c->xq_lock);
    llmux__free(c);
}

static void client_handle_closed(uv_handle_t *h)
{
    struct llmux_client *c = h->data;
    c->handles_open--;
    llmux__client_maybe_closed(c);
}

static void redis_closed(void *ud)
{
    struct llmux_client *c = ud;
    c->handles_open--;
    llmux__client_maybe_closed(c);
}

void llmux__client_maybe_closed(struct llmux_client *c)
{
    if (!c->closing)
        return;
    if (c->closing == 1) {
        /* Releasing curl must not happen inside a curl call or while
         * llmux__check_multi_info() walks curl's messages (a done callback may
         * close the client): leave it to the defer timer. */
        /* (the handover queue: no thread adds to it once closing) */
        if (c->head || c->qhead || c->xq_head || !c->in_defer) {
            if (!c->head && !c->qhead && !c->xq_head)
                uv_timer_start(&c->defer, c->on_defer, 0, 0);
            return;
        }
        c->closing = 2;
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
        while (c->socks)
            llmux__sock_close(c->socks);
        uv_close((uv_handle_t *)&c->timer, client_handle_closed);
        uv_close((uv_handle_t *)&c->defer, client_handle_closed);
        uv_close((uv_handle_t *)&c->pump_t, client_handle_closed);
        uv_close((uv_handle_t *)&c->budget_t, client_handle_closed);
        uv_close((uv_handle_t *)&c->turn, client_handle_closed);
        if (c->redis) { /* counted as one handle until all of its closed */
            c->handles_open++;
            llmux__redis_free(c->redis, redis_closed, c);
            c->redis = NULL;
        }
        /* llmux_client_close set xq_closed: no thread sends to it now */
        uv_close((uv_handle_t *)&c->async, client_handle_closed);
        return;
    }
    if (c->closing == 2 && c->handles_open == 0) {
        llmux_close_cb cb = c->on_closed;
        void *ud = c->close_ud;
        c->closing = 3;
        if (c->owns_loop)
            return; /* llmux_client_free finishes the job */
        llmux__client_free_mem(c);
        if (cb)
            cb(ud);
    }
}

static void sock_closed(uv_handle_t *h)
{
    llmux__sock *s = h->data;
    struct llmux_client *c = s->c;
    llmux__free(s);
    c->handles_open--;
    llmux__client_maybe_closed(c);
}

void llmux__sock_close(llmux__sock *s)
{
    struct llmux_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}
