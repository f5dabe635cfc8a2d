/* emptyhook.c — the floor: an empty C profile hook (setprofile on every
 * version; on 3.12+ also an empty sys.monitoring tool with C callables).
 * Built by bench/run.sh for the benchmark only. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

static int empty(PyObject *o, PyFrameObject *f, int what, PyObject *arg) {
    (void)o;
    (void)f;
    (void)what;
    (void)arg;
    return 0;
}

static PyObject *py_set(PyObject *self, PyObject *on) {
    (void)self;
#if PY_VERSION_HEX >= 0x030C0000
    PyEval_SetProfileAllThreads(PyObject_IsTrue(on) ? empty : NULL, NULL);
#else
    PyEval_SetProfile(PyObject_IsTrue(on) ? empty : NULL, NULL);
#endif
    Py_RETURN_NONE;
}

static PyObject *noop_vc(PyObject *self, PyObject *const *args, size_t n, PyObject *kw) {
    (void)self;
    (void)args;
    (void)n;
    (void)kw;
    Py_RETURN_NONE;
}

static PyMethodDef noop_def = {"noop", (PyCFunction)(void (*)(void))noop_vc, METH_FASTCALL | METH_KEYWORDS,
                               NULL};

static PyObject *py_noop(PyObject *self, PyObject *unused) {
    (void)unused;
    return PyCFunction_New(&noop_def, self);
}

static PyObject *py_thread(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    PyEval_SetProfile(empty, NULL);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {{"set", py_set, METH_O, "install/remove the empty hook"},
                                {"thread", py_thread, METH_NOARGS, "install in this thread"},
                                {"noop", py_noop, METH_NOARGS, "a C callable doing nothing"},
                                {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, "emptyhook", NULL, -1, methods, NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit_emptyhook(void) { return PyModule_Create(&def); }
