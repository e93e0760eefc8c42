/* Greedy packing by size (see mem_pack.h). Placing the largest buffers first
 * leaves the small ones to fill the gaps between them, each in the lowest
 * gap that takes it. Among buffers of one size the order matters (preact18
 * at batch 128: 296 MiB in the caller's order, 280 with the longest-lived
 * first, the lower bound: the most bytes alive at one time; the
 * best-fitting gap instead of the lowest gave 284-328 and never less on
 * the models tried), so a few orders are tried and the smallest region
 * kept. The plans have at most a few hundred buffers: the quadratic
 * search costs about a millisecond. */
#include <stdlib.h>
#include <string.h>

#include "mixreg/arena.h"
#include "mixreg/checked.h"
#include "nn/mem_pack.h"

typedef struct {
    size_t start, end;
} range;

typedef struct {
    size_t bytes, index, first, alive; /* rounded bytes; first time alive, times alive */
    int order;                         /* the tie-break: ORDER_* */
} by_size;

enum { ORDER_LONGEST, ORDER_EARLIEST, ORDER_GIVEN, ORDERS };

static size_t rounded(size_t bytes)
{
    size_t padded;
    return mx_size_add(bytes, MX_ARENA_ALIGN - 1, &padded) ? padded & ~(size_t)(MX_ARENA_ALIGN - 1) : SIZE_MAX;
}

int mx_pack_conflict(const mx_pack_item *a, const mx_pack_item *b, size_t words)
{
    for (size_t w = 0; w < words; w++)
        if (a->busy[w] & b->busy[w]) return 1;
    return 0;
}

/* The larger first; among equal sizes by the order's tie-break, then in the
 * caller's order, so the plan is the same on every run and machine. */
static int larger_first(const void *pa, const void *pb)
{
    const by_size *a = pa, *b = pb;
    if (a->bytes != b->bytes) return a->bytes > b->bytes ? -1 : 1;
    if (a->order == ORDER_LONGEST && a->alive != b->alive) return a->alive > b->alive ? -1 : 1;
    if (a->order == ORDER_EARLIEST && a->first != b->first) return a->first < b->first ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int by_start(const void *pa, const void *pb)
{
    const range *a = pa, *b = pb;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* One greedy pass in `order`: offsets into at[], returns the region's size. */
static size_t pack_in_order(const mx_pack_item *items, const by_size *order, size_t count, size_t words,
                            range *taken, size_t *at)
{
    size_t total = 0;
    for (size_t n = 0; n < count; n++) {
        const size_t i = order[n].index, need = order[n].bytes;
        size_t m = 0;
        for (size_t j = 0; j < n; j++) {
            const size_t o = order[j].index;
            if (mx_pack_conflict(&items[i], &items[o], words)) taken[m++] = (range){at[o], at[o] + order[j].bytes};
        }
        qsort(taken, m, sizeof *taken, by_start);
        /* end: where the ranges met so far stop; the first gap after it that takes the item wins. */
        size_t end = 0;
        for (size_t r = 0; r < m && !(taken[r].start > end && taken[r].start - end >= need); r++)
            if (taken[r].end > end) end = taken[r].end;
        at[i] = end;
        size_t top;
        if (!mx_size_add(at[i], need, &top)) return SIZE_MAX;
        if (top > total) total = top;
    }
    return total;
}

size_t mx_pack(mx_pack_item *items, size_t count, size_t words)
{
    const size_t n = count ? count : 1;
    by_size *order = malloc(n * sizeof *order);
    range *taken = malloc(n * sizeof *taken);
    size_t *at = malloc(n * sizeof *at), *best_at = malloc(n * sizeof *best_at);
    size_t best = SIZE_MAX;
    int sizes_fit = order && taken && at && best_at;
    for (size_t i = 0; sizes_fit && i < count; i++) {
        order[i] = (by_size){rounded(items[i].bytes), i, 0, 0, 0};
        sizes_fit = order[i].bytes != SIZE_MAX;
        for (size_t t = 0; t < words * 64; t++) {
            if (!(items[i].busy[t / 64] >> (t % 64) & 1)) continue;
            if (!order[i].alive++) order[i].first = t;
        }
    }
    for (int o = 0; sizes_fit && o < ORDERS; o++) {
        for (size_t i = 0; i < count; i++) order[i].order = o;
        qsort(order, count, sizeof *order, larger_first);
        const size_t total = pack_in_order(items, order, count, words, taken, at);
        if (total < best) {
            best = total;
            memcpy(best_at, at, count * sizeof *at);
        }
    }
    for (size_t i = 0; best != SIZE_MAX && i < count; i++) items[i].offset = best_at[i];
    free(order), free(taken), free(at), free(best_at);
    return best;
}
