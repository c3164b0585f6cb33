"""`heartgrid train ... --nproc N` and `heartgrid bench train ... --nproc N`: N ranks of a verb
on this machine, started through torchrun (docs/distributed.md).

    python -m torch.distributed.run --standalone --nproc_per_node N -m heartgrid VERB ...

torchrun ends with 1 whenever a rank ends with anything but 0, so each rank also writes the
status it ends with into a directory named by HEARTGRID_STATUS_DIR (`python -m heartgrid`
does, `record_status`), and the launcher ends with rank 0's: 0 finished, 2 usage, 3 stopped
after saving, 4 file-system fault, 1 a rank failed (named on stderr).

A stop signal to the launcher (Ctrl-C, SIGTERM, SIGHUP, ...) goes to the ranks themselves,
once: torchrun, in a session of its own, does not hear the terminal, and a signal to torchrun
would make it report the ranks' clean stop as a failure. The ranks agree to stop after the
same epoch, rank 0 saves, and each ends with 3 recorded and 0 for torchrun. A second Ctrl-C is
passed on too: the ranks abort without saving.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from heartgrid.errors import UsageError
from heartgrid.interrupts import EXIT_STOPPED, say

STATUS_DIR_ENV = "HEARTGRID_STATUS_DIR"
"""Where each rank writes `rank<N>` holding its exit status (set by the launcher)."""

SHUTDOWN_TIMEOUT_S = 300
"""How long torchrun waits for the ranks to save and exit after a signal sent to torchrun itself
(rather than through the launcher) before it kills them (torchrun's own default: 30 s)."""


def record_status(code: int) -> int:
    """Write this rank's exit status where the launcher reads it; returns the status the
    process should end with: under the launcher, an ending every rank agreed on (a clean stop,
    a failed start-up) ends with 0, so that torchrun does not report it as a failure (the
    launcher ends with the recorded status). Any other keeps its status, for torchrun to stop
    the other ranks."""
    directory = os.environ.get(STATUS_DIR_ENV)
    if not directory:
        return code
    path = Path(directory) / f"rank{os.environ.get('RANK', '0')}"
    try:
        path.write_text(f"{code}\n")
    except OSError:
        return code
    from heartgrid.trainer.world_start import ending_agreed

    return 0 if code == EXIT_STOPPED or ending_agreed() else code


def check_nproc(nproc: int) -> None:
    if nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {nproc}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("--nproc starts torchrun itself; under torchrun, leave --nproc out")


def torchrun_command(nproc: int, argv: Sequence[str], signals: Sequence[str]) -> list[str]:
    handled = ",".join(dict.fromkeys(["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", *signals]))
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        f"--signals-to-handle={handled}", f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}",
        "-m", "heartgrid", *argv,
    ]


def rank_environment(nproc: int, status_dir: str) -> dict[str, str]:
    env = dict(os.environ, **{STATUS_DIR_ENV: status_dir})
    # torchrun sets one OpenMP thread per rank when unset (and prints a banner); a share of
    # the cores is what the ranks of one machine can use without waiting for each other.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def launch(nproc: int, argv: Sequence[str], *, verb: str, signals: Sequence[str] = (),
           capture: bool = False) -> tuple[int, str]:
    """Run `heartgrid ARGV` on `nproc` ranks; (the ranks' exit status, rank output when
    `capture`: stdout, which then does not reach the console)."""
    with tempfile.TemporaryDirectory(prefix="heartgrid-ranks-") as status_dir:
        process = subprocess.Popen(
            torchrun_command(nproc, argv, signals), env=rank_environment(nproc, status_dir),
            start_new_session=True, stdout=subprocess.PIPE if capture else None, text=True,
        )
        forwarded = forward_stop_signals(process, ["SIGINT", *signals])
        try:
            output, _ = process.communicate()
        finally:
            forwarded()
        statuses = read_statuses(status_dir, nproc)
    return rank_outcome(verb, statuses, nproc, process.returncode), output or ""


def read_statuses(directory: str, nproc: int) -> dict[int, int]:
    statuses = {}
    for rank in range(nproc):
        try:
            statuses[rank] = int((Path(directory) / f"rank{rank}").read_text())
        except (OSError, ValueError):
            pass
    return statuses


def rank_outcome(verb: str, statuses: dict[int, int], nproc: int, torchrun_status: int) -> int:
    """The launcher's exit status; one line naming every rank that failed."""
    silent = [rank for rank in range(nproc) if rank not in statuses]
    failed = {rank: code for rank, code in statuses.items() if code not in (0, EXIT_STOPPED)}
    if silent:
        say(f"heartgrid {verb}: error: rank {', '.join(map(str, silent))} of {nproc} ended without an exit "
            "status: killed (SIGKILL, the out-of-memory killer) or crashed in the interpreter; "
            + (f"the others ended with {', '.join(f'rank {r}: {c}' for r, c in sorted(statuses.items()))}"
               if statuses else "torchrun stopped the others"), err=True)
    elif any(code != statuses[0] for code in statuses.values()) and failed:
        say(f"heartgrid {verb}: ranks ended with different statuses: "
            f"{', '.join(f'rank {r}: {c}' for r, c in sorted(statuses.items()))}", err=True)
    if 0 in statuses and statuses[0] != 0:
        return statuses[0]
    if silent or failed:
        return 1
    if torchrun_status and statuses:  # every rank finished its work, then one crashed on exit
        say(f"heartgrid {verb}: error: every rank reported status 0 but torchrun failed (status "
            f"{torchrun_status}): a rank crashed while exiting; its output is above", err=True)
        return 1
    return statuses.get(0, 1 if torchrun_status else 0)


def forward_stop_signals(process: subprocess.Popen, names: Sequence[str]):
    """Pass each stop signal the launcher receives to the ranks (module docstring); returns
    the function that puts the previous handlers back."""
    def handler(signum: int, frame: object) -> None:
        targets = rank_processes(process.pid) or [process.pid]
        for pid in targets:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    previous = {}
    for name in dict.fromkeys(names):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, handler)

    def restore() -> None:
        for number, old in previous.items():
            signal.signal(number, old)
    return restore


def rank_processes(torchrun_pid: int) -> list[int]:
    """The ranks: torchrun's child processes (Linux's /proc; [] elsewhere)."""
    children = []
    try:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == torchrun_pid:  # the parent's PID
                children.append(int(entry.name))
    except OSError:
        return []
    return children
