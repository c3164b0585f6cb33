"""Play mode in headless Chromium: keys pressed in the page move the person's agent in the
server's engine (read from the engine, not the page), the session saves as a replay, and at a
set speed the game steps by itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser import (  # noqa: F401  (fixtures)
    WAIT_MS,
    ServerThread,
    browser,
    open_viewer,
    page,
    wait_until,
)

from heartgrid.config.items import ORIENTATION_DELTAS
from heartgrid.recipes import build_config
from heartgrid.replay.format import read_replay
from heartgrid.replay.play import DIRECTIONS, PlaySession, policy_actor
from heartgrid.replay.reader import ReplayState
from heartgrid.replay.server import PlayHub, play_app

KEYS = {"up": "ArrowUp", "down": "ArrowDown", "left": "a", "right": "d"}  # arrows and WASD both


def session_for(recipe: str, overrides: list[str] | None = None, agent: int = 0, **kwargs: Any) -> PlaySession:
    game = build_config(recipe, overrides or [], default_device="cpu").game
    return PlaySession(game, agent=agent, seed=3, meta={"recipe": recipe}, **kwargs)


def free_directions(session: PlaySession) -> list[int]:
    """Directions in which the person's agent's neighbour cell is empty (from the engine's
    own recording of the current state)."""
    document = session.document()
    state = ReplayState(document).at(len(document["steps"]))
    taken = {(r, c) for _, r, c in state["objects"]}
    row, col, _ = session.agent_state()
    return [d for d, (dr, dc) in enumerate(ORIENTATION_DELTAS)
            if 0 <= row + dr < document["height"] and 0 <= col + dc < document["width"]
            and (row + dr, col + dc) not in taken]


def press(page: Any, session: PlaySession, key: str) -> None:
    before = session.steps
    page.keyboard.press(key)
    wait_until(lambda: session.steps == before + 1, f"the key {key} to step the game")


def test_cardinal_keys_move_the_agent_in_the_engine(page: Any) -> None:
    # move_cardinal: a key moves at once; the other agent does nothing (noop)
    session = session_for("small_easy_shaped", ["game.actions.move_cardinal.enabled=true"], agent=1)
    with ServerThread(play_app(PlayHub(session, speed=0, save=None))) as server:
        open_viewer(page, server.url)
        assert "move up" in page.inner_text("#keymap")
        row, col, _ = session.agent_state()
        d = free_directions(session)[0]
        press(page, session, KEYS[DIRECTIONS[d]])
        dr, dc = ORIENTATION_DELTAS[d]
        assert session.agent_state() == (row + dr, col + dc, d)
        back = d ^ 1  # up<->down, left<->right
        press(page, session, KEYS[DIRECTIONS[back]])
        assert session.agent_state() == (row, col, back)
        # The page shows what the engine did.
        page.wait_for_function("window.heartgridPlay.steps() === 2", timeout=WAIT_MS)
        assert page.inner_text("#sel-position") == f"({row}, {col})"
        assert page.inner_text("#sel-action") == f"move_cardinal_{back}"


def test_rotate_then_move_keys_in_the_arena(page: Any, tmp_path: Path) -> None:
    session = session_for("arena_basic_easy_shaped", ["game.max_steps=50"], agent=5)
    save = tmp_path / "played.hgreplay"
    with ServerThread(play_app(PlayHub(session, speed=0, save=save))) as server:
        open_viewer(page, server.url)
        row, col, facing = session.agent_state()
        d = next(d for d in free_directions(session) if d != facing)
        press(page, session, KEYS[DIRECTIONS[d]])  # not facing that way: a turn
        assert session.agent_state() == (row, col, d)
        press(page, session, KEYS[DIRECTIONS[d]])  # facing it: a step
        dr, dc = ORIENTATION_DELTAS[d]
        assert session.agent_state() == (row + dr, col + dc, d)
        press(page, session, "e")  # get_items, whatever it faces
        press(page, session, " ")  # noop

        page.click("#save-button")
        page.wait_for_function("document.getElementById('play-message').textContent.startsWith('Saved')",
                               timeout=WAIT_MS)
    document = read_replay(save)
    names = document["actions"]
    sent = [names[step["a"][5]] for step in document["steps"]]
    assert sent == [f"rotate_{d}", "move_0", "get_items_0", "noop_0"]
    assert document["meta"]["source"] == "play" and document["meta"]["person_agent"] == 5
    state = ReplayState(document).at(len(document["steps"]))
    assert state["objects"][5][1:] == [row + dr, col + dc]


def test_at_a_set_speed_the_game_steps_by_itself(page: Any) -> None:
    session = session_for("small_cardinal", actor=policy_actor("random", 0))
    with ServerThread(play_app(PlayHub(session, speed=30, save=None))) as server:
        open_viewer(page, server.url)
        wait_until(lambda: session.steps >= 3, "the game to step at its own pace")
        page.keyboard.press("e")  # the person's next action
        get = session.names.index("get_items_0")
        wait_until(lambda: any(step["a"][0] == get for step in session.document()["steps"]),
                   "the key's action to be played on a tick")
        page.wait_for_function("window.heartgridPlay.steps() >= 4", timeout=WAIT_MS)


def test_the_episode_end_and_a_new_episode(page: Any) -> None:
    session = session_for("small_cardinal", ["game.max_steps=3"])
    with ServerThread(play_app(PlayHub(session, speed=0, save=None))) as server:
        open_viewer(page, server.url)
        for _ in range(3):
            press(page, session, "e")  # small_cardinal has no noop: get_items
        assert session.done
        page.wait_for_function("document.getElementById('play-message').textContent.includes('ended')",
                               timeout=WAIT_MS)
        page.keyboard.press("e")  # refused in the page: nothing is sent
        assert session.steps == 3
        page.click("#reset-button")
        wait_until(lambda: not session.done and session.episode == 1, "the next episode")
        page.wait_for_function("window.heartgridPlay.steps() === 0", timeout=WAIT_MS)
        press(page, session, "e")


@pytest.mark.parametrize("agent", [-1, 2])
def test_an_agent_out_of_range_is_refused(agent: int) -> None:
    from heartgrid.errors import UsageError

    with pytest.raises(UsageError, match="out of range"):
        session_for("small_cardinal", agent=agent)


def test_a_policy_uri_moves_the_others(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    from heartgrid.checkpoint import save_policy
    from heartgrid.config.run import PolicyConfig
    from heartgrid.engine.batched import BatchedEngine
    from heartgrid.policies import make_policy
    from heartgrid.policies.distribution import sample_actions
    from heartgrid.tools.play_cmd import actor_factory

    game = build_config("arena_basic_easy_shaped", ["game.max_steps=20"], default_device="cpu").game
    engine = BatchedEngine(game, 1)
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(hidden_size=16, lstm_layers=1), engine.features,
                         engine.action_names, engine.obs_shape)
    uri = save_policy(tmp_path / "policy", policy)
    session = PlaySession(game, agent=0, seed=5, actor=actor_factory(str(uri), seed=7),
                          meta={"recipe": "arena_basic_easy_shaped", "policy": str(uri)})
    # What that policy samples at the first step, computed here from the same observation.
    with torch.no_grad():
        logits, _, _ = policy.eval()(session.engine.obs, policy.initial_state(session.engine.num_slots, "cpu"))
        expected = sample_actions(logits, torch.Generator().manual_seed(7))[0]
    session.act("get_items_0")
    first = session.document()["steps"][0]["a"]
    assert first[0] == session.names.index("get_items_0")
    assert first[1:] == expected[1:].tolist()  # 23 sampled actions: the policy's, not noops
    assert len(set(first[1:])) > 1
    assert session.document()["meta"]["policy"] == str(uri)
