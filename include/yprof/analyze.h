/*
 * yprof/analyze.h — libyp_analyze: stack rebuild, aggregation, SQLite, reports
 * and exports. No Python here.
 *
 * The aggregator (yp_agg) is fed chunk by chunk: symbols, threads, events of
 * one thread at a time. Its memory is O(functions + edges + call-tree paths +
 * stack depth), never O(events). It is not thread-safe: one feeder at a time,
 * or the caller's lock (the live recorder feeds it from its flusher thread and
 * takes snapshots under the same lock).
 *
 * Statistics follow cProfile's definitions so numbers line up:
 *   ncalls           every completed call (and every frame still open when a
 *                    snapshot is taken or a recording interval ends);
 *   primitive_calls  calls made while the function was not already active in
 *                    the same thread;
 *   self             time in the function minus time in its callees;
 *   total            time from call to return, counted once for recursion
 *                    (only the outermost activation adds it).
 * Edges (caller -> callee) follow the same rules per pair.
 *
 * A snapshot (yp_stats) is an immutable, self-contained copy in seconds; the
 * SQLite writer, the report and the exporters all read snapshots, so the live
 * get_stats() and yprof-analyze give the same numbers.
 */
#ifndef YPROF_ANALYZE_H
#define YPROF_ANALYZE_H

#include <stdint.h>
#include <stdio.h>

#include "yprof/format.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct yp_agg yp_agg;

/* NULL on allocation failure. */
yp_agg *yp_agg_new(void);
void yp_agg_free(yp_agg *a); /* accepts NULL */

/* Tick length in ns (default 1.0). */
void yp_agg_set_ns_per_tick(yp_agg *a, double ns_per_tick);
/* The trace's clock (yp_clock_kind): with a thread CPU clock a suspended
 * coroutine's time away adds nothing to it (no awaited time). */
void yp_agg_set_clock(yp_agg *a, uint32_t clock_kind);

/* Copies the strings. Re-adding an id replaces the earlier description. */
yp_status yp_agg_symbol(yp_agg *a, const yp_symbol *s);
yp_status yp_agg_thread(yp_agg *a, const yp_thread_info *t);

/* Feed n events of one thread, in order. dropped: events lost just before
 * them (the thread's stack is closed and rebuilt from what follows). */
yp_status yp_agg_events(yp_agg *a, uint32_t thread_id, const yp_event *ev, size_t n, uint32_t dropped);

/* A hole in a thread's stream (a damaged or missing chunk): its open frames
 * end at its last event, as at a DROPPED record, and `lost` events (0 when
 * not known) are counted as dropped. */
yp_status yp_agg_gap(yp_agg *a, uint32_t thread_id, uint64_t lost);

/* The stats restart from zero; symbols, live threads and open stacks are
 * kept (open frames restart their clocks and are no longer counted as
 * calls); threads that have ended are forgotten. */
void yp_agg_clear(yp_agg *a);

/* Bytes the aggregator holds. */
uint64_t yp_agg_bytes(const yp_agg *a);
uint64_t yp_agg_events_seen(const yp_agg *a);
/* The time the threads ran Python code, in ns (docs/api.md, "pollution"):
 * over the threads, each one's recorded wall time less its C functions'
 * self time (C code runs as fast under a hook; a thread blocked in one
 * runs no Python code) and event_ns per event it made (the hook's and the
 * interpreter's cost of them), when positive. */
uint64_t yp_agg_code_ns(const yp_agg *a, double event_ns);

/* ---- snapshots ----------------------------------------------------------- */

typedef struct yp_func {
    uint32_t id; /* func_id in the trace */
    uint32_t lineno;
    uint8_t builtin;
    const char *name, *module, *filename;
} yp_func;

typedef struct yp_thread_stat {
    uint32_t id; /* recorder's thread id */
    uint64_t ident, native_id;
    const char *name;
    uint32_t process; /* index into yp_stats.procs (0 when there is one process) */
    double wall_s;    /* recorded time, summed over intervals */
    double cpu_s;     /* thread CPU time (last reported), 0 if unknown */
    uint64_t events, dropped, unmatched;
    uint32_t open_frames; /* frames open when the snapshot was taken */
} yp_thread_stat;

/* func and thread are indexes into yp_stats.funcs / .threads. */
typedef struct yp_fstat {
    uint32_t func, thread;
    uint64_t ncalls, primitive_calls;
    double self_s, total_s;
    double awaited_s; /* of total_s, the time its coroutines were suspended (wall clock) */
} yp_fstat;

/* One function's calls in one thread under one tag (docs/api.md, "Tags"):
 * tag indexes funcs too (an entry whose builtin is a YP_SYM_TAG_* kind, its
 * name the value). */
typedef struct yp_tagstat {
    uint32_t tag;
    yp_fstat f;
    double root_s; /* of f.total_s, the calls whose caller was under another tag or none:
                      summed over the tag's functions, the wall time of its work */
} yp_tagstat;

/* A task (docs/api.md, "Tasks"): an asyncio task from its first step, or a
 * greenlet from its first switch in. Times in seconds since the
 * snapshot's first event (with clock="cpu", on the thread's CPU clock). */
enum { YP_TASK_ASYNCIO = 1, YP_TASK_GREENLET = 2 };
typedef struct yp_task {
    uint32_t thread; /* index into threads */
    uint32_t kind;   /* YP_TASK_ASYNCIO or YP_TASK_GREENLET */
    uint32_t func;   /* its root function: index into funcs (UINT32_MAX: not known) */
    uint32_t tag;    /* the tag its last step ended under: index into funcs (UINT32_MAX: none) */
    uint32_t name;   /* its name: index into funcs (UINT32_MAX: `number` or none) */
    uint32_t pad;
    uint64_t number;    /* asyncio's default name "Task-N": N (0: none) */
    double created_s;   /* -1: not seen (created before recording, or not by a loop's create_task) */
    double first_run_s; /* its first step (the greenlet: its first switch in) */
    double done_s;      /* -1: not done */
    double wall_s;      /* first run to done (to the snapshot's end when not done) */
    double active_s;    /* the time its steps ran */
    uint64_t steps;     /* steps run (the greenlet: switches in) */
} yp_task;

typedef struct yp_edge {
    uint32_t caller, callee, thread;
    uint64_t ncalls, primitive_calls;
    double self_s, total_s;
} yp_edge;

/* One node of a thread's call tree (a distinct call path). */
typedef struct yp_node {
    uint32_t parent; /* node index, UINT32_MAX for a thread's roots */
    uint32_t func, thread;
    uint32_t depth;
    uint64_t ncalls;
    double self_s, total_s;
} yp_node;

typedef struct yp_session {
    const char *trace_path, *python_version, *command_line, *clock;
    uint64_t pid, ppid; /* ppid 0: not known */
    double started_at;  /* unix seconds */
    double duration_s;  /* first to last event over all threads */
    uint64_t events, dropped_events;
    double hook_s, flusher_s, interp_s, app_s;
    double pollution_pct;    /* (hook + interp) / app * 100: what the app's threads lost */
    double flusher_pct;      /* flusher / app * 100: CPU taken on another core */
    uint64_t profiler_bytes; /* memory the profiler held at the end */
    uint64_t peak_bytes;     /* the most it held (0: not known, older traces) */
    int complete;            /* footer seen */
    uint64_t bad_chunks;     /* skipped for damage */
    uint64_t bytes_read, bytes_total;
} yp_session;

typedef struct yp_stats {
    yp_session session;
    yp_func *funcs;
    size_t n_funcs;
    yp_thread_stat *threads;
    size_t n_threads;
    yp_fstat *fstats; /* one per (function, thread) with calls or time */
    size_t n_fstats;
    yp_edge *edges;
    size_t n_edges;
    yp_node *nodes; /* parents come before children */
    size_t n_nodes;
    uint32_t nodes_truncated; /* call paths beyond the cap, folded */
    yp_tagstat *tagstats;     /* calls made under a tag; none without tags */
    size_t n_tagstats;
    yp_task *tasks; /* asyncio tasks and greenlets, in the order they first ran per thread */
    size_t n_tasks;
    uint64_t tasks_dropped; /* tasks beyond the rows kept (docs/api.md, "Tasks") */
    char *strings;          /* owns every string above */
    char *session_strings;  /* owns session's strings */
    /* The processes, when several traces were merged (yp_stats_merge): each
     * one's own session figures; session then sums them. 0 and NULL for one
     * process: session is that process. */
    yp_session *procs;
    size_t n_procs;
    char *proc_strings; /* owns procs' strings */
} yp_stats;

/* A snapshot of everything so far, open frames closed at each thread's last
 * event (without changing the aggregator). NULL on allocation failure. */
yp_stats *yp_agg_snapshot(const yp_agg *a);
void yp_stats_free(yp_stats *s); /* accepts NULL */

/* Per-function totals over threads (thread = UINT32_MAX), or for one thread
 * (thread index). Returns a malloc'd array (free()) of *n entries sorted by
 * sort key, descending. */
typedef enum yp_sort { YP_SORT_TOTAL, YP_SORT_SELF, YP_SORT_NCALLS, YP_SORT_AVG } yp_sort;
yp_fstat *yp_stats_totals(const yp_stats *s, uint32_t thread, yp_sort sort, size_t *n);
/* The same over the calls made under one tag (tag: its index in funcs). */
yp_fstat *yp_stats_tag_totals(const yp_stats *s, uint32_t tag, uint32_t thread, yp_sort sort, size_t *n);
/* The funcs index of the tag whose value's text is value, or -1. */
int64_t yp_stats_find_tag(const yp_stats *s, const char *value);

/* ---- loading a trace ------------------------------------------------------ */

typedef struct yp_load_result {
    yp_reader_stats rs;
    yp_header hdr;
    yp_footer foot;
    int has_footer;
    uint64_t peak_bytes; /* from MARKER chunks (0: not recorded) */
    uint64_t checksum_errors, corrupt_errors;
    uint64_t lost_events;    /* in damaged or missing EVENTS chunks, all threads */
    char warning[512];       /* "" or a one-line warning (cut short, damaged, holes) */
    char python_version[64]; /* hdr's strings, copied (hdr points here) */
    char command_line[2048];
} yp_load_result;

/* Read a whole trace into a. Returns YP_OK when something usable was read
 * (possibly cut short: see res->warning), else an error with a one-line
 * reason in errbuf. progress, when not NULL, is called now and then with
 * bytes read and total. */
yp_status yp_load_trace(const char *path, yp_agg *a, yp_load_result *res, char *errbuf, size_t errlen,
                        void (*progress)(uint64_t done, uint64_t total));
/* Only the events of [since_s, until_s) (seconds from the trace's start;
 * 0: no bound): the statistics of what ran in that window. A call open
 * when it begins is not counted (its return is unmatched), its time before
 * the window not either; one open when it ends is closed at the last event
 * before the end. */
yp_status yp_load_trace_window(const char *path, double since_s, double until_s, yp_agg *a,
                               yp_load_result *res, char *errbuf, size_t errlen,
                               void (*progress)(uint64_t done, uint64_t total));
/* Same over memory (used by the fuzz target). */
yp_status yp_load_mem(const void *data, size_t len, yp_agg *a, yp_load_result *res, char *errbuf,
                      size_t errlen);

/* Fill the session fields of s from a load result. */
void yp_stats_set_session(yp_stats *s, const char *trace_path, const yp_load_result *res);

/* ---- several processes --------------------------------------------------- */

/* a's and b's statistics as one (neither changed): a function is the same
 * in both when its name, module, file, line and kind are; threads are
 * renumbered 1..N in order and keep their process; the processes are a's
 * then b's; session sums the processes' figures (started_at the earliest,
 * duration_s to the end of the last). NULL on allocation failure. */
yp_stats *yp_stats_merge(const yp_stats *a, const yp_stats *b);

/* Thread ti's statistics alone (its process's session; every function
 * kept); NULL on allocation failure or a bad index. */
yp_stats *yp_stats_thread(const yp_stats *s, uint32_t ti);

/* The processes of s (1 when it is one process's) and the i-th of them. */
size_t yp_stats_n_procs(const yp_stats *s);
const yp_session *yp_stats_proc(const yp_stats *s, size_t i);

/* ---- outputs -------------------------------------------------------------- */

/* The schema's version, stored as the database's PRAGMA user_version: raised
 * on any change a reader could notice (docs/schema.md says what changed). */
#define YP_SCHEMA_VERSION 4

/* Write the SQLite database (replacing path). Schema: docs/schema.md. */
yp_status yp_sqlite_write(const yp_stats *s, const char *path, char *errbuf, size_t errlen);

typedef struct yp_report_opts {
    int top; /* rows, default 20 */
    yp_sort sort;
    int thread;       /* thread index or -1 for all */
    int show_threads; /* print the per-thread table */
    int width;        /* fit function rows in this many columns (names cut in
                         the middle, never the function's own name); 0: no cut */
    int show_procs;   /* print the per-process table (several processes) */
    int show_tags;    /* print the per-tag table */
    int show_tasks;   /* print the longest tasks (top of them) */
    int64_t tag;      /* the function table of this tag's calls (a funcs index); -1: all */
} yp_report_opts;

void yp_report_print(const yp_stats *s, const yp_report_opts *o, FILE *out);

/* Exports: path "-" is standard output (flushed, not closed). YP_ERR_IO
 * when the file cannot be opened or written; yp_export_errno() then gives
 * the reason. */
yp_status yp_export_pstats(const yp_stats *s, const char *path);
yp_status yp_export_callgrind(const yp_stats *s, const char *path);
yp_status yp_export_collapsed(const yp_stats *s, const char *path);
yp_status yp_export_flamegraph(const yp_stats *s, const char *path);
/* pprof's profile.proto, gzipped: one sample per call path, values calls
 * and self time (ns), labels thread and process. */
yp_status yp_export_pprof(const yp_stats *s, const char *path);
/* What a timeline export shows. */
typedef struct yp_timeline_opts {
    double since_s, until_s; /* seconds from the trace's start; until_s 0: to the end */
    double min_us;           /* calls shorter than this are left out */
    uint32_t thread_id;      /* one thread (the trace's id), UINT32_MAX: all */
    uint64_t max_bytes;      /* refuse (YP_ERR_ARG, errbuf says what to narrow)
                                an export over this size, before writing; 0: no limit */
} yp_timeline_opts;

/* Chrome trace JSON needs every event: it re-reads the trace, streaming.
 * o NULL: everything, no limit. */
yp_status yp_export_chrome(const char *trace_path, const yp_stats *s, const char *path,
                           const yp_timeline_opts *o, char *errbuf, size_t errlen);
/* The same timeline as Perfetto's protobuf trace (TracePackets). */
yp_status yp_export_perfetto(const char *trace_path, const yp_stats *s, const char *path,
                             const yp_timeline_opts *o, char *errbuf, size_t errlen);
/* The errno of this thread's last export that failed to open or write its
 * file (ENOSPC, EACCES, ...); 0 when it failed for another reason. */
int yp_export_errno(void);

#ifdef __cplusplus
}
#endif

#endif
