/* yp_agg_int.h — the aggregator's private structures (see yp_agg.c). */
#ifndef YP_AGG_INT_H
#define YP_AGG_INT_H

#include "yp_map_int.h"
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
    int seen, in_interval;
    int ended; /* THREAD_END seen: no event follows (ids are not reused) */
    uint64_t first_ts, last_ts, ival_start, wall;
    uint64_t events, dropped, unmatched;
    yp_fent *fs;
    yp_eent *es;
    yp_nent *ns;
    uint32_t n_fs, fs_cap, n_es, es_cap, n_ns, ns_cap;
    yp_map fmap, emap, nmap;
    yp_frame *stack;
    uint32_t depth, stack_cap;
} yp_athread;

typedef struct yp_asym {
    uint32_t func_id, lineno;
    uint8_t builtin;
    char *name, *module, *filename;
} yp_asym;

struct yp_agg {
    double ns_per_tick;
    yp_asym *syms;
    size_t n_syms;
    uint32_t syms_cap;
    uint64_t str_bytes;
    yp_map symmap;
    yp_athread **threads;
    size_t n_threads;
    uint32_t threads_cap;
    yp_map tmap;
    yp_athread *last_thread;
    uint64_t events;
    uint64_t n_nodes_total;
    uint32_t nodes_truncated;
};

/* A thread's name ("" when not known). */
const char *yp_agg_thread_name(yp_agg *a, uint32_t thread_id);

#endif
