/*
 * yp_hook.c — the hook's life: start and stop recording on whichever event
 * source is in use (setprofile, sys.monitoring or the frame evaluator: one
 * file each), the per-thread slow paths they share, and the state all of
 * them read (yp_hook_int.h).
 */
#include "yp_hook_int.h"
#include "yp_pollution.h"

yp_hook_state yp_hook = {
    .extra_idx = -1,
    .sym_idx = -1,
    .filter_idx = -1,
    .kind = YP_HOOK_SETPROFILE,
    .builtins = 1,
    .clock = YP_CLOCK_MONOTONIC,
    .wall = YP_CLOCK_MONOTONIC,
    .wall_ns = 1.0,
};
YP_THREAD_LOCAL yp_hook_thread yp_hook_tls;

int yp_hook_running(void) { return H.running; }

/* A thread's first event: its ring, its name, THREAD_START (none for a
 * quiet thread, whose events all come here and go). The ring's
 * check point brings the thread's next events back here (yp_hook_push_slow) while
 * its name is not known, else to the first sample. */
yp_ring *yp_hook_ring_slow(uint64_t wall) {
    if (yp_hook_tls.quiet) return NULL; /* the profiler's own thread: nothing recorded, nothing lost */
    yp_ring *r = yp_rec_ring_slow();
    if (!r) return NULL;
    yp_name_thread(r);
    yp_glet_trace_here();
    yp_rec_set_check(r, yp_hook_tls.name_pending ? 1 : SAMPLE_EVERY); /* never sample the first event */
    yp_rec_push(r, ev_ts(wall), 0, YP_EV_THREAD_START);
    return r;
}

/* The ring's slow path, for an event whose hook started at `wall`. At the
 * ring's check point: retry the thread's name while it is not known, or
 * sample this event's hook time (the clock read on entry here: the fast
 * path's cost up to its push) and count it SAMPLE_EVERY times. An event
 * that took another slow path (typical 0) is not typical: sample the next. */
int yp_hook_push_slow(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, uint32_t kind, int typical) {
    uint64_t t1 = wall_ticks();
    if (!yp_rec_push_slow(r, ts, id, kind)) return 0;
    uint64_t next = yp_ring_head(r);
    if (yp_hook_tls.name_pending) {
        yp_name_thread(r);
        typical = 0;
    }
    if (!typical) {
        yp_rec_set_check(r, next);
        return 0;
    }
    double d = yp_sample_ns(wall, t1, H.read_ticks, H.wall_ns);
    if (d > SAMPLE_MAX_NS) { /* the thread was preempted (or faulted) mid-event: not typical */
        yp_rec_set_check(r, next);
        return 0;
    }
    yp_rec_sampled(r, next + SAMPLE_EVERY - 1, (uint64_t)(d * SAMPLE_EVERY));
    return 0;
}

int yp_c_event_unusual_caller(yp_ring *r, uint64_t wall, PyCodeObject *caller, PyFrameObject *frame,
                              uint32_t id, uint8_t kind) {
    if (!yp_caller_ignored_slow(caller, frame, code_id_fast(caller)))
        record(r, wall, ev_ts(wall), id, kind, 0);
    return 0;
}

/* Push OPEN events for the frames already on the caller's stack, outermost
 * first, so their callees get a caller and their time is counted. */
static void push_open_frames(yp_ring *r, uint64_t ts) {
    PyFrameObject *chain[256];
    int n = 0;
    PyFrameObject *f = PyEval_GetFrame();
#if PY_VERSION_HEX >= 0x03090000
    Py_XINCREF(f);
    while (f && n < 256) {
        chain[n++] = f;
        f = PyFrame_GetBack(f); /* new reference */
    }
    Py_XDECREF(f);
#else
    while (f && n < 256) {
        Py_INCREF(f);
        chain[n++] = f;
        f = f->f_back;
    }
#endif
    for (int i = n - 1; i >= 0; i--) {
        uint32_t id = code_id(chain[i]) & ~YP_ID_FLAGS;
        if (id && id != IGNORED_ID) yp_rec_push(r, ts, id, YP_EV_OPEN);
    }
    for (int i = 0; i < n; i++) Py_DECREF(chain[i]);
}

int yp_hook_kind(void) { return H.kind; }

int yp_hook_take_disabled(void) {
    int d = H.disabled;
    H.disabled = 0;
    return d;
}

/* The least of a few back-to-back reads of the wall clock: what a hook
 * time sample measures of its own clock reads rather than of the hook
 * (the TSC: 24 ticks, 10 ns, on the project's VMs), taken off each sample. */
static uint64_t read_ticks(void) {
    uint64_t least = UINT64_MAX;
    for (int i = 0; i < 32; i++) {
        uint64_t a = wall_ticks(), b = wall_ticks();
        if (b >= a && b - a < least) least = b - a;
    }
    return least == UINT64_MAX ? 0 : least;
}

int yp_hook_start(uint32_t clock_kind, double ns_per_tick, int builtins, int kind, int open_frames) {
    if (H.running) return 0;
    if (H.sym_idx < 0) {
        H.sym_idx = YP_REQUEST_EXTRA(NULL);
        if (H.sym_idx < 0) {
            PyErr_Clear();
            return -1;
        }
    }
    H.filtering = H.filter_idx >= 0;
    H.extra_idx = H.filtering ? H.filter_idx : H.sym_idx;
    H.clock = clock_kind;
    if (clock_kind == YP_CLOCK_THREAD_CPU) {
        H.wall = yp_clock_pick_wall(&H.wall_ns);
    } else {
        H.wall = clock_kind;
        H.wall_ns = ns_per_tick > 0 ? ns_per_tick : 1.0;
    }
    H.sync_ticks = (uint64_t)(CPU_SYNC_GAP_NS / H.wall_ns);
    H.read_ticks = read_ticks();
    H.builtins = builtins;
    uint64_t wall = wall_ticks();
    yp_ring *r = get_ring(wall);
    /* Other threads' REC_START: their next event opens the interval. */
    if (r) {
        uint64_t ts = ev_ts(wall);
        yp_rec_push(r, ts, 0, YP_EV_REC_START);
        if (open_frames) push_open_frames(r, ts);
    }
    H.running = 1;
    H.epoch++; /* every thread's next TAG is sent anew (an interval's end forgot it) */
    H.kind = kind;
    if (kind == YP_HOOK_EVAL && (builtins || yp_eval_install(1) != 0)) H.kind = YP_HOOK_SETPROFILE;
    H.profile_fn = H.clock == YP_CLOCK_TSC ? yp_profile_tsc : yp_profile_any;
    if (H.kind == YP_HOOK_SETPROFILE) yp_setprofile_all(H.profile_fn);
    yp_mon_select(1, H.clock == YP_CLOCK_TSC, builtins);
    return 0;
}

void yp_hook_stop(void) {
    if (!H.running) return;
    if (H.kind == YP_HOOK_SETPROFILE) yp_setprofile_all(NULL);
    /* frames being evaluated still return through the evaluator: it passes
     * them on once H.running is 0 */
    if (H.kind == YP_HOOK_EVAL) yp_eval_install(0);
    H.running = 0;
    yp_mon_select(0, 0, 0);
    /* Wall clock: every thread's interval ends now. CPU clock: each thread's
     * at its own last event. */
    yp_rec_mark_all(YP_EV_REC_STOP, H.clock == YP_CLOCK_THREAD_CPU ? 0 : wall_ticks());
}

void yp_hook_bootstrap_thread(void) {
    if (!H.running || H.kind != YP_HOOK_SETPROFILE) return;
    PyEval_SetProfile(H.profile_fn, NULL);
    (void)get_ring(wall_ticks());
}

void yp_hook_after_fork_child(void) {
    H.running = 0;
    yp_mon_select(0, 0, 0);
    /* the child's only thread still has the hook set: remove it */
    PyEval_SetProfile(NULL, NULL);
}
