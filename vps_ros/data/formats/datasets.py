"""One entry point per direction for every dataset format the package reads or writes.

``open_dataset(fmt, path, **options)`` gives a VideoDataset (frames with their panoptic
ground truth or None, ordered by sequence then index, and the dataset's class table);
``open_panoptic(fmt, path, classes, label_divisor)`` gives only label maps, for ground
truth and predictions alike (``vps-ros eval``); ``write_dataset(fmt, dataset, path,
**options)`` writes a VideoDataset (e.g. a synthetic split) in a format.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import ClassTable
from .. import bags
from . import cityscapes_vps, kitti_step, vipseg
from .files import PanopticFiles
from ..frames import VideoDataset

DATASET_FORMATS = ("cityscapes-vps", "kitti-step", "vipseg", "rosbag2")
LABEL_FORMATS = ("cityscapes-vps", "kitti-step", "vipseg")
WRITE_FORMATS = ("cityscapes-vps", "kitti-step", "rosbag2")


def _options(fmt: str, given: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise DataError(f"{fmt}: unknown option(s) {', '.join(unknown)}; allowed: "
                        f"{', '.join(allowed)}")
    return given


def open_dataset(fmt: str, path: str | Path, **options: Any) -> VideoDataset:
    """Frames of a dataset in its release layout, or of rosbag2 bags.

    Options: ``split``, ``classes`` (ClassTable), ``frame_rate``, ``label_divisor`` for the
    file formats; ``image_topic``, ``gt_topic`` (None: no ground truth), ``classes``,
    ``label_divisor`` for ``rosbag2`` (a bag or a folder of bags, one sequence each).
    """
    path = Path(path)
    if fmt == "rosbag2":
        _options(fmt, options, ("image_topic", "gt_topic", "classes", "label_divisor"))
        return bags.BagDataset(bags.find_bags(path), **options)
    readers = {"cityscapes-vps": cityscapes_vps.read, "kitti-step": kitti_step.read,
               "vipseg": vipseg.read}
    if fmt not in readers:
        raise DataError(f"unknown dataset format {fmt!r}; choose one of "
                        f"{', '.join(DATASET_FORMATS)}")
    return readers[fmt](path, **_options(fmt, options, ("split", "classes", "frame_rate",
                                                        "label_divisor")))


def open_panoptic(fmt: str, path: str | Path, classes: ClassTable, label_divisor: int,
                  **options: Any) -> PanopticFiles:
    """Label maps of ground truth or predictions, by sequence and frame.

    ``cityscapes-vps``: a dataset root or folder with ``pred.json`` + ``pan_pred/`` (or
    the JSON itself; option ``png_dir``); ``kitti-step``: a dataset root or a folder of
    sequence folders; ``vipseg``: a dataset root (``panomasks/``), a COCO-form JSON, or a
    folder with ``pred.json`` + ``pan_pred/``. Option ``split`` picks a split of a root.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found")
    if fmt == "cityscapes-vps":
        return cityscapes_vps.open_panoptic(path, classes, label_divisor,
                                            **_options(fmt, options, ("split", "png_dir")))
    if fmt == "kitti-step":
        return kitti_step.open_panoptic(path, classes, label_divisor,
                                        **_options(fmt, options, ("split",)))
    if fmt == "vipseg":
        return vipseg.open_panoptic(path, classes, label_divisor,
                                    **_options(fmt, options, ("split", "png_dir")))
    raise DataError(f"unknown label format {fmt!r}; choose one of {', '.join(LABEL_FORMATS)}")


def write_dataset(fmt: str, dataset: VideoDataset, path: str | Path, **options: Any) -> None:
    """Write ``dataset`` in ``fmt``. Options: ``split`` (file formats),
    ``annotation_stride`` (cityscapes-vps), the fields of :class:`bags.BagOptions` (rosbag2)."""
    path = Path(path)
    if fmt == "cityscapes-vps":
        cityscapes_vps.write(dataset, path,
                             **_options(fmt, options, ("split", "annotation_stride")))
    elif fmt == "kitti-step":
        kitti_step.write(dataset, path, **_options(fmt, options, ("split",)))
    elif fmt == "rosbag2":
        fields = tuple(f for f in bags.BagOptions.__dataclass_fields__)
        bags.write(dataset, path, bags.BagOptions(**_options(fmt, options, fields)))
    else:
        raise DataError(f"cannot write format {fmt!r}; choose one of {', '.join(WRITE_FORMATS)}")
