/* Decoding part of an image (mx_image_source_*, mx_image_decode_region):
 * a JPEG window decoded alone is exactly that window of the full decode (every
 * chroma sampling, gray, CMYK, YCCK, progressive; odd offsets and sizes, the
 * borders, the whole image), a window decoded at a reduced DCT scale is that
 * part of the scaled full decode, the streaming resize equals crop + resize +
 * flip of the full decode bit for bit (and stays close with DCT scaling),
 * errors inside or above the window still name the file while damage below
 * it goes unread, every decode from one source is a fresh one (tables a file
 * defines after its scan do not carry over), and mx_folder_load_sample_train equals the recipe applied to
 * the full decode. Fixtures are encoded here (image_fixtures.h). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "test_tmp.h"
#include "image_fixtures.h"
#include "mixreg/image.h"
#include "mixreg/resized_crop.h"


static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* w x h pixels of `comps` interleaved channels that look like a photo to a
 * JPEG encoder: smooth gradients, noise of +-noise levels, and a few sharp
 * rectangles of colour (so chroma changes abruptly, which is where cropped
 * chroma upsampling would show). */
static uint8_t *photo(size_t w, size_t h, size_t comps, int noise, uint32_t seed)
{
    uint8_t *p = malloc(w * h * comps);
    if (!p) fx_die("out of memory");
    uint32_t s = seed;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            for (size_t c = 0; c < comps; c++) {
                int v = fx_gradient(c % 3, x, y) / 2 + 60 + (int)(c / 3) * 40;
                if (((x / 23 + y / 17 + c) % 5) == 0) v = (int)((c * 97 + x / 23 * 31 + y / 17 * 57) % 256);
                if (noise) v += (int)(lcg(&s) % (2u * (unsigned)noise + 1)) - noise;
                p[(y * w + x) * comps + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return p;
}

typedef struct {
    const char *name;
    int quality, chroma, progressive;
    J_COLOR_SPACE in, stored;
} jpeg_kind;

static const jpeg_kind KINDS[] = {
    {"420.jpg", 90, 0, 0, JCS_RGB, JCS_UNKNOWN},
    {"444.jpg", 90, 1, 0, JCS_RGB, JCS_UNKNOWN},
    {"422.jpg", 90, 422, 0, JCS_RGB, JCS_UNKNOWN},
    {"440.jpg", 90, 440, 0, JCS_RGB, JCS_UNKNOWN},
    {"gray.jpg", 90, 0, 0, JCS_GRAYSCALE, JCS_UNKNOWN},
    {"cmyk.jpg", 90, 0, 0, JCS_CMYK, JCS_UNKNOWN},
    {"ycck.jpg", 90, 0, 0, JCS_CMYK, JCS_YCCK},
    {"progressive-420.jpg", 85, 0, 1, JCS_RGB, JCS_UNKNOWN},
    {"stored-rgb.jpg", 95, 1, 0, JCS_RGB, JCS_RGB},
};
#define NKINDS (sizeof KINDS / sizeof *KINDS)

static fx_buf encode_kind(const jpeg_kind *k, size_t w, size_t h, int noise, uint32_t seed)
{
    size_t comps = k->in == JCS_GRAYSCALE ? 1 : k->in == JCS_CMYK ? 4 : 3;
    uint8_t *px = photo(w, h, comps, noise, seed);
    fx_jpeg_options o = {k->quality, k->chroma, k->progressive, k->stored, 0};
    fx_buf b = fx_encode_jpeg(px, w, h, k->in, &o);
    free(px);
    return b;
}

typedef struct {
    size_t top, left, height, width;
} window;

/* Fixed windows of interest in an h x w image, then `extra` random ones. */
static size_t make_windows(size_t h, size_t w, window *out, size_t extra, uint32_t seed)
{
    const window fixed[] = {
        {0, 0, h, w},                 /* the whole image */
        {0, 0, 1, 1},
        {h - 1, w - 1, 1, 1},
        {0, 16, 40, 32},              /* left edge on an iMCU boundary */
        {16, 32, 16, 16},             /* all four edges on iMCU boundaries */
        {17, 15, 33, 47},
        {1, 1, h - 2, w - 2},
        {h - 47, w - 16, 47, 16},     /* the bottom right corner */
        {h - 1, 0, 1, w},             /* the last row */
        {0, w - 1, h, 1},             /* the last column */
        {7, 9, 8, 8},
        {h / 2, w / 2 - 1, h - h / 2, 3},
    };
    size_t n = sizeof fixed / sizeof *fixed;
    memcpy(out, fixed, sizeof fixed);
    uint32_t s = seed;
    for (size_t i = 0; i < extra; i++) {
        window *v = out + n + i;
        v->height = 1 + lcg(&s) % h;
        v->width = 1 + lcg(&s) % w;
        v->top = lcg(&s) % (h - v->height + 1);
        v->left = lcg(&s) % (w - v->width + 1);
    }
    return n + extra;
}

/* Largest |a - b| between the window (top, left, wh x ww) of full (fh x fw)
 * and region (wh x ww). */
static int window_diff(const uint8_t *full, size_t fh, size_t fw, const uint8_t *region, size_t top, size_t left,
                       size_t wh, size_t ww)
{
    int worst = 0;
    for (size_t c = 0; c < 3; c++)
        for (size_t y = 0; y < wh; y++)
            for (size_t x = 0; x < ww; x++) {
                int a = full[(c * fh + top + y) * fw + left + x], b = region[(c * wh + y) * ww + x];
                int d = a > b ? a - b : b - a;
                if (d > worst) worst = d;
            }
    return worst;
}

/* ---- full-scale windows: exactly the full decode's pixels ---------------------- */

static void test_region_exact(void)
{
    const size_t W = 203, H = 147;
    window wins[12 + 60];
    size_t nw = make_windows(H, W, wins, 60, 7);
    for (size_t k = 0; k < NKINDS; k++) {
        fx_buf j = encode_kind(&KINDS[k], W, H, 20, (uint32_t)k + 1);
        mx_image full;
        CHECK_OK(mx_image_decode(KINDS[k].name, j.data, j.len, NULL, &full));
        mx_image_source *src;
        mx_image_info info;
        CHECK_OK(mx_image_source_open(KINDS[k].name, j.data, j.len, NULL, &src, &info));
        CHECK(info.format == MX_IMAGE_JPEG && info.height == H && info.width == W);
        size_t exact = 0, placed = 0;
        for (size_t i = 0; i < nw; i++) {
            const window *v = wins + i;
            mx_image r;
            mx_image_region where;
            /* min sizes of 0: never scaled, whatever the window */
            mx_status st = mx_image_source_decode_region(src, v->top, v->left, v->height, v->width, 0, 0, &r, &where);
            if (st != MX_OK) {
                fprintf(stderr, "%s window %zux%zu at (%zu, %zu): %s\n", KINDS[k].name, v->width, v->height,
                        v->left, v->top, mx_error_message());
                continue;
            }
            placed += r.height == v->height && r.width == v->width && where.scale_denom == 1 &&
                      where.top == v->top && where.left == v->left && where.box_top == 0 && where.box_left == 0 &&
                      where.box_height == (double)v->height && where.box_width == (double)v->width;
            int d = window_diff(full.pixels, H, W, r.pixels, v->top, v->left, v->height, v->width);
            if (d) fprintf(stderr, "%s window %zux%zu at (%zu, %zu): off by up to %d\n", KINDS[k].name, v->width,
                           v->height, v->left, v->top, d);
            exact += d == 0;
            mx_image_free(&r);
        }
        CHECK(placed == nw);
        CHECK(exact == nw);
        mx_image_source_close(src);
        /* The one-shot form. */
        mx_image r;
        CHECK_OK(mx_image_decode_region(KINDS[k].name, j.data, j.len, NULL, 33, 61, 50, 70, 0, 0, &r, NULL));
        CHECK(r.height == 50 && r.width == 70 && window_diff(full.pixels, H, W, r.pixels, 33, 61, 50, 70) == 0);
        mx_image_free(&r);
        mx_image_free(&full);
        free(j.data);
    }
}

/* Images smaller than an iMCU or one pixel wide or tall: every window. */
static void test_region_tiny(void)
{
    static const size_t sizes[][2] = {{9, 7}, {1, 1}, {17, 1}, {1, 18}, {33, 20}};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        size_t W = sizes[z][0], H = sizes[z][1];
        for (size_t k = 0; k < NKINDS; k++) {
            fx_buf j = encode_kind(&KINDS[k], W, H, 30, (uint32_t)(k + 13 * z));
            mx_image full;
            CHECK_OK(mx_image_decode(KINDS[k].name, j.data, j.len, NULL, &full));
            mx_image_source *src;
            CHECK_OK(mx_image_source_open(KINDS[k].name, j.data, j.len, NULL, &src, NULL));
            size_t windows = 0, exact = 0;
            for (size_t top = 0; top < H; top++)
                for (size_t left = 0; left < W; left++)
                    for (size_t h = 1; top + h <= H; h += 1 + (H > 9) * 2)
                        for (size_t w = 1; left + w <= W; w += 1 + (W > 9) * 2) {
                            mx_image r;
                            windows++;
                            if (mx_image_source_decode_region(src, top, left, h, w, 0, 0, &r, NULL) != MX_OK) {
                                fprintf(stderr, "%s %zux%zu: %s\n", KINDS[k].name, W, H, mx_error_message());
                                continue;
                            }
                            exact += r.height == h && r.width == w &&
                                     window_diff(full.pixels, H, W, r.pixels, top, left, h, w) == 0;
                            mx_image_free(&r);
                        }
            if (exact != windows)
                fprintf(stderr, "%s %zux%zu: %zu of %zu windows differ\n", KINDS[k].name, W, H, windows - exact,
                        windows);
            CHECK(exact == windows);
            mx_image_source_close(src);
            mx_image_free(&full);
            free(j.data);
        }
    }
}

/* A 1x1 JPEG whose one block holds detail (a noisy 8x8 image with the frame
 * header's size patched to 1x1, as a crafted file can have): asked for a
 * shorter side of at least 1, the decoder must not pick a DCT reduction that
 * keeps the size (1/8 of 1x1 is 1x1, but only the block's average), so the
 * reduced decode, the full decode and every window agree. */
static void test_one_pixel_with_detail(void)
{
    for (size_t k = 0; k < NKINDS; k++) {
        fx_buf j = encode_kind(&KINDS[k], 8, 8, 120, (uint32_t)k + 77);
        size_t sof = 0;
        for (size_t i = 2; i + 9 < j.len && !sof; i++)
            if (j.data[i] == 0xFF && (j.data[i + 1] == 0xC0 || j.data[i + 1] == 0xC1 || j.data[i + 1] == 0xC2)) sof = i;
        CHECK(sof);
        if (!sof) continue;
        j.data[sof + 5] = 0, j.data[sof + 6] = 1, j.data[sof + 7] = 0, j.data[sof + 8] = 1; /* height, width */
        mx_image full, reduced, cut;
        mx_image_decode_options least = {1, 0};
        CHECK_OK(mx_image_decode(KINDS[k].name, j.data, j.len, NULL, &full));
        CHECK_OK(mx_image_decode(KINDS[k].name, j.data, j.len, &least, &reduced));
        CHECK(full.height == 1 && full.width == 1 && reduced.height == 1 && reduced.width == 1);
        CHECK(!memcmp(full.pixels, reduced.pixels, 3));
        mx_image_source *src;
        CHECK_OK(mx_image_source_open(KINDS[k].name, j.data, j.len, &least, &src, NULL));
        CHECK_OK(mx_image_source_decode_region(src, 0, 0, 1, 1, 0, 0, &cut, NULL));
        CHECK(!memcmp(full.pixels, cut.pixels, 3));
        mx_image_source_close(src);
        mx_image_free(&cut);
        mx_image_free(&reduced);
        mx_image_free(&full);
        free(j.data);
    }
}

/* PNG: the window cut from the whole decode. */
static void test_region_png(void)
{
    const size_t W = 61, H = 45;
    uint8_t *rgb = photo(W, H, 3, 30, 9);
    fx_buf p = fx_encode_png_rgb(rgb, W, H);
    mx_image full, r;
    mx_image_region where;
    CHECK_OK(mx_image_decode("a.png", p.data, p.len, NULL, &full));
    mx_image_source *src;
    mx_image_info info;
    CHECK_OK(mx_image_source_open("a.png", p.data, p.len, NULL, &src, &info));
    CHECK(info.format == MX_IMAGE_PNG && info.height == H && info.width == W);
    CHECK_OK(mx_image_source_decode_region(src, 5, 7, 30, 41, 2, 2, &r, &where)); /* never scaled */
    CHECK(r.height == 30 && r.width == 41 && where.scale_denom == 1 && where.top == 5 && where.left == 7);
    CHECK(window_diff(full.pixels, H, W, r.pixels, 5, 7, 30, 41) == 0);
    mx_image_free(&r);
    mx_image_source_close(src);
    mx_image_free(&full);
    free(p.data);
    free(rgb);
}

/* ---- reduced DCT scale: that part of the scaled full decode --------------------- */

static void test_region_scaled(void)
{
    const size_t W = 611, H = 493;
    static const jpeg_kind kind = {"big.jpg", 90, 0, 0, JCS_RGB, JCS_UNKNOWN};
    fx_buf j = encode_kind(&kind, W, H, 10, 3);
    mx_image_source *src;
    CHECK_OK(mx_image_source_open("big.jpg", j.data, j.len, NULL, &src, NULL));
    static const struct {
        window v;
        size_t min_h, min_w;
        unsigned denom;
    } cases[] = {
        {{13, 21, 400, 300}, 100, 100, 2},   /* 300 / 4 < 100 */
        {{13, 21, 400, 300}, 50, 75, 4},
        {{0, 0, 493, 611}, 61, 76, 8},       /* whole image at 1/8 */
        {{0, 0, 493, 611}, 62, 10, 4},       /* 493 / 8 < 62 */
        {{101, 203, 99, 257}, 40, 40, 2},
        {{7, 5, 480, 600}, 100, 1000, 1},    /* never 10x */
        {{300, 400, 193, 211}, 24, 26, 8},   /* to the bottom right corner */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const window *v = &cases[i].v;
        unsigned d = cases[i].denom;
        mx_image r;
        mx_image_region where;
        CHECK_OK(mx_image_source_decode_region(src, v->top, v->left, v->height, v->width, cases[i].min_h,
                                               cases[i].min_w, &r, &where));
        CHECK(where.scale_denom == d);
        size_t y0 = v->top / d, x0 = v->left / d;
        size_t y1 = (v->top + v->height + d - 1) / d, x1 = (v->left + v->width + d - 1) / d;
        size_t sh = (H + d - 1) / d, sw = (W + d - 1) / d;
        if (y1 > sh) y1 = sh;
        if (x1 > sw) x1 = sw;
        CHECK(where.top == y0 && where.left == x0 && r.height == y1 - y0 && r.width == x1 - x0);
        CHECK(where.box_top == (double)v->top / d - (double)y0 && where.box_left == (double)v->left / d - (double)x0);
        CHECK(where.box_height == (double)v->height / d && where.box_width == (double)v->width / d);
        /* The full decode at the same scale: min_side = the shorter side / d. */
        mx_image_decode_options o = {(H + d - 1) / d, 0};
        mx_image full;
        CHECK_OK(mx_image_decode("big.jpg", j.data, j.len, &o, &full));
        CHECK(full.height == sh && full.width == sw);
        if (full.height == sh && r.height == y1 - y0 && r.width == x1 - x0)
            CHECK(window_diff(full.pixels, sh, sw, r.pixels, y0, x0, r.height, r.width) == 0);
        mx_image_free(&full);
        mx_image_free(&r);
    }
    mx_image_source_close(src);
    free(j.data);
}

/* ---- the streaming resize -------------------------------------------------------- */

/* What mx_image_source_resized_crop stands for: the full decode, the window
 * cut out, mx_image_resize, the flip (mx_resized_crop_apply does all but the
 * decode). */
static void reference(const mx_image *full, const window *v, size_t side, int flip, uint8_t *out)
{
    mx_resized_crop_draw d = {v->top, v->left, v->height, v->width, flip};
    if (mx_resized_crop_apply(full->pixels, 3, full->height, full->width, &d, side, out) != MX_OK)
        fx_die("reference resize");
}

static void test_resized_exact(void)
{
    const size_t W = 203, H = 147;
    window wins[12 + 30];
    size_t nw = make_windows(H, W, wins, 30, 11);
    static const size_t sides[] = {224, 64, 9, 1};
    uint8_t *got = malloc(3 * 224 * 224), *want = malloc(3 * 224 * 224);
    for (size_t k = 0; k <= NKINDS; k++) { /* NKINDS: a PNG */
        fx_buf b;
        const char *name;
        if (k < NKINDS) {
            b = encode_kind(&KINDS[k], W, H, 20, (uint32_t)k + 40);
            name = KINDS[k].name;
        } else {
            uint8_t *rgb = photo(W, H, 3, 20, 99);
            b = fx_encode_png_rgb(rgb, W, H);
            free(rgb);
            name = "photo.png";
        }
        mx_image full;
        CHECK_OK(mx_image_decode(name, b.data, b.len, NULL, &full));
        mx_image_source *src;
        CHECK_OK(mx_image_source_open(name, b.data, b.len, NULL, &src, NULL));
        size_t same = 0, runs = 0;
        for (size_t i = 0; i < nw; i++)
            for (size_t s = 0; s < sizeof sides / sizeof *sides; s++) {
                const window *v = wins + i;
                size_t side = sides[s];
                int flip = (int)((i + s) & 1);
                /* DCT scaling allowed at 224, where no window of this
                 * image is twice the side; off at the smaller sides. */
                int scaling = side == 224;
                reference(&full, v, side, flip, want);
                memset(got, 0, 3 * side * side);
                mx_status st = mx_image_source_resized_crop(src, v->top, v->left, v->height, v->width, side, side,
                                                            flip, scaling, got);
                runs++;
                if (st != MX_OK) {
                    fprintf(stderr, "%s: %s\n", name, mx_error_message());
                    continue;
                }
                int ok = !memcmp(got, want, 3 * side * side);
                if (!ok)
                    fprintf(stderr, "%s window %zux%zu at (%zu, %zu) to %zu%s: differs from the reference\n", name,
                            v->width, v->height, v->left, v->top, side, flip ? " flipped" : "");
                same += (size_t)ok;
            }
        CHECK(same == runs);
        /* Non-square output, down in one dimension and up in the other. */
        window v = {3, 5, 100, 31};
        uint8_t small[3 * 40 * 70], crop[3 * 100 * 31];
        CHECK_OK(mx_image_source_resized_crop(src, v.top, v.left, v.height, v.width, 40, 70, 0, 0, small));
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < v.height; y++)
                memcpy(crop + (c * v.height + y) * v.width, full.pixels + (c * H + v.top + y) * W + v.left, v.width);
        CHECK_OK(mx_image_resize(crop, 3, v.height, v.width, 1, want, 40, 70));
        CHECK(!memcmp(small, want, sizeof small));
        mx_image_source_close(src);
        mx_image_free(&full);
        free(b.data);
    }
    free(got);
    free(want);
}

/* With DCT scaling: close to the full-resolution result. */
static void test_resized_scaled(void)
{
    const size_t W = 800, H = 600, side = 96;
    uint8_t *got = malloc(3 * side * side), *want = malloc(3 * side * side);
    static const int noises[] = {3, 12};
    for (size_t n = 0; n < 2; n++) {
        static const jpeg_kind kind = {"scaled.jpg", 90, 0, 0, JCS_RGB, JCS_UNKNOWN};
        fx_buf j = encode_kind(&kind, W, H, noises[n], 5);
        mx_image full;
        CHECK_OK(mx_image_decode("scaled.jpg", j.data, j.len, NULL, &full));
        mx_image_source *src;
        CHECK_OK(mx_image_source_open("scaled.jpg", j.data, j.len, NULL, &src, NULL));
        static const window wins[] = {
            {0, 0, 600, 800}, {13, 17, 400, 500}, {101, 7, 197, 301}, {5, 399, 595, 401}, {211, 123, 389, 389},
        };
        double total = 0;
        size_t count = 0;
        int worst = 0;
        for (size_t i = 0; i < sizeof wins / sizeof *wins; i++) {
            const window *v = wins + i;
            reference(&full, v, side, (int)(i & 1), want);
            CHECK_OK(mx_image_source_resized_crop(src, v->top, v->left, v->height, v->width, side, side,
                                                  (int)(i & 1), 1, got));
            for (size_t p = 0; p < 3 * side * side; p++) {
                int d = got[p] > want[p] ? got[p] - want[p] : want[p] - got[p];
                total += d;
                if (d > worst) worst = d;
            }
            count += 3 * side * side;
        }
        double mean = total / (double)count;
        printf("DCT-scaled resize, noise +-%d: mean |difference| %.3f, max %d (of 255)\n", noises[n], mean, worst);
        CHECK(mean < 2.0);
        CHECK(worst <= 40);
        mx_image_source_close(src);
        mx_image_free(&full);
        free(j.data);
    }
    free(got);
    free(want);
}

/* ---- damaged files ----------------------------------------------------------------- */

static void test_damaged(void)
{
    const size_t W = 203, H = 147;
    fx_buf j = encode_kind(&KINDS[0], W, H, 20, 21);
    mx_image full, r;
    CHECK_OK(mx_image_decode("whole.jpg", j.data, j.len, NULL, &full));
    size_t cut = j.len * 6 / 10;
    CHECK_FAILS(mx_image_decode("cut.jpg", j.data, cut, NULL, &r), MX_ERR_FORMAT, "cut.jpg: truncated JPEG");
    mx_image_source *src;
    CHECK_OK(mx_image_source_open("cut.jpg", j.data, cut, NULL, &src, NULL)); /* the header is whole */
    /* The window in the rows the data still holds: fine, and exact. */
    CHECK_OK(mx_image_source_decode_region(src, 2, 30, 20, 100, 0, 0, &r, NULL));
    CHECK(window_diff(full.pixels, H, W, r.pixels, 2, 30, 20, 100) == 0);
    mx_image_free(&r);
    /* Reaching past the end of the data: an error naming the file. */
    CHECK_FAILS(mx_image_source_decode_region(src, H - 20, 30, 20, 100, 0, 0, &r, NULL), MX_ERR_FORMAT,
                "cut.jpg: truncated JPEG");
    CHECK(r.pixels == NULL);
    CHECK_FAILS(mx_image_source_decode_region(src, 0, 0, H, W, 0, 0, &r, NULL), MX_ERR_FORMAT,
                "cut.jpg: truncated JPEG");
    uint8_t out[3 * 32 * 32];
    CHECK_FAILS(mx_image_source_resized_crop(src, H - 30, 0, 30, 30, 32, 32, 0, 1, out), MX_ERR_FORMAT,
                "cut.jpg: truncated JPEG");
    /* The source is still usable after a failure. */
    CHECK_OK(mx_image_source_decode_region(src, 0, 0, 16, W, 0, 0, &r, NULL));
    CHECK(window_diff(full.pixels, H, W, r.pixels, 0, 0, 16, W) == 0);
    mx_image_free(&r);
    CHECK_OK(mx_image_source_resized_crop(src, 0, 0, 30, 30, 32, 32, 0, 1, out));
    mx_image_source_close(src);

    /* Without the end marker: a full decode reads to it and fails, a window
     * that ends before the last row never gets there. */
    CHECK_FAILS(mx_image_decode("no-eoi.jpg", j.data, j.len - 2, NULL, &r), MX_ERR_FORMAT, "no-eoi.jpg: truncated");
    CHECK_OK(mx_image_decode_region("no-eoi.jpg", j.data, j.len - 2, NULL, 10, 10, 100, 100, 0, 0, &r, NULL));
    mx_image_free(&r);
    CHECK_FAILS(mx_image_decode_region("no-eoi.jpg", j.data, j.len - 2, NULL, 10, 10, H - 10, 100, 0, 0, &r, NULL),
                MX_ERR_FORMAT, "no-eoi.jpg: truncated");

    /* Damage the source must see: a header cut short, garbage after the
     * magic bytes, absurd dimensions, bad windows. */
    CHECK_FAILS(mx_image_source_open("head.jpg", j.data, 40, NULL, &src, NULL), MX_ERR_FORMAT,
                "head.jpg: truncated JPEG");
    CHECK(src == NULL);
    uint8_t garbage[600];
    memcpy(garbage, j.data, 3);
    for (size_t i = 3; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 37 + 11);
    CHECK_FAILS(mx_image_source_open("junk.jpg", garbage, sizeof garbage, NULL, &src, NULL), MX_ERR_FORMAT,
                "junk.jpg: corrupt JPEG: ");
    CHECK_FAILS(mx_image_source_open("empty.jpg", "", 0, NULL, &src, NULL), MX_ERR_FORMAT, "empty.jpg: the file is empty");
    CHECK_FAILS(mx_image_source_open("text.jpg", "hello", 5, NULL, &src, NULL), MX_ERR_FORMAT,
                "text.jpg: not a JPEG or PNG image");
    mx_image_decode_options small = {0, 1000};
    CHECK_FAILS(mx_image_source_open("limit.jpg", j.data, j.len, &small, &src, NULL), MX_ERR_FORMAT,
                "limit.jpg: JPEG image of 203x147 pixels (width x height) is over the limit of 1000 pixels");
    CHECK_OK(mx_image_source_open("whole.jpg", j.data, j.len, NULL, &src, NULL));
    CHECK_FAILS(mx_image_source_decode_region(src, 100, 0, 48, 10, 0, 0, &r, NULL), MX_ERR_ARG,
                "whole.jpg: a 10x48 window at (0, 100) does not fit in the 203x147 image");
    CHECK_FAILS(mx_image_source_decode_region(src, 0, 0, 0, 10, 0, 0, &r, NULL), MX_ERR_ARG, "whole.jpg: a 10x0");
    CHECK_FAILS(mx_image_source_resized_crop(src, 0, 200, 10, 4, 8, 8, 0, 1, out), MX_ERR_ARG,
                "whole.jpg: a 4x10 window at (200, 0)");
    CHECK_FAILS(mx_image_source_resized_crop(src, 0, 0, 10, 4, 0, 8, 0, 1, out), MX_ERR_ARG, "whole.jpg: ");
    mx_image_source_close(src);
    mx_image_free(&full);

    /* A PNG cut short fails at open (it is decoded whole there). */
    uint8_t *rgb = photo(40, 30, 3, 10, 1);
    fx_buf p = fx_encode_png_rgb(rgb, 40, 30);
    CHECK_FAILS(mx_image_source_open("cut.png", p.data, p.len / 2, NULL, &src, NULL), MX_ERR_FORMAT,
                "cut.png: corrupt PNG: truncated");
    free(p.data);
    free(rgb);
    free(j.data);
}

/* ---- a table redefined after the scan ------------------------------------------- */

/* The offset of the first DHT segment (FF C4) defining table `id` (its class
 * and slot byte: 0x11 for the chroma AC table), or 0. Walks libjpeg's
 * output, which has one table a segment and no padding between segments. */
static size_t find_dht(const uint8_t *d, size_t len, uint8_t id)
{
    for (size_t i = 2; i + 4 < len && d[i] == 0xFF && d[i + 1] != 0xDA; i += 2 + (size_t)(d[i + 2] << 8 | d[i + 3]))
        if (d[i + 1] == 0xC4 && d[i + 4] == id) return i;
    return 0;
}

/* libjpeg keeps its Huffman and quantization tables from one decode to the
 * next and fills a table the file never defines with the standard one. A
 * file that leaves the chroma AC table out before its scan and defines
 * another one after it (read only by a decode that goes on to the end
 * marker) must not decode differently from the same source's second call
 * on: every decode is a fresh one. */
static void test_tables_after_scan(void)
{
    const size_t W = 64, H = 48;
    fx_buf j = encode_kind(&KINDS[0], W, H, 20, 5);
    size_t ac1 = find_dht(j.data, j.len, 0x11), ac0 = find_dht(j.data, j.len, 0x10);
    CHECK(ac1 && ac0 && j.data[j.len - 2] == 0xFF && j.data[j.len - 1] == 0xD9);
    if (!ac1 || !ac0) {
        free(j.data);
        return;
    }
    size_t ac1_len = 2 + (size_t)(j.data[ac1 + 2] << 8 | j.data[ac1 + 3]);
    size_t ac0_len = 2 + (size_t)(j.data[ac0 + 2] << 8 | j.data[ac0 + 3]);
    /* Without the chroma AC table (the decoder's default is the same
     * standard table libjpeg wrote), and the luminance one sitting in that
     * slot after the scan. */
    uint8_t *crafted = malloc(j.len + ac0_len);
    if (!crafted) fx_die("out of memory");
    size_t n = 0;
    memcpy(crafted, j.data, ac1), n = ac1;
    memcpy(crafted + n, j.data + ac1 + ac1_len, j.len - 2 - ac1 - ac1_len), n += j.len - 2 - ac1 - ac1_len;
    memcpy(crafted + n, j.data + ac0, ac0_len), crafted[n + 4] = 0x11, n += ac0_len;
    crafted[n++] = 0xFF, crafted[n++] = 0xD9;
    mx_image full, r;
    CHECK_OK(mx_image_decode("crafted.jpg", crafted, n, NULL, &full));
    CHECK_OK(mx_image_decode("plain.jpg", j.data, j.len, NULL, &r));
    CHECK(full.pixels && r.pixels && window_diff(r.pixels, H, W, full.pixels, 0, 0, H, W) == 0);
    mx_image_free(&r);
    mx_image_source *src;
    CHECK_OK(mx_image_source_open("crafted.jpg", crafted, n, NULL, &src, NULL));
    uint8_t got[3 * 8 * 8], want[3 * 8 * 8];
    for (int pass = 0; pass < 3; pass++) { /* the first call reads the late table, the others come after it */
        CHECK_OK(mx_image_source_decode_region(src, 0, 0, H, W, 0, 0, &r, NULL));
        CHECK(r.pixels && window_diff(full.pixels, H, W, r.pixels, 0, 0, H, W) == 0);
        mx_image_free(&r);
        CHECK_OK(mx_image_source_decode_region(src, 9, 21, 30, 17, 0, 0, &r, NULL));
        CHECK(r.pixels && window_diff(full.pixels, H, W, r.pixels, 9, 21, 30, 17) == 0);
        mx_image_free(&r);
        CHECK_OK(mx_image_source_resized_crop(src, 0, 0, H, W, 8, 8, 0, 0, got));
        CHECK_OK(mx_image_resize(full.pixels, 3, H, W, 1, want, 8, 8));
        CHECK(memcmp(got, want, sizeof got) == 0);
    }
    mx_image_source_close(src);
    mx_image_free(&full);
    free(crafted);
    free(j.data);
}

/* ---- the training sample ---------------------------------------------------------- */

static void test_load_sample_train(void)
{
    make_temp_root_for("test_image_region");
    char path[4600];
    snprintf(path, sizeof path, "%s/train", g_tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/train/a", g_tmp);
    mkdir(path, 0755);
    /* Two JPEGs and a PNG small enough that no window is twice the side of
     * 64 (exact), and a large JPEG, where most are (DCT-scaled). */
    static const struct { const char *name; size_t w, h; int png; } files[] = {
        {"0.jpg", 120, 90, 0}, {"1.jpg", 97, 127, 0}, {"2.png", 110, 100, 1}, {"3.jpg", 900, 700, 0},
    };
    for (size_t f = 0; f < 4; f++) {
        uint8_t *rgb = photo(files[f].w, files[f].h, 3, 12, (uint32_t)f + 70);
        fx_jpeg_options o = {90, 0, 0, JCS_UNKNOWN, 0};
        fx_buf b = files[f].png ? fx_encode_png_rgb(rgb, files[f].w, files[f].h)
                                : fx_encode_jpeg(rgb, files[f].w, files[f].h, JCS_RGB, &o);
        snprintf(path, sizeof path, "%s/train/a/%s", g_tmp, files[f].name);
        fx_write_file(path, b.data, b.len);
        free(b.data);
        free(rgb);
    }
    mx_folder_index index;
    CHECK_OK(mx_folder_index_load(g_tmp, "train", &index));
    CHECK(index.n == 4);
    const size_t side = 64;
    uint8_t got[3 * 64 * 64], want[3 * 64 * 64];
    size_t exact = 0, exact_runs = 0;
    double total = 0;
    int worst = 0;
    for (uint64_t epoch = 1; epoch <= 12; epoch++)
        for (size_t i = 0; i < index.n; i++) {
            CHECK_OK(mx_folder_load_sample_train(&index, i, side, 42, epoch, got));
            mx_image full;
            CHECK_OK(mx_image_read(index.paths[i], NULL, &full));
            mx_resized_crop_draw d = mx_resized_crop_draw_for(42, epoch, (uint32_t)i, full.height, full.width);
            CHECK_OK(mx_resized_crop_apply(full.pixels, 3, full.height, full.width, &d, side, want));
            mx_image_free(&full);
            if (i < 3) {
                exact_runs++;
                exact += !memcmp(got, want, sizeof got);
            } else {
                for (size_t p = 0; p < sizeof got; p++) {
                    int diff = got[p] > want[p] ? got[p] - want[p] : want[p] - got[p];
                    total += diff;
                    if (diff > worst) worst = diff;
                }
            }
        }
    CHECK(exact == exact_runs);
    double mean = total / (12.0 * sizeof got);
    printf("training samples of a 900x700 JPEG at side 64 (mostly DCT-scaled): mean |difference| %.3f, max %d\n",
           mean, worst);
    CHECK(mean < 2.0);
    CHECK(worst <= 40);
    /* A file gone bad after indexing: the error names it. */
    snprintf(path, sizeof path, "%s/train/a/1.jpg", g_tmp);
    fx_write_file(path, "\xff\xd8\xff", 3);
    CHECK_FAILS(mx_folder_load_sample_train(&index, 1, side, 42, 1, got), MX_ERR_FORMAT, "1.jpg: ");
    mx_folder_index_free(&index);
    remove_tree(g_tmp);
}

int main(void)
{
    test_region_exact();
    test_region_tiny();
    test_region_png();
    test_region_scaled();
    test_resized_exact();
    test_resized_scaled();
    test_damaged();
    test_tables_after_scan();
    test_one_pixel_with_detail();
    test_load_sample_train();
    CHECK_DONE();
}
