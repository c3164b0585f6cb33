"""Small recipes for fast learning tests and A/B checks on a CPU."""

from __future__ import annotations

from heartgrid.config.game import GameConfig, MapConfig, RandomRoomConfig
from heartgrid.config.run import RunConfig
from heartgrid.recipes.arena import SHAPED_CAPS, SHAPED_REWARDS
from heartgrid.recipes.common import trainer_for
from heartgrid.recipes.registry import recipe


def small_game() -> GameConfig:
    game = GameConfig(
        num_agents=2,
        max_steps=200,
        obs_width=7,
        obs_height=7,
        map=MapConfig(
            room=RandomRoomConfig(
                width=7, height=7, agents=2,
                objects={"mine_red": 1, "generator_red": 1, "altar": 1},
            ),
            instances=1,
            border_width=1,
        ),
    )
    game.objects["altar"].input_resources = {"battery_red": 1}
    for name in ("mine_red", "generator_red", "altar"):
        game.objects[name].cooldown = 5
    game.agent.rewards = dict(SHAPED_REWARDS)
    game.agent.reward_caps = dict(SHAPED_CAPS)
    return game


@recipe("small_easy_shaped")
def small_easy_shaped(device: str) -> RunConfig:
    """One 9x9 room (7x7 inside a wall), 2 agents, a mine, a generator and an easy altar; shaped."""
    return _small_run("small_easy_shaped", small_game(), device)


@recipe("small_cardinal")
def small_cardinal(device: str) -> RunConfig:
    """small_easy_shaped with 6 actions (cardinal moves, put, get) and a head start: learns in a test."""
    game = small_game()
    # Learnable within a test's budget (measured: with the arena's 19 actions no seed made a
    # heart in 1.5M agent steps over 11 trainer variants): cardinal moves that also face the
    # mover, put and get only, and a generator and altar that start with one item each.
    for name in ("noop", "move", "rotate", "attack", "swap"):
        getattr(game.actions, name).enabled = False
    game.actions.move_cardinal.enabled = True
    game.objects["generator_red"].initial_resource_count = 1
    game.objects["altar"].initial_resource_count = 1
    return _small_run("small_cardinal", game, device)


def _small_run(name: str, game: GameConfig, device: str) -> RunConfig:
    trainer = trainer_for(device, game.num_agents, bptt_horizon=16, total_timesteps=300_000)
    trainer.num_envs = 32
    # Minibatch first: each assignment is validated, and the GPU default batch is larger than
    # the small batch (512 divides both; the small batch does not hold the GPU's minibatch).
    trainer.minibatch_size = 512
    trainer.batch_size = 32 * 2 * 16 * 2
    trainer.optimizer.learning_rate = 0.001
    trainer.ent_coef = 0.01
    return RunConfig(run=name, recipe=name, game=game, trainer=trainer)
