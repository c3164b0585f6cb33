"""The rules of one step for ONE env, in plain Python (RULES.md "One step", steps 3 and 4).

This module is the readable half of the reference engine: the state of a world (agents,
converters, walls on a grid) and the functions that advance converters and apply each kind of
action. `reference.py` drives them in the order RULES.md fixes. Clarity beats speed here: the
batched tensor engine must reproduce exactly what these loops do.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from heartgrid.config.game import ActionConfig, AgentConfig, ConverterConfig, GameConfig, WallConfig
from heartgrid.config.items import DOWN, ITEM_INDEX, ITEMS, LEFT, ORIENTATION_DELTAS, RIGHT, UP

NUM_ITEMS = len(ITEMS)

# The (drow, dcol) to an agent's left for each orientation; its right is the opposite.
LEFT_OF: dict[int, tuple[int, int]] = {
    UP: ORIENTATION_DELTAS[LEFT],
    DOWN: ORIENTATION_DELTAS[RIGHT],
    LEFT: ORIENTATION_DELTAS[DOWN],
    RIGHT: ORIENTATION_DELTAS[UP],
}
# move_8way args 4..7: up-left, up-right, down-left, down-right.
DIAGONALS: tuple[tuple[int, int], ...] = ((-1, -1), (-1, 1), (1, -1), (1, 1))
ATTACK_DISTANCES = (1, 2, 3)
ATTACK_LATERALS = (0, 1, -1)  # centre, left, right

IDLE, CONVERTING, COOLING = "idle", "converting", "cooling"

# Step 4: the kinds of actions in the order they apply; the move kinds form one kind.
ACTION_KINDS: tuple[tuple[str, ...], ...] = (
    ("attack",),
    ("swap",),
    ("move", "move_cardinal", "move_8way"),
    ("rotate",),
    ("put_items",),
    ("get_items",),
    ("change_color",),
    ("noop",),
)


# --------------------------------------------------------------------------------------------
# State


@dataclass(eq=False)
class Agent:
    index: int
    row: int
    col: int
    group: str
    group_id: int
    config: AgentConfig  # the group's resolved agent config
    limits: list[int]  # inventory limit per item
    orientation: int = UP
    inventory: list[int] = field(default_factory=lambda: [0] * NUM_ITEMS)
    frozen: int = 0
    color: int = 0
    last_action: int = 0
    last_action_arg: int = 0
    last_reward: float = 0.0
    episode_reward: float = 0.0
    penalty: float = 0.0  # failure penalties of the current step
    stats: Counter = field(default_factory=Counter)


@dataclass(eq=False)
class Converter:
    name: str
    config: ConverterConfig
    row: int
    col: int
    inventory: list[int] = field(default_factory=lambda: [0] * NUM_ITEMS)
    phase: str = IDLE
    timer: int = 0
    conversions: int = 0


@dataclass(eq=False)
class Wall:
    name: str
    config: WallConfig


Cell = Agent | Converter | Wall | None


@dataclass(eq=False)
class World:
    game: GameConfig
    grid: list[list[Cell]]
    agents: list[Agent]
    converters: list[Converter]
    game_stats: Counter

    def inside(self, row: int, col: int) -> bool:
        return 0 <= row < len(self.grid) and 0 <= col < len(self.grid[0])

    def faced(self, agent: Agent) -> tuple[int, int]:
        dr, dc = ORIENTATION_DELTAS[agent.orientation]
        return agent.row + dr, agent.col + dc

    def cell(self, row: int, col: int) -> Cell:
        """The content of a cell; None for empty cells and for cells outside the grid."""
        return self.grid[row][col] if self.inside(row, col) else None


@dataclass(frozen=True)
class Request:
    """A valid action of an agent that is not frozen: (action name, argument)."""

    agent: Agent
    name: str
    arg: int


# --------------------------------------------------------------------------------------------
# Step 3: converters


def advance_converter(conv: Converter, game_stats: Counter) -> None:
    cfg = conv.config
    if conv.phase == CONVERTING:
        conv.timer -= 1
        if conv.timer == 0:
            for item, count in cfg.output_resources.items():
                conv.inventory[ITEM_INDEX[item]] += count
            conv.conversions += 1
            game_stats[f"{conv.name}.conversions"] += 1
            conv.phase, conv.timer = (COOLING, cfg.cooldown) if cfg.cooldown > 0 else (IDLE, 0)
    elif conv.phase == COOLING:
        conv.timer -= 1
        if conv.timer == 0:
            conv.phase = IDLE
    if conv.phase != IDLE:
        return
    has_inputs = all(conv.inventory[ITEM_INDEX[i]] >= n for i, n in cfg.input_resources.items())
    conversions_left = cfg.max_conversions == -1 or conv.conversions < cfg.max_conversions
    if not (has_inputs and conversions_left):
        return
    outputs_held = sum(conv.inventory[ITEM_INDEX[i]] for i in cfg.output_resources)
    if cfg.max_output != -1 and outputs_held >= cfg.max_output:
        game_stats[f"{conv.name}.blocked"] += 1
        return
    for item, count in cfg.input_resources.items():
        conv.inventory[ITEM_INDEX[item]] -= count
    conv.phase, conv.timer = CONVERTING, cfg.conversion_ticks


# --------------------------------------------------------------------------------------------
# Step 4: shared pieces of every action kind


def holds(agent: Agent, resources: dict[str, int]) -> bool:
    return all(agent.inventory[ITEM_INDEX[item]] >= n for item, n in resources.items())


def has_resources(agent: Agent, cfg: ActionConfig) -> bool:
    """An action needs its required resources and the ones it would consume (per item, the larger)."""
    needed = Counter(cfg.required_resources) | Counter(cfg.consumed_resources)
    return holds(agent, needed)


def pay(agent: Agent, resources: dict[str, int]) -> None:
    for item, n in resources.items():
        agent.inventory[ITEM_INDEX[item]] -= n


def succeed(agent: Agent, name: str, cfg: ActionConfig, *, paid: bool = False) -> None:
    agent.stats[f"action.{name}.success"] += 1
    if not paid:
        pay(agent, cfg.consumed_resources)


def fail(agent: Agent, name: str, cfg: ActionConfig) -> None:
    agent.stats[f"action.{name}.failed"] += 1
    agent.penalty += cfg.failure_penalty


def resolve_claims(claims: list[tuple[Agent, object]], priority: list[int]) -> tuple[list, list]:
    """Several agents claiming one target: the highest priority wins (ties: lower index).

    Returns (winners as (agent, target) pairs, losing agents)."""
    by_target: dict[object, list[Agent]] = {}
    for agent, target in claims:
        by_target.setdefault(target, []).append(agent)
    winners, losers = [], []
    for target, claimants in by_target.items():
        best = max(claimants, key=lambda a: (priority[a.index], -a.index))
        winners.append((best, target))
        losers += [a for a in claimants if a is not best]
    return winners, losers


def action_config(world: World, name: str) -> ActionConfig:
    return getattr(world.game.actions, name)


# --------------------------------------------------------------------------------------------
# Step 4: the action kinds, each applied to every request of its kind at once


def attack_targets(world: World, agent: Agent) -> list[Agent]:
    """Agents in the 3x3 block 1-3 cells ahead: by distance, then centre, left, right."""
    dr, dc = ORIENTATION_DELTAS[agent.orientation]
    lr, lc = LEFT_OF[agent.orientation]
    found = []
    for d in ATTACK_DISTANCES:
        for lateral in ATTACK_LATERALS:
            cell = world.cell(agent.row + d * dr + lateral * lr, agent.col + d * dc + lateral * lc)
            if isinstance(cell, Agent):
                found.append(cell)
    return found


def apply_attack(world: World, requests: list[Request], priority: list[int]) -> None:
    cfg = world.game.actions.attack
    frozen_at_start = [a.frozen > 0 for a in world.agents]
    claims = []
    for req in requests:
        found = attack_targets(world, req.agent) if has_resources(req.agent, cfg) else []
        if not found:
            fail(req.agent, "attack", cfg)
            continue
        target = found[req.arg] if req.arg < len(found) else found[-1]
        claims.append((req.agent, target.index))
    winners, losers = resolve_claims(claims, priority)
    for agent in losers:
        fail(agent, "attack", cfg)
    # Every winner pays first, so that steals below see inventories that cannot go negative.
    for attacker, _ in winners:
        succeed(attacker, "attack", cfg)
    steals = []
    for attacker, target_index in winners:
        target = world.agents[target_index]
        if cfg.defense_resources and holds(target, cfg.defense_resources):
            pay(target, cfg.defense_resources)
            attacker.stats["action.attack.blocked"] += 1
            continue
        if not frozen_at_start[target.index]:
            steals.append((attacker, target))
        target.frozen = target.config.freeze_duration
    # Simultaneous steals: every amount is computed before any is moved.
    takes = [
        [min(target.inventory[i], attacker.limits[i] - attacker.inventory[i]) for i in range(NUM_ITEMS)]
        for attacker, target in steals
    ]
    for (attacker, target), take in zip(steals, takes):
        for i, n in enumerate(take):
            attacker.inventory[i] += n
            target.inventory[i] -= n
            if n:
                attacker.stats[f"{ITEMS[i]}.stolen"] += n


def apply_swap(world: World, requests: list[Request], priority: list[int]) -> None:
    cfg = world.game.actions.swap
    claims = []
    for req in requests:
        row, col = world.faced(req.agent)
        obj = world.cell(row, col)
        if has_resources(req.agent, cfg) and isinstance(obj, Wall) and obj.config.swappable:
            claims.append((req.agent, (row, col)))
        else:
            fail(req.agent, "swap", cfg)
    winners, losers = resolve_claims(claims, priority)
    for agent in losers:
        fail(agent, "swap", cfg)
    for agent, (row, col) in winners:
        world.grid[agent.row][agent.col] = world.grid[row][col]
        world.grid[row][col] = agent
        agent.row, agent.col = row, col
        succeed(agent, "swap", cfg)


def move_delta(agent: Agent, name: str, arg: int) -> tuple[int, int]:
    """The step a move action takes; move_cardinal (and move_8way args 0-3) also turn the agent."""
    if name == "move":
        dr, dc = ORIENTATION_DELTAS[agent.orientation]
        return (dr, dc) if arg == 0 else (-dr, -dc)
    if arg < 4:
        agent.orientation = arg  # faces that way even if the move fails
        return ORIENTATION_DELTAS[arg]
    return DIAGONALS[arg - 4]


def apply_move(world: World, requests: list[Request], priority: list[int]) -> None:
    claims = []
    for req in requests:
        cfg = action_config(world, req.name)
        dr, dc = move_delta(req.agent, req.name, req.arg)
        row, col = req.agent.row + dr, req.agent.col + dc
        # The grid is not changed until all claims are in: a cell vacated by a mover this
        # step is still occupied here, so it cannot be entered until the next step.
        if has_resources(req.agent, cfg) and world.inside(row, col) and world.grid[row][col] is None:
            claims.append((req.agent, (row, col)))
        else:
            fail(req.agent, req.name, cfg)
    winners, losers = resolve_claims(claims, priority)
    names = {req.agent.index: req.name for req in requests}
    for agent in losers:
        fail(agent, names[agent.index], action_config(world, names[agent.index]))
    for agent, (row, col) in winners:
        world.grid[agent.row][agent.col] = None
        world.grid[row][col] = agent
        agent.row, agent.col = row, col
        succeed(agent, names[agent.index], action_config(world, names[agent.index]))


def apply_rotate(world: World, requests: list[Request], priority: list[int]) -> None:
    cfg = world.game.actions.rotate
    for req in requests:
        if not has_resources(req.agent, cfg):
            fail(req.agent, "rotate", cfg)
            continue
        req.agent.orientation = req.arg
        succeed(req.agent, "rotate", cfg)


def claim_converters(world: World, requests: list[Request], name: str, priority: list[int]):
    """put_items / get_items: each agent claims the converter it faces; returns the winners."""
    cfg = action_config(world, name)
    claims = []
    for req in requests:
        obj = world.cell(*world.faced(req.agent))
        if has_resources(req.agent, cfg) and isinstance(obj, Converter):
            claims.append((req.agent, (obj.row, obj.col)))
        else:
            fail(req.agent, name, cfg)
    winners, losers = resolve_claims(claims, priority)
    for agent in losers:
        fail(agent, name, cfg)
    return [(agent, world.grid[row][col]) for agent, (row, col) in winners]


def apply_put(world: World, requests: list[Request], priority: list[int]) -> None:
    cfg = world.game.actions.put_items
    for agent, conv in claim_converters(world, requests, "put_items", priority):
        moved = 0
        for item, count in conv.config.input_resources.items():
            i = ITEM_INDEX[item]
            n = min(max(count - conv.inventory[i], 0), agent.inventory[i])
            agent.inventory[i] -= n
            conv.inventory[i] += n
            agent.stats[f"{item}.put"] += n
            moved += n
        (succeed if moved else fail)(agent, "put_items", cfg)


def apply_get(world: World, requests: list[Request], priority: list[int]) -> None:
    cfg = world.game.actions.get_items
    for agent, conv in claim_converters(world, requests, "get_items", priority):
        moved = 0
        for item in conv.config.output_resources:
            i = ITEM_INDEX[item]
            n = min(conv.inventory[i], max(agent.limits[i] - agent.inventory[i], 0))
            conv.inventory[i] -= n
            agent.inventory[i] += n
            agent.stats[f"{item}.get"] += n
            moved += n
        (succeed if moved else fail)(agent, "get_items", cfg)


def apply_change_color(world: World, requests: list[Request], priority: list[int]) -> None:
    cfg = world.game.actions.change_color
    for req in requests:
        if not has_resources(req.agent, cfg):
            fail(req.agent, "change_color", cfg)
            continue
        req.agent.color = (req.agent.color + (1 if req.arg == 0 else -1)) % 256
        succeed(req.agent, "change_color", cfg)


def apply_noop(world: World, requests: list[Request], priority: list[int]) -> None:
    cfg = world.game.actions.noop
    for req in requests:
        (succeed if has_resources(req.agent, cfg) else fail)(req.agent, "noop", cfg)


APPLY = {
    "attack": apply_attack,
    "swap": apply_swap,
    "move": apply_move,
    "rotate": apply_rotate,
    "put_items": apply_put,
    "get_items": apply_get,
    "change_color": apply_change_color,
    "noop": apply_noop,
}


def apply_actions(world: World, requests: list[Request], priority: list[int]) -> None:
    """Step 4: every kind in order, each on the state the previous kind left."""
    for kind in ACTION_KINDS:
        batch = [req for req in requests if req.name in kind]
        if batch:
            APPLY[kind[0]](world, batch, priority)
