// The shim's launch machinery. The threads of a block are fibers on the calling OS thread, switched
// with _setjmp/_longjmp (no system call; swapcontext saves the signal mask, a system call per switch).
// A fiber is started once per launch (makecontext) and loops over the blocks. One launch runs on one
// core, in a fixed order: deterministic.
//
// A thread waits at two kinds of rendezvous: __syncthreads(), for the whole block, and a warp
// collective (a shuffle, mma.sync), for its 32 lanes, which exchange values through a per-thread array
// between two rendezvous. The scheduler runs one warp at a time as far as it can go: its lanes run
// to their next rendezvous, a warp collective releases them when all 32 are there, and the warp stops
// only at __syncthreads() or the end of the block; then the next warp runs. So one warp runs ahead of
// the others through everything that is not a block barrier, as warps may on a GPU, and a missing
// __syncthreads() between one warp's writes to shared memory and another's reads shows up as wrong
// results here too: blocks of even index run their warps first to last, odd ones last to first, so
// a missing barrier shows whichever warp writes. When every thread is at __syncthreads(), the barrier
// opens (CUDA's rule: none passes barrier k before all have reached it). A warp whose lanes wait at
// different rendezvous stops the launch: some at a collective and others at __syncthreads() or done,
// or at different collectives (another kind or another lane mask: a collective in divergent code), as
// does a thread that ends its block while others wait at a barrier (tests/CudaShim/scheduler_cases.cpp).
#include "cuda_shim.h"
#include <csetjmp>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <ucontext.h>
#include <vector>

thread_local ShimThreadState shim_state;

namespace {
constexpr size_t StackBytes = 256 * 1024;  // untouched pages are never faulted in

enum class Wait { None, Block, Warp, Done };   // what a fiber is stopped at (None: it may run)

struct Fiber {
    jmp_buf resume;                   // where it continues when the scheduler next runs it
    ucontext_t start;
    std::unique_ptr<char[]> stack;
    dim3 thread;
    bool started = false;             // entered once this launch (the first entry switches to a fresh stack)
    Wait wait = Wait::None;
    uint64_t collective = 0;          // at Wait::Warp: which collective it waits at (kind and argument)
};

float exchange[1024];
double exchange_double[1024];   // the double shuffle's (CUDA's is two 32-bit shuffles)
std::mutex launch_mutex;              // one launch at a time: __shared__ statics, and the state below
std::vector<Fiber> fibers;            // reused across launches
jmp_buf scheduler;
Fiber* current = nullptr;
const std::function<void()>* kernel_body = nullptr;

void yield_to_scheduler(Wait wait) {
    current->wait = wait;
    if (_setjmp(current->resume) == 0) _longjmp(scheduler, 1);
}

// A fiber's life: one block after another, until the launch ends (then it is simply never resumed).
void fiber_main() {
    for (;;) {
        (*kernel_body)();
        yield_to_scheduler(Wait::Done);
    }
}

unsigned int linear_thread() {
    return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// Runs fiber f until its next rendezvous (or the end of its block).
void run(Fiber& f) {
    current = &f;
    shim_state.thread = f.thread;
    f.wait = Wait::None;
    if (_setjmp(scheduler) == 0) {
        if (!f.started) { f.started = true; ucontext_t here; swapcontext(&here, &f.start); }   // a fresh stack
        else _longjmp(f.resume, 1);
    }
}

// What a lane waits at, which every lane of its warp must share: the collective's kind and, where
// every lane must pass the same one, its argument (a call site would be sharper, but a compiler may
// duplicate a call into both sides of a divergent branch).
enum Collective : uint64_t { ShflXor = 1, Shfl, ShflDown, Mma, LdMatrix };
uint64_t collective(Collective kind, unsigned int argument = 0) { return (uint64_t)kind << 32 | argument; }

void warp_rendezvous(uint64_t what) {
    current->collective = what;
    yield_to_scheduler(Wait::Warp);
}
}  // namespace

void __syncthreads() { yield_to_scheduler(Wait::Block); }
void shim_misaligned(const void* p, int bytes) {
    std::fprintf(stderr, "cuda shim: a %d-bit access at %p is not %d-byte aligned\n", 8 * bytes, p, bytes);
    std::abort();
}
unsigned int shim_lane() { return linear_thread() & 31u; }   // mma.h
// lane t's v goes to lane t ^ lane_mask, through slots (one a thread of the block)
template <typename T>
static T shfl_xor_through(T* slots, T v, int lane_mask) {
    unsigned int t = linear_thread();
    slots[t] = v;
    warp_rendezvous(collective(ShflXor, (unsigned int)lane_mask));
    T r = slots[(t & ~31u) | ((t & 31u) ^ (unsigned int)lane_mask)];
    warp_rendezvous(collective(ShflXor, (unsigned int)lane_mask));
    return r;
}
float __shfl_xor_sync(unsigned int, float v, int lane_mask) { return shfl_xor_through(exchange, v, lane_mask); }
double __shfl_xor_sync(unsigned int, double v, int lane_mask) { return shfl_xor_through(exchange_double, v, lane_mask); }

float __shfl_sync(unsigned int, float v, int src_lane) {
    unsigned int t = linear_thread();
    exchange[t] = v;
    warp_rendezvous(collective(Shfl));
    float r = exchange[(t & ~31u) | ((unsigned int)src_lane & 31u)];
    warp_rendezvous(collective(Shfl));
    return r;
}

float __shfl_down_sync(unsigned int, float v, int delta) {
    unsigned int t = linear_thread();
    exchange[t] = v;
    warp_rendezvous(collective(ShflDown, (unsigned int)delta));
    unsigned int lane = t & 31u;
    float r = lane + (unsigned int)delta < 32u ? exchange[t + (unsigned int)delta] : v;
    warp_rendezvous(collective(ShflDown, (unsigned int)delta));
    return r;
}

// PTX's mma.m16n8k16 with bf16 A (16×16, row-major) and B (16×8, "col": k runs down a column) and float32
// C/D (16×8), each fragment spread over the warp as the PTX ISA documents it (lane = 4·group + t, the
// lower-indexed element of a pair in a register's low 16 bits):
//   A: reg 0 = A[g][2t, 2t+1], reg 1 = A[g+8][2t, 2t+1], reg 2 = A[g][2t+8, 2t+9], reg 3 = A[g+8][2t+8, 2t+9]
//   B: reg 0 = B[2t, 2t+1][g], reg 1 = B[2t+8, 2t+9][g]
//   D: d[0], d[1] = D[g][2t, 2t+1]; d[2], d[3] = D[g+8][2t, 2t+1]
// Each lane publishes its six registers, and after a barrier computes its four outputs from the
// registers of the lanes that hold the rows and columns it needs, so a kernel that puts an element in
// the wrong register or lane computes garbage here, as it would on a GPU.
namespace {
uint32_t mma_exchange[1024][6];
float bf16_half(uint32_t reg, int k) {
    uint32_t bits = (k & 1 ? reg >> 16 : reg & 0xFFFFu) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
}  // namespace

void shim_mma_16x8x16(float* d, const uint32_t* a, const uint32_t* b) {
    unsigned int t = linear_thread(), warp0 = t & ~31u, lane = t & 31u;
    for (int r = 0; r < 4; r++) mma_exchange[t][r] = a[r];
    mma_exchange[t][4] = b[0];
    mma_exchange[t][5] = b[1];
    warp_rendezvous(collective(Mma));
    for (int i = 0; i < 4; i++) {
        int row = (int)(lane / 4) + (i >= 2 ? 8 : 0), col = (int)(lane % 4) * 2 + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 16; k++) {
            const uint32_t* holder_a = mma_exchange[warp0 + (row % 8) * 4 + (k % 8) / 2];
            const uint32_t* holder_b = mma_exchange[warp0 + col * 4 + (k % 8) / 2];
            float av = bf16_half(holder_a[(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)], k);
            float bv = bf16_half(holder_b[4 + (k >= 8 ? 1 : 0)], k);
            acc += av * bv;
        }
        d[i] = acc;
    }
    warp_rendezvous(collective(Mma));
}

// PTX's ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: four 8 × 8 matrices of 16-bit elements, matrix j's
// rows addressed by lanes 8j … 8j + 7 (16 bytes each, 16-byte aligned); lane 4i + k receives in r[j] the
// elements 2k and 2k + 1 of matrix j's row i, or with trans of its column i (the first in the low half).
namespace {
const uint16_t* ldmatrix_rows[1024];
}  // namespace

void shim_ldmatrix_x4(uint32_t* r, const void* row, bool trans) {
    unsigned int t = linear_thread(), warp0 = t & ~31u, lane = t & 31u;
    if ((uintptr_t)row % 16 != 0) {
        std::fprintf(stderr, "cuda shim: ldmatrix: lane %u's row address %p is not 16-byte aligned\n", lane, row);
        std::abort();
    }
    ldmatrix_rows[t] = (const uint16_t*)row;
    warp_rendezvous(collective(LdMatrix, trans));
    unsigned int i = lane / 4, k = lane % 4;
    for (int j = 0; j < 4; j++) {
        const uint16_t* const* rows = ldmatrix_rows + warp0 + 8 * j;
        uint32_t lo = trans ? rows[2 * k][i] : rows[i][2 * k];
        uint32_t hi = trans ? rows[2 * k + 1][i] : rows[i][2 * k + 1];
        r[j] = lo | hi << 16;
    }
    warp_rendezvous(collective(LdMatrix, trans));
}

// Runs body on every thread of every block of the grid; blocks one after another.
void shim_run(dim3 grid, dim3 block, const std::function<void()>& body) {
    std::lock_guard<std::mutex> lock(launch_mutex);
    unsigned int threads = block.x * block.y * block.z;
    if (fibers.size() < threads) fibers.resize(threads);
    kernel_body = &body;
    shim_state.block_dim = block;
    shim_state.grid_dim = grid;
    for (unsigned int t = 0; t < threads; t++) {
        Fiber& f = fibers[t];
        if (!f.stack) f.stack = std::make_unique<char[]>(StackBytes);
        getcontext(&f.start);
        f.start.uc_stack.ss_sp = f.stack.get();
        f.start.uc_stack.ss_size = StackBytes;
        f.start.uc_link = nullptr;
        makecontext(&f.start, fiber_main, 0);
        f.thread = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
        f.started = false;
    }
    for (unsigned int bz = 0; bz < grid.z; bz++)
        for (unsigned int by = 0; by < grid.y; by++)
            for (unsigned int bx = 0; bx < grid.x; bx++) {
                shim_state.block = dim3{bx, by, bz};
                for (unsigned int t = 0; t < threads; t++) fibers[t].wait = Wait::None;
                bool reversed = (bx + grid.x * (by + grid.y * bz)) % 2 == 1;
                unsigned int warps = (threads + 31) / 32;
                for (;;) {  // one phase: every warp runs to its next __syncthreads(), or to the end of the block
                    for (unsigned int k = 0; k < warps; k++) {
                        unsigned int w0 = 32 * (reversed ? warps - 1 - k : k), lanes = std::min(32u, threads - w0);
                        for (;;) {
                            for (unsigned int t = w0; t < w0 + lanes; t++)
                                if (fibers[t].wait == Wait::None) run(fibers[t]);
                            unsigned int at_warp = 0;
                            for (unsigned int t = w0; t < w0 + lanes; t++) at_warp += fibers[t].wait == Wait::Warp;
                            if (at_warp == 0) break;
                            if (at_warp != lanes) {
                                std::fprintf(stderr, "cuda shim: %u of the %u lanes of warp %u wait at a warp collective (shuffle, mma) while the others are at __syncthreads() or done\n",
                                             at_warp, lanes, w0 / 32);
                                std::abort();
                            }
                            for (unsigned int t = w0 + 1; t < w0 + lanes; t++)
                                if (fibers[t].collective != fibers[w0].collective) {
                                    std::fprintf(stderr, "cuda shim: lanes %u and 0 of warp %u wait at different warp collectives (kind and argument "
                                                 "%#llx and %#llx)\n", t - w0, w0 / 32,
                                                 (unsigned long long)fibers[t].collective, (unsigned long long)fibers[w0].collective);
                                    std::abort();
                                }
                            for (unsigned int t = w0; t < w0 + lanes; t++) fibers[t].wait = Wait::None;
                        }
                    }
                    unsigned int finished = 0;
                    for (unsigned int t = 0; t < threads; t++) finished += fibers[t].wait == Wait::Done;
                    if (finished == threads) break;
                    if (finished != 0) {
                        std::fprintf(stderr, "cuda shim: %u of %u threads ended their block while the others wait at __syncthreads()\n", finished, threads);
                        std::abort();
                    }
                    for (unsigned int t = 0; t < threads; t++) fibers[t].wait = Wait::None;   // the barrier opens
                }
            }
    current = nullptr;
    kernel_body = nullptr;
}
