/*
 * yp_clock.c — the clocks the hook reads.
 *
 * wall: the invariant TSC when the kernel itself uses it as its clocksource
 *   (so it is synchronized across cores and never stops), read with rdtsc
 *   (~25 ns here) and converted with a rate calibrated once per process
 *   against CLOCK_MONOTONIC, from the module's loading (yp_clock_anchor) to
 *   the first start(), at least 1 ms; otherwise CLOCK_MONOTONIC through the
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

#if defined(__x86_64__) || defined(__i386__)
/* A (CLOCK_MONOTONIC ns, TSC) pair read together: the TSC read before and
 * after the clock_gettime, retried while they are far apart (the thread was
 * preempted between them), the TSC taken at their middle. */
static void clock_pair(uint64_t *mono, uint64_t *tsc) {
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 8 && best > 2000; i++) {
        uint64_t a = yp_clock_tsc(), m = yp_clock_mono_ns(), b = yp_clock_tsc();
        if (b >= a && b - a < best) {
            best = b - a;
            *mono = m;
            *tsc = a + (b - a) / 2;
        }
    }
}

static uint64_t g_anchor_mono, g_anchor_tsc; /* 0: no anchor */
#endif

void yp_clock_anchor(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (!g_anchor_mono) clock_pair(&g_anchor_mono, &g_anchor_tsc);
#endif
}

#define CALIBRATION_MIN_NS 1000000u

uint32_t yp_clock_pick_wall(double *ns_per_tick) {
    static uint32_t kind = UINT32_MAX;
    static double rate = 1.0;
    if (kind == UINT32_MAX) {
        kind = YP_CLOCK_MONOTONIC;
        rate = 1.0;
#if defined(__x86_64__) || defined(__i386__)
        const char *env = getenv("YPROF_CLOCK");
        if (!(env && !strcmp(env, "monotonic")) && kernel_uses_tsc()) {
            /* the rate over the time since the anchor: nothing to wait for
             * unless start() comes within 2 ms of the module's loading */
            yp_clock_anchor();
            uint64_t m1, t1;
            do {
                clock_pair(&m1, &t1);
            } while (m1 - g_anchor_mono < CALIBRATION_MIN_NS);
            if (t1 > g_anchor_tsc) {
                rate = (double)(m1 - g_anchor_mono) / (double)(t1 - g_anchor_tsc);
                kind = YP_CLOCK_TSC;
            }
        }
#endif
    }
    if (ns_per_tick) *ns_per_tick = rate;
    return kind;
}
