"""`heartgrid sweep show NAME`: the trials, the best config as a train command, the importances.

The table has one row per trial: its number, state, score (the objective; in brackets, for a
pruned or running trial, the last value it reported), cost (with --cost), parameters and run
directory. States besides
Optuna's own: `cut off -> tNNN` (a trial whose worker was stopped or killed, resumed as tNNN),
`surplus` (asked after the budget was taken, never trained).

The best config is the best COMPLETE trial's: for a sweep with a cost, the Pareto front (no
trial both scores better and costs less) is listed and the command is that of its best score.
Importances are Optuna's PED-ANOVA (fANOVA, Optuna's default, needs scikit-learn, which
HeartGrid does not install) over the completed trials' first objective.
"""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartgrid.sweep.spec import SweepSpec

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial
    from rich.table import Table


def first_value(trial: FrozenTrial) -> float:
    return trial.values[0]  # type: ignore[index]


def score_target(study: optuna.Study) -> Callable[[FrozenTrial], float] | None:
    """Optuna's `target` for functions that need one objective: the score of a 2-objective study."""
    return first_value if len(study.directions) > 1 else None


def importance_target(study: optuna.Study) -> Callable[[FrozenTrial], float]:
    """PED-ANOVA's target: it ranks trials by a target as a loss (lower is better), whatever
    the study's direction, so a maximised score is negated."""
    sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
    return lambda trial: sign * first_value(trial)


@contextmanager
def optuna_notes_off() -> Iterator[None]:
    """Without the warnings that are noise here: that the plots and PED-ANOVA are experimental,
    and that PED-ANOVA reads its target as a loss (importance_target is one)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message=".*computes the importances of params to achieve low")
        yield


def importance_evaluator() -> Any:
    import optuna

    return optuna.importance.PedAnovaImportanceEvaluator()


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best complete trial, or the Pareto front by score (best first); [] before any."""
    from optuna.trial import TrialState

    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return []
    if len(study.directions) == 1:
        return [study.best_trial]
    sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
    return sorted(study.best_trials, key=lambda t: sign * first_value(t))


def fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def count_label(trial: FrozenTrial) -> str:
    if trial.user_attrs.get("superseded"):
        return "cut off (resumed)"
    if trial.user_attrs.get("surplus"):
        return "surplus"
    return {"fail": "failed", "waiting": "waiting to resume"}.get(trial.state.name.lower(), trial.state.name.lower())


def state_label(trial: FrozenTrial, resumed_by: dict[int, int]) -> str:
    attrs = trial.user_attrs
    if trial.number in resumed_by:
        return f"cut off -> t{resumed_by[trial.number]:03d}"
    if attrs.get("surplus"):
        return "surplus"
    label = count_label(trial)
    if label == "running" and "worker" in attrs:
        label += f" ({attrs['worker']})"
    if "resumes" in attrs:
        label += f" (resumes t{attrs['resumes']:03d})"
    return label


def display_path(path: str | None) -> str:
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def trials_table(study: optuna.Study, spec: SweepSpec) -> Table:
    from rich.table import Table

    trials = study.get_trials(deepcopy=False)
    resumed_by = {t.user_attrs["resumes"]: t.number for t in trials if "resumes" in t.user_attrs}
    multi = len(study.directions) > 1
    table = Table(title=f"sweep {study.study_name}: {len(trials)} trials", title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("state")
    table.add_column("score", justify="right")
    if multi:
        table.add_column(f"cost ({spec.cost})", justify="right")
    for key in spec.params:
        table.add_column(key, justify="right")
    table.add_column("run dir")
    for t in trials:
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        if t.state.name == "COMPLETE":
            scores = [fmt(v) for v in t.values]  # type: ignore[union-attr]
        elif t.state.name in ("PRUNED", "RUNNING") and last is not None:  # the last value reported
            scores = [f"({fmt(last)})"] + ["-"] * multi
        else:
            scores = ["-"] * (1 + multi)
        params = [fmt(t.params[key]) if key in t.params else "-" for key in spec.params]
        table.add_row(f"t{t.number:03d}", state_label(t, resumed_by), *scores, *params,
                      display_path(t.user_attrs.get("run_dir")))
    return table


def train_command(spec: SweepSpec, trial: FrozenTrial, run: str) -> str:
    """`heartgrid train` with the trial's exact config: the sweep's overrides and the trial's
    values (exact, as the trial ran them), under a new run name."""
    from heartgrid.sweep.params import override

    words = ["heartgrid", "train", spec.recipe, *spec.overrides]
    if spec.steps is not None:
        words.append(f"trainer.total_timesteps={spec.steps}")
    words += [override(key, trial.params[key]) for key in spec.params if key in trial.params]
    return shlex.join([*words, f"run={run}"])


def importances(study: optuna.Study) -> dict[str, float] | str:
    """Parameter importances (sum 1), or why there are none yet."""
    from optuna.importance import get_param_importances
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(done) < 3:
        return f"need at least 3 completed trials (have {len(done)})"
    try:
        with optuna_notes_off():
            return get_param_importances(study, evaluator=importance_evaluator(), target=importance_target(study))
    except (ValueError, RuntimeError, ZeroDivisionError) as e:
        return f"not computable from these trials ({e})"


def summary_lines(study: optuna.Study, spec: SweepSpec) -> list[str]:
    """The counts by state and the best trial(s), with the train command of the best."""
    from collections import Counter

    trials = study.get_trials(deepcopy=False)
    counts = Counter(count_label(t) for t in trials)
    lines = ["trials: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))]
    best = best_trials(study)
    if not best:
        return [*lines, "best: none yet (no trial has completed)"]
    if len(study.directions) > 1:
        lines.append(f"Pareto front (score {spec.direction}d, cost {spec.cost} minimized), best score first:")
        lines += [f"  t{t.number:03d}  score {fmt(t.values[0])}  cost {fmt(t.values[1])}  "  # type: ignore[index]
                  f"{display_path(t.user_attrs.get('run_dir'))}" for t in best]
    top = best[0]
    lines += [f"best: t{top.number:03d}, score {fmt(first_value(top))} ({spec.metric}, {spec.direction}d), "
              f"run {display_path(top.user_attrs.get('run_dir'))}",
              "best config as a train command:",
              f"  {train_command(spec, top, f'{study.study_name}-best')}"]
    return lines


def importance_lines(study: optuna.Study) -> list[str]:
    found = importances(study)
    if isinstance(found, str):
        return [f"parameter importances: {found}"]
    width = max(len(k) for k in found)
    return ["parameter importances (PED-ANOVA, share of the score's variation):",
            *(f"  {key:<{width}}  {value:.3f}" for key, value in found.items())]
