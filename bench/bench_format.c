/*
 * bench_format.c — encode/decode throughput of the trace format and bytes per
 * event, on a synthetic call/return stream shaped like recursive code (ids
 * from a small set, nested calls, deltas of 30-120 ticks).
 *
 *   cmake -S . -B build/bench -DYP_BUILD_BENCH=ON -DYP_BUILD_PYMOD=OFF
 *   cmake --build build/bench --target bench_format && build/bench/bench_format
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "yprof/format.h"

#define N (32u << 20) /* events */
#define CHUNK 65536u

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    yp_event *ev = calloc(N, sizeof *ev);
    uint32_t stack[64];
    int depth = 0;
    uint64_t ts = 1000, x = 88172645463325252ull;
    for (uint32_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ts += 30 + x % 91;
        ev[i].ts = ts;
        if (depth == 0 || (depth < 60 && (x >> 20) % 2)) {
            stack[depth++] = ev[i].func_id = 1 + (uint32_t)((x >> 32) % 40);
            ev[i].kind = YP_EV_CALL;
        } else {
            ev[i].func_id = stack[--depth];
            ev[i].kind = YP_EV_RETURN;
        }
    }
    const char *path = "/tmp/yp_bench_format.yp";
    yp_writer_options o = {0};
    yp_writer *w;
    if (yp_writer_open(path, &o, &w, NULL, 0) != YP_OK) return 1;
    double t0 = now();
    for (uint32_t i = 0; i < N; i += CHUNK) yp_writer_events(w, 1, ev + i, CHUNK, 0);
    double t1 = now();
    uint64_t bytes;
    yp_writer_totals(w, NULL, NULL, NULL, &bytes);
    yp_writer_close(w, NULL);
    yp_reader *r;
    if (yp_reader_open(path, &r, NULL, 0) != YP_OK) return 1;
    yp_chunk c;
    uint64_t got = 0, sum = 0;
    double t2 = now();
    while (yp_reader_next(r, &c) == YP_OK)
        if (c.h.kind == YP_CHUNK_EVENTS) {
            got += c.h.n_records;
            sum += c.events[c.h.n_records - 1].ts;
        }
    double t3 = now();
    yp_reader_close(r);
    remove(path);
    printf("events           %u (%u per chunk)\n", N, CHUNK);
    printf("encode+compress  %.1f M events/s\n", N / (t1 - t0) / 1e6);
    printf("read+decode      %.1f M events/s (%llu events, check %llu)\n", got / (t3 - t2) / 1e6,
           (unsigned long long)got, (unsigned long long)(sum & 0xFFFF));
    printf("size             %.3f bytes/event\n", (double)bytes / N);
    free(ev);
    return got == N ? 0 : 1;
}
