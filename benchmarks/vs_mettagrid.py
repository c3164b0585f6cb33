"""HeartGrid's engine against the reference C++ engine (mettagrid 0.26.22), side by side (issue #15).

    python benchmarks/vs_mettagrid.py [--runs 3] [--rounds 5] [--seconds 3] [--envs 64]

Each run measures, one after the other on the same machine:

- **reference**: mettagrid's C++ engine in one process on its own arena (`make_arena(24)`: 24
  agents on a 25x25 room inside a 6-cell border, random walls; 500 observation tokens per
  agent), stepped directly with random actions (benchmarks/mettagrid_worker.py);
- **heartgrid**: `heartgrid bench env RECIPE --envs 64 --device cpu` with its default settings
  (arena_basic_easy_shaped: 24 agents per env on 62x62 with mines, generators and altars,
  11x11x21 dense observations).

and prints each side's median agent-steps/s, their ratio per run, and the median ratio against
the issue's target (20x the reference's single-process figure, i.e. 10x the reference on both
cores of a 2-core machine). Runs alternate sides so that a change in the machine's load falls on
both.

mettagrid's dependencies (numpy>=2.3, pydantic, scipy, ...) are not HeartGrid's, so it lives in
its own virtual environment: `.venv-mettagrid/` beside the repository, made on first use from
the package registry (`--mettagrid-python PATH` uses an existing interpreter instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "mettagrid==0.26.22"
TARGET = 20.0


def reference_python(path: str | None) -> str:
    """The interpreter of mettagrid's environment, made (once) if need be."""
    if path is not None:
        return path
    venv = ROOT / ".venv-mettagrid"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv} with {REFERENCE} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", REFERENCE], check=True)
    return str(python)


def last_json(command: list[str]) -> dict:
    out = subprocess.run(command, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": ""}).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="pairs of runs, the sides alternating (median)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per run and side (median)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--envs", type=int, default=64, help="HeartGrid's envs")
    parser.add_argument("--recipe", default="arena_basic_easy_shaped", help="HeartGrid's recipe")
    parser.add_argument("--mettagrid-python", default=None,
                        help="an interpreter with mettagrid installed; none: make .venv-mettagrid/")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    python = reference_python(args.mettagrid_python)
    timing = ["--rounds", str(args.rounds), "--seconds", str(args.seconds)]
    reference = [python, str(ROOT / "benchmarks" / "mettagrid_worker.py"), *timing]
    heartgrid = [sys.executable, "-m", "heartgrid.tools.cli", "bench", "env", args.recipe,
                 "--envs", str(args.envs), "--device", "cpu", *timing, "--json"]

    runs = []
    for run in range(args.runs):
        ref, ours = last_json(reference), last_json(heartgrid)
        ratio = ours["agent_steps_per_s"] / ref["agent_steps_per_s"]
        runs.append({"reference": ref, "heartgrid": ours, "ratio": ratio,
                     "load_average": os.getloadavg()[0]})
        print(f"run {run + 1}/{args.runs}: reference {ref['agent_steps_per_s']:>11,.0f}   "
              f"heartgrid {ours['agent_steps_per_s']:>11,.0f}   ratio {ratio:5.1f}x   "
              f"load {os.getloadavg()[0]:.2f}", flush=True)

    ref_median = statistics.median(r["reference"]["agent_steps_per_s"] for r in runs)
    ours_median = statistics.median(r["heartgrid"]["agent_steps_per_s"] for r in runs)
    ratio = statistics.median(r["ratio"] for r in runs)
    first = runs[0]
    print(f"\n{first['reference']['engine']}, {first['reference']['arena']}, one process: "
          f"median {ref_median:,.0f} agent-steps/s")
    print(f"heartgrid {args.recipe}, {args.envs} envs x {first['heartgrid']['agents_per_env']} agents, "
          f"{first['heartgrid'].get('step', 'tensor')} step, {first['heartgrid']['torch_threads']} engine "
          f"thread(s), {first['heartgrid']['gather_threads']} gather thread(s): median {ours_median:,.0f} "
          f"agent-steps/s")
    print(f"ratio (median of runs): {ratio:.1f}x; target {TARGET:.0f}x "
          f"({TARGET * ref_median:,.0f} agent-steps/s here): "
          f"{'met' if ratio >= TARGET else 'not met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "reference_median": ref_median,
                                               "heartgrid_median": ours_median, "ratio": ratio,
                                               "target": TARGET, "cpus": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
