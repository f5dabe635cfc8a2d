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
 * Damage and gaps: a return with no matching call is counted (`unmatched`)
 * and ignored; dropped events, the end of a recording interval and the end of
 * a thread close every open frame at that moment, as cProfile's disable()
 * does. A snapshot closes open frames at the thread's last event on copies of
 * the tables, leaving the aggregator as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_agg_int.h"

#define NONE UINT32_MAX
#define NODES_MAX (1u << 21)

yp_agg *yp_agg_new(void) {
    yp_agg *a = calloc(1, sizeof *a);
    if (a) a->ns_per_tick = 1.0;
    return a;
}

void yp_agg_set_ns_per_tick(yp_agg *a, double ns) {
    if (a && ns > 0) a->ns_per_tick = ns;
}

static void thread_free(yp_athread *t) {
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

static int grow(void **p, uint32_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? (size_t)*cap * 2 : 16;
    while (n < need) n *= 2;
    if (n > UINT32_MAX - 1) return -1;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = (uint32_t)n;
    return 0;
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

static yp_athread *get_thread(yp_agg *a, uint32_t id) {
    uint32_t idx;
    if (a->last_thread && a->last_thread->id == id) return a->last_thread;
    if (yp_map_get(&a->tmap, id, &idx)) return a->last_thread = a->threads[idx];
    yp_athread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->id = id;
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

static int frame_open(yp_agg *a, yp_athread *t, uint32_t func_id, uint64_t ts, int counted) {
    if (grow((void **)&t->stack, &t->stack_cap, t->depth + 1, sizeof *t->stack)) return -1;
    yp_frame *top = t->depth ? &t->stack[t->depth - 1] : NULL;
    yp_frame f = {func_id, NONE, NONE, NONE, counted, ts, 0};
    yp_nent *pn = cache_node(t, top);
    if (pn && pn->c_valid && pn->c_func == func_id) {
        f.fidx = pn->c_fidx;
        f.eidx = pn->c_eidx;
        f.nidx = pn->c_node;
        t->fs[f.fidx].active++;
        t->es[f.eidx].active++;
        t->stack[t->depth++] = f;
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
        t->stack[t->depth++] = f;
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
    f.nidx = nentry(a, t, top ? top->nidx : NONE, func_id, t->depth);
    if (t->n_ns != before) { /* a new node: remember its entries if its parent is the caller's own */
        int own = !top || cache_node(t, top);
        t->ns[f.nidx].fidx = own ? f.fidx : NONE;
        t->ns[f.nidx].eidx = f.eidx;
    }
    remember(cache_node(t, top), &f); /* nentry may have moved the array */
    t->stack[t->depth++] = f;
    return 0;
}

/* Tables a frame close writes into: the live ones, or a snapshot's copies. */
typedef struct tables {
    yp_fent *fs;
    yp_eent *es;
    yp_nent *ns;
} tables;

static void close_top(tables *tb, yp_frame *stack, uint32_t *depth, uint64_t ts) {
    yp_frame *f = &stack[*depth - 1];
    uint64_t elapsed = ts > f->start ? ts - f->start : 0;
    uint64_t self = elapsed > f->child ? elapsed - f->child : 0;
    yp_fent *fe = &tb->fs[f->fidx];
    if (--fe->active == 0)
        fe->total += elapsed;
    else if (f->counted)
        fe->rec++;
    fe->ncalls += (uint64_t)f->counted;
    fe->self += self;
    if (f->eidx != NONE) {
        yp_eent *e = &tb->es[f->eidx];
        if (--e->active == 0)
            e->total += elapsed;
        else if (f->counted)
            e->rec++;
        e->ncalls += (uint64_t)f->counted;
        e->self += self;
    }
    if (f->nidx != NONE && (*depth < 2 || stack[*depth - 2].nidx != f->nidx)) {
        yp_nent *n = &tb->ns[f->nidx];
        n->ncalls += (uint64_t)f->counted;
        n->self += self;
        n->total += elapsed;
    }
    (*depth)--;
    if (*depth) stack[*depth - 1].child += elapsed;
}

static void close_all(yp_athread *t, uint64_t ts) {
    tables tb = {t->fs, t->es, t->ns};
    while (t->depth) close_top(&tb, t->stack, &t->depth, ts);
}

static void interval_end(yp_athread *t, uint64_t ts) {
    close_all(t, ts);
    if (t->in_interval) t->wall += ts > t->ival_start ? ts - t->ival_start : 0;
    t->in_interval = 0;
}

static void on_return(yp_athread *t, uint32_t func_id, uint64_t ts) {
    tables tb = {t->fs, t->es, t->ns};
    uint32_t d = t->depth;
    while (d && t->stack[d - 1].func_id != func_id) d--;
    if (!d) { /* no matching call: recording began inside it */
        t->unmatched++;
        return;
    }
    while (t->depth >= d) close_top(&tb, t->stack, &t->depth, ts);
}

/* How an event moves the stack depth (unwinding aside), by kind. */
static const int8_t k_step[16] = {
    [YP_EV_CALL] = 1,    [YP_EV_C_CALL] = 1,    [YP_EV_OPEN] = 1,
    [YP_EV_RETURN] = -1, [YP_EV_C_RETURN] = -1, [YP_EV_UNWIND] = -1,
};

/* With thousands of functions most call-tree lookups miss the cache (the
 * hashed slot is random): start loading the slot of a call LOOKAHEAD events
 * ahead, when its caller is a frame on the stack now. dd is the depth change
 * of the events in between; a wrong guess (an unwind, a dip below and back)
 * only wastes the prefetch. */
#define LOOKAHEAD 16
#define PREFETCH_MIN_SLOTS 16384 /* 256 KiB: smaller maps stay in the cache */

static inline void prefetch_call(const yp_athread *t, const yp_event *e, int64_t dd) {
    int64_t d = (int64_t)t->depth + dd;
    if (dd > 0 || d <= 0) return;
    yp_map_prefetch(&t->nmap, ((uint64_t)(t->stack[d - 1].nidx + 1u) << 32) | e->func_id);
}

yp_status yp_agg_events(yp_agg *a, uint32_t thread_id, const yp_event *ev, size_t n, uint32_t dropped) {
    if (!a || (!ev && n)) return YP_ERR_ARG;
    yp_athread *t = get_thread(a, thread_id);
    if (!t) return YP_ERR_NOMEM;
    yp_status st = YP_OK;
    if (dropped) {
        interval_end(t, t->last_ts);
        t->dropped += dropped;
    }
    int far = t->nmap.cap >= PREFETCH_MIN_SLOTS;
    int64_t dd = 0; /* depth change over events [i, i + LOOKAHEAD) */
    for (size_t j = 0; far && j < n && j < LOOKAHEAD; j++) dd += k_step[ev[j].kind & 15];
    for (size_t i = 0; i < n; i++) {
        if (far && i + LOOKAHEAD < n) {
            int step = k_step[ev[i + LOOKAHEAD].kind & 15];
            if (step > 0) prefetch_call(t, &ev[i + LOOKAHEAD], dd);
            dd += step;
        }
        if (far) dd -= k_step[ev[i].kind & 15];
        uint64_t ts = ev[i].ts < t->last_ts ? t->last_ts : ev[i].ts;
        if (!t->seen) {
            t->seen = 1;
            t->first_ts = ts;
        }
        t->last_ts = ts;
        if (!t->in_interval) {
            t->in_interval = 1;
            t->ival_start = ts;
        }
        switch (ev[i].kind) {
        case YP_EV_CALL:
        case YP_EV_C_CALL:
            if (frame_open(a, t, ev[i].func_id, ts, 1)) st = YP_ERR_NOMEM;
            break;
        case YP_EV_OPEN:
            if (frame_open(a, t, ev[i].func_id, ts, 0)) st = YP_ERR_NOMEM;
            break;
        case YP_EV_RETURN:
        case YP_EV_C_RETURN:
        case YP_EV_UNWIND: on_return(t, ev[i].func_id, ts); break;
        case YP_EV_REC_STOP: interval_end(t, ts); break;
        case YP_EV_THREAD_END:
            interval_end(t, ts);
            t->ended = 1;
            break;
        case YP_EV_DROPPED:
            interval_end(t, ts);
            t->dropped += ev[i].func_id;
            break;
        default: /* THREAD_START, REC_START, unknown: nothing to do */ break;
        }
    }
    t->events += n;
    a->events += n;
    return st;
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
    interval_end(t, t->last_ts);
    t->dropped += lost;
    return YP_OK;
}

/* Threads that have ended hold nothing a cleared snapshot would show: they
 * go, so a server that replaces its threads keeps O(live threads) here. */
static void drop_ended(yp_agg *a) {
    size_t k = 0;
    for (size_t i = 0; i < a->n_threads; i++) {
        yp_athread *t = a->threads[i];
        if (t->ended && !t->depth) {
            a->n_nodes_total -= t->n_ns;
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
            f->ncalls = f->rec = f->self = f->total = 0;
        }
        for (uint32_t j = 0; j < t->n_es; j++) {
            yp_eent *e = &t->es[j];
            e->ncalls = e->rec = e->self = e->total = 0;
        }
        for (uint32_t j = 0; j < t->n_ns; j++) t->ns[j].ncalls = t->ns[j].self = t->ns[j].total = 0;
        for (uint32_t j = 0; j < t->depth; j++) {
            t->stack[j].start = t->last_ts;
            t->stack[j].child = 0;
            t->stack[j].counted = 0;
        }
        t->wall = 0;
        t->ival_start = t->last_ts;
        t->events = t->dropped = t->unmatched = 0;
    }
    a->events = 0;
}

uint64_t yp_agg_events_seen(const yp_agg *a) { return a ? a->events : 0; }

uint64_t yp_agg_bytes(const yp_agg *a) {
    if (!a) return 0;
    uint64_t b = sizeof *a + a->syms_cap * sizeof *a->syms + a->str_bytes + yp_map_bytes(&a->symmap) +
                 yp_map_bytes(&a->tmap);
    for (size_t i = 0; i < a->n_threads; i++) {
        const yp_athread *t = a->threads[i];
        b += sizeof *t + t->fs_cap * sizeof *t->fs + t->es_cap * sizeof *t->es + t->ns_cap * sizeof *t->ns +
             t->stack_cap * sizeof *t->stack + yp_map_bytes(&t->fmap) + yp_map_bytes(&t->emap) +
             yp_map_bytes(&t->nmap);
    }
    return b;
}

/* ---- snapshot ------------------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

/* Appends s and returns its offset (strings are fixed up to pointers later). */
static size_t sb_add(strbuf *b, const char *s) {
    size_t n = strlen(s) + 1;
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 4096;
        while (c < b->len + n) c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->failed = 1;
            return 0;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return b->len - n;
}

#define OFF(x) ((const char *)(uintptr_t)(x))

void yp_stats_free(yp_stats *s) {
    if (!s) return;
    free(s->funcs);
    free(s->threads);
    free(s->fstats);
    free(s->edges);
    free(s->nodes);
    free(s->strings);
    free(s->session_strings);
    free(s);
}

/* Index of func_id in s->funcs, adding an "unknown" entry when needed. */
static uint32_t func_index(yp_stats *s, yp_map *fidx, strbuf *sb, uint32_t func_id, size_t *funcs_cap) {
    uint32_t idx;
    if (yp_map_get(fidx, func_id, &idx)) return idx;
    if (s->n_funcs == *funcs_cap) {
        size_t c = *funcs_cap ? *funcs_cap * 2 : 64;
        yp_func *q = realloc(s->funcs, c * sizeof *q);
        if (!q) return NONE;
        s->funcs = q;
        *funcs_cap = c;
    }
    char name[48];
    snprintf(name, sizeof name, "<unknown function #%u>", func_id);
    yp_func f = {func_id, 0, 0, OFF(sb_add(sb, name)), OFF(sb_add(sb, "")), OFF(sb_add(sb, ""))};
    if (yp_map_put(fidx, func_id, (uint32_t)s->n_funcs)) return NONE;
    s->funcs[s->n_funcs] = f;
    return (uint32_t)s->n_funcs++;
}

static double secs(const yp_agg *a, uint64_t ticks) { return (double)ticks * a->ns_per_tick * 1e-9; }

static int push_arr(void **arr, size_t *n, size_t *cap, size_t elem, const void *item) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        void *q = realloc(*arr, c * elem);
        if (!q) return -1;
        *arr = q;
        *cap = c;
    }
    memcpy((char *)*arr + *n * elem, item, elem);
    (*n)++;
    return 0;
}

yp_stats *yp_agg_snapshot(const yp_agg *a) {
    if (!a) return NULL;
    yp_stats *s = calloc(1, sizeof *s);
    strbuf sb = {0};
    yp_map fidx = {0};
    size_t funcs_cap = 0, fs_cap = 0, es_cap = 0, ns_cap = 0;
    tables tb = {0};
    yp_frame *stack = NULL;
    if (!s) return NULL;
    sb_add(&sb, "");
    for (size_t i = 0; i < a->n_syms; i++) {
        const yp_asym *y = &a->syms[i];
        yp_func f = {y->func_id,
                     y->lineno,
                     y->builtin,
                     OFF(sb_add(&sb, y->name)),
                     OFF(sb_add(&sb, y->module)),
                     OFF(sb_add(&sb, y->filename))};
        if (yp_map_put(&fidx, y->func_id, (uint32_t)s->n_funcs) ||
            push_arr((void **)&s->funcs, &s->n_funcs, &funcs_cap, sizeof f, &f))
            goto fail;
    }
    s->threads = calloc(a->n_threads ? a->n_threads : 1, sizeof *s->threads);
    if (!s->threads) goto fail;
    for (size_t ti = 0; ti < a->n_threads; ti++) {
        const yp_athread *t = a->threads[ti];
        free(tb.fs);
        free(tb.es);
        free(tb.ns);
        free(stack);
        tb.fs = malloc((t->n_fs + 1) * sizeof *tb.fs);
        tb.es = malloc((t->n_es + 1) * sizeof *tb.es);
        tb.ns = malloc((t->n_ns + 1) * sizeof *tb.ns);
        stack = malloc((t->depth + 1) * sizeof *stack);
        if (!tb.fs || !tb.es || !tb.ns || !stack) goto fail;
        if (t->n_fs) memcpy(tb.fs, t->fs, t->n_fs * sizeof *tb.fs);
        if (t->n_es) memcpy(tb.es, t->es, t->n_es * sizeof *tb.es);
        if (t->n_ns) memcpy(tb.ns, t->ns, t->n_ns * sizeof *tb.ns);
        if (t->depth) memcpy(stack, t->stack, t->depth * sizeof *stack);
        uint32_t depth = t->depth;
        while (depth) close_top(&tb, stack, &depth, t->last_ts);

        yp_thread_stat *ts = &s->threads[ti];
        ts->id = t->id;
        ts->ident = t->ident;
        ts->native_id = t->native_id;
        ts->name = OFF(sb_add(&sb, t->name));
        uint64_t wall =
            t->wall + (t->in_interval && t->last_ts > t->ival_start ? t->last_ts - t->ival_start : 0);
        ts->wall_s = secs(a, wall);
        ts->cpu_s = (double)t->cpu_ns * 1e-9;
        ts->events = t->events;
        ts->dropped = t->dropped;
        ts->unmatched = t->unmatched;
        ts->open_frames = t->depth;
        s->n_threads++;

        for (uint32_t j = 0; j < t->n_fs; j++) {
            const yp_fent *f = &tb.fs[j];
            if (!f->ncalls && !f->self && !f->total) continue;
            yp_fstat o = {func_index(s, &fidx, &sb, f->func_id, &funcs_cap),
                          (uint32_t)ti,
                          f->ncalls,
                          f->ncalls - f->rec,
                          secs(a, f->self),
                          secs(a, f->total)};
            if (o.func == NONE || push_arr((void **)&s->fstats, &s->n_fstats, &fs_cap, sizeof o, &o))
                goto fail;
        }
        for (uint32_t j = 0; j < t->n_es; j++) {
            const yp_eent *e = &tb.es[j];
            if (!e->ncalls && !e->self && !e->total) continue;
            yp_edge o = {func_index(s, &fidx, &sb, e->caller, &funcs_cap),
                         func_index(s, &fidx, &sb, e->callee, &funcs_cap),
                         (uint32_t)ti,
                         e->ncalls,
                         e->ncalls - e->rec,
                         secs(a, e->self),
                         secs(a, e->total)};
            if (o.caller == NONE || o.callee == NONE ||
                push_arr((void **)&s->edges, &s->n_edges, &es_cap, sizeof o, &o))
                goto fail;
        }
        size_t base = s->n_nodes;
        for (uint32_t j = 0; j < t->n_ns; j++) {
            const yp_nent *n = &tb.ns[j];
            yp_node o = {n->parent == NONE ? NONE : (uint32_t)(base + n->parent),
                         func_index(s, &fidx, &sb, n->func_id, &funcs_cap),
                         (uint32_t)ti,
                         n->depth,
                         n->ncalls,
                         secs(a, n->self),
                         secs(a, n->total)};
            if (o.func == NONE || push_arr((void **)&s->nodes, &s->n_nodes, &ns_cap, sizeof o, &o)) goto fail;
        }
        s->session.events += t->events;
        s->session.dropped_events += t->dropped;
    }
    /* duration: first to last event over all threads */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t ti = 0; ti < a->n_threads; ti++) {
        const yp_athread *t = a->threads[ti];
        if (!t->seen) continue;
        if (t->first_ts < lo) lo = t->first_ts;
        if (t->last_ts > hi) hi = t->last_ts;
    }
    s->session.duration_s = hi > lo ? secs(a, hi - lo) : 0;
    s->nodes_truncated = a->nodes_truncated;
    if (sb.failed) goto fail;
    /* Fix string offsets up to pointers. */
    s->strings = sb.p;
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
    free(tb.fs);
    free(tb.es);
    free(tb.ns);
    free(stack);
    yp_map_free(&fidx);
    return s;
fail:
    free(tb.fs);
    free(tb.es);
    free(tb.ns);
    free(stack);
    free(sb.p);
    yp_map_free(&fidx);
    s->strings = NULL;
    yp_stats_free(s);
    return NULL;
}
