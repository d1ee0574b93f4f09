/* rt_backend_cpu.c — the CPU backend: host memory, the C kernels with
 * OpenBLAS GEMMs (kernels/kern.h), a monotonic clock and MPI collectives;
 * memory comes from a caching allocator (rt_host_cache.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <omp.h>

#include "kern.h"
#include "rt_backend.h"
#include "rt_group.h"
#include "rt_host_cache.h"

static void cpu_sync(void) {}

static void cpu_threads(int n) {
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_sum_squares(const float *x, int64_t n) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

const rt_backend rt_backend_cpu = {
    .name = "cpu",
    .mem_alloc = rt_host_alloc,
    .mem_free = rt_host_free,
    .mem_trim = rt_host_trim,
    .synchronize = cpu_sync,
    .now_seconds = cpu_now,
    .set_threads = cpu_threads,
    .matmul_fwd = kern_matmul_fwd,
    .matmul_bwd = kern_matmul_bwd,
    .embed_fwd = kern_embed_fwd,
    .embed_bwd = kern_embed_bwd,
    .rmsnorm_fwd = kern_rmsnorm_fwd,
    .rmsnorm_bwd = kern_rmsnorm_bwd,
    .rope_fwd = kern_rope_pos_fwd,
    .rope_bwd = kern_rope_pos_bwd,
    .attn_scratch_floats = kern_attn_scratch_floats,
    .attn_fwd = kern_attn_fwd,
    .attn_bwd = kern_attn_bwd,
    .attn_block_scratch_floats = kern_attn_block_scratch_floats,
    .attn_block_fwd = kern_attn_block_fwd,
    .attn_block_bwd = kern_attn_block_bwd,
    .swiglu_fwd = kern_swiglu_fwd,
    .swiglu_bwd = kern_swiglu_bwd,
    .xent_fwd = kern_xent_fwd,
    .xent_bwd = kern_xent_bwd,
    .kd_teacher = kern_kd_teacher,
    .kd_fwd = kern_kd_fwd,
    .kd_bwd = kern_kd_bwd,
    .add = kern_add,
    .adamw = kern_adamw,
    .sum_squares = cpu_sum_squares,
    .to_bf16 = kern_f32_to_bf16,
    .from_bf16 = kern_bf16_to_f32,
    .all_reduce = rt_mpi_all_reduce,
    .all_reduce_max = rt_mpi_all_reduce_max,
    .reduce_scatter = rt_mpi_reduce_scatter,
    .all_gather = rt_mpi_all_gather,
    .broadcast = rt_mpi_broadcast,
    .reduce = rt_mpi_reduce,
    .send = rt_mpi_send,
    .recv = rt_mpi_recv,
    .isend = rt_mpi_isend,
    .recv_tag = rt_mpi_recv_tag,
    .wait = rt_mpi_wait,
    .sendrecv = rt_mpi_sendrecv,
    .all_to_all = rt_mpi_all_to_all,
    .router_fwd = kern_router_fwd,
    .router_bwd = kern_router_bwd,
    .moe_aux_fwd = kern_moe_aux_fwd,
    .moe_aux_bwd = kern_moe_aux_bwd,
    .moe_slots = kern_moe_slots,
    .moe_permute_fwd = kern_moe_permute_fwd,
    .moe_permute_bwd = kern_moe_permute_bwd,
    .moe_unpermute_fwd = kern_moe_unpermute_fwd,
    .moe_unpermute_bwd = kern_moe_unpermute_bwd,
    .coll_error = rt_mpi_error,
};
