"""`heartgrid plot RUN_DIR [RUN_DIR ...] [--out PNG]`: learning curves of runs as a PNG.

Two panels against agent steps: hearts per agent per episode (`env_agent/heart.get`) and the
mean episode reward per agent (`overview/reward`). Several runs share the axes, one line each.
A log record holds only the few episodes that ended in its epoch, so the raw values are drawn
faintly and a trailing mean over `--smooth` records on top: that is where a trend shows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from heartgrid.errors import UsageError, check_output_path
from heartgrid.rundir import METRICS_FILE, STEP_KEY

CURVES = (
    ("env_agent/heart.get", "hearts per agent per episode"),
    ("overview/reward", "reward per agent per episode"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plot",
        help="plot learning curves (hearts and reward vs agent steps) of run directories to a PNG",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (runs/<run>)")
    p.add_argument("--out", type=Path, default=None,
                   help="PNG to write (default: RUN_DIR/learning_curves.png of the first run)")
    p.add_argument("--smooth", type=int, default=20,
                   help="records in the trailing mean drawn over the raw values (default 20; 1 = off)")
    p.set_defaults(func=cmd_plot)


def read_curves(run_dir: Path) -> dict[str, tuple[list[float], list[float]]]:
    """metric -> (agent steps, values) for the plotted metrics, from metrics.jsonl. A run with
    nothing to plot is a UsageError that names the path and what is missing: a blank chart
    would look like a run that learned nothing."""
    from heartgrid.trainer.logger import DamagedMetrics, read_metrics_file

    path = run_dir / METRICS_FILE
    if not run_dir.exists():
        raise UsageError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise UsageError(f"{run_dir} has no {METRICS_FILE}; is it a run directory (runs/<run>)?")
    try:
        # A half-written last line (a run still writing, or killed mid-line) is left out.
        records, _ = read_metrics_file(path)
    except DamagedMetrics as e:  # a bad line before the last: names the file and the line
        raise UsageError(str(e)) from None
    if not records:
        raise UsageError(f"{path}: no records yet (the run logs one per epoch)")
    curves: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _ in CURVES}
    for record in records:
        for name, _ in CURVES:
            if name in record:
                curves[name][0].append(record[STEP_KEY])
                curves[name][1].append(record[name])
    missing = [name for name, (steps, _) in curves.items() if not steps]
    if missing:
        raise UsageError(
            f"{path}: none of its {len(records)} records has {' or '.join(missing)}; these are "
            "logged in the epochs in which an episode ended (has one ended yet?)"
        )
    return curves


def trailing_mean(values: list[float], window: int) -> list[float]:
    """Mean of each value and the window - 1 before it (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_runs(run_dirs: list[Path], out: Path, smooth: int = 20) -> Path:
    # Every run is read before anything is drawn: one bad run is an error, not a partial chart.
    runs = [(run_dir, read_curves(run_dir)) for run_dir in run_dirs]
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVES), figsize=(6 * len(CURVES), 4), squeeze=False)
    for run_dir, curves in runs:
        for ax, (name, _) in zip(axes[0], CURVES):
            steps, values = curves[name]
            if smooth > 1:
                raw = ax.plot(steps, values, alpha=0.25, linewidth=0.8)[0]
                ax.plot(steps, trailing_mean(values, smooth), color=raw.get_color(),
                        label=f"{run_dir.name} (mean of {smooth} records)")
            else:
                ax.plot(steps, values, label=run_dir.name)
    for ax, (name, title) in zip(axes[0], CURVES):
        ax.set_title(title)
        ax.set_xlabel("agent steps")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def figure_path(path: Path, given: str = "--out ") -> Path:
    """Where a figure is written: `path`, with .png added when it has no suffix (matplotlib adds
    it without saying so); UsageError for a format matplotlib does not write or a path that
    cannot be a file."""
    from matplotlib.figure import Figure

    if not path.suffix:
        path = path.with_name(path.name + ".png")
    formats = Figure().canvas.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        raise UsageError(f"{given}{path}: matplotlib writes {', '.join(sorted(formats))}, not {path.suffix}")
    check_output_path(path, given)
    return path


def cmd_plot(args: argparse.Namespace) -> int:
    if args.smooth < 1:
        raise UsageError(f"--smooth must be at least 1, got {args.smooth}")
    run_dirs = [Path(p) for p in args.run_dirs]
    out = figure_path(args.out) if args.out else run_dirs[0] / "learning_curves.png"
    print(plot_runs(run_dirs, out, args.smooth))
    return 0
