"""CheckpointManager: exact round trip, atomic writes under a real crash, corrupt checkpoints
refused with path and reason (the previous one used), and keep_last_n deleting for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_testing import outputs, random_obs, small_policy, trainer_state

from heartgrid.checkpoint import CheckpointError, CheckpointManager, CheckpointWarning
from heartgrid.checkpoint import durable
from heartgrid.checkpoint.durable import replace_directory, sha256_bytes
from heartgrid.checkpoint import manifest as manifest_module

REPO = Path(__file__).resolve().parents[2]
FILES = {"manifest.json", "policy.json", "policy.safetensors", "trainer_state.pt"}


def saved_run(tmp_path: Path, epochs: list[int], keep_last_n: int | None = None) -> CheckpointManager:
    manager = CheckpointManager(tmp_path / "run", keep_last_n)
    for epoch in epochs:
        policy = small_policy(seed=epoch)
        manager.save(epoch, epoch * 100, policy, trainer_state(policy, epoch))
    return manager


def test_round_trip_is_exact(tmp_path: Path) -> None:
    policy = small_policy(seed=3)
    state = trainer_state(policy, epoch=7)
    manager = CheckpointManager(tmp_path / "run", keep_last_n=3)
    path = manager.save(7, 700, policy, state)
    assert path == tmp_path / "run" / "checkpoints" / "epoch_000007"
    assert {p.name for p in path.iterdir()} == FILES

    loaded = manager.load_latest()
    assert (loaded.path, loaded.epoch, loaded.agent_step, loaded.refused) == (path, 7, 700, [])
    restored = small_policy(seed=99)
    loaded.restore_policy(restored)
    for name, tensor in policy.state_dict().items():
        assert torch.equal(restored.state_dict()[name], tensor), name
    obs = random_obs(5, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(outputs(policy, obs), outputs(restored, obs)))

    # The optimizer state loads into a fresh optimizer and is the same, tensor for tensor.
    optimizer = torch.optim.Adam(restored.parameters(), lr=1e-3)
    optimizer.load_state_dict(loaded.trainer_state["optimizer"])
    for key, saved in state["optimizer"]["state"].items():
        for name, value in saved.items():
            assert torch.equal(optimizer.state_dict()["state"][key][name], value), (key, name)
    assert optimizer.state_dict()["param_groups"] == state["optimizer"]["param_groups"]

    # Every generator state comes back and continues the same stream.
    rng = loaded.trainer_state["rng"]
    assert torch.equal(rng["torch"], state["rng"]["torch"])
    assert rng["python"] == state["rng"]["python"]
    assert rng["numpy_generator"] == state["rng"]["numpy_generator"]
    a, b = torch.Generator(), torch.Generator()
    a.set_state(rng["actions"])
    b.set_state(state["rng"]["actions"])
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    assert loaded.trainer_state["schedules"] == {"learning_rate": 1e-3, "clip_coef": 0.1}


def test_no_checkpoint_yet_is_none(tmp_path: Path) -> None:
    assert CheckpointManager(tmp_path / "fresh").load_latest() is None


def test_manifest_records_size_and_sha256_of_every_file(tmp_path: Path) -> None:
    path = saved_run(tmp_path, [4]).checkpoints()[0]
    manifest = json.loads((path / "manifest.json").read_text())
    assert (manifest["format_version"], manifest["epoch"], manifest["agent_step"]) == (1, 4, 400)
    assert set(manifest["files"]) == FILES - {"manifest.json"}
    for name, entry in manifest["files"].items():
        data = (path / name).read_bytes()
        assert entry == {"size": len(data), "sha256": sha256_bytes(data)}


CRASH_SCRIPT = """
import os, torch
from heartgrid.checkpoint import CheckpointManager
import heartgrid.checkpoint.manager as manager_module

class Linear(torch.nn.Linear):  # the manager needs only state_dict() and spec()
    def spec(self):
        return {{"name": "linear"}}

manager = CheckpointManager({run!r}, keep_last_n=5)
manager.save(1, 100, Linear(3, 2), {{"epoch": 1}})
if {point!r} == "before_rename":
    os.rename = lambda *a: os._exit(17)  # the process dies right before the rename
else:
    calls = []
    def write_then_die(path, data):  # dies while writing the second file of the checkpoint
        if calls:
            open(path, "wb").write(data[: len(data) // 2])
            os._exit(17)
        calls.append(path)
        open(path, "wb").write(data)
    manager_module.write_synced = write_then_die
manager.save(2, 200, Linear(3, 2), {{"epoch": 2}})
"""


@pytest.mark.parametrize("point", ["before_rename", "while_writing"])
def test_a_crash_during_save_leaves_no_visible_checkpoint(tmp_path: Path, point: str) -> None:
    run = tmp_path / "run"
    script = CRASH_SCRIPT.format(run=str(run), point=point)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 17, proc.stderr
    checkpoints = run / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [".tmp-epoch_000002", "epoch_000001"]

    manager = CheckpointManager(run, keep_last_n=5)
    assert [p.name for p in manager.checkpoints()] == ["epoch_000001"]
    loaded = manager.load_latest()
    assert (loaded.epoch, loaded.refused) == (1, [])

    # The next save clears the leftover of the crashed one.
    policy = small_policy(seed=2)
    manager.save(2, 200, policy, trainer_state(policy, 2))
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_000001", "epoch_000002"]
    assert manager.load_latest().epoch == 2


def _truncate(path: Path) -> None:
    data = (path / "policy.safetensors").read_bytes()
    (path / "policy.safetensors").write_bytes(data[: len(data) - 100])


def _flip_byte(path: Path) -> None:
    data = bytearray((path / "trainer_state.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "trainer_state.pt").write_bytes(bytes(data))


def _unreadable_but_listed(path: Path) -> None:
    """A trainer_state.pt that matches its manifest but is not a torch file."""
    garbage = b"not a torch file" * 10
    (path / "trainer_state.pt").write_bytes(garbage)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["trainer_state.pt"] = {"size": len(garbage), "sha256": sha256_bytes(garbage)}
    (path / "manifest.json").write_text(json.dumps(manifest))


CORRUPTIONS = {
    "truncated weights": (_truncate, r"policy.safetensors is \d+ bytes but the manifest says \d+ \(truncated"),
    "flipped byte": (_flip_byte, r"checksum mismatch in trainer_state.pt"),
    "deleted spec": (lambda p: (p / "policy.json").unlink(), r"missing file policy.json"),
    "deleted manifest": (lambda p: (p / "manifest.json").unlink(), r"missing file manifest.json"),
    "garbage manifest": (lambda p: (p / "manifest.json").write_text("{oops"), r"unreadable manifest.json: not JSON"),
    "manifest of the wrong shape": (
        lambda p: (p / "manifest.json").write_text(json.dumps(
            {**json.loads((p / "manifest.json").read_text()), "files": {"policy.json": "deadbeef"}})),
        r"unreadable manifest.json: not a checkpoint manifest \(it needs format_version"),
    "unreadable state": (_unreadable_but_listed, r"unreadable trainer_state.pt"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_checkpoint_is_refused_and_the_previous_used(tmp_path: Path, corruption: str) -> None:
    manager = saved_run(tmp_path, [1, 2])
    newest = manager.checkpoints()[-1]
    corrupt, reason = CORRUPTIONS[corruption]
    corrupt(newest)

    with pytest.warns(CheckpointWarning) as caught:
        loaded = manager.load_latest()
    assert loaded.epoch == 1 and loaded.path.name == "epoch_000001"
    message = str(caught[0].message)
    assert str(newest) in message
    assert re.search(reason, message), message
    assert [e.path for e in loaded.refused] == [newest]
    # The weights are those of epoch 1 (policy seed 1), not of the corrupt epoch 2.
    restored = small_policy(seed=50)
    loaded.restore_policy(restored)
    assert torch.equal(restored.state_dict()["critic.2.weight"], small_policy(seed=1).state_dict()["critic.2.weight"])


@pytest.mark.parametrize("name", ["trainer_state.pt", "manifest.json"])
def test_a_checkpoint_file_that_cannot_be_read_is_a_file_fault_not_a_rollback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """No permission or an I/O error is not damage: refusing the checkpoint would train over it
    from an older one. The error ends the command (the CLI: one line naming the file, exit 4),
    and the same command resumes from it once the cause is fixed. Simulated: this suite may run
    as root, whom chmod 000 does not stop."""
    manager = saved_run(tmp_path, [1, 2])
    newest = manager.checkpoints()[-1]
    target = newest / name
    hash_file, read_text = manifest_module.sha256_file, Path.read_text

    def denying(read):
        def denied(path: Path, *args, **kwargs):
            if path == target:
                raise PermissionError(13, "Permission denied", str(path))
            return read(path, *args, **kwargs)
        return denied

    monkeypatch.setattr(manifest_module, "sha256_file", denying(hash_file))
    monkeypatch.setattr(Path, "read_text", denying(read_text))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checkpoint is refused
        with pytest.raises(PermissionError) as error:
            manager.load_latest()
    assert error.value.filename == str(target)
    monkeypatch.undo()
    assert manager.load_latest().epoch == 2  # once it can be read again


def test_no_valid_checkpoint_at_all_is_an_error_listing_every_reason(tmp_path: Path) -> None:
    manager = saved_run(tmp_path, [1, 2])
    first, second = manager.checkpoints()
    (first / "policy.json").unlink()
    _flip_byte(second)
    with pytest.warns(CheckpointWarning), pytest.raises(CheckpointError) as error:
        manager.load_latest()
    text = str(error.value)
    assert "no valid checkpoint" in text and str(tmp_path / "run" / "checkpoints") in text
    assert "epoch_000001: missing file policy.json" in text
    assert "epoch_000002: checksum mismatch in trainer_state.pt" in text


def test_keep_last_n_deletes_older_checkpoints_for_real(tmp_path: Path) -> None:
    manager = saved_run(tmp_path, [1, 2, 3, 4, 5], keep_last_n=2)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_000004", "epoch_000005"]
    files = [p for p in checkpoints.rglob("*") if p.is_file()]
    assert len(files) == 2 * len(FILES)
    assert not (checkpoints / "epoch_000003").exists()
    assert manager.load_latest().epoch == 5


def test_pruning_never_removes_the_new_checkpoint_for_a_newer_corrupt_one(tmp_path: Path) -> None:
    """Resumed from epoch 4 because epoch 6 is corrupt, the run saves epoch 5 with keep_last_n=1:
    epoch 5 is kept (epoch 4 deleted) and is what the next resume uses."""
    saved_run(tmp_path, [4, 6])
    _flip_byte(tmp_path / "run" / "checkpoints" / "epoch_000006")
    manager = CheckpointManager(tmp_path / "run", keep_last_n=1)
    policy = small_policy(seed=5)
    manager.save(5, 500, policy, trainer_state(policy, 5))
    assert [p.name for p in manager.checkpoints()] == ["epoch_000005", "epoch_000006"]
    with pytest.warns(CheckpointWarning, match="epoch_000006: checksum mismatch"):
        assert manager.load_latest().epoch == 5


def test_saving_an_epoch_again_replaces_it(tmp_path: Path) -> None:
    manager = saved_run(tmp_path, [3])
    policy = small_policy(seed=8)
    state = trainer_state(policy, 3) | {"timer": {"total_seconds": 99.0}}
    manager.save(3, 300, policy, state)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["epoch_000003"]
    assert manager.load_latest().trainer_state["timer"] == {"total_seconds": 99.0}


def test_replacing_a_directory_keeps_the_old_one_until_the_new_one_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final, staged, old = tmp_path / "name", tmp_path / ".staged", tmp_path / ".old-name"
    for directory, text in ((final, "old"), (staged, "new"), (old, "stale leftover")):
        directory.mkdir()
        (directory / "file").write_text(text)
    renames: list[tuple[Path, Path]] = []
    real_rename = os.rename

    def rename_then_crash(src: Path, dst: Path) -> None:
        if renames:  # the second rename, staged -> final, never happens
            raise OSError("simulated crash")
        renames.append((src, dst))
        real_rename(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(durable.os, "rename", rename_then_crash)
        with pytest.raises(OSError, match="simulated crash"):
            replace_directory(staged, final)
    assert renames == [(final, old)] and not final.exists()
    assert (old / "file").read_text() == "old" and (staged / "file").read_text() == "new"

    replace_directory(staged, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["name"]
    assert (final / "file").read_text() == "new"


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (np.zeros(3), "trainer_state['rng']['bad'] is a numpy.ndarray"),
        (np.float64(1.5), "trainer_state['rng']['bad'] is a numpy.float64"),
        ({"nested": [1, object()]}, "trainer_state['rng']['bad']['nested'][1] is a builtins.object"),
    ],
)
def test_state_that_would_not_load_back_is_refused_before_writing(tmp_path: Path, bad: object, where: str) -> None:
    policy = small_policy()
    state = trainer_state(policy, 1)
    state["rng"]["bad"] = bad
    manager = CheckpointManager(tmp_path / "run")
    with pytest.raises(TypeError, match=re.escape(where)):
        manager.save(1, 100, policy, state)
    assert manager.checkpoints() == []


def test_architecture_mismatch_names_both(tmp_path: Path) -> None:
    manager = saved_run(tmp_path, [1])
    loaded = manager.load_latest()
    other = small_policy(name="latent_attn_tiny")
    with pytest.raises(CheckpointError) as error:
        loaded.restore_policy(other)
    text = str(error.value)
    assert "architecture mismatch" in text and "'fast'" in text and "'latent_attn_tiny'" in text
    assert str(loaded.path) in text

    wider = small_policy(hidden_size=32)
    with pytest.raises(CheckpointError, match=r"hidden_size=16 vs policy hidden_size=32"):
        loaded.restore_policy(wider)


def test_keep_last_n_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep_last_n must be at least 1"):
        CheckpointManager(tmp_path, keep_last_n=0)


def test_checkpoint_files_are_not_left_open_or_partial(tmp_path: Path) -> None:
    """Nothing but complete checkpoints is visible after many saves (no tmp/old leftovers)."""
    saved_run(tmp_path, [1, 2, 2, 3], keep_last_n=5)
    names = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    assert names == ["epoch_000001", "epoch_000002", "epoch_000003"]
