"""Data-parallel training over MPI (mpi4py): what ``Sequential.fit(..., comm=...)`` runs on.

Every rank holds a replica of the model. Each global batch (the same indices on every rank: the
shuffle is seeded from rank 0) is split into contiguous, nearly equal parts, one per rank; each rank
computes the gradients of its part, the gradients of all parameters are summed with one
``Allreduce`` on a single contiguous buffer per step (weighted so that the sum is the gradient of the
global batch's mean loss), and every rank applies the same fused optimizer update. Initial weights
are broadcast from rank 0, so the replicas stay identical. The result equals a one-process run with
the same global batch within float32 rounding of the summation order.

Run under ``mpiexec -n K python train.py``; install with ``pip install "pykernels[mpi]"`` (mpi4py
and the ``mpich`` wheel). Example::

    from mpi4py import MPI
    history = model.fit(x, y, epochs=5, batch_size=128, comm=MPI.COMM_WORLD)
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

__all__ = ["DataParallel"]


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "comm= needs mpi4py and an MPI library: pip install \"pykernels[mpi]\" "
            "(mpi4py and the mpich wheel), then run under mpiexec -n K") from e
    return MPI


class DataParallel:
    """The collective operations of one data-parallel training run on ``comm``.

    Raises ``ValueError`` for a communicator of one rank (use ``comm=None``) and ``TypeError`` for an
    object that is not an mpi4py communicator, before any work is sent.
    """

    def __init__(self, comm) -> None:
        MPI = _mpi()
        if not isinstance(comm, MPI.Comm):
            raise TypeError(f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD), got {type(comm).__name__}")
        if comm.Get_size() < 2:
            raise ValueError("comm has 1 rank: run under mpiexec -n K with K >= 2, or pass comm=None to train "
                             "in this process alone")
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._buf: np.ndarray | None = None

    # ---- agreement -------------------------------------------------------------------------------

    def check_same(self, what: str, value) -> None:
        """Raises ``ValueError`` on every rank when ``value`` (shapes, sizes: anything comparable)
        differs between ranks, naming the ranks and their values."""
        values = self.comm.allgather(value)
        if any(v != values[0] for v in values[1:]):
            detail = ", ".join(f"rank {r}: {v!r}" for r, v in enumerate(values))
            raise ValueError(f"ranks disagree on {what}: {detail}")

    def bcast(self, value):
        """rank 0's ``value`` on every rank (a Python object: seeds, settings)."""
        return self.comm.bcast(value, root=0)

    def broadcast_arrays(self, arrays: Sequence[np.ndarray]) -> None:
        """Overwrites every rank's arrays with rank 0's, in place (the initial weights)."""
        for a in arrays:
            if not a.flags.c_contiguous:
                raise ValueError("broadcast_arrays: arrays must be C-contiguous")
            self.comm.Bcast(a, root=0)

    # ---- the split of a global batch --------------------------------------------------------------

    def part(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` items: ``n * r // K`` to ``n * (r + 1) // K``."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    # ---- reductions -------------------------------------------------------------------------------

    def allreduce_grads(self, grads: Sequence[np.ndarray], weight: float) -> None:
        """``grads[i] <- sum over ranks of weight_r * grads[i]``, in place, with one ``Allreduce`` on
        one contiguous buffer (float64 accumulation is not used: the buffer has the gradients'
        dtype, as a one-process run sums in it too). ``weight`` is this rank's share of the global
        batch (local size / global size), so the sum is the gradient of the global mean loss."""
        if not grads:
            return
        dt = grads[0].dtype
        total = sum(g.size for g in grads)
        if self._buf is None or self._buf.size != total or self._buf.dtype != dt:
            self._buf = np.empty(total, dt)
        buf = self._buf
        off = 0
        for g in grads:
            seg = buf[off:off + g.size]
            np.multiply(g.reshape(-1), dt.type(weight), out=seg)
            off += g.size
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        off = 0
        for g in grads:
            g.reshape(-1)[...] = buf[off:off + g.size]
            off += g.size

    def sum(self, values: Sequence[float]) -> np.ndarray:
        """Element-wise sum over ranks of a few float64 values (losses, counts)."""
        a = np.asarray(values, dtype=np.float64)
        out = np.empty_like(a)
        self.comm.Allreduce(a, out, op=self.MPI.SUM)
        return out

    def allgather_rows(self, a: np.ndarray) -> None:
        """Fills every rank's ``a`` (C-contiguous, rows split as :meth:`part` splits them) with the
        rows every rank computed for its part, in place."""
        n, row = len(a), int(np.prod(a.shape[1:], dtype=np.int64))
        counts = [(n * (r + 1) // self.size - n * r // self.size) * row for r in range(self.size)]
        displs = [n * r // self.size * row for r in range(self.size)]
        flat = a.reshape(-1)
        mine = flat[displs[self.rank]:displs[self.rank] + counts[self.rank]].copy()
        self.comm.Allgatherv(mine, [flat, counts, displs, self.MPI._typedict[a.dtype.char]])

    # ---- failure --------------------------------------------------------------------------------

    @contextmanager
    def abort_on_error(self):
        """A rank that raises prints its error and aborts the whole job (``MPI_Abort``) instead of
        leaving the other ranks waiting in a collective forever. Errors that every rank raises
        together (the argument checks before training) are raised normally instead: they happen
        before this context is entered."""
        try:
            yield
        except BaseException as e:
            if getattr(e, "pk_collective", False):  # raised on every rank alike (a NaN global loss)
                raise
            sys.stderr.write(f"pykernels: rank {self.rank} of {self.size} failed; aborting the MPI job\n")
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            self.comm.Abort(1)
            raise  # pragma: no cover - Abort does not return
