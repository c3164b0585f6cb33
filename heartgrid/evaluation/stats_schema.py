"""The stats database's tables and views (DuckDB), and the rows a scorecard becomes.

Tables (one row per ...):
- `evaluations`    run of `heartgrid eval --suite` (or `evaluate_suite`): suite, time, device
- `policies`       policy (by `policy_id`, policy_sources.py): URI, run, epoch, agent_step, checksum
- `simulations`    (suite, category, name, config hash): the config JSON that decides its episodes
- `episodes`       episode: simulation, policy, evaluation, index, seed, length, reward, the
                   simulation's metric, reference and score, start/finish time and wall seconds
- `agent_metrics`  (episode, agent, metric): `reward` (the agent's episode reward) and
                   `inv:<item>` (what it held at the end); the engine reports its other stats
                   only as means over an episode's agents, so those are in
- `episode_metrics` (episode, metric): `env_agent/<stat>` (mean over agents), `env_game/<stat>`
- `retractions`    a training run resumed from the checkpoint of epoch `after_epoch` (or restarted
                   from scratch: 0): the evaluations of its policies of later epochs made before
                   `retracted_at` belong to the interrupted attempt, whose metrics.jsonl and
                   TensorBoard records are dropped too; every merge deletes their rows, whichever
                   shard arrives first
- `merged_shards`  shard file merged (so a merge interrupted after its commit never doubles rows)
- `t95`            df -> the 0.975 quantile of Student's t (1..10,000), for the views' intervals
- `schema_info`    the schema version

Views: `latest_episodes` (each policy's most recent evaluation of each simulation),
`simulation_scores` (mean, sd, n, 95% t interval per policy and simulation), `category_scores`
and `overall_scores` (unweighted means of simulation / category means; their intervals need
the per-simulation variances and are computed by `heartgrid stats DB scorecard`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import duckdb
import numpy as np

from heartgrid.evaluation.scorecard import Scorecard

SCHEMA_VERSION = 1
T_TABLE_MAX_DF = 10_000

TABLES: dict[str, list[tuple[str, str]]] = {
    "evaluations": [("eval_id", "VARCHAR PRIMARY KEY"), ("suite", "VARCHAR"), ("created_at", "TIMESTAMPTZ"),
                    ("device", "VARCHAR"), ("actions", "VARCHAR"), ("shard", "VARCHAR")],
    "policies": [("policy_id", "VARCHAR PRIMARY KEY"), ("label", "VARCHAR"), ("uri", "VARCHAR"),
                 ("checkpoint", "VARCHAR"), ("run", "VARCHAR"), ("epoch", "INTEGER"),
                 ("agent_step", "BIGINT"), ("checksum", "VARCHAR"), ("architecture", "VARCHAR")],
    "simulations": [("simulation_id", "VARCHAR PRIMARY KEY"), ("suite", "VARCHAR"), ("category", "VARCHAR"),
                    ("name", "VARCHAR"), ("description", "VARCHAR"), ("config_hash", "VARCHAR"),
                    ("config_json", "VARCHAR"), ("seed", "BIGINT"), ("max_steps", "INTEGER"),
                    ("metric", "VARCHAR"), ("normalisation", "VARCHAR")],
    "episodes": [("episode_id", "VARCHAR PRIMARY KEY"), ("eval_id", "VARCHAR"), ("simulation_id", "VARCHAR"),
                 ("policy_id", "VARCHAR"), ("episode_index", "INTEGER"), ("seed", "BIGINT"),
                 ("length", "INTEGER"), ("reward", "DOUBLE"), ("metric", "DOUBLE"), ("reference", "DOUBLE"),
                 ("score", "DOUBLE"), ("started_at", "TIMESTAMPTZ"), ("finished_at", "TIMESTAMPTZ"),
                 ("wall_s", "DOUBLE")],
    "agent_metrics": [("episode_id", "VARCHAR"), ("agent", "INTEGER"), ("metric", "VARCHAR"), ("value", "DOUBLE")],
    "episode_metrics": [("episode_id", "VARCHAR"), ("metric", "VARCHAR"), ("value", "DOUBLE")],
    "retractions": [("run", "VARCHAR"), ("after_epoch", "INTEGER"), ("retracted_at", "TIMESTAMPTZ")],
}
# Rows of these tables describe things several evaluations share: a merge keeps the first.
SHARED_TABLES = ("evaluations", "policies", "simulations")
ROW_TABLES = ("episodes", "agent_metrics", "episode_metrics", "retractions")

MAIN_ONLY = [
    "CREATE TABLE IF NOT EXISTS merged_shards (shard VARCHAR PRIMARY KEY, merged_at TIMESTAMPTZ, episodes BIGINT)",
    "CREATE TABLE IF NOT EXISTS t95 (df INTEGER PRIMARY KEY, q DOUBLE)",
    "CREATE TABLE IF NOT EXISTS schema_info (key VARCHAR PRIMARY KEY, value VARCHAR)",
]

VIEWS = [
    """CREATE OR REPLACE VIEW latest_episodes AS
       SELECT e.* FROM episodes e JOIN evaluations v USING (eval_id)
       QUALIFY dense_rank() OVER (PARTITION BY e.policy_id, e.simulation_id
                                  ORDER BY v.created_at DESC, v.eval_id DESC) = 1""",
    """CREATE OR REPLACE VIEW simulation_scores AS
       WITH agg AS (
         SELECT simulation_id, policy_id, count(*) AS n, avg(score) AS mean,
                stddev_samp(score) AS sd, stddev_samp(score) / sqrt(count(*)) AS se,
                avg(metric) AS metric_mean, avg(reward) AS reward_mean
         FROM latest_episodes GROUP BY simulation_id, policy_id)
       SELECT s.suite, s.category, s.name, s.category || '/' || s.name AS simulation,
              p.label AS policy, a.n, a.mean, a.mean - t.q * a.se AS ci_low,
              a.mean + t.q * a.se AS ci_high, a.sd, a.se, a.metric_mean, a.reward_mean,
              s.metric, s.normalisation, a.simulation_id, a.policy_id
       FROM agg a JOIN simulations s USING (simulation_id) JOIN policies p USING (policy_id)
       LEFT JOIN t95 t ON t.df = least(a.n - 1, %d)""" % T_TABLE_MAX_DF,
    """CREATE OR REPLACE VIEW category_scores AS
       SELECT suite, category, policy, policy_id, count(*) AS simulations, avg(mean) AS mean
       FROM simulation_scores GROUP BY suite, category, policy, policy_id""",
    """CREATE OR REPLACE VIEW overall_scores AS
       SELECT suite, policy, policy_id, count(*) AS categories, avg(mean) AS mean
       FROM category_scores GROUP BY suite, policy, policy_id""",
]


# The episodes (with their metrics) that a retraction covers, and the evaluations and policies
# left without episodes by deleting them. A policy re-evaluated after the retraction (a resumed
# CPU run retrains the same weights) keeps its row and its new episodes.
RETRACT = [
    """CREATE OR REPLACE TEMP TABLE retracted AS
       SELECT e.episode_id, e.eval_id, e.policy_id
       FROM episodes e JOIN evaluations v USING (eval_id) JOIN policies p USING (policy_id)
       JOIN retractions r ON p.run = r.run AND p.epoch > r.after_epoch AND v.created_at < r.retracted_at
       WHERE $shard IS NULL OR v.shard = $shard""",
    "DELETE FROM agent_metrics WHERE episode_id IN (SELECT episode_id FROM temp.retracted)",
    "DELETE FROM episode_metrics WHERE episode_id IN (SELECT episode_id FROM temp.retracted)",
    "DELETE FROM episodes WHERE episode_id IN (SELECT episode_id FROM temp.retracted)",
    """DELETE FROM evaluations WHERE eval_id IN (SELECT eval_id FROM temp.retracted)
       AND eval_id NOT IN (SELECT eval_id FROM episodes)""",
    """DELETE FROM policies WHERE policy_id IN (SELECT policy_id FROM temp.retracted)
       AND policy_id NOT IN (SELECT policy_id FROM episodes)""",
]


def apply_retractions(conn: duckdb.DuckDBPyConnection, shard: str | None = None) -> int:
    """Delete what the database's retractions cover (in the caller's transaction), among the
    evaluations merged from `shard` (None: all); returns the number of episodes deleted."""
    if not conn.execute("SELECT count(*) FROM retractions").fetchone()[0]:
        return 0
    conn.execute(RETRACT[0], {"shard": shard})
    for statement in RETRACT[1:]:
        conn.execute(statement)
    (deleted,) = conn.execute("SELECT count(*) FROM temp.retracted").fetchone()
    conn.execute("DROP TABLE temp.retracted")
    return deleted


def create_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for table, columns in TABLES.items():
        body = ", ".join(f"{name} {kind}" for name, kind in columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")


def create_main_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Tables, the t table and views of the main database (idempotent)."""
    create_tables(conn)
    for statement in MAIN_ONLY:
        conn.execute(statement)
    if conn.execute("SELECT count(*) FROM t95").fetchone()[0] == 0:
        from scipy import stats as scipy_stats  # ~1 s to import: only where a database is made

        df = np.arange(1, T_TABLE_MAX_DF + 1)
        q = scipy_stats.t.ppf(0.975, df)
        conn.execute("INSERT INTO t95 SELECT unnest(?::INTEGER[]), unnest(?::DOUBLE[])",
                     [df.tolist(), q.tolist()])
    conn.execute("INSERT OR IGNORE INTO schema_info VALUES ('version', ?)", [str(SCHEMA_VERSION)])
    for view in VIEWS:
        conn.execute(view)


def simulation_id(suite: str, key: str, config_hash: str) -> str:
    return hashlib.sha256(f"{suite}\0{key}\0{config_hash}".encode()).hexdigest()[:16]


def scorecard_rows(card: Scorecard, shard: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of every table for one scorecard (written to shard file `shard`)."""
    sim_ids = {s.key: simulation_id(card.suite, s.key, s.config_hash) for s in card.simulations}
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
    rows["evaluations"].append((card.eval_id, card.suite, card.created_at, card.device, card.actions, shard))
    for p in card.policies:
        rows["policies"].append((p.policy_id, p.label, p.uri, p.checkpoint, p.run, p.epoch,
                                 p.agent_step, p.checksum, p.architecture))
    for s in card.simulations:
        rows["simulations"].append((sim_ids[s.key], s.suite, s.category, s.name, s.description,
                                    s.config_hash, json.dumps(s.config, sort_keys=True), s.seed,
                                    s.max_steps, s.metric, s.normalisation))
    for r in card.results:
        for e in r.episodes:
            episode_id = f"{card.eval_id}-{r.policy_id}-{sim_ids[r.simulation]}-{e.index}"
            rows["episodes"].append((episode_id, card.eval_id, sim_ids[r.simulation], r.policy_id,
                                     e.index, e.seed, e.length, e.reward, e.metric, e.reference,
                                     e.score, r.started_at, r.finished_at, r.wall_s))
            for agent, value in enumerate(e.agent_rewards):
                rows["agent_metrics"].append((episode_id, agent, "reward", value))
            for item, values in e.agent_inventory.items():
                for agent, value in enumerate(values):
                    rows["agent_metrics"].append((episode_id, agent, f"inv:{item}", value))
            for name, value in e.stats.items():
                rows["episode_metrics"].append((episode_id, name, value))
    return rows


def insert_rows(conn: duckdb.DuckDBPyConnection, table: str, rows: list[tuple[Any, ...]]) -> None:
    """All rows in one statement: each column as one list parameter, unnested side by side
    (DuckDB's executemany runs one statement per row, ~20x slower at 10,000 rows)."""
    if not rows:
        return
    columns = TABLES[table]
    types = [kind.split()[0] for _, kind in columns]
    selects = ", ".join(f"unnest(?::{kind}[])" for kind in types)
    conn.execute(f"INSERT INTO {table} SELECT {selects}", [list(col) for col in zip(*rows)])
