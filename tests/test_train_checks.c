/* mx_train_run checks every split against the model before the first step:
 * a test set with a label the model will not have, images of another shape,
 * or named classes that were not matched to the training set's fail at once,
 * with nothing written to the run directory. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "test_tmp.h"
#include "mixreg/run.h"
#include "mixreg/train.h"

/* n samples of 1 x 4 x 4 with labels k % classes. */
static mx_dataset tiny(size_t n, size_t classes, size_t side)
{
    mx_dataset ds = {0};
    ds.n = n, ds.channels = 1, ds.height = ds.width = side, ds.num_classes = classes;
    ds.pixels = malloc(n * side * side);
    ds.labels = malloc(n * sizeof *ds.labels);
    for (size_t i = 0; i < n * side * side; i++) ds.pixels[i] = (uint8_t)(i * 37);
    for (size_t i = 0; i < n; i++) ds.labels[i] = (int32_t)(i % classes);
    return ds;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

int main(void)
{
    make_temp_root_for("test_train_checks");
    mx_train_config cfg;
    mx_train_config_default(&cfg);
    cfg.epochs = 1, cfg.batch_size = 4, cfg.threads = 1, cfg.tensorboard = 0;
    cfg.model.num_hidden = 1, cfg.model.hidden[0] = 8;
    snprintf(cfg.out, sizeof cfg.out, "%s", tmp_path("run"));
    mx_train_result result;

    mx_dataset train = tiny(12, 3, 4), test = tiny(8, 4, 4); /* labels 0..3: class 3 unknown to the model */
    CHECK_FAILS(mx_train_run(&cfg, &train, &test, &result), MX_ERR_FORMAT,
                "test sample 3 has label 3 but the model has 3 classes");
    CHECK(!exists(cfg.out) && result.steps_done == 0);
    mx_dataset_free(&test);

    test = tiny(8, 3, 5);
    CHECK_FAILS(mx_train_run(&cfg, &train, &test, &result), MX_ERR_FORMAT,
                "test images are 1x5x5 but the model takes 1x4x4");
    CHECK(!exists(cfg.out));
    mx_dataset_free(&test);

    /* Named classes left in the folder's own order: not the model's. */
    char *train_names[] = {"ant", "bee", "cow"}, *test_names[] = {"bee", "cow", "dog"};
    CHECK_OK(mx_class_names_copy(train_names, 3, &train.class_names));
    test = tiny(8, 3, 4);
    CHECK_OK(mx_class_names_copy(test_names, 3, &test.class_names));
    CHECK_FAILS(mx_train_run(&cfg, &train, &test, &result), MX_ERR_FORMAT,
                "test classes are not the model's (class 0 is 'bee', not 'ant'): match them by name first");
    CHECK(!exists(cfg.out));
    /* Matched, it trains, and the run keeps the names. */
    mx_dataset_free(&test);
    test = tiny(8, 3, 4);
    CHECK_OK(mx_class_names_copy(train_names, 3, &test.class_names));
    CHECK_OK(mx_train_run(&cfg, &train, &test, &result));
    CHECK(result.steps_done == 3);
    mx_run run;
    CHECK_OK(mx_run_load(cfg.out, 1, &run));
    CHECK(run.class_names && !strcmp(run.class_names[0], "ant") && !strcmp(run.class_names[2], "cow"));
    mx_run_free(&run);
    mx_dataset_free(&test);
    mx_dataset_free(&train);
    remove_tree(g_tmp);
    CHECK_DONE();
}
