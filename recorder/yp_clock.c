/*
 * yp_clock.c — the clocks the hook reads.
 *
 * wall: the invariant TSC when the kernel itself uses it as its clocksource
 *   (so it is synchronized across cores and never stops), read with rdtsc
 *   (~25 ns here) and converted with a rate calibrated once per process
 *   against CLOCK_MONOTONIC over 20 ms; otherwise CLOCK_MONOTONIC through the
 *   vDSO (~45 ns here). YPROF_CLOCK=monotonic forces the latter.
 * cpu: CLOCK_THREAD_CPUTIME_ID, exact per-thread CPU time (a system call on
 *   most kernels, ~380 ns here).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#if defined(__x86_64__) || defined(__i386__)
static int kernel_uses_tsc(void) {
    char buf[64] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof buf, f) && !strncmp(buf, "tsc", 3);
    fclose(f);
    return ok;
}
#endif

uint32_t yp_clock_pick_wall(double *ns_per_tick) {
    static uint32_t kind = UINT32_MAX;
    static double rate = 1.0;
    if (kind == UINT32_MAX) {
        kind = YP_CLOCK_MONOTONIC;
        rate = 1.0;
#if defined(__x86_64__) || defined(__i386__)
        const char *env = getenv("YPROF_CLOCK");
        if (!(env && !strcmp(env, "monotonic")) && kernel_uses_tsc()) {
            uint64_t m0 = yp_clock_mono_ns(), t0 = yp_clock_tsc();
            uint64_t m1, t1;
            do {
                m1 = yp_clock_mono_ns();
                t1 = yp_clock_tsc();
            } while (m1 - m0 < 20000000u);
            if (t1 > t0) {
                rate = (double)(m1 - m0) / (double)(t1 - t0);
                kind = YP_CLOCK_TSC;
            }
        }
#endif
    }
    if (ns_per_tick) *ns_per_tick = rate;
    return kind;
}
