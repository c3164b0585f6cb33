"""`heartgrid eval`: whole episodes, an even quota per env, and the command end to end on the
batched engine (game from the run's config.json or from a recipe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from checkpoint_testing import FEATURES, TinyUserPolicy

from heartgrid.checkpoint import CheckpointManager
from heartgrid.config.run import PolicyConfig
from heartgrid.engine.batched import BatchedEngine
from heartgrid.engine.stats import EpisodeBatch
from heartgrid.evaluation.evaluate import episode_quotas, evaluate
from heartgrid.evaluation.run import eval_config
from heartgrid.policies import make_policy
from heartgrid.recipes import build_config
from heartgrid.tools import cli
from heartgrid.tools.eval_cmd import format_report

MAX_STEPS = 10


class FakeEngine:
    """Env e runs episodes of length `lengths[e]`; an episode's reward is its env id + its
    index within the env / 10, so the test can tell exactly which episodes were counted."""

    num_agents = 2

    def __init__(self, lengths: list[int]):
        self.lengths = torch.tensor(lengths)
        self.num_envs = len(lengths)
        self.num_slots = self.num_envs * self.num_agents
        self.obs = torch.zeros(self.num_slots, len(FEATURES), 7, 7, dtype=torch.uint8)
        self.actions: list[torch.Tensor] = []

    def reset(self) -> None:
        self.t = torch.zeros(self.num_envs, dtype=torch.long)
        self.episode = torch.zeros(self.num_envs, dtype=torch.long)
        self.finished: list[tuple[int, int, int]] = []

    def step(self, actions: torch.Tensor) -> None:
        self.actions.append(actions.clone())
        self.t += 1
        ended = self.t == self.lengths
        for env in ended.nonzero().flatten().tolist():
            self.finished.append((env, int(self.episode[env]), int(self.lengths[env])))
        self.episode += ended
        self.t[ended] = 0
        self.truncations = ended.repeat_interleave(self.num_agents)
        self.terminals = torch.zeros_like(self.truncations)
        self.obs = self.obs + 1  # something changes, so the policy's outputs change

    def drain_episodes(self) -> EpisodeBatch:
        env, index, length = (torch.tensor(c) for c in zip(*self.finished))
        self.finished = []
        return EpisodeBatch(
            env_ids=env, task_ids=torch.zeros_like(env), rewards=env + index / 10, lengths=length,
            agent_stats={"heart.get": index.float()}, game_stats={},
        )


def tiny_policy() -> torch.nn.Module:
    torch.manual_seed(0)
    config = PolicyConfig(name="checkpoint_testing:TinyUserPolicy")
    return make_policy(config, FEATURES, ["noop_0", "move_0", "move_1"], (len(FEATURES), 7, 7))


def test_quotas_split_episodes_evenly() -> None:
    assert episode_quotas(7, 3).tolist() == [3, 2, 2]
    assert episode_quotas(2, 4).tolist() == [1, 1, 0, 0]


def test_each_env_contributes_its_first_episodes_whatever_their_length() -> None:
    engine = FakeEngine([2, 3, 7])
    result = evaluate(tiny_policy(), engine, episodes=5, max_steps=MAX_STEPS, seed=1)
    # Env 0 finishes 3 episodes before env 2 finishes one; still each env gives its quota.
    assert sorted(result.env_ids.tolist()) == [0, 0, 1, 1, 2]
    assert sorted(result.rewards.tolist()) == pytest.approx([0.0, 0.1, 1.0, 1.1, 2.0])
    assert sorted(result.lengths.tolist()) == [2, 2, 3, 3, 7]
    summary = result.summary()
    assert summary["episodes"] == 5
    assert summary["episode_length"] == {"mean": 3.4, "std": pytest.approx(1.8547, abs=1e-4), "min": 2.0, "max": 7.0}
    assert summary["heart.get"]["max"] == 1.0


def test_sampling_is_seeded_and_greedy_is_the_argmax() -> None:
    policy = tiny_policy()
    runs = {}
    for key, greedy, seed in [("a", False, 3), ("b", False, 3), ("c", False, 4), ("greedy", True, 0)]:
        engine = FakeEngine([3, 3])
        evaluate(policy, engine, episodes=2, max_steps=MAX_STEPS, greedy=greedy, seed=seed)
        runs[key] = torch.stack(engine.actions)
    assert torch.equal(runs["a"], runs["b"]) and not torch.equal(runs["a"], runs["c"])
    with torch.no_grad():
        obs = torch.zeros(4, len(FEATURES), 7, 7, dtype=torch.uint8)
        expected = [policy(obs + t, ())[0].argmax(-1) for t in range(3)]
    assert torch.equal(runs["greedy"], torch.stack(expected))


def test_an_engine_that_never_ends_episodes_is_reported() -> None:
    engine = FakeEngine([10_000])
    with pytest.raises(RuntimeError, match=r"only 0 of 1 episodes ended; the engine does not end episodes"):
        evaluate(tiny_policy(), engine, episodes=1, max_steps=MAX_STEPS)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run of the small recipe (short episodes) with one checkpoint of a fresh `conv_lstm` policy (the default)."""
    config = build_config("small_easy_shaped", ["system.device=cpu", f"game.max_steps={MAX_STEPS}",
                                                f"data_dir={tmp_path}", "run=evaluated"])
    config.run_dir.mkdir(parents=True)
    (config.run_dir / "config.json").write_text(config.to_json())
    engine = BatchedEngine(config.game, 1)
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(hidden_size=16, lstm_layers=1), engine.features, engine.action_names, engine.obs_shape)
    CheckpointManager(config.run_dir).save(3, 384, policy, {"epoch": 3})
    return config.run_dir


def heartgrid(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    if "heartgrid.tools.eval_cmd" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, "heartgrid.tools.eval_cmd"])
    return cli.main(list(argv))


def test_eval_a_run_on_its_own_game(run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    code = heartgrid(monkeypatch, "eval", str(run_dir), "--episodes", "3", "--num-envs", "2", "--device", "cpu", "--json")
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith(f"policy   {run_dir}/checkpoints/epoch_000003 (conv_lstm, epoch 3, agent_step 384)")
    assert out[1].startswith(f"game     {run_dir.resolve()}/config.json; 3 episodes, sampled actions, seed 0")
    assert out[2].startswith("hearts per agent (heart.get)   mean")
    assert out[4].startswith(f"episode length                 mean    {MAX_STEPS}.000")
    summary = json.loads(out[-1])
    assert summary["episodes"] == 3 and summary["epoch"] == 3 and summary["policy"] == "conv_lstm"
    assert summary["episode_length"] == {"mean": MAX_STEPS, "std": 0.0, "min": MAX_STEPS, "max": MAX_STEPS}
    assert set(summary["heart.get"]) == {"mean", "std", "min", "max"}
    assert format_report({**summary, "episodes": 1}).splitlines()[1].endswith(
        "config.json; 1 episode, sampled actions, seed 0")
    assert "action.move.success" in summary["agent_stats"]


def test_eval_on_a_named_recipe_with_overrides(run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    uri = f"file://{run_dir / 'checkpoints' / 'epoch_000003' / 'policy.safetensors'}"
    code = heartgrid(monkeypatch, "eval", uri, "small_easy_shaped", "game.max_steps=6", "--episodes", "1",
                     "--device", "cpu", "--greedy", "--json")
    assert code == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["game"] == "recipe small_easy_shaped" and summary["actions"] == "greedy"
    assert summary["episode_length"]["mean"] == 6


def test_eval_without_a_game_or_policy_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(), FEATURES, ["noop_0"], (len(FEATURES), 7, 7))
    from heartgrid.checkpoint import save_policy

    save_policy(tmp_path / "exported", policy)
    assert heartgrid(monkeypatch, "eval", str(tmp_path / "exported")) == 2
    assert "is not inside a run directory with a config.json; name the recipe" in capsys.readouterr().err
    assert heartgrid(monkeypatch, "eval", str(tmp_path / "nothing"), "small_easy_shaped") == 2
    assert "nothing: no such file or directory" in capsys.readouterr().err
    assert heartgrid(monkeypatch, "eval", str(tmp_path / "exported"), "--episodes", "0") == 2
    assert "--episodes must be at least 1, got 0" in capsys.readouterr().err


def test_eval_of_a_run_with_an_invalid_config_names_the_file(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (run_dir / "config.json").write_text('{"game": {"max_steps": -1}}')
    assert heartgrid(monkeypatch, "eval", str(run_dir), "--device", "cpu") == 2
    err = capsys.readouterr().err
    assert f"error: {run_dir.resolve()}/config.json: invalid config:\n  game.max_steps: " in err


def test_eval_on_a_game_the_policy_cannot_play_is_a_usage_error(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # `conv_lstm` (fast's conv stack) was trained on 7x7 windows; the arena observes 11x11.
    code = heartgrid(monkeypatch, "eval", str(run_dir), "small_easy_shaped", "game.obs_width=11",
                     "game.obs_height=11", "--episodes", "1", "--device", "cpu")
    assert code == 2
    err = capsys.readouterr().err
    assert "built for 7x7 observations, got 11x11" in err and "epoch_000003" in err


def test_eval_of_a_curriculum_run_says_it_plays_the_base_game(tmp_path: Path) -> None:
    # The default recipe trains on a curriculum of tasks around its `game`; eval plays `game`.
    for recipe, curriculum in (("arena_basic_easy_shaped", True), ("small_easy_shaped", False)):
        config = build_config(recipe, [f"data_dir={tmp_path}", f"run={recipe}"])
        config.run_dir.mkdir(parents=True)
        (config.run_dir / "config.json").write_text(config.to_json())
        checkpoint = config.run_dir / "checkpoints" / "epoch_000003"
        checkpoint.mkdir(parents=True)
        played, source = eval_config(checkpoint, None, [], "cpu")
        assert played.game == config.game
        note = " (its base game; the run trained on a curriculum of tasks around it)"
        assert source == f"{config.run_dir / 'config.json'}{note if curriculum else ''}"
