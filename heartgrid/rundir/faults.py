"""File-system faults of a run directory as one clear line: disk full, read-only, no permission.

A full disk must not surface as a traceback from deep inside `torch.save`, nor after an hour
of training: a run checks the space it needs before it starts and before each checkpoint
(`check_free_space`), and any `OSError` that still reaches the top is turned into a
`FileFault` naming the file (`file_fault`).
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from heartgrid.errors import FileFault

_SPACE = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged writer on the file system that holds `path` (or would)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def is_file_error(error: OSError) -> bool:
    """An error of a file (it names one, or is a space or permission error), as opposed to a
    network error (ConnectionError, also an OSError)."""
    if isinstance(error, ConnectionError):
        return False
    return error.filename is not None or error.errno in _SPACE | _READ_ONLY


def is_space_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in _SPACE


def check_free_space(where: Path, needed: int, what: str, remedy: str) -> None:
    """Raise FileFault when the file system of `where` has less than `needed` bytes free."""
    free = free_bytes(where)
    if free < needed:
        raise FileFault(f"not enough disk space in {where}: {what} needs {format_bytes(needed)}, "
                        f"{format_bytes(free)} free; {remedy}")


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """A failed write, flush or fsync does not say which file; within this block it does."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


SPACE_REMEDY = "free some space, or train on a larger disk (data_dir=...)"


def file_fault(error: OSError, remedy: str = "", doing: str = "") -> FileFault:
    """The one-line message for an OSError of a run's files (the file named, the cause, the
    fix); `doing` says what was being written when the file itself is a temporary one."""
    name = error.filename or "a file"
    reason = error.strerror or str(error)
    if error.errno in _SPACE:
        where = Path(error.filename).parent if error.filename else Path(".")
        what = f"{doing} ({name})" if doing else name
        message = f"disk full while writing {what}; {format_bytes(free_bytes(where))} free"
        remedy = remedy or SPACE_REMEDY
    elif error.errno in _READ_ONLY:
        message = f"cannot write {name}: {reason} (a read-only file system, an immutable file or missing permission)"
    else:
        message = f"{name}: {reason}"
    return FileFault(f"{message}; {remedy}" if remedy else message)
