"""The viewer as one self-contained HTML file (`heartgrid replay ... --html OUT`).

The page's CSS and scripts are inlined, and the replays are embedded as base64 of their
.hgreplay bytes (gzip JSON: the smallest form, and the page reads it exactly as it reads a
served file). The result opens from file:// with no server and no network.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from heartgrid.checkpoint.durable import replace_file_atomically
from heartgrid.replay.server import ServedReplay, viewer_assets

_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([a-z.]+)">')
_SCRIPT = re.compile(r'<script src="([a-z.]+)"></script>')


def _inline_script(text: str) -> str:
    # Inside <script>, only "</script" (any case) ends the element: make sure none occurs.
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def viewer_html(replays: list[ServedReplay], *, compare: bool = False) -> str:
    """The page, with `replays` embedded (side by side when `compare`, else a picker)."""
    if compare and len(replays) != 2:
        raise ValueError(f"side by side needs 2 replays, got {len(replays)}")
    assets = {name: data.decode("utf-8") for name, data in viewer_assets().items()}
    data = {
        "replays": [{"name": r.path.name, "label": r.label,
                     "data": base64.b64encode(r.path.read_bytes()).decode("ascii")} for r in replays],
        "compare": [0, 1] if compare else None,
    }
    # JSON in a <script> element: escape "<" so that no name can close the element.
    embedded = json.dumps(data, ensure_ascii=True).replace("<", "\\u003c")
    page = assets["index.html"]
    page = _STYLESHEET.sub(lambda m: f"<style>\n{assets[m.group(1)]}</style>", page)
    page = _SCRIPT.sub(lambda m: f"<script>\n{_inline_script(assets[m.group(1)])}</script>", page)
    data_tag = f'<script id="hg-data" type="application/json">{embedded}</script>\n'
    return page.replace("<script>", data_tag + "<script>", 1)


def write_viewer_html(path: str | Path, replays: list[ServedReplay], *, compare: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file_atomically(path, viewer_html(replays, compare=compare).encode("utf-8"))
    return path
