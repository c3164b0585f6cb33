"""The training loop: rollout → advantages → update → log, once per epoch.

    trainer = Trainer(config, checkpoints=CheckpointManager(run_dir))   # all state on the device
    trainer.train()                           # until trainer.total_timesteps or Ctrl-C

(`heartgrid.trainer.run.train` builds it with the run directory's logger and checkpoints.)

An epoch collects `batch_size` agent steps straight from the engine's device buffers into the
`[segments, bptt_horizon]` experience buffer, runs the PPO update (ppo.py) and, every
`log_interval` epochs and at the last one (done or stopped), logs one record of the metric
contract (metric_contract.py).

Checkpoints: every `checkpoint_interval` epochs, at the end and when stopped, `save_checkpoint()`
hands the policy and `state_dict()` (everything needed to continue exactly: optimizer, counters,
every random generator, the engine, the recurrent state, curriculum, timers, the last metrics
record) to the checkpoint manager.

Stopping (heartgrid/interrupts.py): Ctrl-C or one of `system.stop_signals` lets the epoch in
progress finish. Where epochs are long, a stop must not wait for one beyond
`system.stop_grace_s`: while epochs take over half that, the state at each epoch's start is
kept encoded in memory, and a stop that waits too long cuts the epoch (`EpochCut`) and saves
that state instead; the resumed run redoes the cut epoch exactly.

Several ranks (`world`, docs/distributed.md): each steps its share of the world's envs and
trains on its samples of the world's minibatches; the ranks agree once per epoch whether to
stop (an epoch is never cut), merge their statistics into rank 0's records, and hand their own
state (engine, recurrent state, generators) to rank 0's checkpoints.

NPCs (`game.policy_agents_pct` < 1, sides.py, docs/npcs.md): the policy steps, and the
experience holds, only the learner's slots; the NPCs act on the rest. Kickstarting
(`trainer.kickstart`, kickstart.py, docs/kickstart.md): a teacher acts on the learner's
observations in the rollouts whose update still uses it, and its logits and values join the
experience and the loss. Without either, nothing of them runs or is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from heartgrid.checkpoint import CheckpointManager, load_policy_with_source
from heartgrid.checkpoint.manager import EncodedCheckpoint
from heartgrid.checkpoint.policy_io import check_architecture
from heartgrid.config.run import RunConfig
from heartgrid.checkpoint.world import join_rank_states, split_rank_state
from heartgrid.curriculum import CurriculumDriver
from heartgrid.curriculum.driver import EnvShare
from heartgrid.devices import require_device
from heartgrid.engine.native import NATIVE_STEP
from heartgrid.policies import make_policy
from heartgrid.policies.base import State, reset_state
from heartgrid.policies.distribution import sample_actions
from heartgrid.rundir import STEP_KEY
from heartgrid.trainer import probes
from heartgrid.trainer.evaluator import SuiteEvaluator
from heartgrid.trainer.experience import Experience
from heartgrid.trainer.kickstart import Kickstarter
from heartgrid.interrupts import StopRequest
from heartgrid.trainer.distributed import DistributedPolicy, RowLayout, World, sample_world_actions
from heartgrid.trainer.optimizer import build_optimizer
from heartgrid.trainer.process import configure_torch, seed_everything
from heartgrid.trainer.ppo import ppo_update
from heartgrid.trainer.replays import record_training_replay, replay_due
from heartgrid.trainer.sampling import MinibatchSampler
from heartgrid.trainer.schedules import Schedules
from heartgrid.trainer.shards import WholeBatch, WorldShare
from heartgrid.trainer.sides import Sides
from heartgrid.trainer.stats import StatsAccumulator
from heartgrid.trainer.timing import PhaseTimer
from heartgrid.trainer.trainer_state import restore_trainer_state, trainer_state

class EpochCut(Exception):
    """A stop request waited longer than `system.stop_grace_s`: the epoch is abandoned."""


# The trainer's own generators (actions, minibatch order, NPCs' actions) start from distinct
# streams of the seed.
_ACTION_STREAM, _SAMPLER_STREAM, _NPC_STREAM = 1, 2, 3


class Trainer:
    def __init__(
        self,
        config: RunConfig,
        *,
        engine: Any = None,
        policy: nn.Module | None = None,
        curriculum: CurriculumDriver | None = None,
        on_log: Callable[[dict[str, float]], None] | None = None,
        on_checkpoint: Callable[[], None] | None = None,
        checkpoints: CheckpointManager | None = None,
        resuming: bool = False,
        stop: StopRequest | None = None,
        world: World | None = None,
    ):
        """`engine`, `policy` and `curriculum` default to those the config describes (tests
        may pass their own); `on_log` receives every metrics record; `on_checkpoint` runs before
        each checkpoint (the logger syncs the records it covers); `checkpoints` is the run's
        CheckpointManager, or None for no checkpoints (benchmarks). `resuming`: the
        weights will come from the run's own checkpoint, so `trainer.initial_policy` is not
        loaded again (its source may be gone by then). `stop`: a StopRequest the caller has
        already listened to signals with (a stop during start-up then trains no epoch). `world`:
        this process's rank among several (None: the only one); its checkpoints are rank 0's,
        the others' `checkpoints` only say that checkpoints are written."""
        self.config = config
        self.world = world
        t = config.trainer
        self.device = world.device if world is not None else torch.device(require_device(config.system.device))
        self.threads_note = configure_torch(config, self.device)
        """How many torch threads this process uses and why (logged when the run starts)."""
        seed = config.system.seed
        seed_everything(seed)

        first_env = 0 if world is None else world.rank * t.num_envs
        if engine is None:
            from heartgrid.engine.batched import BatchedEngine

            engine = BatchedEngine(config.game, t.num_envs, device=self.device, seed=seed,
                                   first_env=first_env, compile=config.system.compile,
                                   native=NATIVE_STEP[config.system.native_step])
        self.engine = engine
        self.policy = (policy if policy is not None else build_policy(config, engine, resuming)).to(self.device)
        self.optimizer = build_optimizer(self.policy, t.optimizer)
        self.schedules = Schedules(t)
        self.hyper = self.schedules.values(0)

        self.sides = self.make_sides(seed, checkpoints)
        """Which slots the policy plays; the NPCs on the others (none without NPCs)."""
        slots = self.sides.num_slots  # the learner's: every slot without NPCs
        self.kickstarter = (Kickstarter(t.kickstart, engine, slots, self.device)
                            if t.kickstart.teacher_uri is not None else None)
        self.teaching = False
        """Whether the teacher acted in this epoch's rollout (its update then uses it)."""
        self.segments = t.batch_size // t.bptt_horizon
        self.passes = self.segments // slots
        self.world_steps = self.segments * t.bptt_horizon * (1 if world is None else world.size)
        """Agent steps of the world per epoch: every rank collects as many."""
        self.state: State = self.policy.initial_state(slots, self.device)
        self.episode_starts = torch.zeros(slots, dtype=torch.bool, device=self.device)
        self.experience = Experience(
            self.segments, t.bptt_horizon, engine.obs_shape, self.state, self.device,
            step_states=t.minibatch_sampling == "transitions",
            teacher_actions=len(engine.action_space.names) if self.kickstarter is not None else None,
        )
        self.layout = None if world is None else RowLayout(world.rank, world.size, slots, t.bptt_horizon)
        self.sampler = MinibatchSampler(
            t, seed=seed * 1000 + _SAMPLER_STREAM, world_size=1 if world is None else world.size,
            gather_scores=None if world is None else lambda scores: self.layout.world_rows(world.gather_rows(scores)),
        )
        self.update_model: DistributedPolicy | None = None
        """The policy through DistributedDataParallel (several ranks), made before the first epoch."""
        self.world_stopping = False
        """Whether the ranks agreed to stop, at the end of the last epoch (several ranks)."""
        self.action_generator = torch.Generator(self.device).manual_seed(seed * 1000 + _ACTION_STREAM)
        self.bootstrap_truncations = config.game.time_limit == "truncate"

        self.stats = StatsAccumulator()
        self.timer = PhaseTimer(self.device)
        self.epoch = 0
        self.agent_step = 0
        self.epochs_since_log = 0
        self.steps_since_log = 0
        self.saved_epoch = 0  # the epoch of the last checkpoint (0: none needed yet)
        self.saved_agent_step = 0
        self.on_log = on_log
        self.on_checkpoint = on_checkpoint
        self.last_record: dict[str, float] = {}
        """The last metrics record: checkpointed, so a record cut from metrics.jsonl is restored."""
        self.checkpoints = checkpoints
        self.snapshot: EncodedCheckpoint | None = None
        """The state at the start of the epoch in progress, while epochs are long (see above)."""
        self.epoch_seconds = 0.0
        self.cut_epoch: int | None = None
        """The epoch that a late stop cut short (its work is lost; the resumed run redoes it)."""
        if curriculum is None:
            # Every rank runs the world's curriculum on the world's finished episodes; each
            # hands its own envs their tasks.
            envs = engine if world is None else EnvShare(engine, first_env, t.num_envs * world.size)
            curriculum = CurriculumDriver(config.curriculum, config.game, envs, seed)
        self.curriculum = curriculum
        """Sees every drained batch of finished episodes and assigns the envs' next tasks."""
        self.stop = stop if stop is not None else StopRequest()
        evaluates = config.evaluation.interval and (world is None or world.is_main)
        self.evaluator = SuiteEvaluator(config, self.device) if evaluates else None
        if self.evaluator is not None:
            self.evaluator.check(self.policy)
        self.scores: dict[str, float] = {}
        """The latest suite scores (`overview/*_score`), kept in the manifest of the checkpoint
        of the epoch they were measured at (`scores_epoch`) only: a later checkpoint holds
        another policy, which nobody scored."""
        self.scores_epoch = -1
        self.on_evaluation: Callable[[Any], None] | None = None
        """Receives each scorecard of evaluation while training (the run writes its stats.duckdb)."""
        self.engine.reset()

    def make_sides(self, seed: int, checkpoints: CheckpointManager | None) -> Sides:
        """The learner's slots and the NPCs (sides.py). Several ranks draw the NPCs' action noise
        as they draw the learner's, and wait for rank 0's checkpoint before a self-play draw."""
        world, game = self.world, self.config.game
        options: dict[str, Any] = {}
        if world is not None:
            options["sample"] = lambda logits, generator: sample_world_actions(logits, generator, world)
            options["before_draw"] = lambda: world.barrier("drawing the NPCs' checkpoint")
        return Sides(self.config, self.engine, self.device, generator_seed=seed * 1000 + _NPC_STREAM,
                     initial_policy=self.policy if game.npc_policy_uri == "self" else None,
                     run_dir=getattr(checkpoints, "run_dir", None), **options)

    # ---- the loop ------------------------------------------------------------------------

    def train(self) -> None:
        """Train until `trainer.total_timesteps` agent steps, or until stopped (Ctrl-C or a
        stop signal: the epoch in progress finishes, or is cut, then a checkpoint is written)."""
        self.timer.restart_window()
        with self.stop.on_signals(self.config.system.stop_signals):
            try:
                if self.world is not None:
                    self.agree_to_stop()
                while self.agent_step < self.config.trainer.total_timesteps and not self.stopping():
                    self.keep_snapshot()
                    started = time.monotonic()
                    self.train_epoch()
                    self.epoch_seconds = time.monotonic() - started
            except EpochCut:
                self.save_snapshot()
                return
            self.stop.announce()
            # Normally logged by the last epoch itself; here if a stop came after it decided not to.
            if self.epochs_since_log and self.epoch != self.saved_epoch:
                self.log()
        # Only here, between epochs, is the state consistent; an exception (or a second Ctrl-C)
        # in the middle of an epoch leaves the last periodic checkpoint as the one to resume.
        if self.epoch != self.saved_epoch:
            self.save_checkpoint()

    def stopping(self) -> bool:
        """Whether to stop after this epoch: asked by a signal here, or agreed by the ranks."""
        return self.stop.requested if self.world is None else self.world_stopping

    def agree_to_stop(self) -> None:
        """Several ranks stop after the same epoch: one all-reduce of the stop flag per epoch.
        A rank that heard no signal itself stops for the others."""
        self.world_stopping = self.world.any(self.stop.requested)
        if self.world_stopping and not self.stop.requested:
            self.stop.request("a stop signal to another rank")

    def check_stop(self) -> None:
        """Cut the epoch when a stop request has waited longer than `system.stop_grace_s`
        and there is a consistent state to save instead (or nothing newer than the last
        checkpoint would be lost). Called between rollout steps and between minibatches.
        Ranks do not cut epochs: they would have to agree at every step."""
        if not self.stop.requested:
            return
        self.stop.announce()
        if self.world is None and self.stop.past(self.config.system.stop_grace_s) and (
                self.snapshot is not None or self.epoch == self.saved_epoch):
            self.cut_epoch = self.epoch + 1
            raise EpochCut

    def keep_snapshot(self) -> None:
        """Keep the state at the start of this epoch while epochs take over half the grace time
        (encoding it costs about 1-2% of a short epoch, so short epochs never do)."""
        self.snapshot = None
        grace = self.config.system.stop_grace_s
        if (self.world is None and self.checkpoints is not None and self.epoch != self.saved_epoch
                and self.epoch_seconds > grace / 2):
            self.snapshot = self.checkpoints.encode(self.epoch, self.agent_step, self.policy, self.state_dict(),
                                                    self.scores_now())

    def save_snapshot(self) -> None:
        if self.snapshot is not None:
            if self.on_checkpoint is not None:
                self.on_checkpoint()
            self.checkpoints.write(self.snapshot)
            self.saved_epoch, self.saved_agent_step = self.snapshot.epoch, self.snapshot.agent_step

    def train_epoch(self) -> dict[str, float] | None:
        """One rollout and one update; returns the metrics record when this epoch logs one."""
        if self.world is not None and self.update_model is None:
            # Before the first rollout: every rank takes rank 0's weights (resumed, or loaded
            # from trainer.initial_policy) as DistributedDataParallel starts.
            self.update_model = DistributedPolicy(self.policy, self.world)
        self.sides.refresh(self.epoch)
        self.rollout()
        self.hyper = self.schedules.values(self.agent_step)
        kickstart = self.kickstarter.coefficients(self.agent_step) if self.teaching else None
        with self.timer.phase("update"):
            ppo_update(
                self.policy, self.optimizer, self.experience, self.sampler, self.config.trainer,
                self.hyper, self.agent_step / self.config.trainer.total_timesteps, self.stats,
                check_stop=self.check_stop, shard=self.shard(), kickstart=kickstart,
            )
        self.epoch += 1
        self.epochs_since_log += 1
        if self.world is not None:
            self.agree_to_stop()
        # The last epoch (training done, or stopped) also logs a partial window.
        last = self.agent_step >= self.config.trainer.total_timesteps or self.stopping()
        # Not when stopping: the time before a scheduler's kill is for the checkpoint.
        if self.evaluator is not None and not self.stopping() and self.evaluator.due(self.epoch, last):
            self.evaluate()
        # A replay of the current policy (logging.replay_interval, docs/replays.md): by the run's
        # writer only (rank 0 owns the run directory), not while stopping, outside the timed phases.
        writer = self.checkpoints is not None and (self.world is None or self.world.rank == 0)
        if writer and not self.stopping() and replay_due(self.config, self.epoch):
            with self.timer.paused():
                record_training_replay(self.config, self.policy, epoch=self.epoch,
                                       agent_step=self.agent_step, run_dir=self.checkpoints.run_dir,
                                       npcs=self.sides.npcs)
        record = None
        if self.epoch % self.config.logging.log_interval == 0 or last:
            record = self.log()
        if self.checkpoints is not None and self.epoch % self.config.trainer.checkpoint_interval == 0:
            self.save_checkpoint()
        return record

    def shard(self) -> WholeBatch:
        """What this process trains on of each minibatch (shards.py)."""
        if self.world is None:
            return WholeBatch(self.policy)
        return WorldShare(self.world, self.layout, self.update_model)

    @torch.no_grad()
    def rollout(self) -> None:
        """Fill the experience buffer: `passes` × every learner slot × bptt_horizon engine steps."""
        t, engine, experience, timer, sides = self.config.trainer, self.engine, self.experience, self.timer, self.sides
        slots = sides.num_slots
        kickstarter = self.kickstarter
        # The teacher acts only for an update that uses it (its scale at the rollout's end).
        self.teaching = kickstarter is not None and kickstarter.scale(self.agent_step + self.world_steps) > 0
        if t.recurrent_state == "reset":
            self.state = self.policy.initial_state(slots, self.device)
            sides.reset_memory()
            if kickstarter is not None:
                kickstarter.reset_memory()
        if self.bootstrap_truncations:
            experience.bootstraps.zero_()
        probes.tap("world", engine=engine)
        for rollout_pass in range(self.passes):
            rows = experience.rows(rollout_pass, slots)
            experience.store_start_state(rows, self.state)
            for step in range(t.bptt_horizon):
                self.check_stop()
                obs = sides.observe(engine.obs)
                experience.obs[rows, step] = obs
                experience.episode_starts[rows, step] = self.episode_starts
                if experience.step_state is not None:
                    experience.store_step_state(rows, step, self.state)
                with timer.phase("forward"):
                    logits, values, self.state = self.policy(obs, self.state)
                    if self.world is None:
                        actions, logprobs = sample_actions(logits, self.action_generator)
                    else:
                        actions, logprobs = sample_world_actions(logits, self.action_generator, self.world)
                    if self.teaching:
                        teacher_logits, teacher_values = kickstarter.teacher.act(obs, self.episode_starts)
                        experience.teacher_logits[rows, step] = teacher_logits
                        experience.teacher_values[rows, step] = teacher_values
                    every_action = sides.actions(actions, engine.obs)
                with timer.phase("env"):
                    engine.step(every_action)
                if self.bootstrap_truncations:
                    with timer.phase("forward"):
                        self.store_truncation_bootstrap(experience.bootstraps[rows, step])
                every_done = engine.terminals | engine.truncations
                sides.stepped(every_done)
                dones = sides.mine(every_done)
                experience.actions[rows, step] = actions
                experience.logprobs[rows, step] = logprobs
                experience.values[rows, step] = values
                experience.rewards[rows, step] = sides.mine(engine.rewards)
                experience.dones[rows, step] = dones
                experience.truncateds[rows, step] = sides.mine(engine.truncations)
                # The next observation of a done slot is the first of a new episode.
                self.state = reset_state(self.state, dones)
                self.episode_starts = dones
            with timer.phase("forward"):
                _, next_values, _ = self.policy(sides.observe(engine.obs), self.state)
                experience.next_values[rows] = next_values
        self.agent_step += self.world_steps
        self.steps_since_log += self.world_steps
        with timer.phase("stats"):
            # Before the bootstraps join the rewards: experience/rewards is the environment's.
            probes.tap("rollout", experience=experience, slots=slots, bootstraps=self.bootstrap_truncations)
            self.stats.add_dict(experience.summary(), prefix="experience/")
            self.record_episodes(engine.drain_episodes())
            if probes.active():  # a state_dict per epoch is not free: only for a fingerprint
                probes.tap("curriculum", state=self.curriculum.state_dict())
        if self.bootstrap_truncations:
            experience.rewards += experience.bootstraps

    def store_truncation_bootstrap(self, bootstraps: torch.Tensor) -> None:
        """A truncated episode would have gone on: γ·V(final observation) of each slot that
        truncated this step goes to `bootstraps` [slots], evaluated with the slot's recurrent
        state after this step (before it is reset). It joins the step's reward after the rollout.

        The engine says on the host which envs truncated, so the common step (none did) never
        waits for the device."""
        envs = self.engine.truncated_envs
        if len(envs) == 0:
            return
        slots, rows = self.sides.truncated(envs)  # the same without NPCs
        state = tuple(s[rows] for s in self.state)
        _, final_values, _ = self.policy(self.engine.final_obs[slots], state)
        bootstraps.index_copy_(0, rows, self.config.trainer.gamma * final_values)

    def record_episodes(self, episodes: Any) -> None:
        """Episode statistics of the finished episodes. `overview/reward` comes from the episodes
        themselves, whatever the curriculum does (dehydration investigation §3). With several
        ranks the statistics are this rank's (merged when logged) and the curriculum sees the
        world's episodes (every rank, every rollout, even with none of its own)."""
        world_episodes = episodes
        if self.world is not None:
            world_episodes = self.world.episodes(episodes, self.world.rank * self.config.trainer.num_envs,
                                                 self.config.trainer.num_envs)
        if len(episodes.rewards):
            probes.tap("episodes", episodes=episodes)
            self.stats.add("overview/reward", episodes.rewards)
            self.stats.add("experience/ep_lengths", episodes.lengths)
            self.stats.add_dict(episodes.agent_stats, prefix="env_agent/")
            self.stats.add_dict(episodes.game_stats, prefix="env_game/")
        self.sides.record(self.stats, episodes)
        if len(world_episodes.rewards):
            self.curriculum.on_episodes(world_episodes)

    def evaluate(self) -> None:
        """Score the policy on the evaluation suite; the numbers join the next record. Its wall
        time is left out of the training time and SPS."""
        with self.timer.paused():
            card, metrics = self.evaluator.evaluate(self.policy, self.epoch, self.agent_step)
            if self.on_evaluation is not None:
                self.on_evaluation(card)
        for name, value in metrics.items():
            self.stats.add(name, value)
        self.scores = {k: v for k, v in metrics.items() if k.startswith("overview/")}
        self.scores_epoch = self.epoch

    # ---- logging ---------------------------------------------------------------------------

    def log(self) -> dict[str, float]:
        with self.timer.phase("stats"):
            stats = self.stats if self.world is None else self.world.merged_stats(self.stats)
            record = stats.means()
            self.stats.clear()
            record.update(self.curriculum.metrics())
        wall = self.timer.close_window()
        record.update(self.timer.window_metrics(self.epochs_since_log))
        record.update({f"parameters/{name}": value for name, value in self.hyper.items()})
        if self.kickstarter is not None:
            record.update(self.kickstarter.parameters(self.agent_step))
        record.update({
            STEP_KEY: self.agent_step,
            "metric/epoch": self.epoch,
            "metric/total_time": self.timer.total_seconds,
            "overview/sps": self.steps_since_log / wall,
            "overview/epoch_time_s": wall / self.epochs_since_log,
            # Not in config.json when chosen from the machine's load, yet it changes float sums:
            # compare and regress note runs that trained with different counts.
            "timing/torch_threads": torch.get_num_threads(),
        })
        self.epochs_since_log = 0
        self.steps_since_log = 0
        self.last_record = record
        probes.tap("metrics", record=record)
        if self.on_log is not None:
            self.on_log(record)
        return record

    # ---- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        """Hand the policy and the trainer state to the checkpoint manager (if any). Several
        ranks: each hands its own part of the state to rank 0, which writes the checkpoint."""
        if self.checkpoints is None:
            return
        if self.world is not None:
            self.save_world_checkpoint()
            return
        if self.on_checkpoint is not None:
            self.on_checkpoint()
        self.checkpoints.save(self.epoch, self.agent_step, self.policy, self.state_dict(), self.scores_now())
        self.saved_epoch, self.saved_agent_step = self.epoch, self.agent_step

    def save_world_checkpoint(self) -> None:
        shared, own = split_rank_state(self.state_dict())
        ranks = self.world.gather_object(own, "gathering the ranks' state for a checkpoint")
        if ranks is not None:  # rank 0
            if self.on_checkpoint is not None:
                self.on_checkpoint()
            state = join_rank_states(shared, ranks)
            self.checkpoints.save(self.epoch, self.agent_step, self.policy, state, self.scores_now())
        self.saved_epoch, self.saved_agent_step = self.epoch, self.agent_step

    def scores_now(self) -> dict[str, float]:
        """The scores that describe the policy of this epoch (none when it was not evaluated)."""
        return self.scores if self.scores_epoch == self.epoch else {}

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the policy weights that an exact resume needs (trainer_state.py)."""
        return trainer_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_trainer_state(self, state)


def build_policy(config: RunConfig, engine: Any, resuming: bool = False) -> nn.Module:
    """A new policy of `config.policy`, or the one `trainer.initial_policy` names (its weights,
    re-bound by name to this engine's features and actions; new features are learned). The
    initial policy must be of the architecture the config names: a run's config.json must
    describe the network it trains."""
    names = engine.action_space.names
    if config.trainer.initial_policy is None or resuming:
        return make_policy(config.policy, engine.features, names, engine.obs_shape)
    policy, source = load_policy_with_source(config.trainer.initial_policy)
    wanted = {"name": config.policy.name, "config": config.policy.model_dump(mode="json")}
    check_architecture(policy.spec(), wanted, source)
    policy.adapt(engine.features, names, learn_new_features=True)
    return policy
