"""Compare two sets of runs: the statistics of every metric, learning curves, config diff, notes.

The two sides are a *reference* (A in `heartgrid ab A B`, the `--vs` runs of `heartgrid compare`,
the baseline of `heartgrid regress`) and a *candidate*; every difference and verdict reads
"candidate relative to reference". Runs of the two sides that share a seed are paired
(heartgrid.compare.pairing) and then tested on their per-seed differences.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heartgrid.compare.metric_spec import MetricSpec, unknown_reduction
from heartgrid.compare.pairing import Pairing, PairingMode, pair_for_test
from heartgrid.compare.runs import CompareError, RunSet, common_grid, on_grid
from heartgrid.compare.stats import (
    Alternative,
    MetricTest,
    TestName,
    bootstrap_band,
    compare_samples,
    effect_size_label,
    label_of_test,
)
from heartgrid.config.diff import RUN_IDENTITY_PATHS, diff_configs

# Runs whose last agent steps differ by more than this fraction get a note.
STEP_MISMATCH = 0.01
# Config paths that change what a reward is worth, and the metrics that are rewards or made
# from them: with the first different between the sides, the second measure different things.
REWARD_PATHS = ("game.agent.rewards", "game.agent.reward_caps", "game.agent.stat_rewards",
                "game.agent.stat_reward_caps")
REWARD_PATH_ENDS = (".group_reward_pct", ".failure_penalty")
THREADS_METRIC = "timing/torch_threads"


@dataclass(frozen=True)
class MetricResult:
    spec: MetricSpec
    reference_values: dict[str, float]
    """run label -> value, of the runs in the test (paired: the runs of the pairs)."""
    candidate_values: dict[str, float]
    test: MetricTest
    pairs: list[tuple[int, str, str]] = field(default_factory=list)
    """Paired: (seed, reference run, candidate run) of the pairs in the test, in that order."""


@dataclass(frozen=True)
class CurveBand:
    """One metric's learning curves on a common agent-step grid: mean and pointwise CI per side."""

    metric: str
    steps: np.ndarray
    sides: dict[str, dict[str, np.ndarray]]
    """side label -> {"mean", "low", "high"} arrays over `steps`."""


@dataclass
class Comparison:
    reference_label: str
    candidate_label: str
    reference_runs: list[str]
    candidate_runs: list[str]
    config_diff: list[tuple[str, Any, Any]]
    """(path, reference value, candidate value), run identity paths left out."""
    metrics: dict[str, MetricResult]
    curves: list[CurveBand]
    test: TestName
    """The test asked for (welch, mannwhitney); on paired runs its paired counterpart runs."""
    pairing: Pairing
    alternative: Alternative
    alpha: float
    confidence: float
    notes: list[str] = field(default_factory=list)
    reference_description: str = ""
    """What the reference is (a recipe with overrides, a baseline name); shown with its label."""
    candidate_description: str = ""

    @property
    def test_name(self) -> str:
        """The test that ran: "Welch's t-test", or "paired t-test" on runs paired by seed."""
        return label_of_test(self.test, self.pairing.paired)

    @property
    def effect_size_name(self) -> str:
        return effect_size_label(self.test, self.pairing.paired)


def metric_hint(name: str, logged: set[str]) -> str:
    """Close names for a metric nobody logged (a typo is the usual reason)."""
    close = difflib.get_close_matches(name, sorted(logged), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"the runs log {len(logged)} other metrics"
    prefix = unknown_reduction(name)  # MetricSpec.parse kept it in the name
    if prefix is not None:
        hint += (f" ({prefix!r} is not a reduction, so it was read as part of the name: "
                 "a spec is [final:|late:|auc:]NAME[:higher|:lower])")
    return hint


def side_config_notes(label: str, runs: RunSet) -> list[str]:
    """Notes for runs of one side that are not one config (beyond run identity)."""
    first = runs.runs[0]
    notes = []
    for other in runs.runs[1:]:
        rows = diff_configs(first.config, other.config, ignore=RUN_IDENTITY_PATHS)
        if rows:
            shown = ", ".join(f"{p}: {a!r} vs {b!r}" for p, a, b in rows[:3])
            more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
            notes.append(f"{label} runs {first.label} and {other.label} differ in config: {shown}{more}")
    return notes


def _step_note(reference: RunSet, candidate: RunSet) -> list[str]:
    ends = {**reference.step_range(), **candidate.step_range()}
    if not ends:
        return []
    lasts = [hi for _, hi in ends.values()]
    if max(lasts) - min(lasts) > STEP_MISMATCH * max(lasts):
        return [
            f"runs end at different agent steps ({min(lasts):,.0f} to {max(lasts):,.0f}): "
            "final values and curve averages compare runs of different lengths"
        ]
    return []


def _reward_note(config_diff: list[tuple[str, Any, Any]], specs: list[MetricSpec]) -> list[str]:
    changed = [path for path, _, _ in config_diff
               if path.startswith(REWARD_PATHS) or path.endswith(REWARD_PATH_ENDS)]
    rewards = sorted({spec.name for spec in specs if "reward" in spec.name or spec.name in (
        "experience/returns", "experience/values", "experience/advantages")})
    if not changed or not rewards:
        return []
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return [f"the sides' reward settings differ ({shown}): {', '.join(rewards)} measure a different "
            "quantity on each side; compare the sides on env_agent/heart.get, which does not depend on them"]


def _threads_note(sides: dict[str, RunSet]) -> list[str]:
    """On a CPU the thread count changes float sums; a GPU run's CPU threads only feed it."""
    last = MetricSpec.parse(f"final:{THREADS_METRIC}")

    def counts_of(runs: RunSet) -> list[int]:
        on_cpu = {run.label for run in runs.runs if str(run.config.get("system", {}).get("device")).startswith("cpu")}
        return sorted({int(value) for label, value in runs.values(last).items() if label in on_cpu})

    counts = {label: counts_of(runs) for label, runs in sides.items()}
    if len({n for every in counts.values() for n in every}) < 2:
        return []
    shown = ", ".join(f"{label}: {'/'.join(map(str, every))}" for label, every in counts.items() if every)
    return [f"the runs trained with different torch thread counts ({shown}; {THREADS_METRIC}): the "
            "count changes float sums, so runs of one seed are not the same computation; set "
            "system.torch_threads=N on both sides for exact pairs (where it is unset, each run "
            "chose it from the machine's load, which config.json does not record)"]


def curve_band(metric: str, sides: dict[str, RunSet], confidence: float, seed: int) -> CurveBand | None:
    per_side = {label: list(runs.curve_points(metric).values()) for label, runs in sides.items()}
    every = [c for curves in per_side.values() for c in curves]
    if not every:
        return None
    steps = common_grid(every)
    bands: dict[str, dict[str, np.ndarray]] = {}
    for label, curves in per_side.items():
        if not curves:
            continue
        matrix = on_grid(curves, steps)
        low, high = bootstrap_band(matrix, confidence=confidence, seed=seed)
        bands[label] = {"mean": matrix.mean(axis=0), "low": low, "high": high}
    return CurveBand(metric, steps, bands)


def compare_runs(
    reference: RunSet,
    candidate: RunSet,
    specs: list[MetricSpec],
    *,
    reference_label: str = "A",
    candidate_label: str = "B",
    reference_description: str = "",
    candidate_description: str = "",
    test: TestName = "welch",
    pairing: PairingMode = "auto",
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    logged = set().union(*reference.metric_names().values(), *candidate.metric_names().values())
    for spec in specs:
        if spec.name not in logged:
            raise CompareError(f"no run logged a metric named {spec.name!r}; {metric_hint(spec.name, logged)}")
    notes = side_config_notes(reference_label, reference) + side_config_notes(candidate_label, candidate)
    notes += _step_note(reference, candidate)
    matched = pair_for_test(reference.seeds(), candidate.seeds(), pairing, test=test, alpha=alpha,
                            two_sided=alternative == "two-sided", labels=(reference_label, candidate_label))
    if matched.left_out:
        notes.append(f"run(s) {', '.join(matched.left_out)} have no partner of the same seed on the other side "
                     "and are left out of the paired tests")

    samples: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    metrics_values: dict[str, tuple[dict[str, float], dict[str, float], list[tuple[int, str, str]]]] = {}
    for spec in specs:
        ref, cand = reference.values(spec), candidate.values(spec)
        for label, runs, got in ((reference_label, reference, ref), (candidate_label, candidate, cand)):
            missing = [r for r in runs.labels if r not in got]
            if missing:
                notes.append(f"{spec.name} is not logged by {label} run(s) {', '.join(missing)}")
        pairs: list[tuple[int, str, str]] = []
        if matched.paired:
            # A pair is in the test when both of its runs logged the metric; the values line up
            # pair by pair, in seed order.
            pairs = [(s, r, c) for s, r, c in matched.pairs if r in ref and c in cand]
            ref = {r: ref[r] for _, r, _ in pairs}
            cand = {c: cand[c] for _, _, c in pairs}
        metrics_values[spec.key] = (ref, cand, pairs)
        samples[spec.key] = (np.array(list(ref.values())), np.array(list(cand.values())), spec.higher_is_better)
    tests = compare_samples(
        samples, test=test, paired=matched.paired, alternative=alternative, alpha=alpha, confidence=confidence,
        seed=seed,
    )
    metrics = {}
    for spec in specs:
        ref, cand, pairs = metrics_values[spec.key]
        metrics[spec.key] = MetricResult(spec, ref, cand, tests[spec.key], pairs=pairs)

    sides = {reference_label: reference, candidate_label: candidate}
    curve_metrics = list(dict.fromkeys(spec.name for spec in specs))
    curves = [band for m in curve_metrics if (band := curve_band(m, sides, confidence, seed)) is not None]

    config_diff = diff_configs(reference.runs[0].config, candidate.runs[0].config, ignore=RUN_IDENTITY_PATHS)
    notes += _reward_note(config_diff, specs) + _threads_note(sides)
    return Comparison(
        reference_label=reference_label,
        candidate_label=candidate_label,
        reference_runs=reference.labels,
        candidate_runs=candidate.labels,
        config_diff=config_diff,
        metrics=metrics,
        curves=curves,
        test=test,
        pairing=matched,
        alternative=alternative,
        alpha=alpha,
        confidence=confidence,
        notes=notes,
        reference_description=reference_description,
        candidate_description=candidate_description,
    )
