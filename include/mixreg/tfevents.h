/* TensorBoard event files written by mixreg itself: TFRecord framing (length,
 * masked CRC-32C of the length, payload, masked CRC-32C of the payload) around
 * hand-encoded Event/Summary protobuf messages (tensorflow/core/util/event.proto).
 * TensorBoard reads them as any other run. */
#ifndef MIXREG_TFEVENTS_H
#define MIXREG_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

typedef struct mx_tfevents mx_tfevents;

/* CRC-32C (Castagnoli) and TFRecord's mask of it. */
uint32_t mx_crc32c(const void *data, size_t size);
uint32_t mx_crc32c_mask(uint32_t crc);

/* Creates DIR (mkdir -p) and DIR/events.out.tfevents.<seconds>.<host>.<pid>.mixreg,
 * starting with the file_version event "brain.Event:2". */
mx_status mx_tfevents_open(const char *dir, mx_tfevents **out);
mx_status mx_tfevents_scalar(mx_tfevents *w, const char *tag, int64_t step, double wall_time, double value);
/* A HistogramProto of the values: min, max, num, sum, sum of squares, 30 equal-width buckets. */
mx_status mx_tfevents_histogram(mx_tfevents *w, const char *tag, int64_t step, double wall_time, const float *values,
                                size_t n);

/* One hyperparameter: a number, a switch or a text. */
typedef enum { MX_HPARAM_NUMBER, MX_HPARAM_BOOL, MX_HPARAM_TEXT } mx_hparam_kind;
typedef struct {
    const char *name;
    mx_hparam_kind kind;
    double number;     /* MX_HPARAM_NUMBER */
    int on;            /* MX_HPARAM_BOOL */
    const char *text;  /* MX_HPARAM_TEXT */
} mx_hparam;

/* The run's hyperparameters for TensorBoard's HParams dashboard, as its own
 * summary writer stores them: a value tagged "_hparams_/session_start_info"
 * with plugin "hparams" whose content is HParamsPluginData{version 0,
 * session_start_info{hparams: name -> google.protobuf.Value, start_time_secs}}
 * (tensorboard/plugins/hparams/plugin_data.proto), and an empty float tensor.
 * The dashboard lists the scalars of the same run as its metrics. */
mx_status mx_tfevents_hparams(mx_tfevents *w, double wall_time, const mx_hparam *list, size_t count);
mx_status mx_tfevents_flush(mx_tfevents *w);
void mx_tfevents_close(mx_tfevents *w);  /* NULL is fine */
const char *mx_tfevents_path(const mx_tfevents *w);

#endif
