"""Errors every layer may raise for bad input; the CLI (`heartgrid.tools.cli.main`) maps
them to exit status 2. They live at the bottom so that no layer has to import the CLI."""

from pathlib import Path


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


class FileFault(Exception):
    """The file system refused a run's read or write (disk full, read-only, no permission):
    printed as one line that names the file and what to change, exit status 4. Nothing that
    was checkpointed is lost; the same command resumes once the cause is fixed."""


EXIT_FILE_FAULT = 4

MAX_SEED = 2**32 - 1
"""Seeds are 32-bit: the engine's hashes take a seed modulo 2**32 (a larger one would play the
maps of a smaller one), and training seeds NumPy's global generator, which takes no more."""


def check_seed(seed: int | None, given: str = "--seed ") -> None:
    """UsageError for a seed outside [0, MAX_SEED]; `given`: how the command line named it."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UsageError(f"{given}must be between 0 and {MAX_SEED:,} (2**32 - 1), got {seed}")


def check_output_path(path: Path, given: str, *, directory: bool = False) -> None:
    """UsageError, before any work is done, when `path` can never be written: it, or the
    nearest of its parents that exists, is of the wrong kind (a file where a directory must
    be). `given`: how the command line named it, e.g. `--out` or `data_dir=`. Permissions and
    free space are the file system's to report when the write happens (exit 4)."""
    if path.exists():
        if path.is_dir() != directory:
            kind = "a file, not a directory" if directory else "a directory, not a file"
            raise UsageError(f"{given}{path} is {kind}")
        return
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"{given}{path}: {parent} is a file, not a directory")
