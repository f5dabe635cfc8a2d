/* yp_agg_int.h — the aggregator's private structures (see yp_agg.c). */
#ifndef YP_AGG_INT_H
#define YP_AGG_INT_H

#define YP_AGG_NONE UINT32_MAX

#include "yp_stack_int.h"
#include "yprof/containers.h"
#include "yprof/analyze.h"

/* Times are in ticks here; snapshots convert to seconds. */
typedef struct yp_fent {
    uint32_t func_id, active;
    uint64_t ncalls, rec, self, total;
} yp_fent;

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
    uint64_t start, child;
} yp_frame;

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
} yp_athread;

typedef struct yp_asym {
    uint32_t func_id, lineno;
    uint8_t builtin;
    char *name, *module, *filename;
} yp_asym;

struct yp_agg {
    double ns_per_tick;
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
};

/* Tables a frame close writes into: a thread's own, or a snapshot's copies. */
typedef struct yp_agg_tables {
    yp_fent *fs;
    yp_eent *es;
    yp_nent *ns;
} yp_agg_tables;

/* The innermost of `depth` open frames closes at ts: its time goes into
 * tb's entries and its caller's child time. */
void yp_agg_close_frame(yp_agg_tables *tb, yp_frame *stack, uint32_t depth, uint64_t ts);

/* A thread's name ("" when not known). */
const char *yp_agg_thread_name(yp_agg *a, uint32_t thread_id);

#endif
