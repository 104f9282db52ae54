"""The ``flopmetrics`` command: ``env``, ``measure``, ``estimate``, ``audit``, ``flops``.

Each subcommand is a module of this package with ``add(subparsers)`` and ``run(args) -> int``;
the heavy imports (torch, pandas) happen inside ``run``, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from . import audit, env, estimate, flops, measure

COMMANDS = (env, measure, estimate, audit, flops)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flopmetrics",
        description="FLOPs, Joules and CO2e of ML work, measured honestly. "
        "The pipeline: `snakemake -c all`.",
        epilog="Run `flopmetrics COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"flopmetrics {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return p


def version() -> str:
    """The installed package's version (a source tree not installed: "unknown")."""
    try:
        return metadata.version("flopmetrics")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, OSError, RuntimeError) as err:  # a clear line, not a traceback
        print(f"flopmetrics {args.command}: error: {err}", file=sys.stderr)
        return 2
