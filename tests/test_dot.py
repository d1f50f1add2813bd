"""pykernels.dot / dot_backward against np.dot: every rank combination, both dtypes, strided,
transposed and negative-stride operands, tile edges, large K, errors, threads and every ISA."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linalg_util import LAYOUTS, assert_product_close, isa, make, numerical_grad, supported_isas

import pykernels as pk
from pykernels import _core

SETTINGS = settings(max_examples=60, deadline=None)
DTYPES = (np.float32, np.float64)
side = st.sampled_from([0, 1, 2, 3, 5, 7, 13, 14, 15, 17, 31, 33, 47, 65])


@st.composite
def dot_case(draw, max_rank=4):
    """Shapes of a and b aligned for np.dot (ranks 1..max_rank), dtype, layouts, seed."""
    ra = draw(st.integers(1, max_rank))
    rb = draw(st.integers(1, max_rank))
    k = draw(side)
    small = st.integers(0, 3)
    a_shape = tuple(draw(small) for _ in range(ra - 2)) + ((draw(side),) if ra >= 2 else ()) + (k,)
    b_shape = tuple(draw(small) for _ in range(rb - 2)) + (k,) + ((draw(side),) if rb >= 2 else ())
    return (a_shape, b_shape, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS)),
            draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 2**32 - 1)))


@SETTINGS
@given(dot_case())
def test_dot_matches_numpy(case):
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la), make(rng, b_shape, dt, lb)
    a0, b0 = a.copy(), b.copy()
    got = pk.dot(a, b)
    assert type(got) is type(np.dot(a, b))
    assert_product_close(got, a, b, np.dot)
    np.testing.assert_array_equal(a, a0)  # inputs untouched
    np.testing.assert_array_equal(b, b0)


@SETTINGS
@given(dot_case(max_rank=3))
def test_dot_exact_on_integers(case):
    # Small integer values: every product and partial sum is exact in float32 and float64, so the
    # result must equal NumPy's bit for bit whatever the summation order.
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la, ints=True), make(rng, b_shape, dt, lb, ints=True)
    np.testing.assert_array_equal(pk.dot(a, b), np.dot(a, b))


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
@pytest.mark.parametrize("shape", [(3, 3001, 5), (64, 2500, 48), (1, 4000, 1), (2000, 1500, 1), (1, 1500, 700)])
def test_dot_large_k(dt, shape):
    m, k, n = shape
    rng = np.random.default_rng(2)
    a, b = make(rng, (m, k), dt), make(rng, (k, n), dt, "f")
    assert_product_close(pk.dot(a, b), a, b, np.dot)
    assert_product_close(pk.dot(b.T, a.T), b.T, a.T, np.dot)


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


def test_dot_scalar_and_zero_d():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    r = pk.dot(a, a)
    assert isinstance(r, np.float32) and r == np.float32(14.0)
    assert isinstance(pk.dot(a.astype(np.float64), a.astype(np.float64)), np.float64)
    np.testing.assert_array_equal(pk.dot(np.float32(2.0), np.ones((2, 3), np.float32)), np.full((2, 3), 2, np.float32))
    np.testing.assert_array_equal(pk.dot(np.ones((2, 3)), 3.0), np.full((2, 3), 3.0))
    assert pk.dot(np.ones(0), np.ones(0)) == 0.0
    np.testing.assert_array_equal(pk.dot(np.ones((3, 0)), np.ones((0, 4))), np.zeros((3, 4)))


def test_dot_mixed_dtypes_promote():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 2), np.float64)
    assert pk.dot(a, b).dtype == np.float64
    assert pk.dot([[1.0, 2.0]], [[3.0], [4.0]]).dtype == np.float64


_F32 = np.ones(3, np.float32)


@pytest.mark.parametrize("args", [
    (_F32, 2.0), (2.0, _F32), (_F32, 2), (_F32, True), (2.0, 3.0), (np.float32(2), _F32),
    (_F32, np.array(2.0, np.float32)), (_F32, np.float64(2.0)), (_F32.astype(np.float64), 2.5),
], ids=repr)
def test_dot_scalars_promote_like_np_dot(args):
    """np.dot is not a ufunc: a Python float or int is a float64 (int64) array before promotion, so
    float32 . 2.0 is float64 (np.multiply would keep float32); a bool stays float32."""
    r, e = pk.dot(*args), np.dot(*args)
    assert type(r) is type(e) and r.dtype == e.dtype
    np.testing.assert_array_equal(r, e)


def test_dot_book_examples():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 4, 5))
    v = rng.standard_normal(5)
    assert pk.dot(a, v).shape == (2, 3, 4)
    assert_product_close(pk.dot(a, v), a, v, np.dot)
    b = rng.standard_normal((5, 6))
    assert pk.dot(a, b).shape == (2, 3, 4, 6)
    assert_product_close(pk.dot(a, b), a, b, np.dot)
    c = rng.standard_normal((3, 5, 2))
    r = pk.dot(a, c)
    assert r.shape == (2, 3, 4, 3, 2)
    np.testing.assert_allclose(r[1, 2, 3, 2, 1], np.sum(a[1, 2, 3, :] * c[2, :, 1]), rtol=1e-12)


@pytest.mark.parametrize("dt", DTYPES)
def test_dot_out(dt):
    rng = np.random.default_rng(5)
    a, b = make(rng, (20, 30), dt), make(rng, (30, 40), dt)
    out = np.full((20, 40), np.nan, dt)  # garbage in out must not leak (beta = 0)
    r = pk.dot(a, b, out=out)
    assert r is out
    assert_product_close(out, a, b, np.dot)
    # out aliasing an input: computed into a temporary first
    sq = make(rng, (33, 33), dt)
    expect = np.dot(sq, sq)
    pk.dot(sq, sq, out=sq)
    np.testing.assert_allclose(sq, expect, rtol=1e-4 if dt == np.float32 else 1e-12, atol=1e-4)
    x = make(rng, (40,), dt)
    wrong = np.empty((20, 40), np.float32 if dt == np.float64 else np.float64)
    with pytest.raises(ValueError, match="not acceptable"):  # np.dot's error for an out of another dtype
        np.dot(a, b, out=wrong)
    with pytest.raises(ValueError, match=r"not acceptable .*: out has dtype float\d+, the result float\d+"):
        pk.dot(a, b, out=wrong)
    with pytest.raises(ValueError, match="shape"):
        pk.dot(a, b, out=np.empty((20, 41), dt))
    with pytest.raises(ValueError, match="C-Array"):
        pk.dot(a, b, out=np.empty((40, 20), dt).T)
    ro = np.empty((20, 40), dt)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        pk.dot(a, b, out=ro)
    with pytest.raises(TypeError):
        pk.dot(a, b, out=[[0.0] * 40] * 20)
    assert pk.dot(b, x).shape == (30,)


def test_dot_errors():
    with pytest.raises(ValueError, match=r"^shapes \(2,3\) and \(4,5\) not aligned: 3 \(dim 1\) != 4 \(dim 0\)$"):
        pk.dot(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"shapes \(2,3,4\) and \(5,6,7\) not aligned: 4 \(dim 2\) != 6 \(dim 1\)"):
        pk.dot(np.ones((2, 3, 4)), np.ones((5, 6, 7)))
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(4,\) not aligned"):
        pk.dot(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="int64"):
        pk.dot(np.ones((2, 2), np.int64), np.ones((2, 2)))
    with pytest.raises(TypeError, match="complex128"):
        pk.dot(np.ones((2, 2)), np.ones((2, 2), np.complex128))
    with pytest.raises(TypeError, match="float16"):
        pk.dot(np.ones((2, 2), np.float16), np.ones((2, 2), np.float32))


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
def test_mnist_ht_dz_every_line_offset(name, dt):
    """H^T . dZ of the MNIST model, H (128,512) at every element offset within a cache line."""
    for off in range(64 // np.dtype(dt).itemsize):
        for threads in (1, 2):
            _check_in_place_b(name, dt, 10, 128, 512, 0, off, True, threads, off)


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


# ---- dot_backward ------------------------------------------------------------------------------
def dot_backward_reference(dout, a, b):
    """NumPy formula for the gradients of dot(a, b) (tensordot over the right axes)."""
    a, b, dout = (np.asarray(x, np.float64) for x in (a, b, dout))
    if a.ndim == 0:
        return np.sum(dout * b), a * dout
    if b.ndim == 0:
        return b * dout, np.sum(dout * a)
    la = a.ndim - 1
    if b.ndim == 1:
        da = dout[..., None] * b
        db = np.tensordot(a, dout, axes=(list(range(la)), list(range(la))))
        return da, db
    lb = b.ndim - 2  # dout axes: a[:-1] (la), b lead (lb), N
    # da[..., k] = sum over b lead and n of dout[..., q, n] * b[q, k, n]
    bl = list(range(lb))
    da = np.tensordot(dout, b, axes=(list(range(la, la + lb)) + [la + lb], bl + [lb + 1]))
    # db[q, k, n] = sum over a lead of a[..., k] * dout[..., q, n]
    db = np.tensordot(a, dout, axes=(list(range(la)), list(range(la))))  # (k, q..., n)
    db = np.moveaxis(db, 0, lb)
    return da, db


@settings(max_examples=40, deadline=None)
@given(dot_case(max_rank=3))
def test_dot_backward_matches_formula(case):
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la), make(rng, b_shape, dt, lb)
    dout = make(rng, np.dot(a, b).shape, dt, "neg")
    da, db = pk.dot_backward(dout, a, b)
    rda, rdb = dot_backward_reference(dout, a, b)
    assert np.shape(da) == a.shape and np.shape(db) == b.shape
    assert np.asarray(da).dtype == dt and np.asarray(db).dtype == dt
    tol = dict(rtol=2e-4, atol=2e-4 * (1 + max(a_shape + b_shape))) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(da, rda, **tol)
    np.testing.assert_allclose(db, rdb, **tol)


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 3)), ((3, 4), (4, 5)), ((2, 3, 4), (4,)), ((2, 3, 4), (4, 2)),
     ((2, 3, 4), (2, 4, 3)), ((), (3, 2)), ((3, 2), ()), ((2, 1, 3), (2, 3, 1))],
)
def test_dot_backward_finite_differences(a_shape, b_shape):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    w = rng.standard_normal(np.shape(np.dot(a, b)))  # loss = sum(w * dot(a, b))

    def loss():
        return float(np.sum(w * pk.dot(a, b)))

    da, db = pk.dot_backward(w, a, b)
    np.testing.assert_allclose(da, numerical_grad(loss, a), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-5, atol=1e-6)


def test_dot_backward_errors():
    with pytest.raises(ValueError, match=r"dout has shape \(2,5\) but dot\(a, b\) has shape \(2,4\)"):
        pk.dot_backward(np.ones((2, 5)), np.ones((2, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="not aligned"):
        pk.dot_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((5, 4)))
    with pytest.raises(TypeError, match="int32"):
        pk.dot_backward(np.ones((2, 4), np.int32), np.ones((2, 3)), np.ones((3, 4)))


def test_dot_backward_bit_identical_across_threads():
    rng = np.random.default_rng(8)
    for m, k, n in [(128, 784, 512), (128, 512, 10), (300, 100, 200)]:
        a, b, d = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(
            np.float32), rng.standard_normal((m, n)).astype(np.float32)
        with pk.threads(1):
            g1 = pk.dot_backward(d, a, b)
        with pk.threads(2):
            g2 = pk.dot_backward(d, a, b)
        for x, y in zip(g1, g2):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dt", DTYPES)
def test_gemm_naive_reference(dt):
    # The naive triple loop kept compiled as the reference: exact on small integers, any strides.
    rng = np.random.default_rng(9)
    for m, k, n in [(0, 3, 2), (3, 0, 2), (1, 1, 1), (7, 13, 5), (20, 31, 17)]:
        a = make(rng, (m, k), dt, "neg", ints=True)
        b = make(rng, (k, n), dt, "f", ints=True)
        np.testing.assert_array_equal(pk._core._gemm_naive(a, b), np.dot(a, b))
        np.testing.assert_array_equal(pk._core._gemm_naive(a, b), pk.dot(a, b))


def test_fma_peak_is_measured():
    assert pk._core._fma_peak_gflops(0.01, 1) > 0.1


@pytest.mark.parametrize("a_shape,b_shape", [((0, 0, 3), (3, 2)), ((2, 0, 3), (3, 4)), ((0, 2, 3), (5, 3, 0)),
                                             ((3,), (0, 0, 3, 2)), ((2, 0, 3), (3,))])
def test_dot_empty_results(a_shape, b_shape):
    # Empty results (whose C-contiguous strides can be 0 on non-empty dims) are never written.
    a, b = np.ones(a_shape), np.ones(b_shape)
    r = pk.dot(a, b)
    assert r.shape == np.dot(a, b).shape
    da, db = pk.dot_backward(np.ones(r.shape), a, b)
    np.testing.assert_array_equal(da, np.zeros(a_shape))
    np.testing.assert_array_equal(db, np.zeros(b_shape))
