/*
 * yp_clock.c — the clocks the hook reads. CLOCK_MONOTONIC goes through the
 * vDSO (no syscall, about 20 ns); CLOCK_THREAD_CPUTIME_ID is exact per-thread
 * CPU time (a syscall on most kernels; measured in docs/performance.md).
 */
#define _GNU_SOURCE
#include <time.h>

#include "yprof/recorder.h"

uint64_t yp_clock_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t yp_clock_thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
