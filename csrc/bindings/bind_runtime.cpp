// Thread control, instruction-set dispatch and build information.
#include <pybind11/pybind11.h>

#include <atomic>
#include <string>

#include "pykernels/common.hpp"
#include "pykernels/dispatch.hpp"
#include "pykernels/elementwise.hpp"
#include "pykernels/fma_probe.hpp"
#include "pykernels/gemm.hpp"
#include "pykernels/parallel.hpp"
#include "pykernels/pool.hpp"

// A C-linkage symbol only this extension exports: threadpoolctl's controller for pykernels
// (pykernels/_threadpoolctl.py) finds the library by it.
extern "C" __attribute__((visibility("default"))) int pykernels_threadpool_marker(void) { return 1; }

namespace pk::py_bind {
namespace py = pybind11;

void bind_runtime(py::module_& m) {
  py::options options;
  // Test hook of the worker pool: a region of n items in chunks of `grain` whose item `bad` throws.
  m.def(
      "_parallel_raise",
      [](int64_t n, int64_t grain, int64_t bad) {
        py::gil_scoped_release nogil;
        std::atomic<int64_t> seen{0};
        parallel_for(n, grain, 1, [&](int64_t b, int64_t e) {
          seen.fetch_add(e - b);
          if (b <= bad && bad < e) throw ValueError("item " + std::to_string(bad) + " failed");
        });
        return seen.load();
      },
      py::arg("n"), py::arg("grain"), py::arg("bad"));
  m.def(
      "_fma_peak_gflops",
      [](double seconds, int threads) {
        if (threads < 1) threads = num_threads();
        py::gil_scoped_release nogil;
        return fma_peak_gflops(seconds, threads);
      },
      py::arg("seconds") = 0.2, py::arg("threads") = 0,
      "Measured peak float32 FMA throughput (GFLOP/s) of the active ISA on `threads` threads (0: all).");
  options.disable_function_signatures();  // the public functions' docstrings open with their text signature
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw ValueError("set_num_threads: n must be >= 1, got " + std::to_string(n));
        set_num_threads(n);
      },
      py::arg("n"),
      "set_num_threads(n)\n--\n\nSet the number of threads the kernels use (default: OMP_NUM_THREADS or the "
      "CPUs this process may use). The results do not depend on it. pykernels.threads(n) sets it for a `with` "
      "block; threadpoolctl.threadpool_limits(n) also reaches it.\n\n"
      ">>> import pykernels as pk\n>>> old = pk.get_num_threads()\n>>> pk.set_num_threads(1)\n"
      ">>> pk.get_num_threads()\n1\n>>> pk.set_num_threads(old)\n");
  m.def("get_num_threads", &num_threads,
        "get_num_threads()\n--\n\nNumber of threads the kernels may use (1 in a child process created by fork()).\n\n"
        ">>> import pykernels as pk\n>>> with pk.threads(1):\n...     pk.get_num_threads()\n1\n");
  m.def("openmp_enabled", &openmp_enabled,
        "openmp_enabled()\n--\n\nTrue when the extension was compiled with OpenMP (show_config() says which "
        "version).\n\n>>> import pykernels as pk\n>>> pk.openmp_enabled() in (True, False)\nTrue\n");
  options.enable_function_signatures();
  m.def("_in_forked_child", &in_forked_child);
  m.def("_max_hw_threads", &max_hw_threads);
  m.def("_isa_detected", [] { return isa_name(detected_isa()); });
  m.def("_isa_active", [] { return isa_name(active_isa()); });
  m.def("_isa_compiled", [] {
    py::list l;
    for (int i = 0; i < 3; ++i)
      if (isa_compiled(Isa(i))) l.append(isa_name(Isa(i)));
    return l;
  });
  m.def(
      "_set_isa",
      [](const std::string& name) {
        for (int i = 0; i < 3; ++i)
          if (name == isa_name(Isa(i))) return set_isa(Isa(i));
        throw ValueError("unknown instruction set '" + name + "' (choose generic, avx2 or avx512)");
      },
      py::arg("name"));
  m.def("_gemm_blocking", [] {
    const GemmKernels& g = kernels().gemm[0];
    const CpuInfo& c = cpu_info();
    py::dict d;
    d["mr"] = g.mr;
    d["nr"] = g.nr;
    d["kc"] = g.kc;
    d["mc"] = g.mc;
    d["b_block_bytes"] = gemm_b_block_bytes();
    d["vendor"] = c.vendor;
    d["l1d_bytes"] = c.l1d;
    d["l2_bytes"] = c.l2;
    d["l3_bytes"] = c.l3;
    return d;
  });
  // Non-temporal-store threshold of the element-wise kernels (tests force the streaming loops on
  // small arrays with it).
  m.def("_stream_min_bytes", &stream_min_bytes);
  m.def(
      "_set_stream_min_bytes",
      [](long long bytes) {
        if (bytes < 0) throw ValueError("_set_stream_min_bytes: bytes must be >= 0");
        set_stream_min_bytes(bytes);
      },
      py::arg("bytes"));
  m.def(
      "_thread_pool_counters",
      [] {
        const PoolCounters c = pool_counters();
        py::dict d;
        d["regions"] = c.regions;
        d["caller_chunks"] = c.caller_chunks;
        d["worker_chunks"] = c.worker_chunks;
        d["busy_fallbacks"] = c.busy_fallbacks;
        d["stalls"] = c.stalls;
        d["serial_regions"] = c.serial_regions;
        d["steered"] = c.steered;
        d["moved"] = c.moved;
        return d;
      },
      "Counters of the worker pool behind every parallel kernel (cumulative since import).");
  m.def("_spin_us", &spin_us, "Microseconds an idle worker spins before it sleeps (PYKERNELS_SPIN_US).");
  m.def("_set_spin_us", &set_spin_us, py::arg("us"));
  m.def("_pool_stats", [] {
    const PoolStats st = pool_stats();
    py::dict d;
    d["cached_blocks"] = st.cached_blocks;
    d["cached_bytes"] = st.cached_bytes;
    d["cap_bytes"] = st.cap_bytes;
    d["min_bytes"] = kPoolMinBytes;
    d["hits"] = st.hits;
    d["misses"] = st.misses;
    return d;
  });
  m.def(
      "_pool_set_cap",
      [](long long bytes) {
        if (bytes < 0) throw ValueError("_pool_set_cap: bytes must be >= 0");
        pool_set_cap(size_t(bytes));
      },
      py::arg("bytes"));
  py::dict build;
  build["version"] = PK_VERSION_INFO;
  build["compiler"] = PK_COMPILER_INFO;
  build["openmp"] = PK_OPENMP_INFO;
  build["openmp_version"] = openmp_version();
  build["max_dims"] = kMaxDims;
  build["cuda"] = PK_CUDA_INFO;
  m.attr("_build_info") = build;
}

}  // namespace pk::py_bind
