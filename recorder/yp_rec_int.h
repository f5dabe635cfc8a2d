/* yp_rec_int.h — what recorder/ files share privately: the thread
 * descriptor around each ring and the recorder singleton. */
#ifndef YP_REC_INT_H
#define YP_REC_INT_H

#include <pthread.h>

#include "yprof/containers.h"
#include "yprof/recorder.h"

/* A recording thread: its ring (first, so the hook's yp_ring pointer is the
 * descriptor's address) and what the recorder knows of the thread. */
typedef struct yp_rthread {
    yp_ring ring;
    /* the thread's own (producer) */
    uint64_t nudge_at;     /* the push of this event wakes the flusher */
    uint64_t check_at;     /* the push of this event returns 1 (yp_rec_set_check) */
    uint64_t pending_drop; /* dropped since the last event stored */
    /* shared, rarely written */
    YP_ATOMIC(uint64_t) dropped_total;
    YP_ATOMIC(uint64_t) hook_ns; /* published by the thread now and then */
    YP_ATOMIC(int) ended;        /* the thread has exited (set once) */
    uint64_t cpu_ns_at_end;      /* its CPU time then (before ended) */
    int cpu_clock_ok;
    int cpu_clock; /* clockid_t of the thread's CPU clock */
    /* the thread record; reg_mu */
    uint32_t thread_id;
    uint64_t ident, native_id;
    char name[64];
    int info_dirty;          /* to be (re)written */
    struct yp_rthread *next; /* registry list or pool */
} yp_rthread;

static inline yp_rthread *yp_rthread_of(yp_ring *r) { return (yp_rthread *)r; }

/* The recorder singleton (yp_flusher.c), R for short. Locks, always taken
 * in this order: drain_mu, the symbol table's, reg_mu, wake_mu. */
typedef struct yp_rec_state {
    pthread_mutex_t drain_mu, reg_mu, wake_mu;
    pthread_cond_t wake_cv, done_cv;
    _Atomic int open;
    yp_writer *w;
    char path[4096];
    uint32_t clock_kind;
    yp_sink sink;
    pthread_t thread;
    int thread_started;
    int stop_req;                 /* wake_mu */
    uint64_t sync_req, sync_done; /* wake_mu */
    unsigned flush_ms, ring_bits, ring_min_bits, marker_ms;
    yp_ring_budget budget;
    yp_rthread *pool; /* reg_mu: drained rings of exited threads, for new ones */
    unsigned n_pool;
    _Atomic int refresh_threads; /* the next drain rewrites every thread record (CPU time) */
    _Atomic uint64_t peak_bytes; /* most rings + symbols + writer held since the trace opened */
    uint64_t marker_at;          /* drain_mu: monotonic ns of the next MARKER */
    _Atomic unsigned wait_ms;
    yp_rthread *rings;       /* reg_mu */
    uint32_t next_thread_id; /* reg_mu */
    uint32_t sym_written;    /* drain_mu */
    _Atomic uint64_t flusher_ns;
    _Atomic uint64_t wait_ns; /* producers blocked on a full ring */
    _Atomic uint64_t alloc_failures;
    _Atomic uint64_t fail_allocs;
    yp_status werr;
    int paused;           /* drain_mu: footer written; file left alone until resumed */
    char error_text[256]; /* drain_mu */
    yp_event *scratch;    /* drain_mu */
    size_t scratch_cap;
    yp_rthread **snap; /* drain_mu */
    size_t snap_cap;
    uint64_t freed_dropped;              /* drops of rings already freed; reg_mu */
    uint64_t freed_hook_ns;              /* hook time of rings already freed; reg_mu */
    uint64_t base_hook_ns, base_wait_ns; /* both when this trace opened (set before its flusher starts) */
} yp_rec_state;

extern yp_rec_state yp_R;
#define R yp_R

/* yp_flusher.c: wake the flusher now (a ring is filling up). */
void yp_rec_wake(void);
/* Milliseconds a full ring waits before dropping; 0 when no trace is open. */
unsigned yp_rec_wait_ms(void);

/* yp_threads.c */
/* 1 when a test asked this allocation to fail (counted in alloc_failures). */
int yp_rec_alloc_should_fail(void);
/* The thread's CPU time now (or at its end). */
uint64_t yp_rthread_cpu_ns(const yp_rthread *t);
/* Out of the registry into the pool (or freed). Caller holds drain_mu. */
void yp_rthread_retire(yp_rthread *t);
/* Memory of the rings (registered and pooled); their number. reg_mu held. */
uint64_t yp_rthreads_bytes_locked(uint64_t *count);

/* yp_producer.c: a descriptor's producer state like new. */
void yp_producer_reset(yp_rthread *t);

/* yp_threads.c: forget the parent's rings in a forked child. */
void yp_rec_threads_after_fork_child(void);

/* yp_flusher.c: the condition variables anew (on CLOCK_MONOTONIC). */
void yp_rec_init_conds(void);

/* yp_drain.c: drain every ring once (drain_mu held); note a write error. */
void yp_drain_locked(void);
void yp_drain_note_write_error(void);
/* The file is written (no write error, not paused). drain_mu held. */
int yp_drain_file_ok(void);

#endif
