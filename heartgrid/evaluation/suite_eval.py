"""Score policies on every simulation of a suite: `evaluate_suite(policies, suite) -> Scorecard`.

    card = evaluate_suite([policy_from_uri("runs/x"), policy_from_uri("runs/y")], "navigation",
                          device="cuda")

Batched: all episodes of a simulation are the envs of one BatchedEngine on the device, played
at once for the simulation's `max_steps` (desynchronised first episodes are off, so every env
ends on that step and each env gives exactly one episode). Env i plays episode i with seed
`env_seed(simulation seed, i)`, the same for every policy (resolve.py). A simulation whose rooms
are generated gives each env its own room through `set_next_task` before the reset.

A policy is anything with the policy interface's `initial_state(batch, device)`,
`forward(obs, state) -> (logits, values, state)` and `adapt(features, action_names)`. It is
copied before it is bound to each game, so a caller's module (the trainer's live policy, for
evaluation during training) keeps its own binding, device and train/eval mode.

Actions are sampled from the policy's distribution, as in training (seeded by the simulation's
seed); `greedy=True` takes the most likely action.

`replays` (heartgrid.replay): record the first envs' episodes of every simulation, one file
per policy, simulation and episode (`heartgrid eval --suite S --replays DIR`).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Sequence

import torch
from torch import nn

from heartgrid.config.items import ITEMS
from heartgrid.devices import require_device
from heartgrid.engine.action_space import ActionSpace
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.features import FeatureRegistry
from heartgrid.evaluation.npc import NpcPlayers
from heartgrid.evaluation.policy_sources import EvaluatedPolicy, policy_from_module, unique_labels
from heartgrid.evaluation.resolve import ResolvedSimulation
from heartgrid.evaluation.scorecard import EpisodeScore, Result, Scorecard, SimulationInfo, utc_now
from heartgrid.evaluation.simulation import SuiteConfig
from heartgrid.evaluation.suites import LoadedSuite, load_suite, select
from heartgrid.policies.distribution import sample_actions
from heartgrid.replay.requests import ReplayRequest

Progress = Callable[[str, str, Result], None]  # (policy label, simulation key, its result)


def evaluate_suite(
    policies: Sequence[EvaluatedPolicy | nn.Module],
    suite: str | SuiteConfig | LoadedSuite,
    *,
    episodes: int | None = None,
    device: str = "auto",
    seed: int | None = None,
    simulations: Sequence[str] = (),
    greedy: bool = False,
    progress: Progress | None = None,
    replays: ReplayRequest | None = None,
) -> Scorecard:
    """Play every policy on every simulation (or the named `simulations`) of `suite`.

    episodes: per simulation (default: each simulation's own); seed: replaces every
    simulation's seed (a fresh draw of maps; such simulations are new rows in a stats
    database). Raises SuiteError for an unknown suite or simulation or an unplayable game, and
    ValueError when a policy cannot play a game (e.g. another observation window).
    """
    if episodes is not None and episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    loaded = _as_loaded(suite)
    loaded = select(loaded, list(simulations))
    if seed is not None:
        sims = [sim.model_copy(update={"seed": seed}) for sim in loaded.config.simulations]
        loaded = LoadedSuite(loaded.config.model_copy(update={"simulations": sims}), loaded.source,
                             loaded.base_dir)
    resolved = loaded.resolve()  # every simulation is checked before any is played
    players = [p if isinstance(p, EvaluatedPolicy) else policy_from_module(p, f"policy{i}")
               for i, p in enumerate(policies)]
    unique_labels(players)
    device = require_device(device)
    for player in players:  # and every policy against every kind of game
        check_playable(player.module, resolved, device)
    card = Scorecard(
        eval_id=uuid.uuid4().hex, suite=loaded.name, created_at=utc_now(), device=device,
        actions="greedy" if greedy else "sampled", policies=[p.info for p in players],
        simulations=[simulation_info(sim) for sim in resolved], results=[],
    )
    for player in players:
        module = copy.deepcopy(player.module)
        for sim in resolved:
            result = play_simulation(module, sim, player.info.policy_id,
                                     episodes=episodes or sim.config.episodes, device=device,
                                     greedy=greedy, replays=replays, player=player)
            card.results.append(result)
            if progress is not None:
                progress(player.info.label, sim.key, result)
    return card


def check_playable(module: nn.Module, simulations: Sequence[ResolvedSimulation], device: str) -> None:
    """ValueError naming the first simulation that `module` cannot play (a conv policy and
    another observation window, ...), found by one step on an empty observation of each kind
    of game (window and actions), played by a copy: before anything is played or trained.
    Random draws (new actions' embeddings) come from a forked generator: the caller's are
    left as they were."""
    features = FeatureRegistry.default()
    kinds: dict[tuple[int, int, tuple[str, ...]], ResolvedSimulation] = {}  # (window, actions) -> first sim
    for sim in simulations:
        actions = tuple(ActionSpace.from_game(sim.game).names)
        kinds.setdefault((sim.game.obs_height, sim.game.obs_width, actions), sim)
    with torch.random.fork_rng(devices=[device] if str(device).startswith("cuda") else []):
        for (height, width, actions), sim in kinds.items():
            probe = copy.deepcopy(module)
            obs = torch.zeros(1, len(features), height, width, dtype=torch.uint8, device=device)
            try:
                probe.adapt(features, list(actions))
                probe.to(device).eval()
                with torch.no_grad():
                    probe(obs, probe.initial_state(1, device))
            except ValueError as e:
                raise ValueError(f"simulation {sim.key}: {e}") from None


def _as_loaded(suite: str | SuiteConfig | LoadedSuite) -> LoadedSuite:
    if isinstance(suite, LoadedSuite):
        return suite
    if isinstance(suite, SuiteConfig):
        return LoadedSuite(suite, "python", None)
    return load_suite(suite)


def simulation_info(sim: ResolvedSimulation) -> SimulationInfo:
    c = sim.config
    return SimulationInfo(
        key=sim.key, suite=sim.suite, category=c.category, name=c.name, description=c.description,
        config_hash=sim.config_hash, config=sim.config_json, seed=c.seed, max_steps=sim.max_steps,
        metric=c.metric, normalisation=sim.normalisation,
    )


def play_simulation(module: nn.Module, sim: ResolvedSimulation, policy_id: str, *, episodes: int,
                    device: str, greedy: bool = False, replays: ReplayRequest | None = None,
                    player: EvaluatedPolicy | None = None) -> Result:
    """`episodes` episodes of `sim` played at once, one per env; the policy is re-bound to the
    engine's features and actions by name (ValueError if it cannot play this game). `replays`:
    record the first envs' episodes, named after `player` and the simulation."""
    started, clock = utc_now(), time.perf_counter()
    games = sim.games(episodes)
    engine = BatchedEngine(games[0], episodes, device=device, seed=sim.config.seed)
    if sim.config.generator is not None:
        engine.set_next_task(list(range(episodes)), games, list(range(episodes)))
    module.adapt(engine.features, engine.action_space.names)
    module.to(device)
    module.eval()

    # A simulation whose game has NPCs (game.policy_agents_pct < 1): they play their agents, as
    # in heartgrid eval on a recipe (run.py), with their own generator (seed + 1).
    npcs = (NpcPlayers(games[0], episodes, engine.features, engine.action_space.names, engine.device,
                       seed=sim.config.seed) if games[0].npc_policy_uri is not None else None)
    meta = {**_replay_meta(sim, player), **(npcs.replay_meta() if npcs is not None else {})}
    recorders = [] if replays is None else replays.recorders(engine, **meta)
    engine.reset()
    agent_rewards = torch.zeros(engine.num_slots, dtype=torch.float64, device=device)
    generator = torch.Generator(device).manual_seed(sim.config.seed)
    npc_generator = torch.Generator(device).manual_seed(sim.config.seed + 1)
    with torch.inference_mode():  # no autograd records: ~20% less overhead per small forward on a CPU
        for recorder in recorders:
            recorder.begin()
        state = module.initial_state(engine.num_slots, device)
        dones = torch.zeros(engine.num_slots, dtype=torch.bool, device=device)
        for _ in range(sim.max_steps):
            logits, _, state = module(engine.obs, state)
            actions = logits.argmax(dim=-1) if greedy else sample_actions(logits, generator)[0]
            if npcs is not None:
                npcs.act(actions, engine.obs, dones, npc_generator)
            engine.step(actions)
            dones = engine.terminals | engine.truncations
            agent_rewards += engine.rewards
            for recorder in recorders:
                if not recorder.done:
                    recorder.record(actions)
    if replays is not None:
        label = player.info.label if player is not None else policy_id
        replays.write(recorders, label, sim.config.category, sim.config.name)
    batch = engine.drain_episodes()
    if sorted(batch.env_ids.tolist()) != list(range(episodes)):
        raise RuntimeError(f"{sim.key}: after {sim.max_steps} steps the engine reported episodes of "
                           f"envs {sorted(batch.env_ids.tolist())}, expected one from each of "
                           f"{episodes} envs")

    agents = engine.num_agents
    centre = (engine.obs_shape[1] // 2, engine.obs_shape[2] // 2)
    first_inv = engine.features[f"inv:{ITEMS[0]}"].id
    inventory = engine.final_obs[:, first_inv:first_inv + len(ITEMS), centre[0], centre[1]]
    mine = games[0].policy_agents  # the evaluated policy's agents: all of them without NPCs
    inventory = inventory.reshape(episodes, agents, len(ITEMS))[:, :mine].cpu()
    per_agent = agent_rewards.view(episodes, agents)[:, :mine].cpu()
    references: dict[int, float | None] = {}
    scores = []
    for row, env in enumerate(batch.env_ids.tolist()):
        game = games[env]
        if id(game) not in references:
            references[id(game)] = sim.reference(game)
        reference = references[id(game)]
        reward = float(batch.rewards[row])
        metric = reward if sim.config.metric == "reward" else float(batch.agent_stats[sim.config.metric][row])
        stats = {f"env_agent/{k}": float(v[row]) for k, v in batch.agent_stats.items() if float(v[row]) != 0}
        stats.update({f"env_game/{k}": float(v[row]) for k, v in batch.game_stats.items() if float(v[row]) != 0})
        held = {item: inventory[env, :, i].float().tolist() for i, item in enumerate(ITEMS)
                if bool(inventory[env, :, i].any())}
        scores.append(EpisodeScore(
            index=env, seed=sim.episode_seed(env), length=int(batch.lengths[row]), reward=reward,
            metric=metric, reference=reference,
            score=metric / reference if reference else metric,
            agent_rewards=per_agent[env].tolist(), agent_inventory=held, stats=stats,
        ))
    scores.sort(key=lambda e: e.index)
    return Result(policy_id, sim.key, scores, started, utc_now(), time.perf_counter() - clock)


def _replay_meta(sim: ResolvedSimulation, player: EvaluatedPolicy | None) -> dict:
    """What a simulation's replays say about where they come from."""
    meta = {"recipe": sim.config.recipe, "task": sim.key}
    if player is not None:
        info = player.info
        meta.update(policy=info.uri or info.label, epoch=info.epoch, agent_step=info.agent_step)
    return meta
