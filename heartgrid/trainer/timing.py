"""Wall-clock time per phase of training (`timing/*` in the metric contract).

Time is measured in windows (the epochs between two metric records). Phases are `env` (engine
steps), `forward` (policy forward passes of the rollout), `update` (the PPO update), `stats`
(episode statistics, logging) and `other` (the rest of the window: buffer writes, Python).

CUDA kernels run asynchronously: the host's clock at a phase boundary says when the kernels
were launched, not when they ran. On a GPU each phase therefore records a pair of CUDA events
in the stream and its time is the GPU's time between them, read when the window closes (one
synchronisation per window rather than one per phase boundary, which would stall the host
several times per step). On a CPU the host's clock is the truth.

Each window also says how many cores other processes kept busy (`timing/neighbour_cores`, on
Linux; not in the metric contract for that reason): a run that slowed down because the machine
filled up says so in its own metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from heartgrid.threads import LoadMeter
from heartgrid.trainer.metric_contract import TIMING_PHASES


class PhaseTimer:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.total_seconds = 0.0
        """Training time over the whole run, resumed runs included (checkpointed)."""
        self.load = LoadMeter()
        self.restart_window()

    def _now(self) -> float:
        """The host's clock; on a GPU after the queued work is done (window boundaries only)."""
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self._mark()
        try:
            yield
        finally:
            end = self._mark()
            if self.cuda:
                self.events.append((name, start, end))
            else:
                self.seconds[name] += end - start

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Work that is not training (evaluation): its time counts in no phase, no window and
        not in total_seconds, so SPS and the time shares stay those of training."""
        start = self._now()
        try:
            yield
        finally:
            self.window_start += self._now() - start

    def _mark(self) -> torch.cuda.Event | float:
        """A phase boundary: a CUDA event recorded in the stream, or the host's clock."""
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def restart_window(self) -> None:
        """Start a window now (also used to forget setup time before training starts)."""
        self.seconds = {phase: 0.0 for phase in TIMING_PHASES}
        self.events: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []
        self.window_start = self._now()
        self.load.read()

    def close_window(self) -> float:
        """End the current window; returns its wall time in seconds and starts the next one.
        `window_metrics` then describes the closed window."""
        wall = max(self._now() - self.window_start, 1e-9)
        for name, start, end in self.events:  # all complete after the synchronisation in _now
            self.seconds[name] += start.elapsed_time(end) / 1000.0
        self.total_seconds += wall
        named = sum(v for k, v in self.seconds.items() if k != "other")
        self.closed = dict(self.seconds, other=max(wall - named, 0.0))
        self.closed_wall = wall
        self.closed_load = self.load.read()
        self.seconds = {phase: 0.0 for phase in TIMING_PHASES}
        self.events = []
        self.window_start = self._now()
        return wall

    def window_metrics(self, epochs: int) -> dict[str, float]:
        """`timing/ms/<phase>` (milliseconds per epoch) and `timing/frac/<phase>` (share of the
        wall time) of the last closed window, which spanned `epochs` epochs."""
        metrics = {f"timing/ms/{k}": 1000.0 * v / max(epochs, 1) for k, v in self.closed.items()}
        metrics.update({f"timing/frac/{k}": v / self.closed_wall for k, v in self.closed.items()})
        if self.closed_load is not None:  # None without /proc/stat (not Linux)
            metrics["timing/neighbour_cores"] = self.closed_load
        return metrics

    def state_dict(self) -> dict:
        return {"total_seconds": self.total_seconds}

    def load_state_dict(self, state: dict) -> None:
        self.total_seconds = float(state["total_seconds"])
