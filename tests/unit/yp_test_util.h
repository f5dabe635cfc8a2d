// Helpers shared by the GoogleTest suites.
#ifndef YP_TEST_UTIL_H
#define YP_TEST_UTIL_H

#include <cstring>

#include "yprof/format.h"

// One event, padding zeroed.
inline yp_event E(uint64_t ts, uint32_t id, uint8_t kind) {
    yp_event e;
    memset(&e, 0, sizeof e);
    e.ts = ts;
    e.func_id = id;
    e.kind = kind;
    return e;
}

#endif
