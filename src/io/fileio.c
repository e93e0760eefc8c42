#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mixreg/fileio.h"

/* Fault injection for the tests (SQLite style): with MIXREG_FAULT_WRITE_LIMIT=N
 * in the environment, atomic writes fail with ENOSPC after N bytes, as on a
 * full disk. Read once; unset in normal use. */
static long long fault_write_limit(void)
{
    static long long limit = -2;
    if (limit == -2) {
        const char *env = getenv("MIXREG_FAULT_WRITE_LIMIT");
        limit = env && *env ? atoll(env) : -1;
    }
    return limit;
}

static mx_status write_fully(int fd, const char *path, const void *data, size_t size)
{
    const char *p = data;
    long long limit = fault_write_limit();
    if (limit >= 0 && (long long)size > limit) {
        if (limit > 0 && write(fd, p, (size_t)limit) < 0) return mx_error_set(MX_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        return mx_error_set(MX_ERR_IO, "%s: write failed: %s", path, strerror(ENOSPC));
    }
    while (size) {
        ssize_t w = write(fd, p, size);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return mx_error_set(MX_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += w;
        size -= (size_t)w;
    }
    return MX_OK;
}

static void fsync_parent_dir(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Temporaries are "<path>.tmp.<pid>.<n>": the pid says whose it is (a stale
 * one of a dead process is removed by the next writer of the run directory),
 * the per-process counter makes the name unique within the process. */
static unsigned long next_temp_number(void)
{
    static unsigned long counter;
    return __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
}

mx_status mx_file_create_temp(const char *path, char *tmp, size_t cap, int *fd)
{
    *fd = -1;
    /* A name already taken is not ours (a leftover, or something planted):
     * never opened, never followed; the next number is tried instead. */
    for (int attempt = 0; attempt < 100; attempt++) {
        if (snprintf(tmp, cap, "%s.tmp.%ld.%lu", path, (long)getpid(), next_temp_number()) >= (int)cap)
            return mx_error_set(MX_ERR_ARG, "%s: path too long", path);
        *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (*fd >= 0) return MX_OK;
        if (errno != EEXIST) return mx_error_set(MX_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    return mx_error_set(MX_ERR_IO, "%s: cannot create a temporary file beside it: every name tried exists", path);
}

mx_status mx_file_rename_into_place(const char *tmp, const char *path)
{
    /* rename() replaces a symbolic link at `path` itself, never its target. */
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return mx_error_set(MX_ERR_IO, "%s: cannot rename into place: %s", path, strerror(err));
    }
    fsync_parent_dir(path);
    return MX_OK;
}

mx_status mx_file_write_atomic(const char *path, const void *data, size_t size)
{
    char tmp[4096];
    int fd;
    mx_status st = mx_file_create_temp(path, tmp, sizeof tmp, &fd);
    if (st != MX_OK) return mx_error_wrap(st, "saving %s failed, the previous version (if any) is intact", path);
    st = write_fully(fd, tmp, data, size);
    if (st == MX_OK && fsync(fd) != 0) st = mx_error_set(MX_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == MX_OK) st = mx_error_set(MX_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (st != MX_OK) unlink(tmp);
    if (st == MX_OK) st = mx_file_rename_into_place(tmp, path);
    if (st != MX_OK) return mx_error_wrap(st, "saving %s failed, the previous version (if any) is intact", path);
    return MX_OK;
}

mx_status mx_file_read_all(const char *path, size_t max_size, char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mx_error_set(MX_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return mx_error_set(MX_ERR_IO, "%s: not a regular file", path);
    }
    if ((size_t)sb.st_size > max_size) {
        fclose(f);
        return mx_error_set(MX_ERR_FORMAT, "%s: %lld bytes is larger than the %zu allowed", path,
                            (long long)sb.st_size, max_size);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return mx_error_set(MX_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(buf);
        return mx_error_set(MX_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return MX_OK;
}

mx_status mx_make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return mx_error_set(MX_ERR_ARG, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return mx_error_set(MX_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return mx_error_set(MX_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
    struct stat sb;
    if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return mx_error_set(MX_ERR_IO, "%s exists and is not a directory", buf);
    return MX_OK;
}

mx_status mx_file_open_append(const char *path, int *fd)
{
    /* O_NOFOLLOW: a symbolic link planted in the run directory is refused, not
     * appended through; O_NONBLOCK: a FIFO there fails instead of blocking. */
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (*fd < 0 && errno == ELOOP)
        return mx_error_set(MX_ERR_IO, "%s is a symbolic link; refusing to write through it", path);
    if (*fd < 0 && errno == ENXIO) return mx_error_set(MX_ERR_IO, "%s: not a regular file (a FIFO)", path);
    if (*fd < 0) return mx_error_set(MX_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    const char *why = fstat(*fd, &sb) != 0 ? strerror(errno)
                      : !S_ISREG(sb.st_mode) ? "not a regular file"
                      : sb.st_nlink > 1      ? "it has other hard links; refusing to write to them"
                                             : NULL;
    if (why) {
        close(*fd);
        *fd = -1;
        return mx_error_set(MX_ERR_IO, "%s: %s", path, why);
    }
    return MX_OK;
}

mx_status mx_file_append_record(int fd, const char *path, const void *data, size_t size)
{
    /* The writer holds the run directory's lock, so the end found here is the
     * end of the last whole record. */
    off_t good = lseek(fd, 0, SEEK_END);
    if (good < 0) return mx_error_set(MX_ERR_IO, "%s: %s", path, strerror(errno));
    const char *p = data;
    size_t left = size;
    int err = 0;
    /* One write() of the whole record; a short one (disk full, file size
     * limit) is continued, and a failure cuts the file back to `good`. */
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            err = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!err) return MX_OK;
    const char *cut = ftruncate(fd, good) == 0 ? "the partial record was removed" : "the partial record could not be removed";
    return mx_error_set(MX_ERR_IO, "%s: write failed: %s (%s)", path, strerror(err), cut);
}

mx_status mx_file_append_line(const char *path, const char *line)
{
    size_t len = strlen(line);
    char *record = malloc(len + 1);
    if (!record) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    memcpy(record, line, len);
    record[len] = '\n';
    int fd;
    mx_status st = mx_file_open_append(path, &fd);
    if (st == MX_OK) {
        st = mx_file_append_record(fd, path, record, len + 1);
        if (close(fd) != 0 && st == MX_OK) st = mx_error_set(MX_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    free(record);
    return st;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

mx_status mx_list_dir(const char *dir, const char *prefix, char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return mx_error_set(MX_ERR_IO, "cannot list %s: %s", dir, strerror(errno));
    size_t n = 0, cap = 16;
    char **list = malloc(cap * sizeof *list);
    struct dirent *e;
    mx_status st = list ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory listing %s", dir);
    while (st == MX_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix))) continue;
        if (n == cap) {
            char **grown = realloc(list, 2 * cap * sizeof *list);
            if (!grown) {
                st = mx_error_set(MX_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            list = grown, cap *= 2;
        }
        if (!(list[n] = strdup(e->d_name))) st = mx_error_set(MX_ERR_NOMEM, "out of memory listing %s", dir);
        else n++;
    }
    closedir(d);
    if (st != MX_OK) {
        mx_free_names(list, n);
        return st;
    }
    qsort(list, n, sizeof *list, compare_names);
    *names = list;
    *count = n;
    return MX_OK;
}

void mx_free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

int mx_file_has_extension(const char *path, const char *extension)
{
    size_t n = strlen(path), k = strlen(extension);
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)path[n - k + i]) != tolower((unsigned char)extension[i])) return 0;
    return 1;
}
