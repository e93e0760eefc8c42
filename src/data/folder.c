/* Image-folder datasets: the index of DIR/<split>/<class>/<files>, samples
 * decoded one at a time or all at once, and class maps onto a model's
 * classes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "mixreg/fileio.h"
#include "mixreg/folder.h"
#include "mixreg/image.h"

#define FOLDER_PATH_MAX 4096
#define CLASS_MAP_MAX_BYTES ((size_t)16 << 20)

/* ---- a growing block of NUL-terminated strings --------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} str_pool;

static mx_status pool_add(str_pool *p, const char *s, size_t *off)
{
    size_t n = strlen(s) + 1;
    if (p->cap - p->len < n) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap - p->len < n) cap *= 2;
        char *grown = realloc(p->buf, cap);
        if (!grown) return mx_error_set(MX_ERR_NOMEM, "out of memory indexing an image folder");
        p->buf = grown;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    *off = p->len;
    p->len += n;
    return MX_OK;
}

/* A growing array of offsets into the pool (and labels beside them). */
typedef struct {
    size_t *off;
    int32_t *label;
    size_t n, cap;
} entry_list;

static mx_status entries_add(entry_list *e, size_t off, int32_t label)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 256;
        size_t *o = realloc(e->off, cap * sizeof *o);
        if (o) e->off = o;
        int32_t *l = realloc(e->label, cap * sizeof *l);
        if (l) e->label = l;
        if (!o || !l) return mx_error_set(MX_ERR_NOMEM, "out of memory indexing an image folder");
        e->cap = cap;
    }
    e->off[e->n] = off;
    e->label[e->n] = label;
    e->n++;
    return MX_OK;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static mx_status join_path(char *buf, const char *a, const char *b)
{
    if ((size_t)snprintf(buf, FOLDER_PATH_MAX, "%s/%s", a, b) >= FOLDER_PATH_MAX)
        return mx_error_set(MX_ERR_ARG, "image folder: path too long: %s/%s", a, b);
    return MX_OK;
}

/* The split directory: DIR/train, DIR/val or DIR/test (val and test standing
 * in for each other), or DIR itself for no split (or for val or test when DIR
 * has none of the three). */
static mx_status split_dir(const char *dir, const char *split, char *root)
{
    if (!split || !*split) {
        if ((size_t)snprintf(root, FOLDER_PATH_MAX, "%s", dir) >= FOLDER_PATH_MAX)
            return mx_error_set(MX_ERR_ARG, "image folder: path too long: %s", dir);
        if (!is_dir(root)) return mx_error_set(MX_ERR_IO, "image folder %s: not a directory", dir);
        return MX_OK;
    }
    const char *alias;
    if (!strcmp(split, "train")) alias = NULL;
    else if (!strcmp(split, "val")) alias = "test";
    else if (!strcmp(split, "test")) alias = "val";
    else return mx_error_set(MX_ERR_ARG, "image folder: unknown split '%s' (expected train, val or test)", split);
    mx_status st = join_path(root, dir, split);
    if (st != MX_OK || is_dir(root)) return st;
    if (alias) {
        st = join_path(root, dir, alias);
        if (st != MX_OK || is_dir(root)) return st;
        /* An evaluation split asked of a folder with no splits at all (no
         * train/ either): DIR itself holds the class directories, as
         * ObjectNet's images/ does. */
        st = join_path(root, dir, "train");
        if (st == MX_OK && !is_dir(root) && is_dir(dir)) return split_dir(dir, NULL, root);
        if (st != MX_OK) return st;
    }
    if (!is_dir(dir)) return mx_error_set(MX_ERR_IO, "image folder %s: %s", dir, strerror(errno));
    return mx_error_set(MX_ERR_IO, "image folder %s: no split directory %s/%s%s%s (expected DIR/<split>/<class>/<images>)",
                        dir, dir, split, alias ? " nor " : "", alias ? alias : "");
}

/* Adds the image files of one class directory; *added counts them. */
static mx_status index_class(const char *class_dir, int32_t label, str_pool *pool, entry_list *files, size_t *added)
{
    char **names;
    size_t count;
    *added = 0;
    mx_status st = mx_list_dir(class_dir, "", &names, &count);
    char path[FOLDER_PATH_MAX];
    for (size_t i = 0; st == MX_OK && i < count; i++) {
        if (!has_image_extension(names[i])) continue;
        st = join_path(path, class_dir, names[i]);
        if (st != MX_OK || !is_file(path)) continue;
        size_t off;
        st = pool_add(pool, path, &off);
        if (st == MX_OK) st = entries_add(files, off, label);
        if (st == MX_OK) ++*added;
    }
    mx_free_names(names, count);
    return st;
}

mx_status mx_folder_index_load(const char *dir, const char *split, mx_folder_index *index)
{
    memset(index, 0, sizeof *index);
    char root[FOLDER_PATH_MAX], path[FOLDER_PATH_MAX];
    mx_status st = split_dir(dir, split, root);
    if (st != MX_OK) return st;
    char **names = NULL;
    size_t count = 0;
    st = mx_list_dir(root, "", &names, &count);
    if (st != MX_OK) return mx_error_wrap(st, "image folder");
    str_pool pool = {0};
    entry_list classes = {0}, files = {0};
    size_t root_off = 0;
    st = pool_add(&pool, root, &root_off);
    for (size_t i = 0; st == MX_OK && i < count; i++) {
        st = join_path(path, root, names[i]);
        if (st != MX_OK || !is_dir(path)) continue;
        size_t off, added;
        if (classes.n >= INT32_MAX) st = mx_error_set(MX_ERR_FORMAT, "image folder %s: too many classes", root);
        if (st == MX_OK) st = pool_add(&pool, names[i], &off);
        if (st == MX_OK) st = entries_add(&classes, off, (int32_t)classes.n);
        if (st == MX_OK) st = index_class(path, (int32_t)(classes.n - 1), &pool, &files, &added);
        if (st == MX_OK && !added)
            st = mx_error_set(MX_ERR_FORMAT, "image folder: class directory %s holds no .jpg, .jpeg or .png files",
                              path);
    }
    mx_free_names(names, count);
    if (st == MX_OK && !classes.n)
        st = mx_error_set(MX_ERR_FORMAT, "image folder %s: no class directories (expected %s/<class>/<images>)", root,
                          root);
    if (st == MX_OK) {
        index->class_names = malloc(classes.n * sizeof *index->class_names);
        index->paths = malloc(files.n * sizeof *index->paths);
        if (!index->class_names || !index->paths)
            st = mx_error_set(MX_ERR_NOMEM, "out of memory indexing image folder %s", root);
    }
    if (st != MX_OK) {
        free(index->class_names);
        free(index->paths);
        free(pool.buf);
        free(classes.off);
        free(classes.label);
        free(files.off);
        free(files.label);
        memset(index, 0, sizeof *index);
        return st;
    }
    index->pool_ = pool.buf;
    index->root = pool.buf + root_off;
    index->num_classes = classes.n;
    for (size_t c = 0; c < classes.n; c++) index->class_names[c] = pool.buf + classes.off[c];
    index->n = files.n;
    for (size_t i = 0; i < files.n; i++) index->paths[i] = pool.buf + files.off[i];
    index->labels = files.label;
    free(classes.off);
    free(classes.label);
    free(files.off);
    return MX_OK;
}

void mx_folder_index_free(mx_folder_index *index)
{
    if (!index) return;
    free(index->class_names);
    free(index->paths);
    free(index->labels);
    free(index->pool_);
    memset(index, 0, sizeof *index);
}

/* ---- samples --------------------------------------------------------------- */

mx_status mx_folder_load_file(const char *path, size_t side, uint8_t *out_chw)
{
    if (!side || side > MX_IMAGE_MAX_SIDE)
        return mx_error_set(MX_ERR_ARG, "image folder: image side %zu out of range (1 to %d)", side,
                            MX_IMAGE_MAX_SIDE);
    size_t shorter = mx_image_eval_resize(side);
    mx_image_decode_options opts = {.min_side = shorter, .max_pixels = 0};
    mx_image img;
    mx_status st = mx_image_read(path, &opts, &img);
    if (st != MX_OK) return st;
    st = mx_image_resize_center_crop(img.pixels, 3, img.height, img.width, shorter, side, 1, out_chw);
    mx_image_free(&img);
    if (st != MX_OK) return mx_error_wrap(st, "%s", path);
    return MX_OK;
}

mx_status mx_folder_load_sample(const mx_folder_index *index, size_t i, size_t side, uint8_t *out_chw)
{
    if (i >= index->n)
        return mx_error_set(MX_ERR_ARG, "image folder %s: sample %zu of %zu", index->root, i, index->n);
    return mx_folder_load_file(index->paths[i], side, out_chw);
}

mx_status mx_folder_index_load_all(const mx_folder_index *index, size_t side, int skip_bad, size_t *skipped,
                                   mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (skipped) *skipped = 0;
    if (!side || side > MX_IMAGE_MAX_SIDE)
        return mx_error_set(MX_ERR_ARG, "image folder: image side %zu out of range (1 to %d)", side,
                            MX_IMAGE_MAX_SIDE);
    size_t n = index->n, sample = 3 * side * side;
    if (!n) return mx_error_set(MX_ERR_FORMAT, "image folder %s: no images", index->root);
    uint8_t *pixels = n <= SIZE_MAX / sample ? malloc(n * sample) : NULL;
    int32_t *labels = malloc(n * sizeof *labels);
    unsigned char *bad = calloc(n, 1);
    if (!pixels || !labels || !bad) {
        free(pixels);
        free(labels);
        free(bad);
        return mx_error_set(MX_ERR_NOMEM, "image folder %s: out of memory for %zu images of %zux%zu", index->root, n,
                            side, side);
    }
    /* The failure reported is the first in index order, whatever the thread
     * count: once image f has failed fatally, only images before f still
     * need decoding. */
    size_t first_bad = SIZE_MAX, stop = SIZE_MAX;
    mx_status first_status = MX_OK;
    char first_message[1024] = "";
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t i = 0; i < n; i++) {
        size_t limit;
#pragma omp atomic read
        limit = stop;
        if (i > limit) continue;
        mx_status s = mx_folder_load_sample(index, i, side, pixels + i * sample);
        if (s == MX_OK) continue;
        bad[i] = 1;
#pragma omp critical(mx_folder_first_bad)
        {
            if (i < first_bad) {
                first_bad = i;
                first_status = s;
                snprintf(first_message, sizeof first_message, "%s", mx_error_message());
            }
            if (!skip_bad || s == MX_ERR_NOMEM) {
                if (i < stop) {
#pragma omp atomic write
                    stop = i;
                }
            }
        }
    }
    mx_status st = MX_OK;
    size_t kept = 0;
    if (stop != SIZE_MAX) {
        st = mx_error_set(first_status, "%s", first_message);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (bad[i]) continue;
            if (kept != i) memmove(pixels + kept * sample, pixels + i * sample, sample);
            labels[kept++] = index->labels[i];
        }
        if (!kept)
            st = mx_error_set(MX_ERR_FORMAT, "image folder %s: none of the %zu images could be decoded (the first: %s)",
                              index->root, n, first_message);
    }
    free(bad);
    if (st != MX_OK) {
        free(pixels);
        free(labels);
        return st;
    }
    if (kept < n) {
        uint8_t *p = realloc(pixels, kept * sample);
        if (p) pixels = p;
        int32_t *l = realloc(labels, kept * sizeof *labels);
        if (l) labels = l;
    }
    if (skipped) *skipped = n - kept;
    out->n = kept;
    out->channels = 3;
    out->height = out->width = side;
    out->num_classes = index->num_classes;
    out->pixels = pixels;
    out->labels = labels;
    st = mx_class_names_copy(index->class_names, index->num_classes, &out->class_names);
    if (st != MX_OK) mx_dataset_free(out);
    return st;
}

mx_status mx_dataset_load_folder(const char *dir, const char *split, size_t side, int skip_bad, size_t *skipped,
                                 mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (skipped) *skipped = 0;
    mx_folder_index index;
    mx_status st = mx_folder_index_load(dir, split, &index);
    if (st != MX_OK) return st;
    st = mx_folder_index_load_all(&index, side, skip_bad, skipped, out);
    mx_folder_index_free(&index);
    return st;
}

/* ---- class maps ------------------------------------------------------------ */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

typedef struct {
    size_t *cls;
    int32_t *model;
    size_t n, cap;
} map_entries;

static int map_add(map_entries *e, size_t cls, int32_t model)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        size_t *c = realloc(e->cls, cap * sizeof *c);
        if (c) e->cls = c;
        int32_t *m = realloc(e->model, cap * sizeof *m);
        if (m) e->model = m;
        if (!c || !m) return 0;
        e->cap = cap;
    }
    e->cls[e->n] = cls;
    e->model[e->n] = model;
    e->n++;
    return 1;
}

/* Parses one line (NUL-terminated, comment and trailing space removed, not
 * empty) into entries. */
static mx_status parse_map_line(const char *name, size_t line_no, char *s, char *const *names, size_t n,
                                size_t model_classes, size_t *line_of, map_entries *e)
{
    char *tab = strchr(s, '\t'), *rest;
    if (tab) {
        rest = tab + 1;
        while (tab > s && is_space(tab[-1])) tab--;
        *tab = '\0';
    } else {
        char *sp = s;
        while (*sp && !is_space(*sp)) sp++;
        rest = *sp ? sp + 1 : sp;
        *sp = '\0';
    }
    while (is_space(*rest)) rest++;
    if (!*s) return mx_error_set(MX_ERR_FORMAT, "%s: line %zu: no class name before the indices", name, line_no);
    if (!*rest)
        return mx_error_set(MX_ERR_FORMAT, "%s: line %zu: no model class index after '%s'", name, line_no, s);
    size_t d = 0;
    while (d < n && strcmp(names[d], s)) d++;
    if (d == n)
        return mx_error_set(MX_ERR_FORMAT, "%s: line %zu: '%s' is not a class of the dataset (%zu classes, from '%s')",
                            name, line_no, s, n, names[0]);
    if (line_of[d])
        return mx_error_set(MX_ERR_FORMAT, "%s: line %zu: class '%s' is mapped twice (first on line %zu)", name,
                            line_no, s, line_of[d]);
    line_of[d] = line_no;
    size_t line_start = e->n;
    for (const char *p = rest;;) {
        while (is_space(*p)) p++;
        const char *tok = p;
        size_t value = 0;
        int big = 0;
        while (*p >= '0' && *p <= '9') {
            value = value * 10 + (size_t)(*p - '0');
            if (value > model_classes) big = 1, value = model_classes;
            p++;
        }
        const char *tok_end = p;
        while (is_space(*p)) p++;
        if (tok_end == tok || (*p && *p != ',')) {
            size_t tl = 0;
            while (tok[tl] && tok[tl] != ',' && tl < 40) tl++;
            return mx_error_set(MX_ERR_FORMAT, "%s: line %zu: '%.*s' is not a model class index (a number from 0 "
                                "to %zu)", name, line_no, (int)(tl ? tl : 1), tl ? tok : ",", model_classes - 1);
        }
        if (big || value >= model_classes)
            return mx_error_set(MX_ERR_FORMAT, "%s: line %zu: model class index %.*s is out of range (the model has "
                                "%zu classes, 0 to %zu)", name, line_no, (int)(tok_end - tok > 40 ? 40 : tok_end - tok),
                                tok, model_classes, model_classes - 1);
        for (size_t k = line_start; k < e->n; k++)
            if (e->model[k] == (int32_t)value)
                return mx_error_set(MX_ERR_FORMAT, "%s: line %zu: model class index %zu appears twice for '%s'", name,
                                    line_no, value, s);
        if (!map_add(e, d, (int32_t)value)) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
        if (!*p) break;
        p++; /* the comma */
    }
    return MX_OK;
}

mx_status mx_class_map_parse(const char *name, const char *text, size_t len, char *const *dataset_class_names,
                             size_t n, size_t model_classes, mx_class_map *map)
{
    memset(map, 0, sizeof *map);
    if (!n) return mx_error_set(MX_ERR_ARG, "%s: class map for a dataset without classes", name);
    if (!model_classes || model_classes > INT32_MAX)
        return mx_error_set(MX_ERR_ARG, "%s: class map for a model with %zu classes", name, model_classes);
    size_t *line_of = calloc(n, sizeof *line_of);
    char *line = malloc(len + 1);
    map_entries e = {0};
    mx_status st = line_of && line ? MX_OK : mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    size_t line_no = 0;
    for (size_t pos = 0; st == MX_OK && pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, ll = end - pos;
        line_no++;
        if (memchr(text + pos, '\0', ll)) {
            st = mx_error_set(MX_ERR_FORMAT, "%s: line %zu: a NUL byte (not a text file?)", name, line_no);
            break;
        }
        memcpy(line, text + pos, ll);
        line[ll] = '\0';
        pos = end + 1;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        size_t l = strlen(line);
        while (l && is_space(line[l - 1])) line[--l] = '\0';
        char *s = line;
        while (is_space(*s)) s++;
        if (!*s) continue;
        st = parse_map_line(name, line_no, s, dataset_class_names, n, model_classes, line_of, &e);
    }
    if (st == MX_OK && !e.n) st = mx_error_set(MX_ERR_FORMAT, "%s: the class map maps no class", name);
    if (st == MX_OK) {
        map->first = calloc(n + 1, sizeof *map->first);
        map->model_class = malloc(e.n * sizeof *map->model_class);
        if (!map->first || !map->model_class) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    }
    if (st == MX_OK) {
        /* Counting sort by dataset class, the file's order kept within one. */
        for (size_t k = 0; k < e.n; k++) map->first[e.cls[k] + 1]++;
        for (size_t d = 0; d < n; d++) map->first[d + 1] += map->first[d];
        size_t *fill = line_of; /* reused as per-class fill counters */
        memset(fill, 0, n * sizeof *fill);
        for (size_t k = 0; k < e.n; k++) map->model_class[map->first[e.cls[k]] + fill[e.cls[k]]++] = e.model[k];
        map->num_dataset_classes = n;
        map->num_model_classes = model_classes;
    }
    free(line_of);
    free(line);
    free(e.cls);
    free(e.model);
    if (st != MX_OK) mx_class_map_free(map);
    return st;
}

mx_status mx_class_map_load(const char *path, char *const *dataset_class_names, size_t n, size_t model_classes,
                            mx_class_map *map)
{
    memset(map, 0, sizeof *map);
    char *text;
    size_t len;
    mx_status st = mx_file_read_all(path, CLASS_MAP_MAX_BYTES, &text, &len);
    if (st != MX_OK) return st;
    st = mx_class_map_parse(path, text, len, dataset_class_names, n, model_classes, map);
    free(text);
    return st;
}

void mx_class_map_free(mx_class_map *map)
{
    if (!map) return;
    free(map->first);
    free(map->model_class);
    memset(map, 0, sizeof *map);
}

int mx_class_map_correct(const mx_class_map *map, int32_t dataset_class, int32_t model_class)
{
    if (dataset_class < 0 || (size_t)dataset_class >= map->num_dataset_classes) return 0;
    for (size_t k = map->first[dataset_class]; k < map->first[dataset_class + 1]; k++)
        if (map->model_class[k] == model_class) return 1;
    return 0;
}

int32_t mx_class_map_predict(const mx_class_map *map, const float *scores)
{
    int32_t best = -1;
    size_t total = map->num_dataset_classes ? map->first[map->num_dataset_classes] : 0;
    for (size_t k = 0; k < total; k++) {
        int32_t m = map->model_class[k];
        if (best < 0 || scores[m] > scores[best] || (scores[m] == scores[best] && m < best)) best = m;
    }
    return best;
}
