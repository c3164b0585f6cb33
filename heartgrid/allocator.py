"""Keep large freed blocks in the process instead of handing them back to the kernel (glibc).

A CPU training update allocates and frees the same large tensors every minibatch: at the CPU
recipe's minibatch (2,048 rows) the normalised observations alone are 21 MB, and the
activations and gradients add more. glibc's malloc serves blocks over its mmap threshold with a
fresh `mmap` and unmaps them on free, and trims the heap's free top once it exceeds the trim
threshold. Either way the next minibatch touches new pages, and every 4 KiB page costs a page
fault: ~2.0M faults in 25 s of `heartgrid bench train arena_basic_easy_shaped --device cpu` on
the 2-vCPU VM (2026-12-06). With the thresholds below the run took ~116k faults and trained
5-10% faster, at the same peak memory (benchmarks/README.md, "Training").
This is the same cure as PyTorch's CPU tuning guide's advice to run with jemalloc or tcmalloc,
without a preloaded library.

The heartgrid command applies it to its own process at start. Your own settings win: any of
glibc's MALLOC_*_ variables, a `glibc.malloc` tunable in GLIBC_TUNABLES, or another allocator
in LD_PRELOAD, and nothing is changed. Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
"""Blocks up to this size come from the heap: glibc's largest allowed value on 64-bit Linux."""
TRIM_THRESHOLD = 2**30
"""Free heap top kept before it is returned: ordinary steps reuse it, a rare spike goes back."""
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX")
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def user_choice(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the user's own allocator settings apply, or None when there are none."""
    for name in USER_VARIABLES:
        if name in environ:
            return f"{name} is set"
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc"
    preload = environ.get("LD_PRELOAD", "")
    for allocator in OTHER_ALLOCATORS:
        if allocator in preload:
            return f"LD_PRELOAD loads {allocator}"
    return None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (see the module's docstring);
    True if they were raised."""
    if user_choice() is not None:
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl's mallopt ignores what it is given
    except (AttributeError, OSError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
