"""How many CPU threads the policy's operations get when `system.torch_threads` is not set.

One thread per core is the fastest on a quiet machine (the CPU recipe trained ~11k agent-steps/s
with two threads on the 2-vCPU VM, ~7.7k with one). When another process keeps a core busy, every
parallel operation waits at its barrier for a thread the OS has descheduled, and two threads
train slower than one (~3.4k against ~7.2k; benchmarks/README.md, "Threads on a shared CPU"). No
fixed setting is good in both cases, so the default looks at the machine once, when training
starts: it samples how busy this process's cores are over a fifth of a second (/proc/stat)
and gives up one thread per core that other work keeps busy.

Once, not continually: the thread count changes how float sums are split, so a run whose thread
count followed the load would not be reproducible from its seed. A neighbour that starts later
does not change the count: training logs the load it sees (`timing/neighbour_cores`) and says
when it leaves fewer free cores than the run has threads (`NeighbourWatch`); the count is logged
at the start of the run and `system.torch_threads` fixes it.
OMP_NUM_THREADS, when set, wins (the convention of OpenMP programs; `heartgrid ab`, sweeps and
`--nproc` set it for the processes they start).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass

PROBE_SECONDS = 0.2
BUSY_CORE = 0.5
"""A core counts as taken when other processes used at least this share of it, on average."""


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str


def cores() -> list[int]:
    """The CPUs this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def read_cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]] | None:
    """Per CPU (busy, total) jiffies since boot; None where /proc/stat is not there (not Linux)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    times = {}
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        idle = values[3] + values[4]
        times[int(name[3:])] = (sum(values) - idle, sum(values))
    return times


class LoadMeter:
    """Cores of `cpus` that other processes kept busy between two readings: all busy time on
    those cores (/proc/stat) less this process's own CPU time, over the wall time between. What
    it cannot tell apart counts as other processes': this process's children (inductor's
    compile workers), and time the hypervisor steals."""

    def __init__(self, cpus: list[int] | None = None):
        self.cpus = cores() if cpus is None else cpus
        self._mark()

    def _mark(self) -> None:
        self.times, self.own, self.wall = read_cpu_times(), time.process_time(), time.perf_counter()

    def read(self) -> float | None:
        """Since the last reading (or the meter's start); None where /proc/stat is unreadable."""
        before, own, wall = self.times, self.own, self.wall
        self._mark()
        after, own, wall = self.times, self.own - own, self.wall - wall
        if before is None or after is None or wall <= 0:
            return None
        busy = total = 0
        for cpu in self.cpus:
            if cpu in before and cpu in after:
                busy += after[cpu][0] - before[cpu][0]
                total += after[cpu][1] - before[cpu][1]
        if total <= 0:
            return None
        used = busy / total * len(self.cpus)
        return max(0.0, used - own / wall)


def busy_cores(cpus: list[int], seconds: float = PROBE_SECONDS) -> float | None:
    """Cores of `cpus` that other processes kept busy over `seconds` (this one sleeps)."""
    meter = LoadMeter(cpus)
    if meter.times is None:
        return None
    time.sleep(seconds)
    return meter.read()


def free_cores(cpus: int, busy: float) -> int:
    """The cores that `busy` cores' worth of other work leaves, at least one: busy rounds to
    the nearest core, halves up (half a core kept busy counts as taken)."""
    return max(1, cpus - int(busy + (1 - BUSY_CORE)))


def crowded(threads: int, cpus: int, busy: float) -> int | None:
    """The free cores, when `busy` cores' worth of other work leaves fewer than `threads` need
    (more threads than cores is not the other work's doing: they need every core); else None."""
    free = free_cores(cpus, busy)
    return free if free < min(threads, cpus) else None


REARM_MARGIN = 0.25
"""Cores below the warning's threshold the load must fall to before it can be said again."""

NEIGHBOUR_SECONDS = 60.0
"""How long (training time) a neighbour must have kept cores busy before training says so."""

LATE_NEIGHBOUR = (
    "warning: over the last {seconds:.0f} s of training, work outside this process kept {busy:.1f} "
    "of its {cores} cores busy (timing/neighbour_cores: other processes, this run's child processes "
    "or the hypervisor), leaving {free} for its {threads} torch threads; a thread that waits for a "
    "busy core slows every step (2 threads beside one busy process on 2 cores trained ~2x slower "
    "than 1: benchmarks/README.md, \"Threads on a shared CPU\"). If that load stays: stop the run "
    "(Ctrl-C or SIGTERM; it saves a checkpoint) and run the same command again with "
    "system.torch_threads={free} added; it resumes, no longer bit for bit. Said again only if the "
    "load goes away and comes back"
)


class NeighbourWatch:
    """Feed every metrics record to `check`: it says once when other processes have kept more
    cores busy, over the last `seconds` of training, than the run's threads leave them, and
    again only after the load went away and came back."""

    def __init__(self, start_epoch: int = 0, cpus: int | None = None, seconds: float = NEIGHBOUR_SECONDS):
        """`start_epoch`: the epoch training (re)starts from; a record covers the epochs since
        the one before it."""
        self.last_epoch = start_epoch
        self.cpus = len(cores()) if cpus is None else cpus
        self.seconds = seconds
        self.window: deque[tuple[float, float]] = deque()  # (seconds, cores busy) per record
        self.warned = False

    def check(self, record: dict[str, float]) -> str | None:
        epoch = int(record["metric/epoch"])
        epochs, self.last_epoch = epoch - self.last_epoch, epoch
        busy, threads = record.get("timing/neighbour_cores"), record.get("timing/torch_threads")
        if busy is None or threads is None or not math.isfinite(busy) or epochs <= 0:
            return None
        self.window.append((record["overview/epoch_time_s"] * epochs, busy))
        while len(self.window) > 1 and sum(s for s, _ in self.window) - self.window[0][0] >= self.seconds:
            self.window.popleft()
        seconds = sum(s for s, _ in self.window)
        mean = sum(s * b for s, b in self.window) / max(seconds, 1e-9)
        free = crowded(int(threads), self.cpus, mean)
        if free is None:
            # Rearmed only once the load is clearly gone: a neighbour hovering about half a
            # core would otherwise be announced again and again.
            if crowded(int(threads), self.cpus, mean + REARM_MARGIN) is None:
                self.warned = False
            return None
        if seconds < self.seconds or self.warned:
            return None
        self.warned = True
        return LATE_NEIGHBOUR.format(busy=mean, cores=self.cpus, seconds=seconds, threads=int(threads),
                                     free=free)


def omp_threads() -> int | None:
    """OMP_NUM_THREADS when it names a thread count (its first level, as "4" or "4,2"), else None."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def choose_threads(cpus: list[int] | None = None, busy: float | None = None) -> ThreadChoice:
    """The default thread count: one per core of `cpus`, less the cores other work keeps busy
    (`busy`, probed when not given), at least one."""
    variable = omp_threads()
    if variable is not None:
        return ThreadChoice(variable, f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    cpus = cores() if cpus is None else cpus
    if busy is None:
        busy = busy_cores(cpus)
    if busy is None:
        return ThreadChoice(len(cpus), f"one per core ({len(cpus)}); CPU load unknown")
    threads = free_cores(len(cpus), busy)
    return ThreadChoice(threads, f"{len(cpus)} cores, {busy:.1f} kept busy by other processes")


def share_of_cores(parallel: int) -> ThreadChoice:
    """The thread count of each of `parallel` processes that train at once (the runs of an A/B
    or a sweep), to be chosen once for all of them: the count changes float sums. The user's
    OMP_NUM_THREADS as it is, else an equal share of the cores other work leaves free."""
    free = choose_threads()
    if omp_threads() is not None:
        return free
    return ThreadChoice(max(1, free.threads // parallel), f"{free.reason}; {free.threads} free, {parallel} at once")


def thread_env(threads: int) -> dict[str, str]:
    """The environment of a training subprocess that must use `threads` threads."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
