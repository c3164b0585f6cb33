"""How much more a paired test detects than an unpaired one, on real training runs (issue #13).

Trains the unchanged recipe and each planted behaviour change of
tests/compare/test_compare_planted.py (and, with --changes all, three of the trainer's
behaviour switches) with the SAME seeds 0..N-1, through the real CLI, then compares every change
with the unchanged runs twice on the same runs: paired by seed (paired t-test on the per-seed
differences) and unpaired (Welch's t-test). Training is deterministic given the seed (maps,
action priorities, initial weights, action sampling and minibatch order all follow
system.seed), so the pairs share their seed's luck as long as the change leaves the random
streams and the early trajectory alike; the rho column shows how far they do.

An A/A row trains the unchanged recipe on seeds N..2N-1 and compares it unpaired with seeds
0..N-1: the seed noise an unpaired comparison has to overcome (Hedges' g of unchanged code).

    .venv/bin/python benchmarks/paired_sensitivity.py --seeds 4 --steps 65536 --jobs 2

Prints, per change and metric: the mean difference, p paired and unpaired (two-sided, per
metric, and Holm-adjusted over the metrics as `ab` reports it), the smallest difference each
design detects with power 0.8 at alpha / metrics (in the metric's units and standardised: d_z
for paired, d for unpaired) and the correlation of the two sides across seeds (what pairing
exploits: the SD of a difference is sqrt(s_r^2 + s_c^2 - 2 rho s_r s_c)). The same numbers go
to OUT/results.json. A rerun with the same --out reuses the finished runs. docs/compare.md
("Paired against unpaired on real runs") holds a measured table and what it shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from heartgrid.compare import ab
from heartgrid.compare.comparison import compare_runs
from heartgrid.compare.metric_spec import parse_metrics
from heartgrid.compare.report import fmt, fmt_p
from heartgrid.compare.runs import RunSet
from heartgrid.recipes.arena import SHAPED_REWARDS

RECIPE = "small_easy_shaped"
# The planted behaviour changes of tests/compare/test_compare_planted.py.
PLANTED: dict[str, list[str]] = {
    "shaped_zero": [f"game.agent.rewards.{item}=0" for item in SHAPED_REWARDS if item != "heart"],
    "altar_3": ["game.objects.altar.input_resources.battery_red=3"],
    "move_8way": ["game.actions.move_8way.enabled=true"],
}
# Behaviour switches the reference investigation found sensitive (README, "Configuration").
SWITCHES: dict[str, list[str]] = {
    "value_refreshed": ["trainer.value_target=refreshed"],
    "adv_norm_off": ["trainer.advantage_norm=off"],
    "lstm_reset": ["trainer.recurrent_state=reset"],
}
METRICS = ("auc:overview/reward", "late:env_agent/heart.get", "auc:env_agent/ore_red.gained",
           "auc:env_agent/battery_red.gained")
AA = "unchanged_other_seeds"


def machine() -> str:
    model = "?"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}: {os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def train(out: Path, sides: dict[str, tuple[list[str], list[int]]], steps: int, jobs: int) -> dict[str, list[Path]]:
    common = ["logging.console=none", "logging.tensorboard=false", f"trainer.total_timesteps={steps}",
              "system.device=cpu", "system.torch_threads=1"]
    planned, runs = [], {}
    for name, (overrides, seeds) in sides.items():
        side = ab.Side(name, RECIPE, RECIPE, overrides)
        runs[name] = []
        for seed in seeds:
            run = f"{name}-{seed}"
            argv = [sys.executable, "-m", "heartgrid.tools.cli", "train", RECIPE, *overrides, *common,
                    f"run={run}", f"data_dir={out / 'runs'}", f"system.seed={seed}"]
            planned.append(ab.TrainJob(side, seed, run, argv, out / "logs" / f"{run}.log", out / "runs" / run, steps))
            runs[name].append(out / "runs" / run)
    todo = [job for job in planned if not job.finished()]  # a rerun with the same --out reuses runs
    started = time.monotonic()
    done = 0

    def progress(job: ab.TrainJob, seconds: float) -> None:
        nonlocal done
        done += 1
        print(f"  [{done}/{len(todo)}] {job.run} in {seconds:.1f}s", flush=True)

    print(f"training {len(todo)} of {len(planned)} runs ({steps:,} agent steps each, {jobs} at a time)", flush=True)
    ab.run_jobs(todo, parallel=jobs, on_done=progress)
    print(f"training took {time.monotonic() - started:.0f}s\n", flush=True)
    return runs


def correlation(reference: dict[str, float], candidate: dict[str, float], pairs: list[tuple[int, str, str]]) -> float:
    r = np.array([reference[a] for _, a, _ in pairs])
    c = np.array([candidate[b] for _, _, b in pairs])
    if len(pairs) < 3 or r.std() == 0 or c.std() == 0:
        return float("nan")
    return float(np.corrcoef(r, c)[0, 1])


def p_text(test) -> str:
    return f"{fmt_p(test.p_value)} ({fmt_p(test.p_adjusted)})"


def mde_text(test) -> str:
    e = test.detectable
    if e is None:
        return "n/a"
    if e.spread == 0.0:
        return "n/a (SD 0)"
    return f"{fmt(e.difference)} ({e.effect_name} {e.standardised:.2g})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=65_536)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--changes", choices=("planted", "all"), default="planted")
    p.add_argument("--metric", action="append", help=f"metric specs (default: {', '.join(METRICS)})")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--out", default=f"runs/paired-sensitivity-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    args = p.parse_args(argv)

    out = Path(args.out)
    seeds = list(range(args.seeds))
    changes = dict(PLANTED) | (dict(SWITCHES) if args.changes == "all" else {})
    sides = {"baseline": ([], seeds), **{name: (o, seeds) for name, o in changes.items()},
             AA: ([], list(range(args.seeds, 2 * args.seeds)))}
    print(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}  {machine()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"recipe {RECIPE}, {args.seeds} seeds x {args.steps:,} agent steps per side, {args.jobs} jobs, "
          "1 torch thread each\n")
    runs = train(out, sides, args.steps, args.jobs)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

    specs = parse_metrics(args.metric or METRICS)
    baseline = RunSet.load(runs["baseline"])
    header = ["change", "metric", "B-A", "p paired", "p unpaired", "MDE paired", "MDE unpaired", "rho", "g"]
    rows: list[list[str]] = [header]
    results = []
    for name in [*changes, AA]:
        candidate = RunSet.load(runs[name])
        compared = {
            pairing: compare_runs(baseline, candidate, specs, test="welch", pairing=pairing, alpha=args.alpha,
                                  reference_label="A", candidate_label="B")
            for pairing in (("paired", "unpaired") if name != AA else ("unpaired",))
        }
        for spec in specs:
            unpaired = compared["unpaired"].metrics[spec.key]
            paired = compared.get("paired")
            pt = paired.metrics[spec.key] if paired else None
            rows.append([
                name, spec.label, fmt(unpaired.test.difference),
                p_text(pt.test) if pt else "-", p_text(unpaired.test),
                mde_text(pt.test) if pt else "-", mde_text(unpaired.test),
                f"{correlation(pt.reference_values, pt.candidate_values, pt.pairs):.2f}" if pt else "-",
                fmt(unpaired.test.hedges_g),
            ])
            results.append({
                "change": name, "metric": spec.key, "difference": unpaired.test.difference,
                "p_paired": pt.test.p_value if pt else None, "p_unpaired": unpaired.test.p_value,
                "p_holm_paired": pt.test.p_adjusted if pt else None, "p_holm_unpaired": unpaired.test.p_adjusted,
                "mde_paired": pt.test.detectable.difference if pt else None,
                "mde_paired_dz": pt.test.detectable.standardised if pt else None,
                "mde_unpaired": unpaired.test.detectable.difference,
                "mde_unpaired_d": unpaired.test.detectable.standardised,
                "hedges_g": unpaired.test.hedges_g,
                "reference": unpaired.reference_values, "candidate": unpaired.candidate_values,
            })
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print("\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows))
    print(f"\np: two-sided, per metric, and in parentheses Holm-adjusted over the {len(specs)} metrics as "
          f"`ab` reports it; paired: paired t-test on the per-seed differences, "
          f"unpaired: Welch's t-test, on the same runs. MDE: the smallest difference detected with power 0.8 at "
          f"alpha {args.alpha} / {len(specs)} metrics, in the metric's units (d_z: in SDs of the per-seed "
          f"differences; d: in pooled SDs). rho: correlation of A and B across seeds. g: Hedges' g. "
          f"{AA}: the unchanged recipe on seeds {args.seeds}-{2 * args.seeds - 1} vs seeds 0-{args.seeds - 1}.")
    (out / "results.json").write_text(json.dumps({"seeds": args.seeds, "steps": args.steps, "machine": machine(),
                                                  "rows": results}, indent=2) + "\n")
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
