"""Many runs' metrics in one DuckDB table, and the numbers the comparisons need from it.

A run directory holds `config.json` (the resolved config) and `metrics.jsonl` (one flat JSON
object per logged epoch, SPEC §4). All the files of a comparison are read by one DuckDB query
into a long table

    points(run VARCHAR, step DOUBLE, metric VARCHAR, value DOUBLE)

with `step` = the record's `metric/agent_step`. Values that are not finite numbers (NaN, a
string, a list) count as "not logged at that step". When a step was logged twice (a resumed
run re-logging epochs) the later line of the file wins.
Final values, areas under curves and metric names are SQL over that table; curves on a common
agent-step grid are interpolated with numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from heartgrid.compare.metric_spec import MetricSpec
from heartgrid.rundir import CONFIG_FILE, METRICS_FILE, STEP_KEY

GRID_POINTS = 100


class CompareError(ValueError):
    """Bad input to a comparison (not a run directory, unreadable metrics, unknown baseline)."""


@dataclass(frozen=True)
class Run:
    label: str
    """Unique within a RunSet: the directory name, with parents added where names collide."""
    path: str
    config: dict[str, Any]

    @property
    def seed(self) -> int | None:
        """`system.seed` of the run's config: the key that pairs runs of two sides."""
        seed = self.config.get("system", {}).get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _labels(paths: list[Path]) -> list[str]:
    depth = 1
    while True:
        labels = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(labels)) == len(labels) or depth >= max(len(p.parts) for p in paths):
            return labels
        depth += 1


def read_run_dirs(run_dirs: list[str | Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Check each path is a run directory and read its config; error names what is missing."""
    if not run_dirs:
        raise CompareError("no run directories given")
    found = []
    for raw in run_dirs:
        path = Path(raw).resolve()
        if not path.is_dir():
            raise CompareError(f"{raw}: not a directory; give run directories (<data_dir>/<run>)")
        for needed in (CONFIG_FILE, METRICS_FILE):
            if not (path / needed).is_file():
                raise CompareError(
                    f"{raw}: no {needed}; a run directory written by `heartgrid train` has "
                    f"{CONFIG_FILE} and {METRICS_FILE}"
                )
        # The config is kept as plain JSON, not validated into a RunConfig: runs written by an
        # older HeartGrid still compare, and their config differences show up in the diff.
        try:
            config = json.loads((path / CONFIG_FILE).read_text())
        except json.JSONDecodeError as e:
            raise CompareError(f"{path / CONFIG_FILE}: not valid JSON ({e})") from None
        found.append((path, config))
    if len({p for p, _ in found}) != len(found):
        raise CompareError("the same run directory is given twice")
    return found


class RunSet:
    """Runs and their metric points, queried with DuckDB."""

    def __init__(self, runs: list[Run], connection: duckdb.DuckDBPyConnection):
        self.runs = runs
        self._db = connection

    # ---- construction ----------------------------------------------------------------------

    @classmethod
    def load(cls, run_dirs: list[str | Path]) -> RunSet:
        found = read_run_dirs(run_dirs)
        paths = [p for p, _ in found]
        runs = [Run(label, str(p), config) for label, (p, config) in zip(_labels(paths), found)]
        files = [str(p / METRICS_FILE) for p in paths]
        db = duckdb.connect()
        db.execute("CREATE TABLE files(file VARCHAR, run VARCHAR)")
        db.executemany("INSERT INTO files VALUES (?, ?)", [[f, r.label] for f, r in zip(files, runs)])
        try:
            db.execute(
                f"""
                CREATE TABLE points AS
                WITH records AS (
                    -- ordinality numbers the records in the order they are read, which is
                    -- line order within a file: the "later line wins" rule below uses it.
                    SELECT f.run, o.ordinality AS line, o.json AS record
                    FROM read_ndjson_objects(?, filename = true) WITH ORDINALITY o
                    JOIN files f ON f.file = o.filename
                ),
                entries AS (
                    SELECT r.run, r.line,
                           TRY_CAST(r.record->>'$."{STEP_KEY}"' AS DOUBLE) AS step,
                           e.key AS metric,
                           TRY_CAST(e.value AS DOUBLE) AS value
                    FROM records r, json_each(r.record) e
                )
                SELECT run, step, metric, arg_max(value, line) AS value
                FROM entries
                WHERE step IS NOT NULL AND isfinite(value)
                GROUP BY run, step, metric
                """,
                [files],
            )
        except duckdb.Error as e:
            raise CompareError(f"cannot read metrics: {e}".strip()) from None
        return cls(runs, db)

    @classmethod
    def from_parquet(cls, path: str | Path, runs: list[Run]) -> RunSet:
        """Runs whose points were saved with `to_parquet` (a baseline)."""
        db = duckdb.connect()
        db.execute("CREATE TABLE points AS SELECT run, step, metric, value FROM read_parquet(?)", [str(path)])
        return cls(runs, db)

    def to_parquet(self, path: str | Path) -> None:
        self._db.execute(
            "COPY (SELECT * FROM points ORDER BY run, metric, step) TO ? (FORMAT parquet)", [str(path)]
        )

    # ---- queries ---------------------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.runs]

    def seeds(self) -> dict[str, int | None]:
        """run label -> its seed (None when its config has no integer system.seed)."""
        return {r.label: r.seed for r in self.runs}

    def metric_names(self) -> dict[str, set[str]]:
        """run label -> the names of the metrics it logged (with at least one finite value)."""
        names: dict[str, set[str]] = {label: set() for label in self.labels}
        for run, metric in self._db.execute("SELECT DISTINCT run, metric FROM points").fetchall():
            names[run].add(metric)
        return names

    def values(self, spec: MetricSpec) -> dict[str, float]:
        """run label -> the metric reduced to one number; runs without the metric are absent.

        Ordered by label: the seeded bootstrap then sees the runs in the same order every time,
        so a report's intervals are reproducible."""
        if spec.reduction == "final":
            query = "SELECT run, arg_max(value, step) FROM points WHERE metric = ? GROUP BY run ORDER BY run"
        elif spec.reduction == "late":
            # The mean of the points in the last third of the steps the metric spans.
            query = """
                WITH span AS (
                    SELECT run, step, value, min(step) OVER w AS lo, max(step) OVER w AS hi
                    FROM points WHERE metric = ?
                    WINDOW w AS (PARTITION BY run)
                )
                SELECT run, avg(value) FROM span WHERE step >= lo + (hi - lo) * 2.0 / 3.0
                GROUP BY run ORDER BY run
            """
        else:
            # Trapezoid rule over consecutive logged points, divided by the steps spanned; a run
            # with a single point has no span, and its time-average is that point.
            query = """
                WITH ordered AS (
                    SELECT run, step, value,
                           lag(step) OVER w AS prev_step, lag(value) OVER w AS prev_value
                    FROM points WHERE metric = ?
                    WINDOW w AS (PARTITION BY run ORDER BY step)
                )
                SELECT run,
                       CASE WHEN max(step) > min(step)
                            THEN sum((step - prev_step) * (value + prev_value) / 2)
                                 / (max(step) - min(step))
                            ELSE any_value(value) END
                FROM ordered GROUP BY run ORDER BY run
            """
        rows = self._db.execute(query, [spec.name]).fetchall()
        return {run: float(value) for run, value in rows}

    def final_values(self) -> dict[str, dict[str, float]]:
        """run label -> {metric: last logged value} for every metric of the run."""
        rows = self._db.execute(
            "SELECT run, metric, arg_max(value, step) FROM points GROUP BY run, metric ORDER BY run, metric"
        ).fetchall()
        finals: dict[str, dict[str, float]] = {label: {} for label in self.labels}
        for run, metric, value in rows:
            finals[run][metric] = float(value)
        return finals

    def step_range(self) -> dict[str, tuple[float, float]]:
        """run label -> (first, last) logged agent_step."""
        rows = self._db.execute("SELECT run, min(step), max(step) FROM points GROUP BY run").fetchall()
        return {run: (float(lo), float(hi)) for run, lo, hi in rows}

    def curve_points(self, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """run label -> (steps, values) of one metric, ordered by step."""
        rows = self._db.execute(
            "SELECT run, list(step ORDER BY step), list(value ORDER BY step) "
            "FROM points WHERE metric = ? GROUP BY run ORDER BY run",
            [metric],
        ).fetchall()
        return {run: (np.asarray(steps), np.asarray(vals)) for run, steps, vals in rows}


def common_grid(curves: list[tuple[np.ndarray, np.ndarray]], points: int = GRID_POINTS) -> np.ndarray:
    """An agent-step grid covered by every curve (their overlap), or by any (their union) when
    they do not overlap; np.interp holds a curve's end value beyond its range."""
    firsts = [s[0] for s, _ in curves]
    lasts = [s[-1] for s, _ in curves]
    start, stop = max(firsts), min(lasts)
    if stop <= start:
        start, stop = min(firsts), max(lasts)
    return np.linspace(start, stop, points)


def on_grid(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Curves linearly interpolated onto `grid`: [runs, len(grid)]."""
    return np.stack([np.interp(grid, steps, values) for steps, values in curves])
