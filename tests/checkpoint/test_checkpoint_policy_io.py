"""Policies on disk: safetensors + JSON spec, every URI form, remapping by name, clear refusals,
and loading without any trainer code."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from checkpoint_testing import ACTIONS, FEATURES, outputs, random_obs, small_policy, trainer_state

from heartgrid.checkpoint import (
    CheckpointError,
    CheckpointManager,
    CheckpointWarning,
    load_policy,
    load_policy_with_source,
    save_policy,
)
from heartgrid.checkpoint.uri import resolve_policy_uri
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.features import Feature, FeatureRegistry
from heartgrid.policies import make_policy

REPO = Path(__file__).resolve().parents[2]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run directory with checkpoints of epochs 1 and 2 (policy seeds 1 and 2)."""
    manager = CheckpointManager(tmp_path / "run", keep_last_n=5)
    for epoch in (1, 2):
        policy = small_policy(seed=epoch)
        manager.save(epoch, epoch * 100, policy, trainer_state(policy, epoch))
    return tmp_path / "run"


def test_save_and_load_policy_round_trip(tmp_path: Path) -> None:
    policy = small_policy(seed=5)
    save_policy(tmp_path / "exported", policy)
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == ["policy.json", "policy.safetensors"]
    body = json.loads((tmp_path / "exported" / "policy.json").read_text())
    assert body["format_version"] == 1 and body["spec"]["name"] == "fast"
    assert body["spec"]["action_names"] == ACTIONS and body["spec"]["config"]["hidden_size"] == 16

    loaded = load_policy(tmp_path / "exported")
    assert type(loaded) is type(policy) and same_weights(loaded, policy)
    obs = random_obs(4, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(outputs(policy, obs), outputs(loaded, obs)))


def test_uri_forms(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = run / "checkpoints" / "epoch_000001", run / "checkpoints" / "epoch_000002"
    monkeypatch.chdir(tmp_path)
    forms = {
        str(run): second,  # a run directory: its newest checkpoint
        str(run / "checkpoints"): second,
        str(first): first,  # a checkpoint directory
        f"file://{first}": first,  # file:///abs/path
        "file://run/checkpoints/epoch_000001": first,  # file://relative/path
        str(first / "policy.safetensors"): first,  # the weights file
        "run/checkpoints/epoch_000002/policy.json": second,
    }
    for uri, expected in forms.items():
        assert resolve_policy_uri(uri).resolve() == expected.resolve(), uri
    assert same_weights(load_policy(f"file://{run}"), small_policy(seed=2))
    assert same_weights(load_policy(first / "policy.safetensors"), small_policy(seed=1))


def test_a_run_directory_skips_a_corrupt_newest_checkpoint(run: Path) -> None:
    newest = run / "checkpoints" / "epoch_000002"
    (newest / "policy.safetensors").write_bytes(b"\0" * 64)
    with pytest.warns(CheckpointWarning, match=rf"refusing checkpoint {newest}: policy.safetensors is 64 bytes"):
        policy = load_policy(run)
    assert same_weights(policy, small_policy(seed=1))
    # Named directly, the corrupt checkpoint is refused, not replaced by another one.
    with pytest.raises(CheckpointError, match=r"epoch_000002: policy.safetensors is 64 bytes but the manifest says"):
        load_policy(newest)
    # A trainer checkpoint without its manifest was not fully written: refused when named too.
    (newest / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match=r"epoch_000002: missing file manifest.json"):
        load_policy(newest)


def test_loading_a_policy_checks_only_the_policy_files_and_names_its_checkpoint(run: Path) -> None:
    """A policy load reads (and hashes) the policy files only; resuming checks every file."""
    newest = run / "checkpoints" / "epoch_000002"
    (newest / "trainer_state.pt").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checkpoint is refused
        policy, source = load_policy_with_source(run)
        assert load_policy_with_source(newest / "policy.json")[1] == newest
    assert source == newest and same_weights(policy, small_policy(seed=2))
    with pytest.warns(CheckpointWarning, match=rf"refusing checkpoint {newest}: trainer_state.pt is 7 bytes"):
        assert CheckpointManager(run).load_latest().epoch == 1


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("missing/run", r"missing/run: no such file or directory"),
        ("s3://bucket/run", r"^s3://bucket/run: unsupported URI scheme 's3'"),
        ("http://host/run", r"^http://host/run: unsupported URI scheme 'http'"),
        ("empty_dir", r"empty_dir: holds neither a policy nor a checkpoints/ directory"),
        ("empty_run", r"empty_run/checkpoints: contains no checkpoint yet"),
        ("notes.txt", r"notes.txt: not a policy file"),
    ],
)
def test_bad_uris_are_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty_run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match=message):
        load_policy(uri)


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    save_policy(tmp_path / "p", small_policy())
    spec_file = tmp_path / "p" / "policy.json"
    body = json.loads(spec_file.read_text())
    spec_file.write_text(json.dumps(body | {"format_version": 7}))
    with pytest.raises(CheckpointError, match=r"policy.json has format version 7; this HeartGrid reads version 1"):
        load_policy(tmp_path / "p")


def test_features_and_actions_are_remapped_by_name(run: Path) -> None:
    """A caller whose engine lays out features and actions differently gets the same decisions."""
    original = small_policy(seed=2)
    # The caller's registry: features reversed, one feature dropped, one the policy never saw.
    kept = [f for f in reversed(list(FEATURES)) if f.name != "swappable"] + [Feature("new:thing", 0, 1.0, "cell")]
    features = FeatureRegistry([Feature(f.name, i, f.normalization, f.scope) for i, f in enumerate(kept)])
    actions = list(reversed(ACTIONS[1:]))  # noop_0 no longer offered, the rest reordered

    policy = load_policy(run, features=features, action_names=actions)

    obs = random_obs(6, seed=9)
    obs[:, FEATURES["swappable"].id] = 0  # the caller cannot see it: the policy reads zeros there
    caller_obs = torch.zeros(6, len(features), *obs.shape[2:], dtype=torch.uint8)
    for feature in features:
        if feature.name in FEATURES:
            caller_obs[:, feature.id] = obs[:, FEATURES[feature.name].id]
    caller_obs[:, features["new:thing"].id] = 200  # ignored by the policy
    logits, values = outputs(policy, caller_obs)
    expected_logits, expected_values = outputs(original, obs)
    assert torch.allclose(values, expected_values, atol=1e-6)
    for j, name in enumerate(actions):
        assert torch.allclose(logits[:, j], expected_logits[:, ACTIONS.index(name)], atol=1e-6), name


def test_a_users_own_module_loads_by_its_spec(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = PolicyConfig(name="checkpoint_testing:TinyUserPolicy")
    policy = make_policy(config, FEATURES, ACTIONS, (len(FEATURES), 7, 7))
    save_policy(tmp_path / "user", policy)
    loaded = load_policy(f"file://{tmp_path / 'user'}", action_names=ACTIONS[::-1])
    assert type(loaded).__name__ == "TinyUserPolicy" and same_weights(loaded, policy)
    obs = random_obs(3, seed=4)
    assert torch.equal(outputs(loaded, obs)[0], outputs(policy, obs)[0].flip(-1))


def test_an_unknown_architecture_is_refused_with_its_name(tmp_path: Path) -> None:
    save_policy(tmp_path / "p", small_policy())
    spec_file = tmp_path / "p" / "policy.json"
    body = json.loads(spec_file.read_text())
    body["spec"]["config"]["name"] = "transformer_xl"
    spec_file.write_text(json.dumps(body))
    with pytest.raises(CheckpointError, match=r"cannot rebuild policy 'fast': unknown policy 'transformer_xl'"):
        load_policy(tmp_path / "p")


LOAD_SCRIPT = """
import sys, torch
from heartgrid.checkpoint import load_policy
policy = load_policy(sys.argv[1])
assert "heartgrid.trainer" not in sys.modules, sorted(m for m in sys.modules if m.startswith("heartgrid.trainer"))
print(sum(float(t.double().sum()) for t in policy.state_dict().values()).hex())
"""


def test_a_policy_loads_without_importing_the_trainer(run: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(run)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    expected = sum(float(t.double().sum()) for t in small_policy(seed=2).state_dict().values())
    assert proc.stdout.strip() == expected.hex()
