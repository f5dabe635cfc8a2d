/*
 * yp_symtab.c — the recorder's symbol table: function id -> description.
 *
 * Ids are dense, from 1, never reused in a process, so a function keeps its
 * id across start/stop intervals and traces. Every description is kept
 * (O(functions) memory) so a new trace file or a cleared aggregator can be
 * given all of them again. Entries live in fixed blocks that never move, so
 * the flusher can read an entry published before its count without a lock.
 *
 * Writers (the hook's slow path, under the GIL) take the symtab lock to
 * append; readers take it to read the count.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "yp_symtab_int.h"

#define BLOCK_BITS 10
#define BLOCK (1u << BLOCK_BITS)
#define MAX_BLOCKS (YP_FUNC_ID_MAX / BLOCK)

static yp_symbol **g_blocks;     /* MAX_BLOCKS pointers, allocated on first use */
static _Atomic uint32_t g_count; /* symbols stored; ids 1..g_count */
static uint64_t g_bytes;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static char *dup_str(const char *s, uint64_t *bytes) {
    size_t n = s ? strlen(s) : 0;
    if (n > 4096) n = 4096;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    *bytes += n + 1;
    return d;
}

uint32_t yp_symtab_add(const char *name, const char *module, const char *filename, uint32_t lineno,
                       int builtin) {
    uint32_t id = 0;
    pthread_mutex_lock(&g_lock);
    uint32_t n = atomic_load_explicit(&g_count, memory_order_relaxed);
    if (n + 1 >= (uint32_t)MAX_BLOCKS * BLOCK) goto out;
    if (!g_blocks && !(g_blocks = calloc(MAX_BLOCKS, sizeof *g_blocks))) goto out;
    uint32_t b = n >> BLOCK_BITS;
    if (!g_blocks[b] && !(g_blocks[b] = calloc(BLOCK, sizeof(yp_symbol)))) goto out;
    uint64_t bytes = 0;
    yp_symbol *s = &g_blocks[b][n & (BLOCK - 1)];
    char *nm = dup_str(name, &bytes), *md = dup_str(module, &bytes), *fl = dup_str(filename, &bytes);
    if (!nm || !md || !fl) {
        free(nm);
        free(md);
        free(fl);
        goto out;
    }
    s->func_id = n + 1;
    s->lineno = lineno;
    s->builtin = (uint8_t)(builtin > 0 && builtin <= YP_SYM_KIND_MAX ? builtin : builtin ? YP_C_METHOD : 0);
    s->name = nm;
    s->module = md;
    s->filename = fl;
    g_bytes += bytes + sizeof *s;
    id = n + 1;
    /* release: a reader that sees the count sees the entry */
    atomic_store_explicit(&g_count, n + 1, memory_order_release);
out:
    pthread_mutex_unlock(&g_lock);
    return id;
}

uint32_t yp_symtab_count(void) { return atomic_load_explicit(&g_count, memory_order_acquire); }

const yp_symbol *yp_symtab_get(uint32_t id) {
    if (id == 0 || id > yp_symtab_count()) return NULL;
    return &g_blocks[(id - 1) >> BLOCK_BITS][(id - 1) & (BLOCK - 1)];
}

uint64_t yp_symtab_bytes(void) {
    pthread_mutex_lock(&g_lock);
    uint64_t b = g_bytes + (g_blocks ? MAX_BLOCKS * sizeof *g_blocks : 0);
    pthread_mutex_unlock(&g_lock);
    return b;
}

void yp_symtab_fork_lock(void) { pthread_mutex_lock(&g_lock); }
void yp_symtab_fork_unlock(void) { pthread_mutex_unlock(&g_lock); }
