"""The CLI around every verb: a mistyped verb gets a `did you mean`, and a warning shown while
a verb runs is one readable line on stderr."""

from __future__ import annotations

import argparse
import re
import shlex
import warnings

import pytest

from heartgrid.checkpoint import CheckpointWarning
from heartgrid.tools import cli, config_cmd


@pytest.mark.parametrize(("argv", "usage", "hint"), [
    (["trian", "small_easy_shaped"], "heartgrid: error: argument VERB", "invalid choice: 'trian'; did you mean 'train'?"),
    (["bench", "evn", "small_easy_shaped"], "heartgrid bench: error: argument KIND",
     "invalid choice: 'evn'; did you mean 'env'?"),
])
def test_a_mistyped_verb_suggests_the_closest(argv, usage, hint, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"{usage}: {hint} (choose from ")


def test_a_verb_like_nothing_lists_the_verbs(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["xyzzy"])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "invalid choice: 'xyzzy' (choose from 'recipes', 'config'" in last and "did you mean" not in last


def test_version_names_heartgrid_python_and_torch(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert re.fullmatch(r"heartgrid \d+\.\d+\.\d+ \(Python 3\.\d+\.\d+, torch \S+\)\n", capsys.readouterr().out)


@pytest.mark.parametrize("verb", [["eval"], ["bench", "env"], ["train"], ["config"], ["play"], ["render"]])
def test_a_missing_argument_names_only_what_is_required(verb, capsys) -> None:
    """argparse lists a `*` positional without a default as required: `eval` said its optional
    recipe and overrides were missing."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(verb)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    expected = "uri" if verb == ["eval"] else "recipe (`heartgrid recipes` lists them)"
    assert last.endswith(f"error: the following arguments are required: {expected}")


def test_no_verb_says_where_the_verbs_are_listed(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == ("heartgrid: error: the following arguments are required: VERB "
                    "(`heartgrid --help` lists them, with what each does)")


def test_a_mistyped_option_suggests_the_closest(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "small_cardinal", "run=m", "--nprocs", "2"])
    assert exit_info.value.code == 2
    usage, *_, last = capsys.readouterr().err.strip().splitlines()
    assert usage.startswith("usage: heartgrid train ")  # the verb's usage, not the root's
    assert last == ("heartgrid train: error: unrecognized arguments: --nprocs 2; did you mean --nproc? "
                    "(`heartgrid train --help` lists its options)")
    # Only the verb's own options: --suite-episodes is baseline save's and regress's, not eval's.
    with pytest.raises(SystemExit):
        cli.main(["eval", "runs/x", "--suite", "navigation", "--suite-episodes", "1"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("--suite-episodes 1; did you mean --episodes? (`heartgrid eval --help` lists its options)")


def last_error(capsys: pytest.CaptureFixture, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_an_override_after_an_option_says_where_overrides_go(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "train", "small_cardinal", "--seconds", "1", "system.torch_threads=1"])
    assert exit_info.value.code == 2
    usage, *_, last = capsys.readouterr().err.strip().splitlines()
    assert usage.startswith("usage: heartgrid bench train ")  # the verb's usage, not the root's
    assert last == ("heartgrid bench train: error: unrecognized arguments: system.torch_threads=1; key=value "
                    "overrides go right after the recipe, before any --option: heartgrid bench train "
                    "small_cardinal system.torch_threads=1 --seconds 1")


@pytest.mark.parametrize(("argv", "ending"), [
    # The command as typed, reordered: positionals (wherever they were), overrides, then the
    # options with their values: a value with '=' (sweep's --param), --opt=value, abbreviations.
    ("train --nproc 2 small_cardinal --overwrite x=1", ": heartgrid train small_cardinal x=1 --nproc 2 --overwrite"),
    ("sweep small_cardinal --name s --param trainer.gamma=uniform:0.9:0.99 --trials 2 trainer.x=1",
     ": heartgrid sweep small_cardinal trainer.x=1 --name s --param trainer.gamma=uniform:0.9:0.99 --trials 2"),
    ("train small_cardinal --nproc=2 x=1", ": heartgrid train small_cardinal x=1 --nproc=2"),
    ("train small_cardinal --np 2 x=1", ": heartgrid train small_cardinal x=1 --np 2"),
    # eval: the policy URI first, whatever it holds; then the recipe and its overrides.
    ("eval runs/lr=0.1 --greedy small_cardinal x=1", ": heartgrid eval runs/lr=0.1 small_cardinal x=1 --greedy"),
    # An option other tools have for what is a config key here becomes that override.
    ("train small_cardinal --steps 20000 run=x", "--steps 20000 run=x; --steps is trainer.total_timesteps here; "
     "key=value overrides go right after the recipe, before any --option: heartgrid train small_cardinal "
     "trainer.total_timesteps=20000 run=x"),
    ("train small_cardinal --seed -1 x=1", ": heartgrid train small_cardinal system.seed=-1 x=1"),
    ("config small_cardinal --lr=0.1", ": heartgrid config small_cardinal trainer.optimizer.learning_rate=0.1"),
    ("bench train small_cardinal --envs 16", "--envs is trainer.num_envs here; key=value overrides go right after "
     "the recipe, before any --option: heartgrid bench train small_cardinal trainer.num_envs=16"),
    # bench train's runs last --seconds: --steps is no config key there.
    ("bench train small_cardinal --steps 3",
     "--steps 3; did you mean --seconds? (`heartgrid bench train --help` lists its options)"),
    # Where the order would be a guess, no command: an option it does not know, a missing value.
    ("train small_cardinal --nprocs 2 run=x", "did you mean --nproc? (`heartgrid train --help` lists its options); "
     "key=value overrides go right after the recipe, before any --option"),
    ("train small_cardinal --steps x=1", "--steps is trainer.total_timesteps here; key=value overrides go right "
     "after the recipe, before any --option"),
    # Verbs and forms without overrides say where they go, or that there are none.
    ("ab small_cardinal small_cardinal --seeds 2 trainer.x=1",
     "trainer.x=1; each side's overrides go inside its quoted side: \"RECIPE key=value ...\""),
    ("compare r1 --vs r2 --metric x a=b", "a=b; heartgrid compare takes no key=value words"),
    ("eval --suite navigation runs/a --json runs/b x=1", "; heartgrid eval --suite takes no key=value words"),
    # A mistyped --option=value is an option, not an override.
    ("train small_cardinal --nprocs=2", "--nprocs=2; did you mean --nproc? (`heartgrid train --help` lists its options)"),
])
def test_unrecognised_words_get_a_hint_and_a_command_that_parses(capsys, argv: str, ending: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv.split())
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith(ending)
    if ": heartgrid " in ending:  # the command offered parses
        command = shlex.split(last.rsplit(": heartgrid ", 1)[1])
        cli.build_parser().parse_args(command)


def warn_during_recipes(monkeypatch: pytest.MonkeyPatch, *warned: tuple[str, type[Warning]]) -> None:
    """Make `heartgrid recipes` warn `warned`, as library code below a verb would."""
    def cmd_recipes(args: argparse.Namespace) -> int:
        for message, category in warned:
            warnings.warn(message, category, stacklevel=1)
        return 0

    monkeypatch.setattr(config_cmd, "cmd_recipes", cmd_recipes)


def test_warnings_print_as_one_line_each(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    warn_during_recipes(
        monkeypatch,
        ("refusing checkpoint runs/a/epoch_000002: bad\n  on two lines", CheckpointWarning),
        ("a library's\nwarning", UserWarning),
    )
    before = warnings.showwarning
    assert cli.main(["recipes"]) == 0
    own, other = capsys.readouterr().err.splitlines()
    # HeartGrid's own warning: the message alone.
    assert own == "heartgrid recipes: warning: refusing checkpoint runs/a/epoch_000002: bad on two lines"
    # Anyone else's (here: this test module, not heartgrid): the category and where from.
    assert re.fullmatch(rf"heartgrid recipes: warning: a library's warning \(UserWarning from {re.escape(__file__)}:\d+\)", other)
    assert warnings.showwarning is before  # put back for whoever calls main next


def test_warning_filters_still_decide_what_shows(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    warn_during_recipes(monkeypatch, ("hidden", UserWarning), ("shown", CheckpointWarning))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="hidden")
        assert cli.main(["recipes"]) == 0
    assert capsys.readouterr().err == "heartgrid recipes: warning: shown\n"


def test_every_config_key_a_hint_names_exists() -> None:
    """The hints' options-to-keys table names real keys: a renamed key would make them advise
    an override that fails."""
    from heartgrid.recipes import build_config
    from heartgrid.tools.cli_hints import CONFIG_OPTIONS

    config = build_config("small_cardinal", []).model_dump()
    for key in set(CONFIG_OPTIONS.values()):
        node = config
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{key} is not a config key"
            node = node[part]


@pytest.mark.parametrize(("where", "reason"), [("afile", "File exists"), ("afile/sub", "Not a directory")])
def test_a_path_the_file_system_refuses_is_one_line_and_exit_4(tmp_path, monkeypatch, capsys, where, reason) -> None:
    """An OSError a command does not handle itself (here `golden` into a file) names the path,
    without a traceback, with the exit status of a file fault."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert cli.main(["golden", where]) == 4
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"heartgrid golden: error: {where}: {reason}"


@pytest.mark.parametrize(("argv", "message"), [
    ("bench env small_cardinal --seconds nan", "--seconds a number > 0"),
    ("bench env small_cardinal --warmup -1", "--warmup one >= 0"),
    ("bench env small_cardinal --envs 0", "--envs must be >= 1, got 0"),
    ("bench train small_cardinal --seconds nan", "--seconds must be a positive number, got nan"),
    ("render small_cardinal --delay inf --steps 1", "--delay a number of seconds >= 0"),
    ("eval some_run --seed 99999999999999999999999", "--seed must be between 0 and 4,294,967,295 (2**32 - 1)"),
    ("eval some_run --seed -1", "--seed must be between 0 and 4,294,967,295"),
    ("play small_cardinal --seed 4294967296", "--seed must be between 0 and 4,294,967,295"),
    ("play small_cardinal --speed nan", "--speed must be in 0..1000 steps a second"),
    ("config small_cardinal system.seed=4294967296", "system.seed: Input should be less than or equal to 4294967295"),
])
def test_numbers_out_of_range_are_usage_errors(argv, message, tmp_path, monkeypatch, capsys) -> None:
    """NaN, infinity, 0 envs and seeds past 32 bits: refused at once (before, some ran forever,
    quietly used a default, or failed deep inside NumPy)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv.split()) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"), OSError(24, "Too many open files")])
def test_an_oserror_of_no_file_keeps_its_traceback(monkeypatch, error) -> None:
    """Only the file system's refusals become exit 4 ("fix the cause, the same command resumes");
    a network error or one naming no file is not the disk's, and says where it came from."""
    def fail(args):
        raise error

    monkeypatch.setattr(config_cmd, "cmd_recipes", fail)
    with pytest.raises(type(error)):
        cli.main(["recipes"])
