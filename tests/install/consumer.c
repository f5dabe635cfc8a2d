/* A program built against an installed yprof with pkg-config alone
 * (tests/install/check_install.sh): it records a trace with the recorder
 * library, reads it back with the analyzer and writes the SQLite database.
 * Exit 0 when the counts read back are the ones recorded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yprof/analyze.h>
#include <yprof/recorder.h>

#define CALLS 1000

static int record(const char *path) {
    yp_rec_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.path = path;
    cfg.clock_kind = YP_CLOCK_MONOTONIC;
    cfg.command_line = "consumer";
    char err[256];
    if (yp_rec_open(&cfg, err, sizeof err) != YP_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        return -1;
    }
    uint32_t outer = yp_rec_symbol_add("outer", "consumer", "consumer.c", 1, 0);
    uint32_t inner = yp_rec_symbol_add("inner", "consumer", "consumer.c", 2, 0);
    yp_ring *r = yp_rec_ring();
    if (!outer || !inner || !r) return -1;
    yp_rec_push(r, yp_clock_mono_ns(), outer, YP_EV_CALL);
    for (int i = 0; i < CALLS; i++) {
        yp_rec_push(r, yp_clock_mono_ns(), inner, YP_EV_CALL);
        yp_rec_push(r, yp_clock_mono_ns(), inner, YP_EV_RETURN);
    }
    yp_rec_push(r, yp_clock_mono_ns(), outer, YP_EV_RETURN);
    return yp_rec_close(NULL) == YP_OK ? 0 : -1;
}

/* ncalls of the function named name, over all threads; -1 if absent. */
static long long ncalls_of(const yp_stats *s, const char *name) {
    size_t n = 0;
    yp_fstat *t = yp_stats_totals(s, UINT32_MAX, YP_SORT_NCALLS, &n);
    long long found = -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->funcs[t[i].func].name, name) == 0) found = (long long)t[i].ncalls;
    free(t);
    return found;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: consumer TRACE.yp DB\n");
        return 2;
    }
    if (record(argv[1]) != 0) return 1;
    yp_agg *a = yp_agg_new();
    yp_load_result res;
    char err[256];
    if (!a || yp_load_trace(argv[1], a, &res, err, sizeof err, NULL) != YP_OK) {
        fprintf(stderr, "consumer: %s\n", a ? err : "out of memory");
        return 1;
    }
    yp_stats *s = yp_agg_snapshot(a);
    if (!s) return 1;
    yp_stats_set_session(s, argv[1], &res);
    long long inner = ncalls_of(s, "inner"), outer = ncalls_of(s, "outer");
    int ok = inner == CALLS && outer == 1 && yp_sqlite_write(s, argv[2], err, sizeof err) == YP_OK;
    printf("inner %lld calls, outer %lld\n", inner, outer);
    yp_stats_free(s);
    yp_agg_free(a);
    return ok ? 0 : 1;
}
