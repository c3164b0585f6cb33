"""Questions to the stats database: its scorecards, and read-only SQL.

    with reading("evals.duckdb") as conn:
        cards, notes = scorecards_from_db(conn, suite="navigation")
        columns, rows = run_sql(conn, "SELECT policy, mean FROM overall_scores")

A scorecard from the database holds, for each policy and simulation, the episodes of the
policy's most recent evaluation of it (`latest_episodes`), so evaluating again replaces a
policy's scores rather than pooling old and new. When a simulation of a suite was evaluated
under two configs (a map file edited between evaluations), only the config evaluated most
recently is shown, with a note: scores on different maps must not be averaged together.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime, timezone
from typing import Any

import duckdb

from heartgrid.evaluation.scorecard import EpisodeScore, PolicyInfo, Result, Scorecard, SimulationInfo
from heartgrid.evaluation.stats_db import StatsDbError

READ_STATEMENTS = (duckdb.StatementType.SELECT,)


def db_suites(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute("SELECT DISTINCT suite FROM simulations WHERE simulation_id IN "
                        "(SELECT simulation_id FROM episodes) ORDER BY suite").fetchall()
    return [r[0] for r in rows]


def scorecards_from_db(conn: duckdb.DuckDBPyConnection,
                       suite: str | None = None) -> tuple[list[Scorecard], list[str]]:
    """One scorecard per suite in the database (or only `suite`), and notes on what is not
    shown. StatsDbError (exit 2) for a suite the database does not hold."""
    suites = db_suites(conn)
    if suite is not None and suite not in suites:
        close = difflib.get_close_matches(suite, suites, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        held = ", ".join(suites) or "none yet"
        raise StatsDbError(f"the database holds no scores of suite {suite!r}; {hint}suites in it: {held}")
    cards, notes = [], []
    for name in [suite] if suite is not None else suites:
        card, card_notes = _scorecard(conn, name)
        cards.append(card)
        notes += card_notes
    return cards, notes


def _scorecard(conn: duckdb.DuckDBPyConnection, suite: str) -> tuple[Scorecard, list[str]]:
    rows = _dicts(conn.execute(
        """SELECT s.*, max(v.created_at) AS last_evaluated, count(*) AS episodes
           FROM simulations s JOIN episodes e USING (simulation_id) JOIN evaluations v USING (eval_id)
           WHERE s.suite = ? GROUP BY ALL ORDER BY s.category, s.name, last_evaluated DESC""", [suite]))
    current: dict[str, dict[str, Any]] = {}
    notes = []
    for row in rows:
        key = f"{row['category']}/{row['name']}"
        if key in current:
            notes.append(f"{suite}: {key} was also evaluated with another config (hash "
                         f"{row['config_hash'][:12]}, {row['episodes']} episodes), not shown")
            continue
        current[key] = row
    sims = {row["simulation_id"]: SimulationInfo(
        key=key, suite=suite, category=row["category"], name=row["name"],
        description=row["description"], config_hash=row["config_hash"],
        config=json.loads(row["config_json"]), seed=row["seed"], max_steps=row["max_steps"],
        metric=row["metric"], normalisation=row["normalisation"]) for key, row in current.items()}
    episodes = _dicts(conn.execute(
        """SELECT e.*, v.device, v.actions FROM latest_episodes e JOIN evaluations v USING (eval_id)
           WHERE e.simulation_id IN (SELECT unnest(?::VARCHAR[]))
           ORDER BY e.policy_id, e.simulation_id, e.episode_index""", [list(sims)]))
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in episodes:
        grouped.setdefault((e["policy_id"], e["simulation_id"]), []).append(e)
    results = [
        Result(policy_id=pid, simulation=sims[sid].key,
               episodes=[EpisodeScore(index=e["episode_index"], seed=e["seed"], length=e["length"],
                                      reward=e["reward"], metric=e["metric"], reference=e["reference"],
                                      score=e["score"]) for e in eps],
               started_at=_iso(eps[0]["started_at"]), finished_at=_iso(eps[0]["finished_at"]),
               wall_s=eps[0]["wall_s"])
        for (pid, sid), eps in grouped.items()
    ]
    policy_ids = list(dict.fromkeys(pid for pid, _ in grouped))
    policies = [PolicyInfo(**row) for row in _dicts(conn.execute(
        "SELECT * FROM policies WHERE policy_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY label, policy_id",
        [policy_ids]))]
    card = Scorecard(
        eval_id="database", suite=suite, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        device=",".join(sorted({e["device"] for e in episodes})),
        actions=",".join(sorted({e["actions"] for e in episodes})),
        policies=policies, simulations=list(sims.values()), results=results,
    )
    return card, notes


def run_sql(conn: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of one read-only query (SELECT, or WITH ... SELECT); anything else
    is refused before it runs, and the connection is read-only besides."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as e:
        raise StatsDbError(f"invalid SQL: {' '.join(str(e).split())}") from None
    if len(statements) != 1:
        raise StatsDbError(f"give exactly one SQL statement, got {len(statements)}")
    if statements[0].type not in READ_STATEMENTS:
        kind = statements[0].type.name
        raise StatsDbError(f"only SELECT (or WITH ... SELECT) queries are allowed, got {kind}; "
                           "the stats database is read-only here")
    try:
        cursor = conn.execute(query)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    except duckdb.Error as e:
        raise StatsDbError(f"query failed: {' '.join(str(e).split())}; tables: evaluations, "
                           "policies, simulations, episodes, agent_metrics, episode_metrics; "
                           "views: latest_episodes, simulation_scores, category_scores, overall_scores") from None


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
