/* Streamed image folders: a streamed dataset holds no pixels, yet every
 * reader (samples, statistics, subsets and splits, gathers with and without
 * augmentation, the loader at any worker count) sees exactly the bytes of the
 * same folder loaded into memory; the random resized crop per sample; bad
 * files (an error naming the file, or replaced by the next image of the
 * class and counted once); and when --stream auto streams. Fixtures are
 * encoded here (image_fixtures.h) under $MIXREG_TEST_TMP. */
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "test_tmp.h"
#include "image_fixtures.h"
#include "mixreg/augment.h"
#include "mixreg/folder.h"
#include "mixreg/loader.h"
#include "mixreg/rescale.h"
#include "mixreg/resized_crop.h"
#include "mixreg/source.h"

#define SIDE 12
#define SAMPLE (3 * SIDE * SIDE)

static void write_png(const char *rel, size_t w, size_t h, unsigned shift)
{
    fx_write_gradient_png(tmp_path(rel), w, h, shift % 3 + 1, 17 * shift);
}

/* A JPEG, cut to `cut` bytes when cut is not 0 (then it fails to decode). */
static void write_jpeg(const char *rel, size_t w, size_t h, size_t cut)
{
    fx_write_gradient_jpeg(tmp_path(rel), w, h, 90, cut);
}

/* good/train: 2 classes of 5 and 4 images (PNG and JPEG, varied sizes). */
static void make_folder(void)
{
    make_dirs("good/train/a");
    make_dirs("good/train/b");
    for (unsigned k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "good/train/a/%u.png", k);
        write_png(name, 20 + 3 * k, 15 + 5 * k, k);
        snprintf(name, sizeof name, "good/train/b/%u.png", k);
        write_png(name, 30 - 2 * k, 18 + k, k + 5);
    }
    write_jpeg("good/train/a/9.jpg", 40, 28, 0);
}

static void load_both(mx_dataset *memory, mx_dataset *streamed)
{
    size_t skipped;
    CHECK_OK(mx_dataset_load_folder(tmp_path("good"), "train", SIDE, 0, &skipped, memory));
    mx_folder_index ix;
    CHECK_OK(mx_folder_index_load(tmp_path("good"), "train", &ix));
    CHECK_OK(mx_dataset_stream_folder(&ix, SIDE, 0, streamed));
    CHECK(ix.paths == NULL && ix.n == 0); /* taken over */
}

static int same_gather(const mx_dataset *a, const mx_dataset *b, const mx_augment_config *cfg, const mx_normalizer *nz,
                       const uint32_t *idx, size_t n)
{
    float *xa = malloc(n * SAMPLE * sizeof(float)), *xb = malloc(n * SAMPLE * sizeof(float));
    int32_t ya[16], yb[16];
    int same = mx_augment_gather(cfg, 7, 3, a, nz, idx, n, xa, ya) == MX_OK &&
               mx_augment_gather(cfg, 7, 3, b, nz, idx, n, xb, yb) == MX_OK &&
               !memcmp(xa, xb, n * SAMPLE * sizeof(float)) && !memcmp(ya, yb, n * sizeof(int32_t));
    free(xa);
    free(xb);
    return same;
}

/* Every reader sees the in-memory bytes. */
static void test_matches_memory(void)
{
    mx_dataset mem, str;
    load_both(&mem, &str);
    CHECK(str.pixels == NULL && str.stream != NULL && str.entries != NULL);
    CHECK(str.n == 9 && mem.n == 9 && str.num_classes == 2 && str.channels == 3 && str.height == SIDE);
    CHECK(!memcmp(str.labels, mem.labels, 9 * sizeof(int32_t)));
    uint8_t scratch[SAMPLE];
    int all_same = 1;
    for (size_t i = 0; i < str.n; i++) {
        const uint8_t *a, *b;
        CHECK_OK(mx_dataset_sample(&mem, i, NULL, &a));
        CHECK_OK(mx_dataset_sample(&str, i, scratch, &b));
        all_same &= a == mem.pixels + i * SAMPLE && b == scratch && !memcmp(a, b, SAMPLE);
    }
    CHECK(all_same);

    float m1[3], s1[3], m2[3], s2[3];
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        CHECK_OK(mx_dataset_channel_stats(&mem, m1, s1));
        CHECK_OK(mx_dataset_channel_stats(&str, m2, s2));
        CHECK(!memcmp(m1, m2, sizeof m1) && !memcmp(s1, s2, sizeof s1));
    }
    mx_normalizer nz;
    CHECK_OK(mx_normalizer_init(&nz, 3, m1, s1));
    uint32_t idx[9] = {8, 0, 3, 5, 1, 7, 2, 6, 4};
    mx_augment_config none = mx_augment_config_none(), crop;
    CHECK_OK(mx_augment_parse("crop:3,flip", &crop));
    CHECK(same_gather(&mem, &str, &none, &nz, idx, 9));
    CHECK(same_gather(&mem, &str, &crop, &nz, idx, 9));
    float x[9 * SAMPLE];
    int32_t y[9];
    CHECK_OK(mx_dataset_gather(&str, &nz, idx, 9, x, y));
    CHECK(y[0] == mem.labels[8]);

    /* The hold-out split selects entries of the same stream. */
    mx_dataset mt, mv, st, sv;
    CHECK_OK(mx_dataset_split(&mem, 5, 0.34, &mt, &mv));
    CHECK_OK(mx_dataset_split(&str, 5, 0.34, &st, &sv));
    CHECK(st.stream == str.stream && sv.stream == str.stream && st.pixels == NULL && sv.n == 3 && st.n == 6);
    CHECK(!memcmp(st.labels, mt.labels, 6 * sizeof(int32_t)));
    uint32_t first[6] = {0, 1, 2, 3, 4, 5};
    CHECK(same_gather(&mt, &st, &crop, &nz, first, 6));
    CHECK(same_gather(&mv, &sv, &none, &nz, first, 3));

    /* Rescale statistics, with the augmentation drawn as in training. */
    mx_rescale_stats ra, rb;
    CHECK_OK(mx_rescale_stats_alloc(&ra, SAMPLE, 2));
    CHECK_OK(mx_rescale_stats_alloc(&rb, SAMPLE, 2));
    CHECK_OK(mx_rescale_stats_compute_augmented(&ra, &mt, &nz, 0.8, &crop, 7, 0));
    CHECK_OK(mx_rescale_stats_compute_augmented(&rb, &st, &nz, 0.8, &crop, 7, 0));
    CHECK(!memcmp(ra.x_bar, rb.x_bar, SAMPLE * sizeof(float)) && !memcmp(ra.y_bar, rb.y_bar, 2 * sizeof(float)));
    mx_rescale_stats_free(&ra);
    mx_rescale_stats_free(&rb);

    /* The stream outlives the dataset it was made for while subsets use it. */
    mx_dataset_free(&str);
    CHECK(same_gather(&mt, &st, &crop, &nz, first, 6));
    mx_dataset_free(&st);
    CHECK(same_gather(&mv, &sv, &none, &nz, first, 3));
    mx_dataset_free(&sv);
    mx_dataset_free(&mt);
    mx_dataset_free(&mv);
    mx_dataset_free(&mem);
}

/* Fills epochs 1 and 2 through the loader into out (2 x 9 samples). */
static void run_loader(const mx_dataset *ds, const mx_normalizer *nz, const mx_augment_config *cfg, size_t workers,
                       float *out)
{
    mx_dataset_fill fill = {ds, nz, *cfg, 11};
    mx_loader *l;
    CHECK_OK(mx_loader_create(mx_dataset_fill_batch, &fill, SAMPLE, 4, workers, 2 * workers + 1, &l));
    uint32_t order[9] = {4, 2, 7, 0, 8, 1, 5, 3, 6};
    size_t at = 0;
    for (uint64_t epoch = 1; epoch <= 2 && l; epoch++) {
        CHECK_OK(mx_loader_start_epoch(l, order, 9, 4, 0, epoch));
        for (size_t b = 0; b < 3; b++) {
            mx_loader_batch batch;
            CHECK_OK(mx_loader_next(l, &batch));
            memcpy(out + at, batch.x, batch.n * SAMPLE * sizeof(float));
            at += batch.n * SAMPLE;
        }
    }
    mx_loader_destroy(l);
}

/* The training recipe on a streamed folder: per sample from (seed, epoch,
 * sample number), the same batches for 0, 1 and 3 workers. */
static void test_resized_crop(void)
{
    mx_dataset mem, str;
    load_both(&mem, &str);
    mx_augment_config rrc, rrc_flip;
    CHECK_OK(mx_augment_parse("rrc", &rrc));
    CHECK_OK(mx_augment_parse("rrc,flip", &rrc_flip));
    CHECK(rrc.resized_crop && !rrc.hflip && rrc_flip.resized_crop && rrc_flip.hflip);
    CHECK(mx_augment_random(&rrc, SIDE, SIDE));

    /* Sample 4 of a split is its file drawn for number 4, not the file's. */
    mx_dataset train, val;
    CHECK_OK(mx_dataset_split(&str, 1, 0.3, &train, &val));
    mx_folder_index ix;
    CHECK_OK(mx_folder_index_load(tmp_path("good"), "train", &ix));
    uint8_t got[SAMPLE], want[SAMPLE], plain[SAMPLE];
    CHECK_OK(mx_augment_sample(&rrc_flip, 3, 2, &train, 4, NULL, got));
    CHECK_OK(mx_folder_load_sample_train_as(&ix, train.entries[4], 4, SIDE, 3, 2, 1, want));
    CHECK(!memcmp(got, want, SAMPLE));
    CHECK_OK(mx_augment_sample(&rrc, 3, 2, &train, 4, NULL, plain));
    CHECK_OK(mx_folder_load_sample_train_as(&ix, train.entries[4], 4, SIDE, 3, 2, 0, want));
    CHECK(!memcmp(plain, want, SAMPLE));
    /* Whole folder, numbers = index positions: the existing training sample. */
    CHECK_OK(mx_dataset_sample_resized_crop(&str, 6, 1, 3, 2, got));
    CHECK_OK(mx_folder_load_sample_train(&ix, 6, SIDE, 3, 2, want));
    CHECK(!memcmp(got, want, SAMPLE));
    mx_folder_index_free(&ix);

    float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    mx_normalizer nz;
    CHECK_OK(mx_normalizer_init(&nz, 3, mean, std));
    size_t total = 18 * SAMPLE;
    float *ref = malloc(total * sizeof(float)), *other = malloc(total * sizeof(float));
    run_loader(&str, &nz, &rrc_flip, 0, ref);
    for (size_t workers = 1; workers <= 3; workers += 2) {
        omp_set_num_threads(2);
        run_loader(&str, &nz, &rrc_flip, workers, other);
        CHECK(!memcmp(ref, other, total * sizeof(float)));
    }
    /* Epochs draw differently. */
    CHECK(memcmp(ref, ref + 9 * SAMPLE, 9 * SAMPLE * sizeof(float)) != 0);
    /* The crop needs the originals: not from memory. */
    uint32_t idx[1] = {0};
    CHECK_FAILS(mx_augment_gather(&rrc, 1, 1, &mem, &nz, idx, 1, ref, NULL), MX_ERR_ARG, "rrc needs the original images");
    CHECK_FAILS(mx_dataset_sample_resized_crop(&mem, 0, 1, 1, 1, got), MX_ERR_ARG, "original images");
    free(ref);
    free(other);
    mx_dataset_free(&train);
    mx_dataset_free(&val);
    mx_dataset_free(&str);
    mx_dataset_free(&mem);
}

static mx_status stream_dir(const char *rel, int skip_bad, mx_dataset *out)
{
    mx_folder_index ix;
    mx_status st = mx_folder_index_load(tmp_path(rel), "train", &ix);
    if (st == MX_OK) st = mx_dataset_stream_folder(&ix, SIDE, skip_bad, out);
    mx_folder_index_free(&ix);
    return st;
}

/* bad/train/a: 0.png, 1_cut.jpg (truncated), 2.png; b: 3.png, 4_cut.jpg, 5.png. */
static void test_bad_files(void)
{
    make_dirs("bad/train/a");
    make_dirs("bad/train/b");
    write_png("bad/train/a/0.png", 20, 20, 1);
    write_jpeg("bad/train/a/1_cut.jpg", 60, 40, 500);
    write_png("bad/train/a/2.png", 25, 18, 2);
    write_png("bad/train/b/3.png", 22, 30, 3);
    write_jpeg("bad/train/b/4_cut.jpg", 50, 50, 400);
    write_png("bad/train/b/5.png", 26, 26, 4);
    mx_dataset ds;
    CHECK_OK(stream_dir("bad", 0, &ds));
    CHECK(ds.n == 6); /* nothing is decoded up front */
    float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    mx_normalizer nz;
    CHECK_OK(mx_normalizer_init(&nz, 3, mean, std));
    float x[6 * SAMPLE];
    uint32_t good[3] = {0, 2, 3}, all[6] = {5, 4, 3, 2, 1, 0};
    CHECK_OK(mx_dataset_gather(&ds, &nz, good, 3, x, NULL));
    /* The first bad sample in batch order is the one named, at any thread count. */
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        CHECK_FAILS(mx_dataset_gather(&ds, &nz, all, 6, x, NULL), MX_ERR_FORMAT, "bad/train/b/4_cut.jpg");
    }
    float m[3], s[3];
    CHECK_FAILS(mx_dataset_channel_stats(&ds, m, s), MX_ERR_FORMAT, "bad/train/a/1_cut.jpg");
    CHECK(mx_dataset_bad_images(&ds) == 0);
    mx_dataset_free(&ds);

    /* Skipping: each bad sample is the next of its class that decodes. */
    CHECK_OK(stream_dir("bad", 1, &ds));
    uint8_t scratch[SAMPLE], want[SAMPLE];
    const uint8_t *px, *wp;
    CHECK_OK(mx_dataset_sample(&ds, 1, scratch, &px));
    memcpy(want, px, SAMPLE);
    CHECK_OK(mx_dataset_sample(&ds, 2, scratch, &wp));
    CHECK(!memcmp(want, wp, SAMPLE));
    CHECK(mx_dataset_bad_images(&ds) == 1);
    CHECK_OK(mx_dataset_sample(&ds, 4, scratch, &px));
    memcpy(want, px, SAMPLE);
    CHECK_OK(mx_dataset_sample(&ds, 5, scratch, &wp));
    CHECK(!memcmp(want, wp, SAMPLE));
    /* Counted once however often met; the labels stay the samples' own. */
    int32_t y[6];
    for (int rep = 0; rep < 3; rep++) CHECK_OK(mx_dataset_gather(&ds, &nz, all, 6, x, y));
    CHECK(mx_dataset_bad_images(&ds) == 2);
    CHECK(y[1] == 1 && y[4] == 0);
    /* The training recipe draws for the bad sample's own number. */
    mx_folder_index ix;
    CHECK_OK(mx_folder_index_load(tmp_path("bad"), "train", &ix));
    CHECK_OK(mx_dataset_sample_resized_crop(&ds, 1, 1, 9, 1, scratch));
    CHECK_OK(mx_folder_load_sample_train_as(&ix, 2, 1, SIDE, 9, 1, 1, want));
    CHECK(!memcmp(scratch, want, SAMPLE));
    mx_folder_index_free(&ix);
    /* In a subset the replacement comes from the subset: here the class's
     * only other sample wraps round from the end. */
    mx_dataset sub;
    uint32_t pick[3] = {2, 3, 1};
    CHECK_OK(mx_dataset_subset(&ds, pick, 3, &sub));
    const uint8_t *a, *b;
    uint8_t scratch2[SAMPLE];
    CHECK_OK(mx_dataset_sample(&sub, 2, scratch, &a));
    CHECK_OK(mx_dataset_sample(&sub, 0, scratch2, &b));
    CHECK(!memcmp(a, b, SAMPLE));
    mx_dataset_free(&sub);
    mx_dataset_free(&ds);

    /* A class whose every image is bad cannot be stood in for. */
    make_dirs("allbad/train/x");
    make_dirs("allbad/train/y");
    write_jpeg("allbad/train/x/only.jpg", 30, 30, 300);
    write_png("allbad/train/y/fine.png", 20, 20, 0);
    CHECK_OK(stream_dir("allbad", 1, &ds));
    CHECK_FAILS(mx_dataset_sample(&ds, 0, scratch, &px), MX_ERR_FORMAT, "no image of class 'x' in this set could be decoded");
    CHECK_OK(mx_dataset_sample(&ds, 1, scratch, &px));
    mx_dataset_free(&ds);
}

/* --stream auto streams a split larger than the budget; on and off force it. */
static void test_auto(void)
{
    char spec[4200];
    snprintf(spec, sizeof spec, "folder:%s", tmp_path("good"));
    mx_data_options opts = mx_data_options_default();
    CHECK(opts.stream == MX_STREAMING_AUTO);
    opts.image_size = SIDE;
    mx_dataset ds;
    opts.memory_budget = 9 * SAMPLE; /* exactly fits: in memory */
    CHECK_OK(mx_data_load_with(spec, "train", &opts, &ds));
    CHECK(ds.pixels != NULL && ds.stream == NULL && ds.n == 9);
    mx_dataset_free(&ds);
    opts.memory_budget = 9 * SAMPLE - 1;
    CHECK_OK(mx_data_load_with(spec, "train", &opts, &ds));
    CHECK(ds.pixels == NULL && ds.stream != NULL && ds.n == 9);
    mx_dataset_free(&ds);
    opts.stream = MX_STREAMING_OFF;
    CHECK_OK(mx_data_load_with(spec, "train", &opts, &ds));
    CHECK(ds.pixels != NULL);
    mx_dataset_free(&ds);
    opts.stream = MX_STREAMING_ON;
    opts.memory_budget = 0;
    CHECK_OK(mx_data_load_with(spec, "train", &opts, &ds));
    CHECK(ds.pixels == NULL && ds.stream != NULL);
    mx_dataset_free(&ds);
    CHECK(mx_data_memory_budget() > 0);
    mx_streaming mode;
    CHECK_OK(mx_streaming_parse("--stream", "off", &mode));
    CHECK(mode == MX_STREAMING_OFF && !strcmp(mx_streaming_name(MX_STREAMING_ON), "on"));
    CHECK_FAILS(mx_streaming_parse("--stream", "maybe", &mode), MX_ERR_ARG, "--stream: unknown 'maybe'");
}

/* The statistics' subsample of a large streamed set: evenly spaced, first
 * sample first, increasing. Only the stream pointer's presence matters. */
static void test_subsample(void)
{
    int dummy;
    mx_dataset big = {.n = 25000, .channels = 3, .height = 8, .width = 8, .stream = (mx_stream *)&dummy};
    CHECK(mx_dataset_stats_count(&big) == MX_STATS_SUBSAMPLE);
    CHECK(mx_dataset_stats_index(&big, 0) == 0 && mx_dataset_stats_index(&big, 1) == 2);
    CHECK(mx_dataset_stats_index(&big, MX_STATS_SUBSAMPLE - 1) == 24997);
    int increasing = 1;
    for (size_t k = 1; k < MX_STATS_SUBSAMPLE; k++)
        increasing &= mx_dataset_stats_index(&big, k) > mx_dataset_stats_index(&big, k - 1);
    CHECK(increasing);
    mx_dataset small = big;
    small.n = 300;
    CHECK(mx_dataset_stats_count(&small) == 300 && mx_dataset_stats_index(&small, 299) == 299);
    mx_dataset memory = {.n = 25000, .channels = 1, .height = 1, .width = 1};
    CHECK(mx_dataset_stats_count(&memory) == 25000 && mx_dataset_bad_images(&memory) == 0);
}

int main(void)
{
    make_temp_root_for("test_stream");
    make_folder();
    test_matches_memory();
    test_resized_crop();
    test_bad_files();
    test_auto();
    test_subsample();
    remove_tree(g_tmp);
    CHECK_DONE();
}
