"""Config validation: types, ranges, choices, unknown keys, nested sections, clear messages."""
from dataclasses import dataclass

import pytest

from vps_ros.config import from_mapping, load_yaml, param, validate_value
from vps_ros.errors import ConfigError
from vps_ros.types import ClassTable


@dataclass(frozen=True)
class Inner:
    alpha: float = param(0.5, "a threshold", lo=0.0, hi=1.0)


@dataclass(frozen=True)
class Outer:
    mode: str = param("online", "association mode", choices=("online", "near_online"))
    steps: int = param(10, "steps", lo=1)
    sizes: list[int] = param([1, 2], "window sizes", lo=1)
    temperature: float = param(1.0, "T", lo=0.0, lo_open=True)
    inner: Inner = Inner()


def test_defaults_and_values():
    cfg = from_mapping(Outer, {"steps": 3, "inner": {"alpha": 1}, "sizes": [4]}, "f.yaml")
    assert cfg.steps == 3 and cfg.inner.alpha == 1.0 and cfg.sizes == [4]
    assert from_mapping(Outer, None, "f.yaml") == Outer()


@pytest.mark.parametrize("mapping, message", [
    ({"stepz": 1}, "f.yaml: unknown key(s) stepz (did you mean steps?); allowed: mode, steps"),
    ({"steps": 0}, "f.yaml.steps: 0 is out of range, must be >= 1"),
    ({"steps": 1.5}, "f.yaml.steps: expected an integer"),
    ({"steps": True}, "f.yaml.steps: expected an integer"),
    ({"mode": "offline"}, "f.yaml.mode: 'offline' is not one of 'online', 'near_online'"),
    ({"inner": {"alpha": 1.5}}, "f.yaml.inner.alpha: 1.5 is out of range, must be <= 1.0"),
    ({"sizes": [1, 0]}, "f.yaml.sizes: 0 is out of range"),
    ({"sizes": 3}, "f.yaml.sizes: expected a list"),
    ({"temperature": 0}, "f.yaml.temperature: 0.0 is out of range, must be > 0.0"),
])
def test_bad_values_name_the_key(mapping, message):
    with pytest.raises(ConfigError) as info:
        from_mapping(Outer, mapping, "f.yaml")
    assert str(info.value).startswith(message)


def test_validate_value_checks_one_field():
    assert validate_value(Inner, "alpha", 0.25, "param alpha") == 0.25
    with pytest.raises(ConfigError, match="param alpha: 2.0 is out of range"):
        validate_value(Inner, "alpha", 2, "param alpha")


def test_load_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: configuration file not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+:\d+: not valid YAML"):
        load_yaml(bad)


def test_shipped_class_table_loads():
    table = ClassTable.builtin("synthetic")
    assert table.thing_ids == [6, 7, 8, 9]
    assert table[0].name == "road" and table.void_id == 255
    assert ClassTable.from_dict(table.to_dict()) == table


def test_class_table_rejects_gaps_and_void_collisions():
    rows = [{"id": 0, "name": "a", "is_thing": False, "color": [0, 0, 0]},
            {"id": 2, "name": "b", "is_thing": True, "color": [1, 1, 1]}]
    with pytest.raises(ConfigError, match="ids must be 0..1"):
        ClassTable.from_dict({"name": "x", "classes": rows})
    with pytest.raises(ConfigError, match="void id 0 collides"):
        ClassTable.from_dict({"name": "x", "void_id": 0, "classes": rows[:1]})


def test_dotted_and_nested_names_convert_both_ways():
    from vps_ros.config import flatten_dotted, nest_dotted
    nested = nest_dotted({"a.b": 1, "a": {"c": 2, "d.e": 3}, "x": [1, 2]})
    assert nested == {"a": {"b": 1, "c": 2, "d": {"e": 3}}, "x": [1, 2]}
    assert flatten_dotted(nested) == {"a.b": 1, "a.c": 2, "a.d.e": 3, "x": [1, 2]}
    with pytest.raises(ConfigError, match="both a value and a section"):
        nest_dotted({"a": 1, "a.b": 2})


def test_leaves_expand_nested_config_dataclasses_to_dotted_names():
    from vps_ros.config import leaves

    @dataclass(frozen=True)
    class Section:
        lam: float = param(0.8, "weight", lo=0.0, hi=1.0)

    @dataclass(frozen=True)
    class Root:
        name: str = param("x", "a name")
        section: Section = param(Section(), "a section")

    found = {leaf.name: leaf for leaf in leaves(Root)}
    assert list(found) == ["name", "section.lam"]
    lam = found["section.lam"]
    assert (lam.owner, lam.field, lam.hint, lam.default) == (Section, "lam", float, 0.8)
    assert lam.meta["hi"] == 1.0 and lam.meta["doc"] == "weight"
