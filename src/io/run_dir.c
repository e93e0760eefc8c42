/* The run directory's writer lock, stale temporaries and subdirectories. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mixreg/fileio.h"
#include "mixreg/run_dir.h"

/* The pid the holder wrote into the lock file, 0 if unreadable. */
static long lock_holder(int fd)
{
    char text[32] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    char *end;
    long pid = strtol(text, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

mx_status mx_run_dir_lock(const char *dir, int *lock_fd)
{
    *lock_fd = -1;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, MX_RUN_LOCK_FILE) >= (int)sizeof path)
        return mx_error_set(MX_ERR_ARG, "%s: path too long", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP) return mx_error_set(MX_ERR_IO, "%s is a symbolic link; refusing to use it as the lock", path);
    if (fd < 0) return mx_error_set(MX_ERR_IO, "%s: cannot create the run directory's lock: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mx_error_set(MX_ERR_IO, "%s: the run directory's lock is not a regular file", path);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        long holder = err == EWOULDBLOCK ? lock_holder(fd) : 0;
        close(fd);
        if (err != EWOULDBLOCK) return mx_error_set(MX_ERR_IO, "%s: cannot lock: %s", path, strerror(err));
        if (holder)
            return mx_error_set(MX_ERR_IO, "%s is in use by another mixreg process (pid %ld) writing to it; "
                                "wait for it to end or stop it", dir, holder);
        return mx_error_set(MX_ERR_IO, "%s is in use by another mixreg process writing to it; wait for it to end or stop it",
                            dir);
    }
    /* Ours now: the pid, for the message another writer gets. */
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        /* The lock holds without the pid; only the message loses it. */
    }
    *lock_fd = fd;
    return MX_OK;
}

void mx_run_dir_unlock(int lock_fd)
{
    /* The file stays: removing it would let a third process lock a new file
     * while a second one still waits on the old. */
    if (lock_fd >= 0) close(lock_fd);
}

/* The pid in "<name>.tmp.<pid>" or "<name>.tmp.<pid>.<n>", 0 if `name` is not a temporary. */
static long temporary_pid(const char *name)
{
    const char *tmp = strstr(name, ".tmp.");
    if (!tmp) return 0;
    const char *p = tmp + 5;
    if (!isdigit((unsigned char)*p)) return 0;
    char *end;
    long pid = strtol(p, &end, 10);
    if (*end == '.') {
        const char *n = end + 1;
        if (!isdigit((unsigned char)*n)) return 0;
        while (isdigit((unsigned char)*n)) n++;
        end = (char *)n;
    }
    return *end == '\0' && pid > 0 ? pid : 0;
}

static int process_gone(long pid) { return kill((pid_t)pid, 0) != 0 && errno == ESRCH; }

static size_t remove_stale_in(const char *dir)
{
    char **names;
    size_t count, removed = 0;
    if (mx_list_dir(dir, "", &names, &count) != MX_OK) return 0;
    char path[4608];
    for (size_t i = 0; i < count; i++) {
        long pid = temporary_pid(names[i]);
        /* A live process's temporary may be an `eval` writing its outputs here. */
        if (!pid || pid == (long)getpid() || !process_gone(pid)) continue;
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        /* unlink() removes a symbolic link itself, never its target. */
        if (lstat(path, &sb) == 0 && !S_ISDIR(sb.st_mode) && unlink(path) == 0) removed++;
    }
    mx_free_names(names, count);
    return removed;
}

size_t mx_run_dir_remove_stale_temporaries(const char *dir)
{
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/checkpoints", dir);
    struct stat sb;
    size_t removed = remove_stale_in(dir);
    if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) removed += remove_stale_in(sub);
    return removed;
}

static mx_status remove_if_there(const char *dir, const char *name)
{
    char path[4608];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (unlink(path) != 0 && errno != ENOENT)
        return mx_error_set(MX_ERR_IO, "%s: cannot remove the earlier run's file: %s", path, strerror(errno));
    return MX_OK;
}

mx_status mx_run_dir_start_over(const char *dir)
{
    static const char *const stale[] = {"log.jsonl", "result.json", "best.safetensors"};
    mx_status st = MX_OK;
    for (size_t i = 0; st == MX_OK && i < sizeof stale / sizeof stale[0]; i++) st = remove_if_there(dir, stale[i]);
    char tb[4096];
    struct stat sb;
    snprintf(tb, sizeof tb, "%s/tensorboard", dir);
    if (st != MX_OK || lstat(tb, &sb) != 0 || !S_ISDIR(sb.st_mode)) return st;
    char **names;
    size_t count;
    if (mx_list_dir(tb, "events.out.tfevents.", &names, &count) != MX_OK) return MX_OK;
    for (size_t i = 0; st == MX_OK && i < count; i++) {
        size_t len = strlen(names[i]);
        if (len > 7 && !strcmp(names[i] + len - 7, ".mixreg")) st = remove_if_there(tb, names[i]);
    }
    mx_free_names(names, count);
    return st;
}

mx_status mx_run_dir_subdir(const char *dir, const char *name, char *path, size_t cap)
{
    if (snprintf(path, cap, "%s/%s", dir, name) >= (int)cap) return mx_error_set(MX_ERR_ARG, "%s/%s: path too long", dir, name);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return mx_error_set(MX_ERR_IO, "cannot create directory %s: %s", path, strerror(errno));
    struct stat sb;
    if (lstat(path, &sb) != 0) return mx_error_set(MX_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISLNK(sb.st_mode))
        return mx_error_set(MX_ERR_IO, "%s is a symbolic link; refusing to write through it", path);
    if (!S_ISDIR(sb.st_mode)) return mx_error_set(MX_ERR_IO, "%s exists and is not a directory", path);
    return MX_OK;
}
