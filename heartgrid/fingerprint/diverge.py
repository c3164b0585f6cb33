"""Compare two fingerprints and name the first place where they behave differently.

Checks are in pipeline order (record.py): within an update the world, then every rollout step
in time order (obs, actions, log-probs, values, rewards, dones, truncations, bootstraps), the
finished episodes and the curriculum, advantages and returns, then per minibatch the sampled
segments, the losses, gradient norms and the optimizer's step, and the logged record. The
first check that differs is where the change acts: every stage before it, its inputs, agrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from heartgrid.fingerprint.capture import Fingerprint
from heartgrid.fingerprint.record import TOLERANCE, Check


@dataclass(frozen=True)
class Divergence:
    update: int
    stage: str
    where: str
    detail: str
    equal_before: tuple[str, ...]
    """The stages of this update with checks before this one, all of which agreed (its inputs,
    and the same stage at earlier steps)."""

    def message(self) -> str:
        agreed = ", ".join(self.equal_before) if self.equal_before else "none: it is the first check"
        return (f"first divergence: update {self.update}, stage `{self.stage}` at {self.where} "
                f"(every check before it agreed: {agreed}); {self.detail}")


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        return math.isclose(a, b, rel_tol=TOLERANCE["rtol"], abs_tol=TOLERANCE["atol"])
    return a == b  # integers, strings, hashes: exact


def position(check: Check, i: int) -> str:
    return f"{check.keys[i]!r}" if check.keys is not None else f"{check.index} {i}"


def compare_check(a: Check, b: Check) -> str | None:
    """None when equal; else what differs, e.g. 'max abs diff 0.31 at segment 4'."""
    if a.keys != b.keys:
        only_a = sorted(set(a.keys or []) - set(b.keys or []))
        only_b = sorted(set(b.keys or []) - set(a.keys or []))
        return f"its entries differ: only in A {only_a or '-'}, only in B {only_b or '-'}"
    if len(a.values) != len(b.values):
        return f"{len(a.values)} values in A, {len(b.values)} in B"
    differing = [i for i, (x, y) in enumerate(zip(a.values, b.values)) if not close(x, y)]
    if not differing:
        return None
    first = differing[0]
    count = f"{len(differing)} of {len(a.values)} differ"
    numeric = [i for i in differing
               if isinstance(a.values[i], (int, float)) and isinstance(b.values[i], (int, float))
               and a.kind == "values"]
    if numeric:
        worst = max(numeric, key=lambda i: abs(a.values[i] - b.values[i]))
        diff = abs(a.values[worst] - b.values[worst])
        return (f"max abs diff {diff:.3g} at {position(a, worst)} ({a.values[worst]!r} vs "
                f"{b.values[worst]!r}); {count}, the first at {position(a, first)}")
    return f"{position(a, first)} differs ({a.values[first]!r} vs {b.values[first]!r}); {count}"


def first_divergence(a: Fingerprint, b: Fingerprint) -> Divergence | None:
    seen: dict[int, list[str]] = {}
    for check_a, check_b in zip(a.checks, b.checks):
        if (check_a.update, check_a.stage, check_a.where) != (check_b.update, check_b.stage, check_b.where):
            return Divergence(check_a.update, check_a.stage, check_a.where,
                              f"the pipelines differ in shape: B has stage `{check_b.stage}` at update "
                              f"{check_b.update}, {check_b.where} here", tuple(seen.get(check_a.update, [])))
        detail = compare_check(check_a, check_b)
        if detail is not None:
            return Divergence(check_a.update, check_a.stage, check_a.where, detail,
                              tuple(seen.get(check_a.update, [])))
        stages = seen.setdefault(check_a.update, [])
        if check_a.stage not in stages:
            stages.append(check_a.stage)
    if len(a.checks) != len(b.checks):
        longer, name = (a, "A") if len(a.checks) > len(b.checks) else (b, "B")
        extra = longer.checks[min(len(a.checks), len(b.checks))]
        return Divergence(extra.update, extra.stage, extra.where,
                          f"only {name} has this stage ({len(a.checks)} checks in A, {len(b.checks)} in B)",
                          tuple(seen.get(extra.update, [])))
    return None
