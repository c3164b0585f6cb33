"""A bad sweep spec exits 2 before anything trains and says what to write instead; the pieces
that need no training (the reductions, the budget, stale trials) are checked directly."""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from heartgrid.compare.metric_spec import MetricSpec
from heartgrid.compare.runs import RunSet
from heartgrid.sweep.ledger import gone_reason, is_surplus, next_move
from heartgrid.sweep.objective import MetricsTail
from heartgrid.sweep.spec import SweepSpec, resolve
from heartgrid.sweep.store import SweepDir, create_study, open_storage
from heartgrid.tools import cli

LR = "trainer.optimizer.learning_rate"


def sweep(tmp_path: Path, *args: str, overrides: tuple[str, ...] = ()) -> list[str]:
    # Overrides follow the recipe, before the options (as in `heartgrid train`).
    return ["sweep", "small_cardinal", *overrides, "--name", "bad", "--trials", "2", "--dir", str(tmp_path), *args]


@pytest.mark.parametrize(("param", "says"), [
    ("trainer.learnig_rate=log:1e-4:1e-3",  # unknown key: the config's did-you-mean
     "--param trainer.learnig_rate: unknown config key 'learnig_rate' at trainer; "
     "did you mean 'trainer.optimizer.learning_rate'?"),
    (f"{LR}=lgo:1e-4:1e-3",  # unknown distribution: the nearest, and the valid ones
     f"unknown distribution 'lgo'; did you mean 'log'? (write {LR}=DIST:ARGS with one of log:LOW:HIGH, "
     "uniform:LOW:HIGH, int:LOW:HIGH[:STEP], logint:LOW:HIGH, choice:A,B[,...])"),
    (f"{LR}=log:3e-3:1e-4",  # low > high: the spec the other way round
     f"low 3e-3 is above high 1e-4; write {LR}=log:1e-4:3e-3"),
    (f"{LR}=log:0:1e-3", f"a log scale needs low > 0 (got 0); write {LR}=uniform:0:1e-3 for a linear scale"),
    (f"{LR}=uniform:0.1:0.1", "nothing to search"),
    ("trainer.ent_coef=uniform:-1:0.1", "trainer.ent_coef: Input should be greater than or equal to 0"),
    ("trainer.update_epochs=int:1.5:4", "'1.5' is not an integer"),
    ("policy.name=choice:fast", "a choice needs at least two values"),
    ("policy.name=choice:fast,latent_attn_tny", "unknown policy 'latent_attn_tny'"),
    ("trainer.ent_coef", "not of the form KEY=DIST:ARGS"),
    ("run=choice:a,b", "run is chosen by the sweep"),
])
def test_a_bad_param_exits_2_and_says_what_to_write(param: str, says: str, tmp_path: Path, capsys) -> None:
    assert cli.main(sweep(tmp_path, "--param", param)) == 2
    err = capsys.readouterr().err
    assert err.startswith("heartgrid sweep: error: ") and says in err, err
    assert not any(tmp_path.iterdir())  # refused before any file was written


def test_other_bad_sweeps_exit_2(tmp_path: Path, capsys) -> None:
    cases = [
        (sweep(tmp_path, "--param", f"{LR}=log:1e-4:1e-3", "--param", f"{LR}=log:1e-4:1e-2"), "given twice"),
        (sweep(tmp_path), "the sweep searches no parameter"),
        (sweep(tmp_path, "--param", f"{LR}=log:1e-4:1e-3", overrides=("data_dir=x",)), "names and places each trial's run"),
        (sweep(tmp_path, "--param", f"{LR}=log:1e-4:1e-3", overrides=(f"{LR}=0.001",)), "both an override and a --param"),
        (sweep(tmp_path, "--param", f"{LR}=log:1e-4:1e-3", "--metric", "late:"), "names no metric"),
        (["sweep", "small_cardinal", "--name", "a/b", "--trials", "2", "--param", f"{LR}=log:1e-4:1e-3"], "folder name"),
        (["sweep", "show", "nothing", "--dir", str(tmp_path)], "no sweep 'nothing'"),
        (["sweep", "show", "nothing", "--trials", "3"], "write: heartgrid sweep show NAME"),
    ]
    for argv, says in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert says in err, (argv, err)


def test_a_sweep_file_that_does_not_parse_exits_2(tmp_path: Path, capsys) -> None:
    for name, text, says in (("bad.yaml", "a: [b\n", "not valid YAML: while parsing a flow sequence"),
                             ("bad.json", "{bad", "not valid JSON: Expecting property name")):
        (tmp_path / name).write_text(text)
        assert cli.main(["sweep", "--file", str(tmp_path / name), "--name", "f", "--dir", str(tmp_path)]) == 2
        assert f"error: --file {tmp_path / name}: {says}" in capsys.readouterr().err


def test_a_sweep_file_is_validated_like_a_config(tmp_path: Path, capsys) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"recipe: small_cardinal\nparamz:\n  {LR}: log:1e-4:1e-3\ntrials: 2\n")
    assert cli.main(["sweep", "--file", str(path), "--name", "f", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "paramz: unknown key; did you mean 'params'?" in err, err
    assert err.rstrip().endswith(f"(from --file {path} and the command line)"), err
    path.write_text(json.dumps({"recipe": "small_cardinal", "params": {LR: "log:1e-4:1e-3"}, "pruner": "medain"}))
    assert cli.main(["sweep", "--file", str(path), "--name", "f", "--trials", "2", "--dir", str(tmp_path)]) == 2
    assert "pruner: Input should be 'median', 'hyperband' or 'none'" in capsys.readouterr().err


def test_a_sweep_continues_only_with_its_own_settings(tmp_path: Path, capsys) -> None:
    first = resolve("same", SweepSpec(recipe="small_cardinal", params={LR: "log:1e-4:1e-3"}, steps=1000))
    where = SweepDir.of(tmp_path, "same")
    create_study(first, open_storage(None, where), budget=2)
    argv = ["sweep", "small_cardinal", "--name", "same", "--dir", str(tmp_path), "--trials", "2", "--steps", "1000",
            "--param", f"{LR}=log:1e-4:1e-2"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "sweep 'same' was started with other settings (params: " in err and "log:0.0001:0.01" in err


def test_the_reductions_agree_with_heartgrid_compare(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    steps = [64, 128, 192, 256, 320, 384, 448, 512]
    records = [{"metric/agent_step": s, **({"m": (i * 7 % 5) / 3} if i % 3 else {})} for i, s in enumerate(steps)]
    records.append({"metric/agent_step": 448, "m": 2.5})  # a resumed run re-logs a step: the later wins
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"metric/agent_st')
    tail = MetricsTail(run, "m")
    assert tail.poll()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))  # the partial line gone
    runs = RunSet.load([run])
    for reduction in ("final", "late", "auc"):
        expected = runs.values(MetricSpec.parse(f"{reduction}:m"))["run"]
        assert tail.score(reduction) == pytest.approx(expected), reduction


def _trial(number: int, state: str, attrs: dict) -> optuna.trial.FrozenTrial:
    return optuna.trial.FrozenTrial(
        number=number, state=optuna.trial.TrialState[state], value=1.0 if state == "COMPLETE" else None,
        datetime_start=datetime.datetime.now(), datetime_complete=None, params={}, distributions={},
        user_attrs=attrs, system_attrs={}, intermediate_values={}, trial_id=number)


def test_the_budget_counts_resumes_instead_of_the_trials_they_resume() -> None:
    trials = [_trial(0, "COMPLETE", {}), _trial(1, "FAIL", {"superseded": "w"}), _trial(2, "WAITING", {"resumes": 1})]
    assert next_move(trials, 2) == "ask"  # the waiting resume is the second place
    assert not is_surplus(trials, 2, 2)
    trials[2] = _trial(2, "RUNNING", {"resumes": 1})
    assert next_move(trials, 2) == "full"  # both places taken; t002 runs under another worker
    trials.append(_trial(3, "RUNNING", {}))  # asked by a worker elsewhere in the same instant
    assert is_surplus(trials, 3, 2)
    trials[2] = _trial(2, "COMPLETE", {"resumes": 1})
    assert next_move(trials[:3], 2) == "done"


def test_a_trial_is_stale_when_its_worker_is_gone() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    assert gone_reason(_trial(0, "RUNNING", {"host": here, "pid": int(dead.stdout)})) is not None
    assert gone_reason(_trial(0, "RUNNING", {"host": here, "pid": os.getppid()})) is None
    old = {"host": "elsewhere", "pid": 1, "heartbeat": time.time() - 3600}
    assert "elsewhere" in (gone_reason(_trial(0, "RUNNING", old)) or "")
    assert gone_reason(_trial(0, "RUNNING", {**old, "heartbeat": time.time()})) is None
