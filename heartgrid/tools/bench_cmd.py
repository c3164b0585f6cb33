"""`heartgrid bench env|train RECIPE ...`: throughput benchmarks that print their figures."""

from __future__ import annotations

import argparse
import importlib

BENCHES = {
    "env": ("heartgrid.tools.bench_env", "engine alone: agent-steps/s with random valid actions"),
    "train": ("heartgrid.tools.bench_train", "end to end training: agent-steps/s and time shares"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: `bench env` (engine) and `bench train` (trainer)")
    kinds = p.add_subparsers(dest="bench", metavar="KIND")
    kinds.required = True
    for kind, (module, help_text) in BENCHES.items():
        k = kinds.add_parser(kind, help=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(k)
        k.set_defaults(func=mod.run)
