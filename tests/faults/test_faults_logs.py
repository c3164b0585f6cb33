"""The run's records survive what happens to its files and its console: a metrics line cut in
half by a crash is restored from the checkpoint (each epoch exactly once), and a console that
goes away (`heartgrid train ... | head -1`) never stops training."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fault_testing import (
    EPOCHS, SUB_EPOCHS, Train, assert_same_final_state, assert_same_metrics, assert_strict_json_lines,
    checkpoint_epochs, count_starts, log_text, stop_after, tiny_config, train_command, wait_for,
)

import heartgrid.trainer.ppo as ppo
from heartgrid.rundir import METRICS_FILE
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.run import train


def cut_last_line(path: Path) -> dict[str, float]:
    """Cut the last record of a metrics file in half, as a crash while writing it would (a
    checkpoint's record can be lost so when the file system loses unsynced data); returns it."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    return json.loads(lines[-1])


def test_a_cut_last_metrics_line_is_restored_from_the_checkpoint_and_said_on_the_console(
    tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path, "cut", **{"logging.console": "plain"})
    with monkeypatch.context() as patch:
        stop_after(patch, 2, "ctrl_c")  # checkpoint of epoch 2, whose record is the last line
        run_dir = train(config)
    assert checkpoint_epochs(run_dir) == [2]
    lost = cut_last_line(run_dir / METRICS_FILE)
    assert lost["metric/epoch"] == 2
    capsys.readouterr()

    train(config)  # the same command resumes
    console = capsys.readouterr().out
    metrics = run_dir / METRICS_FILE
    dropped = f"warning: {metrics} ended in a half-written line (the run was stopped while writing it); dropped it: "
    restored = f"warning: {metrics} had lost the record of epoch 2; restored it from the checkpoint"
    for message in (dropped, restored):
        assert message in console
        assert message in log_text(run_dir)
    records = read_metrics(run_dir)
    assert records[1] == lost  # the very record, timing and all
    assert_same_metrics(run_dir, tiny_reference, EPOCHS)  # each epoch once
    assert_same_final_state(run_dir, tiny_reference, EPOCHS)


def test_a_restored_record_is_the_line_that_was_lost_even_with_a_non_finite_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Explained variance is NaN when the returns do not vary (dropped from the written record).
    monkeypatch.setattr(ppo, "explained_variance", lambda predictions, targets: float("nan"))
    config = tiny_config(tmp_path, "nan")
    with monkeypatch.context() as patch:
        stop_after(patch, 2, "ctrl_c")
        run_dir = train(config)
    lost = cut_last_line(run_dir / METRICS_FILE)
    assert "losses/explained_variance" not in lost
    train(config)
    assert read_metrics(run_dir)[1] == lost
    assert_strict_json_lines(run_dir / METRICS_FILE)


def test_a_console_that_goes_away_never_stops_training(reference: Path, tmp_path: Path) -> None:
    """`heartgrid train ... | head -1`: after the first line nobody reads standard output."""
    command = train_command(tmp_path, "headless")
    run_dir = tmp_path / "headless"
    process = Train(command, tmp_path / "logs", "head", stdout=subprocess.PIPE)
    # The first console line is also log.txt's: once it is there, reading it cannot hang.
    wait_for(lambda: count_starts(run_dir), "training to begin", process=process)
    first = process.process.stdout.readline()
    assert first.startswith("starting: run 'headless'")
    process.process.stdout.close()  # head exits
    assert process.finish() == 0, process.stderr()
    assert "Traceback" not in process.stderr()
    assert "the console went away (Broken pipe); training goes on, logging to log.txt only" in log_text(run_dir)
    assert f"finished at agent step {SUB_EPOCHS * 64}" in log_text(run_dir)
    assert checkpoint_epochs(run_dir)[-1] == SUB_EPOCHS  # the end's checkpoint
    assert_same_metrics(run_dir, reference, SUB_EPOCHS)
    assert_same_final_state(run_dir, reference, SUB_EPOCHS)
