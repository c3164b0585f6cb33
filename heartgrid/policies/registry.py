"""Policy names → classes, and building a policy from a config or from a saved spec.

`policy.name` is a built-in name (`conv_lstm`, `fast`, `latent_attn_tiny`, `latent_attn_small`,
`latent_attn_med`) or `package.module:ClassName` for a user's own module (README.md here).
`policy.kwargs` go to the class's constructor as keyword arguments.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import fields
from typing import Any

from torch import nn

from heartgrid.config.run import BUILTIN_POLICIES, PolicyConfig
from heartgrid.engine.features import FeatureRegistry
from heartgrid.policies.base import Policy
from heartgrid.policies.fast import ConvLSTMPolicy, FastPolicy
from heartgrid.policies.latent_attn import LatentAttnMed, LatentAttnSmall, LatentAttnTiny
from heartgrid.policies.recurrent import CoreOptions, LSTMActorCritic

POLICIES: dict[str, type[Policy]] = {
    "conv_lstm": ConvLSTMPolicy,
    "fast": FastPolicy,
    "latent_attn_tiny": LatentAttnTiny,
    "latent_attn_small": LatentAttnSmall,
    "latent_attn_med": LatentAttnMed,
}

# The config validates `policy.name` against its own list, which must name exactly these.
assert set(POLICIES) == set(BUILTIN_POLICIES), "update BUILTIN_POLICIES in heartgrid/config/run.py"

REQUIRED_METHODS = ("initial_state", "forward", "forward_sequence", "spec", "adapt")


def policy_class(name: str) -> type[nn.Module]:
    """The class a `policy.name` refers to; a clear error for unknown names."""
    if name in POLICIES:
        return POLICIES[name]
    if ":" not in name:
        raise ValueError(
            f"unknown policy {name!r}: use one of {sorted(POLICIES)} or 'package.module:ClassName' "
            "for your own module (see heartgrid/policies/README.md)"
        )
    module_name, _, class_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"policy {name!r}: cannot import module {module_name!r} ({error}); make it importable, "
            "e.g. run from the directory that holds it with PYTHONPATH=. or install its package"
        ) from error
    cls = getattr(module, class_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ValueError(
            f"policy {name!r}: {module_name} has no torch.nn.Module class named {class_name!r}"
        )
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise ValueError(
            f"policy {name!r} lacks {missing}; subclass heartgrid.policies.Policy "
            "(see heartgrid/policies/README.md)"
        )
    return cls


def make_policy(
    config: PolicyConfig,
    features: FeatureRegistry,
    action_names: list[str],
    obs_shape: tuple[int, int, int],
    *,
    core: dict[str, Any] | None = None,
) -> Policy:
    """Build the policy named by `config.name`; weights come from torch's global RNG, so
    `torch.manual_seed(seed)` beforehand fixes them. `core`: a saved spec's resolved core
    options, which win over the class's current defaults (a checkpoint rebuilds as trained)."""
    cls = check_policy_config(config)
    return cls(config, features, list(action_names), tuple(obs_shape), **{**config.kwargs, **(core or {})})


RESERVED = {"self", "config", "features", "action_names", "obs_shape"}


def check_policy_config(config: PolicyConfig) -> type[nn.Module]:
    """The class `config` names, after checking its kwargs: names the class accepts, and for a
    built-in's core options, their values. A ValueError says what to change (the CLI turns it
    into a usage error before anything is trained)."""
    cls = policy_class(config.name)
    named, takes_any = accepted_kwargs(cls)
    unknown = sorted(set(config.kwargs) - named)
    if unknown and not takes_any:
        close = {name: difflib.get_close_matches(name, sorted(named), n=1) for name in unknown}
        hints = "".join(f"; did you mean {c[0]!r} for {n!r}?" for n, c in close.items() if c)
        raise ValueError(
            f"policy.kwargs {unknown} are not accepted by policy {config.name!r}; "
            f"it accepts {sorted(named) or 'none'}{hints}"
        )
    if issubclass(cls, LSTMActorCritic):
        core_names = {f.name for f in fields(CoreOptions)}
        cls.core_defaults.updated(**{k: v for k, v in config.kwargs.items() if k in core_names})
    return cls


def accepted_kwargs(cls: type) -> tuple[set[str], bool]:
    """(keyword arguments `cls(...)` names, whether it takes any other). A built-in's
    `**core` goes on to the LSTM core (`LSTMActorCritic`), whose options are then accepted by
    name; any other constructor with `**kwargs` accepts anything, as before."""
    params = inspect.signature(cls.__init__).parameters
    named = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_any and issubclass(cls, LSTMActorCritic):
        core = inspect.signature(LSTMActorCritic.__init__).parameters
        named |= {n for n, p in core.items() if p.kind is p.KEYWORD_ONLY}
        takes_any = False
    return named - RESERVED, takes_any


def policy_from_spec(spec: dict[str, Any]) -> Policy:
    """Rebuild the architecture `policy.spec()` described (weights not included: load the
    state dict next, then `policy.adapt(engine.features, engine.action_space.names)`)."""
    try:
        config = PolicyConfig.model_validate(spec["config"])
        features = FeatureRegistry.from_list(spec["features"])
        return make_policy(config, features, spec["action_names"], tuple(spec["obs_shape"]),
                           core=spec.get("core"))
    except KeyError as error:
        raise ValueError(
            f"policy spec lacks the key {error}; was it written by Policy.spec()?"
        ) from error
