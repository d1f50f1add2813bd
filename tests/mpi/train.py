"""Trains a small classifier with ``Sequential.fit`` and saves the final weights: run alone
(``comm=None``) or under ``mpiexec -n K`` (``--mpi``: data-parallel over MPI.COMM_WORLD). Used by
tests/test_mpi.py to compare the two."""

from __future__ import annotations

import argparse
import sys

import numpy as np

import pykernels as pk
from pykernels.layers import Dense


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--mpi", action="store_true")
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--fail-rank", type=int, default=-1, help="this rank raises in its first step")
    p.add_argument("--bad-shape-rank", type=int, default=-1, help="this rank gets data of another width")
    a = p.parse_args()
    comm = None
    if a.mpi:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank = comm.Get_rank() if comm else 0
    rng = np.random.default_rng(7)
    x = rng.standard_normal((a.n, 12)).astype(a.dtype)
    y = (np.abs(x[:, 0] * 3 + x[:, 1]) * 1.3).astype(np.int64) % 4
    if rank == a.bad_shape_rank:
        x = x[:, :11].copy()
    # every rank builds the model with its own seed: fit broadcasts rank 0's weights
    model = pk.Sequential([Dense(32, activation="relu", input_shape=(x.shape[1],)), Dense(4)],
                          seed=rank * 1000 + 1, dtype=a.dtype)
    model.compile(optimizer=a.optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if rank == a.fail_rank:
        def boom(*args, **kw):
            raise RuntimeError(f"rank {rank} failed on purpose")

        model._forward = boom  # type: ignore[method-assign]
    hist = model.fit(x, y, epochs=a.epochs, batch_size=a.batch, verbose=0, comm=comm)
    ev = model.evaluate(x, y, verbose=0, comm=comm)
    pred = model.predict(x, batch_size=37, comm=comm)
    if rank == 0:
        np.savez(a.out, *model.get_weights(), loss=np.array(hist.history["loss"]),
                 acc=np.array(hist.history["accuracy"]), eval=np.array(ev), pred=pred)
    return 0


if __name__ == "__main__":
    sys.exit(main())
