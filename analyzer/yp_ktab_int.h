/*
 * yp_ktab_int.h — a table of fixed-size records keyed by a non-zero
 * uint64_t (each record's first field): open addressing with linear
 * probing and deletion by backward shift (no tombstones), so its memory is
 * O(records in it now). The suspended coroutines' frames (yp_park.c) and
 * the switched-out greenlets' stacks (yp_stack.c) live in one.
 */
#ifndef YP_KTAB_INT_H
#define YP_KTAB_INT_H

#include <stddef.h>
#include <stdint.h>

typedef struct yp_ktab {
    unsigned char *slots;
    size_t cap, n; /* cap: 0 or a power of two */
    size_t elem;   /* a record's size, its first 8 bytes the key (0: an empty slot) */
} yp_ktab;

/* The record of key (made, zeroed but for its key, when not there); NULL
 * when out of memory. The pointer holds until the next put or take. */
void *yp_ktab_put(yp_ktab *t, uint64_t key);
/* The record of key, or NULL. */
void *yp_ktab_get(const yp_ktab *t, uint64_t key);
/* Copy the record of key into out and remove it: 1, or 0 when none. */
int yp_ktab_take(yp_ktab *t, uint64_t key, void *out);
/* Slot i (0 <= i < cap): a record, or an empty slot (key 0). */
static inline void *yp_ktab_at(const yp_ktab *t, size_t i) { return t->slots + i * t->elem; }
static inline uint64_t yp_ktab_key(const void *rec) { return *(const uint64_t *)rec; }
/* Every record goes (elem is kept). */
void yp_ktab_free(yp_ktab *t);
size_t yp_ktab_bytes(const yp_ktab *t);

#endif
