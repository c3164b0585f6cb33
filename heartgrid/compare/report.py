"""Render a Comparison: console text, `report.json`, `curves.png` and a self-contained `report.html`.

The HTML page embeds the PNG as base64 and its styles inline, so the one file can be mailed or
attached to an issue and opens anywhere without the report directory.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from heartgrid.compare.comparison import Comparison, MetricResult
from heartgrid.compare.power import POWER, DetectableEffect, rank_test_smallest_p
from heartgrid.compare.stats import (
    BETTER,
    BOOTSTRAP_RESAMPLES,
    NO_DIFFERENCE,
    NOT_WORSE,
    WORSE,
    MetricTest,
    SampleSummary,
)

REFERENCE_COLOR = "#1f77b4"
CANDIDATE_COLOR = "#ff7f0e"
VERDICT_COLORS = {BETTER: "#d7f5d7", WORSE: "#f9d0d0"}


@dataclass(frozen=True)
class Check:
    """A pass/fail finding shown next to the statistics (used by `heartgrid regress`)."""

    name: str
    passed: bool
    details: list[str] = field(default_factory=list)


# ---- numbers ------------------------------------------------------------------------------


def fmt(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _json_safe(value: Any) -> Any:
    """NaN becomes null and infinities the strings "inf"/"-inf": report.json is strict JSON."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    return value


# ---- text -----------------------------------------------------------------------------------


def _family(c: Comparison) -> int:
    """The Holm family size (regress may add eval-suite scores to the metrics' family)."""
    return max((r.test.family for r in c.metrics.values()), default=len(c.metrics))


def _family_text(c: Comparison) -> str:
    """What the Holm family holds: the metrics that could be tested (one without enough runs
    has no p-value and is not in it), and the eval-suite scores regress adds."""
    family = _family(c)
    tested = sum(not math.isnan(r.test.p_value) for r in c.metrics.values())
    untested = len(c.metrics) - tested
    scores = family - tested
    if family == 0:
        return "no test (no metric could be tested)"
    text = f"{family} metric(s)" if scores == 0 else f"{family} tests ({tested} metric(s) and {scores} eval-suite score(s))"
    return text + (f", leaving out {untested} metric(s) that could not be tested" if untested else "")


def method_line(c: Comparison) -> str:
    """Which test ran, on what, and how it was adjusted; the second line says how runs were paired."""
    sided = "two-sided" if c.alternative == "two-sided" else f"one-sided: is {c.candidate_label} worse"
    difference = f"{c.candidate_label} - {c.reference_label}"
    if c.pairing.paired:
        what = (f"{c.effect_size_name} (and Hedges' g) and the {c.test_name} on the per-seed differences "
                f"{difference} ({sided})")
        intervals = f"{c.confidence:.0%} bootstrap CIs of the mean (pairs resampled together)"
    else:
        what = f"{c.effect_size_name} and {c.test_name} ({sided})"
        intervals = f"{c.confidence:.0%} bootstrap CIs of the mean"
    return (
        f"{what}, alpha {c.alpha}, p-values Holm-adjusted over {_family_text(c)}; {intervals} "
        f"({BOOTSTRAP_RESAMPLES:,} resamples); differences are {difference}\n{c.pairing.describe()}"
    )


def _side(label: str, description: str, runs: list[str]) -> str:
    what = f" = {description}" if description else ""
    return f"{label}{what} ({len(runs)} run(s): {', '.join(runs)})"


def _mean_ci(s: SampleSummary) -> str:
    return f"{fmt(s.mean)} [{fmt(s.ci_low)}, {fmt(s.ci_high)}]"


def _sample_size(t: MetricTest) -> str:
    return f"n={t.reference.n} pairs" if t.paired else f"n={t.reference.n} vs {t.candidate.n}"


def metric_rows(c: Comparison) -> list[list[str]]:
    effect = f"{c.effect_size_name} (Hedges' g)" if c.pairing.paired else c.effect_size_name
    rows = [["metric", f"{c.reference_label} mean [CI]", f"{c.candidate_label} mean [CI]",
             f"{c.candidate_label}-{c.reference_label} [CI]", effect, "p", "p(Holm)", "verdict"]]
    for result in c.metrics.values():
        t = result.test
        better = "higher" if result.spec.higher_is_better else "lower"
        rows.append([
            f"{result.spec.label} ({better} is better)",
            _mean_ci(t.reference),
            _mean_ci(t.candidate),
            f"{fmt(t.difference)} [{fmt(t.difference_ci[0])}, {fmt(t.difference_ci[1])}]",
            f"{fmt(t.effect_size)} ({fmt(t.hedges_g)})" if t.paired else fmt(t.effect_size),
            fmt_p(t.p_value),
            fmt_p(t.p_adjusted),
            f"{t.verdict} ({_sample_size(t)})" if t.verdict in (NO_DIFFERENCE, NOT_WORSE) else t.verdict,
        ])
    return rows


def _undetectable(t: MetricTest, e: DetectableEffect) -> str:
    """Why a test can detect no difference at all at its number of runs."""
    smallest = rank_test_smallest_p(t.reference.n, t.candidate.n, paired=t.paired,
                                    two_sided=t.alternative == "two-sided")
    runs = f"{t.reference.n} pairs" if t.paired else f"{t.reference.n} vs {t.candidate.n} runs"
    return (f"none: with {runs} the exact {t.test}'s smallest p-value is {smallest:.3g}, not below "
            f"{e.alpha:.3g}; add seeds or choose --test welch")


def detectable_lines(c: Comparison) -> list[str]:
    """Per metric the smallest difference the report's test detects with power 0.8."""
    family = _family(c)
    methods = sorted({r.test.detectable.method for r in c.metrics.values() if r.test.detectable})
    spread = "d_z in SDs of the per-seed differences" if c.pairing.paired else "d in pooled SDs"
    if family == 0:  # no Holm family to divide alpha by: every line below is n/a
        level = f"alpha {c.alpha}; no metric could be tested"
    else:
        level = (f"alpha {c.alpha / family:.3g} = {c.alpha} / {family} test{'s' * (family != 1)}, Holm's first step; "
                 f"{'; '.join(methods)}; {spread}")
    lines = [f"smallest detectable difference (power {POWER}, {level}):"]
    for result in c.metrics.values():
        t, e = result.test, result.test.detectable
        if e is None or math.isnan(e.standardised):
            text = f"n/a ({_sample_size(t)}; a test needs 2 runs a side)"
        elif math.isinf(e.standardised):
            text = _undetectable(t, e)
        elif e.spread == 0.0:
            # No spread to scale by: a standardised MDE says nothing in the metric's units.
            same = ", the two runs of every seed agree exactly" if t.paired and t.difference == 0.0 else ""
            text = f"n/a ({_sample_size(t)}: the {e.spread_name} is 0{same})"
        else:
            text = f"{fmt(e.difference)} ({e.effect_name}={e.standardised:.2g}) at {_sample_size(t)}"
        lines.append(f"  {result.spec.label}: {text}")
    return lines


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def summary_lines(c: Comparison) -> list[str]:
    lines = []
    for result in c.metrics.values():
        t = result.test
        sample = f"at {_sample_size(t)}"
        if t.verdict in (BETTER, WORSE):
            lines.append(f"{c.candidate_label} is {t.verdict} than {c.reference_label} on {result.spec.label}")
        elif t.verdict == NOT_WORSE:
            lines.append(f"{c.candidate_label} is not detectably worse than {c.reference_label} "
                         f"on {result.spec.label} {sample}")
        elif t.verdict == NO_DIFFERENCE:
            lines.append(f"no detectable difference between {c.candidate_label} and {c.reference_label} "
                         f"on {result.spec.label} {sample}")
        else:
            lines.append(f"{result.spec.label}: {t.verdict} ({sample}; a test needs 2 runs a side)")
    return lines


def format_text(c: Comparison, checks: list[Check] | None = None) -> str:
    """The console report; with `checks` (regress) the checks replace the summary lines."""
    parts = [
        _side(c.reference_label, c.reference_description, c.reference_runs),
        _side(c.candidate_label, c.candidate_description, c.candidate_runs),
        "",
        table(metric_rows(c)),
        method_line(c),
        *detectable_lines(c),
    ]
    if c.notes:
        parts += ["", "notes:"] + [f"  {n}" for n in c.notes]
    if checks is None:
        parts += [""] + summary_lines(c)
    else:
        parts.append("")
        for check in checks:
            parts += [f"{'PASS' if check.passed else 'FAIL'} {check.name}"] + [f"  {d}" for d in check.details]
    return "\n".join(parts)


# ---- JSON -----------------------------------------------------------------------------------


def _side_json(s: SampleSummary, values: dict[str, float]) -> dict[str, Any]:
    return {"n": s.n, "mean": s.mean, "std": s.std, "ci": [s.ci_low, s.ci_high], "values": values}


def _detectable_json(e: DetectableEffect | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "difference": e.difference, "standardised": e.standardised, "effect": e.effect_name,
        "spread": e.spread, "spread_name": e.spread_name, "alpha": e.alpha, "power": e.power,
        "method": e.method,
    }


def _metric_json(r: MetricResult) -> dict[str, Any]:
    t = r.test
    return {
        "metric": r.spec.name,
        "reduction": r.spec.reduction,
        "higher_is_better": r.spec.higher_is_better,
        "reference": _side_json(t.reference, r.reference_values),
        "candidate": _side_json(t.candidate, r.candidate_values),
        "difference": t.difference,
        "difference_ci": list(t.difference_ci),
        "effect_size": t.effect_size,
        "effect_size_name": t.effect_size_name,
        "hedges_g": t.hedges_g,
        "test": t.test,
        "paired": t.paired,
        "pairs": [{"seed": s, "reference": a, "candidate": b} for s, a, b in r.pairs],
        "alternative": t.alternative,
        "p_value": t.p_value,
        "p_adjusted": t.p_adjusted,
        "holm_family": t.family,
        "verdict": t.verdict,
        "smallest_detectable": _detectable_json(t.detectable),
    }


def to_json(c: Comparison, checks: list[Check] | None = None) -> dict[str, Any]:
    data = {
        "reference": {
            "label": c.reference_label, "description": c.reference_description, "runs": c.reference_runs
        },
        "candidate": {
            "label": c.candidate_label, "description": c.candidate_description, "runs": c.candidate_runs
        },
        "settings": {
            "test": c.test_name,
            "test_option": c.test,
            "pairing": {
                "paired": c.pairing.paired,
                "by": "system.seed" if c.pairing.paired else None,
                "reason": c.pairing.reason,
                "pairs": [{"seed": s, "reference": a, "candidate": b} for s, a, b in c.pairing.pairs],
                "left_out": c.pairing.left_out,
                "description": c.pairing.describe(),
            },
            "alternative": c.alternative,
            "alpha": c.alpha,
            "p_adjustment": "holm",
            "confidence": c.confidence,
            "interval": "percentile bootstrap of the mean" + (" difference, pairs resampled together"
                                                              if c.pairing.paired else ""),
            "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
            "effect_size": c.effect_size_name,
            "smallest_detectable": {
                "power": POWER,
                "alpha": c.alpha / max(_family(c), 1),
                "why_this_alpha": f"alpha {c.alpha} over the Holm family of {_family(c)}: Holm's first step",
                "methods": sorted({r.test.detectable.method for r in c.metrics.values() if r.test.detectable}),
                "standardised": "d_z: per SD of the per-seed differences" if c.pairing.paired
                else "d: per pooled SD",
            },
            "auc": "trapezoid area over agent_step divided by the agent steps spanned",
        },
        "config_diff": [{"path": p, "reference": a, "candidate": b} for p, a, b in c.config_diff],
        "metrics": {key: _metric_json(r) for key, r in c.metrics.items()},
        "curves": {
            band.metric: {"agent_step": band.steps, "sides": band.sides} for band in c.curves
        },
        "notes": c.notes,
        "summary": summary_lines(c),
    }
    if checks is not None:
        data["checks"] = [{"name": k.name, "passed": k.passed, "details": k.details} for k in checks]
        data["passed"] = all(k.passed for k in checks)
    return _json_safe(data)


# ---- plot -----------------------------------------------------------------------------------


def plot_curves(c: Comparison) -> bytes:
    """PNG of each metric's learning curves: per side the mean over runs and its CI band."""
    count = max(1, len(c.curves))
    cols = min(count, 2)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(6.0 * cols, 4.0 * rows), dpi=100, layout="constrained")
    colors = {c.reference_label: REFERENCE_COLOR, c.candidate_label: CANDIDATE_COLOR}
    runs = {c.reference_label: len(c.reference_runs), c.candidate_label: len(c.candidate_runs)}
    for i, band in enumerate(c.curves):
        ax = fig.add_subplot(rows, cols, i + 1)
        for label, side in band.sides.items():
            color = colors.get(label, "gray")
            ax.plot(band.steps, side["mean"], color=color, label=f"{label} (mean of {runs.get(label, '?')})")
            ax.fill_between(band.steps, side["low"], side["high"], color=color, alpha=0.25, linewidth=0)
        ax.set_title(band.metric)
        ax.set_xlabel("agent steps")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    if not c.curves:
        fig.text(0.5, 0.5, "no curves: none of the metrics was logged", ha="center")
    fig.suptitle(f"{c.candidate_label} vs {c.reference_label}: mean and {c.confidence:.0%} CI band over runs")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# ---- HTML -----------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; font-size: 0.9em; }
th { background: #f0f0f0; }
code, td.mono { font-family: ui-monospace, monospace; }
.pass { color: #176317; } .fail { color: #a11; font-weight: bold; }
img { max-width: 100%; }
"""


def _html_table(rows: list[list[str]], verdict_column: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in rows[0])
    body = []
    for row in rows[1:]:
        style = ""
        if verdict_column is not None:
            color = VERDICT_COLORS.get(row[verdict_column])
            style = f' style="background:{color}"' if color else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _html_side(label: str, role: str, description: str, runs: list[str]) -> str:
    e = html.escape
    what = f": {e(description)}" if description else ""
    return f"<li><b>{e(label)}</b> ({role}){what} &mdash; {len(runs)} run(s): {e(', '.join(runs))}</li>"


def to_html(
    c: Comparison, png: bytes, checks: list[Check] | None = None, title: str = "HeartGrid comparison"
) -> str:
    e = html.escape
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{e(title)}</h1>",
        "<ul>",
        _html_side(c.reference_label, "reference", c.reference_description, c.reference_runs),
        _html_side(c.candidate_label, "candidate", c.candidate_description, c.candidate_runs),
        "</ul>",
    ]
    if checks:
        parts.append("<h2>Checks</h2><ul>")
        for k in checks:
            cls, word = ("pass", "PASS") if k.passed else ("fail", "FAIL")
            details = "".join(f"<li class='mono'>{e(d)}</li>" for d in k.details)
            parts.append(f"<li><span class='{cls}'>{word}</span> {e(k.name)}<ul>{details}</ul></li>")
        parts.append("</ul>")
    parts += [
        "<h2>Metrics</h2>",
        _html_table(metric_rows(c), verdict_column=7),
        "".join(f"<p>{e(line)}</p>" for line in method_line(c).splitlines()),
        f"<p>{e(detectable_lines(c)[0])}</p>",
        "<ul>" + "".join(f"<li>{e(line.strip())}</li>" for line in detectable_lines(c)[1:]) + "</ul>",
        "<ul>" + "".join(f"<li>{e(s)}</li>" for s in summary_lines(c)) + "</ul>",
        "<h2>Learning curves</h2>",
        f"<img alt='learning curves' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>",
        "<h2>Config diff</h2>",
    ]
    if c.config_diff:
        rows = [["path", c.reference_label, c.candidate_label]]
        rows += [[p, json.dumps(a), json.dumps(b)] for p, a, b in c.config_diff]
        parts.append(_html_table(rows))
    else:
        parts.append("<p>No differences beyond run identity (run name, directories, seed).</p>")
    if c.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in c.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    c: Comparison, out_dir: str | Path, checks: list[Check] | None = None, title: str = "HeartGrid comparison"
) -> Path:
    """Write report.json, curves.png and report.html into out_dir (created); returns out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_curves(c)
    (out / "curves.png").write_bytes(png)
    (out / "report.json").write_text(json.dumps(to_json(c, checks), indent=2) + "\n")
    (out / "report.html").write_text(to_html(c, png, checks, title))
    return out
