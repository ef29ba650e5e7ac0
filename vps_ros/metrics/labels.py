"""How evaluation reads panoptic ids: class, instance, void, crowd, thing.

Maps use the package encoding (``vps_ros.panoptic``): ``class * label_divisor + id``.
Every id whose class is the table's void id is void, whatever its instance part; a
thing class with instance 0 is crowd in ground truth; stuff always has instance 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import ConfigError
from ..panoptic import DEFAULT_LABEL_DIVISOR, check_divisor
from ..types import ClassTable


@dataclass(frozen=True)
class LabelSpace:
    """A class table and a label divisor: what every metric needs to decode ids."""

    classes: ClassTable
    label_divisor: int = DEFAULT_LABEL_DIVISOR

    def __post_init__(self) -> None:
        try:
            check_divisor(self.label_divisor, max(self.classes.void_id, len(self.classes) - 1))
        except ValueError as exc:
            raise ConfigError(f"label divisor: {exc}") from None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def void_index(self) -> int:
        """The index standing for void in per-class arrays of length ``num_classes + 1``."""
        return len(self.classes)

    @cached_property
    def is_thing(self) -> np.ndarray:
        """Bool per class index, void (last entry) included as not a thing."""
        return np.append(self.classes.is_thing_lut, False)

    def class_index(self, ids: np.ndarray) -> np.ndarray:
        """Class of each id, with void mapped to :attr:`void_index`.

        The ids must have passed :meth:`unknown_ids`.
        """
        classes = np.asarray(ids, np.int64) // self.label_divisor
        return np.where(classes == self.classes.void_id, self.void_index, classes)

    def instance(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids, np.int64) % self.label_divisor

    def unknown_ids(self, ids: np.ndarray) -> np.ndarray:
        """The ids whose class is neither a class of the table nor void."""
        classes = np.asarray(ids, np.int64) // self.label_divisor
        known = ((classes >= 0) & (classes < self.num_classes)) | (classes == self.classes.void_id)
        return np.asarray(ids)[~known]
