/*
 * yp_seq.c — holes in a thread's event stream.
 *
 * The writer numbers each thread's EVENTS chunks from 0 (seq). A reader
 * that sees seq jump, or meets a damaged chunk whose header is whole (its
 * payload failed its checksum or would not decode), knows that thread lost
 * events there: its open frames must end at the hole exactly as at a
 * DROPPED record, or the time across the hole would be given to whatever
 * was on the stack. A damaged chunk says how many events it held; a chunk
 * whose header is gone too shows up only as a seq gap, its size unknown.
 */
#include <stdlib.h>
#include <string.h>

#include "yp_seq_int.h"
#include "yprof/containers.h"

static int grow(yp_seqcheck *s, uint32_t tid) {
    size_t old = s->cap;
    if (yp_grow((void **)&s->next, &s->cap, (size_t)tid + 1, sizeof *s->next, 64)) return -1;
    memset(s->next + old, 0, (s->cap - old) * sizeof *s->next);
    return 0;
}

int yp_seq_check(yp_seqcheck *s, yp_status st, const yp_chunk *c, yp_seq_gap *gap) {
    memset(gap, 0, sizeof *gap);
    if (!c->header_ok || c->h.kind != YP_CHUNK_EVENTS) return 0;
    if (st != YP_OK && st != YP_ERR_CHECKSUM && st != YP_ERR_CORRUPT) return 0;
    uint32_t tid = c->h.thread_id;
    gap->thread_id = tid;
    if (grow(s, tid) == 0) {
        uint32_t want = s->next[tid]; /* seq + 1 of the last one seen */
        if (c->h.seq + 1u > want + 1u) gap->missing_chunks = c->h.seq - want;
        s->next[tid] = c->h.seq + 1u;
    }
    if (st != YP_OK) gap->lost_events = (uint64_t)c->h.n_records + c->h.dropped;
    gap->hole = gap->missing_chunks || st != YP_OK;
    return 1;
}

void yp_seq_free(yp_seqcheck *s) {
    free(s->next);
    s->next = NULL;
    s->cap = 0;
}
