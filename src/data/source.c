/* Resolves a --data argument to a directory and loads a split from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/folder.h"
#include "mixreg/source.h"

#define FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

typedef enum { SOURCE_IDX, SOURCE_CIFAR10, SOURCE_CIFAR100, SOURCE_FOLDER } source_kind;

/* Splits spec into its kind and directory; fashion-mnist is an IDX directory. */
static mx_status parse_spec(const char *spec, source_kind *kind, char *dir, size_t cap)
{
    const char *path = spec;
    *kind = SOURCE_IDX;
    if (!strcmp(spec, "fashion-mnist")) {
        /* Debian's dataset-fashion-mnist installs here; the variable lets tests and
         * users point elsewhere without a flag. */
        const char *env = getenv("MIXREG_FASHION_MNIST");
        path = env && *env ? env : FASHION_MNIST_DEFAULT_DIR;
    } else if (!strncmp(spec, "idx:", 4)) {
        path = spec + 4;
    } else if (!strncmp(spec, "cifar10:", 8)) {
        path = spec + 8;
        *kind = SOURCE_CIFAR10;
    } else if (!strncmp(spec, "cifar100:", 9)) {
        path = spec + 9;
        *kind = SOURCE_CIFAR100;
    } else if (!strncmp(spec, "folder:", 7)) {
        path = spec + 7;
        *kind = SOURCE_FOLDER;
    } else if (strchr(spec, ':') && !strchr(spec, '/')) {
        return mx_error_set(MX_ERR_ARG,
                            "--data: unknown kind in '%s' (expected fashion-mnist, idx:DIR, cifar10:DIR, "
                            "cifar100:DIR, folder:DIR or DIR)", spec);
    }
    if (!*path) return mx_error_set(MX_ERR_ARG, "--data: empty path");
    if ((size_t)snprintf(dir, cap, "%s", path) >= cap) return mx_error_set(MX_ERR_ARG, "--data: path too long");
    return MX_OK;
}

mx_status mx_data_resolve(const char *spec, char *dir, size_t cap)
{
    source_kind kind;
    return parse_spec(spec, &kind, dir, cap);
}

mx_data_options mx_data_options_default(void)
{
    return (mx_data_options){.labels = MX_LABEL_FINE, .image_size = 224, .skip_bad = 0, .skipped = 0};
}

mx_status mx_data_load_with(const char *spec, const char *split, mx_data_options *opts, mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    char dir[4096];
    source_kind kind;
    mx_status st = parse_spec(spec, &kind, dir, sizeof dir);
    if (st != MX_OK) return st;
    opts->skipped = 0;
    if (opts->labels != MX_LABEL_FINE && kind != SOURCE_CIFAR100)
        return mx_error_set(MX_ERR_ARG, "--label coarse needs cifar100:DIR (--data is '%s')", spec);
    /* The folder's evaluation split is val (or test); its images come out at image_size. */
    if (kind == SOURCE_FOLDER)
        return mx_dataset_load_folder(dir, strcmp(split, "test") ? split : "val", opts->image_size, opts->skip_bad,
                                      &opts->skipped, out);
    if (kind != SOURCE_IDX) return mx_dataset_load_cifar(dir, kind == SOURCE_CIFAR100, opts->labels, split, out);
    st = mx_dataset_load_idx(dir, split, out);
    if (st != MX_OK && !strcmp(spec, "fashion-mnist"))
        return mx_error_wrap(st, "Fashion-MNIST (install Debian's dataset-fashion-mnist, or set MIXREG_FASHION_MNIST)");
    return st;
}

mx_status mx_data_load_labels(const char *spec, const char *split, mx_label_kind labels, mx_dataset *out)
{
    mx_data_options opts = mx_data_options_default();
    opts.labels = labels;
    return mx_data_load_with(spec, split, &opts, out);
}

mx_status mx_data_load(const char *spec, const char *split, mx_dataset *out)
{
    return mx_data_load_labels(spec, split, MX_LABEL_FINE, out);
}

mx_status mx_data_class_names(const char *spec, char ***names, size_t *count)
{
    char dir[4096];
    source_kind kind;
    *names = NULL;
    *count = 0;
    mx_status st = parse_spec(spec, &kind, dir, sizeof dir);
    if (st != MX_OK) return st;
    if (kind != SOURCE_FOLDER) return mx_error_set(MX_ERR_ARG, "class names need an image folder (--data folder:DIR)");
    mx_folder_index index;
    if ((st = mx_folder_index_load(dir, "val", &index)) != MX_OK) return st;
    *names = calloc(index.num_classes + 1, sizeof(char *));
    st = *names ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory");
    for (size_t c = 0; st == MX_OK && c < index.num_classes; c++) {
        if (!((*names)[c] = strdup(index.class_names[c]))) st = mx_error_set(MX_ERR_NOMEM, "out of memory");
        (*count)++;
    }
    mx_folder_index_free(&index);
    return st;
}
