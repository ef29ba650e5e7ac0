"""Label PNG decoding (data/formats/png.py), run cutting and id look-up (segment_ids): the
arrays written are the expectations, each decoder (Wuffs, the `png` extra, and the
OpenCV fallback) must give them back exactly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from vps_ros.data.formats import png
from vps_ros.data.formats.segment_ids import SegmentLookup, ids, read_id_words, runs
from vps_ros.errors import DataError

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
RGB[5:20, 10:40] = (1, 2, 3)   # long runs, as in a label map


@pytest.fixture(params=["wuffs", "opencv"])
def decoder(request, monkeypatch):
    if request.param == "opencv":
        monkeypatch.setattr(png, "ImageDecoder", None)
    elif png.ImageDecoder is None:
        pytest.fail("pywuffs (requirements/extra-png.txt) is not installed")
    return request.param


def test_rgb_png_is_rgba_with_opaque_alpha(tmp_path, decoder):
    path = tmp_path / "rgb.png"
    Image.fromarray(RGB).save(path)
    rgba = png.read_label(path)
    assert rgba.shape == (37, 53, 4) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., :3], RGB) and (rgba[..., 3] == 255).all()


def test_rgba_and_palette_pngs(tmp_path, decoder):
    alpha = RNG.integers(0, 256, (37, 53), dtype=np.uint8)
    Image.fromarray(np.dstack([RGB, alpha])).save(tmp_path / "rgba.png")
    assert np.array_equal(png.read_label(tmp_path / "rgba.png"), np.dstack([RGB, alpha]))
    colours = np.array([[0, 0, 0], [10, 200, 30], [255, 1, 128]], np.uint8)
    index = RNG.integers(0, 3, (9, 11), dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(colours.ravel().tolist())
    image.save(tmp_path / "palette.png")
    assert np.array_equal(png.read_label(tmp_path / "palette.png")[..., :3], colours[index])


def test_grey_and_16_bit_pngs_come_as_stored(tmp_path, decoder):
    grey16 = RNG.integers(0, 65536, (8, 9), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    assert np.array_equal(png.read_label(tmp_path / "grey16.png"), grey16)
    grey8 = RGB[..., 0]
    Image.fromarray(grey8).save(tmp_path / "grey8.png")
    assert np.array_equal(png.read_label(tmp_path / "grey8.png"), grey8)


def test_16_bit_colour_png_keeps_its_16_bits(tmp_path, decoder):
    rgb16 = RNG.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])
    rgba = png.read_label(tmp_path / "rgb16.png")
    assert rgba.dtype == np.uint16 and np.array_equal(rgba[..., :3], rgb16)


def test_id_words_are_r_plus_256g_plus_65536b(tmp_path, decoder):
    Image.fromarray(RGB).save(tmp_path / "ids.png")
    r, g, b = (RGB[..., c].astype(np.int64) for c in range(3))
    expected = r + 256 * g + 65536 * b
    assert np.array_equal(ids(read_id_words(tmp_path / "ids.png")), expected)


def test_corrupt_and_missing_files_are_one_line_errors(tmp_path, decoder):
    path = tmp_path / "cut.png"
    Image.fromarray(RGB).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cut\.png: cannot decode the label PNG") as caught:
        png.read_label(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match=r"nope\.png: label PNG not found"):
        png.read_label(tmp_path / "nope.png")


def test_runs_by_hand():
    a = np.array([[5, 5, 5, 7], [7, 7, 5, 5]], np.uint32)
    b = np.array([[1, 1, 2, 2], [2, 2, 2, 2]], np.uint32)
    starts, lengths = runs(a)
    assert starts.tolist() == [0, 3, 6] and lengths.tolist() == [3, 3, 2]
    starts, lengths = runs(a, b)     # b changes at pixel 2, a at 3 and 6
    assert starts.tolist() == [0, 2, 3, 6] and lengths.tolist() == [2, 1, 3, 2]


def test_segment_lookup_by_hand():
    # rows in the order given; 2^24 + 1 is an id no PNG colour holds (it matches no
    # pixel, yet keeps its row); 9 and 12 are not among the ids: row 3 (none).
    lookup = SegmentLookup(np.array([40, 0, 2 ** 24 + 1], np.int64))
    rows, stray = lookup.rows(np.array([0, 40, 9, 40, 12, 9], np.uint32))
    assert rows.tolist() == [1, 0, 3, 0, 3, 3] and stray.tolist() == [9, 12]
    rows, stray = lookup.rows(np.array([40, 0], np.uint32))
    assert rows.tolist() == [0, 1] and stray is None
    # the table is cleared after each look-up: another image's ids start afresh
    rows, stray = SegmentLookup(np.array([9], np.int64)).rows(np.array([40, 9], np.uint32))
    assert rows.tolist() == [1, 0] and stray.tolist() == [40]


def test_segment_lookup_refuses_repeated_ids_and_too_many():
    with pytest.raises(ValueError, match="distinct"):
        SegmentLookup(np.array([3, 5, 3]))
    with pytest.raises(DataError, match="70000 segments in one image"):
        SegmentLookup(np.arange(70000))
