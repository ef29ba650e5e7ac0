"""Image <-> message field conversion: every encoding, row padding, both directions."""
import numpy as np
import pytest

from vps_ros.errors import DataError
from vps_ros.imgmsg import COLOR_ENCODINGS, decode_compressed, encode_compressed, from_array, to_array


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def _pad_rows(fields, pad):
    """The same image with ``pad`` junk bytes after every row."""
    rows = np.frombuffer(fields.data, np.uint8).reshape(fields.height, fields.step)
    junk = np.full((fields.height, pad), 0xAB, np.uint8)
    return np.hstack([rows, junk]).tobytes(), fields.step + pad


@pytest.mark.parametrize("encoding", [e for e in COLOR_ENCODINGS if e != "mono8"])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_round_trip(rgb, encoding, pad):
    fields = from_array(rgb, encoding)
    assert fields.encoding == encoding and (fields.height, fields.width) == (5, 7)
    data, step = _pad_rows(fields, pad)
    back = to_array(fields.height, fields.width, encoding, step, data)
    np.testing.assert_array_equal(back, rgb)


def test_bgr_bytes_are_in_bgr_order(rgb):
    fields = from_array(rgb, "bgr8")
    first = np.frombuffer(fields.data, np.uint8)[:3]
    assert first.tolist() == rgb[0, 0, ::-1].tolist()


@pytest.mark.parametrize("pad", [0, 1])
def test_mono_round_trip(pad):
    grey = np.random.default_rng(1).integers(0, 256, size=(4, 6), dtype=np.uint8)
    image = np.repeat(grey[..., None], 3, axis=2)
    fields = from_array(image, "mono8")
    assert fields.step == 6
    data, step = _pad_rows(fields, pad)
    np.testing.assert_array_equal(to_array(4, 6, "mono8", step, data), image)


@pytest.mark.parametrize("pad", [0, 4])
def test_32sc1_round_trip_and_big_endian(pad):
    pan = np.array([[0, 6001, 255000], [9999, 1, 2]], np.int32)
    fields = from_array(pan, "32SC1")
    assert fields.step == 12
    data, step = _pad_rows(fields, pad)
    np.testing.assert_array_equal(to_array(2, 3, "32SC1", step, data), pan)
    big = pan.astype(">i4").tobytes()
    np.testing.assert_array_equal(to_array(2, 3, "32SC1", 12, big, is_bigendian=1), pan)


@pytest.mark.parametrize("args, message", [
    ((2, 2, "yuv422", 4, bytes(8)), "unsupported encoding 'yuv422'"),
    ((0, 2, "rgb8", 6, b""), "zero-size image"),
    ((2, 2, "rgb8", 6, bytes(11)), "data has 11 bytes"),
    ((2, 2, "rgb8", 5, bytes(12)), "step 5 is smaller"),
])
def test_bad_images_raise_clear_errors(args, message):
    with pytest.raises(DataError, match=message) as info:
        to_array(*args, where="/camera/image_raw")
    assert str(info.value).startswith("/camera/image_raw:")


def test_compressed_round_trip_and_corrupt_data(rgb):
    # red grows to the right, green downwards, blue is constant: a decoder that swaps
    # channels or drops colour is off by more than 90 somewhere (JPEG q95: at most 8)
    y, x = np.mgrid[0:16, 0:32]
    colour = np.stack([x * 255 // 31, y * 255 // 15, np.full((16, 32), 60)], -1).astype(np.uint8)
    fmt, data = encode_compressed(colour, "png")
    assert "png" in fmt
    np.testing.assert_array_equal(decode_compressed(fmt, data), colour)
    fmt, data = encode_compressed(colour, "jpeg", quality=95)
    error = np.abs(decode_compressed(fmt, data).astype(int) - colour)
    assert error.max() < 12 and error.mean() < 3
    with pytest.raises(DataError, match="cannot decode 5 bytes of jpeg"):
        decode_compressed("jpeg", b"\xff\xd8junk"[:5])


def test_check_fields_validates_without_the_data():
    from vps_ros.imgmsg import check_fields
    assert check_fields(4, 5, "bgra8", 24, 24 * 3 + 20) == 20
    with pytest.raises(DataError, match="cam: data has 91 bytes"):
        check_fields(4, 5, "bgra8", 24, 91, where="cam")
