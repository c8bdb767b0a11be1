/*
 * core/choice.c: the choices of a response or chunk: their text, tool
 * calls, finish reasons, logprobs and the fields not modelled (extra.c),
 * kept in index order; how a stream's chunk choices fold into the
 * response's; and the public llmux_choice_* accessors.
 */
#include <string.h>

#include "internal.h"

/* ---- logprobs ------------------------------------------------------------ */

static void lp_entry_free(llmux_logprob *e)
{
    llmux__free((char *)e->token);
    llmux__free((unsigned char *)e->bytes);
    e->token = NULL;
    e->bytes = NULL;
}

static void lp_clear(llmux__lp_list *l, int keep)
{
    size_t i, k;
    for (i = 0; i < l->n; i++) {
        llmux__lp *e = &l->v[i];
        for (k = 0; k < e->pub.n_top; k++)
            lp_entry_free(&e->top[k]);
        llmux__free(e->top);
        e->top = NULL;
        e->cap_top = 0;
        lp_entry_free(&e->pub);
    }
    l->n = 0;
    l->set = 0;
    if (!keep) {
        llmux__free(l->v);
        l->v = NULL;
        l->cap = 0;
    }
}

static int lp_fill(llmux_logprob *e, const char *token, size_t len,
                   double logprob, const unsigned char *bytes, size_t n_bytes)
{
    unsigned char *b = NULL;
    char *t = llmux__strndup_utf8(token, len);
    if (!t)
        return LLMUX_ENOMEM;
    if (bytes) {
        if (!(b = llmux__malloc(n_bytes ? n_bytes : 1))) {
            llmux__free(t);
            return LLMUX_ENOMEM;
        }
        if (n_bytes)
            memcpy(b, bytes, n_bytes);
    }
    memset(e, 0, sizeof *e);
    e->token = t;
    e->logprob = logprob;
    e->bytes = b;
    e->n_bytes = b ? n_bytes : 0;
    return 0;
}

/* An alternative for the list's last token. */
static int lp_add_top(llmux__lp_list *l, const char *token, size_t len,
                      double logprob, const unsigned char *bytes,
                      size_t n_bytes)
{
    llmux__lp *last;
    int rc;
    if (!l->n)
        return LLMUX_EINVAL;
    last = &l->v[l->n - 1];
    if (last->pub.n_top == last->cap_top) {
        size_t cap = last->cap_top ? last->cap_top * 2 : 4;
        llmux_logprob *n = llmux__realloc(last->top, cap * sizeof *n);
        if (!n)
            return LLMUX_ENOMEM;
        last->top = n;
        last->pub.top = n; /* moved: never left pointing at the old array */
        last->cap_top = cap;
    }
    rc = lp_fill(&last->top[last->pub.n_top], token, len, logprob, bytes,
                 n_bytes);
    if (rc)
        return rc;
    last->pub.n_top++;
    last->pub.top = last->top;
    return 0;
}

int llmux__choice_logprob(struct llmux_choice *c, int list, const char *token,
                          size_t len, double logprob,
                          const unsigned char *bytes, size_t n_bytes, int top)
{
    llmux__lp_list *l;
    llmux__lp *e;
    int rc;
    if (list != LLMUX_LOGPROBS_CONTENT && list != LLMUX_LOGPROBS_REFUSAL)
        return LLMUX_EINVAL;
    l = &c->lp[list];
    if (!token) {
        if (top)
            return LLMUX_EINVAL;
        l->set = 1;
        return 0;
    }
    if (top) {
        if ((rc = lp_add_top(l, token, len, logprob, bytes, n_bytes)) == 0)
            l->set = 1;
        return rc;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        llmux__lp *n = llmux__realloc(l->v, cap * sizeof *n);
        if (!n)
            return LLMUX_ENOMEM;
        l->v = n;
        l->cap = cap;
    }
    e = &l->v[l->n];
    e->top = NULL;
    e->cap_top = 0;
    if ((rc = lp_fill(&e->pub, token, len, logprob, bytes, n_bytes)) != 0)
        return rc;
    l->n++;
    l->set = 1;
    return 0;
}

/* Appends a copy of list `from` to `to`. */
static int lp_merge(struct llmux_choice *acc, int list,
                    const llmux__lp_list *from)
{
    size_t i, k;
    int rc;
    if (!from->set)
        return 0;
    acc->lp[list].set = 1;
    for (i = 0; i < from->n; i++) {
        const llmux_logprob *e = &from->v[i].pub;
        if ((rc = llmux__choice_logprob(acc, list, e->token, strlen(e->token),
                                        e->logprob, e->bytes, e->n_bytes, 0)))
            return rc;
        for (k = 0; k < e->n_top; k++) {
            const llmux_logprob *t = &e->top[k];
            if ((rc = llmux__choice_logprob(acc, list, t->token,
                                            strlen(t->token), t->logprob,
                                            t->bytes, t->n_bytes, 1)))
                return rc;
        }
    }
    return 0;
}

/* ---- tool calls ---------------------------------------------------------- */

llmux__call_slot *llmux__choice_slot(struct llmux_choice *c, int index)
{
    size_t i;
    llmux__call_slot *s;
    for (i = 0; i < c->n_calls; i++)
        if (c->calls[i].pub.index == index)
            return &c->calls[i];
    if (c->n_calls == c->cap_calls) {
        size_t cap = c->cap_calls ? c->cap_calls * 2 : 2;
        llmux__call_slot *n = llmux__realloc(c->calls, cap * sizeof *n);
        if (!n)
            return NULL;
        memset(n + c->cap_calls, 0, (cap - c->cap_calls) * sizeof *n);
        c->calls = n;
        c->cap_calls = cap;
    }
    /* keep the calls ordered by index; the spare slot at the end may own
     * an argument buffer from an earlier use: move it into place */
    {
        size_t pos = c->n_calls;
        llmux__call_slot spare = c->calls[c->n_calls];
        while (pos > 0 && c->calls[pos - 1].pub.index > index)
            pos--;
        memmove(&c->calls[pos + 1], &c->calls[pos],
                (c->n_calls - pos) * sizeof *c->calls);
        c->calls[pos] = spare;
        c->n_calls++;
        s = &c->calls[pos];
    }
    s->id = s->name = NULL;
    llmux__buf_reset(&s->args);
    s->pub.index = index;
    s->pub.id = s->pub.name = NULL;
    s->pub.arguments = "";
    return s;
}

int llmux__out_slot_update(llmux__call_slot *s, const char *id, size_t id_len,
                           const char *name, size_t name_len, const char *args,
                           size_t args_len)
{
    if (id && llmux__set_text(&s->id, id, id_len))
        return LLMUX_ENOMEM;
    if (name && llmux__set_text(&s->name, name, name_len))
        return LLMUX_ENOMEM;
    if (args_len && llmux__buf_append_utf8(&s->args, args, args_len))
        return LLMUX_ENOMEM;
    s->pub.id = s->id;
    s->pub.name = s->name;
    s->pub.arguments = s->args.p ? s->args.p : "";
    return 0;
}

/* ---- choices ------------------------------------------------------------- */

void llmux__choice_clear(struct llmux_choice *c, int keep)
{
    size_t i;
    llmux__free(c->finish_raw);
    c->finish_raw = NULL;
    c->finish = 0;
    for (i = 0; i < c->n_calls; i++) {
        llmux__free(c->calls[i].id);
        llmux__free(c->calls[i].name);
        c->calls[i].id = c->calls[i].name = NULL;
        if (keep)
            llmux__buf_reset(&c->calls[i].args);
        else
            llmux__buf_free(&c->calls[i].args);
    }
    if (!keep) /* slots beyond n_calls may still own argument buffers */
        for (i = c->n_calls; i < c->cap_calls; i++)
            llmux__buf_free(&c->calls[i].args);
    c->n_calls = 0;
    lp_clear(&c->lp[0], keep);
    lp_clear(&c->lp[1], keep);
    (void)llmux__extra_flush(&c->grow); /* its references go first */
    llmux__extra_free(&c->extra[0]);
    llmux__extra_free(&c->extra[1]);
    if (keep) {
        llmux__buf_reset(&c->text);
        llmux__buf_reset(&c->reasoning);
        llmux__buf_reset(&c->refusal);
    } else {
        llmux__buf_free(&c->text);
        llmux__buf_free(&c->reasoning);
        llmux__buf_free(&c->refusal);
        llmux__free(c->calls);
        c->calls = NULL;
        c->cap_calls = 0;
    }
}

struct llmux_choice *llmux__out_choice(struct llmux_out *o, int index)
{
    size_t i, pos;
    struct llmux_choice spare;
    /* most lookups are for the choice last added (n = 1 above all) */
    if (o->n_choices && o->choices[o->n_choices - 1].index == index)
        return &o->choices[o->n_choices - 1];
    for (i = 0; i < o->n_choices; i++)
        if (o->choices[i].index == index)
            return &o->choices[i];
    if (o->n_choices == o->cap_choices) {
        size_t cap = o->cap_choices ? o->cap_choices * 2 : 1;
        struct llmux_choice *n = llmux__realloc(o->choices, cap * sizeof *n);
        if (!n)
            return NULL;
        memset(n + o->cap_choices, 0, (cap - o->cap_choices) * sizeof *n);
        o->choices = n;
        o->cap_choices = cap;
    }
    /* in index order; the spare slot at the end keeps its buffers */
    pos = o->n_choices;
    spare = o->choices[pos];
    while (pos > 0 && o->choices[pos - 1].index > index)
        pos--;
    memmove(&o->choices[pos + 1], &o->choices[pos],
            (o->n_choices - pos) * sizeof *o->choices);
    o->choices[pos] = spare;
    o->choices[pos].index = index;
    o->n_choices++;
    return &o->choices[pos];
}

int llmux__choice_has_content(const struct llmux_choice *c)
{
    return c->text.len || c->reasoning.len || c->refusal.len || c->n_calls ||
           c->finish || c->finish_raw || c->lp[0].set || c->lp[1].set ||
           c->extra[0] || c->extra[1];
}

int llmux__choice_merge(struct llmux_choice *acc, const struct llmux_choice *ch)
{
    size_t i;
    int rc;
    if (ch->text.len && llmux__buf_append(&acc->text, ch->text.p, ch->text.len))
        return LLMUX_ENOMEM;
    if (ch->reasoning.len &&
        llmux__buf_append(&acc->reasoning, ch->reasoning.p, ch->reasoning.len))
        return LLMUX_ENOMEM;
    if (ch->refusal.len &&
        llmux__buf_append(&acc->refusal, ch->refusal.p, ch->refusal.len))
        return LLMUX_ENOMEM;
    if (ch->finish)
        acc->finish = ch->finish;
    if (ch->finish_raw && llmux__set_str(&acc->finish_raw, ch->finish_raw,
                                         strlen(ch->finish_raw)))
        return LLMUX_ENOMEM;
    for (i = 0; i < ch->n_calls; i++) {
        const llmux__call_slot *c = &ch->calls[i];
        llmux__call_slot *s = llmux__choice_slot(acc, c->pub.index);
        if (!s || llmux__out_slot_update(s, c->id, c->id ? strlen(c->id) : 0,
                                         c->name, c->name ? strlen(c->name) : 0,
                                         c->args.p, c->args.len))
            return LLMUX_ENOMEM;
    }
    if ((rc = lp_merge(acc, 0, &ch->lp[0])) != 0 ||
        (rc = lp_merge(acc, 1, &ch->lp[1])) != 0)
        return rc;
    /* a choice's own fields are restated by each event (Azure's
     * content_filter_results): the last one wins; its message's come as
     * deltas and accumulate */
    if ((rc = llmux__extra_merge(&acc->extra[0], ch->extra[0], NULL)) != 0 ||
        (rc = llmux__extra_merge(&acc->extra[1], ch->extra[1], &acc->grow)) !=
            0)
        return rc;
    return 0;
}

/* ---- public accessors ---------------------------------------------------- */

LLMUX_EXTERN int llmux_choice_index(const llmux_choice *c)
{
    return c ? c->index : -1;
}

LLMUX_EXTERN const char *llmux_choice_text(const llmux_choice *c, size_t *len)
{
    if (len)
        *len = c ? c->text.len : 0;
    return c && c->text.p ? c->text.p : "";
}

LLMUX_EXTERN const char *llmux_choice_reasoning(const llmux_choice *c)
{
    return c && c->reasoning.len ? c->reasoning.p : NULL;
}

LLMUX_EXTERN const char *llmux_choice_refusal(const llmux_choice *c)
{
    return c && c->refusal.len ? c->refusal.p : NULL;
}

LLMUX_EXTERN llmux_finish llmux_choice_finish(const llmux_choice *c)
{
    return c ? (llmux_finish)c->finish : LLMUX_FINISH_NONE;
}

LLMUX_EXTERN const char *llmux_choice_finish_raw(const llmux_choice *c)
{
    return c ? c->finish_raw : NULL;
}

LLMUX_EXTERN size_t llmux_choice_tool_call_count(const llmux_choice *c)
{
    return c ? c->n_calls : 0;
}

LLMUX_EXTERN const llmux_tool_call *
llmux_choice_tool_call(const llmux_choice *c, size_t i)
{
    return c && i < c->n_calls ? &c->calls[i].pub : NULL;
}

static const llmux__lp_list *lp_list(const llmux_choice *c, int list)
{
    if (!c ||
        (list != LLMUX_LOGPROBS_CONTENT && list != LLMUX_LOGPROBS_REFUSAL))
        return NULL;
    return &c->lp[list];
}

LLMUX_EXTERN int llmux_choice_has_logprobs(const llmux_choice *c,
                                           llmux_logprobs_list list)
{
    const llmux__lp_list *l = lp_list(c, (int)list);
    return l ? l->set : 0;
}

LLMUX_EXTERN size_t llmux_choice_logprob_count(const llmux_choice *c,
                                               llmux_logprobs_list list)
{
    const llmux__lp_list *l = lp_list(c, (int)list);
    return l ? l->n : 0;
}

LLMUX_EXTERN const llmux_logprob *
llmux_choice_logprob(const llmux_choice *c, llmux_logprobs_list list, size_t i)
{
    const llmux__lp_list *l = lp_list(c, (int)list);
    return l && i < l->n ? &l->v[i].pub : NULL;
}

LLMUX_EXTERN const char *llmux_choice_field(const llmux_choice *c,
                                            const char *key)
{
    const char *v;
    if (!c)
        return NULL;
    v = llmux__extra_get(c->extra[LLMUX__X_MESSAGE], key);
    return v ? v : llmux__extra_get(c->extra[LLMUX__X_CHOICE], key);
}
