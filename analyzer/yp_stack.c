/* yp_stack.c — the stack walker's out-of-line parts (rules: yp_stack_int.h). */
#include <stdlib.h>
#include <string.h>

#include "yp_stack_int.h"

/* The stack now running leaves with greenlet `from` at ts (0: not named:
 * its frames close). */
static void glet_leave(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t from, uint64_t ts) {
    if (!s->depth) return; /* ended, or nothing recorded yet: forgotten */
    s->glets.elem = sizeof(yp_glet);
    yp_glet *g = from ? yp_ktab_put(&s->glets, from + 1) : NULL;
    if (g && g->depth) { /* one left open under the name: it ended unseen */
        free(g->ids);
        free(g->user);
        memset((char *)g + sizeof g->key, 0, sizeof *g - sizeof g->key);
    }
    if (g && ops->glet_out && ops->glet_out(ctx, ts, &g->user, &g->user_cap)) {
        yp_glet gone;
        yp_ktab_take(&s->glets, from + 1, &gone);
        g = NULL;
    }
    if (!g) {
        yp_stack_close_all(s, ops, ctx, ts);
        return;
    }
    g->since = ts;
    g->ids = s->ids;
    g->cap = s->cap;
    g->depth = s->depth;
    if (!ops->glet_out) {
        yp_stack_close_all(s, ops, ctx, ts);
        g->closed = 1;
    }
    s->ids = NULL;
    s->cap = 0;
    s->depth = 0;
}

/* Greenlet g's frames are the stack again at ts (as OPEN frames when they
 * were closed). */
static int glet_enter(yp_stack *s, const yp_stack_ops *ops, void *ctx, const yp_glet *g, uint64_t ts) {
    free(s->ids);
    s->ids = g->ids;
    s->cap = g->cap;
    s->depth = g->closed ? 0 : g->depth;
    if (!g->closed) {
        ops->glet_in(ctx, g, ts);
        return 0;
    }
    for (uint32_t k = 0; k < g->depth; k++, s->depth++)
        if (ops->open(ctx, s->ids[k], ts, 0)) return -1;
    return 0;
}

static int glet_switch(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t to, uint64_t ts) {
    uint64_t from = s->has_from ? s->glet_from : s->glet;
    s->has_from = 0;
    if (from == to && from) return 0;
    glet_leave(s, ops, ctx, from, ts);
    s->glet = to;
    yp_glet g;
    if (!yp_ktab_take(&s->glets, to + 1, &g)) return 0; /* a new greenlet: no frame yet */
    return glet_enter(s, ops, ctx, &g, ts);
}

int yp_stack_sw(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t v, uint64_t ts) {
    unsigned sub = (unsigned)(v >> 48);
    uint64_t val = v & YP_SW_VAL_MAX;
    if (ops->task) ops->task(ctx, sub, val, ts);
    switch (sub) {
    case YP_SW_GLET_OUT:
    case YP_SW_GLET_OUT_DEAD:
        s->glet_from = val;
        s->has_from = 1;
        return 0;
    case YP_SW_GLET_IN:
    case YP_SW_GLET_MAIN_IN: return glet_switch(s, ops, ctx, val, ts);
    default: return 0; /* tasks' records, and sub-kinds this reader does not know */
    }
}

void yp_stack_end_glets(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t ts) {
    for (size_t i = 0; i < s->glets.cap; i++) {
        yp_glet *g = yp_ktab_at(&s->glets, i);
        if (!g->key) continue;
        if (g->closed) {
            free(g->ids);
            continue;
        }
        glet_enter(s, ops, ctx, g, ts);
        yp_stack_close_all(s, ops, ctx, ts);
    }
    yp_ktab_free(&s->glets);
    s->glet = 0;
    s->has_from = 0;
}

const int8_t yp_stack_step[16] = {
    [YP_EV_CALL] = 1,      [YP_EV_C_CALL] = 1,  [YP_EV_OPEN] = 1,   [YP_EV_RETURN] = -1,
    [YP_EV_C_RETURN] = -1, [YP_EV_UNWIND] = -1, [YP_EV_RESUME] = 1, [YP_EV_SUSPEND] = -1,
};

void yp_stack_clear(yp_stack *s) {
    s->wall = 0;
    s->ival_start = s->last_ts;
    s->events = s->dropped = s->unmatched = 0;
}

uint64_t yp_stack_wall(const yp_stack *s) {
    return s->wall + (s->in_interval && s->last_ts > s->ival_start ? s->last_ts - s->ival_start : 0);
}

size_t yp_stack_bytes(const yp_stack *s) {
    size_t b = s->cap * sizeof *s->ids + yp_ktab_bytes(&s->glets);
    for (size_t i = 0; i < s->glets.cap; i++) {
        const yp_glet *g = yp_ktab_at(&s->glets, i);
        if (g->key) b += g->cap * sizeof *g->ids;
    }
    return b;
}

void yp_stack_free(yp_stack *s) {
    for (size_t i = 0; i < s->glets.cap; i++) {
        yp_glet *g = yp_ktab_at(&s->glets, i);
        if (!g->key) continue;
        free(g->ids);
        free(g->user); /* a user's keep is one malloc'd block */
    }
    yp_ktab_free(&s->glets);
    free(s->ids);
    s->ids = NULL;
    s->cap = s->depth = 0;
}
