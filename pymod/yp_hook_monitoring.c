/*
 * yp_hook_monitoring.c — events from sys.monitoring (3.12+).
 *
 * The same events cProfile registers on 3.12+: PY_START, PY_RESUME and
 * PY_THROW are calls; PY_RETURN and PY_YIELD returns; PY_UNWIND an exception
 * exit; CALL to a C function a C call; C_RETURN and C_RAISE C returns. The
 * callbacks get the code object directly: no frame object is made. They are
 * registered from yprof_record/__init__.py under their own tool id; while
 * not recording the callback objects (yp_moncb.c) call an empty function.
 *
 * Under an include / exclude filter, code left out returns
 * sys.monitoring.DISABLE from its local events (PY_START, PY_RESUME,
 * PY_RETURN, PY_YIELD and CALL, which CPython then stops sending from that
 * place) the first time, so it costs nothing afterwards. PY_THROW,
 * PY_UNWIND, C_RETURN and C_RAISE cannot be disabled (CPython would raise
 * and drop the callback): their callbacks never return it. The places stay
 * disabled until sys.monitoring.restart_events(), which yprof_record calls
 * at stop() (yp_hook_take_disabled).
 */
#include "yp_hook_int.h"

#if PY_VERSION_HEX >= 0x030C0000

/* The answer to an event of code that is not recorded: DISABLE for a local
 * event under a filter (this place sends no more events), else None. */
static inline PyObject *mon_ignored(int local) {
    if (local && H.filtering && H.disable) {
        H.disabled = 1;
        return Py_NewRef(H.disable);
    }
    Py_RETURN_NONE;
}

/* ckind: what the event is for a coroutine's frame (RESUME, SUSPEND...). */
__attribute__((noinline)) static PyObject *mon_code_slow(PyCodeObject *co, uint8_t kind, uint8_t ckind,
                                                         uint64_t wall, int local) {
    yp_ring *r = get_ring(wall);
    uint32_t id = r ? code_id_of(co, NULL, NULL) : 0;
    if (id == IGNORED_ID) return mon_ignored(local);
    if (id & YP_WATCH_BIT) {
        if (kind == YP_EV_CALL) yp_task_created(r, wall, NULL, 0);
        id &= ~YP_WATCH_BIT;
    }
    if (id & YP_CORO_BIT) { /* a resume or a suspension needs its name, a first start its frame */
        int named = ckind == YP_EV_RESUME || ckind == YP_EV_SUSPEND || ckind == YP_EV_CALL;
        yp_coro_push(r, wall, id & ~YP_CORO_BIT, ckind, named ? yp_coro_current_frame() : NULL);
        Py_RETURN_NONE;
    }
    if (id != 0) record(r, wall, ev_ts(wall), id, kind, 0);
    Py_RETURN_NONE;
}

__attribute__((noinline)) static PyObject *mon_push_slow(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id,
                                                         uint8_t kind) {
    yp_hook_push_slow(r, wall, ts, id, kind, 1);
    Py_RETURN_NONE;
}

/* A coroutine's first start (id without the bit): any function's call,
 * unless the loop starts it (an asyncio task's first step, maybe:
 * yp_hook_task.c). Apart, and reached by a tail call, so that the fast path
 * keeps no register across a call. */
__attribute__((noinline)) static PyObject *mon_coro_start(PyCodeObject *co, yp_ring *r, uint32_t id,
                                                          uint64_t wall, int tsc, int local) {
    if (yp_task_root_now()) return mon_code_slow(co, YP_EV_CALL, YP_EV_CALL, wall, local);
    uint64_t ts = now_ts(wall, tsc);
    if (__builtin_expect(yp_ring_try_push(r, ts, id, YP_EV_CALL), 1)) Py_RETURN_NONE;
    return mon_push_slow(r, wall, ts, id, YP_EV_CALL);
}

/* A Python function event (args[0]: its code object), as kind (ckind for a
 * coroutine's frame); local: the event can be disabled. */
YP_HOT PyObject *mon_code_event(PyObject *const *args, size_t nargsf, uint8_t kind, uint8_t ckind, int tsc,
                                int local) {
    if (PyVectorcall_NARGS(nargsf) < 1 || !PyCode_Check(args[0])) Py_RETURN_NONE;
    uint64_t wall = now_wall(tsc);
    PyCodeObject *co = (PyCodeObject *)args[0];
    yp_ring *r = yp_tls_ring;
    uint32_t id = code_id_fast(co);
    if (__builtin_expect(!r || id_unusual(id), 0)) {
        if (id == IGNORED_ID) return mon_ignored(local);
        /* a coroutine's first start or end is any function's call or return
         * (kind == ckind: a constant), unless tags follow coroutines */
        if (kind != ckind || !r || !(id & YP_CORO_BIT) || H.tags_used || id_unusual(id & ~YP_CORO_BIT))
            return mon_code_slow(co, kind, ckind, wall, local);
        id &= ~YP_CORO_BIT;
        if (kind == YP_EV_CALL) return mon_coro_start(co, r, id, wall, tsc, local);
    }
    uint64_t ts = now_ts(wall, tsc);
    if (__builtin_expect(yp_ring_try_push(r, ts, id, kind), 1)) Py_RETURN_NONE;
    return mon_push_slow(r, wall, ts, id, kind);
}

/* The key of a builtin callable in H.cfuncs: its PyMethodDef (a method
 * descriptor called unbound-style shares it with the bound method), or
 * NULL for anything else (Python functions fire CALL at every call site). */
static inline const void *c_key(PyObject *callable, PyObject *self_arg) {
    PyTypeObject *tp = Py_TYPE(callable);
    if (tp == &PyFunction_Type || tp == &PyMethod_Type) return NULL;
    if (tp == &PyMethodDescr_Type)
        return self_arg != H.missing ? ((PyMethodDescrObject *)callable)->d_method : NULL;
    if (tp == &PyCFunction_Type || PyCFunction_Check(callable)) return ((PyCFunctionObject *)callable)->m_ml;
    return NULL;
}

__attribute__((noinline)) static PyObject *mon_c_slow(PyObject *caller, PyObject *callable, uint8_t kind,
                                                      uint64_t wall, int local) {
    yp_ring *r = get_ring(wall);
    if (!r || !PyCode_Check(caller)) Py_RETURN_NONE;
    if (caller_ignored((PyCodeObject *)caller, NULL)) return mon_ignored(local);
    uint32_t id;
    if (Py_TYPE(callable) == &PyMethodDescr_Type) {
        PyMethodDescrObject *d = (PyMethodDescrObject *)callable;
        if (!yp_map_get_ptr(&H.cfuncs, d->d_method, &id)) id = yp_descr_id(d);
    } else {
        id = yp_cfunc_id(callable);
    }
    if (id != 0 && id != IGNORED_ID) record(r, wall, ev_ts(wall), id, kind, 0);
    Py_RETURN_NONE;
}

/* A call of code left out by a filter: no more CALL events from there,
 * whatever it calls. */
static PyObject *mon_call_ignored(PyObject *caller) {
    if (PyCode_Check(caller) && code_id_fast((PyCodeObject *)caller) == IGNORED_ID) return mon_ignored(1);
    Py_RETURN_NONE;
}

/* A C function event (args[2]: the callable, args[3]: its self or MISSING),
 * as kind; local: a CALL event (it can be disabled). */
YP_HOT PyObject *mon_c_event(PyObject *const *args, size_t nargsf, uint8_t kind, int tsc, int local) {
    if (PyVectorcall_NARGS(nargsf) < 4) Py_RETURN_NONE;
    const void *key = c_key(args[2], args[3]);
    if (!key) {
        if (local && H.filtering) return mon_call_ignored(args[0]);
        Py_RETURN_NONE;
    }
    uint64_t wall = now_wall(tsc);
    yp_ring *r = yp_tls_ring;
    uint32_t id;
    if (__builtin_expect(!r || !yp_map_get_ptr(&H.cfuncs, key, &id), 0))
        return mon_c_slow(args[0], args[2], kind, wall, local);
    /* not recorded: yprof_record's own, or called by yprof_record's code */
    if (id == 0 || !PyCode_Check(args[0])) Py_RETURN_NONE;
    uint32_t caller = code_id_fast((PyCodeObject *)args[0]);
    if (__builtin_expect(caller_unusual(caller), 0)) {
        if (caller == IGNORED_ID) return mon_ignored(local);
        yp_c_event_unusual_caller(r, wall, (PyCodeObject *)args[0], NULL, id, kind);
        Py_RETURN_NONE;
    }
    uint64_t ts = now_ts(wall, tsc);
    if (__builtin_expect(yp_ring_try_push(r, ts, id, kind), 1)) Py_RETURN_NONE;
    return mon_push_slow(r, wall, ts, id, kind);
}

#define YP_MON_CB(name, body)                                                                      \
    static PyObject *name(PyObject *cb, PyObject *const *args, size_t nargsf, PyObject *kwnames) { \
        (void)cb;                                                                                  \
        (void)kwnames;                                                                             \
        return body;                                                                               \
    }
#define CALL YP_EV_CALL
#define RET YP_EV_RETURN
YP_MON_CB(mon_start_tsc, mon_code_event(args, nargsf, CALL, CALL, 1, 1))
YP_MON_CB(mon_resume_tsc, mon_code_event(args, nargsf, CALL, YP_EV_RESUME, 1, 1))
YP_MON_CB(mon_throw_tsc, mon_code_event(args, nargsf, CALL, YP_EV_RESUME, 1, 0))
YP_MON_CB(mon_return_tsc, mon_code_event(args, nargsf, RET, RET, 1, 1))
YP_MON_CB(mon_yield_tsc, mon_code_event(args, nargsf, RET, YP_EV_SUSPEND, 1, 1))
YP_MON_CB(mon_unwind_tsc, mon_code_event(args, nargsf, YP_EV_UNWIND, YP_EV_UNWIND, 1, 0))
YP_MON_CB(mon_ccall_tsc, mon_c_event(args, nargsf, YP_EV_C_CALL, 1, 1))
YP_MON_CB(mon_creturn_tsc, mon_c_event(args, nargsf, YP_EV_C_RETURN, 1, 0))
YP_MON_CB(mon_start_any, mon_code_event(args, nargsf, CALL, CALL, 0, 1))
YP_MON_CB(mon_resume_any, mon_code_event(args, nargsf, CALL, YP_EV_RESUME, 0, 1))
YP_MON_CB(mon_throw_any, mon_code_event(args, nargsf, CALL, YP_EV_RESUME, 0, 0))
YP_MON_CB(mon_return_any, mon_code_event(args, nargsf, RET, RET, 0, 1))
YP_MON_CB(mon_yield_any, mon_code_event(args, nargsf, RET, YP_EV_SUSPEND, 0, 1))
YP_MON_CB(mon_unwind_any, mon_code_event(args, nargsf, YP_EV_UNWIND, YP_EV_UNWIND, 0, 0))
YP_MON_CB(mon_ccall_any, mon_c_event(args, nargsf, YP_EV_C_CALL, 0, 1))
YP_MON_CB(mon_creturn_any, mon_c_event(args, nargsf, YP_EV_C_RETURN, 0, 0))
#undef CALL
#undef RET

static const vectorcallfunc g_mon_tsc[YP_MON_N] = {mon_start_tsc,  mon_resume_tsc, mon_throw_tsc,
                                                   mon_return_tsc, mon_yield_tsc,  mon_unwind_tsc,
                                                   mon_ccall_tsc,  mon_creturn_tsc};
static const vectorcallfunc g_mon_any[YP_MON_N] = {mon_start_any,  mon_resume_any, mon_throw_any,
                                                   mon_return_any, mon_yield_any,  mon_unwind_any,
                                                   mon_ccall_any,  mon_creturn_any};
static const vectorcallfunc g_mon_off[YP_MON_N] = {NULL};

void yp_hook_set_missing(PyObject *missing) {
    Py_XINCREF(missing);
    Py_XSETREF(H.missing, missing);
}

void yp_hook_set_disable(PyObject *disable) {
    Py_XINCREF(disable);
    Py_XSETREF(H.disable, disable);
}

void yp_mon_select(int on, int tsc, int builtins) {
    const vectorcallfunc *table = !on ? g_mon_off : tsc ? g_mon_tsc : g_mon_any;
    vectorcallfunc fns[YP_MON_N];
    for (int i = 0; i < YP_MON_N; i++) fns[i] = table[i];
    if (!builtins) fns[YP_MON_CCALL] = fns[YP_MON_CRETURN] = NULL;
    yp_moncb_select(fns);
}

#else

void yp_hook_set_missing(PyObject *missing) { (void)missing; }
void yp_hook_set_disable(PyObject *disable) { (void)disable; }

void yp_mon_select(int on, int tsc, int builtins) {
    (void)on;
    (void)tsc;
    (void)builtins;
}

#endif
