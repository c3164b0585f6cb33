"""The learning warnings (heartgrid/trainer/health.py): when they fire, once, and again only
after the symptom went away; and that a real run writes them to log.txt."""

from __future__ import annotations

from pathlib import Path

from heartgrid.recipes import build_config
from heartgrid.trainer.health import LearningHealth
from heartgrid.trainer.run import train


def record(epoch: int, kl: float = 1e-3, clipfrac: float = 0.02, ev: float | None = 0.2) -> dict:
    r = {"metric/epoch": epoch, "losses/approx_kl": kl, "losses/clipfrac": clipfrac}
    if ev is not None:
        r["losses/explained_variance"] = ev
    return r


def test_stalled_updates_warn_once_after_the_whole_window():
    health = LearningHealth(epochs=10)
    said = [health.check(record(e, kl=1e-8, clipfrac=0.0)) for e in range(1, 16)]
    assert [e for e, messages in enumerate(said, start=1) if messages] == [10]
    assert "training has stopped moving" in said[9][0] and "learning_rate" in said[9][0]
    assert "critic" not in " ".join(said[9])  # ev 0.2: the critic is fine


def test_a_moving_epoch_resets_the_stall():
    health = LearningHealth(epochs=10)
    for e in range(1, 10):
        assert health.check(record(e, kl=1e-8, clipfrac=0.0)) == []
    assert health.check(record(10, kl=1e-4, clipfrac=0.0)) == []  # KL above the floor
    for e in range(11, 20):
        assert health.check(record(e, kl=1e-8, clipfrac=0.0)) == []
    assert health.check(record(20, kl=1e-8, clipfrac=0.0))  # a whole stalled window again


def test_warns_again_only_after_recovering():
    health = LearningHealth(epochs=5)
    warned = [bool(health.check(record(e, kl=0.0, clipfrac=0.0))) for e in range(1, 11)]
    assert warned == [False] * 4 + [True] + [False] * 5
    health.check(record(11))  # moving again
    warned = [bool(health.check(record(e, kl=0.0, clipfrac=0.0))) for e in range(12, 17)]
    assert warned == [False] * 4 + [True]


def test_records_every_few_epochs_count_the_epochs_they_cover():
    health = LearningHealth(epochs=50)  # log_interval 10: five records cover the window
    warned = [bool(health.check(record(e, kl=0.0, clipfrac=0.0))) for e in range(10, 70, 10)]
    assert warned == [False] * 4 + [True, False]


def test_a_critic_that_explains_nothing_warns_on_the_window_mean():
    health = LearningHealth(epochs=20)
    evs = [0.0004, -0.0006] * 10  # mean -0.0001: about zero, though single records vary
    said = [health.check(record(e, ev=ev)) for e, ev in enumerate(evs, start=1)]
    assert [e for e, m in enumerate(said, start=1) if m] == [20]
    assert "critic explains nothing" in said[19][0] and "lstm_bias" in said[19][0]
    assert "stopped moving" not in " ".join(said[19])
    healthy = LearningHealth(epochs=20)
    assert not any(healthy.check(record(e, ev=0.006 if e % 2 else -0.002)) for e in range(1, 41))


def test_after_a_resume_the_first_record_covers_only_the_epochs_since():
    health = LearningHealth(epochs=10, start_epoch=5000)
    assert health.check(record(5001, kl=0.0, clipfrac=0.0)) == []
    warned = [bool(health.check(record(e, kl=0.0, clipfrac=0.0))) for e in range(5002, 5012)]
    assert warned == [False] * 8 + [True, False]


def test_missing_explained_variance_is_skipped_and_zero_disables():
    health = LearningHealth(epochs=3)
    assert not any(health.check(record(e, ev=None)) for e in range(1, 10))
    nan = LearningHealth(epochs=3)  # NaN (returns that did not vary) neither counts nor sticks
    assert not any(nan.check(record(e, ev=float("nan"))) for e in range(1, 5))
    assert [bool(nan.check(record(e, ev=0.0))) for e in range(5, 8)] == [False, False, True]
    off = LearningHealth(epochs=0)
    assert not any(off.check(record(e, kl=0.0, clipfrac=0.0, ev=0.0)) for e in range(1, 10))


def test_a_run_that_cannot_move_says_so_in_log_txt(tmp_path: Path):
    # A learning rate of 1e-12 cannot move the policy: every epoch stalls.
    config = build_config("small_easy_shaped", [
        "system.device=cpu", "system.torch_threads=1", 'logging.console="none"', "trainer.num_envs=4",
        "trainer.batch_size=256", "trainer.minibatch_size=128", "trainer.total_timesteps=1536",
        "game.max_steps=40", "trainer.optimizer.learning_rate=1e-12", "logging.health_epochs=4",
        f"data_dir={tmp_path}", "run=stalled",
    ])
    log = (train(config) / "log.txt").read_text()
    assert "warning: training has stopped moving" in log
