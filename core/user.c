/*
 * core/user.c: calling the user: the client's log hook at its level, the
 * routing of plugin log lines to it while the engine works for that
 * client, and the depth of user callbacks running on this thread (the
 * blocking calls refuse to run inside one).
 */
#include "engine.h"

/* Non-zero while this thread runs an llmux callback (llmux_run refuses). */
#if defined(__GNUC__)
static __thread int tl_in_callback;
#else
static _Thread_local int tl_in_callback;
#endif

int llmux__callback_depth(int delta)
{
    tl_in_callback += delta;
    return tl_in_callback;
}

void llmux__client_log(struct llmux_client *c, int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (!c->log || level > c->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->log(level, buf, c->log_ud);
}

/* Routes plugin log lines to this client's hook while the loop works for
 * it; returns the previous target for llmux__log_target_swap(). */
llmux__log_target llmux__client_log_target(struct llmux_client *c)
{
    llmux__log_target t;
    memset(&t, 0, sizeof t);
    t.log = c->log;
    t.log_ud = c->log_ud;
    t.log_level = c->log_level;
    return llmux__log_target_swap(t);
}
