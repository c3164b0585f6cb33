"""The stats database: shards merged with no row lost or doubled (two writers at once, a merge
cut short, a damaged shard), scorecards read back equal to the evaluated ones, and the `stats`
command with its exit-2 errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from scripted_policies import GreedyAltarPolicy, RandomPolicy
from synthetic_cards import synthetic_card

from heartgrid.evaluation import evaluate_suite, policy_from_module
from heartgrid.evaluation.scoring import t_interval
from heartgrid.evaluation.scorecard import Scorecard
from heartgrid.evaluation.stats_db import (
    merge_shards,
    pending_shards,
    reading,
    shards_dir,
    write_retraction,
    write_shard,
)
from heartgrid.evaluation.stats_read import scorecards_from_db
from heartgrid.tools import cli

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROWS_PER_EPISODE = 2 + 2  # agent_metrics: reward and inv:heart of 2 agents


def counts(db: Path) -> dict[str, int]:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("episodes", "agent_metrics", "episode_metrics", "policies", "simulations",
                          "evaluations", "merged_shards")}
    finally:
        conn.close()


def test_a_shard_merges_into_the_database(tmp_path: Path):
    db = tmp_path / "stats.duckdb"
    shard = write_shard(db, synthetic_card(0, episodes=5))
    assert shard.parent == shards_dir(db) and shard.name.startswith(f"{os.getpid()}-")
    assert not db.exists()  # nothing touches the database but a merge
    report = merge_shards(db)
    assert (report.shards, report.episodes) == (1, 30)
    assert counts(db) == {"episodes": 30, "agent_metrics": 30 * ROWS_PER_EPISODE, "episode_metrics": 30,
                          "policies": 2, "simulations": 3, "evaluations": 1, "merged_shards": 1}
    assert pending_shards(db) == []
    merge_shards(db)  # a second evaluation of the same policies adds episodes, not policies
    write_shard(db, synthetic_card(1, episodes=5))
    merge_shards(db)
    assert counts(db)["episodes"] == 60 and counts(db)["policies"] == 2


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from synthetic_cards import synthetic_card
    from heartgrid.evaluation.stats_db import merge_shards, write_shard
    db, go, seed, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    while not go.exists():
        time.sleep(0.01)
    for r in range(rounds):
        write_shard(db, synthetic_card(seed * 100 + r, episodes=20))
        merge_shards(db)
""")


def test_two_concurrent_writers_lose_no_row(tmp_path: Path):
    db, go, rounds = tmp_path / "stats.duckdb", tmp_path / "go", 4
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(go), str(seed), str(rounds)],
                                env=env, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    time.sleep(0.5)  # both import first, then start together
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=240) == 0, writer.stderr.read()
    merge_shards(db)
    episodes = 2 * rounds * 2 * 3 * 20
    found = counts(db)
    assert found["episodes"] == episodes and found["agent_metrics"] == episodes * ROWS_PER_EPISODE
    assert found["evaluations"] == found["merged_shards"] == 2 * rounds and pending_shards(db) == []
    conn = duckdb.connect(str(db), read_only=True)
    assert conn.execute("SELECT count(DISTINCT episode_id) FROM episodes").fetchone()[0] == episodes
    conn.close()


def test_a_merge_cut_short_after_its_commit_doubles_nothing(tmp_path: Path):
    db = tmp_path / "stats.duckdb"
    shard = write_shard(db, synthetic_card(0))
    kept = tmp_path / "copy.duckdb"
    shutil.copy(shard, kept)
    merge_shards(db)
    shutil.copy(kept, shard)  # as if the merge had stopped after committing, before deleting it
    assert merge_shards(db).shards == 0
    assert counts(db)["episodes"] == 30 and pending_shards(db) == []


def test_a_damaged_shard_is_set_aside_and_the_others_merge(tmp_path: Path):
    db = tmp_path / "stats.duckdb"
    write_shard(db, synthetic_card(0))
    (shards_dir(db) / "0-damaged.duckdb").write_text("not a database")
    with pytest.warns(UserWarning, match="0-damaged.duckdb.corrupt cannot be read"):
        report = merge_shards(db)
    assert report.shards == 1 and counts(db)["episodes"] == 30
    assert (shards_dir(db) / "0-damaged.duckdb.corrupt").exists()


def run_card(seed: int, run: str, epochs: tuple[int, int], created_at: str) -> Scorecard:
    """synthetic_card's two policies as run `run`'s policies of `epochs`, evaluated at `created_at`."""
    card = synthetic_card(seed)
    card.created_at = created_at
    ids = {}
    for policy, epoch in zip(card.policies, epochs):
        ids[policy.policy_id] = policy.policy_id = f"{run}-{epoch}-{seed}"
        policy.run, policy.epoch = run, epoch
    for result in card.results:
        result.policy_id = ids[result.policy_id]
    return card


def test_a_retraction_deletes_an_interrupted_runs_later_evaluations_whichever_shard_merges_first(tmp_path: Path):
    """A run resumed from epoch 3 retracts its evaluations of epochs 4 on made before: those
    merged already, and those in shards merged after the retraction (shards merge in name
    order, not in time order). Earlier epochs, other runs and later evaluations stay."""
    db = tmp_path / "stats.duckdb"
    before = "2025-01-01T00:00:00+00:00"
    write_shard(db, run_card(0, "r", (2, 5), before))
    merge_shards(db)
    write_retraction(db, ["r", "branch"], 3)  # a copy of run "branch" resumed as "r"
    write_shard(db, run_card(1, "r", (3, 4), before))  # the interrupted attempt's, merged later
    write_shard(db, run_card(2, "other", (4, 5), before))
    write_shard(db, run_card(4, "branch", (1, 6), before))
    report = merge_shards(db)
    assert (report.shards, report.retracted) == (4, 45)  # the 15 episodes of r-5-0, r-4-1, branch-6-4
    write_shard(db, run_card(3, "r", (4, 5), "2999-01-01T00:00:00+00:00"))  # after the retraction
    merge_shards(db)
    with reading(db) as conn:
        episodes = dict(conn.execute("SELECT policy_id, count(*) FROM episodes GROUP BY policy_id").fetchall())
        policies = {row[0] for row in conn.execute("SELECT policy_id FROM policies").fetchall()}
        orphans = conn.execute("SELECT count(*) FROM agent_metrics WHERE episode_id NOT IN "
                               "(SELECT episode_id FROM episodes)").fetchone()[0]
    kept = {"r-2-0", "r-3-1", "other-4-2", "other-5-2", "r-4-3", "r-5-3", "branch-1-4"}
    assert episodes == {policy: 15 for policy in kept} and policies == kept and orphans == 0


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):
    """A real evaluation (2 policies x 2 simulations x 4 episodes) merged into a database."""
    db = tmp_path_factory.mktemp("stats") / "stats.duckdb"
    policies = [policy_from_module(RandomPolicy(), "random"), policy_from_module(GreedyAltarPolicy(), "greedy")]
    card = evaluate_suite(policies, "navigation", simulations=["maze_small", "emptyspace_withinsight"],
                          episodes=4, device="cpu")
    write_shard(db, card)
    merge_shards(db)
    return db, card


def test_the_database_gives_back_the_scorecard(evaluated):
    db, card = evaluated
    with reading(db) as conn:
        (again,), notes = scorecards_from_db(conn, "navigation")
        views = conn.execute("SELECT simulation, policy_id, n, mean, ci_low, ci_high FROM simulation_scores").fetchall()
    assert notes == []
    assert [s.key for s in again.simulations] == sorted(s.key for s in card.simulations)
    for pid in (p.policy_id for p in card.policies):
        assert again.overall(pid).mean == pytest.approx(card.overall(pid).mean)
        assert again.overall(pid).low == pytest.approx(card.overall(pid).low)
    for key, pid, n, mean, low, high in views:  # the SQL view's t interval is the Python one
        expected = t_interval([e.score for e in card.result(pid, key).episodes])
        assert (n, mean, low, high) == (4, pytest.approx(expected.mean), pytest.approx(expected.low),
                                        pytest.approx(expected.high))


def test_a_new_evaluation_replaces_a_policys_scores(tmp_path: Path):
    db = tmp_path / "stats.duckdb"
    policy = policy_from_module(RandomPolicy(), "random")
    for episodes in (2, 3):
        card = evaluate_suite([policy], "navigation", simulations=["maze_small"], episodes=episodes, device="cpu")
        write_shard(db, card)
    with reading(db) as conn:
        (again,), _ = scorecards_from_db(conn)
        total = conn.execute("SELECT count(*) FROM episodes").fetchone()[0]
    assert total == 5 and again.simulation_summary(policy.info.policy_id, "navigation/maze_small").n == 3


def test_stats_command(evaluated, capsys: pytest.CaptureFixture, tmp_path: Path):
    db, _ = evaluated
    assert cli.main(["stats", str(db), "scorecard", "--suite", "navigation"]) == 0
    out = capsys.readouterr().out
    assert "navigation/maze_small" in out and "overall (1 category)" in out and "greedy" in out
    assert cli.main(["stats", str(db), "sql", "SELECT policy, count(*) AS n FROM simulation_scores GROUP BY policy ORDER BY policy"]) == 0
    assert capsys.readouterr().out.splitlines()[:3] == ["policy  n", "greedy  2", "random  2"]
    assert cli.main(["stats", str(db), "sql", "--json", "WITH s AS (SELECT 1 AS x) SELECT x FROM s"]) == 0
    assert capsys.readouterr().out.strip() == '[{"x": 1}]'
    # JSON has no NaN or infinity: they are null, so that any JSON parser reads the output.
    assert cli.main(["stats", str(db), "sql", "--json", "SELECT 'nan'::double AS y, 'inf'::double AS z, 1.5::double AS w"]) == 0
    assert json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(c)) == [{"y": None, "z": None, "w": 1.5}]
    out_png = tmp_path / "card.png"
    assert cli.main(["stats", str(db), "plot", "--out", str(out_png)]) == 0
    assert out_png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, message", [
    (["sql", "DELETE FROM episodes"], "only SELECT (or WITH ... SELECT) queries are allowed, got DELETE"),
    (["sql", "SELECT 1; SELECT 2"], "give exactly one SQL statement, got 2"),
    (["sql", "SELECT * FROM nowhere"], "query failed"),
    (["sql", "SELEC 1"], "invalid SQL"),
    (["scorecard", "--suite", "navigatoin"], "no scores of suite 'navigatoin'; did you mean 'navigation'?"),
])
def test_stats_refuses_with_exit_2(evaluated, argv: list[str], message: str, capsys: pytest.CaptureFixture):
    db, _ = evaluated
    assert cli.main(["stats", str(db), *argv]) == 2
    assert message in capsys.readouterr().err
    assert counts(db)["episodes"] == 16  # read-only: nothing changed


def test_a_missing_or_damaged_database_is_exit_2_with_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture):
    missing = tmp_path / "none.duckdb"
    assert cli.main(["stats", str(missing), "scorecard"]) == 2
    assert f"no stats database at {missing}; write one with heartgrid eval URI --suite SUITE --stats-db" in capsys.readouterr().err
    assert not (tmp_path / "none.duckdb.lock").exists()
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(b"\0garbage" * 100)
    assert cli.main(["stats", str(damaged), "sql", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "not a readable DuckDB database" in err and f"mv {damaged} {damaged}.bad" in err
    # Another file given by mistake is not to be moved aside, and gets no lock file beside it.
    config = tmp_path / "config.json"
    config.write_text("{}")
    assert cli.main(["stats", str(config), "scorecard"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: not a DuckDB database; give the path of a stats database" in err and "mv " not in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("config")) == ["config.json"]
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE x (a INTEGER)").close()
    assert cli.main(["stats", str(other), "scorecard"]) == 2
    assert "not a HeartGrid stats database" in capsys.readouterr().err
