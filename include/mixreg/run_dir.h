/* The run directory as a place several processes, a crash or a full disk can
 * meet: one writer at a time (a lock), no leftovers of a dead writer, no
 * subdirectory that leads elsewhere. The files' formats are in run.h and
 * docs/formats.md. */
#ifndef MIXREG_RUN_DIR_H
#define MIXREG_RUN_DIR_H

#include <stddef.h>

#include "mixreg/error.h"

#define MX_RUN_LOCK_FILE ".lock"

/* Takes the writer's lock on an existing run directory: an exclusive flock()
 * on RUN_DIR/.lock (created if missing, never through a symbolic link), which
 * then holds the holder's pid. Another process holding it: MX_ERR_IO naming
 * that pid. The lock ends with mx_run_dir_unlock or with the process, however
 * it ends. *lock_fd is -1 on failure. */
mx_status mx_run_dir_lock(const char *dir, int *lock_fd);
void mx_run_dir_unlock(int lock_fd);  /* -1 is fine */

/* With the lock held: removes the temporaries ("<name>.tmp.<pid>[.<n>]") in
 * RUN_DIR and RUN_DIR/checkpoints whose process no longer exists, left by a
 * writer that was killed mid-save. Returns how many were removed. */
size_t mx_run_dir_remove_stale_temporaries(const char *dir);

/* With the lock held, for a fresh run in a directory that holds no model:
 * removes what an earlier run that saved no checkpoint left (log.jsonl,
 * result.json, best.safetensors, mixreg's own TensorBoard event files), so
 * the new run's log starts over instead of continuing a stale one. */
mx_status mx_run_dir_start_over(const char *dir);

/* RUN_DIR/NAME as a directory (created if missing) into path; a symbolic
 * link or anything but a directory there is refused. */
mx_status mx_run_dir_subdir(const char *dir, const char *name, char *path, size_t cap);

#endif
