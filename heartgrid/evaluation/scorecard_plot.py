"""A scorecard as a heatmap PNG: simulations (then category means, then overall) down, policies
across, the colour and the number in each cell the mean score.

Colours span [0, 1] when every score lies there (the normalised scores of the built-in suites:
0 nothing, 1 the best the map allows or the reference agent), so two plots compare by eye;
otherwise they span the scores shown.
"""

from __future__ import annotations

import math
from pathlib import Path

from heartgrid.evaluation.scorecard import Scorecard
from heartgrid.evaluation.scoring import Summary


def heatmap_rows(card: Scorecard) -> tuple[list[str], list[list[Summary | None]]]:
    """Row labels and, per row, one summary per policy (in `card.policies` order)."""
    pids = [p.policy_id for p in card.policies]
    labels, cells = [], []
    for sim in card.simulations:
        labels.append(sim.key)
        cells.append([card.simulation_summary(pid, sim.key) for pid in pids])
    for category in card.categories:
        labels.append(f"{category} (mean)")
        cells.append([card.category_summary(pid, category) for pid in pids])
    labels.append("overall")
    cells.append([card.overall(pid) for pid in pids])
    return labels, cells


def plot_scorecard(card: Scorecard, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt
    import numpy as np

    labels, cells = heatmap_rows(card)
    values = np.array([[math.nan if s is None else s.mean for s in row] for row in cells], dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (0.0, 1.0)
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        low, high = float(finite.min()), float(finite.max())
    width = 2.5 + 0.075 * max(len(label) for label in labels) + 1.2 * len(card.policies)
    height = 1.5 + 0.32 * len(labels)
    fig, ax = plt.subplots(figsize=(width, height))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=low, vmax=high, aspect="auto")
    ax.set_xticks(range(len(card.policies)), [p.label for p in card.policies], rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for r, row in enumerate(values):
        for c, value in enumerate(row):
            text = "-" if math.isnan(value) else f"{value:.2f}"
            shade = "black" if not math.isnan(value) and value > low + 0.6 * (high - low) else "white"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=shade)
    # Lines between simulations, category means and the overall row.
    ax.axhline(len(card.simulations) - 0.5, color="white", linewidth=2)
    ax.axhline(len(labels) - 1.5, color="white", linewidth=2)
    ax.set_title(f"{card.suite}: mean score", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
