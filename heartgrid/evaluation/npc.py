"""NPCs: the agents of an env that the policy being trained or evaluated does not play.

`game.policy_agents_pct` leaves agents `game.policy_agents ..` of every env to the NPC policy
named by `game.npc_policy_uri` (config/game.py):

    scripted:random | scripted:noop | scripted:greedy      built-in (policies/scripted.py)
    a policy URI                                           one fixed checkpoint
    a run directory (runs/x)                               its checkpoints, drawn again every
                                                           npc_refresh_epochs: the latest, or
                                                           uniformly over the last npc_last_k
    self                                                   the same, over this run's own
                                                           checkpoints (self-play); until the
                                                           first one exists, the initial policy

Draws are a counter-based hash of (seed, draw number), so a resumed run draws the same
checkpoints without keeping a generator's state. The trainer and the evaluator sample the
NPCs' actions from their logits with their own seeded generator, like the learner's.

`every` (the trainer, for `self`): only checkpoints whose epoch is a multiple of it are drawn,
i.e. the periodic ones (trainer.checkpoint_interval). A checkpoint written when a run is
stopped is not, so a stopped and resumed run plays the opponents of an uninterrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.checkpoint.manifest import POLICY_FILES, read_manifest, valid_checkpoints
from heartgrid.checkpoint.policy_io import load_policy_with_source
from heartgrid.checkpoint.uri import resolve_policy_uri, uri_to_path
from heartgrid.config.game import GameConfig
from heartgrid.engine.rng import hash32
from heartgrid.errors import UsageError
from heartgrid.policies.base import reset_state
from heartgrid.policies.distribution import sample_actions
from heartgrid.policies.scripted import SCRIPTED_POLICIES, make_scripted_policy
from heartgrid.rundir import CHECKPOINTS_DIR

SCRIPTED = "scripted:"
SELF = "self"
STREAM_NPC_DRAW = 0x4E5043  # "NPC": the hash stream of checkpoint draws

Sampler = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor]]
"""(logits, generator) -> (actions, logprobs): `sample_actions`, or the trainer's draw of a
rank's rows of the world's batch (several ranks)."""


def npc_slots(game: GameConfig, num_envs: int, device: torch.device | str) -> Tensor:
    """bool [num_envs * num_agents]: the slots the NPC policy plays."""
    agent = torch.arange(num_envs * game.num_agents, device=device) % game.num_agents
    return agent >= game.policy_agents


def npc_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot name NPCs outside training (None: it can, as far as can be told before
    playing): what NpcPlayers would refuse at its start, found early (a suite is checked when
    it is loaded, not at its first NPC simulation)."""
    if uri == SELF:
        return ("self plays a training run's own checkpoints; outside training name a run "
                "directory, a checkpoint or a scripted policy")
    if uri.startswith(SCRIPTED):
        name = uri[len(SCRIPTED):]
        if name not in SCRIPTED_POLICIES:
            return f"unknown scripted policy {name!r}; choose from {[SCRIPTED + n for n in SCRIPTED_POLICIES]}"
        return None
    if NpcPlayers._names_a_run(uri):
        return None  # its checkpoints are drawn when it plays
    try:
        resolve_policy_uri(uri)
    except CheckpointError as e:
        return str(e)
    return None


class NpcPlayers:
    """The NPC side of a batch of envs: which slots, who plays them, their recurrent state."""

    def __init__(self, game: GameConfig, num_envs: int, features: Any, action_names: list[str],
                 device: torch.device, *, seed: int = 0, own_run_dir: Path | None = None,
                 initial_policy: nn.Module | None = None, every: int | None = None):
        if game.npc_policy_uri is None:
            raise ValueError("NpcPlayers needs game.npc_policy_uri")
        self.game, self.features, self.action_names = game, features, list(action_names)
        self.device, self.seed = device, seed
        self.mask = npc_slots(game, num_envs, device)
        self.slots = self.mask.nonzero().view(-1)
        self.uri = game.npc_policy_uri
        self.draws = 0
        self.checkpoint: Path | None = None
        self.checkpoint_epoch: int | None = None
        """The epoch of the checkpoint played (None: scripted, or the initial policy)."""
        self.run_dir: Path | None = None
        self.every = every
        if self.uri == SELF:
            if own_run_dir is None:
                raise UsageError(f"game.npc_policy_uri=self: {npc_uri_problem(SELF)}")
            self.run_dir = Path(own_run_dir)
        elif not self.uri.startswith(SCRIPTED) and self._names_a_run(self.uri):
            self.run_dir = uri_to_path(self.uri)
        self.initial = copy.deepcopy(initial_policy) if initial_policy is not None else None
        self.module = self._first_module()
        self.state = self.module.initial_state(len(self.slots), device)

    @staticmethod
    def _names_a_run(uri: str) -> bool:
        """A plain run directory (not one checkpoint, not `?best=`): sampled over time."""
        if "?" in uri:
            return False
        path = uri_to_path(uri)
        return (path / CHECKPOINTS_DIR).is_dir()

    @property
    def periodic(self) -> bool:
        return self.run_dir is not None

    def label(self) -> str:
        if self.checkpoint is not None:
            return f"{self.uri} ({self.checkpoint.name})"
        return f"{self.uri} (initial policy)" if self.initial is not None and self.periodic else self.uri

    def replay_meta(self) -> dict[str, Any]:
        """What a replay's meta says about the NPCs (docs/replays.md): who plays which agents."""
        agents = list(range(self.game.policy_agents, self.game.num_agents))
        return {"npc_policy": self.label(), "npc_agents": agents}

    def for_envs(self, num_envs: int) -> NpcPlayers:
        """The same NPCs, playing the checkpoint drawn now, for another batch of `num_envs`
        envs with a recurrent state of their own (a replay of what training plays). Draws
        nothing and leaves this one as it was."""
        other = copy.copy(self)
        other.mask = npc_slots(self.game, num_envs, self.device)
        other.slots = other.mask.nonzero().view(-1)
        other.state = self.module.initial_state(len(other.slots), self.device)
        return other

    # ---- who plays ---------------------------------------------------------------------------

    def _bind(self, module: nn.Module) -> nn.Module:
        try:
            module.adapt(self.features, self.action_names)
        except ValueError as e:  # another game's features or actions
            raise UsageError(f"game.npc_policy_uri={self.uri}: {e}") from None
        module = module.to(self.device).eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        return module

    def _first_module(self) -> nn.Module:
        if self.uri.startswith(SCRIPTED):
            problem = npc_uri_problem(self.uri)
            if problem:
                raise UsageError(f"game.npc_policy_uri={self.uri}: {problem}")
            name = self.uri[len(SCRIPTED):]
            return make_scripted_policy(name, self.features, self.action_names).to(self.device)
        if self.periodic:
            drawn = self._draw()
            if drawn is None:
                if self.initial is None:
                    raise UsageError(f"game.npc_policy_uri={self.uri}: {self.run_dir} has no "
                                     "intact checkpoint to play")
                return self._play_initial()
            return self._load(drawn)
        return self._load(self.uri)

    def _load(self, where: str | Path) -> nn.Module:
        try:
            checkpoint = resolve_policy_uri(where)
            module, _ = load_policy_with_source(checkpoint)
            epoch = read_manifest(checkpoint).epoch if self.periodic else None
        except CheckpointError as e:
            raise UsageError(f"game.npc_policy_uri={self.uri}: {e}") from e
        self.checkpoint, self.checkpoint_epoch = checkpoint, epoch
        return self._bind(module)

    def _play_initial(self) -> nn.Module:
        self.checkpoint = self.checkpoint_epoch = None
        return self._bind(copy.deepcopy(self.initial))

    def _draw(self) -> Path | None:
        """The checkpoint of this draw: the latest, or uniform over the last npc_last_k."""
        assert self.run_dir is not None
        intact = [path for path, manifest in valid_checkpoints(self.run_dir / CHECKPOINTS_DIR, [], POLICY_FILES)
                  if self.every is None or manifest.epoch % self.every == 0]
        self.draws += 1
        if not intact:
            return None
        if self.game.npc_sampling == "latest":
            return intact[0]
        window = intact[: self.game.npc_last_k]  # newest first
        return window[int(hash32(self.seed, self.draws, STREAM_NPC_DRAW)) % len(window)]

    def refresh(self, epoch: int) -> bool:
        """At every npc_refresh_epochs-th epoch, draw the checkpoint the NPCs play (run or
        self); True when it changed (their recurrent state then starts over)."""
        if not self.periodic or epoch % self.game.npc_refresh_epochs:
            return False
        drawn = self._draw()
        if drawn is None or drawn == self.checkpoint:
            return False
        self.module = self._load(drawn)
        self.state = self.module.initial_state(len(self.slots), self.device)
        return True

    # ---- acting ------------------------------------------------------------------------------

    @torch.inference_mode()
    def act(self, actions: Tensor, obs: Tensor, episode_starts: Tensor, generator: torch.Generator,
            sample: Sampler = sample_actions) -> None:
        """This step's NPC actions, written into `actions` at the NPC slots; `actions`, `obs`
        and `episode_starts` cover every slot."""
        self.state = reset_state(self.state, episode_starts.index_select(0, self.slots))
        try:
            logits, _, self.state = self.module(obs.index_select(0, self.slots), self.state)
        except ValueError as e:  # found at its first step: a conv stack of another window size
            raise UsageError(f"game.npc_policy_uri={self.uri}: {e}") from None
        actions.index_copy_(0, self.slots, sample(logits, generator)[0])

    def state_dict(self) -> dict[str, Any]:
        """Draws, the checkpoint played, the recurrent state; with `self`, the weights played too
        (the learner's architecture), so that a resume needs no other checkpoint of the run
        (keep_last_n may have deleted the one drawn)."""
        checkpoint = self.checkpoint
        if checkpoint is not None and self.uri == SELF:
            # By name, within the run directory, so that a copy of the run resumes as itself.
            checkpoint = Path(checkpoint.name)
        saved: dict[str, Any] = {
            "draws": self.draws, "checkpoint": str(checkpoint) if checkpoint is not None else None,
            "checkpoint_epoch": self.checkpoint_epoch,
            "state": [s.detach().cpu().clone() for s in self.state]}
        if self.uri == SELF:
            saved["weights"] = {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}
        return saved

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.draws = saved["draws"]
        checkpoint = None if saved["checkpoint"] is None else Path(saved["checkpoint"])
        if self.uri == SELF:
            # The learner's architecture with the weights played (the initial policy's until
            # the run had a checkpoint: a resumed trainer does not rebuild those).
            self.module = self._play_initial()
            self.module.load_state_dict(saved["weights"])
            if checkpoint is not None:
                self.checkpoint = self.run_dir / CHECKPOINTS_DIR / checkpoint.name
        elif checkpoint is not None and checkpoint != self.checkpoint:
            if not checkpoint.exists():
                raise UsageError(f"the NPCs played {checkpoint}, which is gone; resume needs it "
                                 f"(game.npc_policy_uri={self.uri})")
            self.module = self._load(checkpoint)
        self.checkpoint_epoch = saved.get("checkpoint_epoch", self.checkpoint_epoch)
        self.state = tuple(s.to(self.device) for s in saved["state"])
