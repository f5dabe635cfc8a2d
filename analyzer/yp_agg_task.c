/*
 * yp_agg_task.c — the tasks table (docs/api.md, "Tasks"): one row per
 * asyncio task and per greenlet, built from the SWITCH records' task
 * sub-kinds (docs/format.md, "Greenlets and tasks") and from the frames of
 * the tasks' root coroutines.
 *
 * An asyncio task's row starts at TASK_NEW (its root coroutine's first
 * start: the next frame is the root, which carries the row's index); its
 * steps are the root's stretches on the stack (first start to suspension,
 * each resume to the next suspension or the end), its end the root's
 * return. A greenlet's row starts at its first switch in (its root
 * function: the first frame opened in it), its steps are its stretches
 * switched in, its end the switch out that says it is dead. A live task is
 * found by its identity in `klive` (kind in the key's top bits); a row's
 * index never changes but at clear_stats(), which renumbers.
 */
#include <stdlib.h>
#include <string.h>

#include "yp_agg_int.h"

#define NONE YP_AGG_NONE

typedef struct {
    uint64_t key;
    uint32_t idx, pad;
} klive_rec;
typedef struct {
    uint64_t key;
    uint64_t ts;
} kcreated_rec;

static uint64_t live_key(unsigned kind, uint64_t id) { return ((uint64_t)kind << 56 | id) + 1; }

static uint32_t live_find(yp_athread *t, uint64_t key) {
    const klive_rec *r = yp_ktab_get(&t->klive, key);
    return r ? r->idx : NONE;
}

/* A new row of kind for identity id; NONE past the cap or out of memory
 * (counted in tasks_dropped). */
static uint32_t row_new(yp_agg *a, yp_athread *t, unsigned kind, uint64_t id, uint64_t ts) {
    if (a->n_task_rows >= YP_TASK_ROWS_MAX ||
        yp_grow((void **)&t->ks, &t->ks_cap, (size_t)t->n_ks + 1, sizeof *t->ks, 16)) {
        a->tasks_dropped++;
        return NONE;
    }
    t->klive.elem = sizeof(klive_rec);
    uint64_t key = live_key(kind, id);
    klive_rec *r = yp_ktab_put(&t->klive, key);
    if (!r) {
        a->tasks_dropped++;
        return NONE;
    }
    r->idx = t->n_ks;
    yp_trow *k = &t->ks[t->n_ks];
    memset(k, 0, sizeof *k);
    k->key = key;
    k->kind = (uint8_t)kind;
    k->first = k->since = ts;
    a->n_task_rows++;
    return t->n_ks++;
}

static void row_done(yp_athread *t, yp_trow *k, uint64_t ts) {
    klive_rec gone;
    if (k->key) yp_ktab_take(&t->klive, k->key, &gone);
    k->key = 0;
    k->done = ts;
    k->is_done = 1;
    k->running = 0;
}

static void glet_in(yp_agg *a, yp_athread *t, uint64_t g, uint64_t ts) {
    uint32_t i = live_find(t, live_key(YP_TASK_GREENLET, g));
    if (i == NONE) {
        i = row_new(a, t, YP_TASK_GREENLET, g, ts);
        if (i == NONE) return;
        t->pend_root = i; /* the first frame opened in it */
    }
    yp_trow *k = &t->ks[i];
    k->steps++;
    k->since = ts;
    k->running = 1;
    t->glet_row = i;
}

static void glet_out(yp_athread *t, uint64_t g, uint64_t ts, int dead) {
    t->pend_root = NONE; /* a greenlet that opened no frame: the next greenlet's first is not its root */
    uint32_t i = live_find(t, live_key(YP_TASK_GREENLET, g));
    if (i == NONE) return;
    yp_trow *k = &t->ks[i];
    if (k->running) k->active += ts > k->since ? ts - k->since : 0;
    k->running = 0;
    k->tag = t->st.tag;
    if (dead) row_done(t, k, ts);
    if (t->glet_row == i) t->glet_row = NONE;
}

void yp_agg_task_event(yp_agg *a, yp_athread *t, unsigned sub, uint64_t val, uint64_t ts) {
    switch (sub) {
    case YP_SW_GLET_IN: glet_in(a, t, val, ts); break;
    case YP_SW_GLET_MAIN_IN: t->glet_row = NONE; break;
    case YP_SW_GLET_OUT:
    case YP_SW_GLET_OUT_DEAD: glet_out(t, val, ts, sub == YP_SW_GLET_OUT_DEAD); break;
    case YP_SW_TASK_NAME: t->pend_name = val; break;
    case YP_SW_TASK_OBJ: t->pend_obj = val + 1; break;
    case YP_SW_TASK_NEW: t->pend_task = val + 1; break;
    case YP_SW_TASK_CREATED: {
        t->kcreated.elem = sizeof(kcreated_rec);
        kcreated_rec *r = yp_ktab_put(&t->kcreated, val + 1);
        if (r) r->ts = ts;
        break;
    }
    default: break;
    }
}

void yp_agg_task_open(yp_agg *a, yp_athread *t, yp_frame *f, uint64_t ts) {
    if (t->pend_root != NONE) {
        t->ks[t->pend_root].func_id = f->func_id;
        t->pend_root = NONE;
    }
    if (!t->pend_task) return;
    uint32_t i = row_new(a, t, YP_TASK_ASYNCIO, t->pend_task - 1, ts);
    if (i != NONE) {
        yp_trow *k = &t->ks[i];
        k->func_id = f->func_id;
        k->name = t->pend_name;
        k->steps = 1;
        k->running = 1;
        kcreated_rec c;
        if (t->pend_obj && yp_ktab_take(&t->kcreated, t->pend_obj, &c)) {
            k->created = c.ts;
            k->has_created = 1;
        }
        f->tidx = i;
    }
    t->pend_task = t->pend_name = t->pend_obj = 0;
}

void yp_agg_task_leaves(yp_athread *t, const yp_frame *f, uint64_t ts, int closing) {
    yp_trow *k = &t->ks[f->tidx];
    k->running = 0;
    k->tag = t->st.tag;
    if (closing && !t->st.ending) row_done(t, k, ts);
}

void yp_agg_task_interval_end(yp_athread *t, uint64_t ts) {
    if (t->glet_row != NONE) {
        yp_trow *k = &t->ks[t->glet_row];
        if (k->running) k->active += ts > k->since ? ts - k->since : 0;
        k->running = 0;
        t->glet_row = NONE;
    }
    yp_ktab_free(&t->kcreated);
    t->pend_task = t->pend_name = t->pend_obj = 0;
    t->pend_root = NONE;
}

/* Row indexes after clear_stats() (old index -> new; NONE: gone). */
static void renumber_frames(yp_frame *fr, uint32_t n, const uint32_t *map) {
    for (uint32_t i = 0; i < n; i++)
        if (fr[i].tidx != NONE) fr[i].tidx = map[fr[i].tidx];
}

void yp_agg_task_clear(yp_agg *a, yp_athread *t, uint64_t ts) {
    uint32_t *map = t->n_ks ? malloc(t->n_ks * sizeof *map) : NULL;
    if (t->n_ks && !map) return; /* out of memory: the rows stay */
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->n_ks; i++) {
        yp_trow *r = &t->ks[i];
        if (r->is_done) {
            map[i] = NONE;
            continue;
        }
        r->first = r->since = ts;
        r->active = r->steps = 0;
        r->has_created = 0;
        map[i] = k;
        t->ks[k++] = *r;
    }
    a->n_task_rows -= t->n_ks - k;
    renumber_frames(t->stack, t->st.depth, map);
    for (size_t i = 0; i < t->parked.cap; i++) {
        yp_parked *p = yp_ktab_at(&t->parked, i);
        if (p->key) renumber_frames(&p->f, 1, map);
    }
    for (size_t i = 0; i < t->st.glets.cap; i++) {
        yp_glet *g = yp_ktab_at(&t->st.glets, i);
        if (g->key && !g->closed) renumber_frames(g->user, g->depth, map);
    }
    for (size_t i = 0; i < t->klive.cap; i++) {
        klive_rec *r = yp_ktab_at(&t->klive, i);
        if (r->key) r->idx = map[r->idx]; /* a live row is never a done one */
    }
    if (t->pend_root != NONE) t->pend_root = map[t->pend_root];
    if (t->glet_row != NONE) t->glet_row = map[t->glet_row];
    t->n_ks = k;
    free(map);
}

void yp_agg_task_free(yp_athread *t) {
    free(t->ks);
    yp_ktab_free(&t->klive);
    yp_ktab_free(&t->kcreated);
}

size_t yp_agg_task_bytes(const yp_athread *t) {
    return t->ks_cap * sizeof *t->ks + yp_ktab_bytes(&t->klive) + yp_ktab_bytes(&t->kcreated);
}
