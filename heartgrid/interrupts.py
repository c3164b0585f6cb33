"""Ctrl-C stops training cleanly: the first one lets the current epoch finish (so that the
checkpoint written next is consistent), a second one interrupts at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StopRequest:
    def __init__(self) -> None:
        self.requested = False
        self.listeners: list[Callable[[], None]] = []
        """Called once when a stop is first requested (the display uses it to say so)."""

    def request(self) -> None:
        if not self.requested:
            self.requested = True
            for listener in self.listeners:
                listener()

    @contextmanager
    def on_sigint(self) -> Iterator[None]:
        """Within the block, Ctrl-C requests a stop instead of raising KeyboardInterrupt.
        Signal handlers can only be installed from the main thread; elsewhere Ctrl-C keeps its
        default behaviour."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.request()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
