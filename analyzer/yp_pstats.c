/*
 * yp_pstats.c — the pstats export: the marshal'd dict pstats.Stats loads
 * (python -m pstats, snakeviz, gprof2dot, tuna), keyed as cProfile keys
 * it, by (filename, first line, name). Functions that share that key (a
 * module imported twice, under two names) are one entry, their figures
 * and their callers' summed: a dict cannot hold both, and dropping one
 * would lose its calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_export_int.h"
#include "yp_out_int.h"

/* ---- marshal --------------------------------------------------------------- */

static void m_u32(FILE *f, uint32_t v) {
    for (int i = 0; i < 4; i++) fputc((int)((v >> (8 * i)) & 0xFF), f);
}

/* v in marshal format: TYPE_INT, or TYPE_LONG beyond 31 bits. */
static void m_int(FILE *f, uint64_t v) {
    if (v <= 0x7FFFFFFF) {
        fputc('i', f);
        m_u32(f, (uint32_t)v);
        return;
    }
    /* TYPE_LONG: digit count, then 15-bit digits, least significant first */
    uint16_t d[5];
    int n = 0;
    while (v) {
        d[n++] = (uint16_t)(v & 0x7FFF);
        v >>= 15;
    }
    fputc('l', f);
    m_u32(f, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        fputc(d[i] & 0xFF, f);
        fputc(d[i] >> 8, f);
    }
}

static void m_float(FILE *f, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    fputc('g', f);
    for (int i = 0; i < 8; i++) fputc((int)((v >> (8 * i)) & 0xFF), f);
}

static void m_str(FILE *f, const char *s) {
    size_t n = strlen(s);
    fputc('u', f);
    m_u32(f, (uint32_t)n);
    fwrite(s, 1, n, f);
}

/* cProfile's label of a function: (filename, firstlineno, co_name) for
 * Python code, ('~', 0, its label) for C functions: by the symbol's kind
 * (docs/format.md, symbols) as _lsprof's normalizeUserObj makes it. The
 * name goes to buf. */
static void label_of(const yp_func *fn, const char **file, uint32_t *line, char *buf, size_t n) {
    const char *dot = strrchr(fn->name, '.');
    int in_builtins = !fn->module[0] || !strcmp(fn->module, "builtins");
    if (fn->builtin == YP_C_BOUND) {
        snprintf(buf, n, "<built-in method %s>", dot ? dot + 1 : fn->name);
    } else if (fn->builtin == YP_C_STATIC) {
        snprintf(buf, n, in_builtins ? "<%s%s>" : "<%s.%s>", in_builtins ? "" : fn->module, fn->name);
    } else if (fn->builtin && dot) { /* the type: its tp_name, module-qualified unless builtins */
        snprintf(buf, n, "<method '%s' of '%s%s%.*s' objects>", dot + 1, in_builtins ? "" : fn->module,
                 in_builtins ? "" : ".", (int)(dot - fn->name), fn->name);
    } else if (fn->builtin) {
        snprintf(buf, n, fn->module[0] ? "<built-in method %s.%s>" : "<built-in method %s%s>", fn->module,
                 fn->name);
    }
    if (fn->builtin) {
        *file = "~";
        *line = 0;
    } else {
        snprintf(buf, n, "%s", dot ? dot + 1 : fn->name);
        *file = fn->filename;
        *line = fn->lineno;
    }
}

static void m_label(FILE *f, const yp_func *fn) {
    char buf[1200];
    const char *file;
    uint32_t line;
    label_of(fn, &file, &line, buf, sizeof buf);
    fputc('(', f);
    m_u32(f, 3);
    m_str(f, file);
    m_int(f, line);
    m_str(f, buf);
}

/* ---- functions that share a label --------------------------------------------- */

typedef struct {
    char *key; /* "file\nline\nname" */
    uint32_t func;
} labeled;

static int labeled_cmp(const void *x, const void *y) {
    const labeled *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->func < b->func ? -1 : a->func > b->func);
}

/* rep[i]: the first function (lowest index) with funcs[i]'s label; NULL
 * when out of memory. */
static uint32_t *label_groups(const yp_stats *s) {
    uint32_t *rep = malloc((s->n_funcs + 1) * sizeof *rep);
    labeled *l = calloc(s->n_funcs + 1, sizeof *l);
    int ok = rep && l;
    for (size_t i = 0; ok && i < s->n_funcs; i++) {
        char buf[1200], line[16];
        const char *file;
        uint32_t ln;
        label_of(&s->funcs[i], &file, &ln, buf, sizeof buf);
        snprintf(line, sizeof line, "%u", ln);
        size_t n = strlen(file) + strlen(line) + strlen(buf) + 3;
        l[i].func = (uint32_t)i;
        if (!(l[i].key = malloc(n)))
            ok = 0;
        else
            snprintf(l[i].key, n, "%s\n%s\n%s", file, line, buf);
    }
    if (ok) {
        qsort(l, s->n_funcs, sizeof *l, labeled_cmp);
        for (size_t i = 0; i < s->n_funcs; i++)
            rep[l[i].func] = i && !strcmp(l[i].key, l[i - 1].key) ? rep[l[i - 1].func] : l[i].func;
    }
    for (size_t i = 0; l && i < s->n_funcs; i++) free(l[i].key);
    free(l);
    if (!ok) {
        free(rep);
        return NULL;
    }
    return rep;
}

static int edge_by_callee(const void *x, const void *y) {
    const yp_edge *a = x, *b = y;
    if (a->callee != b->callee) return a->callee < b->callee ? -1 : 1;
    return a->caller < b->caller ? -1 : a->caller > b->caller;
}

/* The edges with caller and callee replaced by their group's function,
 * summed, sorted by callee; *n their number. */
static yp_edge *grouped_edges(const yp_stats *s, const uint32_t *rep, size_t *n) {
    size_t ne;
    yp_edge *es = yp_merged_edges(s, &ne, 0);
    if (!es) return NULL;
    for (size_t i = 0; i < ne; i++) {
        es[i].caller = rep[es[i].caller];
        es[i].callee = rep[es[i].callee];
    }
    qsort(es, ne, sizeof *es, edge_by_callee);
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        if (k && es[k - 1].caller == es[i].caller && es[k - 1].callee == es[i].callee) {
            es[k - 1].ncalls += es[i].ncalls;
            es[k - 1].primitive_calls += es[i].primitive_calls;
            es[k - 1].self_s += es[i].self_s;
            es[k - 1].total_s += es[i].total_s;
        } else {
            es[k++] = es[i];
        }
    }
    *n = k;
    return es;
}

/* The totals of every group, at its function's index (func = UINT32_MAX:
 * no function of the group was called). */
static yp_fstat *grouped_totals(const yp_stats *s, const uint32_t *rep) {
    size_t n;
    yp_fstat *tot = yp_stats_totals(s, UINT32_MAX, YP_SORT_TOTAL, &n);
    yp_fstat *g = tot ? calloc(s->n_funcs + 1, sizeof *g) : NULL;
    for (size_t i = 0; g && i < s->n_funcs; i++) g[i].func = UINT32_MAX;
    for (size_t i = 0; g && i < n; i++) {
        yp_fstat *t = &g[rep[tot[i].func]];
        t->func = rep[tot[i].func];
        t->ncalls += tot[i].ncalls;
        t->primitive_calls += tot[i].primitive_calls;
        t->self_s += tot[i].self_s;
        t->total_s += tot[i].total_s;
    }
    free(tot);
    return g;
}

/* ---- the export -------------------------------------------------------------------- */

static void write_entry(FILE *f, const yp_stats *s, const yp_fstat *t, const yp_edge *es, size_t ne) {
    m_label(f, &s->funcs[t->func]);
    fputc('(', f);
    m_u32(f, 5);
    m_int(f, t->primitive_calls);
    m_int(f, t->ncalls);
    m_float(f, t->self_s);
    m_float(f, t->total_s);
    fputc('{', f);
    for (size_t j = yp_edge_lower(es, ne, t->func, 0); j < ne && es[j].callee == t->func; j++) {
        m_label(f, &s->funcs[es[j].caller]);
        fputc('(', f);
        m_u32(f, 4);
        m_int(f, es[j].ncalls);
        m_int(f, es[j].primitive_calls);
        m_float(f, es[j].self_s);
        m_float(f, es[j].total_s);
    }
    fputc('0', f);
}

yp_status yp_export_pstats(const yp_stats *s, const char *path) {
    uint32_t *rep = label_groups(s);
    yp_fstat *tot = rep ? grouped_totals(s, rep) : NULL;
    size_t ne = 0;
    yp_edge *es = tot ? grouped_edges(s, rep, &ne) : NULL;
    FILE *f = es ? yp_out_open(path, "wb") : NULL;
    yp_status st = !es ? YP_ERR_NOMEM : !f ? YP_ERR_IO : YP_OK;
    if (f) {
        fputc('{', f);
        for (size_t i = 0; i < s->n_funcs; i++)
            if (tot[i].func != UINT32_MAX) write_entry(f, s, &tot[i], es, ne);
        fputc('0', f);
        st = yp_out_close(f);
    }
    free(rep);
    free(tot);
    free(es);
    return st;
}
