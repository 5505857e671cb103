"""A typed tree of dataclasses from plain data (YAML, dotted overrides), with clear errors.

Generic over the root dataclass: `r1/config.py` declares the tree and its value checks, this
module builds it. An unknown key lists the valid keys at its level and suggests the closest one;
a value of the wrong type names the key, the value and the expected type. Numbers written as
text are accepted, because YAML 1.1 reads `1e-6` as a string and command-line values arrive as
strings.

Deliberately left out: interpolation, includes, and overrides inside lists (a list is replaced
as a whole).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and what is expected."""


# ---------------------------------------------------------------------------------------------
# Building a typed tree from plain data


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from nested dicts, checking every key and value type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in names:
            raise ConfigError(_unknown_key(where, str(key), names))
        values[key] = _convert(hints[key], value, where)
    return cls(**values)


def _unknown_key(where: str, key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown config key '{where}'.{hint} Valid keys here: {', '.join(valid)}"


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:  # checked where it is used (pipeline stage settings are checked as a Config)
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):  # Optional[...] and unions
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except ConfigError as err:
                errors.append(err)
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list of {_type_name(args[0])}, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {_type_name(args[1])}, got {value!r}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return _scalar(tp, value, where)


def _scalar(tp: type, value: Any, where: str) -> Any:
    # YAML 1.1 reads `1e-6` as a string and command-line values arrive as strings, so numbers
    # written as text are accepted; anything else of the wrong type is an error.
    bad = ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if isinstance(value, bool):
        raise bad
    if tp is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).replace("_", ""))
        except ValueError:
            raise bad from None
    if tp is float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise bad from None
    if tp is str:
        if isinstance(value, (str, int, float)):
            return str(value)
        raise bad
    raise ConfigError(f"{where}: unsupported config type {tp}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def flatten(tree: dict, prefix: str = "", *, keep_empty: bool = False) -> dict[str, Any]:
    """A nested config dict as dotted keys: ``{"grpo": {"beta": 0.0}}`` → ``{"grpo.beta": 0.0}``.
    An empty sub-dict (``rewards.routes: {}``) is dropped, or kept as a value with `keep_empty`."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and (value or not keep_empty):
            out.update(flatten(value, f"{prefix}{key}.", keep_empty=keep_empty))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ---------------------------------------------------------------------------------------------
# Dotted overrides and merging


def apply_override(data: dict, assignment: str, cls: type) -> None:
    """Apply one `dotted.key=value` to nested dict `data`, checking the key path against `cls`."""
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like key=value (e.g. grpo.beta=0.001)")
    dotted, raw = assignment.split("=", 1)
    set_dotted(data, dotted.strip(), _parse_value(raw), cls)


def set_dotted(data: dict, dotted: str, value: Any, cls: type) -> None:
    """`data[a][b][c] = value` for `dotted` = "a.b.c", checking the key path against `cls`."""
    keys = dotted.split(".")
    node, node_cls = data, cls
    for depth, key in enumerate(keys):
        child_cls = None  # keys inside a dict-typed field (rewards.weights.<name>) are free
        if dataclasses.is_dataclass(node_cls):
            hints = typing.get_type_hints(node_cls)
            if key not in hints:
                where = ".".join(keys[: depth + 1])
                raise ConfigError(_unknown_key(where, key, list(hints)))
            child_cls = hints[key]
        if depth == len(keys) - 1:
            node[key] = value
        else:
            node = node.setdefault(key, {})
            node_cls = child_cls
            if not isinstance(node, dict):
                where = ".".join(keys[: depth + 1])
                raise ConfigError(f"cannot set '{dotted}': '{where}' is a value ({node!r}), not a section of keys")


def _parse_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def merge(defaults: dict, data: dict, cls: type) -> dict:
    """Overlay `data` on `defaults`: sections merge key by key, any other value replaces."""
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if dataclasses.is_dataclass(hints.get(key)) and isinstance(value, dict):
            merge(defaults[key], value, hints[key])
        else:
            defaults[key] = value
    return defaults
