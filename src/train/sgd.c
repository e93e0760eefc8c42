#include "mixreg/optim.h"

void mx_sgd_step(const mx_sgd_config *cfg, double lr, float *params, const float *grads, float *velocity,
                 size_t count)
{
    const float m = (float)cfg->momentum, wd = (float)cfg->weight_decay, step = (float)lr;
    if (cfg->nesterov) {
        for (size_t i = 0; i < count; i++) {
            float g = grads[i] + wd * params[i];
            float v = m * velocity[i] + g;
            velocity[i] = v;
            params[i] -= step * (g + m * v);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            float g = grads[i] + wd * params[i];
            float v = m * velocity[i] + g;
            velocity[i] = v;
            params[i] -= step * v;
        }
    }
}
