/* The process's compute threads (BLAS and OpenMP). */
#ifndef MIXREG_THREADS_H
#define MIXREG_THREADS_H

/* Uses `threads` threads for BLAS and OpenMP work (0 = all online CPUs). */
void mx_set_threads(int threads);

#endif
