/* The packer behind the CNN arena (src/nn/mem_pack.c): buffers alive at a
 * common time never share a byte, offsets are aligned, the region is no
 * smaller than the most bytes alive at one time, and reaches it where that
 * is possible (buffers alive at disjoint times, a chain of overlaps). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "mixreg/arena.h"
#include "mixreg/rng.h"
#include "nn/mem_pack.h"

#define MAX_ITEMS 300
#define TIMES 150
#define WORDS ((TIMES + 63) / 64)

static uint64_t bits[MAX_ITEMS][WORDS];
static mx_pack_item items[MAX_ITEMS];

static size_t rounded(size_t bytes) { return (bytes + MX_ARENA_ALIGN - 1) / MX_ARENA_ALIGN * MX_ARENA_ALIGN; }

static void set_item(size_t i, size_t bytes, size_t from, size_t to)
{
    for (size_t w = 0; w < WORDS; w++) bits[i][w] = 0;
    for (size_t t = from; t <= to; t++) bits[i][t / 64] |= (uint64_t)1 << (t % 64);
    items[i] = (mx_pack_item){bytes, bits[i], 0};
}

static void add_span(size_t i, size_t from, size_t to)
{
    for (size_t t = from; t <= to; t++) bits[i][t / 64] |= (uint64_t)1 << (t % 64);
}

/* The most bytes (rounded) alive at one time. */
static size_t lower_bound(size_t n)
{
    size_t best = 0;
    for (size_t t = 0; t < TIMES; t++) {
        size_t sum = 0;
        for (size_t i = 0; i < n; i++)
            if (bits[i][t / 64] >> (t % 64) & 1) sum += rounded(items[i].bytes);
        if (sum > best) best = sum;
    }
    return best;
}

/* Whether the placement is sound: aligned, inside the region, and no two
 * buffers alive at a common time overlapping. */
static int sound(size_t n, size_t total)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i].offset % MX_ARENA_ALIGN || items[i].offset + rounded(items[i].bytes) > total) return 0;
        for (size_t j = 0; j < i; j++) {
            const int overlap = items[i].offset < items[j].offset + rounded(items[j].bytes) &&
                                items[j].offset < items[i].offset + rounded(items[i].bytes);
            if (overlap && mx_pack_conflict(&items[i], &items[j], WORDS)) return 0;
        }
    }
    return 1;
}

static void test_random(void)
{
    mx_rng rng;
    mx_rng_init(&rng, 5, 0);
    double worst = 1.0;
    int all_sound = 1, all_above = 1;
    for (int round = 0; round < 40; round++) {
        const size_t n = 20 + mx_rng_below(&rng, MAX_ITEMS - 20);
        for (size_t i = 0; i < n; i++) {
            const size_t a = mx_rng_below(&rng, TIMES), b = mx_rng_below(&rng, TIMES);
            set_item(i, 1 + mx_rng_below(&rng, 1 << 20), a < b ? a : b, a < b ? b : a);
            if (i % 5 == 0) add_span(i, mx_rng_below(&rng, TIMES), TIMES - 1); /* two stretches, as shared buffers have */
        }
        const size_t total = mx_pack(items, n, WORDS), bound = lower_bound(n);
        all_sound &= sound(n, total);
        all_above &= total >= bound;
        if ((double)total / (double)bound > worst) worst = (double)total / (double)bound;
    }
    CHECK(all_sound && all_above);
    /* Random lifetimes are harder than a network's; still not far off. */
    CHECK(worst < 1.5);
    printf("  40 random sets of up to %d buffers: sound, at most %.2fx the lower bound\n", MAX_ITEMS, worst);
}

static void test_exact_cases(void)
{
    /* Alive at disjoint times: all at offset 0, the largest's size. */
    for (size_t i = 0; i < 10; i++) set_item(i, 1000 * (i + 1), i * 10, i * 10 + 9);
    size_t total = mx_pack(items, 10, WORDS);
    int at_zero = 1;
    for (size_t i = 0; i < 10; i++) at_zero &= items[i].offset == 0;
    CHECK(at_zero && total == rounded(10000));
    /* A chain, each alive with the next alone (a network's activations and
     * gradients): the lower bound. */
    for (size_t i = 0; i < 40; i++) set_item(i, 64 * (1 + (i * 7) % 13), i * 3, i * 3 + 4);
    total = mx_pack(items, 40, WORDS);
    CHECK(sound(40, total) && total == lower_bound(40));
    /* A buffer alive throughout keeps its own memory; one never alive may lie anywhere. */
    set_item(0, 4096, 0, TIMES - 1);
    set_item(1, 4096, 5, 6);
    set_item(2, 100, 1, 0);
    total = mx_pack(items, 3, WORDS);
    CHECK(sound(3, total) && total == 8192 && items[0].offset != items[1].offset);
    /* Nothing to place; sizes that overflow. */
    CHECK(mx_pack(items, 0, WORDS) == 0);
    set_item(0, SIZE_MAX - 8, 0, 1);
    CHECK(mx_pack(items, 1, WORDS) == SIZE_MAX);
    set_item(0, SIZE_MAX / 2 + 1, 0, 1);
    set_item(1, SIZE_MAX / 2 + 1, 1, 2);
    CHECK(mx_pack(items, 2, WORDS) == SIZE_MAX);
}

int main(void)
{
    printf("memory packing\n");
    test_exact_cases();
    test_random();
    CHECK_DONE();
}
