"""Helpers of the viewer and play tests: real replays recorded with EpisodeRecorder, a server
in a thread, and headless Chromium through Playwright.

Chromium is Debian's `chromium` package (scripts/test.sh installs it where it is missing);
Playwright drives it by `executable_path` and never downloads a browser of its own.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from heartgrid.engine.batched import BatchedEngine
from heartgrid.recipes import build_config
from heartgrid.replay.format import write_replay
from heartgrid.replay.recorder import EpisodeRecorder
from heartgrid.replay.server import bind_socket, make_server

CHROMIUM = "/usr/bin/chromium"
# What works as root on a machine without a display or network (CI runs the tests as root).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 800}
WAIT_MS = 20_000  # generous: a busy 2-core CI machine; nothing here is a timing assertion


def chromium_path() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path is None:
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium package "
                    "(apt-get install -y --no-install-recommends chromium)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (a launch costs about a second)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own context: no shared storage). The served page's Content-Security-
    Policy forbids eval, which Playwright's wait_for_function needs, hence bypass_csp."""
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def open_viewer(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("window.heartgrid && (window.heartgrid.ready || window.heartgrid.error)",
                           timeout=WAIT_MS)
    error = page.evaluate("window.heartgrid.error")
    assert error is None, f"the viewer reports: {error}"


def scrub_to(page: Any, t: int) -> None:
    """Move the scrubber as a person drags it: set the range input, fire its input event."""
    page.locator("#scrubber").evaluate(
        "(el, t) => { el.value = String(t); el.dispatchEvent(new Event('input', {bubbles: true})); }", t)


def click_object(page: Any, object_id: int, canvas: int = 0) -> None:
    """A real mouse click on the cell where the object is now drawn."""
    point = page.evaluate(f"window.heartgrid.cellCenter({object_id}, {canvas})")
    page.mouse.click(point["x"], point["y"])


def canvas_pixel(page: Any, canvas_id: str, x: float, y: float) -> list[int]:
    """RGBA of a canvas pixel at page coordinates (x, y), after the next frame is drawn."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return page.evaluate(
        """([id, x, y]) => { const c = document.getElementById(id); const r = c.getBoundingClientRect();
            const px = Math.floor((x - r.left) * c.width / r.width), py = Math.floor((y - r.top) * c.height / r.height);
            return Array.from(c.getContext('2d').getImageData(px, py, 1, 1).data); }""",
        [canvas_id, x, y])


def hex_rgb(color: str) -> list[int]:
    return [int(color[i:i + 2], 16) for i in (1, 3, 5)]


# ------------------------------------------------------------------------------------------
# Real replays


def record_random_episode(path: Path, recipe: str, steps: int, overrides: list[str] | None = None, *,
                   seed: int = 0, action_seed: int = 1, diverge_at: int | None = None,
                   other_seed: int = 2) -> Path:
    """Record env 0 of a 1-env engine playing uniformly random actions (seeded); from step
    `diverge_at` on (0-based) the actions come from a second generator, so two recordings
    differing only there share every step before it."""
    game = build_config(recipe, overrides or [], default_device="cpu").game
    game.desync_episodes = False
    engine = BatchedEngine(game, 1, seed=seed)
    engine.reset()
    recorder = EpisodeRecorder(engine, 0, {"source": "eval", "recipe": recipe, "policy": "random"})
    recorder.begin()
    first = torch.Generator().manual_seed(action_seed)
    second = torch.Generator().manual_seed(other_seed)
    n = len(engine.action_names)
    for t in range(steps):
        generator = second if diverge_at is not None and t >= diverge_at else first
        actions = torch.randint(0, n, (engine.num_slots,), generator=generator)
        engine.step(actions)
        recorder.record(actions)
        if recorder.done:
            break
    return write_replay(path, recorder.document())


# ------------------------------------------------------------------------------------------
# A real server (uvicorn) in a thread


class ServerThread:
    """Serve an app on 127.0.0.1 (a free port) from a thread, as the CLI serves it."""

    def __init__(self, app: Any):
        self.sock = bind_socket("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = make_server(app)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + WAIT_MS / 1000
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def wait_until(condition: Any, what: str, timeout_s: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
