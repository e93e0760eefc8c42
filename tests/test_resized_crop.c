/* RandomResizedCrop + flip: windows within torchvision's ranges, its
 * fallback for extreme shapes, per-sample determinism, and the pixels. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "mixreg/resized_crop.h"

/* Field by field: a memcmp would also compare the struct's padding bytes,
 * which nothing initialises. */
static int same_draw(const mx_resized_crop_draw *a, const mx_resized_crop_draw *b)
{
    return a->top == b->top && a->left == b->left && a->height == b->height && a->width == b->width &&
           a->flip == b->flip;
}

static void test_draw_ranges(void)
{
    size_t flips = 0, fits = 1, in_range = 1;
    const size_t h = 300, w = 400, draws = 4000;
    for (uint32_t i = 0; i < draws; i++) {
        mx_resized_crop_draw d = mx_resized_crop_draw_for(5, 1, i, h, w);
        fits &= d.top + d.height <= h && d.left + d.width <= w && d.height > 0 && d.width > 0;
        double area = (double)(d.height * d.width) / (double)(h * w), ratio = (double)d.width / (double)d.height;
        /* rounding of each side to whole pixels widens the ranges a little */
        in_range &= area >= 0.08 * 0.95 && area <= 1.0 && ratio >= 0.75 * 0.97 && ratio <= 4.0 / 3.0 * 1.03;
        flips += (size_t)d.flip;
    }
    CHECK(fits);
    CHECK(in_range);
    CHECK(flips > draws * 45 / 100 && flips < draws * 55 / 100);
    mx_resized_crop_draw a = mx_resized_crop_draw_for(5, 1, 17, h, w), b = mx_resized_crop_draw_for(5, 1, 17, h, w),
                         c = mx_resized_crop_draw_for(5, 2, 17, h, w);
    CHECK(same_draw(&a, &b));
    CHECK(!same_draw(&a, &c));
}

/* A 10 x 1000 strip can never hold a window of ratio <= 4/3 with 8% of its
 * area: the fallback takes the full height and 4/3 of it in width, centred. */
static void test_fallback(void)
{
    mx_resized_crop_draw d = mx_resized_crop_draw_for(1, 1, 0, 10, 1000);
    CHECK(d.height == 10 && d.width == 13);
    CHECK(d.top == 0 && d.left == (1000 - 13) / 2);
}

static void test_pixels(void)
{
    enum { C = 3, H = 6, W = 8 };
    uint8_t img[C * H * W], out[C * H * H], out2[C * H * H];
    for (size_t k = 0; k < sizeof img; k++) img[k] = (uint8_t)(k * 7);
    /* The left 6x6 window at its own size: a copy; flipped: mirrored. */
    mx_resized_crop_draw d = {0, 0, H, H, 0};
    CHECK(mx_resized_crop_apply(img, C, H, W, &d, H, out) == MX_OK);
    int copy = 1;
    for (size_t c = 0; c < C; c++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < H; x++) copy &= out[(c * H + y) * H + x] == img[(c * H + y) * W + x];
    CHECK(copy);
    d.flip = 1;
    CHECK(mx_resized_crop_apply(img, C, H, W, &d, H, out2) == MX_OK);
    int mirrored = 1;
    for (size_t c = 0; c < C; c++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < H; x++) mirrored &= out2[(c * H + y) * H + x] == out[(c * H + y) * H + H - 1 - x];
    CHECK(mirrored);
    /* A constant image stays constant at any window and size. */
    memset(img, 77, sizeof img);
    mx_resized_crop_draw e = {1, 2, 4, 5, 1};
    uint8_t big[C * 9 * 9];
    CHECK(mx_resized_crop_apply(img, C, H, W, &e, 9, big) == MX_OK);
    int constant = 1;
    for (size_t k = 0; k < sizeof big; k++) constant &= big[k] == 77;
    CHECK(constant);
    mx_resized_crop_draw bad = {4, 0, 4, 4, 0};
    CHECK(mx_resized_crop_apply(img, C, H, W, &bad, 4, out) == MX_ERR_ARG);
}

int main(void)
{
    test_draw_ranges();
    test_fallback();
    test_pixels();
    CHECK_DONE();
}
