/* The batch loader: batches in order with the right contents whatever the
 * number of workers and depth, mid-epoch starts, epochs abandoned part-way,
 * fill errors passed on, and the in-memory dataset fill. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/loader.h"

enum { DIM = 3 };

/* x[i] = (index, epoch, k); fails for index 666. */
static mx_status fake_fill(void *ctx, const uint32_t *idx, size_t n, uint64_t epoch, float *x, int32_t *labels)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] == 666) return mx_error_set(MX_ERR_FORMAT, "sample %u is corrupt", idx[i]);
        for (size_t k = 0; k < DIM; k++) x[i * DIM + k] = (float)(idx[i] * 100 + epoch * 10 + k);
        labels[i] = (int32_t)idx[i];
    }
    return MX_OK;
}

/* Takes every batch of an epoch and checks it against the order. */
static int check_epoch(mx_loader *l, const uint32_t *order, size_t n, size_t batch, size_t first, uint64_t epoch)
{
    int ok = mx_loader_start_epoch(l, order, n, batch, first, epoch) == MX_OK;
    size_t batches = (n + batch - 1) / batch;
    for (size_t b = first; ok && b < batches; b++) {
        mx_loader_batch got;
        ok = mx_loader_next(l, &got) == MX_OK;
        size_t want_n = n - b * batch < batch ? n - b * batch : batch;
        ok = ok && got.n == want_n;
        for (size_t i = 0; ok && i < got.n; i++) {
            uint32_t idx = order[b * batch + i];
            ok = got.labels[i] == (int32_t)idx && got.x[i * DIM + 2] == (float)(idx * 100 + epoch * 10 + 2);
        }
    }
    mx_loader_batch extra;
    return ok && mx_loader_next(l, &extra) == MX_ERR_ARG;
}

static void test_orders(void)
{
    enum { N = 103 };
    uint32_t order[N];
    for (size_t i = 0; i < N; i++) order[i] = (uint32_t)((i * 37) % N);
    const size_t workers[] = {0, 1, 2, 5}, depths[] = {1, 2, 7};
    for (size_t w = 0; w < 4; w++)
        for (size_t d = 0; d < 3; d++) {
            mx_loader *l;
            CHECK(mx_loader_create(fake_fill, NULL, DIM, 16, workers[w], depths[d], &l) == MX_OK);
            CHECK(check_epoch(l, order, N, 16, 0, 1));
            CHECK(check_epoch(l, order, N, 10, 4, 2));  /* resumed at batch 4, smaller batches */
            /* An epoch abandoned after one batch, then a fresh one. */
            mx_loader_batch got;
            CHECK(mx_loader_start_epoch(l, order, N, 16, 0, 3) == MX_OK);
            CHECK(mx_loader_next(l, &got) == MX_OK && got.labels[0] == (int32_t)order[0]);
            CHECK(check_epoch(l, order, N, 16, 0, 4));
            mx_loader_destroy(l);
        }
}

static void test_errors(void)
{
    uint32_t order[40];
    for (size_t i = 0; i < 40; i++) order[i] = (uint32_t)i;
    order[25] = 666;
    for (size_t w = 0; w < 3; w += 2) {
        mx_loader *l;
        mx_loader_batch got;
        CHECK(mx_loader_create(fake_fill, NULL, DIM, 10, w, 3, &l) == MX_OK);
        CHECK(mx_loader_start_epoch(l, order, 40, 10, 0, 1) == MX_OK);
        CHECK(mx_loader_next(l, &got) == MX_OK && mx_loader_next(l, &got) == MX_OK);
        mx_error_clear();
        CHECK(mx_loader_next(l, &got) == MX_ERR_FORMAT);
        CHECK(strstr(mx_error_message(), "sample 666 is corrupt") != NULL);
        CHECK(mx_loader_start_epoch(l, order, 40, 11, 0, 1) == MX_ERR_ARG);  /* batch above the maximum */
        mx_loader_destroy(l);
    }
    mx_loader *l;
    CHECK(mx_loader_create(fake_fill, NULL, DIM, 10, 1, 0, &l) == MX_ERR_ARG);
    CHECK(mx_loader_create(NULL, NULL, DIM, 10, 1, 2, &l) == MX_ERR_ARG);
}

/* The dataset fill is mx_augment_gather: with no augmentation, the plain gather. */
static void test_dataset_fill(void)
{
    uint8_t pixels[6 * 4];
    int32_t labels[6];
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 11);
    for (size_t i = 0; i < 6; i++) labels[i] = (int32_t)(i % 3);
    mx_dataset ds = {.n = 6, .channels = 1, .height = 2, .width = 2, .num_classes = 3, .pixels = pixels, .labels = labels};
    mx_normalizer nz;
    CHECK(mx_normalizer_init(&nz, 1, (const float[]){0.5f}, (const float[]){0.25f}) == MX_OK);
    mx_dataset_fill fill = {&ds, &nz, mx_augment_config_none(), 3};
    uint32_t order[6] = {5, 0, 3, 1, 4, 2};
    float want[6 * 4], *got_x;
    int32_t want_y[6];
    mx_dataset_gather(&ds, &nz, order, 6, want, want_y);
    mx_loader *l;
    mx_loader_batch got;
    CHECK(mx_loader_create(mx_dataset_fill_batch, &fill, 4, 6, 2, 2, &l) == MX_OK);
    CHECK(mx_loader_start_epoch(l, order, 6, 6, 0, 1) == MX_OK);
    CHECK(mx_loader_next(l, &got) == MX_OK && got.n == 6);
    got_x = (float *)got.x;
    CHECK(memcmp(got_x, want, sizeof want) == 0 && memcmp(got.labels, want_y, sizeof want_y) == 0);
    mx_loader_destroy(l);
}

int main(void)
{
    test_orders();
    test_errors();
    test_dataset_fill();
    CHECK_DONE();
}
