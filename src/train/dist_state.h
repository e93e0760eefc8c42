/* The model state a data-parallel job keeps the same on every process:
 * rank 0's initial parameters and buffers, batch norm's running statistics
 * (per-process batch statistics make them drift apart), and the exchange
 * behind --sync-bn. */
#ifndef MIXREG_TRAIN_DIST_STATE_H
#define MIXREG_TRAIN_DIST_STATE_H

#include "mixreg/model.h"
#include "mixreg/train.h"

/* Rank 0's parameters and every buffer copied to all processes. */
mx_status mx_train_dist_broadcast_state(mx_model *model);

/* Every batch norm's running_mean and running_var replaced by their mean
 * over the processes (all end with the same values). */
mx_status mx_train_dist_average_running_stats(mx_model *model);

/* mx_bn_reduce_fn for mx_model_set_bn_sync: sums over the processes; a
 * failed exchange stops the whole job with the reason (a batch norm cannot
 * return an error). */
void mx_train_dist_bn_reduce(void *ctx, double *sums, size_t count);

/* MX_OK on every process if st is MX_OK on every process; otherwise each
 * process returns an error: its own st and message where it failed, else
 * MX_ERR_IO naming a process that did. For steps only some processes take
 * (rank 0 writing the run directory), so that none is left waiting. */
mx_status mx_train_dist_agree(mx_status st);

/* MX_ERR_ARG on every process unless all run with rank 0's configuration
 * (a launcher given different flags per process would otherwise train a
 * model none of them asked for). */
mx_status mx_train_dist_check_config(const mx_train_config *cfg);

#endif
