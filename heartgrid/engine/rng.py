"""Counter-based randomness shared by both engines (RULES.md "Randomness").

Every random draw of the game is `hash32(*keys)`: a stateless 32-bit mix of integer keys. There
is no generator state to carry, split or save, so

- the plain-Python reference engine and the batched tensor engine draw exactly the same numbers
  (same keys in, same bits out, on Python ints, NumPy arrays and torch tensors on any device);
- an env's draws depend only on its own keys, never on how many envs share the batch;
- resuming from a checkpoint needs no RNG state, only the counters (episode index, step).

The mix is lowbias32 with multipliers below 2^31: an intermediate value is below 2^32, so a
product stays below 2^63 and int64 tensor arithmetic never overflows (torch has no uint32
multiply on every device). Keys are folded in one after another, `h = mix(h ^ key)`, starting
from a fixed non-zero constant (so that all-zero keys do not hash to 0). Each key is first
reduced modulo 2^32 (`key & 0xFFFFFFFF`, which also maps negative ints the same way in Python
and in two's-complement int64 tensors).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

MASK32 = 0xFFFFFFFF
_M1 = 0x21F0AAAD
_M2 = 0x735A2D97
_START = 0x6A09E667  # first 32 bits of frac(sqrt(2)); any fixed non-zero value works

# Stream constants: the second-to-last "purpose" key of a draw, so that draws for different
# purposes never collide even when their other keys are equal (see RULES.md).
STREAM_ENV = 0x454E5600
STREAM_PRIORITY = 0x50524900
STREAM_MAP = 0x4D415000
STREAM_DESYNC = 0x44534E00

Key = TypeVar("Key", int, np.ndarray, torch.Tensor)


def mix32(x: Key) -> Key:
    """The lowbias32 finaliser on a value in [0, 2^32); int, int64 ndarray or int64 tensor."""
    x = x ^ (x >> 16)
    x = (x * _M1) & MASK32
    x = x ^ (x >> 15)
    x = (x * _M2) & MASK32
    x = x ^ (x >> 15)
    return x


def hash32(*keys: int | np.ndarray | torch.Tensor) -> int | np.ndarray | torch.Tensor:
    """Hash integer keys to a value in [0, 2^32).

    Keys may be Python ints, int64 NumPy arrays or int64 torch tensors; array keys broadcast
    against each other, and the result has their broadcast shape, type and device. With only
    int keys the result is an int. The same keys always give the same value, whatever their
    container: `hash32(7, torch.tensor([1, 2]))[1] == hash32(7, 2)`.
    """
    if not keys:
        raise ValueError("hash32 needs at least one key")
    h: int | np.ndarray | torch.Tensor = _START
    for key in keys:
        if isinstance(key, torch.Tensor) and key.dtype != torch.int64:
            key = key.to(torch.int64)
        elif isinstance(key, np.ndarray) and key.dtype != np.int64:
            key = key.astype(np.int64)
        elif isinstance(key, (bool, np.integer)):
            key = int(key)
        h = mix32(h ^ (key & MASK32))
    return h


def env_seed(system_seed: int, env_index: int) -> int:
    """The seed of env `env_index` in a run seeded with `system_seed` (RULES.md)."""
    return int(hash32(system_seed, env_index, STREAM_ENV))


def fold(h: Key, *keys: int | np.ndarray | torch.Tensor) -> Key:
    """Continue a hash with more keys: `fold(hash32(a, b), c) == hash32(a, b, c)`.

    Lets a caller hash a fixed prefix once (say env seed and episode) and only the keys that
    change (the step) afterwards.
    """
    for key in keys:
        if isinstance(key, torch.Tensor) and key.dtype != torch.int64:
            key = key.to(torch.int64)
        h = mix32(h ^ (key & MASK32))
    return h
