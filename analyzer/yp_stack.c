/* yp_stack.c — the stack walker's out-of-line parts (rules: yp_stack_int.h). */
#include <stdlib.h>

#include "yp_stack_int.h"

const int8_t yp_stack_step[16] = {
    [YP_EV_CALL] = 1,      [YP_EV_C_CALL] = 1,  [YP_EV_OPEN] = 1,   [YP_EV_RETURN] = -1,
    [YP_EV_C_RETURN] = -1, [YP_EV_UNWIND] = -1, [YP_EV_RESUME] = 1, [YP_EV_SUSPEND] = -1,
};

void yp_stack_clear(yp_stack *s) {
    s->wall = 0;
    s->ival_start = s->last_ts;
    s->events = s->dropped = s->unmatched = 0;
}

uint64_t yp_stack_wall(const yp_stack *s) {
    return s->wall + (s->in_interval && s->last_ts > s->ival_start ? s->last_ts - s->ival_start : 0);
}

size_t yp_stack_bytes(const yp_stack *s) { return s->cap * sizeof *s->ids; }

void yp_stack_free(yp_stack *s) {
    free(s->ids);
    s->ids = NULL;
    s->cap = s->depth = 0;
}
