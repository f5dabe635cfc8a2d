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
 * The fast path (yp_ring_try_push) makes one compare, head < limit, where
 * limit folds in everything else the producer must stop for: the flusher's
 * nudge every 16Ki events and the producer's own check point (the hook
 * samples its time there and retries a thread's name).
 */
#define _GNU_SOURCE
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "yp_rec_int.h"

static_assert(offsetof(yp_ring, tail) == 64, "producer and consumer fields share a cache line");

/* A ring holds 128Ki events by default: nudging the flusher every 16Ki has
 * it drain a busy thread's ring long before it fills. */
#define YP_RING_NUDGE_EVERY 0x4000u

static void update_limit(yp_ring *r);

yp_ring *yp_ring_new(unsigned bits) {
    if (bits < 4 || bits > 26 || yp_rec_alloc_should_fail()) return NULL;
    yp_ring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    size_t bytes = ((size_t)1 << bits) * sizeof(yp_event);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(r);
        return NULL;
    }
    r->ev = p;
    r->mask = ((uint64_t)1 << bits) - 1;
    r->nudge_at = YP_RING_NUDGE_EVERY - 1;
    r->check_at = UINT64_MAX;
    update_limit(r);
    r->capacity_bytes = bytes;
    return r;
}

void yp_ring_free(yp_ring *r) {
    if (!r) return;
    munmap(r->ev, r->capacity_bytes);
    free(r);
}

static void write_at(yp_ring *r, uint64_t h, uint64_t ts, uint32_t id, uint8_t kind) {
    yp_event *e = &r->ev[h & r->mask];
    e->ts = ts;
    e->func_id = id;
    e->kind = kind;
}

/* No room by tail_cache, or dropping. */
static void push_full(yp_ring *r, uint64_t ts, uint32_t func_id, uint8_t kind) {
    uint64_t cap = r->mask + 1;
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t used = h - r->tail_cache;
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
        unsigned wait_ms = yp_rec_wait_ms();
        struct timespec nap = {0, 100000}; /* 100 us */
        uint64_t t0 = wait_ms ? yp_clock_mono_ns() : 0;
        for (unsigned waited_us = 0; used >= cap - 1 && waited_us < wait_ms * 1000u; waited_us += 100) {
            yp_rec_wake();
            nanosleep(&nap, NULL);
            r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
            used = h - r->tail_cache;
        }
        if (wait_ms) yp_rec_note_wait(yp_clock_mono_ns() - t0);
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
    uint64_t l = r->pending_drop ? 0 : r->tail_cache + r->mask;
    if (r->nudge_at < l) l = r->nudge_at;
    if (r->check_at < l) l = r->check_at;
    r->limit = l;
}

int yp_ring_push_slow(yp_ring *r, uint64_t ts, uint32_t func_id, uint8_t kind) {
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    int at_check = h >= r->check_at;
    if (r->pending_drop || h >= r->tail_cache + r->mask) {
        push_full(r, ts, func_id, kind);
    } else {
        write_at(r, h, ts, func_id, kind);
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
    }
    if (h >= r->nudge_at) {
        r->nudge_at = h + YP_RING_NUDGE_EVERY;
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
    /* acquire: pairs with the producer's release store of head */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t n = h - t, start = t & r->mask, cap = r->mask + 1;
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
