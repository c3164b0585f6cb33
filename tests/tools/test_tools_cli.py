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


def test_an_override_after_an_option_says_where_overrides_go(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "train", "small_cardinal", "--seconds", "1", "system.torch_threads=1"])
    assert exit_info.value.code == 2
    usage, *_, last = capsys.readouterr().err.strip().splitlines()
    assert usage.startswith("usage: heartgrid bench train ")  # the verb's usage, not the root's
    assert last == ("heartgrid bench train: error: unrecognized arguments: system.torch_threads=1; key=value "
                    "overrides go right after the recipe, before any --option: heartgrid bench train "
                    "small_cardinal system.torch_threads=1 --seconds 1")
    # An option other tools have for what is a config key here names the key.
    with pytest.raises(SystemExit):
        cli.main(["train", "small_cardinal", "run=x", "--steps", "20000"])
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "--steps 20000; that is a config key here: trainer.total_timesteps=..., right after the recipe")
    # A mistyped --option=value is an option, not an override.
    with pytest.raises(SystemExit):
        cli.main(["train", "small_cardinal", "--nprocs=2"])
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
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
