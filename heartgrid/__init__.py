"""HeartGrid: train teams of agents with reinforcement learning in a multi-agent gridworld."""

__version__ = "0.1.0"
