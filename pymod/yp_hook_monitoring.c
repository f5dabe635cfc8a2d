/*
 * yp_hook_monitoring.c — events from sys.monitoring (3.12+).
 *
 * The same events cProfile registers on 3.12+: PY_START, PY_RESUME and
 * PY_THROW are calls; PY_RETURN and PY_YIELD returns; PY_UNWIND an exception
 * exit; CALL to a C function a C call; C_RETURN and C_RAISE C returns. The
 * callbacks get the code object directly: no frame object is made. They are
 * registered from yprof_record/__init__.py under their own tool id; while
 * not recording the callback objects (yp_moncb.c) call an empty function.
 */
#include "yp_hook_int.h"

#if PY_VERSION_HEX >= 0x030C0000

__attribute__((noinline)) static PyObject *mon_code_slow(PyCodeObject *co, uint8_t kind, uint64_t wall) {
    yp_ring *r = get_ring(wall);
    uint32_t id = r ? code_id_of(co, NULL, NULL) : 0;
    if (id != 0 && id != IGNORED_ID) record(r, wall, ev_ts(wall), id, kind, 0);
    Py_RETURN_NONE;
}

__attribute__((noinline)) static PyObject *mon_push_slow(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id,
                                                         uint8_t kind) {
    yp_hook_push_slow(r, wall, ts, id, kind, 1);
    Py_RETURN_NONE;
}

/* A Python function event (args[0]: its code object), as kind. */
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
                                                      uint64_t wall) {
    yp_ring *r = get_ring(wall);
    if (!r || !PyCode_Check(caller) || caller_ignored((PyCodeObject *)caller, NULL)) Py_RETURN_NONE;
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

/* A C function event (args[2]: the callable, args[3]: its self or MISSING), as kind. */
YP_HOT PyObject *mon_c_event(PyObject *const *args, size_t nargsf, uint8_t kind, int tsc) {
    if (PyVectorcall_NARGS(nargsf) < 4) Py_RETURN_NONE;
    const void *key = c_key(args[2], args[3]);
    if (!key) Py_RETURN_NONE;
    uint64_t wall = now_wall(tsc);
    yp_ring *r = yp_tls_ring;
    uint32_t id;
    if (__builtin_expect(!r || !yp_map_get_ptr(&H.cfuncs, key, &id), 0))
        return mon_c_slow(args[0], args[2], kind, wall);
    /* not recorded: yprof_record's own, or called by yprof_record's code */
    if (id == 0 || !PyCode_Check(args[0])) Py_RETURN_NONE;
    if (__builtin_expect(id_unusual(code_id_fast((PyCodeObject *)args[0])), 0)) {
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
    Py_XSETREF(H.missing, missing);
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

void yp_mon_select(int on, int tsc, int builtins) {
    (void)on;
    (void)tsc;
    (void)builtins;
}

#endif
