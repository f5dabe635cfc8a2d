/*
 * yp_hook_eval.c — events from a PEP 523 frame evaluator (3.9-3.11, Python
 * functions only, opt-in: YPROF_HOOK=frame-eval).
 *
 * With builtins=False the setprofile hook is mostly the interpreter's cost of
 * having a profile hook at all: every frame leaves the fast paths. A frame
 * evaluation function wrapping the default one sees exactly the Python
 * frames setprofile reports as calls and returns (generator resumes and
 * yields included) and leaves the interpreter on its fast paths. It is
 * interpreter-wide, so every thread is covered at once. The id is taken
 * once, at entry; the frame is not touched after it has been evaluated. On
 * 3.11 any evaluator stops the interpreter from inlining Python calls, so
 * deep recursion that plain 3.11 runs could overflow the C stack: opt-in.
 */
#include "yp_hook_int.h"

#if PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030C0000
#if PY_VERSION_HEX >= 0x030B0000
typedef struct _PyInterpreterFrame yp_evalframe;
static inline PyCodeObject *evalframe_code(yp_evalframe *f) { return ((yp_iframe311 *)f)->f_code; }
static inline PyObject *evalframe_globals(yp_evalframe *f) { return ((yp_iframe311 *)f)->f_globals; }
static inline PyFrameObject *evalframe_obj(yp_evalframe *f) {
    (void)f;
    return NULL; /* 3.11 names methods by co_qualname: no frame object needed */
}
/* 3.11 evaluates a generator function's new frame once just to run
 * RETURN_GENERATOR (it makes the generator and returns it); setprofile
 * reports no call for that. Later resumes run on a generator-owned frame. */
static inline int evalframe_makes_generator(yp_evalframe *f, PyCodeObject *co) {
    return (co->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)) &&
           ((yp_iframe311 *)f)->owner == 0;
}
#else
typedef PyFrameObject yp_evalframe;
static inline PyCodeObject *evalframe_code(yp_evalframe *f) { return f->f_code; }
static inline PyObject *evalframe_globals(yp_evalframe *f) { return f->f_globals; }
static inline PyFrameObject *evalframe_obj(yp_evalframe *f) { return f; }
static inline int evalframe_makes_generator(yp_evalframe *f, PyCodeObject *co) {
    (void)f;
    (void)co;
    return 0; /* before 3.11 a generator function's call makes the generator without evaluating */
}
#endif

/* CPython's own evaluator. Only it is wrapped: another tool's evaluator (a
 * debugger's, a JIT's) is left alone and yprof uses setprofile instead, so
 * neither removes or reinstalls the other's. */
static const _PyFrameEvalFunction g_prev_eval = _PyEval_EvalFrameDefault;

static inline void eval_push(uint32_t id, uint8_t kind, int typical) {
    uint64_t wall = wall_ticks();
    yp_ring *r = get_ring(wall);
    if (r) (void)record(r, wall, ev_ts(wall), id, kind, typical);
}

/* A coroutine's frame: started or resumed, then returned or suspended. */
__attribute__((noinline)) static PyObject *eval_coro(PyThreadState *ts, yp_evalframe *f, int throwflag,
                                                     uint32_t id) {
    uint64_t wall = wall_ticks();
    yp_ring *r = get_ring(wall);
    if (r) yp_coro_push(r, wall, id, yp_coro_eval_starts(f) ? YP_EV_CALL : YP_EV_RESUME, f);
    PyObject *res = g_prev_eval(ts, f, throwflag);
    if (__builtin_expect(H.running && H.kind == YP_HOOK_EVAL, 1)) {
        wall = wall_ticks();
        r = get_ring(wall);
        uint8_t kind = !res ? YP_EV_UNWIND : yp_coro_eval_suspended(f) ? YP_EV_SUSPEND : YP_EV_RETURN;
        if (r) yp_coro_push(r, wall, id, kind, f);
    }
    return res;
}

static PyObject *yp_eval(PyThreadState *ts, yp_evalframe *f, int throwflag) {
    if (__builtin_expect(!H.running || yp_hook_tls.in_slow, 0)) return g_prev_eval(ts, f, throwflag);
    PyCodeObject *co = evalframe_code(f);
    uint32_t id = code_id_fast(co);
    int typical = id != 0;
    if (!typical) id = yp_code_id_slow(evalframe_obj(f), co, evalframe_globals(f));
    if (id == 0 || id == IGNORED_ID || evalframe_makes_generator(f, co)) return g_prev_eval(ts, f, throwflag);
    if (id & YP_CORO_BIT) return eval_coro(ts, f, throwflag, id & ~YP_CORO_BIT);
    if (id & YP_WATCH_BIT) {
        id &= ~YP_WATCH_BIT;
        uint64_t wall = wall_ticks();
        yp_ring *r = get_ring(wall);
        if (r) yp_task_created(r, wall, f, PY_VERSION_HEX >= 0x030B0000);
        typical = 0;
    }
    eval_push(id, YP_EV_CALL, typical);
    PyObject *res = g_prev_eval(ts, f, throwflag);
    /* after a stop() (and maybe a start() onto another hook, which reports
     * this frame's return itself) while the frame ran: nothing to push */
    if (__builtin_expect(H.running && H.kind == YP_HOOK_EVAL, 1))
        eval_push(id, res ? YP_EV_RETURN : YP_EV_UNWIND, 1);
    return res;
}

static PyObject *eval_empty(PyThreadState *ts, yp_evalframe *f, int throwflag) {
    return g_prev_eval(ts, f, throwflag);
}

/* Install `fn` (NULL: CPython's default) if the slot holds the default or
 * one of ours; 0 on success, -1 when another tool's evaluator is there. */
static int eval_set(_PyFrameEvalFunction fn) {
    PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    _PyFrameEvalFunction cur = _PyInterpreterState_GetEvalFrameFunc(interp);
    if (cur != g_prev_eval && cur != yp_eval && cur != eval_empty) return -1;
    _PyInterpreterState_SetEvalFrameFunc(interp, fn ? fn : g_prev_eval);
    return 0;
}
int yp_eval_install(int on) { return eval_set(on ? yp_eval : NULL); }

int yp_hook_empty_eval(int on) {
    if (H.running) return -1;
    return eval_set(on ? eval_empty : NULL);
}

#else

int yp_eval_install(int on) {
    (void)on;
    return -1;
}

int yp_hook_empty_eval(int on) {
    (void)on;
    return -1;
}

#endif
