"""The trainer state of a run on several ranks (docs/distributed.md), in one checkpoint.

Rank 0 writes the checkpoint. What every rank holds alike (counters, optimizer, curriculum,
the sampler's and the actions' generators, logging) is stored once, as in a one-process
checkpoint; what each rank holds for itself (its envs' engine state, its recurrent state and
episode starts, its process's random generators, its unlogged statistics) is stored under
`world.ranks`, one entry per rank in rank order, so that every rank resumes exactly where it
was. A checkpoint of another number of ranks (or one without a rank's part) is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heartgrid.checkpoint.errors import CheckpointError

REQUIRED_RANK_KEYS = ("rng", "engine", "recurrent_state", "episode_starts", "stats")
"""The trainer-state entries that differ between ranks, in every trainer state."""
OPTIONAL_RANK_KEYS = ("npc", "teacher")
"""Per-rank entries of runs with NPCs (their recurrent state, episode starts and generator, of
the rank's own NPC slots) or a kickstart teacher (its recurrent state on the rank's slots)."""
RANK_KEYS = REQUIRED_RANK_KEYS + OPTIONAL_RANK_KEYS

WORLD_KEY = "world"


def split_rank_state(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the part every rank shares, this rank's own part) of a trainer state."""
    shared = {key: value for key, value in state.items() if key not in RANK_KEYS}
    return shared, {key: state[key] for key in RANK_KEYS if key in state}


def join_rank_states(shared: dict[str, Any], ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """The trainer state a checkpoint of len(ranks) ranks stores."""
    return {**shared, WORLD_KEY: {"size": len(ranks), "ranks": list(ranks)}}


def world_size_of(state: dict[str, Any]) -> int:
    """How many ranks wrote this trainer state (1: a one-process checkpoint)."""
    world = state.get(WORLD_KEY)
    return int(world["size"]) if isinstance(world, dict) else 1


def rank_states(state: dict[str, Any], size: int, path: Path) -> list[dict[str, Any]]:
    """The full trainer state of each of `size` ranks, from a checkpoint's state; a checkpoint
    of another world size, or missing a rank's part, is refused with what to do."""
    written = world_size_of(state)
    if written != size:
        raise CheckpointError(path, (
            f"it holds the state of {written} rank(s) but this run has {size}: each rank's envs, "
            f"recurrent state and random generators are in it, and trainer.num_envs and batch_size are "
            f"per rank. Resume with {written} rank(s) (torchrun --nproc_per_node {written}, or heartgrid "
            f"train ... --nproc {written}); to go on from its weights with {size}, start a new run with "
            f"trainer.initial_policy={path}"))
    if size == 1:
        return [state]
    ranks = state[WORLD_KEY].get("ranks")
    if not isinstance(ranks, list) or len(ranks) != size or not all(isinstance(r, dict) for r in ranks):
        count = len(ranks) if isinstance(ranks, list) else 0
        raise CheckpointError(path, f"it should hold the state of each of its {size} ranks but holds {count}; "
                                    "it cannot be resumed exactly (an older checkpoint may)")
    shared = {key: value for key, value in state.items() if key != WORLD_KEY}
    states = []
    for rank, own in enumerate(ranks):
        missing = [key for key in REQUIRED_RANK_KEYS if key not in own]
        if missing:
            raise CheckpointError(path, f"the state of rank {rank} lacks {', '.join(missing)}; it cannot be resumed")
        states.append({**shared, **own})
    return states
