#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include "mixreg/threads.h"

void mx_set_threads(int threads)
{
    if (threads <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        threads = online > 0 ? (int)online : 1;
    }
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
}
