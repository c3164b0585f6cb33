"""Durable file writes: the bytes are on disk before anyone can see the file.

A checkpoint must never be half-written. The recipe (POSIX): write to a name nobody reads,
`fsync` the file, rename it into place, `fsync` the directory so the rename itself survives a
power cut. `os.rename` within one directory is atomic: readers see the old state or the new one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from heartgrid.rundir.faults import naming

OLD_PREFIX = ".old-"
TMP_PREFIX = ".tmp-"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it (the caller renames the directory or file into place).
    An error names `path` (a failed `write` or `fsync` alone does not say which file)."""
    with naming(path), open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Persist a directory's entries (new files, renames). A no-op where directories can't be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; its renames are already durable
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file_atomically(path: Path, data: bytes) -> None:
    """Write one file so that `path` holds either its old content or all of `data`, never a part."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}")
    try:
        write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        # A failed write (a full disk) must not leave its temporary file behind for good.
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_temporary_files(directory: Path) -> list[Path]:
    """Delete the `.tmp-*` files a killed writer left in `directory` (only its one writer, who
    holds the run lock, may call this). Returns what was removed."""
    removed = []
    for path in directory.glob(f"{TMP_PREFIX}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def replace_directory(staged: Path, final: Path) -> None:
    """Rename the finished directory `staged` to `final`, replacing the directory there.

    A rename cannot overwrite a non-empty directory, so the old one is first renamed aside to
    `.old-<name>` and deleted only once the new one is in place: a crash in between leaves the
    old one on disk under that name, never a partial new one at `final`."""
    old = final.with_name(f"{OLD_PREFIX}{final.name}")
    if final.exists():
        if old.exists():  # left by an earlier crash after its second rename; `final` is current
            shutil.rmtree(old)
        os.rename(final, old)
    os.rename(staged, final)
    fsync_dir(final.parent)
    if old.exists():
        shutil.rmtree(old)
