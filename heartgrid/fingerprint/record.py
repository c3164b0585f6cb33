"""From the trainer's taps (heartgrid/trainer/probes.py) to a list of checks in pipeline order.

A `Check` is one stage at one place: `obs` at update 1, pass 0, t 5, holding one value per
agent slot. Two kinds:

- `hash`: integer data (observations, the world's integer tensors) as short sha256 digests,
  one per index, compared exactly;
- `values`: numbers, one per index (or per named key). Integers (actions, dones, segment
  indices, episode lengths) compare exactly; floats within `TOLERANCE`.

Floats are stored rounded to 7 significant digits and compared with |a - b| <= atol + rtol·|b|.
Fingerprints run on the CPU with one thread, so thread counts do not enter; the tolerance
absorbs what differs between CPUs of one kind (vectorised kernels summing in another order,
about 1e-7 relative after a few updates), and no plausible behaviour change is that small.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}
SIGNIFICANT_DIGITS = 7
# Wall-clock metrics differ between any two runs; they are not behaviour.
CLOCK_METRICS = ("timing/", "overview/sps", "overview/epoch_time_s", "metric/total_time")

# The rollout's per-step stages in the order a step computes them: observation, policy, engine.
STEP_STAGES = ("obs", "actions", "logprobs", "values", "rewards", "dones", "truncations", "bootstraps")


@dataclass
class Check:
    update: int
    stage: str
    where: str
    kind: str  # "hash" | "values"
    index: str  # what a position in `values` is: "slot", "segment", or "key" (see `keys`)
    values: list[Any]
    keys: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"update": self.update, "stage": self.stage, "where": self.where, "kind": self.kind,
               "index": self.index, "values": self.values}
        if self.keys is not None:
            out["keys"] = self.keys
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Check:
        return cls(data["update"], data["stage"], data["where"], data["kind"], data["index"],
                   data["values"], data.get("keys"))


def short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def rounded(x: float) -> float:
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(x) else str(x)  # type: ignore[return-value]


def numbers(tensor: Tensor) -> list[Any]:
    """A tensor's values as JSON numbers: integers exact, floats rounded."""
    flat = tensor.detach().cpu().flatten()
    if flat.dtype.is_floating_point:
        return [rounded(v) for v in flat.double().tolist()]
    return [int(v) for v in flat.tolist()]


def row_hashes(tensor: Tensor) -> list[str]:
    """One digest per row (first dimension) of an integer tensor."""
    rows = tensor.detach().cpu().contiguous().view(tensor.shape[0], -1)
    return [short_hash(row.numpy().tobytes()) for row in rows]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts/lists/tensors/numbers/strings -> {dotted key: number or string}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in sorted(value, key=str):
            out.update(flatten(value[key], f"{prefix}{key}."))
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}{i}."))
        return out
    key = prefix.rstrip(".")
    if isinstance(value, Tensor):
        values = numbers(value)
        return {key: values[0]} if value.numel() == 1 else {f"{key}.{i}": v for i, v in enumerate(values)}
    if isinstance(value, bool):
        return {key: int(value)}
    if isinstance(value, float):
        return {key: rounded(value)}
    if isinstance(value, (int, str)) or value is None:
        return {key: value}
    raise TypeError(f"cannot fingerprint {type(value).__name__} at {key}")


def named(update: int, stage: str, where: str, mapping: dict[str, Any]) -> Check:
    flat = flatten(mapping)
    return Check(update, stage, where, "values", "key", list(flat.values()), list(flat.keys()))


def parameter_group(name: str) -> str:
    """`lstm.weight_ih_l0` -> `lstm`: gradient norms are reported per top-level module."""
    return name.split(".", 1)[0]


@dataclass
class Recorder:
    """Receives taps (`recorder(stage, values)`) and appends checks for update `update`."""

    checks: list[Check] = field(default_factory=list)
    update: int = 0
    minibatch: int = 0
    micro: int = 0
    epoch: int = 0
    weights_before: dict[str, Tensor] = field(default_factory=dict)

    def start_update(self, update: int) -> None:
        self.update, self.minibatch, self.micro = update, 0, 0

    def __call__(self, stage: str, values: dict[str, Any]) -> None:
        getattr(self, f"on_{stage}")(**values)

    def add(self, check: Check) -> None:
        self.checks.append(check)

    # ---- rollout -----------------------------------------------------------------------

    def on_world(self, engine: Any) -> None:
        """The whole game state at the start of the rollout (maps, agents, converters): its
        integer tensors hashed, its float tensors (rewards so far, reward weights) summed;
        trash rows (where masked writes go) left out."""
        world = {name: t.detach().cpu() for name, t in engine.world.game_state().items()}
        exact = sorted(n for n, t in world.items() if not t.dtype.is_floating_point)
        digests = [short_hash(world[n].contiguous().numpy().tobytes()) for n in exact]
        self.add(Check(self.update, "world", "rollout start", "hash", "key", digests, exact))
        floats = {n: {"sum": float(t.double().sum()), "abs_sum": float(t.double().abs().sum())}
                  for n, t in world.items() if t.dtype.is_floating_point}
        self.add(named(self.update, "world_floats", "rollout start", floats))

    def on_rollout(self, experience: Any, slots: int, bootstraps: bool) -> None:
        """Per step, in time order: each rollout pass steps every slot `bptt_horizon` times."""
        e = experience
        per_step = {"obs": e.obs, "actions": e.actions, "logprobs": e.logprobs, "values": e.values,
                    "rewards": e.rewards, "dones": e.dones, "truncations": e.truncateds}
        if bootstraps:
            per_step["bootstraps"] = e.bootstraps
        passes = e.obs.shape[0] // slots
        for p in range(passes):
            rows = slice(p * slots, (p + 1) * slots)
            for t in range(e.obs.shape[1]):
                where = f"pass {p}, t {t}"
                for stage in STEP_STAGES:
                    if stage not in per_step:
                        continue
                    data = per_step[stage][rows, t]
                    if stage == "obs":
                        self.add(Check(self.update, stage, where, "hash", "slot", row_hashes(data)))
                    else:
                        self.add(Check(self.update, stage, where, "values", "slot", numbers(data)))

    def on_episodes(self, episodes: Any) -> None:
        self.add(named(self.update, "episodes", "finished episodes", {
            "env_ids": episodes.env_ids, "task_ids": episodes.task_ids, "rewards": episodes.rewards,
            "lengths": episodes.lengths, "agent_stats": episodes.agent_stats, "game_stats": episodes.game_stats,
        }))

    def on_curriculum(self, state: dict[str, Any]) -> None:
        self.add(named(self.update, "curriculum", "after the rollout", state))

    # ---- update ------------------------------------------------------------------------

    def on_advantages(self, advantages: Tensor, returns: Tensor) -> None:
        """Per t, one value per segment (row of the experience buffer)."""
        for stage, data in (("advantages", advantages), ("returns", returns)):
            for t in range(data.shape[1]):
                self.add(Check(self.update, stage, f"t {t}", "values", "segment", numbers(data[:, t])))

    def on_sampling(self, epoch: int, segments: Tensor, weights: Tensor | None) -> None:
        if epoch != self.epoch:
            self.epoch, self.minibatch = epoch, 0
        self.minibatch += 1
        self.micro = 0
        data = {"segments": segments} if weights is None else {"segments": segments, "weights": weights}
        self.add(named(self.update, "sampling", self._minibatch(), data))

    def on_losses(self, loss: Any) -> None:
        self.micro += 1
        terms = {**loss.diagnostics(), "total": loss.total.detach()}
        self.add(named(self.update, "losses", f"{self._minibatch()}, micro-batch {self.micro}", terms))

    def on_gradients(self, policy: torch.nn.Module) -> None:
        """Gradient norms per top-level module, before clipping; the weights are kept to
        measure the optimizer's step."""
        squares: dict[str, float] = {}
        for name, parameter in policy.named_parameters():
            if parameter.grad is not None:
                group = parameter_group(name)
                squares[group] = squares.get(group, 0.0) + float(parameter.grad.double().pow(2).sum())
        self.add(named(self.update, "gradients", self._minibatch(), {g: math.sqrt(v) for g, v in squares.items()}))
        self.weights_before = {n: p.detach().clone() for n, p in policy.named_parameters()}

    def on_weights(self, policy: torch.nn.Module) -> None:
        """Per parameter: the norm of the optimizer's step (what an optimizer change moves
        first), and the norm of the weights after it."""
        summary = {}
        for name, parameter in policy.named_parameters():
            step = parameter.detach().double() - self.weights_before[name].double()
            summary[name] = {"step": float(step.norm()), "norm": float(parameter.detach().double().norm())}
        self.add(named(self.update, "weights", self._minibatch(), summary))

    def on_metrics(self, record: dict[str, float]) -> None:
        kept = {k: v for k, v in record.items() if not k.startswith(CLOCK_METRICS)}
        self.add(named(self.update, "metrics", "logged record", kept))

    def _minibatch(self) -> str:
        return f"epoch {self.epoch}, minibatch {self.minibatch}"
