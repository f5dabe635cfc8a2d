/*
 * yp_flusher.c — the recorder singleton's life: open a trace and start the
 * flusher thread, which wakes every flush_ms (or when a ring is filling,
 * or when asked) to drain (yp_drain.c) and write the pollution figures
 * every marker_ms; sync barriers, status, footers, close.
 *
 * Locks, always taken in this order:
 *   drain_mu  one drain at a time (the flusher, or a thread closing)
 *   symtab    symbol appends (yp_symtab.c)
 *   reg_mu    the thread registry, the pool and thread descriptions (yp_threads.c)
 *   wake_mu   with wake_cv, only to sleep and wake the flusher
 * The sink's own lock is taken under drain_mu only (never under reg_mu or
 * wake_mu), and nothing is taken while holding it.
 * The hook takes none of them on its fast path; its slow path (a new thread
 * or a new function) takes reg_mu or the symtab lock briefly. Nobody waits
 * for the flusher while holding one of them: a full ring waits with none
 * held, and the REC_STOP marks of stop() are written by the flusher itself.
 *
 * Memory: rings start at 2^ring_min_bits events and grow to 2^ring_bits
 * while the shared budget allows; the rings of threads that have exited are
 * kept for new threads (yp_threads.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "yp_rec_int.h"
#include "yp_symtab_int.h"

#define RING_MIN_BITS 12          /* 4Ki events, 64 KiB: where every ring starts */
#define RING_BUDGET (24ull << 20) /* growth beyond that, all rings together */

yp_rec_state yp_R = {
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

unsigned yp_rec_wait_ms(void) { return atomic_load(&R.open) ? atomic_load(&R.wait_ms) : 0; }

void yp_rec_wake(void) {
    pthread_mutex_lock(&R.wake_mu);
    pthread_cond_signal(&R.wake_cv);
    pthread_mutex_unlock(&R.wake_mu);
}

int yp_rec_is_open(void) { return atomic_load(&R.open); }
uint32_t yp_rec_clock_kind(void) { return R.clock_kind; }

static uint64_t self_cpu_ns(void) { return yp_clock_thread_cpu_ns(); }

/* This trace's footer figures now, with the caller's totals (NULL: none). */
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
    if (n > 0 && (size_t)n < sizeof text && yp_drain_file_ok()) {
        yp_writer_marker(R.w, text, (size_t)n);
        yp_drain_note_write_error();
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
    if (n > 0 && (size_t)n < sizeof text && yp_drain_file_ok()) { /* not after a stop()'s footer */
        yp_writer_marker(R.w, text, (size_t)n);
        yp_drain_note_write_error();
    }
    pthread_mutex_unlock(&R.drain_mu);
}

/* A deadline ms from now on CLOCK_MONOTONIC, the clock of both condition
 * variables (yp_rec_init_conds): a step of the wall clock never stalls a wait. */
static struct timespec deadline_in(unsigned ms) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    dl.tv_sec += dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    return dl;
}

void yp_rec_init_conds(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&R.wake_cv, &ca);
    pthread_cond_init(&R.done_cv, &ca);
    pthread_condattr_destroy(&ca);
}
static pthread_once_t g_conds_once = PTHREAD_ONCE_INIT;

/* The flusher thread: sleep until woken or flush_ms, drain, write a marker when due, answer syncs; until
 * asked to stop. */
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
        yp_drain_locked();
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
    for (yp_rthread *t = R.rings; t; t = t->next) t->info_dirty = 1;
    pthread_mutex_unlock(&R.reg_mu);
    pthread_mutex_lock(&R.wake_mu);
    R.stop_req = 0;
    R.sync_req = R.sync_done = 0;
    pthread_mutex_unlock(&R.wake_mu);
    atomic_store(&R.flusher_ns, 0);
    atomic_store(&R.peak_bytes, 0);
    pthread_once(&g_conds_once, yp_rec_init_conds);
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

uint64_t yp_rec_sync_request(void) {
    if (!atomic_load(&R.open)) return 0;
    atomic_store(&R.refresh_threads, 1); /* the threads' CPU time up to now */
    pthread_mutex_lock(&R.wake_mu);
    uint64_t want = ++R.sync_req;
    pthread_cond_signal(&R.wake_cv);
    pthread_mutex_unlock(&R.wake_mu);
    return want;
}

int yp_rec_sync_wait(uint64_t ticket, unsigned timeout_ms) {
    if (!ticket) return 0;
    pthread_mutex_lock(&R.wake_mu);
    struct timespec dl = deadline_in(timeout_ms);
    int rc = 0;
    while (R.sync_done < ticket && R.thread_started)
        if (pthread_cond_timedwait(&R.done_cv, &R.wake_mu, &dl) == ETIMEDOUT) {
            rc = -1;
            break;
        }
    pthread_mutex_unlock(&R.wake_mu);
    return rc;
}

int yp_rec_sync(unsigned timeout_ms) { return yp_rec_sync_wait(yp_rec_sync_request(), timeout_ms); }

void yp_rec_marker(const char *text) {
    pthread_mutex_lock(&R.drain_mu);
    if (yp_drain_file_ok()) {
        yp_writer_marker(R.w, text, strlen(text));
        yp_drain_note_write_error();
    }
    pthread_mutex_unlock(&R.drain_mu);
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
    out->ring_bytes = yp_rthreads_bytes_locked(&out->rings); /* the pool's too */
    out->dropped = R.freed_dropped;
    out->hook_ns = R.freed_hook_ns;
    for (yp_rthread *t = R.rings; t; t = t->next) {
        out->dropped += atomic_load(&t->dropped_total);
        out->hook_ns += atomic_load(&t->hook_ns);
    }
    pthread_mutex_unlock(&R.reg_mu);
    out->symbols = yp_symtab_count();
    out->symbol_bytes = yp_symtab_bytes();
    out->flusher_ns = atomic_load(&R.flusher_ns);
    out->wait_ns = atomic_load(&R.wait_ns);
    out->alloc_failures = atomic_load(&R.alloc_failures);
    uint64_t now = yp_rec_status_bytes(out), peak = atomic_load(&R.peak_bytes);
    out->peak_bytes = peak > now ? peak : now;
}

/* hook + wait of the threads now and gone; reg_mu held */
static uint64_t hook_wait_ns_locked(void) {
    uint64_t ns = R.freed_hook_ns + atomic_load(&R.wait_ns);
    for (yp_rthread *t = R.rings; t; t = t->next) ns += atomic_load(&t->hook_ns);
    return ns;
}

uint64_t yp_rec_trace_hook_ns(void) {
    pthread_mutex_lock(&R.reg_mu);
    uint64_t ns = hook_wait_ns_locked(), base = R.base_hook_ns + R.base_wait_ns;
    pthread_mutex_unlock(&R.reg_mu);
    return ns > base ? ns - base : 0;
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
    f->interp_ns = tot ? tot->interp_ns : 0;
    f->app_ns = tot ? tot->app_ns : 0;
}

static void drain_now(void) {
    pthread_mutex_lock(&R.drain_mu);
    yp_drain_locked();
    pthread_mutex_unlock(&R.drain_mu);
}

yp_status yp_rec_checkpoint(const yp_rec_totals *tot) {
    if (!atomic_load(&R.open)) return YP_OK;
    atomic_store(&R.refresh_threads, 1); /* every thread's CPU time at the stop */
    drain_now(); /* first: the rings of threads gone are retired, the figures are the end's */
    yp_footer f;
    make_footer(&f, tot);
    pthread_mutex_lock(&R.drain_mu);
    yp_drain_locked();
    yp_status st = R.werr;
    if (!st && !R.paused) {
        write_peak_locked(&f, tot);
        yp_writer_footer(R.w, &f);
        yp_drain_note_write_error();
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
        for (yp_rthread *t = R.rings; t; t = t->next) t->info_dirty = 1;
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
    yp_drain_locked();
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
