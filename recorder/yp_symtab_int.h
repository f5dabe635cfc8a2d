/* yp_symtab_int.h — symbol table and pointer table (see yp_symtab.c). */
#ifndef YP_SYMTAB_INT_H
#define YP_SYMTAB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "yprof/recorder.h"

uint32_t yp_symtab_add(const char *name, const char *module, const char *filename, uint32_t lineno,
                       int builtin);
uint32_t yp_symtab_count(void);
const yp_symbol *yp_symtab_get(uint32_t id);
uint64_t yp_symtab_bytes(void);
/* fork: hold the table's lock across it (yp_rec_fork_prepare), then let go
 * in the parent and in the child (whose only thread is the one holding it). */
void yp_symtab_fork_lock(void);
void yp_symtab_fork_unlock(void);

#endif
