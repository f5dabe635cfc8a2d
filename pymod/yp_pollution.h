/* yp_pollution.h — the pollution figures' one formula that is not a plain
 * sum (docs/api.md, "pollution"). Pure C: the GoogleTest suite tests it. */
#ifndef YP_POLLUTION_H
#define YP_POLLUTION_H

#include <stdint.h>

/* The interpreter's estimated slow-down interp_ns, at most `share` of the
 * recorded time the hook left to the application (app_ns - hook_ns): the
 * share of its time a calibration loop lost to an empty hook. share <= 0:
 * interp_ns as it is. */
static inline uint64_t yp_interp_bounded(uint64_t interp_ns, uint64_t app_ns, uint64_t hook_ns,
                                         double share) {
    if (!(share > 0)) return interp_ns;
    double left = app_ns > hook_ns ? (double)(app_ns - hook_ns) : 0.0;
    double max = share < 1 ? share * left : left;
    return (double)interp_ns < max ? interp_ns : (uint64_t)max;
}

#endif
