/*
 * yp_export.c — exports of a snapshot for the viewers Python users know
 * (pstats: yp_pstats.c):
 *   callgrind KCachegrind / QCachegrind text format
 *   collapsed "thread;a;b;c N" lines (N = self microseconds) for flamegraph.pl,
 *             speedscope, inferno
 * (the SVG flame graph: yp_flame.c)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yprof/containers.h"
#include "yprof/analyze.h"
#include "yp_export_int.h"
#include "yp_out_int.h"

static int g_by_caller;
static int edge_cmp(const void *x, const void *y) {
    const yp_edge *a = x, *b = y;
    uint32_t ka = g_by_caller ? a->caller : a->callee, kb = g_by_caller ? b->caller : b->callee;
    return ka < kb ? -1 : ka > kb;
}

yp_edge *yp_merged_edges(const yp_stats *s, size_t *n, int by_caller) {
    yp_edge *es = malloc((s->n_edges + 1) * sizeof *es);
    yp_map m = {0};
    size_t ne = 0;
    if (!es) return NULL;
    for (size_t i = 0; i < s->n_edges; i++) {
        const yp_edge *e = &s->edges[i];
        uint64_t key = ((uint64_t)e->caller << 32) | e->callee;
        uint32_t j;
        if (yp_map_get(&m, key, &j)) {
            es[j].ncalls += e->ncalls;
            es[j].primitive_calls += e->primitive_calls;
            es[j].self_s += e->self_s;
            es[j].total_s += e->total_s;
        } else {
            if (yp_map_put(&m, key, (uint32_t)ne)) {
                free(es);
                yp_map_free(&m);
                return NULL;
            }
            es[ne++] = *e;
        }
    }
    yp_map_free(&m);
    g_by_caller = by_caller;
    qsort(es, ne, sizeof *es, edge_cmp);
    *n = ne;
    return es;
}

size_t yp_edge_lower(const yp_edge *es, size_t n, uint32_t func, int by_caller) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t k = by_caller ? es[mid].caller : es[mid].callee;
        if (k < func)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- callgrind --------------------------------------------------------------- */

/* Each edge's inclusive cost as callgrind_annotate and KCachegrind add it
 * up: the callee's time in the calls where it was not already running
 * further up the stack (from the call tree), so a recursive function's
 * time is counted once. Into es[i].total_s; -1 when out of memory. */
static int edge_inclusive(const yp_stats *s, yp_edge *es, size_t ne) {
    yp_map at = {0}; /* (caller, callee) -> index in es */
    for (size_t i = 0; i < ne; i++) {
        es[i].total_s = 0;
        if (yp_map_put(&at, (uint64_t)es[i].caller << 32 | es[i].callee, (uint32_t)i)) {
            yp_map_free(&at);
            return -1;
        }
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        const yp_node *nd = &s->nodes[i];
        if (nd->parent == UINT32_MAX) continue;
        int active = 0;
        for (uint32_t p = nd->parent; p != UINT32_MAX && !active; p = s->nodes[p].parent)
            active = s->nodes[p].func == nd->func;
        uint32_t j;
        uint64_t key = (uint64_t)s->nodes[nd->parent].func << 32 | nd->func;
        if (!active && yp_map_get(&at, key, &j)) es[j].total_s += nd->total_s;
    }
    yp_map_free(&at);
    return 0;
}

yp_status yp_export_callgrind(const yp_stats *s, const char *path) {
    size_t n;
    yp_fstat *tot = yp_stats_totals(s, UINT32_MAX, YP_SORT_TOTAL, &n);
    if (!tot) return YP_ERR_NOMEM;
    size_t ne;
    yp_edge *es = yp_merged_edges(s, &ne, 1);
    if (es && edge_inclusive(s, es, ne)) {
        free(es);
        es = NULL;
    }
    FILE *f = es ? yp_out_open(path, "w") : NULL;
    if (!f) {
        free(tot);
        free(es);
        return es ? YP_ERR_IO : YP_ERR_NOMEM;
    }
    fprintf(f, "# callgrind format\nversion: 1\ncreator: yprof\ncmd: %s\npositions: line\nevents: ns\n\n",
            s->session.command_line);
    for (size_t i = 0; i < n; i++) {
        const yp_func *fn = &s->funcs[tot[i].func];
        fprintf(f, "fl=%s\nfn=%s\n%u %.0f\n", fn->filename[0] ? fn->filename : "~", fn->name, fn->lineno,
                tot[i].self_s * 1e9);
        for (size_t j = yp_edge_lower(es, ne, tot[i].func, 1); j < ne && es[j].caller == tot[i].func; j++) {
            const yp_edge *e = &es[j];
            const yp_func *c = &s->funcs[e->callee];
            /* a frame open when recording began was entered but not counted
             * as a call: 1 here, for with calls=0 callgrind_annotate takes
             * the cost for the caller's own and counts it twice */
            fprintf(f, "cfl=%s\ncfn=%s\ncalls=%llu %u\n%u %.0f\n", c->filename[0] ? c->filename : "~",
                    c->name, (unsigned long long)(e->ncalls ? e->ncalls : 1), c->lineno, fn->lineno,
                    e->total_s * 1e9);
        }
        fputc('\n', f);
    }
    free(tot);
    free(es);
    return yp_out_close(f);
}

/* ---- collapsed stacks --------------------------------------------------------- */

void yp_frame_name(const yp_stats *s, uint32_t func, char *out, size_t n) {
    const yp_func *f = &s->funcs[func];
    if (f->builtin || !f->filename[0]) {
        snprintf(out, n, "%s", f->name);
    } else {
        const char *b = strrchr(f->filename, '/');
        snprintf(out, n, "%s (%s:%u)", f->name, b ? b + 1 : f->filename, f->lineno);
    }
    for (char *p = out; *p; p++)
        if (*p == ';' || *p == '\n') *p = '_';
}

yp_status yp_export_collapsed(const yp_stats *s, const char *path) {
    FILE *f = yp_out_open(path, "w");
    if (!f) return YP_ERR_IO;
    uint32_t *chain = malloc(4096 * sizeof *chain);
    if (!chain) {
        yp_out_close(f);
        return YP_ERR_NOMEM;
    }
    char name[1100];
    for (size_t i = 0; i < s->n_nodes; i++) {
        const yp_node *nd = &s->nodes[i];
        long long us = llround(nd->self_s * 1e6);
        if (us <= 0) continue;
        size_t k = 0;
        for (uint32_t p = (uint32_t)i; p != UINT32_MAX && k < 4096; p = s->nodes[p].parent) chain[k++] = p;
        const char *tn = s->threads[nd->thread].name;
        fprintf(f, "%s", tn[0] ? tn : "thread");
        while (k--) {
            yp_frame_name(s, s->nodes[chain[k]].func, name, sizeof name);
            fprintf(f, ";%s", name);
        }
        fprintf(f, " %lld\n", us);
    }
    free(chain);
    return yp_out_close(f);
}
