/* yp_rec_int.h — what recorder/ files share privately. */
#ifndef YP_REC_INT_H
#define YP_REC_INT_H

#include "yprof/recorder.h"

/* Wake the flusher now (a ring is filling up). Async-signal-unsafe. */
void yp_rec_wake(void);
/* Milliseconds a full ring waits before dropping; 0 when no trace is open. */
unsigned yp_rec_wait_ms(void);
/* A producer waited ns for room in its ring (the flusher fell behind). */
void yp_rec_note_wait(uint64_t ns);
/* 1 when a test asked this allocation to fail (counted in alloc_failures). */
int yp_rec_alloc_should_fail(void);

#endif
