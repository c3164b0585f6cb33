"""The attention tokenizer: one token per non-empty entry, with the right feature, position
code and value; padding masked; the nearest entries kept beyond the cap."""

from __future__ import annotations

import math

import torch

from heartgrid.policies.tokens import ObservationTokenizer

FEATURE_DIM, FREQS = 3, 2


def tokenizer(num_features: int, max_tokens: int = 256) -> ObservationTokenizer:
    torch.manual_seed(0)
    return ObservationTokenizer(num_features, FEATURE_DIM, FREQS, max_tokens)


def decode(tok: ObservationTokenizer, token: torch.Tensor) -> tuple[int, int, int, float]:
    """(feature, dx, dy, value) of one token, read back from its parts. The offsets come from
    the longest wavelength (32 cells), whose phase is unambiguous for offsets up to ±7."""
    token = token.detach()
    feature = int((tok.feature_embeddings.detach() - token[:FEATURE_DIM]).abs().sum(1).argmin())
    sin_x, cos_x, sin_y, cos_y = (token[FEATURE_DIM + (k + 1) * FREQS - 1] for k in range(4))
    omega = float(tok.frequencies[-1])
    dx = math.atan2(float(sin_x), float(cos_x)) / omega
    dy = math.atan2(float(sin_y), float(cos_y)) / omega
    return feature, round(dx), round(dy), float(token[-1])


def test_one_token_per_entry_with_feature_position_and_value() -> None:
    tok = tokenizer(num_features=4)
    planes = torch.zeros(2, 4, 5, 5)
    planes[0, 1, 0, 4] = 0.5  # feature 1, top-right corner: dx +2, dy -2
    planes[0, 3, 2, 2] = 1.25  # feature 3 at the centre
    planes[0, 0, 4, 1] = 2.0  # feature 0, bottom row: dx -1, dy +2
    planes[1, 2, 1, 2] = 0.75  # the second observation has a single entry: dx 0, dy -1
    tokens, mask = tok(planes)

    assert tokens.shape == (2, 3, tok.token_dim) and tok.token_dim == FEATURE_DIM + 4 * FREQS + 1
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    # Ring order: the centre entry first, then ring 1, then ring 2 (feature-major inside a ring).
    decoded = [decode(tok, t) for t in tokens[0]]
    assert decoded == [(3, 0, 0, 1.25), (0, -1, 2, 2.0), (1, 2, -2, 0.5)]
    assert decode(tok, tokens[1, 0]) == (2, 0, -1, 0.75)


def test_fourier_code_depends_on_offset_not_window_size() -> None:
    tok = tokenizer(num_features=1)
    small = torch.zeros(1, 1, 3, 3)
    small[0, 0, 0, 2] = 1.0  # dx +1, dy -1 from the centre of a 3x3 window
    large = torch.zeros(1, 1, 15, 15)
    large[0, 0, 6, 8] = 1.0  # the same offset in a 15x15 window
    assert torch.equal(tok(small)[0], tok(large)[0])


def test_cap_keeps_the_entries_nearest_the_agent() -> None:
    tok = tokenizer(num_features=2, max_tokens=3)
    planes = torch.zeros(1, 2, 7, 7)
    planes[0, 0, 0, 0] = 1.0  # ring 3
    planes[0, 1, 3, 5] = 1.0  # ring 2
    planes[0, 0, 3, 3] = 1.0  # ring 0
    planes[0, 1, 2, 3] = 1.0  # ring 1
    tokens, mask = tok(planes)
    assert mask.tolist() == [[True, True, True]]
    assert [decode(tok, t)[:3] for t in tokens[0]] == [(0, 0, 0), (1, 0, -1), (1, 2, 0)]


def test_empty_observations_give_one_masked_token() -> None:
    tokens, mask = tokenizer(num_features=2)(torch.zeros(3, 2, 5, 5))
    assert tokens.shape[:2] == (3, 1) and not mask.any()
