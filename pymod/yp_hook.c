/*
 * yp_hook.c — the profile hook: CPython's setprofile callback turned into
 * 16-byte events in the calling thread's ring.
 *
 * Fast path, per event: the thread's ring from a thread-local pointer, one
 * clock read, the function id (Python: from the code object's extra slot;
 * C: from a pointer table keyed by the PyMethodDef address), one ring store.
 * No lock, no allocation, no syscall (with the wall clock), no Python call,
 * no change to the exception state.
 *
 * Slow paths, once per thread or per function: a new ring (plus the thread's
 * name from `threading`), a new symbol (names read from the code object or
 * the C function). They save and restore any pending exception and never
 * let one escape: a failure is counted and the event skipped.
 *
 * Installation: on 3.12+ PyEval_SetProfileAllThreads; on 3.9-3.11 the
 * exported _PyEval_SetProfile on each thread state (what 3.12's function
 * does); on 3.8 the same three thread-state fields PyEval_SetProfile sets.
 * Threads started later install it themselves through threading.setprofile
 * (see yprof_record/__init__.py). Everything here runs with the GIL held.
 */
#include "yp_pymod_int.h"

#include <string.h>

#if PY_VERSION_HEX >= 0x030C0000
#define YP_SET_EXTRA PyUnstable_Code_SetExtra
#define YP_REQUEST_EXTRA PyUnstable_Eval_RequestCodeExtraIndex
#else
#define YP_SET_EXTRA _PyCode_SetExtra
#define YP_REQUEST_EXTRA _PyEval_RequestCodeExtraIndex
#endif

#define IGNORED_ID YP_FUNC_ID_MAX /* stored on code we don't record */

static Py_ssize_t g_extra_idx = -1;
static int g_running;
static uint32_t g_clock = YP_CLOCK_MONOTONIC; /* yp_clock_kind of the recorded timestamps */
static uint32_t g_wall = YP_CLOCK_MONOTONIC;  /* the wall clock every event reads */
static double g_wall_ns = 1.0;                /* ns per wall tick */
static uint64_t g_sync_ticks;                 /* cpu clock: gaps longer than this resync */
static int g_builtins = 1;
static yp_map g_cfuncs;                    /* written with the GIL held */
static YP_ATOMIC(uint64_t) g_cfuncs_bytes; /* its size, for the flusher (yp_hook_bytes) */
static char g_ignore_prefix[1024];
static size_t g_ignore_len;

#define SAMPLE_EVERY 64 /* hook time is sampled on one event in 64 */

static inline uint64_t wall_ticks(void) {
    if (__builtin_expect(g_wall == YP_CLOCK_TSC, 1)) return yp_clock_tsc();
    return yp_clock_ticks(g_wall);
}

/* ---- the CPU clock ----------------------------------------------------------------------
 *
 * CLOCK_THREAD_CPUTIME_ID is a system call (~380 ns here, 15x a TSC read), so
 * the CPU clock is read at an event only when the thread may have been off
 * the CPU since the last one: when the wall-clock gap since its previous
 * event exceeds 10 us (a blocking call, a wait for the GIL, a preemption:
 * all far longer), and every 512th event. Between reads a thread running
 * Python code is on the CPU, so its CPU time advances with the wall clock
 * (TSC). If a read finds the estimate ahead of the real CPU time (the
 * thread was off the CPU within a short gap), the estimate never goes back:
 * the excess is taken out of the next increments. */

#define CPU_SYNC_GAP_NS 10000.0
#define CPU_SYNC_EVERY 512

__attribute__((noinline)) static uint64_t cpu_sync(yp_ring *r) {
    r->cpu_left = CPU_SYNC_EVERY;
    uint64_t real = yp_clock_thread_cpu_ns();
    if (real >= r->cpu_est) {
        r->cpu_est = real;
        r->cpu_debt = 0;
    } else {
        r->cpu_debt = r->cpu_est - real;
    }
    return r->cpu_est;
}

static inline uint64_t cpu_now(yp_ring *r, uint64_t wall) {
    uint64_t d = wall - r->cpu_wall; /* a clock going back: huge, resync */
    r->cpu_wall = wall;
    if (__builtin_expect(d > g_sync_ticks || r->cpu_left-- == 0, 0)) return cpu_sync(r);
    uint64_t inc = (uint64_t)((double)d * g_wall_ns);
    if (__builtin_expect(r->cpu_debt != 0, 0)) {
        uint64_t a = inc < r->cpu_debt ? inc : r->cpu_debt;
        inc -= a;
        r->cpu_debt -= a;
    }
    return r->cpu_est += inc;
}

/* The timestamp of an event at wall time `wall` in thread r. */
static inline uint64_t ev_ts(yp_ring *r, uint64_t wall) {
    return g_clock == YP_CLOCK_THREAD_CPU ? cpu_now(r, wall) : wall;
}

int yp_hook_running(void) { return g_running; }

/* Every write to g_cfuncs: the table, then its size for other threads. */
static int cfunc_put(const void *key, uint32_t id) {
    int rc = yp_map_put(&g_cfuncs, yp_map_ptrkey(key), id);
    atomic_store_explicit(&g_cfuncs_bytes, yp_map_bytes(&g_cfuncs), memory_order_relaxed);
    return rc;
}

void yp_hook_ignore_cfunc(const void *ml) { cfunc_put(ml, 0); }

void yp_hook_set_ignore_prefix(const char *prefix) {
    snprintf(g_ignore_prefix, sizeof g_ignore_prefix, "%s", prefix);
    g_ignore_len = strlen(g_ignore_prefix);
}

uint64_t yp_hook_bytes(void) { return atomic_load_explicit(&g_cfuncs_bytes, memory_order_relaxed); }

/* ---- slow paths ------------------------------------------------------------------ */

static const char *utf8_or(PyObject *o, const char *dflt) {
    if (!o || !PyUnicode_Check(o)) return dflt;
    const char *s = PyUnicode_AsUTF8(o);
    if (!s) PyErr_Clear();
    return s ? s : dflt;
}

static int g_kind = YP_HOOK_SETPROFILE; /* where events come from (yp_hook_start) */
static Py_tracefunc g_profile_fn;       /* the setprofile hook in use (yp_hook_start) */

/* This thread is inside a slow path that may run Python code (a thread's
 * name is a property). setprofile and sys.monitoring don't call a hook from
 * inside itself; the frame evaluator must check (yp_eval). */
static YP_THREAD_LOCAL int tls_in_slow;

/* Name the calling thread from threading's table of running threads,
 * without side effects: threading.current_thread() would register a
 * _DummyThread for a thread that threading has not registered yet (its first
 * events under sys.monitoring come before that). Until the name is found,
 * the hook tries again on each of the thread's next 200 events; after that
 * the names Python reports at stop()/get_stats() take over. Runs no code of
 * the application's (no property, no __getattr__): dict lookups only. */
static void name_thread(yp_ring *r) {
    tls_in_slow++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    uint64_t ident = (uint64_t)PyThread_get_thread_ident();
    const char *name = NULL;
    PyObject *modname = PyUnicode_FromString("threading");
    PyObject *threading = modname ? PyImport_GetModule(modname) : NULL;
    PyObject *active = threading ? PyObject_GetAttrString(threading, "_active") : NULL;
    PyObject *key = PyLong_FromUnsignedLongLong(ident);
    PyObject *t = active && key && PyDict_Check(active) ? PyDict_GetItem(active, key) : NULL;
    /* the name as threading stores it (Thread._name, in the instance's
     * dict): the `name` property could be the application's own code */
    PyObject *dict = t ? PyObject_GenericGetDict(t, NULL) : NULL;
    PyObject *n = dict && PyDict_Check(dict) ? PyDict_GetItemString(dict, "_name") : NULL;
    Py_XINCREF(n);
    Py_XDECREF(dict);
    if (n) name = utf8_or(n, NULL);
    if (name)
        r->name_pending = 0;
    else if (!r->name_pending)
        r->name_pending = 200; /* events to retry on; then Python's updates name it */
    else
        r->name_pending--;
    if (name || r->name_pending == 200) yp_rec_thread_set(r, ident, name ? name : "");
    Py_XDECREF(n);
    Py_XDECREF(key);
    Py_XDECREF(active);
    Py_XDECREF(threading);
    Py_XDECREF(modname);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    tls_in_slow--;
}

/* A thread's first event: its ring, its name, THREAD_START. The ring's
 * check point brings the thread's next events back here (push_slow) while
 * its name is not known, else to the first sample. */
static yp_ring *ring_slow(uint64_t wall) {
    yp_ring *r = yp_rec_ring_slow();
    if (!r) return NULL;
    name_thread(r);
    yp_ring_set_check(r, r->name_pending ? 1 : SAMPLE_EVERY); /* never sample the first event */
    yp_ring_push(r, ev_ts(r, wall), 0, YP_EV_THREAD_START);
    return r;
}

static inline yp_ring *get_ring(uint64_t wall) {
    yp_ring *r = yp_tls_ring;
    return __builtin_expect(r != NULL, 1) ? r : ring_slow(wall);
}

#if PY_VERSION_HEX < 0x030B0000
/* Before 3.11 code has no co_qualname: for a method, find the class in the
 * MRO of its `self` (or `cls`) whose dict holds this very code, and name it
 * "Class.method". Best effort; nested functions keep their plain name. */
static PyObject *guess_qualname(PyFrameObject *frame, PyCodeObject *co) {
    if (!frame || co->co_argcount < 1 || !PyTuple_Check(co->co_varnames)) return NULL;
    const char *first = PyUnicode_AsUTF8(PyTuple_GET_ITEM(co->co_varnames, 0));
    PyObject *obj = frame->f_localsplus[0];
    if (!first || !obj || (strcmp(first, "self") && strcmp(first, "cls"))) return NULL;
    PyTypeObject *tp = PyType_Check(obj) && !strcmp(first, "cls") ? (PyTypeObject *)obj : Py_TYPE(obj);
    PyObject *mro = tp->tp_mro;
    for (Py_ssize_t i = 0; mro && PyTuple_Check(mro) && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        PyObject *item = base->tp_dict ? PyDict_GetItem(base->tp_dict, co->co_name) : NULL;
        if (item && (Py_TYPE(item) == &PyClassMethod_Type || Py_TYPE(item) == &PyStaticMethod_Type)) {
            PyObject *fn = PyObject_GetAttrString(item, "__func__");
            Py_XDECREF(fn); /* the descriptor keeps it alive */
            item = fn;
        }
        if (item && PyFunction_Check(item) && PyFunction_GET_CODE(item) == (PyObject *)co) {
            const char *dot = strrchr(base->tp_name, '.');
            return PyUnicode_FromFormat("%s.%U", dot ? dot + 1 : base->tp_name, co->co_name);
        }
    }
    PyErr_Clear();
    return NULL;
}
#endif

/* frame may be NULL (sys.monitoring callbacks, the frame evaluator): the
 * module then comes from `globals` when given (borrowed), else from the
 * current frame's globals, which at a start or return event are the
 * function's own. */
static uint32_t code_id_slow(PyFrameObject *frame, PyCodeObject *co, PyObject *globals_hint) {
    tls_in_slow++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    uint32_t id = 0;
    PyObject *file = PyObject_GetAttrString((PyObject *)co, "co_filename");
    const char *filename = utf8_or(file, "");
    if (g_ignore_len && !strncmp(filename, g_ignore_prefix, g_ignore_len)) {
        id = IGNORED_ID;
    } else {
#if PY_VERSION_HEX >= 0x030B0000
        PyObject *qn = PyObject_GetAttrString((PyObject *)co, "co_qualname");
        PyObject *globals = frame          ? PyFrame_GetGlobals(frame)
                            : globals_hint ? globals_hint
                                           : PyEval_GetGlobals();
        if (!frame) Py_XINCREF(globals);
#else
        PyObject *qn = guess_qualname(frame, co);
        if (!qn) qn = PyObject_GetAttrString((PyObject *)co, "co_name");
        PyObject *globals = frame ? frame->f_globals : globals_hint ? globals_hint : PyEval_GetGlobals();
        Py_XINCREF(globals);
#endif
        PyObject *modname =
            globals && PyDict_Check(globals) ? PyDict_GetItemString(globals, "__name__") : NULL;
        PyObject *line = PyObject_GetAttrString((PyObject *)co, "co_firstlineno");
        long lineno = line ? PyLong_AsLong(line) : 0;
        id = yp_rec_symbol_add(utf8_or(qn, "?"), utf8_or(modname, ""), filename,
                               lineno > 0 ? (uint32_t)lineno : 0, 0);
        Py_XDECREF(qn);
        Py_XDECREF(globals);
        Py_XDECREF(line);
    }
    Py_XDECREF(file);
    PyErr_Clear();
    if (id && YP_SET_EXTRA((PyObject *)co, g_extra_idx, (void *)(uintptr_t)id) != 0) PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    tls_in_slow--;
    return id;
}

/* The id on the code object, read directly: CPython's own holder
 * (_PyCodeObjectExtra in Objects/codeobject.c, the same layout since 3.7),
 * without the call and checks of PyUnstable_Code_GetExtra on every event.
 * Written only through PyUnstable_Code_SetExtra (code_id_slow). */
typedef struct {
    Py_ssize_t ce_size;
    void *ce_extras[1];
} yp_code_extra;

#if YP_PUBLIC_API_ONLY
/* A CPython this code has not been tested with (yp_pymod_int.h): its code
 * object's layout is not known, so the id comes through the public call. */
static inline uint32_t code_id_fast(PyCodeObject *co) {
    void *p = NULL;
    if (PyUnstable_Code_GetExtra((PyObject *)co, g_extra_idx, &p) != 0) {
        PyErr_Clear();
        return 0;
    }
    return (uint32_t)(uintptr_t)p;
}
#else
/* The id, or 0 when the code has none yet. */
static inline uint32_t code_id_fast(const PyCodeObject *co) {
    const yp_code_extra *x = (const yp_code_extra *)co->co_extra;
    if (__builtin_expect(x && g_extra_idx < x->ce_size, 1))
        return (uint32_t)(uintptr_t)x->ce_extras[g_extra_idx];
    return 0;
}
#endif

static inline uint32_t code_id_of(PyCodeObject *co, PyFrameObject *frame, PyObject *globals_hint) {
    uint32_t id = code_id_fast(co);
    return __builtin_expect(id != 0, 1) ? id : code_id_slow(frame, co, globals_hint);
}

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

/* Split "pkg.mod.Type" into module "pkg.mod" and "Type" (module "builtins"
 * when there is no dot). */
static void split_tp_name(const char *tp, char *mod, size_t nmod, const char **shortname) {
    const char *dot = strrchr(tp, '.');
    if (dot) {
        snprintf(mod, nmod, "%.*s", (int)(dot - tp), tp);
        *shortname = dot + 1;
    } else {
        snprintf(mod, nmod, "builtins");
        *shortname = tp;
    }
}

static uint32_t cfunc_id_slow(PyCFunctionObject *fn) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    const char *meth = fn->m_ml->ml_name ? fn->m_ml->ml_name : "?";
    char name[512], mod[256] = "builtins";
    PyObject *self = fn->m_self;
    if (!self || PyModule_Check(self)) {
        const char *m = NULL;
        if (fn->m_module && PyUnicode_Check(fn->m_module)) m = utf8_or(fn->m_module, NULL);
        if (!m && self) {
            m = PyModule_GetName(self);
            if (!m) PyErr_Clear();
        }
        snprintf(mod, sizeof mod, "%s", m ? m : "builtins");
        snprintf(name, sizeof name, "%s", meth);
    } else {
        /* the type that defines the method, as cProfile names it */
        PyTypeObject *tp = PyType_Check(self) ? (PyTypeObject *)self : Py_TYPE(self);
        const char *tpname = tp->tp_name;
        if (!PyType_Check(self)) {
            PyObject *d = PyObject_GetAttrString((PyObject *)tp, meth);
            if (d && Py_TYPE(d) == &PyMethodDescr_Type) tpname = ((PyDescrObject *)d)->d_type->tp_name;
            Py_XDECREF(d);
            PyErr_Clear();
        }
        const char *shortname;
        split_tp_name(tpname, mod, sizeof mod, &shortname);
        snprintf(name, sizeof name, "%s.%s", shortname, meth);
    }
    uint32_t id = yp_rec_symbol_add(name, mod, "", 0, 1);
    if (id && cfunc_put(fn->m_ml, id) != 0) {
        /* table full (no memory): this function gets a fresh id next time */
    }
    PyErr_Restore(et, ev, tb);
    return id;
}

/* A method descriptor called unbound-style (3.12+ monitoring CALL events):
 * keyed by the same PyMethodDef as the bound builtin method, so both paths
 * give one id and one name. */
static uint32_t descr_id_slow(PyMethodDescrObject *d) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    char name[512], mod[256];
    const char *shortname;
    split_tp_name(d->d_common.d_type->tp_name, mod, sizeof mod, &shortname);
    snprintf(name, sizeof name, "%s.%s", shortname, d->d_method->ml_name ? d->d_method->ml_name : "?");
    uint32_t id = yp_rec_symbol_add(name, mod, "", 0, 1);
    if (id) cfunc_put(d->d_method, id);
    PyErr_Restore(et, ev, tb);
    return id;
}

/* ---- the hook ----------------------------------------------------------------------
 *
 * Every hook has a fast path that only loads and stores: the ring from a
 * thread-local pointer, the id from the code object (or the C function
 * table), one ring store behind one compare. Anything else (a thread's first
 * event, a function's first sight, a full ring, the flusher's nudge, the
 * time sample) leaves it through a call to a slow path that does the whole
 * event. Each hook comes twice: for the TSC as the recording clock (the
 * default: the clock read is the timestamp) and for any clock. */

#define YP_HOT static inline __attribute__((always_inline))

/* The wall clock and the event's timestamp; tsc: a constant. */
YP_HOT uint64_t now_wall(int tsc) { return tsc ? yp_clock_tsc() : wall_ticks(); }
YP_HOT uint64_t now_ts(yp_ring *r, uint64_t wall, int tsc) { return tsc ? wall : ev_ts(r, wall); }

/* The ring's slow path, for an event whose hook started at `wall`. At the
 * ring's check point: retry the thread's name while it is not known, or
 * sample this event's hook time (the clock read on entry here: the fast
 * path's cost up to its push) and count it SAMPLE_EVERY times. An event
 * that took another slow path (typical 0) is not typical: sample the next. */
__attribute__((noinline)) static int push_slow(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id,
                                               uint8_t kind, int typical) {
    uint64_t t1 = wall_ticks();
    if (!yp_ring_push_slow(r, ts, id, kind)) return 0;
    uint64_t next = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (r->name_pending) {
        name_thread(r);
        typical = 0;
    }
    if (!typical) {
        yp_ring_set_check(r, next);
        return 0;
    }
    double d = t1 > wall ? (double)(t1 - wall) * g_wall_ns : 0.0;
    atomic_fetch_add_explicit(&r->hook_ns, (uint64_t)(d * SAMPLE_EVERY), memory_order_relaxed);
    yp_ring_set_check(r, next + SAMPLE_EVERY - 1);
    return 0;
}

/* Push; 0 (a return value the callers tail-call the slow path for). */
YP_HOT int record(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, uint8_t kind, int typical) {
    if (__builtin_expect(yp_ring_try_push(r, ts, id, kind), 1)) return 0;
    return push_slow(r, wall, ts, id, kind, typical);
}

/* An id that needs the slow path (0: none yet) or is not recorded, in one
 * compare. */
YP_HOT int id_unusual(uint32_t id) { return id - 1u >= IGNORED_ID - 1u; }

/* The id of a C function or bound builtin method, 0 when not recorded. */
static uint32_t cfunc_id(PyObject *arg) {
    if (!arg || !PyCFunction_Check(arg)) return 0;
    PyCFunctionObject *fn = (PyCFunctionObject *)arg;
    uint32_t id;
    if (yp_map_get(&g_cfuncs, yp_map_ptrkey(fn->m_ml), &id)) return id;
    return cfunc_id_slow(fn);
}

/* setprofile: an event whose ring or id is not at hand. */
__attribute__((noinline)) static int profile_slow(PyFrameObject *frame, int what, PyObject *arg,
                                                  uint64_t wall) {
    yp_ring *r = get_ring(wall);
    if (!r) return 0;
    uint32_t id;
    uint8_t kind;
    if (what == PyTrace_CALL || what == PyTrace_RETURN) {
        id = code_id(frame);
        kind = what == PyTrace_CALL ? YP_EV_CALL : arg ? YP_EV_RETURN : YP_EV_UNWIND;
    } else {
        id = cfunc_id(arg);
        kind = what == PyTrace_C_CALL ? YP_EV_C_CALL : YP_EV_C_RETURN;
    }
    if (id != 0 && id != IGNORED_ID) record(r, wall, ev_ts(r, wall), id, kind, 0);
    return 0;
}

/* C function events, apart: the pointer-table probe needs registers the
 * Python events' path would otherwise save and restore on every event. */
YP_HOT int profile_c_event(PyFrameObject *frame, int what, PyObject *arg, uint64_t wall, int tsc) {
    yp_ring *r = yp_tls_ring;
    uint32_t id;
    if (!g_builtins || !arg) return 0;
    /* subtypes (3.9+'s PyCMethod) through the slow path: no call here */
    if (__builtin_expect(!r || Py_TYPE(arg) != &PyCFunction_Type ||
                             !yp_map_get(&g_cfuncs, yp_map_ptrkey(((PyCFunctionObject *)arg)->m_ml), &id),
                         0))
        return profile_slow(frame, what, arg, wall);
    if (id == 0) return 0; /* not recorded (yprof_record's own) */
    return record(r, wall, now_ts(r, wall, tsc), id, what == PyTrace_C_CALL ? YP_EV_C_CALL : YP_EV_C_RETURN,
                  1);
}

__attribute__((noinline)) static int profile_c_tsc(PyFrameObject *frame, int what, PyObject *arg,
                                                   uint64_t wall) {
    return profile_c_event(frame, what, arg, wall, 1);
}

__attribute__((noinline)) static int profile_c_any(PyFrameObject *frame, int what, PyObject *arg,
                                                   uint64_t wall) {
    return profile_c_event(frame, what, arg, wall, 0);
}

YP_HOT int profile_event(PyFrameObject *frame, int what, PyObject *arg, int tsc) {
    uint64_t wall = now_wall(tsc);
    if (__builtin_expect(what > PyTrace_RETURN, 0)) {
        if (what > PyTrace_C_RETURN) return 0; /* PyTrace_LINE and others: not asked for */
        return tsc ? profile_c_tsc(frame, what, arg, wall) : profile_c_any(frame, what, arg, wall);
    }
    if (what != PyTrace_CALL && what != PyTrace_RETURN) return 0; /* never sent to a profile function */
    yp_ring *r = yp_tls_ring;
    uint32_t id = code_id_fast(frame_code(frame));
    if (__builtin_expect(!r || id_unusual(id), 0))
        return id == IGNORED_ID ? 0 : profile_slow(frame, what, arg, wall);
    uint8_t kind = what == PyTrace_CALL ? YP_EV_CALL
                   : arg                ? YP_EV_RETURN
                                        : YP_EV_UNWIND; /* NULL: an exception */
    return record(r, wall, now_ts(r, wall, tsc), id, kind, 1);
}

static int yp_profile_tsc(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    return profile_event(frame, what, arg, 1);
}

static int yp_profile_any(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    return profile_event(frame, what, arg, 0);
}

/* ---- sys.monitoring callbacks (3.12+) ----------------------------------------------------
 *
 * The same events cProfile registers on 3.12+: PY_START, PY_RESUME and
 * PY_THROW are calls; PY_RETURN and PY_YIELD returns; PY_UNWIND an exception
 * exit; CALL to a C function a C call; C_RETURN and C_RAISE C returns. The
 * callbacks get the code object directly: no frame object is made. They are
 * registered from yprof_record/__init__.py under their own tool id; while
 * not recording the callback objects call an empty function
 * (yp_moncb_select). */

#if PY_VERSION_HEX >= 0x030C0000

__attribute__((noinline)) static PyObject *mon_code_slow(PyCodeObject *co, uint8_t kind, uint64_t wall) {
    yp_ring *r = get_ring(wall);
    uint32_t id = r ? code_id_of(co, NULL, NULL) : 0;
    if (id != 0 && id != IGNORED_ID) record(r, wall, ev_ts(r, wall), id, kind, 0);
    Py_RETURN_NONE;
}

__attribute__((noinline)) static PyObject *mon_push_slow(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id,
                                                         uint8_t kind) {
    push_slow(r, wall, ts, id, kind, 1);
    Py_RETURN_NONE;
}

YP_HOT PyObject *mon_code_event(PyObject *const *args, size_t nargsf, uint8_t kind, int tsc) {
    if (PyVectorcall_NARGS(nargsf) < 1 || !PyCode_Check(args[0])) Py_RETURN_NONE;
    uint64_t wall = now_wall(tsc);
    PyCodeObject *co = (PyCodeObject *)args[0];
    yp_ring *r = yp_tls_ring;
    uint32_t id = code_id_fast(co);
    if (__builtin_expect(!r || id_unusual(id), 0)) {
        if (id == IGNORED_ID) Py_RETURN_NONE;
        return mon_code_slow(co, kind, wall);
    }
    uint64_t ts = now_ts(r, wall, tsc);
    if (__builtin_expect(yp_ring_try_push(r, ts, id, kind), 1)) Py_RETURN_NONE;
    return mon_push_slow(r, wall, ts, id, kind);
}

static PyObject *g_missing; /* sys.monitoring.MISSING */

/* The key of a builtin callable in g_cfuncs: its PyMethodDef (a method
 * descriptor called unbound-style shares it with the bound method), or
 * NULL for anything else (Python functions fire CALL at every call site). */
static inline const void *c_key(PyObject *callable, PyObject *self_arg) {
    PyTypeObject *tp = Py_TYPE(callable);
    if (tp == &PyFunction_Type || tp == &PyMethod_Type) return NULL;
    if (tp == &PyMethodDescr_Type)
        return self_arg != g_missing ? ((PyMethodDescrObject *)callable)->d_method : NULL;
    if (tp == &PyCFunction_Type || PyCFunction_Check(callable)) return ((PyCFunctionObject *)callable)->m_ml;
    return NULL;
}

__attribute__((noinline)) static PyObject *mon_c_slow(PyObject *callable, uint8_t kind, uint64_t wall) {
    yp_ring *r = get_ring(wall);
    if (!r) Py_RETURN_NONE;
    uint32_t id;
    if (Py_TYPE(callable) == &PyMethodDescr_Type) {
        PyMethodDescrObject *d = (PyMethodDescrObject *)callable;
        if (!yp_map_get(&g_cfuncs, yp_map_ptrkey(d->d_method), &id)) id = descr_id_slow(d);
    } else {
        id = cfunc_id(callable);
    }
    if (id != 0 && id != IGNORED_ID) record(r, wall, ev_ts(r, wall), id, kind, 0);
    Py_RETURN_NONE;
}

YP_HOT PyObject *mon_c_event(PyObject *const *args, size_t nargsf, uint8_t kind, int tsc) {
    if (PyVectorcall_NARGS(nargsf) < 4) Py_RETURN_NONE;
    const void *key = c_key(args[2], args[3]);
    if (!key) Py_RETURN_NONE;
    uint64_t wall = now_wall(tsc);
    yp_ring *r = yp_tls_ring;
    uint32_t id;
    if (__builtin_expect(!r || !yp_map_get(&g_cfuncs, yp_map_ptrkey(key), &id), 0))
        return mon_c_slow(args[2], kind, wall);
    if (id == 0) Py_RETURN_NONE; /* not recorded (yprof_record's own) */
    uint64_t ts = now_ts(r, wall, tsc);
    if (__builtin_expect(yp_ring_try_push(r, ts, id, kind), 1)) Py_RETURN_NONE;
    return mon_push_slow(r, wall, ts, id, kind);
}

#define YP_MON_CB(name, body)                                                                      \
    static PyObject *name(PyObject *cb, PyObject *const *args, size_t nargsf, PyObject *kwnames) { \
        (void)cb;                                                                                  \
        (void)kwnames;                                                                             \
        return body;                                                                               \
    }
YP_MON_CB(mon_start_tsc, mon_code_event(args, nargsf, YP_EV_CALL, 1))
YP_MON_CB(mon_return_tsc, mon_code_event(args, nargsf, YP_EV_RETURN, 1))
YP_MON_CB(mon_unwind_tsc, mon_code_event(args, nargsf, YP_EV_UNWIND, 1))
YP_MON_CB(mon_ccall_tsc, mon_c_event(args, nargsf, YP_EV_C_CALL, 1))
YP_MON_CB(mon_creturn_tsc, mon_c_event(args, nargsf, YP_EV_C_RETURN, 1))
YP_MON_CB(mon_start_any, mon_code_event(args, nargsf, YP_EV_CALL, 0))
YP_MON_CB(mon_return_any, mon_code_event(args, nargsf, YP_EV_RETURN, 0))
YP_MON_CB(mon_unwind_any, mon_code_event(args, nargsf, YP_EV_UNWIND, 0))
YP_MON_CB(mon_ccall_any, mon_c_event(args, nargsf, YP_EV_C_CALL, 0))
YP_MON_CB(mon_creturn_any, mon_c_event(args, nargsf, YP_EV_C_RETURN, 0))

static const vectorcallfunc g_mon_tsc[YP_MON_N] = {mon_start_tsc, mon_return_tsc, mon_unwind_tsc,
                                                   mon_ccall_tsc, mon_creturn_tsc};
static const vectorcallfunc g_mon_any[YP_MON_N] = {mon_start_any, mon_return_any, mon_unwind_any,
                                                   mon_ccall_any, mon_creturn_any};
static const vectorcallfunc g_mon_off[YP_MON_N] = {NULL, NULL, NULL, NULL, NULL};

void yp_hook_set_missing(PyObject *missing) {
    Py_XINCREF(missing);
    Py_XSETREF(g_missing, missing);
}

/* Point the callback objects at the hook in use (NULL: not recording). */
static void mon_select(const vectorcallfunc *table, int builtins) {
    vectorcallfunc fns[YP_MON_N];
    for (int i = 0; i < YP_MON_N; i++) fns[i] = table[i];
    if (!builtins) fns[YP_MON_CCALL] = fns[YP_MON_CRETURN] = NULL;
    yp_moncb_select(fns);
}

#else

void yp_hook_set_missing(PyObject *missing) { (void)missing; }

#endif

/* ---- PEP 523 frame evaluation (3.9-3.11, Python functions only) -------------------------
 *
 * With builtins=False the setprofile hook is mostly the interpreter's cost of
 * having a profile hook at all: every frame leaves the fast paths. A frame
 * evaluation function wrapping the default one sees exactly the Python
 * frames setprofile reports as calls and returns (generator resumes and
 * yields included) and leaves the interpreter on its fast paths. It is
 * interpreter-wide, so every thread is covered at once. The id is taken
 * once, at entry; the frame is not touched after it has been evaluated.
 * Opt-in (YPROF_HOOK=frame-eval, yprof_record/__init__.py): on 3.11 any
 * evaluator stops the interpreter from inlining Python calls, so deep
 * recursion that plain 3.11 runs could overflow the C stack. */

#if PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030C0000
#define YP_HAVE_EVAL 1
#if PY_VERSION_HEX >= 0x030B0000
typedef struct _PyInterpreterFrame yp_evalframe;
static inline PyCodeObject *evalframe_code(yp_evalframe *f) { return ((yp_iframe311 *)f)->f_code; }
static inline PyObject *evalframe_globals(yp_evalframe *f) { return ((yp_iframe311 *)f)->f_globals; }
static inline PyFrameObject *evalframe_obj(yp_evalframe *f) {
    (void)f;
    return NULL; /* 3.11 names methods by co_qualname: no frame object needed */
}
/* 3.11 evaluates a generator function's new frame once just to run
 * RETURN_GENERATOR (it makes the generator and returns it); setprofile
 * reports no call for that. Later resumes run on a generator-owned frame. */
static inline int evalframe_makes_generator(yp_evalframe *f, PyCodeObject *co) {
    return (co->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)) &&
           ((yp_iframe311 *)f)->owner == 0;
}
#else
typedef PyFrameObject yp_evalframe;
static inline PyCodeObject *evalframe_code(yp_evalframe *f) { return f->f_code; }
static inline PyObject *evalframe_globals(yp_evalframe *f) { return f->f_globals; }
static inline PyFrameObject *evalframe_obj(yp_evalframe *f) { return f; }
static inline int evalframe_makes_generator(yp_evalframe *f, PyCodeObject *co) {
    (void)f;
    (void)co;
    return 0; /* before 3.11 a generator function's call makes the generator without evaluating */
}
#endif

/* CPython's own evaluator. Only it is wrapped: another tool's evaluator (a
 * debugger's, a JIT's) is left alone and yprof uses setprofile instead, so
 * neither removes or reinstalls the other's. */
static const _PyFrameEvalFunction g_prev_eval = _PyEval_EvalFrameDefault;

static inline void eval_push(uint32_t id, uint8_t kind, int typical) {
    uint64_t wall = wall_ticks();
    yp_ring *r = get_ring(wall);
    if (r) (void)record(r, wall, ev_ts(r, wall), id, kind, typical);
}

static PyObject *yp_eval(PyThreadState *ts, yp_evalframe *f, int throwflag) {
    if (__builtin_expect(!g_running || tls_in_slow, 0)) return g_prev_eval(ts, f, throwflag);
    PyCodeObject *co = evalframe_code(f);
    uint32_t id = code_id_fast(co);
    int typical = id != 0;
    if (!typical) id = code_id_slow(evalframe_obj(f), co, evalframe_globals(f));
    if (id == 0 || id == IGNORED_ID || evalframe_makes_generator(f, co)) return g_prev_eval(ts, f, throwflag);
    eval_push(id, YP_EV_CALL, typical);
    PyObject *res = g_prev_eval(ts, f, throwflag);
    /* after a stop() (and maybe a start() onto another hook, which reports
     * this frame's return itself) while the frame ran: nothing to push */
    if (__builtin_expect(g_running && g_kind == YP_HOOK_EVAL, 1))
        eval_push(id, res ? YP_EV_RETURN : YP_EV_UNWIND, 1);
    return res;
}

static PyObject *eval_empty(PyThreadState *ts, yp_evalframe *f, int throwflag) {
    return g_prev_eval(ts, f, throwflag);
}

/* Install `fn` (NULL: CPython's default) if the slot holds the default or
 * one of ours; 0 on success, -1 when another tool's evaluator is there. */
static int eval_set(_PyFrameEvalFunction fn) {
    PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    _PyFrameEvalFunction cur = _PyInterpreterState_GetEvalFrameFunc(interp);
    if (cur != g_prev_eval && cur != yp_eval && cur != eval_empty) return -1;
    _PyInterpreterState_SetEvalFrameFunc(interp, fn ? fn : g_prev_eval);
    return 0;
}
#else
#define YP_HAVE_EVAL 0
#endif

int yp_hook_empty_eval(int on) {
#if YP_HAVE_EVAL
    if (g_running) return -1;
    return eval_set(on ? eval_empty : NULL);
#else
    (void)on;
    return -1;
#endif
}

/* ---- calibration: an empty hook ------------------------------------------------------- */

static int yp_empty(PyObject *o, PyFrameObject *f, int what, PyObject *arg) {
    (void)o;
    (void)f;
    (void)what;
    (void)arg;
    return 0;
}

int yp_hook_empty(int on) {
    if (g_running) return -1;
    PyEval_SetProfile(on ? yp_empty : NULL, NULL);
    return 0;
}

/* ---- install / remove ----------------------------------------------------------------- */

static void set_profile_all(Py_tracefunc func) {
#if PY_VERSION_HEX >= 0x030C0000
    PyEval_SetProfileAllThreads(func, NULL);
#else
    PyThreadState *me = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x03090000
    PyInterpreterState *interp = PyThreadState_GetInterpreter(me);
#else
    PyInterpreterState *interp = me->interp;
#endif
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
#if PY_VERSION_HEX >= 0x03090000
        if (_PyEval_SetProfile(ts, func, NULL) < 0) PyErr_Clear();
#else
        PyObject *old = ts->c_profileobj;
        ts->c_profilefunc = NULL;
        ts->c_profileobj = NULL;
        ts->use_tracing = ts->c_tracefunc != NULL;
        Py_XDECREF(old);
        ts->c_profilefunc = func;
        ts->use_tracing = (func != NULL) || (ts->c_tracefunc != NULL);
#endif
    }
#endif
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
        uint32_t id = code_id(chain[i]);
        if (id && id != IGNORED_ID) yp_ring_push(r, ts, id, YP_EV_OPEN);
    }
    for (int i = 0; i < n; i++) Py_DECREF(chain[i]);
}

int yp_hook_kind(void) { return g_kind; }

int yp_hook_start(uint32_t clock_kind, double ns_per_tick, int builtins, int kind) {
    if (g_running) return 0;
    if (g_extra_idx < 0) {
        g_extra_idx = YP_REQUEST_EXTRA(NULL);
        if (g_extra_idx < 0) {
            PyErr_Clear();
            return -1;
        }
    }
    g_clock = clock_kind;
    if (clock_kind == YP_CLOCK_THREAD_CPU) {
        g_wall = yp_clock_pick_wall(&g_wall_ns);
    } else {
        g_wall = clock_kind;
        g_wall_ns = ns_per_tick > 0 ? ns_per_tick : 1.0;
    }
    g_sync_ticks = (uint64_t)(CPU_SYNC_GAP_NS / g_wall_ns);
    g_builtins = builtins;
    uint64_t wall = wall_ticks();
    yp_ring *r = get_ring(wall);
    /* Other threads' REC_START: their next event opens the interval. */
    if (r) {
        uint64_t ts = ev_ts(r, wall);
        yp_ring_push(r, ts, 0, YP_EV_REC_START);
        push_open_frames(r, ts);
    }
    g_running = 1;
    g_kind = kind;
#if YP_HAVE_EVAL
    if (kind == YP_HOOK_EVAL && (builtins || eval_set(yp_eval) != 0)) g_kind = YP_HOOK_SETPROFILE;
#else
    if (kind == YP_HOOK_EVAL) g_kind = YP_HOOK_SETPROFILE;
#endif
    g_profile_fn = g_clock == YP_CLOCK_TSC ? yp_profile_tsc : yp_profile_any;
    if (g_kind == YP_HOOK_SETPROFILE) set_profile_all(g_profile_fn);
#if PY_VERSION_HEX >= 0x030C0000
    mon_select(g_clock == YP_CLOCK_TSC ? g_mon_tsc : g_mon_any, builtins);
#endif
    return 0;
}

void yp_hook_stop(void) {
    if (!g_running) return;
    if (g_kind == YP_HOOK_SETPROFILE) set_profile_all(NULL);
#if YP_HAVE_EVAL
    /* frames being evaluated still return through yp_eval: it passes them
     * on once g_running is 0 */
    if (g_kind == YP_HOOK_EVAL) eval_set(NULL);
#endif
    g_running = 0;
#if PY_VERSION_HEX >= 0x030C0000
    mon_select(g_mon_off, 0);
#endif
    /* Wall clock: every thread's interval ends now. CPU clock: each thread's
     * at its own last event. */
    yp_rec_mark_all(YP_EV_REC_STOP, g_clock == YP_CLOCK_THREAD_CPU ? 0 : wall_ticks());
}

void yp_hook_bootstrap_thread(void) {
    if (!g_running || g_kind != YP_HOOK_SETPROFILE) return;
    PyEval_SetProfile(g_profile_fn, NULL);
    (void)get_ring(wall_ticks());
}

void yp_hook_after_fork_child(void) {
    g_running = 0;
#if PY_VERSION_HEX >= 0x030C0000
    mon_select(g_mon_off, 0);
#endif
    /* the child's only thread still has the hook set: remove it */
    PyEval_SetProfile(NULL, NULL);
}
