/* yp_traces_int.h — the traces yprof-analyze reads (yp_traces.c). */
#ifndef YP_TRACES_INT_H
#define YP_TRACES_INT_H

#include <stddef.h>
#include <stdint.h>

/* One trace to read, as its header names it. */
typedef struct yp_trace_ref {
    char *path;
    uint32_t pid, ppid, clock_kind;
    uint64_t start_wall_ns;
    uint64_t dev, ino; /* the file (a trace named twice is refused) */
} yp_trace_ref;

/* args: trace files and directories (each directory: every *.yp in it).
 * The traces in order of their start (the parent before its children);
 * NULL with a one-line reason in err when a name is not a trace, a
 * directory holds none, a trace is named twice, or the traces do not share
 * a clock. */
yp_trace_ref *yp_traces_list(char *const *args, int n_args, size_t *n, char *err, size_t errlen);
void yp_traces_free(yp_trace_ref *t, size_t n);

#endif
