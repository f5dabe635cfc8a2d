/*
 * yp_hook_glet.c — greenlets (docs/api.md, "Greenlets").
 *
 * greenlet (gevent, eventlet) switches stacks under the interpreter: the
 * thread's frames after a switch are another greenlet's. greenlet says so
 * itself, through the tracer of the thread (greenlet.settrace, one per
 * thread), called in the greenlet switched to with ("switch" or "throw",
 * (origin, target)). Ours, a GreenletTracer, writes two SWITCH records,
 * the greenlet left (YP_SWITCH_FROM) and the one entered, so the analyzer
 * keeps each greenlet's frames as a stack of its own (docs/format.md,
 * "Greenlets"), then calls the tracer it replaced. It is C, so greenlet's
 * call of it makes no profile event, and it costs a switch two ring
 * pushes; it stays when recording stops (doing nothing but the chained
 * call), since only the thread itself can set its tracer back.
 *
 * It is put in place, once per thread, by start() (the thread calling it),
 * by a thread's first recorded event, and by the import of
 * greenlet._greenlet while recording (yprof_record/_greenlet.py) — each
 * only where greenlet has been imported.
 */
#include "yp_hook_int.h"
#include "yp_pymod_int.h"

typedef struct {
    PyObject_HEAD PyObject *prev; /* the tracer replaced (NULL: none) */
} yp_glet_tracer;

/* A greenlet's identity: its address >> 3 (55 bits; never 0). */
static uint64_t glet_id(PyObject *g) { return (uint64_t)(uintptr_t)g >> 3; }

/* 1 if g's attribute `attr` is name (interned in *cache) ; errors: 0. */
static int attr_is(PyObject *g, PyObject **cache, const char *attr, PyObject *value) {
    if (!*cache && !(*cache = PyUnicode_InternFromString(attr))) return PyErr_Clear(), 0;
    PyObject *v = PyObject_GetAttr(g, *cache);
    if (!v) return PyErr_Clear(), 0;
    Py_DECREF(v);
    return v == value;
}

static void glet_switch(PyObject *pair) {
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) return;
    uint64_t wall = wall_ticks();
    yp_ring *r = get_ring(wall);
    if (!r) return;
    uint64_t ts = ev_ts(wall);
    static PyObject *s_dead, *s_parent;
    PyObject *origin = PyTuple_GET_ITEM(pair, 0), *target = PyTuple_GET_ITEM(pair, 1);
    int dead = attr_is(origin, &s_dead, "dead", Py_True),
        main = attr_is(target, &s_parent, "parent", Py_None);
    uint64_t from = yp_switch(dead ? YP_SW_GLET_OUT_DEAD : YP_SW_GLET_OUT, glet_id(origin)),
             to = yp_switch(main ? YP_SW_GLET_MAIN_IN : YP_SW_GLET_IN, glet_id(target));
    record(r, wall, ts, (uint32_t)from, yp_switch_kindw(from), 0);
    record(r, wall, ts, (uint32_t)to, yp_switch_kindw(to), 0);
    if (H.tags_used) yp_tag_glet_enter(r, wall, ts); /* the greenlet's own context, its tag */
}

static PyObject *tracer_call(PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *prev = ((yp_glet_tracer *)self)->prev;
    if (H.running && PyTuple_Check(args) && PyTuple_GET_SIZE(args) == 2)
        glet_switch(PyTuple_GET_ITEM(args, 1));
    if (prev) return PyObject_Call(prev, args, kw);
    Py_RETURN_NONE;
}

static void tracer_dealloc(PyObject *self) {
    Py_XDECREF(((yp_glet_tracer *)self)->prev);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *tracer_get_prev(PyObject *self, void *unused) {
    (void)unused;
    PyObject *prev = ((yp_glet_tracer *)self)->prev;
    if (!prev) prev = Py_None;
    Py_INCREF(prev);
    return prev;
}

static PyGetSetDef tracer_getset[] = {
    {"previous", tracer_get_prev, NULL, "the tracer it calls after it", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject tracer_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_yprof.GreenletTracer",
    .tp_basicsize = sizeof(yp_glet_tracer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "yprof's greenlet switch tracer (chains the one it replaced)",
    .tp_call = tracer_call,
    .tp_dealloc = tracer_dealloc,
    .tp_getset = tracer_getset,
};

/* greenlet's module with settrace, if imported: greenlet._greenlet (1.0
 * on), or the package; NULL, with an exception set on failure. */
static PyObject *greenlet_module(void) {
    static PyObject *names[2];
    const char *text[2] = {"greenlet._greenlet", "greenlet"};
    for (int i = 0; i < 2; i++) {
        if (!names[i] && !(names[i] = PyUnicode_InternFromString(text[i]))) return NULL;
        PyObject *m = PyImport_GetModule(names[i]);
        if (m || PyErr_Occurred()) return m;
    }
    return NULL;
}

/* This thread's greenlet tracer is ours (put in front of the one set);
 * 0, -1 with an exception set. */
static int trace_here(void) {
    PyObject *m = greenlet_module();
    if (!m) return PyErr_Occurred() ? -1 : 0; /* greenlet not imported */
    int rc = -1;
    yp_glet_tracer *t = NULL;
    PyObject *prev = PyObject_CallMethod(m, "gettrace", NULL);
    if (!prev) goto out;
    if (Py_TYPE(prev) == &tracer_type) {
        rc = 0;
        goto out;
    }
    t = PyObject_New(yp_glet_tracer, &tracer_type);
    if (!t) goto out;
    t->prev = prev == Py_None ? NULL : prev;
    Py_XINCREF(t->prev);
    PyObject *old = PyObject_CallMethod(m, "settrace", "O", (PyObject *)t);
    rc = old ? 0 : -1;
    Py_XDECREF(old);
out:
    Py_XDECREF((PyObject *)t);
    Py_XDECREF(prev);
    Py_DECREF(m);
    return rc;
}

void yp_glet_trace_here(void) {
    yp_hook_tls.in_slow++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (trace_here() < 0) PyErr_Clear(); /* a greenlet without settrace: its switches are not seen */
    PyErr_Restore(et, ev, tb);
    yp_hook_tls.in_slow--;
}

PyObject *yp_py_trace_greenlets(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    if (trace_here() < 0) return NULL;
    Py_RETURN_NONE;
}

int yp_glet_add(PyObject *m) {
    if (PyType_Ready(&tracer_type) < 0) return -1;
    Py_INCREF(&tracer_type);
    if (PyModule_AddObject(m, "GreenletTracer", (PyObject *)&tracer_type) < 0) {
        Py_DECREF(&tracer_type);
        return -1;
    }
    return 0;
}
