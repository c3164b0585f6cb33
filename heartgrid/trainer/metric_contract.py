"""The metric contract (SPEC §4): names every training run must log against `metric/agent_step`.

This module is the single list. A test trains briefly and fails if any name returned by
`required_metrics(config)` is missing from the run's metrics file, so a metric cannot disappear
silently (the dehydration investigation lost `overview/reward` and the curriculum stats that
way). To add a family (for example `curriculum/*` or `task_reward/*`), add a function that
returns its names for a config and list it in `METRIC_GROUPS`.
"""

from __future__ import annotations

from collections.abc import Callable

from heartgrid.config.game import ASCII_SYMBOLS, AsciiRoomConfig, ConverterConfig, GameConfig
from heartgrid.config.run import RunConfig
from heartgrid.curriculum.metrics import required_curriculum_metrics
from heartgrid.engine.action_space import ActionSpace
from heartgrid.rundir import STEP_KEY  # re-exported: every record is logged against it

EPOCH_KEY = "metric/epoch"

OVERVIEW = ("overview/reward", "overview/sps", "overview/epoch_time_s")

LOSSES = tuple(
    f"losses/{name}"
    for name in (
        "policy_loss", "value_loss", "entropy", "approx_kl", "old_approx_kl", "clipfrac",
        "explained_variance", "importance", "current_logprobs", "grad_norm",
    )
)

EXPERIENCE = tuple(
    f"experience/{name}"
    for name in (
        "rewards", "values", "act_log_prob", "dones", "truncateds", "ratio", "ep_lengths",
        "advantages", "returns",
    )
)

# Every schedulable value is logged, scheduled or not, so an A/B of two runs always has them.
PARAMETERS = tuple(
    f"parameters/{name}" for name in ("learning_rate", "clip_coef", "ent_coef", "vf_clip_coef")
)

# Phases of an epoch; their shares add up to 1.
TIMING_PHASES = ("env", "forward", "update", "stats", "other")
TIMING = tuple(f"timing/frac/{p}" for p in TIMING_PHASES) + tuple(
    f"timing/ms/{p}" for p in TIMING_PHASES
) + ("timing/torch_threads",)  # the process's torch threads (system.torch_threads or chosen)
# Not in the contract: `timing/neighbour_cores` (cores other processes kept busy), which only an
# OS with /proc/stat can give.

# Per-agent stats every game with these items reports (RULES.md, Stats).
CORE_AGENT_STATS = ("heart.get", "heart.gained", "ore_red.gained", "battery_red.gained")


def _fixed(config: RunConfig) -> list[str]:
    return [STEP_KEY, EPOCH_KEY, *OVERVIEW, *LOSSES, *EXPERIENCE, *PARAMETERS, *TIMING]


def _env_agent(config: RunConfig) -> list[str]:
    actions = ActionSpace.from_game(config.game).type_names
    names = list(CORE_AGENT_STATS)
    for action in actions:
        names += [f"action.{action}.success", f"action.{action}.failed"]
    return [f"env_agent/{name}" for name in names]


def map_converters(game: GameConfig) -> list[str]:
    """Names of the converter objects that the game's map places."""
    room = game.map.room
    if isinstance(room, AsciiRoomConfig):
        placed = {ASCII_SYMBOLS[c] for row in room.rows for c in row if c in ASCII_SYMBOLS}
    else:
        placed = {name for name, count in room.objects.items() if count > 0}
    return sorted(n for n in placed if isinstance(game.objects[n], ConverterConfig))


def _env_game(config: RunConfig) -> list[str]:
    return [f"env_game/{name}.conversions" for name in map_converters(config.game)]


def _curriculum(config: RunConfig) -> list[str]:
    """`curriculum/*` and `task_reward/*`, as the curriculum package defines them."""
    return required_curriculum_metrics(config.curriculum)


def _npc(config: RunConfig) -> list[str]:
    """With NPCs (game.policy_agents_pct < 1): their reward and core stats, apart from the
    learner's `env_agent/*`; with self-play, the epoch of the checkpoint they play (a run
    directory is logged alike, but whether a path names a run or one checkpoint depends on the
    file system, which the contract does not read)."""
    game = config.game
    if game.npc_policy_uri is None or game.policy_agents == game.num_agents:
        return []
    names = ["npc/reward", *(f"npc/{name}" for name in CORE_AGENT_STATS)]
    return names + (["npc/opponent_epoch"] if game.npc_policy_uri == "self" else [])


def _kickstart(config: RunConfig) -> list[str]:
    """With a kickstart teacher: its losses and the coefficients in force."""
    if config.trainer.kickstart.teacher_uri is None:
        return []
    return ["losses/ks_action_loss", "losses/ks_value_loss", "parameters/ks_action_coef",
            "parameters/ks_value_coef"]


METRIC_GROUPS: list[Callable[[RunConfig], list[str]]] = [_fixed, _env_agent, _env_game, _curriculum, _npc,
                                                         _kickstart]


def required_metrics(config: RunConfig) -> list[str]:
    """Every metric name a training run of `config` must log."""
    return [name for group in METRIC_GROUPS for name in group(config)]


def missing_metrics(config: RunConfig, logged: set[str]) -> list[str]:
    return [name for name in required_metrics(config) if name not in logged]
