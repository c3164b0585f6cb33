"""Which runs of two sides are pairs: the same seed (common random numbers) on both sides.

A HeartGrid run's randomness is a function of its seed (`system.seed`): the maps of every
episode and the per-step action priorities (the engine's counter-based hash), the policy's
initial weights, the action sampling and the minibatch order. Two runs of different code with
the same seed therefore start from the same weights on the same maps, and much of what makes
seeds differ, the luck of the maps and of the first updates, is shared by the pair. The
difference within a pair then carries less noise than the difference between two independent
runs, and a paired test on the per-seed differences needs fewer seeds for the same difference.

The pairing rule (`--pairing`):
- `auto` (default): paired when both sides ran exactly the same set of seeds, each seed once
  per side; otherwise unpaired, and the report says why. One exception, decided by the design
  alone (never by the data): with `--test mannwhitney`, when the Wilcoxon signed-rank test
  cannot reach alpha at all with that many pairs (5 pairs or fewer two-sided at 0.05, 4 or
  fewer one-sided), the runs stay unpaired and the Mann-Whitney test runs;
- `paired`: pair the seeds both sides ran (runs without a partner are left out of the tests,
  and the report names them); refused when a run has no seed, a side ran a seed twice, or fewer
  than MIN_PAIRS seeds are shared;
- `unpaired`: never pair.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from heartgrid.compare.power import rank_test_smallest_p
from heartgrid.compare.runs import CompareError

PairingMode = Literal["auto", "paired", "unpaired"]
PAIRING_MODES: tuple[str, ...] = ("auto", "paired", "unpaired")
PAIRED_BY = "seed (system.seed in each run's config.json)"
MIN_PAIRS = 2


class PairingError(CompareError):
    """`--pairing paired` asked for pairs that the runs do not make."""


@dataclass(frozen=True)
class Pairing:
    paired: bool
    reason: str
    """Why the runs are (not) paired, for the report."""
    pairs: list[tuple[int, str, str]] = field(default_factory=list)
    """(seed, reference label, candidate label), by seed; empty when unpaired."""
    left_out: list[str] = field(default_factory=list)
    """Runs without a partner, left out of the tests (only with `--pairing paired`)."""
    by: str = PAIRED_BY
    """What the seeds are, for the report."""

    def describe(self) -> str:
        if not self.paired:
            return f"runs unpaired: {self.reason}"
        text = f"runs paired by {self.by}: {len(self.pairs)} pairs, seeds {seed_list(s for s, _, _ in self.pairs)}"
        if self.left_out:
            text += f"; left out (no partner): {', '.join(self.left_out)}"
        return text


def seed_list(seeds: Iterable[int]) -> str:
    """Seeds as short text, consecutive ones as ranges: "0-3, 7, 9"."""
    ranges: list[list[int]] = []
    for seed in sorted(set(seeds)):
        if ranges and seed == ranges[-1][-1] + 1:
            ranges[-1].append(seed)
        else:
            ranges.append([seed])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in ranges) or "none"


def _seed_problems(label: str, seeds: Mapping[str, int | None]) -> list[str]:
    problems = []
    unknown = [run for run, seed in seeds.items() if seed is None]
    if unknown:
        problems.append(f"{label} run(s) {', '.join(unknown)} have no integer system.seed")
    twice = sorted(seed for seed, count in Counter(s for s in seeds.values() if s is not None).items() if count > 1)
    if twice:
        problems.append(f"{label} ran seed(s) {seed_list(twice)} more than once")
    return problems


def pair_by_seed(
    reference: Mapping[str, int | None],
    candidate: Mapping[str, int | None],
    mode: PairingMode = "auto",
    *,
    labels: tuple[str, str] = ("reference", "candidate"),
    by: str = PAIRED_BY,
) -> Pairing:
    """Pair runs {label: seed} of two sides according to `mode` (see the module docstring)."""
    if mode not in PAIRING_MODES:
        raise PairingError(f"unknown pairing {mode!r}; choose one of {', '.join(PAIRING_MODES)}")
    if mode == "unpaired":
        return Pairing(False, "--pairing unpaired")
    problems = _seed_problems(labels[0], reference) + _seed_problems(labels[1], candidate)
    if problems:
        if mode == "paired":
            raise PairingError("cannot pair the runs by seed: " + "; ".join(problems))
        return Pairing(False, "; ".join(problems))
    by_seed_r = {seed: run for run, seed in reference.items()}
    by_seed_c = {seed: run for run, seed in candidate.items()}
    common = sorted(set(by_seed_r) & set(by_seed_c))
    same = set(by_seed_r) == set(by_seed_c)
    if mode == "auto" and not same:
        return Pairing(
            False,
            f"the sides ran different seeds ({labels[0]}: {seed_list(by_seed_r)}, "
            f"{labels[1]}: {seed_list(by_seed_c)})",
        )
    if len(common) < MIN_PAIRS:
        message = f"the sides share {len(common)} seed(s); a paired test needs at least {MIN_PAIRS}"
        if mode == "paired":
            raise PairingError(f"cannot pair the runs by seed: {message}")
        return Pairing(False, message)
    pairs = [(seed, by_seed_r[seed], by_seed_c[seed]) for seed in common]
    left_out = sorted(run for seed, run in [*by_seed_r.items(), *by_seed_c.items()] if seed not in common)
    reason = "both sides ran the same seeds" if same else "--pairing paired: the seeds both sides ran"
    return Pairing(True, reason, pairs, left_out, by)


def pair_for_test(
    reference: Mapping[str, int | None],
    candidate: Mapping[str, int | None],
    mode: PairingMode,
    *,
    test: str,
    two_sided: bool,
    alpha: float,
    labels: tuple[str, str] = ("reference", "candidate"),
    by: str = PAIRED_BY,
) -> Pairing:
    """`pair_by_seed`, except that `auto` keeps the runs unpaired when the paired counterpart of
    `test` could not reject at `alpha` whatever the data (the signed-rank test with few pairs)."""
    pairing = pair_by_seed(reference, candidate, mode, labels=labels, by=by)
    if mode != "auto" or not pairing.paired or test != "mannwhitney":
        return pairing
    n = len(pairing.pairs)
    smallest = rank_test_smallest_p(n, n, paired=True, two_sided=two_sided)
    if smallest < alpha:
        return pairing
    return Pairing(
        False,
        f"the sides ran the same seeds, but with {n} pairs no outcome of the Wilcoxon signed-rank test "
        f"reaches p < {alpha} (smallest {smallest:.3g}), so the runs are tested unpaired (--pairing paired "
        "insists on pairs)",
    )
