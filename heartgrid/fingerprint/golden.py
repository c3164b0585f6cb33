"""Which golden fingerprints this machine checks against: those of its CPU vendor.

Fingerprints run the same code on one thread, yet float kernels take other code paths on
another vendor's CPU (MKL's and oneDNN's dispatch): with torch 2.13, an AMD EPYC and an Intel
Xeon, both AVX-512, agreed on every integer check (observations, the world, actions) of every
golden, while gradient norms and optimizer steps moved by up to 1.4% relative after one or two
updates, which no tolerance tight enough to catch a planted change absorbs
(tests/fingerprint/test_fingerprint_planted.py). So a golden directory holds the files of one
vendor, named in its `VENDOR` file, and a subdirectory of files per other vendor.
"""

from __future__ import annotations

import platform
from pathlib import Path

VENDOR_FILE = "VENDOR"


def cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str:
    """`GenuineIntel`, `AuthenticAMD`, ... (Linux's vendor_id); elsewhere the machine type."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:  # not Linux
        lines = []
    vendor = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("vendor_id")), None)
    return vendor or platform.machine() or "unknown"


def golden_dir(root: Path, vendor: str | None = None) -> Path:
    """The directory of `root`'s golden files for this CPU vendor: `root` itself when its
    VENDOR file names it (or it names none), else `root/<vendor>`."""
    vendor = vendor or cpu_vendor()
    marker = root / VENDOR_FILE
    if not marker.is_file() or marker.read_text().strip() == vendor:
        return root
    return root / vendor
