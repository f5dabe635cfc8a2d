/*
 * yp_load.c — feeds a whole trace (file or memory) into an aggregator.
 *
 * Streaming: one chunk in memory at a time. Damaged chunks are skipped and
 * counted; a trace cut short is still loaded up to its last whole chunk and
 * reported in res->warning. Only a file with no usable header, or whose every
 * chunk is damaged, is an error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_agg_int.h"
#include "yp_seq_int.h"
#include "yprof/analyze.h"

static int on_symbol(void *ctx, const yp_symbol *s) { return yp_agg_symbol(ctx, s) != YP_OK; }
static int on_thread(void *ctx, const yp_thread_info *t) { return yp_agg_thread(ctx, t) != YP_OK; }

/* MARKER chunks carry "key=value" lines; the recorder writes its pollution
 * figures there at every stop, so a trace without footer still has them. */
static void parse_marker(const yp_chunk *c, yp_footer *f, uint64_t *peak) {
    const char *p = (const char *)c->payload, *end = p + c->h.raw_bytes;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        char line[128];
        size_t n = (size_t)(eol - p);
        if (n < sizeof line) {
            memcpy(line, p, n);
            line[n] = 0;
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = 0;
                uint64_t v = strtoull(eq + 1, NULL, 10);
                if (!strcmp(line, "hook_ns"))
                    f->hook_ns = v;
                else if (!strcmp(line, "flusher_ns"))
                    f->flusher_ns = v;
                else if (!strcmp(line, "interp_ns"))
                    f->interp_ns = v;
                else if (!strcmp(line, "app_ns"))
                    f->app_ns = v;
                else if (!strcmp(line, "profiler_bytes"))
                    f->profiler_bytes = v;
                else if (!strcmp(line, "peak_bytes") && v > *peak)
                    *peak = v;
            }
        }
        p = eol + 1;
    }
}

/* Per-thread holes, for the warning: the first few threads named. */
#define HOLES_NAMED 4
typedef struct holes {
    yp_seqcheck seq;
    uint32_t tid[HOLES_NAMED];
    uint64_t events[HOLES_NAMED], chunks[HOLES_NAMED];
    unsigned n, more;
} holes;

/* A hole closes the thread's frames and counts what it lost. */
static yp_status note_hole(holes *hs, yp_agg *a, yp_load_result *res, const yp_seq_gap *g) {
    if (!g->hole) return YP_OK;
    unsigned i = 0;
    while (i < hs->n && hs->tid[i] != g->thread_id) i++;
    if (i == hs->n && hs->n < HOLES_NAMED) hs->tid[hs->n++] = g->thread_id;
    if (i < hs->n) {
        hs->events[i] += g->lost_events;
        hs->chunks[i] += g->missing_chunks + (g->lost_events ? 1 : 0);
    } else {
        hs->more = 1;
    }
    res->lost_events += g->lost_events;
    return yp_agg_gap(a, g->thread_id, g->lost_events);
}

/* "; thread 3 lost 1800 events (1 chunk), ..." */
static void holes_text(const holes *hs, yp_agg *a, char *w, size_t wl) {
    for (unsigned i = 0; i < hs->n; i++) {
        size_t k = strlen(w);
        const char *name = yp_agg_thread_name(a, hs->tid[i]);
        snprintf(w + k, wl - k, "%sthread %u (%.40s) lost %" PRIu64 " event(s) in %" PRIu64 " chunk(s)",
                 k && w[k - 1] != ' ' ? "; " : "", hs->tid[i], name[0] ? name : "?", hs->events[i],
                 hs->chunks[i]);
    }
    if (hs->more) {
        size_t k = strlen(w);
        snprintf(w + k, wl - k, "; more threads lost events");
    }
}

/* The window of events read, in the trace's ticks: [lo, hi). */
typedef struct window {
    uint64_t lo, hi;
} window;

/* A chunk's events inside the window (a thread's events are in time
 * order): those before it and after it are not read. */
static yp_status take_events(yp_agg *a, const yp_chunk *c, const window *w) {
    size_t i = 0, j = c->h.n_records;
    while (i < j && c->events[i].ts < w->lo) i++;
    while (j > i && c->events[j - 1].ts >= w->hi) j--;
    if (i == j) return YP_OK;
    return yp_agg_events(a, c->h.thread_id, c->events + i, j - i, i ? 0 : c->h.dropped);
}

/* One whole chunk into the aggregator (and the footer figures into res). */
static yp_status take_chunk(yp_agg *a, yp_load_result *res, const yp_chunk *c, const window *w) {
    switch (c->h.kind) {
    case YP_CHUNK_EVENTS: return take_events(a, c, w);
    case YP_CHUNK_SYMBOLS: return yp_chunk_symbols(c, on_symbol, a);
    case YP_CHUNK_THREADS: return yp_chunk_threads(c, on_thread, a);
    case YP_CHUNK_MARKER: parse_marker(c, &res->foot, &res->peak_bytes); return YP_OK;
    case YP_CHUNK_FOOTER:
        if (yp_chunk_footer(c, &res->foot) == YP_OK) res->has_footer = 1;
        return YP_OK;
    default: return YP_OK; /* a newer writer's chunk kind: skipped by length */
    }
}

/* Every chunk: whole ones into the aggregator, damaged ones counted (and
 * their holes closed); the last damage seen in *last_bad. */
static yp_status read_chunks(yp_reader *r, yp_agg *a, yp_load_result *res, char *errbuf, size_t errlen,
                             void (*progress)(uint64_t, uint64_t), holes *hs, yp_status *last_bad,
                             const window *w) {
    yp_chunk c;
    uint64_t n = 0;
    for (;;) {
        yp_status st = yp_reader_next(r, &c);
        if (st == YP_END || st == YP_ERR_TRUNCATED) return YP_OK;
        yp_seq_gap g;
        yp_status s2 = yp_seq_check(&hs->seq, st, &c, &g) ? note_hole(hs, a, res, &g) : YP_OK;
        if (s2 == YP_OK && (st == YP_ERR_CHECKSUM || st == YP_ERR_CORRUPT)) {
            *(st == YP_ERR_CHECKSUM ? &res->checksum_errors : &res->corrupt_errors) += 1;
            *last_bad = st;
            continue;
        }
        if (s2 == YP_OK && st != YP_OK) {
            snprintf(errbuf, errlen, "%s while reading the trace", yp_status_str(st));
            return st;
        }
        if (s2 == YP_OK) s2 = take_chunk(a, res, &c, w);
        if (s2 == YP_ERR_NOMEM) {
            snprintf(errbuf, errlen, "out of memory while aggregating");
            return s2;
        }
        if (s2 == YP_ERR_CORRUPT) res->corrupt_errors++;
        if (progress && (++n & 255) == 0) {
            yp_reader_stats rs;
            yp_reader_stats_get(r, &rs);
            progress(rs.bytes_ok, rs.bytes_total);
        }
    }
}

/* What a reader of the statistics should know: cut short, damage, holes. */
static void make_warning(yp_load_result *res, const holes *hs, yp_agg *a) {
    char *w = res->warning;
    size_t wl = sizeof res->warning;
    if (res->rs.truncated || !res->rs.has_footer) {
        snprintf(w, wl,
                 "trace cut short (no footer): read %" PRIu64 " of %" PRIu64 " bytes, %" PRIu64
                 " events; events after that are lost",
                 res->rs.bytes_ok, res->rs.bytes_total, res->rs.events);
    } else if (res->rs.chunks_bad) {
        snprintf(w, wl, "%" PRIu64 " damaged chunk(s) skipped (%" PRIu64 " checksum, %" PRIu64 " corrupt)",
                 res->rs.chunks_bad, res->checksum_errors, res->corrupt_errors);
    }
    if (res->rs.chunks_bad && (res->rs.truncated || !res->rs.has_footer)) {
        size_t k = strlen(w);
        snprintf(w + k, wl - k, "; %" PRIu64 " damaged chunk(s) skipped", res->rs.chunks_bad);
    }
    if (hs->n) {
        size_t k = strlen(w);
        if (k) snprintf(w + k, wl - k, ": ");
        holes_text(hs, a, w, wl);
    }
}

static yp_status load(yp_reader *r, yp_agg *a, yp_load_result *res, char *errbuf, size_t errlen,
                      void (*progress)(uint64_t, uint64_t), holes *hs, double since_s, double until_s) {
    res->hdr = *yp_reader_header(r);
    snprintf(res->python_version, sizeof res->python_version, "%s", res->hdr.python_version);
    snprintf(res->command_line, sizeof res->command_line, "%s", res->hdr.command_line);
    res->hdr.python_version = res->python_version;
    res->hdr.command_line = res->command_line;
    yp_agg_set_ns_per_tick(a, res->hdr.ns_per_tick);
    yp_agg_set_clock(a, res->hdr.clock_kind);
    yp_status last_bad = YP_OK;
    double ticks_per_s = 1e9 / res->hdr.ns_per_tick;
    window w = {0, UINT64_MAX};
    if (since_s > 0) w.lo = res->hdr.start_ticks + (uint64_t)(since_s * ticks_per_s);
    if (until_s > 0) w.hi = res->hdr.start_ticks + (uint64_t)(until_s * ticks_per_s);
    yp_status st = read_chunks(r, a, res, errbuf, errlen, progress, hs, &last_bad, &w);
    if (st != YP_OK) return st;
    yp_reader_stats_get(r, &res->rs);
    res->has_footer = res->rs.has_footer;
    if (res->rs.chunks_ok == 0 && (res->rs.chunks_bad || res->rs.truncated)) {
        snprintf(errbuf, errlen, "no readable chunk in the trace (%s after the header)",
                 last_bad ? yp_status_str(last_bad) : "cut short");
        return YP_ERR_CORRUPT;
    }
    make_warning(res, hs, a);
    return YP_OK;
}

yp_status yp_load_trace(const char *path, yp_agg *a, yp_load_result *res, char *errbuf, size_t errlen,
                        void (*progress)(uint64_t, uint64_t)) {
    return yp_load_trace_window(path, 0, 0, a, res, errbuf, errlen, progress);
}

yp_status yp_load_trace_window(const char *path, double since_s, double until_s, yp_agg *a,
                               yp_load_result *res, char *errbuf, size_t errlen,
                               void (*progress)(uint64_t, uint64_t)) {
    memset(res, 0, sizeof *res);
    yp_reader *r;
    yp_status st = yp_reader_open(path, &r, errbuf, errlen);
    if (st != YP_OK) return st;
    holes hs = {0};
    st = load(r, a, res, errbuf, errlen, progress, &hs, since_s, until_s);
    yp_seq_free(&hs.seq);
    yp_reader_close(r);
    return st;
}

yp_status yp_load_mem(const void *data, size_t len, yp_agg *a, yp_load_result *res, char *errbuf,
                      size_t errlen) {
    memset(res, 0, sizeof *res);
    yp_reader *r;
    yp_status st = yp_reader_open_mem(data, len, &r, errbuf, errlen);
    if (st != YP_OK) return st;
    holes hs = {0};
    st = load(r, a, res, errbuf, errlen, NULL, &hs, 0, 0);
    yp_seq_free(&hs.seq);
    yp_reader_close(r);
    return st;
}
