/*
 * yp_chrome.c — Chrome trace event JSON (Perfetto UI, chrome://tracing).
 *
 * Needs every call, so it re-reads the trace, streaming: one B/E pair per
 * frame the stack walker (yp_stack_int.h) opens and closes, one track (tid)
 * per thread named by a thread_name metadata event. The walker's rules keep
 * the pairs balanced: returns without a call are skipped, frames open at a
 * drop, a hole or the end are closed there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_out_int.h"
#include "yp_seq_int.h"
#include "yp_stack_int.h"
#include "yprof/analyze.h"
#include "yprof/containers.h"

/* s as a JSON string. */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* One thread's walk. */
typedef struct cthread {
    yp_stack st;
    uint32_t tid;
} cthread;

typedef struct ctx {
    FILE *f;
    const yp_stats *s;
    yp_map funcs; /* func_id -> index in s->funcs */
    double us_per_tick;
    uint64_t t0;
    uint64_t pid;
    yp_map tmap; /* thread id -> index in threads */
    cthread *threads;
    size_t n_threads, threads_cap;
    cthread *cur; /* the thread being walked */
} ctx;

static void emit(ctx *c, char ph, uint32_t func_id, uint32_t tid, uint64_t ts) {
    uint32_t idx;
    const char *name = "?";
    if (yp_map_get(&c->funcs, func_id, &idx)) name = c->s->funcs[idx].name;
    fprintf(c->f, ",\n{\"ph\":\"%c\",\"pid\":%llu,\"tid\":%u,\"ts\":%.3f,\"name\":", ph,
            (unsigned long long)c->pid, tid, (double)(ts - (ts > c->t0 ? c->t0 : ts)) * c->us_per_tick);
    json_str(c->f, name);
    fputc('}', c->f);
}

static int on_open(void *p, uint32_t func_id, uint64_t ts, int counted) {
    ctx *c = p;
    (void)counted;
    emit(c, 'B', func_id, c->cur->tid, ts);
    return 0;
}

static void on_close(void *p, uint64_t ts) {
    ctx *c = p;
    emit(c, 'E', c->cur->st.ids[c->cur->st.depth - 1], c->cur->tid, ts);
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
    c->cur = thread_of(c, ch->h.thread_id);
    if (!c->cur) return;
    if (gap.hole) yp_stack_break(&c->cur->st, &k_ops, c, gap.lost_events);
    if (ch->h.dropped) yp_stack_break(&c->cur->st, &k_ops, c, ch->h.dropped);
    if (rs == YP_OK) (void)yp_stack_walk(&c->cur->st, &k_ops, c, ch->events, ch->h.n_records, 0);
}

static void ctx_free(ctx *c) {
    for (size_t i = 0; i < c->n_threads; i++) yp_stack_free(&c->threads[i].st);
    free(c->threads);
    yp_map_free(&c->tmap);
    yp_map_free(&c->funcs);
}

yp_status yp_export_chrome(const char *trace_path, const yp_stats *s, const char *path, char *errbuf,
                           size_t errlen) {
    yp_reader *r = NULL;
    yp_status st = yp_reader_open(trace_path, &r, errbuf, errlen);
    if (st) return st;
    ctx c = {0};
    c.s = s;
    c.pid = s->session.pid;
    c.us_per_tick = yp_reader_header(r)->ns_per_tick / 1000.0;
    c.t0 = yp_reader_header(r)->start_ticks;
    yp_seqcheck seq = {0};
    for (size_t i = 0; i < s->n_funcs; i++) yp_map_put(&c.funcs, s->funcs[i].id, (uint32_t)i);
    c.f = yp_out_open(path, "w");
    if (!c.f) {
        snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
        st = YP_ERR_IO;
        goto out;
    }
    write_metadata(&c);
    yp_chunk ch;
    for (;;) {
        yp_status rs = yp_reader_next(r, &ch);
        if (rs == YP_END || rs == YP_ERR_TRUNCATED || rs == YP_ERR_NOMEM || rs == YP_ERR_IO) break;
        walk_chunk(&c, &seq, rs, &ch);
    }
    for (size_t i = 0; i < c.n_threads; i++) {
        c.cur = &c.threads[i];
        yp_stack_close_all(&c.cur->st, &k_ops, &c, c.cur->st.last_ts);
    }
    fputs("\n]}\n", c.f);
    st = yp_out_close(c.f);
    c.f = NULL;
    if (st) snprintf(errbuf, errlen, "%s", strerror(yp_export_errno()));
out:
    if (c.f) yp_out_close(c.f);
    ctx_free(&c);
    yp_seq_free(&seq);
    yp_reader_close(r);
    return st;
}
