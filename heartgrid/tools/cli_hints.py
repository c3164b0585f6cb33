"""What to do about words argparse did not recognise, as one hint after its error message.

argparse reads a verb's options first and leaves a key=value typed after one of them
unrecognised; options from other tools (`--steps`, `--lr`) are unrecognised too where they are
config keys here. The hint says where overrides go and, for the verbs that take them, prints the
command as typed with its words in an order that parses: positionals, then overrides (the
config-key options turned into overrides), then the options with their values. Where that order
would be a guess (an option it cannot resolve, a value that is missing) it prints no command.
"""

from __future__ import annotations

import argparse
import difflib
import shlex

# Options of other tools (and of heartgrid's own ab, render and bench) that name a config key of
# the verbs that build a run's config from a recipe: `train RECIPE --steps N`.
CONFIG_OPTIONS = {
    "--steps": "trainer.total_timesteps", "--total-timesteps": "trainer.total_timesteps",
    "--timesteps": "trainer.total_timesteps", "--seed": "system.seed", "--device": "system.device",
    "--run": "run", "--threads": "system.torch_threads", "--torch-threads": "system.torch_threads",
    "--envs": "trainer.num_envs", "--num-envs": "trainer.num_envs", "--batch-size": "trainer.batch_size",
    "--lr": "trainer.optimizer.learning_rate", "--learning-rate": "trainer.optimizer.learning_rate",
    "--data-dir": "data_dir",
}
# bench train times --seconds of training: the length of a run is no key there.
CONFIG_OPTIONS_OF = {
    "heartgrid train": CONFIG_OPTIONS,
    "heartgrid config": CONFIG_OPTIONS,
    "heartgrid bench train": {k: v for k, v in CONFIG_OPTIONS.items() if v != "trainer.total_timesteps"},
}


def is_override(word: str) -> bool:
    return "=" in word and not word.startswith("-")


def form(verb: argparse.ArgumentParser, words: list[str]) -> str:
    """The verb as typed, with the word that makes it a form of its own: `eval --suite`, `sweep show`."""
    if verb.prog == "heartgrid eval" and any(w == "--suite" or w.startswith("--suite=") for w in words):
        return "heartgrid eval --suite"
    if verb.prog == "heartgrid sweep" and words[:1] == ["show"]:
        return "heartgrid sweep show"
    return verb.prog


def takes_overrides(verb: argparse.ArgumentParser, words: list[str]) -> bool:
    """A verb with key=value positionals (train, config, eval, sweep, bench train, ...), in a
    form that takes them (not `eval --suite`, which plays each simulation's own game, nor
    `sweep show`)."""
    return form(verb, words) == verb.prog and any(
        not action.option_strings and "key=value" in str(action.metavar) for action in verb._actions)


def unrecognized_hint(verb: argparse.ArgumentParser, typed: list[str], unrecognized: list[str],
                      long_options: set[str]) -> str:
    """The hint for `unrecognized` words of the command line `typed` (the words after the
    program), "" if there is none to give."""
    words = typed[len(verb.prog.split()) - 1:]  # after the verb
    keys = CONFIG_OPTIONS_OF.get(verb.prog, {})
    config_options = sorted({w.split("=")[0] for w in unrecognized if w.split("=")[0] in keys})
    unknown = [w for w in unrecognized if w.startswith("--") and w.split("=")[0] not in keys]
    close = [match for word in unknown
             for match in difflib.get_close_matches(word.split("=")[0], sorted(long_options - {"--help"}), n=1)]
    hint = "".join(f"; {option} is {keys[option]} here" for option in config_options)
    if close:
        hint += f"; did you mean {', '.join(close)}? (`{verb.prog} --help` lists its options)"
    overrides = any(is_override(w) for w in unrecognized)
    if (overrides or config_options) and takes_overrides(verb, words):
        command = None if unknown else reordered(verb, words, keys)
        return (f"{hint}; key=value overrides go right after the recipe, before any --option"
                + (f": {command}" if command else ""))
    if overrides:
        if verb.prog == "heartgrid ab":
            return f"{hint}; each side's overrides go inside its quoted side: \"RECIPE key=value ...\""
        return f"{hint}; {form(verb, words)} takes no key=value words"
    return hint


def reordered(verb: argparse.ArgumentParser, words: list[str], keys: dict[str, str]) -> str | None:
    """`words` (after the verb) as positionals, overrides, then options with their values; None
    where an option or its value cannot be told for sure."""
    # The verb's single positionals (eval's URI, train's recipe) are the first bare words,
    # whatever they hold: a run directory may be called lr=0.1.
    single = sum(1 for action in verb._actions if not action.option_strings and action.nargs is None)
    positionals: list[str] = []
    overrides: list[str] = []
    options: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, equals, inline = word.partition("=")
        if not word.startswith("-"):
            (positionals if len(positionals) < single or not is_override(word) else overrides).append(word)
            i += 1
            continue
        if name in keys and name not in verb._option_string_actions:
            if equals:
                value, i = inline, i + 1
            elif i + 1 < len(words) and not words[i + 1].startswith("--") and not is_override(words[i + 1]):
                value, i = words[i + 1], i + 2
            else:
                return None  # no value typed: no command to offer
            overrides.append(f"{keys[name]}={value}")
            continue
        action = option_action(verb, name)
        if action is None or action.nargs not in (None, 0):
            return None
        count = 1 if action.nargs is None and not equals else 0
        if i + count >= len(words) and count:
            return None
        options += words[i:i + 1 + count]
        i += 1 + count
    return shlex.join([*verb.prog.split(), *positionals, *overrides, *options])


def option_action(verb: argparse.ArgumentParser, name: str) -> argparse.Action | None:
    """The action of option `name` as argparse reads it: its own, or the one option it is a
    unique prefix of (`--np` for `--nproc`)."""
    if name in verb._option_string_actions:
        return verb._option_string_actions[name]
    prefixed = {action for option, action in verb._option_string_actions.items() if option.startswith(name)}
    return prefixed.pop() if verb.allow_abbrev and len(prefixed) == 1 else None
