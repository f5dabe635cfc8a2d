/*
 * yprof/ring.h — a single-producer/single-consumer ring of 16-byte events.
 *
 * It knows nothing of its users (as liburing's ring knows nothing of the
 * program that submits): a push stores or says the ring is full; whether
 * to wait, grow, drop or wake someone is the producer's caller's to decide
 * (the recorder's: recorder/yp_producer.c).
 *
 * Threads and ownership
 *   - One producer and one consumer at a time. head is written only by the
 *     producer (release), tail only by the consumer (release); each side
 *     reads the other's with acquire. Events in [tail, head) belong to the
 *     consumer, the rest of the slots to the producer.
 *   - Counters are free-running (index = count & mask), as in liburing; the
 *     ring holds at most capacity - 1 events.
 *   - Event memory is an anonymous mmap reserved for the largest size the
 *     ring may grow to; only the pages written are memory.
 */
#ifndef YPROF_RING_H
#define YPROF_RING_H

#include <stddef.h>
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
 * __tls_get_addr call; a few words of static TLS are always available. */
#define YP_THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))
#endif

#include "yprof/format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Memory a set of growable rings may add beyond their first size, shared by
 * all of them (the recorder's, one per process). */
typedef struct yp_ring_budget {
    YP_ATOMIC(uint64_t) used_bytes; /* granted beyond the rings' first size */
    YP_ATOMIC(uint64_t) max_bytes;  /* may change while rings grow */
} yp_ring_budget;

typedef struct yp_ring {
    /* producer side (its own cache line) */
    YP_ATOMIC(uint64_t) head; /* events ever pushed */
    uint64_t limit;           /* yp_ring_try_push stores while head < limit: the least
                                 of tail_cache + capacity - 1 and stop_at */
    YP_ATOMIC(uint64_t)
    mask;                /* capacity - 1 (a power of two); changed by the
                            producer only while the ring is empty */
    yp_event *ev;        /* capacity slots in use, max_bytes reserved */
    uint64_t tail_cache; /* the producer's last view of tail */
    uint64_t stop_at;    /* the producer's caller's stop (yp_ring_set_stop) */
    uint64_t pad_[2];
    /* consumer side */
    YP_ATOMIC(uint64_t) tail; /* events ever consumed */
    /* a mark the consumer writes after event number mark_head (set by a
     * thread that excludes the producer): see yp_ring_set_mark */
    YP_ATOMIC(int) mark_pending;
    uint8_t mark_kind;
    uint64_t mark_head, mark_ts;
    /* geometry */
    YP_ATOMIC(uint64_t) capacity_bytes; /* in use now (read by any thread) */
    uint64_t max_bytes;                 /* reserved (mmap) */
    uint64_t first_bytes;               /* capacity at creation */
    yp_ring_budget *budget;             /* growth beyond first_bytes; NULL: fixed size */
    uint64_t touched_base;              /* bytes written before a reset (still resident) */
} yp_ring;

/* What a push that is not the fast path's says. */
enum { YP_RING_OK = 0, YP_RING_FULL = 1 };

/* The fast path of a push: 1 when the event is stored, 0 when the ring is
 * full by the producer's last view of tail, or the producer's caller's stop
 * is reached (yp_ring_set_stop). One compare, no lock, no call. Producer. */
static inline int yp_ring_try_push(yp_ring *r, uint64_t ts, uint32_t func_id, uint32_t kindw) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (__builtin_expect(h >= r->limit, 0)) return 0;
    yp_event *e = &r->ev[h & atomic_load_explicit(&r->mask, memory_order_relaxed)];
    e->ts = ts;
    e->func_id = func_id;
    yp_event_put_kindw(e, kindw); /* kind (and pad: yp_event_put_kindw) */
    /* release: the consumer that sees head h+1 sees this event written */
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return 1;
}

/* Store one event whatever the stop, if there is room (tail re-read):
 * YP_RING_OK, or YP_RING_FULL with nothing stored. Producer. */
int yp_ring_put(yp_ring *r, uint64_t ts, uint32_t func_id, uint32_t kindw);

/* Have yp_ring_try_push fail from event number `at` on (counted as head
 * counts; 0: on every push). Producer. */
static inline void yp_ring_set_stop(yp_ring *r, uint64_t at) {
    /* room: h - tail_cache <= capacity - 2 before a store  <=>  h < tail_cache + mask */
    uint64_t room = r->tail_cache + atomic_load_explicit(&r->mask, memory_order_relaxed);
    r->stop_at = at;
    r->limit = at < room ? at : room;
}

/* Events ever pushed. Producer, or a thread that excludes it. */
static inline uint64_t yp_ring_head(const yp_ring *r) {
    return atomic_load_explicit(&r->head, memory_order_relaxed);
}
/* Events pushed and not yet consumed (tail re-read). Producer. */
uint64_t yp_ring_used(yp_ring *r);
/* Slots now (the ring holds one event fewer). Any thread. */
uint64_t yp_ring_capacity(const yp_ring *r);
/* 1 when the ring may still double (its reservation and budget aside). */
int yp_ring_can_grow(const yp_ring *r);
/* Double the capacity if the budget grants it: 1 when done. Producer, and
 * only while the ring is empty (no index computed with the old mask is
 * still to be read by the consumer). */
int yp_ring_grow(yp_ring *r);

/* The timestamp of the last event pushed, 0 before the first. Producer, or
 * a thread that excludes it. */
static inline uint64_t yp_ring_last_ts(const yp_ring *r) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    return h ? r->ev[(h - 1) & atomic_load_explicit(&r->mask, memory_order_relaxed)].ts : 0;
}

/* Set up a ring in memory the caller owns (64-byte aligned): 2^min_bits
 * slots, growing (doubling, up to 2^max_bits) within `budget` (NULL, or
 * min_bits == max_bits: a fixed size). 0, or -1 when out of memory. */
int yp_ring_init(yp_ring *r, unsigned min_bits, unsigned max_bits, yp_ring_budget *budget);
/* Give back its event memory and any growth to the budget. */
void yp_ring_destroy(yp_ring *r);
/* The same on the heap; NULL when out of memory. yp_ring_free accepts NULL. */
yp_ring *yp_ring_new_growable(unsigned min_bits, unsigned max_bits, yp_ring_budget *budget);
yp_ring *yp_ring_new(unsigned bits);
void yp_ring_free(yp_ring *r);
/* Make a drained ring like new for another producer: counters zero, the
 * capacity it grew to kept (still counted in the budget). The caller owns
 * r alone. */
void yp_ring_reset(yp_ring *r);
/* Memory the ring holds: the pages of its events it has written (bounded by
 * its capacity) and its descriptor. Any thread. */
uint64_t yp_ring_bytes(const yp_ring *r);

/* Consumer: the events available, as up to two contiguous spans. Returns the
 * head seen; call yp_ring_release(r, head) when done with them. */
uint64_t yp_ring_peek(yp_ring *r, const yp_event **a, size_t *na, const yp_event **b, size_t *nb);
void yp_ring_release(yp_ring *r, uint64_t head);
/* From a thread that excludes the producer (e.g. holding the GIL): ask that
 * a record of `kind` at `ts` follow the events pushed so far. The consumer
 * writes it (yp_ring_take_mark); nothing is pushed, so it never waits and is
 * never dropped. While a mark is not taken yet, another is ignored (the
 * first keeps its place). */
void yp_ring_set_mark(yp_ring *r, uint8_t kind, uint64_t ts);
/* Consumer: 1 and *ev when a mark is due after event number `upto` (the
 * events before it have been taken); clears it. */
int yp_ring_take_mark(yp_ring *r, uint64_t upto, yp_event *ev);
/* Consumer: 1 and *head (the event number it follows) when a mark is
 * pending, else 0. */
int yp_ring_mark_at(const yp_ring *r, uint64_t *head);

#ifdef __cplusplus
}
#endif

#endif
