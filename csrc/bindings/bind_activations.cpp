// Bindings of the row kernels behind pykernels.softmax / log_softmax and their backward passes
// (pykernels/activations.py moves the axis last and checks dtypes and out=; these take C-contiguous
// arrays of one dtype, float32 or float64, and treat the last axis as the row).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "pykernels/dispatch.hpp"
#include "pykernels/parallel.hpp"

namespace py = pybind11;

namespace pk {
namespace py_bind {
namespace {

int dtype_index(const py::array& a, const char* fn) {
  if (a.dtype().is(py::dtype::of<float>())) return 0;
  if (a.dtype().is(py::dtype::of<double>())) return 1;
  throw py::type_error(std::string(fn) + ": float32 or float64 arrays only");
}

void check_rows(const py::array& a, const py::array& like, int dt, const char* fn, bool writable) {
  if (dtype_index(a, fn) != dt || a.ndim() != like.ndim() ||
      !std::equal(a.shape(), a.shape() + a.ndim(), like.shape()))
    throw py::value_error(std::string(fn) + ": operands must have one dtype and shape");
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(fn) + ": C-contiguous arrays only");
  if (writable && !a.writeable()) throw py::value_error(std::string(fn) + ": output is read-only");
}

// Rows per parallel chunk: at least ~16K elements, so short-row arrays are not split too finely.
int64_t row_grain(int64_t n) { return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(n, 1)); }

}  // namespace

void bind_activations(py::module_& m) {
  m.def(
      "_softmax_rows",
      [](py::array x, py::array out, bool log) {
        const int dt = dtype_index(x, "softmax");
        check_rows(x, x, dt, "softmax", false);
        check_rows(out, x, dt, "softmax", true);
        const int64_t n = x.ndim() ? x.shape(x.ndim() - 1) : 1;
        const int64_t rows = n ? x.size() / n : 0;
        if (rows == 0 || n == 0) return;
        const auto fn = kernels().softmax_rows[dt];
        const size_t es = dt ? 8 : 4;
        const char* xp = static_cast<const char*>(x.data());
        char* op = static_cast<char*>(out.mutable_data());
        py::gil_scoped_release nogil;
        parallel_for(rows, row_grain(n), 1, [&](int64_t r0, int64_t r1) {
          fn(op + r0 * n * es, xp + r0 * n * es, r1 - r0, n, log);
        });
      },
      py::arg("x"), py::arg("out"), py::arg("log"));
  m.def(
      "_softmax_backward_rows",
      [](py::array dy, py::array y, py::array dx, bool log) {
        const int dt = dtype_index(y, "softmax_backward");
        check_rows(dy, y, dt, "softmax_backward", false);
        check_rows(y, y, dt, "softmax_backward", false);
        check_rows(dx, y, dt, "softmax_backward", true);
        const int64_t n = y.ndim() ? y.shape(y.ndim() - 1) : 1;
        const int64_t rows = n ? y.size() / n : 0;
        if (rows == 0 || n == 0) return;
        const auto fn = kernels().softmax_backward_rows[dt];
        const size_t es = dt ? 8 : 4;
        const char* a = static_cast<const char*>(dy.data());
        const char* b = static_cast<const char*>(y.data());
        char* o = static_cast<char*>(dx.mutable_data());
        py::gil_scoped_release nogil;
        parallel_for(rows, row_grain(n), 1, [&](int64_t r0, int64_t r1) {
          fn(o + r0 * n * es, a + r0 * n * es, b + r0 * n * es, r1 - r0, n, log);
        });
      },
      py::arg("dy"), py::arg("y"), py::arg("dx"), py::arg("log"));
}

}  // namespace py_bind
}  // namespace pk
