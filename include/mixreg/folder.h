/* Image-folder datasets (torchvision's ImageFolder layout, as ImageNet is
 * usually unpacked):
 *
 *   DIR/<split>/<class>/<image files>
 *
 * split is "train" or "val" ("test" is taken for "val" when DIR/val does not
 * exist, and the other way round); the classes are the sub-directories of
 * the split directory in strcmp order (label = position in that order); the
 * images of a class are its files named *.jpg, *.jpeg or *.png (any case),
 * in strcmp order, which are then decoded by content (mx_image_decode), so a
 * misnamed PNG still loads. Names starting with '.' are skipped, as are other
 * files and nested directories. A class directory without images is an
 * error naming it (a label would silently never occur), as is a split
 * without class directories.
 *
 * The index holds file paths and labels, not pixels: a dataset larger than
 * memory is streamed (mx_dataset_stream_folder: samples decoded when asked
 * for). A small one can be loaded whole into an mx_dataset
 * (mx_dataset_load_folder).
 *
 * Samples are made with the ImageNet evaluation recipe at any size: the
 * shorter side resized (bilinear, antialiased: mx_image_resize_center_crop)
 * to mx_image_eval_resize(side) = round(side * 256 / 224), then the centre
 * side x side crop; 3 channels (RGB), uint8, CHW. */
#ifndef MIXREG_FOLDER_H
#define MIXREG_FOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/error.h"

typedef struct {
    char *root;            /* the split directory read, e.g. DIR/val (or DIR/test) */
    size_t num_classes;
    char **class_names;    /* num_classes, sorted (strcmp) */
    size_t n;              /* images */
    char **paths;          /* n: root/class/file, class by class, files sorted within */
    int32_t *labels;       /* n: the index of the file's class in class_names */
    char *pool_;           /* private: the storage paths point into */
} mx_folder_index;

/* Indexes split `split` of DIR as above; a NULL or empty split indexes DIR
 * itself as the split directory (DIR/<class>/<files>, as ObjectNet's images/
 * directory). MX_ERR_ARG for another split name, MX_ERR_IO when the split
 * directory is missing or cannot be listed, MX_ERR_FORMAT for no class
 * directories or a class without images. *index is zeroed on failure. */
mx_status mx_folder_index_load(const char *dir, const char *split, mx_folder_index *index);

void mx_folder_index_free(mx_folder_index *index);

/* Reads, decodes and transforms image i of the index into out_chw
 * (3 x side x side, the recipe above; JPEGs much larger than needed are
 * decoded at a reduced DCT scale first, see mx_image_decode_options).
 * Errors name the file. MX_ERR_ARG for i out of range or side 0. Safe to call
 * from several threads at once. */
mx_status mx_folder_load_sample(const mx_folder_index *index, size_t i, size_t side, uint8_t *out_chw);

/* The same recipe on any image file (JPEG or PNG, by content): what a model
 * trained on an image folder is given for a file of its own (predict). */
mx_status mx_folder_load_file(const char *path, size_t side, uint8_t *out_chw);

/* Loads every image of the index into an in-memory dataset (n x 3 x side x
 * side, labels as in the index, num_classes = the index's), decoding in
 * parallel (OpenMP; the result does not depend on the thread count). A file
 * that fails to decode is an error naming it (the first such file in index
 * order) unless skip_bad is set: then it is left out and counted in *skipped
 * (which may be NULL), and only a dataset left empty is an error. */
mx_status mx_folder_index_load_all(const mx_folder_index *index, size_t side, int skip_bad, size_t *skipped,
                                   mx_dataset *out);

/* A streamed dataset of every image of the index, which it takes over
 * (*index is zeroed on success): labels and entries in memory, pixels NULL;
 * sample i is mx_folder_load_sample(index, i, side) when asked for
 * (mx_dataset_sample), or the training recipe
 * (mx_dataset_sample_resized_crop). A file that fails to decode is an error
 * naming it when met, unless skip_bad: then the sample is made from the next
 * sample of the same class that decodes, and the file counted
 * (mx_dataset_bad_images; the rule is in stream.c). */
mx_status mx_dataset_stream_folder(mx_folder_index *index, size_t side, int skip_bad, mx_dataset *out);

/* mx_folder_index_load then mx_folder_index_load_all (the class names are not
 * kept: load the index yourself to have them). */
mx_status mx_dataset_load_folder(const char *dir, const char *split, size_t side, int skip_bad, size_t *skipped,
                                 mx_dataset *out);

/* ---- class maps ------------------------------------------------------------ */

/* Which of a model's classes each class of a dataset stands for, for
 * evaluating on a dataset whose classes are a subset (or merge several) of
 * the model's: ObjectNet's 113 classes that overlap ImageNet, each mapping to
 * one or more of the 1000 ImageNet classes. A text file, one line per mapped
 * dataset class:
 *
 *   dataset_class_name<TAB or spaces>model_class_index[,model_class_index...]
 *
 * The name ends at the first TAB when the line has one (so it may contain
 * spaces), otherwise at the first space. Indices are decimal, 0-based,
 * separated by commas (spaces around them allowed). '#' starts a comment
 * that runs to the end of the line; blank lines are skipped; CRLF is fine.
 * Dataset classes the file does not mention map to nothing (their samples
 * cannot be scored); a model class may appear under several dataset classes.
 * Errors (MX_ERR_FORMAT, naming the file and line): a name that is not a
 * class of the dataset, a class mapped on two lines, a line without indices,
 * an index that is not a number or is >= model_classes, an index repeated on
 * a line, and a file mapping no class at all. */
typedef struct {
    size_t num_dataset_classes;
    size_t num_model_classes;
    size_t *first;          /* num_dataset_classes + 1: class d maps to model_class[first[d] .. first[d + 1]) */
    int32_t *model_class;   /* in the order the file gives them */
} mx_class_map;

mx_status mx_class_map_load(const char *path, char *const *dataset_class_names, size_t n, size_t model_classes,
                            mx_class_map *map);

/* The same over text already in memory (`name` stands for the file). */
mx_status mx_class_map_parse(const char *name, const char *text, size_t len, char *const *dataset_class_names,
                             size_t n, size_t model_classes, mx_class_map *map);

void mx_class_map_free(mx_class_map *map);

/* 1 if model class `model_class` is one that dataset class `dataset_class`
 * maps to (0 for anything out of range). */
int mx_class_map_correct(const mx_class_map *map, int32_t dataset_class, int32_t model_class);

/* The model class with the largest score among those some dataset class maps
 * to (the smallest index on ties): the prediction restricted to the mapped
 * classes. scores has num_model_classes entries. -1 if the map maps nothing. */
int32_t mx_class_map_predict(const mx_class_map *map, const float *scores);

#endif
