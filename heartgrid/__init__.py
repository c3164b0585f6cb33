"""HeartGrid: train teams of agents with reinforcement learning in a multi-agent gridworld."""

import os

# Idle OpenMP threads sleep instead of spinning (libgomp's default is to spin for a while).
# A spinning thread is harmless on a quiet machine, but when another process keeps a core
# busy every parallel operation waits for a descheduled thread: training with two torch
# threads on a busy 2-core machine fell to a third of its speed (benchmarks/threads.py). The
# policy's operations are large enough that sleeping costs them nothing measurable, and the
# engine's small ones run on one thread anyway (BatchedEngine(threads=1)). It must be set
# before torch loads OpenMP: importing heartgrid first does that; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
