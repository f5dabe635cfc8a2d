/*
 * yp_hook_tag.c — tags: per-request statistics (docs/api.md, "Tags").
 *
 * The tag in effect is yprof_record's ContextVar, so each thread and each
 * asyncio task has its own. The hook never calls Python per event to learn
 * it: it is read only where it can change. set_tag() (and tag()) tell the
 * thread's state here directly, saying whether an asyncio task runs (then
 * the tag is that task's, else the thread's own); a coroutine's start or
 * resume reads the ContextVar (its task's context is current then), and
 * when the outermost coroutine of the thread suspends or ends (the task's
 * step is over) the thread's own tag is back: the event loop's code between
 * two steps is under the loop thread's tag. A TAG event goes into the ring only
 * when the thread's tag differs from the last one sent in this recording.
 * A tag's value is a symbol (YP_SYM_TAG_STR or _INT, its text the name).
 */
#include "yp_hook_int.h"

/* The symbol id of a tag value; 0 for None; -1 with an exception set. */
static int64_t tag_id(PyObject *v) {
    if (v == Py_None) return 0;
    if (!H.tag_ids && !(H.tag_ids = PyDict_New())) return -1;
    PyObject *known = PyDict_GetItemWithError(H.tag_ids, v);
    if (known) return (int64_t)PyLong_AsUnsignedLong(known);
    if (PyErr_Occurred()) return -1;
    int is_int = PyLong_Check(v);
    if (!is_int && !PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "a tag is a str or an int (or None), not %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *text = is_int ? PyObject_Str(v) : (Py_INCREF(v), v);
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    uint32_t id = s ? yp_rec_symbol_add(s, "", "", 0, is_int ? YP_SYM_TAG_INT : YP_SYM_TAG_STR) : 0;
    Py_XDECREF(text);
    if (!s) return -1;
    if (!id) return 0; /* out of memory: counted without a tag */
    PyObject *o = PyLong_FromUnsignedLong(id);
    if (!o || PyDict_SetItem(H.tag_ids, v, o) < 0) {
        Py_XDECREF(o);
        return -1;
    }
    Py_DECREF(o);
    return id;
}

/* The thread's tag is now id: a TAG event if the analyzer's differs. */
static void tag_set(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id) {
    yp_hook_thread *t = &yp_hook_tls;
    t->tag = id;
    if (!r || !H.running) return;
    uint32_t sent = t->tag_epoch == H.epoch ? t->tag_sent : 0;
    if (sent == id) return;
    record(r, wall, ts, id, YP_EV_TAG, 0);
    t->tag_sent = id;
    t->tag_epoch = H.epoch;
}

/* Coroutines entered and not left in this recording (what an earlier one
 * left open is forgotten). */
static uint32_t *co_depth(yp_hook_thread *t) {
    if (t->co_epoch != H.epoch) {
        t->co_epoch = H.epoch;
        t->co_depth = 0;
    }
    return &t->co_depth;
}

/* The tag of the context running now; -1 when it cannot be read. */
static int64_t context_tag(void) {
    PyObject *et, *ev, *tb, *v = NULL;
    PyErr_Fetch(&et, &ev, &tb);
    int64_t id = H.tag_var && PyContextVar_Get(H.tag_var, Py_None, &v) == 0 && v ? tag_id(v) : -1;
    Py_XDECREF(v);
    PyErr_Clear(); /* never raised into the application */
    PyErr_Restore(et, ev, tb);
    return id;
}

void yp_tag_coro_enter(yp_ring *r, uint64_t wall, uint64_t ts) {
    (*co_depth(&yp_hook_tls))++;
    int64_t id = context_tag();
    if (id >= 0) tag_set(r, wall, ts, (uint32_t)id);
}

void yp_tag_glet_enter(yp_ring *r, uint64_t wall, uint64_t ts) {
    int64_t id = context_tag();
    if (id < 0) return;
    yp_hook_tls.tag_base = (uint32_t)id;
    tag_set(r, wall, ts, (uint32_t)id);
}

void yp_tag_coro_leave(yp_ring *r, uint64_t wall, uint64_t ts) {
    yp_hook_thread *t = &yp_hook_tls;
    uint32_t *d = co_depth(t);
    if (*d && --*d) return;            /* still inside the task's step */
    tag_set(r, wall, ts, t->tag_base); /* the step is over (or began unseen) */
}

PyObject *yp_py_set_tag_var(PyObject *self, PyObject *var) {
    (void)self;
    if (!PyContextVar_CheckExact(var)) {
        PyErr_SetString(PyExc_TypeError, "_set_tag_var needs a ContextVar");
        return NULL;
    }
    Py_INCREF(var);
    Py_XSETREF(H.tag_var, var);
    Py_RETURN_NONE;
}

/* set_tag(): this context's tag is value (the ContextVar is set already):
 * in_task, an asyncio task's, else the thread's own. */
PyObject *yp_py_set_tag(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *value;
    int in_task = 0;
    if (!PyArg_ParseTuple(args, "O|p", &value, &in_task)) return NULL;
    int64_t id = tag_id(value);
    if (id < 0) return NULL;
    if (!in_task) yp_hook_tls.tag_base = (uint32_t)id;
    H.tags_used = 1;
    uint64_t wall = wall_ticks();
    yp_ring *r = H.running ? get_ring(wall) : NULL;
    tag_set(r, wall, r ? ev_ts(wall) : 0, (uint32_t)id);
    Py_RETURN_NONE;
}
