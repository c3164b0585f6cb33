"""Where a sweep lives: its folder, its Optuna storage and study, its sampler and pruner.

    runs/sweeps/NAME/journal.log      the study (Optuna's journal file), unless --storage URL
                     sweep.json       which storage holds the study (so `sweep show NAME` finds it)
                     runs/NAME-tNNN/  one ordinary run directory per trial
                     logs/NAME-tNNN.log  the trial's `heartgrid train` output
                     *.png            the plots of `heartgrid sweep show`

The default storage is a journal file: an append-only log that several processes on one
machine (or on a file system with working locks) share safely. `--storage URL` takes any
database URL SQLAlchemy knows (`sqlite:///sweeps.db`, `postgresql://host/db`, ...): workers on
several machines then share one study, each writing its runs under its own runs/sweeps/NAME.
The study's name is the sweep's; its identity (spec.py) and budget are kept as study attributes,
so a worker elsewhere can join with only `--name NAME --storage URL`.
"""

from __future__ import annotations

import difflib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartgrid.errors import UsageError

if TYPE_CHECKING:
    import optuna

    from heartgrid.sweep.spec import Sweep, SweepSpec

DEFAULT_DIR = Path("runs") / "sweeps"
SPEC_ATTR = "heartgrid_sweep"
BUDGET_ATTR = "heartgrid_trials"
REPORT_POINTS = 20
"""Intermediate values per trial: at every 1/20 of its agent steps (pruning decisions)."""


@dataclass(frozen=True)
class SweepDir:
    root: Path

    @classmethod
    def of(cls, directory: str | Path | None, name: str) -> SweepDir:
        return cls(Path(directory or DEFAULT_DIR) / name)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def journal(self) -> Path:
        return self.root / "journal.log"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pointer(self) -> Path:
        return self.root / "sweep.json"

    @property
    def ask_lock(self) -> Path:
        return self.root / ".ask.lock"

    def remember_storage(self, url: str | None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pointer.write_text(json.dumps({"storage": url}) + "\n")

    def remembered_storage(self) -> str | None:
        try:
            return json.loads(self.pointer.read_text()).get("storage")
        except (OSError, ValueError, AttributeError):
            return None


def quiet_optuna(errors_only: bool = False) -> None:
    """Optuna logs every trial at INFO; the sweep prints its own lines. `sweep show` also drops
    its warnings about few trials (the report says what it could not compute)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR if errors_only else optuna.logging.WARNING)


def open_storage(url: str | None, where: SweepDir) -> optuna.storages.BaseStorage:
    """The journal file under the sweep's folder by default; a URL with :// is a database; any
    other --storage is a journal file path."""
    from optuna.storages import JournalStorage, RDBStorage, get_storage
    from optuna.storages.journal import JournalFileBackend

    quiet_optuna()
    if url is None or "://" not in url:
        path = where.journal if url is None else Path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    # SQLite allows one writer at a time; wait for it rather than fail ("database is locked").
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    try:
        # Wrapped as create_study would wrap it (a cache of finished trials), so that the study
        # and the ledger (ledger.py) see the trials through one object.
        return get_storage(RDBStorage(url, engine_kwargs=engine))
    except Exception as e:  # a bad URL, a missing driver, a server that is not there
        raise UsageError(f"--storage {url}: cannot open it: {e}") from None


def create_study(sweep: Sweep, storage: Any, budget: int | None) -> optuna.Study:
    """Create the study, or load it when the sweep exists; its identity must be this sweep's."""
    import optuna

    directions = [sweep.objective.direction] + (["minimize"] if sweep.multi_objective else [])
    study = optuna.create_study(study_name=sweep.name, storage=storage, directions=directions, load_if_exists=True)
    saved = study.user_attrs.get(SPEC_ATTR)
    identity = sweep.spec.identity()
    if saved is None:
        study.set_user_attr(SPEC_ATTR, identity)
    elif saved != identity:
        changed = [f"{key}: {saved.get(key)!r} -> {identity[key]!r}" for key in identity if saved.get(key) != identity[key]]
        raise UsageError(
            f"sweep {sweep.name!r} was started with other settings ({'; '.join(changed)}); run the same "
            "command to continue it (only --trials, --workers, --pruner, --sampler and --seed may change), "
            "or choose a new --name")
    if budget is not None and study.user_attrs.get(BUDGET_ATTR) != budget:
        study.set_user_attr(BUDGET_ATTR, budget)
    return study


def load_study(name: str, where: SweepDir, url: str | None) -> optuna.Study:
    """An existing sweep's study (show, join); a UsageError names the sweeps there are."""
    import optuna

    url = url or where.remembered_storage()
    if url is None and not where.journal.exists():
        known = sorted({p.parent.name for p in where.root.parent.glob("*/sweep.json")})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (f" (sweeps there: {', '.join(known)})" if known else "")
        raise UsageError(f"no sweep {name!r} in {where.root.parent}{hint}; start one with "
                         f"heartgrid sweep RECIPE --name {name} --param KEY=DIST:ARGS --trials N")
    storage = open_storage(url, where)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (it holds: {', '.join(names) or 'none'})"
        raise UsageError(f"no sweep {name!r} in {url or where.journal}{hint}") from None


def stored_spec(study: optuna.Study) -> SweepSpec:
    from heartgrid.sweep.spec import SweepSpec

    saved = study.user_attrs.get(SPEC_ATTR)
    if not isinstance(saved, dict):
        raise UsageError(f"study {study.study_name!r} was not made by `heartgrid sweep` (no {SPEC_ATTR} attribute)")
    return SweepSpec.model_validate(saved)


def make_sampler(spec: SweepSpec, offset: int = 0) -> optuna.samplers.BaseSampler:
    """TPE (or random search); with --seed, seeded by seed + `offset` (the trials so far) so
    that a one-worker sweep repeats and concurrent workers do not draw the same points."""
    import optuna

    seed = None if spec.seed is None else spec.seed + offset
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # constant_liar: a running trial counts as a poor result, so that parallel workers
        # do not all sample next to the same promising point.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(sweep: Sweep) -> optuna.pruners.BasePruner:
    """Median (a trial below the median of earlier trials at the same step stops; not before 5
    trials have finished nor in the first quarter of training) or Hyperband. Optuna cannot
    prune multi-objective studies, so a sweep with --cost runs every trial to its end."""
    import optuna

    shortest, longest = sweep.step_range
    if sweep.multi_objective or sweep.spec.pruner == "none":
        return optuna.pruners.NopPruner()
    if sweep.spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(shortest // REPORT_POINTS, 1), max_resource=longest)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=shortest // 4)


def report_steps(total: int, shortest: int | None = None) -> list[int]:
    """The agent steps at which a trial of `total` steps reports its running objective: every
    1/20 of the shortest trial's steps, so that all trials report on one grid (a pruner
    compares trials at equal steps), and at its end."""
    shortest = shortest or total
    count = REPORT_POINTS * total // shortest
    return sorted({max(shortest * k // REPORT_POINTS, 1) for k in range(1, count + 1)} | {total})
