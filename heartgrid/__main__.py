"""`python -m heartgrid VERB ...`: the `heartgrid` command. torchrun starts every rank this
way (`torchrun --nproc_per_node N -m heartgrid train ...`, docs/distributed.md); under
`heartgrid train --nproc N` each rank also records the status it ends with for the launcher."""

from __future__ import annotations

import os
import sys

from heartgrid.tools.cli import main
from heartgrid.tools.torchrun import record_status


def run() -> int:
    try:
        code = main()
    except SystemExit as e:  # a rank that learned of another's failure, or argparse's exit
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        record_status(1)
        raise
    return record_status(code)


def leave(code: int) -> None:
    """End the process with `code`. A rank under torchrun (WORLD_SIZE > 1) leaves without the
    interpreter's teardown once its files are closed and its status recorded: there, torch's
    process-group threads now and then abort the process ("terminate called without an active
    exception", SIGABRT), and torchrun then reports a finished run as failed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(run())
