/*
 * yprof/recorder.h — the recorder: per-thread event rings, the symbol table
 * and the flusher thread that writes rings to a trace. Pure C, no Python: the
 * CPython hook (pymod/yp_hook.c) calls the inline push below.
 *
 * Threads and ownership
 *   - A ring has one producer at a time: its own thread, or (for the
 *     REC_STOP marks written at stop) the thread holding the recorder's
 *     registry lock while the owner cannot run the hook (the hook runs under
 *     the GIL, and so does stop()). It has one consumer: the flusher.
 *   - head is written only by the producer (release), tail only by the
 *     flusher (release); each side reads the other's with acquire. Events in
 *     [tail, head) belong to the flusher, the rest to the producer.
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

#ifdef __cplusplus /* the GoogleTest suites include this header */
#include <atomic>
#define YP_ATOMIC(T) std::atomic<T>
#define YP_THREAD_LOCAL thread_local __attribute__((tls_model("initial-exec")))
using std::atomic_load_explicit;
using std::atomic_store_explicit;
using std::memory_order_acquire;
using std::memory_order_relaxed;
using std::memory_order_release;
#else
#include <stdatomic.h>
#define YP_ATOMIC(T) _Atomic T
/* initial-exec: a direct %fs-relative load on the hot path instead of a
 * __tls_get_addr call; one pointer of static TLS is always available. */
#define YP_THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))
#endif

#include "yprof/format.h"

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
 * process, about 20 ms, on first call) or YP_CLOCK_MONOTONIC (1 ns ticks). */
uint32_t yp_clock_pick_wall(double *ns_per_tick);

/* Ticks of the given yp_clock_kind. */
static inline uint64_t yp_clock_ticks(uint32_t kind) {
    if (kind == YP_CLOCK_TSC) return yp_clock_tsc();
    return kind == YP_CLOCK_THREAD_CPU ? yp_clock_thread_cpu_ns() : yp_clock_mono_ns();
}

/* ---- rings ------------------------------------------------------------------ */

/* Memory a set of growable rings may add beyond their first size, shared by
 * all of them (the recorder's, one per process). */
typedef struct yp_ring_budget {
    YP_ATOMIC(uint64_t) used_bytes; /* granted beyond the rings' first size */
    YP_ATOMIC(uint64_t) max_bytes;  /* may change while rings grow (a new trace) */
} yp_ring_budget;

typedef struct yp_ring {
    /* producer side (its own cache line) */
    YP_ATOMIC(uint64_t) head; /* events ever pushed */
    uint64_t tail_cache;      /* producer's last view of tail */
    uint64_t pending_drop;    /* dropped since the last successful push */
    YP_ATOMIC(uint64_t)
    mask;              /* capacity - 1 (a power of two); written by
                          the producer only while the ring is empty */
    yp_event *ev;      /* mmap'd, max_bytes reserved, capacity used */
    uint64_t limit;    /* the fast path pushes while head < limit: the
                          least of tail_cache + mask (0 while dropping),
                          nudge_at and check_at */
    uint64_t nudge_at; /* the push of this event wakes the flusher */
    uint64_t check_at; /* the push of this event returns 1 (producer's) */
    /* consumer side */
    YP_ATOMIC(uint64_t) tail; /* events ever consumed */
    /* a REC_STOP (or other) mark the flusher writes after event number
     * mark_head; set by a thread that excludes the producer (the GIL) */
    YP_ATOMIC(int) mark_pending;
    uint8_t mark_kind;
    uint64_t mark_head, mark_ts;
    /* shared, rarely written */
    YP_ATOMIC(uint64_t) dropped_total;
    YP_ATOMIC(uint64_t) hook_ns; /* published by the producer now and then */
    YP_ATOMIC(int) ended;        /* the thread has exited (set once) */
    int cpu_clock_ok;
    int cpu_clock; /* clockid_t of the thread's CPU clock */
    uint32_t thread_id;
    uint64_t ident, native_id;
    uint64_t cpu_ns_at_end;
    char name[64];
    int name_pending;                   /* the hook has not found the thread's name yet (producer) */
    int info_dirty;                     /* thread record to (re)write; registry lock */
    struct yp_ring *next;               /* registry list; registry lock */
    YP_ATOMIC(uint64_t) capacity_bytes; /* in use now (grows; read by the flusher) */
    uint64_t max_bytes;                 /* reserved (mmap) */
    uint64_t first_bytes;               /* capacity at creation */
    yp_ring_budget *budget;             /* growth beyond first_bytes; NULL: fixed size */
    uint64_t touched_base;              /* bytes written before a reset (still resident) */
    /* the CPU clock between reads (producer; pymod/yp_hook.c) */
    uint64_t cpu_wall; /* wall ticks at the thread's last event */
    uint64_t cpu_est;  /* CPU time then, ns */
    uint64_t cpu_debt; /* estimate found ahead of the real clock, ns */
    uint32_t cpu_left; /* events until the next forced read */
} yp_ring;

/* Wake the flusher now (called by a push every 16Ki events). */
void yp_rec_nudge(void);

/* The fast path of a push: 1 when the event is stored, 0 when the caller
 * must call yp_ring_push_slow (the ring is full or dropping, the flusher is
 * due a nudge, or the producer's check point is reached). One compare, no
 * lock, no allocation, no syscall. Only the ring's producer may push. */
static inline int yp_ring_try_push(yp_ring *r, uint64_t ts, uint32_t func_id, uint8_t kind) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (__builtin_expect(h >= r->limit, 0)) return 0;
    yp_event *e = &r->ev[h & atomic_load_explicit(&r->mask, memory_order_relaxed)];
    e->ts = ts;
    e->func_id = func_id;
    e->kind = kind;
    /* release: the flusher that sees head h+1 sees this event written */
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return 1;
}

/* The slow path: waits for room, then drops (counted); wakes the flusher
 * every 16Ki events, so a busy thread's ring is drained long before it fills.
 * Returns 1 when this event is at or past check_at (which stays set until
 * the producer moves it with yp_ring_set_check). */
int yp_ring_push_slow(yp_ring *r, uint64_t ts, uint32_t func_id, uint8_t kind);

/* Push one event; returns what yp_ring_push_slow returns, else 0. */
static inline int yp_ring_push(yp_ring *r, uint64_t ts, uint32_t func_id, uint8_t kind) {
    if (__builtin_expect(yp_ring_try_push(r, ts, func_id, kind), 1)) return 0;
    return yp_ring_push_slow(r, ts, func_id, kind);
}

/* Have the push of event number `at` (counted as head counts) take the slow
 * path and return 1. Producer only. */
void yp_ring_set_check(yp_ring *r, uint64_t at);

/* The timestamp of the last event pushed, 0 before the first. Producer, or
 * a thread that excludes it (the GIL, or the ring's thread has ended). */
static inline uint64_t yp_ring_last_ts(const yp_ring *r) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    return h ? r->ev[(h - 1) & atomic_load_explicit(&r->mask, memory_order_relaxed)].ts : 0;
}

/* Allocate a ring of 2^bits events (mmap). NULL on failure. */
yp_ring *yp_ring_new(unsigned bits);
/* A ring of 2^min_bits events that grows (doubling, up to 2^max_bits) when
 * it fills faster than the consumer drains it, while `budget` allows: a
 * full ring waits until the consumer has emptied it, then doubles. Its
 * address space (2^max_bits events) is reserved up front; only the pages
 * used are memory. */
yp_ring *yp_ring_new_growable(unsigned min_bits, unsigned max_bits, yp_ring_budget *budget);
/* Memory the ring holds: the pages of its events it has written (bounded by
 * its capacity) and its descriptor. Any thread. */
uint64_t yp_ring_bytes(const yp_ring *r);
/* Make a drained ring of an exited thread like new, for another thread:
 * counters zero, the capacity it grew to kept (still counted in the
 * budget until the ring is freed). The caller owns r alone. */
void yp_ring_reset(yp_ring *r);
void yp_ring_free(yp_ring *r); /* accepts NULL */

/* Consumer: the events available, as up to two contiguous spans. Returns the
 * head seen; call yp_ring_release(r, head) when done with them. */
uint64_t yp_ring_peek(yp_ring *r, const yp_event **a, size_t *na, const yp_event **b, size_t *nb);
void yp_ring_release(yp_ring *r, uint64_t head);
/* Consumer: ask (from a thread that excludes the producer, e.g. holding the
 * GIL) that a record of `kind` at `ts` follow the events pushed so far. The
 * consumer writes it (yp_ring_take_mark); nothing is pushed, so it never
 * waits and is never dropped. While a mark is not taken yet, another is
 * ignored (the first keeps its place). */
void yp_ring_set_mark(yp_ring *r, uint8_t kind, uint64_t ts);
/* Consumer: 1 and *ev when a mark is due after event number `upto` (the
 * events before it have been taken); clears it. */
int yp_ring_take_mark(yp_ring *r, uint64_t upto, yp_event *ev);

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
    /* the footer's interp_ns is at most this share of app_ns less the
     * hook's time (yp_interp_bounded); 0: not bounded */
    double interp_max_share;
} yp_rec_totals;

/* The interpreter's estimated slow-down interp_ns, at most `share` of the
 * recorded time the hook left to the application (app_ns - hook_ns): the
 * share of its time a calibration loop lost to an empty hook. share <= 0:
 * interp_ns as it is. */
static inline uint64_t yp_interp_bounded(uint64_t interp_ns, uint64_t app_ns, uint64_t hook_ns,
                                         double share) {
    if (!(share > 0)) return interp_ns;
    double left = app_ns > hook_ns ? (double)(app_ns - hook_ns) : 0.0;
    double max = share < 1 ? share * left : left;
    return (double)interp_ns < max ? interp_ns : (uint64_t)max;
}
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
