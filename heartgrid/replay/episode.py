"""Play a policy on a BatchedEngine and record one env's episode: what `heartgrid render
--policy` and the replays written while training do.

    document = record_episode(policy, engine, env=0, meta={"source": "render", ...},
                              generator=torch.Generator().manual_seed(0))

`policy` follows the policy interface (`initial_state(batch, device)`, `forward(obs, state) ->
(logits, values, state)`), already bound to the engine's features and actions; actions are
sampled from its logits with `generator` (or the most likely with `greedy`), as evaluation
does. `scripted_policy("random" | "noop", action_names)` gives the two policies that need no
checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies.base import reset_state
from heartgrid.policies.distribution import sample_actions
from heartgrid.policies.scripted import ScriptedPolicy, make_scripted_policy
from heartgrid.replay.recorder import BULK_FLUSH_EVERY, EpisodeRecorder

SCRIPTED = ("random", "noop")


@torch.inference_mode()
def record_episode(policy: nn.Module, engine: BatchedEngine, *, env: int = 0, meta: dict[str, Any],
                   generator: torch.Generator, greedy: bool = False,
                   max_steps: int | None = None, npcs: Any = None,
                   npc_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Reset `engine`, play `policy` on all its envs until env `env`'s episode ends (or after
    `max_steps` steps: the replay's end is then "cut"), recording env `env`; returns the
    replay document. `npcs` (evaluation/npc.py's NpcPlayers, bound to this engine's batch)
    play their slots, sampled with `npc_generator`, as in evaluation and training."""
    if npcs is not None and npc_generator is None:
        raise ValueError("record_episode: npcs need their own npc_generator")
    engine.reset()
    recorder = EpisodeRecorder(engine, env, meta, flush_every=BULK_FLUSH_EVERY)
    recorder.begin()
    state = policy.initial_state(engine.num_slots, engine.obs.device)
    dones = torch.zeros(engine.num_slots, dtype=torch.bool, device=engine.obs.device)
    steps = 0
    while not recorder.done and (max_steps is None or steps < max_steps):
        logits, _, state = policy(engine.obs, state)
        actions = logits.argmax(dim=-1) if greedy else sample_actions(logits, generator)[0]
        if npcs is not None:
            npcs.act(actions, engine.obs, dones, npc_generator)
        engine.step(actions)
        recorder.record(actions)
        dones = engine.terminals | engine.truncations
        if state:  # other envs of a batch may end first: their slots start afresh
            state = reset_state(state, dones)
        steps += 1
    recorder.close()
    return recorder.document()


def scripted_policy(name: str, action_names: list[str]) -> ScriptedPolicy:
    """"random": every action equally likely; "noop": always `noop_0`, or uniform where the
    game has no noop (a person playing small_cardinal still needs the others to move)."""
    if name not in SCRIPTED:
        raise ValueError(f"unknown scripted policy {name!r}; choose from {', '.join(SCRIPTED)}")
    if name == "noop" and "noop_0" not in action_names:
        name = "random"
    return make_scripted_policy(name, FeatureRegistry.default(), action_names)
