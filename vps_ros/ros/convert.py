"""ROS messages <-> arrays and TrackedFrame -> messages.

Every Image field conversion goes through :mod:`vps_ros.imgmsg` (the one conversion);
this module only moves fields between that and the rclpy message classes.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header

from vps_ros.errors import DataError
from vps_ros.imgmsg import (COLOR_ENCODINGS, check_fields, decode_compressed, from_array,
                            to_array)
from vps_ros.msg import PanopticObject, PanopticObjectArray
from vps_ros.objmsg import object_fields, roi_fields
from vps_ros.types import ClassTable, TrackedFrame, TrackedObject

def stamp_ns(header: Header) -> int:
    """A header's stamp in nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def check_image(msg: Image, where: str = "image") -> None:
    """DataError naming ``where`` unless ``msg`` holds a decodable colour image (rgb8,
    bgr8, rgba8, bgra8, mono8) with enough data; reads no pixel."""
    if msg.encoding not in COLOR_ENCODINGS:
        raise DataError(f"{where}: unsupported encoding {msg.encoding!r} for a camera image "
                        f"(supported: {', '.join(COLOR_ENCODINGS)})")
    check_fields(msg.height, msg.width, msg.encoding, msg.step, len(msg.data), where)


def image_to_rgb(msg: Image, where: str = "image") -> np.ndarray:
    """RGB uint8 (H, W, 3) of a colour Image (any ``step`` padding); DataError naming
    ``where`` for anything :func:`check_image` rejects."""
    check_image(msg, where)
    return to_array(msg.height, msg.width, msg.encoding, msg.step, msg.data,
                    msg.is_bigendian, where=where)


def compressed_to_rgb(msg: CompressedImage, where: str = "image/compressed") -> np.ndarray:
    """RGB uint8 of a CompressedImage (jpeg or png)."""
    return decode_compressed(msg.format, msg.data, where=where)


def image_msg(array: np.ndarray, encoding: str, header: Header) -> Image:
    """An Image of an RGB uint8 image (colour encodings) or an int32 map (``32SC1``)."""
    fields = from_array(array, encoding)
    msg = Image(header=header, height=fields.height, width=fields.width,
                encoding=fields.encoding, is_bigendian=fields.is_bigendian, step=fields.step)
    msg.data = fields.data
    return msg


def objects_msg(frame: TrackedFrame, classes: ClassTable, header: Header) -> PanopticObjectArray:
    """The objects of a frame: stuff segments, things seen, things only in memory.

    Boxes are clipped to the published panoptic image, so a memory-only object
    predicted outside the image gets an empty box at the border.
    """
    height, width = frame.panoptic.shape
    msg = PanopticObjectArray(header=header, label_divisor=frame.label_divisor)
    msg.objects = [_object(obj, classes, frame.label_divisor, width, height)
                   for obj in frame.objects]
    return msg


def _object(obj: TrackedObject, classes: ClassTable, label_divisor: int, width: int,
            height: int) -> PanopticObject:
    return PanopticObject(bbox=roi(obj.box, width, height),
                          **object_fields(obj, classes, label_divisor))


def roi(box: tuple[float, float, float, float], width: int, height: int) -> RegionOfInterest:
    """The pixels a box ``(x0, y0, x1, y1)`` (x1/y1 exclusive) covers, inside the image."""
    return RegionOfInterest(**roi_fields(box, width, height))
