/*
 * yp_chrome.c — Chrome trace event JSON (Perfetto UI, chrome://tracing).
 *
 * Needs every call, so it re-reads the trace, streaming: one B/E pair per
 * call, one track (tid) per thread named by a thread_name metadata event.
 * Per thread a small stack of open function ids keeps the B/E pairs
 * balanced: returns without a call are skipped, frames open at a gap or at
 * the end are closed there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_map_int.h"
#include "yp_seq_int.h"
#include "yprof/analyze.h"

typedef struct cstack {
    uint32_t *ids;
    uint32_t depth, cap;
    uint64_t last_ts;
} cstack;

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

typedef struct ctx {
    FILE *f;
    const yp_stats *s;
    yp_map funcs; /* func_id -> index in s->funcs */
    double us_per_tick;
    uint64_t t0;
    uint64_t pid;
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

static void close_all(ctx *c, cstack *st, uint32_t tid, uint64_t ts) {
    while (st->depth) emit(c, 'E', st->ids[--st->depth], tid, ts);
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
    yp_map tmap = {0};
    yp_seqcheck seq = {0};
    cstack *stacks = calloc(s->n_threads + 1, sizeof *stacks);
    size_t n_stacks = 0, cap_stacks = s->n_threads + 1;
    uint32_t *tids = calloc(cap_stacks, sizeof *tids);
    for (size_t i = 0; i < s->n_funcs; i++) yp_map_put(&c.funcs, s->funcs[i].id, (uint32_t)i);
    c.f = fopen(path, "w");
    if (!c.f || !stacks || !tids) {
        snprintf(errbuf, errlen, "cannot write %s", path);
        st = YP_ERR_IO;
        goto out;
    }
    fprintf(c.f,
            "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":%llu,"
            "\"name\":\"process_name\",\"args\":{\"name\":\"python (yprof)\"}}",
            (unsigned long long)c.pid);
    for (size_t i = 0; i < s->n_threads; i++) {
        fprintf(c.f, ",\n{\"ph\":\"M\",\"pid\":%llu,\"tid\":%u,\"name\":\"thread_name\",\"args\":{\"name\":",
                (unsigned long long)c.pid, s->threads[i].id);
        json_str(c.f, s->threads[i].name[0] ? s->threads[i].name : "thread");
        fputs("}}", c.f);
    }
    yp_chunk ch;
    for (;;) {
        yp_status rs = yp_reader_next(r, &ch);
        if (rs == YP_END || rs == YP_ERR_TRUNCATED || rs == YP_ERR_NOMEM || rs == YP_ERR_IO) break;
        yp_seq_gap gap;
        int events_chunk = yp_seq_check(&seq, rs, &ch, &gap);
        if (!events_chunk || (rs != YP_OK && !gap.hole)) continue;
        uint32_t ti;
        if (!yp_map_get(&tmap, ch.h.thread_id, &ti)) {
            if (n_stacks == cap_stacks) {
                size_t nc = cap_stacks * 2;
                cstack *q = realloc(stacks, nc * sizeof *q);
                uint32_t *q2 = q ? realloc(tids, nc * sizeof *q2) : NULL;
                if (q) stacks = q;
                if (!q || !q2) break;
                tids = q2;
                memset(stacks + cap_stacks, 0, (nc - cap_stacks) * sizeof *stacks);
                cap_stacks = nc;
            }
            ti = (uint32_t)n_stacks++;
            tids[ti] = ch.h.thread_id;
            yp_map_put(&tmap, ch.h.thread_id, ti);
        }
        cstack *cs = &stacks[ti];
        /* a hole (as the statistics see it: yp_seq.c) or drops end the frames */
        if (gap.hole || ch.h.dropped) close_all(&c, cs, ch.h.thread_id, cs->last_ts);
        if (rs != YP_OK) continue; /* a damaged chunk: nothing more to show */
        for (uint32_t i = 0; i < ch.h.n_records; i++) {
            const yp_event *e = &ch.events[i];
            uint64_t ts = e->ts < cs->last_ts ? cs->last_ts : e->ts;
            cs->last_ts = ts;
            switch (e->kind) {
            case YP_EV_CALL:
            case YP_EV_C_CALL:
            case YP_EV_OPEN:
                if (cs->depth == cs->cap) {
                    uint32_t nc = cs->cap ? cs->cap * 2 : 64;
                    uint32_t *q = realloc(cs->ids, nc * sizeof *q);
                    if (!q) continue;
                    cs->ids = q;
                    cs->cap = nc;
                }
                cs->ids[cs->depth++] = e->func_id;
                emit(&c, 'B', e->func_id, ch.h.thread_id, ts);
                break;
            case YP_EV_RETURN:
            case YP_EV_C_RETURN:
            case YP_EV_UNWIND: {
                uint32_t d = cs->depth;
                while (d && cs->ids[d - 1] != e->func_id) d--;
                while (d && cs->depth >= d) emit(&c, 'E', cs->ids[--cs->depth], ch.h.thread_id, ts);
                break;
            }
            case YP_EV_REC_STOP:
            case YP_EV_THREAD_END:
            case YP_EV_DROPPED: close_all(&c, cs, ch.h.thread_id, ts); break;
            default: break;
            }
        }
    }
    for (size_t i = 0; i < n_stacks; i++) close_all(&c, &stacks[i], tids[i], stacks[i].last_ts);
    fputs("\n]}\n", c.f);
    st = ferror(c.f) ? YP_ERR_IO : YP_OK;
out:
    if (c.f && fclose(c.f) != 0) st = YP_ERR_IO;
    for (size_t i = 0; stacks && i < cap_stacks; i++) free(stacks[i].ids);
    free(stacks);
    free(tids);
    yp_map_free(&tmap);
    yp_seq_free(&seq);
    yp_map_free(&c.funcs);
    yp_reader_close(r);
    return st;
}
