"""The most a map allows: the per-agent maximum of a score's metric, where it is finite.

Navigation maps hold altars that start with a heart and have no way to make another (their
input, batteries, comes from no object on the map). Then the team can collect at most the
hearts on the map, and `hearts / agents` (times the heart's reward, for the reward metric) is
the best possible score per agent. Dividing by it makes a navigation score the share of the
map's hearts the team collected, in [0, 1], whatever the number of altars or agents, so maps
of different sizes average into one category score that means something.

Where hearts can be made again (the arena: mines, generators and altars cooling down), or the
reward pays for more than hearts, there is no finite maximum: None.
"""

from __future__ import annotations

from collections import Counter

from heartgrid.config.game import ConverterConfig, GameConfig
from heartgrid.engine.maps import room_plan

HEART = "heart"


def objects_on_map(game: GameConfig) -> Counter[str]:
    """Object name -> how many the map holds (all instances)."""
    plan = room_plan(game)
    per_room = Counter(name for name in plan.rank_names if name is not None and name != "agent")
    return Counter({name: n * (game.map.instances or 1) for name, n in per_room.items()})


def finite_hearts(game: GameConfig) -> int | None:
    """Hearts the map can ever give, or None when hearts can be made during the episode.

    Agents start with empty inventories, so items come only from converters. A heart-making
    converter makes more than its starting stock as soon as its inputs can be had: conservatively,
    when every input item it needs is an output of some converter on the map (or it needs none).
    """
    on_map = objects_on_map(game)
    converters = {name: game.objects[name] for name in on_map
                  if isinstance(game.objects.get(name), ConverterConfig)}
    obtainable = {item for conv in converters.values()
                  for item, n in conv.output_resources.items() if n > 0}
    total = 0
    for name, conv in converters.items():
        makes = conv.output_resources.get(HEART, 0)
        if makes <= 0:
            continue
        needs = {item for item, n in conv.input_resources.items() if n > 0}
        if needs <= obtainable and conv.max_conversions != 0:
            return None  # it can convert again (or always: no inputs), so hearts are unbounded
        total += on_map[name] * conv.initial_resource_count
    return total


def max_metric_per_agent(game: GameConfig, metric: str) -> float | None:
    """The most `metric` ("reward" or "heart.get") one of the evaluated policy's agents can
    average in an episode, or None when it has no finite maximum (or is another metric)."""
    if metric not in ("reward", f"{HEART}.get"):
        return None
    hearts = finite_hearts(game)
    if not hearts:
        return None
    # The evaluated policy's agents (all of them without NPCs): a score of 1 is its side
    # taking every heart, whatever the NPCs do.
    per_agent = hearts / game.policy_agents
    if metric != "reward":
        return per_agent
    rates = set()
    for group in game.groups:
        agent = game.group_agent_config(group)
        paid = {item for item, r in agent.rewards.items() if r != 0}
        if paid - {HEART} or any(r != 0 for r in agent.stat_rewards.values()):
            return None  # the reward pays for more than hearts
        rates.add(agent.rewards.get(HEART, 0.0))
    rate = max(rates)
    return rate * per_agent if rate > 0 else None
