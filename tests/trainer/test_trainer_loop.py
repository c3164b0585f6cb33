"""The training loop on the fake engine: Ctrl-C, checkpoints, exact resume, determinism."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from trainer_fakes import DEVICES, make_trainer, tiny_config

from heartgrid.checkpoint import CheckpointManager

# Wall-clock measurements differ between runs; everything else must not.
CLOCK = ("timing/", "overview/sps", "overview/epoch_time_s", "metric/total_time")


def without_clock(record: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in record.items() if not k.startswith(CLOCK)}


class RecordingCheckpoints:
    def __init__(self):
        self.saved: list[tuple[int, int]] = []

    def save(self, epoch, agent_step, policy, trainer_state, scores=None):
        self.saved.append((epoch, agent_step))


def test_checkpoints_every_interval_and_at_the_end():
    checkpoints = RecordingCheckpoints()
    config = tiny_config(checkpoint_interval=3)  # 4 epochs
    trainer = make_trainer(config, checkpoints=checkpoints)
    trainer.train()
    assert trainer.epoch == 4
    assert checkpoints.saved == [(3, 96), (4, 128)]


def test_ctrl_c_finishes_the_epoch_saves_and_returns():
    checkpoints = RecordingCheckpoints()
    config = tiny_config(checkpoint_interval=100)
    records = []

    def on_log(record):
        records.append(record)
        if record["metric/epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    trainer = make_trainer(config, checkpoints=checkpoints, on_log=on_log)
    trainer.train()  # no KeyboardInterrupt escapes
    assert trainer.stop.requested
    assert [r["metric/epoch"] for r in records] == [1, 2]
    assert checkpoints.saved == [(2, 64)]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_ctrl_c_aborts_at_once_without_a_checkpoint():
    checkpoints = RecordingCheckpoints()

    def on_log(record):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    trainer = make_trainer(tiny_config(checkpoint_interval=100), checkpoints=checkpoints, on_log=on_log)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert checkpoints.saved == []


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1", "SIGHUP"])
def test_a_stop_signal_acts_like_ctrl_c_and_is_put_back(name):
    number = getattr(signal, name)
    inherited = signal.getsignal(number)
    # Under nohup the suite inherits SIGHUP ignored, which training rightly leaves ignored (the
    # next test); this one is about a signal the process did not ignore.
    signal.signal(number, signal.SIG_DFL if inherited is signal.SIG_IGN else inherited)
    before = signal.getsignal(number)
    checkpoints = RecordingCheckpoints()

    def on_log(record):
        if record["metric/epoch"] == 1:
            os.kill(os.getpid(), number)

    try:
        trainer = make_trainer(tiny_config(checkpoint_interval=100), checkpoints=checkpoints, on_log=on_log)
        trainer.train()
        assert (trainer.stop.reason, checkpoints.saved) == (name, [(1, 32)])
        assert signal.getsignal(number) is before
    finally:
        signal.signal(number, inherited)


def test_only_the_configured_signals_stop_and_ignored_ones_stay_ignored():
    """`system.stop_signals` chooses; a signal the process ignores (SIGHUP under nohup) is left
    ignored, so a closed terminal does not stop a nohup'd run."""
    config = tiny_config(checkpoint_interval=100)
    config.system.stop_signals = ["SIGUSR1"]
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        trainer = make_trainer(config, checkpoints=RecordingCheckpoints())
        with trainer.stop.on_signals(config.system.stop_signals):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is sigterm  # not configured: untouched
            assert callable(signal.getsignal(signal.SIGUSR1))
            assert callable(signal.getsignal(signal.SIGINT))
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("device", DEVICES)
def test_resume_continues_exactly(tmp_path, device):
    """4 epochs in one go == 2 epochs, checkpoint, a new trainer resumed from it, 2 more."""
    config = tiny_config(checkpoint_interval=2, update_epochs=2, device=device)
    straight_records = []
    straight = make_trainer(config, on_log=straight_records.append)
    straight.train()

    first = make_trainer(config, checkpoints=CheckpointManager(tmp_path / "run", keep_last_n=2))
    first.train_epoch()
    first.train_epoch()  # writes checkpoints/epoch_000002
    loaded = CheckpointManager(tmp_path / "run").load_latest()
    assert loaded.epoch == 2

    resumed_records = []
    resumed = make_trainer(config, on_log=resumed_records.append)
    resumed.policy.load_state_dict(loaded.policy_weights)
    resumed.load_state_dict(loaded.trainer_state)
    resumed.train()
    assert resumed.epoch == 4
    for a, b in zip(straight.policy.state_dict().values(), resumed.policy.state_dict().values()):
        assert torch.equal(a, b)
    assert [without_clock(r) for r in resumed_records] == [without_clock(r) for r in straight_records[2:]]


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_run_other_seed_other_run(device):
    def run(seed):
        config = tiny_config(device=device)
        config.system.seed = seed
        records = []
        trainer = make_trainer(config, on_log=records.append)
        trainer.train()
        return [without_clock(r) for r in records], list(trainer.policy.parameters())

    records_a, weights_a = run(0)
    records_b, weights_b = run(0)
    records_c, _ = run(1)
    assert records_a == records_b
    assert all(torch.equal(a, b) for a, b in zip(weights_a, weights_b))
    assert records_a != records_c


class StateCheckpoints(RecordingCheckpoints):
    """Also keeps the log window each checkpoint was written with."""

    def __init__(self):
        super().__init__()
        self.log_windows: list[dict[str, int]] = []

    def save(self, epoch, agent_step, policy, trainer_state, scores=None):
        super().save(epoch, agent_step, policy, trainer_state)
        self.log_windows.append(trainer_state["log_window"])


def test_the_last_partial_log_window_is_logged_before_the_final_checkpoint():
    """log_interval=2 over 3 epochs: records at epochs 2 and 3, the last covering one epoch."""
    config = tiny_config(checkpoint_interval=100)
    config.trainer.total_timesteps = 3 * config.trainer.batch_size
    config.logging.log_interval = 2
    checkpoints, records = StateCheckpoints(), []
    trainer = make_trainer(config, checkpoints=checkpoints, on_log=records.append)
    trainer.train()
    assert [(r["metric/epoch"], r["metric/agent_step"]) for r in records] == [(2, 64), (3, 96)]
    assert checkpoints.saved == [(3, 96)]
    assert checkpoints.log_windows == [{"epochs": 0, "steps": 0}]  # nothing left to log on resume


def test_ctrl_c_logs_the_partial_window_before_its_checkpoint():
    config = tiny_config(checkpoint_interval=100)
    config.logging.log_interval = 2
    checkpoints, records = StateCheckpoints(), []
    trainer = make_trainer(config, checkpoints=checkpoints, on_log=records.append)
    original = trainer.rollout

    def rollout():
        original()
        if trainer.epoch == 2:  # during epoch 3, after the record of epochs 1-2
            os.kill(os.getpid(), signal.SIGINT)

    trainer.rollout = rollout
    trainer.train()
    assert [r["metric/epoch"] for r in records] == [2, 3]
    assert checkpoints.saved == [(3, 96)]
    assert checkpoints.log_windows == [{"epochs": 0, "steps": 0}]


def test_the_same_stop_told_twice_is_one_stop_and_a_second_ctrl_c_aborts(monkeypatch):
    """Slurm and systemd signal every process of a job, and ab passes its own stop on: a second
    signal within DUPLICATE_WINDOW_S is the same stop. Ctrl-C twice is a person: it aborts, as
    does any second signal after the window."""
    import heartgrid.interrupts as interrupts
    from heartgrid.interrupts import StopRequest

    stop = StopRequest()
    heard = []
    stop.listeners.append(heard.append)
    with stop.on_signals(["SIGTERM"]):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # ab's stop, just after the scheduler's
        assert stop.requested and stop.reason == "SIGTERM" and heard == []  # not from the handler
        stop.announce()
        stop.announce()
        assert heard == ["SIGTERM"]
        monkeypatch.setattr(interrupts, "DUPLICATE_WINDOW_S", 0.0)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)

    twice = StopRequest()
    with twice.on_signals([]):
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_after_a_stop_the_process_that_exits_ignores_the_signals_it_caught():
    """`until_exit` (the `train` command of a process): the scheduler's second SIGTERM, while
    the process exits with its checkpoint saved, must not make exit 3 into 143; Ctrl-C keeps
    its handler. Called from Python (until_exit off), the handlers are put back as they were."""
    from heartgrid.interrupts import StopRequest

    sigterm, sigint = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        stop = StopRequest()
        with stop.on_signals(["SIGTERM"], until_exit=True):
            os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is sigint  # Ctrl-C still interrupts a hung exit
        os.kill(os.getpid(), signal.SIGTERM)  # ignored
    finally:
        signal.signal(signal.SIGTERM, sigterm)
        signal.signal(signal.SIGINT, sigint)
    with StopRequest().on_signals(["SIGTERM"], until_exit=True):  # no stop: put back
        pass
    assert signal.getsignal(signal.SIGTERM) is sigterm
    stop = StopRequest()
    with stop.on_signals(["SIGTERM"]):
        os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested and signal.getsignal(signal.SIGTERM) is sigterm
