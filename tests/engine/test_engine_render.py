"""`heartgrid render`: text frames that show the real state of the game."""

from __future__ import annotations

import numpy as np

from heartgrid.engine.reference import ReferenceEnv
from heartgrid.engine.rng import env_seed
from heartgrid.evaluation.evaluate import evaluation_game
from heartgrid.recipes import get_recipe
from heartgrid.tools.cli import main
from heartgrid.tools.render import LINE_WIDTH, ORIENTATION_ARROWS

AGENT_CHARS = set(ORIENTATION_ARROWS + "*")


def render(argv: list[str]) -> int:
    """Through the real CLI entry point, which maps bad input to exit status 2."""
    return main(["render", *argv])


def frames(text: str) -> list[list[str]]:
    """Each frame's lines, from its header line to the blank line that ends it."""
    blocks = [b.splitlines() for b in text.strip().split("\n\n")]
    return [b for b in blocks if b and b[0].startswith("step ")]


def test_frames_show_the_reference_state_after_the_same_random_actions(capsys):
    assert render(["small_easy_shaped", "--steps", "5", "--seed", "3"]) == 0
    out = frames(capsys.readouterr().out)
    # Whole episodes (no shortened first one), as evaluation and --policy play them.
    assert [f[0].split()[1] for f in out] == [f"{t}/200" for t in range(6)]
    # Replay: the same seed gives the same map and the same random actions.
    game = evaluation_game(get_recipe("small_easy_shaped").fn("cpu").game)
    env = ReferenceEnv(game, env_seed(3, 0))
    env.reset()
    rng = np.random.default_rng(3)
    for _ in range(5):
        env.step(rng.integers(0, len(env.action_space), size=env.num_agents))
    grid = out[-1][1:10]
    assert [len(row) for row in grid] == [9] * 9
    assert sum(ch in AGENT_CHARS for row in grid for ch in row) == 2
    for agent in env.agents:
        assert grid[agent.row][agent.col] == ORIENTATION_ARROWS[agent.orientation]
        assert f"{agent.index}{ORIENTATION_ARROWS[agent.orientation]}({agent.row},{agent.col})" in out[-1][-1]
    assert "".join(grid).count("m") == 1 and "".join(grid).count("_") == 1
    assert out[-1][10] == "objects: _ altar  n generator_red  m mine_red  # wall"


def test_the_62x62_arena_prints_one_character_per_cell(capsys):
    assert render(["arena", "--steps", "1"]) == 0
    out = frames(capsys.readouterr().out)
    assert len(out) == 2
    grid = out[0][1:63]
    assert len(grid) == 62 and all(len(row) == 62 for row in grid)
    assert sum(ch in AGENT_CHARS for row in grid for ch in row) == 24
    assert "".join(grid).count("m") == 40  # 10 mines in each of the 4 rooms
    legend = out[0][64:]
    assert all(len(line) <= LINE_WIDTH for line in legend)
    assert " 23^(" in " ".join(legend)


def test_episode_end_and_overrides(capsys):
    code = render(["small_easy_shaped", "game.max_steps=3", "game.desync_episodes=false", "--steps", "4"])
    assert code == 0
    text = capsys.readouterr().out
    assert "episode 0 ended after 3 steps" in text
    assert frames(text)[-1][0].startswith("step 1/3  episode 1")


def test_bad_input_is_a_usage_error(capsys):
    assert render(["no_such_recipe"]) == 2
    assert "unknown recipe 'no_such_recipe'" in capsys.readouterr().err
    assert render(["small_easy_shaped", "--steps", "-1"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert render(["small_easy_shaped", "game.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
