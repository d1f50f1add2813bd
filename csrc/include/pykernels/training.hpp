// Training kernels: fused softmax + cross-entropy (forward and backward) and fused optimizer updates.
// Pure C++ (no Python); the bindings in csrc/bindings/bind_training.cpp validate shapes/dtypes and hand over
// contiguous buffers.
//
// Accumulation contract: every kernel OVERWRITES its outputs (never reads their old contents), except
// the optimizer updates, which by definition update the parameter and its state in place.
// Determinism: every output element depends only on its own row / element, and the mean loss is summed
// serially from per-row values, so results are bit-identical for every thread count.
#pragma once

#include <cstdint>

#include "pykernels/common.hpp"

namespace pk {

// ---- softmax + cross-entropy -------------------------------------------------------------------
// logits is (N,C) row-major. Targets are either sparse class indices `labels` (N,) int64 in [0, C)
// or dense `target` (N,C) of the logits' dtype (one-hot or probabilities; exactly one is non-null).
// loss_i = logsumexp(logits_i) - sum_j t_ij * logits_ij  (with sum_j t_ij = 1 for one-hot rows;
// for general t: sum_j t_ij * (logsumexp_i - logits_ij)), computed in double from max-shifted values.
//
// softmax_cross_entropy_forward: returns mean_i loss_i; when probs != nullptr also writes
// probs = softmax(logits) (N,C), and when dlogits != nullptr also the gradient
// dlogits = dloss * (softmax(logits) - t) / N: forward and backward in the same pass over each row
// (either output may alias logits exactly). Throws ValueError on a label outside [0, C).
double softmax_cross_entropy_forward(void* probs, void* dlogits, const void* logits, const int64_t* labels,
                                     const void* target, DType dt, int64_t N, int64_t C, double dloss);
// dlogits = dloss * (softmax(logits) - t) / N, in one pass over each row (dlogits may alias logits).
void softmax_cross_entropy_backward(void* dlogits, const void* logits, const int64_t* labels, const void* target,
                                    DType dt, int64_t N, int64_t C, double dloss);
// Validates sparse labels; returns the index of the first label outside [0, C) or -1.
int64_t first_bad_label(const int64_t* labels, int64_t N, int64_t C);

// ---- optimizers (Keras formulas; all arrays contiguous, n elements, same dtype) -------------------
// SGD: momentum == 0: w -= lr*g. Otherwise m = momentum*m - lr*g; w += m, or with nesterov
// w += momentum*m - lr*g (m updated first). m may be null when momentum == 0.
void sgd_update(void* w, void* m, const void* g, DType dt, int64_t n, double lr, double momentum, bool nesterov);
// RMSprop: v = rho*v + (1-rho)*g^2; inc = lr*g / sqrt(v + eps); momentum == 0: w -= inc, else
// mom = momentum*mom + inc; w -= mom (mom may be null when momentum == 0).
void rmsprop_update(void* w, void* v, void* mom, const void* g, DType dt, int64_t n, double lr, double rho,
                    double eps, double momentum);
// Adam: m += (g - m)*(1-beta1); v += (g^2 - v)*(1-beta2); (amsgrad: vhat = max(vhat, v), used as v);
// w -= m*alpha / (sqrt(v) + eps), alpha = lr*sqrt(1-beta2^t)/(1-beta1^t) computed by the caller.
void adam_update(void* w, void* m, void* v, void* vhat, const void* g, DType dt, int64_t n, double alpha,
                 double beta1, double beta2, double eps);
// Adagrad: acc += g^2; w -= lr*g / sqrt(acc + eps).
void adagrad_update(void* w, void* acc, const void* g, DType dt, int64_t n, double lr, double eps);

// Per-ISA element loops behind the updates (filled by optimizer_loops_{generic,avx2,avx512}.cpp; chunks of a
// parallel_for are handed to them). Coefficients are already cast to the array dtype by the loop.
struct NnKernelTable {
  void (*sgd[2])(void* w, void* m, const void* g, int64_t n, double lr, double momentum, bool nesterov) = {};
  void (*rmsprop[2])(void* w, void* v, void* mom, const void* g, int64_t n, double lr, double rho, double eps,
                     double momentum) = {};
  void (*adam[2])(void* w, void* m, void* v, void* vhat, const void* g, int64_t n, double alpha, double beta1,
                  double beta2, double eps) = {};
  void (*adagrad[2])(void* w, void* acc, const void* g, int64_t n, double lr, double eps) = {};
};
const NnKernelTable& nn_kernels();  // table of the active ISA (pk::active_isa())

namespace isa_generic { void fill_nn(NnKernelTable& t); }
namespace isa_avx2 { void fill_nn(NnKernelTable& t); }
namespace isa_avx512 { void fill_nn(NnKernelTable& t); }

}  // namespace pk
