"""The default torch thread count: one per core, less the cores other processes keep busy."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from heartgrid.config.run import RunConfig
from heartgrid.trainer.process import configure_torch, resumed_threads
from heartgrid.threads import (
    BUSY_CORE,
    LoadMeter,
    NeighbourWatch,
    busy_cores,
    choose_threads,
    cores,
    omp_threads,
    read_cpu_times,
)


@pytest.fixture
def no_omp_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize(("busy", "expected"), [(0.0, 2), (0.3, 2), (0.5, 1), (1.0, 1), (1.9, 1)])
def test_busy_cores_are_given_up(no_omp_variable: None, busy: float, expected: int) -> None:
    choice = choose_threads(cpus=[0, 1], busy=busy)
    assert choice.threads == expected
    assert f"{busy:.1f} kept busy" in choice.reason


def test_more_cores(no_omp_variable: None) -> None:
    assert choose_threads(cpus=list(range(16)), busy=3.2).threads == 13
    assert choose_threads(cpus=list(range(16)), busy=20.0).threads == 1


def test_omp_num_threads_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    choice = choose_threads(cpus=[0, 1], busy=0.0)
    assert (choice.threads, choice.reason) == (3, "OMP_NUM_THREADS=3")


def test_unknown_load_means_one_per_core(no_omp_variable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("heartgrid.threads.read_cpu_times", lambda path="/proc/stat": None)
    choice = choose_threads(cpus=[0, 1, 2])
    assert choice.threads == 3 and "unknown" in choice.reason


def test_reads_proc_stat_lines(tmp_path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  10 0 10 70 10 0 0 0 0 0\n"
                    "cpu0 4 1 5 30 5 0 0 0 0 0\n"
                    "cpu1 6 0 5 40 5 0 0 0 0 0\n"
                    "intr 12345\nctxt 99\n")
    # busy = user + nice + system + irq + softirq + steal; idle and iowait are not
    assert read_cpu_times(str(stat)) == {0: (10, 45), 1: (11, 56)}


@pytest.mark.skipif(read_cpu_times() is None, reason="needs Linux's /proc/stat")
def test_a_spinning_neighbour_is_seen(no_omp_variable: None) -> None:
    cpu = cores()[0]
    spinner = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\n"
                                                      "while True: pass"])
    try:
        busy_cores([cpu], 0.3)  # let it start spinning
        # Other work on the machine can only add to what is seen.
        assert busy_cores([cpu], 0.3) >= BUSY_CORE  # counted as taken
    finally:
        spinner.kill()
        spinner.wait()


def test_configure_torch_sets_and_says(no_omp_variable: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("heartgrid.trainer.process.choose_threads",
                        lambda: choose_threads(cpus=[0, 1], busy=1.0))
    note = configure_torch(RunConfig(), torch.device("cpu"))
    assert torch.get_num_threads() == 1
    assert note == "torch threads: 1 (2 cores, 1.0 kept busy by other processes)"
    config = RunConfig.model_validate({"system": {"torch_threads": 2}})
    assert configure_torch(config, torch.device("cpu")) == "torch threads: 2 (system.torch_threads)"
    assert torch.get_num_threads() == 2


def test_a_resume_keeps_the_count_the_run_started_with(no_omp_variable: None) -> None:
    cpu = torch.device("cpu")
    torch.set_num_threads(1)
    note = resumed_threads(RunConfig(), cpu, recorded=2)
    assert torch.get_num_threads() == 2 and "as when the run started" in note
    # A count the command sets wins, and another one than the run trained on is said: the
    # resumed run is no longer the uninterrupted one bit for bit.
    torch.set_num_threads(1)
    fixed = RunConfig.model_validate({"system": {"torch_threads": 1}})
    assert resumed_threads(fixed, cpu, recorded=2) == (
        "torch threads: 1 (system.torch_threads), where the run trained on 2: the count changes float "
        "sums, so from here the run is not bit for bit an uninterrupted one")
    assert resumed_threads(fixed, cpu, recorded=1) is None
    # A GPU run or an old checkpoint: nothing to do.
    assert resumed_threads(RunConfig(), torch.device("cuda"), recorded=2) is None
    assert resumed_threads(RunConfig(), cpu, recorded=None) is None
    assert torch.get_num_threads() == 1


def test_omp_num_threads_wins_on_a_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    assert "torch threads: 1 (OMP_NUM_THREADS), where the run trained on 2" in resumed_threads(
        RunConfig(), torch.device("cpu"), recorded=2)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(("value", "expected"), [("4", 4), ("4,2", 4), (" 3 ", 3), ("0", None),
                                                 ("", None), ("many", None)])
def test_omp_num_threads_is_read_as_openmp_does(monkeypatch: pytest.MonkeyPatch, value: str,
                                                expected: int | None) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert omp_threads() == expected
    # choose_threads and a resume agree on whether the variable decides.
    assert (choose_threads(cpus=[0, 1], busy=0.0).threads == expected) == (expected is not None)
    torch.set_num_threads(1)
    note = resumed_threads(RunConfig(), torch.device("cpu"), recorded=2)
    assert ("(OMP_NUM_THREADS), where the run trained on 2" in note) == (expected is not None)


def test_import_sets_a_long_openmp_spin_unless_told_otherwise() -> None:
    """Set by `import heartgrid` before torch loads libgomp; a setting of the user's wins."""
    script = ("import os, heartgrid; "
              "print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
    plain = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    def run(**variables: str) -> str:
        return subprocess.run([sys.executable, "-c", script], env={**plain, **variables}, check=True,
                              capture_output=True, text=True).stdout.strip()
    assert run() == "3000000 None"
    assert run(OMP_WAIT_POLICY="PASSIVE") == "None PASSIVE"
    assert run(GOMP_SPINCOUNT="3000") == "3000 None"


def test_the_load_meter_does_not_count_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Busy time on the cores, less this process's CPU time, over the wall time between readings."""
    stats = iter([{0: (100, 1000), 1: (100, 1000)}, {0: (180, 1100), 1: (150, 1100)}])
    clocks = iter([10.0, 10.3])  # process CPU seconds
    walls = iter([5.0, 6.0])
    monkeypatch.setattr("heartgrid.threads.read_cpu_times", lambda: next(stats))
    # The module's clocks only: other threads keep the real ones.
    monkeypatch.setattr("heartgrid.threads.time", SimpleNamespace(process_time=lambda: next(clocks),
                                                                  perf_counter=lambda: next(walls)))
    meter = LoadMeter([0, 1])
    # 130 of 200 jiffies busy over the two cores (1.3 cores), 0.3 of them this process's.
    assert meter.read() == pytest.approx(1.0)


def record(epoch: int, busy: float, threads: int = 2, epoch_time: float = 10.0) -> dict[str, float]:
    return {"metric/epoch": epoch, "timing/neighbour_cores": busy, "timing/torch_threads": threads,
            "overview/epoch_time_s": epoch_time}


def test_a_late_neighbour_is_said_once_it_has_stayed() -> None:
    watch = NeighbourWatch(start_epoch=10, cpus=2, seconds=60.0)
    # Quiet, then a neighbour on one core: said once, when the last 60 s of training average
    # more than half a core (10 s quiet and 50 s busy), not before.
    assert watch.check(record(11, 0.1)) is None
    said = [watch.check(record(epoch, 1.0)) for epoch in range(12, 20)]
    assert said[:4] == [None] * 4 and said[5:] == [None] * 3
    assert said[4].startswith("warning: over the last 60 s of training, work outside this process kept "
                              "0.8 of its 2 cores busy")
    assert "leaving 1 for its 2 torch threads" in said[4] and "system.torch_threads=1 added" in said[4]
    # Gone, and back: said again.
    assert [watch.check(record(epoch, 0.0)) for epoch in range(20, 27)] == [None] * 7
    again = [watch.check(record(epoch, 0.9)) for epoch in range(27, 35)]
    assert sum(message is not None for message in again) == 1


def test_a_neighbour_about_the_threshold_is_said_once() -> None:
    watch = NeighbourWatch(cpus=2, seconds=60.0)
    loads = [0.6] * 6 + [0.4] * 6 + [0.6] * 6 + [0.0] * 6 + [0.6] * 6  # 10 s each
    said = [watch.check(record(epoch, busy)) for epoch, busy in enumerate(loads, start=1)]
    # Under half a core again (0.4) is not gone: only the quiet minute rearms the warning.
    assert [i for i, message in enumerate(said) if message is not None] == [5, 28]


def test_more_threads_than_cores_rearm_when_the_neighbour_leaves() -> None:
    watch = NeighbourWatch(cpus=2, seconds=60.0)
    loads = [1.0] * 6 + [0.0] * 6 + [1.0] * 6
    said = [watch.check(record(epoch, busy, threads=4)) for epoch, busy in enumerate(loads, start=1)]
    assert [i for i, message in enumerate(said) if message is not None] == [5, 14]  # 14: half a core


@pytest.mark.parametrize(("busy", "threads", "cpus", "warned"), [
    (0.4, 2, 2, False),  # less than half a core is not a core taken (as choose_threads counts)
    (0.6, 1, 2, False),  # one thread: nothing to give up
    (0.0, 4, 2, False),  # more threads than cores, but no neighbour
    (1.0, 4, 2, True),  # and with one
    (3.0, 13, 16, False),  # the threads fit in the cores left
    (4.0, 13, 16, True),
    (float("nan"), 2, 2, False),  # the OS does not say
])
def test_a_neighbour_matters_when_it_leaves_fewer_cores_than_threads(busy: float, threads: int, cpus: int,
                                                                     warned: bool) -> None:
    watch = NeighbourWatch(cpus=cpus, seconds=60.0)
    said = [watch.check(record(epoch, busy, threads, epoch_time=30.0)) for epoch in (1, 2, 3)]
    assert any(said) == warned


def test_a_record_counts_the_epochs_since_the_one_before() -> None:
    """Records every 3 epochs of 10 s: two records hold 60 s."""
    watch = NeighbourWatch(start_epoch=0, cpus=2, seconds=60.0)
    assert watch.check(record(3, 1.0)) is None
    assert watch.check(record(6, 1.0)) is not None
