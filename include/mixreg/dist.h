/* Data-parallel processes: who this process is among the ranks of an MPI job
 * and the few collectives the trainer and the evaluators need. Built with MPI
 * (CMake -DMIXREG_MPI=ON/AUTO and OpenMPI found) these are MPI calls on
 * MPI_COMM_WORLD; without it there is one process, rank 0 of 1, and every
 * collective is the identity. MPI is only initialised when a launcher
 * (mpirun, srun) started the process, so a plain `mixreg ...` never touches
 * it. Every call is made from the main thread only (MPI_THREAD_FUNNELED).
 *
 * The gradient all-reduce of a training step goes through
 * mx_dist_allreduce_sum_float() alone, so another transport (NCCL for device
 * memory) can take over that one point without touching the trainer. */
#ifndef MIXREG_DIST_H
#define MIXREG_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

/* Joins the job if a launcher started this process (MPI_Init_thread, errors
 * returned instead of aborting) and learns rank, size and local rank. Safe to
 * call once per process; without a launcher it only records "1 process".
 * In a build without MPI, a launcher that started more than one process is
 * an error (MX_ERR_ARG, "built without MPI; rebuild with -DMIXREG_MPI=ON ...")
 * rather than N processes silently training the same model. */
mx_status mx_dist_init(int *argc, char ***argv);

/* Leaves the job (MPI_Finalize). With abort_job and more than one process,
 * stops the whole job instead (MPI_Abort, exit code 1): a rank that failed
 * alone would otherwise leave the others waiting in a collective. Idempotent;
 * mx_dist_init registers mx_dist_finalize(0) with atexit(). */
void mx_dist_finalize(int abort_job);

/* 1 if this build has MPI. */
int mx_dist_built_with_mpi(void);
/* 1 if this process joined an MPI job (mx_dist_init saw a launcher). */
int mx_dist_active(void);
int mx_dist_rank(void);
int mx_dist_size(void);
/* Rank among the processes of this job on the same machine (0 alone). */
int mx_dist_local_rank(void);
/* How many processes of this job share this machine (1 alone). */
int mx_dist_local_size(void);
/* 1 on rank 0, the process that writes files and prints. */
int mx_dist_is_root(void);

/* The number of processes the environment says a launcher started: mpirun's
 * OMPI_COMM_WORLD_SIZE, the PMI_SIZE of MPICH/Intel MPI/srun --mpi=pmi2, and
 * srun's SLURM_STEP_NUM_TASKS (with SLURM_PROCID; a batch script's
 * SLURM_NTASKS is not a launch); 0 when none says so. Pure: reads `getenv`
 * (the real environment when NULL), so tests can give it one. */
long mx_dist_launcher_size(const char *(*getenv_fn)(const char *name));

/* This process's rank as the launcher's environment gives it
 * (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID with a step), -1 if none does. */
long mx_dist_launcher_rank(const char *(*getenv_fn)(const char *name));

/* What a build without MPI does at start: MX_ERR_ARG "built without MPI but
 * started as one of N processes ...; rebuild with -DMIXREG_MPI=ON ..." when
 * the environment says a launcher started more than one process, MX_OK
 * otherwise (pure, for tests; getenv_fn NULL = the real environment). */
mx_status mx_dist_check_single_launch(const char *(*getenv_fn)(const char *name));

/* Root's bytes copied to every rank (in place). */
mx_status mx_dist_broadcast(void *buf, size_t bytes);

/* In-place elementwise sums over all ranks; every rank gets the result. */
mx_status mx_dist_allreduce_sum_float(float *x, size_t n);
mx_status mx_dist_allreduce_sum_double(double *x, size_t n);
mx_status mx_dist_allreduce_sum_i64(int64_t *x, size_t n);
/* In-place maximum over all ranks (e.g. "did any rank fail?"). */
mx_status mx_dist_allreduce_max_int(int *x, size_t n);

/* Gathers variable-length arrays to rank 0 in rank order: rank r sends
 * send[0..count); rank 0 receives them concatenated into recv (capacity
 * recv_cap elements; MX_ERR_ARG if the total exceeds it) and the total in
 * *total. recv and total are ignored on other ranks (may be NULL). */
mx_status mx_dist_gather_float(const float *send, size_t count, float *recv, size_t recv_cap, size_t *total);
mx_status mx_dist_gather_int(const int32_t *send, size_t count, int32_t *recv, size_t recv_cap, size_t *total);

mx_status mx_dist_barrier(void);

/* Prints "mixreg: error: <message>" (rank-prefixed when size > 1) and stops
 * the whole job with exit code 1 (MPI_Abort; exit() alone). For faults that
 * leave this rank unable to join the next collective. */
_Noreturn void mx_dist_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Rank r's share of a global batch of n split over size ranks as evenly as
 * possible (the first n % size ranks take one more): *start and *count. */
void mx_dist_split(size_t n, int rank, int size, size_t *start, size_t *count);

#endif
