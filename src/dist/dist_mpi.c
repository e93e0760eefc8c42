/* The build with MPI: the ranks of MPI_COMM_WORLD. MPI is initialised only
 * when a launcher started the process (mx_dist_launcher_size), so a plain
 * `mixreg train` needs no MPI runtime at all; every collective is then the
 * identity, as in the build without MPI. Errors are returned
 * (MPI_ERRORS_RETURN) and turned into mx_status messages; the caller decides
 * whether to stop the job. */
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/dist.h"

static struct {
    int active;      /* MPI_Init_thread succeeded and MPI_Finalize has not run */
    int rank, size, local_rank, local_size;
} g_dist = {0, 0, 1, 0, 1};

/* MPI counts are int: larger arrays go in pieces of this many elements. */
#define CHUNK ((size_t)1 << 30)

static mx_status mpi_failed(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", code);
    return mx_error_set(MX_ERR_IO, "%s across %d processes failed: %s (did another process of the job stop?)", what,
                        g_dist.size, text);
}

static void finalize_at_exit(void) { mx_dist_finalize(0); }

mx_status mx_dist_init(int *argc, char ***argv)
{
    if (g_dist.active) return MX_OK;
    long launched = mx_dist_launcher_size(NULL);
    if (launched == 0) return MX_OK; /* a plain single process */
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mx_error_set(MX_ERR_IO, "MPI_Init failed (error %d)", rc);
    g_dist.active = 1;
    atexit(finalize_at_exit);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_dist.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_dist.size);
    if (provided < MPI_THREAD_FUNNELED)
        return mx_error_set(MX_ERR_IO, "this MPI library gives no thread support (MPI_THREAD_FUNNELED is needed)");
    if (launched != g_dist.size)
        return mx_error_set(MX_ERR_IO,
                            "the launcher started %ld processes but MPI sees %d (is this MPI built for the launcher, e.g. "
                            "srun --mpi=pmix?)",
                            launched, g_dist.size);
    /* The local rank: this rank's place among the ranks sharing its memory. */
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_dist.rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &g_dist.local_rank);
        MPI_Comm_size(node, &g_dist.local_size);
        MPI_Comm_free(&node);
    }
    return MX_OK;
}

void mx_dist_finalize(int abort_job)
{
    if (!g_dist.active) return;
    g_dist.active = 0;
    fflush(stdout);
    fflush(stderr);
    /* A rank that fails alone must not leave the others in a collective:
     * stop the whole job. */
    if (abort_job && g_dist.size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
}

int mx_dist_built_with_mpi(void) { return 1; }
int mx_dist_active(void) { return g_dist.active; }
int mx_dist_rank(void) { return g_dist.rank; }
int mx_dist_size(void) { return g_dist.size; }
int mx_dist_local_rank(void) { return g_dist.local_rank; }
int mx_dist_local_size(void) { return g_dist.local_size; }
int mx_dist_is_root(void) { return g_dist.rank == 0; }

/* Only a job of several processes talks; one process (launched or not) has
 * nothing to exchange. */
static int talking(void) { return g_dist.active && g_dist.size > 1; }

mx_status mx_dist_broadcast(void *buf, size_t bytes)
{
    if (!talking()) return MX_OK;
    for (size_t at = 0; at < bytes; at += CHUNK) {
        size_t n = bytes - at < CHUNK ? bytes - at : CHUNK;
        int rc = MPI_Bcast((char *)buf + at, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_failed(rc, "broadcast");
    }
    return MX_OK;
}

static mx_status allreduce(void *x, size_t n, size_t elem, MPI_Datatype type, MPI_Op op)
{
    if (!talking()) return MX_OK;
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t count = n - at < CHUNK ? n - at : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)x + at * elem, (int)count, type, op, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_failed(rc, "all-reduce");
    }
    return MX_OK;
}

mx_status mx_dist_allreduce_sum_float(float *x, size_t n) { return allreduce(x, n, sizeof *x, MPI_FLOAT, MPI_SUM); }
mx_status mx_dist_allreduce_sum_double(double *x, size_t n) { return allreduce(x, n, sizeof *x, MPI_DOUBLE, MPI_SUM); }
mx_status mx_dist_allreduce_sum_i64(int64_t *x, size_t n) { return allreduce(x, n, sizeof *x, MPI_INT64_T, MPI_SUM); }
mx_status mx_dist_allreduce_max_int(int *x, size_t n) { return allreduce(x, n, sizeof *x, MPI_INT, MPI_MAX); }

/* Counts first (every rank learns whether rank 0 has room, so a refusal is
 * every rank's error, not a hang), then the data. */
static mx_status gather(const void *send, size_t count, size_t elem, MPI_Datatype type, void *recv, size_t recv_cap,
                        size_t *total)
{
    if (!talking()) {
        if (count > recv_cap) return mx_error_set(MX_ERR_ARG, "gather of %zu elements into room for %zu", count, recv_cap);
        if (count && recv != send) memmove(recv, send, count * elem);
        if (total) *total = count;
        return MX_OK;
    }
    int p = g_dist.size, root = g_dist.rank == 0;
    long long mine = (long long)count;
    long long *counts = root ? calloc((size_t)p, sizeof *counts) : NULL;
    int *rcounts = root ? calloc((size_t)p, sizeof *rcounts) : NULL;
    int *displs = root ? calloc((size_t)p, sizeof *displs) : NULL;
    int ok = !root || (counts && rcounts && displs);
    int rc = MPI_Gather(&mine, 1, MPI_LONG_LONG, counts, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    mx_status st = rc == MPI_SUCCESS ? MX_OK : mpi_failed(rc, "gather");
    long long sum = 0;
    if (st == MX_OK && root && ok) {
        for (int r = 0; r < p && ok; r++) {
            if (sum > INT_MAX - counts[r]) ok = 0;
            else {
                displs[r] = (int)sum;
                rcounts[r] = (int)counts[r];
                sum += counts[r];
            }
        }
        if ((unsigned long long)sum > recv_cap) ok = 0;
    }
    if (st == MX_OK) {
        rc = MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) st = mpi_failed(rc, "gather");
    }
    if (st == MX_OK && !ok)
        st = mx_error_set(MX_ERR_ARG, "gather to rank 0: %lld elements in all do not fit its %zu (or 2^31)", sum, recv_cap);
    if (st == MX_OK && count > INT_MAX) st = mx_error_set(MX_ERR_ARG, "gather: %zu elements from one rank", count);
    if (st == MX_OK) {
        rc = MPI_Gatherv(send, (int)count, type, recv, rcounts, displs, type, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) st = mpi_failed(rc, "gather");
    }
    if (st == MX_OK && root && total) *total = (size_t)sum;
    free(counts);
    free(rcounts);
    free(displs);
    return st;
}

mx_status mx_dist_gather_float(const float *send, size_t count, float *recv, size_t recv_cap, size_t *total)
{
    return gather(send, count, sizeof *send, MPI_FLOAT, recv, recv_cap, total);
}

mx_status mx_dist_gather_int(const int32_t *send, size_t count, int32_t *recv, size_t recv_cap, size_t *total)
{
    return gather(send, count, sizeof *send, MPI_INT32_T, recv, recv_cap, total);
}

mx_status mx_dist_barrier(void)
{
    if (!talking()) return MX_OK;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? MX_OK : mpi_failed(rc, "barrier");
}

void mx_dist_abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (talking()) fprintf(stderr, "mixreg: error: rank %d of %d: ", g_dist.rank, g_dist.size);
    else fputs("mixreg: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    if (talking()) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}
