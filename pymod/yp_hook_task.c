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
 * This costs a Python call once per task; the check of the caller is a few
 * loads on every coroutine's first start.
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

static void first_step(yp_ring *r, uint64_t wall, uint64_t ts, uint32_t id, const void *frame) {
    PyObject *task = names_ready() ? current_task() : NULL, *coro = NULL, *code = NULL, *name = NULL;
    if (!task || task == Py_None) goto out;
    coro = call0(task, S.get_coro);
    if (!coro) goto out;
    code = PyObject_GetAttr(coro, PyCoro_CheckExact(coro) ? S.cr_code : S.gi_code);
    if (!code || !PyCode_Check(code) || (code_id_fast((PyCodeObject *)code) & ~YP_ID_FLAGS) != id)
        goto out; /* the task's coroutine is another: this one is driven by hand */
    name = call0(task, S.get_name);
    uint64_t nv = name_value(name);
    if (nv) record(r, wall, ts, (uint32_t)nv, yp_switch_kindw(yp_switch(YP_SW_TASK_NAME, nv)), 0);
    uint64_t v = yp_switch(YP_SW_TASK_OBJ, obj_id(coro));
    record(r, wall, ts, (uint32_t)v, yp_switch_kindw(v), 0);
    v = yp_switch(YP_SW_TASK_NEW, ((uint64_t)(uintptr_t)frame >> 3) & YP_CORO_ID_MAX);
    record(r, wall, ts, (uint32_t)v, yp_switch_kindw(v), 0);
out:
    Py_XDECREF(name);
    Py_XDECREF(code);
    Py_XDECREF(coro);
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
