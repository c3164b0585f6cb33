"""Observation modes of the library adapters (adapters.py, vec_adapter.py).

The engine's observation is `uint8[F, H, W]` per agent: F feature planes (features.py) of an
egocentric H x W window, whose values are counts, ids, flags and percentages, not pixel
intensities. Libraries guess what a Box is from its dtype, bounds and shape, so an adapter
offers the same observation in three forms (`obs_mode`):

- "planes": the engine's own `uint8[F, H, W]`, Box(0, 255). What HeartGrid's policies read
  (they divide each plane by its registry normalisation).
  Stable-Baselines3 (2.x) takes any 3-d uint8 Box bounded by exactly 0..255 for an image and
  locates its channels at the smallest dimension; with the usual 7x7 window that is not F=21,
  so it warns "Treating image space as channels-last", wraps the env in VecTransposeImage
  (observations become [7, 21, 7]) and divides by 255. MlpPolicy still trains (it flattens),
  CnnPolicy's NatureCNN cannot (its 8x8 stride-4 first layer needs a window of 36+ cells).
- "float": `float32[F, H, W]`, each plane divided by the largest value it can hold in this
  game (`feature_maxima`), so every plane spans [0, 1] and the Box is Box(0, 1) exactly.
  SB3 treats a float Box as a plain vector: no transpose, no rescaling; use MlpPolicy or a
  custom features extractor. The mode for SB3, CleanRL-style code and any MLP.
- "channels_last": `uint8[H, W, F]`, Box(0, 255), for code that expects HWC arrays (Gymnasium
  image wrappers, TF/Keras, CleanRL's channels-last pipelines). SB3 again sees an image and
  takes the smallest dimension for its channels: with F >= min(H, W) (the 7x7 window, F=21)
  that is H, so it reads [7, 7, 21] as a channels-first image of 7 channels, does not
  transpose and divides by 255; fine for MlpPolicy, wrong for CnnPolicy.

The normalisation of "float", per plane: binary flags (frozen, converting, swappable) by 1,
orientation by 3, ids by the largest id the game defines (`type_id` codes, group ids, action
types and arguments), and the planes that may use the whole byte (colour, inventories, episode
completion, last reward, and any plane this table does not know) by 255. Dividing by the
per-plane maximum rather than by 255 for all keeps the small-range planes (flags, orientation,
object types) at magnitudes an MLP can use, while every value stays within the Box.
"""

from __future__ import annotations

import difflib

import numpy as np
import torch
from gymnasium import spaces

from heartgrid.config.game import GameConfig
from heartgrid.config.items import TYPE_IDS
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.features import FeatureRegistry

OBS_MODES: tuple[str, ...] = ("planes", "float", "channels_last")

_BYTE_MAX = 255


def check_obs_mode(obs_mode: str) -> str:
    """`obs_mode` if it is one of OBS_MODES, else ValueError naming them and the closest."""
    if obs_mode in OBS_MODES:
        return obs_mode
    close = difflib.get_close_matches(str(obs_mode), OBS_MODES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown obs_mode {obs_mode!r}; valid modes are {list(OBS_MODES)}{hint}")


def feature_maxima(game: GameConfig, features: FeatureRegistry, action_space: ActionSpace) -> np.ndarray:
    """float32 [F]: the largest value each plane can hold in `game` (at least 1, at most 255)."""
    type_ids = [TYPE_IDS["agent"], TYPE_IDS["wall"], *(o.type_id for o in game.objects.values())]
    known = {
        "type_id": max(type_ids) + 1,  # cells store type_id + 1 (features.py)
        "agent:group": max(g.id for g in game.groups.values()),
        "agent:frozen": 1,  # observe.py clamps the freeze timer to a flag
        "agent:orientation": 3,  # up, down, left, right
        "converting": 1,  # likewise the conversion timer
        "swappable": 1,
        "last_action": len(action_space.type_names) - 1,
        "last_action_arg": max(action_space.type_num_args) - 1,
    }
    return np.array([min(_BYTE_MAX, max(1, known.get(f.name, _BYTE_MAX))) for f in features],
                    dtype=np.float32)


class ObsFormat:
    """Turns the engine's `uint8[N, F, H, W]` observations into one mode's numpy arrays."""

    def __init__(self, obs_mode: str, game: GameConfig, features: FeatureRegistry,
                 action_space: ActionSpace, device: torch.device):
        self.mode = check_obs_mode(obs_mode)
        shape = (len(features), game.obs_height, game.obs_width)
        self.space: spaces.Box
        if self.mode == "planes":
            self.space = spaces.Box(0, _BYTE_MAX, shape=shape, dtype=np.uint8)
        elif self.mode == "channels_last":
            self.space = spaces.Box(0, _BYTE_MAX, shape=(*shape[1:], shape[0]), dtype=np.uint8)
        else:
            self.space = spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)
            maxima = feature_maxima(game, features, action_space)
            self._maxima = torch.as_tensor(maxima, device=device).view(1, -1, 1, 1)

    def __call__(self, obs: torch.Tensor) -> np.ndarray:
        """[N, *space.shape] numpy copy of `obs` (uint8 [N, F, H, W], any device)."""
        if self.mode == "float":
            # Division, not multiplication by 1/max: IEEE division gives max / max == 1 exactly,
            # whereas 255 * float32(1 / 255) rounds above 1 and would leave the Box.
            # .contiguous(): the result keeps the engine's channels-last memory layout otherwise.
            return (obs.float() / self._maxima).contiguous().cpu().numpy()
        if self.mode == "channels_last":
            obs = obs.permute(0, 2, 3, 1)
        # The engine's buffers are strided views it rewrites every step: copy into a
        # C-contiguous array the caller owns.
        return np.array(obs.cpu().numpy(), order="C", copy=True)
