"""Who plays which slots of the engine while training: the learner (the policy being trained)
and, with game.policy_agents_pct < 1, NPCs (heartgrid/evaluation/npc.py, docs/npcs.md).

Agents 0 .. P-1 of every env are the learner's (P = game.policy_agents), the others NPCs. The
learner's slots, in env order (env e's agent a < P is learner slot e·P + a), are all that the
rollout stores, that the policy steps and that the update trains on: the NPCs' experience
costs no memory and is never trained on. The NPCs act on the same observations through
`NpcPlayers`, with their own recurrent state and their own generator (a stream of the seed
distinct from the learner's actions and the minibatch sampler), and their finished episodes
are logged as `npc/*` (the learner's stay `env_agent/*` and `overview/reward`).

Without NPCs every method hands the engine's tensors through untouched, so a run without
them computes exactly what it did before NPCs existed.

Several ranks (docs/distributed.md): each rank holds the learner and NPC slots of its own
envs, and draws the NPCs' action noise as it draws the learner's, for the world's rows from a
generator seeded alike on every rank (`sample`), so a W-rank run plays as the one-process run
with all the envs. Self-play reads rank 0's checkpoints: the ranks must share the run
directory (one machine, or a shared file system), and wait for rank 0 before each draw.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from heartgrid.config.run import RunConfig
from heartgrid.devices import to_device
from heartgrid.evaluation.npc import NpcPlayers, Sampler
from heartgrid.policies.distribution import sample_actions
from heartgrid.trainer.stats import StatsAccumulator


class Sides:
    def __init__(self, config: RunConfig, engine: Any, device: torch.device, *, generator_seed: int,
                 initial_policy: nn.Module | None, run_dir: Path | None, sample: Sampler = sample_actions,
                 before_draw: Callable[[], None] | None = None):
        """`generator_seed`: the NPCs' action generator; `initial_policy`: what `self` plays
        before this run has a checkpoint; `run_dir`: this run's directory (for `self`);
        `sample`: how the NPCs' actions are drawn from their logits; `before_draw()`: called
        before each checkpoint draw (several ranks: wait until rank 0 has written)."""
        game = config.game
        self.device = device
        self.num_agents = engine.num_agents
        self.per_env = engine.num_agents
        self.num_slots = engine.num_slots
        """The learner's slots: the rows of each rollout pass."""
        self.npcs: NpcPlayers | None = None
        if game.npc_policy_uri is None:
            return
        self.per_env = game.policy_agents
        self.num_slots = engine.num_envs * self.per_env
        self.npcs = NpcPlayers(game, engine.num_envs, engine.features, engine.action_space.names, device,
                               seed=config.system.seed, own_run_dir=run_dir, initial_policy=initial_policy,
                               # This run's periodic checkpoints only (npc.py): not one a stop wrote.
                               every=config.trainer.checkpoint_interval if game.npc_policy_uri == "self" else None)
        self.learner = (~self.npcs.mask).nonzero().view(-1)
        self.generator = torch.Generator(device).manual_seed(generator_seed)
        self.sample = sample
        self.before_draw = before_draw
        self.dones = torch.zeros(engine.num_slots, dtype=torch.bool, device=device)
        """Every slot's end of episode at the last step: the NPCs' episode starts."""

    # ---- the rollout ---------------------------------------------------------------------------

    def observe(self, obs: Tensor) -> Tensor:
        """The learner's observations [learner slots, F, H, W] of the engine's [slots, F, H, W]."""
        if self.npcs is None:
            return obs
        # Selected in the engine's channels-last layout, which the experience buffer shares.
        return obs.permute(0, 2, 3, 1).index_select(0, self.learner).permute(0, 3, 1, 2)

    def mine(self, tensor: Tensor) -> Tensor:
        """The learner's rows of a per-slot tensor (rewards, terminals, truncations)."""
        return tensor if self.npcs is None else tensor.index_select(0, self.learner)

    def actions(self, learner_actions: Tensor, obs: Tensor) -> Tensor:
        """Every slot's actions: the learner's, and the NPCs' chosen on `obs` (all slots)."""
        if self.npcs is None:
            return learner_actions
        actions = torch.empty(len(self.dones), dtype=learner_actions.dtype, device=learner_actions.device)
        actions.index_copy_(0, self.learner, learner_actions)
        self.npcs.act(actions, obs, self.dones, self.generator, self.sample)
        return actions

    def stepped(self, dones: Tensor) -> None:
        """After a step: every slot's episode ends (the NPCs' next episode starts)."""
        if self.npcs is not None:
            self.dones = dones

    def truncated(self, envs: Any) -> tuple[Tensor, Tensor]:
        """(engine slots, learner slots) of the learner's agents in the envs `envs` (host ints)."""
        envs = torch.as_tensor(envs)[:, None]
        agents = torch.arange(self.per_env)
        engine_slots = to_device((envs * self.num_agents + agents).flatten(), self.device)
        if self.npcs is None:
            return engine_slots, engine_slots
        return engine_slots, to_device((envs * self.per_env + agents).flatten(), self.device)

    def reset_memory(self) -> None:
        """trainer.recurrent_state=reset: the NPCs start each rollout afresh too."""
        if self.npcs is not None:
            self.npcs.state = self.npcs.module.initial_state(len(self.npcs.slots), self.device)

    # ---- epochs ----------------------------------------------------------------------------------

    def refresh(self, epoch: int) -> None:
        """Before epoch `epoch` + 1: every npc_refresh_epochs epochs, draw the checkpoint the NPCs
        play (a run, or `self`). Not before the first epoch: the NPCs were drawn when made."""
        npcs = self.npcs
        if npcs is None or not npcs.periodic or epoch == 0 or epoch % npcs.game.npc_refresh_epochs:
            return
        if self.before_draw is not None:
            self.before_draw()
        npcs.refresh(epoch)

    def record(self, stats: StatsAccumulator, episodes: Any) -> None:
        """`npc/reward` and `npc/<agent stat>` of the NPCs' finished episodes; `npc/opponent_epoch`
        (a run or `self`): the epoch of the checkpoint they play, 0 for the initial policy."""
        if self.npcs is None:
            return
        if self.npcs.periodic:
            epoch = self.npcs.checkpoint_epoch
            stats.add("npc/opponent_epoch", 0.0 if epoch is None else float(epoch))
        rewards = episodes.npc_rewards
        if rewards is not None and len(rewards):
            stats.add("npc/reward", rewards)
            stats.add_dict(episodes.npc_agent_stats, prefix="npc/")

    # ---- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any] | None:
        if self.npcs is None:
            return None
        return {"players": self.npcs.state_dict(), "dones": self.dones.cpu(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.npcs is None or state is None:
            return
        self.npcs.load_state_dict(state["players"])
        self.dones = state["dones"].to(self.device)
        self.generator.set_state(state["generator"])
