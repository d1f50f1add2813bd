"""Data-parallel training over MPI (pykernels.distributed, Sequential.fit(comm=...), `pykernels mnist
--distributed`): K ranks under mpiexec on this machine give the weights of a one-process run with the
same global batch, within float32 rounding of the summation order; bad set-ups fail on every rank with a clear error, never a
hang. Needs the `mpi` extra (mpi4py and the mpich wheel); skipped without it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="the mpi extra is not installed (pip install \"pykernels[mpi]\")")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
if MPIEXEC is None:
    pytest.skip("no mpiexec (the mpich wheel of the mpi extra provides one)", allow_module_level=True)

SCRIPT = os.path.join(os.path.dirname(__file__), "mpi", "train.py")
TIMEOUT = 120


def run(args, ranks=None, check=True):
    cmd = [sys.executable, SCRIPT, *args]
    if ranks:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd, "--mpi"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.mark.parametrize("ranks, batch, optimizer, dtype", [
    (2, 64, "adam", "float32"),
    (3, 50, "sgd", "float32"),     # 50 = 16 + 17 + 17: parts of unequal size
    (2, 64, "rmsprop", "float64"),
])
def test_ranks_match_one_process(tmp_path, ranks, batch, optimizer, dtype):
    args = ["--batch", str(batch), "--optimizer", optimizer, "--dtype", dtype]
    run([str(tmp_path / "one.npz"), *args])
    run([str(tmp_path / "many.npz"), *args], ranks=ranks)
    one, many = np.load(tmp_path / "one.npz"), np.load(tmp_path / "many.npz")
    tol = 2e-5 if dtype == "float32" else 1e-12
    for k in one.files:
        # the predictions carry the weights' rounding differences through two layers
        t = tol * 50 if k == "pred" else tol
        np.testing.assert_allclose(many[k], one[k], rtol=t, atol=t, err_msg=k)
    # the metrics are over the global batches: accuracy counts agree exactly
    np.testing.assert_array_equal(many["acc"], one["acc"])


def test_last_batch_smaller_than_the_ranks(tmp_path):
    # 301 samples, batch 100: the last global batch has 1 sample, so 2 of 3 ranks have none
    args = ["--n", "301", "--batch", "100", "--optimizer", "sgd"]
    run([str(tmp_path / "one.npz"), *args])
    run([str(tmp_path / "many.npz"), *args], ranks=3)
    one, many = np.load(tmp_path / "one.npz"), np.load(tmp_path / "many.npz")
    for k in one.files:
        t = 1e-3 if k == "pred" else 2e-5
        np.testing.assert_allclose(many[k], one[k], rtol=t, atol=t, err_msg=k)


def test_ranks_disagreeing_on_shapes_fail_everywhere(tmp_path):
    p = run([str(tmp_path / "x.npz"), "--bad-shape-rank", "1"], ranks=2, check=False)
    assert p.returncode != 0
    assert "ranks disagree on the shapes of x and y" in p.stderr
    assert "rank 0: ((300, 12), (300,)), rank 1: ((300, 11), (300,))" in p.stderr


def test_a_failing_rank_aborts_the_job_instead_of_hanging(tmp_path):
    p = run([str(tmp_path / "x.npz"), "--fail-rank", "1"], ranks=2, check=False)
    assert p.returncode != 0
    assert "rank 1 of 2 failed; aborting the MPI job" in p.stderr
    assert "rank 1 failed on purpose" in p.stderr


def test_world_of_one_is_refused():
    from mpi4py import MPI

    import pykernels as pk
    from pykernels.layers import Dense

    m = pk.Sequential([Dense(2, input_shape=(3,))], seed=0)
    m.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="comm has 1 rank"):
        m.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), verbose=0, comm=MPI.COMM_WORLD)
    with pytest.raises(TypeError, match="mpi4py communicator"):
        m.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), verbose=0, comm=object())


# `pykernels mnist` (pykernels.__main__.main) with its data source replaced by synthetic arrays of
# MNIST's shapes and dtypes, so the CLI runs offline: labels are the brightest of the first ten
# image rows, learnable by the book's model. Every rank builds the same arrays.
CLI = """
import sys

import numpy as np

from pykernels.__main__ import main
from pykernels.datasets import mnist


def synthetic_mnist(*args, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(70000, 28, 28), dtype=np.uint8)
    y = x[:, :10, :].sum(axis=2, dtype=np.int64).argmax(axis=1).astype(np.uint8)
    return (x[:60000], y[:60000]), (x[60000:], y[60000:])


mnist.load_data = synthetic_mnist
sys.exit(main(sys.argv[1:]))
"""


def run_cli(args, ranks=None):
    cmd = [sys.executable, "-c", CLI, "mnist", *args]
    if ranks:
        cmd = [MPIEXEC, "-n", str(ranks), *cmd, "--distributed"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def cli_figures(out):
    """(training loss, training accuracy, test loss, test accuracy) as `pykernels mnist` prints them."""
    train = re.findall(r"- loss: ([\d.]+) - accuracy: ([\d.]+)", out)
    test = re.findall(r"test_acc: ([\d.]+)  test_loss: ([\d.]+)", out)
    assert len(train) == 1 and len(test) == 1, out
    return float(train[0][0]), float(train[0][1]), float(test[0][1]), float(test[0][0])


def test_cli_distributed_matches_one_process():
    # One epoch, global batch 9999: 7 steps, each split 4999 + 5000, the last one 3 + 3. Few steps on
    # purpose: RMSprop and the ReLU kinks amplify float32 rounding over many steps (a NumPy-backend run
    # drifts from a native one as much), and the CLI prints 4 decimals.
    args = ["--epochs", "1", "--batch-size", "9999", "--seed", "0", "--threads", "1"]
    one = run_cli(args)
    many = run_cli(args, ranks=2)
    # both ranks joined the run, and only rank 0 printed: one header, one epoch, one result
    assert many.count("2 MPI ranks (data-parallel)") == 1, many
    assert many.count("Epoch 1/1") == 1, many
    assert many.count("test_acc:") == 1, many
    assert "MPI ranks" not in one
    # losses are over the global batches and the whole test set: equal to the one-process run up to
    # the printed rounding (without the allreduce the test loss moves by ~0.1)
    np.testing.assert_allclose(cli_figures(many), cli_figures(one), rtol=0, atol=3e-4)


def test_cli_distributed_needs_two_ranks():
    p = subprocess.run([sys.executable, "-m", "pykernels", "mnist", "--distributed"], capture_output=True, text=True,
                       timeout=TIMEOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 2
    assert "--distributed needs K >= 2 ranks" in p.stderr
