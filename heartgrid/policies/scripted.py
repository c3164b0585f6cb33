"""Scripted policies: NPCs that share an env with the learners, and baselines to play against.

They follow the policy contract (`base.py`): `forward(obs, state) -> logits, values, state`
over the action names they were bound to, so the trainer and the evaluator sample their
actions like any policy's, with the same seeded generator. A scripted policy does not choose
at random itself: it puts equal logits on the actions it finds equally good and lets the
sampler break the tie, which keeps a run with NPCs deterministic for its seed.

    random   uniform over every action
    noop     always noop (an agent that stands still; the env still simulates it)
    greedy   a heart-seeker that reads only its own observation window: take hearts from a
             visible altar; carry red batteries to it; take batteries from a red generator;
             carry red ore to it; take ore from a red mine; otherwise wander. It walks to the
             nearest such converter, faces it and uses it.

The greedy rules are those of the arena's red chain (SPEC §1.1): mine_red -> ore_red ->
generator_red -> battery_red -> altar -> heart. They work with `move`+`rotate` or with
`move_cardinal`, and need `get_items` and `put_items`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from heartgrid.config.items import ITEM_INDEX, ORIENTATION_DELTAS, TYPE_IDS
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies.base import check_sequence, reset_state

SCRIPTED_POLICIES = ("random", "noop", "greedy")
# Logits far enough apart that a softmax puts all the mass on the chosen actions (e^-40 ~ 0).
CHOSEN, OTHER = 20.0, -20.0


class ScriptedPolicy(nn.Module):
    """Base: no parameters, no memory (a one-element state so that `reset_state` works)."""

    def __init__(self, features: FeatureRegistry, action_names: list[str]):
        super().__init__()
        self.features = features
        self.action_names = list(action_names)
        self.index = {name: i for i, name in enumerate(self.action_names)}

    def initial_state(self, batch: int, device: torch.device | str) -> tuple[Tensor, ...]:
        return (torch.zeros(batch, 1, device=device),)

    def choose(self, obs: Tensor) -> Tensor:
        """bool [B, A]: the actions this policy takes, equally likely."""
        raise NotImplementedError

    def forward(self, obs: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
        chosen = self.choose(obs)
        logits = torch.where(chosen, CHOSEN, OTHER)
        return logits, torch.zeros(obs.shape[0], device=obs.device), state

    def forward_sequence(self, obs: Tensor, state: tuple[Tensor, ...],
                         episode_starts: Tensor) -> tuple[Tensor, Tensor]:
        check_sequence(obs, episode_starts)
        S, T = episode_starts.shape
        logits, values, _ = self(obs.flatten(0, 1), reset_state(state, episode_starts[:, 0]))
        return logits.view(S, T, -1), values.view(S, T)

    def adapt(self, features: FeatureRegistry, action_names: list[str], **_: object) -> None:
        self.__init__(features, action_names)  # nothing learned: rebinding is rebuilding

    def spec(self) -> dict:
        return {"name": self.name, "class": f"{type(self).__module__}:{type(self).__qualname__}",
                "action_names": self.action_names}


class RandomPolicy(ScriptedPolicy):
    name = "random"

    def choose(self, obs: Tensor) -> Tensor:
        return torch.ones(obs.shape[0], len(self.action_names), dtype=torch.bool, device=obs.device)


class NoopPolicy(ScriptedPolicy):
    name = "noop"

    def __init__(self, features: FeatureRegistry, action_names: list[str]):
        super().__init__(features, action_names)
        if "noop_0" not in self.index:
            raise ValueError(f"the noop policy needs the action noop_0; this game has {self.action_names}")

    def choose(self, obs: Tensor) -> Tensor:
        chosen = torch.zeros(obs.shape[0], len(self.action_names), dtype=torch.bool, device=obs.device)
        chosen[:, self.index["noop_0"]] = True
        return chosen


class GreedyHeartSeeker(ScriptedPolicy):
    """The heart-seeker described in the module docstring, for a whole batch at once."""

    name = "greedy"

    def __init__(self, features: FeatureRegistry, action_names: list[str]):
        super().__init__(features, action_names)
        missing = [n for n in ("get_items_0", "put_items_0") if n not in self.index]
        cardinal = all(f"move_cardinal_{d}" in self.index for d in range(4))
        turning = "move_0" in self.index and all(f"rotate_{d}" in self.index for d in range(4))
        if missing or not (cardinal or turning):
            raise ValueError(
                f"the greedy policy needs get_items_0, put_items_0 and move_cardinal_0..3 or "
                f"move_0 with rotate_0..3; this game has {self.action_names}")
        self.cardinal = cardinal
        channel = {f.name: f.id for f in features}
        self.type_channel = channel["type_id"]
        self.orientation_channel = channel["agent:orientation"]
        self.inventory_channel = {item: channel[f"inv:{item}"] for item in ITEM_INDEX}

    def choose(self, obs: Tensor) -> Tensor:
        B, _, H, W = obs.shape
        cy, cx = H // 2, W // 2
        kind = obs[:, self.type_channel].long() - 1  # type id per cell, -1 empty
        stock = {item: obs[:, c].long() for item, c in self.inventory_channel.items()}
        mine = {item: count[:, cy, cx] for item, count in stock.items()}  # own inventory
        facing = obs[:, self.orientation_channel, cy, cx].long()

        altar, generator, ore_mine = (kind == TYPE_IDS[t] for t in ("altar", "generator_red", "mine_red"))
        holding_batteries = (mine["battery_red"] > 0).view(B, 1, 1)
        holding_ore = (mine["ore_red"] > 0).view(B, 1, 1)
        # Goals in order of preference: (cells, take (get) rather than give (put)).
        goals = [
            (altar & (stock["heart"] > 0), True),
            (altar & holding_batteries, False),
            (generator & (stock["battery_red"] > 0), True),
            (generator & holding_ore, False),
            (ore_mine & (stock["ore_red"] > 0), True),
        ]
        rows = torch.arange(H, device=obs.device).view(H, 1)
        cols = torch.arange(W, device=obs.device).view(1, W)
        distance = ((rows - cy).abs() + (cols - cx).abs()).flatten()  # [H*W]
        far = H + W
        best = torch.full((B,), far, device=obs.device)
        target = torch.zeros(B, dtype=torch.long, device=obs.device)
        take = torch.zeros(B, dtype=torch.bool, device=obs.device)
        for cells, is_take in reversed(goals):  # earlier goals overwrite later ones
            cost = torch.where(cells.flatten(1), distance, far)
            nearest, where = cost.min(dim=1)
            found = nearest < far
            best = torch.where(found, nearest, best)
            target = torch.where(found, where, target)
            take = torch.where(found, is_take, take)
        has_goal = best < far
        dy, dx = target // W - cy, target % W - cx

        # Directions (0 up, 1 down, 2 left, 3 right) that bring the agent closer, and free.
        delta = torch.tensor(ORIENTATION_DELTAS, device=obs.device)  # [4, 2]
        closer = (torch.sign(dy).view(B, 1) == delta[:, 0]) & (delta[:, 0] != 0) | \
                 (torch.sign(dx).view(B, 1) == delta[:, 1]) & (delta[:, 1] != 0)
        neighbour = kind[:, cy + delta[:, 0], cx + delta[:, 1]]  # [B, 4]
        free = neighbour < 0
        adjacent = has_goal & (best == 1)
        toward = has_goal & ~adjacent & (closer & free).any(dim=1)
        wander = ~adjacent & ~toward  # no goal, or the way is blocked: any free direction
        go = torch.where(toward.view(B, 1), closer & free, free)
        go = torch.where(wander.view(B, 1) & ~free.any(dim=1, keepdim=True), torch.ones_like(go), go)
        go = torch.where(adjacent.view(B, 1), closer, go)  # the one direction to face

        chosen = torch.zeros(B, len(self.action_names), dtype=torch.bool, device=obs.device)
        use = adjacent & (facing == closer.long().argmax(dim=1))
        chosen[:, self.index["get_items_0"]] = use & take
        chosen[:, self.index["put_items_0"]] = use & ~take
        walking = go & ~use.view(B, 1)
        if self.cardinal:  # a blocked cardinal move still turns the agent to face d
            for d in range(4):
                chosen[:, self.index[f"move_cardinal_{d}"]] = walking[:, d]
            return chosen
        # move + rotate: go straight on when that is a good way, else turn to one.
        straight = walking.gather(1, facing.clamp(0, 3).view(B, 1)).view(B)
        chosen[:, self.index["move_0"]] = straight
        for d in range(4):
            chosen[:, self.index[f"rotate_{d}"]] = walking[:, d] & ~straight
        return chosen


def make_scripted_policy(name: str, features: FeatureRegistry, action_names: list[str]) -> ScriptedPolicy:
    classes = {"random": RandomPolicy, "noop": NoopPolicy, "greedy": GreedyHeartSeeker}
    if name not in classes:
        raise ValueError(f"unknown scripted policy {name!r}; choose from {list(SCRIPTED_POLICIES)}")
    return classes[name](features, action_names)
