/* yp_strbuf_int.h — one growing buffer of strings for a yp_stats being
 * built (snapshots, merges): added strings are offsets until the buffer is
 * final, then pointers (OFF, FIX). */
#ifndef YP_STRBUF_INT_H
#define YP_STRBUF_INT_H

#include <stdint.h>
#include <string.h>

#include "yprof/containers.h"

typedef struct yp_strbuf {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed: the buffer is incomplete */
} yp_strbuf;

/* Appends s and returns its offset (0, the empty string's, on failure). */
static inline size_t yp_sb_add(yp_strbuf *b, const char *s) {
    size_t n = strlen(s) + 1;
    if (yp_grow((void **)&b->p, &b->cap, b->len + n, 1, 4096)) {
        b->failed = 1;
        return 0;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return b->len - n;
}

#define YP_SB_OFF(x) ((const char *)(uintptr_t)(x))
#define YP_SB_FIX(base, x) ((x) = (base) + (uintptr_t)(x))

#endif
