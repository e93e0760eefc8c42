/* What both builds share: reading a launcher's process count from the
 * environment, and splitting a global batch over the ranks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/dist.h"

static const char *real_getenv(const char *name) { return getenv(name); }

/* A positive decimal count, or 0 for anything else (absent, junk, zero). */
static long parse_count(const char *text)
{
    if (!text || !*text) return 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v <= 0 || v > (1L << 24)) return 0;
    return v;
}

long mx_dist_launcher_size(const char *(*getenv_fn)(const char *name))
{
    if (!getenv_fn) getenv_fn = real_getenv;
    /* OpenMPI's mpirun/prterun set this for every process it starts. */
    long n = parse_count(getenv_fn("OMPI_COMM_WORLD_SIZE"));
    if (n) return n;
    /* MPICH's and Intel MPI's hydra, and srun --mpi=pmi2. */
    n = parse_count(getenv_fn("PMI_SIZE"));
    if (n) return n;
    /* srun sets the step's task count in each task; a batch script runs in
     * the allocation with SLURM_NTASKS and SLURM_PROCID but no step count, so
     * a plain `sbatch -n 4 script` running mixreg once is not a launch. */
    if (getenv_fn("SLURM_PROCID")) {
        n = parse_count(getenv_fn("SLURM_STEP_NUM_TASKS"));
        if (n) return n;
    }
    return 0;
}

long mx_dist_launcher_rank(const char *(*getenv_fn)(const char *name))
{
    if (!getenv_fn) getenv_fn = real_getenv;
    if (!mx_dist_launcher_size(getenv_fn)) return -1;
    const char *names[3] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (int k = 0; k < 3; k++) {
        const char *text = getenv_fn(names[k]);
        if (text && !strcmp(text, "0")) return 0;
        long v = parse_count(text);
        if (v) return v;
    }
    return -1;
}

mx_status mx_dist_check_single_launch(const char *(*getenv_fn)(const char *name))
{
    long launched = mx_dist_launcher_size(getenv_fn);
    if (launched > 1)
        return mx_error_set(MX_ERR_ARG,
                            "built without MPI but started as one of %ld processes (mpirun/srun); rebuild with "
                            "-DMIXREG_MPI=ON (Debian: apt-get install libopenmpi-dev) or run one process",
                            launched);
    return MX_OK;
}

void mx_dist_split(size_t n, int rank, int size, size_t *start, size_t *count)
{
    size_t r = (size_t)rank, p = size > 0 ? (size_t)size : 1;
    size_t base = n / p, extra = n % p;
    *count = base + (r < extra);
    *start = r * base + (r < extra ? r : extra);
}
