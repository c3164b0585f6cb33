"""Every agent of a batch of HeartGrid envs as one Stable-Baselines3 `VecEnv`.

    from heartgrid.engine.vec_adapter import HeartGridVecEnv   # needs stable-baselines3
    venv = HeartGridVecEnv(game, num_envs=16, seed=0)          # 16 * game.num_agents sub-envs
    model = stable_baselines3.PPO("MlpPolicy", venv, n_steps=64)

Sub-env i is agent `i % num_agents` of engine env `i // num_agents` (the engine's slot order).
All of them step at once as whole-batch tensor operations of one `BatchedEngine`; the only
Python loops build the info dicts of the slots whose episode ended on a step.

This module imports Stable-Baselines3 (an optional dependency: the `dev` and `bench` extras)
at the top; nothing else in HeartGrid imports it, so HeartGrid itself runs without SB3.
CleanRL-style code can use it too: `reset()` gives `obs`, `step(actions)` gives
`(obs, rewards, dones, infos)` as numpy arrays over the sub-envs.

Semantics are those of SB3's VecEnvs (its `DummyVecEnv`):

- auto-reset: when a sub-env's episode ends, `dones[i]` is True, the returned observation is
  already the next episode's first, `infos[i]["terminal_observation"]` is the final one (the
  engine's `final_obs`), and `infos[i]["TimeLimit.truncated"]` says whether the episode was
  cut by the time limit rather than ended by a terminal state (SB3's PPO then bootstraps the
  value of the terminal observation). Every agent of an env ends its episode on the same step.
- `infos[i]["episode"] = {"r", "l", "t"}` and `infos[i]["heartgrid"]` on that step, as in
  adapters.py (`r` is that agent's own return). SB3 reads `infos[i]["episode"]` straight
  into its `ep_info_buffer` (`BaseAlgorithm._update_info_buffer`), so `rollout/ep_rew_mean`
  and `ep_len_mean` are logged without a `VecMonitor`.
- seeding: `seed(s)` (or setting `_seeds`) takes effect at the next `reset()`, which rebuilds
  the engine from `_seeds[0]`; the engine derives every env's own seed from it
  (`engine.rng.env_seed`), so SB3's per-sub-env seeds `s + i` beyond the first are not used.
  `reset()` without a seed starts every env over from its first episode under the current seed.
- `get_attr` answers the attributes every sub-env shares (the spaces, `render_mode`,
  `action_names`, `obs_mode`, `game`); the sub-envs are slots of one engine with no attributes
  or methods of their own, so `set_attr` and `env_method` raise AttributeError, and
  `env_is_wrapped` is False for every sub-env.

`obs_mode` defaults to "float" here, unlike the single-env adapters: this class is new (no
callers to keep) and exists for SB3 / CleanRL-style training, whose MLPs want [0, 1] floats and
which misread "planes" as an image (obs_modes.py).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from heartgrid.config.game import GameConfig
from heartgrid.engine.adapters import EpisodeTracker
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.obs_modes import ObsFormat

# What every sub-env shares, and therefore what get_attr can answer.
_SHARED_ATTRS = ("render_mode", "observation_space", "action_space", "action_names", "obs_mode",
                 "game")


class HeartGridVecEnv(VecEnv):
    """`num_envs` HeartGrid envs x `game.num_agents` agents as `num_envs * num_agents` sub-envs."""

    def __init__(self, game: GameConfig, num_envs: int, seed: int = 0,
                 device: str | torch.device = "cpu", obs_mode: str = "float"):
        self.game, self.device = game, torch.device(device)
        self.engine = BatchedEngine(game, num_envs=num_envs, device=self.device, seed=seed)
        self.engine.reset()
        engine = self.engine
        self.format = ObsFormat(obs_mode, game, engine.features, engine.action_space, self.device)
        self.obs_mode = self.format.mode
        self.action_names: list[str] = list(engine.action_space.names)
        self.render_mode = None  # read by VecEnv.__init__ through get_attr
        self.tracker = EpisodeTracker(num_envs, game.num_agents)
        self._actions: torch.Tensor | None = None
        super().__init__(engine.num_slots, self.format.space,
                         spaces.Discrete(len(engine.action_space)))

    # ----------------------------------------------------------------------------------------
    # Stepping

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        if any(s is not None for s in self._seeds[1:]) and seed is None:
            raise ValueError("HeartGridVecEnv seeds its engine from _seeds[0] (see seed()); "
                             f"got None there but seeds for other sub-envs: {self._seeds[:4]}...")
        if any(self._options):
            raise ValueError(f"HeartGridVecEnv takes no reset options, got {self._options[0]!r}")
        if seed is not None:
            self.engine = BatchedEngine(self.game, num_envs=self.engine.num_envs,
                                        device=self.device, seed=int(seed))
        self.engine.reset()
        self.engine.drain_episodes()  # episodes cut short by this reset are not reported
        self.tracker.restart()
        self._actions = None
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self.format(self.engine.obs)

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"HeartGridVecEnv needs one flat action index per sub-env, shape "
                             f"({self.num_envs},); got {actions.shape}")
        self._actions = torch.as_tensor(actions, dtype=torch.int64).to(self.device)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions) since the last reset")
        engine, actions = self.engine, self._actions
        self._actions = None
        engine.step(actions)
        rewards = engine.rewards.cpu().numpy().copy()
        terminals = engine.terminals.cpu().numpy()
        truncations = engine.truncations.cpu().numpy()
        dones = terminals | truncations
        self.tracker.step(rewards)
        obs = self.format(engine.obs)  # already the next episodes' first observations
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            ended_slots = np.flatnonzero(dones)
            ended_envs = np.unique(ended_slots // engine.num_agents)
            episode_infos = self.tracker.end(ended_envs, engine.drain_episodes())
            final_obs = self.format(engine.final_obs[torch.as_tensor(ended_slots, device=self.device)])
            for k, slot in enumerate(ended_slots.tolist()):
                info = infos[slot] = episode_infos[slot]
                info["terminal_observation"] = final_obs[k]
                info["TimeLimit.truncated"] = bool(truncations[slot] and not terminals[slot])
        return obs, rewards, dones, infos

    def close(self) -> None:
        """Nothing to release: the engine is plain tensors."""

    # ----------------------------------------------------------------------------------------
    # The sub-envs' attributes

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name not in _SHARED_ATTRS:
            # AttributeError, as for an attribute a gym env lacks: VecEnv.has_attr relies on it.
            raise AttributeError(f"HeartGridVecEnv's sub-envs are agent slots of one engine; "
                                 f"they share only {list(_SHARED_ATTRS)}, not {attr_name!r}")
        return [getattr(self, attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"cannot set {attr_name!r} on HeartGridVecEnv's sub-envs: they are "
                             "agent slots of one engine with no attributes of their own")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        raise AttributeError(f"HeartGridVecEnv's sub-envs have no method {method_name!r}: they are "
                             "agent slots of one engine; call HeartGridVecEnv's own methods")

    def env_is_wrapped(self, wrapper_class: type[gymnasium.Wrapper],
                       indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self._count(indices)

    def _count(self, indices: VecEnvIndices) -> int:
        """How many sub-envs `indices` names (None: all; VecEnv._get_indices may give an iterator)."""
        return len(list(self._get_indices(indices)))
