"""Replays while training (`logging.replay_interval`): every that many epochs, one whole episode
of the run's game played by the current policy, written to `runs/<run>/replays/epoch_<N>.hgreplay`.

    path = record_training_replay(config, trainer.policy, epoch=10, agent_step=40960,
                                  run_dir=config.run_dir)

The episode is played in a fresh one-env BatchedEngine on the policy's device, so the training
engine and its envs are untouched: `config.game` (the curriculum's current tasks are not
followed), seeded by `system.seed`, its full length (no desynchronised first episode, as in
evaluation). Every replay of a run therefore shows the same map with the same seeds for the
action samples, and the difference between two of them is the policy's (and, in a game with
run or self-play NPCs, the checkpoint the NPCs play).

The policy plays a copy in eval mode under inference mode, with its recurrent state from
`initial_state`. In a game with NPCs (`game.policy_agents_pct` < 1) the NPC agents are played
as in training: by the checkpoint the trainer's NPCs play now (`npcs`, with a recurrent state
of their own, sampled with a generator seeded `system.seed + 1` as evaluation does), and the
replay's meta names them (`npc_policy`, `npc_agents`). Nothing is drawn from the trainer's
random generators or from torch's global one (actions come from a private generator, and
`torch.random.fork_rng` fences off the rest), so a run trains bit for bit the same with
replays on or off.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from heartgrid.config.run import RunConfig
from heartgrid.devices import require_device
from heartgrid.engine.batched import BatchedEngine
from heartgrid.evaluation.evaluate import evaluation_game
from heartgrid.evaluation.npc import NpcPlayers
from heartgrid.replay.episode import record_episode
from heartgrid.replay.format import REPLAYS_DIR, SUFFIX, write_replay


def replay_due(config: RunConfig, epoch: int) -> bool:
    interval = config.logging.replay_interval
    return interval > 0 and epoch % interval == 0


def training_replay_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / REPLAYS_DIR / f"epoch_{epoch:06d}{SUFFIX}"


def record_training_replay(config: RunConfig, policy: nn.Module, *, epoch: int, agent_step: int,
                           run_dir: Path, npcs: NpcPlayers | None = None) -> Path:
    """Play one episode of `config.game` with `policy` (and `npcs`, the trainer's, if the
    game has NPCs) and write it; returns the file."""
    try:
        device = next(policy.parameters()).device
    except StopIteration:  # a policy without parameters (scripted): the run's device
        device = torch.device(require_device(config.system.device))
    game = evaluation_game(config.game)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        engine = BatchedEngine(game, 1, device=device, seed=config.system.seed)
        player = copy.deepcopy(policy)  # the trainer's module keeps its mode and binding
        player.adapt(engine.features, engine.action_space.names)
        player.eval()
        meta = {"source": "train", "recipe": config.recipe or None, "policy": str(run_dir),
                "task": None, "epoch": epoch, "agent_step": agent_step}
        generator = torch.Generator(device).manual_seed(config.system.seed)
        npc_players = npc_generator = None
        if npcs is not None:
            npc_players = npcs.for_envs(engine.num_envs)
            npc_generator = torch.Generator(device).manual_seed(config.system.seed + 1)
            meta.update(npcs.replay_meta())
        document = record_episode(player, engine, env=0, meta=meta, generator=generator,
                                  npcs=npc_players, npc_generator=npc_generator)
    return write_replay(training_replay_path(run_dir, epoch), document)
