"""The one image <-> message conversion, on the fields of sensor_msgs/Image and
sensor_msgs/CompressedImage rather than on ROS types.

Working on plain fields lets the same code serve rclpy messages in ``vps_ros.ros`` and
the message objects that ``rosbags`` deserialises in the (ROS-free) bag reader. Colour
images come out as RGB uint8 (H, W, 3); ``32SC1`` panoptic maps as int32 (H, W).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import DataError

# encoding -> (channels, numpy dtype)
_LAYOUT = {
    "rgb8": (3, np.uint8), "bgr8": (3, np.uint8), "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8), "mono8": (1, np.uint8), "32SC1": (1, np.int32),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
_TO_RGB = {"bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB,
           "bgra8": cv2.COLOR_BGRA2RGB, "mono8": cv2.COLOR_GRAY2RGB}
_FROM_RGB = {"bgr8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGB2RGBA,
             "bgra8": cv2.COLOR_RGB2BGRA, "mono8": cv2.COLOR_RGB2GRAY}


@dataclass
class ImageFields:
    """The payload fields of a sensor_msgs/Image."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes


def check_fields(height: int, width: int, encoding: str, step: int, size: int,
                 where: str = "image") -> int:
    """Raise DataError naming ``where`` unless Image fields with ``size`` bytes of data
    hold a decodable image: a known encoding, a non-zero size, enough data. Reads no
    pixel (cheap enough to run on every arriving message); returns the bytes per row
    without padding."""
    if encoding not in _LAYOUT:
        raise DataError(f"{where}: unsupported encoding {encoding!r} "
                        f"(supported: {', '.join(_LAYOUT)})")
    if height <= 0 or width <= 0:
        raise DataError(f"{where}: zero-size image ({width}x{height})")
    channels, dtype = _LAYOUT[encoding]
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if step < row_bytes:
        raise DataError(f"{where}: step {step} is smaller than width*pixel size {row_bytes} "
                        f"for {encoding}")
    needed = step * (height - 1) + row_bytes
    if size < needed:
        raise DataError(f"{where}: data has {size} bytes, {encoding} {width}x{height} "
                        f"with step {step} needs {needed}")
    return row_bytes


def to_array(height: int, width: int, encoding: str, step: int, data, is_bigendian: int = 0,
             where: str = "image") -> np.ndarray:
    """Decode Image fields: RGB uint8 for colour encodings, int32 for ``32SC1``.

    Rows may be padded (``step`` larger than ``width * pixel size``). Raises DataError
    naming ``where`` for an unknown encoding, a zero-size image or too little data.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    row_bytes = check_fields(height, width, encoding, step, buffer.size, where)
    channels, dtype = _LAYOUT[encoding]
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, row_bytes),
                                           strides=(step, 1))
    pixels = np.ascontiguousarray(rows).view(dtype)
    if dtype != np.uint8:
        order = ">" if is_bigendian else "<"
        pixels = pixels.view(pixels.dtype.newbyteorder(order)).astype(dtype)
        return pixels.reshape(height, width)
    pixels = pixels.reshape(height, width, channels)
    if encoding == "rgb8":
        return pixels
    if encoding == "mono8":
        return cv2.cvtColor(pixels[..., 0], _TO_RGB[encoding])
    return cv2.cvtColor(pixels, _TO_RGB[encoding])


def from_array(array: np.ndarray, encoding: str) -> ImageFields:
    """Encode an RGB uint8 image (colour encodings) or an int32 map (``32SC1``)."""
    if encoding not in _LAYOUT:
        raise ValueError(f"unsupported encoding {encoding!r}")
    if encoding == "32SC1":
        if array.ndim != 2:
            raise ValueError("32SC1 needs a 2-D array")
        pixels = np.ascontiguousarray(array, dtype="<i4")
    else:
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {array.dtype} "
                             f"{array.shape}")
        pixels = array if encoding == "rgb8" else cv2.cvtColor(array, _FROM_RGB[encoding])
        pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return ImageFields(height, width, encoding, 0, pixels.strides[0], pixels.tobytes())


def decode_compressed(fmt: str, data, where: str = "compressed image") -> np.ndarray:
    """Decode a CompressedImage payload (jpeg/png) to RGB uint8."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None:
        raise DataError(f"{where}: cannot decode {buffer.size} bytes of {fmt or 'unknown'} data")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> tuple[str, bytes]:
    """(format field, data) of a CompressedImage holding ``rgb``."""
    ext = {"jpeg": ".jpg", "png": ".png"}[fmt]
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buffer = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"opencv could not encode the image as {fmt}")
    return f"rgb8; {fmt} compressed bgr8", buffer.tobytes()
