"""The PNG plots of `heartgrid sweep show`, drawn with Optuna's matplotlib functions.

    history.png       the score of each trial and the best so far (optimisation history)
    importances.png   parameter importances (PED-ANOVA, as printed)
    parallel.png      parallel coordinates of the parameters and the score (two or more params)
    slice.png         the score against each parameter (one param: a parallel plot needs two)
    pareto.png        score against cost, the Pareto front marked (sweeps with --cost)

A plot that cannot be drawn yet (too few completed trials) is skipped with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartgrid.sweep.show import importance_evaluator, importance_target, importances, optuna_notes_off, score_target

if TYPE_CHECKING:
    import optuna


def _save(draw: Callable[[], Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt
    import numpy as np

    axes = draw()
    figure = np.ravel(axes)[0].figure
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def write_plots(study: optuna.Study, out: Path, metric: str, cost: str | None) -> tuple[list[Path], list[str]]:
    """Write the plots into `out`; returns the files written and a line per plot skipped."""
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as vis

    out.mkdir(parents=True, exist_ok=True)
    target = score_target(study)
    params = sorted({key for t in study.get_trials(deepcopy=False) for key in t.params})
    complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    plots: dict[str, tuple[Callable[[], Any], str | None]] = {
        "history.png": (lambda: vis.plot_optimization_history(study, target=target, target_name=metric),
                        None if complete else "no completed trial yet"),
    }
    found = importances(study)
    plots["importances.png"] = (
        lambda: vis.plot_param_importances(
            study, evaluator=importance_evaluator(), target=importance_target(study), target_name=metric),
        found if isinstance(found, str) else None)
    if len(params) >= 2:
        plots["parallel.png"] = (lambda: vis.plot_parallel_coordinate(study, target=target, target_name=metric),
                                 None if complete >= 2 else "needs 2 completed trials")
    else:
        plots["slice.png"] = (lambda: vis.plot_slice(study, target=target, target_name=metric),
                              None if complete else "no completed trial yet")
    if cost is not None:
        plots["pareto.png"] = (lambda: vis.plot_pareto_front(study, target_names=[metric, f"cost ({cost})"]),
                               None if complete else "no completed trial yet")
    written, skipped = [], []
    for name, (draw, reason) in plots.items():
        if reason is not None:
            skipped.append(f"{name}: skipped, {reason}")
            continue
        try:
            with optuna_notes_off():
                _save(draw, out / name)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            skipped.append(f"{name}: skipped, {e}")
            continue
        written.append(out / name)
    return written, skipped
