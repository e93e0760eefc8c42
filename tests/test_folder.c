/* Image-folder datasets: indexing order and filtering, split aliases, the
 * errors (empty class, no classes, bad files with and without skipping),
 * samples against the image functions by hand, whole-folder loading at any
 * thread count; and class maps. Fixtures are encoded here (image_fixtures.h)
 * under $MIXREG_TEST_TMP. */
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "test_tmp.h"
#include "image_fixtures.h"
#include "mixreg/folder.h"
#include "mixreg/image.h"


/* A w x h PNG of the gradient shifted by `shift` (so files differ). */
static void write_png(const char *rel, size_t w, size_t h, unsigned shift)
{
    fx_write_gradient_png(tmp_path(rel), w, h, 1, shift);
}

static void write_jpeg(const char *rel, size_t w, size_t h, size_t cut)
{
    fx_write_gradient_jpeg(tmp_path(rel), w, h, 92, cut);
}

static void write_text(const char *rel, const char *text) { fx_write_file(tmp_path(rel), text, strlen(text)); }

/* ---- indexing ---------------------------------------------------------------- */

/* data/train: classes "Zebra" < "apple" < "cat" in strcmp order (not the
 * locale's), with non-images, hidden files and nested directories mixed in. */
static void make_tree(void)
{
    make_dirs("data/train/apple/nested");
    make_dirs("data/train/Zebra");
    make_dirs("data/train/cat");
    make_dirs("data/train/.hidden_class");
    write_png("data/train/apple/b.png", 40, 30, 1);
    write_jpeg("data/train/apple/A.JPG", 64, 48, 0);
    write_png("data/train/apple/c.jpeg", 33, 50, 2); /* a PNG named .jpeg: decoded by content */
    write_text("data/train/apple/notes.txt", "not an image");
    write_png("data/train/apple/.hidden.png", 20, 20, 0);
    write_png("data/train/apple/nested/deep.png", 20, 20, 0);
    write_jpeg("data/train/Zebra/z1.jpeg", 50, 70, 0);
    write_png("data/train/cat/x.Png", 30, 30, 3);
    write_jpeg("data/train/cat/y.jpg", 100, 60, 0);
    write_png("data/train/.hidden_class/h.png", 20, 20, 0);
    write_text("data/train/README", "class directories only");
    make_dirs("data/test/one");
    write_png("data/test/one/t.png", 20, 25, 4);
}

static void test_index(void)
{
    mx_folder_index ix;
    CHECK_OK(mx_folder_index_load(tmp_path("data"), "train", &ix));
    CHECK(ix.num_classes == 3);
    if (ix.num_classes == 3)
        CHECK(!strcmp(ix.class_names[0], "Zebra") && !strcmp(ix.class_names[1], "apple") &&
              !strcmp(ix.class_names[2], "cat"));
    static const char *files[] = {"Zebra/z1.jpeg", "apple/A.JPG", "apple/b.png", "apple/c.jpeg", "cat/x.Png",
                                  "cat/y.jpg"};
    static const int32_t labels[] = {0, 1, 1, 1, 2, 2};
    CHECK(ix.n == 6);
    CHECK(!strcmp(ix.root, tmp_path("data/train")));
    for (size_t i = 0; i < ix.n && i < 6; i++) {
        char want[8192];
        snprintf(want, sizeof want, "%s/%s", tmp_path("data/train"), files[i]);
        CHECK(!strcmp(ix.paths[i], want));
        CHECK(ix.labels[i] == labels[i]);
    }
    mx_folder_index_free(&ix);
    CHECK(ix.paths == NULL && ix.n == 0);

    /* val is missing: test stands in; and the other way round. */
    CHECK_OK(mx_folder_index_load(tmp_path("data"), "val", &ix));
    CHECK(ix.n == 1 && ix.num_classes == 1 && !strcmp(ix.root, tmp_path("data/test")));
    mx_folder_index_free(&ix);
    make_dirs("valonly/val/k");
    write_png("valonly/val/k/v.png", 20, 20, 0);
    CHECK_OK(mx_folder_index_load(tmp_path("valonly"), "test", &ix));
    CHECK(ix.n == 1 && !strcmp(ix.root, tmp_path("valonly/val")));
    mx_folder_index_free(&ix);
    /* No split: DIR is the split directory. */
    CHECK_OK(mx_folder_index_load(tmp_path("data/train"), "", &ix));
    CHECK(ix.n == 6 && ix.num_classes == 3);
    mx_folder_index_free(&ix);
    CHECK_OK(mx_folder_index_load(tmp_path("data/train"), NULL, &ix));
    CHECK(ix.n == 6);
    mx_folder_index_free(&ix);
    /* The evaluation split of a folder without splits (ObjectNet's images/): DIR itself. */
    CHECK_OK(mx_folder_index_load(tmp_path("data/train"), "val", &ix));
    CHECK(ix.n == 6 && ix.num_classes == 3 && !strcmp(ix.root, tmp_path("data/train")));
    mx_folder_index_free(&ix);
}

static void test_index_errors(void)
{
    mx_folder_index ix;
    CHECK_FAILS(mx_folder_index_load(tmp_path("data"), "dev", &ix), MX_ERR_ARG, "unknown split 'dev'");
    CHECK_FAILS(mx_folder_index_load(tmp_path("valonly"), "train", &ix), MX_ERR_IO, "no split directory");
    CHECK_FAILS(mx_folder_index_load(tmp_path("nowhere"), "train", &ix), MX_ERR_IO, tmp_path("nowhere"));
    CHECK(ix.n == 0 && ix.paths == NULL);

    make_dirs("empty/train/full");
    make_dirs("empty/train/hollow");
    write_png("empty/train/full/f.png", 20, 20, 0);
    write_text("empty/train/hollow/readme.txt", "no images here");
    CHECK_FAILS(mx_folder_index_load(tmp_path("empty"), "train", &ix), MX_ERR_FORMAT, tmp_path("empty/train/hollow"));
    CHECK_FAILS(mx_folder_index_load(tmp_path("empty"), "train", &ix), MX_ERR_FORMAT, "holds no .jpg, .jpeg or .png files");

    make_dirs("flat/train");
    write_png("flat/train/loose.png", 20, 20, 0);
    CHECK_FAILS(mx_folder_index_load(tmp_path("flat"), "train", &ix), MX_ERR_FORMAT, "no class directories");
}

/* ---- samples and whole folders --------------------------------------------- */

/* Sample i by hand: decode (with the reduced JPEG scale) and the recipe. */
static int sample_by_hand(const char *path, size_t side, uint8_t *out)
{
    size_t shorter = mx_image_eval_resize(side);
    mx_image_decode_options o = {shorter, 0};
    mx_image img;
    if (mx_image_read(path, &o, &img) != MX_OK) return 0;
    mx_status st = mx_image_resize_center_crop(img.pixels, 3, img.height, img.width, shorter, side, 1, out);
    mx_image_free(&img);
    return st == MX_OK;
}

static void test_samples(void)
{
    mx_folder_index ix;
    CHECK_OK(mx_folder_index_load(tmp_path("data"), "train", &ix));
    size_t side = 16, sample = 3 * side * side;
    uint8_t got[3 * 16 * 16], want[3 * 16 * 16];
    for (size_t i = 0; i < ix.n; i++) {
        CHECK_OK(mx_folder_load_sample(&ix, i, side, got));
        CHECK(sample_by_hand(ix.paths[i], side, want));
        CHECK(!memcmp(got, want, sample));
    }
    CHECK_FAILS(mx_folder_load_sample(&ix, ix.n, side, got), MX_ERR_ARG, "sample 6 of 6");
    CHECK_FAILS(mx_folder_load_sample(&ix, 0, 0, got), MX_ERR_ARG, "image side 0");

    /* A constant image gives a constant sample. */
    make_dirs("flatcolour/train/c");
    uint8_t rgb[45 * 31 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i % 3 == 0 ? 10 : i % 3 == 1 ? 200 : 99);
    fx_buf b = fx_encode_png_rgb(rgb, 45, 31);
    fx_write_file(tmp_path("flatcolour/train/c/p.png"), b.data, b.len);
    free(b.data);
    mx_folder_index flat;
    CHECK_OK(mx_folder_index_load(tmp_path("flatcolour"), "train", &flat));
    uint8_t flat_sample[3 * 24 * 24];
    CHECK_OK(mx_folder_load_sample(&flat, 0, 24, flat_sample));
    size_t ok = 1;
    for (size_t p = 0; p < 24 * 24; p++)
        ok &= flat_sample[p] == 10 && flat_sample[576 + p] == 200 && flat_sample[1152 + p] == 99;
    CHECK(ok);
    mx_folder_index_free(&flat);

    /* The whole folder, at 1 and 2 threads: the same dataset. */
    mx_dataset ds[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t + 1);
        size_t skipped = 99;
        CHECK_OK(mx_dataset_load_folder(tmp_path("data"), "train", side, 0, &skipped, &ds[t]));
        CHECK(skipped == 0);
        CHECK(ds[t].n == 6 && ds[t].channels == 3 && ds[t].height == side && ds[t].width == side);
        CHECK(ds[t].num_classes == 3);
    }
    CHECK(!memcmp(ds[0].pixels, ds[1].pixels, 6 * sample) && !memcmp(ds[0].labels, ds[1].labels, 6 * 4));
    for (size_t i = 0; i < 6; i++) {
        CHECK(ds[0].labels[i] == ix.labels[i]);
        CHECK(sample_by_hand(ix.paths[i], side, want));
        CHECK(!memcmp(ds[0].pixels + i * sample, want, sample));
    }
    mx_dataset_free(&ds[0]);
    mx_dataset_free(&ds[1]);
    mx_folder_index_free(&ix);
}

/* Bad files: the first (in index order) is the error, or with skip_bad all
 * are left out and counted. */
static void test_bad_files(void)
{
    make_dirs("bad/val/a");
    make_dirs("bad/val/b");
    write_png("bad/val/a/1.png", 30, 20, 0);
    write_jpeg("bad/val/a/2_truncated.jpg", 80, 60, 700);
    write_png("bad/val/a/3.png", 20, 30, 5);
    write_text("bad/val/b/0_garbage.png", "this is not a PNG at all");
    write_jpeg("bad/val/b/4.jpg", 40, 40, 0);
    write_png("bad/val/b/5.png", 25, 25, 7);

    mx_dataset ds;
    size_t skipped = 99;
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        CHECK_FAILS(mx_dataset_load_folder(tmp_path("bad"), "val", 8, 0, &skipped, &ds), MX_ERR_FORMAT,
                    "bad/val/a/2_truncated.jpg: truncated JPEG");
        CHECK(ds.pixels == NULL && ds.n == 0);
    }
    mx_folder_index ix;
    CHECK_OK(mx_folder_index_load(tmp_path("bad"), "val", &ix));
    uint8_t s[3 * 8 * 8];
    CHECK_FAILS(mx_folder_load_sample(&ix, 3, 8, s), MX_ERR_FORMAT,
                "bad/val/b/0_garbage.png: not a JPEG or PNG image");

    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        CHECK_OK(mx_dataset_load_folder(tmp_path("bad"), "val", 8, 1, &skipped, &ds));
        CHECK(skipped == 2 && ds.n == 4 && ds.num_classes == 2);
        static const size_t kept[] = {0, 2, 4, 5};
        for (size_t k = 0; k < ds.n && k < 4; k++) {
            CHECK(ds.labels[k] == ix.labels[kept[k]]);
            uint8_t want[3 * 8 * 8];
            CHECK(sample_by_hand(ix.paths[kept[k]], 8, want));
            CHECK(!memcmp(ds.pixels + k * sizeof want, want, sizeof want));
        }
        mx_dataset_free(&ds);
    }
    mx_folder_index_free(&ix);

    make_dirs("allbad/train/x");
    write_text("allbad/train/x/a.jpg", "");
    write_text("allbad/train/x/b.jpg", "\xff\xd8\xff");
    CHECK_FAILS(mx_dataset_load_folder(tmp_path("allbad"), "train", 8, 1, &skipped, &ds), MX_ERR_FORMAT,
                "none of the 2 images could be decoded (the first: ");
    CHECK_FAILS(mx_dataset_load_folder(tmp_path("allbad"), "train", 8, 1, &skipped, &ds), MX_ERR_FORMAT,
                "allbad/train/x/a.jpg: the file is empty");
    omp_set_num_threads(1);
}

/* ---- class maps ------------------------------------------------------------------ */

static char *g_names[] = {"alarm_clock", "banana", "coffee mug", "dog"};

static void test_class_map(void)
{
    const char *text = "# ObjectNet-style map\n"
                       "\n"
                       "alarm_clock\t3\n"
                       "  banana  1, 5 ,7   # trailing comment\r\n"
                       "coffee mug \t 2\n"
                       "\t\n";
    mx_class_map m;
    CHECK_OK(mx_class_map_parse("map.txt", text, strlen(text), g_names, 4, 10, &m));
    CHECK(m.num_dataset_classes == 4 && m.num_model_classes == 10);
    CHECK(m.first[0] == 0 && m.first[1] == 1 && m.first[2] == 4 && m.first[3] == 5 && m.first[4] == 5);
    CHECK(m.model_class[0] == 3 && m.model_class[1] == 1 && m.model_class[2] == 5 && m.model_class[3] == 7 &&
          m.model_class[4] == 2);
    CHECK(mx_class_map_correct(&m, 1, 5) && mx_class_map_correct(&m, 0, 3) && !mx_class_map_correct(&m, 0, 5));
    CHECK(!mx_class_map_correct(&m, 3, 0) && !mx_class_map_correct(&m, 4, 3) && !mx_class_map_correct(&m, -1, 3));
    float scores[10] = {9, 0.5f, 0.1f, 0.2f, 8, 0.3f, 7, 0.4f, 6, 5};
    CHECK(mx_class_map_predict(&m, scores) == 1); /* 0, 4, 6, 8, 9 are not mapped */
    scores[7] = 0.5f;
    CHECK(mx_class_map_predict(&m, scores) == 1); /* ties: the smaller index */
    scores[2] = 3;
    CHECK(mx_class_map_predict(&m, scores) == 2);
    mx_class_map_free(&m);
    CHECK(m.first == NULL);

    /* From a file: errors name it. */
    write_text("map.txt", "banana 4\ndog 0,9\n");
    CHECK_OK(mx_class_map_load(tmp_path("map.txt"), g_names, 4, 10, &m));
    CHECK(m.first[4] == 3 && mx_class_map_correct(&m, 3, 9));
    mx_class_map_free(&m);
    write_text("map.txt", "banana 4\nbanana 5\n");
    CHECK_FAILS(mx_class_map_load(tmp_path("map.txt"), g_names, 4, 10, &m), MX_ERR_FORMAT,
                "map.txt: line 2: class 'banana' is mapped twice (first on line 1)");
    CHECK(m.first == NULL);
    CHECK_FAILS(mx_class_map_load(tmp_path("nomap.txt"), g_names, 4, 10, &m), MX_ERR_IO, "nomap.txt");

    static const struct {
        const char *text, *message;
    } bad[] = {
        {"cat 1\n", "m: line 1: 'cat' is not a class of the dataset"},
        {"# c\nbanana 10\n", "m: line 2: model class index 10 is out of range (the model has 10 classes, 0 to 9)"},
        {"banana 99999999999999999999999\n", "m: line 1: model class index 99999999999999999999999 is out of range"},
        {"banana x\n", "m: line 1: 'x' is not a model class index"},
        {"banana -1\n", "m: line 1: '-1' is not a model class index"},
        {"banana 1,,2\n", "m: line 1: ',' is not a model class index"},
        {"banana 1,\n", "m: line 1: ',' is not a model class index"},
        {"banana 1 2\n", "m: line 1: '1 2' is not a model class index"},
        {"banana 1,2,1\n", "m: line 1: model class index 1 appears twice for 'banana'"},
        {"\n\ndog\n", "m: line 3: no model class index after 'dog'"},
        {"dog   # nothing\n", "m: line 1: no model class index after 'dog'"},
        {"\t3\n", "m: line 1: no model class index after '3'"},
        {"coffee mug 2\n", "m: line 1: 'coffee' is not a class of the dataset"},
        {"# only comments\n\n", "m: the class map maps no class"},
        {"", "m: the class map maps no class"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        CHECK_FAILS(mx_class_map_parse("m", bad[k].text, strlen(bad[k].text), g_names, 4, 10, &m), MX_ERR_FORMAT,
                    bad[k].message);
    CHECK_FAILS(mx_class_map_parse("m", "dog 1\0 2\n", 9, g_names, 4, 10, &m), MX_ERR_FORMAT, "m: line 1: a NUL byte");
    CHECK_FAILS(mx_class_map_parse("m", "dog 1\n", 6, g_names, 4, 0, &m), MX_ERR_ARG, "a model with 0 classes");
}

/* ---- class names: matched by name, kept with a model ----------------------- */

/* A dataset of n 3x1x1 samples of the given labels over the named classes. */
static mx_dataset named_dataset(char *const *names, size_t classes, const int32_t *labels, size_t n)
{
    mx_dataset ds = {0};
    ds.n = n;
    ds.channels = 3, ds.height = ds.width = 1;
    ds.num_classes = classes;
    ds.labels = malloc(n * sizeof *ds.labels + 1);
    memcpy(ds.labels, labels, n * sizeof *labels);
    ds.pixels = calloc(3 * n, 1);
    CHECK_OK(mx_class_names_copy(names, classes, &ds.class_names));
    return ds;
}

static void test_match_classes(void)
{
    char *model[] = {"ant", "bee", "cow", "dog"};
    char note[512];
    /* A val folder without "ant" (its classes sorted: bee, cow, dog): by
     * position bee would be scored as ant, cow as bee... */
    char *val[] = {"bee", "cow", "dog"};
    int32_t labels[] = {0, 1, 2, 2, 0};
    mx_dataset ds = named_dataset(val, 3, labels, 5);
    CHECK_OK(mx_dataset_match_classes(&ds, "val", model, 4, note, sizeof note));
    int32_t want[] = {1, 2, 3, 3, 1};
    CHECK(!memcmp(ds.labels, want, sizeof want));
    CHECK(ds.num_classes == 4 && !strcmp(ds.class_names[0], "ant") && !strcmp(ds.class_names[3], "dog"));
    CHECK(strstr(note, "val: no images of 1 of the model's 4 classes (ant)") != NULL);
    mx_dataset_free(&ds);

    /* The same classes in the same order: labels unchanged, nothing to say. */
    int32_t same[] = {3, 0, 2};
    ds = named_dataset(model, 4, same, 3);
    CHECK_OK(mx_dataset_match_classes(&ds, "val", model, 4, note, sizeof note));
    CHECK(ds.labels[0] == 3 && ds.labels[1] == 0 && ds.labels[2] == 2 && note[0] == '\0');
    mx_dataset_free(&ds);

    /* A class the model does not have ("cat" renamed "zebra"): an error naming it. */
    char *renamed[] = {"ant", "bee", "zebra"};
    ds = named_dataset(renamed, 3, labels, 5);
    CHECK_FAILS(mx_dataset_match_classes(&ds, "val", model, 4, note, sizeof note), MX_ERR_FORMAT,
                "val: class 'zebra' is not one of the model's 4 classes (ant, bee, cow, dog)");
    CHECK(ds.labels[0] == 0 && ds.num_classes == 3); /* untouched */
    mx_dataset_free(&ds);

    /* More model classes than shown: the list is cut. */
    char *many[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    char *one[] = {"x"};
    ds = named_dataset(one, 1, labels, 1);
    CHECK_FAILS(mx_dataset_match_classes(&ds, "val", many, 8, note, sizeof note), MX_ERR_FORMAT,
                "(a, b, c, d, e and 3 more)");
    mx_dataset_free(&ds);

    /* No names on one side: positions, which must exist in the model. */
    int32_t four[] = {0, 3};
    ds = named_dataset(NULL, 4, four, 2);
    CHECK_OK(mx_dataset_match_classes(&ds, "idx", model, 4, note, sizeof note));
    CHECK(ds.labels[1] == 3 && note[0] == '\0');
    CHECK_FAILS(mx_dataset_match_classes(&ds, "idx", NULL, 3, note, sizeof note), MX_ERR_FORMAT,
                "idx: the data has 4 classes but the model 3");
    ds.num_classes = 3; /* a label beyond the classes it claims */
    CHECK_FAILS(mx_dataset_match_classes(&ds, "idx", NULL, 3, note, sizeof note), MX_ERR_FORMAT,
                "idx: sample 1 has label 3 but the model has 3 classes");
    ds.num_classes = 4;
    mx_dataset_free(&ds);
    ds = named_dataset(val, 3, labels, 5); /* a folder against a model without names */
    CHECK_OK(mx_dataset_match_classes(&ds, "val", NULL, 4, note, sizeof note));
    CHECK(strstr(note, "the model stores no class names") != NULL && ds.labels[3] == 2);
    mx_dataset_free(&ds);

    /* Subsets keep the names. */
    ds = named_dataset(model, 4, same, 3);
    mx_dataset sub;
    uint32_t pick[] = {2};
    CHECK_OK(mx_dataset_subset(&ds, pick, 1, &sub));
    CHECK(sub.class_names && !strcmp(sub.class_names[2], "cow") && sub.labels[0] == 2);
    mx_dataset_free(&sub);
    mx_dataset_free(&ds);
}

static void test_class_names_json(void)
{
    char *model[] = {"ant", "bee cow", "d\"o\\g", "\xc3\xa9t\xc3\xa9"};
    char *json = mx_class_names_to_json(model, 4);
    CHECK(json != NULL);
    char **back = NULL;
    CHECK_OK(mx_class_names_from_json("meta", json, 4, &back));
    for (size_t c = 0; back && c < 4; c++) CHECK(!strcmp(back[c], model[c]));
    mx_class_names_free(back, SIZE_MAX);
    /* A checkpoint may be hostile: exactly the model's count of distinct, usable names. */
    CHECK_FAILS(mx_class_names_from_json("meta", json, 3, &back), MX_ERR_FORMAT, "meta: not a list of 3 class names");
    free(json);
    char long_name[300];
    memset(long_name, 'a', sizeof long_name);
    long_name[299] = '\0';
    char long_json[320];
    snprintf(long_json, sizeof long_json, "[\"%s\"]", long_name);
    const struct {
        const char *json;
        size_t n;
        const char *message;
    } bad[] = {
        {"", 1, "not a list of 1 class names"},
        {"{\"a\": 1}", 1, "not a list"},
        {"[\"a\", \"b\"", 2, "not a list"},
        {"[\"a\", 2]", 2, "class 1 is not a usable class name"},
        {"[\"a\", \"\"]", 2, "class 1 is not a usable"},
        {"[\"..\"]", 1, "class 0 is not a usable"},
        {"[\"a/b\"]", 1, "class 0 is not a usable"},
        {"[\"a\\nb\"]", 1, "class 0 is not a usable"},
        {"[\"x\", \"y\", \"x\"]", 3, "class name 'x' appears twice"},
        {long_json, 1, "class 0 is not a usable"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        back = (char **)1;
        CHECK_FAILS(mx_class_names_from_json("meta", bad[k].json, bad[k].n, &back), MX_ERR_FORMAT, bad[k].message);
        CHECK(back == NULL);
    }
}

/* Folder datasets carry their class names, in memory and streamed. */
static void test_folder_names(void)
{
    mx_dataset ds;
    CHECK_OK(mx_dataset_load_folder(tmp_path("data"), "train", 8, 0, NULL, &ds));
    CHECK(ds.class_names && ds.num_classes == 3 && !strcmp(ds.class_names[0], "Zebra") &&
          !strcmp(ds.class_names[2], "cat"));
    mx_dataset_free(&ds);
    mx_folder_index index;
    CHECK_OK(mx_folder_index_load(tmp_path("data"), "train", &index));
    CHECK_OK(mx_dataset_stream_folder(&index, 8, 0, &ds));
    CHECK(ds.class_names && !strcmp(ds.class_names[1], "apple"));
    mx_dataset_free(&ds);
}

int main(void)
{
    make_temp_root_for("test_folder");
    make_tree();
    test_index();
    test_index_errors();
    test_samples();
    test_bad_files();
    test_class_map();
    test_match_classes();
    test_class_names_json();
    test_folder_names();
    remove_tree(g_tmp);
    CHECK_DONE();
}
