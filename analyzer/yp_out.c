/*
 * yp_out.c — the exports' output file (yp_out_int.h).
 */
#include "yp_out_int.h"

#include <errno.h>
#include <string.h>

static _Thread_local int g_errno;

int yp_export_errno(void) { return g_errno; }

FILE *yp_out_open(const char *path, const char *mode) {
    g_errno = 0;
    if (!strcmp(path, "-")) return stdout;
    FILE *f = fopen(path, mode);
    if (!f) g_errno = errno;
    return f;
}

yp_status yp_out_close(FILE *f) {
    int bad = ferror(f);
    int err = bad ? errno : 0; /* the failed write's, when nothing has overwritten it */
    if (f == stdout) {
        if (fflush(f) != 0) {
            bad = 1;
            err = errno;
        }
    } else if (fclose(f) != 0) {
        bad = 1;
        err = errno;
    }
    if (bad) g_errno = err;
    return bad ? YP_ERR_IO : YP_OK;
}
