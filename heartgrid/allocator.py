"""Keep large freed blocks in the process instead of handing them back to the kernel (glibc).

A CPU training update allocates and frees the same large tensors every minibatch: at the CPU
recipe's minibatch (2,048 rows) the normalised observations alone are 21 MB, and the
activations and gradients add more. glibc's malloc serves a block at or over its mmap threshold
with a fresh `mmap` and unmaps it on free, and trims the heap's free top once it exceeds the
trim threshold. Its thresholds slide (the mmap threshold rises to the largest block freed so
far, up to 32 MiB, the trim threshold to twice that), but an update frees more than that at
once, so the next minibatch touches new pages, and every 4 KiB page costs a page fault: ~2.0M
faults in 25 s of `heartgrid bench train arena_basic_easy_shaped --device cpu` on the 2-vCPU VM
(2026-12-06). With the fixed thresholds below the run took ~116k faults and trained 5-10%
faster, at the same peak memory (benchmarks/README.md, "Training"). This is the cure of
PyTorch's CPU tuning guide (run with jemalloc or tcmalloc), without a preloaded library.

The cost: a process keeps the memory of its largest moment, less what it frees in blocks of 32
MiB or more and a free heap top beyond 1 GiB. For training that is the steady state; a
long-lived viewer, `play` or `eval --suite` over games of many sizes keeps its peak too.

The heartgrid command applies it to its own process at start (tools/cli.py). Your own settings
win: glibc's MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or MALLOC_MMAP_MAX_,
the matching `glibc.malloc` tunables in GLIBC_TUNABLES, or another allocator in LD_PRELOAD, and
nothing is changed. Other malloc settings (MALLOC_ARENA_MAX, as container images set it) do not
count. Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
"""Blocks below this size come from the heap: glibc's largest allowed value on 64-bit Linux."""
TRIM_THRESHOLD = 2**30
"""Free heap top kept before it is returned to the kernel."""
USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
USER_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold", "glibc.malloc.top_pad",
                 "glibc.malloc.mmap_max")
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def user_choice(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the user's own allocator settings apply, or None when there are none."""
    for name in USER_VARIABLES:
        if name in environ:
            return f"{name} is set"
    tunables = environ.get("GLIBC_TUNABLES", "")
    for name in USER_TUNABLES:
        if name in tunables:
            return f"GLIBC_TUNABLES sets {name}"
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
    done = [mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)]
    return all(done)  # glibc returns 1 for a value it took
