"""RULES.md scenarios on small ASCII maps, with exact numbers, run on every engine.

Each test builds a tiny game, plays a fixed script and checks inventories (read from the
agents' own observations), neighbouring cells, rewards, flags and end-of-episode stats. The
`make_engine` fixture (conftest.py) runs each scenario on the reference and the batched engine.
Agents are numbered in reading order and start facing up.
"""

from __future__ import annotations

import pytest

from heartgrid.config.game import AsciiRoomConfig, GameConfig, GroupConfig, MapConfig
from heartgrid.config.items import TYPE_IDS
from heartgrid.engine.rng import STREAM_DESYNC, STREAM_PRIORITY, env_seed, hash32

WALL_SEEN = TYPE_IDS["wall"] + 1  # the type_id plane stores type id + 1 (0 = empty)
AGENT_SEEN = TYPE_IDS["agent"] + 1
BLOCK_SEEN = TYPE_IDS["block"] + 1


def ascii_game(rows: list[str], max_steps: int = 100, obs: int = 5, **fields) -> GameConfig:
    """A game on one fixed room with no border, no desync and no rewards unless given."""
    room = AsciiRoomConfig(rows=rows)
    fields = {"desync_episodes": False, **fields}
    game = GameConfig(
        num_agents=room.agents,
        max_steps=max_steps,
        obs_width=obs,
        obs_height=obs,
        map=MapConfig(room=room, instances=1, border_width=0),
        **fields,
    )
    game.agent.rewards = {}
    return game


def approx(values):
    return pytest.approx(values, abs=1e-6)


# --------------------------------------------------------------------------------------------
# Converters


def test_mine_yields_ore_only_after_its_cooldown(make_engine):
    game = ascii_game(["###", "#m#", "#@#", "###"], max_steps=11)
    game.objects["mine_red"].cooldown = 3
    env = make_engine(game)
    ore = []
    for _ in range(10):
        env.step(["get_items_0"])
        ore.append(env.inventory(0).get("ore_red", 0))
    # Starts at step 0, produces at step 1, then every cooldown + 1 = 4 steps.
    assert ore == [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert env.see(0, -1, 0, "converting") == 1
    end = env.step(["get_items_0"]).episode
    assert end.length == 11
    assert end.agent_stats["ore_red.get"] == 3
    assert end.agent_stats["action.get_items.success"] == 3
    assert end.agent_stats["action.get_items.failed"] == 8
    assert end.game_stats["mine_red.conversions"] == 3
    assert end.game_stats["mine_red.blocked"] == 0


def test_generator_converts_ore_into_a_battery(make_engine):
    game = ascii_game(["#####", "#m@n#", "#####"], max_steps=6)
    game.objects["mine_red"].cooldown = 100
    env = make_engine(game)
    env.run([["rotate_2"], ["get_items_0"], ["rotate_3"]])
    assert env.inventory(0) == {"ore_red": 1}
    env.step(["put_items_0"])
    assert env.inventory(0) == {}
    assert env.see(0, 0, 1, "inv:ore_red") == 1 and env.see(0, 0, 1, "converting") == 0
    env.step(["get_items_0"])  # the generator started this step: nothing to get yet
    assert env.see(0, 0, 1, "inv:ore_red") == 0 and env.see(0, 0, 1, "converting") == 1
    last = env.step(["get_items_0"])
    assert env.inventory(0, last.final_obs) == {"battery_red": 1}
    stats = last.episode.agent_stats
    assert (stats["ore_red.gained"], stats["ore_red.lost"], stats["ore_red.put"]) == (1, 1, 1)
    assert (stats["battery_red.get"], stats["battery_red.gained"]) == (1, 1)
    assert (stats["action.get_items.success"], stats["action.get_items.failed"]) == (2, 1)
    assert last.episode.game_stats["generator_red.conversions"] == 1


@pytest.mark.parametrize("batteries, left_after_put", [(3, 0), (1, 2)], ids=["basic", "easy"])
def test_altar_makes_a_heart(make_engine, batteries, left_after_put):
    game = ascii_game(["#####", "#n@_#", "#####"])
    game.objects["generator_red"].initial_resource_count = 3  # no ore: it never converts
    game.objects["altar"].input_resources = {"battery_red": batteries}
    env = make_engine(game)
    env.run([["rotate_2"], ["get_items_0"], ["rotate_3"], ["put_items_0"]])
    assert env.inventory(0).get("battery_red", 0) == left_after_put
    assert env.see(0, 0, 1, "inv:battery_red") == batteries
    env.step(["get_items_0"])
    assert env.inventory(0).get("heart", 0) == 0
    env.step(["get_items_0"])
    assert env.inventory(0).get("heart", 0) == 1


def test_put_items_puts_only_what_the_recipe_still_needs(make_engine):
    game = ascii_game(["#####", "#n@_#", "#####"])
    game.objects["generator_red"].initial_resource_count = 5
    env = make_engine(game)
    env.run([["rotate_2"], ["get_items_0"], ["rotate_3"], ["put_items_0"]])
    assert env.inventory(0) == {"battery_red": 2}  # the altar needs 3 of the 5
    assert env.see(0, 0, 1, "inv:battery_red") == 3
    env.step(["put_items_0"])  # the altar consumed its 3 at the start of this step
    assert env.inventory(0) == {}
    assert env.see(0, 0, 1, "inv:battery_red") == 2


def test_max_output_blocks_a_converter(make_engine):
    game = ascii_game(["###", "#m#", "#@#", "###"], max_steps=6)
    mine = game.objects["mine_red"]
    mine.cooldown, mine.max_output = 0, 1
    env = make_engine(game)
    env.run([["noop_0"]] * 3)
    assert env.see(0, -1, 0, "inv:ore_red") == 1 and env.see(0, -1, 0, "converting") == 0
    env.step(["get_items_0"])
    assert env.inventory(0) == {"ore_red": 1}
    end = env.run([["noop_0"]] * 2)[-1].episode
    # Produced at steps 1 and 5; blocked (idle, full) at steps 1, 2, 3 and 5.
    assert end.game_stats["mine_red.conversions"] == 2
    assert end.game_stats["mine_red.blocked"] == 4


def test_inventory_limit_caps_get_items(make_engine):
    game = ascii_game(["###", "#m#", "#@#", "###"], max_steps=2)
    game.agent.item_max = {"heart": 255, "ore_red": 2}
    game.objects["mine_red"].initial_resource_count = 5
    env = make_engine(game)
    env.step(["get_items_0"])
    assert env.inventory(0) == {"ore_red": 2}
    assert env.see(0, -1, 0, "inv:ore_red") == 3
    end = env.step(["get_items_0"]).episode
    assert end.agent_stats["ore_red.get"] == 2
    assert end.agent_stats["action.get_items.success"] == 1
    assert end.agent_stats["action.get_items.failed"] == 1


# --------------------------------------------------------------------------------------------
# Rewards


def test_shaped_reward_is_taken_back_when_a_battery_goes_into_the_altar(make_engine):
    game = ascii_game(["#####", "#n@_#", "#####"], max_steps=6)
    game.objects["generator_red"].initial_resource_count = 1
    game.objects["altar"].input_resources = {"battery_red": 1}
    game.agent.rewards = {"battery_red": 0.8, "heart": 1.0}
    game.agent.reward_caps = {"battery_red": 1.0}
    env = make_engine(game)
    steps = env.run([["rotate_2"], ["get_items_0"], ["rotate_3"], ["put_items_0"], ["noop_0"],
                     ["get_items_0"]])
    assert [float(s.rewards[0]) for s in steps] == approx([0, 0.8, 0, -0.8, 0, 1.0])
    assert steps[-1].episode.reward == approx(1.0)


def test_inventory_reward_cap(make_engine):
    game = ascii_game(["#####", "#.m@#", "#..n#", "#####"])
    mine = game.objects["mine_red"]
    mine.initial_resource_count, mine.max_output, mine.cooldown = 15, 20, 100
    game.agent.rewards = {"ore_red": 0.1}
    game.agent.reward_caps = {"ore_red": 1.0}
    env = make_engine(game)
    steps = env.run([["rotate_2"], ["get_items_0"], ["get_items_0"], ["rotate_1"], ["put_items_0"]])
    assert env.inventory(0) == {"ore_red": 15}  # 15 + the ore mined at step 1, 1 put
    # 15 ore pay min(1.5, 1) = 1; more ore pays nothing, nor does giving one away above the cap.
    assert [float(s.rewards[0]) for s in steps] == approx([0, 1.0, 0, 0, 0])


def test_stat_reward_cap_and_failure_penalty(make_engine):
    game = ascii_game(["###", "#@#", "###"], max_steps=5)
    game.agent.stat_rewards = {"action.rotate.success": 0.25}
    game.agent.stat_reward_caps = {"action.rotate.success": 0.6}
    game.actions.move.failure_penalty = 0.5
    env = make_engine(game)
    steps = env.run([["rotate_1"], ["rotate_2"], ["rotate_3"], ["rotate_0"], ["move_0"]])
    assert [float(s.rewards[0]) for s in steps] == approx([0.25, 0.25, 0.1, 0, -0.5])
    assert steps[-1].episode.agent_stats["action.move.failed"] == 1


def test_group_reward_sharing(make_engine):
    game = ascii_game(["#####", "#@m@#", "#####"])
    game.groups = {"team": GroupConfig(id=3, group_reward_pct=0.5)}
    game.objects["mine_red"].cooldown = 100
    game.agent.rewards = {"ore_red": 1.0}
    env = make_engine(game)
    env.step(["rotate_3", "noop_0"])
    result = env.step(["get_items_0", "noop_0"])
    # agent 0 keeps 0.5 of its 1.0; the pooled 0.5 is split between the two agents.
    assert result.rewards.tolist() == approx([0.75, 0.25])
    assert env.see(0, 0, 0, "agent:group") == 3


# --------------------------------------------------------------------------------------------
# Combat

COMBAT_ROWS = [
    "#######",
    "#.{}@..#",  # agent 0 at (1, 3), its item source to the left
    "#.S@..#",  # agent 1 below it, a lasery holding one laser to the left
    "#######",
]


def combat_game(source: str, max_steps: int) -> GameConfig:
    rows = [r.replace("{}", source) for r in COMBAT_ROWS]
    game = ascii_game(rows, max_steps=max_steps)
    # Sources that hold their items from the start: the mine 3 ore (full, so it does not
    # mine), the lasery and the armory one laser / armor each (their inputs are never there).
    mine = game.objects["mine_red"]
    mine.initial_resource_count, mine.max_output = 3, 3
    game.objects["lasery"].initial_resource_count = 1
    game.objects["armory"].initial_resource_count = 1
    game.agent.rewards = {"ore_red": 0.1}
    return game


def test_attack_freezes_and_steals_and_needs_a_laser(make_engine):
    env = make_engine(combat_game("m", max_steps=15))
    steps = env.run([["rotate_2", "rotate_2"], ["get_items_0", "get_items_0"], ["noop_0", "rotate_0"]])
    assert env.inventory(0) == {"ore_red": 3} and env.inventory(1) == {"laser": 1}
    attack = env.step(["noop_0", "attack_0"])
    assert env.inventory(1) == {"ore_red": 3} and env.inventory(0) == {}
    assert env.see(0, 0, 0, "agent:frozen") == 1
    assert attack.rewards.tolist() == approx([-0.3, 0.3])
    assert steps[1].rewards.tolist() == approx([0.3, 0])
    env.step(["rotate_0", "attack_0"])  # agent 1 has no laser left: the attack fails
    for _ in range(9):  # frozen at step 3: cannot act in steps 4..13
        env.step(["rotate_0", "noop_0"])
    assert env.see(0, 0, 0, "agent:orientation") == 2
    assert env.see(0, 0, 0, "agent:frozen") == 0  # frozen reached 0 during step 13
    end = env.step(["rotate_0", "noop_0"])
    assert env.see(0, 0, 0, "agent:orientation", end.final_obs) == 0
    stats = end.episode.agent_stats  # means over the 2 agents
    assert stats["status.frozen.ticks"] == 5
    assert (stats["action.attack.success"], stats["action.attack.failed"]) == (0.5, 0.5)
    assert stats["ore_red.stolen"] == 1.5
    assert stats["action.rotate.success"] == 2  # agent 0: steps 0 and 14; agent 1: 0 and 2


def test_armor_blocks_an_attack_and_is_consumed(make_engine):
    env = make_engine(combat_game("o", max_steps=5))
    env.run([["rotate_2", "rotate_2"], ["get_items_0", "get_items_0"], ["noop_0", "rotate_0"]])
    assert env.inventory(0) == {"armor": 1}
    env.step(["noop_0", "attack_0"])
    assert env.inventory(0) == {} and env.inventory(1) == {}
    assert env.see(0, 0, 0, "agent:frozen") == 0
    end = env.step(["rotate_0", "noop_0"])
    assert env.see(0, 0, 0, "agent:orientation", end.final_obs) == 0  # not frozen: it acts
    stats = end.episode.agent_stats
    assert (stats["action.attack.success"], stats["action.attack.blocked"]) == (0.5, 0.5)
    assert stats["status.frozen.ticks"] == 0


def test_simultaneous_attacks_steal_after_lasers_are_paid(make_engine):
    # Agent 2 attacks agent 1 while agent 1 attacks agent 0, in the same step.
    game = ascii_game(["m@..", "S@..", "S@.."])
    mine = game.objects["mine_red"]
    mine.initial_resource_count, mine.max_output = 3, 3
    game.objects["lasery"].initial_resource_count = 2
    env = make_engine(game)
    env.run([["rotate_2"] * 3, ["get_items_0"] * 3, ["noop_0", "rotate_0", "rotate_0"]])
    assert [env.inventory(a) for a in range(3)] == [{"ore_red": 3}, {"laser": 2}, {"laser": 2}]
    env.step(["noop_0", "attack_0", "attack_0"])
    # Both attackers pay 1 laser first; agent 2 then takes agent 1's remaining laser, not the
    # ore agent 1 takes from agent 0 in the same step.
    assert [env.inventory(a) for a in range(3)] == [{}, {"ore_red": 3}, {"laser": 2}]
    assert [env.see(a, 0, 0, "agent:frozen") for a in range(3)] == [1, 1, 0]
    env.step(["noop_0", "noop_0", "attack_0"])  # agent 1 was frozen already: no steal
    assert [env.inventory(a) for a in range(3)] == [{}, {"ore_red": 3}, {"laser": 1}]
    assert env.see(1, 0, 0, "agent:frozen") == 1


@pytest.mark.parametrize("arg, victim", [(0, 3), (1, 4), (2, 2), (3, 1), (8, 1)])
def test_attack_arg_picks_the_kth_agent_found_else_the_last(make_engine, arg, victim):
    # Agent 5 attacks upwards. Scan order: distance 1 (centre, left, right), then 2, then 3:
    # agent 3 (d1 left), 4 (d1 right), 2 (d2 left), 1 (d3 centre); agent 0 is 4 cells away.
    game = ascii_game(["..@..", "..@..", ".@...", ".@.@.", ".S@.."])
    game.objects["lasery"].initial_resource_count = 1
    env = make_engine(game)
    idle = ["noop_0"] * 5
    env.run([[*idle, "rotate_2"], [*idle, "get_items_0"], [*idle, "rotate_0"]])
    env.step([*idle, f"attack_{arg}"])
    assert [env.see(a, 0, 0, "agent:frozen") for a in range(6)] == [int(a == victim) for a in range(6)]


# --------------------------------------------------------------------------------------------
# Movement


def test_swap_with_a_block(make_engine):
    env = make_engine(ascii_game(["#####", "#.s.#", "#.@.#", "#####"], max_steps=2))
    assert env.see(0, -1, 0, "type_id") == BLOCK_SEEN
    env.step(["swap_0"])
    assert env.see(0, -1, 0, "type_id") == WALL_SEEN
    assert env.see(0, 1, 0, "type_id") == BLOCK_SEEN and env.see(0, 1, 0, "swappable") == 1
    end = env.step(["swap_0"]).episode  # facing a wall now
    assert (end.agent_stats["action.swap.success"], end.agent_stats["action.swap.failed"]) == (1, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_agents_moving_to_one_cell_only_one_moves(make_engine, seed):
    env = make_engine(ascii_game(["#####", "#@.@#", "#####"], max_steps=2), seed=seed)
    env.step(["rotate_3", "rotate_2"])
    end = env.step(["move_0", "move_0"])
    priority = [hash32(env_seed(seed, 0), 0, 1, STREAM_PRIORITY, a) for a in range(2)]
    winner = 0 if priority[0] >= priority[1] else 1
    # The winner stands in the middle: the cell it left is empty; the loser still has a wall.
    behind = {0: (0, -1), 1: (0, 1)}
    for agent in (0, 1):
        seen = env.see(agent, *behind[agent], "type_id", end.final_obs)
        assert seen == (0 if agent == winner else WALL_SEEN)
    stats = end.episode.agent_stats
    assert (stats["action.move.success"], stats["action.move.failed"]) == (0.5, 0.5)


def test_a_cell_left_empty_cannot_be_entered_in_the_same_step(make_engine):
    env = make_engine(ascii_game(["#####", "#@@.#", "#####"], max_steps=3))
    env.step(["rotate_3", "rotate_3"])
    env.step(["move_0", "move_0"])
    assert env.see(0, 0, 1, "type_id") == 0  # agent 1 moved on; agent 0 could not follow
    end = env.step(["move_0", "noop_0"])
    assert env.see(0, 0, 1, "type_id", end.final_obs) == AGENT_SEEN
    assert end.episode.agent_stats["action.move.success"] == 1  # agent 0: 1, agent 1: 1
    assert end.episode.agent_stats["action.move.failed"] == 0.5


def test_move_kinds(make_engine):
    game = ascii_game(["#####", "#...#", "#.@.#", "#...#", "#####"], max_steps=10)
    game.actions.move_cardinal.enabled = True
    game.actions.move_8way.enabled = True
    env = make_engine(game)
    env.step(["move_1"])  # backward to (3, 2), still facing up
    assert env.see(0, 1, 0, "type_id") == WALL_SEEN and env.see(0, 0, 0, "agent:orientation") == 0
    env.step(["move_cardinal_1"])  # down into the wall: fails, but faces down
    assert env.see(0, 1, 0, "type_id") == WALL_SEEN and env.see(0, 0, 0, "agent:orientation") == 1
    env.step(["move_8way_5"])  # up-right to (2, 3), orientation kept
    assert env.see(0, 0, 1, "type_id") == WALL_SEEN and env.see(0, 1, 0, "type_id") == 0
    assert env.see(0, 0, 0, "agent:orientation") == 1
    env.step(["move_8way_2"])  # left to (2, 2), facing left
    assert env.see(0, 0, 0, "agent:orientation") == 2
    assert env.see(0, 0, 2, "type_id") == WALL_SEEN and env.see(0, 0, 1, "type_id") == 0


def test_change_color_wraps(make_engine):
    game = ascii_game(["@"], obs=3)
    game.actions.change_color.enabled = True
    env = make_engine(game)
    env.run([["change_color_0"], ["change_color_1"], ["change_color_1"]])
    assert env.see(0, 0, 0, "agent:color") == 255


# --------------------------------------------------------------------------------------------
# Actions, observations, episodes


def test_action_costs_are_required_and_consumed_on_success(make_engine):
    game = ascii_game(["###", "#m#", "#@#", "###"], max_steps=4)
    mine = game.objects["mine_red"]
    mine.initial_resource_count, mine.max_output = 2, 2
    game.actions.rotate.consumed_resources = {"ore_red": 1}
    env = make_engine(game)
    env.step(["get_items_0"])
    orientation, ore = [], []
    for action in ("rotate_1", "rotate_2", "rotate_3"):
        last = env.step([action])
        obs = last.final_obs if last.final_obs is not None else env.obs
        orientation.append(env.see(0, 0, 0, "agent:orientation", obs))
        ore.append(env.inventory(0, obs).get("ore_red", 0))
    assert (orientation, ore) == ([1, 2, 2], [1, 0, 0])  # the third rotate cannot pay
    stats = last.episode.agent_stats
    assert (stats["action.rotate.success"], stats["action.rotate.failed"]) == (2, 1)


def test_invalid_actions_are_counted_and_do_nothing(make_engine):
    env = make_engine(ascii_game(["#.@.#"], max_steps=5, obs=3))
    rotate = env.action_space.type_id("rotate")
    num_types = len(env.action_space.type_names)
    end = env.run([[(num_types, 0)], [(-1, 0)], [(rotate, 4)], [-1], [len(env.action_space)]])[-1]
    assert env.see(0, 0, 0, "agent:orientation", end.final_obs) == 0
    stats = end.episode.agent_stats
    assert (stats["action.invalid_type"], stats["action.invalid_arg"]) == (4, 1)
    assert sum(v for k, v in stats.items() if k.endswith((".success", ".failed"))) == 0


def test_observation_globals_and_outside_cells(make_engine):
    game = ascii_game([".@m"], max_steps=4, obs=3)
    game.agent.rewards = {"ore_red": 0.5}
    env = make_engine(game)
    assert [env.see(0, dr, 0, "type_id") for dr in (-1, 0, 1)] == [WALL_SEEN, AGENT_SEEN, WALL_SEEN]
    env.step(["rotate_3"])
    assert env.see(0, 0, 0, "last_action") == env.action_space.type_id("rotate")
    assert env.see(0, 0, 0, "last_action_arg") == 3
    assert env.see(0, 0, 0, "episode_completion_pct") == 255 * 1 // 4
    env.step(["get_items_0"])
    assert env.see(0, 0, 0, "last_reward") == 50
    assert env.see(0, 0, 1, "type_id") == TYPE_IDS["mine_red"] + 1
    assert env.see(0, 1, 1, "last_reward") == 0  # globals live at the centre cell only


@pytest.mark.parametrize("time_limit", ["truncate", "terminal"])
def test_time_limit_ends_the_episode(make_engine, time_limit):
    env = make_engine(ascii_game(["#@#"], max_steps=3, obs=3, time_limit=time_limit))
    steps = env.run([["noop_0"]] * 3)
    assert [bool(s.terminals[0] or s.truncations[0]) for s in steps] == [False, False, True]
    assert bool(steps[-1].terminals[0]) == (time_limit == "terminal")
    assert bool(steps[-1].truncations[0]) == (time_limit == "truncate")
    assert env.see(0, 0, 0, "episode_completion_pct", steps[-1].final_obs) == 255
    assert env.see(0, 0, 0, "episode_completion_pct") == 0  # already the next episode
    assert steps[-1].episode.length == 3 and steps[1].episode is None


@pytest.mark.parametrize("seed", [0, 1])
def test_desync_staggers_the_first_episode(make_engine, seed):
    env = make_engine(ascii_game(["#@#"], max_steps=20, obs=3, desync_episodes=True), seed=seed)
    lengths = []
    while len(lengths) < 2:
        episode = env.step(["noop_0"]).episode
        if episode is not None:
            lengths.append(episode.length)
    first = 1 + hash32(env_seed(seed, 0), 0, STREAM_DESYNC) % 20
    assert lengths == [first, 20]
