/* A bump allocator for buffers planned once (activations, gradients, the
 * training step's scratch): one allocation, freed at once, nothing allocated
 * inside the training step. Planned in two passes with the same calls: a
 * measuring pass (mx_arena_measure), then mx_arena_commit and the real pass. */
#ifndef MIXREG_ARENA_H
#define MIXREG_ARENA_H

#include <stddef.h>

#include "mixreg/error.h"

typedef struct {
    unsigned char *base;  /* NULL while measuring */
    size_t used, capacity;
} mx_arena;

#define MX_ARENA_ALIGN 64  /* cache lines, and AVX-512 vectors */

/* Starts a measuring pass: allocations return NULL and only count bytes. */
void mx_arena_measure(mx_arena *arena);
/* Allocates what the measuring pass counted (zero-filled) and rewinds. */
mx_status mx_arena_commit(mx_arena *arena);
/* `bytes` rounded up to MX_ARENA_ALIGN; NULL while measuring. */
void *mx_arena_alloc(mx_arena *arena, size_t bytes);
void mx_arena_free(mx_arena *arena);

#endif
