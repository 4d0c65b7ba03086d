// The shim's launch machinery: one OS thread per CUDA thread of a block, a barrier for
// __syncthreads, and a block-wide exchange array for warp shuffles.
#include "cuda_shim.h"
#include <barrier>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

thread_local ShimThreadState shim_state;

namespace {
std::barrier<>* block_barrier = nullptr;
float exchange[1024];
std::mutex launch_mutex;  // __shared__ statics allow one launch at a time

unsigned int linear_thread() {
    return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}
}  // namespace

void __syncthreads() { block_barrier->arrive_and_wait(); }

float __shfl_xor_sync(unsigned int, float v, int lane_mask) {
    unsigned int t = linear_thread();
    exchange[t] = v;
    __syncthreads();
    float r = exchange[(t & ~31u) | ((t & 31u) ^ (unsigned int)lane_mask)];
    __syncthreads();
    return r;
}

float __shfl_down_sync(unsigned int, float v, int delta) {
    unsigned int t = linear_thread();
    exchange[t] = v;
    __syncthreads();
    unsigned int lane = t & 31u;
    float r = lane + (unsigned int)delta < 32u ? exchange[t + (unsigned int)delta] : v;
    __syncthreads();
    return r;
}

// Runs body on every thread of every block of the grid; blocks one after another.
void shim_run(dim3 grid, dim3 block, const std::function<void()>& body) {
    std::lock_guard<std::mutex> lock(launch_mutex);
    unsigned int threads = block.x * block.y * block.z;
    std::barrier<> barrier((std::ptrdiff_t)threads);
    block_barrier = &barrier;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned int t = 0; t < threads; t++) {
        pool.emplace_back([&, t] {
            shim_state.block_dim = block;
            shim_state.grid_dim = grid;
            shim_state.thread = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            for (unsigned int bz = 0; bz < grid.z; bz++)
                for (unsigned int by = 0; by < grid.y; by++)
                    for (unsigned int bx = 0; bx < grid.x; bx++) {
                        shim_state.block = dim3{bx, by, bz};
                        body();
                        barrier.arrive_and_wait();  // the next block starts when this one is done
                    }
        });
    }
    for (auto& th : pool) th.join();
    block_barrier = nullptr;
}
