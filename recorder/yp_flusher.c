/*
 * yp_flusher.c — the recorder singleton: the registry of thread rings, the
 * trace writer, and the flusher thread that drains rings into both the
 * writer (zstd chunks on disk) and the sink (the live aggregator).
 *
 * Locks, always taken in this order:
 *   drain_mu  one drain at a time (the flusher, or a thread closing)
 *   symtab    symbol appends (yp_symtab.c)
 *   reg_mu    the ring list, the free rings and thread descriptions
 *   wake_mu   with wake_cv, only to sleep and wake the flusher
 * The sink's own lock is taken under drain_mu only (never under reg_mu or
 * wake_mu), and nothing is taken while holding it.
 * The hook takes none of them on its fast path; its slow path (a new thread
 * or a new function) takes reg_mu or the symtab lock briefly. Nobody waits
 * for the flusher while holding one of them: a full ring waits with none
 * held, and the REC_STOP marks of stop() are written by the flusher itself.
 *
 * fork: yp_rec_fork_prepare takes every lock in that order (the caller then
 * takes the sink's), so the child is made while no other thread holds one; yp_rec_fork_parent / _child
 * release them. The child then forgets the parent's rings and flusher (yp_rec_after_fork_child).
 *
 * Memory: rings start at 2^ring_min_bits events and grow to 2^ring_bits
 * while the shared budget allows (yp_ring_new_growable); the rings of
 * threads that have exited are kept (up to POOL_MAX) for new threads.
 *
 * A drain: (1) read each ring's head (acquire), (2) write the symbols and
 * thread records added so far, (3) write each ring's events up to the head
 * read in (1). A symbol is added before the first event naming it is pushed,
 * so (2) always covers the events of (3): the trace never names a function
 * before describing it.
 *
 * Errors: a write error is sticky in the writer; the flusher then stops
 * writing but keeps feeding the sink, so live stats stay exact, and the
 * error is reported by yp_rec_status_get. Nothing here aborts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "yp_rec_int.h"
#include "yp_symtab_int.h"

YP_THREAD_LOCAL yp_ring *yp_tls_ring;

#define POOL_MAX 16               /* drained rings of exited threads kept for new ones */
#define RING_MIN_BITS 12          /* 4Ki events, 64 KiB: where every ring starts */
#define RING_BUDGET (24ull << 20) /* growth beyond that, all rings together */

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static struct {
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
    yp_ring *pool; /* reg_mu: drained rings of exited threads, for new ones */
    unsigned n_pool;
    _Atomic int refresh_threads; /* the next drain rewrites every thread record (CPU time) */
    _Atomic uint64_t peak_bytes; /* most rings + symbols + writer held since the trace opened */
    uint64_t marker_at;          /* drain_mu: monotonic ns of the next MARKER */
    _Atomic unsigned wait_ms;
    yp_ring *rings;          /* reg_mu */
    uint32_t next_thread_id; /* reg_mu */
    uint32_t sym_written;    /* drain_mu */
    _Atomic uint64_t flusher_ns;
    _Atomic uint64_t alloc_failures;
    _Atomic uint64_t fail_allocs;
    yp_status werr;
    int paused;           /* drain_mu: footer written; file left alone until resumed */
    char error_text[256]; /* drain_mu */
    yp_event *scratch;    /* drain_mu */
    size_t scratch_cap;
    yp_ring **snap; /* drain_mu */
    size_t snap_cap;
    uint64_t freed_dropped;              /* drops of rings already freed; reg_mu */
    uint64_t freed_hook_ns;              /* hook time of rings already freed; reg_mu */
    uint64_t base_hook_ns, base_wait_ns; /* both when this trace opened (set before its flusher starts) */
} R = {
    .drain_mu = PTHREAD_MUTEX_INITIALIZER,
    .reg_mu = PTHREAD_MUTEX_INITIALIZER,
    .wake_mu = PTHREAD_MUTEX_INITIALIZER,
    .wake_cv = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
    .flush_ms = 20,
    .ring_bits = 17,
    .ring_min_bits = RING_MIN_BITS,
    .budget = {.max_bytes = RING_BUDGET},
    .marker_ms = 500,
};

int yp_rec_alloc_should_fail(void) {
    uint64_t n = atomic_load(&R.fail_allocs);
    while (n) {
        if (atomic_compare_exchange_weak(&R.fail_allocs, &n, n - 1)) return 1; /* caller counts */
    }
    return 0;
}

static _Atomic uint64_t g_wait_ns;
void yp_rec_note_wait(uint64_t ns) { atomic_fetch_add(&g_wait_ns, ns); }

void yp_rec_fail_allocs(uint64_t n) {
    /* the pool emptied: a new thread's ring is then an allocation too */
    pthread_mutex_lock(&R.reg_mu);
    yp_ring *pool = R.pool;
    R.pool = NULL;
    R.n_pool = 0;
    pthread_mutex_unlock(&R.reg_mu);
    while (pool) {
        yp_ring *next = pool->next;
        yp_ring_free(pool);
        pool = next;
    }
    atomic_store(&R.fail_allocs, n);
}

unsigned yp_rec_wait_ms(void) { return atomic_load(&R.open) ? atomic_load(&R.wait_ms) : 0; }

void yp_rec_wake(void) {
    pthread_mutex_lock(&R.wake_mu);
    pthread_cond_signal(&R.wake_cv);
    pthread_mutex_unlock(&R.wake_mu);
}

void yp_rec_nudge(void) {
    if (atomic_load_explicit(&R.open, memory_order_relaxed)) yp_rec_wake();
}

int yp_rec_is_open(void) { return atomic_load(&R.open); }
uint32_t yp_rec_clock_kind(void) { return R.clock_kind; }

/* ---- thread registry ------------------------------------------------------------ */

/* pthread key destructor: the owning thread is exiting. The ring stays until
 * the flusher has drained it. */
static void on_thread_exit(void *p) {
    yp_ring *r = p;
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        r->cpu_ns_at_end = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    atomic_store_explicit(&r->ended, 1, memory_order_release);
}

static void make_key(void) { pthread_key_create(&g_key, on_thread_exit); }

/* The geometry the open trace asked for. Caller holds reg_mu. */
static int ring_fits(const yp_ring *r) {
    return r->max_bytes == ((uint64_t)1 << R.ring_bits) * sizeof(yp_event) &&
           r->first_bytes == ((uint64_t)1 << R.ring_min_bits) * sizeof(yp_event);
}

/* A ring for a new thread: one an exited thread left, else a new one. */
static yp_ring *ring_get(void) {
    yp_ring *r, *unfit = NULL;
    pthread_mutex_lock(&R.reg_mu);
    unsigned min_bits = R.ring_min_bits, max_bits = R.ring_bits;
    while ((r = R.pool) != NULL) {
        R.pool = r->next;
        R.n_pool--;
        r->next = NULL;
        if (ring_fits(r)) break;
        r->next = unfit; /* made for another configuration: freed below */
        unfit = r;
    }
    pthread_mutex_unlock(&R.reg_mu);
    while (unfit) {
        yp_ring *n = unfit->next;
        yp_ring_free(unfit);
        unfit = n;
    }
    return r ? r : yp_ring_new_growable(min_bits, max_bits, &R.budget);
}

yp_ring *yp_rec_ring_slow(void) {
    pthread_once(&g_key_once, make_key);
    yp_ring *r = ring_get();
    if (!r) {
        atomic_fetch_add(&R.alloc_failures, 1);
        return NULL;
    }
    clockid_t cid;
    if (pthread_getcpuclockid(pthread_self(), &cid) == 0) {
        r->cpu_clock = (int)cid;
        r->cpu_clock_ok = 1;
    }
    r->native_id = (uint64_t)syscall(SYS_gettid);
    pthread_mutex_lock(&R.reg_mu);
    r->thread_id = ++R.next_thread_id;
    r->info_dirty = 1;
    r->next = R.rings;
    R.rings = r;
    pthread_mutex_unlock(&R.reg_mu);
    pthread_setspecific(g_key, r);
    yp_tls_ring = r;
    return r;
}

void yp_rec_thread_set(yp_ring *r, uint64_t ident, const char *name) {
    pthread_mutex_lock(&R.reg_mu);
    r->ident = ident;
    if (name) snprintf(r->name, sizeof r->name, "%s", name);
    r->info_dirty = 1;
    pthread_mutex_unlock(&R.reg_mu);
}

void yp_rec_thread_name(uint64_t ident, const char *name) {
    pthread_mutex_lock(&R.reg_mu);
    for (yp_ring *r = R.rings; r; r = r->next) {
        if (r->ident == ident && !atomic_load(&r->ended) && strncmp(r->name, name, sizeof r->name - 1)) {
            snprintf(r->name, sizeof r->name, "%s", name);
            r->info_dirty = 1;
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
    for (yp_ring *r = R.rings; r; r = r->next) {
        if (atomic_load(&r->ended)) continue;     /* THREAD_END closes its frames */
        if (atomic_load(&r->head) == 0) continue; /* never used */
        yp_ring_set_mark(r, kind, ts);
    }
    pthread_mutex_unlock(&R.reg_mu);
}

static uint64_t thread_cpu_ns(const yp_ring *r) {
    if (atomic_load(&r->ended)) return r->cpu_ns_at_end;
    struct timespec ts;
    if (!r->cpu_clock_ok || clock_gettime((clockid_t)r->cpu_clock, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- draining --------------------------------------------------------------------- */

static void note_write_error(void) {
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
static int file_ok(void) { return R.w && !R.werr && !R.paused; }

static void emit_events(uint32_t thread_id, const yp_event *ev, size_t n) {
    while (n) {
        size_t k = n > YP_CHUNK_EVENTS_MAX ? YP_CHUNK_EVENTS_MAX : n;
        if (file_ok()) {
            yp_writer_events(R.w, thread_id, ev, k, 0);
            note_write_error();
        }
        if (R.sink.events) R.sink.events(R.sink.ctx, thread_id, ev, k, 0);
        ev += k;
        n -= k;
    }
}

static void emit_symbols(void) {
    uint32_t n = yp_symtab_count();
    while (R.sym_written < n) {
        uint32_t k = n - R.sym_written > 4096 ? 4096 : n - R.sym_written;
        yp_symbol batch[64];
        /* symbols are stored in blocks; write them in small batches */
        for (uint32_t i = 0; i < k; i += 64) {
            uint32_t m = k - i > 64 ? 64 : k - i;
            for (uint32_t j = 0; j < m; j++) batch[j] = *yp_symtab_get(R.sym_written + i + j + 1);
            if (file_ok()) {
                yp_writer_symbols(R.w, batch, m);
                note_write_error();
            }
            if (R.sink.symbol)
                for (uint32_t j = 0; j < m; j++) R.sink.symbol(R.sink.ctx, &batch[j]);
        }
        R.sym_written += k;
    }
}

static int grow_scratch(size_t n) {
    if (n <= R.scratch_cap) return 0;
    size_t c = R.scratch_cap ? R.scratch_cap : 4096;
    while (c < n) c *= 2;
    yp_event *p = realloc(R.scratch, c * sizeof *p);
    if (!p) return -1;
    R.scratch = p;
    R.scratch_cap = c;
    return 0;
}

/* Emit the events a peek gave (spans a and b, ending at event number h), and
 * the ring's mark after the event it follows. */
static void emit_ring(yp_ring *r, const yp_event *a, size_t na, const yp_event *b, size_t nb, uint64_t h) {
    yp_event mark;
    uint64_t t = h - na - nb;
    /* a mark is set at the producer's head, never behind the tail; a mark
     * ahead of h waits for the next drain */
    if (atomic_load_explicit(&r->mark_pending, memory_order_acquire) && r->mark_head <= h) {
        size_t k = r->mark_head > t ? (size_t)(r->mark_head - t) : 0; /* events before it */
        size_t ka = k < na ? k : na, kb = k - ka;
        if (ka) emit_events(r->thread_id, a, ka);
        if (kb) emit_events(r->thread_id, b, kb);
        if (yp_ring_take_mark(r, h, &mark)) emit_events(r->thread_id, &mark, 1);
        a += ka;
        na -= ka;
        b += kb;
        nb -= kb;
    }
    if (!(na + nb)) return;
    if (na && nb && grow_scratch(na + nb + 1) == 0) {
        memcpy(R.scratch, a, na * sizeof *a);
        memcpy(R.scratch + na, b, nb * sizeof *b);
        emit_events(r->thread_id, R.scratch, na + nb);
    } else {
        if (na) emit_events(r->thread_id, a, na);
        if (nb) emit_events(r->thread_id, b, nb);
    }
}

/* A drained ring of an exited thread: THREAD_END, then out of the registry
 * into the pool (or freed). Caller holds drain_mu. */
static void ring_retire(yp_ring *r) {
    yp_event end = {yp_ring_last_ts(r), 0, YP_EV_THREAD_END, {0}};
    emit_events(r->thread_id, &end, 1);
    pthread_mutex_lock(&R.reg_mu);
    yp_ring **pp = &R.rings;
    while (*pp && *pp != r) pp = &(*pp)->next;
    if (*pp) *pp = r->next;
    R.freed_dropped += atomic_load(&r->dropped_total);
    R.freed_hook_ns += atomic_load(&r->hook_ns);
    int keep = R.n_pool < POOL_MAX && ring_fits(r);
    if (keep) {
        yp_ring_reset(r);
        r->next = R.pool;
        R.pool = r;
        R.n_pool++;
    }
    pthread_mutex_unlock(&R.reg_mu);
    if (!keep) yp_ring_free(r);
}

static uint64_t ring_bytes_locked(uint64_t *count);

/* The memory held now, for the peak. */
static void note_peak(void) {
    uint64_t b = yp_symtab_bytes() + yp_writer_bytes(R.w); /* drain_mu held */
    pthread_mutex_lock(&R.reg_mu);
    b += ring_bytes_locked(NULL);
    pthread_mutex_unlock(&R.reg_mu);
    uint64_t p = atomic_load(&R.peak_bytes);
    while (b > p && !atomic_compare_exchange_weak(&R.peak_bytes, &p, b)) {}
}

/* Drain every ring once. Caller holds drain_mu. */
static void drain_locked(void) {
    size_t n = 0;
    yp_thread_info infos[64];
    char names[64][64];
    size_t ninfo = 0;
    pthread_mutex_lock(&R.reg_mu);
    for (yp_ring *r = R.rings; r; r = r->next) n++;
    if (n > R.snap_cap) {
        yp_ring **p = realloc(R.snap, n * 2 * sizeof *p);
        if (p) {
            R.snap = p;
            R.snap_cap = n * 2;
        }
    }
    n = 0;
    for (yp_ring *r = R.rings; r && n < R.snap_cap; r = r->next) R.snap[n++] = r;
    pthread_mutex_unlock(&R.reg_mu);

    /* heads first, then symbols: see the file comment */
    uint64_t *heads = calloc(n + 1, sizeof *heads);
    if (!heads) return;
    for (size_t i = 0; i < n; i++) heads[i] = atomic_load_explicit(&R.snap[i]->head, memory_order_acquire);
    emit_symbols();

    /* every thread's record when asked (their CPU time so far: a stop, a
     * sync for get_stats, a marker), else the new and renamed ones */
    int refresh = atomic_exchange(&R.refresh_threads, 0);
    for (size_t i = 0; i < n;) {
        pthread_mutex_lock(&R.reg_mu);
        for (ninfo = 0; i < n && ninfo < 64; i++) {
            yp_ring *r = R.snap[i];
            if (!r->info_dirty && !refresh && !atomic_load(&r->ended)) continue;
            r->info_dirty = 0;
            snprintf(names[ninfo], sizeof names[ninfo], "%s", r->name);
            infos[ninfo] =
                (yp_thread_info){r->thread_id, r->ident, r->native_id, thread_cpu_ns(r), names[ninfo]};
            ninfo++;
        }
        pthread_mutex_unlock(&R.reg_mu);
        if (!ninfo) continue;
        /* the sink takes its own lock: never under reg_mu */
        if (file_ok()) yp_writer_threads(R.w, infos, ninfo);
        if (R.sink.thread)
            for (size_t j = 0; j < ninfo; j++) R.sink.thread(R.sink.ctx, &infos[j]);
    }
    if (R.w) note_write_error();

    for (size_t i = 0; i < n; i++) {
        yp_ring *r = R.snap[i];
        int ended = atomic_load_explicit(&r->ended, memory_order_acquire);
        const yp_event *a, *b;
        size_t na, nb;
        uint64_t h = yp_ring_peek(r, &a, &na, &b, &nb);
        if (h > heads[i]) { /* only what the symbols written cover */
            uint64_t extra = h - heads[i];
            h = heads[i];
            if (nb >= extra) {
                nb -= extra;
            } else {
                na -= extra - nb;
                nb = 0;
            }
        }
        emit_ring(r, a, na, b, nb, h);
        if (na + nb) yp_ring_release(r, h);
        if (ended && atomic_load(&r->head) == h) ring_retire(r);
    }
    free(heads);
    note_peak();
}

static uint64_t self_cpu_ns(void) { return yp_clock_thread_cpu_ns(); }

static void make_footer(yp_footer *f, const yp_rec_totals *tot);

/* The peak memory: the recorder's peak (rings, symbols, writer) plus the
 * live stats' (which only grow between clears), never below what is held now. */
static uint64_t peak_of(const yp_footer *f, const yp_rec_totals *tot) {
    uint64_t p = atomic_load(&R.peak_bytes) + (tot ? tot->extra_bytes : 0);
    return p > f->profiler_bytes ? p : f->profiler_bytes;
}

/* The peak as a MARKER before a footer (the footer has no field for it). */
static void write_peak_locked(const yp_footer *f, const yp_rec_totals *tot) {
    char text[64];
    int n = snprintf(text, sizeof text, "peak_bytes=%llu\n", (unsigned long long)peak_of(f, tot));
    if (n > 0 && (size_t)n < sizeof text && file_ok()) {
        yp_writer_marker(R.w, text, (size_t)n);
        note_write_error();
    }
}

/* Every marker_ms while the file is being written, the pollution figures
 * so far as a MARKER chunk: a process killed before its next stop() (which
 * writes them in a footer) still leaves them. On the flusher thread. */
static void maybe_marker(void) {
    if (!R.sink.totals) return;
    uint64_t now = yp_clock_mono_ns();
    if (now < R.marker_at) return;
    R.marker_at = now + (uint64_t)R.marker_ms * 1000000u;
    atomic_store(&R.refresh_threads, 1); /* a killed process keeps CPU times this old */
    yp_rec_totals t = {0};
    R.sink.totals(R.sink.ctx, &t);
    yp_footer f;
    make_footer(&f, &t); /* takes drain_mu and reg_mu itself */
    char text[256];
    int n = snprintf(text, sizeof text,
                     "hook_ns=%llu\nflusher_ns=%llu\ninterp_ns=%llu\napp_ns=%llu\nprofiler_bytes=%llu\n"
                     "peak_bytes=%llu\n",
                     (unsigned long long)f.hook_ns, (unsigned long long)f.flusher_ns,
                     (unsigned long long)f.interp_ns, (unsigned long long)f.app_ns,
                     (unsigned long long)f.profiler_bytes, (unsigned long long)peak_of(&f, &t));
    pthread_mutex_lock(&R.drain_mu);
    if (n > 0 && (size_t)n < sizeof text && file_ok()) { /* not after a stop()'s footer */
        yp_writer_marker(R.w, text, (size_t)n);
        note_write_error();
    }
    pthread_mutex_unlock(&R.drain_mu);
}

/* A deadline ms from now on CLOCK_MONOTONIC, the clock of both condition
 * variables (init_conds): a step of the wall clock never stalls a wait. */
static struct timespec deadline_in(unsigned ms) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    dl.tv_sec += dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    return dl;
}

static void init_conds(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&R.wake_cv, &ca);
    pthread_cond_init(&R.done_cv, &ca);
    pthread_condattr_destroy(&ca);
}
static pthread_once_t g_conds_once = PTHREAD_ONCE_INIT;

static void *flusher_main(void *arg) {
    (void)arg;
    uint64_t cpu0 = self_cpu_ns();
    pthread_mutex_lock(&R.wake_mu);
    for (;;) {
        if (!R.stop_req && R.sync_req == R.sync_done) {
            struct timespec dl = deadline_in(R.flush_ms);
            pthread_cond_timedwait(&R.wake_cv, &R.wake_mu, &dl);
        }
        int stop = R.stop_req;
        uint64_t req = R.sync_req;
        pthread_mutex_unlock(&R.wake_mu);
        pthread_mutex_lock(&R.drain_mu);
        drain_locked();
        pthread_mutex_unlock(&R.drain_mu);
        maybe_marker();
        uint64_t cpu = self_cpu_ns();
        atomic_fetch_add(&R.flusher_ns, cpu - cpu0);
        cpu0 = cpu;
        pthread_mutex_lock(&R.wake_mu);
        if (req > R.sync_done) R.sync_done = req;
        pthread_cond_broadcast(&R.done_cv);
        if (stop) break;
    }
    pthread_mutex_unlock(&R.wake_mu);
    return NULL;
}

/* ---- open / close -------------------------------------------------------------------- */

yp_status yp_rec_open(const yp_rec_config *cfg, char *errbuf, size_t errlen) {
    if (!cfg || !cfg->path) return YP_ERR_ARG;
    if (atomic_load(&R.open)) {
        if (errbuf) snprintf(errbuf, errlen, "a trace is already open (%s)", R.path);
        return YP_ERR_ARG;
    }
    yp_writer_options o = {0};
    o.clock_kind = cfg->clock_kind;
    o.ns_per_tick = cfg->ns_per_tick > 0 ? cfg->ns_per_tick : 1.0;
    o.start_ticks = cfg->clock_kind == YP_CLOCK_THREAD_CPU ? 0 : yp_clock_ticks(cfg->clock_kind);
    o.python_version = cfg->python_version;
    o.command_line = cfg->command_line;
    o.zstd_level = cfg->zstd_level;
    /* 4 ns: below what one clock read costs (rdtsc ~25 ns here), and it
     * takes the noise bits out of the deltas (docs/format.md) */
    o.resolution_ns = cfg->resolution_ns == 0 ? 4.0 : cfg->resolution_ns;
    yp_writer *w;
    yp_status st = yp_writer_open(cfg->path, &o, &w, errbuf, errlen);
    if (st) return st;
    yp_rec_status now;
    yp_rec_status_get(&now);
    pthread_mutex_lock(&R.drain_mu);
    R.base_hook_ns = now.hook_ns; /* the footer counts this trace's */
    R.base_wait_ns = now.wait_ns;
    R.w = w;
    snprintf(R.path, sizeof R.path, "%s", cfg->path);
    R.clock_kind = cfg->clock_kind;
    R.sink = cfg->sink;
    R.flush_ms = cfg->flush_ms ? cfg->flush_ms : 20;
    pthread_mutex_lock(&R.reg_mu);                      /* new threads read them (ring_get) */
    R.ring_bits = cfg->ring_bits ? cfg->ring_bits : 17; /* ring_bits: a fixed size (tests, benchmarks) */
    R.ring_min_bits = cfg->ring_bits ? cfg->ring_bits : RING_MIN_BITS;
    pthread_mutex_unlock(&R.reg_mu);
    atomic_store(&R.budget.max_bytes, cfg->ring_budget_bytes ? cfg->ring_budget_bytes : RING_BUDGET);
    R.marker_ms = cfg->marker_ms ? cfg->marker_ms : 500;
    R.marker_at = yp_clock_mono_ns() + (uint64_t)R.marker_ms * 1000000u;
    atomic_store(&R.wait_ms, cfg->wait_ms ? cfg->wait_ms : 50);
    R.werr = YP_OK;
    R.error_text[0] = 0;
    R.sym_written = 0; /* a new file gets every symbol again */
    pthread_mutex_lock(&R.reg_mu);
    for (yp_ring *r = R.rings; r; r = r->next) r->info_dirty = 1;
    pthread_mutex_unlock(&R.reg_mu);
    pthread_mutex_lock(&R.wake_mu);
    R.stop_req = 0;
    R.sync_req = R.sync_done = 0;
    pthread_mutex_unlock(&R.wake_mu);
    atomic_store(&R.flusher_ns, 0);
    atomic_store(&R.peak_bytes, 0);
    pthread_once(&g_conds_once, init_conds);
    /* the flusher takes no signal: the application's handlers run on its
     * own threads, and a signal never interrupts a write half done */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&R.thread, NULL, flusher_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) pthread_setname_np(R.thread, "yprof-flusher"); /* in ps, top, /proc */
    if (rc != 0) {
        yp_writer_close(w, NULL);
        R.w = NULL;
        pthread_mutex_unlock(&R.drain_mu);
        if (errbuf) snprintf(errbuf, errlen, "cannot start the flusher thread");
        return YP_ERR_NOMEM;
    }
    R.thread_started = 1;
    atomic_store(&R.open, 1);
    pthread_mutex_unlock(&R.drain_mu);
    return YP_OK;
}

int yp_rec_sync(unsigned timeout_ms) {
    if (!atomic_load(&R.open)) return 0;
    atomic_store(&R.refresh_threads, 1); /* the threads' CPU time up to now */
    pthread_mutex_lock(&R.wake_mu);
    uint64_t want = ++R.sync_req;
    pthread_cond_signal(&R.wake_cv);
    struct timespec dl = deadline_in(timeout_ms);
    int rc = 0;
    while (R.sync_done < want && R.thread_started)
        if (pthread_cond_timedwait(&R.done_cv, &R.wake_mu, &dl) == ETIMEDOUT) {
            rc = -1;
            break;
        }
    pthread_mutex_unlock(&R.wake_mu);
    return rc;
}

void yp_rec_marker(const char *text) {
    pthread_mutex_lock(&R.drain_mu);
    if (file_ok()) {
        yp_writer_marker(R.w, text, strlen(text));
        note_write_error();
    }
    pthread_mutex_unlock(&R.drain_mu);
}

/* The rings' memory: the pages each has written (its RSS), the pool's too.
 * Caller holds reg_mu. */
static uint64_t ring_bytes_locked(uint64_t *count) {
    uint64_t b = 0, n = 0;
    for (yp_ring *r = R.rings; r; r = r->next) {
        b += yp_ring_bytes(r);
        n++;
    }
    if (count) *count = n;
    for (yp_ring *r = R.pool; r; r = r->next) b += yp_ring_bytes(r);
    return b;
}

void yp_rec_status_get(yp_rec_status *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&R.drain_mu);
    out->open = atomic_load(&R.open);
    out->write_error = R.werr;
    snprintf(out->error_text, sizeof out->error_text, "%s", R.error_text);
    if (R.w) yp_writer_totals(R.w, &out->chunks, &out->events, NULL, &out->bytes_written);
    out->writer_bytes = yp_writer_bytes(R.w);
    pthread_mutex_unlock(&R.drain_mu);
    pthread_mutex_lock(&R.reg_mu);
    out->ring_bytes = ring_bytes_locked(&out->rings); /* the pool's too */
    out->dropped = R.freed_dropped;
    out->hook_ns = R.freed_hook_ns;
    for (yp_ring *r = R.rings; r; r = r->next) {
        out->dropped += atomic_load(&r->dropped_total);
        out->hook_ns += atomic_load(&r->hook_ns);
    }
    pthread_mutex_unlock(&R.reg_mu);
    out->symbols = yp_symtab_count();
    out->symbol_bytes = yp_symtab_bytes();
    out->flusher_ns = atomic_load(&R.flusher_ns);
    out->wait_ns = atomic_load(&g_wait_ns);
    out->alloc_failures = atomic_load(&R.alloc_failures);
    uint64_t now = yp_rec_status_bytes(out), peak = atomic_load(&R.peak_bytes);
    out->peak_bytes = peak > now ? peak : now;
}

static void stop_flusher(void) {
    if (!R.thread_started) return;
    pthread_mutex_lock(&R.wake_mu);
    R.stop_req = 1;
    pthread_cond_signal(&R.wake_cv);
    pthread_mutex_unlock(&R.wake_mu);
    pthread_join(R.thread, NULL);
    R.thread_started = 0;
}

static void make_footer(yp_footer *f, const yp_rec_totals *tot) {
    yp_rec_status s;
    yp_rec_status_get(&s);
    memset(f, 0, sizeof *f);
    f->end_ticks = yp_clock_ticks(R.clock_kind);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    f->end_wall_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    /* this trace's: the counters run on from earlier traces of the process */
    uint64_t hook = s.hook_ns > R.base_hook_ns ? s.hook_ns - R.base_hook_ns : 0;
    uint64_t wait = s.wait_ns > R.base_wait_ns ? s.wait_ns - R.base_wait_ns : 0;
    f->hook_ns = hook + wait; /* waits for a full ring are hook time */
    f->n_dropped = s.dropped;
    f->flusher_ns = s.flusher_ns;
    f->profiler_bytes = yp_rec_status_bytes(&s) + (tot ? tot->extra_bytes : 0);
    f->interp_ns =
        tot ? yp_interp_bounded(tot->interp_ns, tot->app_ns, f->hook_ns, tot->interp_max_share) : 0;
    f->app_ns = tot ? tot->app_ns : 0;
}

static void drain_now(void) {
    pthread_mutex_lock(&R.drain_mu);
    drain_locked();
    pthread_mutex_unlock(&R.drain_mu);
}

yp_status yp_rec_checkpoint(const yp_rec_totals *tot) {
    if (!atomic_load(&R.open)) return YP_OK;
    atomic_store(&R.refresh_threads, 1); /* every thread's CPU time at the stop */
    drain_now(); /* first: the rings of threads gone are retired, the figures are the end's */
    yp_footer f;
    make_footer(&f, tot);
    pthread_mutex_lock(&R.drain_mu);
    drain_locked();
    yp_status st = R.werr;
    if (!st && !R.paused) {
        write_peak_locked(&f, tot);
        yp_writer_footer(R.w, &f);
        note_write_error();
        st = R.werr;
    }
    R.paused = 1;
    pthread_mutex_unlock(&R.drain_mu);
    return st;
}

void yp_rec_resume(void) {
    pthread_mutex_lock(&R.drain_mu);
    if (R.paused) {
        R.paused = 0;
        /* what changed while paused went to the sink only: rewrite it */
        pthread_mutex_lock(&R.reg_mu);
        for (yp_ring *r = R.rings; r; r = r->next) r->info_dirty = 1;
        pthread_mutex_unlock(&R.reg_mu);
    }
    pthread_mutex_unlock(&R.drain_mu);
}

yp_status yp_rec_close(const yp_rec_totals *tot) {
    if (!atomic_load(&R.open)) return YP_OK;
    stop_flusher(); /* its last pass drains everything pushed before */
    atomic_store(&R.refresh_threads, 1);
    drain_now();
    yp_footer f;
    make_footer(&f, tot);
    pthread_mutex_lock(&R.drain_mu);
    drain_locked();
    if (!R.werr && !R.paused) write_peak_locked(&f, tot);
    /* paused: the file already ends with a complete footer */
    yp_status st = yp_writer_close(R.w, R.werr || R.paused ? NULL : &f);
    R.paused = 0;
    if (st && !R.werr) {
        R.werr = st;
        snprintf(R.error_text, sizeof R.error_text, "closing %.200s failed: %s", R.path, yp_status_str(st));
    }
    R.w = NULL;
    atomic_store(&R.open, 0);
    R.sink = (yp_sink){0};
    pthread_mutex_unlock(&R.drain_mu);
    return st;
}

const char *yp_rec_path(void) { return R.path; }

void yp_rec_fork_prepare(void) {
    pthread_mutex_lock(&R.drain_mu);
    yp_symtab_fork_lock();
    pthread_mutex_lock(&R.reg_mu);
    pthread_mutex_lock(&R.wake_mu);
}

void yp_rec_fork_parent(void) {
    pthread_mutex_unlock(&R.wake_mu);
    pthread_mutex_unlock(&R.reg_mu);
    yp_symtab_fork_unlock();
    pthread_mutex_unlock(&R.drain_mu);
}

void yp_rec_fork_child(void) {
    /* A condition variable keeps its waiters' accounting: the parent's
     * waiters (a get_stats() in yp_rec_sync) are not in the child, and a
     * broadcast would wait for them forever. Nobody waits here: start anew. */
    init_conds();
    /* the only thread left is the one that took them (prepare) */
    pthread_mutex_unlock(&R.wake_mu);
    pthread_mutex_unlock(&R.reg_mu);
    yp_symtab_fork_unlock();
    pthread_mutex_unlock(&R.drain_mu);
}

void yp_rec_after_fork_child(void) {
    /* Only this thread exists now, and no lock is held (fork_prepare took
     * them all, fork_child let go). The parent's rings belong to threads
     * that are gone: forget (leak) them rather than touch their owners'
     * state; the parent's trace is the parent's: close our copy of its
     * descriptor without writing (the writer is whole: drain_mu was held). */
    pthread_mutex_lock(&R.drain_mu);
    R.thread_started = 0;
    atomic_store(&R.open, 0);
    yp_writer_close(R.w, NULL);
    R.w = NULL;
    R.sink = (yp_sink){0};
    R.paused = 0;
    pthread_mutex_lock(&R.reg_mu);
    R.rings = NULL;
    R.pool = NULL;
    R.n_pool = 0;
    atomic_store(&R.budget.used_bytes, 0);
    R.freed_dropped = R.freed_hook_ns = 0;
    pthread_mutex_unlock(&R.reg_mu);
    yp_tls_ring = NULL;
    if (pthread_once(&g_key_once, make_key) == 0) pthread_setspecific(g_key, NULL);
    pthread_mutex_lock(&R.wake_mu);
    R.stop_req = 0;
    R.sync_req = R.sync_done = 0;
    pthread_mutex_unlock(&R.wake_mu);
    atomic_store(&R.peak_bytes, 0);
    pthread_mutex_unlock(&R.drain_mu);
}
