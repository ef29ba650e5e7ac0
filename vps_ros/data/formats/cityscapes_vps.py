"""Cityscapes-VPS (Kim et al., CVPR 2020) in its release layout.

::

    ROOT/panoptic_gt_SPLIT_city_vps.json   images[] (id "VVVV_FFFF_<name>", file_name,
                                           width, height), annotations[] (image_id,
                                           file_name, segments_info), categories[]
    ROOT/im_all_info_SPLIT_city_vps.json   every frame: id = VVVV * 10000 + FFFF, file_name
    ROOT/panoptic_im_SPLIT_city_vps.json   the annotated frames' images and categories
    ROOT/SPLIT/img/                        images of the annotated frames
    ROOT/SPLIT/img_all/                    images of all frames
    ROOT/SPLIT/panoptic_video/             COCO panoptic PNGs, one per annotated frame

Video VVVV is sequence ``"VVVV"``; frame FFFF (1-based, every 5th annotated) is index
FFFF - 1. Category ids are the 19 Cityscapes train ids. Predictions in the layout of the
VPSNet evaluation (``pred.json`` with ``annotations[]`` beside ``pan_pred/``) read the same
way. Without ``im_all_info`` (the training split) only the annotated frames are listed.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...types import ClassTable
from . import coco_panoptic as coco
from .files import (FileDataset, ImageEntry, PanopticFiles, SequenceNumbers, Sidecar,
                    dataset_defaults, read_json, read_label_png, write_json, write_label_png,
                    write_rgb)
from ..frames import VideoDataset

FRAME_RATE_HZ = 17.0           # Cityscapes video sequences
ANNOTATION_STRIDE = 5
_JSON = re.compile(r"(?:panoptic_gt|im_all_info|panoptic_im)_(.+)_city_vps\.json$")


def gt_json(root: Path, split: str) -> Path:
    return root / f"panoptic_gt_{split}_city_vps.json"


def all_frames_json(root: Path, split: str) -> Path:
    return root / f"im_all_info_{split}_city_vps.json"


def find_split(root: Path, split: str | None) -> str:
    if not root.is_dir():
        raise DataError(f"{root}: Cityscapes-VPS folder not found")
    if split is not None:
        return split
    splits = sorted({m.group(1) for p in root.iterdir() if (m := _JSON.match(p.name))})
    if len(splits) != 1:
        raise DataError(f"{root}: expected the JSON files of one Cityscapes-VPS split "
                        f"(*_SPLIT_city_vps.json), found splits {splits}; choose one with split=")
    return splits[0]


def _key(image_id, where: str) -> tuple[str, int]:
    """(sequence, index) of an image id: ``"VVVV_FFFF_..."`` or ``VVVV * 10000 + FFFF``."""
    if isinstance(image_id, int):
        video, frame = divmod(image_id, 10000)
    else:
        match = re.match(r"(\d{4})_(\d{4})(?:_|$)", str(image_id))
        if match is None:
            raise DataError(f"{where}: image id {image_id!r} does not start with VVVV_FFFF")
        video, frame = int(match.group(1)), int(match.group(2))
    if frame < 1:
        raise DataError(f"{where}: image id {image_id!r} has frame number 0 (frames count from 1)")
    return f"{video:04d}", frame - 1


class CityscapesVpsPanoptic(PanopticFiles):
    """Annotations (or predictions) of a panoptic JSON and its folder of PNGs."""

    def __init__(self, json_path: Path, png_dir: Path, classes: ClassTable, label_divisor: int
                 ) -> None:
        data = read_json(json_path, "Cityscapes-VPS panoptic JSON")
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise DataError(f"{json_path}: expected a COCO panoptic JSON with annotations[]")
        if "categories" in data:
            coco.check_categories(data["categories"], classes, str(json_path))
        files, self.segments = {}, {}
        per_video = defaultdict(list)
        for entry in data["annotations"]:
            if not isinstance(entry, dict) or "image_id" not in entry:
                raise DataError(f"{json_path}: every annotation needs an image_id, got {entry!r}")
            key = _key(entry["image_id"], str(json_path))
            name = entry.get("file_name") or f"{entry['image_id']}.png"
            where = f"{png_dir / name} (sequence {key[0]} frame {key[1]})"
            files[key] = png_dir / name
            self.segments[key] = entry.get("segments_info", [])
            per_video[key[0]].append((key[1], where, self.segments[key]))
        self.instances = {}
        for video, frames in per_video.items():
            ordered = ((where, segs) for _, where, segs in sorted(frames, key=lambda f: f[0]))
            self.instances[video] = coco.video_instances(ordered, classes, label_divisor)
        super().__init__(classes, label_divisor, files, json_path)

    def _load(self, sequence: str, index: int, path: Path) -> np.ndarray:
        where = f"{path} (sequence {sequence} frame {index})"
        return coco.decode(read_label_png(path, "panoptic PNG"), self.segments[(sequence, index)],
                           self.instances[sequence], self.classes, self.label_divisor, where)


def open_panoptic(path: Path, classes: ClassTable, label_divisor: int, split: str | None = None,
                  png_dir: Path | None = None) -> CityscapesVpsPanoptic:
    """Ground truth (a dataset root, or its panoptic_gt JSON) or predictions (a folder with
    ``pred.json`` and ``pan_pred/``, or that JSON)."""
    path = Path(path)
    if path.is_dir() and (path / "pred.json").is_file():
        path = path / "pred.json"
    elif path.is_dir():
        split = find_split(path, split)
        path = gt_json(path, split)
    if png_dir is None:
        match = _JSON.match(path.name)
        if path.name == "pred.json":
            png_dir = path.parent / "pan_pred"
        elif match:
            png_dir = path.parent / match.group(1) / "panoptic_video"
        else:
            raise DataError(f"{path}: cannot tell where its PNGs are; pass png_dir=")
    return CityscapesVpsPanoptic(path, Path(png_dir), classes, label_divisor)


def read(root: Path, split: str | None = None, classes: ClassTable | None = None,
         frame_rate: float | None = None, label_divisor: int = 1000) -> FileDataset:
    root = Path(root)
    split = find_split(root, split)
    classes, frame_rate = dataset_defaults(root, "cityscapes-vps", FRAME_RATE_HZ, classes,
                                           frame_rate)
    annotations = None
    if gt_json(root, split).is_file():
        annotations = CityscapesVpsPanoptic(gt_json(root, split), root / split / "panoptic_video",
                                            classes, label_divisor)
    if all_frames_json(root, split).is_file():
        listing, folder = all_frames_json(root, split), root / split / "img_all"
    elif annotations is not None:
        listing, folder = gt_json(root, split), root / split / "img"
    else:
        raise DataError(f"{root}: neither {all_frames_json(root, split).name} nor "
                        f"{gt_json(root, split).name} found")
    data = read_json(listing)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{listing}: expected images[]")
    images = []
    for entry in data["images"]:
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            raise DataError(f"{listing}: every image needs id and file_name, got {entry!r}")
        sequence, index = _key(entry["id"], str(listing))
        images.append(ImageEntry(sequence, index, folder / entry["file_name"]))
    return FileDataset(classes, label_divisor, frame_rate, images, annotations)


def write(dataset: VideoDataset, root: Path, split: str = "val",
          annotation_stride: int = ANNOTATION_STRIDE) -> None:
    """Write every frame's image to img_all/ and every ``annotation_stride``-th frame
    (frame numbers 5, 10, ... counted from 1) with its annotation to img/ and
    panoptic_video/, with the four JSON files of the release."""
    root = Path(root)
    classes, divisor = dataset.classes, dataset.label_divisor
    videos = SequenceNumbers()
    all_images, gt_images, annotations = [], [], []
    for frame in dataset:
        video, number = videos(frame.sequence), frame.index + 1
        if number > 9999:
            raise DataError(f"sequence {frame.sequence}: Cityscapes-VPS numbers frames up to 9999")
        base = f"vpsros_{video:06d}_{number:06d}"
        height, width = frame.image.shape[:2]
        write_rgb(root / split / "img_all" / f"{base}_leftImg8bit.png", frame.image)
        all_images.append({"id": video * 10000 + number, "width": width, "height": height,
                           "file_name": f"{base}_leftImg8bit.png"})
        if frame.panoptic is None or number % annotation_stride:
            continue
        image_id = f"{video:04d}_{number:04d}_{base}"
        write_rgb(root / split / "img" / f"{image_id}_leftImg8bit.png", frame.image)
        png, segments = coco.encode(frame.panoptic, classes, divisor,
                                    f"sequence {frame.sequence} frame {frame.index}")
        write_label_png(root / split / "panoptic_video" / f"{image_id}_gtFine_color.png", png)
        gt_images.append({"id": image_id, "width": width, "height": height,
                          "file_name": f"{image_id}_leftImg8bit.png"})
        annotations.append({"image_id": image_id, "file_name": f"{image_id}_gtFine_color.png",
                            "segments_info": segments})
    categories = coco.categories(classes)
    write_json(all_frames_json(root, split), {"images": all_images, "categories": categories})
    write_json(root / f"panoptic_im_{split}_city_vps.json",
               {"images": gt_images, "categories": categories})
    write_json(gt_json(root, split), {"images": gt_images, "annotations": annotations,
                                      "categories": categories})
    Sidecar(classes, float(getattr(dataset, "frame_rate", FRAME_RATE_HZ))).write(root)
