/* yp_seq_int.h — the per-thread chunk sequence check every reader of EVENTS
 * chunks shares (statistics, SQLite, exports), so they agree on where a
 * thread's stream has a hole (see yp_seq.c). */
#ifndef YP_SEQ_INT_H
#define YP_SEQ_INT_H

#include <stddef.h>
#include <stdint.h>

#include "yprof/format.h"

typedef struct yp_seqcheck {
    uint32_t *next; /* by thread id: the seq expected next (0: none seen) */
    size_t cap;
} yp_seqcheck;

/* What a chunk tells about its thread's stream. */
typedef struct yp_seq_gap {
    uint32_t thread_id;
    uint32_t missing_chunks; /* chunks never seen before this one (seq gap) */
    uint64_t lost_events;    /* events known lost: a damaged chunk's own */
    int hole;                /* the thread's open frames end here */
} yp_seq_gap;

/* Feed the reader's answer for one chunk: st (YP_OK, YP_ERR_CHECKSUM,
 * YP_ERR_CORRUPT) and the chunk. Fills *gap; 1 when the chunk is an EVENTS
 * chunk whose header is whole (its thread is known), else 0. A damaged
 * chunk is a hole with its events (and the drops before it) lost. */
int yp_seq_check(yp_seqcheck *s, yp_status st, const yp_chunk *c, yp_seq_gap *gap);
void yp_seq_free(yp_seqcheck *s);

#endif
