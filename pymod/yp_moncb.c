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
 * Python code on its fast path; its slow paths are bounded.)
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

static int add(PyObject *m, const char *attr, vectorcallfunc vc) {
    yp_moncb *o = PyObject_New(yp_moncb, &moncb_type);
    if (!o) return -1;
    o->vc = vc;
    o->name = attr;
    if (PyModule_AddObject(m, attr, (PyObject *)o) < 0) {
        Py_DECREF(o);
        return -1;
    }
    return 0;
}

int yp_moncb_add(PyObject *m) {
    if (PyType_Ready(&moncb_type) < 0) return -1;
    return add(m, "_mon_start", yp_mon_start) || add(m, "_mon_return", yp_mon_return) ||
                   add(m, "_mon_unwind", yp_mon_unwind) || add(m, "_mon_ccall", yp_mon_ccall) ||
                   add(m, "_mon_creturn", yp_mon_creturn) || add(m, "_mon_noop", mon_noop)
               ? -1
               : 0;
}

#else

int yp_moncb_add(PyObject *m) {
    (void)m;
    return 0;
}

#endif
