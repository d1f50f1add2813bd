// Functions bound as raw METH_FASTCALL builtins instead of through pybind11's dispatcher.
//
// Why: pybind11's generic dispatcher costs ~0.5 us per keyword argument and allocates per call
// (pybind11 #1227, #2005); for a 1e3-element add that is more than the kernel and more than NumPy's
// whole ufunc call. These functions parse their (few) arguments themselves: positional or keyword,
// by name, with defaults (None unless given). Exceptions are translated as in module.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pykernels/common.hpp"

namespace pk::py_bind {

namespace py = pybind11;

using FastImpl = std::function<py::object(const py::handle* args)>;

constexpr size_t kMaxFastParams = 12;  // def_fast refuses more

struct FastFunction {
  std::string name;
  std::vector<std::string> params;  // parameter names, in positional order
  int required;                     // the first `required` are mandatory; the rest have defaults
  std::vector<py::object> defaults;  // per parameter: its default (None unless def_fast was given one)
  FastImpl impl;
  PyMethodDef def;
  std::string doc;  // "name(sig)\n--\n\n" + docstring, so inspect.signature() works
};

inline PyObject* fast_trampoline(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* f = static_cast<FastFunction*>(PyCapsule_GetPointer(self, nullptr));
  const size_t np = f->params.size();
  PyObject* slots[kMaxFastParams] = {nullptr};
  if (size_t(nargs) > np) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%d given)", f->name.c_str(), int(np),
                 int(nargs));
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) slots[i] = args[i];
  if (kwnames) {
    const Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nk; ++k) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, k);
      size_t j = 0;
      for (; j < np; ++j)
        if (PyUnicode_CompareWithASCIIString(key, f->params[j].c_str()) == 0) break;
      if (j == np) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", f->name.c_str(), key);
        return nullptr;
      }
      if (slots[j]) {
        PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", f->name.c_str(),
                     f->params[j].c_str());
        return nullptr;
      }
      slots[j] = args[nargs + k];
    }
  }
  py::handle h[kMaxFastParams];
  for (size_t j = 0; j < np; ++j) {
    if (!slots[j]) {
      if (int(j) < f->required) {
        PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %d)", f->name.c_str(),
                     f->params[j].c_str(), int(j) + 1);
        return nullptr;
      }
      h[j] = f->defaults[j];
    } else {
      h[j] = slots[j];
    }
  }
  try {
    return f->impl(h).release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const pk::TypeError& e) {
    PyErr_SetString(PyExc_TypeError, e.what());
  } catch (const pk::ValueError& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::bad_alloc&) {
    // As module.cpp's translator: a kernel's working memory (array allocations raise their own error).
    PyErr_SetString(PyExc_MemoryError, "pykernels: out of memory allocating a kernel's working buffers");
  } catch (const py::builtin_exception& e) {  // pybind11's own (py::cast_error, ...)
    e.set_error();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

// Adds `name` to module m. `signature` is the text signature without the name, e.g. "(x1, x2, out=None)".
// `defaults`: (parameter, value) for the optional parameters whose default is not None.
inline void def_fast(py::module_& m, const char* name, std::vector<std::string> params, int required,
                     const char* signature, const char* doc, FastImpl impl,
                     const std::vector<std::pair<std::string, py::object>>& defaults = {}) {
  auto* f = new FastFunction();  // lives as long as the process (module functions are never freed)
  f->name = name;
  f->params = std::move(params);
  f->required = required;
  if (f->params.size() > kMaxFastParams) throw std::logic_error(std::string("def_fast: too many parameters: ") + name);
  f->defaults.assign(f->params.size(), py::none());
  for (const auto& [param, value] : defaults) {
    size_t j = 0;
    while (j < f->params.size() && f->params[j] != param) ++j;
    if (j == f->params.size())  // a misspelt name would otherwise leave the default None, silently
      throw std::logic_error(std::string("def_fast: ") + name + " has no parameter '" + param + "'");
    f->defaults[j] = value;
  }
  f->impl = std::move(impl);
  f->doc = std::string(name) + signature + "\n--\n\n" + doc;
  f->def = PyMethodDef{f->name.c_str(), reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_trampoline)),
                       METH_FASTCALL | METH_KEYWORDS, f->doc.c_str()};
  py::object self = py::reinterpret_steal<py::object>(PyCapsule_New(f, nullptr, nullptr));
  if (!self) throw py::error_already_set();
  py::str modname = m.attr("__name__");
  PyObject* fn = PyCFunction_NewEx(&f->def, self.ptr(), modname.ptr());
  if (!fn) throw py::error_already_set();
  m.add_object(name, py::reinterpret_steal<py::object>(fn), /*overwrite=*/true);
}

}  // namespace pk::py_bind
