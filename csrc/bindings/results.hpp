// The results of the bindings: new arrays (large ones from the output cache, pool.hpp), `out=`
// validation in NumPy's words, 0-d results as NumPy scalars, NumPy's MemoryError text.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "array_cast.hpp"
#include "pykernels/common.hpp"

namespace pk::py_bind {

namespace py = pybind11;

py::array new_array(DType dt, const int64_t* shape, int ndim);
inline py::array new_array(DType dt, const std::vector<int64_t>& shape) {
  return new_array(dt, shape.data(), int(shape.size()));
}

// Validates `out` (ndarray, writeable, dtype dt, shape == expected unless broadcasting is allowed)
// and returns it. NumPy's messages where NumPy has them.
// same_kind: the ufuncs' rule (np.add, np.matmul): an out of another float dtype (float16/32/64)
// is accepted and the result, computed in dt, is cast into it; any other dtype is a TypeError.
py::array check_out(const py::handle& out, DType dt, const int64_t* shape, int ndim, const char* fn,
                    bool same_kind = false);

// 0-d arrays become NumPy scalars, as NumPy's ufuncs return them.
py::object maybe_scalar(py::array arr);

py::tuple shape_tuple(const int64_t* shape, int ndim);

// MemoryError in NumPy's words ("Unable to allocate 264. TiB for an array with shape ...") for a
// broadcast operand (a zero stride) whose materialised size exceeds the machine's memory: a product
// contracting over such an operand would run for days (NumPy's dot copies it first and fails so).
void refuse_unmaterialisable(const View& v);

}  // namespace pk::py_bind
