"""Run K PPO updates of a config at a small size and record every stage (record.py).

The size is fixed whatever the recipe asks for, so that a fingerprint takes seconds: enough envs
for at least 4 agent slots, bptt_horizon 8, two rollout passes and two minibatches per update,
two update epochs, episodes of at most 12 steps (so that episodes end, maps are rebuilt and
truncations bootstrap inside the first update), on the CPU with one thread and a fixed seed.
Everything else (the game, the policy, every trainer switch) is the config's own.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from heartgrid.config.overrides import apply_overrides
from heartgrid.config.run import RunConfig
from heartgrid.fingerprint.record import TOLERANCE, Check, Recorder
from heartgrid.trainer import probes
from heartgrid.trainer.trainer import Trainer

FORMAT_VERSION = 1
DEFAULT_UPDATES = 2
BPTT_HORIZON = 8
MAX_STEPS = 12


def small_config(config: RunConfig, updates: int) -> RunConfig:
    agents = config.game.num_agents
    num_envs = max(1, -(-4 // agents))
    slots = agents * num_envs
    minibatch = slots * BPTT_HORIZON
    overrides: dict[str, Any] = {
        "system.device": "cpu", "system.torch_threads": 1, "system.seed": config.system.seed,
        "logging.console": "none", "logging.tensorboard": False, "logging.log_interval": 1,
        "wandb.enabled": False,
        "trainer.num_envs": num_envs, "trainer.bptt_horizon": BPTT_HORIZON,
        "trainer.batch_size": 2 * minibatch, "trainer.minibatch_size": minibatch,
        "trainer.update_epochs": 2, "trainer.total_timesteps": 2 * minibatch * updates,
        "game.max_steps": MAX_STEPS,
        "evaluation.interval": 0,  # a run directory of a GPU recipe evaluates while training
    }
    if config.trainer.micro_batch_size is not None:  # keep micro-batching on, at this size
        overrides["trainer.micro_batch_size"] = BPTT_HORIZON * (slots // 2 if slots % 2 == 0 else 1)
    return apply_overrides(config, overrides)  # type: ignore[return-value]


@dataclass
class Fingerprint:
    label: str
    updates: int
    config: dict[str, Any]
    """The small config that ran (resolved), so that two fingerprints' settings can be diffed."""
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    def save(self, path: str | Path) -> None:
        """One check per line, so that a regenerated golden file shows its change in review."""
        document = {"format": FORMAT_VERSION, "label": self.label, "updates": self.updates,
                    "tolerance": TOLERANCE, "config": self.config, "checks": "<checks>"}
        lines = ",\n  ".join(json.dumps(c.to_json(), separators=(",", ":")) for c in self.checks)
        text = json.dumps(document, indent=1, sort_keys=True).replace('"<checks>"', f"[\n  {lines}\n ]")
        Path(path).write_text(text + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Fingerprint:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: fingerprint format {data.get('format')!r}, expected {FORMAT_VERSION}; "
                             "regenerate it with this version")
        return cls(data["label"], data["updates"], data["config"], [Check.from_json(c) for c in data["checks"]])


def capture(config: RunConfig, updates: int = DEFAULT_UPDATES, label: str = "") -> Fingerprint:
    """The fingerprint of `config` (resized by `small_config`) over `updates` PPO updates."""
    small = small_config(config, updates)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    recorder = Recorder()
    try:
        trainer = Trainer(small)  # sets one thread (system.torch_threads=1)
        with probes.recording(recorder):
            for update in range(1, updates + 1):
                recorder.start_update(update)
                trainer.train_epoch()
    finally:
        torch.set_num_threads(threads)
    return Fingerprint(label or config.recipe, updates, small.model_dump(mode="json"), recorder.checks,
                       time.perf_counter() - started)
