"""`python -m heartgrid.sweep.child PARENT_PID COMMAND...`: run COMMAND, stopped if the worker dies.

A trial's `heartgrid train` runs in a session of its own (a Ctrl-C meant for the sweep must not
reach it twice: the worker passes one stop on). The price is that it would outlive a worker
killed outright (SIGKILL, an out-of-memory kill) and go on training with nobody to score it.

This small supervisor stands between the worker and the trainer. On Linux it asks the kernel
for SIGTERM when its parent dies (PR_SET_PDEATHSIG) and then passes exactly one stop (SIGINT,
which every trainer takes as a stop whatever its `system.stop_signals`) to the trainer, which
saves a checkpoint and exits; the sweep's next start resumes the trial from it. Exactly one:
the kernel signals once per thread of a dying worker (the child passes from thread to thread
as they die), and a second stop would abort the trainer unsaved. The worker's own SIGINTs (a
stop, a prune; a second to abort) are passed on as they come. Elsewhere than Linux the trainer
runs on when the worker dies, and the next start waits for its run directory's lock before
resuming it.

The exit status is the trainer's (128 + N when signal N ended it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from types import FrameType

PR_SET_PDEATHSIG = 1


class Supervisor:
    def __init__(self) -> None:
        self.trainer: subprocess.Popen | None = None
        self.orphaned = False

    def pass_on(self, signum: int, frame: FrameType | None) -> None:
        """The worker's SIGINT: to the trainer, every time."""
        if self.trainer is not None and self.trainer.poll() is None:
            self.trainer.send_signal(signal.SIGINT)

    def parent_died(self, signum: int, frame: FrameType | None) -> None:
        """The worker is gone: one stop to the trainer, however many times this comes."""
        if not self.orphaned:
            self.orphaned = True
            self.pass_on(signum, frame)


def main(argv: list[str]) -> int:
    parent, command = int(argv[0]), argv[1:]
    supervisor = Supervisor()
    signal.signal(signal.SIGINT, supervisor.pass_on)
    signal.signal(signal.SIGTERM, supervisor.parent_died)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the fallback above
    if os.getppid() != parent or supervisor.orphaned:
        return 3  # the worker died before the request took hold: nobody would score this trial
    # Signals handled here are at their defaults in the trainer (exec resets them), so a SIGINT
    # that a shell's `cmd &` made this process ignore is not ignored there.
    supervisor.trainer = subprocess.Popen(command)
    if supervisor.orphaned:  # the worker died while the trainer was being started
        supervisor.pass_on(signal.SIGTERM, None)
    status = supervisor.trainer.wait()  # signal handlers run while it waits (PEP 475)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
