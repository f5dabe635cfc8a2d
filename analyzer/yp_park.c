/*
 * yp_park.c — the suspended coroutines' frames of a thread (yp_agg.c), in a
 * keyed table (yp_ktab_int.h) under their coroutine, so memory is
 * O(coroutines suspended now).
 */
#include "yp_agg_int.h"

int yp_park_put(yp_park *p, uint64_t co, const yp_frame *f, uint64_t ts) {
    p->elem = sizeof(yp_parked);
    yp_parked *rec = yp_ktab_put(p, co + 1);
    if (!rec) return -1;
    rec->since = ts;
    rec->f = *f;
    return 0;
}

int yp_park_take(yp_park *p, uint64_t co, yp_parked *out) { return yp_ktab_take(p, co + 1, out); }
