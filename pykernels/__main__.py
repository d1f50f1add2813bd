"""Command line: ``pykernels info`` (also ``python -m pykernels info``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pykernels", description="pykernels command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, compiler, OpenMP, threads and SIMD paths")
    args = parser.parse_args(argv)
    if args.command == "info":
        from ._runtime import show_config

        show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
