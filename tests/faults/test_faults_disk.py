"""A full disk or a read-only file system stops a run with one line naming the file and what to
change (exit 4), never a traceback, never half-written files; what was checkpointed resumes
exactly once the cause is gone. Faults are injected where the run's files are opened and
written (as root, permissions cannot make a directory read-only)."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from fault_testing import (
    EPOCHS, assert_one_line_error, assert_same_final_state, assert_same_metrics, checkpoint_epochs,
    cli_overrides, leftovers, log_text, logged_epochs, tiny_config,
)

import heartgrid.checkpoint.durable as durable
import heartgrid.checkpoint.manager as manager
import heartgrid.rundir.lock as lock
import heartgrid.trainer.logger as logger
from heartgrid.checkpoint import CheckpointManager
from heartgrid.checkpoint.manager import SPACE_MARGIN
from heartgrid.errors import EXIT_FILE_FAULT, FileFault
from heartgrid.rundir import CHECKPOINTS_DIR, CONFIG_FILE
from heartgrid.tools.cli import main
from heartgrid.trainer.run import train_run

ENOSPC = (errno.ENOSPC, "No space left on device")
EROFS = (errno.EROFS, "Read-only file system")


def fail_checkpoint_write(monkeypatch: pytest.MonkeyPatch, epoch: int) -> list[Path]:
    """The disk fills while checkpoint `epoch` is written: its trainer_state.pt gets half its
    bytes, then ENOSPC. Returns the file it failed on (once it has)."""
    failed: list[Path] = []
    original = manager.write_synced

    def write_synced(path: Path, data: bytes) -> None:
        if path.parent.name == f".tmp-epoch_{epoch:06d}" and path.name == "trainer_state.pt":
            path.write_bytes(data[: len(data) // 2])
            failed.append(path)
            raise OSError(*ENOSPC, str(path))
        original(path, data)

    monkeypatch.setattr(manager, "write_synced", write_synced)
    return failed


def report_free_space(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    """Every free-space check (the run's and each checkpoint's) sees `free` bytes."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=10 * free, used=9 * free, free=free))


def checkpoint_bytes(run_dir: Path) -> int:
    latest = CheckpointManager(run_dir).checkpoints()[-1]
    return sum(p.stat().st_size for p in latest.iterdir())


def test_a_full_disk_during_a_checkpoint_write_is_one_clear_error_and_the_run_resumes_exactly(
    tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tmp_path, "full", **{"trainer.checkpoint_interval": 1})
    run_dir = config.run_dir
    with monkeypatch.context() as patch:
        failed = fail_checkpoint_write(patch, 3)
        with pytest.raises(FileFault) as fault:
            train_run(config)
    message = str(fault.value)
    assert failed and message.startswith(f"disk full while writing checkpoint epoch_000003 ({failed[0]}); ")
    assert "trainer.keep_last_n=5 keeps that many" in message and "free some space" in message
    assert "\n" not in message
    assert log_text(run_dir).splitlines()[-1].endswith(f"error: {message}")
    assert leftovers(run_dir) == []  # neither the half-written file nor its directory
    assert checkpoint_epochs(run_dir) == [1, 2]
    assert CheckpointManager(run_dir).load_latest().epoch == 2  # the earlier checkpoint still loads

    outcome = train_run(config)  # space freed: the same command resumes
    assert outcome.stopped_by is None
    assert "resuming at epoch 2, agent step 128" in log_text(run_dir)
    assert_same_final_state(run_dir, tiny_reference, EPOCHS)
    assert_same_metrics(run_dir, tiny_reference, EPOCHS)  # epoch 3, logged before the fault, once


def test_too_little_free_space_refuses_to_start_before_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tmp_path, "cramped")
    report_free_space(monkeypatch, SPACE_MARGIN // 2)
    with pytest.raises(FileFault, match=(
            rf"^not enough disk space in {re.escape(str(config.run_dir))}: the next checkpoint needs [\d.]+ MB, "
            r"500\.0 KB free; each checkpoint takes about .* trainer\.keep_last_n=5 keeps that many")):
        train_run(config)
    assert not (config.run_dir / CHECKPOINTS_DIR).exists() and not (config.run_dir / CONFIG_FILE).exists()


def test_too_little_space_to_resume_is_refused_in_log_txt_and_leaves_config_json_as_it_was(
    tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "longer"
    shutil.copytree(tiny_reference, run_dir)  # a finished run, to be trained for longer
    saved = (run_dir / CONFIG_FILE).read_text()
    report_free_space(monkeypatch, SPACE_MARGIN // 2)
    with pytest.raises(FileFault, match="not enough disk space"):
        train_run(tiny_config(tmp_path, "longer", **{"trainer.total_timesteps": 64 * 8}))
    assert "error: not enough disk space in " in log_text(run_dir).splitlines()[-1]
    assert (run_dir / CONFIG_FILE).read_text() == saved


def test_room_for_fewer_checkpoints_than_the_run_keeps_warns_early_and_trains(
    tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Room for the next checkpoint but not for the 5 kept plus one being written: a warning at
    the start, in log.txt, and training goes on (the disk may yet be cleaned up)."""
    size = checkpoint_bytes(tiny_reference)
    report_free_space(monkeypatch, SPACE_MARGIN + 2 * size)
    config = tiny_config(tmp_path, "tight", **{"trainer.checkpoint_interval": 1})
    assert train_run(config).stopped_by is None
    assert re.search(r"  warning: the disk will fill before training ends: \d more checkpoints of about "
                     r"1\.0 MB need [\d.]+ MB, 3\.1 MB free; .*trainer\.keep_last_n", log_text(config.run_dir))
    assert checkpoint_epochs(config.run_dir) == [1, 2, 3, 4]


@pytest.mark.parametrize("when", ["before starting", "during a checkpoint"])
def test_a_full_disk_through_the_cli_exits_4_with_one_line(
    when: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if when == "before starting":
        report_free_space(monkeypatch, SPACE_MARGIN // 2)
        expected = "heartgrid train: error: not enough disk space in "
    else:
        failed = fail_checkpoint_write(monkeypatch, 1)
        expected = "heartgrid train: error: disk full while writing "
    code = main(["train", "small_easy_shaped", *cli_overrides(tmp_path, "full", "logging.console=none")])
    assert code == EXIT_FILE_FAULT == 4
    line = assert_one_line_error(capsys.readouterr().err, expected, "trainer.keep_last_n")
    if when == "during a checkpoint":
        assert str(failed[0]) in line
    assert not (tmp_path / "full").exists() or leftovers(tmp_path / "full") == []


# ---- a read-only file system -------------------------------------------------------------------


def refuse_writes(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """Opening for writing a file whose path holds `target` fails as on a read-only mount
    (EROFS, the path named). The run's files are opened by `open` in durable.py (config.json,
    the metrics file's rewrite, checkpoint files) and logger.py (the metrics appended), and by
    `os.open` in lock.py."""
    def refused(path: object) -> bool:
        return target in str(path)

    def fake_open(path, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and refused(path):
            raise OSError(*EROFS, str(path))
        return open(path, mode, *args, **kwargs)

    real_os_open = lock.os.open

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (lock.os.O_WRONLY | lock.os.O_RDWR) and refused(path):
            raise OSError(*EROFS, str(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(durable, "open", fake_open, raising=False)
    monkeypatch.setattr(logger, "open", fake_open, raising=False)
    monkeypatch.setattr(lock.os, "open", fake_os_open)


# The lock; config.json's atomic rewrite; metrics.jsonl's rewrite (its .tmp- file) and its
# opening for appending ("/metrics.jsonl" matches only the latter); log.txt; a checkpoint file.
@pytest.mark.parametrize("target", [".lock", "config.json", "metrics.jsonl", "/metrics.jsonl", "log.txt",
                                    ".tmp-epoch_000001"])
def test_a_read_only_file_system_exits_4_with_one_line_naming_the_file(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_writes(monkeypatch, target)
    code = main(["train", "small_easy_shaped", *cli_overrides(tmp_path, "ro", "logging.console=none")])
    assert code == EXIT_FILE_FAULT
    assert_one_line_error(capsys.readouterr().err, "heartgrid train: error: cannot write ",
                                 str(tmp_path / "ro"), target, "Read-only file system")
    run_dir = tmp_path / "ro"
    assert not run_dir.exists() or leftovers(run_dir) == []
    if run_dir.exists() and (run_dir / "log.txt").exists():
        assert "error: cannot write " in log_text(run_dir).splitlines()[-1]


def test_a_run_whose_config_json_is_damaged_is_refused_naming_the_file(
    tiny_reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "damaged"
    shutil.copytree(tiny_reference, run_dir)
    (run_dir / CONFIG_FILE).write_text('{"run": "damaged", "trainer": {')
    overrides = cli_overrides(tmp_path, "damaged", "logging.console=none", f"trainer.total_timesteps={64 * EPOCHS}",
                              "trainer.checkpoint_interval=2")
    assert main(["train", "small_easy_shaped", *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"heartgrid train: error: {run_dir / CONFIG_FILE}: ") and "Traceback" not in err
    assert logged_epochs(run_dir) == list(range(1, EPOCHS + 1))  # nothing touched


@pytest.mark.parametrize("line", ["garbage", '{"foo": 1}'])
def test_a_run_whose_metrics_jsonl_is_damaged_is_refused_with_what_to_do(
    line: str, tiny_reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "damaged"
    shutil.copytree(tiny_reference, run_dir)
    shutil.rmtree(sorted((run_dir / "checkpoints").iterdir())[-1])  # so that the run resumes
    metrics = run_dir / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    lines[1] = line + "\n"
    metrics.write_text("".join(lines))
    overrides = cli_overrides(tmp_path, "damaged", "logging.console=none", f"trainer.total_timesteps={64 * EPOCHS}",
                              "trainer.checkpoint_interval=2")
    assert main(["train", "small_easy_shaped", *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"heartgrid train: error: {metrics}, line 2: not a") and "Traceback" not in err
    assert f"Move it aside (mv {metrics} {metrics}.damaged) and run the same command again" in err
    assert metrics.read_text() == "".join(lines)  # nothing touched
    metrics.rename(metrics.with_name("metrics.jsonl.damaged"))  # as it says
    assert main(["train", "small_easy_shaped", *overrides]) == 0
    kept = [json.loads(x)["metric/epoch"] for x in metrics.read_text().splitlines()]
    assert kept[-1] == EPOCHS and kept[0] == EPOCHS - 2  # from the checkpoint's record on


@pytest.mark.parametrize("name", ["metrics.jsonl", "log.txt"])
def test_a_disk_that_fills_while_appending_metrics_or_log_lines_is_named(
    name: str, tiny_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/full refuses every write with the kernel's own ENOSPC, as a full disk would."""
    run_dir = tmp_path / "filling"
    shutil.copytree(tiny_reference, run_dir)

    def fake_open(path, mode="r", *args, **kwargs):
        if Path(path).name == name and "a" in mode:
            path = "/dev/full"
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(logger, "open", fake_open, raising=False)
    with pytest.raises(FileFault) as fault:
        train_run(tiny_config(tmp_path, "filling", **{"trainer.total_timesteps": 64 * 6}))
    assert str(fault.value).startswith(f"disk full while writing {run_dir / name}; ")
    assert "free some space" in str(fault.value)
