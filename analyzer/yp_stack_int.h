/*
 * yp_stack_int.h — the stack walker: the one place that turns a thread's
 * event stream into frame opens and closes (docs/format.md, "Event
 * semantics"). The aggregator (statistics, live and offline, and so every
 * export made from them) and the Chrome timeline walk events through it;
 * what they do with a frame is theirs (yp_stack_ops).
 *
 * The rules, per thread:
 *   - timestamps never go back: an event earlier than the last is taken at
 *     the last one's time;
 *   - CALL and C_CALL open a counted frame; OPEN opens a frame that was
 *     already running when recording began (its time counts, its call not);
 *   - RETURN, C_RETURN and UNWIND close the innermost open frame of the same
 *     function and every frame inside it; with none open (recording began
 *     inside that function) the event is counted as unmatched and ignored;
 *   - REC_STOP, THREAD_END and DROPPED close every open frame at their time
 *     and end the recording interval; so does a break (yp_stack_break: a
 *     chunk's drop count, a hole in the chunk sequence), at the last event;
 *   - a coroutine (docs/format.md, "Coroutines"): CORO names the coroutine
 *     of the SUSPEND or RESUME that follows. SUSPEND parks the innermost
 *     open frame of its function (frames inside it close) under that name:
 *     it leaves the stack but is not closed; RESUME puts the frame parked
 *     under its name back on top of the stack. A RESUME with no frame
 *     parked under its name (recording began while it was suspended, or
 *     the name was lost) opens a frame like OPEN; a SUSPEND or RESUME with
 *     no CORO before it is a RETURN or an OPEN. Parked frames close when
 *     the interval ends. A user without `park` sees SUSPEND as RETURN and
 *     RESUME as CALL (a timeline's slices are the running stretches);
 *   - greenlets (docs/format.md, "Greenlets"): each greenlet's frames are
 *     a stack of their own. A SWITCH with YP_SWITCH_FROM names the greenlet
 *     the thread leaves, the SWITCH after it the one it enters: the open
 *     frames leave with the first (kept, not closed: `glet_out`), and the
 *     second's come back (`glet_in`), or a new greenlet starts with none. A
 *     greenlet that leaves no frame open is forgotten (it ended, or its
 *     identity may be reused). Without a name for the one left the frames
 *     close. Kept frames close when the interval ends. A user without
 *     `glet_out` sees its frames close at the switch out and open again,
 *     uncounted, at the switch back in (a timeline's running stretches);
 *   - TAG sets the thread's tag: a frame belongs to the tag in effect when
 *     it opened (the user reads s->tag in `open`); an interval's end sets
 *     it back to none;
 *   - any other kind (THREAD_START, REC_START, a kind this reader does not
 *     know) changes no frame; the first event after an interval ended opens
 *     the next one.
 *
 * The per-event step is inline so that a user's operations (static
 * functions in its own file, passed as a constant table) are inlined into
 * it: the walk costs no indirect call.
 */
#ifndef YP_STACK_INT_H
#define YP_STACK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "yp_ktab_int.h"
#include "yprof/containers.h"
#include "yprof/format.h"

/* A greenlet's open frames while it is switched out (yp_stack.c). */
typedef struct yp_glet {
    uint64_t key;    /* the greenlet + 1 */
    uint64_t since;  /* switched out then */
    uint32_t *ids;   /* its frames' function ids, outermost first */
    size_t cap;      /* of ids */
    uint32_t depth;  /* frames */
    uint32_t closed; /* they were closed at the switch out (no glet_out) */
    void *user;      /* what the user keeps for them (glet_out) */
    size_t user_cap;
} yp_glet;

/* One thread's open frames and timing. */
typedef struct yp_stack {
    uint32_t *ids; /* function ids of the open frames, outermost first */
    size_t cap;
    uint32_t depth;
    int seen;        /* an event has been walked */
    int in_interval; /* between an interval's first event and its end */
    int ended;       /* THREAD_END walked */
    uint64_t first_ts, last_ts, ival_start;
    uint64_t wall;      /* ticks of the intervals ended so far */
    uint64_t events;    /* events walked */
    uint64_t dropped;   /* events lost: DROPPED records and breaks */
    uint64_t unmatched; /* returns with no open frame of their function */
    uint32_t tag;       /* the tag in effect (the last TAG's; 0 after an interval's end) */
    uint64_t coro;      /* the last CORO record's coroutine ... */
    int has_coro;       /* ... not yet used by a SUSPEND or RESUME */
    yp_ktab glets;      /* switched-out greenlets' stacks (yp_glet) */
    uint64_t glet;      /* the greenlet running (0: not named yet) */
    uint64_t glet_from; /* the last SWITCH FROM's greenlet ... */
    int has_from;       /* ... not yet used by a SWITCH */
    int ending;         /* the interval is ending: a frame closing now did not return */
} yp_stack;

/* What the user of a walk does with a frame. */
typedef struct yp_stack_ops {
    /* A frame of func_id opens at ts, at depth s->depth (0-based) once
     * opened; counted is 0 for an OPEN frame. 0, or -1 when out of memory
     * (the frame is not opened). */
    int (*open)(void *ctx, uint32_t func_id, uint64_t ts, int counted);
    /* The innermost open frame closes at ts. */
    void (*close)(void *ctx, uint64_t ts);
    /* May be NULL: a call of func_id is coming soon, whose caller is the
     * frame now at depth caller_depth (1-based); for prefetching. */
    void (*ahead)(void *ctx, uint32_t func_id, uint32_t caller_depth);
    /* May be NULL (then SUSPEND is a RETURN, RESUME a CALL): the innermost
     * open frame is parked at ts under coroutine co, replacing one parked
     * there before; 0, or -1 when out of memory (the frame is closed). */
    int (*park)(void *ctx, uint64_t co, uint64_t ts);
    /* The frame of func_id parked under co goes back on top at ts: 1, or 0
     * when there is none, -1 when out of memory. */
    int (*unpark)(void *ctx, uint64_t co, uint32_t func_id, uint64_t ts);
    /* Every parked frame closes at ts (the interval ends). */
    void (*end_parked)(void *ctx, uint64_t ts);
    /* May be NULL (see the rules): the s->depth open frames leave with the
     * greenlet switched out at ts; the user hands over what it keeps for
     * them (one malloc'd block, or NULL). 0, or -1 when out of memory (they
     * close). */
    int (*glet_out)(void *ctx, uint64_t ts, void **user, size_t *user_cap);
    /* A greenlet's frames, switched out at g->since, are back at ts as the
     * stack's s->depth open frames; the user takes back what it kept. */
    void (*glet_in)(void *ctx, const yp_glet *g, uint64_t ts);
    /* May be NULL: a SWITCH record's sub-kind (yp_switch_sub) and value,
     * before the walker acts on it (greenlets and tasks: docs/format.md). */
    void (*task)(void *ctx, unsigned sub, uint64_t val, uint64_t ts);
} yp_stack_ops;

/* How an event moves the stack depth (unwinding aside), by kind. */
extern const int8_t yp_stack_step[16];

/* Close every open frame at ts. */
static inline void yp_stack_close_all(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t ts) {
    for (; s->depth; s->depth--) ops->close(ctx, ts);
}

/* A SWITCH record (yp_stack.c): greenlets switch stacks; every sub-kind
 * goes to ops->task first. -1 when a frame could not be opened again (out
 * of memory). */
int yp_stack_sw(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t v, uint64_t ts);
/* Every switched-out greenlet's frames close at ts (yp_stack.c). */
void yp_stack_end_glets(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t ts);

/* The recording interval ends at ts: every frame closes. */
static inline void yp_stack_end(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t ts) {
    s->ending = 1; /* frames close here without returning */
    yp_stack_close_all(s, ops, ctx, ts);
    if (s->glets.n || s->glet) yp_stack_end_glets(s, ops, ctx, ts);
    if (ops->end_parked) ops->end_parked(ctx, ts);
    s->ending = 0;
    s->has_coro = 0;
    s->tag = 0;
    if (s->in_interval) s->wall += ts > s->ival_start ? ts - s->ival_start : 0;
    s->in_interval = 0;
}

/* Events lost before the next one (a chunk's drop count, a hole in the
 * chunk sequence): the interval ends at the last event. */
static inline void yp_stack_break(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint64_t lost) {
    yp_stack_end(s, ops, ctx, s->last_ts);
    s->dropped += lost;
}

/* Open a frame; -1 when out of memory (not opened). */
static inline int yp_stack_open(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint32_t id, uint64_t ts,
                                int counted) {
    if (s->depth == s->cap && yp_grow((void **)&s->ids, &s->cap, (size_t)s->depth + 1, sizeof *s->ids, 64))
        return -1;
    if (ops->open(ctx, id, ts, counted)) return -1;
    s->ids[s->depth++] = id;
    return 0;
}

/* A return of func_id at ts. */
static inline void yp_stack_return(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint32_t id,
                                   uint64_t ts) {
    uint32_t d = s->depth;
    while (d && s->ids[d - 1] != id) d--;
    if (!d) { /* no matching call: recording began inside it */
        s->unmatched++;
        return;
    }
    for (; s->depth >= d; s->depth--) ops->close(ctx, ts);
}

/* A coroutine's frame suspends: parked under the coroutine named before it
 * (a RETURN without a name, or without `park`). */
static inline void yp_stack_suspend(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint32_t id,
                                    uint64_t ts) {
    int named = s->has_coro;
    s->has_coro = 0;
    if (!named || !ops->park) {
        yp_stack_return(s, ops, ctx, id, ts);
        return;
    }
    uint32_t d = s->depth;
    while (d && s->ids[d - 1] != id) d--;
    if (!d) {
        s->unmatched++;
        return;
    }
    for (; s->depth > d; s->depth--) ops->close(ctx, ts);
    if (ops->park(ctx, s->coro, ts)) ops->close(ctx, ts);
    s->depth--;
}

/* A coroutine's frame resumes: its parked frame back on top (a CALL
 * without `park`; an OPEN when none is parked under the name). */
static inline int yp_stack_resume(yp_stack *s, const yp_stack_ops *ops, void *ctx, uint32_t id, uint64_t ts) {
    int named = s->has_coro;
    s->has_coro = 0;
    if (!ops->park) return yp_stack_open(s, ops, ctx, id, ts, 1);
    if (!named) return yp_stack_open(s, ops, ctx, id, ts, 0);
    if (s->depth == s->cap && yp_grow((void **)&s->ids, &s->cap, (size_t)s->depth + 1, sizeof *s->ids, 64))
        return -1;
    int found = ops->unpark(ctx, s->coro, id, ts);
    if (found < 0) return -1;
    if (!found) return yp_stack_open(s, ops, ctx, id, ts, 0);
    s->ids[s->depth++] = id;
    return 0;
}

/* One event; -1 when a frame could not be opened (out of memory). */
static inline int yp_stack_event(yp_stack *s, const yp_stack_ops *ops, void *ctx, const yp_event *e) {
    uint64_t ts = e->ts < s->last_ts ? s->last_ts : e->ts;
    if (!s->seen) {
        s->seen = 1;
        s->first_ts = ts;
    }
    s->last_ts = ts;
    if (!s->in_interval) {
        s->in_interval = 1;
        s->ival_start = ts;
    }
    switch (e->kind) {
    case YP_EV_CALL:
    case YP_EV_C_CALL: return yp_stack_open(s, ops, ctx, e->func_id, ts, 1);
    case YP_EV_OPEN: return yp_stack_open(s, ops, ctx, e->func_id, ts, 0);
    case YP_EV_RETURN:
    case YP_EV_C_RETURN:
    case YP_EV_UNWIND: yp_stack_return(s, ops, ctx, e->func_id, ts); return 0;
    case YP_EV_CORO:
        s->coro = yp_event_coro(e);
        s->has_coro = 1;
        return 0;
    case YP_EV_SUSPEND: yp_stack_suspend(s, ops, ctx, e->func_id, ts); return 0;
    case YP_EV_TAG: s->tag = e->func_id; return 0;
    case YP_EV_SWITCH: return yp_stack_sw(s, ops, ctx, yp_event_coro(e), ts);
    case YP_EV_RESUME: return yp_stack_resume(s, ops, ctx, e->func_id, ts);
    case YP_EV_REC_STOP: yp_stack_end(s, ops, ctx, ts); return 0;
    case YP_EV_THREAD_END:
        yp_stack_end(s, ops, ctx, ts);
        s->ended = 1;
        return 0;
    case YP_EV_DROPPED:
        yp_stack_end(s, ops, ctx, ts);
        s->dropped += e->func_id;
        return 0;
    default: return 0; /* THREAD_START, REC_START, a kind not known: no frame */
    }
}

/* With thousands of functions most of a user's per-call lookups miss the
 * cache: with `ahead` set, a call LOOKAHEAD events ahead is announced when
 * its caller is a frame open now (dd: the depth change of the events in
 * between; a wrong guess, an unwind or a dip below and back, only wastes
 * the prefetch). */
#define YP_STACK_LOOKAHEAD 16

/* Walk n events of one thread. 0, or -1 when some frame could not be
 * opened (out of memory; the walk went on). */
static inline int yp_stack_walk(yp_stack *s, const yp_stack_ops *ops, void *ctx, const yp_event *ev, size_t n,
                                int lookahead) {
    int rc = 0;
    int64_t dd = 0; /* depth change over events [i, i + LOOKAHEAD) */
    for (size_t j = 0; lookahead && j < n && j < YP_STACK_LOOKAHEAD; j++)
        dd += yp_stack_step[ev[j].kind & 15];
    for (size_t i = 0; i < n; i++) {
        if (lookahead && i + YP_STACK_LOOKAHEAD < n) {
            const yp_event *e = &ev[i + YP_STACK_LOOKAHEAD];
            int step = yp_stack_step[e->kind & 15];
            int64_t d = (int64_t)s->depth + dd;
            if (step > 0 && dd <= 0 && d > 0) ops->ahead(ctx, e->func_id, (uint32_t)d);
            dd += step;
        }
        if (lookahead) dd -= yp_stack_step[ev[i].kind & 15];
        if (yp_stack_event(s, ops, ctx, &ev[i])) rc = -1;
    }
    s->events += n;
    return rc;
}

/* A cleared walk: counters and time from now on, the open frames kept. */
void yp_stack_clear(yp_stack *s);
/* Wall ticks recorded so far, the interval under way counted to the last event. */
uint64_t yp_stack_wall(const yp_stack *s);
size_t yp_stack_bytes(const yp_stack *s);
void yp_stack_free(yp_stack *s);

#endif
