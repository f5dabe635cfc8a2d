/* yp_agg_int.h — the aggregator's private structures (see yp_agg.c). */
#ifndef YP_AGG_INT_H
#define YP_AGG_INT_H

#define YP_AGG_NONE UINT32_MAX

#include "yp_ktab_int.h"
#include "yp_stack_int.h"
#include "yprof/containers.h"
#include "yprof/analyze.h"

/* Times are in ticks here; snapshots convert to seconds. */
typedef struct yp_fent {
    uint32_t func_id, active;
    uint64_t ncalls, rec, self, total;
    uint64_t awaited; /* of total, the time its coroutine frames were parked */
} yp_fent;

/* A function's calls under one tag (TAG events). */
typedef struct yp_gent {
    uint32_t func_id, tag, active, pad;
    uint64_t ncalls, rec, self, total, awaited;
    uint64_t root; /* of total, its frames whose caller was under another tag (or none) */
} yp_gent;

typedef struct yp_eent {
    uint32_t caller, callee, active, pad;
    uint64_t ncalls, rec, self, total;
} yp_eent;

typedef struct yp_nent {
    uint32_t parent, func_id, depth, c_valid;
    uint64_t ncalls, self, total;
    uint32_t c_func, c_fidx, c_eidx, c_node; /* last callee (see frame_open) */
    uint32_t fidx, eidx;                     /* this node's function and edge entries */
} yp_nent;

typedef struct yp_frame {
    uint32_t func_id, fidx, eidx, nidx;
    uint32_t counted; /* 0 for frames open when recording began */
    uint32_t gidx;    /* its tag's entry (NONE: no tag) */
    uint32_t groot;   /* its caller is under another tag (or none): it begins its tag's work */
    uint32_t tidx;    /* the task whose root coroutine it is (NONE: none) */
    uint64_t start, child;
    uint64_t seg;     /* when it last went on the stack (a coroutine's resume; else start) */
    uint64_t awaited; /* ticks it was parked so far */
} yp_frame;

/* A coroutine's frame parked between SUSPEND and RESUME (yp_park.c): a
 * keyed table (yp_ktab_int.h) under the coroutine (co + 1: never 0). */
typedef struct yp_parked {
    uint64_t key; /* co + 1 */
    uint64_t since;
    yp_frame f;
} yp_parked;
typedef yp_ktab yp_park;
/* Park f under co at ts (replacing one there); -1 when out of memory. */
int yp_park_put(yp_park *p, uint64_t co, const yp_frame *f, uint64_t ts);
/* Take the frame parked under co into *out: 1, or 0 when none. */
int yp_park_take(yp_park *p, uint64_t co, yp_parked *out);

/* A task (docs/api.md, "Tasks"): an asyncio task or a greenlet, in ticks
 * (yp_agg_task.c). */
typedef struct yp_trow {
    uint64_t key;  /* its live identity's key (yp_agg_task.c); 0 once it is done */
    uint64_t name; /* its TASK_NAME value (0: none) */
    uint64_t created, first, done, active, since;
    uint64_t steps;
    uint32_t func_id; /* its root's function (0: not known yet) */
    uint32_t tag;     /* the tag its last step ended under */
    uint8_t kind;     /* YP_TASK_ASYNCIO or YP_TASK_GREENLET */
    uint8_t has_created, is_done, running;
    uint32_t pad;
} yp_trow;

typedef struct yp_athread {
    uint32_t id;
    uint64_t ident, native_id, cpu_ns;
    char *name;
    yp_stack st; /* open frames and timing (the walker's) */
    yp_fent *fs;
    yp_eent *es;
    yp_nent *ns;
    size_t fs_cap, es_cap, ns_cap;
    uint32_t n_fs, n_es, n_ns;
    yp_map fmap, emap, nmap;
    yp_frame *stack; /* the open frames' entries, as deep as st */
    size_t stack_cap;
    yp_park parked; /* suspended coroutines' frames */
    yp_gent *gs;    /* per (function, tag) */
    size_t gs_cap;
    uint32_t n_gs;
    yp_map gmap;
    yp_trow *ks; /* tasks */
    size_t ks_cap;
    uint32_t n_ks;
    yp_ktab klive;                           /* a live task's identity -> its row (yp_agg_task.c) */
    yp_ktab kcreated;                        /* created tasks not run yet: coroutine object -> when */
    uint64_t pend_task, pend_name, pend_obj; /* TASK_NEW (+ 1), TASK_NAME, TASK_OBJ (+ 1) not used yet */
    uint32_t pend_root; /* the row whose root function the next frame names (NONE: none) */
    uint32_t glet_row;  /* the running greenlet's row (NONE: none) */
} yp_athread;

typedef struct yp_asym {
    uint32_t func_id, lineno;
    uint8_t builtin;
    char *name, *module, *filename;
} yp_asym;

struct yp_agg {
    double ns_per_tick;
    int cpu_clock; /* a thread CPU clock: a parked frame's time adds nothing */
    yp_asym *syms;
    size_t n_syms, syms_cap;
    uint64_t str_bytes;
    yp_map symmap;
    yp_athread **threads;
    size_t n_threads, threads_cap;
    yp_map tmap;
    yp_athread *last_thread;
    uint64_t events;
    uint64_t n_nodes_total;
    uint32_t nodes_truncated;
    uint64_t n_task_rows, tasks_dropped;
};

/* Tables a frame close writes into: a thread's own, or a snapshot's copies. */
typedef struct yp_agg_tables {
    yp_fent *fs;
    yp_eent *es;
    yp_nent *ns;
    yp_gent *gs;
    yp_trow *ks;
} yp_agg_tables;

/* ---- tasks (yp_agg_task.c) ---- */

/* Task rows kept over all threads; past it a new task is counted in
 * tasks_dropped only. */
#define YP_TASK_ROWS_MAX (1u << 18)
/* A SWITCH record's sub-kind for tasks (the walker's `task`). */
void yp_agg_task_event(yp_agg *a, yp_athread *t, unsigned sub, uint64_t val, uint64_t ts);
/* The frame just opened (depth st.depth) when a row waits for its root. */
void yp_agg_task_open(yp_agg *a, yp_athread *t, yp_frame *f, uint64_t ts);
/* A task's root frame leaves the stack at ts: suspended (parked), or
 * closing (returned, or the interval ends: t->st.ending). */
void yp_agg_task_leaves(yp_athread *t, const yp_frame *f, uint64_t ts, int closing);
/* The interval ends at ts: the running greenlet's stretch ends. */
void yp_agg_task_interval_end(yp_athread *t, uint64_t ts);
/* clear_stats(): done rows go, the others restart at ts. */
void yp_agg_task_clear(yp_agg *a, yp_athread *t, uint64_t ts);
void yp_agg_task_free(yp_athread *t);
size_t yp_agg_task_bytes(const yp_athread *t);

/* The innermost of `depth` open frames closes at ts: its time goes into
 * tb's entries and its caller's child time. */
void yp_agg_close_frame(yp_agg_tables *tb, yp_frame *stack, uint32_t depth, uint64_t ts);

/* A parked frame closes at ts (the interval ends, or a snapshot): its call
 * counted into tb's entries; its caller's time was counted when it parked. */
void yp_agg_close_parked(yp_agg_tables *tb, const yp_parked *p, uint64_t ts, int cpu_clock);

/* A switched-out greenlet's `depth` frames come back after `away` ticks:
 * their entries active again, the time away awaited (a wall clock) or
 * not theirs (a CPU clock). */
void yp_agg_frames_back(yp_agg_tables *tb, yp_frame *fr, uint32_t depth, uint64_t away, int cpu_clock);

/* A thread's name ("" when not known). */
const char *yp_agg_thread_name(yp_agg *a, uint32_t thread_id);

#endif
