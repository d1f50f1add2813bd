// Training kernels: fused softmax + cross-entropy, and the parallel driver of the optimizer updates.
//
// softmax + cross-entropy: rows are independent; parallel over rows (pk::parallel_for). Each row is
// max-shifted before exp (no overflow for any finite logits) and its sums are taken in double, so
// float32 logits lose nothing to the reduction. The mean loss is summed serially over per-row values
// in a fixed order, so it is the same for every thread count.
// Optimizer updates: element-wise; parallel over contiguous chunks, per-ISA loops (optimizer_loops.inc).
#include "pykernels/training.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "pykernels/dispatch.hpp"
#include "pykernels/parallel.hpp"

namespace pk {
namespace {

// Below this many elements (rows*C) the fork/join of a parallel region costs more than the row work.
constexpr int64_t kRowGrainElems = 16384;
// Optimizer updates: ~5 memory streams per element; below this a single thread saturates the work.
constexpr int64_t kUpdateGrain = 32768;
constexpr int64_t kUpdateAlign = 16;  // 64-byte chunks for float32 (no shared cache lines)

// One row of N: returns its loss; writes p = softmax(x) (if p) and d = scale*(softmax - t) (if d).
// Three passes over the row: max (and the target terms of the loss), exp-sum (the exps are parked in
// the output row), normalise. The loss terms are read before any output is written, so an output may
// be the logits row itself (exact aliasing).
template <class T>
double row_kernel(T* p, T* d, const T* x, int64_t label, const T* t, int64_t C, double scale) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < C; ++j) mx = double(x[j]) > mx ? double(x[j]) : mx;
  // The loss is -log_softmax(x)[label] = (mx - x[label]) + log(s), each term taken relative to the
  // row max: `mx + log(s)` first would round log(s) away for logits of 1e16 and above. A +inf or
  // an all -inf row gives x - mx = NaN, so every output is NaN, as NumPy's formula gives.
  double st = 0.0, stz = 0.0, zl = 0.0;  // sum(t), sum(t * (mx - x)), mx - x[label]
  if (t == nullptr) {
    zl = mx - double(x[label]);
  } else {
    for (int64_t j = 0; j < C; ++j)
      if (t[j] != T(0)) {  // skip zero targets: 0 * (-inf logit) must not give NaN
        st += double(t[j]);
        stz += double(t[j]) * (mx - double(x[j]));
      }
  }
  T* e = p ? p : d;  // where the exps are parked (null: loss only)
  double s = 0.0;
  if (e) {
    for (int64_t j = 0; j < C; ++j) {
      const double ej = std::exp(double(x[j]) - mx);
      s += ej;
      e[j] = T(ej);
    }
  } else {
    for (int64_t j = 0; j < C; ++j) s += std::exp(double(x[j]) - mx);
  }
  // sparse: (mx - x[label]) + log(s); dense: sum_j t_j (mx - x_j + log(s))
  const double loss = t == nullptr ? zl + std::log(s) : stz + st * std::log(s);
  if (e) {
    const double inv_s = 1.0 / s;
    for (int64_t j = 0; j < C; ++j) {
      const double sm = double(e[j]) * inv_s;
      if (p) p[j] = T(sm);
      if (d) {
        const double tj = t ? double(t[j]) : (j == label ? 1.0 : 0.0);
        d[j] = T((sm - tj) * scale);
      }
    }
  }
  return loss;
}

template <class T>
double sce_impl(T* probs, T* dlogits, const T* logits, const int64_t* labels, const T* target, int64_t N, int64_t C,
                double scale, bool want_loss) {
  // Per-row losses, summed serially afterwards (thread-count independent). Small N: on the stack.
  double stack_buf[512];
  std::vector<double> heap_buf;
  double* rl = nullptr;
  if (want_loss) {
    if (N <= 512) {
      rl = stack_buf;
    } else {
      heap_buf.resize(size_t(N));
      rl = heap_buf.data();
    }
  }
  const int64_t grain_rows = C > 0 ? (kRowGrainElems + C - 1) / C : N + 1;
  parallel_for(N, grain_rows, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const double l = row_kernel<T>(probs ? probs + i * C : nullptr, dlogits ? dlogits + i * C : nullptr,
                                     logits + i * C, labels ? labels[i] : 0, target ? target + i * C : nullptr, C,
                                     scale);
      if (rl) rl[i] = l;
    }
  });
  if (!want_loss || N == 0) return want_loss ? NAN : 0.0;  // mean of nothing, as np.mean([])
  double s = 0.0;
  for (int64_t i = 0; i < N; ++i) s += rl[i];
  return s / double(N);
}

struct NnTables {
  NnKernelTable t[3];
  NnTables() {
    for (int i = 0; i < 3; ++i) {
      isa_generic::fill_nn(t[i]);
#ifdef PK_HAVE_X86_DISPATCH
      if (i == int(Isa::avx2)) isa_avx2::fill_nn(t[i]);
      if (i == int(Isa::avx512)) isa_avx512::fill_nn(t[i]);
#endif
    }
  }
};

inline char* at(void* p, int64_t off, int64_t esz) { return p ? static_cast<char*>(p) + off * esz : nullptr; }
inline const char* at(const void* p, int64_t off, int64_t esz) {
  return p ? static_cast<const char*>(p) + off * esz : nullptr;
}

}  // namespace

const NnKernelTable& nn_kernels() {
  static const NnTables tabs;
  return tabs.t[int(active_isa())];
}

int64_t first_bad_label(const int64_t* labels, int64_t N, int64_t C) {
  for (int64_t i = 0; i < N; ++i)
    if (labels[i] < 0 || labels[i] >= C) return i;
  return -1;
}

static void check_labels(const int64_t* labels, int64_t N, int64_t C) {
  const int64_t bad = first_bad_label(labels, N, C);
  if (bad >= 0)
    throw ValueError("label " + std::to_string(labels[bad]) + " at index " + std::to_string(bad) +
                     " is out of range for " + std::to_string(C) + " classes (expected 0 <= label < " +
                     std::to_string(C) + ")");
}

double softmax_cross_entropy_forward(void* probs, void* dlogits, const void* logits, const int64_t* labels,
                                     const void* target, DType dt, int64_t N, int64_t C, double dloss) {
  if (labels) check_labels(labels, N, C);
  const double scale = N > 0 ? dloss / double(N) : 0.0;
  if (dt == DType::f32)
    return sce_impl<float>(static_cast<float*>(probs), static_cast<float*>(dlogits),
                           static_cast<const float*>(logits), labels, static_cast<const float*>(target), N, C,
                           scale, true);
  return sce_impl<double>(static_cast<double*>(probs), static_cast<double*>(dlogits),
                          static_cast<const double*>(logits), labels, static_cast<const double*>(target), N, C,
                          scale, true);
}

void softmax_cross_entropy_backward(void* dlogits, const void* logits, const int64_t* labels, const void* target,
                                    DType dt, int64_t N, int64_t C, double dloss) {
  if (labels) check_labels(labels, N, C);
  const double scale = N > 0 ? dloss / double(N) : 0.0;
  if (dt == DType::f32)
    sce_impl<float>(nullptr, static_cast<float*>(dlogits), static_cast<const float*>(logits), labels,
                    static_cast<const float*>(target), N, C, scale, false);
  else
    sce_impl<double>(nullptr, static_cast<double*>(dlogits), static_cast<const double*>(logits), labels,
                     static_cast<const double*>(target), N, C, scale, false);
}

void sgd_update(void* w, void* m, const void* g, DType dt, int64_t n, double lr, double momentum, bool nesterov) {
  auto fn = nn_kernels().sgd[int(dt)];
  const int64_t es = dtype_size(dt);
  void* mm = momentum != 0.0 ? m : nullptr;
  parallel_for(n, kUpdateGrain, kUpdateAlign, [&](int64_t b, int64_t e) {
    fn(at(w, b, es), at(mm, b, es), at(g, b, es), e - b, lr, momentum, nesterov);
  });
}

void rmsprop_update(void* w, void* v, void* mom, const void* g, DType dt, int64_t n, double lr, double rho,
                    double eps, double momentum) {
  auto fn = nn_kernels().rmsprop[int(dt)];
  const int64_t es = dtype_size(dt);
  void* mm = momentum != 0.0 ? mom : nullptr;
  parallel_for(n, kUpdateGrain, kUpdateAlign, [&](int64_t b, int64_t e) {
    fn(at(w, b, es), at(v, b, es), at(mm, b, es), at(g, b, es), e - b, lr, rho, eps, momentum);
  });
}

void adam_update(void* w, void* m, void* v, void* vhat, const void* g, DType dt, int64_t n, double alpha,
                 double beta1, double beta2, double eps) {
  auto fn = nn_kernels().adam[int(dt)];
  const int64_t es = dtype_size(dt);
  parallel_for(n, kUpdateGrain, kUpdateAlign, [&](int64_t b, int64_t e) {
    fn(at(w, b, es), at(m, b, es), at(v, b, es), at(vhat, b, es), at(g, b, es), e - b, alpha, beta1, beta2, eps);
  });
}

void adagrad_update(void* w, void* acc, const void* g, DType dt, int64_t n, double lr, double eps) {
  auto fn = nn_kernels().adagrad[int(dt)];
  const int64_t es = dtype_size(dt);
  parallel_for(n, kUpdateGrain, kUpdateAlign,
               [&](int64_t b, int64_t e) { fn(at(w, b, es), at(acc, b, es), at(g, b, es), e - b, lr, eps); });
}

}  // namespace pk
