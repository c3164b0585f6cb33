"""The rollout: buffer layout, truncation bootstrap (switch `game.time_limit`) and the
recurrent-state switch (`trainer.recurrent_state`), on the fake engine."""

from __future__ import annotations

import pytest
import torch
from trainer_fakes import make_trainer, tiny_config


def test_buffer_layout_of_a_rollout_in_two_passes():
    """Segment row p·slots + i holds slot i's steps of pass p, consecutive in time."""
    config = tiny_config(num_envs=2, num_agents=2, bptt=3, passes=2)
    trainer = make_trainer(config, episode_length=50)
    engine = trainer.engine
    start_t = engine.t.clone()  # env e starts at step e
    trainer.rollout()
    exp = trainer.experience
    assert exp.obs.shape == (8, 3, *engine.obs_shape)
    assert trainer.agent_step == engine.steps_taken * engine.num_slots == 24
    for rollout_pass in range(2):
        for slot in range(4):
            row = rollout_pass * 4 + slot
            env, agent = slot // 2, slot % 2
            for step in range(3):
                obs = exp.obs[row, step]
                assert obs[0, 0, 0] == start_t[env] + rollout_pass * 3 + step
                assert obs[1, 0, 0] == agent + 1 and obs[2, 0, 0] == env + 1
    good = exp.actions == 1
    assert torch.equal(exp.rewards, good.float())  # no episode ended: rewards are the engine's


def test_next_values_bootstrap_each_row_with_the_following_observation():
    config = tiny_config(num_envs=1, num_agents=2, bptt=3, passes=2)
    trainer = make_trainer(config, episode_length=50, value_from_obs=True)
    trainer.rollout()
    exp, policy = trainer.experience, trainer.policy
    with torch.no_grad():
        # pass 0's rows are followed by the first observation of pass 1
        torch.testing.assert_close(exp.next_values[:2], policy.value_of_obs(exp.obs[2:, 0]))
        torch.testing.assert_close(exp.next_values[2:], policy.value_of_obs(trainer.engine.obs))
        torch.testing.assert_close(exp.values, policy.value_of_obs(exp.obs.flatten(0, 1)).view(4, 3))


@pytest.mark.parametrize("time_limit", ["truncate", "terminal"])
def test_time_limit(time_limit):
    """truncate: the step that truncates gets reward + γ·V(final observation), and is a done.
    terminal: the same step is a done with the bare reward."""
    config = tiny_config(num_envs=2, num_agents=2, bptt=4, passes=1, time_limit=time_limit, gamma=0.9)
    trainer = make_trainer(config, episode_length=3, value_from_obs=True)
    trainer.rollout()
    exp, engine = trainer.experience, trainer.engine
    bare = (exp.actions == 1).float()
    # env 0 starts at t=0 and ends after step 2; env 1 starts at t=1 and ends after step 1
    ended_at = {0: 2, 1: 1}
    expected_dones = torch.zeros(4, 4, dtype=torch.bool)
    for slot in range(4):
        expected_dones[slot, ended_at[slot // 2]] = True
    assert torch.equal(exp.dones, expected_dones)
    assert torch.equal(exp.truncateds, expected_dones if time_limit == "truncate" else torch.zeros_like(expected_dones))
    # The step after a done starts a new episode.
    assert torch.equal(exp.episode_starts[:, 1:], expected_dones[:, :-1])

    final_obs = engine.make_obs(torch.full((2,), 3))  # observation at t = episode_length
    with torch.no_grad():
        final_values = trainer.policy.value_of_obs(final_obs)
    expected = bare.clone()
    if time_limit == "truncate":
        expected[expected_dones] += 0.9 * final_values
    torch.testing.assert_close(exp.rewards, expected)
    assert not torch.equal(exp.rewards, bare) or time_limit == "terminal"


def test_recurrent_state_is_zeroed_where_an_episode_ends():
    config = tiny_config(num_envs=2, num_agents=2, bptt=4, passes=1)
    trainer = make_trainer(config, episode_length=3)
    trainer.rollout()
    exp = trainer.experience
    with torch.no_grad():
        logits, values = trainer.policy.forward_sequence(exp.obs, exp.start_state, exp.episode_starts)
    # forward_sequence with the stored episode starts reproduces the rollout exactly
    torch.testing.assert_close(values, exp.values)
    # ... and differs if the resets were ignored
    with torch.no_grad():
        _, no_reset = trainer.policy.forward_sequence(exp.obs, exp.start_state, torch.zeros_like(exp.episode_starts))
    assert not torch.allclose(no_reset, exp.values)


@pytest.mark.parametrize("mode", ["carry", "reset"])
def test_recurrent_state_across_rollouts(mode):
    config = tiny_config(num_envs=2, num_agents=2, bptt=4, passes=1, recurrent_state=mode)
    trainer = make_trainer(config, episode_length=100)
    trainer.rollout()
    state_after_first = trainer.state[0].clone()
    assert state_after_first.abs().sum() > 0
    trainer.rollout()
    start = trainer.experience.start_state[0]
    if mode == "carry":
        torch.testing.assert_close(start, state_after_first)
    else:
        assert torch.equal(start, torch.zeros_like(start))


def test_finished_episodes_become_episode_stats_and_reach_the_curriculum():
    config = tiny_config(num_envs=2, num_agents=2, bptt=4, passes=2)
    records = []
    trainer = make_trainer(config, episode_length=3, on_log=records.append)
    reported = []
    trainer.curriculum.on_episodes = reported.append
    trainer.train_epoch()
    assert len(reported) == 1 and len(reported[0].rewards) > 0
    episodes = reported[0]
    record = records[0]
    assert record["overview/reward"] == pytest.approx(episodes.rewards.double().mean().item())
    assert record["env_agent/heart.get"] == pytest.approx(episodes.agent_stats["heart.get"].double().mean().item())
    assert record["env_game/episode.length"] == 3.0
    assert record["experience/ep_lengths"] == 3.0


def test_experience_rewards_metric_is_the_environment_reward_without_bootstraps():
    """The buffer holds reward + γ·V(final observation) for GAE; `experience/rewards` is the
    mean reward the environment paid."""
    config = tiny_config(num_envs=2, num_agents=2, bptt=4, passes=1, gamma=0.9)
    trainer = make_trainer(config, episode_length=3, value_from_obs=True)
    trainer.rollout()
    exp = trainer.experience
    bare = (exp.actions == 1).double()
    assert exp.truncateds.any() and not torch.equal(exp.rewards.double(), bare)
    assert trainer.stats.values("experience/rewards") == [bare.mean().item()]
