/*
 * yp_agg_snapshot.c — an aggregator's statistics as an immutable,
 * self-contained yp_stats in seconds. The frames still open are closed at
 * their thread's last event on copies of the thread's tables (the walker's
 * rule for the end of a stream), so the aggregator goes on unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_agg_int.h"
#include "yp_strbuf_int.h"

#define NONE YP_AGG_NONE

#define OFF YP_SB_OFF

void yp_stats_free(yp_stats *s) {
    if (!s) return;
    free(s->funcs);
    free(s->threads);
    free(s->fstats);
    free(s->edges);
    free(s->nodes);
    free(s->tagstats);
    free(s->tasks);
    free(s->strings);
    free(s->session_strings);
    free(s->procs);
    free(s->proc_strings);
    free(s);
}

/* A snapshot being built: its arrays' capacities, its strings, the index
 * of each function id in s->funcs. */
typedef struct build {
    const yp_agg *a;
    yp_stats *s;
    yp_strbuf sb;
    yp_map fidx;
    size_t funcs_cap, fs_cap, es_cap, ns_cap, gs_cap, ks_cap;
    uint64_t origin;  /* the first event's time: tasks' times are from it */
    yp_agg_tables tb; /* copies of one thread's tables */
    yp_frame *stack;
} build;

static int push_arr(void **arr, size_t *n, size_t *cap, size_t elem, const void *item) {
    if (yp_grow(arr, cap, *n + 1, elem, 64)) return -1;
    memcpy((char *)*arr + *n * elem, item, elem);
    (*n)++;
    return 0;
}

/* Append a function to s->funcs; -1 when out of memory. */
static int add_func(build *b, const yp_func *f) {
    yp_stats *s = b->s;
    if (yp_map_put(&b->fidx, f->id, (uint32_t)s->n_funcs)) return -1;
    return push_arr((void **)&s->funcs, &s->n_funcs, &b->funcs_cap, sizeof *f, f);
}

/* Index of func_id in s->funcs, adding an "unknown" entry when needed;
 * NONE when out of memory. */
static uint32_t func_index(build *b, uint32_t func_id) {
    uint32_t idx;
    if (yp_map_get(&b->fidx, func_id, &idx)) return idx;
    char name[48];
    snprintf(name, sizeof name, "<unknown function #%u>", func_id);
    yp_func f = {
        func_id, 0, 0, OFF(yp_sb_add(&b->sb, name)), OFF(yp_sb_add(&b->sb, "")), OFF(yp_sb_add(&b->sb, ""))};
    return add_func(b, &f) ? NONE : (uint32_t)(b->s->n_funcs - 1);
}

static double secs(const yp_agg *a, uint64_t ticks) { return (double)ticks * a->ns_per_tick * 1e-9; }

/* Switched-out greenlets' frames close too, as if switched back in and
 * ending now. */
static int close_glets(build *b, const yp_athread *t) {
    uint64_t ts = t->st.last_ts;
    for (size_t i = 0; i < t->st.glets.cap; i++) {
        const yp_glet *g = yp_ktab_at(&t->st.glets, i);
        if (!g->key || g->closed || !g->depth) continue;
        yp_frame *fr = malloc(g->depth * sizeof *fr);
        if (!fr) return -1;
        memcpy(fr, g->user, g->depth * sizeof *fr);
        yp_agg_frames_back(&b->tb, fr, g->depth, ts > g->since ? ts - g->since : 0, b->a->cpu_clock);
        for (uint32_t d = g->depth; d; d--) yp_agg_close_frame(&b->tb, fr, d, ts);
        free(fr);
    }
    return 0;
}

/* The thread's tables copied, its open frames closed at its last event. */
static int close_copies(build *b, const yp_athread *t) {
    yp_agg_tables *tb = &b->tb;
    free(tb->fs);
    free(tb->es);
    free(tb->ns);
    free(tb->gs);
    free(tb->ks);
    free(b->stack);
    tb->ks = malloc((t->n_ks + 1) * sizeof *tb->ks);
    tb->fs = malloc((t->n_fs + 1) * sizeof *tb->fs);
    tb->es = malloc((t->n_es + 1) * sizeof *tb->es);
    tb->ns = malloc((t->n_ns + 1) * sizeof *tb->ns);
    tb->gs = malloc((t->n_gs + 1) * sizeof *tb->gs);
    b->stack = malloc(((size_t)t->st.depth + 1) * sizeof *b->stack);
    if (!tb->fs || !tb->es || !tb->ns || !tb->gs || !tb->ks || !b->stack) return -1;
    if (t->n_ks) memcpy(tb->ks, t->ks, t->n_ks * sizeof *tb->ks);
    if (t->glet_row != NONE && tb->ks[t->glet_row].running) /* the running greenlet's stretch so far */
        tb->ks[t->glet_row].active += t->st.last_ts - tb->ks[t->glet_row].since;
    if (t->n_gs) memcpy(tb->gs, t->gs, t->n_gs * sizeof *tb->gs);
    if (t->n_fs) memcpy(tb->fs, t->fs, t->n_fs * sizeof *tb->fs);
    if (t->n_es) memcpy(tb->es, t->es, t->n_es * sizeof *tb->es);
    if (t->n_ns) memcpy(tb->ns, t->ns, t->n_ns * sizeof *tb->ns);
    if (t->st.depth) memcpy(b->stack, t->stack, t->st.depth * sizeof *b->stack);
    for (uint32_t d = t->st.depth; d; d--) yp_agg_close_frame(tb, b->stack, d, t->st.last_ts);
    for (size_t i = 0; i < t->parked.cap; i++) { /* suspended coroutines too, as if ending now */
        const yp_parked *p = yp_ktab_at(&t->parked, i);
        if (p->key) yp_agg_close_parked(tb, p, t->st.last_ts, b->a->cpu_clock);
    }
    return close_glets(b, t);
}

static void thread_row(build *b, const yp_athread *t, yp_thread_stat *ts) {
    ts->id = t->id;
    ts->ident = t->ident;
    ts->native_id = t->native_id;
    ts->name = OFF(yp_sb_add(&b->sb, t->name));
    ts->wall_s = secs(b->a, yp_stack_wall(&t->st));
    ts->cpu_s = (double)t->cpu_ns * 1e-9;
    ts->events = t->st.events;
    ts->dropped = t->st.dropped;
    ts->unmatched = t->st.unmatched;
    ts->open_frames = t->st.depth;
    for (size_t i = 0; i < t->st.glets.cap; i++) {
        const yp_glet *g = yp_ktab_at(&t->st.glets, i);
        if (g->key && !g->closed) ts->open_frames += g->depth;
    }
}

/* Rows of the functions of thread ti that were called or took time. */
static int fstat_rows(build *b, const yp_athread *t, uint32_t ti) {
    for (uint32_t j = 0; j < t->n_fs; j++) {
        const yp_fent *f = &b->tb.fs[j];
        if (!f->ncalls && !f->self && !f->total) continue;
        yp_fstat o = {func_index(b, f->func_id),
                      ti,
                      f->ncalls,
                      f->ncalls - f->rec,
                      secs(b->a, f->self),
                      secs(b->a, f->total),
                      secs(b->a, f->awaited)};
        if (o.func == NONE || push_arr((void **)&b->s->fstats, &b->s->n_fstats, &b->fs_cap, sizeof o, &o))
            return -1;
    }
    return 0;
}

/* Rows of thread ti's calls made under a tag. */
static int tag_rows(build *b, const yp_athread *t, uint32_t ti) {
    for (uint32_t j = 0; j < t->n_gs; j++) {
        const yp_gent *g = &b->tb.gs[j];
        if (!g->ncalls && !g->self && !g->total) continue;
        yp_tagstat o = {func_index(b, g->tag),
                        {func_index(b, g->func_id), ti, g->ncalls, g->ncalls - g->rec, secs(b->a, g->self),
                         secs(b->a, g->total), secs(b->a, g->awaited)},
                        secs(b->a, g->root)};
        if (o.tag == NONE || o.f.func == NONE ||
            push_arr((void **)&b->s->tagstats, &b->s->n_tagstats, &b->gs_cap, sizeof o, &o))
            return -1;
    }
    return 0;
}

static int edge_rows(build *b, const yp_athread *t, uint32_t ti) {
    for (uint32_t j = 0; j < t->n_es; j++) {
        const yp_eent *e = &b->tb.es[j];
        if (!e->ncalls && !e->self && !e->total) continue;
        yp_edge o = {func_index(b, e->caller), func_index(b, e->callee), ti, e->ncalls, e->ncalls - e->rec,
                     secs(b->a, e->self),      secs(b->a, e->total)};
        if (o.caller == NONE || o.callee == NONE ||
            push_arr((void **)&b->s->edges, &b->s->n_edges, &b->es_cap, sizeof o, &o))
            return -1;
    }
    return 0;
}

/* Rows of the call-tree nodes of thread ti, parents as indexes into s->nodes. */
static int node_rows(build *b, const yp_athread *t, uint32_t ti) {
    size_t base = b->s->n_nodes;
    for (uint32_t j = 0; j < t->n_ns; j++) {
        const yp_nent *n = &b->tb.ns[j];
        yp_node o = {n->parent == NONE ? NONE : (uint32_t)(base + n->parent),
                     func_index(b, n->func_id),
                     ti,
                     n->depth,
                     n->ncalls,
                     secs(b->a, n->self),
                     secs(b->a, n->total)};
        if (o.func == NONE || push_arr((void **)&b->s->nodes, &b->s->n_nodes, &b->ns_cap, sizeof o, &o))
            return -1;
    }
    return 0;
}

/* Every function the trace named, in the order it named them. */
static int func_rows(build *b) {
    for (size_t i = 0; i < b->a->n_syms; i++) {
        const yp_asym *y = &b->a->syms[i];
        yp_func f = {y->func_id,
                     y->lineno,
                     y->builtin,
                     OFF(yp_sb_add(&b->sb, y->name)),
                     OFF(yp_sb_add(&b->sb, y->module)),
                     OFF(yp_sb_add(&b->sb, y->filename))};
        if (add_func(b, &f)) return -1;
    }
    return 0;
}

/* Rows of thread ti's tasks. */
static int task_rows(build *b, const yp_athread *t, uint32_t ti) {
    const yp_agg *a = b->a;
    for (uint32_t j = 0; j < t->n_ks; j++) {
        const yp_trow *k = &b->tb.ks[j];
        uint64_t end = k->is_done ? k->done : t->st.last_ts;
        int sym = (k->name & YP_SW_NAME_SYMBOL) != 0;
        yp_task o = {ti,
                     k->kind,
                     k->func_id ? func_index(b, k->func_id) : NONE,
                     k->tag ? func_index(b, k->tag) : NONE,
                     sym ? func_index(b, (uint32_t)k->name) : NONE,
                     0,
                     sym ? 0 : k->name,
                     k->has_created ? secs(a, k->created > b->origin ? k->created - b->origin : 0) : -1,
                     secs(a, k->first > b->origin ? k->first - b->origin : 0),
                     k->is_done ? secs(a, k->done > b->origin ? k->done - b->origin : 0) : -1,
                     secs(a, end > k->first ? end - k->first : 0),
                     secs(a, k->active),
                     k->steps};
        if (push_arr((void **)&b->s->tasks, &b->s->n_tasks, &b->ks_cap, sizeof o, &o)) return -1;
    }
    return 0;
}

/* Per thread: its row, then its function, edge and node rows. */
static int thread_rows(build *b) {
    const yp_agg *a = b->a;
    yp_stats *s = b->s;
    s->threads = calloc(a->n_threads ? a->n_threads : 1, sizeof *s->threads);
    if (!s->threads) return -1;
    for (size_t ti = 0; ti < a->n_threads; ti++) {
        const yp_athread *t = a->threads[ti];
        if (close_copies(b, t)) return -1;
        thread_row(b, t, &s->threads[ti]);
        s->n_threads++;
        if (fstat_rows(b, t, (uint32_t)ti) || edge_rows(b, t, (uint32_t)ti) ||
            node_rows(b, t, (uint32_t)ti) || tag_rows(b, t, (uint32_t)ti) || task_rows(b, t, (uint32_t)ti))
            return -1;
        s->session.events += t->st.events;
        s->session.dropped_events += t->st.dropped;
    }
    return 0;
}

/* The first and last events' times over all threads (lo > hi: none). */
static void time_span(const yp_agg *a, uint64_t *lo, uint64_t *hi) {
    *lo = UINT64_MAX, *hi = 0;
    for (size_t ti = 0; ti < a->n_threads; ti++) {
        const yp_stack *st = &a->threads[ti]->st;
        if (!st->seen) continue;
        if (st->first_ts < *lo) *lo = st->first_ts;
        if (st->last_ts > *hi) *hi = st->last_ts;
    }
}

/* String offsets become pointers into the one buffer. */
static void fix_strings(yp_stats *s, char *strings) {
    s->strings = strings;
#define FIX(x) ((x) = s->strings + (uintptr_t)(x))
    for (size_t i = 0; i < s->n_funcs; i++) {
        FIX(s->funcs[i].name);
        FIX(s->funcs[i].module);
        FIX(s->funcs[i].filename);
    }
    for (size_t i = 0; i < s->n_threads; i++) FIX(s->threads[i].name);
#undef FIX
    s->session.trace_path = s->session.python_version = s->session.command_line = s->strings;
    s->session.clock = "wall";
}

static void build_free(build *b) {
    free(b->tb.fs);
    free(b->tb.es);
    free(b->tb.ns);
    free(b->tb.gs);
    free(b->tb.ks);
    free(b->stack);
    yp_map_free(&b->fidx);
}

yp_stats *yp_agg_snapshot(const yp_agg *a) {
    if (!a) return NULL;
    build b = {0};
    b.a = a;
    b.s = calloc(1, sizeof *b.s);
    if (!b.s) return NULL;
    yp_sb_add(&b.sb, "");
    uint64_t lo, hi;
    time_span(a, &lo, &hi);
    b.origin = lo <= hi ? lo : 0;
    int bad = func_rows(&b) || thread_rows(&b);
    b.s->session.duration_s = hi > lo ? secs(a, hi - lo) : 0; /* first to last event */
    b.s->nodes_truncated = a->nodes_truncated;
    b.s->tasks_dropped = a->tasks_dropped;
    build_free(&b);
    if (bad || b.sb.failed) {
        free(b.sb.p);
        b.s->strings = NULL;
        yp_stats_free(b.s);
        return NULL;
    }
    fix_strings(b.s, b.sb.p);
    return b.s;
}
