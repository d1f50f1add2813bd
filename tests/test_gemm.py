"""The GEMM under dot, matmul, dense and their backward passes, path by path.

The GEMM (csrc/cpu/gemm/, the choice in path.cpp) picks one path per product from its shape, strides, dtype and the
ISA's register tile (MR rows, vectors of ``lanes`` elements); each group below names a path and the
condition that selects it, and drives it under every ISA the CPU runs, against NumPy and, where the
thread count changes how the work is split, for the same bits with 1, 2 and 3 threads.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from linalg_util import assert_product_close, isa, make, supported_isas

import pykernels as pk
from pykernels import _core
from pykernels.reference import dense as dense_ref

DTYPES = (np.float32, np.float64)



# ---- every path, forced: _core._gemm_force_path(name) makes later products take that path wherever
# it can compute them (gemm/path.cpp's path_applies), so each path is checked on shapes the automatic
# choice would give to another one. The layouts are ones every path accepts except where noted.
PATHS = ("matvec", "direct", "direct_transposed_b", "one_row_tile", "one_col_tile", "dot_narrow", "narrow",
         "narrow_transposed", "blocked")


@pytest.fixture
def forced_path():
    old = []

    def force(name):
        old.append(_core._gemm_force_path(name))

    yield force
    _core._gemm_force_path(old[0] if old else "auto")


def test_path_choice_names_the_expected_paths():
    # The automatic choice on the shapes each path exists for (float32, C-contiguous operands).
    f = np.float32
    z = lambda *s: np.zeros(s, f)  # noqa: E731
    lanes = _core._gemm_kernel_info("float32")["lanes"]
    assert _core._gemm_path(z(1, 300), z(300, 200)) == "matvec"
    assert _core._gemm_path(z(300, 300), z(300, 1)) == "matvec"
    assert _core._gemm_path(z(0, 3), z(3, 4)) == "degenerate"
    assert _core._gemm_path(z(2000, 2000), z(2000, 2000)) == "blocked"
    if lanes > 1:
        assert _core._gemm_path(z(64, 64), z(64, 64)) == "direct"
        # N = 10 within one vector (AVX-512's 16 lanes): dot products along k; wider than a vector
        # (AVX2's 8 lanes): B is small, nothing packed
        assert _core._gemm_path(z(128, 512), z(512, 10)) == ("dot_narrow" if lanes >= 10 else "direct")
        if _core._gemm_kernel_info("float32")["transpose_max_cols"] >= 10:  # register transposes (AVX-512)
            assert _core._gemm_path(z(128, 10), z(512, 10).T) == "direct_transposed_b"
    with pytest.raises(ValueError, match="unknown GEMM path"):
        _core._gemm_force_path("fastest")


def _applies(path, a, b, g):
    # gemm/path.cpp's path_applies for dot(a, b) into a new C-contiguous C, without masks or bias.
    (m, k), n = a.shape, b.shape[1]
    rsa, csa = (st_ // a.itemsize for st_ in a.strides)
    rsb, csb = (st_ // b.itemsize for st_ in b.strides)
    lanes = g["lanes"]
    return {
        "matvec": m == 1 or n == 1,
        "direct": g["direct"] and csb == 1,
        "direct_transposed_b": g["direct"] and rsb == 1 and k <= g["transpose_max_cols"],
        "one_row_tile": m <= g["mr"] and csb == 1,
        "one_col_tile": n <= g["mr"] and rsa == 1,
        "dot_narrow": n <= lanes and g["dot_n"] and csa == 1,
        "narrow": n <= g["narrow_max_n"] * lanes,
        "narrow_transposed": m <= g["narrow_max_n"] * lanes,
        "blocked": True,
    }[path]


@settings(max_examples=25, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dt", DTYPES)
def test_every_path_forced_matches_numpy(isa, forced_path, path, dt, data):
    g = _core._gemm_kernel_info(np.dtype(dt).name)
    m = data.draw(st.integers(1, 70), label="m")
    k = data.draw(st.integers(1, 90), label="k")
    n = data.draw(st.integers(1, 70), label="n")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    a = rng.standard_normal((m, k)).astype(dt)
    b = rng.standard_normal((k, n)).astype(dt)
    if path == "one_col_tile":
        a = np.asfortranarray(a)
    if path == "direct_transposed_b":
        b = np.ascontiguousarray(b.T).T  # B = W.T: contiguous columns
    forced_path(path)
    expected_applies = _applies(path, a, b, g)
    taken = _core._gemm_path(a, b)
    assert (taken == path) == expected_applies, (taken, path, (m, k, n))
    got = pk.dot(a, b)
    assert_product_close(got, a, b, np.dot)
    # the fused epilogue on the same path (dense: bias along N, relu), against the reference
    bias = np.abs(rng.standard_normal(n)).astype(dt)  # >= 0: |a||b| + bias bounds the error
    assert_product_close(pk.dense(a, b, bias, activation="relu"), a, b,
                         lambda x, w: dense_ref(x, w, bias, activation="relu"))


# ---- naive reference: the triple loop kept compiled (_core._gemm_naive), never dispatched ----------
@pytest.mark.parametrize("dt", DTYPES)
def test_gemm_naive_reference(dt):
    # The naive triple loop kept compiled as the reference: exact on small integers, any strides.
    rng = np.random.default_rng(9)
    for m, k, n in [(0, 3, 2), (3, 0, 2), (1, 1, 1), (7, 13, 5), (20, 31, 17)]:
        a = make(rng, (m, k), dt, "neg", ints=True)
        b = make(rng, (k, n), dt, "f", ints=True)
        np.testing.assert_array_equal(_core._gemm_naive(a, b), np.dot(a, b))
        np.testing.assert_array_equal(_core._gemm_naive(a, b), pk.dot(a, b))


# ---- matrix-vector path: M == 1 or N == 1 (and no relu mask on A or B) -----------------------
@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_matvec_forms_every_isa(name, dt):
    rng = np.random.default_rng(3)
    with isa(name):
        for m, k in [(1, 1), (5, 3), (33, 17), (300, 257), (2049, 40), (17, 1000)]:
            A = make(rng, (m, k), dt)
            x, y = make(rng, (k,), dt, "step"), make(rng, (m,), dt, "neg")
            assert_product_close(pk.dot(A, x), A, x, np.dot)  # row dot products
            assert_product_close(pk.dot(A.T, y), A.T, y, np.dot)  # column axpy form
            assert_product_close(pk.dot(y, A), y, A, np.dot)  # vector . matrix
            assert_product_close(pk.dot(A[:, ::2], x[::2]), A[:, ::2], x[::2], np.dot)  # general strides


# ---- direct path, nothing packed: B <= 64 KiB, N > one vector, B's rows contiguous, C row-major ------
@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_small_products_read_in_place_every_isa(name, dt):
    """B with contiguous rows, at most 64 KiB and wider than one vector: the path that packs nothing
    (full and partial column blocks, row remainders, bias contiguous or strided, relu, A transposed or
    reversed, and the accumulating form that matmul_backward uses to sum over a broadcast batch)."""
    rng = np.random.default_rng(26)
    with isa(name):
        for m, k, n in [(1, 3, 17), (13, 7, 33), (30, 64, 40), (61, 97, 100), (200, 16, 48), (12, 1, 64)]:
            W = make(rng, (k, n), dt)
            b = make(rng, (2 * n,), dt)[::2]
            for lx in ("c", "f", "neg"):
                x = make(rng, (m, k), dt, lx)
                for act in (None, "relu"):
                    np.testing.assert_allclose(pk.dense(x, W, b, activation=act), dense_ref(x, W, b, act),
                                               rtol=1e-4, atol=1e-4)
                assert_product_close(pk.dot(x, W), x, W, np.dot)
        a, w = make(rng, (10, 13, 7), dt)[::2], make(rng, (7, 33), dt)  # batch not foldable: C accumulates
        dout = make(rng, (5, 13, 33), dt)
        da, dw = pk.matmul_backward(dout, a, w)
        np.testing.assert_allclose(da, dout @ w.T, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw, np.einsum("bik,bij->kj", a, dout), rtol=1e-4, atol=1e-4)


@st.composite
def unpacked_case(draw):
    """A product on the path that packs nothing (B within 64 KiB, wider than one vector): B row-major,
    or B = W.T with K within one vector (copied by each thread for its columns of C). M and N span
    the shapes where threads split C's rows and those where they split its columns."""
    dt = draw(st.sampled_from(DTYPES))
    transposed = draw(st.booleans())
    lanes = 64 // np.dtype(dt).itemsize
    k = draw(st.integers(1, lanes if transposed else 40))
    n_max = (64 << 10) // (k * np.dtype(dt).itemsize)
    n = min(n_max, draw(st.sampled_from([lanes + 1, 33, 100, 255, 256, 300, 512, 700]) | st.integers(lanes + 1, 700)))
    m = draw(st.sampled_from([1, 5, 12, 13, 24, 25, 36, 61, 128, 130, 200]))
    return dt, m, k, n, transposed, draw(st.sampled_from([None, "relu"])), draw(st.booleans()), draw(
        st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(unpacked_case())
# dZ . W2.T of the MNIST model and shapes whose 2-thread split is by columns (128 rows are 6 + 5 tiles
# of 12), with a bias, which each thread must read from its first column on.
@example((np.float32, 128, 10, 512, True, "relu", True, 0))
@example((np.float64, 128, 8, 512, True, None, True, 1))
@example((np.float32, 61, 40, 300, False, "relu", True, 2))
def test_unpacked_small_products_same_bits_for_every_thread_count(case):
    """Whichever way the threads split C (rows, or columns of a small B, each thread transposing only
    its own columns of W.T), every element is the same FMA chain: 1, 2 and 3 threads give the same
    bits, with and without bias and relu, and agree with NumPy, under every ISA."""
    dt, m, k, n, transposed, act, with_bias, seed = case
    rng = np.random.default_rng(seed)
    x = make(rng, (m, k), dt)
    W = make(rng, (n, k), dt).T if transposed else make(rng, (k, n), dt)
    b = make(rng, (n,), dt) if with_bias else None
    for name in supported_isas():
        with isa(name):
            runs = []
            for t in (1, 2, 3):
                with pk.threads(t):
                    runs.append((pk.dot(x, W), pk.dense(x, W, b, activation=act)))
        for prod, fused in runs[1:]:
            np.testing.assert_array_equal(prod, runs[0][0])
            np.testing.assert_array_equal(fused, runs[0][1])
        assert_product_close(runs[1][0], x, W, np.dot)
        np.testing.assert_allclose(runs[1][1], dense_ref(x, W, b, act), rtol=1e-4, atol=1e-4)


# ---- direct path on a transposed copy of B: B = W.T <= 64 KiB, N > one vector, K <= one vector ------
@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_small_transposed_b_every_isa(name, dt):
    """B = W.T of a contiguous W with at most one vector of rows (K) and B <= 64 KiB, the layer-2
    backward dZ . W2.T: each thread copies B into row-major order (register transposes), then the
    path that packs nothing. K within and beyond one vector, partial tiles, bias, relu, 2 threads,
    and the accumulating form of a broadcast batch."""
    rng = np.random.default_rng(27)
    with isa(name):
        for m, k, n in [(128, 10, 512), (13, 7, 33), (61, 16, 100), (1, 3, 40), (200, 8, 17), (37, 17, 40)]:
            W = make(rng, (n, k), dt)  # used as W.T: (k, n) with contiguous columns
            b = make(rng, (n,), dt)
            x = make(rng, (m, k), dt)
            for t in (1, 2):
                with pk.threads(t):
                    assert_product_close(pk.dot(x, W.T), x, W.T, np.dot)
                    for act in (None, "relu"):
                        np.testing.assert_allclose(pk.dense(x, W.T, b, activation=act), dense_ref(x, W.T, b, act),
                                                   rtol=1e-4, atol=1e-4)
        a, w = make(rng, (10, 13, 40), dt)[::2], make(rng, (40, 9), dt)  # da = dout @ w.T, batch not foldable
        dout = make(rng, (5, 13, 9), dt)
        da, dw = pk.matmul_backward(dout, a, w)
        np.testing.assert_allclose(da, dout @ w.T, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw, np.einsum("bik,bij->kj", a, dout), rtol=1e-4, atol=1e-4)


# ---- blocked path, B read in place: M <= MR (one register tile), B's rows contiguous -----------------
def _view_at(base_offset: int, rows: int, cols: int, row_len: int, dt) -> np.ndarray:
    """An uninitialised (rows, cols) view with row stride `row_len` elements, starting
    `base_offset` elements after a 64-byte boundary."""
    itemsize = np.dtype(dt).itemsize
    raw = np.empty((base_offset + rows * row_len) * itemsize + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    flat = raw[start:start + (base_offset + rows * row_len) * itemsize].view(dt)
    v = flat[base_offset:].reshape(rows, row_len)[:, :cols]
    assert (v.ctypes.data - base_offset * itemsize) % 64 == 0
    return v


@st.composite
def in_place_b_case(draw):
    """A product whose B is read in place by the blocked path: few rows (m <= 8, one register tile
    in every ISA), N wider than a tile, K x N beyond the small-B threshold (64 KiB)."""
    dt = draw(st.sampled_from(DTYPES))
    itemsize = np.dtype(dt).itemsize
    n = draw(st.integers(33, 300))
    k_min = (64 << 10) // (n * itemsize) + 1
    k = draw(st.integers(k_min, k_min + 300))
    return (draw(st.sampled_from(supported_isas())), dt, draw(st.integers(1, 8)), k, n, draw(st.integers(0, 2)),
            draw(st.integers(0, 15)), draw(st.booleans()), draw(st.integers(1, 2)), draw(st.integers(0, 2**32 - 1)))


def _check_in_place_b(name, dt, m, k, n, extra, off, transposed, threads, seed):
    rng = np.random.default_rng(seed)
    lanes = 64 // np.dtype(dt).itemsize
    row_len = (n + lanes - 1) // lanes * lanes + extra * lanes  # a multiple of 64 bytes
    big = _view_at(off % lanes, k, n, row_len, dt)  # (k, n), rows `off` elements into a line
    big[...] = rng.standard_normal((k, n))
    ref_b = _view_at(0, k, n, n, dt)  # contiguous rows, aligned start
    ref_b[...] = big
    small = rng.standard_normal((m, k)).astype(dt)
    with isa(name), pk.threads(threads):
        if not transposed:
            got, want = pk.dot(small, big), pk.dot(small, ref_b)
            assert_product_close(got, small, big, np.dot)
        else:
            dz = np.ascontiguousarray(small.T)  # (k, m)
            got, want = pk.dot(big.T, dz), pk.dot(ref_b.T, dz)
            assert_product_close(got, big.T, dz, np.dot)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(in_place_b_case())
def test_dot_b_read_in_place_misaligned_rows_same_bits(case):
    """A B read in place (not packed) by the blocked path, whose rows start anywhere within a cache
    line and have a row stride beyond N (a NumPy view): the bits of the same product with B
    contiguous and aligned, and close to np.dot. Both orientations: a(m,k) . B(k,n), and the MNIST
    H^T . dZ form (H.T . dz: the transposed problem reads H in place)."""
    _check_in_place_b(*case)


@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_b_read_in_place_transposed_every_line_offset(name, dt):
    """H^T . dZ of the MNIST model, H (128,512) at every element offset within a cache line."""
    for off in range(64 // np.dtype(dt).itemsize):
        for threads in (1, 2):
            _check_in_place_b(name, dt, 10, 128, 512, 0, off, True, threads, off)


# ---- blocked path on C^T = B^T A^T: N <= MR with A's columns contiguous (x column-major); C column-major --
@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_dense_transposed_output_every_isa(name, dt):
    """Shapes run as C^T = W^T x^T (N within one row tile, x column-major): the micro-kernel stores
    its tile transposed (one vector per column of C), with the bias per row of the transposed
    problem, relu, one or several K blocks, full and partial tiles."""
    rng = np.random.default_rng(26)
    with isa(name):
        for m, k, n in [(512, 128, 10), (37, 33, 12), (100, 600, 5), (33, 1000, 1 + 11), (64, 7, 3)]:
            x, W, b = make(rng, (m, k), dt, "f"), make(rng, (k, n), dt), make(rng, (n,), dt)
            for act in (None, "relu"):
                got = pk.dense(x, W, b, activation=act)
                np.testing.assert_allclose(got, dense_ref(x, W, b, act), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(pk.dot(x, W), x @ W, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_matmul_fortran_out_every_isa(name, dt):
    """Column-major results of the blocked path (kept orientation: C tall and wide), one and several
    K blocks, full and partial tiles, and of the C^T = B^T A^T path (N within a row tile)."""
    rng = np.random.default_rng(13)
    with isa(name):
        for m, k, n in [(130, 70, 64), (200, 1000, 96), (37, 33, 40), (512, 128, 10), (50, 900, 7)]:
            a, b = make(rng, (m, k), dt), make(rng, (k, n), dt, "f")
            out = make(rng, (m, n), dt, "f")
            pk.matmul(a, b, out=out)
            assert_product_close(out, a, b, np.matmul)


# ---- narrow paths: N <= two vectors (or M <= two vectors and M < N: the transposed problem), ------
# more rows than one register tile, after the paths above decline. N <= one vector with A's rows
# contiguous and K >= 4 vectors: one dot product along K per element; otherwise only B is packed.
@st.composite
def narrow_case(draw):
    """N (or M < N) within two vectors of every ISA (<= 32), M beyond every register tile, K from
    one element to several cache blocks, A row- or column-major, with and without bias and relu."""
    dt = draw(st.sampled_from(DTYPES))
    if draw(st.booleans()):  # M < N: the transposed problem is the narrow one
        m = draw(st.integers(15, 32))
        n = draw(st.integers(m + 1, 200))
    else:
        m = draw(st.integers(15, 300))
        n = draw(st.integers(2, 32))
    k = draw(st.sampled_from([1, 7, 64, 129, 1024]) | st.integers(1, 1500))
    return (draw(st.sampled_from(supported_isas())), dt, m, k, n, draw(st.sampled_from(["c", "f"])),
            draw(st.sampled_from([None, "relu"])), draw(st.booleans()), draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=40, deadline=None)
@given(narrow_case())
def test_narrow_products_same_bits_for_every_thread_count(case):
    """Threads split C's rows; every element is the same FMA chain: 1, 2 and 3 threads give the same
    bits for dot and dense, which agree with NumPy."""
    name, dt, m, k, n, la, act, with_bias, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, (m, k), dt, la), make(rng, (k, n), dt)
    bias = make(rng, (n,), dt) if with_bias else None
    with isa(name):
        runs = []
        for t in (1, 2, 3):
            with pk.threads(t):
                runs.append((pk.dot(a, b), pk.dense(a, b, bias, activation=act)))
    for prod, fused in runs[1:]:
        np.testing.assert_array_equal(prod, runs[0][0])
        np.testing.assert_array_equal(fused, runs[0][1])
    assert_product_close(runs[1][0], a, b, np.dot)
    np.testing.assert_allclose(runs[1][1], dense_ref(a, b, bias, act), rtol=1e-4, atol=1e-4 * (1 + k) ** 0.5)


# ---- packed (blocked) path: everything else, B beyond 64 KiB and wider than two vectors ------
@st.composite
def packed_rows_case(draw):
    """A product on the packed (blocked) path, B beyond the 64 KiB read-in-place limit and wider than
    two vectors, with M anywhere from one tile to several blocks: AVX-512 covers a block's last rows
    with a mix of 12- and 10-row tiles, and a row split between threads changes the blocks."""
    dt = draw(st.sampled_from(DTYPES))
    n = draw(st.integers(33, 160))
    k = draw(st.integers((64 << 10) // (n * np.dtype(dt).itemsize) + 1, 1100))
    m = draw(st.sampled_from([13, 20, 22, 98, 112, 128, 130, 200, 250, 400]) | st.integers(13, 400))
    return draw(st.sampled_from(supported_isas())), dt, m, k, n, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=25, deadline=None)
@given(packed_rows_case())
def test_packed_row_tiles_same_bits_for_every_thread_count(case):
    """Whatever tiles a row lands in (12 or 10 rows on AVX-512, split by rows or columns), its sums
    are the same: 1, 2 and 3 threads give the same bits for dot and for dense_backward's dx, dW and
    db (column sums taken while packing), and all of them agree with NumPy."""
    name, dt, m, k, n, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, (m, k), dt), make(rng, (k, n), dt)
    dy = make(rng, (m, n), dt)
    y = np.maximum(make(rng, (m, n), dt), 0)
    with isa(name):
        runs = []
        for t in (1, 2, 3):
            with pk.threads(t):
                runs.append((pk.dot(a, b), *pk.dense_backward(dy, a, b, y=y, activation="relu")))
    for run in runs[1:]:
        for got, want in zip(run, runs[0]):
            np.testing.assert_array_equal(got, want)
    assert_product_close(runs[1][0], a, b, np.dot)
    dz = np.where(y > 0, dy, 0).astype(dt)
    assert_product_close(runs[1][1], dz, b.T, np.dot)
    assert_product_close(runs[1][2], a.T, dz, np.dot)
    np.testing.assert_allclose(runs[1][3], dz.astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-5 * m)


def test_gemm_b_block_size_changes_no_bit(tmp_path, neutral_cwd):
    """The packed-B block size (chosen from the CPU, PYKERNELS_GEMM_B_BLOCK_KB) groups columns only:
    a run with tiny blocks (many NC panels, A packed once per panel) gives the same bits."""
    rng = np.random.default_rng(11)
    cases = [make(rng, (130, 900), np.float32), make(rng, (900, 1100), np.float32),
             make(rng, (70, 600), np.float64), make(rng, (600, 700), np.float64)]
    np.savez(tmp_path / "in.npz", *cases)
    script = (
        "import numpy as np, pykernels as pk, sys\n"
        "from pykernels import _core\n"
        "assert _core._gemm_blocking()['b_block_bytes'] == 48 << 10, _core._gemm_blocking()\n"
        "d = np.load(sys.argv[1])\n"
        "a, b, c, e = (d[f'arr_{i}'] for i in range(4))\n"
        "np.savez(sys.argv[2], pk.dot(a, b), pk.dot(c, e))\n"
    )
    env = dict(os.environ, PYKERNELS_GEMM_B_BLOCK_KB="48")
    p = subprocess.run([sys.executable, "-c", script, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                       env=env, cwd=neutral_cwd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    g = _core._gemm_blocking()
    assert g["b_block_bytes"] != 48 << 10 and g["b_block_bytes"] > 0 and g["mc"] % g["mr"] == 0
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["arr_0"], pk.dot(cases[0], cases[1]))
    np.testing.assert_array_equal(out["arr_1"], pk.dot(cases[2], cases[3]))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3001, 5), (64, 2500, 48), (1, 4000, 1), (2000, 1500, 1), (1, 1500, 700)])
def test_dot_large_k(dt, shape):
    m, k, n = shape
    rng = np.random.default_rng(2)
    a, b = make(rng, (m, k), dt), make(rng, (k, n), dt, "f")
    assert_product_close(pk.dot(a, b), a, b, np.dot)
    assert_product_close(pk.dot(b.T, a.T), b.T, a.T, np.dot)


# ---- every path: sizes around each register tile and cache block, thread counts --------------
@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_dot_2d_tile_edges_every_isa(name, dt):
    """Sizes around every register tile (MR in 4, 6, 14; NR in 8, 16, 32) and cache block, all layouts."""
    rng = np.random.default_rng(1)
    sizes = [(1, 1, 1), (13, 7, 31), (14, 16, 32), (15, 17, 33), (29, 5, 65), (6, 300, 8), (37, 257, 19),
             (130, 513, 70), (3, 2, 200), (200, 3, 2), (1, 50, 40), (40, 50, 1), (130, 513, 10), (29, 100, 3),
             (7, 77, 16)]
    with isa(name):
        for m, k, n in sizes:
            for la, lb in [("c", "c"), ("f", "c"), ("c", "f"), ("neg", "step"), ("mixed", "mixed")]:
                a, b = make(rng, (m, k), dt, la), make(rng, (k, n), dt, lb)
                assert_product_close(pk.dot(a, b), a, b, np.dot)
            x = make(rng, (k,), dt, "neg")
            assert_product_close(pk.dot(a, x), a, x, np.dot)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(300, 400, 500), (128, 784, 512), (128, 512, 10), (784, 128, 512), (2000, 2000, 1),
                                   (1, 3000, 3000), (50, 7, 4097), (36, 3000, 1500), (700, 3000, 40),
                                   (7, 3000, 1500),
                                   # B small enough to be read in place, rows split between threads
                                   (5000, 64, 100), (3001, 100, 37)])
def test_dot_bit_identical_across_threads(dt, shape):
    m, k, n = shape
    rng = np.random.default_rng(6)
    a, b = make(rng, (m, k), dt), make(rng, (k, n), dt)
    with pk.threads(1):
        r1 = pk.dot(a, b)
    with pk.threads(2):
        r2 = pk.dot(a, b)
    with pk.threads(3):
        r3 = pk.dot(a, b)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(r1, r3)
    assert_product_close(r2, a, b, np.dot)


# ---- FMA peak probe (the benchmarks' machine figure) -----------------------------------------
def test_fma_peak_is_measured():
    """The probe runs and reports a rate: a positive, finite float. How high it is depends on the
    machine and its load, and is the benchmarks' business, not a unit test's."""
    r = _core._fma_peak_gflops(0.01, 1)
    assert isinstance(r, float) and math.isfinite(r) and r > 0, r
