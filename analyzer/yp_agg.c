/*
 * yp_agg.c — stack rebuild and aggregation.
 *
 * Per thread the aggregator keeps the stack of open frames and three tables:
 * function entries, caller->callee edges and call-tree nodes, each an array
 * indexed through a yp_map. A frame remembers the indexes of its three
 * entries, so a return touches no map at all. A call looks up its call-tree
 * node (parent node, function), which names the function and edge entries
 * too; only a path seen for the first time needs all three maps. Memory is O(functions + edges + paths +
 * depth).
 *
 * Recursion is accounted as cProfile does: every entry has an `active` count
 * of its frames on the stack; a return that leaves active > 0 is a recursive
 * call (not primitive) and does not add to total time, so total time counts
 * the outermost activation once.
 *
 * Which events open and close frames is the stack walker's to say
 * (yp_stack_int.h): the aggregator is its user, adding a frame's time to
 * its entries when the walker closes it. A snapshot (yp_agg_snapshot.c)
 * closes open frames at the thread's last event on copies of the tables,
 * leaving the aggregator as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_agg_int.h"

#define NONE YP_AGG_NONE
#define NODES_MAX (1u << 21)

yp_agg *yp_agg_new(void) {
    yp_agg *a = calloc(1, sizeof *a);
    if (a) a->ns_per_tick = 1.0;
    return a;
}

void yp_agg_set_ns_per_tick(yp_agg *a, double ns) {
    if (a && ns > 0) a->ns_per_tick = ns;
}

void yp_agg_set_clock(yp_agg *a, uint32_t clock_kind) {
    if (a) a->cpu_clock = clock_kind == YP_CLOCK_THREAD_CPU;
}

static void thread_free(yp_athread *t) {
    yp_stack_free(&t->st);
    yp_ktab_free(&t->parked);
    yp_agg_task_free(t);
    free(t->gs);
    yp_map_free(&t->gmap);
    free(t->fs);
    free(t->es);
    free(t->ns);
    free(t->stack);
    free(t->name);
    yp_map_free(&t->fmap);
    yp_map_free(&t->emap);
    yp_map_free(&t->nmap);
}

void yp_agg_free(yp_agg *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n_threads; i++) {
        thread_free(a->threads[i]);
        free(a->threads[i]);
    }
    free(a->threads);
    for (size_t i = 0; i < a->n_syms; i++) {
        free(a->syms[i].name);
        free(a->syms[i].module);
        free(a->syms[i].filename);
    }
    free(a->syms);
    yp_map_free(&a->symmap);
    yp_map_free(&a->tmap);
    free(a);
}

/* Entries are indexed by uint32_t (NONE excluded). */
static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    return need >= NONE ? -1 : yp_grow(p, cap, need, elem, 16);
}

static char *dup_str(const char *s) {
    size_t n = s ? strlen(s) : 0;
    char *d = malloc(n + 1);
    if (d) {
        if (n) memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

yp_status yp_agg_symbol(yp_agg *a, const yp_symbol *s) {
    if (!a || !s) return YP_ERR_ARG;
    uint32_t idx;
    char *name = dup_str(s->name), *mod = dup_str(s->module), *file = dup_str(s->filename);
    if (!name || !mod || !file) goto nomem;
    if (yp_map_get(&a->symmap, s->func_id, &idx)) {
        yp_asym *y = &a->syms[idx];
        free(y->name);
        free(y->module);
        free(y->filename);
        y->name = name;
        y->module = mod;
        y->filename = file;
        y->lineno = s->lineno;
        y->builtin = s->builtin;
        return YP_OK;
    }
    if (grow((void **)&a->syms, &a->syms_cap, a->n_syms + 1, sizeof *a->syms) ||
        yp_map_put(&a->symmap, s->func_id, (uint32_t)a->n_syms))
        goto nomem;
    a->syms[a->n_syms++] = (yp_asym){s->func_id, s->lineno, s->builtin, name, mod, file};
    a->str_bytes += strlen(name) + strlen(mod) + strlen(file) + 3;
    return YP_OK;
nomem:
    free(name);
    free(mod);
    free(file);
    return YP_ERR_NOMEM;
}

/* The thread's entry, made on first sight; NULL when out of memory. */
static yp_athread *get_thread(yp_agg *a, uint32_t id) {
    uint32_t idx;
    if (a->last_thread && a->last_thread->id == id) return a->last_thread;
    if (yp_map_get(&a->tmap, id, &idx)) return a->last_thread = a->threads[idx];
    yp_athread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->id = id;
    t->pend_root = t->glet_row = NONE;
    t->name = dup_str("");
    if (!t->name || grow((void **)&a->threads, &a->threads_cap, a->n_threads + 1, sizeof *a->threads) ||
        yp_map_put(&a->tmap, id, (uint32_t)a->n_threads)) {
        free(t->name);
        free(t);
        return NULL;
    }
    a->threads[a->n_threads++] = t;
    return a->last_thread = t;
}

yp_status yp_agg_thread(yp_agg *a, const yp_thread_info *ti) {
    if (!a || !ti) return YP_ERR_ARG;
    yp_athread *t = get_thread(a, ti->thread_id);
    char *name = dup_str(ti->name);
    if (!t || !name) {
        free(name);
        return YP_ERR_NOMEM;
    }
    free(t->name);
    t->name = name;
    t->ident = ti->ident;
    t->native_id = ti->native_id;
    if (ti->cpu_ns) t->cpu_ns = ti->cpu_ns;
    return YP_OK;
}

/* ---- frames ----------------------------------------------------------------- */

static uint32_t fentry(yp_athread *t, uint32_t func_id) {
    uint32_t idx;
    if (yp_map_get(&t->fmap, func_id, &idx)) return idx;
    if (grow((void **)&t->fs, &t->fs_cap, t->n_fs + 1, sizeof *t->fs) ||
        yp_map_put(&t->fmap, func_id, t->n_fs))
        return NONE;
    memset(&t->fs[t->n_fs], 0, sizeof *t->fs);
    t->fs[t->n_fs].func_id = func_id;
    return t->n_fs++;
}

static uint32_t eentry(yp_athread *t, uint32_t caller, uint32_t callee) {
    uint32_t idx;
    uint64_t key = ((uint64_t)caller << 32) | callee;
    if (yp_map_get(&t->emap, key, &idx)) return idx;
    if (grow((void **)&t->es, &t->es_cap, t->n_es + 1, sizeof *t->es) || yp_map_put(&t->emap, key, t->n_es))
        return NONE;
    memset(&t->es[t->n_es], 0, sizeof *t->es);
    t->es[t->n_es].caller = caller;
    t->es[t->n_es].callee = callee;
    return t->n_es++;
}

/* The call-tree node (parent, func_id), made on first sight; past NODES_MAX (or out of memory) the
 * parent itself. */
static uint32_t nentry(yp_agg *a, yp_athread *t, uint32_t parent, uint32_t func_id, uint32_t depth) {
    uint32_t idx;
    uint64_t key = ((uint64_t)(parent + 1u) << 32) | func_id;
    if (yp_map_get(&t->nmap, key, &idx)) return idx;
    if (a->n_nodes_total >= NODES_MAX) {
        a->nodes_truncated++;
        return parent; /* fold deeper paths into the deepest kept node */
    }
    if (grow((void **)&t->ns, &t->ns_cap, t->n_ns + 1, sizeof *t->ns) || yp_map_put(&t->nmap, key, t->n_ns))
        return parent;
    memset(&t->ns[t->n_ns], 0, sizeof *t->ns);
    t->ns[t->n_ns].parent = parent;
    t->ns[t->n_ns].func_id = func_id;
    t->ns[t->n_ns].depth = depth;
    a->n_nodes_total++;
    return t->n_ns++;
}

/* The caller's call-tree node remembers its last callee's three indexes, so
 * the usual case — a loop calling the same function again — needs no map
 * lookup. Only used when the node is the caller's own (not a folded one). */
static inline yp_nent *cache_node(yp_athread *t, const yp_frame *top) {
    if (!top || top->nidx == NONE) return NULL;
    yp_nent *pn = &t->ns[top->nidx];
    return pn->func_id == top->func_id ? pn : NULL;
}

static inline void remember(yp_nent *pn, const yp_frame *f) {
    if (!pn) return;
    pn->c_valid = 1;
    pn->c_func = f->func_id;
    pn->c_fidx = f->fidx;
    pn->c_eidx = f->eidx;
    pn->c_node = f->nidx;
}

/* Where a frame opened by the walker goes: its entries, found from the
 * caller's node where it can be. */
static int frame_open(yp_agg *a, yp_athread *t, uint32_t func_id, uint64_t ts, int counted) {
    uint32_t depth = t->st.depth;
    if (grow((void **)&t->stack, &t->stack_cap, (size_t)depth + 1, sizeof *t->stack)) return -1;
    yp_frame *top = depth ? &t->stack[depth - 1] : NULL;
    yp_frame f = {func_id, NONE, NONE, NONE, counted, NONE, 0, NONE, ts, 0, ts, 0};
    yp_nent *pn = cache_node(t, top);
    if (pn && pn->c_valid && pn->c_func == func_id) {
        f.fidx = pn->c_fidx;
        f.eidx = pn->c_eidx;
        f.nidx = pn->c_node;
        t->fs[f.fidx].active++;
        t->es[f.eidx].active++;
        t->stack[depth] = f;
        return 0;
    }
    /* A node of the caller's own reached before names its function and edge
     * entries too: one map lookup instead of three. */
    uint32_t known;
    if ((!top || pn) &&
        yp_map_get(&t->nmap, ((uint64_t)((top ? top->nidx : NONE) + 1u) << 32) | func_id, &known)) {
        yp_nent *n = &t->ns[known];
        if (n->fidx == NONE) goto lookup;
        f.fidx = n->fidx;
        f.eidx = n->eidx;
        f.nidx = known;
        t->fs[f.fidx].active++;
        if (f.eidx != NONE) t->es[f.eidx].active++;
        remember(pn, &f);
        t->stack[depth] = f;
        return 0;
    }
lookup:
    f.fidx = fentry(t, func_id);
    if (f.fidx == NONE) return -1;
    t->fs[f.fidx].active++;
    if (top) {
        f.eidx = eentry(t, top->func_id, func_id);
        if (f.eidx == NONE) {
            t->fs[f.fidx].active--;
            return -1;
        }
        t->es[f.eidx].active++;
    }
    uint32_t before = t->n_ns;
    f.nidx = nentry(a, t, top ? top->nidx : NONE, func_id, depth);
    if (t->n_ns != before) { /* a new node: remember its entries if its parent is the caller's own */
        int own = !top || cache_node(t, top);
        t->ns[f.nidx].fidx = own ? f.fidx : NONE;
        t->ns[f.nidx].eidx = f.eidx;
    }
    remember(cache_node(t, top), &f); /* nentry may have moved the array */
    t->stack[depth] = f;
    return 0;
}

/* yp_agg_close_frame, inlined into the walk (it runs once per call). */
static inline __attribute__((always_inline)) void close_frame(yp_agg_tables *tb, yp_frame *stack,
                                                              uint32_t depth, uint64_t ts) {
    const yp_frame *f = &stack[depth - 1];
    uint64_t elapsed = ts > f->start ? ts - f->start : 0;
    uint64_t inner = f->child + f->awaited; /* a coroutine's parked time is not its own */
    uint64_t self = elapsed > inner ? elapsed - inner : 0;
    yp_fent *fe = &tb->fs[f->fidx];
    if (--fe->active == 0)
        fe->total += elapsed;
    else if (f->counted)
        fe->rec++;
    fe->ncalls += (uint64_t)f->counted;
    fe->self += self;
    fe->awaited += f->awaited;
    if (__builtin_expect(f->gidx != NONE, 0)) {
        yp_gent *g = &tb->gs[f->gidx];
        if (--g->active == 0)
            g->total += elapsed;
        else if (f->counted)
            g->rec++;
        g->ncalls += (uint64_t)f->counted;
        g->self += self;
        g->awaited += f->awaited;
        g->root += f->groot ? elapsed : 0;
    }
    if (f->eidx != NONE) {
        yp_eent *e = &tb->es[f->eidx];
        if (--e->active == 0)
            e->total += elapsed;
        else if (f->counted)
            e->rec++;
        e->ncalls += (uint64_t)f->counted;
        e->self += self;
    }
    if (f->nidx != NONE && (depth < 2 || stack[depth - 2].nidx != f->nidx)) {
        yp_nent *n = &tb->ns[f->nidx];
        n->ncalls += (uint64_t)f->counted;
        n->self += self;
        n->total += elapsed;
    }
    if (__builtin_expect(f->tidx != NONE, 0)) tb->ks[f->tidx].active += ts > f->seg ? ts - f->seg : 0;
    /* the caller below holds it since it last went on the stack */
    if (depth > 1) stack[depth - 2].child += ts > f->seg ? ts - f->seg : 0;
}

void yp_agg_close_parked(yp_agg_tables *tb, const yp_parked *p, uint64_t ts, int cpu_clock) {
    const yp_frame *f = &p->f;
    uint64_t away = ts > p->since ? ts - p->since : 0;
    uint64_t start = cpu_clock ? f->start + away : f->start, awaited = f->awaited + (cpu_clock ? 0 : away);
    uint64_t elapsed = ts > start ? ts - start : 0, inner = f->child + awaited;
    uint64_t self = elapsed > inner ? elapsed - inner : 0;
    yp_fent *fe = &tb->fs[f->fidx];
    if (fe->active == 0) /* no frame of it on the stack: its parked frames are not recursion */
        fe->total += elapsed;
    else if (f->counted)
        fe->rec++;
    fe->ncalls += (uint64_t)f->counted;
    fe->self += self;
    fe->awaited += awaited;
    if (f->gidx != NONE) {
        yp_gent *g = &tb->gs[f->gidx];
        if (g->active == 0)
            g->total += elapsed;
        else if (f->counted)
            g->rec++;
        g->ncalls += (uint64_t)f->counted;
        g->self += self;
        g->awaited += awaited;
        g->root += f->groot ? elapsed : 0;
    }
    if (f->eidx != NONE) {
        yp_eent *e = &tb->es[f->eidx];
        if (e->active == 0)
            e->total += elapsed;
        else if (f->counted)
            e->rec++;
        e->ncalls += (uint64_t)f->counted;
        e->self += self;
    }
    if (f->nidx != NONE) {
        yp_nent *n = &tb->ns[f->nidx];
        n->ncalls += (uint64_t)f->counted;
        n->self += self;
        n->total += elapsed;
    }
}

void yp_agg_close_frame(yp_agg_tables *tb, yp_frame *stack, uint32_t depth, uint64_t ts) {
    close_frame(tb, stack, depth, ts);
}

/* ---- the walker's operations ------------------------------------------------ */

typedef struct walk_ctx {
    yp_agg *a;
    yp_athread *t;
} walk_ctx;

/* The entry of func_id under tag, made on first sight; NONE when out of memory. */
static uint32_t gentry(yp_athread *t, uint32_t func_id, uint32_t tag) {
    uint32_t idx;
    uint64_t key = ((uint64_t)tag << 32) | func_id;
    if (yp_map_get(&t->gmap, key, &idx)) return idx;
    if (grow((void **)&t->gs, &t->gs_cap, t->n_gs + 1, sizeof *t->gs) || yp_map_put(&t->gmap, key, t->n_gs))
        return NONE;
    memset(&t->gs[t->n_gs], 0, sizeof *t->gs);
    t->gs[t->n_gs].func_id = func_id;
    t->gs[t->n_gs].tag = tag;
    return t->n_gs++;
}

/* A frame opened under a tag: its (function, tag) entry too; it begins
 * the tag's work when its caller (f - 1) is not under the same tag. */
__attribute__((noinline)) static void open_tagged(yp_athread *t, yp_frame *f, int has_caller) {
    uint32_t g = gentry(t, f->func_id, t->st.tag);
    if (g == NONE) return; /* out of memory: counted without its tag */
    f->gidx = g;
    f->groot = !has_caller || f[-1].gidx == NONE || t->gs[f[-1].gidx].tag != t->st.tag;
    t->gs[g].active++;
}

static inline __attribute__((always_inline)) int on_open(void *ctx, uint32_t func_id, uint64_t ts,
                                                         int counted) {
    walk_ctx *w = ctx;
    int rc = frame_open(w->a, w->t, func_id, ts, counted);
    if (__builtin_expect(rc == 0 && w->t->st.tag != 0, 0))
        open_tagged(w->t, &w->t->stack[w->t->st.depth], w->t->st.depth > 0);
    if (__builtin_expect(rc == 0 && (w->t->pend_task | (w->t->pend_root != NONE)), 0))
        yp_agg_task_open(w->a, w->t, &w->t->stack[w->t->st.depth], ts);
    return rc;
}

static inline __attribute__((always_inline)) void on_close(void *ctx, uint64_t ts) {
    yp_athread *t = ((walk_ctx *)ctx)->t;
    yp_agg_tables tb = {t->fs, t->es, t->ns, t->gs, t->ks};
    yp_frame *f = &t->stack[t->st.depth - 1];
    if (__builtin_expect(f->tidx != NONE, 0)) yp_agg_task_leaves(t, f, ts, 1);
    close_frame(&tb, t->stack, t->st.depth, ts);
}

/* A call's node: (caller's node, function); its slot is fetched early. */
static void on_ahead(void *ctx, uint32_t func_id, uint32_t caller_depth) {
    const yp_athread *t = ((walk_ctx *)ctx)->t;
    yp_map_prefetch(&t->nmap, ((uint64_t)(t->stack[caller_depth - 1].nidx + 1u) << 32) | func_id);
}

/* A frame's entries gain or lose an activation (it leaves the stack or
 * comes back: neither is a call). */
static inline void entries_active(const yp_agg_tables *tb, const yp_frame *f, int delta) {
    tb->fs[f->fidx].active += (uint32_t)delta;
    if (f->eidx != NONE) tb->es[f->eidx].active += (uint32_t)delta;
    if (f->gidx != NONE) tb->gs[f->gidx].active += (uint32_t)delta;
}

/* A coroutine suspends: its frame leaves the stack, its entries no longer
 * active (the same function's other coroutines are not recursion), and the
 * frame below counts the stretch it ran as its callee's. */
static int on_park(void *ctx, uint64_t co, uint64_t ts) {
    yp_athread *t = ((walk_ctx *)ctx)->t;
    uint32_t depth = t->st.depth;
    yp_frame *f = &t->stack[depth - 1];
    if (yp_park_put(&t->parked, co, f, ts)) return -1;
    yp_agg_tables tb = {t->fs, t->es, t->ns, t->gs, t->ks};
    entries_active(&tb, f, -1);
    if (f->tidx != NONE) { /* a task's step ends */
        t->ks[f->tidx].active += ts > f->seg ? ts - f->seg : 0;
        yp_agg_task_leaves(t, f, ts, 0);
    }
    if (depth > 1) t->stack[depth - 2].child += ts > f->seg ? ts - f->seg : 0;
    return 0;
}

/* It resumes: back on top; with the wall clock the time away is awaited,
 * with a CPU clock it is not the coroutine's at all (its start moves on). */
static int on_unpark(void *ctx, uint64_t co, uint32_t func_id, uint64_t ts) {
    walk_ctx *w = ctx;
    yp_athread *t = w->t;
    yp_parked p;
    if (!yp_park_take(&t->parked, co, &p)) return 0;
    if (p.f.func_id != func_id) { /* another function's under the same name: it ended unseen */
        yp_agg_tables tb = {t->fs, t->es, t->ns, t->gs, t->ks};
        yp_agg_close_parked(&tb, &p, p.since, w->a->cpu_clock);
        return 0;
    }
    uint32_t depth = t->st.depth;
    if (grow((void **)&t->stack, &t->stack_cap, (size_t)depth + 1, sizeof *t->stack)) {
        yp_park_put(&t->parked, co, &p.f, p.since); /* taken from there: fits again */
        return -1;
    }
    uint64_t away = ts > p.since ? ts - p.since : 0;
    if (w->a->cpu_clock)
        p.f.start += away;
    else
        p.f.awaited += away;
    p.f.seg = ts;
    yp_agg_tables tb = {t->fs, t->es, t->ns, t->gs, t->ks};
    entries_active(&tb, &p.f, +1);
    if (p.f.tidx != NONE) { /* a task's next step */
        t->ks[p.f.tidx].steps++;
        t->ks[p.f.tidx].running = 1;
    }
    t->stack[depth] = p.f;
    return 1;
}

static void on_end_parked(void *ctx, uint64_t ts) {
    walk_ctx *w = ctx;
    yp_athread *t = w->t;
    yp_agg_task_interval_end(t, ts);
    if (!t->parked.n) return;
    yp_agg_tables tb = {t->fs, t->es, t->ns, t->gs, t->ks};
    for (size_t i = 0; i < t->parked.cap; i++) {
        const yp_parked *p = yp_ktab_at(&t->parked, i);
        if (p->key) yp_agg_close_parked(&tb, p, ts, w->a->cpu_clock);
    }
    yp_ktab_free(&t->parked);
}

void yp_agg_frames_back(yp_agg_tables *tb, yp_frame *fr, uint32_t depth, uint64_t away, int cpu_clock) {
    for (uint32_t d = 0; d < depth; d++) {
        yp_frame *f = &fr[d];
        entries_active(tb, f, +1);
        if (cpu_clock)
            f->start += away;
        else
            f->awaited += away;
        f->seg += away; /* its caller's child time is what it ran */
    }
}

/* A greenlet is switched out: its frames go with it (what the walker's
 * user keeps), their entries no longer active, as in another thread. */
static int on_glet_out(void *ctx, uint64_t ts, void **user, size_t *user_cap) {
    yp_athread *t = ((walk_ctx *)ctx)->t;
    (void)ts;
    yp_agg_tables tb = {t->fs, t->es, t->ns, t->gs, t->ks};
    for (uint32_t d = 0; d < t->st.depth; d++) entries_active(&tb, &t->stack[d], -1);
    *user = t->stack;
    *user_cap = t->stack_cap;
    t->stack = NULL;
    t->stack_cap = 0;
    return 0;
}

/* It is back: the time away is its open frames' awaited time (with a CPU
 * clock, not theirs at all). */
static void on_glet_in(void *ctx, const yp_glet *g, uint64_t ts) {
    walk_ctx *w = ctx;
    yp_athread *t = w->t;
    free(t->stack);
    t->stack = g->user;
    t->stack_cap = g->user_cap;
    yp_agg_tables tb = {t->fs, t->es, t->ns, t->gs, t->ks};
    yp_agg_frames_back(&tb, t->stack, g->depth, ts > g->since ? ts - g->since : 0, w->a->cpu_clock);
}

static void on_task(void *ctx, unsigned sub, uint64_t val, uint64_t ts) {
    walk_ctx *w = ctx;
    yp_agg_task_event(w->a, w->t, sub, val, ts);
}

static const yp_stack_ops k_ops = {on_open,       on_close,    on_ahead,   on_park, on_unpark,
                                   on_end_parked, on_glet_out, on_glet_in, on_task};

#define PREFETCH_MIN_SLOTS 16384 /* 256 KiB: smaller maps stay in the cache */

yp_status yp_agg_events(yp_agg *a, uint32_t thread_id, const yp_event *ev, size_t n, uint32_t dropped) {
    if (!a || (!ev && n)) return YP_ERR_ARG;
    yp_athread *t = get_thread(a, thread_id);
    if (!t) return YP_ERR_NOMEM;
    walk_ctx w = {a, t};
    if (dropped) yp_stack_break(&t->st, &k_ops, &w, dropped);
    int rc = yp_stack_walk(&t->st, &k_ops, &w, ev, n, t->nmap.cap >= PREFETCH_MIN_SLOTS);
    a->events += n;
    return rc ? YP_ERR_NOMEM : YP_OK;
}

const char *yp_agg_thread_name(yp_agg *a, uint32_t thread_id) {
    uint32_t idx;
    if (!a || !yp_map_get(&a->tmap, thread_id, &idx)) return "";
    return a->threads[idx]->name ? a->threads[idx]->name : "";
}

yp_status yp_agg_gap(yp_agg *a, uint32_t thread_id, uint64_t lost) {
    if (!a) return YP_ERR_ARG;
    yp_athread *t = get_thread(a, thread_id);
    if (!t) return YP_ERR_NOMEM;
    walk_ctx w = {a, t};
    yp_stack_break(&t->st, &k_ops, &w, lost);
    return YP_OK;
}

/* Threads that have ended hold nothing a cleared snapshot would show: they
 * go, so a server that replaces its threads keeps O(live threads) here. */
static void drop_ended(yp_agg *a) {
    size_t k = 0;
    for (size_t i = 0; i < a->n_threads; i++) {
        yp_athread *t = a->threads[i];
        if (t->st.ended && !t->st.depth) {
            a->n_nodes_total -= t->n_ns;
            a->n_task_rows -= t->n_ks;
            thread_free(t);
            free(t);
            continue;
        }
        a->threads[k++] = t;
    }
    if (k == a->n_threads) return;
    a->n_threads = k;
    a->last_thread = NULL;
    yp_map_free(&a->tmap);
    for (size_t i = 0; i < k; i++) yp_map_put(&a->tmap, a->threads[i]->id, (uint32_t)i);
}

void yp_agg_clear(yp_agg *a) {
    if (!a) return;
    drop_ended(a);
    for (size_t i = 0; i < a->n_threads; i++) {
        yp_athread *t = a->threads[i];
        for (uint32_t j = 0; j < t->n_fs; j++) {
            yp_fent *f = &t->fs[j];
            f->ncalls = f->rec = f->self = f->total = f->awaited = 0;
        }
        for (uint32_t j = 0; j < t->n_es; j++) {
            yp_eent *e = &t->es[j];
            e->ncalls = e->rec = e->self = e->total = 0;
        }
        for (uint32_t j = 0; j < t->n_ns; j++) t->ns[j].ncalls = t->ns[j].self = t->ns[j].total = 0;
        for (uint32_t j = 0; j < t->n_gs; j++) {
            yp_gent *g = &t->gs[j];
            g->ncalls = g->rec = g->self = g->total = g->awaited = g->root = 0;
        }
        for (uint32_t j = 0; j < t->st.depth; j++) {
            t->stack[j].start = t->stack[j].seg = t->st.last_ts;
            t->stack[j].child = t->stack[j].awaited = 0;
            t->stack[j].counted = 0;
        }
        for (size_t j = 0; j < t->parked.cap; j++) { /* from now on, as if suspended since now */
            yp_parked *p = yp_ktab_at(&t->parked, j);
            if (!p->key) continue;
            p->since = p->f.start = p->f.seg = t->st.last_ts;
            p->f.child = p->f.awaited = 0;
            p->f.counted = 0;
        }
        for (size_t j = 0; j < t->st.glets.cap; j++) { /* switched out: as if since now */
            yp_glet *g = yp_ktab_at(&t->st.glets, j);
            if (!g->key || g->closed) continue;
            g->since = t->st.last_ts;
            for (uint32_t k = 0; k < g->depth; k++) {
                yp_frame *f = &((yp_frame *)g->user)[k];
                f->start = f->seg = t->st.last_ts;
                f->child = f->awaited = 0;
                f->counted = 0;
            }
        }
        yp_agg_task_clear(a, t, t->st.last_ts);
        yp_stack_clear(&t->st);
    }
    a->events = 0;
    a->tasks_dropped = 0;
}

uint64_t yp_agg_events_seen(const yp_agg *a) { return a ? a->events : 0; }

uint64_t yp_agg_code_ns(const yp_agg *a, double event_ns) {
    if (!a) return 0;
    double code = 0;
    for (size_t i = 0; i < a->n_threads; i++) {
        const yp_athread *t = a->threads[i];
        double c = 0; /* its C functions' self time, ticks */
        for (uint32_t j = 0; j < t->n_fs; j++) {
            uint32_t idx;
            if (t->fs[j].self && yp_map_get(&a->symmap, t->fs[j].func_id, &idx) && a->syms[idx].builtin)
                c += (double)t->fs[j].self;
        }
        double left = ((double)yp_stack_wall(&t->st) - c) * a->ns_per_tick - event_ns * (double)t->st.events;
        code += left > 0 ? left : 0;
    }
    return (uint64_t)code;
}

/* What the switched-out greenlets' frames hold. */
static size_t yp_agg_glet_bytes(const yp_stack *s) {
    size_t b = 0;
    for (size_t i = 0; i < s->glets.cap; i++) {
        const yp_glet *g = yp_ktab_at(&s->glets, i);
        if (g->key) b += g->user_cap * sizeof(yp_frame);
    }
    return b;
}

uint64_t yp_agg_bytes(const yp_agg *a) {
    if (!a) return 0;
    uint64_t b = sizeof *a + a->syms_cap * sizeof *a->syms + a->str_bytes + yp_map_bytes(&a->symmap) +
                 yp_map_bytes(&a->tmap);
    for (size_t i = 0; i < a->n_threads; i++) {
        const yp_athread *t = a->threads[i];
        b += sizeof *t + t->fs_cap * sizeof *t->fs + t->es_cap * sizeof *t->es + t->ns_cap * sizeof *t->ns +
             t->stack_cap * sizeof *t->stack + yp_stack_bytes(&t->st) + yp_agg_glet_bytes(&t->st) +
             yp_ktab_bytes(&t->parked) + t->gs_cap * sizeof *t->gs + yp_map_bytes(&t->gmap) +
             yp_agg_task_bytes(t) + yp_map_bytes(&t->fmap) + yp_map_bytes(&t->emap) + yp_map_bytes(&t->nmap);
    }
    return b;
}
