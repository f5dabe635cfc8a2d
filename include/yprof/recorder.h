/*
 * yprof/recorder.h — the recorder: per-thread event rings, the symbol table
 * and the flusher thread that writes rings to a trace. Pure C, no Python: the
 * CPython hook (pymod/) calls the inline push below.
 *
 * Threads and ownership
 *   - Each thread that records has its own ring (yprof/ring.h): the thread
 *     is its producer, the flusher its consumer. stop() leaves each ring a
 *     mark (REC_STOP) that the flusher writes; nothing else pushes into
 *     another thread's ring.
 *   - The recorder is a process-wide singleton (one trace per process).
 *
 * Full rings: the producer waits up to wait_ms for the flusher (it never
 * needs the GIL, so it always progresses), then drops events, counting them;
 * the next event pushed is preceded by a YP_EV_DROPPED record holding the
 * count, so the loss is in the trace at its exact place and in the stats.
 */
#ifndef YPROF_RECORDER_H
#define YPROF_RECORDER_H

#include <stdint.h>

#include "yprof/format.h"
#include "yprof/ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- clocks ---------------------------------------------------------------- */

/* Ticks of the monotonic wall clock, in ns. */
uint64_t yp_clock_mono_ns(void);
/* This thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID). */
uint64_t yp_clock_thread_cpu_ns(void);

/* The time stamp counter (0 where there is none). */
static inline uint64_t yp_clock_tsc(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
}

/* The wall clock to record with: YP_CLOCK_TSC (rate calibrated once per
 * process, on first call: against CLOCK_MONOTONIC since yp_clock_anchor(),
 * waiting only until 2 ms have passed) or YP_CLOCK_MONOTONIC (1 ns ticks). */
uint32_t yp_clock_pick_wall(double *ns_per_tick);
/* Where the TSC's calibration starts (the Python module calls it when it
 * loads); later calls do nothing. */
void yp_clock_anchor(void);

/* Ticks of the given yp_clock_kind. */
static inline uint64_t yp_clock_ticks(uint32_t kind) {
    if (kind == YP_CLOCK_TSC) return yp_clock_tsc();
    return kind == YP_CLOCK_THREAD_CPU ? yp_clock_thread_cpu_ns() : yp_clock_mono_ns();
}

/* ---- pushing into the calling thread's ring ------------------------------------ */

/* The producer's slow path, for an event yp_ring_try_push did not store:
 * a full ring waits up to wait_ms for the flusher (growing the ring when
 * the budget allows), then drops, counting; the next event stored is
 * preceded by a YP_EV_DROPPED record holding the count. Wakes the flusher
 * every quarter ring (at most 16Ki events). Returns 1 when this event is
 * at or past the check point (yp_rec_set_check), which stays until moved.
 * r must be a recorder's ring (yp_rec_ring). */
int yp_rec_push_slow(yp_ring *r, uint64_t ts, uint32_t func_id, uint32_t kindw);

/* Push one event; returns what yp_rec_push_slow returns, else 0. */
static inline int yp_rec_push(yp_ring *r, uint64_t ts, uint32_t func_id, uint32_t kindw) {
    if (__builtin_expect(yp_ring_try_push(r, ts, func_id, kindw), 1)) return 0;
    return yp_rec_push_slow(r, ts, func_id, kindw);
}

/* Have the push of event number `at` (counted as the ring's head counts)
 * take the slow path and return 1. The ring's thread only. */
void yp_rec_set_check(yp_ring *r, uint64_t at);
/* The ring's thread spent ns in the hook (published for status). */
void yp_rec_add_hook_ns(yp_ring *r, uint64_t ns);
/* Both in one call (the hook's time sample). */
void yp_rec_sampled(yp_ring *r, uint64_t next_check, uint64_t hook_ns);
/* Events the ring's thread has dropped so far. Any thread. */
uint64_t yp_rec_ring_dropped(const yp_ring *r);

/* ---- the recorder ------------------------------------------------------------ */

/* Where the flusher sends what it writes (the live aggregator). Called on the
 * flusher thread, or on a thread calling yp_rec_sync/close, never two at once. */
struct yp_rec_totals;
typedef struct yp_sink {
    void (*events)(void *ctx, uint32_t thread_id, const yp_event *ev, size_t n, uint32_t dropped);
    void (*symbol)(void *ctx, const yp_symbol *s);
    void (*thread)(void *ctx, const yp_thread_info *t);
    /* The figures the recorder cannot know (recorded time, interpreter
     * slow-down), for the MARKER chunk it writes every marker_ms; may be
     * NULL. Called on the flusher thread. */
    void (*totals)(void *ctx, struct yp_rec_totals *t);
    void *ctx;
} yp_sink;

typedef struct yp_rec_config {
    const char *path;
    uint32_t clock_kind;        /* yp_clock_kind */
    double ns_per_tick;         /* 0: 1.0 */
    int zstd_level;             /* 0: default */
    double resolution_ns;       /* stored timestamp resolution; 0: 4 ns,
                                   negative: every clock tick kept */
    const char *python_version; /* header text */
    const char *command_line;
    unsigned ring_bits;         /* 0: rings start at 4Ki events (64 KiB) and grow to
                                   128Ki (2 MiB) within ring_budget_bytes; else a
                                   fixed 2^ring_bits events per ring */
    uint64_t ring_budget_bytes; /* growth of all rings together; 0: 24 MiB */
    unsigned flush_ms;          /* 0: default 20 ms */
    unsigned wait_ms;           /* full ring wait before dropping; default 50 */
    unsigned marker_ms;         /* pollution figures written every marker_ms while
                                   recording, so a killed process leaves them; 0: 500 */
    yp_sink sink;
} yp_rec_config;

/* Status of the recorder, for status() / warnings. */
typedef struct yp_rec_status {
    int open;              /* a trace is open */
    yp_status write_error; /* first write error (sticky), YP_OK if none */
    char error_text[256];
    uint64_t events, dropped, chunks, bytes_written;
    uint64_t rings, ring_bytes, symbols, symbol_bytes;
    uint64_t writer_bytes; /* the trace writer's buffers and chunk index */
    uint64_t hook_ns, flusher_ns;
    uint64_t wait_ns;        /* producers blocked on a full ring */
    uint64_t alloc_failures; /* counted, never raised */
    uint64_t peak_bytes;     /* most ring + symbol + writer memory held since the trace opened */
} yp_rec_status;

/* Open the trace and start the flusher. A recorder already open is an error
 * (YP_ERR_ARG). On failure errbuf says why. Thread-safe with the others. */
yp_status yp_rec_open(const yp_rec_config *cfg, char *errbuf, size_t errlen);

/* Flush everything, write the footer (with the pollution figures given) and
 * close. Harmless when not open. The footer's figures are this trace's:
 * hook and wait time count from yp_rec_open, as the caller's app_ns must. */
typedef struct yp_rec_totals {
    uint64_t interp_ns, app_ns, extra_bytes;
} yp_rec_totals;

/* This trace's hook time so far, in ns, the waits for a full ring counted
 * in (what its footer's hook_ns says). Any thread; takes the registry lock. */
uint64_t yp_rec_trace_hook_ns(void);
yp_status yp_rec_close(const yp_rec_totals *tot);
/* Drain and write a footer, keeping the trace open: complete up to here, and
 * continued by later events (a new recording interval). */
yp_status yp_rec_checkpoint(const yp_rec_totals *tot);
/* After a checkpoint the file is left alone (the sink still gets every
 * chunk) until resumed: call at the next start(). */
void yp_rec_resume(void);
/* Path of the open (or last) trace. */
const char *yp_rec_path(void);

int yp_rec_is_open(void);
/* The clock kind of the open trace. */
uint32_t yp_rec_clock_kind(void);

/* The calling thread's ring, created on first use (registers it, emits its
 * thread record). NULL when out of memory (counted). Call with the GIL. */
yp_ring *yp_rec_ring_slow(void);
extern YP_THREAD_LOCAL yp_ring *yp_tls_ring;
static inline yp_ring *yp_rec_ring(void) {
    yp_ring *r = yp_tls_ring;
    return __builtin_expect(r != NULL, 1) ? r : yp_rec_ring_slow();
}

/* Set a thread's description (by Python ident); marks it to be rewritten. */
void yp_rec_thread_set(yp_ring *r, uint64_t ident, const char *name);
/* Name threads by Python ident (called with the names threading knows). */
void yp_rec_thread_name(uint64_t ident, const char *name);

/* Allocate the next function id and queue its symbol record (strings are
 * copied). Returns 0 when out of memory (counted). Call with the GIL. */
uint32_t yp_rec_symbol_add(const char *name, const char *module, const char *filename, uint32_t lineno,
                           int builtin);

/* Have ev_kind (REC_STOP) follow the events pushed so far in every live
 * ring, at ts (wall clock) or, when ts is 0 or earlier, each ring's last
 * timestamp. Nothing is pushed: the flusher writes the marks (yp_ring_set_mark),
 * so this never waits and a mark is never dropped. Call with the GIL held,
 * so no owner runs its hook meanwhile; takes the registry lock briefly. */
void yp_rec_mark_all(uint8_t ev_kind, uint64_t ts);

/* Ask the flusher to drain every ring now and wait (up to timeout_ms) until
 * it has: a flush barrier. Returns 0 when done, -1 on timeout. */
int yp_rec_sync(unsigned timeout_ms);
/* The same in two steps: ask (a ticket; 0 when no trace is open), then wait
 * for that ticket's barrier (0 done, -1 on timeout; may be called again). */
uint64_t yp_rec_sync_request(void);
int yp_rec_sync_wait(uint64_t ticket, unsigned timeout_ms);

/* Write a MARKER chunk ("key=value" lines), through the flusher's writer. */
void yp_rec_marker(const char *text);

void yp_rec_status_get(yp_rec_status *out);
/* The memory the recorder holds: rings, symbols, writer. */
static inline uint64_t yp_rec_status_bytes(const yp_rec_status *s) {
    return s->ring_bytes + s->symbol_bytes + s->writer_bytes;
}

/* fork (pthread_atfork): prepare takes every recorder lock, in order, so no
 * other thread holds one when the child is made; parent and child let go.
 * A caller with locks of its own taken under these (a sink's) takes them
 * after prepare and lets go before parent/child. */
void yp_rec_fork_prepare(void);
void yp_rec_fork_parent(void);
void yp_rec_fork_child(void);

/* In a forked child (after yp_rec_fork_child): forget the parent's rings,
 * flusher and trace (its descriptor closed, nothing written to it). */
void yp_rec_after_fork_child(void);

/* Test hook: make the next n allocations of the recorder fail (0: off);
 * empties the pool of rings, so that a new thread's ring is allocated. */
void yp_rec_fail_allocs(uint64_t n);

#ifdef __cplusplus
}
#endif

#endif
