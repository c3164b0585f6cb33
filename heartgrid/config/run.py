"""The root config of a run: everything `heartgrid train` needs, resolved and diffable."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from heartgrid.config.base import Config
from heartgrid.config.curriculum import CurriculumConfig
from heartgrid.config.game import GameConfig
from heartgrid.config.trainer import TrainerConfig
from heartgrid.errors import MAX_SEED
from heartgrid.interrupts import CATCHABLE_STOP_SIGNALS, DEFAULT_STOP_SIGNALS


BUILTIN_POLICIES = ("conv_lstm", "fast", "latent_attn_tiny", "latent_attn_small", "latent_attn_med")


class PolicyConfig(Config):
    name: str = "conv_lstm"
    """`conv_lstm` (the default: `fast`'s layers, a linear action head, LSTM biases 0), `fast`
    (the reference policy), `latent_attn_tiny`, `latent_attn_small`, `latent_attn_med`, or
    `module:Class` for a user's own PyTorch module (see heartgrid/policies/README.md). Built-ins
    take `kwargs` action_head (bilinear/linear), lstm_bias and memory (lstm/none)."""
    hidden_size: int = Field(128, ge=1)
    lstm_layers: int = Field(2, ge=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for the policy's constructor."""

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in BUILTIN_POLICIES and not re.fullmatch(r"[\w.]+:\w+", value):
            raise ValueError(
                f"unknown policy {value!r}; use one of {list(BUILTIN_POLICIES)} or "
                "'package.module:ClassName' for your own module (heartgrid/policies/README.md)"
            )
        return value


class SystemConfig(Config):
    device: str = "auto"
    """`auto` (cuda when available, else cpu), `cpu`, `cuda` or `cuda:N`."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Fixes maps, priorities, sampling and initial weights."""
    torch_threads: int | None = Field(None, ge=1)
    """CPU threads for PyTorch. None: on a CPU device, one per core less the cores other
    processes keep busy when training starts (heartgrid/threads.py; OMP_NUM_THREADS wins when
    set); on a GPU, torch's default. The count is in the run's log.txt. Runs are bit-for-bit
    reproducible for a given count: set it to compare runs made under different loads."""
    compile: bool = False
    """Run the training engine's step through torch.compile (heartgrid/engine/compiled.py):
    the device part of a step as one graph of the masked path, compiled at the first step (on
    a 2-core CPU ~5-12 s cold, ~3 s from inductor's cache; log.txt says which). The same game
    step for step, so a run may resume with it switched. Off by default: on a CPU the engine
    alone is slower at 64 envs (0.8x the tensor step with host skips), faster at the CPU
    recipe's 8, and training end to end is the same within noise (benchmarks/README.md); the
    native step (`native_step`), which it replaces when on, is faster than both there. Not
    yet measured on a GPU (benchmarks/gpu_check.sh does)."""
    native_step: Literal["auto", "on", "off"] = "auto"
    """The engine's step as one call into C++ (heartgrid/engine/native.py; built once with the
    machine's C++ compiler, about a second, and cached). `auto`: on a CPU device unless
    `compile` is on, falling back to the tensor step with a warning where it cannot be built;
    `on`: required (an error where it cannot run); `off`: the tensor step. The same game step
    for step either way, so a run may resume with it switched; on a 2-core CPU the engine
    steps ~2.4x faster (benchmarks/README.md). A GPU always runs the tensor step."""
    deterministic: bool = True
    """Deterministic cuDNN kernels on CUDA (cudnn.deterministic, no benchmark autotuning);
    other CUDA kernels (scatter/index_add atomics) may still vary run to run. CPU runs are
    bit-for-bit deterministic either way."""
    stop_signals: list[str] = Field(default_factory=lambda: list(DEFAULT_STOP_SIGNALS))
    """Signals that stop training like Ctrl-C (SIGINT, always on): the current epoch finishes,
    a checkpoint is written and `heartgrid train` exits with status 3; the same command
    resumes. The defaults are the preemption warnings of Slurm, docker and systemd (SIGTERM,
    SIGUSR1) and a closed terminal (SIGHUP)."""
    stop_grace_s: float = Field(5.0, ge=0)
    """How long a stop waits for the current epoch to finish; past it the epoch is cut and the
    state from its start is saved (kept in memory only while epochs take over half this)."""

    @field_validator("stop_signals")
    @classmethod
    def _signals(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in CATCHABLE_STOP_SIGNALS]
        if unknown:
            raise ValueError(f"system.stop_signals: {unknown} cannot be used; choose from {list(CATCHABLE_STOP_SIGNALS)}")
        return value

    @model_validator(mode="after")
    def _one_step(self) -> SystemConfig:
        if self.native_step == "on" and self.compile:
            raise ValueError("system.native_step=on and system.compile=true choose two engine steps: "
                             "set one of them off")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError(f"system.device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return value


class LoggingConfig(Config):
    tensorboard: bool = True
    console: Literal["rich", "plain", "none"] = "rich"
    """Live terminal display; `plain` prints one line per log interval."""
    log_interval: int = Field(1, ge=1)
    """Epochs between metric records."""
    replay_interval: int = Field(0, ge=0)
    """Epochs between replays recorded while training (one episode of env 0 with the current
    policy, written to `runs/<run>/replays/`; docs/replays.md); 0 = none."""
    health_epochs: int = Field(150, ge=0)
    """Warn (console and log.txt) when updates have stalled or the critic has explained nothing
    for this many epochs (heartgrid/trainer/health.py); 0 turns the warnings off."""


class WandbConfig(Config):
    enabled: bool = False
    project: str = "heartgrid"
    entity: str | None = None
    mode: Literal["online", "offline"] = "offline"
    tags: list[str] = Field(default_factory=list)


class EvaluationConfig(Config):
    episodes: int = Field(8, ge=1)
    """`heartgrid eval` on a recipe's game: episodes to play."""
    num_envs: int = Field(8, ge=1)
    suite: str | None = None
    """Evaluate the policy while training on this suite (a name from `heartgrid suites`, or a
    suite file): every `interval` epochs and at the end, logged as `evaluator/<suite>/<sim>/*`
    and `overview/<category>_score`, appended to `runs/<run>/stats.duckdb`, and kept in the
    checkpoint manifest (`scores`)."""
    interval: int = Field(0, ge=0)
    """Epochs between evaluations while training; 0 = none (the CPU recipes' default)."""
    suite_episodes: int | None = Field(None, ge=1)
    """Episodes per simulation while training (None: each simulation's own)."""

    @model_validator(mode="after")
    def _suite_for_interval(self) -> EvaluationConfig:
        if self.interval and self.suite is None:
            raise ValueError("evaluation.interval needs evaluation.suite (see `heartgrid suites`)")
        return self


class DistributedConfig(Config):
    """Training on several processes with torch.distributed (docs/distributed.md): launched by
    `torchrun --nproc_per_node N -m heartgrid train ...` or `heartgrid train ... --nproc N`."""

    world_size: int = Field(1, ge=1)
    """Processes (ranks) that train together, filled in at launch from torchrun's WORLD_SIZE
    (1 without torchrun). A run resumes only with the world size it was trained with: every
    rank's engine, recurrent state and random generators are in its checkpoints."""
    sizes: Literal["per_rank"] = "per_rank"
    """What trainer.num_envs, batch_size, minibatch_size and micro_batch_size count: each
    rank's share (as in the reference system and PufferLib). The world steps num_envs x
    world_size envs and trains on batch_size x world_size agent steps per update, in
    minibatches of minibatch_size x world_size; trainer.total_timesteps and metric/agent_step
    count the whole world's agent steps. (The only choice, written out so that config.json says
    which.)"""
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    """torch.distributed backend: `auto` is nccl on GPUs, gloo on CPUs."""
    timeout_s: float = Field(1800.0, gt=0)
    """How long a rank waits for the others in one collective (the process group's timeout)
    before it gives up with an error: the bound on a hang when a rank stops answering. It
    must cover the longest time one rank works alone: rank 0's checkpoint writes and
    evaluations while training (evaluation.interval)."""


class RunConfig(Config):
    run: str = "default"
    """Run name; the run directory is `<data_dir>/<run>`."""
    data_dir: str = "runs"
    recipe: str = ""
    """The recipe this config was built from (informational)."""
    system: SystemConfig = Field(default_factory=SystemConfig)
    game: GameConfig = Field(default_factory=GameConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("run")
    @classmethod
    def _run_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", value):
            raise ValueError(f"run name {value!r} must be letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _rollout_fits(self) -> RunConfig:
        """A rollout pass fills one segment row per learner slot: the agents the trained policy
        plays (all of them, or game.policy_agents of each env when NPCs play the rest)."""
        t, game = self.trainer, self.game
        slots = t.num_envs * game.policy_agents
        segments = t.batch_size // t.bptt_horizon
        if t.batch_size % t.bptt_horizon or segments % slots:
            good = slots * t.bptt_horizon
            if game.policy_agents < game.num_agents:
                what = (f"learner slots (trainer.num_envs={t.num_envs} x the {game.policy_agents} of "
                        f"game.num_agents={game.num_agents} agents that game.policy_agents_pct="
                        f"{game.policy_agents_pct} leaves to the policy)")
            else:
                what = f"agent slots (trainer.num_envs={t.num_envs} x game.num_agents={game.num_agents})"
            raise ValueError(
                f"trainer.batch_size={t.batch_size} / trainer.bptt_horizon={t.bptt_horizon} "
                f"must be a multiple of the {slots} {what}; set trainer.batch_size to a multiple "
                f"of {good} (e.g. {good}) or change trainer.num_envs"
            )
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.data_dir) / self.run

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_json(Path(path).read_text())
