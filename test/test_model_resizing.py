"""Camera images into the network input and segments back out (vps_ros.model.resizing).

Expectations are measured independently: on the map that ``cv2.resize`` makes, with
``np.bincount`` and ``np.nonzero``, or worked out by hand."""
import cv2
import numpy as np
import pytest

from vps_ros.model.limits import InputLimits
from vps_ros.model.resizing import (crop_segments, fitted_size, letterbox, nearest_source,
                                    resize_image, scale_segments)
from vps_ros.types import FrameSegments

IS_THING = np.array([False, True, True])


def _segments(segment_map: np.ndarray) -> FrameSegments:
    """FrameSegments of a map, with areas and boxes measured pixel by pixel."""
    n = int(segment_map.max()) + 1
    boxes, areas = [], []
    for k in range(n):
        ys, xs = np.nonzero(segment_map == k)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        areas.append(len(xs))
    classes = np.arange(n, dtype=np.int32) % 3
    return FrameSegments(segment_map.astype(np.int32), classes, np.linspace(1, 0.5, n,
                         dtype=np.float32), IS_THING[classes], np.array(boxes, np.float32),
                         np.array(areas, np.int64), np.eye(n, 4, dtype=np.float32))


def _random_map(height, width, seed):
    """Blobs of several segments and void, every segment present."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(-1, 6, (max(2, height // 7), max(2, width // 7)))
    fine = cv2.resize(coarse.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
    present = np.unique(fine[fine >= 0])
    lut = np.full(7, -1, np.int32)
    lut[present + 1] = np.arange(len(present))
    return lut[fine + 1]


@pytest.mark.parametrize("model, camera", [((256, 455), (1080, 1920)),   # 16:9
                                           ((256, 341), (960, 1280)),    # 4:3
                                           ((256, 512), (1024, 2048)),
                                           ((61, 97), (333, 517)),       # odd sizes
                                           ((64, 128), (64, 300))])      # one axis only
def test_enlarged_segments_measure_what_the_enlarged_map_holds(model, camera):
    segments = _segments(_random_map(*model, seed=sum(camera)))
    scaled, kept = scale_segments(segments, camera)
    expected_map = cv2.resize(segments.segment_map, camera[::-1], interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(scaled.segment_map, expected_map)
    assert kept.tolist() == list(range(segments.num_segments))
    measured = _segments(expected_map)
    assert scaled.areas.tolist() == measured.areas.tolist()
    np.testing.assert_array_equal(scaled.boxes, measured.boxes)
    np.testing.assert_array_equal(scaled.class_ids, segments.class_ids)
    np.testing.assert_array_equal(scaled.embeddings, segments.embeddings)


def test_shrunk_segments_drop_those_that_vanish_and_say_which_stay():
    segment_map = np.full((8, 10), 1, np.int32)
    segment_map[7, 9] = 0                        # one pixel, gone at 2x2
    segments = _segments(segment_map)
    bigger, _ = scale_segments(segments, (16, 20))
    assert bigger.areas.tolist() == [4, 316] and bigger.boxes[0].tolist() == [18, 14, 20, 16]
    assert bigger.boxes[1].tolist() == [0, 0, 20, 16]
    smaller, kept = scale_segments(segments, (2, 2))
    assert kept.tolist() == [1] and smaller.num_segments == 1
    assert (smaller.segment_map == 0).all() and smaller.areas.tolist() == [4]
    assert smaller.class_ids.tolist() == [1] and smaller.embeddings.shape == (1, 4)


def test_nearest_source_is_the_pixel_opencv_copies():
    for source, target in [(455, 1920), (256, 1080), (97, 517), (10, 3), (7, 7)]:
        ramp = np.arange(source, dtype=np.int32)[None, :]
        copied = cv2.resize(ramp, (target, 1), interpolation=cv2.INTER_NEAREST)[0]
        assert nearest_source(source, target).tolist() == copied.tolist()


@pytest.mark.parametrize("camera, fitted", [((1080, 1920), (256, 455)),  # 512 * 1080/1920 = 288 > 256
                                            ((960, 1280), (256, 341)),
                                            ((1024, 2048), (256, 512)),
                                            ((1000, 3000), (171, 512)),  # wider than 2:1
                                            ((256, 512), (256, 512)),
                                            ((30, 40), (256, 341))])
def test_letterbox_keeps_the_aspect_inside_the_input(camera, fitted):
    assert fitted_size(camera, (256, 512), "letterbox") == fitted
    assert fitted_size(camera, (256, 512), "stretch") == (256, 512)


def test_letterbox_puts_the_image_top_left_and_pads_with_black():
    image = np.full((90, 160, 3), 200, np.uint8)
    boxed = letterbox(image, (36, 64), (40, 96))
    assert boxed.shape == (40, 96, 3)
    assert (boxed[:36, :64] == 200).all()
    assert (boxed[36:] == 0).all() and (boxed[:, 64:] == 0).all()


def test_crop_keeps_the_image_part_and_drops_segments_only_in_the_padding():
    segment_map = np.zeros((6, 8), np.int32)
    segment_map[:, 5:] = 1                       # segment 1 partly in the image
    segment_map[4:, :] = 2                       # segment 2 only in the padding rows
    segments = _segments(segment_map)
    cropped = crop_segments(segments, (4, 6), np.array([False, True, True]))
    assert cropped.num_segments == 2 and cropped.image_size == (4, 6)
    assert cropped.areas.tolist() == [20, 4]
    assert cropped.boxes.tolist() == [[0, 0, 5, 4], [5, 0, 6, 4]]


def test_a_large_shrink_halves_first_and_stays_an_area_average():
    yy, xx = np.mgrid[0:1080, 0:1920]
    checker = (xx // 2 + yy // 2) % 2 * 255            # 2-pixel checks: aliases
    image = np.stack([(xx * 255 // 1919), (yy * 255 // 1079), checker], -1)
    image = image.astype(np.uint8)
    direct = cv2.resize(image, (455, 256), interpolation=cv2.INTER_AREA).astype(float)
    fast = resize_image(image, (256, 455)).astype(float)
    assert fast.shape == direct.shape
    assert np.abs(fast[..., :2] - direct[..., :2]).max() <= 1.0   # smooth ramps: same
    assert np.abs(fast - direct).mean() < 1.0
    # a bilinear (no averaging) shrink of the checks differs far more
    linear = cv2.resize(image, (455, 256), interpolation=cv2.INTER_LINEAR).astype(float)
    assert np.abs(linear[..., 2] - direct[..., 2]).mean() > 5 * np.abs(
        fast[..., 2] - direct[..., 2]).mean()


class _Fixed:
    """The network_size rule of MaskSegmenter on a bare object (no network needed)."""
    input_size = (256, 512)
    limits = InputLimits()

    def __init__(self, resize):
        self.resize = resize


@pytest.mark.parametrize("cameras, letterboxed", [
    ([(1080, 1920)], (288, 512)),      # 512 * 1080 / 1920 = 288
    ([(960, 1280)], (384, 512)),       # 4:3: 384
    ([(1024, 2048)], (256, 512)),
    ([(1000, 3000)], (192, 512)),      # 170.7 -> 192
    ([(333, 517)], (352, 512)),        # 329.7 -> 352
    ([(1024, 2048), (1080, 1920)], (288, 512)),   # the taller camera decides
])
def test_letterboxed_network_input_keeps_the_width_and_follows_the_aspect(cameras, letterboxed):
    from vps_ros.model import MaskSegmenter
    assert MaskSegmenter.network_size(_Fixed("letterbox"), cameras) == letterboxed
    assert MaskSegmenter.network_size(_Fixed("stretch"), cameras) == (256, 512)
    for camera in cameras:   # each camera then fills the input's width
        assert fitted_size(camera, letterboxed, "letterbox")[1] == 512
