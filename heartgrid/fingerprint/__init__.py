"""Behaviour fingerprints: K PPO updates at a small size, every stage recorded, and the first
stage at which two configs or two versions of the code behave differently (see capture.py,
record.py, diverge.py and docs/fingerprint.md)."""

from heartgrid.fingerprint.capture import DEFAULT_UPDATES, Fingerprint, capture, small_config
from heartgrid.fingerprint.diverge import Divergence, first_divergence

__all__ = ["DEFAULT_UPDATES", "Divergence", "Fingerprint", "capture", "first_divergence", "small_config"]
