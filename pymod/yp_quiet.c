/*
 * yp_quiet.c — a thread the profiler never records: the control channel's
 * (yprof_record/_control.py). Its flag is set before it runs any Python
 * code, so none of its events, under any hook, gets it a ring: the hook's
 * first-event path (yp_hook_ring_slow) sends them away. It is not one of
 * threading's threads either: the application's thread lists, and
 * threading's wait at exit, do not see it.
 */
#include "yp_hook_int.h"

#include <pythread.h>

static void quiet_main(void *arg) {
    PyObject *fn = arg;
    yp_hook_tls.quiet = 1;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallObject(fn, NULL);
    if (!r) PyErr_WriteUnraisable(fn); /* the channel catches its own errors: a bug, said once */
    Py_XDECREF(r);
    Py_DECREF(fn);
    PyGILState_Release(g);
}

PyObject *yp_py_start_quiet_thread(PyObject *self, PyObject *fn) {
    (void)self;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "_start_quiet_thread needs a callable");
        return NULL;
    }
    Py_INCREF(fn);
    unsigned long id = PyThread_start_new_thread(quiet_main, fn);
    if (id == (unsigned long)-1) {
        Py_DECREF(fn);
        PyErr_SetString(PyExc_RuntimeError, "cannot start the control thread");
        return NULL;
    }
    return PyLong_FromUnsignedLong(id);
}
