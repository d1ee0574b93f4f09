/* kcu_launch.h — what the CUDA kernels share: the launch shape of the elementwise
 * ones (256 threads a block, a grid-stride loop over int64 indices, the grid capped so
 * that huge arrays loop instead of overflowing gridDim.x), and the sum over a block's
 * threads that the row kernels (one block per row) reduce with, and its maximum. */
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

/* The sum of v over the block's threads, returned to every thread. blockDim.x a multiple
 * of 32, at most 1024. */
static __device__ __forceinline__ float kcu_block_sum(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads(); /* part[] may still be read by a previous call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The maximum of v over the block's threads, to every thread (as kcu_block_sum). */
static __device__ __forceinline__ float kcu_block_max(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < warps ? part[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#endif
