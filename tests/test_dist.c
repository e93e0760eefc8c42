/* The distributed module's pure parts (launcher detection, the batch split)
 * and its single-process behaviour: a plain test process is rank 0 of 1 and
 * every collective leaves its data as it was. */
#include <string.h>

#include "check.h"
#include "mixreg/dist.h"

/* A fake environment: NULL-terminated name=value pairs. */
static const char *const *g_env;

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; g_env[i]; i += 2)
        if (!strcmp(g_env[i], name)) return g_env[i + 1];
    return NULL;
}

static long size_in(const char *const *env)
{
    g_env = env;
    return mx_dist_launcher_size(fake_getenv);
}

static void test_launcher_detection(void)
{
    const char *none[] = {"HOME", "/root", NULL};
    CHECK(size_in(none) == 0);
    const char *ompi[] = {"OMPI_COMM_WORLD_SIZE", "4", "OMPI_COMM_WORLD_RANK", "3", NULL};
    CHECK(size_in(ompi) == 4);
    CHECK(mx_dist_launcher_rank(fake_getenv) == 3);
    const char *pmi[] = {"PMI_SIZE", "2", "PMI_RANK", "0", NULL};
    CHECK(size_in(pmi) == 2);
    CHECK(mx_dist_launcher_rank(fake_getenv) == 0);
    const char *srun[] = {"SLURM_PROCID", "1", "SLURM_STEP_NUM_TASKS", "8", "SLURM_NTASKS", "8", NULL};
    CHECK(size_in(srun) == 8);
    CHECK(mx_dist_launcher_rank(fake_getenv) == 1);
    /* A batch script of `sbatch -n 8` runs once, in the allocation: SLURM_NTASKS
     * and SLURM_PROCID but no step task count. Not a launch of 8. */
    const char *sbatch[] = {"SLURM_PROCID", "0", "SLURM_NTASKS", "8", "SLURM_NPROCS", "8", "SLURM_JOB_ID", "7", NULL};
    CHECK(size_in(sbatch) == 0);
    CHECK(mx_dist_launcher_rank(fake_getenv) == -1);
    /* A step count without a task id is not srun's either. */
    const char *stray[] = {"SLURM_STEP_NUM_TASKS", "4", NULL};
    CHECK(size_in(stray) == 0);
    /* Junk counts are no launch. */
    const char *junk[] = {"OMPI_COMM_WORLD_SIZE", "2x", "PMI_SIZE", "-3", NULL};
    CHECK(size_in(junk) == 0);
}

static void test_refusal_without_mpi(void)
{
    const char *two[] = {"OMPI_COMM_WORLD_SIZE", "2", NULL};
    g_env = two;
    CHECK(mx_dist_check_single_launch(fake_getenv) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "built without MPI") != NULL);
    CHECK(strstr(mx_error_message(), "-DMIXREG_MPI=ON") != NULL);
    const char *one[] = {"OMPI_COMM_WORLD_SIZE", "1", NULL};
    g_env = one;
    CHECK_OK(mx_dist_check_single_launch(fake_getenv));
    const char *sbatch[] = {"SLURM_PROCID", "0", "SLURM_NTASKS", "4", NULL};
    g_env = sbatch;
    CHECK_OK(mx_dist_check_single_launch(fake_getenv));
}

static void test_split(void)
{
    /* 10 over 4: 3, 3, 2, 2, contiguous, covering 0..10 once. */
    size_t start, count, next = 0;
    const size_t want[4] = {3, 3, 2, 2};
    for (int r = 0; r < 4; r++) {
        mx_dist_split(10, r, 4, &start, &count);
        CHECK(start == next);
        CHECK(count == want[r]);
        next = start + count;
    }
    CHECK(next == 10);
    /* Fewer samples than ranks: some ranks get none. */
    mx_dist_split(1, 1, 2, &start, &count);
    CHECK(count == 0 && start == 1);
    mx_dist_split(7, 0, 1, &start, &count);
    CHECK(start == 0 && count == 7);
}

static void test_single_process_collectives(void)
{
    /* ctest starts this program alone: no launcher, one process. */
    CHECK_OK(mx_dist_init(NULL, NULL));
    CHECK(mx_dist_size() == 1);
    CHECK(mx_dist_rank() == 0);
    CHECK(mx_dist_is_root());
    float f[3] = {1.5f, -2, 3};
    double d[2] = {0.25, 4};
    CHECK_OK(mx_dist_allreduce_sum_float(f, 3));
    CHECK_OK(mx_dist_allreduce_sum_double(d, 2));
    CHECK(f[0] == 1.5f && f[1] == -2 && f[2] == 3 && d[0] == 0.25 && d[1] == 4);
    char bytes[4] = "abc";
    CHECK_OK(mx_dist_broadcast(bytes, 4));
    CHECK(!strcmp(bytes, "abc"));
    float out[4] = {0};
    size_t total = 0;
    CHECK_OK(mx_dist_gather_float(f, 3, out, 4, &total));
    CHECK(total == 3 && out[1] == -2);
    CHECK(mx_dist_gather_float(f, 3, out, 2, &total) == MX_ERR_ARG);
    int32_t ints[2] = {7, 9}, iout[2] = {0};
    CHECK_OK(mx_dist_gather_int(ints, 2, iout, 2, &total));
    CHECK(total == 2 && iout[0] == 7 && iout[1] == 9);
    CHECK_OK(mx_dist_barrier());
    mx_dist_finalize(0);
}

int main(void)
{
    test_launcher_detection();
    test_refusal_without_mpi();
    test_split();
    test_single_process_collectives();
    CHECK_DONE();
}
