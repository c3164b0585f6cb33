"""The arena family (SPEC §1.8): 24 agents in 4 rooms of 25x25, mining ore for hearts."""

from __future__ import annotations

from heartgrid.config.curriculum import BucketedTaskConfig, CurriculumConfig, SingleTaskConfig
from heartgrid.config.game import GameConfig, MapConfig, RandomRoomConfig
from heartgrid.config.run import RunConfig
from heartgrid.recipes.common import evaluation_for, trainer_for
from heartgrid.recipes.registry import recipe

SHAPED_REWARDS = {
    "ore_red": 0.1,
    "battery_red": 0.8,
    "laser": 0.5,
    "armor": 0.5,
    "blueprint": 0.5,
    "heart": 1.0,
}
SHAPED_CAPS = {"ore_red": 1.0, "battery_red": 1.0, "laser": 1.0, "armor": 1.0, "blueprint": 1.0}


def arena_game(*, easy: bool = False, shaped: bool = False, extra_objects: dict | None = None) -> GameConfig:
    objects = {"mine_red": 10, "generator_red": 5, "altar": 5, "block": 20, "wall": 20}
    objects.update(extra_objects or {})
    game = GameConfig(
        num_agents=24,
        max_steps=1000,
        map=MapConfig(
            room=RandomRoomConfig(width=25, height=25, agents=6, objects=objects),
            instances=4,
            instance_border_width=0,
            border_width=6,
        ),
    )
    game.agent.rewards = {"heart": 1.0}
    if easy:
        game.objects["altar"].input_resources = {"battery_red": 1}
    if shaped:
        game.agent.rewards = dict(SHAPED_REWARDS)
        game.agent.reward_caps = dict(SHAPED_CAPS)
    return game


def arena_curriculum() -> CurriculumConfig:
    """The reference arena curriculum (SPEC §3): buckets over shaped rewards, caps, attack cost
    and converters that start full."""
    buckets: dict[str, list] = {}
    for item in ("ore_red", "battery_red", "laser", "armor"):
        buckets[f"agent.rewards.{item}"] = [0.0, 0.1, 0.5, 0.9, 1.0]
        buckets[f"agent.reward_caps.{item}"] = [1.0, 2.0]
    buckets["actions.attack.consumed_resources.laser"] = [1, 100]
    for obj in ("mine_red", "generator_red", "altar", "lasery", "armory"):
        buckets[f"objects.{obj}.initial_resource_count"] = [0, 1]
    return CurriculumConfig(
        algorithm="learning_progress",
        tasks=BucketedTaskConfig(child=SingleTaskConfig(name="arena"), buckets=buckets),
        num_active_tasks=16,
    )


def _run(name: str, device: str, game: GameConfig, curriculum: CurriculumConfig | None = None) -> RunConfig:
    return RunConfig(
        run=name,
        recipe=name,
        game=game,
        trainer=trainer_for(device, game.num_agents),
        curriculum=curriculum or CurriculumConfig(),
        evaluation=evaluation_for(device, "arena"),
    )


@recipe("arena")
def arena(device: str) -> RunConfig:
    """Basic arena: altar needs 3 batteries, reward only for hearts."""
    return _run("arena", device, arena_game())


@recipe("arena_basic_easy")
def arena_basic_easy(device: str) -> RunConfig:
    """Arena with the easy altar (1 battery_red -> 1 heart)."""
    return _run("arena_basic_easy", device, arena_game(easy=True))


@recipe("arena_basic_easy_shaped")
def arena_basic_easy_shaped(device: str) -> RunConfig:
    """The default training recipe: easy altar, shaped rewards, the bucketed arena curriculum."""
    return _run(
        "arena_basic_easy_shaped", device, arena_game(easy=True, shaped=True), arena_curriculum()
    )


@recipe("arena_combat")
def arena_combat(device: str) -> RunConfig:
    """Easy shaped arena plus a lasery and an armory per room."""
    game = arena_game(easy=True, shaped=True, extra_objects={"lasery": 1, "armory": 1})
    return _run("arena_combat", device, game)


@recipe("arena_advanced")
def arena_advanced(device: str) -> RunConfig:
    """Combat arena plus a lab, a factory and a temple per room."""
    extra = {"lasery": 1, "armory": 1, "lab": 1, "factory": 1, "temple": 1}
    return _run("arena_advanced", device, arena_game(easy=True, shaped=True, extra_objects=extra))
