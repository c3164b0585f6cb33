"""The CLI around every verb: a mistyped verb gets a `did you mean`, and a warning shown while
a verb runs is one readable line on stderr."""

from __future__ import annotations

import argparse
import re
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
    # The command as typed, reordered: positionals (wherever they were), overrides, then the
    # options with their values, a value with '=' included (sweep's --param).
    assert last_error(capsys, "train", "--nproc", "2", "small_cardinal", "--overwrite", "x=1").endswith(
        ": heartgrid train small_cardinal x=1 --nproc 2 --overwrite")
    assert last_error(capsys, "sweep", "small_cardinal", "--name", "s", "--param", "trainer.gamma=uniform:0.9:0.99",
                      "--trials", "2", "trainer.x=1").endswith(
        ": heartgrid sweep small_cardinal trainer.x=1 --name s --param trainer.gamma=uniform:0.9:0.99 --trials 2")
    # Verbs without overrides say where they go, or that there are none.
    assert last_error(capsys, "ab", "small_cardinal", "small_cardinal", "--seeds", "2", "trainer.x=1").endswith(
        "trainer.x=1; each side's overrides go inside its quoted side: \"RECIPE key=value ...\"")
    assert last_error(capsys, "compare", "r1", "--vs", "r2", "--metric", "x", "a=b").endswith(
        "a=b; heartgrid compare takes no key=value words")
    # An option other tools have for what is a config key here becomes that override.
    assert last_error(capsys, "train", "small_cardinal", "--steps", "20000", "run=x").endswith(
        "--steps 20000 run=x; --steps is trainer.total_timesteps here; key=value overrides go right after the "
        "recipe, before any --option: heartgrid train small_cardinal trainer.total_timesteps=20000 run=x")
    # Beside an option it does not know, whose values are a guess: the did-you-mean, no command.
    assert last_error(capsys, "train", "small_cardinal", "--nprocs", "2", "run=x").endswith(
        "did you mean --nproc? (`heartgrid train --help` lists its options); key=value overrides go right "
        "after the recipe, before any --option")
    # bench train's runs last --seconds: --steps there is no config key but a near miss.
    assert last_error(capsys, "bench", "train", "small_cardinal", "--steps", "3").endswith(
        "--steps 3; did you mean --seconds? (`heartgrid bench train --help` lists its options)")
    # A mistyped --option=value is an option, not an override.
    assert last_error(capsys, "train", "small_cardinal", "--nprocs=2").endswith(
        "--nprocs=2; did you mean --nproc? (`heartgrid train --help` lists its options)")


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
