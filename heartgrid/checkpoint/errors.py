"""The errors and warnings of checkpoint handling: every message names the path and the reason."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(Exception):
    """A checkpoint or policy URI that cannot be used, with the path and what is wrong with it."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        # As given: Path() would fold a URI's `//` (s3://bucket -> s3:/bucket).
        super().__init__(f"{path}: {reason}")


class CheckpointWarning(UserWarning):
    """A checkpoint was refused (corrupt or unreadable) and an older one is used instead."""
