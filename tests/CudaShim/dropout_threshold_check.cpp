// dropout_threshold_check.cpp: the attention kernels decide dropout in integers, hash >> 8 >=
// dropout_threshold(p), where every other kernel (and the CPU) compares dropout_uniform(...) >= p. They
// must agree for every hash and every p; a mismatch is one element in 2^24 at most, which no comparison
// of outputs would find, so this checks the two rules directly, at the edges of the thresholds of many p:
// the p that are exact multiples of 2^-24, the floats just beside them, random ones, 0, 1 and tiny ones.
// Prints "ok" and the number of cases; prints each disagreement and exits 1 otherwise.
#include "../../kernels/common.cuh"
#include <cstdio>
#include <random>
#include <vector>

int main() {
    std::vector<float> ps = {0.0f, 1.0f, 0.1f, 0.5f, 0.9f, 1e-30f, 1e-45f, 1e-7f, 0.99999994f};
    std::mt19937 rng(12345);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::uniform_int_distribution<unsigned int> any(0u, 0xFFFFFFu);
    for (int i = 0; i < 20000; i++) {
        float edge = (float)any(rng) * (1.0f / 16777216.0f);   // a multiple of 2^-24
        ps.push_back(edge);
        ps.push_back(std::nextafter(edge, 0.0f));
        ps.push_back(std::nextafter(edge, 1.0f));
        ps.push_back(uniform(rng));
    }
    long cases = 0, wrong = 0;
    for (float p : ps) {
        unsigned int threshold = dropout_threshold(p);
        long t = (long)threshold;
        for (long u : {0L, t - 2, t - 1, t, t + 1, t + 2, 0xFFFFFFL}) {
            if (u < 0 || u > 0xFFFFFFL) continue;
            unsigned int hash = (unsigned int)u << 8 | (unsigned int)(u * 37 % 256);   // any low bits: the rule ignores them
            bool by_float = (float)(hash >> 8) * (1.0f / 16777216.0f) >= p;       // dropout_uniform's rule
            bool by_integer = hash >> 8 >= threshold;                              // the attention kernels'
            cases++;
            if (by_float != by_integer) {
                if (++wrong <= 20) printf("p = %.9g (threshold %u), hash >> 8 = %ld: uniform says %d, threshold says %d\n", p, threshold, u, by_float, by_integer);
            }
        }
    }
    // and through the hash itself, as the kernels call it
    for (unsigned int i = 0; i < 200000; i++) {
        unsigned int key = 0x9E3779B9u * (i % 7 + 1), index = i * 2654435761u;
        float p = ps[i % ps.size()];
        cases++;
        if ((dropout_uniform(key, index) >= p) != (dropout_hash(key, index) >> 8 >= dropout_threshold(p))) {
            if (++wrong <= 20) printf("p = %.9g, key %u, index %u: the two rules disagree\n", p, key, index);
        }
    }
    if (wrong > 0) { printf("%ld of %ld cases disagree\n", wrong, cases); return 1; }
    printf("ok %ld\n", cases);
    return 0;
}
