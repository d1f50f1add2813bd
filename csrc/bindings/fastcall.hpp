// Functions bound as raw METH_FASTCALL builtins instead of through pybind11's dispatcher.
//
// Why: pybind11's generic dispatcher costs ~0.5 us per keyword argument and allocates per call
// (pybind11 #1227, #2005); for a 1e3-element add that is more than the kernel and more than NumPy's
// whole ufunc call. These functions parse their (few) arguments themselves: positional or keyword,
// by name, with defaults (None unless given). Exceptions are translated as in module.cpp.
#pragma once

#include <pybind11/pybind11.h>

#include <array>
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
  std::string signature;  // the parameter list without parentheses, for error messages
  PyObject* target = nullptr;  // set: a pybind11 function the call is forwarded to (module_functions)
};

// Every function's record, indexed by the trampoline instance that serves it. The builtin's
// `__self__` is the module (as for a function of a C module), not a capsule holding the record: so
// `__reduce__` returns the function's name and pickle stores a reference (`pykernels._core.dot`),
// and help() shows a plain function. The record is found through the trampoline's template index.
constexpr size_t kMaxFastFunctions = 96;  // def_fast refuses more (raise it when the registry grows)
inline FastFunction* g_fast_functions[kMaxFastFunctions] = {};
inline size_t g_fast_count = 0;

// The keyword arguments of NumPy's functions that pykernels' kernels do not take: an unknown-keyword
// error for one of them says that pykernels.numpy's function of the same name accepts it.
inline bool is_numpy_keyword(PyObject* key) {
  static const char* const kNames[] = {"dtype", "where", "casting", "order", "subok", "signature", "axes",
                                       "axis", "keepdims", "initial", "out"};
  for (const char* n : kNames)
    if (PyUnicode_CompareWithASCIIString(key, n) == 0) return true;
  return false;
}

inline PyObject* unexpected_keyword(const FastFunction* f, PyObject* key) {
  if (is_numpy_keyword(key)) {
    // Does NumPy have a function of this name (the kernel's twin)? Checked only on this error path.
    bool twin = false;
    if (PyObject* np = PyImport_ImportModule("numpy")) {
      twin = PyObject_HasAttrString(np, f->name.c_str()) == 1;
      Py_DECREF(np);
    }
    PyErr_Clear();
    if (twin) {
      PyErr_Format(PyExc_TypeError,
                   "%s() got an unexpected keyword argument '%U': the pykernels kernel takes only (%s); "
                   "pykernels.numpy.%s accepts %U= (with NumPy's meaning: it calls NumPy where the kernel "
                   "does not apply)",
                   f->name.c_str(), key, f->signature.c_str(), f->name.c_str(), key);
      return nullptr;
    }
  }
  PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", f->name.c_str(), key);
  return nullptr;
}

inline PyObject* fast_call(const FastFunction* f, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (f->target) return PyObject_Vectorcall(f->target, args, size_t(nargs), kwnames);
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
      if (j == np) return unexpected_keyword(f, key);
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

// One tiny entry point per function: it only picks its record.
template <size_t I>
PyObject* fast_trampoline(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return fast_call(g_fast_functions[I], args, nargs, kwnames);
}

using FastTrampoline = PyObject* (*)(PyObject*, PyObject* const*, Py_ssize_t, PyObject*);

template <size_t... I>
constexpr std::array<FastTrampoline, sizeof...(I)> make_fast_trampolines(std::index_sequence<I...>) {
  return {&fast_trampoline<I>...};
}

inline const std::array<FastTrampoline, kMaxFastFunctions>& fast_trampolines() {
  static constexpr auto table = make_fast_trampolines(std::make_index_sequence<kMaxFastFunctions>{});
  return table;
}

// The docstring of a pybind11 function (m.def under py::options::disable_function_signatures()):
// "name(signature)\n--\n\n" + doc, so help() and __doc__ open with the signature and summary (not
// pybind11's "name(arg0: object) -> object" lines) and inspect.signature() reads __text_signature__.
// `signature` is in parentheses, e.g. "(x, shape)". pybind11 copies the string.
inline std::string text_sig_doc(const char* name, const char* signature, const char* doc) {
  return std::string(name) + signature + "\n--\n\n" + doc;
}

// Registers f (name, doc and impl or target set) as a builtin of module m whose __self__ is m.
inline void add_fast_function(py::module_& m, FastFunction* f) {
  if (g_fast_count >= kMaxFastFunctions)
    throw std::logic_error("def_fast: more than kMaxFastFunctions functions: " + f->name);
  const size_t index = g_fast_count++;
  g_fast_functions[index] = f;
  f->def = PyMethodDef{f->name.c_str(), reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_trampolines()[index])),
                       METH_FASTCALL | METH_KEYWORDS, f->doc.c_str()};
  py::str modname = m.attr("__name__");
  // self = the module: pickles by reference (see g_fast_functions).
  PyObject* fn = PyCFunction_NewEx(&f->def, m.ptr(), modname.ptr());
  if (!fn) throw py::error_already_set();
  m.add_object(f->name.c_str(), py::reinterpret_steal<py::object>(fn), /*overwrite=*/true);
}

// Makes every public pybind11 function of m a plain module function: a builtin whose __self__ is
// the module and which forwards the call (vectorcall, ~30 ns) to the pybind11 function. A pybind11
// function's __self__ is its function record, so help() calls it a "method of
// pybind11_builtins.pybind11_detail_function_record_... instance". The docstring keeps the text
// signature written with text_sig_doc. Called once, after every bind_*.
inline void module_functions(py::module_& m) {
  py::list names = m.attr("__dir__")();
  for (py::handle h : names) {
    const std::string name = py::str(h);
    if (name.empty() || name[0] == '_') continue;
    py::object fn = m.attr(h);
    if (!PyCFunction_Check(fn.ptr())) continue;
    PyObject* self = PyCFunction_GET_SELF(fn.ptr());
    if (self == m.ptr() || self == nullptr || PyModule_Check(self)) continue;  // already a module function
    if (fn.attr("__name__").cast<std::string>() != name) continue;  // an alias: rebound with its function
    auto* f = new FastFunction();  // lives as long as the process
    f->name = name;
    f->required = 0;
    py::object sig = fn.attr("__text_signature__"), doc = fn.attr("__doc__");
    const std::string d = doc.is_none() ? std::string() : std::string(py::str(doc));
    f->doc = sig.is_none() ? d : name + std::string(py::str(sig)) + "\n--\n\n" + d;
    f->target = fn.release().ptr();
    add_fast_function(m, f);
  }
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
  f->signature = signature;
  if (f->signature.size() >= 2) f->signature = f->signature.substr(1, f->signature.size() - 2);
  add_fast_function(m, f);
}

}  // namespace pk::py_bind
