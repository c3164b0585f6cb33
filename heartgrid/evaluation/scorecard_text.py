"""Scorecards and query results as plain-text tables for the terminal.

    simulation                       random                 greedy
    navigation/corridors             0.010 [-0.012, 0.033]  0.375 [0.280, 0.470]
    ...
    navigation (14 simulations)      0.019 [0.011, 0.027]   0.326 [0.306, 0.346]
    overall (1 category)             0.019 [0.011, 0.027]   0.326 [0.306, 0.346]

Each cell is the mean score and its 95% confidence interval (scoring.py); `-` where the policy
has no score (a simulation it was not evaluated on, or a mean over an incomplete set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from heartgrid.evaluation.scorecard import Scorecard
from heartgrid.evaluation.scoring import Summary


def cell(summary: Summary | None) -> str:
    if summary is None:
        return "-"
    if summary.low is None or summary.high is None:
        return f"{summary.mean:.3f} (n={summary.n}, no CI)"
    return f"{summary.mean:.3f} [{summary.low:.3f}, {summary.high:.3f}]"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart; numbers with up to 6 significant digits."""
    text = [[_text(v) for v in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in text)


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def format_scorecard(card: Scorecard) -> str:
    pids = [p.policy_id for p in card.policies]
    rows: list[list[str]] = []
    for sim in card.simulations:
        rows.append([sim.key] + [cell(card.simulation_summary(pid, sim.key)) for pid in pids])
    categories = card.categories
    for category in categories:
        count = len(card.simulations_in(category))
        rows.append([f"{category} ({counted(count, 'simulation', 'simulations')})"]
                    + [cell(card.category_summary(pid, category)) for pid in pids])
    rows.append([f"overall ({counted(len(categories), 'category', 'categories')})"]
                + [cell(card.overall(pid)) for pid in pids])
    lines = [
        f"suite {card.suite}: {counted(len(card.simulations), 'simulation', 'simulations')} x "
        f"{counted(len(pids), 'policy', 'policies')}; {card.actions} actions; device {card.device}",
        "score: mean over episodes [95% Student t CI]; a category: the mean of its simulations; "
        "overall: the mean of the categories",
        format_table(["simulation", *[p.label for p in card.policies]], rows),
        "normalisation:",
    ]
    for category in categories:
        texts = list(dict.fromkeys(s.normalisation for s in card.simulations_in(category)))
        for text in texts:
            lines.append(f"  {category}: {text}")
    lines.append("policies:")
    for p in card.policies:
        where = p.checkpoint or p.uri or "in memory"
        trained = f", epoch {p.epoch}, agent_step {p.agent_step:,}" if p.epoch is not None and p.agent_step is not None else ""
        lines.append(f"  {p.label}: {where} ({p.architecture or '?'}{trained}; id {p.policy_id})")
    return "\n".join(lines)
