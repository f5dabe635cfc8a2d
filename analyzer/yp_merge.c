/*
 * yp_merge.c — several processes' statistics as one (yprof-analyze with
 * several traces). Functions are matched by what they are (name, module,
 * file, line, builtin), never by their per-trace ids; threads keep their
 * process; the session sums the processes. Merging two at a time keeps the
 * analyzer's memory at what the merged statistics hold plus one process's.
 */
#include <stdlib.h>
#include <string.h>

#include "yp_strbuf_int.h"
#include "yprof/analyze.h"

#define NONE UINT32_MAX

#define OFF YP_SB_OFF
#define FIX YP_SB_FIX

size_t yp_stats_n_procs(const yp_stats *s) { return s->n_procs ? s->n_procs : 1; }

const yp_session *yp_stats_proc(const yp_stats *s, size_t i) {
    return s->n_procs ? &s->procs[i] : &s->session;
}

/* The merge being built: the result, its strings, the function lookup. */
typedef struct merge {
    yp_stats *m;
    yp_strbuf sb; /* funcs' and threads' strings */
    yp_map fkey;
    size_t funcs_cap;
} merge;

static uint64_t fnv(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return (h ^ 0xFF) * 0x100000001B3ull; /* the terminator: "ab","c" differs from "a","bc" */
}

static uint64_t func_hash(const yp_func *f) {
    uint64_t h = fnv(fnv(fnv(0xCBF29CE484222325ull, f->name), f->module), f->filename);
    h = (h ^ f->lineno) * 0x100000001B3ull;
    h = (h ^ f->builtin) * 0x100000001B3ull;
    return h == YP_MAP_EMPTY ? 0 : h;
}

/* The merged index of f (added when new); NONE when out of memory. The
 * merged strings are offsets until the end, so they are compared through
 * the buffer. */
static uint32_t func_of(merge *g, const yp_func *f) {
    yp_stats *m = g->m;
    for (uint64_t k = func_hash(f);; k = k + 1 == YP_MAP_EMPTY ? 0 : k + 1) {
        uint32_t i;
        if (!yp_map_get(&g->fkey, k, &i)) {
            yp_func n = {(uint32_t)m->n_funcs + 1,
                         f->lineno,
                         f->builtin,
                         OFF(yp_sb_add(&g->sb, f->name)),
                         OFF(yp_sb_add(&g->sb, f->module)),
                         OFF(yp_sb_add(&g->sb, f->filename))};
            if (g->sb.failed || yp_grow((void **)&m->funcs, &g->funcs_cap, m->n_funcs + 1, sizeof n, 256) ||
                yp_map_put(&g->fkey, k, (uint32_t)m->n_funcs))
                return NONE;
            m->funcs[m->n_funcs] = n;
            return (uint32_t)m->n_funcs++;
        }
        const yp_func *o = &m->funcs[i];
        const char *sp = g->sb.p;
        if (o->lineno == f->lineno && o->builtin == f->builtin && !strcmp(sp + (uintptr_t)o->name, f->name) &&
            !strcmp(sp + (uintptr_t)o->module, f->module) &&
            !strcmp(sp + (uintptr_t)o->filename, f->filename))
            return i;
    }
}

/* For each of s's functions, its merged index; NULL when out of memory. */
static uint32_t *func_map(merge *g, const yp_stats *s) {
    uint32_t *fm = malloc((s->n_funcs + 1) * sizeof *fm);
    for (size_t i = 0; fm && i < s->n_funcs; i++)
        if ((fm[i] = func_of(g, &s->funcs[i])) == NONE) {
            free(fm);
            return NULL;
        }
    return fm;
}

/* s's threads, fstats, edges and nodes appended, renumbered. */
static int add_rows(merge *g, const yp_stats *s, const uint32_t *fm, uint32_t proc_base) {
    yp_stats *m = g->m;
    uint32_t t0 = (uint32_t)m->n_threads, n0 = (uint32_t)m->n_nodes;
    for (size_t i = 0; i < s->n_threads; i++) {
        yp_thread_stat t = s->threads[i];
        t.id = (uint32_t)m->n_threads + 1;
        t.process += proc_base;
        t.name = OFF(yp_sb_add(&g->sb, s->threads[i].name));
        m->threads[m->n_threads++] = t;
    }
    for (size_t i = 0; i < s->n_fstats; i++) {
        yp_fstat f = s->fstats[i];
        f.func = fm[f.func], f.thread += t0;
        m->fstats[m->n_fstats++] = f;
    }
    for (size_t i = 0; i < s->n_edges; i++) {
        yp_edge e = s->edges[i];
        e.caller = fm[e.caller], e.callee = fm[e.callee], e.thread += t0;
        m->edges[m->n_edges++] = e;
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        yp_node n = s->nodes[i];
        n.func = fm[n.func], n.thread += t0;
        if (n.parent != NONE) n.parent += n0;
        m->nodes[m->n_nodes++] = n;
    }
    for (size_t i = 0; i < s->n_tagstats; i++) {
        yp_tagstat t = s->tagstats[i];
        t.tag = fm[t.tag], t.f.func = fm[t.f.func], t.f.thread += t0;
        m->tagstats[m->n_tagstats++] = t;
    }
    for (size_t i = 0; i < s->n_tasks; i++) {
        yp_task k = s->tasks[i];
        if (k.func != NONE) k.func = fm[k.func];
        if (k.tag != NONE) k.tag = fm[k.tag];
        if (k.name != NONE) k.name = fm[k.name];
        k.thread += t0;
        m->tasks[m->n_tasks++] = k;
    }
    m->tasks_dropped += s->tasks_dropped;
    return g->sb.failed ? -1 : 0;
}

/* Two functions of one process that are the same function (a module
 * imported twice) have one merged index: their rows are summed. */
static int fstat_cmp(const void *x, const void *y) {
    const yp_fstat *a = x, *b = y;
    if (a->thread != b->thread) return a->thread < b->thread ? -1 : 1;
    return a->func < b->func ? -1 : a->func > b->func;
}

static int edge_cmp(const void *x, const void *y) {
    const yp_edge *a = x, *b = y;
    if (a->thread != b->thread) return a->thread < b->thread ? -1 : 1;
    if (a->caller != b->caller) return a->caller < b->caller ? -1 : 1;
    return a->callee < b->callee ? -1 : a->callee > b->callee;
}

static int tagstat_cmp(const void *x, const void *y) {
    const yp_tagstat *a = x, *b = y;
    if (a->tag != b->tag) return a->tag < b->tag ? -1 : 1;
    return fstat_cmp(&a->f, &b->f);
}

static void sum_tagstats(yp_stats *m) {
    qsort(m->tagstats, m->n_tagstats, sizeof *m->tagstats, tagstat_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m->n_tagstats; i++) {
        yp_tagstat *o = k ? &m->tagstats[k - 1] : NULL, *t = &m->tagstats[i];
        if (o && !tagstat_cmp(o, t)) {
            o->f.ncalls += t->f.ncalls, o->f.primitive_calls += t->f.primitive_calls;
            o->f.self_s += t->f.self_s, o->f.total_s += t->f.total_s, o->f.awaited_s += t->f.awaited_s;
            o->root_s += t->root_s;
        } else {
            m->tagstats[k++] = *t;
        }
    }
    m->n_tagstats = k;
}

static void sum_fstats(yp_stats *m) {
    qsort(m->fstats, m->n_fstats, sizeof *m->fstats, fstat_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m->n_fstats; i++) {
        yp_fstat *o = k ? &m->fstats[k - 1] : NULL, *f = &m->fstats[i];
        if (o && o->func == f->func && o->thread == f->thread) {
            o->ncalls += f->ncalls, o->primitive_calls += f->primitive_calls;
            o->self_s += f->self_s, o->total_s += f->total_s, o->awaited_s += f->awaited_s;
        } else {
            m->fstats[k++] = *f;
        }
    }
    m->n_fstats = k;
}

static void sum_edges(yp_stats *m) {
    qsort(m->edges, m->n_edges, sizeof *m->edges, edge_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m->n_edges; i++) {
        yp_edge *o = k ? &m->edges[k - 1] : NULL, *e = &m->edges[i];
        if (o && o->caller == e->caller && o->callee == e->callee && o->thread == e->thread) {
            o->ncalls += e->ncalls, o->primitive_calls += e->primitive_calls;
            o->self_s += e->self_s, o->total_s += e->total_s;
        } else {
            m->edges[k++] = *e;
        }
    }
    m->n_edges = k;
}

/* m's one process: p, its strings copied. */
static int add_procs_one(yp_stats *m, const yp_session *p);

/* The processes of a then b, their strings in a buffer of their own. */
static int add_procs(yp_stats *m, const yp_stats *a, const yp_stats *b) {
    size_t na = yp_stats_n_procs(a), nb = yp_stats_n_procs(b);
    yp_strbuf sb = {0};
    m->procs = calloc(na + nb, sizeof *m->procs);
    if (!m->procs) return -1;
    for (size_t i = 0; i < na + nb; i++) {
        yp_session p = *(i < na ? yp_stats_proc(a, i) : yp_stats_proc(b, i - na));
        p.trace_path = OFF(yp_sb_add(&sb, p.trace_path));
        p.python_version = OFF(yp_sb_add(&sb, p.python_version));
        p.command_line = OFF(yp_sb_add(&sb, p.command_line));
        m->procs[m->n_procs++] = p;
    }
    if (sb.failed) return -1;
    m->proc_strings = sb.p;
    for (size_t i = 0; i < m->n_procs; i++) {
        FIX(sb.p, m->procs[i].trace_path);
        FIX(sb.p, m->procs[i].python_version);
        FIX(sb.p, m->procs[i].command_line);
    }
    return 0;
}

static int add_procs_one(yp_stats *m, const yp_session *p) {
    yp_strbuf sb = {0};
    yp_session q = *p;
    if (!(m->procs = calloc(1, sizeof *m->procs))) return -1;
    q.trace_path = OFF(yp_sb_add(&sb, p->trace_path));
    q.python_version = OFF(yp_sb_add(&sb, p->python_version));
    q.command_line = OFF(yp_sb_add(&sb, p->command_line));
    if (sb.failed) {
        free(sb.p);
        return -1;
    }
    FIX(sb.p, q.trace_path);
    FIX(sb.p, q.python_version);
    FIX(sb.p, q.command_line);
    m->proc_strings = sb.p;
    m->procs[0] = q;
    m->n_procs = 1;
    return 0;
}

/* The whole family's session: the first process's names, the sums. */
static void sum_session(yp_stats *m) {
    yp_session *ss = &m->session;
    *ss = m->procs[0];
    double first = ss->started_at, last = ss->started_at + ss->duration_s;
    for (size_t i = 1; i < m->n_procs; i++) {
        const yp_session *p = &m->procs[i];
        if (p->started_at < first) first = p->started_at;
        if (p->started_at + p->duration_s > last) last = p->started_at + p->duration_s;
        ss->events += p->events, ss->dropped_events += p->dropped_events;
        ss->hook_s += p->hook_s, ss->flusher_s += p->flusher_s;
        ss->interp_s += p->interp_s, ss->app_s += p->app_s;
        ss->profiler_bytes += p->profiler_bytes, ss->peak_bytes += p->peak_bytes;
        ss->complete = ss->complete && p->complete;
        ss->bad_chunks += p->bad_chunks;
        ss->bytes_read += p->bytes_read, ss->bytes_total += p->bytes_total;
    }
    ss->started_at = first;
    ss->duration_s = last - first;
    ss->pollution_pct = ss->app_s > 0 ? 100.0 * (ss->hook_s + ss->interp_s) / ss->app_s : 0;
    ss->flusher_pct = ss->app_s > 0 ? 100.0 * ss->flusher_s / ss->app_s : 0;
}

/* The result's arrays, at their final sizes at most. */
static int alloc_rows(yp_stats *m, const yp_stats *a, const yp_stats *b) {
    m->threads = malloc((a->n_threads + b->n_threads + 1) * sizeof *m->threads);
    m->fstats = malloc((a->n_fstats + b->n_fstats + 1) * sizeof *m->fstats);
    m->edges = malloc((a->n_edges + b->n_edges + 1) * sizeof *m->edges);
    m->nodes = malloc((a->n_nodes + b->n_nodes + 1) * sizeof *m->nodes);
    m->tagstats = malloc((a->n_tagstats + b->n_tagstats + 1) * sizeof *m->tagstats);
    m->tasks = malloc((a->n_tasks + b->n_tasks + 1) * sizeof *m->tasks);
    return m->threads && m->fstats && m->edges && m->nodes && m->tagstats && m->tasks ? 0 : -1;
}

/* Offsets into the strings become pointers. */
static void fix_strings(yp_stats *m, char *p) {
    m->strings = p;
    for (size_t i = 0; i < m->n_funcs; i++) {
        FIX(p, m->funcs[i].name);
        FIX(p, m->funcs[i].module);
        FIX(p, m->funcs[i].filename);
    }
    for (size_t i = 0; i < m->n_threads; i++) FIX(p, m->threads[i].name);
}

yp_stats *yp_stats_merge(const yp_stats *a, const yp_stats *b) {
    merge g = {0};
    g.m = calloc(1, sizeof *g.m);
    if (!g.m) return NULL;
    yp_stats *m = g.m;
    yp_sb_add(&g.sb, "");
    uint32_t *fa = NULL, *fb = NULL;
    int bad = alloc_rows(m, a, b) || add_procs(m, a, b) || !(fa = func_map(&g, a)) ||
              !(fb = func_map(&g, b)) || add_rows(&g, a, fa, 0) ||
              add_rows(&g, b, fb, (uint32_t)yp_stats_n_procs(a));
    free(fa);
    free(fb);
    yp_map_free(&g.fkey);
    if (bad || g.sb.failed) {
        free(g.sb.p);
        yp_stats_free(m);
        return NULL;
    }
    sum_fstats(m);
    sum_edges(m);
    sum_tagstats(m);
    m->nodes_truncated = a->nodes_truncated + b->nodes_truncated;
    fix_strings(m, g.sb.p);
    sum_session(m);
    return m;
}

/* ---- one thread's statistics ------------------------------------------------ */

/* s's rows of thread ti appended to m (thread index 0), node parents
 * renumbered through map (s's node index -> m's). */
static void thread_rows(yp_stats *m, const yp_stats *s, uint32_t ti, uint32_t *map) {
    for (size_t i = 0; i < s->n_fstats; i++)
        if (s->fstats[i].thread == ti) {
            m->fstats[m->n_fstats] = s->fstats[i];
            m->fstats[m->n_fstats++].thread = 0;
        }
    for (size_t i = 0; i < s->n_edges; i++)
        if (s->edges[i].thread == ti) {
            m->edges[m->n_edges] = s->edges[i];
            m->edges[m->n_edges++].thread = 0;
        }
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].thread != ti) continue;
        yp_node n = s->nodes[i];
        n.thread = 0;
        if (n.parent != NONE) n.parent = map[n.parent];
        map[i] = (uint32_t)m->n_nodes;
        m->nodes[m->n_nodes++] = n;
    }
    for (size_t i = 0; i < s->n_tagstats; i++)
        if (s->tagstats[i].f.thread == ti) {
            m->tagstats[m->n_tagstats] = s->tagstats[i];
            m->tagstats[m->n_tagstats++].f.thread = 0;
        }
    for (size_t i = 0; i < s->n_tasks; i++)
        if (s->tasks[i].thread == ti) {
            m->tasks[m->n_tasks] = s->tasks[i];
            m->tasks[m->n_tasks++].thread = 0;
        }
}

yp_stats *yp_stats_thread(const yp_stats *s, uint32_t ti) {
    yp_stats *m = calloc(1, sizeof *m);
    uint32_t *map = malloc((s->n_nodes + 1) * sizeof *map);
    yp_strbuf sb = {0};
    if (!m || !map || ti >= s->n_threads || alloc_rows(m, s, &(yp_stats){0}) ||
        !(m->funcs = malloc((s->n_funcs + 1) * sizeof *m->funcs)))
        goto fail;
    for (size_t i = 0; i < s->n_funcs; i++) {
        yp_func f = s->funcs[i];
        f.name = OFF(yp_sb_add(&sb, f.name));
        f.module = OFF(yp_sb_add(&sb, f.module));
        f.filename = OFF(yp_sb_add(&sb, f.filename));
        m->funcs[m->n_funcs++] = f;
    }
    m->threads[0] = s->threads[ti];
    m->threads[0].name = OFF(yp_sb_add(&sb, s->threads[ti].name));
    m->n_threads = 1;
    thread_rows(m, s, ti, map);
    if (sb.failed || add_procs_one(m, yp_stats_proc(s, s->threads[ti].process))) goto fail;
    m->threads[0].process = 0;
    fix_strings(m, sb.p);
    m->session = m->procs[0];
    free(map);
    return m;
fail:
    free(map);
    free(sb.p);
    if (m) m->strings = NULL;
    yp_stats_free(m);
    return NULL;
}
