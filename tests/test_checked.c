/* Checked size arithmetic, and the model and arena sizes built on it: an
 * overflowing size is refused, never wrapped into a small allocation. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mixreg/arena.h"
#include "mixreg/checked.h"
#include "mixreg/model.h"

static void test_helpers(void)
{
    size_t r;
    CHECK(mx_size_mul(3, 5, &r) && r == 15);
    CHECK(mx_size_mul(SIZE_MAX, 0, &r) && r == 0);
    CHECK(mx_size_mul(SIZE_MAX, 1, &r) && r == SIZE_MAX);
    CHECK(!mx_size_mul(SIZE_MAX / 2 + 1, 2, &r) && r == SIZE_MAX);
    CHECK(!mx_size_mul((size_t)1 << 32, (size_t)1 << 32, &r));
    CHECK(mx_size_add(SIZE_MAX - 1, 1, &r) && r == SIZE_MAX);
    CHECK(!mx_size_add(SIZE_MAX, 1, &r) && r == SIZE_MAX);
    const size_t ok[3] = {2, 3, 7}, wraps[3] = {(size_t)1 << 21, (size_t)1 << 21, (size_t)1 << 22};
    const size_t zero[3] = {SIZE_MAX, SIZE_MAX, 0};
    CHECK(mx_size_product(ok, 3, &r) && r == 42);
    CHECK(mx_size_product(ok, 0, &r) && r == 1);
    CHECK(!mx_size_product(wraps, 3, &r) && r == SIZE_MAX);  /* 2^64: would wrap to 0 */
    CHECK(mx_size_product(zero, 3, &r) && r == 0);
}

static mx_model_spec mlp_spec(size_t c, size_t h, size_t w, size_t classes)
{
    mx_model_spec spec;
    memset(&spec, 0, sizeof spec);
    strcpy(spec.arch, "mlp");
    spec.in_channels = c, spec.in_height = h, spec.in_width = w, spec.num_classes = classes;
    spec.num_hidden = 1;
    spec.hidden[0] = 16;
    return spec;
}

static void test_model_sizes(void)
{
    mx_model *m = NULL;
    mx_model_spec spec = mlp_spec(1, 8, 8, 4);
    CHECK_OK(mx_model_create(&spec, 4, &m));
    mx_model_free(m);
    /* 2^22 x 2^21 x 2^21 = 2^64 values: wraps to 0 unchecked. */
    spec = mlp_spec((size_t)1 << 22, (size_t)1 << 21, (size_t)1 << 21, 4);
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_ARG && m == NULL);
    spec = mlp_spec(1, 65536, 65536, 4);  /* 2^32 values: beyond what BLAS indexes */
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_ARG);
    spec = mlp_spec(1, 8, 8, MX_MODEL_MAX_CLASSES + 1);
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_ARG);
    spec = mlp_spec(1, 8, 8, 4);
    CHECK(mx_model_create(&spec, SIZE_MAX / 8, &m) == MX_ERR_ARG);  /* batch x 64 floats overflows */
    strcpy(spec.arch, "resnet20");
    spec.num_hidden = 0;
    spec.in_height = spec.in_width = (size_t)1 << 40;
    CHECK(mx_model_create(&spec, 1, &m) == MX_ERR_ARG);
    /* The bound a checkpoint sets: 1x8x8 -> 16 -> 4 has 64*16 + 16 + 16*4 + 4 = 1108 values. */
    spec = mlp_spec(1, 8, 8, 4);
    CHECK(mx_model_create_bounded(&spec, 4, 1107, &m) == MX_ERR_FORMAT && m == NULL);
    CHECK_OK(mx_model_create_bounded(&spec, 4, 1108, &m));
    CHECK(m && mx_model_param_count(m) == 1108);
    mx_model_free(m);
    spec.num_hidden = 8;
    for (int l = 0; l < 8; l++) spec.hidden[l] = 65536;  /* 30 billion weights */
    CHECK(mx_model_create_bounded(&spec, 4, (size_t)1 << 20, &m) == MX_ERR_FORMAT);
}

static void test_arena_saturates(void)
{
    mx_arena a;
    memset(&a, 0, sizeof a);
    mx_arena_measure(&a);
    mx_arena_alloc(&a, SIZE_MAX / 2);
    mx_arena_alloc(&a, SIZE_MAX / 2);
    mx_arena_alloc(&a, SIZE_MAX - 3);  /* rounding up alone would wrap */
    CHECK(a.used == SIZE_MAX);
    CHECK(mx_arena_commit(&a) == MX_ERR_NOMEM);
    mx_arena_free(&a);
}

int main(void)
{
    test_helpers();
    test_model_sizes();
    test_arena_saturates();
    CHECK_DONE();
}
