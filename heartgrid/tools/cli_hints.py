"""What to do about words argparse did not recognise, as one hint after its error message.

argparse reads a verb's options first and leaves a key=value typed after one of them
unrecognised; options from other tools (`--steps`, `--lr`) are unrecognised too where they are
config keys here. The hint says where overrides go and, for the verbs that take them, prints the
command as typed with its words in an order that parses: positionals, then overrides (the
config-key options turned into overrides), then the options with their values.
"""

from __future__ import annotations

import argparse
import difflib
import shlex

# Options of other tools (and of heartgrid's own ab, render and bench) that name a config key of
# the verbs that build a run's config from its recipe: `train RECIPE --steps N`.
CONFIG_OPTIONS = {
    "--steps": "trainer.total_timesteps", "--total-timesteps": "trainer.total_timesteps",
    "--timesteps": "trainer.total_timesteps", "--seed": "system.seed", "--device": "system.device",
    "--run": "run", "--threads": "system.torch_threads", "--torch-threads": "system.torch_threads",
    "--envs": "trainer.num_envs", "--num-envs": "trainer.num_envs", "--batch-size": "trainer.batch_size",
    "--lr": "trainer.optimizer.learning_rate", "--learning-rate": "trainer.optimizer.learning_rate",
    "--data-dir": "data_dir",
}
CONFIG_OPTION_VERBS = ("heartgrid train", "heartgrid config")
NO_VALUE = (argparse._StoreConstAction, argparse._AppendConstAction, argparse._CountAction,
            argparse._HelpAction, argparse._VersionAction)


def is_override(word: str) -> bool:
    return "=" in word and not word.startswith("-")


def takes_overrides(verb: argparse.ArgumentParser) -> bool:
    """A verb with key=value positionals (train, config, eval, sweep, bench train, ...)."""
    return any(not action.option_strings and "key=value" in str(action.metavar) for action in verb._actions)


def unrecognized_hint(verb: argparse.ArgumentParser, typed: list[str], unrecognized: list[str],
                      long_options: set[str]) -> str:
    """The hint for `unrecognized` words of the command line `typed` (the words after the
    program), "" if there is none to give."""
    config_options = {w.split("=")[0] for w in unrecognized
                      if verb.prog in CONFIG_OPTION_VERBS and w.split("=")[0] in CONFIG_OPTIONS}
    unknown = [w for w in unrecognized if w.startswith("-") and w.split("=")[0] not in config_options]
    close = [match for word in unknown if word.startswith("--")
             for match in difflib.get_close_matches(word.split("=")[0], sorted(long_options), n=1)]
    hint = f"; did you mean {', '.join(close)}? (`{verb.prog} --help` lists its options)" if close else ""
    overrides = any(is_override(w) for w in unrecognized)
    if takes_overrides(verb) and (overrides or config_options):
        named = "".join(f"; {option} is {CONFIG_OPTIONS[option]} here" for option in sorted(config_options))
        # With an option it does not know, which words are that option's values is a guess:
        # no reordered command then.
        command = "" if unknown else ": " + reordered(verb, typed[len(verb.prog.split()) - 1:], bool(config_options))
        return f"{named}{hint}; key=value overrides go right after the recipe, before any --option{command}"
    if overrides:
        if verb.prog == "heartgrid ab":
            return f"{hint}; each side's overrides go inside its quoted side: \"RECIPE key=value ...\""
        return f"{hint}; {verb.prog} takes no key=value words"
    return hint


def reordered(verb: argparse.ArgumentParser, words: list[str], config_options: bool) -> str:
    """`words` (after the verb) as positionals, overrides, then options with their values."""
    positionals: list[str] = []
    overrides: list[str] = []
    options: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, _, inline = word.partition("=")
        if not word.startswith("-"):
            (overrides if is_override(word) else positionals).append(word)
            i += 1
            continue
        action = verb._option_string_actions.get(name)
        if action is None and config_options and name in CONFIG_OPTIONS:
            value = inline or (words[i + 1] if i + 1 < len(words) else "...")
            overrides.append(f"{CONFIG_OPTIONS[name]}={value}")
            i += 1 if inline else 2
            continue
        count = 0 if inline or action is None else values_taken(action, words[i + 1:])
        options += words[i:i + 1 + count]
        i += 1 + count
    return shlex.join([*verb.prog.split(), *positionals, *overrides, *options])


def values_taken(action: argparse.Action, following: list[str]) -> int:
    """How many of the `following` words the option `action` takes as its values."""
    if isinstance(action, NO_VALUE) or action.nargs == 0:
        return 0
    if action.nargs is None:
        return 1
    if isinstance(action.nargs, int):
        return action.nargs
    taken = 0  # ?, *, +: the words up to the next option or override
    while taken < len(following) and not following[taken].startswith("-") and not is_override(following[taken]):
        taken += 1
        if action.nargs == "?":
            break
    return taken
