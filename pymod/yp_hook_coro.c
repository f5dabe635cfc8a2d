/*
 * yp_hook_coro.c — coroutines: one call per coroutine object (docs/api.md,
 * "Coroutines").
 *
 * A coroutine's code (async def, or a generator marked by types.coroutine)
 * carries YP_CORO_BIT on its stored id, so its events leave every fast path
 * for the functions here. Each event source says what happened to the
 * frame: a first start is a CALL and the final return a RETURN (UNWIND on
 * an exception), as for any function; a resume after an await or yield is
 * a RESUME and a suspension a SUSPEND, each after a CORO record naming the
 * coroutine, so the analyzer keeps the frame (parked) while it is
 * suspended (docs/format.md, "Coroutines"). The name is the address of the
 * coroutine's frame (>> 3): it lives as long as the coroutine.
 *
 * How the sources tell a start from a resume and a return from a
 * suspension: sys.monitoring says it (PY_START / PY_RESUME and PY_THROW,
 * PY_RETURN / PY_YIELD); the setprofile hook and the frame evaluator look
 * at the frame: up to 3.10 its last instruction (-1 before the start) and
 * its suspended mark (3.8-3.9 f_stacktop, 3.10 f_state), from 3.11 the
 * instruction it stands at (a RESUME with oparg 0 is the start; a return
 * instruction the end, a yield or the RESUME after it a suspension). A
 * build for a CPython not tested (YP_PUBLIC_API_ONLY) counts coroutines as
 * cProfile does, per resume.
 */
#include "yp_hook_int.h"

#if !YP_PUBLIC_API_ONLY && PY_VERSION_HEX >= 0x030B0000
#include <opcode.h>
#endif

int yp_code_is_coro(PyCodeObject *co) {
#if YP_PUBLIC_API_ONLY
    (void)co;
    return 0;
#else
    return (co->co_flags & (CO_COROUTINE | CO_ITERABLE_COROUTINE)) != 0;
#endif
}

int yp_coro_push(yp_ring *r, uint64_t wall, uint32_t id, uint8_t kind, const void *frame) {
    uint64_t ts = ev_ts(wall);
    int enters = kind == YP_EV_CALL || kind == YP_EV_RESUME;
    if (H.tags_used && enters) yp_tag_coro_enter(r, wall, ts); /* its frame opens under its context's tag */
    if (kind == YP_EV_RESUME || kind == YP_EV_SUSPEND) {
        uint64_t co = ((uint64_t)(uintptr_t)frame >> 3) & YP_CORO_ID_MAX;
        record(r, wall, ts, (uint32_t)co, yp_coro_kindw(co), 1);
    }
    /* a coroutine's event is typical of a coroutine's (the hook-time
     * sample may be taken on it): were it not, a run of them would each
     * retry the sample on the next, all through the ring's slow path; a
     * task's first step (Python called) is not */
    int typical = kind != YP_EV_CALL || !yp_task_maybe_first_step(r, wall, ts, id, frame);
    record(r, wall, ts, id, kind, typical);
    if (H.tags_used && !enters) yp_tag_coro_leave(r, wall, ts);
    return 0;
}

#if !YP_PUBLIC_API_ONLY

#if PY_VERSION_HEX >= 0x030B0000
/* The code unit a frame stands at: opcode in the low byte, oparg high. */
static inline unsigned unit_at(const void *p) {
    const uint8_t *u = p;
    return u[0] | (unsigned)u[1] << 8;
}
static inline int is_resume(unsigned op) {
#if PY_VERSION_HEX >= 0x030D0000
    return op == RESUME || op == RESUME_CHECK || op == INSTRUMENTED_RESUME;
#elif PY_VERSION_HEX >= 0x030C0000
    return op == RESUME || op == INSTRUMENTED_RESUME;
#else
    return op == RESUME || op == RESUME_QUICK;
#endif
}
static inline int is_return(unsigned op) {
#if PY_VERSION_HEX >= 0x030C0000
    return op == RETURN_VALUE || op == RETURN_CONST || op == INSTRUMENTED_RETURN_VALUE ||
           op == INSTRUMENTED_RETURN_CONST;
#else
    return op == RETURN_VALUE;
#endif
}
/* Its first start: the function's RESUME (oparg 0; 3.13 adds a depth bit). */
static inline int unit_starts(unsigned u) { return is_resume(u & 0xFF) && ((u >> 8) & 3) == 0; }
#endif

#if PY_VERSION_HEX >= 0x030C0000
/* setprofile on 3.12+ (built on sys.monitoring): the unit at f_lasti. */
static unsigned frame_unit(PyFrameObject *f) {
    PyCodeObject *co = frame_code(f);
    int lasti = PyFrame_GetLasti(f);
    if (lasti < 0) return 0;
    return unit_at((const uint8_t *)co->co_code_adaptive + lasti);
}
#endif

/* setprofile: is this CALL of a coroutine's frame its first start? */
static int sp_starts(PyFrameObject *f) {
#if PY_VERSION_HEX >= 0x030C0000
    return unit_starts(frame_unit(f));
#elif PY_VERSION_HEX >= 0x030B0000
    return unit_starts(unit_at(((yp_frame311 *)f)->f_frame->prev_instr));
#else
    return f->f_lasti < 0;
#endif
}

/* setprofile: is this RETURN (with a value) a suspension? */
static int sp_suspends(PyFrameObject *f) {
#if PY_VERSION_HEX >= 0x030C0000
    return !is_return(frame_unit(f) & 0xFF);
#elif PY_VERSION_HEX >= 0x030B0000
    return !is_return(unit_at(((yp_frame311 *)f)->f_frame->prev_instr) & 0xFF);
#elif PY_VERSION_HEX >= 0x030A0000
    return f->f_state == FRAME_SUSPENDED;
#else
    return f->f_stacktop != NULL;
#endif
}

/* setprofile: the coroutine's name (its frame, for as long as it lives). */
static const void *sp_name(PyFrameObject *f) {
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    return ((yp_frame311 *)f)->f_frame; /* inside the coroutine object */
#else
    return f;
#endif
}

int yp_coro_profile(yp_ring *r, uint64_t wall, PyFrameObject *f, int what, PyObject *arg, uint32_t id) {
    uint8_t kind;
    if (what == PyTrace_CALL)
        kind = sp_starts(f) ? YP_EV_CALL : YP_EV_RESUME;
    else if (!arg)
        kind = YP_EV_UNWIND;
    else
        kind = sp_suspends(f) ? YP_EV_SUSPEND : YP_EV_RETURN;
    return yp_coro_push(r, wall, id, kind, sp_name(f));
}

#if PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030C0000
/* The frame evaluator (3.9-3.11): f is the frame being evaluated. */
int yp_coro_eval_starts(void *frame) {
#if PY_VERSION_HEX >= 0x030B0000
    /* a coroutine's frame waits at RETURN_GENERATOR until its first send */
    return (unit_at(((yp_iframe311 *)frame)->prev_instr) & 0xFF) == RETURN_GENERATOR;
#else
    return ((PyFrameObject *)frame)->f_lasti < 0;
#endif
}

int yp_coro_eval_suspended(void *frame) {
#if PY_VERSION_HEX >= 0x030B0000
    return !is_return(unit_at(((yp_iframe311 *)frame)->prev_instr) & 0xFF);
#elif PY_VERSION_HEX >= 0x030A0000
    return ((PyFrameObject *)frame)->f_state == FRAME_SUSPENDED;
#else
    return ((PyFrameObject *)frame)->f_stacktop != NULL;
#endif
}
#endif

#if PY_VERSION_HEX >= 0x030C0000
/* sys.monitoring: the frame running now (the coroutine's, inside it). */
const void *yp_coro_current_frame(void) {
    PyThreadState *ts = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    return ts->current_frame;
#else
    return ts->cframe ? ts->cframe->current_frame : NULL;
#endif
}
#endif

#else /* YP_PUBLIC_API_ONLY: never called (no code is marked) */

int yp_coro_profile(yp_ring *r, uint64_t wall, PyFrameObject *f, int what, PyObject *arg, uint32_t id) {
    return yp_coro_push(r, wall, id,
                        what == PyTrace_CALL ? YP_EV_CALL
                        : arg ? YP_EV_RETURN
                              : YP_EV_UNWIND,
                        f);
}
const void *yp_coro_current_frame(void) { return NULL; }

#endif
