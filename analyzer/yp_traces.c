/*
 * yp_traces.c — which traces yprof-analyze reads: the files named and every
 * *.yp in the directories named, each header read (not the chunks) for the
 * process it describes and its clock, in order of their start.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "yp_traces_int.h"
#include "yprof/containers.h"
#include "yprof/format.h"

typedef struct list {
    yp_trace_ref *t;
    size_t n, cap;
} list;

void yp_traces_free(yp_trace_ref *t, size_t n) {
    for (size_t i = 0; t && i < n; i++) free(t[i].path);
    free(t);
}

/* path's header into the list; -1 with the reason in err. */
static int add(list *l, const char *path, char *err, size_t errlen) {
    char why[400] = "";
    yp_reader *r;
    yp_status st = yp_reader_open(path, &r, why, sizeof why);
    if (st != YP_OK) {
        snprintf(err, errlen, "%s: %s", path, why[0] ? why : yp_status_str(st));
        return -1;
    }
    const yp_header *h = yp_reader_header(r);
    yp_trace_ref t = {strdup(path), h->pid, h->ppid, h->clock_kind, h->start_wall_ns, 0, 0};
    yp_reader_close(r);
    struct stat sb;
    if (stat(path, &sb) == 0) t.dev = (uint64_t)sb.st_dev, t.ino = (uint64_t)sb.st_ino;
    for (size_t i = 0; i < l->n; i++) {
        if (l->t[i].dev != t.dev || l->t[i].ino != t.ino) continue;
        snprintf(err, errlen, "%s and %s are the same trace: name it once", l->t[i].path, path);
        free(t.path);
        return -1;
    }
    if (!t.path || yp_grow((void **)&l->t, &l->cap, l->n + 1, sizeof t, 16)) {
        free(t.path);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    l->t[l->n++] = t;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.yp in dir (in name order); -1 with the reason in err. */
static int add_dir(list *l, const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t k = strlen(e->d_name);
        if (k < 4 || strcmp(e->d_name + k - 3, ".yp")) continue;
        char *p = malloc(strlen(dir) + k + 2);
        if (!p || yp_grow((void **)&names, &cap, n + 1, sizeof *names, 16)) {
            free(p);
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        sprintf(p, "%s/%s", dir, e->d_name);
        names[n++] = p;
    }
    closedir(d);
    if (!rc && !n) {
        snprintf(err, errlen, "%s: no traces (*.yp) in this directory", dir);
        rc = -1;
    }
    if (names) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (!rc) rc = add(l, names[i], err, errlen);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int by_start(const void *a, const void *b) {
    const yp_trace_ref *x = a, *y = b;
    if (x->start_wall_ns != y->start_wall_ns) return x->start_wall_ns < y->start_wall_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

static const char *clock_name(uint32_t k) { return k == YP_CLOCK_THREAD_CPU ? "cpu" : "wall"; }

yp_trace_ref *yp_traces_list(char *const *args, int n_args, size_t *n, char *err, size_t errlen) {
    list l = {0};
    int rc = 0;
    for (int i = 0; !rc && i < n_args; i++) {
        struct stat sb;
        rc = stat(args[i], &sb) == 0 && S_ISDIR(sb.st_mode) ? add_dir(&l, args[i], err, errlen)
                                                            : add(&l, args[i], err, errlen);
    }
    for (size_t i = 1; !rc && i < l.n; i++) {
        if (!strcmp(clock_name(l.t[i].clock_kind), clock_name(l.t[0].clock_kind))) continue;
        snprintf(err, errlen,
                 "%s was recorded with the %s clock and %s with the %s clock: their times cannot "
                 "be summed (analyze them apart)",
                 l.t[0].path, clock_name(l.t[0].clock_kind), l.t[i].path, clock_name(l.t[i].clock_kind));
        rc = -1;
    }
    if (rc) {
        yp_traces_free(l.t, l.n);
        return NULL;
    }
    qsort(l.t, l.n, sizeof *l.t, by_start);
    *n = l.n;
    return l.t;
}
