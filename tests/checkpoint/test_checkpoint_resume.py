"""Exact resume (SPEC §5): on CPU, N+M epochs in one go and N epochs, stop, resume, M epochs
give identical weights, optimizer state and metric records; metrics continue without gaps
or repeats, also after a crash between two checkpoints."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from heartgrid.checkpoint import CheckpointError, CheckpointManager
from heartgrid.config.overrides import apply_overrides
from heartgrid.config.run import RunConfig
from heartgrid.recipes import build_config
from heartgrid.trainer.logger import RunLogger, read_metrics
from heartgrid.trainer.run import train
from heartgrid.trainer.trainer import Trainer

EPOCH_STEPS = 64  # 2 envs x 2 agents x bptt 16: one segment per slot
EPOCHS = 4
# Wall-clock measurements differ between any two runs; everything else must be identical.
TIMING_KEYS = ("overview/sps", "overview/epoch_time_s", "metric/total_time", "timing/")


def tiny_config(data_dir: Path, run: str, **overrides: Any) -> RunConfig:
    config = build_config(
        "small_easy_shaped",
        [
            "system.device=cpu",
            "trainer.num_envs=2",
            "trainer.bptt_horizon=16",
            f"trainer.batch_size={EPOCH_STEPS}",
            "trainer.minibatch_size=32",
            "trainer.update_epochs=2",
            f"trainer.total_timesteps={EPOCH_STEPS * EPOCHS}",
            "trainer.checkpoint_interval=2",
            "policy.hidden_size=16",
            "policy.lstm_layers=1",
            "game.max_steps=12",  # episodes end (and envs reset) on both sides of the resume point
            "logging.tensorboard=false",
        ],
    )
    values = {"data_dir": str(data_dir), "run": run, "logging.console": "none", **overrides}
    return apply_overrides(config, values)  # type: ignore[return-value]


def tensorboard_steps(run_dir: Path, tag: str = "losses/policy_loss") -> list[int]:
    """The steps of `tag` as TensorBoard shows them (restarts purged as TensorBoard does)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def without_timing(records: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING_KEYS)} for r in records]


def final_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    checkpoint = CheckpointManager(run_dir).load_latest()
    assert checkpoint.epoch == EPOCHS
    return checkpoint.policy_weights, checkpoint.trainer_state


def assert_same_tensors(a: Any, b: Any, where: str = "") -> None:
    """Nested containers equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def stop_after(monkeypatch: pytest.MonkeyPatch, epoch: int, how: str) -> None:
    """Make the trainer receive a real SIGINT (`ctrl_c`) at the end of `epoch`, or a second
    Ctrl-C (`abort`, KeyboardInterrupt) in the middle of the epoch after it."""
    original = Trainer.train_epoch

    def train_epoch(self: Trainer) -> Any:
        if how == "abort" and self.epoch == epoch:
            raise KeyboardInterrupt
        record = original(self)
        if how == "ctrl_c" and self.epoch == epoch:
            signal.raise_signal(signal.SIGINT)  # goes through the trainer's own handler
        return record

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: all EPOCHS epochs in one go."""
    data_dir = tmp_path_factory.mktemp("resume")
    return train(tiny_config(data_dir, "straight"))


def test_stop_and_resume_is_exact(uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tiny_config(tmp_path, "resumed", **{"logging.tensorboard": True})
    with monkeypatch.context() as patch:
        stop_after(patch, 1, "ctrl_c")  # between two periodic checkpoints
        run_dir = train(config)
    assert [p.name for p in CheckpointManager(run_dir).checkpoints()] == ["epoch_000001"]
    assert [r["metric/epoch"] for r in read_metrics(run_dir)] == [1]

    # TensorBoard reads event files in name order, whose first field is the second a writer
    # opened; two writers of one process in one second sort by its writer count as text
    # (".10" before ".9"). A real resume starts a new process seconds later.
    time.sleep(1 - time.time() % 1)
    train(config)  # the same command again resumes
    log = (run_dir / "log.txt").read_text()
    assert "resuming at epoch 1, agent step 64" in log

    weights, state = final_state(run_dir)
    reference_weights, reference_state = final_state(uninterrupted)
    assert_same_tensors(weights, reference_weights, "policy")
    assert_same_tensors(state["optimizer"], reference_state["optimizer"], "optimizer")
    assert_same_tensors(state["rng"], reference_state["rng"], "rng")
    assert_same_tensors(state["engine"], reference_state["engine"], "engine")
    assert_same_tensors(state["recurrent_state"], reference_state["recurrent_state"], "recurrent_state")
    assert (state["epoch"], state["agent_step"]) == (EPOCHS, EPOCHS * EPOCH_STEPS)

    records, reference = read_metrics(run_dir), read_metrics(uninterrupted)
    assert [r["metric/epoch"] for r in records] == list(range(1, EPOCHS + 1))
    assert [r["metric/agent_step"] for r in records] == [EPOCH_STEPS * e for e in range(1, EPOCHS + 1)]
    assert without_timing(records) == without_timing(reference)
    assert tensorboard_steps(run_dir) == [EPOCH_STEPS * e for e in range(1, EPOCHS + 1)]


def test_abort_between_checkpoints_resumes_from_the_last_and_rewrites_later_metrics(
    uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tmp_path, "aborted", **{"logging.tensorboard": True})
    closed, close = [], RunLogger.close
    with monkeypatch.context() as patch:
        stop_after(patch, 3, "abort")  # epoch 3 logged, its checkpoint would have come at 4
        patch.setattr(RunLogger, "close", lambda self: (closed.append("log"), close(self)))
        with pytest.raises(KeyboardInterrupt):  # the CLI exits 130 on it
            train(config)
    run_dir = config.run_dir
    assert closed == ["log"]
    assert "aborted during epoch 4; resume continues from the last checkpoint (epoch 2)" in (
        run_dir / "log.txt").read_text()
    assert [p.name for p in CheckpointManager(run_dir).checkpoints()] == ["epoch_000002"]
    assert [r["metric/epoch"] for r in read_metrics(run_dir)] == [1, 2, 3]

    train(config)
    records = read_metrics(run_dir)
    assert [r["metric/epoch"] for r in records] == list(range(1, EPOCHS + 1))  # epoch 3 once
    assert without_timing(records) == without_timing(read_metrics(uninterrupted))
    assert tensorboard_steps(run_dir) == [EPOCH_STEPS * e for e in range(1, EPOCHS + 1)]
    weights, _ = final_state(run_dir)
    assert_same_tensors(weights, final_state(uninterrupted)[0], "policy")


def test_a_corrupt_latest_checkpoint_resumes_from_the_previous(
    uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny_config(tmp_path, "corrupt", **{"trainer.checkpoint_interval": 1})
    with monkeypatch.context() as patch:
        stop_after(patch, 2, "ctrl_c")
        run_dir = train(config)
    newest = run_dir / "checkpoints" / "epoch_000002"
    (newest / "trainer_state.pt").write_bytes(b"garbage")

    with pytest.warns(UserWarning, match=rf"refusing checkpoint {newest}: trainer_state.pt is 7 bytes"):
        train(config)
    assert "resuming at epoch 1, agent step 64" in (run_dir / "log.txt").read_text()
    assert without_timing(read_metrics(run_dir)) == without_timing(read_metrics(uninterrupted))
    assert_same_tensors(final_state(run_dir)[0], final_state(uninterrupted)[0], "policy")


def test_a_resume_that_fails_leaves_config_json_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every checkpoint corrupt: CheckpointError (the CLI exits 2) and config.json still says
    how the checkpoints were trained, not what the failed command asked for."""
    config = tiny_config(tmp_path, "broken")
    with monkeypatch.context() as patch:
        stop_after(patch, 1, "ctrl_c")
        run_dir = train(config)
    saved = (run_dir / "config.json").read_text()
    (run_dir / "checkpoints" / "epoch_000001" / "trainer_state.pt").write_bytes(b"garbage")

    longer = tiny_config(tmp_path, "broken", **{"trainer.total_timesteps": EPOCH_STEPS * 8})
    with pytest.warns(UserWarning, match="refusing checkpoint"), pytest.raises(CheckpointError):
        train(longer)
    assert (run_dir / "config.json").read_text() == saved


def test_initial_policy_starts_from_its_weights_with_a_fresh_optimizer(uninterrupted: Path, tmp_path: Path) -> None:
    config = tiny_config(tmp_path, "finetune", **{"trainer.initial_policy": f"file://{uninterrupted}"})
    trainer = Trainer(config)
    assert_same_tensors(dict(trainer.policy.state_dict()), final_state(uninterrupted)[0], "policy")
    assert trainer.optimizer.state_dict()["state"] == {}
    assert (trainer.epoch, trainer.agent_step) == (0, 0)


def test_initial_policy_of_another_architecture_is_refused_naming_both(uninterrupted: Path, tmp_path: Path) -> None:
    """The run's config.json must say which policy it trains: a `conv_lstm` checkpoint cannot
    silently become the policy of a run configured for `latent_attn_tiny`."""
    overrides = {"trainer.initial_policy": str(uninterrupted), "policy.name": "latent_attn_tiny"}
    with pytest.raises(CheckpointError, match=r"'conv_lstm'.*'latent_attn_tiny'|'latent_attn_tiny'.*'conv_lstm'"):
        Trainer(tiny_config(tmp_path, "other", **overrides))


def test_a_muon_checkpoint_of_another_parameter_split_is_refused_naming_a_way_on(tmp_path, monkeypatch):
    """Muon once also stepped the input and output layers; such a checkpoint's optimizer state
    cannot be restored, and resuming says so (CheckpointError, exit 2) rather than a traceback."""
    import heartgrid.trainer.optimizer as optimizer

    config = tiny_config(tmp_path, "muon", **{"trainer.optimizer.type": "muon"})
    with monkeypatch.context() as patch:
        patch.setattr(optimizer, "boundary_layers", lambda policy: set())  # the old split
        stop_after(patch, 1, "ctrl_c")
        run_dir = train(config)
    with pytest.raises(CheckpointError, match=r"(?s)does not fit this trainer.*covers .* parameters.*"
                                              rf"trainer.initial_policy={run_dir}"):
        train(config)
