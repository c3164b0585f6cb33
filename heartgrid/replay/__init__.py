"""Replays: record an env of a batch, read it back step by step, watch it in a browser (docs/replays.md)."""
