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
    game = small_game()
    trainer = trainer_for(device, game.num_agents, bptt_horizon=16, total_timesteps=300_000)
    trainer.num_envs = 32
    trainer.batch_size = 32 * 2 * 16 * 2
    trainer.minibatch_size = 512
    trainer.optimizer.learning_rate = 0.001
    trainer.ent_coef = 0.01
    return RunConfig(run="small_easy_shaped", recipe="small_easy_shaped", game=game, trainer=trainer)
