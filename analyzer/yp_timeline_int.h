/*
 * yp_timeline_int.h — the walk the timeline exports share (Chrome JSON,
 * Perfetto): the trace re-read, streaming, through the stack walker, and
 * each call that yp_timeline_opts admits handed over in order (yp_timeline.c).
 *
 * A call is admitted when it overlaps the window [since, until) (it is then
 * cut to it), is in the thread asked for, and lasts, cut, at least the
 * minimum. Per thread the calls come in time order: begin(call) before
 * anything inside it, end(call) after. begin is deferred until the call
 * (or a call inside it, which makes it long enough too) is known to be
 * admitted; so a walk needs memory for the open frames only.
 */
#ifndef YP_TIMELINE_INT_H
#define YP_TIMELINE_INT_H

#include <stdio.h>

#include "yp_stack_int.h"
#include "yprof/analyze.h"
#include "yprof/containers.h"

/* One thread's walk: its open frames' start times (cut to the window) and
 * whether their begin was handed over. */
typedef struct yp_tl_thread {
    yp_stack st;
    uint32_t tid;
    uint64_t *starts;
    uint8_t *begun;
    size_t cap;
    uint32_t n_begun; /* frames begun, outermost first */
} yp_tl_thread;

typedef struct yp_tl yp_tl;

/* What an export does with the calls admitted; ts in ticks from the
 * trace's start. */
typedef struct yp_tl_ops {
    void (*begin)(yp_tl *t, uint32_t func_id, uint64_t ts);
    void (*end)(yp_tl *t, uint32_t func_id, uint64_t start, uint64_t end);
} yp_tl_ops;

struct yp_tl {
    const yp_stats *s;
    const yp_timeline_opts *o;
    const yp_tl_ops *ops;
    void *user;                 /* the export's */
    double ns_per_tick;         /* of the trace's timestamps */
    uint64_t t0, start_wall_ns; /* the trace's start, in ticks and as wall time */
    uint64_t lo, hi, min_ticks; /* the window and the shortest call, in ticks from t0 */
    yp_map funcs;               /* func_id -> index in s->funcs */
    yp_map tmap;                /* thread id -> index in threads */
    yp_tl_thread *threads;
    size_t n_threads, threads_cap;
    yp_tl_thread *cur; /* the thread being walked */
    int nomem;
};

/* t for the trace at trace_path (its header read): s, o (NULL: all), ops,
 * user set; the rest filled. */
yp_status yp_tl_init(yp_tl *t, const char *trace_path, char *errbuf, size_t errlen);
/* One pass over the trace. */
yp_status yp_tl_pass(yp_tl *t, const char *trace_path, char *errbuf, size_t errlen);
void yp_tl_free(yp_tl *t);

/* The name of func_id ("?" when the trace did not name it). */
const char *yp_tl_name(const yp_tl *t, uint32_t func_id);

/* "the timeline would take [at least] ... : narrow it with ..." into errbuf. */
void yp_tl_too_big(const yp_tl *t, uint64_t bytes, uint64_t calls, int at_least, char *errbuf, size_t errlen);

/* Bytes the export needs at the least and at the most, from the
 * statistics' calls (of the thread asked for) at per_call + the name's
 * length times name_factor bytes each, per function per_func + its
 * name. The least is 0 when a window or a minimum duration leaves calls
 * out (the statistics cannot say how many). */
void yp_tl_bounds(const yp_tl *t, uint64_t min_per_call, uint64_t max_per_call, uint64_t name_factor,
                  uint64_t *least, uint64_t *most, uint64_t *calls);

#endif
