/*
 * yp_drain.c — one drain: every ring's new events, and the symbols and
 * thread records they need first, to the trace writer (zstd chunks on
 * disk) and to the sink (the live aggregator). Runs under drain_mu, on the
 * flusher thread or on a thread closing the trace.
 *
 * Order: (1) read each ring's head (acquire), (2) write the symbols and
 * thread records added so far, (3) write each ring's events up to the head
 * read in (1). A symbol is added before the first event naming it is pushed,
 * so (2) always covers the events of (3): the trace never names a function
 * before describing it.
 *
 * Errors: a write error is sticky in the writer; the drain then stops
 * writing but keeps feeding the sink, so live stats stay exact, and the
 * error is reported by yp_rec_status_get. Nothing here aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yp_rec_int.h"
#include "yp_symtab_int.h"

void yp_drain_note_write_error(void) {
    yp_status st = yp_writer_error(R.w);
    if (st && !R.werr) {
        R.werr = st;
        snprintf(R.error_text, sizeof R.error_text,
                 "writing %.160s failed: %s (%s); recording goes on in memory", R.path, yp_status_str(st),
                 strerror(yp_writer_errno(R.w)));
    }
}

/* The file is written unless a write failed or recording is paused (between
 * stop() and the next start(): the trace then ends with its footer). */
int yp_drain_file_ok(void) { return R.w && !R.werr && !R.paused; }

static void emit_events(uint32_t thread_id, const yp_event *ev, size_t n) {
    while (n) {
        size_t k = n > YP_CHUNK_EVENTS_MAX ? YP_CHUNK_EVENTS_MAX : n;
        if (yp_drain_file_ok()) {
            yp_writer_events(R.w, thread_id, ev, k, 0);
            yp_drain_note_write_error();
        }
        if (R.sink.events) R.sink.events(R.sink.ctx, thread_id, ev, k, 0);
        ev += k;
        n -= k;
    }
}

/* The symbols added since the last drain, in batches. */
static void emit_symbols(void) {
    uint32_t n = yp_symtab_count();
    yp_symbol batch[64];
    while (R.sym_written < n) {
        uint32_t m = n - R.sym_written > 64 ? 64 : n - R.sym_written;
        for (uint32_t j = 0; j < m; j++) batch[j] = *yp_symtab_get(R.sym_written + j + 1);
        if (yp_drain_file_ok()) {
            yp_writer_symbols(R.w, batch, m);
            yp_drain_note_write_error();
        }
        if (R.sink.symbol)
            for (uint32_t j = 0; j < m; j++) R.sink.symbol(R.sink.ctx, &batch[j]);
        R.sym_written += m;
    }
}

/* Emit the events a peek gave (spans a and b, ending at event number h), and
 * the ring's mark after the event it follows. */
static void emit_ring(yp_rthread *t, const yp_event *a, size_t na, const yp_event *b, size_t nb, uint64_t h) {
    yp_event mark;
    uint64_t first = h - na - nb, at;
    /* a mark is set at the producer's head, never behind the tail; a mark
     * ahead of h waits for the next drain */
    if (yp_ring_mark_at(&t->ring, &at) && at <= h) {
        size_t k = at > first ? (size_t)(at - first) : 0; /* events before it */
        size_t ka = k < na ? k : na, kb = k - ka;
        if (ka) emit_events(t->thread_id, a, ka);
        if (kb) emit_events(t->thread_id, b, kb);
        if (yp_ring_take_mark(&t->ring, h, &mark)) emit_events(t->thread_id, &mark, 1);
        a += ka;
        na -= ka;
        b += kb;
        nb -= kb;
    }
    if (!(na + nb)) return;
    if (na && nb && yp_grow((void **)&R.scratch, &R.scratch_cap, na + nb + 1, sizeof *R.scratch, 4096) == 0) {
        memcpy(R.scratch, a, na * sizeof *a);
        memcpy(R.scratch + na, b, nb * sizeof *b);
        emit_events(t->thread_id, R.scratch, na + nb);
    } else {
        if (na) emit_events(t->thread_id, a, na);
        if (nb) emit_events(t->thread_id, b, nb);
    }
}

/* The memory held now, for the peak. */
static void note_peak(void) {
    uint64_t b = yp_symtab_bytes() + yp_writer_bytes(R.w); /* drain_mu held */
    pthread_mutex_lock(&R.reg_mu);
    b += yp_rthreads_bytes_locked(NULL);
    pthread_mutex_unlock(&R.reg_mu);
    uint64_t p = atomic_load(&R.peak_bytes);
    while (b > p && !atomic_compare_exchange_weak(&R.peak_bytes, &p, b)) {}
}

/* The registered threads into R.snap; their number. */
static size_t snapshot_threads(void) {
    size_t n = 0;
    pthread_mutex_lock(&R.reg_mu);
    for (yp_rthread *t = R.rings; t; t = t->next) n++;
    if (n > R.snap_cap) yp_grow((void **)&R.snap, &R.snap_cap, n, sizeof *R.snap, 16);
    n = 0;
    for (yp_rthread *t = R.rings; t && n < R.snap_cap; t = t->next) R.snap[n++] = t;
    pthread_mutex_unlock(&R.reg_mu);
    return n;
}

/* Every thread's record when asked (their CPU time so far: a stop, a sync
 * for get_stats, a marker), else the new, renamed and ended ones. */
static void emit_threads(size_t n) {
    yp_thread_info infos[64];
    char names[64][64];
    int refresh = atomic_exchange(&R.refresh_threads, 0);
    for (size_t i = 0; i < n;) {
        size_t ninfo = 0;
        pthread_mutex_lock(&R.reg_mu);
        for (; i < n && ninfo < 64; i++) {
            yp_rthread *t = R.snap[i];
            if (!t->info_dirty && !refresh && !atomic_load(&t->ended)) continue;
            t->info_dirty = 0;
            snprintf(names[ninfo], sizeof names[ninfo], "%s", t->name);
            infos[ninfo] =
                (yp_thread_info){t->thread_id, t->ident, t->native_id, yp_rthread_cpu_ns(t), names[ninfo]};
            ninfo++;
        }
        pthread_mutex_unlock(&R.reg_mu);
        if (!ninfo) continue;
        /* the sink takes its own lock: never under reg_mu */
        if (yp_drain_file_ok()) yp_writer_threads(R.w, infos, ninfo);
        if (R.sink.thread)
            for (size_t j = 0; j < ninfo; j++) R.sink.thread(R.sink.ctx, &infos[j]);
    }
    if (R.w) yp_drain_note_write_error();
}

/* One ring's events up to head `upto` (what the symbols written cover);
 * an exited thread's drained ring then retires, after its THREAD_END. */
static void drain_ring(yp_rthread *t, uint64_t upto) {
    int ended = atomic_load_explicit(&t->ended, memory_order_acquire);
    const yp_event *a, *b;
    size_t na, nb;
    uint64_t h = yp_ring_peek(&t->ring, &a, &na, &b, &nb);
    if (h > upto) {
        uint64_t extra = h - upto;
        h = upto;
        if (nb >= extra) {
            nb -= extra;
        } else {
            na -= extra - nb;
            nb = 0;
        }
    }
    emit_ring(t, a, na, b, nb, h);
    if (na + nb) yp_ring_release(&t->ring, h);
    if (ended && yp_ring_head(&t->ring) == h) {
        yp_event end = {yp_ring_last_ts(&t->ring), 0, YP_EV_THREAD_END, {0}};
        emit_events(t->thread_id, &end, 1);
        yp_rthread_retire(t);
    }
}

void yp_drain_locked(void) {
    size_t n = snapshot_threads();
    /* heads first, then symbols: see the file comment */
    uint64_t *heads = calloc(n + 1, sizeof *heads);
    if (!heads) return;
    for (size_t i = 0; i < n; i++)
        heads[i] = atomic_load_explicit(&R.snap[i]->ring.head, memory_order_acquire);
    emit_symbols();
    emit_threads(n);
    for (size_t i = 0; i < n; i++) drain_ring(R.snap[i], heads[i]);
    free(heads);
    note_peak();
}
