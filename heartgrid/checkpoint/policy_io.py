"""A policy on disk: `policy.safetensors` (weights) + `policy.json` (what to build them into).

    policy.json = {"format_version": 1, "spec": policy.spec()}

The spec (heartgrid/policies/base.py) names the architecture and its config, the feature and
action vocabularies and the observation shape, so `heartgrid.policies.policy_from_spec` rebuilds
the same modules and the weights load by parameter name. Nothing is pickled: loading a policy
runs no code from the file and needs no trainer code (this module never imports
`heartgrid.trainer`; a test checks it in a fresh interpreter).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from torch import Tensor, nn

from heartgrid.checkpoint.durable import replace_file_atomically
from heartgrid.checkpoint.errors import CheckpointError
from heartgrid.checkpoint.manifest import POLICY_SPEC, POLICY_WEIGHTS
from heartgrid.checkpoint.uri import resolve_policy_uri
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies import policy_from_spec

POLICY_FORMAT_VERSION = 1

# Spec entries that fix the shapes and meaning of the weights, checked before loading weights
# into an existing policy. (`bound` and `num_parameters` are informational.)
ARCHITECTURE_KEYS = ("name", "config", "core", "obs_shape", "features", "action_names")


def encode_policy(policy: nn.Module) -> dict[str, bytes]:
    """The two policy files as bytes: {"policy.safetensors": …, "policy.json": …}."""
    # Clone to contiguous CPU tensors: safetensors refuses views that share storage, and tied
    # parameters load back correctly into every module that names them.
    weights = {
        name: tensor.detach().to("cpu", copy=True).contiguous()
        for name, tensor in policy.state_dict().items()
    }
    body = {"format_version": POLICY_FORMAT_VERSION, "spec": policy.spec()}
    spec_text = json.dumps(body, indent=2, sort_keys=True)
    return {POLICY_WEIGHTS: safetensors_save(weights), POLICY_SPEC: spec_text.encode()}


def save_policy(directory: str | Path, policy: nn.Module) -> Path:
    """Write `policy.safetensors` and `policy.json` into `directory` (each file atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in encode_policy(policy).items():
        replace_file_atomically(directory / name, data)
    return directory


def read_policy_spec(directory: Path) -> dict[str, Any]:
    """The spec in a policy directory's policy.json, refusing an unreadable or unknown file."""
    if not (directory / POLICY_SPEC).is_file():
        raise CheckpointError(directory, f"missing file {POLICY_SPEC}")
    try:
        body = json.loads((directory / POLICY_SPEC).read_text())
        version, spec = body["format_version"], body["spec"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(directory, f"unreadable {POLICY_SPEC}: {type(e).__name__}: {e}") from None
    if version != POLICY_FORMAT_VERSION:
        raise CheckpointError(
            directory,
            f"{POLICY_SPEC} has format version {version}; "
            f"this HeartGrid reads version {POLICY_FORMAT_VERSION}",
        )
    return spec


def read_policy_files(directory: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(spec, CPU state dict) of a policy directory, refusing unreadable or unknown files."""
    for name in (POLICY_SPEC, POLICY_WEIGHTS):
        if not (directory / name).is_file():
            raise CheckpointError(directory, f"missing file {name}")
    spec = read_policy_spec(directory)
    try:
        weights = safetensors_load((directory / POLICY_WEIGHTS).read_bytes())
    except (OSError, SafetensorError) as e:
        raise CheckpointError(directory, f"unreadable {POLICY_WEIGHTS}: {e}") from None
    return spec, weights


def check_architecture(saved: dict[str, Any], target: dict[str, Any], source: Path) -> None:
    """Refuse to load weights saved from `saved` (a spec) into a policy described by `target`,
    naming both when their architecture, config, observation shape or vocabularies differ."""
    if saved.get("name") != target.get("name"):
        raise CheckpointError(
            source,
            f"architecture mismatch: the checkpoint holds {_label(saved)}, the policy to load it "
            f"into is {_label(target)}; set policy.name={saved.get('name')} or start a new run",
        )
    for key in ARCHITECTURE_KEYS[1:]:
        if key in saved and key in target and saved[key] != target[key]:
            raise CheckpointError(
                source,
                f"architecture mismatch in {key} of policy {saved['name']!r}: "
                f"checkpoint {_describe_difference(saved[key], target[key])}",
            )


def _label(spec: dict[str, Any]) -> str:
    cls = f" ({spec['class']})" if "class" in spec else ""
    return f"a {spec.get('name')!r} policy{cls}"


def _describe_difference(saved: Any, target: Any) -> str:
    if isinstance(saved, dict) and isinstance(target, dict):
        keys = sorted(k for k in saved.keys() | target.keys() if saved.get(k) != target.get(k))
        return ", ".join(f"{k}={saved.get(k)!r} vs policy {k}={target.get(k)!r}" for k in keys)
    if isinstance(saved, list) and isinstance(target, list) and saved and isinstance(saved[0], dict):
        saved, target = [d.get("name") for d in saved], [d.get("name") for d in target]
    return f"{saved!r} vs policy {target!r}"


def _config_errors(error: ValidationError) -> str:
    """The reasons a spec's policy config fails PolicyConfig: a validator's own message as it
    wrote it (without pydantic's "Value error, " and type footer), else `field: message`."""
    reasons = []
    for item in error.errors():
        if "error" in item.get("ctx", {}):
            reasons.append(str(item["ctx"]["error"]))
        else:
            reasons.append(f"{'.'.join(map(str, item['loc']))}: {item['msg']}")
    return "; ".join(reasons)


def load_weights(
    policy: nn.Module, spec: dict[str, Any], weights: dict[str, Tensor], source: Path
) -> None:
    """Load `weights` (saved with `spec`) into `policy` after checking the architecture matches."""
    check_architecture(spec, policy.spec(), source)
    try:
        result = policy.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # shapes differ where a spec does not tell (a user's module)
        raise CheckpointError(source, f"weights do not fit policy {spec.get('name')!r}: {e}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            source,
            f"weights do not fit policy {spec.get('name')!r}: missing {result.missing_keys}, "
            f"unexpected {result.unexpected_keys}",
        )


def load_policy(
    uri: str | Path,
    device: str | torch.device = "cpu",
    features: FeatureRegistry | None = None,
    action_names: list[str] | None = None,
) -> nn.Module:
    """Build the policy a URI names (see uri.py) with its saved weights, on `device`.

    With `features` / `action_names` (the caller's engine), the policy is re-bound to them by
    name through its `adapt` method: moved features are remapped, unknown ones ignored, new
    actions get fresh embeddings. Without them the policy reads observations laid out like its
    own feature vocabulary and scores its whole action vocabulary (both recorded in the spec).
    """
    return load_policy_with_source(uri, device, features, action_names)[0]


def load_policy_with_source(
    uri: str | Path,
    device: str | torch.device = "cpu",
    features: FeatureRegistry | None = None,
    action_names: list[str] | None = None,
) -> tuple[nn.Module, Path]:
    """(policy, the directory it was loaded from), as `load_policy`: for callers that also
    need the checkpoint (its manifest, its run's config) without resolving the URI again (a
    run directory's newest intact checkpoint can change between two resolutions)."""
    directory = resolve_policy_uri(uri)  # checks a trainer checkpoint's policy files
    spec, weights = read_policy_files(directory)
    try:
        policy = policy_from_spec(spec)
    except (ValueError, TypeError) as e:
        reason = _config_errors(e) if isinstance(e, ValidationError) else str(e)
        raise CheckpointError(directory, f"cannot rebuild policy {spec.get('name')!r}: {reason}") from None
    load_weights(policy, spec, weights, directory)
    if features is not None or action_names is not None:
        if features is None:
            features = FeatureRegistry.from_list(spec["features"])
        policy.adapt(features, list(action_names if action_names is not None else spec["action_names"]))
    return policy.to(device), directory
