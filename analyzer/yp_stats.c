/*
 * yp_stats.c — queries over a snapshot: per-function totals and sorting, and
 * the session fields taken from a loaded trace.
 */
#include <stdlib.h>
#include <string.h>

#include "yprof/containers.h"
#include "yprof/analyze.h"

static yp_sort g_sort; /* qsort has no context argument in C11 */

static double key(const yp_fstat *f) {
    switch (g_sort) {
    case YP_SORT_SELF: return f->self_s;
    case YP_SORT_NCALLS: return (double)f->ncalls;
    case YP_SORT_AVG: return f->ncalls ? f->total_s / (double)f->ncalls : 0;
    default: return f->total_s;
    }
}

static int cmp(const void *x, const void *y) {
    const yp_fstat *a = x, *b = y;
    double ka = key(a), kb = key(b);
    if (ka != kb) return ka < kb ? 1 : -1;
    return a->func < b->func ? -1 : a->func > b->func;
}

/* The rows of s's fstats (tag NONE) or of its calls under tag. */
static yp_fstat *totals(const yp_stats *s, uint32_t tag, uint32_t thread, yp_sort sort, size_t *n) {
    *n = 0;
    yp_fstat *out = calloc(s->n_funcs ? s->n_funcs : 1, sizeof *out);
    if (!out) return NULL;
    int *used = calloc(s->n_funcs ? s->n_funcs : 1, sizeof *used);
    if (!used) {
        free(out);
        return NULL;
    }
    /* Sum over threads: total time adds up across threads since recursion
     * never spans threads. */
    size_t rows = tag == UINT32_MAX ? s->n_fstats : s->n_tagstats;
    for (size_t i = 0; i < rows; i++) {
        if (tag != UINT32_MAX && s->tagstats[i].tag != tag) continue;
        const yp_fstat *f = tag == UINT32_MAX ? &s->fstats[i] : &s->tagstats[i].f;
        if (thread != UINT32_MAX && f->thread != thread) continue;
        yp_fstat *o = &out[f->func];
        o->func = f->func;
        o->thread = thread;
        o->ncalls += f->ncalls;
        o->primitive_calls += f->primitive_calls;
        o->self_s += f->self_s;
        o->total_s += f->total_s;
        o->awaited_s += f->awaited_s;
        used[f->func] = 1;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->n_funcs; i++)
        if (used[i]) out[k++] = out[i];
    free(used);
    g_sort = sort;
    qsort(out, k, sizeof *out, cmp);
    *n = k;
    return out;
}

yp_fstat *yp_stats_totals(const yp_stats *s, uint32_t thread, yp_sort sort, size_t *n) {
    return totals(s, UINT32_MAX, thread, sort, n);
}

yp_fstat *yp_stats_tag_totals(const yp_stats *s, uint32_t tag, uint32_t thread, yp_sort sort, size_t *n) {
    return totals(s, tag, thread, sort, n);
}

int64_t yp_stats_find_tag(const yp_stats *s, const char *value) {
    for (size_t i = 0; i < s->n_funcs; i++)
        if (YP_SYM_IS_TAG(s->funcs[i].builtin) && !strcmp(s->funcs[i].name, value)) return (int64_t)i;
    return -1;
}

void yp_stats_set_session(yp_stats *s, const char *trace_path, const yp_load_result *res) {
    const char *pyv = res->hdr.python_version ? res->hdr.python_version : "";
    const char *cmd = res->hdr.command_line ? res->hdr.command_line : "";
    size_t lt = strlen(trace_path) + 1, lp = strlen(pyv) + 1, lc = strlen(cmd) + 1;
    char *p = malloc(lt + lp + lc);
    if (p) {
        free(s->session_strings);
        s->session_strings = p;
        memcpy(p, trace_path, lt);
        memcpy(p + lt, pyv, lp);
        memcpy(p + lt + lp, cmd, lc);
        s->session.trace_path = p;
        s->session.python_version = p + lt;
        s->session.command_line = p + lt + lp;
    }
    yp_session *ss = &s->session;
    switch (res->hdr.clock_kind) {
    case YP_CLOCK_THREAD_CPU: ss->clock = "cpu"; break;
    case YP_CLOCK_TSC: ss->clock = "wall"; break; /* the TSC is how, not what */
    default: ss->clock = "wall"; break;
    }
    ss->pid = res->hdr.pid;
    ss->ppid = res->hdr.ppid;
    ss->started_at = (double)res->hdr.start_wall_ns * 1e-9;
    ss->hook_s = (double)res->foot.hook_ns * 1e-9;
    ss->flusher_s = (double)res->foot.flusher_ns * 1e-9;
    ss->interp_s = (double)res->foot.interp_ns * 1e-9;
    ss->app_s = (double)res->foot.app_ns * 1e-9;
    ss->profiler_bytes = res->foot.profiler_bytes;
    ss->peak_bytes = res->peak_bytes > ss->profiler_bytes ? res->peak_bytes : ss->profiler_bytes;
    ss->pollution_pct = ss->app_s > 0 ? 100.0 * (ss->hook_s + ss->interp_s) / ss->app_s : 0;
    ss->flusher_pct = ss->app_s > 0 ? 100.0 * ss->flusher_s / ss->app_s : 0;
    ss->complete = res->has_footer;
    ss->bad_chunks = res->rs.chunks_bad;
    ss->bytes_read = res->rs.bytes_ok;
    ss->bytes_total = res->rs.bytes_total;
}
