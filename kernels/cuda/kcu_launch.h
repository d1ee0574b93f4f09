/* kcu_launch.h — the launch shape every elementwise CUDA kernel uses: 256 threads a
 * block, a grid-stride loop over int64 indices, the grid capped so that huge arrays
 * loop instead of overflowing gridDim.x. */
#ifndef PS_KCU_LAUNCH_H
#define PS_KCU_LAUNCH_H

#include <stdint.h>

#define KCU_THREADS 256

static inline unsigned kcu_blocks(int64_t n) {
    const int64_t b = (n + KCU_THREADS - 1) / KCU_THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 * 16 ? 65535 * 16 : b);
}

#define KCU_FOR(i, n)                                                                  \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);          \
         i += (int64_t)gridDim.x * blockDim.x)

#endif
