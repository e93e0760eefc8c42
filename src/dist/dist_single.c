/* The build without MPI: one process, rank 0 of 1, every collective the
 * identity. A launcher that started several copies of this build is refused
 * at mx_dist_init: each would train the same model alone. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/dist.h"

mx_status mx_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return mx_dist_check_single_launch(NULL);
}

void mx_dist_finalize(int abort_job) { (void)abort_job; }
int mx_dist_built_with_mpi(void) { return 0; }
int mx_dist_active(void) { return 0; }
int mx_dist_rank(void) { return 0; }
int mx_dist_size(void) { return 1; }
int mx_dist_local_rank(void) { return 0; }
int mx_dist_local_size(void) { return 1; }
int mx_dist_is_root(void) { return 1; }

mx_status mx_dist_broadcast(void *buf, size_t bytes)
{
    (void)buf;
    (void)bytes;
    return MX_OK;
}

mx_status mx_dist_allreduce_sum_float(float *x, size_t n)
{
    (void)x;
    (void)n;
    return MX_OK;
}

mx_status mx_dist_allreduce_sum_double(double *x, size_t n)
{
    (void)x;
    (void)n;
    return MX_OK;
}

mx_status mx_dist_allreduce_sum_i64(int64_t *x, size_t n)
{
    (void)x;
    (void)n;
    return MX_OK;
}

mx_status mx_dist_allreduce_max_int(int *x, size_t n)
{
    (void)x;
    (void)n;
    return MX_OK;
}

static mx_status gather_local(const void *send, size_t count, size_t elem, void *recv, size_t recv_cap, size_t *total)
{
    if (count > recv_cap)
        return mx_error_set(MX_ERR_ARG, "gather of %zu elements into room for %zu", count, recv_cap);
    if (count && recv != send) memmove(recv, send, count * elem);
    if (total) *total = count;
    return MX_OK;
}

mx_status mx_dist_gather_float(const float *send, size_t count, float *recv, size_t recv_cap, size_t *total)
{
    return gather_local(send, count, sizeof *send, recv, recv_cap, total);
}

mx_status mx_dist_gather_int(const int32_t *send, size_t count, int32_t *recv, size_t recv_cap, size_t *total)
{
    return gather_local(send, count, sizeof *send, recv, recv_cap, total);
}

mx_status mx_dist_barrier(void) { return MX_OK; }

void mx_dist_abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mixreg: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}
