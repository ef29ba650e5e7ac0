"""Message conversions of the node, on real rclpy message classes: every input
encoding with row padding, outputs back to arrays, compressed input, object arrays."""
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from testkit.scenes import CLASSES
from vps_ros.errors import DataError
from vps_ros.imgmsg import COLOR_ENCODINGS, encode_compressed, to_array
from vps_ros.ros.convert import (compressed_to_rgb, image_msg, image_to_rgb, objects_msg, roi,
                                 stamp_ns)
from vps_ros.types import FrameSegments, TrackedFrame, TrackedObject

pytestmark = pytest.mark.ros

CAR, ROAD = CLASSES.id_of("car"), CLASSES.id_of("road")


@pytest.fixture
def rgb():
    return np.random.default_rng(3).integers(0, 256, (6, 9, 3), dtype=np.uint8)


def _header(sec=12, nanosec=345, frame_id="cam_optical"):
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def _padded(msg: Image, pad: int) -> Image:
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    out = Image(header=msg.header, height=msg.height, width=msg.width, encoding=msg.encoding,
                is_bigendian=msg.is_bigendian, step=msg.step + pad)
    out.data = np.hstack([rows, np.full((msg.height, pad), 0x5A, np.uint8)]).tobytes()
    return out


@pytest.mark.parametrize("encoding", COLOR_ENCODINGS)
@pytest.mark.parametrize("pad", [0, 5])
def test_every_input_encoding_with_padding_decodes_to_rgb(rgb, encoding, pad):
    expected = rgb if encoding != "mono8" else np.repeat(
        to_array(6, 9, "mono8", 9, image_msg(rgb, "mono8", _header()).data)[..., :1], 3, 2)
    msg = _padded(image_msg(rgb, encoding, _header()), pad)
    assert msg.step == 9 * (4 if encoding.endswith("a8") else 1 if encoding == "mono8" else 3) + pad
    np.testing.assert_array_equal(image_to_rgb(msg), expected)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_output_images_round_trip_with_header(rgb, encoding):
    header = _header()
    msg = image_msg(rgb, encoding, header)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (6, 9, encoding, 0)
    assert msg.header.frame_id == "cam_optical" and stamp_ns(msg.header) == 12_000_000_345
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_bgr8_output_has_its_bytes_in_bgr_order(rgb):
    data = np.frombuffer(bytes(image_msg(rgb, "bgr8", _header()).data), np.uint8)
    assert data[:3].tolist() == rgb[0, 0, ::-1].tolist()


@pytest.mark.parametrize("pad", [0, 8])
def test_panoptic_32sc1_round_trips(pad):
    panoptic = np.array([[6001, 6002, 0], [255000, 9017, 5000]], np.int32)
    msg = _padded(image_msg(panoptic, "32SC1", _header()), pad)
    assert msg.encoding == "32SC1" and msg.step == 12 + pad
    np.testing.assert_array_equal(
        to_array(msg.height, msg.width, msg.encoding, msg.step, msg.data, msg.is_bigendian),
        panoptic)


def test_compressed_png_is_exact_and_corrupt_jpeg_names_the_topic(rgb):
    fmt, data = encode_compressed(rgb, "png")
    msg = CompressedImage(format=fmt)
    msg.data = data
    np.testing.assert_array_equal(compressed_to_rgb(msg), rgb)
    bad = CompressedImage(format="jpeg")
    bad.data = b"\xff\xd8\xff\xe0" + bytes(50)
    with pytest.raises(DataError, match="^front/image/compressed: cannot decode"):
        compressed_to_rgb(bad, where="front/image/compressed")


@pytest.mark.parametrize("change, message", [
    ({"encoding": "yuv422"}, "unsupported encoding 'yuv422'"),
    ({"encoding": "32SC1", "step": 36}, "unsupported encoding '32SC1' for a camera image"),
    ({"height": 0, "width": 0, "step": 0, "data": b""}, "zero-size image"),
    ({"data": bytes(20)}, "data has 20 bytes"),
])
def test_bad_images_raise_data_errors_naming_the_topic(rgb, change, message):
    msg = image_msg(rgb, "rgb8", _header())
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(DataError, match=message) as info:
        image_to_rgb(msg, where="cam/image")
    assert str(info.value).startswith("cam/image:")


def _frame() -> TrackedFrame:
    panoptic = np.full((40, 60), ROAD * 1000, np.int32)
    panoptic[5:15, 10:30] = CAR * 1000 + 7
    segments = FrameSegments.empty(40, 60, 4)
    objects = [TrackedObject(0, ROAD, False, 0.8, 2200, (0.0, 0.0, 60.0, 40.0)),
               TrackedObject(7, CAR, True, 0.9, 200, (10.0, 5.0, 30.0, 15.0), (1.5, -0.5), 12, 0),
               TrackedObject(9, CAR, True, 0.7, 0, (55.2, 30.5, 70.0, 44.0), (3.0, 2.0), 40, 3,
                             True)]
    return TrackedFrame(5, panoptic, 1000, segments, np.zeros(0, np.int64), objects)


def test_objects_msg_carries_every_field_and_clips_boxes_to_the_image():
    msg = objects_msg(_frame(), CLASSES, _header(frame_id="front_optical"))
    assert msg.header.frame_id == "front_optical" and msg.label_divisor == 1000
    road, car, held = msg.objects
    assert (road.id, road.panoptic_id, road.class_name, road.is_thing, road.area) == \
        (0, ROAD * 1000, "road", False, 2200)
    assert (car.id, car.panoptic_id, car.class_id, car.class_name, car.is_thing) == \
        (7, CAR * 1000 + 7, CAR, "car", True)
    assert (car.bbox.x_offset, car.bbox.y_offset, car.bbox.width, car.bbox.height) == \
        (10, 5, 20, 10)
    assert (car.velocity_x, car.velocity_y, car.age, car.frames_since_seen) == (1.5, -0.5, 12, 0)
    assert car.score == pytest.approx(0.9)
    assert (held.area, held.frames_since_seen, held.age) == (0, 3, 40)
    assert (held.bbox.x_offset, held.bbox.y_offset, held.bbox.width, held.bbox.height) == \
        (55, 30, 5, 10)


@pytest.mark.parametrize("box, expected", [
    ((2.4, 3.6, 10.2, 8.0), (2, 3, 9, 5)),
    ((-5.0, -2.0, 4.0, 3.0), (0, 0, 4, 3)),
    ((70.0, 10.0, 90.0, 20.0), (60, 10, 0, 10)),
    ((10.0, 10.0, 5.0, 5.0), (10, 10, 0, 0)),
])
def test_roi_covers_the_box_pixels_inside_the_image(box, expected):
    r = roi(box, 60, 40)
    assert (r.x_offset, r.y_offset, r.width, r.height) == expected
