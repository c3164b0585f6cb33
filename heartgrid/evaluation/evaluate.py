"""Play a policy on the batched engine for a fixed number of whole episodes.

    engine = BatchedEngine(evaluation_game(game), num_envs, device, seed)
    policy = load_policy(uri, device, engine.features, engine.action_space.names)
    result = evaluate(policy, engine, episodes=16, max_steps=game.max_steps)
    result.summary()   # mean/std/min/max of reward, length and every per-agent stat

Unbiased counting: each env contributes a fixed quota of episodes (`episodes` split as evenly
as possible over the envs), the first ones it finishes. Taking "the first N episodes that end
anywhere" would favour short episodes, which end first.

Episodes are not desynchronised here (`evaluation_game`): training desynchronises each env's
first episode so that resets spread over time, which would end evaluation episodes early.

Actions are sampled by default, as in training, so the numbers compare with the training
curves; `greedy=True` takes the most likely action.

`npcs` (npc.py, game.policy_agents_pct < 1): the NPC side of the batch; the policy's actions
for their slots are replaced by the NPC policy's, and the results keep the two sides apart
(`rewards`/`agent_stats` the policy's agents, `npc_rewards`/`npc_agent_stats` the NPCs).

`recorders` (heartgrid.replay): replay recorders of some of the engine's envs, begun after the
reset and fed every step until their episode ends (`heartgrid eval --replays`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from heartgrid.config.game import GameConfig
from heartgrid.policies.base import reset_state
from heartgrid.policies.distribution import sample_actions
from heartgrid.replay.recorder import EpisodeRecorder


def evaluation_game(game: GameConfig) -> GameConfig:
    """The game as evaluated: the same, except every episode runs its full length."""
    game = game.model_copy(deep=True)
    game.desync_episodes = False
    return game


@dataclass
class EvalResult:
    rewards: Tensor  # [N] episode reward, mean per agent
    lengths: Tensor  # [N] steps
    env_ids: Tensor  # [N] the env each episode ran in
    agent_stats: dict[str, Tensor]  # name -> [N], mean per agent
    game_stats: dict[str, Tensor]  # name -> [N]
    npc_rewards: Tensor | None = None  # [N], mean per NPC (None: no NPCs)
    npc_agent_stats: dict[str, Tensor] | None = None

    @property
    def episodes(self) -> int:
        return int(self.rewards.numel())

    def summary(self) -> dict[str, Any]:
        """JSON-able: per-episode statistics of reward, length, hearts, and every stat."""
        hearts = self.agent_stats.get("heart.get")
        summary = {
            "episodes": self.episodes,
            "reward": describe(self.rewards),
            "episode_length": describe(self.lengths),
            "heart.get": None if hearts is None else describe(hearts),
            "agent_stats": {name: describe(v) for name, v in sorted(self.agent_stats.items())},
            "game_stats": {name: describe(v) for name, v in sorted(self.game_stats.items())},
        }
        if self.npc_rewards is not None and self.npc_agent_stats is not None:
            summary["npc"] = {
                "reward": describe(self.npc_rewards),
                "agent_stats": {name: describe(v) for name, v in sorted(self.npc_agent_stats.items())},
            }
        return summary


def describe(values: Tensor) -> dict[str, float]:
    values = values.double()
    return {
        "mean": values.mean().item(),
        "std": values.std(unbiased=False).item(),
        "min": values.min().item(),
        "max": values.max().item(),
    }


def episode_quotas(episodes: int, num_envs: int) -> Tensor:
    """How many episodes each env contributes: `episodes` split as evenly as possible."""
    return torch.full((num_envs,), episodes // num_envs) + (torch.arange(num_envs) < episodes % num_envs)


@torch.no_grad()
def evaluate(
    policy: nn.Module, engine: Any, *, episodes: int, max_steps: int, greedy: bool = False, seed: int = 0,
    recorders: Sequence[EpisodeRecorder] = (), npcs: Any = None,
) -> EvalResult:
    """Run `episodes` whole episodes of `policy` (already bound to the engine's features and
    actions) on `engine` (a BatchedEngine of a game with `max_steps`), and collect their stats."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    device = engine.obs.device
    policy.eval()
    quotas = episode_quotas(episodes, engine.num_envs)
    taken = torch.zeros_like(quotas)
    kept: list[dict[str, Any]] = []
    generator = torch.Generator(device).manual_seed(seed)
    npc_generator = torch.Generator(device).manual_seed(seed + 1) if npcs is not None else None
    # Every env finishes an episode within max_steps; more steps than that means a broken engine.
    step_limit = (int(quotas.max()) + 1) * max_steps + 1

    engine.reset()
    for recorder in recorders:
        recorder.begin()
    state = policy.initial_state(engine.num_slots, device)
    dones = torch.zeros(engine.num_slots, dtype=torch.bool, device=device)
    steps = 0
    while bool((taken < quotas).any()):
        logits, _, state = policy(engine.obs, state)
        if greedy:
            actions = logits.argmax(dim=-1)
        else:
            actions, _ = sample_actions(logits, generator)
        if npcs is not None:
            npcs.act(actions, engine.obs, dones, npc_generator)
        engine.step(actions)
        for recorder in recorders:
            if not recorder.done:
                recorder.record(actions)
        dones = engine.terminals | engine.truncations
        state = reset_state(state, dones)
        steps += 1
        if bool(dones.any()):
            kept.append(_take_within_quota(engine.drain_episodes(), quotas, taken))
        if steps > step_limit:
            raise RuntimeError(
                f"evaluation ran {steps} steps with game.max_steps={max_steps} but only "
                f"{int(taken.sum())} of {episodes} episodes ended; the engine does not end episodes"
            )
    return _concat(kept)


def _take_within_quota(batch: Any, quotas: Tensor, taken: Tensor) -> dict[str, Any]:
    """The drained episodes whose env has not yet delivered its quota (in order); counts them."""
    keep = torch.zeros(len(batch.env_ids), dtype=torch.bool)
    npc_rewards, npc_stats = batch.npc_rewards, batch.npc_agent_stats
    for i, env in enumerate(batch.env_ids.tolist()):  # a handful of episodes per drain
        if taken[env] < quotas[env]:
            taken[env] += 1
            keep[i] = True
    return {
        "rewards": batch.rewards[keep],
        "lengths": batch.lengths[keep],
        "env_ids": batch.env_ids[keep],
        "agent_stats": {k: v[keep] for k, v in batch.agent_stats.items()},
        "game_stats": {k: v[keep] for k, v in batch.game_stats.items()},
        "npc_rewards": None if npc_rewards is None else npc_rewards[keep],
        "npc_agent_stats": None if npc_stats is None else {k: v[keep] for k, v in npc_stats.items()},
    }


def _concat(parts: list[dict[str, Any]]) -> EvalResult:
    def cat(key: str) -> Tensor:
        return torch.cat([p[key] for p in parts])

    def cat_stats(key: str) -> dict[str, Tensor]:
        # A stat absent from some episodes' batch was never counted there: zero, not missing.
        names = sorted({name for p in parts for name in p[key]})
        return {
            name: torch.cat([p[key].get(name, torch.zeros(len(p["rewards"]))).float() for p in parts])
            for name in names
        }

    npcs = all(p["npc_rewards"] is not None for p in parts)
    return EvalResult(
        rewards=cat("rewards").float(),
        lengths=cat("lengths"),
        env_ids=cat("env_ids"),
        agent_stats=cat_stats("agent_stats"),
        game_stats=cat_stats("game_stats"),
        npc_rewards=cat("npc_rewards").float() if npcs else None,
        npc_agent_stats=cat_stats("npc_agent_stats") if npcs else None,
    )
