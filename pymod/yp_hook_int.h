/*
 * yp_hook_int.h — what the hook's files share: its state, its per-thread
 * state, and the inline fast path every event source (yp_hook_setprofile.c,
 * yp_hook_monitoring.c, yp_hook_eval.c) is built from.
 *
 * Fast path, per event: the thread's ring from a thread-local pointer, one
 * clock read, the function id (Python: from the code object's extra slot;
 * C: from the table keyed by the PyMethodDef address), one ring store
 * behind one compare. No lock, no allocation, no syscall (with the wall
 * clock), no Python call, no change to the exception state. Anything else
 * (a thread's first event, a function's first sight, a full ring, the
 * flusher's nudge, the time sample) leaves it through one call to a slow
 * path that does the whole event. Everything here runs with the GIL held.
 */
#ifndef YP_HOOK_INT_H
#define YP_HOOK_INT_H

#include "yp_pymod_int.h"

#if PY_VERSION_HEX >= 0x030C0000
#define YP_SET_EXTRA PyUnstable_Code_SetExtra
#define YP_GET_EXTRA PyUnstable_Code_GetExtra
#define YP_REQUEST_EXTRA PyUnstable_Eval_RequestCodeExtraIndex
#else
#define YP_SET_EXTRA _PyCode_SetExtra
#define YP_GET_EXTRA _PyCode_GetExtra
#define YP_REQUEST_EXTRA _PyEval_RequestCodeExtraIndex
#endif

#define IGNORED_ID YP_FUNC_ID_MAX /* stored on code we don't record */
#define YP_CORO_BIT 0x80000000u   /* on a coroutine's stored id: its events go to yp_hook_coro.c */
#define YP_WATCH_BIT 0x40000000u  /* on asyncio's create_task: its call goes to yp_hook_task.c */
#define YP_ID_FLAGS (YP_CORO_BIT | YP_WATCH_BIT)
#define SAMPLE_EVERY 64       /* hook time is sampled on one event in 64 */
#define SAMPLE_MAX_NS 20000.0 /* a sample longer than this caught a preemption: the next is taken */
#define YP_HIDDEN __attribute__((visibility("hidden")))
#define YP_HOT static inline __attribute__((always_inline))

/* An include / exclude filter (yp_filter.c). */
typedef struct yp_pattern {
    char *text;      /* a module name, or a file path glob */
    size_t len;      /* strlen(text) */
    uint8_t exclude; /* an exclude pattern (else include) */
    uint8_t glob;    /* a file path glob (else a module name) */
} yp_pattern;
typedef struct yp_filter {
    yp_pattern *pat;
    int n, n_include;
} yp_filter;

/* The hook's state: one per process, written with the GIL held by start(),
 * stop() and the slow paths (yp_hook.c), read by every event. */
typedef struct yp_hook_state {
    Py_ssize_t extra_idx;    /* the code extra slot the events read: sym_idx, or filter_idx while filtering */
    Py_ssize_t sym_idx;      /* the slot holding each code's symbol id (IGNORED_ID: ours); -1: none yet */
    Py_ssize_t filter_idx;   /* the slot of the filter in force (id or IGNORED_ID); -1: no filter */
    yp_filter filter;        /* its patterns (none: everything recorded) */
    int filtering;           /* recording under a filter (extra_idx == filter_idx) */
    int disabled;            /* sys.monitoring.DISABLE returned since the last restart */
    int running;             /* recording (start() .. stop()) */
    int kind;                /* YP_HOOK_*: where events come from */
    int builtins;            /* C functions recorded */
    uint32_t clock;          /* yp_clock_kind of the recorded timestamps */
    uint32_t wall;           /* the wall clock every event reads (TSC or monotonic) */
    double wall_ns;          /* ns per wall tick */
    uint64_t sync_ticks;     /* CPU clock: a gap longer than this reads the kernel's */
    uint64_t read_ticks;     /* what two back-to-back wall clock reads measure: a sample's own part */
    Py_tracefunc profile_fn; /* the setprofile hook in use */
    yp_map cfuncs;           /* PyMethodDef* -> id (0: not recorded) */
    YP_ATOMIC(uint64_t) cfuncs_bytes; /* its size, for the flusher (yp_hook_bytes) */
    char ignore_prefix[1024];         /* code under this path is not recorded (yprof_record's) */
    size_t ignore_len;
    PyObject *tag_var; /* yprof_record's ContextVar of the tag (yp_hook_tag.c) */
    PyObject *tag_ids; /* tag value -> its symbol id */
    int tags_used;     /* a tag was ever set: coroutines read the ContextVar */
    uint32_t epoch;    /* start() count: a thread's sent tag is from this recording? */
    PyObject *missing; /* sys.monitoring.MISSING (3.12+) */
    PyObject *disable; /* sys.monitoring.DISABLE (3.12+) */
} yp_hook_state;
extern yp_hook_state yp_hook YP_HIDDEN;
#define H yp_hook

/* The CPU clock between kernel reads (yp_cpuclock.c). */
typedef struct yp_cpuclock {
    uint64_t wall; /* wall ticks at the thread's last event */
    uint64_t est;  /* CPU time then, ns */
    uint64_t debt; /* estimate found ahead of the real clock, ns */
    uint32_t left; /* events until the next forced read */
} yp_cpuclock;

/* The hook's per-thread state (the ring, yp_tls_ring, is the recorder's). */
typedef struct yp_hook_thread {
    int in_slow;       /* inside a slow path that may run Python code (the frame
                          evaluator lets those frames pass) */
    int name_pending;  /* events left to retry the thread's name on; 0: named */
    int quiet;         /* never recorded: the control channel's thread (yp_quiet.c) */
    yp_cpuclock cpu;   /* clock="cpu" only */
    uint32_t tag;      /* the tag in effect (a symbol id; 0: none) */
    uint32_t tag_sent; /* the last TAG event's, in recording tag_epoch */
    uint32_t tag_epoch;
    uint32_t tag_base; /* the thread's own tag, outside any asyncio task's step */
    uint32_t co_depth; /* coroutines entered (started, resumed) and not left, in recording co_epoch */
    uint32_t co_epoch;
} yp_hook_thread;
extern YP_THREAD_LOCAL yp_hook_thread yp_hook_tls YP_HIDDEN;

/* ---- clocks ---------------------------------------------------------------------- */

static inline uint64_t wall_ticks(void) {
    if (__builtin_expect(H.wall == YP_CLOCK_TSC, 1)) return yp_clock_tsc();
    return yp_clock_ticks(H.wall);
}

/* The thread's CPU time at wall time `wall`: read from the kernel after a
 * gap or every so many events (yp_cpu_sync), else advanced with the wall
 * clock (yp_cpuclock.c). */
uint64_t yp_cpu_sync(yp_cpuclock *c) YP_HIDDEN;
static inline uint64_t cpu_now(uint64_t wall) {
    yp_cpuclock *c = &yp_hook_tls.cpu;
    uint64_t d = wall - c->wall; /* a clock going back: huge, resync */
    c->wall = wall;
    if (__builtin_expect(d > H.sync_ticks || c->left-- == 0, 0)) return yp_cpu_sync(c);
    uint64_t inc = (uint64_t)((double)d * H.wall_ns);
    if (__builtin_expect(c->debt != 0, 0)) {
        uint64_t a = inc < c->debt ? inc : c->debt;
        inc -= a;
        c->debt -= a;
    }
    return c->est += inc;
}
/* Gaps longer than this (ns) read the kernel's CPU clock. */
#define CPU_SYNC_GAP_NS 10000.0

/* The timestamp of an event at wall time `wall`. */
static inline uint64_t ev_ts(uint64_t wall) { return H.clock == YP_CLOCK_THREAD_CPU ? cpu_now(wall) : wall; }

/* The wall clock and the event's timestamp; tsc: a constant. */
YP_HOT uint64_t now_wall(int tsc) { return tsc ? yp_clock_tsc() : wall_ticks(); }
YP_HOT uint64_t now_ts(uint64_t wall, int tsc) { return tsc ? wall : ev_ts(wall); }

/* ---- ids (yp_names.c for the slow paths) ------------------------------------------- */

/* The id on the code object, read directly: CPython's own holder
 * (_PyCodeObjectExtra in Objects/codeobject.c, the same layout since 3.7),
 * without the call and checks of PyUnstable_Code_GetExtra on every event.
 * Written only through PyUnstable_Code_SetExtra (yp_code_id_slow). */
typedef struct {
    Py_ssize_t ce_size;
    void *ce_extras[1];
} yp_code_extra;

#if YP_PUBLIC_API_ONLY
/* A CPython this code has not been tested with (yp_pymod_int.h): its code
 * object's layout is not known, so the id comes through the public call. */
static inline uint32_t code_id_fast(PyCodeObject *co) {
    void *p = NULL;
    if (PyUnstable_Code_GetExtra((PyObject *)co, H.extra_idx, &p) != 0) {
        PyErr_Clear();
        return 0;
    }
    return (uint32_t)(uintptr_t)p;
}
#else
/* The id, or 0 when the code has none yet. */
static inline uint32_t code_id_fast(const PyCodeObject *co) {
    const yp_code_extra *x = (const yp_code_extra *)co->co_extra;
    if (__builtin_expect(x && H.extra_idx < x->ce_size, 1))
        return (uint32_t)(uintptr_t)x->ce_extras[H.extra_idx];
    return 0;
}
#endif

/* A code object's first sight: its symbol and id (IGNORED_ID for code not
 * recorded; 0 when out of memory). frame may be NULL (sys.monitoring, the
 * frame evaluator): the module then comes from `globals` when given
 * (borrowed), else from the current frame's. */
uint32_t yp_code_id_slow(PyFrameObject *frame, PyCodeObject *co, PyObject *globals_hint) YP_HIDDEN;
/* The id of a C function or bound builtin method, 0 when not recorded. */
uint32_t yp_cfunc_id(PyObject *arg) YP_HIDDEN;
/* A method descriptor called unbound-style (3.12+ monitoring CALL events). */
uint32_t yp_descr_id(PyMethodDescrObject *d) YP_HIDDEN;
/* Name the calling thread's ring from threading's table (retried while
 * yp_hook_tls.name_pending). */
void yp_name_thread(yp_ring *r) YP_HIDDEN;

static inline uint32_t code_id_of(PyCodeObject *co, PyFrameObject *frame, PyObject *globals_hint) {
    uint32_t id = code_id_fast(co);
    return __builtin_expect(id != 0, 1) ? id : yp_code_id_slow(frame, co, globals_hint);
}

/* The filter in force: 1 when code of `module` in `filename` is recorded
 * (yp_filter.c). */
int yp_filter_admits(const char *module, const char *filename) YP_HIDDEN;

/* An id that needs the slow path (0: none yet; a coroutine's) or is not
 * recorded, in one compare. */
YP_HOT int id_unusual(uint32_t id) { return id - 1u >= IGNORED_ID - 1u; }
/* The same for the caller of a C function: a coroutine's code is as usual. */
YP_HOT int caller_unusual(uint32_t id) { return id_unusual(id & ~YP_CORO_BIT); }

/* A C function called from code that is not recorded (the tool's own:
 * yprof_record's start() and stop(), its command line) is not recorded
 * either. 1 when the caller co is not recorded; a caller not seen yet
 * (running since before recording began) is named first. frame may be NULL. */
int yp_caller_ignored_slow(PyCodeObject *co, PyFrameObject *frame, uint32_t id) YP_HIDDEN;
YP_HOT int caller_ignored(PyCodeObject *co, PyFrameObject *frame) {
    uint32_t id = code_id_fast(co);
    return __builtin_expect(!caller_unusual(id), 1) ? 0 : yp_caller_ignored_slow(co, frame, id);
}

/* The rest of a C function's event whose caller's id is unusual (not seen
 * yet, or not recorded): a tail call, so the fast path saves no register
 * for a call in its middle. 0. */
int yp_c_event_unusual_caller(yp_ring *r, uint64_t wall, PyCodeObject *caller, PyFrameObject *frame,
                              uint32_t id, uint8_t kind) __attribute__((noinline)) YP_HIDDEN;

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* 3.11's frame object and the interpreter frame it points to, as far as the
 * code object (Include/internal/pycore_frame.h, fixed for the 3.11 series):
 * read directly instead of calling PyFrame_GetCode, a call through the PLT
 * plus a reference count round trip on every event. */
typedef struct {
    PyObject *f_func, *f_globals, *f_builtins, *f_locals;
    PyCodeObject *f_code;
    PyObject *frame_obj;
    void *previous, *prev_instr;
    int stacktop;
    char is_entry; /* bool */
    char owner;    /* 0: FRAME_OWNED_BY_THREAD, 1: by a generator */
    PyObject *localsplus[1];
} yp_iframe311;
typedef struct {
    PyObject_HEAD PyFrameObject *f_back;
    yp_iframe311 *f_frame;
} yp_frame311;
#endif

static inline PyCodeObject *frame_code(PyFrameObject *frame) {
#if PY_VERSION_HEX >= 0x030C0000
    PyCodeObject *co = PyFrame_GetCode(frame); /* only the forced setprofile mode comes here */
    Py_DECREF(co);                             /* the frame keeps it alive */
    return co;
#elif PY_VERSION_HEX >= 0x030B0000
    return ((const yp_frame311 *)frame)->f_frame->f_code;
#else
    return frame->f_code; /* a public field up to 3.10 */
#endif
}

static inline uint32_t code_id(PyFrameObject *frame) { return code_id_of(frame_code(frame), frame, NULL); }

/* ---- the ring (yp_hook.c for the slow paths) ----------------------------------------- */

/* A thread's first event: its ring, its name, THREAD_START. NULL when out
 * of memory. */
yp_ring *yp_hook_ring_slow(uint64_t wall) YP_HIDDEN;
static inline yp_ring *get_ring(uint64_t wall) {
    yp_ring *r = yp_tls_ring;
    return __builtin_expect(r != NULL, 1) ? r : yp_hook_ring_slow(wall);
}

/* The ring's slow path, for an event whose hook started at `wall`; 0. An
 * event that took another slow path (typical 0) is not sampled. */
int yp_hook_push_slow(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, uint32_t kind, int typical)
    __attribute__((noinline)) YP_HIDDEN;

/* Push; 0 (a return value the callers tail-call the slow path for). */
YP_HOT int record(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, uint32_t kind, int typical) {
    if (__builtin_expect(yp_ring_try_push(r, ts, id, kind), 1)) return 0;
    return yp_hook_push_slow(r, wall, ts, id, kind, typical);
}

/* ---- coroutines (yp_hook_coro.c) ------------------------------------------------------ */

/* Code whose frames are coroutines (one call per coroutine object). */
int yp_code_is_coro(PyCodeObject *co) YP_HIDDEN;
/* A coroutine's event: kind CALL (first start), RESUME, SUSPEND, RETURN or
 * UNWIND; frame names it (RESUME, SUSPEND). 0. */
int yp_coro_push(yp_ring *r, uint64_t wall, uint32_t id, uint8_t kind, const void *frame) YP_HIDDEN;
/* A setprofile CALL or RETURN of a coroutine's frame (id without the bit). 0. */
int yp_coro_profile(yp_ring *r, uint64_t wall, PyFrameObject *f, int what, PyObject *arg,
                    uint32_t id) YP_HIDDEN;
/* The frame evaluator's: a first start (else a resume); suspended after it ran. */
int yp_coro_eval_starts(void *frame) YP_HIDDEN;
int yp_coro_eval_suspended(void *frame) YP_HIDDEN;
/* sys.monitoring's: the frame running now. */
const void *yp_coro_current_frame(void) YP_HIDDEN;

/* ---- asyncio tasks (yp_hook_task.c) -------------------------------------------------------- */

/* A coroutine's first start (frame: its name, as yp_coro_push's) when no
 * coroutine called it: an asyncio task's first step if a task runs its
 * coroutine (TASK_NAME, TASK_OBJ, TASK_NEW records). 1 when it asked
 * Python. */
int yp_task_maybe_first_step(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id,
                             const void *frame) YP_HIDDEN;
/* sys.monitoring: the coroutine starting now was not called by a coroutine
 * (a task's first step, maybe: its start takes the slow path). */
int yp_task_root_now(void) YP_HIDDEN;
/* create_task(self, coro, ...) is called: coro, its second argument, gets a
 * task (a TASK_CREATED record). A setprofile or frame-evaluator frame
 * (3.11's evaluator: its interpreter frame, iframe 1), or NULL: the
 * current frame (sys.monitoring). */
void yp_task_created(yp_ring *r, uint64_t wall, const void *frame, int iframe) YP_HIDDEN;
/* The code whose calls yp_task_created is for: asyncio's
 * BaseEventLoop.create_task. */
int yp_task_is_create(PyCodeObject *co, const char *filename) YP_HIDDEN;

/* ---- tags (yp_hook_tag.c) -------------------------------------------------------------- */

/* A coroutine enters (kind CALL, RESUME: its context's tag, from the
 * ContextVar) or leaves (SUSPEND, RETURN, UNWIND: the outermost one gives
 * the thread its own tag back). */
void yp_tag_coro_enter(yp_ring *r, uint64_t wall, uint64_t ts) YP_HIDDEN;
void yp_tag_coro_leave(yp_ring *r, uint64_t wall, uint64_t ts) YP_HIDDEN;
/* A greenlet is switched to: its context's tag is the thread's own. */
void yp_tag_glet_enter(yp_ring *r, uint64_t wall, uint64_t ts) YP_HIDDEN;

/* ---- greenlets (yp_hook_glet.c) ---------------------------------------------------------- */

/* This thread's greenlet switches are traced from now on, when greenlet
 * has been imported (a slow path: never raises). */
void yp_glet_trace_here(void) YP_HIDDEN;

/* ---- the event sources ---------------------------------------------------------------- */

/* yp_hook_setprofile.c: the setprofile hooks (TSC and any clock), every
 * thread's profile function set (NULL: removed). */
int yp_profile_tsc(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) YP_HIDDEN;
int yp_profile_any(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) YP_HIDDEN;
void yp_setprofile_all(Py_tracefunc func) YP_HIDDEN;

/* yp_hook_monitoring.c: point the callback objects at the hooks for the
 * clock (tsc) or at nothing (on 0). */
void yp_mon_select(int on, int tsc, int builtins) YP_HIDDEN;

/* yp_hook_eval.c: install the frame evaluator (1) or CPython's (0); 0 when
 * done, -1 when not available (another tool's evaluator, other versions). */
int yp_eval_install(int on) YP_HIDDEN;

#endif
