/* Packing buffers that live at known times into one region: two buffers
 * alive at a common time never share a byte, and the others may (the CNN's
 * memory plan, cnn_memory_plan.c: a gradient goes where an activation the
 * backward no longer reads was). */
#ifndef MIXREG_NN_MEM_PACK_H
#define MIXREG_NN_MEM_PACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t bytes;           /* the packer rounds it up to MX_ARENA_ALIGN */
    const uint64_t *busy;   /* `words` words; bit i (word i / 64, bit i % 64): alive at time i */
    size_t offset;          /* out: where it starts in the region, a multiple of MX_ARENA_ALIGN */
} mx_pack_item;

/* Whether items a and b are alive at a common time. */
int mx_pack_conflict(const mx_pack_item *a, const mx_pack_item *b, size_t words);

/* Places every item (its offset) and returns the region's size: the
 * largest items first, each in the lowest gap between the items it
 * conflicts with that takes it, else after them all. SIZE_MAX when the
 * sizes overflow or there is no memory to plan with. */
size_t mx_pack(mx_pack_item *items, size_t count, size_t words);

#endif
