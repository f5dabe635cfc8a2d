/* yp_pymod_int.h — what the extension's C files share. */
#ifndef YP_PYMOD_INT_H
#define YP_PYMOD_INT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include "yprof/containers.h"
#include "yprof/recorder.h"

/* The CPython versions this code was tested with read a few private layouts
 * for speed (the code object's extra slot; 3.11's frame). On any other
 * version only public API is used (YP_PUBLIC_API_ONLY), never a guessed
 * layout: the build says so, and the 3.12 path runs with the public
 * PyUnstable_Code_GetExtra. The build can ask for it on a tested version
 * too (-DYP_PUBLIC_API_ONLY=1), which is how it is tested. */
#if PY_VERSION_HEX < 0x03080000
#error "yprof needs CPython 3.8 or newer"
#endif
#ifndef YP_PUBLIC_API_ONLY
#if PY_VERSION_HEX >= 0x030E0000
#define YP_PUBLIC_API_ONLY 1
#else
#define YP_PUBLIC_API_ONLY 0
#endif
#endif
#if YP_PUBLIC_API_ONLY && PY_VERSION_HEX < 0x030C0000
#error "YP_PUBLIC_API_ONLY needs CPython 3.12 or newer (PyUnstable_Code_GetExtra)"
#endif

/* Where the events come from. */
enum {
    YP_HOOK_SETPROFILE = 0, /* PyEval_SetProfile on every thread */
    YP_HOOK_MONITORING = 1, /* sys.monitoring callbacks (3.12+), registered from Python */
    YP_HOOK_EVAL = 2        /* a PEP 523 frame evaluator (3.9-3.11, builtins=False, opt-in) */
};

/* Install / remove the hook on every thread of the interpreter, and push
 * REC_START (with the caller's current stack as OPEN frames when
 * open_frames: the frames of yprof_record's own code are left out). Need
 * the GIL.
 * YP_HOOK_EVAL falls back to setprofile where it cannot be used (builtins
 * recorded, another evaluator installed, other versions): yp_hook_kind()
 * says which is in use. */
int yp_hook_start(uint32_t clock_kind, double ns_per_tick, int builtins, int kind, int open_frames);
int yp_hook_kind(void);
/* An empty PEP 523 evaluator on (1) or off (0), for the calibration; -1 when
 * not available or while recording. */
int yp_hook_empty_eval(int on);
/* The sys.monitoring callback objects (3.12+): yprof_record registers them
 * as _mon_start, _mon_throw, _mon_return, _mon_unwind, _mon_ccall, _mon_creturn (and
 * the calibration's _mon_noop). -1 with an exception set on failure. */
int yp_moncb_add(PyObject *module);
enum {
    YP_MON_START,
    YP_MON_RESUME,
    YP_MON_THROW,
    YP_MON_RETURN,
    YP_MON_YIELD,
    YP_MON_UNWIND,
    YP_MON_CCALL,
    YP_MON_CRETURN,
    YP_MON_N
};
#if PY_VERSION_HEX >= 0x030C0000
/* What each callback object calls, in the order above; NULL: nothing. */
void yp_moncb_select(const vectorcallfunc fns[YP_MON_N]);
#endif
void yp_hook_set_missing(PyObject *missing);
/* sys.monitoring.DISABLE, returned for code outside the filter (3.12+). */
void yp_hook_set_disable(PyObject *disable);
/* 1 when sys.monitoring.DISABLE was returned since the last call (the
 * caller then restarts the events: a later recording must see them). */
int yp_hook_take_disabled(void);
/* The include / exclude filter of the next recordings: four tuples of str
 * (module names and path globs, included and excluded; all empty: no
 * filter). Not while recording. -1 with an exception set (yp_filter.c). */
int yp_filter_set(PyObject *inc_mods, PyObject *inc_globs, PyObject *exc_mods, PyObject *exc_globs);
void yp_hook_stop(void);
/* For threading.setprofile: install the hook in the calling thread. */
void yp_hook_bootstrap_thread(void);
int yp_hook_running(void);
/* Timestamp in the recording's clock. */
/* Mark the C functions of this module as not recorded. */
void yp_hook_ignore_cfunc(const void *method_def);
/* Python code under this path prefix (the yprof_record package) is not
 * recorded. */
void yp_hook_set_ignore_prefix(const char *prefix);
/* Bytes held by the hook's own tables. */
uint64_t yp_hook_bytes(void);
/* Name every thread threading knows, from threading's own tables: dict
 * reads only, so no code runs (and nothing is recorded). */
void yp_name_all_threads(void);
/* A recording child's SIGTERM (yp_sigterm.c). */
PyObject *yp_py_sigterm_catch(PyObject *self, PyObject *unused);
PyObject *yp_py_sigterm_wait(PyObject *self, PyObject *unused);
PyObject *yp_py_sigterm_die(PyObject *self, PyObject *unused);

/* _start_quiet_thread(fn): run fn() in a new thread that is never
 * recorded (yp_quiet.c). */
PyObject *yp_py_start_quiet_thread(PyObject *self, PyObject *fn);
PyObject *yp_py_set_tag_var(PyObject *self, PyObject *var); /* yp_hook_tag.c */
PyObject *yp_py_set_tag(PyObject *self, PyObject *value);
/* _trace_greenlets(): this thread's greenlet switches are traced (yp_hook_glet.c). */
PyObject *yp_py_trace_greenlets(PyObject *self, PyObject *unused);
/* Add GreenletTracer to the module; -1 with an exception set. */
int yp_glet_add(PyObject *m);
/* Forget everything in a forked child. */
void yp_hook_after_fork_child(void);
/* Install (1) or remove (0) an empty hook in this thread, to measure what
 * any hook costs the interpreter. -1 when this thread's hook is the
 * recording's; removing it: 1 when something had replaced it. */
int yp_hook_empty(int on);
/* Remove this thread's profile function, if any: 1 when there was one. */
int yp_hook_unhook_self(void);

#endif
