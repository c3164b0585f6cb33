"""Finding a suite by name: a built-in, a JSON or YAML file, or a Python module.

    suite = load_suite("navigation")                  # built-in (builtin_suites.py)
    suite = load_suite("my_suites/hard.yaml")         # a file: one SuiteConfig as JSON or YAML
    suite = load_suite("my_suites.py")                # a Python file defining SUITE
    suite = load_suite("my_pkg.suites:HARD")          # an importable module and attribute
    suite = select(suite, ["corridors", "arena/basic"])   # some of its simulations

A module's attribute (default `SUITE`) may be a SuiteConfig, a dict of one, or a function
returning either. Files and dicts are validated like configs: an unknown key is refused with
its path. Relative map paths in a suite file are read from the file's directory.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from heartgrid.evaluation.builtin_suites import BUILTIN_SUITES
from heartgrid.evaluation.resolve import ResolvedSimulation, SuiteError, resolve_simulation
from heartgrid.evaluation.simulation import (
    MazeGeneratorConfig,
    RadialGeneratorConfig,
    ScatterGeneratorConfig,
    SimulationConfig,
    SuiteConfig,
)

DEFAULT_ATTRIBUTE = "SUITE"
GENERATORS = (MazeGeneratorConfig, RadialGeneratorConfig, ScatterGeneratorConfig)
FILE_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class LoadedSuite:
    config: SuiteConfig
    source: str  # "built-in" or the file / module it came from
    base_dir: Path | None  # where relative map paths are read from

    @property
    def name(self) -> str:
        return self.config.name

    def resolve(self) -> list[ResolvedSimulation]:
        return [resolve_simulation(sim, self.name, self.base_dir) for sim in self.config.simulations]


def suite_names() -> list[str]:
    return sorted(BUILTIN_SUITES)


def load_suite(ref: str) -> LoadedSuite:
    """The suite `ref` names; SuiteError (exit 2) saying what exists when it names nothing."""
    if ref in BUILTIN_SUITES:
        return LoadedSuite(BUILTIN_SUITES[ref](), "built-in", None)
    path = Path(ref).expanduser()
    if path.suffix in FILE_SUFFIXES or (path.suffix == ".py" and ":" not in ref):
        if not path.is_file():
            raise SuiteError(f"suite file {ref} does not exist")
        if path.suffix == ".py":
            return _from_object(_import_file(path), DEFAULT_ATTRIBUTE, str(path), path.parent)
        return _validated(_read_file(path), str(path), path.resolve().parent)
    if path.is_file() and ":" not in ref:
        raise SuiteError(f"suite file {ref}: a suite file is {', '.join(FILE_SUFFIXES)} or .py")
    if ":" in ref or "." in ref:
        module_name, _, attribute = ref.partition(":")
        try:
            module = importlib.import_module(module_name)
        except (ImportError, ValueError) as e:  # ValueError: an empty module name (`:attr`)
            raise SuiteError(f"suite {ref!r}: cannot import module {module_name!r} ({e}); "
                             f"built-in suites: {', '.join(suite_names())}") from None
        return _from_object(module, attribute or DEFAULT_ATTRIBUTE, ref, _module_dir(module))
    close = difflib.get_close_matches(ref, suite_names(), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise SuiteError(f"unknown suite {ref!r}; {hint}built-in suites: {', '.join(suite_names())} "
                     "(or a suite file .json/.yaml/.py, or module:ATTRIBUTE; `heartgrid suites` lists them)")


def select(suite: LoadedSuite, names: list[str]) -> LoadedSuite:
    """The suite with only the named simulations (`category/name`, or `name` when unique)."""
    if not names:
        return suite
    sims = suite.config.simulations
    keys = [sim.key for sim in sims]
    chosen = []
    for name in names:
        found = [sim for sim in sims if name in (sim.key, sim.name)]
        if len(found) != 1:
            if found:
                raise SuiteError(f"simulation {name!r} is ambiguous in suite {suite.name}: "
                                 f"{', '.join(s.key for s in found)}; give category/name")
            close = difflib.get_close_matches(name, keys + [s.name for s in sims], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SuiteError(f"suite {suite.name} has no simulation {name!r}; {hint}"
                             f"its simulations: {', '.join(keys)}")
        if found[0] not in chosen:
            chosen.append(found[0])
    config = suite.config.model_copy(update={"simulations": chosen})
    return LoadedSuite(config, suite.source, suite.base_dir)


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise SuiteError(f"suite file {path}: cannot read it ({e.strerror or e})") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise SuiteError(f"suite file {path}: not valid JSON: {e}") from None
    import yaml  # only YAML suite files need it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SuiteError(f"suite file {path}: not valid YAML: {e}") from None


def _validated(data: Any, source: str, base_dir: Path | None) -> LoadedSuite:
    if isinstance(data, SuiteConfig):
        return LoadedSuite(data, source, base_dir)
    try:
        return LoadedSuite(SuiteConfig.model_validate(data), source, base_dir)
    except ValidationError as e:
        raise SuiteError(f"suite {source}: invalid suite: {_describe(e)}") from None


def _describe(error: ValidationError) -> str:
    """One line per problem; an unknown key names the valid keys there and the closest one."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"])
        if item["type"] != "extra_forbidden":
            lines.append(f"{path}: {item['msg']}")
            continue
        key = str(item["loc"][-1])
        valid = _keys_at([part for part in item["loc"][:-1] if not isinstance(part, int)])
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        lines.append(f"{path}: unknown key {key!r}{hint} (valid keys: {', '.join(valid)})")
    return "\n  " + "\n  ".join(lines)


def _keys_at(parents: list[Any]) -> list[str]:
    """The keys a suite accepts under `parents` (field names, list indices left out)."""
    if not parents:
        return list(SuiteConfig.model_fields)
    if parents == ["simulations"]:
        return list(SimulationConfig.model_fields)
    # Under `generator`: pydantic's path ends with the generator's kind (its union tag).
    kinds = {cls.model_fields["kind"].default: cls for cls in GENERATORS}
    if parents[-1] in kinds:
        return list(kinds[parents[-1]].model_fields)
    return sorted({name for cls in GENERATORS for name in cls.model_fields})


def _from_object(module: Any, attribute: str, source: str, base_dir: Path | None) -> LoadedSuite:
    if not hasattr(module, attribute):
        raise SuiteError(f"suite {source}: the module defines no {attribute!r}; define "
                         f"{attribute} = SuiteConfig(...) (or a dict, or a function returning one)")
    value = getattr(module, attribute)
    if callable(value) and not isinstance(value, SuiteConfig):
        if _needs_arguments(value):  # checked, not caught: a bug inside a factory keeps its traceback
            raise SuiteError(f"suite {source}: {attribute} must be a SuiteConfig, a dict, or a function "
                             "of no arguments returning one")
        value = value()
    return _validated(value, source, base_dir)


def _needs_arguments(function: Any) -> bool:
    """True when `function()` cannot bind (`json:loads`); False for a builtin without a
    signature, whose call then says what it needs."""
    try:
        inspect.signature(function).bind()
    except TypeError:
        return True
    except ValueError:
        return False
    return False


def _import_file(path: Path) -> Any:
    name = f"heartgrid_user_suite_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SuiteError(f"suite file {path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code: say where it failed, as a usage error
        raise SuiteError(f"suite file {path}: importing it failed: {type(e).__name__}: {e}") from None
    return module


def _module_dir(module: Any) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None
