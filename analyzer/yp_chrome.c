/*
 * yp_chrome.c — Chrome trace event JSON (Perfetto UI, chrome://tracing).
 *
 * Needs every call, so it re-reads the trace, streaming: one complete event
 * ("ph":"X", start and duration) per frame the stack walker (yp_stack_int.h)
 * closes, one track (tid) per thread named by a thread_name metadata event.
 * The walker's rules keep frames whole: returns without a call are skipped,
 * frames open at a drop, a hole or the end are closed there.
 *
 * What is written can be narrowed (yp_timeline_opts): a window of the
 * trace's time (calls overlapping it, cut to it), one thread, calls of at
 * least a duration. A limit on the size is checked before anything is
 * written: when the statistics' call count could exceed it, a first pass
 * counts the bytes exactly, and an export over the limit is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_out_int.h"
#include "yp_seq_int.h"
#include "yp_stack_int.h"
#include "yprof/analyze.h"
#include "yprof/containers.h"

/* s as a JSON string; its length when f is NULL. */
static size_t json_str(FILE *f, const char *s) {
    size_t n = 2;
    if (f) fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            n += 2;
            if (f) fprintf(f, "\\%c", c);
        } else if (c < 0x20) {
            n += 6;
            if (f) fprintf(f, "\\u%04x", c);
        } else {
            n++;
            if (f) fputc(c, f);
        }
    }
    if (f) fputc('"', f);
    return n;
}

/* One thread's walk. */
typedef struct cthread {
    yp_stack st;
    uint32_t tid;
    uint64_t *starts; /* the open frames' start times, as deep as st */
    size_t starts_cap;
} cthread;

typedef struct ctx {
    FILE *f; /* NULL: the counting pass */
    const yp_stats *s;
    const yp_timeline_opts *o;
    uint64_t lo, hi, min_ticks; /* the window and the shortest call, in ticks from t0 */
    uint64_t bytes, calls;      /* written (or that would be) */
    int nomem;
    yp_map funcs; /* func_id -> index in s->funcs */
    double us_per_tick;
    uint64_t t0;
    uint64_t pid;
    yp_map tmap; /* thread id -> index in threads */
    cthread *threads;
    size_t n_threads, threads_cap;
    cthread *cur; /* the thread being walked */
} ctx;

/* One complete event: the call of func_id from start to end (ticks). */
static void emit(ctx *c, uint32_t func_id, uint64_t start, uint64_t end) {
    uint64_t a = start > c->t0 ? start - c->t0 : 0, b = end > c->t0 ? end - c->t0 : 0;
    if (a >= c->hi || b <= c->lo) return; /* outside the window */
    if (a < c->lo) a = c->lo;             /* cut to it */
    if (b > c->hi) b = c->hi;
    if (b - a < c->min_ticks) return;
    uint32_t idx;
    const char *name = "?";
    if (yp_map_get(&c->funcs, func_id, &idx)) name = c->s->funcs[idx].name;
    char head[160];
    int n = snprintf(head, sizeof head,
                     ",\n{\"ph\":\"X\",\"pid\":%llu,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,\"name\":",
                     (unsigned long long)c->pid, c->cur->tid, (double)a * c->us_per_tick,
                     (double)(b - a) * c->us_per_tick);
    c->calls++;
    c->bytes += (uint64_t)n + json_str(NULL, name) + 1;
    if (!c->f) return;
    fputs(head, c->f);
    json_str(c->f, name);
    fputc('}', c->f);
}

static int on_open(void *p, uint32_t func_id, uint64_t ts, int counted) {
    ctx *c = p;
    cthread *t = c->cur;
    (void)func_id, (void)counted;
    if (yp_grow((void **)&t->starts, &t->starts_cap, (size_t)t->st.depth + 1, sizeof *t->starts, 64)) {
        c->nomem = 1;
        return -1;
    }
    t->starts[t->st.depth] = ts;
    return 0;
}

static void on_close(void *p, uint64_t ts) {
    ctx *c = p;
    cthread *t = c->cur;
    uint32_t d = t->st.depth - 1;
    emit(c, t->st.ids[d], t->starts[d], ts);
}

static const yp_stack_ops k_ops = {on_open, on_close, NULL};

/* The walk of thread tid; NULL when out of memory. */
static cthread *thread_of(ctx *c, uint32_t tid) {
    uint32_t i;
    if (yp_map_get(&c->tmap, tid, &i)) return &c->threads[i];
    if (yp_grow((void **)&c->threads, &c->threads_cap, c->n_threads + 1, sizeof *c->threads, 16) ||
        yp_map_put(&c->tmap, tid, (uint32_t)c->n_threads))
        return NULL;
    cthread *t = &c->threads[c->n_threads++];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    return t;
}

static void write_metadata(ctx *c) {
    fprintf(c->f,
            "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":%llu,"
            "\"name\":\"process_name\",\"args\":{\"name\":\"python (yprof)\"}}",
            (unsigned long long)c->pid);
    for (size_t i = 0; i < c->s->n_threads; i++) {
        if (c->o->thread_id != UINT32_MAX && c->s->threads[i].id != c->o->thread_id) continue;
        fprintf(c->f, ",\n{\"ph\":\"M\",\"pid\":%llu,\"tid\":%u,\"name\":\"thread_name\",\"args\":{\"name\":",
                (unsigned long long)c->pid, c->s->threads[i].id);
        json_str(c->f, c->s->threads[i].name[0] ? c->s->threads[i].name : "thread");
        fputs("}}", c->f);
    }
}

/* One chunk read with status rs: its events through its thread's walk. A
 * hole before it (as the statistics see it: yp_seq.c) or drops end the
 * thread's frames; a damaged chunk has nothing more to show. */
static void walk_chunk(ctx *c, yp_seqcheck *seq, yp_status rs, const yp_chunk *ch) {
    yp_seq_gap gap;
    if (!yp_seq_check(seq, rs, ch, &gap) || (rs != YP_OK && !gap.hole)) return;
    if (c->o->thread_id != UINT32_MAX && ch->h.thread_id != c->o->thread_id) return;
    c->cur = thread_of(c, ch->h.thread_id);
    if (!c->cur) return;
    if (gap.hole) yp_stack_break(&c->cur->st, &k_ops, c, gap.lost_events);
    if (ch->h.dropped) yp_stack_break(&c->cur->st, &k_ops, c, ch->h.dropped);
    if (rs == YP_OK) (void)yp_stack_walk(&c->cur->st, &k_ops, c, ch->events, ch->h.n_records, 0);
}

/* Forget the walks (between the counting pass and the writing one). */
static void threads_free(ctx *c) {
    for (size_t i = 0; i < c->n_threads; i++) {
        yp_stack_free(&c->threads[i].st);
        free(c->threads[i].starts);
    }
    free(c->threads);
    c->threads = NULL;
    c->n_threads = c->threads_cap = 0;
    yp_map_free(&c->tmap);
}

/* One pass over the trace: every event through its thread's walk, the
 * frames left open closed at their thread's last event. */
static yp_status pass(ctx *c, const char *trace_path, char *errbuf, size_t errlen) {
    yp_reader *r = NULL;
    yp_status st = yp_reader_open(trace_path, &r, errbuf, errlen);
    if (st) return st;
    yp_seqcheck seq = {0};
    yp_chunk ch;
    for (;;) {
        yp_status rs = yp_reader_next(r, &ch);
        if (rs == YP_END || rs == YP_ERR_TRUNCATED || rs == YP_ERR_NOMEM || rs == YP_ERR_IO) break;
        walk_chunk(c, &seq, rs, &ch);
    }
    for (size_t i = 0; i < c->n_threads; i++) {
        c->cur = &c->threads[i];
        yp_stack_close_all(&c->cur->st, &k_ops, c, c->cur->st.last_ts);
    }
    threads_free(c);
    yp_seq_free(&seq);
    yp_reader_close(r);
    if (c->nomem) snprintf(errbuf, errlen, "out of memory");
    return c->nomem ? YP_ERR_NOMEM : YP_OK;
}

/* The most bytes the export could take: every call of the statistics (of
 * the thread asked for), each with the longest head and its name. */
static uint64_t bound(const ctx *c) {
    uint64_t n = 0;
    for (size_t i = 0; i < c->s->n_fstats; i++) {
        const yp_fstat *f = &c->s->fstats[i];
        if (c->o->thread_id != UINT32_MAX && c->s->threads[f->thread].id != c->o->thread_id) continue;
        n += (f->ncalls + 1) * (160 + 6 * strlen(c->s->funcs[f->func].name));
    }
    for (size_t i = 0; i < c->s->n_threads; i++) n += c->s->threads[i].open_frames * 400ull;
    return n;
}

/* "12.3 MiB" */
static void human(uint64_t b, char *out, size_t n) {
    const char *u[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* The size limit: an export that would exceed it is refused with what to
 * narrow; 1 then (the error said), else 0. */
static int over_limit(ctx *c, const char *trace_path, char *errbuf, size_t errlen, yp_status *st) {
    if (!c->o->max_bytes || bound(c) <= c->o->max_bytes) return 0;
    FILE *f = c->f;
    c->f = NULL; /* count, don't write */
    *st = pass(c, trace_path, errbuf, errlen);
    c->f = f;
    if (*st) return 1;
    if (c->bytes <= c->o->max_bytes) return 0;
    char need[32], max[32];
    human(c->bytes, need, sizeof need);
    human(c->o->max_bytes, max, sizeof max);
    snprintf(errbuf, errlen,
             "the timeline would take %s (%llu calls), over --max-size %s: narrow it with --since/--until, "
             "--thread, --process or --min-duration, or raise --max-size",
             need, (unsigned long long)c->calls, max);
    *st = YP_ERR_ARG;
    return 1;
}

yp_status yp_export_chrome(const char *trace_path, const yp_stats *s, const char *path,
                           const yp_timeline_opts *o, char *errbuf, size_t errlen) {
    static const yp_timeline_opts all = {0, 0, 0, UINT32_MAX, 0};
    yp_reader *r = NULL;
    yp_status st = yp_reader_open(trace_path, &r, errbuf, errlen);
    if (st) return st;
    ctx c = {0};
    c.s = s;
    c.o = o ? o : &all;
    c.pid = s->session.pid;
    c.us_per_tick = yp_reader_header(r)->ns_per_tick / 1000.0;
    c.t0 = yp_reader_header(r)->start_ticks;
    yp_reader_close(r);
    double ticks_per_s = 1e6 / c.us_per_tick;
    c.lo = c.o->since_s > 0 ? (uint64_t)(c.o->since_s * ticks_per_s) : 0;
    c.hi = c.o->until_s > 0 ? (uint64_t)(c.o->until_s * ticks_per_s) : UINT64_MAX;
    c.min_ticks = c.o->min_us > 0 ? (uint64_t)(c.o->min_us * 1e-6 * ticks_per_s) : 0;
    for (size_t i = 0; i < s->n_funcs; i++) yp_map_put(&c.funcs, s->funcs[i].id, (uint32_t)i);
    if (over_limit(&c, trace_path, errbuf, errlen, &st)) goto out;
    c.bytes = c.calls = 0;
    c.f = yp_out_open(path, "w");
    if (!c.f) {
        snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
        st = YP_ERR_IO;
        goto out;
    }
    write_metadata(&c);
    st = pass(&c, trace_path, errbuf, errlen);
    fputs("\n]}\n", c.f);
    yp_status cs = yp_out_close(c.f);
    if (!st && cs) snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
    st = st ? st : cs;
out:
    threads_free(&c);
    yp_map_free(&c.funcs);
    return st;
}
