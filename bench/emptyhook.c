/* emptyhook.c — the floors: an empty C profile hook (setprofile on every
 * version; on 3.12+ also an empty sys.monitoring tool with C callables), and
 * the same hooks doing only what any timing recorder must: read the TSC and
 * store a 16-byte record (an "ideal recorder": no ids, no flusher), with
 * optionally a thread reading those records as a flusher would (reader()).
 * Built by bench/run.sh for the benchmark only. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

typedef struct {
    uint64_t ts;
    uint32_t id;
    uint8_t kind, pad[3];
} rec16;
#define BUF_N (1u << 17)
static _Thread_local __attribute__((tls_model("initial-exec"))) rec16 *tl_buf;
static _Thread_local __attribute__((tls_model("initial-exec"))) uint64_t tl_n;

/* The buffers, for the reader thread below (64 threads at a time). A
 * thread's count lives in its TLS, so its exit frees its slot (g_mu). */
#define MAX_BUFS 64
static struct {
    rec16 *buf;
    uint64_t *n; /* NULL once the thread has exited */
    uint64_t seen;
} g_bufs[MAX_BUFS];
static int g_nbufs;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void on_exit_thread(void *slot) {
    pthread_mutex_lock(&g_mu);
    g_bufs[(uintptr_t)slot - 1].n = NULL;
    pthread_mutex_unlock(&g_mu);
}

static void make_key(void) { (void)pthread_key_create(&g_key, on_exit_thread); }

static rec16 *new_buf(void) {
    rec16 *b = tl_buf = calloc(BUF_N, sizeof *b); /* one per thread, kept */
    pthread_once(&g_once, make_key);
    pthread_mutex_lock(&g_mu);
    int i = 0;
    while (i < g_nbufs && g_bufs[i].n) i++; /* a free slot (its thread has exited) */
    if (b && i < MAX_BUFS) {
        g_bufs[i].buf = b;
        g_bufs[i].n = &tl_n;
        g_bufs[i].seen = 0;
        (void)pthread_setspecific(g_key, (void *)(uintptr_t)(i + 1));
        if (i == g_nbufs) g_nbufs++;
    }
    pthread_mutex_unlock(&g_mu);
    return b;
}

static inline void record(uint32_t id, uint8_t kind) {
    rec16 *b = tl_buf;
    if (!b && !(b = new_buf())) return;
    rec16 *e = &b[tl_n++ & (BUF_N - 1)];
    e->ts = __rdtsc();
    e->id = id;
    e->kind = kind;
}

static int tsc_hook(PyObject *o, PyFrameObject *f, int what, PyObject *arg) {
    (void)o;
    (void)arg;
    record((uint32_t)(uintptr_t)f, (uint8_t)what);
    return 0;
}

static int empty(PyObject *o, PyFrameObject *f, int what, PyObject *arg) {
    (void)o;
    (void)f;
    (void)what;
    (void)arg;
    return 0;
}

static Py_tracefunc g_hook = empty;

/* set(True|False|"tsc"): install the empty hook, remove it, or install the
 * ideal recorder's hook */
static PyObject *py_set(PyObject *self, PyObject *on) {
    (void)self;
    g_hook = PyUnicode_Check(on) ? tsc_hook : empty;
    Py_tracefunc f = PyObject_IsTrue(on) ? g_hook : NULL;
#if PY_VERSION_HEX >= 0x030C0000
    PyEval_SetProfileAllThreads(f, NULL);
#else
    PyEval_SetProfile(f, NULL);
#endif
    Py_RETURN_NONE;
}

#if PY_VERSION_HEX >= 0x030C0000
static PyObject *tsc_vc(PyObject *self, PyObject *const *args, size_t n, PyObject *kw) {
    (void)self;
    (void)kw;
    if (PyVectorcall_NARGS(n) >= 3) { /* CALL, C_RETURN, C_RAISE: C callables only */
        PyTypeObject *tp = Py_TYPE(args[2]);
        if (tp != &PyCFunction_Type && tp != &PyMethodDescr_Type) Py_RETURN_NONE;
    }
    record((uint32_t)(uintptr_t)args[0], (uint8_t)PyVectorcall_NARGS(n));
    Py_RETURN_NONE;
}

static PyObject *noop_vc(PyObject *self, PyObject *const *args, size_t n, PyObject *kw) {
    (void)self;
    (void)args;
    (void)n;
    (void)kw;
    Py_RETURN_NONE;
}

/* The cheapest C callable there is: an object whose own vectorcall slot is
 * the function, so the interpreter calls it directly (no builtin-function
 * wrapper, no recursion check). yprof registers the same kind of object. */
typedef struct {
    PyObject_HEAD vectorcallfunc vc;
} vcobj;

static PyTypeObject vc_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "emptyhook.Callback",
    .tp_basicsize = sizeof(vcobj),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(vcobj, vc),
    .tp_call = PyVectorcall_Call,
};

/* noop(): a C callable doing nothing; noop("tsc"): one that records */
static PyObject *py_noop(PyObject *self, PyObject *args) {
    (void)self;
    vcobj *o = PyObject_New(vcobj, &vc_type);
    if (o) o->vc = PyTuple_GET_SIZE(args) ? tsc_vc : noop_vc;
    return (PyObject *)o;
}
#else
static PyObject *py_noop(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    PyErr_SetString(PyExc_RuntimeError, "sys.monitoring needs Python 3.12+");
    return NULL;
}
#endif

/* reader(True|False): a thread that, every millisecond, reads the records
 * written since its last pass (one load per 64-byte line), as a recorder's
 * consumer must: the ideal recorder with the cost of shipping its data to
 * another core (the lines it reads are shared until the writer takes them
 * back a lap later). */
static pthread_t g_reader;
static volatile int g_reading;
static volatile uint64_t g_sink;

static void *reader_main(void *unused) {
    (void)unused;
    while (g_reading) {
        pthread_mutex_lock(&g_mu);
        for (int i = 0; i < g_nbufs; i++) {
            if (!g_bufs[i].n) continue;
            uint64_t n = __atomic_load_n(g_bufs[i].n, __ATOMIC_RELAXED), s = 0;
            uint64_t from = g_bufs[i].seen + BUF_N < n ? n - BUF_N : g_bufs[i].seen;
            for (uint64_t k = from & ~(uint64_t)3; k < n; k += 4) s += g_bufs[i].buf[k & (BUF_N - 1)].ts;
            g_bufs[i].seen = n;
            g_sink += s;
        }
        pthread_mutex_unlock(&g_mu);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return NULL;
}

static PyObject *py_reader(PyObject *self, PyObject *on) {
    (void)self;
    if (PyObject_IsTrue(on) && !g_reading) {
        g_reading = 1;
        if (pthread_create(&g_reader, NULL, reader_main, NULL)) g_reading = 0;
    } else if (!PyObject_IsTrue(on) && g_reading) {
        g_reading = 0;
        Py_BEGIN_ALLOW_THREADS
            pthread_join(g_reader, NULL);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *py_thread(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    PyEval_SetProfile(g_hook, NULL);
    Py_RETURN_NONE;
}

#if PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030C0000
/* PEP 523: a frame-evaluation function wrapping the default one (3.9-3.11;
 * 3.8 keeps the slot in a private struct, 3.12+ has sys.monitoring). It sees
 * every Python frame start and end (generator resumes included) and no C
 * function. On 3.11 a Python-to-Python call then leaves the interpreter's
 * inlined call path for a C-level recursion, which is part of its cost. */
#if PY_VERSION_HEX >= 0x030B0000
typedef struct _PyInterpreterFrame *evalframe;
#else
typedef PyFrameObject *evalframe;
#endif
static _PyFrameEvalFunction g_default_eval;

static PyObject *eval_empty(PyThreadState *ts, evalframe f, int exc) { return g_default_eval(ts, f, exc); }

static PyObject *eval_tsc(PyThreadState *ts, evalframe f, int exc) {
    record((uint32_t)(uintptr_t)f, 0);
    PyObject *r = g_default_eval(ts, f, exc);
    record((uint32_t)(uintptr_t)f, 3);
    return r;
}

/* eval(True|False|"tsc"): install the empty frame evaluator, remove it, or
 * install the recording one */
static PyObject *py_eval(PyObject *self, PyObject *on) {
    (void)self;
    PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    if (!g_default_eval) g_default_eval = _PyInterpreterState_GetEvalFrameFunc(interp);
    _PyFrameEvalFunction f = g_default_eval;
    if (PyObject_IsTrue(on)) f = PyUnicode_Check(on) ? eval_tsc : eval_empty;
    _PyInterpreterState_SetEvalFrameFunc(interp, f);
    Py_RETURN_NONE;
}
#else
static PyObject *py_eval(PyObject *self, PyObject *on) {
    (void)self;
    (void)on;
    PyErr_SetString(PyExc_RuntimeError, "the PEP 523 floor is built for 3.9-3.11");
    return NULL;
}
#endif

static PyMethodDef methods[] = {{"set", py_set, METH_O, "install/remove the empty hook"},
                                {"thread", py_thread, METH_NOARGS, "install in this thread"},
                                {"noop", py_noop, METH_VARARGS, "a C callable doing nothing (or recording)"},
                                {"eval", py_eval, METH_O, "install/remove a PEP 523 frame evaluator"},
                                {"reader", py_reader, METH_O, "start/stop a thread reading the records"},
                                {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, "emptyhook", NULL, -1, methods, NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit_emptyhook(void) {
#if PY_VERSION_HEX >= 0x030C0000
    if (PyType_Ready(&vc_type) < 0) return NULL;
#endif
    return PyModule_Create(&def);
}
