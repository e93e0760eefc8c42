/* The run directory under attack and faults: planted symbolic links are never
 * written through (a table of every kind of write mixreg does there), the
 * writer's lock excludes a second writer and names it, stale temporaries of
 * dead processes go, and a file size limit (as a full disk) never leaves a
 * partial log line or TensorBoard record behind. */
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "check.h"
#include "mixreg/fileio.h"
#include "mixreg/predictions.h"
#include "mixreg/run_dir.h"
#include "mixreg/tfevents.h"
#include "test_tmp.h"

#define OUTSIDE_TEXT "outside: must stay as it is\n"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static int file_is(const char *path, const char *text)
{
    char *data;
    size_t size;
    if (mx_file_read_all(path, 1 << 20, &data, &size) != MX_OK) return 0;
    int same = size == strlen(text) && !memcmp(data, text, size);
    free(data);
    return same;
}

static int is_symlink(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

static int is_regular(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* ---- symbolic links planted in the run directory ---- */

typedef enum { WRITE_ATOMIC, WRITE_APPEND, WRITE_PREDICTIONS, WRITE_SUBDIR, WRITE_LOCK } write_kind;

typedef struct {
    const char *name;   /* the file mixreg writes, relative to the run directory */
    write_kind kind;
    int refused;        /* 1: the write fails naming the link; 0: it succeeds and replaces the link */
} link_case;

/* Every kind of file mixreg writes in a run directory: checkpoints, config,
 * results (replaced whole: the link itself is replaced), logs (appended:
 * refused), eval's outputs, the subdirectories, the lock. */
static const link_case link_cases[] = {
    {"model.safetensors", WRITE_ATOMIC, 0},
    {"best.safetensors", WRITE_ATOMIC, 0},
    {"config.json", WRITE_ATOMIC, 0},
    {"result.json", WRITE_ATOMIC, 0},
    {"eval.json", WRITE_ATOMIC, 0},
    {"reliability.png", WRITE_ATOMIC, 0},
    {"log.jsonl", WRITE_APPEND, 1},
    {"predictions.csv", WRITE_PREDICTIONS, 0},
    {"checkpoints", WRITE_SUBDIR, 1},
    {"tensorboard", WRITE_SUBDIR, 1},
    {MX_RUN_LOCK_FILE, WRITE_LOCK, 1},
};

static mx_status do_write(const link_case *c, const char *dir, const char *path)
{
    static const float probs[4] = {0.25f, 0.75f, 0.5f, 0.5f};
    static const int32_t labels[2] = {1, 0};
    char sub[4096];
    int fd;
    mx_status st;
    switch (c->kind) {
    case WRITE_ATOMIC: return mx_file_write_atomic(path, "new\n", 4);
    case WRITE_APPEND: return mx_file_append_line(path, "{\"step\": 1}");
    case WRITE_PREDICTIONS: return mx_predictions_write(path, probs, labels, 2, 2);
    case WRITE_SUBDIR: return mx_run_dir_subdir(dir, c->name, sub, sizeof sub);
    case WRITE_LOCK:
        st = mx_run_dir_lock(dir, &fd);
        mx_run_dir_unlock(fd);
        return st;
    }
    return MX_OK;
}

/* Pre-creates, as symbolic links to the outside file, the names a temporary
 * of `path` takes in this process: the old "<path>.tmp.<pid>" and the first
 * "<path>.tmp.<pid>.<n>". */
static void plant_temporaries(const char *path, const char *target)
{
    char tmp[4600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(symlink(target, tmp) == 0);
    for (int n = 0; n < 64; n++) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%d", path, (long)getpid(), n);
        CHECK(symlink(target, tmp) == 0);
    }
}

static void test_symlinks(void)
{
    for (size_t i = 0; i < sizeof link_cases / sizeof link_cases[0]; i++) {
        const link_case *c = &link_cases[i];
        char dir[4200], path[4400], outside[4200], outside_dir[4200];
        snprintf(dir, sizeof dir, "%s/links-%zu", g_tmp, i);
        snprintf(outside, sizeof outside, "%s/outside-%zu.txt", g_tmp, i);
        snprintf(outside_dir, sizeof outside_dir, "%s/outside-dir-%zu", g_tmp, i);
        snprintf(path, sizeof path, "%s/%s", dir, c->name);
        CHECK(mkdir(dir, 0755) == 0 && mkdir(outside_dir, 0755) == 0);
        write_text(outside, OUTSIDE_TEXT);
        const char *target = c->kind == WRITE_SUBDIR ? outside_dir : outside;
        CHECK(symlink(target, path) == 0);
        if (c->kind == WRITE_ATOMIC || c->kind == WRITE_PREDICTIONS) plant_temporaries(path, outside);
        mx_error_clear();
        mx_status st = do_write(c, dir, path);
        if (c->refused) {
            if (st == MX_OK || !strstr(mx_error_message(), "symbolic link")) {
                fprintf(stderr, "%s: expected a refusal naming the link, got \"%s\"\n", c->name, mx_error_message());
                CHECK(0);
            }
            CHECK(is_symlink(path));
        } else {
            if (st != MX_OK) fprintf(stderr, "%s: %s\n", c->name, mx_error_message());
            CHECK(st == MX_OK);
            CHECK(is_regular(path));  /* the link itself was replaced */
        }
        if (!file_is(outside, OUTSIDE_TEXT)) fprintf(stderr, "%s: the file outside was written\n", c->name);
        CHECK(file_is(outside, OUTSIDE_TEXT));
        char **names;
        size_t count = 1;
        CHECK_OK(mx_list_dir(outside_dir, "", &names, &count));
        CHECK(count == 0);
        mx_free_names(names, count);
    }

    /* A FIFO or a hard-linked file as the log: refused without blocking or writing elsewhere. */
    const char *fifo = tmp_path("fifo.jsonl");
    CHECK(mkfifo(fifo, 0644) == 0);
    CHECK_FAILS(mx_file_append_line(fifo, "{}"), MX_ERR_IO, "not a regular file");
    const char *outside = tmp_path("outside-hard.txt"), *hard = tmp_path("hard.jsonl");
    write_text(outside, OUTSIDE_TEXT);
    CHECK(link(outside, hard) == 0);
    CHECK_FAILS(mx_file_append_line(hard, "{}"), MX_ERR_IO, "hard links");
    CHECK(file_is(outside, OUTSIDE_TEXT));

    /* TensorBoard's event file is created new, never opened if it exists. */
    CHECK(mkdir(tmp_path("tb"), 0755) == 0);
    mx_tfevents *w;
    CHECK_OK(mx_tfevents_open(tmp_path("tb"), &w));
    if (w) {
        char planted[4200];
        snprintf(planted, sizeof planted, "%s", mx_tfevents_path(w));
        mx_tfevents_close(w);
        CHECK(unlink(planted) == 0 && symlink(outside, planted) == 0);
        /* The same second and pid give the same name: refused, the target untouched. */
        mx_status st = mx_tfevents_open(tmp_path("tb"), &w);
        if (st == MX_OK) {
            CHECK(strcmp(mx_tfevents_path(w), planted) != 0);  /* only when the clock moved on */
            mx_tfevents_close(w);
        }
        CHECK(file_is(outside, OUTSIDE_TEXT));
    }
}

/* ---- the writer's lock ---- */

static void test_lock(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", tmp_path("locked"));
    CHECK(mkdir(dir, 0755) == 0);
    int first, second;
    CHECK_OK(mx_run_dir_lock(dir, &first));
    char pid[32];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    /* flock() excludes another open of the file, in this process as in any other. */
    CHECK_FAILS(mx_run_dir_lock(dir, &second), MX_ERR_IO, pid);
    CHECK(second == -1);
    CHECK_FAILS(mx_run_dir_lock(dir, &second), MX_ERR_IO, "in use by another mixreg process");
    /* Another process gets the same answer, and the lock once this one lets go. */
    pid_t child = fork();
    if (child == 0) {
        int fd;
        mx_status st = mx_run_dir_lock(dir, &fd);
        _exit(st == MX_ERR_IO && strstr(mx_error_message(), pid) ? 0 : 1);
    }
    int status = -1;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    mx_run_dir_unlock(first);
    CHECK_OK(mx_run_dir_lock(dir, &second));
    mx_run_dir_unlock(second);
    CHECK_FAILS(mx_run_dir_lock(tmp_path("no-such-dir"), &second), MX_ERR_IO, "lock");
}

/* ---- leftovers ---- */

static long dead_pid(void)
{
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    return (long)child;
}

static void test_leftovers(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", tmp_path("stale"));
    CHECK(mkdir(dir, 0755) == 0 && mkdir(tmp_path("stale/checkpoints"), 0755) == 0);
    long dead = dead_pid(), alive = (long)getppid();
    char name[512];
    const char *outside = tmp_path("outside-stale.txt");
    write_text(outside, OUTSIDE_TEXT);
    snprintf(name, sizeof name, "stale/model.safetensors.tmp.%ld", dead);
    write_text(tmp_path(name), "partial");
    snprintf(name, sizeof name, "stale/config.json.tmp.%ld.3", dead);
    CHECK(symlink(outside, tmp_path(name)) == 0);  /* a link is removed itself, not its target */
    snprintf(name, sizeof name, "stale/checkpoints/step-0000000025.safetensors.tmp.%ld.0", dead);
    write_text(tmp_path(name), "partial");
    snprintf(name, sizeof name, "stale/predictions.csv.tmp.%ld.0", alive);  /* a live process's: kept */
    write_text(tmp_path(name), "in progress");
    write_text(tmp_path("stale/notes.tmp.txt"), "not a temporary of mixreg's");
    write_text(tmp_path("stale/config.json"), "{}");
    CHECK(mx_run_dir_remove_stale_temporaries(dir) == 3);
    char **names;
    size_t count = 0;
    CHECK_OK(mx_list_dir(dir, "", &names, &count));
    CHECK(count == 4);  /* checkpoints, config.json, notes.tmp.txt, the live one */
    for (size_t i = 0; i < count; i++) CHECK(!strstr(names[i], ".safetensors.tmp.") && !strstr(names[i], "config.json.tmp."));
    mx_free_names(names, count);
    CHECK_OK(mx_list_dir(tmp_path("stale/checkpoints"), "", &names, &count));
    CHECK(count == 0);
    mx_free_names(names, count);
    CHECK(file_is(outside, OUTSIDE_TEXT));

    /* Starting over: the stale run's log, result, best model and event files go; the rest stays. */
    CHECK(mkdir(tmp_path("stale/tensorboard"), 0755) == 0);
    write_text(tmp_path("stale/log.jsonl"), "{\"type\": \"step\", \"step\": 7}\n");
    write_text(tmp_path("stale/best.safetensors"), "x");
    write_text(tmp_path("stale/tensorboard/events.out.tfevents.1.host.2.mixreg"), "x");
    write_text(tmp_path("stale/tensorboard/events.out.tfevents.1.host.other"), "another writer's");
    CHECK_OK(mx_run_dir_start_over(dir));
    CHECK(access(tmp_path("stale/log.jsonl"), F_OK) != 0);
    CHECK(access(tmp_path("stale/best.safetensors"), F_OK) != 0);
    CHECK(access(tmp_path("stale/tensorboard/events.out.tfevents.1.host.2.mixreg"), F_OK) != 0);
    CHECK(access(tmp_path("stale/tensorboard/events.out.tfevents.1.host.other"), F_OK) == 0);
    CHECK(access(tmp_path("stale/config.json"), F_OK) == 0);
}

/* ---- a file size limit (EFBIG), as a full disk (ENOSPC) ---- */

static int valid_records(const char *path, size_t *records)
{
    char *data;
    size_t size;
    *records = 0;
    if (mx_file_read_all(path, 1 << 24, &data, &size) != MX_OK) return 0;
    const uint8_t *p = (const uint8_t *)data, *end = p + size;
    int ok = 1;
    while (ok && p < end) {
        if (end - p < 16) {
            ok = 0;
            break;
        }
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = len << 8 | p[i];
        uint32_t crc = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
        ok = crc == mx_crc32c_mask(mx_crc32c(p, 8)) && len <= (uint64_t)(end - p) - 16;
        if (ok) p += 16 + len, (*records)++;
    }
    free(data);
    return ok;
}

static void test_size_limit(void)
{
    struct rlimit old;
    if (getrlimit(RLIMIT_FSIZE, &old) != 0) {
        printf("skipped the file size limit test: getrlimit: %s\n", strerror(errno));
        return;
    }
    /* Ignored, SIGXFSZ lets write() fail with EFBIG instead of ending the process. */
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {1000, old.rlim_max};
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < 1000) small.rlim_cur = old.rlim_max;
    if (setrlimit(RLIMIT_FSIZE, &small) != 0) {
        printf("skipped the file size limit test: setrlimit: %s\n", strerror(errno));
        signal(SIGXFSZ, old_handler);
        return;
    }
    /* Lines of 300 bytes: three fit in 1000, the fourth is cut off and removed. */
    char line[300];
    memset(line, 'x', sizeof line - 1);
    line[0] = '{', line[sizeof line - 2] = '}', line[sizeof line - 1] = '\0';
    const char *log = tmp_path("full.jsonl");
    mx_status st = MX_OK;
    int written = 0;
    for (; written < 10 && (st = mx_file_append_line(log, line)) == MX_OK; written++) {
    }
    long log_size = file_size(log);
    CHECK(written == 3);
    CHECK(st == MX_ERR_IO && strstr(mx_error_message(), "File too large") &&
          strstr(mx_error_message(), "partial record was removed"));
    CHECK(log_size == 900);

    /* Event records: the file ends at the last whole record. */
    mx_tfevents *w = NULL;
    CHECK(mkdir(tmp_path("full-tb"), 0755) == 0);
    st = mx_tfevents_open(tmp_path("full-tb"), &w);
    CHECK(st == MX_OK);
    char tb_path[4200] = "";
    size_t scalars = 0;
    if (w) {
        snprintf(tb_path, sizeof tb_path, "%s", mx_tfevents_path(w));
        while (scalars < 1000 && (st = mx_tfevents_scalar(w, "train/loss", (int64_t)scalars, 1.0, 0.5)) == MX_OK) scalars++;
        CHECK(st == MX_ERR_IO && strstr(mx_error_message(), "File too large"));
        float values[64] = {0};
        CHECK(mx_tfevents_histogram(w, "weights/w", 1, 1.0, values, 64) == MX_ERR_IO);
        mx_tfevents_close(w);
    }
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, old_handler);
    size_t records;
    CHECK(scalars > 5 && scalars < 1000);
    CHECK(valid_records(tb_path, &records));
    CHECK(records == scalars + 1);  /* the file_version event and each scalar written */
    CHECK(file_size(tb_path) <= 1000);
    /* With room again, the log continues after its last whole line. */
    CHECK_OK(mx_file_append_line(log, "{}"));
    CHECK(file_size(log) == 903);
}

/* The tests' own clean-up (test_tmp.h remove_tree) removes a planted link to
 * a directory, never what it points at. */
static void test_remove_tree_keeps_link_targets(void)
{
    make_dirs("kept");
    write_text(tmp_path("kept/file.txt"), OUTSIDE_TEXT);
    make_dirs("doomed");
    CHECK(symlink(tmp_path("kept"), tmp_path("doomed/link")) == 0);
    remove_tree(tmp_path("doomed"));
    struct stat sb;
    CHECK(lstat(tmp_path("doomed"), &sb) != 0 && errno == ENOENT);
    CHECK(file_is(tmp_path("kept/file.txt"), OUTSIDE_TEXT));
}

int main(void)
{
    make_temp_root_for("run-dir");
    test_remove_tree_keeps_link_targets();
    test_symlinks();
    test_lock();
    test_leftovers();
    test_size_limit();
    remove_tree(g_tmp);
    CHECK_DONE();
}
