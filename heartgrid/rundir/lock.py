"""One writer per run directory: `with RunLock(run_dir, "heartgrid train"): ...`.

Two trainers on one directory interleave and silently lose metrics, so every writer (`train`,
`ab`, each sweep trial) holds the directory's lock file `.lock` while it writes.

The lock is an exclusive `flock` on that file, taken without waiting: the kernel (or, on a
shared file system, the NFS server's lease) holds it exactly as long as the owning process
lives, so a lock left by a killed process, on this host or another, is free again without
anyone deciding that its owner is dead. The file's text names the owner (host, PID, command,
start time) for the message the next writer sees.

File systems without `flock` (some FUSE mounts, Lustre without `-o flock`) fall back to the
owner record alone: on the same host a dead PID frees the lock; an owner on another host
cannot be checked from here, so the lock is refused with the command that removes it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_FILE = ".lock"

# flock's errors on file systems that do not implement it (as opposed to EWOULDBLOCK: taken).
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunLockedError(Exception):
    """Another live process writes this directory; the message names it (exit status 2)."""


def owner_record(purpose: str) -> dict[str, object]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": purpose,
        "argv": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def read_owner(path: Path) -> dict[str, object]:
    """The owner record of a lock file ({} when unreadable or empty: an owner still writing it)."""
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def describe_owner(owner: dict[str, object]) -> str:
    if not owner:
        return "another process (it has not written its name yet)"
    return (f"{owner.get('command', '?')} (PID {owner.get('pid', '?')} on {owner.get('host', '?')}, "
            f"started {owner.get('started', '?')})")


def pid_alive(pid: int) -> bool:
    if pid <= 0:  # no PID recorded (an owner that died before writing its record)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class RunLock:
    def __init__(self, directory: Path, purpose: str):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.purpose = purpose
        self.fd: int | None = None
        self.created_directory = False

    def acquire(self) -> RunLock:
        """Take the lock or raise RunLockedError at once (never waits). Creates the directory."""
        try:
            self.directory.mkdir(parents=True)
            self.created_directory = True
        except FileExistsError:  # there already, or made by a writer starting at this moment
            pass
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                locked = self._flock(fd)
            except BaseException:
                os.close(fd)
                raise
            if not locked:
                os.close(fd)
                raise self._locked_error()
            # The file may have been unlinked (a holder releasing) between our open and our
            # flock: then we hold a lock on a name nobody else sees. Retry on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(owner_record(self.purpose)) + "\n").encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def _flock(self, fd: int) -> bool:
        """True when taken; False when another process holds it."""
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
        return self._owner_gone()

    def _owner_gone(self) -> bool:
        """Without flock: free when nobody, or a dead process of this host, owns the file."""
        owner = read_owner(self.path)
        if not owner or owner.get("pid") == os.getpid():
            return True
        if owner.get("host") == socket.gethostname():
            return not pid_alive(int(owner.get("pid", 0)))
        return False

    def _locked_error(self) -> RunLockedError:
        owner = read_owner(self.path)
        message = (f"{self.directory} is in use by {describe_owner(owner)}; a run directory has "
                   f"one writer at a time. Wait for it to finish, stop it (it saves on SIGTERM), "
                   f"or choose another run name (run=NAME)")
        if owner and owner.get("host") != socket.gethostname():
            message += (f". If that process is gone and {self.path} stays locked, its file system "
                        f"does not release locks of dead hosts: remove the file by hand")
        return RunLockedError(message)

    def release(self) -> None:
        if self.fd is None:
            return
        # Unlink before unlocking: a process that opened the old file retries on the new name.
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None
        if self.created_directory:
            try:
                self.directory.rmdir()  # only when nothing was written (a refused config)
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
