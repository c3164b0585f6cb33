"""Policies: `conv_lstm` (the default), `fast` (the reference), the latent-attention family,
and the interface for your own module."""

from heartgrid.policies.actions import ActionEmbeddingHead, LinearActionHead, NamedActionHead
from heartgrid.policies.base import Policy, State, reset_state
from heartgrid.policies.inputs import FeatureInput
from heartgrid.policies.registry import POLICIES, make_policy, policy_class, policy_from_spec

__all__ = [
    "POLICIES",
    "ActionEmbeddingHead",
    "FeatureInput",
    "LinearActionHead",
    "NamedActionHead",
    "Policy",
    "State",
    "make_policy",
    "policy_class",
    "policy_from_spec",
    "reset_state",
]
