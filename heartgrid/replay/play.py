"""A live game for a person: one env of a BatchedEngine, the person steering agent K, a policy
(or noop) moving the others, every step recorded as a replay (`heartgrid play`).

    session = PlaySession(game, agent=0, seed=0, actor=policy_actor("noop"), meta=...)
    session.act("up")                  # one step; returns the message the page gets
    session.act("get_items_0")
    session.save("game.hgreplay")

What the person can send: a flat action name of the game (`get_items_0`, `attack_3`), or a
direction (`up`, `down`, `left`, `right`), which becomes the game's own way of going there:
`move_cardinal_<d>` when that action is enabled (else `move_8way_<d>`), otherwise a turn
(`rotate_<d>`) when the agent does not face that way yet and a step forward (`move_0`) when it
does. Anything else is refused with PlayError before it reaches the engine.

The other agents' actions come from an `Actor`: a callable from the engine's observations
[slots, F, H, W] to flat actions [slots] (the person's slot is then overwritten), made from the
engine by the factory PlaySession is given: `policy_actor(policy)` for a policy the tools layer
loaded from a URI, or for "noop" / "random".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from heartgrid.config.game import GameConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.errors import UsageError
from heartgrid.policies.base import reset_state
from heartgrid.policies.distribution import sample_actions
from heartgrid.replay.episode import scripted_policy
from heartgrid.replay.format import SUFFIX, write_replay
from heartgrid.replay.recorder import EpisodeRecorder

DIRECTIONS = ("up", "down", "left", "right")  # = orientation codes 0..3
# (key as the page's KeyboardEvent.key names it, what it does, the action or direction sent).
DIRECTION_KEYS = [("ArrowUp", "w"), ("ArrowDown", "s"), ("ArrowLeft", "a"), ("ArrowRight", "d")]


class PlayError(ValueError):
    """A message from the page that the game cannot take (an unknown action, a step after the
    episode ended): the page is told, nothing changes."""


class Actor(Protocol):
    def __call__(self, obs: torch.Tensor) -> torch.Tensor: ...


class PolicyActor:
    """The other agents' actions from a policy (the policy interface: initial_state, forward):
    sampled with a seeded generator, its recurrent state carried from step to step and cleared
    where an episode ended."""

    def __init__(self, policy: nn.Module, engine: BatchedEngine, seed: int):
        self.policy = policy.to(engine.device).eval()
        self.engine = engine
        self.generator = torch.Generator(engine.device).manual_seed(seed)
        self.reset()

    def reset(self) -> None:
        self.state = self.policy.initial_state(self.engine.num_slots, self.engine.device)

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        if self.state:
            self.state = reset_state(self.state, self.engine.terminals | self.engine.truncations)
        logits, _, self.state = self.policy(obs, self.state)
        return sample_actions(logits, self.generator)[0]


def policy_actor(policy: nn.Module | str, seed: int = 0) -> Callable[[BatchedEngine], Actor]:
    """What PlaySession takes: from the engine, the actor of `policy`, a scripted name
    ("noop", "random": replay/episode.py) or a loaded policy, bound here to the engine's
    features and actions by name (as evaluation binds it)."""

    def make(engine: BatchedEngine) -> Actor:
        if isinstance(policy, str):
            module: nn.Module = scripted_policy(policy, list(engine.action_names))
        else:
            module = policy
            module.adapt(engine.features, list(engine.action_space.names))
        return PolicyActor(module, engine, seed)

    return make


def key_map(action_names: list[str]) -> list[list[str]]:
    """[key, what it does, action or direction] for the page, for the game's enabled actions."""
    names = set(action_names)
    keys: list[list[str]] = []
    if names & {"move_0", "move_cardinal_0", "move_8way_0", "rotate_0"}:
        how = ("move" if names & {"move_cardinal_0", "move_8way_0"}
               else "turn, then step" if {"move_0", "rotate_0"} <= names
               else "step" if "move_0" in names else "turn")
        for d, (arrow, letter) in zip(DIRECTIONS, DIRECTION_KEYS):
            keys += [[arrow, f"{how} {d}", d], [letter, f"{how} {d}", d]]
    if "move_1" in names:
        keys.append(["x", "step backward", "move_1"])
    simple = [(" ", "noop_0", "do nothing"), (".", "noop_0", "do nothing"),
              ("e", "get_items_0", "get items from the faced converter"),
              ("r", "put_items_0", "put items into the faced converter"),
              ("f", "attack_0", "attack (the first agent in range)"),
              ("q", "swap_0", "swap with the faced block"),
              ("c", "change_color_0", "color + 1"), ("v", "change_color_1", "color - 1")]
    keys += [[key, label, action] for key, action, label in simple if action in names]
    if "attack_1" in names:
        keys += [[str(k + 1), "attack the k-th agent in range", f"attack_{k}"]
                 for k in range(9) if f"attack_{k}" in names]
    return keys


class PlaySession:
    """The game a person plays: engine, the person's agent, the others' actor, the recorder."""

    def __init__(self, game: GameConfig, *, agent: int = 0, seed: int = 0,
                 actor: Callable[[BatchedEngine], Actor] | None = None,
                 meta: dict[str, Any] | None = None, device: str = "cpu") -> None:
        if not 0 <= agent < game.num_agents:
            raise UsageError(f"--agent {agent} is out of range: this game has {game.num_agents} "
                             f"agent(s), 0..{game.num_agents - 1}")
        # A person plays whole episodes: no desynchronised (shortened) first episode.
        game = game.model_copy(deep=True)
        game.desync_episodes = False
        self.game, self.agent, self.seed = game, agent, seed
        self.engine = BatchedEngine(game, 1, device=device, seed=seed)
        self.names = list(self.engine.action_names)
        self.key_map = key_map(self.names)
        self.actor = (actor or policy_actor("noop"))(self.engine)
        self.meta = {"source": "play", "policy": "noop", **(meta or {}), "person_agent": agent}
        self.recipe = self.meta.get("recipe")
        self.engine.reset()
        self.recorder = EpisodeRecorder(self.engine, 0, self.meta)
        self._start = self.recorder.begin()
        self.done = False
        self.steps = 0  # steps of the recorded episode

    @property
    def episode(self) -> int:
        return int(self._start["meta"]["episode"])

    def orientation(self) -> int:
        return int(self.engine.world.agent_orientation[self.agent].item())

    def agent_state(self) -> tuple[int, int, int]:
        """(row, col, orientation) of the person's agent, read from the engine itself."""
        d = self.engine.world.dims
        cell = int(self.engine.world.agent_cell[self.agent].item())  # env 0: no env offset
        row, col = divmod(cell, d.padded_width)
        return row - d.pad_r, col - d.pad_c, self.orientation()

    def resolve(self, action: str) -> int:
        """The flat action id of a name or a direction (PlayError when the game has none)."""
        names = self.names
        if action in DIRECTIONS:
            d = DIRECTIONS.index(action)
            for name in (f"move_cardinal_{d}", f"move_8way_{d}"):
                if name in names:
                    return names.index(name)
            facing = self.orientation() == d
            if "move_0" in names and (facing or f"rotate_{d}" not in names):
                if facing:
                    return names.index("move_0")
                if "move_1" in names and self.orientation() == (d ^ 1):  # 0<->1, 2<->3: opposite
                    return names.index("move_1")
                raise PlayError(f"this game cannot turn {action}: it has no rotate action")
            if f"rotate_{d}" in names:
                return names.index(f"rotate_{d}")
            raise PlayError(f"this game has no action that moves or turns {action}")
        if action in names:
            return names.index(action)
        shown = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
        raise PlayError(f"unknown action {action[:64]!r}; this game's actions: {shown}, or a "
                        f"direction ({', '.join(DIRECTIONS)})")

    def idle_action(self) -> int:
        return self.names.index("noop_0") if "noop_0" in self.names else -1

    @torch.no_grad()
    def act(self, action: str | None) -> dict[str, Any]:
        """One step: the person's action (None: idle), the actor's for the others. Returns the
        message for the page: {"type": "step", "t", "record", "done", "end"}."""
        if self.done:
            raise PlayError("the episode has ended; start a new one (reset)")
        mine = self.idle_action() if action is None else self.resolve(action)
        actions = torch.as_tensor(self.actor(self.engine.obs), dtype=torch.int64).to(self.engine.device).clone()
        if actions.shape != (self.engine.num_slots,):
            raise RuntimeError(f"the actor returned actions of shape {tuple(actions.shape)}, "
                               f"expected ({self.engine.num_slots},)")
        actions[self.agent] = mine
        self.engine.step(actions)
        record = self.recorder.record(actions)
        self.steps += 1
        self.done = self.recorder.done
        document_end = "cut"
        if self.done:
            document_end = self.recorder.document()["end"]
        return {"type": "step", "t": self.steps, "record": record, "done": self.done, "end": document_end}

    def new_episode(self) -> None:
        """After the episode ended: the next one (the env has already reset in place). While
        it runs: start over from the first episode (the engine resets)."""
        if not self.done:
            self.recorder.close()
            self.engine.reset()
        reset = getattr(self.actor, "reset", None)
        if callable(reset):
            reset()
        self.recorder = EpisodeRecorder(self.engine, 0, self.meta)
        self._start = self.recorder.begin()
        self.done = False
        self.steps = 0

    def document(self) -> dict[str, Any]:
        return self.recorder.document()

    def save(self, path: str | Path) -> Path:
        """Write the current episode (so far) as a replay."""
        return write_replay(path, self.recorder.document())

    def default_save_path(self) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path.cwd() / f"play-{self.recipe or 'game'}-seed{self.seed}-{stamp}{SUFFIX}"
