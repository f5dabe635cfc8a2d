/*
 * yp_ring.c — per-thread single-producer/single-consumer event rings.
 *
 * Capacity is a power of two; head and tail are free-running event counters
 * (index = pos & mask; full when head - tail == capacity), as in liburing.
 * Event memory is an anonymous mmap, so untouched pages cost nothing.
 *
 * The producer keeps one slot in reserve so that, after drops, it can always
 * write the YP_EV_DROPPED record before the next event. The slow path
 * (yp_ring_push_slow) first waits for the flusher, then drops; once dropping it
 * only resumes when half the ring is free, so a stalled flusher costs one
 * wait, not one per event.
 *
 * Growth: a growable ring starts small (most threads of a server are idle
 * and never need more) with 2^max_bits events of address space reserved.
 * When it fills, the producer waits until the consumer has emptied it and
 * only then doubles the mask, if the shared budget grants the bytes: with
 * no event in flight, no index computed with the old mask is still to be
 * read. The consumer reads the mask after its acquire load of head, so it
 * sees the new mask with the first event pushed under it.
 *
 * Marks: a thread that excludes the producer (the GIL) may ask for a record
 * after the events pushed so far (REC_STOP at stop()); the consumer writes
 * it in its place. Nothing is pushed, so a mark never waits and is never
 * dropped. The fields are written only while no mark is pending and read
 * only while one is (pending is the hand-off, release/acquire both ways).
 *
 * The fast path (yp_ring_try_push) makes one compare, head < limit, where
 * limit folds in everything else the producer must stop for: the flusher's
 * nudge every quarter ring (at most 16Ki events) and the producer's own check
 * point (the hook samples its time there and retries a thread's name).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "yp_rec_int.h"

static_assert(offsetof(yp_ring, tail) == 64, "producer and consumer fields share a cache line");
static_assert(sizeof(yp_event) == 16, "ring slots are 16-byte events");

/* A busy thread's ring is drained long before it fills: the flusher is
 * woken every quarter ring, at most every 16Ki events. */
#define YP_RING_NUDGE_MAX 0x4000u

static void update_limit(yp_ring *r);

static uint64_t cap_of(const yp_ring *r) { return atomic_load_explicit(&r->mask, memory_order_relaxed) + 1; }

static uint64_t nudge_every(const yp_ring *r) {
    uint64_t q = cap_of(r) / 4;
    return q < YP_RING_NUDGE_MAX ? q : YP_RING_NUDGE_MAX;
}

yp_ring *yp_ring_new_growable(unsigned min_bits, unsigned max_bits, yp_ring_budget *budget) {
    if (min_bits < 4 || max_bits > 26 || min_bits > max_bits || yp_rec_alloc_should_fail()) return NULL;
    yp_ring *r = NULL;
    /* its own cache lines: the producer's line is the first of r */
    if (posix_memalign((void **)&r, 64, (sizeof *r + 63) & ~(size_t)63)) return NULL;
    memset(r, 0, sizeof *r);
    size_t max = ((size_t)1 << max_bits) * sizeof(yp_event);
    void *p = mmap(NULL, max, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(r);
        return NULL;
    }
    r->ev = p;
    r->max_bytes = max;
    r->first_bytes = ((uint64_t)1 << min_bits) * sizeof(yp_event);
    r->budget = min_bits < max_bits ? budget : NULL;
    atomic_store_explicit(&r->mask, ((uint64_t)1 << min_bits) - 1, memory_order_relaxed);
    atomic_store_explicit(&r->capacity_bytes, r->first_bytes, memory_order_relaxed);
    r->nudge_at = nudge_every(r) - 1;
    r->check_at = UINT64_MAX;
    update_limit(r);
    return r;
}

yp_ring *yp_ring_new(unsigned bits) { return yp_ring_new_growable(bits, bits, NULL); }

/* Growth beyond the first size goes back to the budget. */
static void give_back(yp_ring *r) {
    uint64_t cap = atomic_load_explicit(&r->capacity_bytes, memory_order_relaxed);
    if (r->budget && cap > r->first_bytes)
        atomic_fetch_sub_explicit(&r->budget->used_bytes, cap - r->first_bytes, memory_order_relaxed);
}

void yp_ring_free(yp_ring *r) {
    if (!r) return;
    give_back(r);
    munmap(r->ev, r->max_bytes);
    free(r);
}

void yp_ring_reset(yp_ring *r) {
    /* The capacity it grew to stays (and stays counted in the budget): a
     * thread that replaces a busy one is likely busy too, and growing
     * again would cost it a wait for the flusher at each doubling. */
    yp_event *ev = r->ev;
    uint64_t max = r->max_bytes, first = r->first_bytes;
    uint64_t cap = atomic_load_explicit(&r->capacity_bytes, memory_order_relaxed);
    yp_ring_budget *budget = r->budget;
    uint64_t touched = yp_ring_bytes(r) - sizeof *r; /* its pages stay written */
    memset(r, 0, sizeof *r);
    r->ev = ev;
    r->max_bytes = max;
    r->first_bytes = first;
    r->budget = budget;
    atomic_store_explicit(&r->mask, cap / sizeof(yp_event) - 1, memory_order_relaxed);
    atomic_store_explicit(&r->capacity_bytes, cap, memory_order_relaxed);
    r->nudge_at = nudge_every(r) - 1;
    r->check_at = UINT64_MAX;
    r->touched_base = touched;
    update_limit(r);
}

uint64_t yp_ring_bytes(const yp_ring *r) {
    /* the pages written so far: positions run through the ring in order */
    uint64_t used = atomic_load_explicit(&r->head, memory_order_relaxed) * sizeof(yp_event);
    if (used < r->touched_base) used = r->touched_base;
    used = (used + 4095) & ~(uint64_t)4095;
    uint64_t cap = atomic_load_explicit(&r->capacity_bytes, memory_order_relaxed);
    return (used < cap ? used : cap) + sizeof *r;
}

static void write_at(yp_ring *r, uint64_t h, uint64_t ts, uint32_t id, uint8_t kind) {
    yp_event *e = &r->ev[h & atomic_load_explicit(&r->mask, memory_order_relaxed)];
    e->ts = ts;
    e->func_id = id;
    e->kind = kind;
}

/* Double the capacity if the budget grants it. Only with the ring empty
 * (tail == head, every event taken): see the file comment. */
static int try_grow(yp_ring *r) {
    uint64_t cap = cap_of(r) * sizeof(yp_event);
    if (!r->budget || cap * 2 > r->max_bytes) return 0;
    uint64_t used = atomic_load_explicit(&r->budget->used_bytes, memory_order_relaxed);
    do {
        if (used + cap > atomic_load_explicit(&r->budget->max_bytes, memory_order_relaxed)) return 0;
    } while (!atomic_compare_exchange_weak_explicit(&r->budget->used_bytes, &used, used + cap,
                                                    memory_order_relaxed, memory_order_relaxed));
    /* relaxed: the release store of head that publishes the next event
     * orders it before that event for the consumer */
    atomic_store_explicit(&r->mask, cap / sizeof(yp_event) * 2 - 1, memory_order_relaxed);
    atomic_store_explicit(&r->capacity_bytes, cap * 2, memory_order_relaxed);
    return 1;
}

static int can_grow(const yp_ring *r) {
    return r->budget && cap_of(r) * 2 * sizeof(yp_event) <= r->max_bytes;
}

/* Wait up to the recorder's wait_ms for the consumer: until the ring is
 * empty (grow) or has a free slot. Naps of 20 us: a drain of a small ring
 * takes a few hundred, and the waiting thread holds the GIL. Returns the
 * slots in use after. */
static uint64_t wait_for_room(yp_ring *r, uint64_t h, int empty) {
    uint64_t cap = cap_of(r), used = h - r->tail_cache;
    uint64_t want = empty ? 0 : cap - 2;
    unsigned wait_ms = yp_rec_wait_ms();
    if (!wait_ms || used <= want) return used;
    struct timespec nap = {0, 20000};
    uint64_t t0 = yp_clock_mono_ns(), now = t0, end = t0 + (uint64_t)wait_ms * 1000000u;
    while (used > want && now < end) {
        yp_rec_wake(); /* again: a drain under way may have read the head before */
        nanosleep(&nap, NULL);
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        used = h - r->tail_cache;
        now = yp_clock_mono_ns();
    }
    yp_rec_note_wait(now - t0);
    return used;
}

/* No room by tail_cache, or dropping. */
static void push_full(yp_ring *r, uint64_t ts, uint32_t func_id, uint8_t kind) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t cap = cap_of(r), used = h - r->tail_cache;
    if (r->pending_drop) {
        if (cap - used < cap / 2) { /* keep dropping until half is free */
            r->pending_drop++;
            atomic_fetch_add_explicit(&r->dropped_total, 1, memory_order_relaxed);
            return;
        }
        uint64_t n = r->pending_drop > YP_FUNC_ID_MAX ? YP_FUNC_ID_MAX : r->pending_drop;
        write_at(r, h++, ts, (uint32_t)n, YP_EV_DROPPED);
        r->pending_drop = 0;
    } else if (used >= cap - 1) {
        int grow = can_grow(r);
        used = wait_for_room(r, h, grow);
        if (grow && used == 0 && try_grow(r)) {
            cap = cap_of(r);
            r->nudge_at = h + nudge_every(r);
        }
        if (used >= cap - 1) {
            r->pending_drop = 1;
            atomic_fetch_add_explicit(&r->dropped_total, 1, memory_order_relaxed);
            return;
        }
    }
    write_at(r, h++, ts, func_id, kind);
    atomic_store_explicit(&r->head, h, memory_order_release);
    if (h - r->tail_cache > cap / 2) yp_rec_wake();
}

static void update_limit(yp_ring *r) {
    /* h - tail_cache <= mask - 1  <=>  h < tail_cache + mask */
    uint64_t l = r->pending_drop ? 0 : r->tail_cache + cap_of(r) - 1;
    if (r->nudge_at < l) l = r->nudge_at;
    if (r->check_at < l) l = r->check_at;
    r->limit = l;
}

int yp_ring_push_slow(yp_ring *r, uint64_t ts, uint32_t func_id, uint8_t kind) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    int at_check = h >= r->check_at;
    if (r->pending_drop || h >= r->tail_cache + cap_of(r) - 1) {
        push_full(r, ts, func_id, kind);
    } else {
        write_at(r, h, ts, func_id, kind);
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
    }
    if (h >= r->nudge_at) {
        r->nudge_at = h + nudge_every(r);
        yp_rec_nudge();
    }
    update_limit(r);
    return at_check;
}

void yp_ring_set_check(yp_ring *r, uint64_t at) {
    r->check_at = at;
    update_limit(r);
}

uint64_t yp_ring_peek(yp_ring *r, const yp_event **a, size_t *na, const yp_event **b, size_t *nb) {
    /* acquire: pairs with the producer's release store of head; the mask
     * read after it is the one the events up to head were written with */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t cap = cap_of(r);
    uint64_t n = h - t, start = t & (cap - 1);
    uint64_t first = n < cap - start ? n : cap - start;
    *a = r->ev + start;
    *na = (size_t)first;
    *b = r->ev;
    *nb = (size_t)(n - first);
    return h;
}

void yp_ring_release(yp_ring *r, uint64_t head) {
    /* release: the producer that sees this tail may reuse the slots */
    atomic_store_explicit(&r->tail, head, memory_order_release);
}

void yp_ring_set_mark(yp_ring *r, uint8_t kind, uint64_t ts) {
    /* acquire: the consumer read the last mark's fields before clearing it;
     * a mark not taken yet keeps its (earlier) place */
    if (atomic_load_explicit(&r->mark_pending, memory_order_acquire)) return;
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t last = yp_ring_last_ts(r);
    r->mark_kind = kind;
    r->mark_head = h;
    r->mark_ts = ts > last ? ts : last;
    /* release: the consumer that sees it pending sees the fields above */
    atomic_store_explicit(&r->mark_pending, 1, memory_order_release);
}

int yp_ring_take_mark(yp_ring *r, uint64_t upto, yp_event *ev) {
    if (!atomic_load_explicit(&r->mark_pending, memory_order_acquire) || r->mark_head > upto) return 0;
    memset(ev, 0, sizeof *ev);
    ev->ts = r->mark_ts;
    ev->kind = r->mark_kind;
    /* release: the next yp_ring_set_mark writes the fields after these reads */
    atomic_store_explicit(&r->mark_pending, 0, memory_order_release);
    return 1;
}
