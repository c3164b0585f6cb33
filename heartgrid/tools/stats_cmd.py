"""`heartgrid stats DB scorecard|sql|plot`: query the stats database that `eval --stats-db` writes.

    heartgrid stats evals.duckdb scorecard [--suite S] [--json]
    heartgrid stats evals.duckdb sql "SELECT policy, simulation, mean FROM simulation_scores"
    heartgrid stats evals.duckdb plot [--suite S] [--out PNG]

Every read first merges the shards that evaluations left (`DB.shards/`), then opens the
database read-only. `sql` runs one SELECT (or WITH ... SELECT) and refuses anything else.
Tables: evaluations, policies, simulations, episodes, agent_metrics, episode_metrics; views:
latest_episodes, simulation_scores, category_scores, overall_scores.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from heartgrid.errors import UsageError
from heartgrid.evaluation.scorecard_plot import plot_scorecard
from heartgrid.evaluation.scorecard_text import format_scorecard, format_table
from heartgrid.evaluation.stats_db import reading
from heartgrid.evaluation.stats_read import run_sql, scorecards_from_db
from heartgrid.tools.plot import figure_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="query the evaluation stats database: scorecard, sql, plot",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("db", type=Path, help="the DuckDB file given to heartgrid eval --stats-db")
    actions = p.add_subparsers(dest="stats_command", metavar="ACTION")
    actions.required = True
    card = actions.add_parser("scorecard", help="the scorecard of each suite (or one) in the database")
    card.add_argument("--suite", help="only this suite")
    card.add_argument("--json", action="store_true", help="print the scorecards as JSON, one per line")
    card.set_defaults(func=cmd_scorecard)
    sql = actions.add_parser("sql", help="run one read-only SELECT query and print its rows")
    sql.add_argument("query", help='e.g. "SELECT * FROM overall_scores"')
    sql.add_argument("--json", action="store_true", help="print the rows as a JSON list of objects")
    sql.set_defaults(func=cmd_sql)
    plot = actions.add_parser("plot", help="a scorecard heatmap PNG per suite")
    plot.add_argument("--suite", help="only this suite")
    plot.add_argument("--out", type=Path, help="PNG to write (with one suite; default: "
                                               "DB-SUITE-scorecard.png beside the database)")
    plot.set_defaults(func=cmd_plot)


def cmd_scorecard(args: argparse.Namespace) -> int:
    with reading(args.db) as conn:
        cards, notes = scorecards_from_db(conn, args.suite)
    if not cards:
        raise UsageError(f"{args.db} holds no scores yet; heartgrid eval URI --suite SUITE "
                         f"--stats-db {args.db} writes some")
    for i, card in enumerate(cards):
        if args.json:
            print(json.dumps(card.to_json(), sort_keys=True))
        else:
            print(("\n" if i else "") + format_scorecard(card))
    for note in notes:
        print(f"note: {note}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    with reading(args.db) as conn:
        columns, rows = run_sql(conn, args.query)
    if args.json:
        print(json.dumps([dict(zip(columns, (_json(v) for v in row))) for row in rows]))
    else:
        print(format_table(columns, rows))
        print(f"({len(rows)} row{'s' * (len(rows) != 1)})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    with reading(args.db) as conn:
        cards, notes = scorecards_from_db(conn, args.suite)
    if not cards:
        raise UsageError(f"{args.db} holds no scores to plot yet")
    if args.out is not None and len(cards) > 1:
        raise UsageError(f"the database holds {len(cards)} suites ({', '.join(c.suite for c in cards)}); "
                         "with --out name one of them with --suite")
    for card in cards:
        out = figure_path(args.out) if args.out else args.db.with_name(f"{args.db.stem}-{card.suite}-scorecard.png")
        print(plot_scorecard(card, out))
    for note in notes:
        print(f"note: {note}")
    return 0


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; json.dumps would write them anyway
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # timestamps, decimals, lists: as DuckDB prints them
