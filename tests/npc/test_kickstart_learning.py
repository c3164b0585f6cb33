"""Kickstarting speeds learning up (issue #18): a `small_cardinal` student kickstarted from a
trained teacher reaches the heart threshold in fewer agent steps than the same student (same
seed, same settings) trained from scratch.

The teacher is the reference architecture `fast` (another architecture than the students'),
trained for 204,800 agent steps, seed 0; it makes more hearts than the default `conv_lstm`
learns to on its own (docs/learning.md). The students are `conv_lstm`, seed 2, for
STUDENT_STEPS; the kickstarted one with the default coefficients (1, 1), annealed over the
second half of its run. The threshold: the mean of `env_agent/heart.get` over the last 10
records (one per epoch of 2,048 agent steps) at least HEART_THRESHOLD.

Measured on CPU, one torch thread (deterministic: the same run bit for bit on the same torch),
first agent step at the threshold, students seeds 1 / 2 / 3:
  kickstarted:   83,968 / 57,344 / 55,296 (trailing mean at the end 0.70 / 0.63 / 0.63)
  from scratch:  never within 102,400 (best trailing mean 0.54 / 0.54 / 0.51); seeds 1 and 2
                 never within 204,800 either (best 0.54 and 0.54)
  the teacher:   122,880 (0.59 at its end)
The test asserts the kickstarted student is at least MARGIN_STEPS ahead (seed 2: 45,056 ahead
of the end of the scratch student's budget): a regression check with room, not a statistical
claim. The whole test: about 45 s on one core (the teacher 21 s, each student 10-12 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from heartgrid.recipes import build_config
from heartgrid.trainer.logger import read_metrics
from heartgrid.trainer.run import train

TEACHER_STEPS = 100 * 2048
STUDENT_STEPS = 50 * 2048
HEART_THRESHOLD = 0.55
WINDOW = 10
MARGIN_STEPS = 10 * 2048

QUIET = ["system.device=cpu", "system.torch_threads=1", "logging.console=none", "logging.tensorboard=false"]


def steps_to_threshold(run_dir: Path) -> int | None:
    """The agent step of the first record whose trailing mean of hearts reaches the threshold."""
    hearts: list[float] = []
    for record in read_metrics(run_dir):
        if "env_agent/heart.get" in record:
            hearts.append(record["env_agent/heart.get"])
        if len(hearts) >= WINDOW and sum(hearts[-WINDOW:]) / WINDOW >= HEART_THRESHOLD:
            return int(record["metric/agent_step"])
    return None


def run(data_dir: Path, name: str, steps: int, *extra: str) -> Path:
    return train(build_config("small_cardinal", [
        *QUIET, f"trainer.total_timesteps={steps}", f"trainer.checkpoint_interval={steps}",
        f"data_dir={data_dir}", f"run={name}", *extra]))


@pytest.mark.slow
def test_a_kickstarted_student_reaches_the_heart_threshold_sooner(tmp_path: Path):
    teacher = run(tmp_path, "teacher", TEACHER_STEPS, "policy.name=fast", "system.seed=0")
    kickstart = [f"trainer.kickstart.teacher_uri={teacher}", f"trainer.kickstart.kickstart_steps={STUDENT_STEPS}",
                 "trainer.kickstart.anneal_ratio=0.5"]
    kickstarted = steps_to_threshold(run(tmp_path, "kickstarted", STUDENT_STEPS, "system.seed=2", *kickstart))
    scratch = steps_to_threshold(run(tmp_path, "scratch", STUDENT_STEPS, "system.seed=2"))
    assert kickstarted is not None, f"the kickstarted student never reached {HEART_THRESHOLD} hearts"
    # A student that never reached it within STUDENT_STEPS needs more than that.
    assert kickstarted + MARGIN_STEPS <= (scratch if scratch is not None else STUDENT_STEPS), (kickstarted, scratch)
