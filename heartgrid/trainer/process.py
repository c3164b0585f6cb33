"""What a trainer sets for its whole process: torch's threads and cuDNN modes, the global
seeds, and NumPy's global generator state as checkpoint data."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from heartgrid.config.run import RunConfig
from heartgrid.threads import choose_threads, omp_threads


def numpy_rng_state() -> dict[str, Any]:
    """NumPy's global generator state as plain values and tensors (checkpoint-safe)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def set_numpy_rng_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["gauss"]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resumed_threads(config: RunConfig, device: torch.device, recorded: int | None) -> str | None:
    """On a resume, the thread count the run was started with, where the default would choose
    it again (nothing set): the count changes float sums, and a resume continues bit for bit."""
    if recorded is None or device.type != "cpu":
        return None
    chosen = config.system.torch_threads or omp_threads()
    if chosen is not None:
        if chosen == recorded:
            return None
        how = "system.torch_threads" if config.system.torch_threads else "OMP_NUM_THREADS"
        return (f"torch threads: {chosen} ({how}), where the run trained on {recorded}: the count "
                "changes float sums, so from here the run is not bit for bit an uninterrupted one")
    torch.set_num_threads(recorded)
    return (f"torch threads: {recorded} (as when the run started, so that it resumes bit for bit; "
            "system.torch_threads=N sets another count)")


def configure_torch(config: RunConfig, device: torch.device) -> str:
    """Sets the process's torch threads and cuDNN modes; says how many threads and why."""
    if config.system.torch_threads is not None:
        threads, reason = config.system.torch_threads, "system.torch_threads"
    elif device.type == "cpu":
        threads, reason = (choice := choose_threads()).threads, choice.reason
    else:  # the CPU only feeds the GPU: torch's own default
        threads, reason = torch.get_num_threads(), "torch's default"
    torch.set_num_threads(threads)
    if device.type == "cuda":
        if device.index is not None:
            torch.cuda.set_device(device)
        if config.system.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True
    return f"torch threads: {threads} ({reason})"
