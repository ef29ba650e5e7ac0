"""YAML configuration, validated at load against typed dataclasses.

A config section is a frozen dataclass whose fields are declared with :func:`param`
(default, allowed range or choices, one-line description). :func:`from_mapping` builds
it from a plain mapping and rejects unknown keys, wrong types and out-of-range values
with a message naming the file and key. The ROS node derives its parameter
descriptors from the same declarations, so ranges live in one place.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Iterator, Mapping, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")


def param(default: Any, doc: str, *, lo: float | None = None, hi: float | None = None,
          choices: tuple | None = None, lo_open: bool = False) -> Any:
    """Declare a validated config field (use as the default of a dataclass field).

    ``lo``/``hi`` are inclusive bounds unless ``lo_open`` (then ``value > lo``).
    Mutable defaults (lists) are copied per instance.
    """
    meta = {"doc": doc, "lo": lo, "hi": hi, "choices": choices, "lo_open": lo_open}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; missing file or bad syntax raise ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, where: str) -> T:
    """Build config dataclass ``cls`` from ``mapping``, validating every key.

    ``where`` prefixes error messages, e.g. ``"config/perception.yaml: tracker"``.
    Nested dataclass fields take nested mappings.
    """
    mapping = {} if mapping is None else mapping
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) "
                          f"{', '.join(suggest(k, fields) for k in unknown)}; "
                          f"allowed: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in mapping.items():
        values[name] = _check(value, hints[name], fields[name].metadata, f"{where}.{name}")
    return cls(**values)


def validate_value(cls: type, name: str, value: Any, where: str) -> Any:
    """Validate one field of ``cls`` (e.g. a parameter changed at run time)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ConfigError(f"{where}: unknown key {suggest(name, fields)}; "
                          f"allowed: {', '.join(fields)}")
    return _check(value, typing.get_type_hints(cls)[name], fields[name].metadata, where)


def suggest(name: Any, known: typing.Iterable[str]) -> str:
    """``name``, with the closest of ``known`` as "(did you mean X?)" when one is close."""
    close = closest(name, known)
    return f"{name} (did you mean {close}?)" if close else str(name)


def closest(name: Any, known: typing.Iterable[str], cutoff: float = 0.6) -> str | None:
    """The one of ``known`` closest to ``name`` (difflib's similarity ratio, at least
    ``cutoff``), or None."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One leaf field of a (nested) config dataclass, named by its dotted path."""

    name: str                      # e.g. "tracker.lam"
    owner: type                    # the dataclass that declares the field
    field: str                     # the field's name in ``owner``
    hint: Any                      # its type
    default: Any
    meta: Mapping[str, Any]        # the metadata of :func:`param`


def leaves(cls: type, prefix: str = "") -> list[Leaf]:
    """Every leaf field of ``cls``, nested dataclasses expanded to dotted names.

    The ROS node declares one parameter per leaf, so a ROS parameter, a YAML key and
    a config field share one declaration (default, range, description).
    """
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            out.extend(leaves(hints[f.name], f"{name}."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(Leaf(name, cls, f.name, hints[f.name], default, f.metadata))
    return out


def flatten_dotted(mapping: Mapping[str, Any]) -> dict:
    """``{"a": {"b": 1}, "c.d": 2}`` -> ``{"a.b": 1, "c.d": 2}``."""
    return dict(_dotted_items(mapping, ""))


def nest_dotted(mapping: Mapping[str, Any]) -> dict:
    """``{"a.b": 1, "a": {"c": 2}}`` -> ``{"a": {"b": 1, "c": 2}}`` (ROS parameter files
    may write nested names either way)."""
    out: dict = {}
    for path, value in _dotted_items(mapping, ""):
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"key {path}: {part} is both a value and a section")
        if isinstance(node.get(last), dict):
            raise ConfigError(f"key {path} is both a value and a section")
        node[last] = value
    return out


def _dotted_items(mapping: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            yield from _dotted_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def to_mapping(config: Any) -> dict:
    """The plain-dict form of a config dataclass (for checkpoints and reports)."""
    return dataclasses.asdict(config)


def _check(value: Any, hint: Any, meta: Mapping[str, Any], where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    value = _coerce(value, hint, where)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if not isinstance(item, (int, float)):
            continue
        if lo is not None and (item <= lo if meta.get("lo_open") else item < lo):
            op = ">" if meta.get("lo_open") else ">="
            raise ConfigError(f"{where}: {item!r} is out of range, must be {op} {lo}")
        if hi is not None and item > hi:
            raise ConfigError(f"{where}: {item!r} is out of range, must be <= {hi}")
    return value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        items = [_coerce(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise TypeError(f"config type {hint!r} of {where} is not supported")
