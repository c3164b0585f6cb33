"""A local store of baselines: named sets of runs that later runs are checked against.

A baseline is a directory `<store>/<name>/` holding
- `baseline.json`: `format` (FORMAT), name, creation time, the source runs (label, path, seed,
  last agent step), the guarded metric specs with their statistics, the set of metric names
  every run logged, every run's final value of every metric, and optionally `scores`: the runs'
  eval-suite scores, `{"higher_is_better": bool, "values": {simulation: {seed: score}}}` with
  the seeds of the baseline's runs (heartgrid.compare.scores);
- `config.json` (as in a run directory): the resolved config the runs share (they must agree
  beyond run identity);
- `curves.parquet`: all metric points of all runs (run, step, metric, value), so that any
  metric can be reduced and tested later exactly as for fresh runs.
The runs' seeds let `regress` pair new runs of the same seeds with them (heartgrid.compare.pairing).
Baselines written before `format` existed (format 1) hold the same fields without `scores`.
The store is `--store DIR`, else `$HEARTGRID_BASELINES`, else `~/.heartgrid/baselines`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from heartgrid.checkpoint.durable import replace_directory
from heartgrid.compare.comparison import side_config_notes
from heartgrid.compare.metric_spec import MetricSpec
from heartgrid.compare.runs import CompareError, Run, RunSet
from heartgrid.compare.scores import ScoreTable, check_score_table, score_table_from_json, score_table_to_json
from heartgrid.compare.stats import summarize
from heartgrid.rundir import CONFIG_FILE

STORE_ENV = "HEARTGRID_BASELINES"
FORMAT = 2
MIN_BASELINE_RUNS = 2
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*")


def store_dir(store: str | Path | None = None) -> Path:
    if store:
        return Path(store)
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV])
    return Path.home() / ".heartgrid" / "baselines"


@dataclass(frozen=True)
class Baseline:
    name: str
    path: Path
    info: dict[str, Any]
    """The contents of baseline.json."""
    config: dict[str, Any]

    @property
    def guarded(self) -> list[MetricSpec]:
        return [MetricSpec.parse(key) for key in self.info["guarded_metrics"]]

    @property
    def metric_names(self) -> list[str]:
        return self.info["metric_names"]

    @property
    def scores(self) -> dict[tuple[str, int], float] | None:
        """The runs' eval-suite scores {(simulation, seed): score}, if the baseline has them."""
        scores = self.info.get("scores")
        return score_table_from_json(scores["values"]) if scores else None

    @property
    def scores_source(self) -> dict[str, Any] | None:
        """Where the scores came from: {"suite", "episodes", "simulations": {key: config hash}}."""
        return self.info.get("scores", {}).get("source")

    @property
    def scores_higher_is_better(self) -> bool:
        return bool(self.info.get("scores", {}).get("higher_is_better", True))

    def runset(self) -> RunSet:
        # The runs share config.json beyond run identity; each keeps its own seed, the key
        # that pairs it with a new run.
        runs = [Run(r["label"], r["path"], _with_seed(self.config, r.get("seed"))) for r in self.info["runs"]]
        try:
            return RunSet.from_parquet(self.path / "curves.parquet", runs)
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0]
            raise CompareError(f"baseline {self.name!r} is damaged: cannot read {self.path / 'curves.parquet'} "
                               f"({first}); {_RESAVE}") from None


def _with_seed(config: dict[str, Any], seed: Any) -> dict[str, Any]:
    return {**config, "system": {**config.get("system", {}), "seed": seed}}


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise CompareError(f"baseline name {name!r} must be letters, digits, '.', '_' or '-'")


def save_baseline(
    name: str, run_dirs: list[str | Path], specs: list[MetricSpec], *, store: str | Path | None = None,
    force: bool = False, scores: ScoreTable | None = None, scores_higher_is_better: bool = True,
    scores_source: dict[str, Any] | None = None,
) -> Baseline:
    """Store runs as baseline `name`; `scores` are their eval-suite scores by (simulation, seed),
    and `scores_source` says where they came from (suite, episodes, each simulation's config
    hash), so that new runs can be scored on the same maps."""
    _check_name(name)
    target = store_dir(store) / name
    if target.exists() and not force:
        raise CompareError(f"baseline {name!r} already exists in {target.parent}; pass --force to replace it")
    runs = RunSet.load(run_dirs)
    if len(runs.runs) < MIN_BASELINE_RUNS:
        raise CompareError(
            f"a baseline needs at least {MIN_BASELINE_RUNS} runs (seeds) for its statistics; got {len(runs.runs)}"
        )
    # A baseline stands for one config; runs that differ beyond identity would make the config
    # check of `regress` meaningless.
    differences = side_config_notes("baseline", runs)
    if differences:
        raise CompareError("the runs of a baseline must share one config:\n  " + "\n  ".join(differences))

    names = runs.metric_names()
    # Only metrics every run logged: a per-task metric that some seeds never produced is not
    # a metric the baseline "had".
    common = sorted(set.intersection(*names.values()))
    statistics: dict[str, Any] = {}
    for spec in specs:
        values = runs.values(spec)
        missing = [r for r in runs.labels if r not in values]
        if missing:
            raise CompareError(
                f"guarded metric {spec.name!r} is not logged by run(s) {', '.join(missing)}; "
                "choose the guarded metrics with --metric"
            )
        s = summarize(np.array(list(values.values())))
        statistics[spec.key] = {
            "n": s.n, "mean": s.mean, "std": s.std, "ci": [s.ci_low, s.ci_high], "values": values
        }

    if scores is not None:
        check_score_table(scores, f"baseline {name!r} scores")
        seeds = {r.seed for r in runs.runs}
        strangers = sorted({seed for _, seed in scores if seed not in seeds})
        if strangers:
            raise CompareError(f"the scores name seed(s) {strangers} that no run of the baseline has")

    ranges = runs.step_range()
    info: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [
            {
                "label": r.label,
                "path": r.path,
                "seed": r.seed,
                "last_agent_step": ranges.get(r.label, (None, None))[1],
            }
            for r in runs.runs
        ],
        "guarded_metrics": [spec.key for spec in specs],
        "statistics": statistics,
        "metric_names": common,
        "final": runs.final_values(),
    }
    if scores is not None:
        info["scores"] = {"higher_is_better": scores_higher_is_better, "values": score_table_to_json(scores)}
        if scores_source is not None:
            info["scores"]["source"] = scores_source
    # Write next to the target and rename, so a failure never leaves half a baseline and a
    # replaced one (--force) stays on disk until the new one is in place.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        (staging / CONFIG_FILE).write_text(json.dumps(runs.runs[0].config, indent=2, sort_keys=True) + "\n")
        (staging / "baseline.json").write_text(json.dumps(info, indent=2) + "\n")
        runs.to_parquet(staging / "curves.parquet")
        replace_directory(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return load_baseline(name, store=store)


def load_baseline(name: str, *, store: str | Path | None = None) -> Baseline:
    _check_name(name)
    root = store_dir(store)
    path = root / name
    if not (path / "baseline.json").is_file():
        known = ", ".join(b.name for b in list_baselines(store)[0]) or "none"
        raise CompareError(
            f"no baseline {name!r} in {root} (baselines there: {known}); "
            "create one with `heartgrid baseline save NAME RUN_DIR ...`"
        )
    info = _read_object(path / "baseline.json")
    missing = [key for key, kind in _REQUIRED.items() if not isinstance(info.get(key), kind)]
    if not missing:  # and what each run and each guarded metric's statistics must hold
        if not all(isinstance(r, dict) and isinstance(r.get("label"), str) and "path" in r for r in info["runs"]):
            missing.append("a label and path for every run")
        if not all(isinstance(s, dict) and {"mean", "ci", "n"} <= s.keys() for s in info["statistics"].values()):
            missing.append("mean, ci and n in every metric's statistics")
    if missing:
        raise CompareError(f"baseline {name!r} is damaged: {path / 'baseline.json'} lacks "
                           f"{', '.join(missing)} (or holds the wrong type); {_RESAVE}")
    config = _read_object(path / CONFIG_FILE)
    return Baseline(name=name, path=path, info=info, config=config)


# What describe, regress and runset read from baseline.json, with the JSON type each must have.
_REQUIRED = {"created": str, "runs": list, "guarded_metrics": list, "metric_names": list, "statistics": dict}
_RESAVE = "save it again with `heartgrid baseline save NAME RUN_DIR ...`"


def _read_object(file: Path) -> dict[str, Any]:
    """A baseline's JSON file as an object; CompareError (exit 2, never exit 1's "regression")
    when it is missing, unreadable or not a JSON object."""
    try:
        body = json.loads(file.read_text())
    except OSError as e:
        raise CompareError(f"baseline {file.parent.name!r} is damaged: cannot read {file}: "
                           f"{e.strerror or e}; {_RESAVE}") from None
    except ValueError as e:
        raise CompareError(f"baseline {file.parent.name!r} is damaged: {file} is not JSON ({e}); {_RESAVE}") from None
    if not isinstance(body, dict):
        raise CompareError(f"baseline {file.parent.name!r} is damaged: {file} is not a JSON object; {_RESAVE}")
    return body


def list_baselines(store: str | Path | None = None) -> tuple[list[Baseline], list[str]]:
    """The store's baselines, and one line for each that could not be read (a damaged one
    does not hide the others)."""
    root = store_dir(store)
    if not root.is_dir():
        return [], []
    baselines, damaged = [], []
    for p in sorted(root.iterdir()):
        if p.is_dir() and _NAME.fullmatch(p.name) and (p / "baseline.json").is_file():
            try:
                baselines.append(load_baseline(p.name, store=root))
            except CompareError as e:
                damaged.append(str(e))
    return baselines, damaged


def describe(baseline: Baseline) -> str:
    """A readable summary for `heartgrid baseline show`."""
    info = baseline.info
    trainer = baseline.config.get("trainer", {})
    lines = [
        f"baseline {baseline.name} ({baseline.path})",
        f"  created:   {info['created']}",
        f"  recipe:    {baseline.config.get('recipe', '?')}  "
        f"total_timesteps={trainer.get('total_timesteps', '?')}",
        "  runs:      " + ", ".join(f"{r['label']} (seed {r['seed']})" for r in info["runs"]),
        f"  metrics:   {len(info['metric_names'])} logged by every run",
    ]
    if baseline.scores:
        simulations = sorted({s for s, _ in baseline.scores})
        lines.append(f"  scores:    {len(simulations)} eval simulation(s) x {len({s for _, s in baseline.scores})} "
                     f"seed(s): {', '.join(simulations)}")
    lines.append("  guarded:")
    for key, s in info["statistics"].items():
        spec = MetricSpec.parse(key)
        better = "higher" if spec.higher_is_better else "lower"
        lines.append(
            f"    {spec.label} ({better} is better): mean {s['mean']:.4g} "
            f"[{s['ci'][0]:.4g}, {s['ci'][1]:.4g}] over {s['n']} runs"
        )
    return "\n".join(lines)
