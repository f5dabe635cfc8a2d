/*
 * yp_out_int.h — the exports' output file: a path or standard output ("-"),
 * and the reason it could not be written (yp_export_errno).
 */
#ifndef YP_OUT_INT_H
#define YP_OUT_INT_H

#include <stdio.h>

#include "yprof/analyze.h"

/* fopen(path, mode), or stdout for "-"; NULL with the reason kept. */
FILE *yp_out_open(const char *path, const char *mode);
/* Flush and close (stdout: flush only); YP_ERR_IO with the reason kept
 * when anything written was lost. */
yp_status yp_out_close(FILE *f);

#endif
