/*
 * yp_report.c — the text report of yprof-analyze (and Stats.print()):
 * session summary, optional per-thread table, top functions. Function rows
 * fit the width asked for (yp_report_opts.width) by cutting the middle of
 * qualified names.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "yprof/analyze.h"

static void human_bytes(uint64_t b, char *out, size_t n) {
    if (b >= (1u << 20))
        snprintf(out, n, "%.1f MiB", (double)b / (1u << 20));
    else if (b >= 1024)
        snprintf(out, n, "%.1f KiB", (double)b / 1024);
    else
        snprintf(out, n, "%" PRIu64 " B", b);
}

/* "qualified.name  file:line" in at most width columns (0: no limit): the
 * place goes first, then the middle of the qualified name; the function's
 * own name (after the last dot) is always whole, even past width. */
static void func_label(const yp_func *f, char *out, size_t cap, size_t width) {
    char loc[600] = "";
    if (!f->builtin && f->filename[0]) {
        const char *base = strrchr(f->filename, '/');
        snprintf(loc, sizeof loc, "  %s:%u", base ? base + 1 : f->filename, f->lineno);
    }
    const char *name = f->name, *dot = strrchr(name, '.');
    const char *own = dot ? dot + 1 : name;
    size_t n = strlen(name), nl = strlen(loc), no = strlen(own);
    if (width && n + nl > width && no + 3 + nl > width) loc[0] = 0, nl = 0; /* no room for the place */
    if (!width || n + nl <= width || own == name) {
        snprintf(out, cap, "%s%s", name, loc);
        return;
    }
    size_t head = width > no + 3 + nl ? width - no - 3 - nl : 0;
    snprintf(out, cap, "%.*s...%s%s", (int)head, name, own, loc);
}

/* The session's lines: one process's, or the sums of several. */
static void print_session(const yp_stats *s, FILE *out) {
    const yp_session *ss = &s->session;
    size_t np = yp_stats_n_procs(s);
    char when[64] = "?", mem[32], peak[32];
    time_t t = (time_t)ss->started_at;
    struct tm tmv;
    if (localtime_r(&t, &tmv)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tmv);
    human_bytes(ss->profiler_bytes, mem, sizeof mem);
    human_bytes(ss->peak_bytes, peak, sizeof peak);
    if (np > 1) {
        fprintf(out, "yprof report: %zu processes, %s and %zu more trace(s)\n", np, ss->trace_path, np - 1);
        fprintf(out, "  python %s, clock %s, first pid %" PRIu64 ", started %s\n",
                ss->python_version[0] ? ss->python_version : "?", ss->clock, ss->pid, when);
    } else {
        fprintf(out, "yprof report: %s\n", ss->trace_path[0] ? ss->trace_path : "(live)");
        fprintf(out, "  python %s, clock %s, pid %" PRIu64 ", started %s\n",
                ss->python_version[0] ? ss->python_version : "?", ss->clock, ss->pid, when);
    }
    fprintf(out, "  duration %.3f s, %" PRIu64 " events, %" PRIu64 " dropped, %zu thread(s)%s\n",
            ss->duration_s, ss->events, ss->dropped_events, s->n_threads,
            ss->complete ? ""
            : np > 1     ? ", a trace incomplete"
                         : ", trace incomplete");
    fprintf(out, "  pollution %.1f%% of %.3f s: hook %.3f s, interpreter %.3f s; memory %s (peak %s%s)\n",
            ss->pollution_pct, ss->app_s, ss->hook_s, ss->interp_s, mem, peak, np > 1 ? ", summed" : "");
    fprintf(out, "  flusher %.3f s of CPU beside the application (%.0f%% of a core)\n\n", ss->flusher_s,
            ss->flusher_pct);
}

/* One row per process. */
static void print_procs(const yp_stats *s, FILE *out) {
    fprintf(out, "%8s %8s %8s %11s %8s %9s %7s  %s\n", "pid", "ppid", "threads", "events", "dropped",
            "duration", "pollut.", "command line");
    for (size_t i = 0; i < yp_stats_n_procs(s); i++) {
        const yp_session *p = yp_stats_proc(s, i);
        size_t nt = 0;
        for (size_t j = 0; j < s->n_threads; j++) nt += s->threads[j].process == i;
        fprintf(out, "%8" PRIu64 " %8" PRIu64 " %8zu %11" PRIu64 " %8" PRIu64 " %9.3f %6.1f%%  %.200s\n",
                p->pid, p->ppid, nt, p->events, p->dropped_events, p->duration_s, p->pollution_pct,
                p->command_line);
    }
    fputc('\n', out);
}

/* One row per thread (with its process's pid when there are several). */
static void print_threads(const yp_stats *s, FILE *out) {
    int np = yp_stats_n_procs(s) > 1;
    fprintf(out, "%5s %s%-24s %16s %9s %9s %9s %11s %8s\n", "id", np ? "     pid " : "", "thread", "ident",
            "native", "wall_s", "cpu_s", "events", "dropped");
    for (size_t i = 0; i < s->n_threads; i++) {
        const yp_thread_stat *th = &s->threads[i];
        char pid[24] = "";
        if (np) snprintf(pid, sizeof pid, "%8" PRIu64 " ", yp_stats_proc(s, th->process)->pid);
        fprintf(out, "%5u %s%-24.24s %16" PRIu64 " %9" PRIu64 " %9.3f %9.3f %11" PRIu64 " %8" PRIu64 "\n",
                th->id, pid, th->name[0] ? th->name : "?", th->ident, th->native_id, th->wall_s, th->cpu_s,
                th->events, th->dropped);
    }
    fputc('\n', out);
}

/* One row per tag: its functions, calls, wall time (from the start to the
 * end of the calls that began its work: their callers were under another
 * tag or none; waits included) and active time (the time its calls ran:
 * self time summed, each moment once). */
static void print_tags(const yp_stats *s, FILE *out) {
    fprintf(out, "%-24s %9s %12s %12s %12s\n", "tag", "functions", "calls", "wall_s", "active_s");
    size_t shown = 0;
    for (size_t g = 0; g < s->n_funcs; g++) {
        if (!YP_SYM_IS_TAG(s->funcs[g].builtin)) continue;
        uint64_t calls = 0;
        double wall = 0, active = 0;
        size_t n = 0;
        for (size_t i = 0; i < s->n_tagstats; i++) {
            const yp_tagstat *t = &s->tagstats[i];
            if (t->tag != g) continue;
            calls += t->f.ncalls, wall += t->root_s, active += t->f.self_s;
            n++;
        }
        size_t nf;
        yp_fstat *rows = n ? yp_stats_tag_totals(s, (uint32_t)g, UINT32_MAX, YP_SORT_TOTAL, &nf) : NULL;
        if (!rows) continue;
        free(rows);
        fprintf(out, "%-24.200s %9zu %12" PRIu64 " %12.6f %12.6f\n", s->funcs[g].name, nf, calls, wall,
                active);
        shown++;
    }
    if (!shown) fprintf(out, "  (no calls under a tag)\n");
    fputc('\n', out);
}

static const yp_stats *g_tasks_of; /* for the sort's comparison */
static int task_by_wall(const void *x, const void *y) {
    const yp_task *a = &g_tasks_of->tasks[*(const uint32_t *)x],
                  *b = &g_tasks_of->tasks[*(const uint32_t *)y];
    return a->wall_s < b->wall_s ? 1 : a->wall_s > b->wall_s ? -1 : 0;
}

/* The tasks' count, then the `top` longest by wall time. */
static void print_tasks(const yp_stats *s, int top, FILE *out) {
    size_t n[3] = {0, 0, 0}, running = 0;
    for (size_t i = 0; i < s->n_tasks; i++) {
        n[s->tasks[i].kind == YP_TASK_GREENLET ? 2 : 1]++;
        running += s->tasks[i].done_s < 0;
    }
    fprintf(out, "tasks: %zu asyncio, %zu greenlets (%zu not done)", n[1], n[2], running);
    if (s->tasks_dropped) fprintf(out, ", %" PRIu64 " more not kept", s->tasks_dropped);
    fputs("\n", out);
    uint32_t *order = s->n_tasks ? malloc(s->n_tasks * sizeof *order) : NULL;
    if (!order) {
        fputc('\n', out);
        return;
    }
    for (size_t i = 0; i < s->n_tasks; i++) order[i] = (uint32_t)i;
    g_tasks_of = s;
    qsort(order, s->n_tasks, sizeof *order, task_by_wall);
    fprintf(out, "%-9s %-20s %-28s %7s %12s %12s\n", "kind", "name", "function", "steps", "wall_s",
            "active_s");
    for (size_t i = 0; i < s->n_tasks && i < (size_t)top; i++) {
        const yp_task *k = &s->tasks[order[i]];
        char name[32];
        if (k->name != UINT32_MAX)
            snprintf(name, sizeof name, "%s", s->funcs[k->name].name);
        else if (k->number)
            snprintf(name, sizeof name, "Task-%" PRIu64, k->number);
        else
            snprintf(name, sizeof name, "-");
        fprintf(out, "%-9s %-20.20s %-28.28s %7" PRIu64 " %12.6f %12.6f%s\n",
                k->kind == YP_TASK_GREENLET ? "greenlet" : "asyncio", name,
                k->func != UINT32_MAX ? s->funcs[k->func].name : "?", k->steps, k->wall_s, k->active_s,
                k->done_s < 0 ? "  (not done)" : "");
    }
    free(order);
    fputc('\n', out);
}

void yp_report_print(const yp_stats *s, const yp_report_opts *o, FILE *out) {
    print_session(s, out);
    if (o->show_procs) print_procs(s, out);
    if (o->show_tags) print_tags(s, out);
    if (o->show_tasks) print_tasks(s, o->top > 0 ? o->top : 20, out);
    if (o->show_threads) print_threads(s, out);

    uint32_t thread = o->thread >= 0 ? (uint32_t)o->thread : UINT32_MAX;
    size_t n;
    yp_fstat *rows = o->tag >= 0 ? yp_stats_tag_totals(s, (uint32_t)o->tag, thread, o->sort, &n)
                                 : yp_stats_totals(s, thread, o->sort, &n);
    if (!rows) {
        fprintf(out, "(out of memory)\n");
        return;
    }
    if (thread != UINT32_MAX)
        fprintf(out, "thread %u (%s):\n", s->threads[thread].id, s->threads[thread].name);
    if (o->tag >= 0) fprintf(out, "tag %s: the calls made under it\n", s->funcs[o->tag].name);
    static const char *const sort_names[] = {"total", "self", "ncalls", "avg"};
    fprintf(out, "top %d functions by %s time%s\n", o->top > 0 ? o->top : 20, sort_names[o->sort],
            o->sort == YP_SORT_NCALLS ? " (calls)" : "");
    fprintf(out, "%14s %10s %10s %10s %10s  %s\n", "ncalls", "tottime", "percall", "cumtime", "percall",
            "function");
    int top = o->top > 0 ? o->top : 20;
    /* the numbers take 61 columns; a name gets at least 20 */
    size_t label_width = o->width <= 0 ? 0 : o->width > 81 ? (size_t)o->width - 61 : 20;
    for (size_t i = 0; i < n && (int)i < top; i++) {
        const yp_fstat *f = &rows[i];
        char calls[32], label[1400];
        if (f->ncalls != f->primitive_calls)
            snprintf(calls, sizeof calls, "%" PRIu64 "/%" PRIu64, f->ncalls, f->primitive_calls);
        else
            snprintf(calls, sizeof calls, "%" PRIu64, f->ncalls);
        func_label(&s->funcs[f->func], label, sizeof label, label_width);
        double per_self = f->ncalls ? f->self_s / (double)f->ncalls : 0;
        double per_tot = f->ncalls ? f->total_s / (double)f->ncalls : 0;
        fprintf(out, "%14s %10.6f %10.6f %10.6f %10.6f  %s\n", calls, f->self_s, per_self, f->total_s,
                per_tot, label);
    }
    if (n == 0) fprintf(out, "  (no function calls recorded)\n");
    free(rows);
}
