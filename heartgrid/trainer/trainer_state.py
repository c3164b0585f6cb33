"""What a checkpoint keeps of a Trainer besides the policy weights: everything an exact resume
needs (trainer.py's `state_dict` / `load_state_dict`).

Counters, the optimizer, every random generator (torch's, numpy's, Python's, the actions', the
minibatch sampler's), the engine, the recurrent state and episode starts, timers, unlogged
statistics and the log window, the curriculum, the last record and the latest scores; with NPCs
(`npc`) their recurrent state, checkpoint draws, the checkpoint they play and their generator;
with a kickstart teacher (`teacher`) its recurrent state. Those two are absent without the
feature, so a run without them saves what it saved before they existed.

Several ranks: `heartgrid/checkpoint/world.py` lists the entries each rank keeps for itself.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import torch

from heartgrid.trainer.process import numpy_rng_state, resumed_threads, set_numpy_rng_state

if TYPE_CHECKING:
    from heartgrid.trainer.trainer import Trainer


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    state = {
        "epoch": trainer.epoch,
        "agent_step": trainer.agent_step,
        "optimizer": trainer.optimizer.state_dict(),
        # Recomputed from agent_step on load (schedules are pure functions of progress);
        # stored so a checkpoint shows the values that were in effect.
        "schedules": dict(trainer.hyper),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if trainer.device.type == "cuda" else [],
            "numpy": numpy_rng_state(),
            "python": random.getstate(),
            "actions": trainer.action_generator.get_state(),
            "sampler": trainer.sampler.state_dict(),
        },
        "engine": trainer.engine.state_dict(),
        "recurrent_state": [s.cpu() for s in trainer.state],
        "episode_starts": trainer.episode_starts.cpu(),
        "timer": trainer.timer.state_dict(),
        "stats": trainer.stats.state_dict(),
        "log_window": {"epochs": trainer.epochs_since_log, "steps": trainer.steps_since_log},
        "curriculum": trainer.curriculum.state_dict(),
        "last_record": dict(trainer.last_record),
        "scores": dict(trainer.scores),
        "scores_epoch": trainer.scores_epoch,
        "torch_threads": torch.get_num_threads(),
    }
    npcs = trainer.sides.state_dict()
    if npcs is not None:
        state["npc"] = npcs
    if trainer.kickstarter is not None:
        state["teacher"] = trainer.kickstarter.teacher.state_dict()
    return state


def restore_trainer_state(trainer: Trainer, state: dict[str, Any]) -> None:
    trainer.epoch = int(state["epoch"])
    trainer.saved_epoch = trainer.epoch
    trainer.agent_step = trainer.saved_agent_step = int(state["agent_step"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.hyper = trainer.schedules.values(trainer.agent_step)
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    set_numpy_rng_state(rng["numpy"])
    random.setstate(rng["python"])
    trainer.action_generator.set_state(rng["actions"])
    trainer.sampler.load_state_dict(rng["sampler"])
    trainer.engine.load_state_dict(state["engine"])
    trainer.state = tuple(s.to(trainer.device) for s in state["recurrent_state"])
    trainer.episode_starts = state["episode_starts"].to(trainer.device)
    trainer.timer.load_state_dict(state["timer"])
    trainer.stats.load_state_dict(state["stats"])
    trainer.epochs_since_log = int(state["log_window"]["epochs"])
    trainer.steps_since_log = int(state["log_window"]["steps"])
    trainer.curriculum.load_state_dict(state["curriculum"])
    trainer.last_record = dict(state.get("last_record", {}))  # absent before this was stored
    trainer.scores = dict(state.get("scores", {}))
    trainer.scores_epoch = int(state.get("scores_epoch", -1))
    trainer.sides.load_state_dict(state.get("npc"))
    note = resumed_threads(trainer.config, trainer.device, state.get("torch_threads"))
    if note is not None:
        trainer.threads_note = note
    if trainer.kickstarter is not None and "teacher" in state:
        trainer.kickstarter.teacher.load_state_dict(state["teacher"])
