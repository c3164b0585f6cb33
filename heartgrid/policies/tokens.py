"""Observation planes → attention tokens, on device with tensor ops (latent-attention family).

Every non-empty entry `(feature f, row y, column x)` of the normalised planes becomes a token

    token = feature_embedding[f] ⊕ fourier(dx, dy) ⊕ value

where `dx, dy` are the entry's offsets in cells from the window centre (the agent) and
`fourier(dx, dy) = [sin(ω_k dx), cos(ω_k dx), sin(ω_k dy), cos(ω_k dy)]_k`, with fixed
`ω_k = 2π / λ_k` and wavelengths `λ_k` spread geometrically from 2 to 32 cells. Offsets are in
cells, not fractions of the window, so the same offset gets the same code in any window size
(3–15): a trained attention policy runs on another window size unchanged.

Padding (ours): a batch's tokens are padded to `M = min(max_tokens, the largest number of
non-empty entries of any observation in the batch)`, with a mask marking real tokens. Finding
that maximum costs one device→host sync per call; it keeps the attention cost proportional to
the real token count rather than to `max_tokens`. When an observation has more than
`max_tokens` entries, the entries nearest the agent are kept (ring by ring outwards; the global
features sit at the centre cell and are always kept).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

SHORTEST_WAVELENGTH, LONGEST_WAVELENGTH = 2.0, 32.0  # in cells


class ObservationTokenizer(nn.Module):
    def __init__(self, num_features: int, feature_dim: int, num_freqs: int, max_tokens: int):
        super().__init__()
        if max_tokens < 1:
            raise ValueError(f"policy.kwargs.max_tokens must be >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.feature_embeddings = nn.Parameter(torch.randn(num_features, feature_dim))
        ratio = LONGEST_WAVELENGTH / SHORTEST_WAVELENGTH
        steps = torch.arange(num_freqs) / max(num_freqs - 1, 1)
        wavelengths = SHORTEST_WAVELENGTH * ratio**steps
        self.register_buffer("frequencies", 2 * math.pi / wavelengths, persistent=False)
        self.token_dim = feature_dim + 4 * num_freqs + 1
        self._orders: dict[tuple[int, int, int, torch.device], Tensor] = {}

    def grow(self, count: int) -> None:
        """Add embeddings for `count` new features (learned in training)."""
        table = self.feature_embeddings
        rows = torch.randn(count, table.shape[1], device=table.device)
        self.feature_embeddings = nn.Parameter(torch.cat([table.detach(), rows]))

    def priority_order(
        self, num_features: int, height: int, width: int, device: torch.device
    ) -> Tensor:
        """Flat entry indices of `[F, H, W]` sorted by ring distance from the centre cell
        (stable, so feature-major order within a ring)."""
        key = (num_features, height, width, device)
        if key not in self._orders:
            dy = (torch.arange(height, device=device) - height // 2).abs().view(-1, 1)
            dx = (torch.arange(width, device=device) - width // 2).abs().view(1, -1)
            ring = torch.maximum(dy, dx).expand(num_features, height, width).flatten()
            self._orders[key] = torch.argsort(ring, stable=True)
        return self._orders[key]

    def forward(self, planes: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised planes `[N, F, H, W]` → (tokens `[N, M, token_dim]`, mask `[N, M]`,
        True for real tokens)."""
        n, num_features, height, width = planes.shape
        order = self.priority_order(num_features, height, width, planes.device)  # [P]
        values_by_priority = planes.flatten(1).index_select(1, order)  # [N, P]
        present = values_by_priority != 0

        # Each present entry's token slot is the number of present entries before it.
        slot = present.cumsum(dim=1, dtype=torch.int32) - 1
        count = present.sum(dim=1)
        m = max(1, min(self.max_tokens, int(count.max())))  # the one host sync
        keep = present & (slot < m)
        # Dropped entries all go to a spare column m, which is cut off afterwards.
        target = torch.where(keep, slot, m).long()
        entry = torch.zeros(n, m + 1, dtype=torch.long, device=planes.device)
        entry.scatter_(1, target, order.expand(n, -1))
        entry = entry[:, :m]  # flat (f, y, x) index of each token
        mask = torch.arange(m, device=planes.device) < count.clamp(max=m).unsqueeze(1)

        feature = entry // (height * width)
        dy = ((entry // width) % height - height // 2).to(planes.dtype)
        dx = (entry % width - width // 2).to(planes.dtype)
        value = planes.flatten(1).gather(1, entry)
        angles_x = dx.unsqueeze(-1) * self.frequencies  # [N, M, K]
        angles_y = dy.unsqueeze(-1) * self.frequencies
        tokens = torch.cat(
            [
                # F.embedding, not indexing: its backward sums the many repeats of each of
                # the few feature rows ~20x faster on CUDA (measured on an H200).
                F.embedding(feature, self.feature_embeddings),
                angles_x.sin(),
                angles_x.cos(),
                angles_y.sin(),
                angles_y.cos(),
                value.unsqueeze(-1),
            ],
            dim=-1,
        )
        return tokens, mask
