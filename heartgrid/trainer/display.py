"""The live terminal display of a training run (`logging.console`: rich, plain or none).

Shows progress in agent steps, SPS, mean episode reward, hearts per agent per episode
(`env_agent/heart.get`), the losses and the time elapsed and left.

A console that goes away (`heartgrid train ... | head` after head exits, a closed terminal or
SSH session) never stops training: `make_display` wraps the display in `ConsoleGuard`, which
turns it off at the first failed write; the run goes on and `log.txt` keeps the record.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from heartgrid.rundir import STEP_KEY

_ROWS = (
    ("reward / episode", "overview/reward"),
    ("hearts / agent / episode", "env_agent/heart.get"),
    ("episode length", "experience/ep_lengths"),
    ("policy loss", "losses/policy_loss"),
    ("value loss", "losses/value_loss"),
    ("entropy", "losses/entropy"),
    ("approx kl", "losses/approx_kl"),
    ("clipfrac", "losses/clipfrac"),
    ("explained variance", "losses/explained_variance"),
    ("learning rate", "parameters/learning_rate"),
)


class Display(Protocol):
    def update(self, record: dict[str, float]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


def format_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def time_left(record: dict[str, float], total_timesteps: int) -> float:
    sps = record.get("overview/sps", 0.0)
    remaining = total_timesteps - record[STEP_KEY]
    return remaining / sps if sps > 0 else float("inf")


class RichDisplay:
    def __init__(self, run: str, total_timesteps: int, console: Console | None = None):
        self.run, self.total = run, total_timesteps
        self.note = "starting…"
        self.record: dict[str, float] = {}
        # Drawn from this thread only (no refresh thread): a write to a closed terminal then
        # fails here, where ConsoleGuard catches it, and nothing on screen changes between
        # records anyway.
        self.live = Live(self.render(), console=console, auto_refresh=False, transient=False)
        self.live.start()

    def render(self) -> Group:
        r = self.record
        step = int(r.get(STEP_KEY, 0))
        header = Text.assemble(
            (f"HeartGrid · {self.run}", "bold"),
            f"   epoch {int(r.get('metric/epoch', 0))}   agent steps {step:,} / {self.total:,}",
        )
        table = Table.grid(padding=(0, 2))
        table.add_column(style="cyan")
        table.add_column(justify="right")
        table.add_row("SPS", f"{r['overview/sps']:,.0f}" if "overview/sps" in r else "–")
        for label, key in _ROWS:
            table.add_row(label, f"{r[key]:.4g}" if key in r else "–")
        if r:
            table.add_row("elapsed", format_duration(r.get("metric/total_time", 0.0)))
            left = time_left(r, self.total)
            table.add_row("time left", format_duration(left) if left != float("inf") else "–")
        # A ProgressBar ends without a line break; in a grid row it gets its own line (else the
        # next row is drawn on the bar's line and cut off on an 80-column terminal).
        bar = Table.grid()
        bar.add_row(ProgressBar(total=self.total, completed=min(step, self.total), width=60))
        return Group(header, bar, table, Text(self.note, style="dim"))

    def update(self, record: dict[str, float]) -> None:
        # Episode metrics are absent from records in which no episode ended (long episodes,
        # few envs): keep showing the last value rather than flickering to "–".
        self.record = {**self.record, **record}
        self.note = "Ctrl-C: stop after this epoch and save a checkpoint"
        self.live.update(self.render(), refresh=True)

    def message(self, text: str) -> None:
        if text.startswith("warning:"):
            # Printed above the live area, so it stays on screen after the next update.
            self.live.console.print(Text(text, style="yellow"))
            return
        self.note = text
        self.live.update(self.render(), refresh=True)

    def close(self) -> None:
        self.live.stop()


class PlainDisplay:
    """One line per metric record, for logs and terminals without cursor control."""

    def __init__(self, run: str, total_timesteps: int, stream=None):
        self.total = total_timesteps
        self.stream = stream or sys.stdout

    def update(self, record: dict[str, float]) -> None:
        parts = [f"epoch {int(record['metric/epoch'])}",
                 f"steps {int(record[STEP_KEY]):,}/{self.total:,}",
                 f"sps {record.get('overview/sps', 0):,.0f}"]
        for label, key in _ROWS[:6]:
            if key in record:
                parts.append(f"{label} {record[key]:.4g}")
        left = time_left(record, self.total)
        if left != float("inf"):
            parts.append(f"left {format_duration(left)}")
        print("  ".join(parts), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        self.stream.flush()


class NoDisplay:
    """`logging.console=none`: the metrics still go to the run directory."""

    def update(self, record: dict[str, float]) -> None:
        return None

    def message(self, text: str) -> None:
        return None

    def close(self) -> None:
        return None


class ConsoleGuard:
    """Passes calls to `display` until a write fails (EPIPE, EIO: the reader or the terminal
    is gone); then says so once through `on_closed` (the run's log.txt) and shows nothing more.
    Standard output is pointed at /dev/null so that no later write, nor the interpreter's
    final flush, fails again."""

    def __init__(self, display: Display, on_closed: Callable[[str], None]):
        self.display: Display = display
        self.on_closed = on_closed

    def _call(self, method: str, *args: object) -> None:
        try:
            getattr(self.display, method)(*args)
        except OSError as e:
            self.display = NoDisplay()
            silence_stdout()
            self.on_closed(f"the console went away ({e.strerror or e}); training goes on, "
                           f"logging to log.txt only")

    def update(self, record: dict[str, float]) -> None:
        self._call("update", record)

    def message(self, text: str) -> None:
        self._call("message", text)

    def close(self) -> None:
        self._call("close")


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a test's captured stream)
        pass


def make_display(mode: str, run: str, total_timesteps: int, on_closed: Callable[[str], None]) -> Display:
    """The display `logging.console` asks for; `on_closed` hears when the console goes away."""
    display: Display
    if mode == "rich" and sys.stdout.isatty():
        display = RichDisplay(run, total_timesteps)
    elif mode in ("rich", "plain"):
        display = PlainDisplay(run, total_timesteps)
    else:
        return NoDisplay()
    return ConsoleGuard(display, on_closed)
