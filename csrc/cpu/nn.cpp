// Training kernels: fused softmax + cross-entropy, and the parallel driver of the optimizer updates.
//
// softmax + cross-entropy: rows are independent; parallel over rows (pk::parallel_for). Each row is
// max-shifted before exp (no overflow for any finite logits) and its sums are taken in double, so
// float32 logits lose nothing to the reduction. The mean loss is summed serially over per-row values
// in a fixed order, so it is the same for every thread count.
// Optimizer updates: element-wise; parallel over contiguous chunks, per-ISA loops (nn_impl.inc).
#include "pykernels/nn.hpp"

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

// One row: writes p = softmax(x) (if p), returns loss, optionally writes d = scale*(softmax - t).
template <class T>
double row_kernel(T* p, T* d, const T* x, int64_t label, const T* t, int64_t C, double scale) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < C; ++j) mx = double(x[j]) > mx ? double(x[j]) : mx;
  if (!std::isfinite(mx)) mx = 0.0;  // all -inf (or a +inf/NaN): let the maths produce inf/NaN honestly
  double s = 0.0;
  for (int64_t j = 0; j < C; ++j) s += std::exp(double(x[j]) - mx);
  const double lse = mx + std::log(s);
  const double inv_s = 1.0 / s;
  double loss;
  if (t == nullptr) {
    loss = lse - double(x[label]);
  } else {
    loss = 0.0;
    for (int64_t j = 0; j < C; ++j)
      if (t[j] != T(0)) loss += double(t[j]) * (lse - double(x[j]));
  }
  if (p || d) {
    for (int64_t j = 0; j < C; ++j) {
      const double sm = std::exp(double(x[j]) - mx) * inv_s;
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
  std::vector<double> row_loss(want_loss ? size_t(N) : 0);
  double* rl = row_loss.data();
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

double softmax_cross_entropy_forward(void* probs, const void* logits, const int64_t* labels, const void* target,
                                     DType dt, int64_t N, int64_t C) {
  if (labels) {
    const int64_t bad = first_bad_label(labels, N, C);
    if (bad >= 0)
      throw ValueError("label " + std::to_string(labels[bad]) + " at index " + std::to_string(bad) +
                       " is out of range for " + std::to_string(C) + " classes (expected 0 <= label < " +
                       std::to_string(C) + ")");
  }
  if (dt == DType::f32)
    return sce_impl<float>(static_cast<float*>(probs), nullptr, static_cast<const float*>(logits), labels,
                           static_cast<const float*>(target), N, C, 0.0, true);
  return sce_impl<double>(static_cast<double*>(probs), nullptr, static_cast<const double*>(logits), labels,
                          static_cast<const double*>(target), N, C, 0.0, true);
}

void softmax_cross_entropy_backward(void* dlogits, const void* logits, const int64_t* labels, const void* target,
                                    DType dt, int64_t N, int64_t C, double dloss) {
  if (labels) {
    const int64_t bad = first_bad_label(labels, N, C);
    if (bad >= 0)
      throw ValueError("label " + std::to_string(labels[bad]) + " at index " + std::to_string(bad) +
                       " is out of range for " + std::to_string(C) + " classes (expected 0 <= label < " +
                       std::to_string(C) + ")");
  }
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
