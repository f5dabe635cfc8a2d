/*
 * yp_cpuclock.c — the CPU clock for clock="cpu", cheaply.
 *
 * CLOCK_THREAD_CPUTIME_ID is a system call (~380 ns here, 15x a TSC read), so
 * the CPU clock is read at an event only when the thread may have been off
 * the CPU since the last one: when the wall-clock gap since its previous
 * event exceeds 10 us (a blocking call, a wait for the GIL, a preemption:
 * all far longer), and every 512th event. Between reads a thread running
 * Python code is on the CPU, so its CPU time advances with the wall clock
 * (TSC): cpu_now in yp_hook_int.h. If a read finds the estimate ahead of the
 * real CPU time (the thread was off the CPU within a short gap), the
 * estimate never goes back: the excess is taken out of the next increments.
 */
#include "yp_hook_int.h"

#define CPU_SYNC_EVERY 512

__attribute__((noinline)) uint64_t yp_cpu_sync(yp_cpuclock *c) {
    c->left = CPU_SYNC_EVERY;
    uint64_t real = yp_clock_thread_cpu_ns();
    if (real >= c->est) {
        c->est = real;
        c->debt = 0;
    } else {
        c->debt = c->est - real;
    }
    return c->est;
}
