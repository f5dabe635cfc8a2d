/* yp_pollution.h — the pollution figures' formulas that are not a plain
 * sum (docs/api.md, "pollution"). Pure C: the GoogleTest suite tests them. */
#ifndef YP_POLLUTION_H
#define YP_POLLUTION_H

#include <stdint.h>

/* The interpreter's estimated slow-down (docs/api.md, "pollution"), from
 * the calibration (per_event_ns: what an empty hook costs per event beyond
 * the bytecodes; bytecode_share: the share of a loop's time without calls
 * an empty hook takes, 3.11's profile hook slowing every bytecode; bound:
 * the share of a call-heavy loop's time it takes, which no code exceeds)
 * and the recording (app_ns recorded, hook_ns of it in the hook, code_ns
 * the threads ran Python code: yp_agg_code_ns): the events' cost, plus
 * bytecode_share of the Python code's time (at most what the hook and the
 * events left), at most `bound` of the time the hook left (share <= 0: no
 * such term or bound). */
static inline uint64_t yp_interp_estimate(uint64_t events, double per_event_ns, double bytecode_share,
                                          double bound, uint64_t app_ns, uint64_t hook_ns, uint64_t code_ns) {
    double left = app_ns > hook_ns ? (double)(app_ns - hook_ns) : 0.0;
    double ev = per_event_ns > 0 ? per_event_ns * (double)events : 0.0;
    if (ev > left) ev = left;
    double code = (double)code_ns < left - ev ? (double)code_ns : left - ev;
    double bc = bytecode_share > 0 && bytecode_share < 1 ? bytecode_share * code : 0.0;
    double est = ev + bc, max = bound > 0 && bound < 1 ? bound * left : left;
    return (uint64_t)(est < max ? est : max);
}

/* One hook time sample in ns: from the event's clock read (wall) to the
 * slow path's (t1), less what two back-to-back reads measure of themselves
 * (read_ticks), never below 0. */
static inline double yp_sample_ns(uint64_t wall, uint64_t t1, uint64_t read_ticks, double ns_per_tick) {
    return t1 > wall + read_ticks ? (double)(t1 - wall - read_ticks) * ns_per_tick : 0.0;
}

#endif
