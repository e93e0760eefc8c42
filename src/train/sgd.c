#include "mixreg/optim.h"

/* Elements are independent, so the threads change no bit of the result;
 * below this many parameters a team costs more than it saves. */
#define SGD_PARALLEL_MIN 32768

void mx_sgd_step(const mx_sgd_config *cfg, double lr, float *params, const float *grads, float *velocity,
                 size_t count)
{
    const float m = (float)cfg->momentum, wd = (float)cfg->weight_decay, step = (float)lr;
    if (cfg->nesterov) {
#pragma omp parallel for simd schedule(static) if (count >= SGD_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) {
            float g = grads[i] + wd * params[i];
            float v = m * velocity[i] + g;
            velocity[i] = v;
            params[i] -= step * (g + m * v);
        }
    } else {
#pragma omp parallel for simd schedule(static) if (count >= SGD_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) {
            float g = grads[i] + wd * params[i];
            float v = m * velocity[i] + g;
            velocity[i] = v;
            params[i] -= step * v;
        }
    }
}
