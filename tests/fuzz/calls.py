"""The call generator: for each public function, arguments that are nearly valid (correlated shapes,
so the kernels run), then hostile mutations (dtypes, layouts, ranks 0..34, 0-size and huge shapes,
aliasing and read-only outputs, non-arrays, garbage keywords)."""

from __future__ import annotations

import numpy as np

from .gen import ALL_DTYPES, LAYOUTS, OBJECTS

ELEMENTWISE2 = ["add", "subtract", "multiply", "maximum", "relu_backward"]
OPTIMIZERS = ["sgd_update", "rmsprop_update", "adam_update", "adagrad_update"]
FUNCTIONS = (ELEMENTWISE2 + ["relu", "sum", "sum_to", "add_backward", "dot", "matmul", "dot_backward",
                             "matmul_backward", "dense", "dense_backward", "softmax_cross_entropy",
                             "softmax_cross_entropy_backward"] + OPTIMIZERS +
             ["to_categorical", "set_num_threads", "_cuda_emu_binary", "_cuda_emu_gemm", "_gemm_naive"])
# relative weights: the kernels with the most code paths get the most calls
WEIGHTS = {"dot": 4, "matmul": 4, "dense": 3, "dense_backward": 3, "dot_backward": 2, "matmul_backward": 2,
           "sum": 2, "sum_to": 2, "_cuda_emu_gemm": 2, "set_num_threads": 0.3, "to_categorical": 0.5}
# Sizes no result can be allocated with (>= 2**40 elements), some of them overflowing byte counts.
HUGE = [2**40, 2**46, 2**58, 2**61, 2**62, 2**63 - 1]
HUGE_PAIR = [2**31, 2**32 + 1]  # only ever paired: (2**31, 1) x (1, 2**32+1)


class G:
    """Random choices for one call (numpy Generator seeded by (seed, index))."""

    def __init__(self, seed: int, index: int, attempt: int = 0):
        self.r = np.random.default_rng([seed, index] + ([attempt] if attempt else []))

    def p(self, prob: float) -> bool:
        return bool(self.r.random() < prob)

    def pick(self, seq):
        return seq[int(self.r.integers(len(seq)))]

    def int(self, lo, hi):
        return int(self.r.integers(lo, hi + 1))

    def dim(self) -> int:
        return self.pick([0, 1, 1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 33, 64, 65, 129])

    def dims(self, n: int, budget: int = 20000) -> tuple:
        while True:
            s = tuple(self.dim() for _ in range(n))
            if np.prod(s, dtype=object) <= budget:
                return s

    def rank(self) -> int:
        r = self.r.random()
        if r < 0.85:
            return self.int(0, 4)
        if r < 0.95:
            return self.int(5, 9)
        return self.int(30, 34)

    def shape(self, rank: int | None = None) -> tuple:
        rank = self.rank() if rank is None else rank
        if rank > 8:  # high ranks: mostly ones, so the array stays small
            return tuple(self.pick([1, 1, 1, 1, 2, 0]) if self.p(0.2) else 1 for _ in range(rank))
        return self.dims(rank)

    def float_dtype(self) -> str:
        r = self.r.random()
        if r < 0.45:
            return "f4"
        if r < 0.85:
            return "f8"
        return self.pick(ALL_DTYPES)

    def layout(self) -> str:
        return "c" if self.p(0.6) else self.pick(LAYOUTS)

    def fill(self) -> str:
        return self.pick(["normal", "normal", "normal", "special", "zeros", "ints"])

    def seed(self) -> int:
        return int(self.r.integers(2**31))

    def arr(self, shape, dtype=None, layout=None, fill=None):
        return ("arr", dtype or self.float_dtype(), tuple(shape), layout or self.layout(), fill or self.fill(),
                self.seed())

    def out(self, shape, dtype):
        """An out= buffer: mostly right, sometimes wrong in one way."""
        r = self.r.random()
        if r < 0.6:
            return self.arr(shape, dtype, "c" if self.p(0.5) else self.layout())
        if r < 0.7:
            return self.arr(shape, self.float_dtype(), self.layout())
        if r < 0.8:
            return self.arr(self.mutate_shape(shape), dtype)
        if r < 0.9:
            return self.arr(shape, dtype, "readonly")
        return self.hostile()

    def mutate_shape(self, shape) -> tuple:
        s = list(shape)
        k = self.int(0, 3)
        if k == 0 and s:
            s.pop(self.int(0, len(s) - 1))
        elif k == 1:
            s.insert(self.int(0, len(s)), self.pick([1, 2, 0]))
        elif k == 2 and s:
            i = self.int(0, len(s) - 1)
            s[i] = self.pick([0, 1, s[i] + 1, 2 * s[i] + 3])
        else:
            s = list(self.shape())
        return tuple(s)

    def hostile(self):
        """A non-array or odd value where an array (or anything) is expected."""
        k = self.int(0, 12)
        if k == 0:
            return None
        if k == 1:
            return ("lit", self.pick([0.0, -1.0, float("nan"), float("inf"), 1e308, 3, -7, True, 1j, "relu", "",
                                      "abc\udcff", 2**63, -(2**63) - 1]))
        if k == 2:
            return ("bigint", 10, self.pick([20, 400]), self.pick([1, -1]))
        if k == 3:
            return ("list", self.float_dtype(), self.dims(self.int(0, 3), 200), self.fill(), self.seed())
        if k == 4:
            return ("lit", self.pick([[], [[]], [[1.0], [2.0, 3.0]], [1.0, "a"], [None], [[1.0, 2.0]], (1.0, 2.0)]))
        if k == 5:
            return ("arraylike", self.arr(self.shape()))
        if k == 6:
            return ("obj", self.pick(sorted(OBJECTS)))
        if k == 7:
            return ("npscalar", self.pick(ALL_DTYPES[:16]), self.pick([0.0, 1.5, -2.0, float("nan"), 1e300]))
        if k == 8:
            return self.arr((), self.float_dtype())
        if k == 9:
            return self.arr(self.shape(), self.pick(ALL_DTYPES))
        if k == 10:
            return self.arr(self.shape(), self.float_dtype(), "masked")
        if k == 11:
            return self.arr(self.shape(), self.pick(["f4", "f8"]), "readonly")
        return self.arr(self.shape(), self.float_dtype(), self.layout(), "special")

    def huge_arr(self, shape=None, dtype=None):
        if shape is None:
            shape = tuple(self.pick(HUGE) if self.p(0.4) else self.pick([1, 2, 3]) for _ in range(self.int(1, 3)))
        base = tuple(1 for _ in shape)
        return ("bcast", dtype or self.pick(["f4", "f8"]), base, tuple(shape), "normal", self.seed())

    def scalar_param(self, typical):
        if self.p(0.85):
            return typical
        return self.pick([0.0, -1.0, float("nan"), float("inf"), 1e300, -0.0, None, "0.1", 10**400, True,
                          np.float32(0.5), 1j])


# ---- per-function argument generators: (args, kwargs) of recipes ---------------------------------

def bshape(*shapes) -> tuple:
    """np.broadcast_shapes for any rank (NumPy's stops at 32)."""
    nd = max(len(s) for s in shapes)
    out = []
    for i in range(nd):
        ns = {s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0} - {1}
        if len(ns) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(ns.pop() if ns else 1)
    return tuple(out)


def _bcast_pair(g: G):
    s = g.shape()
    a = tuple(n if g.p(0.7) else 1 for n in s)
    b = tuple(n if g.p(0.7) else 1 for n in s)
    b = b[g.int(0, len(b)):] if g.p(0.3) else b
    if g.p(0.5):
        a, b = b, a
    return a, b, bshape(a, b)


def gen_elementwise2(g: G, name: str):
    a, b, s = _bcast_pair(g)
    dt = g.float_dtype()
    x1 = g.arr(a, dt) if g.p(0.9) else g.hostile()
    x2 = g.arr(b, dt if g.p(0.7) else g.float_dtype()) if g.p(0.85) else g.pick([("lit", 1.5), ("lit", -0.0), g.hostile()])
    if g.p(0.05):
        h = g.pick(HUGE + HUGE_PAIR)
        x1, x2 = g.huge_arr((h, 1)), g.huge_arr((1, g.pick([1, 2, h]) if h >= 2**40 else g.pick(HUGE_PAIR)))
    kw = {}
    if g.p(0.4):
        kw["out"] = g.out(s, dt)
        if g.p(0.25):
            kw["out"] = ("alias", g.pick([0, 1]), g.pick(["same", "same", "flat", "view"]))
        if g.p(0.1):
            kw["out"] = ("tuple", [kw["out"]])
    return [x1, x2], kw


def gen_relu(g: G):
    s = g.shape()
    dt = g.float_dtype()
    kw = {}
    if g.p(0.4):
        kw["out"] = ("alias", 0, "same") if g.p(0.2) else g.out(s, dt)
    return [g.arr(s, dt) if g.p(0.9) else g.hostile()], kw


def _axis(g: G, nd: int):
    k = g.int(0, 6)
    if k == 0:
        return None
    if k <= 2 and nd:
        return g.int(-nd, nd - 1)
    if k == 3:
        n = g.int(0, max(nd, 1))
        return tuple(int(x) for x in g.r.permutation(max(nd, 1))[:n] - (nd if g.p(0.3) else 0))
    if k == 4:
        return g.pick([nd, -nd - 1, 2**31, -(2**63), (0, 0), [0], 1.0, "0", np.int64(0), (None,), ()])
    return g.int(-nd - 1, nd + 1)


def gen_sum(g: G):
    s = g.shape()
    kw = {}
    if g.p(0.8):
        kw["axis"] = ("lit", _axis(g, len(s)))
    if g.p(0.4):
        kw["keepdims"] = ("lit", g.pick([True, False, None, 1, "yes", np.True_]))
    return [g.arr(s) if g.p(0.9) else g.hostile()], kw


def _reduced_shape(g: G, s):
    t = [n if g.p(0.6) else 1 for n in s]
    t = t[g.int(0, len(t)):] if g.p(0.4) else t
    if g.p(0.15):
        return g.pick([g.mutate_shape(tuple(t)), -1, (-1,), (2**62, 2**62), (1.0,), None, "3", (BIG := 2**31,), [BIG]])
    return tuple(t) if g.p(0.8) else list(t)


def gen_sum_to(g: G):
    s = g.shape()
    return [g.arr(s) if g.p(0.9) else g.hostile(), ("lit", _reduced_shape(g, s))], {}


def gen_add_backward(g: G):
    a, b, s = _bcast_pair(g)
    if g.p(0.1):
        a = g.mutate_shape(a)
    return [g.arr(s) if g.p(0.9) else g.hostile(), ("lit", a), ("lit", b)], {}


def _gemm_shapes(g: G, kind: str):
    """Shapes (a, b) for dot/matmul: a (..., M, K), b (..., K, N) with ranks 0..34, huge K or
    stacks sometimes."""
    K = g.dim()
    M, N = g.dim(), g.dim()
    if g.p(0.05):  # ranks near and past the 32-dimension limit
        ra, rb = g.int(1, 33), g.int(1, 33)
        a = tuple([1] * (ra - 1)) + (K,)
        b = tuple([1] * (rb - 2)) + (K, N) if rb >= 2 else (K,)
        return a, b
    ra, rb = g.pick([0, 1, 2, 2, 2, 3, 4]), g.pick([0, 1, 2, 2, 2, 3, 4])
    stack = g.dims(max(ra, rb) - 2, 64) if max(ra, rb) > 2 else ()

    def mk(r, last2):
        if r == 0:
            return ()
        if r == 1:
            return (last2[1],) if last2 is not None else ()
        st = stack[len(stack) - (r - 2):] if r > 2 else ()
        st = tuple(n if g.p(0.8) else 1 for n in st)
        return st + last2

    a = mk(ra, (M, K))
    b = (K, N) if rb == 2 else ((K,) if rb == 1 else ((mk(rb, (K, N))) if rb > 2 else ()))
    if kind == "dot" and rb > 2:
        b = g.dims(rb - 2, 64) + (K, N)
    if g.p(0.1):
        a = g.mutate_shape(a)
    return a, b


def _huge_gemm(g: G, kind: str):
    h = g.pick(HUGE)
    k = g.int(0, 2)
    if k == 0:  # huge K, small output: the packing buffers
        return g.huge_arr((g.dim() or 4, h)), g.huge_arr((h, g.dim() or 2))
    if k == 1:  # huge output
        return g.huge_arr((h, 3)), g.huge_arr((3, g.pick([1, 2, h] + HUGE_PAIR)))
    return g.huge_arr((h, 1, 1) if kind == "matmul" else (1, h)), g.huge_arr((1, g.pick([1, 4])))


def dot_shape(a, b):
    if len(a) == 0 or len(b) == 0:
        return bshape(a, b)
    if len(b) == 1:
        return a[:-1]
    return a[:-1] + b[:-2] + b[-1:]


def matmul_shape(a, b):
    if len(a) == 0 or len(b) == 0:
        return ()
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    st = bshape(a2[:-2], b2[:-2])
    r = st + (a2[-2], b2[-1])
    if len(a) == 1:
        r = r[:-2] + r[-1:]
    if len(b) == 1:
        r = r[:-1]
    return r


def gen_gemm(g: G, kind: str):
    dt = g.float_dtype()
    if g.p(0.08):
        x, y = _huge_gemm(g, kind)
        return [x, y], {}
    a, b = _gemm_shapes(g, kind)
    x = g.arr(a, dt) if g.p(0.92) else g.hostile()
    y = g.arr(b, dt if g.p(0.8) else g.float_dtype()) if g.p(0.92) else g.hostile()
    kw = {}
    if g.p(0.35):
        try:
            s = dot_shape(a, b) if kind == "dot" else matmul_shape(a, b)
        except ValueError:
            s = g.shape()
        kw["out"] = g.out(s, dt)
        if g.p(0.2):
            kw["out"] = ("alias", g.pick([0, 1]), g.pick(["same", "flat", "view"]))
        if kind == "matmul" and g.p(0.1):
            kw["out"] = ("tuple", [kw["out"]])
    return [x, y], kw


def gen_gemm_backward(g: G, kind: str):
    dt = g.float_dtype()
    a, b = _gemm_shapes(g, kind)
    try:
        s = dot_shape(a, b) if kind == "dot" else matmul_shape(a, b)
    except ValueError:
        s = g.shape()
    if g.p(0.1):
        s = g.mutate_shape(s)
    args = [g.arr(s, dt), g.arr(a, dt), g.arr(b, dt)]
    if g.p(0.15):
        args[g.int(0, 2)] = g.hostile()
    return args, {}


def gen_dense(g: G):
    dt = g.float_dtype()
    M, K, N = g.dim(), g.dim(), g.dim()
    x, W, b = (M, K), (K, N), (N,)
    if g.p(0.1):
        x, W, b = g.mutate_shape(x), g.mutate_shape(W), g.mutate_shape(b)
    args = [g.arr(x, dt), g.arr(W, dt)]
    kw = {}
    if g.p(0.7):
        kw["b"] = g.arr(b, dt) if g.p(0.9) else g.hostile()
    if g.p(0.6):
        kw["activation"] = ("lit", g.pick([None, "relu", "relu", "Relu", "sigmoid", "", 0, "relu\x00"]))
    if g.p(0.3):
        kw["out"] = g.out((M, N), dt)
        if g.p(0.2):
            kw["out"] = ("alias", g.pick([0, 1, "b"]), g.pick(["same", "view"]))
    if g.p(0.1):
        args[g.int(0, 1)] = g.hostile()
    return args, kw


def gen_dense_backward(g: G):
    dt = g.float_dtype()
    M, K, N = g.dim(), g.dim(), g.dim()
    args = [g.arr((M, N), dt), g.arr((M, K), dt), g.arr((K, N), dt)]
    kw = {}
    act = g.pick([None, "relu", "relu", "tanh"]) if g.p(0.7) else None
    if act is not None or g.p(0.2):
        kw["activation"] = ("lit", act)
    if act == "relu" or g.p(0.2):
        kw["y"] = g.arr((M, N), dt) if g.p(0.9) else g.hostile()
    if g.p(0.3):
        kw["need_dx"] = ("lit", g.pick([True, False, np.False_, None, 0, "no"]))
    for name, shape in (("dx", (M, K)), ("dW", (K, N)), ("db", (N,))):
        if g.p(0.25):
            kw[name] = g.out(shape, dt)
    if g.p(0.1):
        o = g.pick(["dx", "dW", "db"])
        kw[o] = ("alias", g.pick([0, 1, 2]), g.pick(["same", "view"]))
    if g.p(0.1):
        args[g.int(0, 2)] = g.hostile()
    if g.p(0.05):
        args = [g.arr(g.mutate_shape((M, N)), dt), g.arr(g.mutate_shape((M, K)), dt), g.arr((K, N), dt)]
    return args, kw


def gen_softmax(g: G, backward: bool):
    dt = g.float_dtype()
    N, C = g.dim(), g.dim()
    logits = g.arr((N, C), dt) if g.p(0.9) else g.hostile()
    if g.p(0.6):
        labels = g.arr((N,), g.pick(["i8", "i8", "i4", "u1", "i2", "u8", "f8"]), g.layout(), "ints")
    elif g.p(0.8):
        labels = g.arr((N, C), dt, g.layout(), g.pick(["normal", "zeros", "ints"]))
    else:
        labels = g.hostile()
    kw = {}
    if g.p(0.3):
        kw["dloss"] = ("lit", g.scalar_param(1.0))
    if g.p(0.4):
        kw["dlogits"] = ("alias", 0, "same") if g.p(0.2) else g.out((N, C), dt)
    if not backward and g.p(0.4):
        kw["probs"] = ("alias", 0, "same") if g.p(0.1) else g.out((N, C), dt)
    return [logits, labels], kw


def gen_optimizer(g: G, name: str):
    dt = g.float_dtype()
    s = g.shape(g.pick([0, 1, 1, 2, 2, 3]))
    n_state = {"sgd_update": 0, "rmsprop_update": 1, "adam_update": 2, "adagrad_update": 1}[name]

    def buf():
        r = g.r.random()
        if r < 0.75:
            return g.arr(s, dt, "c" if g.p(0.6) else g.layout())
        if r < 0.85:
            return g.arr(g.mutate_shape(s), dt)
        if r < 0.9:
            return ("alias", 0, "same")
        return g.hostile()

    args = [g.arr(s, dt, "c" if g.p(0.7) else g.layout()), g.arr(s, dt if g.p(0.9) else g.float_dtype())]
    args += [buf() for _ in range(n_state)]
    kw = {}
    if name == "sgd_update":
        kw["learning_rate"] = ("lit", g.scalar_param(0.01))
        if g.p(0.6):
            kw["momentum"] = ("lit", g.scalar_param(0.9))
            if g.p(0.9):
                kw["velocity"] = buf()
        if g.p(0.3):
            kw["nesterov"] = ("lit", g.pick([True, False, None, 1]))
    elif name == "rmsprop_update":
        for k, v in (("learning_rate", 1e-3), ("rho", 0.9), ("epsilon", 1e-7)):
            if g.p(0.4):
                kw[k] = ("lit", g.scalar_param(v))
        if g.p(0.4):
            kw["momentum"] = ("lit", g.scalar_param(0.5))
            if g.p(0.9):
                kw["momentums"] = buf()
    elif name == "adam_update":
        kw["alpha"] = ("lit", g.scalar_param(1e-3))
        for k, v in (("beta_1", 0.9), ("beta_2", 0.999), ("epsilon", 1e-7)):
            if g.p(0.3):
                kw[k] = ("lit", g.scalar_param(v))
        if g.p(0.3):
            kw["vhat"] = buf()
    else:
        for k, v in (("learning_rate", 1e-3), ("epsilon", 1e-7)):
            if g.p(0.4):
                kw[k] = ("lit", g.scalar_param(v))
    return args, kw


def gen_to_categorical(g: G):
    n = g.dim()
    y = g.arr((n,) if g.p(0.8) else g.shape(), g.pick(["i8", "i4", "u1", "f8", "f4", "?"]), "c", "ints")
    kw = {}
    if g.p(0.7):
        kw["num_classes"] = ("lit", g.pick([None, 1, 3, 12, 0, -1, 2**40, 1.5]))
    return [y if g.p(0.9) else g.hostile()], kw


def gen_set_num_threads(g: G):
    return [("lit", g.pick([1, 2, 3, 0, -1, 2**31, 2**63, -(2**63), 1.5, None, "2", True, np.int64(2)]))], {}


def gen_cuda_binary(g: G):
    a, b, s = _bcast_pair(g)
    dt = g.float_dtype()
    op = g.pick(["add", "subtract", "multiply", "maximum", "maximum", "divide", "", None])
    out = g.out(s if g.p(0.9) else g.mutate_shape(s), dt)
    if g.p(0.1):
        out = ("alias", 2, "same")
    return [("lit", op), out, g.arr(a, dt), g.arr(b, dt if g.p(0.8) else g.float_dtype())], {}


def gen_cuda_gemm(g: G):
    dt = g.float_dtype()
    M, K, N = g.dim(), g.dim(), g.dim()
    sa, sb, sc = (M, K), (K, N), (M, N)
    if g.p(0.15):
        sa, sb, sc = g.mutate_shape(sa), g.mutate_shape(sb), g.mutate_shape(sc)
    bias = g.arr((N,) if g.p(0.85) else g.mutate_shape((N,)), dt) if g.p(0.6) else (None if g.p(0.7) else g.hostile())
    c = g.out(sc, dt)
    if g.p(0.1):
        c = ("alias", 1, "same")
    return [c, g.arr(sa, dt), g.arr(sb, dt), bias, ("lit", g.pick([True, False, True, None, 1, "yes"]))], {}


def gen_gemm_naive(g: G):
    dt = g.float_dtype()
    M, K, N = g.dim(), g.dim(), g.dim()
    a, b = (M, K), (K, N)
    if g.p(0.2):
        a, b = g.mutate_shape(a), g.mutate_shape(b)
    return [g.arr(a, dt), g.arr(b, dt)], {}


def mutate(g: G, args: list, kw: dict, name: str):
    """Generic hostile mutations on top of the function's own generator."""
    if g.p(0.05) and args:
        args[g.int(0, len(args) - 1)] = g.hostile()
    if g.p(0.03):
        kw[g.pick(["bogus", "outt", "axis", "dtype", "where", "casting"])] = ("lit", g.pick([1, None, "x"]))
    if g.p(0.02) and args:
        args.pop()
    if g.p(0.02):
        args.append(g.hostile())
    return args, kw


def generate(seed: int, index: int, isas: list[str], max_threads: int, only: list[str] | None = None) -> dict:
    """The ``index``-th call of the batch ``seed`` (independent of every other call)."""
    for attempt in range(20):
        try:
            return _generate(G(seed, index, attempt), seed, index, isas, max_threads, only)
        except ValueError:  # shapes that cannot be made (the next attempt draws others)
            continue
    raise RuntimeError(f"no call generated for seed {seed} index {index}")


def _generate(g: G, seed: int, index: int, isas: list[str], max_threads: int, only) -> dict:
    fns = only or FUNCTIONS
    w = np.array([WEIGHTS.get(f, 1.0) for f in fns])
    name = fns[int(g.r.choice(len(fns), p=w / w.sum()))]
    if name in ELEMENTWISE2:
        args, kw = gen_elementwise2(g, name)
    elif name in ("dot", "matmul"):
        args, kw = gen_gemm(g, name)
    elif name in ("dot_backward", "matmul_backward"):
        args, kw = gen_gemm_backward(g, name.split("_")[0])
    elif name.startswith("softmax"):
        args, kw = gen_softmax(g, name.endswith("backward"))
    elif name in OPTIMIZERS:
        args, kw = gen_optimizer(g, name)
    else:
        args, kw = {
            "relu": gen_relu, "sum": gen_sum, "sum_to": gen_sum_to, "add_backward": gen_add_backward,
            "dense": gen_dense, "dense_backward": gen_dense_backward, "to_categorical": gen_to_categorical,
            "set_num_threads": gen_set_num_threads, "_cuda_emu_binary": gen_cuda_binary,
            "_cuda_emu_gemm": gen_cuda_gemm, "_gemm_naive": gen_gemm_naive,
        }[name](g)
    args, kw = mutate(g, args, kw, name)
    return {"fn": name, "args": args, "kwargs": kw, "isa": g.pick(isas), "threads": g.int(1, max_threads),
            "stream": g.pick([-1, -1, -1, 0, 4096]), "seed": seed, "index": index}
