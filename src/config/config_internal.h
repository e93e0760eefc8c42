/* Shared inside the config module: reading and writing a setting's field. */
#ifndef MIXREG_CONFIG_INTERNAL_H
#define MIXREG_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/config.h"

void *mx_setting_field(const mx_setting *s, mx_train_config *cfg);
uint64_t mx_setting_get_count(const mx_setting *s, const mx_train_config *cfg);
void mx_setting_set_count(const mx_setting *s, mx_train_config *cfg, uint64_t value);
/* A COUNT's value against its range (0 passes when unset_ok). */
mx_status mx_setting_check_count(const mx_setting *s, const char *what, double value);
/* The value as text: TEXT settings' own form (what their parser reads). */
void mx_setting_format(const mx_setting *s, const mx_train_config *cfg, char *out, size_t cap);
/* "--flag", or the key for a setting only stored configs have. */
void mx_setting_name(const mx_setting *s, char *out, size_t cap);
/* The value in cfg as its flag would check it. */
mx_status mx_setting_check(const mx_setting *s, const mx_train_config *cfg);

#endif
