/*
 * yp_timeline.c — the timeline exports' walk (yp_timeline_int.h).
 */
#include "yp_timeline_int.h"

#include <stdlib.h>
#include <string.h>

#include "yp_seq_int.h"

static const yp_timeline_opts k_all = {0, 0, 0, UINT32_MAX, 0};

const char *yp_tl_name(const yp_tl *t, uint32_t func_id) {
    uint32_t idx;
    return yp_map_get(&t->funcs, func_id, &idx) ? t->s->funcs[idx].name : "?";
}

static int on_open(void *p, uint32_t func_id, uint64_t ts, int counted) {
    yp_tl *t = p;
    yp_tl_thread *th = t->cur;
    uint32_t d = th->st.depth;
    (void)func_id, (void)counted;
    if (d + 1u > th->cap) {
        size_t cap = th->cap ? 2 * th->cap : 64;
        uint64_t *s = realloc(th->starts, cap * sizeof *s);
        if (s) th->starts = s;
        uint8_t *b = s ? realloc(th->begun, cap) : NULL;
        if (!b) {
            t->nomem = 1;
            return -1;
        }
        th->begun = b, th->cap = cap;
    }
    uint64_t rel = ts > t->t0 ? ts - t->t0 : 0;
    th->starts[d] = rel > t->lo ? rel : t->lo;
    th->begun[d] = 0;
    return 0;
}

/* The innermost frame closes at ts: when admitted, the begins still owed
 * (its callers', then its own) and its end are handed over. */
static void on_close(void *p, uint64_t ts) {
    yp_tl *t = p;
    yp_tl_thread *th = t->cur;
    uint32_t d = th->st.depth - 1;
    uint64_t rel = ts > t->t0 ? ts - t->t0 : 0, end = rel < t->hi ? rel : t->hi, start = th->starts[d];
    int admitted = start < t->hi && end > t->lo && end - start >= t->min_ticks;
    if (admitted)
        for (uint32_t k = 0; k <= d; k++)
            if (!th->begun[k]) {
                th->begun[k] = 1;
                t->ops->begin(t, th->st.ids[k], th->starts[k]);
            }
    if (th->begun[d]) t->ops->end(t, th->st.ids[d], start, end);
}

/* Coroutines and greenlets: one slice per stretch run. */
static const yp_stack_ops k_ops = {on_open, on_close, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

static yp_tl_thread *thread_of(yp_tl *t, uint32_t tid) {
    uint32_t i;
    if (yp_map_get(&t->tmap, tid, &i)) return &t->threads[i];
    if (yp_grow((void **)&t->threads, &t->threads_cap, t->n_threads + 1, sizeof *t->threads, 16) ||
        yp_map_put(&t->tmap, tid, (uint32_t)t->n_threads))
        return NULL;
    yp_tl_thread *th = &t->threads[t->n_threads++];
    memset(th, 0, sizeof *th);
    th->tid = tid;
    return th;
}

/* One chunk read with status rs: its events through its thread's walk. A
 * hole before it (as the statistics see it: yp_seq.c) or drops end the
 * thread's frames; a damaged chunk has nothing more to show. */
static void walk_chunk(yp_tl *t, yp_seqcheck *seq, yp_status rs, const yp_chunk *ch) {
    yp_seq_gap gap;
    if (!yp_seq_check(seq, rs, ch, &gap) || (rs != YP_OK && !gap.hole)) return;
    if (t->o->thread_id != UINT32_MAX && ch->h.thread_id != t->o->thread_id) return;
    t->cur = thread_of(t, ch->h.thread_id);
    if (!t->cur) {
        t->nomem = 1;
        return;
    }
    if (gap.hole) yp_stack_break(&t->cur->st, &k_ops, t, gap.lost_events);
    if (ch->h.dropped) yp_stack_break(&t->cur->st, &k_ops, t, ch->h.dropped);
    if (rs == YP_OK) (void)yp_stack_walk(&t->cur->st, &k_ops, t, ch->events, ch->h.n_records, 0);
}

static void threads_free(yp_tl *t) {
    for (size_t i = 0; i < t->n_threads; i++) {
        yp_stack_free(&t->threads[i].st);
        free(t->threads[i].starts);
        free(t->threads[i].begun);
    }
    free(t->threads);
    t->threads = NULL;
    t->n_threads = t->threads_cap = 0;
    yp_map_free(&t->tmap);
}

yp_status yp_tl_init(yp_tl *t, const char *trace_path, char *errbuf, size_t errlen) {
    yp_reader *r = NULL;
    yp_status st = yp_reader_open(trace_path, &r, errbuf, errlen);
    if (st) return st;
    const yp_header *h = yp_reader_header(r);
    if (!t->o) t->o = &k_all;
    t->ns_per_tick = h->ns_per_tick;
    t->t0 = h->start_ticks;
    t->start_wall_ns = h->start_wall_ns;
    yp_reader_close(r);
    double ticks_per_s = 1e9 / t->ns_per_tick;
    t->lo = t->o->since_s > 0 ? (uint64_t)(t->o->since_s * ticks_per_s) : 0;
    t->hi = t->o->until_s > 0 ? (uint64_t)(t->o->until_s * ticks_per_s) : UINT64_MAX;
    t->min_ticks = t->o->min_us > 0 ? (uint64_t)(t->o->min_us * 1e-6 * ticks_per_s) : 0;
    for (size_t i = 0; i < t->s->n_funcs; i++)
        if (yp_map_put(&t->funcs, t->s->funcs[i].id, (uint32_t)i)) return YP_ERR_NOMEM;
    return YP_OK;
}

yp_status yp_tl_pass(yp_tl *t, const char *trace_path, char *errbuf, size_t errlen) {
    yp_reader *r = NULL;
    yp_status st = yp_reader_open(trace_path, &r, errbuf, errlen);
    if (st) return st;
    yp_seqcheck seq = {0};
    yp_chunk ch;
    for (;;) {
        yp_status rs = yp_reader_next(r, &ch);
        if (rs == YP_END || rs == YP_ERR_TRUNCATED || rs == YP_ERR_NOMEM || rs == YP_ERR_IO) break;
        walk_chunk(t, &seq, rs, &ch);
    }
    for (size_t i = 0; i < t->n_threads; i++) {
        t->cur = &t->threads[i];
        yp_stack_close_all(&t->cur->st, &k_ops, t, t->cur->st.last_ts);
    }
    threads_free(t);
    yp_seq_free(&seq);
    yp_reader_close(r);
    if (t->nomem) snprintf(errbuf, errlen, "out of memory");
    return t->nomem ? YP_ERR_NOMEM : YP_OK;
}

void yp_tl_free(yp_tl *t) {
    threads_free(t);
    yp_map_free(&t->funcs);
}

/* "12.3 MiB" */
static void human(uint64_t b, char *out, size_t n) {
    const char *u[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

void yp_tl_too_big(const yp_tl *t, uint64_t bytes, uint64_t calls, int at_least, char *errbuf,
                   size_t errlen) {
    char need[32], max[32];
    human(bytes, need, sizeof need);
    human(t->o->max_bytes, max, sizeof max);
    snprintf(errbuf, errlen,
             "the timeline would take %s%s (%llu calls), over --max-size %s: narrow it with --since/--until, "
             "--thread, --process or --min-duration, or raise --max-size",
             at_least ? "at least " : "", need, (unsigned long long)calls, max);
}

void yp_tl_bounds(const yp_tl *t, uint64_t min_per_call, uint64_t max_per_call, uint64_t name_factor,
                  uint64_t *least, uint64_t *most, uint64_t *calls) {
    uint64_t lo = 0, hi = 4096, n = 0;
    for (size_t i = 0; i < t->s->n_fstats; i++) {
        const yp_fstat *f = &t->s->fstats[i];
        if (t->o->thread_id != UINT32_MAX && t->s->threads[f->thread].id != t->o->thread_id) continue;
        uint64_t name = strlen(t->s->funcs[f->func].name);
        n += f->ncalls;
        lo += f->ncalls * (min_per_call + name * (name_factor ? 1 : 0));
        hi += (f->ncalls + 1) * (max_per_call + name * name_factor);
    }
    for (size_t i = 0; i < t->s->n_threads; i++) hi += t->s->threads[i].open_frames * (max_per_call + 400);
    int narrowed = t->o->since_s > 0 || t->o->until_s > 0 || t->o->min_us > 0;
    *least = narrowed ? 0 : lo;
    *most = hi;
    *calls = n;
}
