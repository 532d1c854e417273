"""The one loader of config files: TOML or JSON, ``extends``, deep merge, dotted overrides.

Every command that reads a config file (``altsignal run``, ``timing fit|backtest|report``,
``models finetune --config``) reads it here, then validates it whole with :func:`validated`.

Decisions:
- ``extends = "base.toml"`` names a file relative to the file that holds it. It may stand at the
  top of a file (the whole file starts from the base) or inside a table (that table starts from
  the base file, e.g. a run's ``[timing]`` from a timing config). Tables merge key by key at every
  depth; any other value, lists included, replaces the base's. A file's chain of top-level
  ``extends`` is merged first, then tables' ``extends`` are expanded, so an override written in a
  parent file survives a child that only adds keys.
- An override is ``dotted.key=value``. The value is read as a TOML literal (``16``, ``true``,
  ``[1, 2]``, ``"x"``, ``{a = 1}``), else kept as text (``scoring.numeric=bf16``); a TOML date is
  kept as text too, since every date in the configs is a string field. An inline table merges into
  the table it names, as a child file's table does. The key is checked against
  the pydantic model the file is validated into, so a typo names the keys valid at its level
  instead of being a key the model then rejects with less context.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import sys
import tomllib
import types
import typing
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import UsageError, describe_validation

EXTENDS = "extends"


class ConfigError(UsageError):
    """A configuration that cannot run, with the reason in words."""


def warn_renamed(old: str, new: str) -> None:
    """One ``deprecated:`` line on stderr for an old spelling that still works (removed in 0.2)."""
    print(f"deprecated: `{old}` is now `{new}`; the old name will be removed in altsignal 0.2", file=sys.stderr)


class Strict(BaseModel):
    """The base of every config section: an unknown key is an error, and a loaded config is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_file(path: str | Path) -> dict:
    """One file's table (``.json`` as JSON, anything else as TOML); errors name the file."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            raw = json.loads(path.read_text())
        else:
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: JSON syntax error: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config file holds a table of keys, not a {type(raw).__name__}")
    return raw


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: tables merge key by key, every other value replaces."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _absolute_extends(table: dict, folder: Path) -> dict:
    out = {k: _absolute_extends(v, folder) if isinstance(v, dict) else v for k, v in table.items()}
    if isinstance(out.get(EXTENDS), str):
        out[EXTENDS] = str(folder / out[EXTENDS])
    return out


def _read_chain(path: str | Path, chain: tuple[Path, ...]) -> tuple[dict, tuple[Path, ...]]:
    """The file merged over its top-level ``extends`` chain; tables' ``extends`` left for :func:`_expand`."""
    path = Path(path).resolve()
    if path in chain:
        raise ConfigError("`extends` loop: " + " -> ".join(str(p) for p in (*chain, path)))
    chain = (*chain, path)
    raw = _absolute_extends(read_file(path), path.parent)
    parent = raw.pop(EXTENDS, None)
    if parent is None:
        return raw, chain
    base, chain = _read_chain(parent, chain)
    return deep_merge(base, raw), chain


def _expand(table: dict, chain: tuple[Path, ...]) -> dict:
    out = {k: _expand(v, chain) if isinstance(v, dict) else v for k, v in table.items() if k != EXTENDS}
    return deep_merge(load(table[EXTENDS], chain), out) if EXTENDS in table else out


def load(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A config file with every ``extends`` resolved (see the module docstring); a loop is an error."""
    raw, chain = _read_chain(path, _chain)
    return _expand(raw, chain)


def parse_value(text: str):
    """An override's value: a TOML literal, else the text itself (dates stay text)."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return text if isinstance(value, (dt.date, dt.time)) else value


def _model_in(annotation) -> type[BaseModel] | None:
    """The pydantic model a field holds (``X`` or ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((m for m in map(_model_in, typing.get_args(annotation)) if m is not None), None)
    return None


def _check_key(model: type[BaseModel], keys: list[str], item: str) -> None:
    """Raise unless ``keys`` is a path of ``model``'s fields (any key below a dict-valued field)."""
    node = model
    for depth, key in enumerate(keys):
        level = ".".join(keys[:depth]) or "the top level"
        sub = _model_in(node)
        if sub is None:
            if typing.get_origin(node) is dict:  # e.g. timing.network.grid: keys are the user's
                return
            raise ConfigError(f"--set {item}: {level} is a value, not a table")
        if key not in sub.model_fields:
            raise ConfigError(f"--set {item}: unknown key {key!r} at {level}; valid keys: {', '.join(sorted(sub.model_fields))}")
        node = sub.model_fields[key].annotation


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...], model: type[BaseModel]) -> dict:
    """``raw`` with each ``dotted.key=value`` of ``overrides`` set, keys checked against ``model``."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        keys = key.strip().split(".")
        if not sep or not all(keys):
            raise ConfigError(f"--set {item}: expected dotted.key=value, e.g. timing.network.hidden=16")
        _check_key(model, keys, item)
        table = out
        for k in keys[:-1]:
            if not isinstance(table.get(k), dict):
                table[k] = {}
            table = table[k]
        value, old = parse_value(text.strip()), table.get(keys[-1])
        table[keys[-1]] = deep_merge(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return out


def validated(model: type[BaseModel], raw: dict, where: str | Path) -> BaseModel:
    """``model`` built from ``raw``; a validation error is one line naming ``where`` and each bad field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc, f"invalid config {where}")) from exc


def load_validated(model: type[BaseModel], path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> BaseModel:
    """Read ``path`` (``extends`` resolved), apply ``overrides`` and validate the result whole as ``model``."""
    where = " ".join([str(path), "with", *(f"--set {o}" for o in overrides)]) if overrides else path
    return validated(model, apply_overrides(load(path), overrides, model), where)
