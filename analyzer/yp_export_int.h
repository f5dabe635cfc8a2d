/*
 * yp_export_int.h — what the exports share (yp_export.c, yp_pstats.c,
 * yp_flame.c).
 */
#ifndef YP_EXPORT_INT_H
#define YP_EXPORT_INT_H

#include <stddef.h>

#include "yprof/analyze.h"

/* The snapshot's edges summed over threads, sorted by callee (by_caller 0)
 * or by caller; NULL when out of memory. */
yp_edge *yp_merged_edges(const yp_stats *s, size_t *n, int by_caller);
/* The first edge whose key (callee or caller) is func, in such an array. */
size_t yp_edge_lower(const yp_edge *es, size_t n, uint32_t func, int by_caller);

/* A function as a frame of a stack: "name (file.py:12)", or the name of a
 * C function; ';' and newlines replaced. */
void yp_frame_name(const yp_stats *s, uint32_t func, char *out, size_t n);

#endif
