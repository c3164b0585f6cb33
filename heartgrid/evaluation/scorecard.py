"""The scorecard: every episode score of every policy on every simulation of a suite.

    card = evaluate_suite(policies, "navigation", device="cpu")
    card.simulation_summary(policy_id, "navigation/corridors")   # Summary: mean, 95% CI, n
    card.category_summary(policy_id, "navigation")
    card.overall(policy_id)
    json.dumps(card.to_json())  /  Scorecard.from_json(data)

It keeps the episodes, not only the means: episode i of a simulation has the same seed (hence
the same map) for every policy, so two policies, or two checkpoints of one run, can later be
compared episode by episode (a paired test) from the JSON or from the stats database.
Summaries are computed from the episodes on demand (scoring.py), never stored as the truth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from heartgrid.evaluation.scoring import Summary, mean_of_means, t_interval, weighted_mean

FORMAT_VERSION = 1


def utc_now() -> str:
    """A time as scorecards and the stats database keep it (ISO 8601, UTC, milliseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class PolicyInfo:
    label: str  # how the scorecard shows it
    policy_id: str  # identity: a hash of its spec and weights (policies.py)
    uri: str | None = None
    checkpoint: str | None = None
    run: str | None = None
    epoch: int | None = None
    agent_step: int | None = None
    checksum: str | None = None  # sha256 of policy.safetensors (of the weights, for a module)
    architecture: str | None = None


@dataclass
class SimulationInfo:
    key: str  # category/name
    suite: str
    category: str
    name: str
    description: str
    config_hash: str
    config: dict[str, Any]  # the simulation spec and its resolved game (resolve.py)
    seed: int
    max_steps: int
    metric: str
    normalisation: str  # one line: how the score is made from the metric


@dataclass
class EpisodeScore:
    index: int  # env index in the simulation's engine; episode i always plays seed `seed`
    seed: int
    length: int
    reward: float  # episode reward, mean per agent
    metric: float  # the simulation's metric, mean per agent
    reference: float | None  # score = metric / reference (None: score = metric)
    score: float
    agent_rewards: list[float] = field(default_factory=list)
    agent_inventory: dict[str, list[float]] = field(default_factory=dict)  # item -> per agent, at the end
    stats: dict[str, float] = field(default_factory=dict)  # the engine's episode stats (non-zero)


@dataclass
class Result:
    policy_id: str
    simulation: str  # SimulationInfo.key
    episodes: list[EpisodeScore]
    started_at: str  # ISO 8601, UTC
    finished_at: str
    wall_s: float

    @property
    def summary(self) -> Summary:
        return t_interval([e.score for e in self.episodes])


@dataclass
class Scorecard:
    eval_id: str
    suite: str
    created_at: str
    device: str
    actions: str  # "sampled" or "greedy"
    policies: list[PolicyInfo]
    simulations: list[SimulationInfo]
    results: list[Result]

    # ----------------------------------------------------------------------------------------
    # Lookups and summaries

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(sim.category for sim in self.simulations))

    def simulations_in(self, category: str) -> list[SimulationInfo]:
        return [sim for sim in self.simulations if sim.category == category]

    def result(self, policy_id: str, key: str) -> Result | None:
        for result in self.results:
            if result.policy_id == policy_id and result.simulation == key:
                return result
        return None

    def simulation_summary(self, policy_id: str, key: str) -> Summary | None:
        result = self.result(policy_id, key)
        return None if result is None else result.summary

    def _by_category(self, policy_id: str) -> dict[str, list[Summary]] | None:
        """Per category, the policy's simulation summaries; None if any simulation is missing
        (a mean over a different set of maps would not compare with the others)."""
        groups: dict[str, list[Summary]] = {}
        for sim in self.simulations:
            summary = self.simulation_summary(policy_id, sim.key)
            if summary is None:
                return None
            groups.setdefault(sim.category, []).append(summary)
        return groups

    def category_summary(self, policy_id: str, category: str) -> Summary | None:
        summaries = [self.simulation_summary(policy_id, sim.key) for sim in self.simulations_in(category)]
        if not summaries or any(s is None for s in summaries):
            return None
        return weighted_mean(summaries)  # type: ignore[arg-type]

    def overall(self, policy_id: str) -> Summary | None:
        groups = self._by_category(policy_id)
        return None if not groups else mean_of_means(groups)

    # ----------------------------------------------------------------------------------------
    # JSON

    def summaries_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for policy in self.policies:
            pid = policy.policy_id
            sims = {sim.key: self.simulation_summary(pid, sim.key) for sim in self.simulations}
            cats = {cat: self.category_summary(pid, cat) for cat in self.categories}
            overall = self.overall(pid)
            out[pid] = {
                "label": policy.label,
                "simulations": {k: s.to_json() for k, s in sims.items() if s is not None},
                "categories": {k: s.to_json() for k, s in cats.items() if s is not None},
                "overall": None if overall is None else overall.to_json(),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "eval_id": self.eval_id,
            "suite": self.suite,
            "created_at": self.created_at,
            "device": self.device,
            "actions": self.actions,
            "score": "metric per agent per episode / the simulation's reference; simulations: "
                     "mean over episodes, 95% Student t interval; categories: unweighted mean of "
                     "their simulations; overall: unweighted mean of the categories "
                     "(Welch-Satterthwaite t intervals)",
            "policies": [asdict(p) for p in self.policies],
            "simulations": [asdict(s) for s in self.simulations],
            "results": [asdict(r) for r in self.results],
            "summary": self.summaries_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scorecard:
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"scorecard format version {data.get('format_version')!r}; "
                             f"this HeartGrid reads version {FORMAT_VERSION}")
        results = [
            Result(**{**r, "episodes": [EpisodeScore(**e) for e in r["episodes"]]})
            for r in data["results"]
        ]
        return cls(
            eval_id=data["eval_id"], suite=data["suite"], created_at=data["created_at"],
            device=data["device"], actions=data["actions"],
            policies=[PolicyInfo(**p) for p in data["policies"]],
            simulations=[SimulationInfo(**s) for s in data["simulations"]],
            results=results,
        )
