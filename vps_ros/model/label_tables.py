"""A pretrained model's class labels mapped by name onto a vps_ros class table.

A ``transformers`` model names its classes (``id2label``) but says nothing about which
are things and which colours they get; those come from a class table under
``config/`` (or one the user names). Names are compared after lower-casing and
treating ``_``, ``-`` and runs of spaces alike, so ``traffic_light``, ``Traffic Light``
and ``traffic-light`` are one class. Every label of the model must find its class: a
model whose labels are only partly known would emit classes nobody can draw or score.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..resources import config_path
from ..types import ClassTable

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalise_label(name: str) -> str:
    """The form in which class names are compared."""
    return _SEPARATORS.sub(" ", name).strip().lower()


def builtin_tables() -> list[ClassTable]:
    """The class tables shipped in config/ (classes_*.yaml), in file name order."""
    return [ClassTable.load(path) for path in sorted(config_path("").glob("classes_*.yaml"))]


def label_index(labels: Sequence[str], table: ClassTable) -> np.ndarray | None:
    """For each class id of ``table``, the model's label index that names it, or -1
    when the model has no such label; None when some label of the model names no
    class of ``table`` or two labels name the same class."""
    ids = {normalise_label(c.name): c.id for c in table}
    index = np.full(len(table), -1, np.int64)
    for k, label in enumerate(labels):
        class_id = ids.get(normalise_label(label))
        if class_id is None or index[class_id] >= 0:
            return None
        index[class_id] = k
    return index


def match_table(labels: Sequence[str], where: str, table: ClassTable | None = None
                ) -> tuple[ClassTable, np.ndarray]:
    """(class table, :func:`label_index`) for a model's ``labels``.

    With ``table`` (the ``classes`` parameter), that table must name every label;
    otherwise the first shipped table that does, in file name order (a Cityscapes
    model gets cityscapes_vps; ``classes: kitti_step`` picks KITTI-STEP's things).
    ``where`` names the model in errors.
    """
    shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
    if table is not None:
        index = label_index(labels, table)
        if index is None:
            known = {normalise_label(c.name) for c in table}
            missing = [label for label in labels if normalise_label(label) not in known]
            reason = (f"labels {', '.join(missing[:12])} are not classes of it" if missing
                      else "two labels name one class")
            raise ConfigError(f"{where}: its {len(labels)} labels do not fit class table "
                              f"{table.name!r} ({reason}); give a table whose class names "
                              "are the model's labels (classes parameter / --classes)")
        return table, index
    tables = builtin_tables()
    for candidate in tables:
        index = label_index(labels, candidate)
        if index is not None:
            return candidate, index
    raise ConfigError(f"{where}: its {len(labels)} labels ({shown}) match no class table "
                      f"in config/ ({', '.join(t.name for t in tables)}); write a class table "
                      "YAML naming them (thing/stuff, colours) and give it with the classes "
                      "parameter (--classes)")
