/* `mixreg train --resume` on a run whose stored configuration was tampered
 * with: for every setting of the table (settings_cases.h), each value just
 * outside its range written into the checkpoint and config.json is refused
 * with one error line naming the key, exit status 1, and nothing in the run
 * directory changes. Runs the mixreg binary ($MIXREG_BIN). */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/wait.h>

#include "mixreg/fileio.h"
#include "mixreg/safetensors.h"
#include "settings_cases.h"
#include "test_tmp.h"

extern char **environ;

/* Runs argv with stdout discarded and stderr to err_path; the exit status, or -1. */
static int run_command(char *const argv[], const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *read_text(const char *path)
{
    char *text = NULL;
    size_t size;
    if (mx_file_read_all(path, 1 << 24, &text, &size) != MX_OK) return NULL;
    return text;
}

/* Every file under dir (but a lock file, which a run may take and leave) as
 * "path size hash" lines, in readdir order made stable by sorting. */
static void snapshot_into(const char *dir, const char *rel, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) return;
    char names[256][256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (size_t i = 0; i < n; i++) {
        if (strstr(names[i], "lock")) continue;
        char path[8192], sub[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path ||
            snprintf(sub, sizeof sub, "%s%s", rel, names[i]) >= (int)sizeof sub)
            continue;
        struct stat sb;
        if (lstat(path, &sb) != 0) continue;
        size_t len = strlen(out);
        if (S_ISDIR(sb.st_mode)) {
            snprintf(out + len, cap - len, "%s/\n", sub);
            char deeper[4200];
            if (snprintf(deeper, sizeof deeper, "%s/", sub) >= (int)sizeof deeper) continue;
            snapshot_into(path, deeper, out + strlen(out), cap - strlen(out));
            continue;
        }
        uint64_t hash = 1469598103934665603ull;
        FILE *f = fopen(path, "rb");
        for (int c; f && (c = fgetc(f)) != EOF;) hash = (hash ^ (uint64_t)c) * 1099511628211ull;
        if (f) fclose(f);
        snprintf(out + len, cap - len, "%s %lld %016llx\n", sub, (long long)sb.st_size, (unsigned long long)hash);
    }
}

static char *snapshot(const char *dir)
{
    size_t cap = 1 << 16;
    char *out = calloc(cap, 1);
    snapshot_into(dir, "", out, cap);
    return out;
}

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, size, f) == size;
    return f && !fclose(f) && ok;
}

/* The run's checkpoint (its bytes in `file`) rewritten with `config` as its
 * mixreg.config, and config.json with the same text. Plain writes: the
 * library's atomic ones fsync, which would make this test slow for nothing. */
static int write_config(const char *run, const mx_safetensors *file, const char *config)
{
    uint64_t header_len = 0;
    for (int b = 7; b >= 0; b--) header_len = header_len << 8 | file->file[b];
    char *header_text = strndup((const char *)file->file + 8, header_len);
    cJSON *header = cJSON_Parse(header_text);
    free(header_text);
    cJSON *meta = cJSON_GetObjectItem(header, "__metadata__");
    if (!meta) return cJSON_Delete(header), 0;
    cJSON_ReplaceItemInObject(meta, "mixreg.config", cJSON_CreateString(config));
    char *text = cJSON_PrintUnformatted(header);
    cJSON_Delete(header);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8, data = file->file_size - 8 - header_len;
    unsigned char *out = malloc(8 + padded + data);
    for (int b = 0; b < 8; b++) out[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    memcpy(out + 8, text, len);
    memset(out + 8 + len, ' ', padded - len);
    memcpy(out + 8 + padded, file->file + 8 + header_len, data);
    free(text);
    char path[8192];
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    int ok = write_file(path, out, 8 + padded + data);
    free(out);
    snprintf(path, sizeof path, "%s/config.json", run);
    return ok && write_file(path, config, strlen(config));
}

static char *config_with(const char *original, const char *key, const char *value)
{
    cJSON *root = cJSON_Parse(original);
    if (!root) return NULL;
    cJSON_ReplaceItemInObject(root, key, cJSON_CreateRaw(value));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

int main(void)
{
    const char *bin = getenv("MIXREG_BIN"), *src = getenv("MIXREG_SOURCE_DIR");
    if (!bin || !src) {
        fprintf(stderr, "MIXREG_BIN and MIXREG_SOURCE_DIR must be set (ctest sets them)\n");
        return 1;
    }
    make_temp_root_for("config-resume");
    char script[4096], data[4096], spec[4200], err[4096];
    snprintf(script, sizeof script, "%s/tests/make_tiny_idx.py", src);
    snprintf(data, sizeof data, "%s", tmp_path("data"));
    snprintf(spec, sizeof spec, "idx:%s", data);
    snprintf(err, sizeof err, "%s", tmp_path("err.txt"));
    const char *run = tmp_path("run");
    char run_dir[8192];
    snprintf(run_dir, sizeof run_dir, "%s", run);
    char *make_data[] = {"python3", script, data, "8", "40", "20", "1", NULL};
    CHECK(run_command(make_data, err) == 0);
    char *train[] = {(char *)bin, "train", "--data", spec, "--hidden", "4", "--epochs", "2", "--batch-size", "10",
                     "--max-steps", "3", "--threads", "1", "--no-tensorboard", "--log-every", "1", "--save-every",
                     "1steps", "--out", run_dir, NULL};
    int trained = run_command(train, err) == 0;
    CHECK(trained);
    mx_safetensors original;
    char model[8300];
    snprintf(model, sizeof model, "%s/model.safetensors", run_dir);
    if (!trained || mx_safetensors_read(model, &original) != MX_OK) {
        fprintf(stderr, "could not make the run to tamper with\n");
        remove_tree(g_tmp);
        CHECK_DONE();
    }
    const char *stored = mx_safetensors_meta(&original, "mixreg.config");
    CHECK(stored != NULL);

    /* The untouched run resumes (to its end: nothing left to train). */
    char *resume[] = {(char *)bin, "train", "--resume", run_dir, NULL};
    CHECK(write_config(run_dir, &original, stored));
    CHECK(run_command(resume, err) == 0);

    const mx_setting *table;
    size_t count = mx_settings(&table), runs = 0;
    for (size_t i = 0; i < count; i++) {
        const mx_setting *s = &table[i];
        setting_case cases[MAX_CASES];
        size_t n = bad_json_values(s, cases);
        int took_other = 0;
        for (size_t k = 0; k < n; k++) {
            /* Every value out of range, and one of the other kinds (type, form) per setting. */
            if (!cases[k].range && took_other++) continue;
            char *config = config_with(stored, s->key, cases[k].text);
            CHECK(config && write_config(run_dir, &original, config));
            free(config);
            char *before = snapshot(run_dir);
            int status = run_command(resume, err);
            char *after = snapshot(run_dir), *message = read_text(err);
            char needle[128];
            snprintf(needle, sizeof needle, "config: %s: ", s->key);
            int one_line = message && !strncmp(message, "mixreg: error: ", 15) && strchr(message, '\n') &&
                           !strchr(message, '\n')[1];
            int good = status == 1 && one_line && strstr(message, needle) && !strcmp(before, after);
            CHECK(good);
            if (!good)
                fprintf(stderr, "  %s = %.60s: exit %d, stderr '%s'%s\n", s->key, cases[k].text, status,
                        message ? message : "", strcmp(before, after) ? ", run directory changed" : "");
            free(before);
            free(after);
            free(message);
            runs++;
        }
    }
    CHECK(runs >= 2 * count);
    printf("%zu tampered configs refused\n", runs);
    mx_safetensors_free(&original);
    remove_tree(g_tmp);
    CHECK_DONE();
}
