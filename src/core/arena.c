#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/arena.h"
#include "mixreg/checked.h"

/* Saturates at SIZE_MAX, which no allocation gets. */
static size_t round_up(size_t bytes)
{
    size_t padded;
    return mx_size_add(bytes, MX_ARENA_ALIGN - 1, &padded) ? padded & ~(size_t)(MX_ARENA_ALIGN - 1) : SIZE_MAX;
}

void mx_arena_measure(mx_arena *arena)
{
    arena->base = NULL;
    arena->used = arena->capacity = 0;
}

mx_status mx_arena_commit(mx_arena *arena)
{
    size_t bytes = arena->used ? arena->used : MX_ARENA_ALIGN;
    arena->base = bytes < SIZE_MAX ? aligned_alloc(MX_ARENA_ALIGN, bytes) : NULL;
    if (!arena->base) return mx_error_set(MX_ERR_NOMEM, "out of memory planning %zu bytes of buffers", bytes);
    memset(arena->base, 0, bytes);
    arena->capacity = bytes;
    arena->used = 0;
    return MX_OK;
}

void *mx_arena_alloc(mx_arena *arena, size_t bytes)
{
    size_t size = round_up(bytes ? bytes : 1);
    if (!arena->base) {
        /* A total that overflows stays SIZE_MAX, so mx_arena_commit fails cleanly. */
        mx_size_add(arena->used, size, &arena->used);
        return NULL;
    }
    /* The real pass repeats the measured calls, so it always fits. */
    if (size > arena->capacity - arena->used) return NULL;
    void *p = arena->base + arena->used;
    arena->used += size;
    return p;
}

void mx_arena_free(mx_arena *arena)
{
    free(arena->base);
    arena->base = NULL;
    arena->used = arena->capacity = 0;
}
