/* Shared by the tests that write files: a private temporary directory under
 * $MIXREG_TEST_TMP (or /tmp), paths inside it, recursive removal, and
 * CHECK_FAILS for a call that must fail with a given status and message. */
#ifndef MIXREG_TEST_TMP_H
#define MIXREG_TEST_TMP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mixreg/error.h"

/* Checks a call fails with `status` and a message containing `needle`. */
#define CHECK_FAILS(expr, status, needle) do { mx_error_clear(); mx_status fs_ = (expr); \
    CHECK(fs_ == (status)); \
    if (!strstr(mx_error_message(), (needle))) { check_failures_++; \
        fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, mx_error_message(), (needle)); } \
    check_count_++; } while (0)

static char g_tmp[4096];

/* Creates g_tmp = <base>/<name>-XXXXXX; exits if it cannot. */
__attribute__((unused)) static void make_temp_root_for(const char *name)
{
    const char *base = getenv("MIXREG_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    if (mkdir(base, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", base, strerror(errno));
        exit(1);
    }
    snprintf(g_tmp, sizeof g_tmp, "%s/%s-XXXXXX", base, name);
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_tmp, strerror(errno));
        exit(1);
    }
}

/* rm -r path: a symbolic link is removed itself, never followed (the tests
 * plant links to files outside their folder). */
__attribute__((unused)) static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        for (struct dirent *e; d && (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char child[8192];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            remove_tree(child);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* g_tmp/rel, in a rotating static buffer (good for a few names at once). */
__attribute__((unused)) static const char *tmp_path(const char *rel)
{
    static char bufs[8][8192];
    static int next = 0;
    char *p = bufs[next++ % 8];
    snprintf(p, sizeof bufs[0], "%s/%s", g_tmp, rel);
    return p;
}

/* mkdir -p g_tmp/rel */
__attribute__((unused)) static void make_dirs(const char *rel)
{
    char path[8192];
    snprintf(path, sizeof path, "%s", tmp_path(rel));
    for (char *p = path + strlen(g_tmp) + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
                exit(1);
            }
            *p = c;
            if (!c) break;
        }
    }
}

#endif
