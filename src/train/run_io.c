/* The training's files in the run directory that are not the checkpoint
 * itself (run_io.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mixreg/fileio.h"
#include "mixreg/run.h"
#include "mixreg/run_files.h"
#include "train/run_io.h"

mx_status mx_train_write_config(const mx_train_config *cfg)
{
    char path[MX_PATH_MAX + 64];
    char *json = mx_train_config_to_json(cfg);
    if (!json) return mx_error_set(MX_ERR_NOMEM, "out of memory writing the config");
    snprintf(path, sizeof path, "%s/config.json", cfg->out);
    mx_status st = mx_file_write_atomic(path, json, strlen(json));
    free(json);
    return st;
}

mx_status mx_train_check_no_run_yet(const mx_train_config *cfg)
{
    char path[MX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", cfg->out, MX_RUN_MODEL_FILE);
    struct stat sb;
    if (lstat(path, &sb) == 0)
        return mx_error_set(MX_ERR_ARG, "%s already holds a run; choose another --out, or continue it with --resume %s",
                            cfg->out, cfg->out);
    return MX_OK;
}

void mx_train_remove_old_checkpoints(const char *dir, size_t keep)
{
    char **names;
    size_t count;
    if (mx_list_dir(dir, "step-", &names, &count) != MX_OK) return;
    /* Zero-padded step numbers sort as strings; drop all but the newest `keep`
     * (temporary files of an interrupted save go too). */
    char path[MX_PATH_MAX + 512];
    size_t complete = 0;
    for (size_t i = 0; i < count; i++) complete += !strstr(names[i], ".tmp.");
    for (size_t i = 0, seen = 0; i < count; i++) {
        int temporary = strstr(names[i], ".tmp.") != NULL;
        if (!temporary) seen++;
        if (temporary || seen + keep <= complete) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            unlink(path);
        }
    }
    mx_free_names(names, count);
}

mx_status mx_train_trim_log(const char *path, size_t step)
{
    char *text, *out;
    size_t size, used;
    struct stat sb;
    if (lstat(path, &sb) != 0) return MX_OK;
    if (S_ISLNK(sb.st_mode)) return mx_error_set(MX_ERR_IO, "%s is a symbolic link; refusing to read or write through it", path);
    mx_status st = mx_file_read_all(path, (size_t)1 << 30, &text, &size);
    if (st != MX_OK) return st;
    st = mx_run_files_trim_log(text, size, step, &out, &used);
    if (st == MX_OK) st = mx_file_write_atomic(path, out, used);
    free(out);
    free(text);
    return st;
}
