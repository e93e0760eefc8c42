/* Evaluation split over the processes of a data-parallel job (mixreg/dist.h):
 * each rank computes the logits of one contiguous shard of the samples, rank
 * 0 gathers them in sample order and computes every metric from them exactly
 * as one process does, so N ranks report the same numbers, bit for bit, as
 * one process with the same thread count.
 *
 * Exactness rests on one fact: a sample's logits depend on the batch it was
 * computed in (oneDNN and BLAS pick kernels and blockings by batch size), so
 * the shards are runs of WHOLE batches, cut where one process cuts them: at
 * multiples of the evaluation batch from the first sample. Every batch is
 * then the same batch in both, and so are its logits.
 *
 * In a one-process job (no MPI, or one rank) every function here is the
 * plain one it stands for (mx_evaluate, mx_evaluate_logits), so results and
 * behaviour are unchanged. */
#ifndef MIXREG_EVAL_SHARD_H
#define MIXREG_EVAL_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/evaluate.h"
#include "mixreg/metrics.h"
#include "mixreg/model.h"
#include "mixreg/rescale.h"

/* Rank `rank` of `size`'s samples [*start, *start + *count) of n, in whole
 * batches of `batch` (the last one possibly short): the ceil(n / batch)
 * batches split as evenly as possible, the first ranks taking one more. A
 * rank may get none (*count 0) when there are fewer batches than ranks. */
void mx_eval_shard(size_t n, size_t batch, int rank, int size, size_t *start, size_t *count);

/* Every rank's verdict on a step all of them took: st where it failed; where
 * this rank succeeded but another failed, an error saying so. Call it before
 * a collective that a failed rank would not reach, so that no rank waits
 * forever. st itself in a one-process job. */
mx_status mx_eval_agree(mx_status st);

/* Fixed-size records (record_bytes a multiple of 4) gathered to rank 0 in
 * rank order, bits unchanged (doubles included): rank 0 gets the `total`
 * records of all ranks in recv (room for recv_cap records); recv is ignored
 * on the other ranks. */
mx_status mx_eval_gather_records(const void *send, size_t count, size_t record_bytes, void *recv, size_t recv_cap);

/* mx_evaluate_logits over the job: on rank 0, logits (ds->n x classes) and
 * labels (ds->n) of every sample, equal to one process's; on the other ranks
 * logits and labels are not written (may be NULL). Every rank must call it. */
mx_status mx_evaluate_logits_sharded(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                                     const mx_rescale_stats *stats, float *logits, int32_t *labels);

/* mx_evaluate over the job: every rank gets rank 0's metrics, which equal one
 * process's (the test evaluation at the end of each training epoch calls
 * this). Every rank must call it. */
mx_status mx_evaluate_sharded(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                              const mx_rescale_stats *stats, size_t bins, mx_metrics *plain, mx_metrics *rescaled);
/* The same with progress reports (mixreg/evaluate.h): each rank's of its own
 * shard, scaled to the whole (progress NULL: none). */
mx_status mx_evaluate_sharded_reporting(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                                        const mx_rescale_stats *stats, size_t bins, mx_metrics *plain,
                                        mx_metrics *rescaled, const mx_eval_progress *progress);

#endif
