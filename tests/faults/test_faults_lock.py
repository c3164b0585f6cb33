"""One writer per run directory: a second `heartgrid train` on a run in use exits 2 at once,
naming the holder, and the first run's metrics stay whole; the lock of a dead process is free."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fault_testing import (
    SUB_EPOCHS, Train, assert_one_line_error, assert_same_final_state, assert_same_metrics,
    count_starts, run_train, train_command, wait_for,
)

from heartgrid.rundir.lock import LOCK_FILE, RunLock, RunLockedError, read_owner

HOST = socket.gethostname()
HOLDER = "heartgrid train small_easy_shaped run=busy"


def test_a_second_train_on_a_run_in_use_exits_2_at_once_naming_the_holder(reference: Path, tmp_path: Path) -> None:
    command = train_command(tmp_path, "busy")
    run_dir = tmp_path / "busy"
    first = Train(command, tmp_path / "logs", "first")
    wait_for(lambda: count_starts(run_dir) == 1, "the first run to start training", process=first)
    # Suspended, the first still holds the lock and cannot finish: a second process that waited
    # for the lock instead of refusing would hang until its timeout.
    first.send(signal.SIGSTOP)
    try:
        code, _, stderr = run_train(command, tmp_path / "logs", "second", timeout=120)
    finally:
        first.send(signal.SIGCONT)
    assert code == 2
    assert_one_line_error(stderr, f"heartgrid train: error: {run_dir} is in use by {HOLDER} "
                                  f"(PID {first.pid} on {HOST}, started ", "one writer at a time")

    assert first.finish() == 0, first.stderr()
    assert count_starts(run_dir) == 1  # the second wrote nothing, not even a log line
    assert not (run_dir / LOCK_FILE).exists()  # released at the end
    assert_same_metrics(run_dir, reference, SUB_EPOCHS)
    assert_same_final_state(run_dir, reference, SUB_EPOCHS)


def test_two_runs_started_at_the_same_moment_one_trains_and_the_other_exits_2(
    reference: Path, tmp_path: Path
) -> None:
    command = train_command(tmp_path, "race")
    run_dir = tmp_path / "race"
    pair = [Train(command, tmp_path / "logs", f"racer{i}") for i in range(2)]
    codes = [process.finish() for process in pair]
    assert sorted(codes) == [0, 2], [p.stderr() for p in pair]
    winner, loser = pair if codes[0] == 0 else pair[::-1]
    assert "Traceback" not in winner.stderr()
    # The loser may come between the winner's lock and its owner record: then the holder is
    # "another process"; normally it is the winner, by PID.
    line = assert_one_line_error(loser.stderr(), f"{run_dir} is in use by ")
    assert f"PID {winner.pid} on {HOST}" in line or "it has not written its name yet" in line
    assert count_starts(run_dir) == 1
    assert_same_metrics(run_dir, reference, SUB_EPOCHS)  # no duplicate or interleaved records


def test_the_lock_cannot_be_taken_twice_and_names_its_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path, "first writer"):
        holder = rf"in use by first writer \(PID {os.getpid()} on {re.escape(HOST)}, started "
        with pytest.raises(RunLockedError, match=holder):
            RunLock(tmp_path, "second writer").acquire()
        assert read_owner(tmp_path / LOCK_FILE)["command"] == "first writer"  # the refused one left it
    with RunLock(tmp_path, "second writer"):  # free once released
        assert read_owner(tmp_path / LOCK_FILE)["command"] == "second writer"


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    """The owner record says who held the lock; only the flock says whether it still does."""
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"host": "node-17", "pid": 4_000_000, "command": "heartgrid train crashed", "started": "yesterday"}))
    with RunLock(tmp_path, "heir"):
        assert read_owner(tmp_path / LOCK_FILE)["pid"] == os.getpid()


def test_the_lock_of_a_process_killed_with_sigkill_is_free_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from heartgrid.rundir.lock import RunLock; "
         f"RunLock({str(tmp_path)!r}, 'holder').acquire(); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunLockedError, match=rf"in use by holder \(PID {holder.pid} on {re.escape(HOST)}"):
            RunLock(tmp_path, "next").acquire()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with RunLock(tmp_path, "next"):
        assert read_owner(tmp_path / LOCK_FILE)["command"] == "next"


def test_two_writers_creating_a_new_run_directory_at_once_do_not_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other writer's mkdir of the new run directory lands first: this one's mkdir finds
    it there (FileExistsError), and it must go on to the lock, not fail."""
    run_dir = tmp_path / "new"
    real_mkdir = Path.mkdir
    raced = []

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if self == run_dir and not raced:
            raced.append(True)
            real_mkdir(self)  # the other writer
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with RunLock(run_dir, "second") as lock:
        assert raced and not lock.created_directory  # the race happened, and was survived
    assert run_dir.is_dir()  # not ours to remove: the other writer made it
