"""Command line: ``pykernels info`` and ``pykernels mnist`` (also ``python -m pykernels ...``)."""

from __future__ import annotations

import argparse
import sys
import time


def plot_history(hist, path: str, title: str = "") -> str:
    """Draw a ``History`` (what ``Sequential.fit`` returns) to ``path`` (PNG): the loss per epoch
    and, beside it, every metric (accuracy) per epoch, validation curves dashed. Needs matplotlib
    (the ``plot`` extra), like ``Trainer.plot``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'pykernels[plot]' (or pip install matplotlib)") from None
    h = hist.history
    epochs = [e + 1 for e in hist.epoch]
    metrics = [k for k in h if not k.startswith("val_") and k != "loss"]
    fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(11 if metrics else 6, 4.5), squeeze=False)
    for ax, keys, ylabel in ((axes[0][0], ["loss"], "loss"), *(((axes[0][1], metrics, "metric"),) if metrics else ())):
        for k in keys:
            for name, ls in ((k, "-"), (f"val_{k}", "--")):
                if name in h and h[name]:
                    ax.plot(epochs[: len(h[name])], h[name], ls, marker="o", label=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel if len(keys) != 1 else keys[0])
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _mnist(args: argparse.Namespace) -> int:
    import numpy as np

    from . import _core
    from .datasets import mnist
    from .layers import Dense
    from .models import Sequential

    if args.threads is not None:
        if args.threads < 1:
            print("pykernels mnist: --threads must be >= 1", file=sys.stderr)
            return 2
        _core.set_num_threads(args.threads)
        try:  # the numpy backend's GEMM runs on the BLAS under NumPy: give it the same threads
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        except ImportError:
            pass
    comm, rank, out = None, 0, sys.stdout
    if args.distributed:
        try:
            from mpi4py import MPI
        except ImportError:
            print('pykernels mnist: --distributed needs mpi4py and an MPI: pip install "pykernels[mpi]", then run '
                  "mpiexec -n K pykernels mnist --distributed", file=sys.stderr)
            return 2
        comm, rank = MPI.COMM_WORLD, MPI.COMM_WORLD.Get_rank()
        if comm.Get_size() < 2:
            print("pykernels mnist: --distributed needs K >= 2 ranks: mpiexec -n K pykernels mnist --distributed",
                  file=sys.stderr)
            return 2
        if args.plot:
            print("pykernels mnist: --plot is not available with --distributed", file=sys.stderr)
            return 2
        if rank != 0:  # one rank speaks
            import io

            out = io.StringIO()
    try:
        if rank == 0:
            (x_train, y_train), (x_test, y_test) = mnist.load_data()  # downloads once, if needed
        if comm is not None:
            comm.Barrier()
            if rank != 0:
                (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except mnist.MnistUnavailable as e:
        print(f"pykernels mnist: {e}", file=sys.stderr)
        if comm is not None:
            comm.Abort(1)
        return 1
    # The book's preprocessing: flatten to 784 and scale to [0, 1] (float32).
    # (in place, so no second float32 copy of the training set is ever alive: the same values)
    x_train = x_train.reshape((-1, 28 * 28)).astype("float32")
    x_train /= 255
    x_test = x_test.reshape((-1, 28 * 28)).astype("float32")
    x_test /= 255

    model = Sequential([Dense(512, activation="relu"), Dense(10, activation="softmax")],
                       backend=args.backend, seed=args.seed)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ranks = f", {comm.Get_size()} MPI ranks (data-parallel)" if comm is not None else ""
    print(f"pykernels {args.backend} backend, {_core.get_num_threads()} thread(s){ranks}, dense/GEMM: "
          f"{'NumPy' if args.backend == 'numpy' else 'C++'}", file=out)
    t0 = time.perf_counter()
    if comm is not None:
        hist = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=1, comm=comm)
    else:
        hist = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=1,
                         validation_data=(x_test, y_test) if args.plot else None)
    total = time.perf_counter() - t0
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=1024, comm=comm)
    times = hist.epoch_times
    print(f"test_acc: {test_acc:.4f}  test_loss: {test_loss:.4f}", file=out)
    if times:
        print(f"time per epoch: {float(np.median(times)):.3f} s (median of {len(times)}; "
              f"epochs: {', '.join(f'{t:.3f}' for t in times)}); total fit {total:.2f} s", file=out)
    if args.plot:
        if not hist.epoch:
            print("pykernels mnist: nothing to plot (no epoch ran)", file=sys.stderr)
        else:
            try:
                plot_history(hist, args.plot, f"MNIST, Dense 512 relu + Dense 10, {args.backend} backend")
            except ImportError as e:
                print(f"pykernels mnist: {e}", file=sys.stderr)
                return 1
            print(f"plot: {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pykernels", description="pykernels command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, compiler, OpenMP, threads and SIMD paths")
    p = sub.add_parser("mnist", help="train the book's MNIST model (Dense 512 relu, Dense 10 softmax, rmsprop)")
    p.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all, or OMP_NUM_THREADS)")
    p.add_argument("--backend", choices=("native", "numpy"), default="native",
                   help="native = C++ kernels, numpy = the NumPy reference (default native)")
    p.add_argument("--seed", type=int, default=None, help="seed for initialisation and shuffling")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: run as mpiexec -n K pykernels mnist --distributed (needs the mpi extra)")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="draw loss and accuracy per epoch (training and test set) to this PNG (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.command == "info":
        from ._runtime import show_config

        show_config()
        return 0
    if args.command == "mnist":
        if args.epochs < 0 or args.batch_size <= 0:
            parser.error("--epochs must be >= 0 and --batch-size > 0")
        return _mnist(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
