/*
 * yp_threads.c — the registry of recording threads: a descriptor and ring
 * for each thread on its first event, its description (ident, name, CPU
 * clock), the pool of rings that exited threads left, and the stop marks.
 *
 * A thread's descriptor lives until the flusher has drained its ring after
 * the thread exited (yp_rthread_retire); then it goes to the pool (up to
 * POOL_MAX, at the size its ring grew to) for the next new thread, or is
 * freed. reg_mu guards the list, the pool and the descriptions.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "yp_rec_int.h"
#include "yp_symtab_int.h"

YP_THREAD_LOCAL yp_ring *yp_tls_ring;

#define POOL_MAX 16 /* drained rings of exited threads kept for new ones */

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

int yp_rec_alloc_should_fail(void) {
    uint64_t n = atomic_load(&R.fail_allocs);
    while (n) {
        if (atomic_compare_exchange_weak(&R.fail_allocs, &n, n - 1)) return 1; /* caller counts */
    }
    return 0;
}

static void rthread_free(yp_rthread *t) {
    if (!t) return;
    yp_ring_destroy(&t->ring);
    free(t);
}

void yp_rec_fail_allocs(uint64_t n) {
    /* the pool emptied: a new thread's ring is then an allocation too */
    pthread_mutex_lock(&R.reg_mu);
    yp_rthread *pool = R.pool;
    R.pool = NULL;
    R.n_pool = 0;
    pthread_mutex_unlock(&R.reg_mu);
    while (pool) {
        yp_rthread *next = pool->next;
        rthread_free(pool);
        pool = next;
    }
    atomic_store(&R.fail_allocs, n);
}

/* pthread key destructor: the owning thread is exiting. The ring stays until
 * the flusher has drained it. */
static void on_thread_exit(void *p) {
    yp_rthread *t = p;
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        t->cpu_ns_at_end = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    atomic_store_explicit(&t->ended, 1, memory_order_release);
}

static void make_key(void) { pthread_key_create(&g_key, on_thread_exit); }

/* The geometry the open trace asked for. Caller holds reg_mu. */
static int ring_fits(const yp_rthread *t) {
    return t->ring.max_bytes == ((uint64_t)1 << R.ring_bits) * sizeof(yp_event) &&
           t->ring.first_bytes == ((uint64_t)1 << R.ring_min_bits) * sizeof(yp_event);
}

static yp_rthread *rthread_new(unsigned min_bits, unsigned max_bits) {
    yp_rthread *t = NULL;
    if (yp_rec_alloc_should_fail()) return NULL;
    /* 64-byte aligned: the ring's producer line is the first of t */
    if (posix_memalign((void **)&t, 64, (sizeof *t + 63) & ~(size_t)63)) return NULL;
    memset(t, 0, sizeof *t);
    if (yp_ring_init(&t->ring, min_bits, max_bits, &R.budget)) {
        free(t);
        return NULL;
    }
    return t;
}

/* A descriptor for a new thread: one an exited thread left, else a new one. */
static yp_rthread *rthread_get(void) {
    yp_rthread *t, *unfit = NULL;
    pthread_mutex_lock(&R.reg_mu);
    unsigned min_bits = R.ring_min_bits, max_bits = R.ring_bits;
    while ((t = R.pool) != NULL) {
        R.pool = t->next;
        R.n_pool--;
        t->next = NULL;
        if (ring_fits(t)) break;
        t->next = unfit; /* made for another configuration: freed below */
        unfit = t;
    }
    pthread_mutex_unlock(&R.reg_mu);
    while (unfit) {
        yp_rthread *n = unfit->next;
        rthread_free(unfit);
        unfit = n;
    }
    if (t) {
        yp_ring ring = t->ring; /* the ring was reset when pooled */
        memset(t, 0, sizeof *t);
        t->ring = ring;
    } else {
        t = rthread_new(min_bits, max_bits);
    }
    if (t) yp_producer_reset(t);
    return t;
}

yp_ring *yp_rec_ring_slow(void) {
    pthread_once(&g_key_once, make_key);
    yp_rthread *t = rthread_get();
    if (!t) {
        atomic_fetch_add(&R.alloc_failures, 1);
        return NULL;
    }
    clockid_t cid;
    if (pthread_getcpuclockid(pthread_self(), &cid) == 0) {
        t->cpu_clock = (int)cid;
        t->cpu_clock_ok = 1;
    }
    t->native_id = (uint64_t)syscall(SYS_gettid);
    pthread_mutex_lock(&R.reg_mu);
    t->thread_id = ++R.next_thread_id;
    t->info_dirty = 1;
    t->next = R.rings;
    R.rings = t;
    pthread_mutex_unlock(&R.reg_mu);
    pthread_setspecific(g_key, t);
    yp_tls_ring = &t->ring;
    return &t->ring;
}

void yp_rthread_retire(yp_rthread *t) {
    pthread_mutex_lock(&R.reg_mu);
    yp_rthread **pp = &R.rings;
    while (*pp && *pp != t) pp = &(*pp)->next;
    if (*pp) *pp = t->next;
    R.freed_dropped += atomic_load(&t->dropped_total);
    R.freed_hook_ns += atomic_load(&t->hook_ns);
    int keep = R.n_pool < POOL_MAX && ring_fits(t);
    if (keep) {
        yp_ring_reset(&t->ring);
        t->next = R.pool;
        R.pool = t;
        R.n_pool++;
    }
    pthread_mutex_unlock(&R.reg_mu);
    if (!keep) rthread_free(t);
}

void yp_rec_thread_set(yp_ring *r, uint64_t ident, const char *name) {
    yp_rthread *t = yp_rthread_of(r);
    pthread_mutex_lock(&R.reg_mu);
    t->ident = ident;
    if (name) snprintf(t->name, sizeof t->name, "%s", name);
    t->info_dirty = 1;
    pthread_mutex_unlock(&R.reg_mu);
}

void yp_rec_thread_name(uint64_t ident, const char *name) {
    pthread_mutex_lock(&R.reg_mu);
    for (yp_rthread *t = R.rings; t; t = t->next) {
        if (t->ident == ident && !atomic_load(&t->ended) && strncmp(t->name, name, sizeof t->name - 1)) {
            snprintf(t->name, sizeof t->name, "%s", name);
            t->info_dirty = 1;
        }
    }
    pthread_mutex_unlock(&R.reg_mu);
}

uint32_t yp_rec_symbol_add(const char *name, const char *module, const char *filename, uint32_t lineno,
                           int builtin) {
    uint32_t id = yp_rec_alloc_should_fail() ? 0 : yp_symtab_add(name, module, filename, lineno, builtin);
    if (!id) atomic_fetch_add(&R.alloc_failures, 1);
    return id;
}

void yp_rec_mark_all(uint8_t kind, uint64_t ts) {
    /* reg_mu only (the ring list): never held by anyone waiting for the
     * flusher; the marks hand off to a drain without a lock (yp_ring.c) */
    pthread_mutex_lock(&R.reg_mu);
    for (yp_rthread *t = R.rings; t; t = t->next) {
        if (atomic_load(&t->ended)) continue;      /* THREAD_END closes its frames */
        if (yp_ring_head(&t->ring) == 0) continue; /* never used */
        yp_ring_set_mark(&t->ring, kind, ts);
    }
    pthread_mutex_unlock(&R.reg_mu);
}

uint64_t yp_rthread_cpu_ns(const yp_rthread *t) {
    if (atomic_load(&t->ended)) return t->cpu_ns_at_end;
    struct timespec ts;
    if (!t->cpu_clock_ok || clock_gettime((clockid_t)t->cpu_clock, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A descriptor's memory: its ring's, and what it adds around the ring. */
static uint64_t rthread_bytes(const yp_rthread *t) {
    return yp_ring_bytes(&t->ring) + sizeof *t - sizeof t->ring;
}

uint64_t yp_rthreads_bytes_locked(uint64_t *count) {
    uint64_t b = 0, n = 0;
    for (yp_rthread *t = R.rings; t; t = t->next) {
        b += rthread_bytes(t);
        n++;
    }
    if (count) *count = n;
    for (yp_rthread *t = R.pool; t; t = t->next) b += rthread_bytes(t);
    return b;
}

void yp_rec_threads_after_fork_child(void) {
    yp_tls_ring = NULL;
    if (pthread_once(&g_key_once, make_key) == 0) pthread_setspecific(g_key, NULL);
}
