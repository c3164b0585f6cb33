"""How many CPU threads the policy's operations get when `system.torch_threads` is not set.

One thread per core is the fastest on a quiet machine (the CPU recipe trains ~17k agent-steps/s
with two threads on 2 cores, ~11k with one). When another process keeps a core busy, every
parallel operation waits at its barrier for a thread the OS has descheduled, and two threads
train slower than one (~7k against ~10k; benchmarks/README.md, "Threads on a shared CPU"). No
fixed setting is good in both cases, so the default looks at the machine once, when training
starts: it samples how busy this process's cores are over a fifth of a second (/proc/stat)
and gives up one thread per core that other work keeps busy.

Once, not continually: the thread count changes how float sums are split, so a run whose thread
count followed the load would not be reproducible from its seed. A neighbour that starts later
is not seen; the count is logged at the start of the run and `system.torch_threads` fixes it.
OMP_NUM_THREADS, when set, wins (the convention of OpenMP programs; `heartgrid ab`, sweeps and
`--nproc` set it for the processes they start).
"""

from __future__ import annotations

import os
import time
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


def busy_cores(cpus: list[int], seconds: float = PROBE_SECONDS) -> float | None:
    """Cores of `cpus` that other processes kept busy over `seconds` (this one sleeps)."""
    before, own = read_cpu_times(), time.process_time()
    if before is None:
        return None
    time.sleep(seconds)
    after, own = read_cpu_times(), time.process_time() - own
    if after is None:
        return None
    busy = total = 0
    for cpu in cpus:
        if cpu in before and cpu in after:
            busy += after[cpu][0] - before[cpu][0]
            total += after[cpu][1] - before[cpu][1]
    if total <= 0:
        return None
    used = busy / total * len(cpus)
    return max(0.0, used - own / seconds)


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
    taken = int(busy + (1 - BUSY_CORE))  # rounds busy to the nearest core, halves up
    threads = max(1, len(cpus) - taken)
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
