/*
 * yp_hook_task.c — asyncio's tasks (docs/api.md, "Tasks").
 *
 * A task's first step starts its coroutine from the event loop (no
 * coroutine below it): at a coroutine's first start whose caller frame is
 * not a coroutine's, asyncio.current_task() says whether a task runs it;
 * if so (its coroutine's code is this one), three SWITCH records name it
 * (docs/format.md, "Greenlets and tasks"): its name (TASK_NAME: the N of
 * asyncio's default "Task-N", else a symbol of the text), its coroutine
 * object (TASK_OBJ) and its first step (TASK_NEW, under the coroutine's
 * CORO name). The analyzer follows its steps from the coroutine's frame.
 * The check of the caller is a few loads on every coroutine's first start;
 * the task's coroutine and name then cost two Python calls (get_coro,
 * get_name) until the task's type is learned: where its instances keep the
 * two (found by their pointers among the words of two tasks, which must
 * agree; task_layout below), and, from 3.11, where a coroutine keeps its
 * frame. A learned type's tasks are read in a few loads, the name as its
 * text or, on 3.13, as the number asyncio formats into "Task-N" when asked.
 *
 * Its creation: asyncio's BaseEventLoop.create_task (every create_task,
 * ensure_future, gather and TaskGroup of the standard loops goes through
 * it) carries YP_WATCH_BIT on its stored id; its call writes TASK_CREATED
 * with its coroutine argument's identity. Tasks made otherwise (uvloop's
 * loop, asyncio.Task(...) directly) have no creation time.
 */
#include "yp_hook_int.h"
#include "yp_pymod_int.h"

#include <string.h>

#define TASK_NAMES_MAX 10000 /* distinct custom names kept as symbols; past it, none */

int yp_task_is_create(PyCodeObject *co, const char *filename) {
    size_t n = strlen(filename);
    const char *tail = "base_events.py";
    size_t k = strlen(tail);
    if (n < k + 8 || strcmp(filename + n - k, tail) || strncmp(filename + n - k - 8, "asyncio", 7)) return 0;
    const char *name = PyUnicode_AsUTF8(co->co_name);
    if (!name) PyErr_Clear();
    return name && !strcmp(name, "create_task");
}

static uint64_t obj_id(PyObject *o) { return (uint64_t)(uintptr_t)o >> 3; }

#if !YP_PUBLIC_API_ONLY

static int code_is_coro(PyObject *co) {
    return co && PyCode_Check(co) &&
           (((PyCodeObject *)co)->co_flags & (CO_COROUTINE | CO_ITERABLE_COROUTINE));
}

#if PY_VERSION_HEX >= 0x030C0000
/* 3.12 and 3.13's interpreter frame, as far as its owner
 * (Include/internal/pycore_frame.h, fixed within each series). */
typedef struct yp_iframe312 {
    PyObject *f_code; /* 3.13: f_executable */
    struct yp_iframe312 *previous;
    PyObject *f_funcobj, *f_globals, *f_builtins, *f_locals;
    PyFrameObject *frame_obj;
    void *instr;
    int stacktop;
    uint16_t return_offset;
    char owner; /* 3: FRAME_OWNED_BY_CSTACK, a C call's entry frame */
    PyObject *localsplus[1];
} yp_iframe312;
/* Their frame object, as far as its interpreter frame. */
typedef struct {
    PyObject_HEAD PyFrameObject *f_back;
    yp_iframe312 *f_frame;
} yp_frameobj312;
#endif

/* Was the coroutine starting in frame called by a coroutine? */
static int caller_is_coro(const void *frame) {
#if PY_VERSION_HEX >= 0x030C0000
    const yp_iframe312 *f = H.kind == YP_HOOK_SETPROFILE ? ((const yp_frameobj312 *)frame)->f_frame : frame;
    const yp_iframe312 *p = f->previous;
    while (p && p->owner == 3) p = p->previous;
    return p && code_is_coro(p->f_code);
#elif PY_VERSION_HEX >= 0x030B0000
    const yp_iframe311 *p = ((const yp_iframe311 *)frame)->previous;
    return p && code_is_coro((PyObject *)p->f_code);
#else
    const PyFrameObject *back = ((const PyFrameObject *)frame)->f_back;
    return back && code_is_coro((PyObject *)back->f_code);
#endif
}

/* TASK_NAME's value for the task's name: N of "Task-N", else a symbol of
 * the text (0: none, or past TASK_NAMES_MAX). */
static uint64_t name_value(PyObject *name) {
    const char *s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!s) return 0;
    if (!strncmp(s, "Task-", 5) && s[5] >= '1' && s[5] <= '9') {
        char *end;
        unsigned long long n = strtoull(s + 5, &end, 10);
        if (!*end && n < YP_SW_NAME_SYMBOL) return n;
    }
    static PyObject *names; /* text -> symbol id */
    if (!names && !(names = PyDict_New())) return 0;
    PyObject *known = PyDict_GetItemWithError(names, name);
    if (known) return PyLong_AsUnsignedLongLong(known) | YP_SW_NAME_SYMBOL;
    if (PyErr_Occurred() || PyDict_GET_SIZE(names) >= TASK_NAMES_MAX) return 0;
    uint32_t id = yp_rec_symbol_add(s, "", "", 0, YP_SYM_TASK_NAME);
    PyObject *o = id ? PyLong_FromUnsignedLong(id) : NULL;
    if (!o || PyDict_SetItem(names, name, o) < 0) id = 0;
    Py_XDECREF(o);
    return id ? id | YP_SW_NAME_SYMBOL : 0;
}

/* Names looked up here, made once. */
static struct {
    PyObject *asyncio, *current_task, *get_coro, *get_name, *cr_code, *gi_code;
    PyObject *current_task_fn; /* asyncio.current_task, once asyncio is imported */
} S;

static int names_ready(void) {
    if (S.gi_code) return 1;
    return (S.asyncio = PyUnicode_InternFromString("asyncio")) &&
           (S.current_task = PyUnicode_InternFromString("current_task")) &&
           (S.get_coro = PyUnicode_InternFromString("get_coro")) &&
           (S.get_name = PyUnicode_InternFromString("get_name")) &&
           (S.cr_code = PyUnicode_InternFromString("cr_code")) &&
           (S.gi_code = PyUnicode_InternFromString("gi_code"));
}

static PyObject *call0(PyObject *o, PyObject *method) { return PyObject_CallMethodObjArgs(o, method, NULL); }

/* asyncio.current_task(): the task running, None, or NULL with an
 * exception set (RuntimeError: no loop runs). */
static PyObject *current_task(void) {
    if (!S.current_task_fn) {
        PyObject *aio = PyImport_GetModule(S.asyncio);
        if (!aio) return NULL;
        S.current_task_fn = PyObject_GetAttr(aio, S.current_task); /* kept: the module's function */
        Py_DECREF(aio);
        if (!S.current_task_fn) return NULL;
    }
    return PyObject_CallObject(S.current_task_fn, NULL);
}

#if PY_VERSION_HEX >= 0x030B0000
/* The interpreter frame of the coroutine starting in frame (3.11+). */
static const void *iframe_of(const void *frame) {
#if PY_VERSION_HEX >= 0x030C0000
    return H.kind == YP_HOOK_SETPROFILE ? (const void *)((const yp_frameobj312 *)frame)->f_frame : frame;
#else
    return frame;
#endif
}
#endif

/* Where a task type's instances keep their coroutine and name (byte
 * offsets), learned from two tasks that agree; from 3.11 also where a
 * coroutine object keeps its frame (the frame lies inside it). */
#define TASK_TYPES 4
typedef struct {
    PyTypeObject *tp; /* a strong reference */
    Py_ssize_t coro_off, name_off;
    int seen; /* tasks that agreed; learned at 2 */
} task_layout;
static struct {
    task_layout t[TASK_TYPES];
    Py_ssize_t frame_delta; /* 3.11+: frame - coroutine; 0: not learned */
    Py_ssize_t delta_seen;
    int next; /* the slot a new type takes */
} TL;

static PyObject *field(PyObject *o, Py_ssize_t off) { return *(PyObject **)((char *)o + off); }

/* The offset of the one word of o equal to v, or 0 (none, or several). */
static Py_ssize_t word_of(PyObject *o, PyObject *v) {
    Py_ssize_t found = 0, n = Py_TYPE(o)->tp_basicsize;
    for (Py_ssize_t off = sizeof(PyObject); off + (Py_ssize_t)sizeof(void *) <= n; off += sizeof(void *))
        if (field(o, off) == v) {
            if (found) return 0;
            found = off;
        }
    return found;
}

static task_layout *layout_of(PyTypeObject *tp) {
    for (int i = 0; i < TASK_TYPES; i++)
        if (TL.t[i].tp == tp) return &TL.t[i];
    return NULL;
}

/* Learn from a task whose coroutine (starting in frame) and name the
 * calls gave. */
static void learn(PyObject *task, PyObject *coro, PyObject *name, const void *frame) {
    PyTypeObject *tp = Py_TYPE(task);
    if (tp->tp_itemsize) return;
    Py_ssize_t co = word_of(task, coro), no = name ? word_of(task, name) : 0;
    task_layout *l = layout_of(tp);
    if (!l) {
        l = &TL.t[TL.next];
        TL.next = (TL.next + 1) % TASK_TYPES;
        Py_XDECREF(l->tp);
        Py_INCREF(tp);
        *l = (task_layout){tp, co, no, 0};
    }
    if (!co || !no || co != l->coro_off || no != l->name_off) {
        l->coro_off = co, l->name_off = no, l->seen = co && no;
    } else if (l->seen < 2) {
        l->seen++;
    }
#if PY_VERSION_HEX >= 0x030B0000
    Py_ssize_t d = (const char *)iframe_of(frame) - (const char *)coro;
    if (d <= 0 || d > Py_TYPE(coro)->tp_basicsize) return;
    if (d == TL.delta_seen) TL.frame_delta = d;
    TL.delta_seen = d;
#else
    (void)frame;
#endif
}

/* Does coro own frame (the coroutine starting)? -1: unknown yet. */
static int owns(PyObject *coro, const void *frame) {
    if (!coro || !PyCoro_CheckExact(coro)) return -1;
#if PY_VERSION_HEX >= 0x030B0000
    if (!TL.frame_delta) return -1;
    return (const char *)iframe_of(frame) - (const char *)coro == TL.frame_delta;
#else
    return (const void *)((PyCoroObject *)coro)->cr_frame == frame;
#endif
}

/* TASK_NAME's value from a learned type's name word: asyncio's number
 * (3.13 formats "Task-N" only when asked) or the text; -1: neither. */
static int64_t name_word_value(PyObject *name) {
    if (name && PyLong_CheckExact(name)) {
        unsigned long long n = PyLong_AsUnsignedLongLong(name);
        if (n == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        return n < YP_SW_NAME_SYMBOL ? (int64_t)n : 0;
    }
    return name && PyUnicode_CheckExact(name) ? (int64_t)name_value(name) : -1;
}

static void record_first_step(yp_ring *r, uint64_t wall, uint64_t ts, uint64_t nv, PyObject *coro,
                              const void *frame) {
    if (nv) record(r, wall, ts, (uint32_t)nv, yp_switch_kindw(yp_switch(YP_SW_TASK_NAME, nv)), 0);
    uint64_t v = yp_switch(YP_SW_TASK_OBJ, obj_id(coro));
    record(r, wall, ts, (uint32_t)v, yp_switch_kindw(v), 0);
    v = yp_switch(YP_SW_TASK_NEW, ((uint64_t)(uintptr_t)frame >> 3) & YP_CORO_ID_MAX);
    record(r, wall, ts, (uint32_t)v, yp_switch_kindw(v), 0);
}

/* A learned type's task, read in place: 1 done, 0 not its first step, -1
 * ask by calls. */
static int first_step_read(yp_ring *r, uint64_t wall, uint64_t ts, PyObject *task, const void *frame) {
    task_layout *l = layout_of(Py_TYPE(task));
    if (!l || l->seen < 2) return -1;
    PyObject *coro = field(task, l->coro_off);
    int own = owns(coro, frame);
    if (own <= 0) return own;
    int64_t nv = name_word_value(field(task, l->name_off));
    if (nv < 0) return -1;
    record_first_step(r, wall, ts, (uint64_t)nv, coro, frame);
    return 1;
}

/* The task's coroutine and name by calls (and learn its type from them). */
static void first_step_called(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, PyObject *task,
                              const void *frame) {
    PyObject *coro = call0(task, S.get_coro), *code = NULL, *name = NULL;
    if (!coro) goto out;
    code = PyObject_GetAttr(coro, PyCoro_CheckExact(coro) ? S.cr_code : S.gi_code);
    if (!code || !PyCode_Check(code) || (code_id_fast((PyCodeObject *)code) & ~YP_ID_FLAGS) != id)
        goto out; /* the task's coroutine is another: this one is driven by hand */
    name = call0(task, S.get_name);
    record_first_step(r, wall, ts, name_value(name), coro, frame);
    if (PyCoro_CheckExact(coro)) learn(task, coro, name, frame);
out:
    Py_XDECREF(name);
    Py_XDECREF(code);
    Py_XDECREF(coro);
}

static void first_step(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, const void *frame) {
    PyObject *task = names_ready() ? current_task() : NULL;
    if (task && task != Py_None && first_step_read(r, wall, ts, task, frame) < 0)
        first_step_called(r, wall, ts, id, task, frame);
    Py_XDECREF(task);
}

int yp_task_root_now(void) {
#if PY_VERSION_HEX >= 0x030C0000
    const void *f = yp_coro_current_frame();
    return f && !caller_is_coro(f);
#else
    return 0;
#endif
}

int yp_task_maybe_first_step(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, const void *frame) {
    if (!frame || caller_is_coro(frame)) return 0;
    yp_hook_tls.in_slow++;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    first_step(r, wall, ts, id, frame);
    PyErr_Clear(); /* never raised into the application */
    PyErr_Restore(et, ev, tb);
    yp_hook_tls.in_slow--;
    return 1;
}

/* create_task's second argument (its coroutine), borrowed; NULL if none. */
static PyObject *created_coro(const void *frame, int iframe) {
#if PY_VERSION_HEX >= 0x030C0000
    (void)iframe;
    const yp_iframe312 *f = frame ? ((const yp_frameobj312 *)frame)->f_frame : yp_coro_current_frame();
    return f && PyCode_Check(f->f_code) && ((PyCodeObject *)f->f_code)->co_argcount >= 2 ? f->localsplus[1]
                                                                                         : NULL;
#elif PY_VERSION_HEX >= 0x030B0000
    const yp_iframe311 *f = iframe ? frame : ((const yp_frame311 *)frame)->f_frame;
    return f && f->f_code->co_argcount >= 2 ? f->localsplus[1] : NULL;
#else
    (void)iframe;
    const PyFrameObject *f = frame;
    return f && f->f_code->co_argcount >= 2 ? f->f_localsplus[1] : NULL;
#endif
}

void yp_task_created(yp_ring *r, uint64_t wall, const void *frame, int iframe) {
    PyObject *coro = created_coro(frame, iframe); /* read from the frame: no Python runs */
    if (!coro) return;
    uint64_t v = yp_switch(YP_SW_TASK_CREATED, obj_id(coro));
    record(r, wall, ev_ts(wall), (uint32_t)v, yp_switch_kindw(v), 0);
}

#else /* YP_PUBLIC_API_ONLY: coroutines count per resume; no task rows */

int yp_task_maybe_first_step(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, const void *frame) {
    (void)r, (void)wall, (void)ts, (void)id, (void)frame;
    return 0;
}
int yp_task_root_now(void) { return 0; }
void yp_task_created(yp_ring *r, uint64_t wall, const void *frame, int iframe) {
    (void)r, (void)wall, (void)frame, (void)iframe;
}

#endif
