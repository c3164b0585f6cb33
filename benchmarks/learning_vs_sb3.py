"""Standing learning benchmark: HeartGrid's trainer against Stable-Baselines3 PPO, same game.

    .venv/bin/pip install -e '.[bench]'          # stable-baselines3 (optional dependency)
    python benchmarks/learning_vs_sb3.py --steps 3000000 --seeds 3 --jobs 2

Both sides play the default recipe's base game (`arena_basic_easy_shaped` with
`curriculum.tasks={"kind": "single"}`): 8 envs x 24 agents on one `BatchedEngine`, on the CPU,
one torch thread per job.

- HeartGrid: `heartgrid.trainer.Trainer` with the recipe's CPU trainer config and the default
  policy. `--override key=value` changes the config: `game.*` and `trainer.*` for both sides
  (SB3 reads its hyperparameters from the same trainer config), `policy.*` for HeartGrid's
  (e.g. `policy.name=fast` for the reference policy).
- SB3 PPO: each agent slot of the same engine is one SB3 env (`SlotVecEnv`), with the same
  hyperparameters (rollout 32 steps x 192 slots = 6,144, minibatch 2,048, 1 epoch, lr 4.57e-4,
  Adam eps 1e-12, clip 0.1, value clip 0.1, gamma 0.977, lambda 0.916, ent 0.0021, vf 0.44,
  grad norm 0.5) and the `fast` layer sizes without the LSTM: conv 64 k5 s3, conv 64 k3,
  linear 128, linear 128, then actor 512 and critic 1024 (ReLU), plain linear output layers.
  Time-limit ends bootstrap in both (SB3 through `TimeLimit.truncated`).

Prints hearts per agent per episode and reward per episode, episodes pooled over seeds, in
windows ending at each reported step; then per side over the last third of training: hearts
(mean ± standard error over seeds), the share of episodes with a heart, approx_kl, clip
fraction, explained variance, entropy and agent-steps/s. `--json FILE` writes everything.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context

import numpy as np
import torch

BASE_RECIPE = "arena_basic_easy_shaped"
BASE_OVERRIDES = ['curriculum.tasks={"kind": "single"}', "system.device=cpu", "system.torch_threads=1",
                  "logging.console=none", "logging.tensorboard=false"]
DIAGNOSTICS = ("approx_kl", "clipfrac", "explained_variance", "entropy")
# Trainer settings the SB3 side reads (its PPO has no counterpart for the others: Muon,
# schedules, target-KL stops, V-trace, other advantage normalisations or samplers...).
SB3_MIRRORS = ("num_envs", "batch_size", "minibatch_size", "bptt_horizon", "update_epochs",
               "optimizer.learning_rate", "optimizer.beta1", "optimizer.beta2", "optimizer.eps",
               "gamma", "gae_lambda", "clip_coef", "vf_clip_coef", "vf_coef", "ent_coef",
               "max_grad_norm", "total_timesteps", "checkpoint_interval", "keep_last_n")


@dataclass
class SideResult:
    side: str
    seed: int
    episodes: list[tuple[int, float, float]] = field(default_factory=list)
    """(agent step at which the episode was seen, hearts per agent, reward per agent)."""
    diagnostics: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    """(agent step, {approx_kl, clipfrac, explained_variance, entropy}) per update."""
    seconds: float = 0.0
    steps: int = 0


def base_config(steps: int, seed: int, overrides: list[str]):
    from heartgrid.recipes import build_config

    return build_config(BASE_RECIPE, [*BASE_OVERRIDES, f"trainer.total_timesteps={steps}",
                                      f"system.seed={seed}", *overrides])


# ---- HeartGrid --------------------------------------------------------------------------------

def run_heartgrid(steps: int, seed: int, overrides: list[str]) -> SideResult:
    from heartgrid.trainer.trainer import Trainer

    torch.set_num_threads(1)
    config = base_config(steps, seed, overrides)
    result = SideResult("heartgrid", seed)

    def on_log(record: dict[str, float]) -> None:
        step = int(record["metric/agent_step"])
        result.diagnostics.append((step, {name: float(record.get(f"losses/{name}", math.nan))
                                          for name in DIAGNOSTICS}))

    trainer = Trainer(config, on_log=on_log)
    record_episodes = trainer.record_episodes

    def record(episodes) -> None:  # sees every drained batch of finished episodes
        for hearts, reward in zip(episodes.agent_stats["heart.get"].tolist(), episodes.rewards.tolist()):
            result.episodes.append((trainer.agent_step, hearts, reward))
        record_episodes(episodes)

    trainer.record_episodes = record
    start = time.perf_counter()
    trainer.train()
    result.seconds, result.steps = time.perf_counter() - start, trainer.agent_step
    return result


# ---- Stable-Baselines3 ------------------------------------------------------------------------

def make_slot_vec_env(config, seed: int, result: SideResult):
    """An SB3 VecEnv whose envs are the agent slots of one BatchedEngine."""
    import gymnasium
    from stable_baselines3.common.vec_env import VecEnv

    from heartgrid.engine.batched import BatchedEngine

    class SlotVecEnv(VecEnv):
        def __init__(self):
            self.engine = BatchedEngine(config.game, config.trainer.num_envs, device="cpu", seed=seed)
            self.engine.reset()
            self.render_mode = None
            obs_space = gymnasium.spaces.Box(0.0, 255.0, self.engine.obs_shape, dtype=np.float32)
            super().__init__(self.engine.num_slots, obs_space,
                             gymnasium.spaces.Discrete(len(self.engine.action_space)))
            self.actions = None
            self.agent_step = 0

        def reset(self):
            return self.engine.obs.numpy().astype(np.float32)

        def step_async(self, actions):
            self.actions = torch.as_tensor(actions, dtype=torch.int64)

        def step_wait(self):
            engine = self.engine
            engine.step(self.actions)
            self.agent_step += self.num_envs
            obs = engine.obs.numpy().astype(np.float32)
            truncations = engine.truncations.numpy()
            dones = engine.terminals.numpy() | truncations
            infos = [{} for _ in range(self.num_envs)]
            for slot in np.flatnonzero(dones):
                infos[slot] = {"terminal_observation": engine.final_obs[slot].numpy().astype(np.float32),
                               "TimeLimit.truncated": bool(truncations[slot])}
            episodes = engine.drain_episodes()
            for hearts, reward in zip(episodes.agent_stats["heart.get"].tolist(), episodes.rewards.tolist()):
                result.episodes.append((self.agent_step, hearts, reward))
            return obs, engine.rewards.numpy().copy(), dones, infos

        def close(self):
            """Nothing to release: the engine is plain tensors."""

        def get_attr(self, attr_name, indices=None):
            return [getattr(self, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name, value, indices=None):
            setattr(self, attr_name, value)

        def env_method(self, method_name, *args, indices=None, **kwargs):
            # PPO.learn never calls it; the envs are slots of one engine, with no methods apart.
            raise AttributeError(f"SlotVecEnv has no per-env method {method_name!r}")

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(self._get_indices(indices))

        def seed(self, seed=None):
            return [None] * self.num_envs

    return SlotVecEnv()


def run_sb3(steps: int, seed: int, overrides: list[str]) -> SideResult:
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import KVWriter, Logger
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    torch.set_num_threads(1)
    config = base_config(steps, seed, overrides)  # the game and trainer settings both sides share
    t = config.trainer
    result = SideResult("sb3", seed)
    env = make_slot_vec_env(config, seed, result)
    scale = torch.tensor([1.0 / f.normalization for f in env.engine.features], dtype=torch.float32)

    class FastEncoder(BaseFeaturesExtractor):
        """`fast`'s encoder: the same feature normalisation, conv and linear sizes."""

        def __init__(self, observation_space):
            super().__init__(observation_space, features_dim=config.policy.hidden_size)
            from heartgrid.policies.fast import CHANNELS, CONV1_STRIDE, conv_geometry

            features, height, width = observation_space.shape
            k1, k2, out2 = conv_geometry(height, width)
            hidden = config.policy.hidden_size
            self.net = nn.Sequential(
                nn.Conv2d(features, CHANNELS, k1, stride=CONV1_STRIDE), nn.ReLU(),
                nn.Conv2d(CHANNELS, CHANNELS, k2), nn.ReLU(), nn.Flatten(),
                nn.Linear(CHANNELS * out2[0] * out2[1], hidden), nn.ReLU(),
                nn.Linear(hidden, hidden), nn.ReLU(),
            )

        def forward(self, obs):
            return self.net(obs * scale.view(1, -1, 1, 1))

    class Diagnostics(KVWriter):
        """SB3 writes an update's train/* values when the next rollout is done (and the last
        one only at the dump after `learn`): each record is numbered by its update."""

        def write(self, key_values, key_excluded, step=0):
            if "train/approx_kl" in key_values:
                update = len(result.diagnostics) + 1
                result.diagnostics.append((update * t.batch_size, {  # NumPy scalars → floats
                    "approx_kl": float(key_values["train/approx_kl"]),
                    "clipfrac": float(key_values["train/clip_fraction"]),
                    "explained_variance": float(key_values["train/explained_variance"]),
                    "entropy": -float(key_values["train/entropy_loss"]),
                }))

    model = PPO(
        "CnnPolicy", env, n_steps=t.batch_size // env.num_envs, batch_size=t.minibatch_size, n_epochs=t.update_epochs,
        learning_rate=t.optimizer.learning_rate, gamma=t.gamma, gae_lambda=t.gae_lambda,
        clip_range=t.clip_coef, clip_range_vf=t.vf_clip_coef, ent_coef=t.ent_coef, vf_coef=t.vf_coef,
        max_grad_norm=t.max_grad_norm, seed=seed, device="cpu", verbose=0,
        policy_kwargs=dict(
            features_extractor_class=FastEncoder, normalize_images=False, share_features_extractor=True,
            net_arch=dict(pi=[512], vf=[1024]), activation_fn=nn.ReLU,
            optimizer_kwargs=dict(eps=t.optimizer.eps, betas=(t.optimizer.beta1, t.optimizer.beta2)),
        ),
    )
    model.set_logger(Logger(folder=None, output_formats=[Diagnostics()]))
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    result.seconds, result.steps = time.perf_counter() - start, env.agent_step
    model.logger.dump()  # the last update's values
    return result


# ---- the table --------------------------------------------------------------------------------

def run_job(job: tuple[str, int, int, list[str]]) -> SideResult:
    side, steps, seed, overrides = job
    return (run_heartgrid if side == "heartgrid" else run_sb3)(steps, seed, overrides)


def window_mean(results: list[SideResult], low: int, high: int, index: int) -> tuple[float, int]:
    values = [e[index] for r in results for e in r.episodes if low < e[0] <= high]
    return (float(np.mean(values)) if values else math.nan), len(values)


def summarize(results: list[SideResult], steps: int) -> dict:
    low = steps * 2 // 3
    per_seed = [np.mean([e[1] for e in r.episodes if e[0] > low] or [math.nan]) for r in results]
    pooled = [e[1] for r in results for e in r.episodes if e[0] > low]
    diags = {name: float(np.nanmean([d[name] for r in results for s, d in r.diagnostics if s > low]))
             for name in DIAGNOSTICS}
    return {
        "hearts_last_third": float(np.mean(per_seed)),
        "hearts_last_third_se": float(np.std(per_seed, ddof=1) / math.sqrt(len(per_seed)))
        if len(per_seed) > 1 else math.nan,
        "share_with_heart": float(np.mean([h > 0 for h in pooled])) if pooled else math.nan,
        "sps": float(np.mean([r.steps / r.seconds for r in results])),
        **diags,
    }


def print_table(by_side: dict[str, list[SideResult]], steps: int, window: int) -> dict:
    sides = list(by_side)
    ends = list(range(window, steps + 1, window))
    print(f"\nhearts per agent per episode | reward per agent per episode, episodes pooled over "
          f"seeds, in ({window:,} steps before, step]")
    print(f"{'agent steps':>12}  " + "  ".join(f"{s + ' hearts':>16} {s + ' reward':>14}" for s in sides))
    table = []
    for end in ends:
        row = {"step": end}
        cells = []
        for side in sides:
            hearts, n = window_mean(by_side[side], end - window, end, 1)
            reward, _ = window_mean(by_side[side], end - window, end, 2)
            row[side] = {"hearts": hearts, "reward": reward, "episodes": n}
            cells.append(f"{hearts:>16.3f} {reward:>14.3f}")
        table.append(row)
        print(f"{end:>12,}  " + "  ".join(cells))
    summary = {side: summarize(results, steps) for side, results in by_side.items()}
    print(f"\nlast third of training ({steps * 2 // 3:,}-{steps:,} steps), mean over seeds ± s.e.:")
    print(f"{'side':>10} {'hearts':>16} {'share w/ heart':>15} {'approx_kl':>10} {'clipfrac':>9} "
          f"{'expl. var':>9} {'entropy':>8} {'agent-steps/s':>14}")
    for side, s in summary.items():
        se = "n/a" if math.isnan(s["hearts_last_third_se"]) else f"{s['hearts_last_third_se']:.3f}"
        print(f"{side:>10} {s['hearts_last_third']:>8.3f} ± {se:<5} "
              f"{s['share_with_heart']:>15.0%} {s['approx_kl']:>10.2e} {s['clipfrac']:>9.4f} "
              f"{s['explained_variance']:>9.3f} {s['entropy']:>8.3f} {s['sps']:>14,.0f}")
    return {"windows": table, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3_000_000, help="agent steps per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--window", type=int, default=500_000, help="agent steps per table row")
    parser.add_argument("--sides", default="heartgrid,sb3", help="comma-separated: heartgrid, sb3")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (repeatable): game.* and trainer.* apply to both "
                             "sides, policy.* to HeartGrid's")
    parser.add_argument("--json", help="write the table and every run's episodes here")
    args = parser.parse_args(argv)
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not sides or set(sides) - {"heartgrid", "sb3"} or args.seeds < 1 or args.steps < 1:
        parser.error("--sides takes heartgrid and/or sb3; --seeds and --steps must be positive")
    if "sb3" in sides:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print("stable-baselines3 is not installed: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
            return 2
    try:  # a bad override fails here, before any training
        config = base_config(args.steps, 0, args.override)
    except ValueError as error:  # OverrideError and pydantic's ValidationError are ValueErrors
        print(f"learning_vs_sb3: {error}", file=sys.stderr)
        return 2
    if "sb3" in sides:
        from heartgrid.config.diff import diff_configs

        changed = [path for path, _, _ in diff_configs(base_config(args.steps, 0, []).trainer, config.trainer)
                   if path not in SB3_MIRRORS]
        if changed:
            print(f"learning_vs_sb3: the SB3 side cannot mirror trainer.{', trainer.'.join(changed)}; "
                  "run HeartGrid alone with --sides heartgrid", file=sys.stderr)
            return 2
    jobs = [(side, args.steps, seed, args.override) for seed in range(args.seeds) for side in sides]
    print(f"{len(jobs)} runs of {args.steps:,} agent steps ({', '.join(sides)}; seeds 0..{args.seeds - 1}), "
          f"{args.jobs} at a time", flush=True)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(run_job, jobs))
    by_side = {side: [r for r in results if r.side == side] for side in sides}
    report = print_table(by_side, args.steps, args.window)
    if args.json:
        report["runs"] = [asdict(r) for r in results]
        report["args"] = vars(args)
        with open(args.json, "w") as f:
            json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
