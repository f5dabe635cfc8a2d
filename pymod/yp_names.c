/*
 * yp_names.c — naming what the hook records, once per function or thread
 * (the slow paths): a code object's qualified name, module, file and line;
 * a C function's or method's name as cProfile gives it; a thread's name
 * from threading. They save and restore any pending exception and never let
 * one escape: a failure is counted (by the recorder) and the event skipped.
 */
#include <string.h>

#include "yp_hook_int.h"

/* Every write to H.cfuncs: the table, then its size for other threads. */
static int cfunc_put(const void *key, uint32_t id) {
    int rc = yp_map_put_ptr(&H.cfuncs, key, id);
    atomic_store_explicit(&H.cfuncs_bytes, yp_map_bytes(&H.cfuncs), memory_order_relaxed);
    return rc;
}

void yp_hook_ignore_cfunc(const void *ml) { cfunc_put(ml, 0); }

void yp_hook_set_ignore_prefix(const char *prefix) {
    snprintf(H.ignore_prefix, sizeof H.ignore_prefix, "%s", prefix);
    H.ignore_len = strlen(H.ignore_prefix);
}

uint64_t yp_hook_bytes(void) { return atomic_load_explicit(&H.cfuncs_bytes, memory_order_relaxed); }

static const char *utf8_or(PyObject *o, const char *dflt) {
    if (!o || !PyUnicode_Check(o)) return dflt;
    const char *s = PyUnicode_AsUTF8(o);
    if (!s) PyErr_Clear();
    return s ? s : dflt;
}
/* Name the calling thread from threading's table of running threads,
 * without side effects: threading.current_thread() would register a
 * _DummyThread for a thread that threading has not registered yet (its first
 * events under sys.monitoring come before that). Until the name is found,
 * the hook tries again on each of the thread's next 200 events; after that
 * the names Python reports at stop()/get_stats() take over. Runs no code of
 * the application's (no property, no __getattr__): dict lookups only. */
/* threading._active (a new reference), or NULL. */
static PyObject *threading_active(void) {
    PyObject *modname = PyUnicode_FromString("threading");
    PyObject *threading = modname ? PyImport_GetModule(modname) : NULL;
    PyObject *active = threading ? PyObject_GetAttrString(threading, "_active") : NULL;
    Py_XDECREF(threading);
    Py_XDECREF(modname);
    if (active && !PyDict_Check(active)) Py_CLEAR(active);
    return active;
}

/* A Thread's name as threading stores it (Thread._name, in the instance's
 * dict: the `name` property could be the application's own code), a new
 * reference; NULL when it has none. */
static PyObject *stored_name(PyObject *thread) {
    PyObject *dict = thread ? PyObject_GenericGetDict(thread, NULL) : NULL;
    PyObject *n = dict && PyDict_Check(dict) ? PyDict_GetItemString(dict, "_name") : NULL;
    Py_XINCREF(n);
    Py_XDECREF(dict);
    if (n && !PyUnicode_Check(n)) Py_CLEAR(n);
    return n;
}

void yp_name_thread(yp_ring *r) {
    yp_hook_tls.in_slow++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    uint64_t ident = (uint64_t)PyThread_get_thread_ident();
    PyObject *active = threading_active();
    PyObject *key = PyLong_FromUnsignedLongLong(ident);
    PyObject *n = active && key ? stored_name(PyDict_GetItem(active, key)) : NULL;
    const char *name = n ? utf8_or(n, NULL) : NULL;
    if (name)
        yp_hook_tls.name_pending = 0;
    else if (!yp_hook_tls.name_pending)
        yp_hook_tls.name_pending = 200; /* events to retry on; then Python's updates name it */
    else
        yp_hook_tls.name_pending--;
    if (name || yp_hook_tls.name_pending == 200) yp_rec_thread_set(r, ident, name ? name : "");
    Py_XDECREF(n);
    Py_XDECREF(key);
    Py_XDECREF(active);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    yp_hook_tls.in_slow--;
}

void yp_name_all_threads(void) {
    yp_hook_tls.in_slow++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *active = threading_active();
    PyObject *ident, *thread;
    Py_ssize_t pos = 0;
    while (active && PyDict_Next(active, &pos, &ident, &thread)) {
        PyObject *n = stored_name(thread);
        const char *name = n ? utf8_or(n, NULL) : NULL;
        unsigned long long id = PyLong_Check(ident) ? PyLong_AsUnsignedLongLong(ident) : 0;
        if (name && !PyErr_Occurred()) yp_rec_thread_name((uint64_t)id, name);
        PyErr_Clear();
        Py_XDECREF(n);
    }
    Py_XDECREF(active);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    yp_hook_tls.in_slow--;
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

/* The code's module name: __name__ of its globals (a new reference, or
 * NULL). frame may be NULL (sys.monitoring callbacks, the frame evaluator):
 * the globals are then `globals_hint` when given (borrowed), else the
 * current frame's, which at a start or return event are the function's own. */
static PyObject *code_module(PyFrameObject *frame, PyObject *globals_hint) {
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *globals = frame ? PyFrame_GetGlobals(frame) : globals_hint ? globals_hint : PyEval_GetGlobals();
    if (!frame) Py_XINCREF(globals);
#else
    PyObject *globals = frame ? frame->f_globals : globals_hint ? globals_hint : PyEval_GetGlobals();
    Py_XINCREF(globals);
#endif
    PyObject *mod = globals && PyDict_Check(globals) ? PyDict_GetItemString(globals, "__name__") : NULL;
    Py_XINCREF(mod);
    Py_XDECREF(globals);
    return mod;
}

/* A new symbol for the code: its qualified name, module, file and line. */
static uint32_t code_symbol(PyFrameObject *frame, PyCodeObject *co, const char *module,
                            const char *filename) {
#if PY_VERSION_HEX >= 0x030B0000
    (void)frame;
    PyObject *qn = PyObject_GetAttrString((PyObject *)co, "co_qualname");
#else
    PyObject *qn = guess_qualname(frame, co);
    if (!qn) qn = PyObject_GetAttrString((PyObject *)co, "co_name");
#endif
    PyObject *line = PyObject_GetAttrString((PyObject *)co, "co_firstlineno");
    long lineno = line ? PyLong_AsLong(line) : 0;
    uint32_t id = yp_rec_symbol_add(utf8_or(qn, "?"), module, filename, lineno > 0 ? (uint32_t)lineno : 0, 0);
    Py_XDECREF(qn);
    Py_XDECREF(line);
    return id;
}

static uint32_t extra_get(PyCodeObject *co, Py_ssize_t idx) {
    void *p = NULL;
    if (YP_GET_EXTRA((PyObject *)co, idx, &p) != 0) PyErr_Clear();
    return (uint32_t)(uintptr_t)p;
}

static void extra_set(PyCodeObject *co, Py_ssize_t idx, uint32_t id) {
    if (YP_SET_EXTRA((PyObject *)co, idx, (void *)(uintptr_t)id) != 0) PyErr_Clear();
}

/* A code object's first sight (under the filter in force). Its symbol id
 * lives in the symbol slot, made on first need (not for code a filter
 * leaves out); yprof_record's own code is IGNORED_ID there. Under a filter
 * the decision (the id or IGNORED_ID) is cached in the filter's slot. */
uint32_t yp_code_id_slow(PyFrameObject *frame, PyCodeObject *co, PyObject *globals_hint) {
    yp_hook_tls.in_slow++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    uint32_t sym = H.filtering ? extra_get(co, H.sym_idx) : 0, id = sym;
    if (sym != IGNORED_ID) {
        PyObject *file = PyObject_GetAttrString((PyObject *)co, "co_filename");
        const char *filename = utf8_or(file, "");
        if (H.ignore_len && !strncmp(filename, H.ignore_prefix, H.ignore_len)) {
            sym = id = IGNORED_ID;
            extra_set(co, H.sym_idx, sym);
        } else {
            PyObject *mod = code_module(frame, globals_hint);
            const char *module = utf8_or(mod, "");
            if (H.filtering && !yp_filter_admits(module, filename)) {
                id = IGNORED_ID;
            } else if (!sym) {
                sym = id = code_symbol(frame, co, module, filename);
                if (sym && yp_code_is_coro(co)) sym = id = sym | YP_CORO_BIT;
                if (sym && yp_task_is_create(co, filename)) sym = id = sym | YP_WATCH_BIT;
                if (sym) extra_set(co, H.sym_idx, sym);
            }
            Py_XDECREF(mod);
        }
        Py_XDECREF(file);
    }
    if (H.filtering && id) extra_set(co, H.filter_idx, id);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    yp_hook_tls.in_slow--;
    return id;
}

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

/* A builtin function's first sight: its symbol (named as cProfile names it) and id.
 * The symbol's builtin byte says which of cProfile's pstats labels is its
 * (docs/format.md, symbols): YP_C_METHOD "<method 'm' of 'T' objects>" for a
 * method found in its instance's type, or "<built-in method mod.f>" for a
 * module's function; YP_C_BOUND "<built-in method m>" for one bound to a
 * type (a classmethod) or not found in its instance's type; YP_C_STATIC
 * "<f>" or "<mod.f>" for one with no self (a staticmethod). */
static uint32_t cfunc_id_slow(PyCFunctionObject *fn) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    const char *meth = fn->m_ml->ml_name ? fn->m_ml->ml_name : "?";
    char name[512], mod[256] = "builtins";
    uint8_t kind = YP_C_METHOD;
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
        if (!self) kind = YP_C_STATIC;
    } else {
        /* the type that defines the method, as cProfile names it */
        PyTypeObject *tp = PyType_Check(self) ? (PyTypeObject *)self : Py_TYPE(self);
        const char *tpname = tp->tp_name;
        if (PyType_Check(self)) {
            kind = YP_C_BOUND;
        } else {
            PyObject *d = PyObject_GetAttrString((PyObject *)tp, meth);
            if (d && Py_TYPE(d) == &PyMethodDescr_Type)
                tpname = ((PyDescrObject *)d)->d_type->tp_name;
            else if (!d)
                kind = YP_C_BOUND;
            Py_XDECREF(d);
            PyErr_Clear();
        }
        const char *shortname;
        split_tp_name(tpname, mod, sizeof mod, &shortname);
        snprintf(name, sizeof name, "%s.%s", shortname, meth);
    }
    uint32_t id = yp_rec_symbol_add(name, mod, "", 0, kind);
    if (id && cfunc_put(fn->m_ml, id) != 0) {
        /* table full (no memory): this function gets a fresh id next time */
    }
    PyErr_Restore(et, ev, tb);
    return id;
}

/* A method descriptor called unbound-style (3.12+ monitoring CALL events):
 * keyed by the same PyMethodDef as the bound builtin method, so both paths
 * give one id and one name. */
uint32_t yp_descr_id(PyMethodDescrObject *d) {
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
/* The id of a C function or bound builtin method, 0 when not recorded. */
uint32_t yp_cfunc_id(PyObject *arg) {
    if (!arg || !PyCFunction_Check(arg)) return 0;
    PyCFunctionObject *fn = (PyCFunctionObject *)arg;
    uint32_t id;
    if (yp_map_get_ptr(&H.cfuncs, fn->m_ml, &id)) return id;
    return cfunc_id_slow(fn);
}

int yp_caller_ignored_slow(PyCodeObject *co, PyFrameObject *frame, uint32_t id) {
    if (id == 0) id = yp_code_id_slow(frame, co, NULL);
    return id == IGNORED_ID;
}
