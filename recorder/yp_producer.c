/*
 * yp_producer.c — what a recording thread does when its ring's fast path
 * stops: the recorder's policy on top of the plain ring (yprof/ring.h).
 *
 * The ring's stop point folds in everything the thread must stop for: the
 * flusher's nudge every quarter ring (at most 16Ki events, so a busy
 * thread's ring is drained long before it fills), the hook's check point
 * (yp_rec_set_check), and, while dropping, every event.
 *
 * A full ring first waits for the flusher, up to wait_ms, in naps of 20 us
 * (a drain of a small ring takes a few hundred, and the waiting thread
 * holds the GIL). A growable ring waits until it is empty and then doubles
 * if the budget allows. If there is still no room the event is dropped and
 * counted; dropping goes on until half the ring is free (so a stalled
 * flusher costs one wait, not one per event), and the first event stored
 * then is preceded by a YP_EV_DROPPED record holding the count.
 */
#define _GNU_SOURCE
#include <time.h>

#include "yp_rec_int.h"

#define NUDGE_MAX 0x4000u

static uint64_t nudge_every(const yp_ring *r) {
    uint64_t q = yp_ring_capacity(r) / 4;
    return q < NUDGE_MAX ? q : NUDGE_MAX;
}

/* The ring's stop: the next nudge or check, every event while dropping. */
static void update_stop(yp_rthread *t) {
    uint64_t at = t->nudge_at < t->check_at ? t->nudge_at : t->check_at;
    yp_ring_set_stop(&t->ring, t->pending_drop ? 0 : at);
}

void yp_producer_reset(yp_rthread *t) {
    t->nudge_at = nudge_every(&t->ring) - 1;
    t->check_at = UINT64_MAX;
    t->pending_drop = 0;
    update_stop(t);
}

/* Wait up to wait_ms for the flusher: until the ring is empty (to grow) or
 * has room for an event. Returns the events in it after. */
static uint64_t wait_for_room(yp_ring *r, int empty) {
    uint64_t used = yp_ring_used(r), want = empty ? 0 : yp_ring_capacity(r) - 2;
    unsigned wait_ms = yp_rec_wait_ms();
    if (!wait_ms || used <= want) return used;
    struct timespec nap = {0, 20000};
    uint64_t t0 = yp_clock_mono_ns(), now = t0, end = t0 + (uint64_t)wait_ms * 1000000u;
    while (used > want && now < end) {
        yp_rec_wake(); /* again: a drain under way may have read the head before */
        nanosleep(&nap, NULL);
        used = yp_ring_used(r);
        now = yp_clock_mono_ns();
    }
    atomic_fetch_add(&R.wait_ns, now - t0);
    return used;
}

static void drop(yp_rthread *t) {
    t->pending_drop++;
    atomic_fetch_add_explicit(&t->dropped_total, 1, memory_order_relaxed);
}

/* A full ring: wait, grow, or drop. */
static void push_full(yp_rthread *t, uint64_t ts, uint32_t func_id, uint32_t kind) {
    yp_ring *r = &t->ring;
    int grow = yp_ring_can_grow(r);
    uint64_t used = wait_for_room(r, grow);
    if (grow && used == 0 && yp_ring_grow(r)) t->nudge_at = yp_ring_head(r) + nudge_every(r);
    if (yp_ring_put(r, ts, func_id, kind) != YP_RING_OK) {
        drop(t);
        return;
    }
    if (yp_ring_used(r) > yp_ring_capacity(r) / 2) yp_rec_wake();
}

/* Dropping: go on until half the ring is free, then DROPPED and the event. */
static void push_dropping(yp_rthread *t, uint64_t ts, uint32_t func_id, uint32_t kind) {
    yp_ring *r = &t->ring;
    uint64_t cap = yp_ring_capacity(r);
    if (cap - yp_ring_used(r) < cap / 2) {
        drop(t);
        return;
    }
    uint64_t n = t->pending_drop > YP_FUNC_ID_MAX ? YP_FUNC_ID_MAX : t->pending_drop;
    t->pending_drop = 0;
    (void)yp_ring_put(r, ts, (uint32_t)n, YP_EV_DROPPED); /* half is free: both fit */
    (void)yp_ring_put(r, ts, func_id, kind);
}

int yp_rec_push_slow(yp_ring *r, uint64_t ts, uint32_t func_id, uint32_t kind) {
    yp_rthread *t = yp_rthread_of(r);
    uint64_t h = yp_ring_head(r);
    int at_check = h >= t->check_at;
    if (t->pending_drop)
        push_dropping(t, ts, func_id, kind);
    else if (yp_ring_put(r, ts, func_id, kind) != YP_RING_OK)
        push_full(t, ts, func_id, kind);
    if (h >= t->nudge_at) {
        t->nudge_at = h + nudge_every(r);
        if (atomic_load_explicit(&R.open, memory_order_relaxed)) yp_rec_wake();
    }
    update_stop(t);
    return at_check;
}

void yp_rec_set_check(yp_ring *r, uint64_t at) {
    yp_rthread *t = yp_rthread_of(r);
    t->check_at = at;
    update_stop(t);
}

void yp_rec_sampled(yp_ring *r, uint64_t next_check, uint64_t hook_ns) {
    yp_rthread *t = yp_rthread_of(r);
    atomic_fetch_add_explicit(&t->hook_ns, hook_ns, memory_order_relaxed);
    t->check_at = next_check;
    update_stop(t);
}

void yp_rec_add_hook_ns(yp_ring *r, uint64_t ns) {
    atomic_fetch_add_explicit(&yp_rthread_of(r)->hook_ns, ns, memory_order_relaxed);
}

uint64_t yp_rec_ring_dropped(const yp_ring *r) {
    return atomic_load_explicit(&((const yp_rthread *)r)->dropped_total, memory_order_relaxed);
}
