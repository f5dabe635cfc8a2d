/*
 * yp_hook_setprofile.c — events from CPython's setprofile hook: the default
 * on 3.8-3.11 (and YPROF_HOOK=setprofile on 3.12+).
 *
 * Installation: on 3.12+ PyEval_SetProfileAllThreads; on 3.9-3.11 the
 * exported _PyEval_SetProfile on each thread state (what 3.12's function
 * does); on 3.8 the same three thread-state fields PyEval_SetProfile sets.
 * Threads started later install it themselves through threading.setprofile
 * (yprof_record/__init__.py, yp_hook_bootstrap_thread).
 */
#include "yp_hook_int.h"

/* setprofile: an event whose ring or id is not at hand. */
__attribute__((noinline)) static int profile_slow(PyFrameObject *frame, int what, PyObject *arg,
                                                  uint64_t wall) {
    yp_ring *r = get_ring(wall);
    if (!r) return 0;
    uint32_t id;
    uint8_t kind;
    if (what == PyTrace_CALL || what == PyTrace_RETURN) {
        id = code_id(frame);
        if (id & YP_WATCH_BIT) {
            if (what == PyTrace_CALL) yp_task_created(r, wall, frame, 0);
            id &= ~YP_WATCH_BIT;
        }
        if (id & YP_CORO_BIT) return yp_coro_profile(r, wall, frame, what, arg, id & ~YP_CORO_BIT);
        kind = what == PyTrace_CALL ? YP_EV_CALL : arg ? YP_EV_RETURN : YP_EV_UNWIND;
    } else {
        id = caller_ignored(frame_code(frame), frame) ? 0 : yp_cfunc_id(arg);
        kind = what == PyTrace_C_CALL ? YP_EV_C_CALL : YP_EV_C_RETURN;
    }
    if (id != 0 && id != IGNORED_ID) record(r, wall, ev_ts(wall), id, kind, 0);
    return 0;
}

/* C function events, apart: the pointer-table probe needs registers the
 * Python events' path would otherwise save and restore on every event. */
YP_HOT int profile_c_event(PyFrameObject *frame, int what, PyObject *arg, uint64_t wall, int tsc) {
    yp_ring *r = yp_tls_ring;
    uint32_t id;
    if (!H.builtins || !arg) return 0;
    /* subtypes (3.9+'s PyCMethod) through the slow path: no call here */
    if (__builtin_expect(!r || Py_TYPE(arg) != &PyCFunction_Type ||
                             !yp_map_get_ptr(&H.cfuncs, ((PyCFunctionObject *)arg)->m_ml, &id),
                         0))
        return profile_slow(frame, what, arg, wall);
    /* not recorded: yprof_record's own, or called by yprof_record's code */
    if (id == 0) return 0;
    uint8_t kind = what == PyTrace_C_CALL ? YP_EV_C_CALL : YP_EV_C_RETURN;
    if (__builtin_expect(caller_unusual(code_id_fast(frame_code(frame))), 0))
        return yp_c_event_unusual_caller(r, wall, frame_code(frame), frame, id, kind);
    return record(r, wall, now_ts(wall, tsc), id, kind, 1);
}

__attribute__((noinline)) static int profile_c_tsc(PyFrameObject *frame, int what, PyObject *arg,
                                                   uint64_t wall) {
    return profile_c_event(frame, what, arg, wall, 1);
}

__attribute__((noinline)) static int profile_c_any(PyFrameObject *frame, int what, PyObject *arg,
                                                   uint64_t wall) {
    return profile_c_event(frame, what, arg, wall, 0);
}

/* One setprofile event; tsc: a constant (the TSC is the recording clock). */
YP_HOT int profile_event(PyFrameObject *frame, int what, PyObject *arg, int tsc) {
    uint64_t wall = now_wall(tsc);
    if (__builtin_expect(what > PyTrace_RETURN, 0)) {
        if (what > PyTrace_C_RETURN) return 0; /* PyTrace_LINE and others: not asked for */
        return tsc ? profile_c_tsc(frame, what, arg, wall) : profile_c_any(frame, what, arg, wall);
    }
    if (what != PyTrace_CALL && what != PyTrace_RETURN) return 0; /* never sent to a profile function */
    yp_ring *r = yp_tls_ring;
    uint32_t id = code_id_fast(frame_code(frame));
    if (__builtin_expect(!r || id_unusual(id), 0)) {
        if (id == IGNORED_ID) return 0;
        if (r && (id & YP_CORO_BIT) && !id_unusual(id & ~YP_CORO_BIT)) /* a coroutine's: a tail call */
            return yp_coro_profile(r, wall, frame, what, arg, id & ~YP_CORO_BIT);
        return profile_slow(frame, what, arg, wall);
    }
    uint8_t kind = what == PyTrace_CALL ? YP_EV_CALL
                   : arg                ? YP_EV_RETURN
                                        : YP_EV_UNWIND; /* NULL: an exception */
    return record(r, wall, now_ts(wall, tsc), id, kind, 1);
}

int yp_profile_tsc(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    return profile_event(frame, what, arg, 1);
}

int yp_profile_any(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    (void)obj;
    return profile_event(frame, what, arg, 0);
}

/* ---- calibration: an empty hook ------------------------------------------------------- */

static int yp_empty(PyObject *o, PyFrameObject *f, int what, PyObject *arg) {
    (void)o;
    (void)f;
    (void)what;
    (void)arg;
    return 0;
}

/* On (1) or off (0) in this thread (setprofile is per thread: the
 * background calibration's thread, or a stopping one, measures while other
 * threads record). On: -1 when this thread has a profile function already
 * (ours, recording; or another profiler's, which the loop without the
 * empty hook would have timed, and which must not be taken off). Off: 1,
 * leaving it, when the empty hook is no longer there (a start() put ours
 * in its place). */
int yp_hook_empty(int on) {
    Py_tracefunc cur = PyThreadState_Get()->c_profilefunc;
    if (on && cur) return -1;
    if (!on && cur != yp_empty) return 1;
    PyEval_SetProfile(on ? yp_empty : NULL, NULL);
    return 0;
}

int yp_hook_unhook_self(void) {
    if (!PyThreadState_Get()->c_profilefunc) return 0;
    PyEval_SetProfile(NULL, NULL);
    return 1;
}

/* ---- install / remove on every thread -------------------------------------------------- */

void yp_setprofile_all(Py_tracefunc func) {
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
