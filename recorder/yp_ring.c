/*
 * yp_ring.c — the single-producer/single-consumer event ring (yprof/ring.h).
 *
 * Growth: a growable ring starts small (most threads of a server are idle
 * and never need more) with 2^max_bits events of address space reserved.
 * Its producer doubles it only while it is empty (tail == head, every event
 * taken), if the shared budget grants the bytes: no index computed with the
 * old mask is still to be read. The consumer reads the mask after its
 * acquire load of head, so it sees the new mask with the first event pushed
 * under it.
 *
 * Marks: a thread that excludes the producer (the GIL) may ask for a record
 * after the events pushed so far (REC_STOP at stop()); the consumer writes
 * it in its place. The fields are written only while no mark is pending
 * and read only while one is (pending is the hand-off, release/acquire both
 * ways).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "yprof/ring.h"

static_assert(offsetof(yp_ring, tail) == 64, "producer and consumer fields share a cache line");
static_assert(sizeof(yp_event) == 16, "ring slots are 16-byte events");

uint64_t yp_ring_capacity(const yp_ring *r) {
    return atomic_load_explicit(&r->mask, memory_order_relaxed) + 1;
}

static void update_limit(yp_ring *r) { yp_ring_set_stop(r, r->stop_at); }

int yp_ring_init(yp_ring *r, unsigned min_bits, unsigned max_bits, yp_ring_budget *budget) {
    if (min_bits < 4 || max_bits > 26 || min_bits > max_bits) return -1;
    memset(r, 0, sizeof *r);
    size_t max = ((size_t)1 << max_bits) * sizeof(yp_event);
    void *p = mmap(NULL, max, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return -1;
    r->ev = p;
    r->max_bytes = max;
    r->first_bytes = ((uint64_t)1 << min_bits) * sizeof(yp_event);
    r->budget = min_bits < max_bits ? budget : NULL;
    atomic_store_explicit(&r->mask, ((uint64_t)1 << min_bits) - 1, memory_order_relaxed);
    atomic_store_explicit(&r->capacity_bytes, r->first_bytes, memory_order_relaxed);
    r->stop_at = UINT64_MAX;
    update_limit(r);
    return 0;
}

/* Growth beyond the first size goes back to the budget. */
static void give_back(yp_ring *r) {
    uint64_t cap = atomic_load_explicit(&r->capacity_bytes, memory_order_relaxed);
    if (r->budget && cap > r->first_bytes)
        atomic_fetch_sub_explicit(&r->budget->used_bytes, cap - r->first_bytes, memory_order_relaxed);
}

void yp_ring_destroy(yp_ring *r) {
    give_back(r);
    munmap(r->ev, r->max_bytes);
    r->ev = NULL;
}

yp_ring *yp_ring_new_growable(unsigned min_bits, unsigned max_bits, yp_ring_budget *budget) {
    yp_ring *r = NULL;
    /* its own cache lines: the producer's line is the first of r */
    if (posix_memalign((void **)&r, 64, (sizeof *r + 63) & ~(size_t)63)) return NULL;
    if (yp_ring_init(r, min_bits, max_bits, budget)) {
        free(r);
        return NULL;
    }
    return r;
}

yp_ring *yp_ring_new(unsigned bits) { return yp_ring_new_growable(bits, bits, NULL); }

void yp_ring_free(yp_ring *r) {
    if (!r) return;
    yp_ring_destroy(r);
    free(r);
}

void yp_ring_reset(yp_ring *r) {
    /* The capacity it grew to stays (and stays counted in the budget): a
     * producer that replaces a busy one is likely busy too, and growing
     * again would cost it a wait for the consumer at each doubling. */
    yp_ring keep = *r;
    uint64_t cap = atomic_load_explicit(&r->capacity_bytes, memory_order_relaxed);
    uint64_t touched = yp_ring_bytes(r) - sizeof *r; /* its pages stay written */
    memset(r, 0, sizeof *r);
    r->ev = keep.ev;
    r->max_bytes = keep.max_bytes;
    r->first_bytes = keep.first_bytes;
    r->budget = keep.budget;
    atomic_store_explicit(&r->mask, cap / sizeof(yp_event) - 1, memory_order_relaxed);
    atomic_store_explicit(&r->capacity_bytes, cap, memory_order_relaxed);
    r->stop_at = UINT64_MAX;
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

uint64_t yp_ring_used(yp_ring *r) {
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    update_limit(r);
    return atomic_load_explicit(&r->head, memory_order_relaxed) - r->tail_cache;
}

int yp_ring_put(yp_ring *r, uint64_t ts, uint32_t func_id, uint32_t kindw) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h - r->tail_cache >= yp_ring_capacity(r) - 1 && yp_ring_used(r) >= yp_ring_capacity(r) - 1)
        return YP_RING_FULL;
    yp_event *e = &r->ev[h & atomic_load_explicit(&r->mask, memory_order_relaxed)];
    e->ts = ts;
    e->func_id = func_id;
    yp_event_put_kindw(e, kindw);
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return YP_RING_OK;
}

int yp_ring_can_grow(const yp_ring *r) {
    return r->budget && yp_ring_capacity(r) * 2 * sizeof(yp_event) <= r->max_bytes;
}

int yp_ring_grow(yp_ring *r) {
    uint64_t cap = yp_ring_capacity(r) * sizeof(yp_event);
    if (!yp_ring_can_grow(r) || yp_ring_used(r) != 0) return 0;
    uint64_t used = atomic_load_explicit(&r->budget->used_bytes, memory_order_relaxed);
    do {
        if (used + cap > atomic_load_explicit(&r->budget->max_bytes, memory_order_relaxed)) return 0;
    } while (!atomic_compare_exchange_weak_explicit(&r->budget->used_bytes, &used, used + cap,
                                                    memory_order_relaxed, memory_order_relaxed));
    /* relaxed: the release store of head that publishes the next event
     * orders it before that event for the consumer */
    atomic_store_explicit(&r->mask, cap / sizeof(yp_event) * 2 - 1, memory_order_relaxed);
    atomic_store_explicit(&r->capacity_bytes, cap * 2, memory_order_relaxed);
    update_limit(r);
    return 1;
}

uint64_t yp_ring_peek(yp_ring *r, const yp_event **a, size_t *na, const yp_event **b, size_t *nb) {
    /* acquire: pairs with the producer's release store of head; the mask
     * read after it is the one the events up to head were written with */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t cap = yp_ring_capacity(r);
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

int yp_ring_mark_at(const yp_ring *r, uint64_t *head) {
    if (!atomic_load_explicit(&r->mark_pending, memory_order_acquire)) return 0;
    *head = r->mark_head;
    return 1;
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
