"""Stopping cleanly on a signal: Ctrl-C, and the preemption warnings clusters send.

Slurm (`--signal`, and SIGTERM before its kill), `docker stop`, systemd and Kubernetes send
SIGTERM (or SIGUSR1) and wait a grace period before SIGKILL; a closed terminal sends SIGHUP.
The first such signal only *requests* a stop: the trainer finishes (or, past its grace time,
cuts) the current epoch, writes a checkpoint and exits with `EXIT_STOPPED`. A second one
interrupts at once (KeyboardInterrupt: nothing more is saved), except within
`DUPLICATE_WINDOW_S` of the first, where it is the same stop told twice: Slurm and systemd
signal every process of a job, so a training process under `heartgrid ab` hears the
scheduler's SIGTERM and then ab's own. Only a second Ctrl-C (SIGINT after SIGINT), a person at
the terminal, aborts within the window. `heartgrid ab` uses the same request to pass one stop
on to each of its training processes.

The handler itself only records the request: the listeners (which write to the log and the
console) run from the main loop through `announce()`, never inside a signal handler, where a
write could interrupt another write to the same stream.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

EXIT_STOPPED = 3
"""Exit status of a run stopped by a signal after saving: the same command resumes it."""

DEFAULT_STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGHUP")
"""Besides SIGINT (Ctrl-C), which always stops."""

# Signals a process may catch and that mean "please stop" somewhere; SIGKILL/SIGSTOP cannot be
# caught, and the others (SIGCHLD, SIGWINCH, ...) are not stop requests.
CATCHABLE_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT", "SIGXCPU")

DUPLICATE_WINDOW_S = 2.0
"""A second stop signal this soon after the first is the same stop (see above)."""


def say(text: str, *, err: bool = False) -> None:
    """Print a line, unless the terminal is gone: a hang-up (or a reader of a pipe that quit)
    must not stop a run, an A/B or a sweep; their logs still tell."""
    try:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)
    except OSError:
        pass


class StopRequest:
    def __init__(self) -> None:
        self.requested = False
        self.reason: str | None = None
        """The signal's name ("SIGTERM") or the caller's word for it."""
        self.requested_at: float | None = None
        self.listeners: list[Callable[[str], None]] = []
        """Called once, with the reason, after a stop is requested (the display says so), from
        `announce()`."""
        self.announced = False

    def request(self, reason: str = "stop") -> None:
        if not self.requested:
            self.requested, self.reason, self.requested_at = True, reason, time.monotonic()

    def announce(self) -> None:
        """Tell the listeners about a requested stop, once (call from the main loop)."""
        if self.requested and not self.announced:
            self.announced = True
            for listener in self.listeners:
                listener(self.reason or "stop")

    def within(self, seconds: float) -> bool:
        """Whether a stop was requested less than `seconds` ago."""
        return self.requested_at is not None and time.monotonic() - self.requested_at < seconds

    def past(self, grace_s: float) -> bool:
        """Whether a stop was requested more than `grace_s` seconds ago."""
        return self.requested_at is not None and time.monotonic() - self.requested_at > grace_s

    @contextmanager
    def on_signals(self, names: Sequence[str] = (), *, until_exit: bool = False) -> Iterator[None]:
        """Within the block, SIGINT and the signals `names` request a stop instead of ending
        the process; a second one raises KeyboardInterrupt. Handlers can only be installed from
        the main thread; elsewhere the signals keep their default behaviour. Names this
        platform lacks (SIGUSR1 on Windows) are skipped, and so are signals the process was
        told to ignore: under `nohup` a closed terminal must not stop training.

        `until_exit` (the block is the process's work): after a stop, the signals other than
        SIGINT are ignored rather than restored, so that the scheduler's second SIGTERM,
        arriving while the process exits with its checkpoint saved, cannot kill it (exit 143
        instead of 3); Ctrl-C still interrupts an exit that hangs."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: object) -> None:
            name = signal.Signals(signum).name
            if self.requested:
                repeated = name == "SIGINT" and self.reason == "SIGINT"
                if repeated or not self.within(DUPLICATE_WINDOW_S):
                    raise KeyboardInterrupt
                return  # the same stop, told by the scheduler and by ab
            self.request(name)

        wanted = dict.fromkeys(["SIGINT", *names])
        previous = {}
        for name in wanted:
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                previous[number] = signal.signal(number, handler)
        try:
            yield
        finally:
            for number, old in previous.items():
                after_stop = until_exit and self.requested and number != signal.SIGINT
                signal.signal(number, signal.SIG_IGN if after_stop else old)
