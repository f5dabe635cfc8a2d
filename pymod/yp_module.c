/*
 * yp_module.c — the `yprof_record._yprof` extension: thin glue between
 * Python and the recorder/analyzer libraries. The public API is the Python
 * package yprof_record (pymod/yprof_record/__init__.py); these underscored
 * functions are its private back end.
 *
 * Live statistics: the recorder's flusher feeds every chunk it writes into
 * one process-wide aggregator (M.agg) through a sink; M.agg_mu serializes the
 * flusher's feeding with snapshots and clear_stats() from any thread.
 * Snapshots are taken with the GIL released, so a reader never stalls the
 * application's threads beyond the copy itself.
 *
 * Only argument errors raise (TypeError/ValueError, and OSError when the
 * trace cannot be created by start()); every other failure is counted and
 * reported by status().
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "yp_pollution.h"
#include "yp_pymod_int.h"
#include "yprof/analyze.h"

/* The module's state. Written with the GIL; what the flusher reads too
 * (sink_totals) is atomic. Two scopes: the live stats' (since clear_stats)
 * and the open trace's. */
static struct {
    yp_agg *agg;                       /* the live stats; under agg_mu */
    pthread_mutex_t agg_mu;            /* taken last, under the recorder's drain lock only */
    _Atomic uint64_t app_ns;           /* recorded wall time over closed intervals */
    _Atomic uint64_t trace_app_ns;     /* the same since the trace opened */
    _Atomic uint64_t trace_events;     /* events the flusher passed on since then */
    _Atomic uint64_t interval_t0;      /* start of the running interval; 0 when stopped */
    _Atomic double interp_per_event;   /* calibrated ns of interpreter slow-down per event */
    _Atomic double interp_share;       /* at most this share of the time (yp_interp_estimate) */
    _Atomic double interp_bytecode;    /* the share of Python code's time lost to the hook */
    _Atomic int64_t trace_code_offset; /* the trace's Python code time: the live stats' plus this */
    char pyversion[64];                /* for trace headers */
    uint32_t clock_kind;               /* clock of the live stats */
    /* the recorder's cumulative counters when the live stats were last
     * cleared; written by clear_stats() with the GIL, read by snapshots
     * without it */
    _Atomic uint64_t base_hook_ns, base_flusher_ns, base_wait_ns;
    double started_at; /* unix time of the first start() */
} M = {.agg_mu = PTHREAD_MUTEX_INITIALIZER, .interp_per_event = -1};

/* Recorder status with hook/flusher/wait counted from the last clear. */
static uint64_t minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
static void status_since_clear(yp_rec_status *s) {
    yp_rec_status_get(s);
    s->hook_ns = minus(s->hook_ns, atomic_load(&M.base_hook_ns));
    s->flusher_ns = minus(s->flusher_ns, atomic_load(&M.base_flusher_ns));
    s->wait_ns = minus(s->wait_ns, atomic_load(&M.base_wait_ns));
}

/* ---- the sink: flusher -> live aggregator ----------------------------------------- */

static void sink_events(void *ctx, uint32_t tid, const yp_event *ev, size_t n, uint32_t dropped) {
    (void)ctx;
    M.trace_events += n;
    pthread_mutex_lock(&M.agg_mu);
    if (M.agg) yp_agg_events(M.agg, tid, ev, n, dropped);
    pthread_mutex_unlock(&M.agg_mu);
}
static void sink_symbol(void *ctx, const yp_symbol *s) {
    (void)ctx;
    pthread_mutex_lock(&M.agg_mu);
    if (M.agg) yp_agg_symbol(M.agg, s);
    pthread_mutex_unlock(&M.agg_mu);
}
static void sink_thread(void *ctx, const yp_thread_info *t) {
    (void)ctx;
    pthread_mutex_lock(&M.agg_mu);
    if (M.agg) yp_agg_thread(M.agg, t);
    pthread_mutex_unlock(&M.agg_mu);
}

/* Recorded time so far: `closed` plus the running interval's. */
static uint64_t app_ns_now(uint64_t closed) {
    uint64_t t0 = M.interval_t0;
    return closed + (t0 ? yp_clock_mono_ns() - t0 : 0);
}

/* The interval running since M.interval_t0 ends now. */
static void interval_end(void) {
    uint64_t t0 = atomic_exchange(&M.interval_t0, 0);
    if (t0) {
        uint64_t d = yp_clock_mono_ns() - t0;
        M.app_ns += d;
        M.trace_app_ns += d;
    }
}

static uint64_t interp_ns_of(uint64_t events, uint64_t app_ns, uint64_t hook_ns, uint64_t code_ns) {
    return yp_interp_estimate(events, M.interp_per_event, M.interp_bytecode, M.interp_share, app_ns, hook_ns,
                              code_ns);
}

/* The live stats' time running Python code (yp_agg_code_ns), each event
 * costing the calibrated figure and hook_ns over `events` (the hook's
 * mean); with agg_mu held. */
static uint64_t code_ns_locked(uint64_t hook_ns, uint64_t events) {
    double per_event = M.interp_per_event > 0 ? M.interp_per_event : 0.0;
    return yp_agg_code_ns(M.agg, per_event + (events ? (double)hook_ns / (double)events : 0.0));
}

/* Memory beyond the recorder's (live stats, C-function table); the live
 * stats' event count and Python code time (with hook_ns over hook_events,
 * or over the live stats' events when 0) when asked. */
static uint64_t extra_bytes(uint64_t *events, uint64_t *code_ns, uint64_t hook_ns, uint64_t hook_events) {
    pthread_mutex_lock(&M.agg_mu);
    uint64_t b = yp_agg_bytes(M.agg) + yp_hook_bytes();
    uint64_t n = yp_agg_events_seen(M.agg);
    if (events) *events = n;
    if (code_ns) *code_ns = code_ns_locked(hook_ns, hook_events ? hook_events : n);
    pthread_mutex_unlock(&M.agg_mu);
    return b;
}

/* The open trace's figures (its footer and markers), interp_ns with the
 * trace's hook time. */
static void sink_totals(void *ctx, yp_rec_totals *t) {
    (void)ctx;
    t->app_ns = app_ns_now(M.trace_app_ns);
    uint64_t hook_ns = yp_rec_trace_hook_ns(); /* the registry's lock, then the live stats' */
    uint64_t code_ns;
    t->extra_bytes = extra_bytes(NULL, &code_ns, hook_ns, M.trace_events);
    int64_t code = (int64_t)code_ns + M.trace_code_offset;
    t->interp_ns = interp_ns_of(M.trace_events, t->app_ns, hook_ns, code > 0 ? (uint64_t)code : 0);
}

/* The live stats' figures (since clear_stats), with their hook time
 * `hook_ns`. */
static void live_totals(yp_rec_totals *t, uint64_t hook_ns) {
    t->app_ns = app_ns_now(M.app_ns);
    uint64_t events, code_ns;
    t->extra_bytes = extra_bytes(&events, &code_ns, hook_ns, 0);
    t->interp_ns = interp_ns_of(events, t->app_ns, hook_ns, code_ns);
}

/* The trace's totals once the flusher has passed on what was pushed. */
static void trace_totals(yp_rec_totals *t) {
    Py_BEGIN_ALLOW_THREADS
        yp_rec_sync(2000);
    Py_END_ALLOW_THREADS
    sink_totals(NULL, t);
}

/* ---- start / stop ------------------------------------------------------------------ */

/* _start(path, cpu, builtins, cmdline, ring_bits, flush_ms, wait_ms, interp_per_event, interp_share,
 * interp_bytecode, hook[, open_frames]): open the trace (or continue it) and install the hook; False when
 * already running. */
static PyObject *py_start(PyObject *self, PyObject *args) {
    (void)self;
    const char *path, *cmdline;
    int clock_cpu, builtins, hook_kind, open_frames = 1;
    unsigned ring_bits, flush_ms, wait_ms;
    double interp_per_event, interp_share, interp_bytecode;
    if (!PyArg_ParseTuple(args, "sppsIIIdddi|p", &path, &clock_cpu, &builtins, &cmdline, &ring_bits,
                          &flush_ms, &wait_ms, &interp_per_event, &interp_share, &interp_bytecode, &hook_kind,
                          &open_frames))
        return NULL;
    if (yp_hook_running()) Py_RETURN_FALSE;
    double nspt = 1.0;
    uint32_t ck = clock_cpu ? YP_CLOCK_THREAD_CPU : yp_clock_pick_wall(&nspt);
    if (yp_rec_is_open() && (strcmp(path, yp_rec_path()) != 0 || yp_rec_clock_kind() != ck)) {
        yp_rec_totals t;
        trace_totals(&t);
        Py_BEGIN_ALLOW_THREADS
            yp_rec_close(&t);
        Py_END_ALLOW_THREADS
    }
    if (M.agg && M.clock_kind != ck) {
        /* times on another clock don't mix: live stats start afresh */
        pthread_mutex_lock(&M.agg_mu);
        yp_agg_free(M.agg);
        M.agg = NULL;
        pthread_mutex_unlock(&M.agg_mu);
        M.app_ns = 0;
        M.started_at = 0;
    }
    M.clock_kind = ck;
    if (!M.agg) {
        pthread_mutex_lock(&M.agg_mu);
        M.agg = yp_agg_new();
        yp_agg_set_ns_per_tick(M.agg, nspt);
        yp_agg_set_clock(M.agg, (uint32_t)ck);
        pthread_mutex_unlock(&M.agg_mu);
    }
    if (interp_per_event >= 0) M.interp_per_event = interp_per_event;
    if (interp_share >= 0) M.interp_share = interp_share;
    if (interp_bytecode >= 0) M.interp_bytecode = interp_bytecode;
    if (!yp_rec_is_open()) {
        M.trace_app_ns = 0;
        M.trace_events = 0;
        yp_rec_status rs;
        status_since_clear(&rs);
        uint64_t code_ns;
        (void)extra_bytes(NULL, &code_ns, rs.hook_ns + rs.wait_ns, 0);
        M.trace_code_offset = -(int64_t)code_ns; /* the trace's Python code time starts at 0 */
        yp_rec_config cfg = {0};
        cfg.path = path;
        cfg.clock_kind = ck;
        cfg.ns_per_tick = nspt;
        cfg.python_version = M.pyversion;
        cfg.command_line = cmdline;
        cfg.ring_bits = ring_bits;
        cfg.flush_ms = flush_ms;
        cfg.wait_ms = wait_ms;
        cfg.sink = (yp_sink){sink_events, sink_symbol, sink_thread, sink_totals, NULL};
        char err[512];
        yp_status st = yp_rec_open(&cfg, err, sizeof err);
        if (st != YP_OK) {
            PyErr_SetString(PyExc_OSError, err);
            return NULL;
        }
    }
    yp_rec_resume();
    if (yp_hook_start(ck, nspt, builtins, hook_kind, open_frames) != 0) Py_RETURN_FALSE;
    if (M.started_at == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        M.started_at = (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
    }
    M.interval_t0 = yp_clock_mono_ns();
    Py_RETURN_TRUE;
}

static PyObject *py_stop(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    if (!yp_hook_running()) Py_RETURN_FALSE;
    yp_hook_stop();
    interval_end();
    yp_rec_totals t;
    /* one release of the GIL for the flush and the footer: with busy
     * threads each reacquisition can take several switch intervals */
    Py_BEGIN_ALLOW_THREADS
        yp_rec_sync(2000);
        sink_totals(NULL, &t); /* atomics and the live stats' lock only */
        yp_rec_checkpoint(&t);
    Py_END_ALLOW_THREADS
    Py_RETURN_TRUE;
}

static PyObject *py_close(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    if (yp_hook_running()) {
        yp_hook_stop();
        interval_end();
    }
    yp_rec_totals t;
    trace_totals(&t);
    yp_status st;
    Py_BEGIN_ALLOW_THREADS
        st = yp_rec_close(&t);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(st);
}

static PyObject *py_bootstrap(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    yp_hook_bootstrap_thread();
    Py_RETURN_NONE;
}

static PyObject *py_is_running(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyBool_FromLong(yp_hook_running());
}

static PyObject *py_name_threads(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    yp_name_all_threads();
    Py_RETURN_NONE;
}

static PyObject *py_thread_names(PyObject *self, PyObject *list) {
    (void)self;
    if (!PyList_Check(list)) {
        PyErr_SetString(PyExc_TypeError, "expected a list of (ident, name)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        unsigned long long ident;
        const char *name;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, i), "Ks", &ident, &name)) return NULL;
        yp_rec_thread_name(ident, name);
    }
    Py_RETURN_NONE;
}

/* ---- statistics -------------------------------------------------------------------- */

static void stats_capsule_free(PyObject *cap) { yp_stats_free(PyCapsule_GetPointer(cap, "yprof.stats")); }

/* How long get_stats() waits for the flusher with the GIL held. */
#define SNAPSHOT_HOLD_MS 25u

/* Until the flusher has passed on every event pushed so far (at most
 * timeout_ms). With the GIL held no thread runs its hook (every hook holds
 * it, also while it waits for room in a full ring): the barrier has only
 * what the rings hold now to drain, a few ms. Letting go of the GIL for it
 * would cost far more: taking it back among busy threads is a wait of one
 * or more switch intervals (5 ms), 5-360 ms measured with 8 busy threads.
 * Only a barrier slower than SNAPSHOT_HOLD_MS (a stalled disk under the
 * flusher's write) is waited for without the GIL, so the program is never
 * held up longer. */
static void sync_holding_gil(unsigned timeout_ms) {
    uint64_t ticket = yp_rec_sync_request();
    unsigned hold = timeout_ms < SNAPSHOT_HOLD_MS ? timeout_ms : SNAPSHOT_HOLD_MS;
    if (yp_rec_sync_wait(ticket, hold) != 0 && timeout_ms > hold) {
        Py_BEGIN_ALLOW_THREADS
            yp_rec_sync_wait(ticket, timeout_ms - hold);
        Py_END_ALLOW_THREADS
    }
}

/* _snapshot([timeout_ms, path]): a capsule of the live stats, taken after the flusher has passed on
 * what was pushed (sync_holding_gil), with the pollution figures since clear_stats. */
static PyObject *py_snapshot(PyObject *self, PyObject *args) {
    (void)self;
    unsigned timeout_ms = 2000;
    const char *path = "";
    if (!PyArg_ParseTuple(args, "|Is", &timeout_ms, &path)) return NULL;
    yp_stats *s = NULL;
    yp_rec_status rs;
    sync_holding_gil(timeout_ms);
    status_since_clear(&rs);
    pthread_mutex_lock(&M.agg_mu);
    s = M.agg ? yp_agg_snapshot(M.agg) : NULL;
    pthread_mutex_unlock(&M.agg_mu);
    yp_rec_totals t;
    live_totals(&t, rs.hook_ns + rs.wait_ns);
    if (!s) {
        /* nothing recorded yet, or no memory: an empty snapshot */
        yp_agg *empty = yp_agg_new();
        s = empty ? yp_agg_snapshot(empty) : NULL;
        yp_agg_free(empty);
        if (!s) return PyErr_NoMemory();
    }
    yp_load_result lr;
    memset(&lr, 0, sizeof lr);
    lr.hdr.python_version = M.pyversion;
    lr.hdr.command_line = "";
    lr.hdr.clock_kind = yp_rec_clock_kind();
    lr.hdr.pid = (uint32_t)getpid();
    lr.foot.hook_ns = rs.hook_ns + rs.wait_ns;
    lr.foot.flusher_ns = rs.flusher_ns;
    lr.foot.interp_ns = t.interp_ns;
    lr.foot.app_ns = t.app_ns;
    lr.foot.profiler_bytes = yp_rec_status_bytes(&rs) + t.extra_bytes;
    lr.peak_bytes = rs.peak_bytes + t.extra_bytes;
    if (lr.peak_bytes < lr.foot.profiler_bytes) lr.peak_bytes = lr.foot.profiler_bytes;
    lr.has_footer = 1;
    yp_stats_set_session(s, path, &lr);
    s->session.started_at = M.started_at;
    PyObject *cap = PyCapsule_New(s, "yprof.stats", stats_capsule_free);
    if (!cap) yp_stats_free(s);
    return cap;
}

static yp_stats *get_stats(PyObject *cap) { return PyCapsule_GetPointer(cap, "yprof.stats"); }

/* A snapshot's rows as Python tuples (functions, threads, stats, edges, session). */
static PyObject *py_stats_data(PyObject *self, PyObject *cap) {
    (void)self;
    yp_stats *s = get_stats(cap);
    if (!s) return NULL;
    PyObject *funcs = PyList_New((Py_ssize_t)s->n_funcs);
    PyObject *threads = PyList_New((Py_ssize_t)s->n_threads);
    PyObject *fstats = PyList_New((Py_ssize_t)s->n_fstats);
    PyObject *edges = PyList_New((Py_ssize_t)s->n_edges);
    if (!funcs || !threads || !fstats || !edges) goto fail;
    for (size_t i = 0; i < s->n_funcs; i++) {
        const yp_func *f = &s->funcs[i];
        PyObject *o =
            Py_BuildValue("(IsssIi)", f->id, f->name, f->module, f->filename, f->lineno, f->builtin);
        if (!o) goto fail;
        PyList_SET_ITEM(funcs, (Py_ssize_t)i, o);
    }
    for (size_t i = 0; i < s->n_threads; i++) {
        const yp_thread_stat *t = &s->threads[i];
        PyObject *o = Py_BuildValue("(IsKKddKKK)", t->id, t->name, (unsigned long long)t->ident,
                                    (unsigned long long)t->native_id, t->wall_s, t->cpu_s,
                                    (unsigned long long)t->events, (unsigned long long)t->dropped,
                                    (unsigned long long)t->unmatched);
        if (!o) goto fail;
        PyList_SET_ITEM(threads, (Py_ssize_t)i, o);
    }
    for (size_t i = 0; i < s->n_fstats; i++) {
        const yp_fstat *f = &s->fstats[i];
        PyObject *o =
            Py_BuildValue("(IIKKddd)", f->func, f->thread, (unsigned long long)f->ncalls,
                          (unsigned long long)f->primitive_calls, f->self_s, f->total_s, f->awaited_s);
        if (!o) goto fail;
        PyList_SET_ITEM(fstats, (Py_ssize_t)i, o);
    }
    for (size_t i = 0; i < s->n_edges; i++) {
        const yp_edge *e = &s->edges[i];
        PyObject *o =
            Py_BuildValue("(IIIKKdd)", e->caller, e->callee, e->thread, (unsigned long long)e->ncalls,
                          (unsigned long long)e->primitive_calls, e->self_s, e->total_s);
        if (!o) goto fail;
        PyList_SET_ITEM(edges, (Py_ssize_t)i, o);
    }
    const yp_session *ss = &s->session;
    PyObject *session = Py_BuildValue(
        "{s:s,s:s,s:s,s:d,s:K,s:K,s:d,s:d,s:K,s:K,s:d,s:d,s:d,s:d}", "trace_path", ss->trace_path,
        "python_version", ss->python_version, "clock", ss->clock, "duration_s", ss->duration_s, "events",
        (unsigned long long)ss->events, "dropped_events", (unsigned long long)ss->dropped_events,
        "pollution_pct", ss->pollution_pct, "flusher_pct", ss->flusher_pct, "profiler_bytes",
        (unsigned long long)ss->profiler_bytes, "peak_bytes", (unsigned long long)ss->peak_bytes, "hook_s",
        ss->hook_s, "flusher_s", ss->flusher_s, "interp_s", ss->interp_s, "app_s", ss->app_s);
    if (!session) goto fail;
    return Py_BuildValue("(NNNNN)", funcs, threads, fstats, edges, session);
fail:
    Py_XDECREF(funcs);
    Py_XDECREF(threads);
    Py_XDECREF(fstats);
    Py_XDECREF(edges);
    return NULL;
}

/* A snapshot's rows of calls under tags: (tag, function, thread, root_s,
 * ncalls, primitive, self_s, total_s, awaited_s), tag and function as
 * indexes into _stats_data's functions. */
static PyObject *py_tag_data(PyObject *self, PyObject *cap) {
    (void)self;
    yp_stats *s = get_stats(cap);
    if (!s) return NULL;
    PyObject *rows = PyList_New((Py_ssize_t)s->n_tagstats);
    if (!rows) return NULL;
    for (size_t i = 0; i < s->n_tagstats; i++) {
        const yp_tagstat *t = &s->tagstats[i];
        PyObject *o = Py_BuildValue("(IIIdKKddd)", t->tag, t->f.func, t->f.thread, t->root_s,
                                    (unsigned long long)t->f.ncalls, (unsigned long long)t->f.primitive_calls,
                                    t->f.self_s, t->f.total_s, t->f.awaited_s);
        if (!o) {
            Py_DECREF(rows);
            return NULL;
        }
        PyList_SET_ITEM(rows, (Py_ssize_t)i, o);
    }
    return rows;
}

/* A snapshot's tasks: (thread, kind, function, tag, name, number, created_s,
 * first_run_s, done_s, wall_s, active_s, steps), function, tag and name as
 * indexes into _stats_data's functions (-1: none). */
static PyObject *py_task_data(PyObject *self, PyObject *cap) {
    (void)self;
    yp_stats *s = get_stats(cap);
    if (!s) return NULL;
    PyObject *rows = PyList_New((Py_ssize_t)s->n_tasks);
    if (!rows) return NULL;
    for (size_t i = 0; i < s->n_tasks; i++) {
        const yp_task *k = &s->tasks[i];
#define IDX(x) ((x) == UINT32_MAX ? -1L : (long)(x))
        PyObject *o = Py_BuildValue("(IIlllKdddddK)", k->thread, k->kind, IDX(k->func), IDX(k->tag),
                                    IDX(k->name), (unsigned long long)k->number, k->created_s, k->first_run_s,
                                    k->done_s, k->wall_s, k->active_s, (unsigned long long)k->steps);
#undef IDX
        if (!o) {
            Py_DECREF(rows);
            return NULL;
        }
        PyList_SET_ITEM(rows, (Py_ssize_t)i, o);
    }
    return rows;
}

static PyObject *py_stats_save(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cap;
    const char *path;
    if (!PyArg_ParseTuple(args, "Os", &cap, &path)) return NULL;
    yp_stats *s = get_stats(cap);
    if (!s) return NULL;
    char err[512] = "";
    yp_status st;
    Py_BEGIN_ALLOW_THREADS
        st = yp_sqlite_write(s, path, err, sizeof err);
    Py_END_ALLOW_THREADS
    if (st != YP_OK) {
        PyErr_SetString(PyExc_OSError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_stats_export(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cap;
    const char *path, *kind;
    if (!PyArg_ParseTuple(args, "Oss", &cap, &kind, &path)) return NULL;
    yp_stats *s = get_stats(cap);
    if (!s) return NULL;
    yp_status (*fn)(const yp_stats *, const char *) = NULL;
    if (!strcmp(kind, "pstats"))
        fn = yp_export_pstats;
    else if (!strcmp(kind, "callgrind"))
        fn = yp_export_callgrind;
    else if (!strcmp(kind, "collapsed"))
        fn = yp_export_collapsed;
    else if (!strcmp(kind, "flamegraph"))
        fn = yp_export_flamegraph;
    else {
        PyErr_Format(PyExc_ValueError, "unknown export kind %s", kind);
        return NULL;
    }
    yp_status st;
    Py_BEGIN_ALLOW_THREADS
        st = fn(s, path);
    Py_END_ALLOW_THREADS
    int e = st == YP_ERR_IO ? yp_export_errno() : 0;
    if (e) { /* OSError(errno, reason, path): the subclass for errno, as open() raises */
        PyObject *err =
            PyObject_CallFunction(PyExc_OSError, "isO", e, strerror(e), PyTuple_GET_ITEM(args, 2));
        if (err) {
            PyErr_SetObject((PyObject *)Py_TYPE(err), err);
            Py_DECREF(err);
        }
        return NULL;
    }
    if (st != YP_OK) {
        PyErr_Format(PyExc_OSError, "cannot write %s: %s", path, yp_status_str(st));
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_stats_report(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cap;
    int top, sort, thread, show_threads, width = 0;
    if (!PyArg_ParseTuple(args, "Oiiip|i", &cap, &top, &sort, &thread, &show_threads, &width)) return NULL;
    yp_stats *s = get_stats(cap);
    if (!s) return NULL;
    if (sort < 0 || sort > YP_SORT_AVG || thread >= (int)s->n_threads) {
        PyErr_SetString(PyExc_ValueError, "bad sort or thread");
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return PyErr_NoMemory();
    yp_report_opts o = {top, (yp_sort)sort, thread, show_threads, width > 0 ? width : 0, 0, 0, 0, -1};
    yp_report_print(s, &o, f);
    fclose(f);
    PyObject *r = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)len, "replace");
    free(buf);
    return r;
}

static PyObject *py_clear(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    Py_BEGIN_ALLOW_THREADS
        yp_rec_sync(2000);
        yp_rec_status cs;
        status_since_clear(&cs);
        pthread_mutex_lock(&M.agg_mu);
        /* the trace keeps the code time cleared from the live stats */
        M.trace_code_offset += (int64_t)code_ns_locked(cs.hook_ns + cs.wait_ns, yp_agg_events_seen(M.agg));
        yp_agg_clear(M.agg);
        pthread_mutex_unlock(&M.agg_mu);
    Py_END_ALLOW_THREADS
    /* pollution restarts with the stats */
    yp_rec_status rs;
    yp_rec_status_get(&rs);
    atomic_store(&M.base_hook_ns, rs.hook_ns);
    atomic_store(&M.base_flusher_ns, rs.flusher_ns);
    atomic_store(&M.base_wait_ns, rs.wait_ns);
    M.app_ns = 0;
    M.started_at = 0;
    if (yp_hook_running()) {
        uint64_t now = yp_clock_mono_ns(), t0 = M.interval_t0;
        if (t0) M.trace_app_ns += now - t0; /* the trace's time runs on */
        M.interval_t0 = now;
    }
    Py_RETURN_NONE;
}

static PyObject *py_status(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    yp_rec_status s;
    yp_rec_status_get(&s);
    return Py_BuildValue("{s:O,s:O,s:s,s:s,s:s,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "running",
                         yp_hook_running() ? Py_True : Py_False, "open", s.open ? Py_True : Py_False, "path",
                         yp_rec_path(), "error", s.write_error ? yp_status_str(s.write_error) : "",
                         "error_text", s.error_text, "events_written", (unsigned long long)s.events,
                         "dropped_events", (unsigned long long)s.dropped, "chunks",
                         (unsigned long long)s.chunks, "bytes_written", (unsigned long long)s.bytes_written,
                         "threads", (unsigned long long)s.rings, "functions", (unsigned long long)s.symbols,
                         "alloc_failures", (unsigned long long)s.alloc_failures);
}

static PyObject *py_pollution(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    sync_holding_gil(2000); /* the events' count and the C functions' time include every event so far */
    yp_rec_status s;
    status_since_clear(&s);
    yp_rec_totals t;
    live_totals(&t, s.hook_ns + s.wait_ns);
    double app = (double)t.app_ns * 1e-9, hook = (double)s.hook_ns * 1e-9, fl = (double)s.flusher_ns * 1e-9,
           interp = (double)t.interp_ns * 1e-9;
    double wait = (double)s.wait_ns * 1e-9;
    hook += wait; /* the waits happen inside the hook, and are not sampled */
    /* the application's threads lose the hook and interpreter time; the
     * flusher runs beside them, on another core when one is free */
    double pct = app > 0 ? 100.0 * (hook + interp) / app : 0.0;
    double fpct = app > 0 ? 100.0 * fl / app : 0.0;
    uint64_t bytes = yp_rec_status_bytes(&s) + t.extra_bytes;
    uint64_t peak = s.peak_bytes + t.extra_bytes; /* the live stats only grow between clears */
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:d,s:d,s:d,s:K,s:K}", "pct", pct, "flusher_pct", fpct, "hook_s",
                         hook, "flusher_s", fl, "interp_s", interp, "wait_s", wait, "app_s", app, "bytes",
                         (unsigned long long)bytes, "peak_bytes",
                         (unsigned long long)(peak > bytes ? peak : bytes));
}

static PyObject *py_set_ignore_prefix(PyObject *self, PyObject *arg) {
    (void)self;
    const char *p = PyUnicode_AsUTF8(arg);
    if (!p) return NULL;
    yp_hook_set_ignore_prefix(p);
    Py_RETURN_NONE;
}

static PyObject *py_after_fork_child(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    yp_rec_after_fork_child();
    yp_hook_after_fork_child();
    /* the parent's live stats are the parent's (whole: fork_prepare held
     * their lock); the child's start afresh */
    pthread_mutex_lock(&M.agg_mu);
    yp_agg_free(M.agg);
    M.agg = NULL;
    pthread_mutex_unlock(&M.agg_mu);
    M.app_ns = 0;
    M.interval_t0 = 0; /* the child does not record */
    Py_RETURN_NONE;
}

static PyObject *py_empty_hook(PyObject *self, PyObject *arg) {
    (void)self;
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    return PyBool_FromLong(yp_hook_empty(on) == 0);
}

static PyObject *py_unhook_self(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyBool_FromLong(yp_hook_unhook_self());
}

static PyObject *py_set_interp(PyObject *self, PyObject *args) {
    (void)self;
    double per_event, share, bytecode;
    if (!PyArg_ParseTuple(args, "ddd", &per_event, &share, &bytecode)) return NULL;
    if (per_event >= 0) M.interp_per_event = per_event;
    if (share >= 0) M.interp_share = share;
    if (bytecode >= 0) M.interp_bytecode = bytecode;
    Py_RETURN_NONE;
}

static PyObject *py_empty_eval(PyObject *self, PyObject *arg) {
    (void)self;
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    return PyBool_FromLong(yp_hook_empty_eval(on) == 0);
}

static PyObject *py_hook_kind(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLong(yp_hook_kind());
}

static PyObject *py_fail_allocs(PyObject *self, PyObject *arg) {
    (void)self;
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    yp_rec_fail_allocs(n);
    Py_RETURN_NONE;
}

static PyObject *py_set_missing(PyObject *self, PyObject *arg) {
    (void)self;
    yp_hook_set_missing(arg);
    Py_RETURN_NONE;
}

static PyObject *py_set_disable(PyObject *self, PyObject *arg) {
    (void)self;
    yp_hook_set_disable(arg);
    Py_RETURN_NONE;
}

static PyObject *py_take_disabled(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyBool_FromLong(yp_hook_take_disabled());
}

static PyObject *py_set_filter(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *im, *ig, *em, *eg;
    if (!PyArg_ParseTuple(args, "O!O!O!O!", &PyTuple_Type, &im, &PyTuple_Type, &ig, &PyTuple_Type, &em,
                          &PyTuple_Type, &eg))
        return NULL;
    if (yp_filter_set(im, ig, em, eg) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_build_info(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return Py_BuildValue("{s:O}", "public_api_only", YP_PUBLIC_API_ONLY ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"_build_info", py_build_info, METH_NOARGS, "how the module was built"},
    {"_set_missing", py_set_missing, METH_O, "monitoring: sys.monitoring.MISSING"},
    {"_set_disable", py_set_disable, METH_O, "monitoring: sys.monitoring.DISABLE"},
    {"_take_disabled", py_take_disabled, METH_NOARGS, "monitoring: was DISABLE returned since the last call"},
    {"_set_filter", py_set_filter, METH_VARARGS,
     "the next recordings' filter: (include modules, include globs, exclude modules, exclude globs)"},
    {"_start", py_start, METH_VARARGS,
     "start(path, cpu, builtins, cmdline, ring_bits, flush_ms, wait_ms, interp, hook_kind)"},
    {"_stop", py_stop, METH_NOARGS, "stop recording; the trace gets a footer"},
    {"_close", py_close, METH_NOARGS, "stop and close the trace"},
    {"_bootstrap", py_bootstrap, METH_NOARGS, "install the hook in this thread"},
    {"_is_running", py_is_running, METH_NOARGS, "is the hook installed"},
    {"_thread_names", py_thread_names, METH_O, "name threads by ident"},
    {"_name_threads", py_name_threads, METH_NOARGS,
     "name every thread from threading's tables (runs no code)"},
    {"_snapshot", py_snapshot, METH_VARARGS, "flush and snapshot the live stats"},
    {"_stats_data", py_stats_data, METH_O, "a snapshot's rows"},
    {"_stats_save", py_stats_save, METH_VARARGS, "write a snapshot as SQLite"},
    {"_stats_export", py_stats_export, METH_VARARGS, "export a snapshot"},
    {"_stats_report", py_stats_report, METH_VARARGS, "report text of a snapshot"},
    {"_clear", py_clear, METH_NOARGS, "reset live stats"},
    {"_status", py_status, METH_NOARGS, "recorder status"},
    {"_pollution", py_pollution, METH_NOARGS, "profiler's own cost"},
    {"_set_ignore_prefix", py_set_ignore_prefix, METH_O, "do not record code under this path"},
    {"_start_quiet_thread", yp_py_start_quiet_thread, METH_O, "run fn() in a thread that is never recorded"},
    {"_set_tag_var", yp_py_set_tag_var, METH_O, "the ContextVar holding the tag"},
    {"_trace_greenlets", yp_py_trace_greenlets, METH_NOARGS,
     "trace this thread's greenlet switches (when greenlet is imported)"},
    {"_set_tag", yp_py_set_tag, METH_VARARGS,
     "_set_tag(value, in_task=False): the context's tag is now value"},
    {"_tag_data", py_tag_data, METH_O, "a snapshot's calls under tags"},
    {"_task_data", py_task_data, METH_O, "a snapshot's tasks"},
    {"_sigterm_catch", yp_py_sigterm_catch, METH_NOARGS,
     "SIGTERM to a semaphore, if its action is the default"},
    {"_sigterm_wait", yp_py_sigterm_wait, METH_NOARGS, "until SIGTERM comes"},
    {"_sigterm_die", yp_py_sigterm_die, METH_NOARGS, "die of SIGTERM, the default action back"},
    {"_after_fork_child", py_after_fork_child, METH_NOARGS, "reset in a forked child"},
    {"_empty_hook", py_empty_hook, METH_O, "calibration: an empty hook in this thread"},
    {"_empty_eval", py_empty_eval, METH_O, "calibration: an empty PEP 523 frame evaluator"},
    {"_unhook_self", py_unhook_self, METH_NOARGS, "calibration: remove this thread's profile function"},
    {"_set_interp", py_set_interp, METH_VARARGS,
     "calibration: (ns per event, bound share, bytecode share) of the hook in use"},
    {"_hook_kind", py_hook_kind, METH_NOARGS, "0 setprofile, 1 sys.monitoring, 2 PEP 523 evaluator"},
    {"_fail_allocs", py_fail_allocs, METH_O, "test only: fail the next N allocations"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_yprof", "yprof recorder back end", -1, methods, NULL, NULL, NULL, NULL};

/* fork: the recorder's locks and the live stats' are held across it by the
 * forking thread (the aggregator's lock is taken under the recorder's
 * drain lock by the flusher, so after them), and let go on both sides. */
static void fork_prepare(void) {
    yp_rec_fork_prepare();
    pthread_mutex_lock(&M.agg_mu);
}
static void fork_parent(void) {
    pthread_mutex_unlock(&M.agg_mu);
    yp_rec_fork_parent();
}
static void fork_child(void) {
    pthread_mutex_unlock(&M.agg_mu);
    yp_rec_fork_child();
}

/* The one symbol the module exports (everything else is hidden, see
 * CMakeLists.txt); 3.8's PyMODINIT_FUNC does not say so itself. */
__attribute__((visibility("default"))) PyMODINIT_FUNC PyInit__yprof(void) {
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    if (yp_moncb_add(m) < 0 || yp_glet_add(m) < 0 ||
        PyModule_AddStringConstant(m, "__version__", YP_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    for (PyMethodDef *d = methods; d->ml_name; d++) yp_hook_ignore_cfunc(d);
    yp_clock_anchor(); /* the TSC's calibration runs from here to the first start() */
    static int atfork_done;
    if (!atfork_done && pthread_atfork(fork_prepare, fork_parent, fork_child) == 0) atfork_done = 1;
    snprintf(M.pyversion, sizeof M.pyversion, "%s", Py_GetVersion());
    char *sp = strchr(M.pyversion, ' ');
    if (sp) *sp = 0;
    return m;
}
