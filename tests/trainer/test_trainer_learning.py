"""Learning test on CPU: `small_cardinal` learns to make hearts within a fixed step budget.

Documented threshold: with seed 0, 100 epochs (204,800 agent steps) of `small_cardinal`, the
mean `env_agent/heart.get` of the last 10 records is at least HEART_THRESHOLD; at the start
(random policy) it is 0. About 30-60 s on 2 cores with one torch thread.

`small_cardinal` is `small_easy_shaped` with 6 actions (cardinal moves that also face the mover,
put, get) and a generator and altar that start with one battery and one heart. That free heart
gives at most 0.5 per agent (two agents), so the threshold above it needs agents that make hearts
themselves. With small_easy_shaped's 19 actions, hearts stayed at ~0 for 1.5M agent steps over 11
trainer variants, which is why the learning test uses this recipe.
"""

from __future__ import annotations

import pytest

from heartgrid.recipes import build_config
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.run import train

STEP_BUDGET = 100 * 2048
HEART_THRESHOLD = 0.5


@pytest.mark.slow
def test_small_cardinal_learns_to_make_hearts(tmp_path):
    config = build_config("small_cardinal", [
        "system.device=cpu", "system.seed=0", "system.torch_threads=1", 'logging.console="none"',
        "logging.tensorboard=false", f"trainer.total_timesteps={STEP_BUDGET}",
        f"trainer.checkpoint_interval={STEP_BUDGET}", f"data_dir={tmp_path}", "run=learn",
    ])
    records = read_metrics(train(config))
    assert records[-1]["metric/agent_step"] == STEP_BUDGET
    hearts = [r["env_agent/heart.get"] for r in records if "env_agent/heart.get" in r]
    assert hearts[0] == 0.0
    final = sum(hearts[-10:]) / 10
    assert final >= HEART_THRESHOLD, f"hearts per agent per episode {final:.3f} < {HEART_THRESHOLD}"
