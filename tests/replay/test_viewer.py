"""The browser viewer in headless Chromium, on replays recorded with EpisodeRecorder: the grid
is drawn, scrubbing shows the replay's numbers, two replays side by side mark their first
divergence, and the self-contained HTML file works from file:// with the network blocked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser import (  # noqa: F401  (fixtures)
    ServerThread,
    browser,
    canvas_pixel,
    click_object,
    hex_rgb,
    open_viewer,
    page,
    record_random_episode,
    scrub_to,
)

from heartgrid.config.items import ITEMS
from heartgrid.replay.format import read_replay, write_replay
from heartgrid.replay.html import write_viewer_html
from heartgrid.replay.reader import ReplayState
from heartgrid.replay.server import ServedReplay, replay_app
from heartgrid.tools.cli import main

ARENA = "arena_basic_easy_shaped"  # 24 agents on 62x62
STEPS = 150
DIVERGE = 40  # the pair's actions differ from step DIVERGE + 1 on
GROUP_COLOR = "#ffd60a"  # group 0 (draw.js GROUP_COLORS[0])
WALL_COLOR = "#3a3f4b"


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("replays")
    over = [f"game.max_steps={STEPS}"]
    return {
        "arena": record_random_episode(d / "arena.hgreplay", ARENA, STEPS, over),
        "a": record_random_episode(d / "pair_a.hgreplay", ARENA, STEPS, over, diverge_at=None),
        "b": record_random_episode(d / "pair_b.hgreplay", ARENA, STEPS, over, diverge_at=DIVERGE),
    }


def served(paths: list[Path], compare: bool = False) -> ServerThread:
    return ServerThread(replay_app([ServedReplay(p, p.name) for p in paths], compare=compare))


def number(text: str) -> float:
    return float(text.replace("+", ""))


def busiest(state: ReplayState, t: int) -> int:
    """The agent holding the most items at step t (so its inventory says something)."""
    inventory = state.at(t)["agents"]["inventory"]
    return max(range(len(inventory)), key=lambda a: (sum(inventory[a]), -a))


def test_canvas_is_drawn(replays: dict[str, Path], page: Any) -> None:
    document = read_replay(replays["arena"])
    with served([replays["arena"]]) as server:
        open_viewer(page, server.url)
        # The pixel at an agent's cell centre is its group's colour; at a wall's, the wall's.
        agent = page.evaluate("window.heartgrid.cellCenter(0)")
        assert canvas_pixel(page, "grid-a", agent["x"], agent["y"])[:3] == hex_rgb(GROUP_COLOR)
        types = [document["object_types"][t] for t, _, _ in document["objects"]]
        inside = [(r, c) for (_, r, c), name in zip(document["objects"], types) if name != "wall"]
        rows, cols = [r for r, _ in inside], [c for _, c in inside]
        walls = [i for i, (_, r, c) in enumerate(document["objects"]) if types[i] == "wall"
                 and min(rows) < r < max(rows) and min(cols) < c < max(cols)]  # in the room, not its border
        wall = page.evaluate(f"window.heartgrid.cellCenter({walls[0]})")
        assert canvas_pixel(page, "grid-a", wall["x"], wall["y"])[:3] == hex_rgb(WALL_COLOR)
        assert page.inner_text("#stat-steps") == str(len(document["steps"]))
        # Legend: an entry for agents and one for every object type on the map.
        legend = page.inner_text("#legend")
        for label in ("agent", "wall", "mine (red)", "generator (red)", "altar (hearts)", "block (swappable)"):
            assert label in legend


def test_fit_shows_the_wall_on_every_side(page: Any, tmp_path: Path) -> None:
    # small_cardinal (9x9, a one-cell wall border) at seed 0: no object stands in the room's
    # last row, and "fit" once framed the objects, leaving the bottom wall out of the picture.
    path = record_random_episode(tmp_path / "small.hgreplay", "small_cardinal", 5, ["game.max_steps=5"])
    document = read_replay(path)
    H, W = document["height"], document["width"]
    wall = document["object_types"].index("wall")
    at = {(r, c): i for i, (t, r, c) in enumerate(document["objects"]) if t == wall}
    with served([path]) as server:
        open_viewer(page, server.url)
        for cell in ((0, W // 2), (H - 1, W // 2), (H // 2, 0), (H // 2, W - 1)):
            point = page.evaluate(f"window.heartgrid.cellCenter({at[cell]})")
            assert canvas_pixel(page, "grid-a", point["x"], point["y"])[:3] == hex_rgb(WALL_COLOR), cell


def test_scrubbing_shows_the_replays_inventory_and_reward(replays: dict[str, Path], page: Any) -> None:
    document = read_replay(replays["arena"])
    state = ReplayState(document)
    t = len(state) - 7
    agent = busiest(state, t)
    at = state.at(t)
    assert sum(at["agents"]["inventory"][agent]) > 0 and at["agents"]["reward"][agent] != 0, \
        "the random episode should leave its busiest agent holding something"
    with served([replays["arena"]]) as server:
        open_viewer(page, server.url)
        scrub_to(page, t)
        assert page.evaluate("window.heartgrid.step()") == t
        assert page.inner_text("#stat-step") == str(t)
        click_object(page, agent)
        assert page.evaluate("window.heartgrid.selected()") == agent
        assert page.inner_text("#sel-title") == f"Agent {agent}"
        for i, item in enumerate(ITEMS):
            assert int(page.inner_text(f"#sel-inv-{item}")) == at["agents"]["inventory"][agent][i], item
        assert number(page.inner_text("#sel-reward")) == pytest.approx(at["agents"]["reward"][agent], abs=5e-4)
        step = document["steps"][t - 1]
        assert page.inner_text("#sel-action") == document["actions"][step["a"][agent]]
        assert page.inner_text("#sel-ok") == {1: "yes", 0: "no", -1: "frozen, did not act"}[step["ok"][agent]]
        row, col = at["objects"][agent][1:]
        assert page.inner_text("#sel-position") == f"({row}, {col})"
        stats = state.stats(t)
        assert number(page.inner_text("#stat-reward-total")) == pytest.approx(stats["reward_total"], abs=5e-3)
        assert int(page.inner_text("#stat-hearts")) == stats["hearts"]
        assert int(page.inner_text("#stat-frozen")) == stats["frozen"]

        # The keyboard: a step forward and back, Home and End; space plays.
        page.keyboard.press("ArrowRight")
        assert page.inner_text("#stat-step") == str(t + 1)
        assert int(page.inner_text(f"#sel-inv-{ITEMS[0]}")) == state.at(t + 1)["agents"]["inventory"][agent][0]
        page.keyboard.press("Shift+ArrowLeft")
        assert page.inner_text("#stat-step") == str(t + 1 - 10)
        page.keyboard.press("Home")
        assert page.evaluate("window.heartgrid.step()") == 0
        page.keyboard.press("End")
        assert page.evaluate("window.heartgrid.step()") == len(state)
        page.keyboard.press("Home")
        page.keyboard.press(" ")
        assert page.evaluate("window.heartgrid.playing()")
        page.wait_for_function("window.heartgrid.step() > 0")
        page.keyboard.press(" ")
        assert not page.evaluate("window.heartgrid.playing()")


def test_npc_agents_are_named_in_the_header_and_the_selection(replays: dict[str, Path], page: Any,
                                                              tmp_path: Path) -> None:
    document = read_replay(replays["arena"])
    document["meta"].update(npc_policy="scripted:noop", npc_agents=list(range(6, 24)))
    path = write_replay(tmp_path / "npcs.hgreplay", document)
    with served([path]) as server:
        open_viewer(page, server.url)
        assert "NPCs: agents 6–23 (scripted:noop)" in page.inner_text("#meta")
        for agent, player in ((7, "NPC: scripted:noop"), (0, "random")):
            page.evaluate(f"window.heartgrid.select({agent})")
            assert page.inner_text("#sel-title") == f"Agent {agent}"
            assert page.inner_text("#sel-player") == player
    # Meta is read from a file: odd values are shown as "?" or left out, never an error (the
    # page fixture fails the test on any page error).
    document["meta"].update(npc_policy={"toString": 1}, npc_agents=[7, 6, 6, "x"], policy=[1], epoch="2")
    odd = write_replay(tmp_path / "odd.hgreplay", document)
    with served([odd]) as server:
        open_viewer(page, server.url)
        assert "NPCs: agents 6–7 (?)" in page.inner_text("#meta")
        assert page.inner_text("#title-a").endswith("— ?")


def test_a_click_on_a_converter_shows_its_inventory(replays: dict[str, Path], page: Any) -> None:
    document = read_replay(replays["arena"])
    state = ReplayState(document)
    A, t = document["num_agents"], len(state)
    inventories = state.at(t)["converters"]["inventory"]
    conv = max(range(len(inventories)), key=lambda c: sum(inventories[c]))
    with served([replays["arena"]]) as server:
        open_viewer(page, server.url)
        scrub_to(page, t)
        click_object(page, A + conv)
        name = document["converters"]["type"][conv]
        assert page.inner_text("#sel-title") == f"Converter {conv}: {name}"
        for i, item in enumerate(ITEMS):
            assert int(page.inner_text(f"#sel-inv-{item}")) == inventories[conv][i], item
        states = ["ready", "converting", "cooling down"]
        assert page.inner_text("#sel-state") == states[state.at(t)["converters"]["state"][conv]]


def first_divergence(a: dict[str, Any], b: dict[str, Any]) -> int:
    """The first step whose actions or resulting state differ (0: the start), by comparing
    the rebuilt states and the actions step by step."""
    sa, sb = ReplayState(a), ReplayState(b)
    if sa.at(0) != sb.at(0):
        return 0
    for t in range(1, min(len(sa), len(sb)) + 1):
        if a["steps"][t - 1]["a"] != b["steps"][t - 1]["a"] or sa.at(t) != sb.at(t):
            return t
    return -1 if len(sa) == len(sb) else min(len(sa), len(sb)) + 1


def test_side_by_side_marks_the_first_divergence(replays: dict[str, Path], page: Any) -> None:
    a, b = read_replay(replays["a"]), read_replay(replays["b"])
    expected = first_divergence(a, b)
    assert expected == DIVERGE + 1  # the pair was recorded to part there
    with served([replays["a"], replays["b"]], compare=True) as server:
        open_viewer(page, server.url)
        assert page.is_visible("#grid-b")
        assert page.get_attribute("#divergence", "data-step") == str(expected)
        assert f"diverge at step {expected}" in page.inner_text("#divergence")
        page.click("#goto-divergence")
        assert page.evaluate("window.heartgrid.step()") == expected
        # Lockstep: both sides show the same step; the B - A column is the reader's difference.
        sa, sb = ReplayState(a), ReplayState(b)
        t = len(sa)
        scrub_to(page, t)
        diff = sb.stats(t)["reward_total"] - sa.stats(t)["reward_total"]
        assert number(page.inner_text("#stat-reward-total-b")) == pytest.approx(sb.stats(t)["reward_total"], abs=5e-3)
        assert number(page.inner_text("#stat-reward-total-d")) == pytest.approx(diff, abs=5e-3)
        if abs(diff) > 1e-6:
            classes = page.get_attribute("#stat-reward-total-d", "class").split()
            assert ("diff-pos" if diff > 0 else "diff-neg") in classes
        # A selection shows both runs' values of the same agent.
        agent = busiest(sb, t)
        click_object(page, agent, 1)
        assert int(page.inner_text("#sel-inv-ore_red")) == sa.at(t)["agents"]["inventory"][agent][0]
        assert int(page.inner_text("#sel-inv-ore_red-b")) == sb.at(t)["agents"]["inventory"][agent][0]


def test_html_file_works_from_file_url_without_network(replays: dict[str, Path], browser: Any,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "viewer.html"
    assert main(["replay", str(replays["arena"]), "--html", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    document = read_replay(replays["arena"])
    state = ReplayState(document)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    requests: list[str] = []

    def network(route: Any) -> None:  # block everything that is not the file itself
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    context.route("**/*", network)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        open_viewer(page, out.as_uri())
        t = len(state) // 2
        scrub_to(page, t)
        agent = busiest(state, t)
        click_object(page, agent)
        for i, item in enumerate(ITEMS):
            assert int(page.inner_text(f"#sel-inv-{item}")) == state.at(t)["agents"]["inventory"][agent][i]
        point = page.evaluate(f"window.heartgrid.cellCenter({agent})")
        assert canvas_pixel(page, "grid-a", point["x"], point["y"])[3] == 255
        assert requests == [] and errors == []
    finally:
        context.close()


def test_a_run_directory_gets_a_picker(replays: dict[str, Path], page: Any, tmp_path: Path) -> None:
    from heartgrid.tools.replay_cmd import load_replays

    run = tmp_path / "runs" / "x" / "replays"
    run.mkdir(parents=True)
    (run / "epoch_000001.hgreplay").write_bytes(replays["arena"].read_bytes())
    (run / "epoch_000002.hgreplay").write_bytes(replays["a"].read_bytes())
    served_replays, _ = load_replays([str(tmp_path / "runs" / "x")])
    with ServerThread(replay_app(served_replays)) as server:
        open_viewer(page, server.url)
        options = page.locator("#picker option")
        assert options.count() == 2 and "epoch_000002.hgreplay" in options.nth(1).inner_text()
        page.select_option("#picker", "1")
        page.wait_for_function("window.heartgrid.ready")
        assert page.evaluate("window.heartgrid.viewer.replays[0].name") == "epoch_000002.hgreplay"


def test_a_broken_replay_is_a_message_in_the_page_not_a_blank_page(page: Any, tmp_path: Path) -> None:
    # The CLI refuses such files before serving; a file that broke after that is caught here.
    bad = tmp_path / "bad.hgreplay"
    bad.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    html = write_viewer_html(tmp_path / "bad.html", [ServedReplay(bad, "bad")])
    page.goto(html.as_uri())
    page.wait_for_function("window.heartgrid && window.heartgrid.error")
    assert page.is_visible("#status")
    assert "bad.hgreplay" in page.inner_text("#status")


THOUSAND = ["game.num_agents=1000", "game.map.instances=40", "game.map.room.agents=25",
            "game.map.room.width=30", "game.map.room.height=30", "trainer.num_envs=1",
            "trainer.batch_size=32000", "trainer.minibatch_size=32000"]


def test_a_thousand_agents_zoom_scrub_and_select(page: Any, tmp_path: Path) -> None:
    path = record_random_episode(tmp_path / "big.hgreplay", ARENA, 70, THOUSAND)
    document = read_replay(path)
    state = ReplayState(document)
    assert document["num_agents"] == 1000
    t = len(state) - 3
    agent = busiest(state, t)
    with served([path]) as server:
        open_viewer(page, server.url)
        scrub_to(page, t)
        cell = page.evaluate("window.heartgrid.viewer.renderers[0].cell")
        # Zoom in with the mouse wheel over the agent: cells grow, the agent stays under it.
        point = page.evaluate(f"window.heartgrid.cellCenter({agent})")
        page.mouse.move(point["x"], point["y"])
        for _ in range(4):
            page.mouse.wheel(0, -300)
        page.wait_for_function(f"window.heartgrid.viewer.renderers[0].cell > {cell} * 4")
        click_object(page, agent)
        assert page.inner_text("#sel-title") == f"Agent {agent}"
        for i, item in enumerate(ITEMS):
            assert int(page.inner_text(f"#sel-inv-{item}")) == state.at(t)["agents"]["inventory"][agent][i]
        assert number(page.inner_text("#sel-reward")) == pytest.approx(state.at(t)["agents"]["reward"][agent], abs=5e-4)
        point = page.evaluate(f"window.heartgrid.cellCenter({agent})")
        assert canvas_pixel(page, "grid-a", point["x"], point["y"])[:3] == hex_rgb(GROUP_COLOR)
        page.dblclick("#grid-a")  # back to the whole map
        page.wait_for_function(f"window.heartgrid.viewer.renderers[0].cell === {cell}")
