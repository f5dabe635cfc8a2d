/*
 * yp_moncb.c — the objects registered as sys.monitoring callbacks (3.12+).
 *
 * CPython calls a tool's callback with PyObject_Vectorcall. A builtin
 * function object (what a METH_FASTCALL method table makes) goes through
 * cfunction_vectorcall_FASTCALL first: a recursion-depth check that looks
 * up the thread state (a __tls_get_addr call from libpython) and a second
 * indirect call, about 80 instructions per event, as much as the hook
 * itself. These objects carry the hook's function as their own vectorcall
 * slot, so the interpreter calls it directly. (The hook never recurses into
 * Python code on its fast path; its slow paths are bounded.) While yprof is
 * not recording they call an empty function, so the hook needs no check.
 */
#include "yp_pymod_int.h"

#if PY_VERSION_HEX >= 0x030C0000

#include <stddef.h>

typedef struct {
    PyObject_HEAD vectorcallfunc vc;
    const char *name;
} yp_moncb;

static PyObject *moncb_repr(PyObject *self) {
    return PyUnicode_FromFormat("<yprof monitoring callback %s>", ((yp_moncb *)self)->name);
}

static PyTypeObject moncb_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_yprof.MonitoringCallback",
    .tp_basicsize = sizeof(yp_moncb),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(yp_moncb, vc),
    .tp_call = PyVectorcall_Call,
    .tp_repr = moncb_repr,
    .tp_doc = "A sys.monitoring callback of the yprof hook (called directly through vectorcall).",
};

/* The calibration's empty callback (yprof_record/_calibrate.py): the same
 * kind of object, doing nothing. */
static PyObject *mon_noop(PyObject *cb, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    (void)cb;
    (void)args;
    (void)nargsf;
    (void)kwnames;
    Py_RETURN_NONE;
}

static yp_moncb *g_cbs[YP_MON_N]; /* the hook's callbacks (the module holds them) */

static int add(PyObject *m, const char *attr, int slot) {
    yp_moncb *o = PyObject_New(yp_moncb, &moncb_type);
    if (!o) return -1;
    o->vc = mon_noop;
    o->name = attr;
    if (slot >= 0) g_cbs[slot] = o;
    if (PyModule_AddObject(m, attr, (PyObject *)o) < 0) {
        if (slot >= 0) g_cbs[slot] = NULL;
        Py_DECREF(o);
        return -1;
    }
    return 0;
}

int yp_moncb_add(PyObject *m) {
    if (PyType_Ready(&moncb_type) < 0) return -1;
    return add(m, "_mon_start", YP_MON_START) || add(m, "_mon_resume", YP_MON_RESUME) ||
                   add(m, "_mon_throw", YP_MON_THROW) || add(m, "_mon_return", YP_MON_RETURN) ||
                   add(m, "_mon_yield", YP_MON_YIELD) || add(m, "_mon_unwind", YP_MON_UNWIND) ||
                   add(m, "_mon_ccall", YP_MON_CCALL) || add(m, "_mon_creturn", YP_MON_CRETURN) ||
                   add(m, "_mon_noop", -1)
               ? -1
               : 0;
}

/* CPython reads an object's vectorcall slot on every call: the next event
 * goes to the new function. Called with the GIL. */
void yp_moncb_select(const vectorcallfunc fns[YP_MON_N]) {
    for (int i = 0; i < YP_MON_N; i++)
        if (g_cbs[i]) g_cbs[i]->vc = fns[i] ? fns[i] : mon_noop;
}

#else

int yp_moncb_add(PyObject *m) {
    (void)m;
    return 0;
}

#endif
