"""Offline replay of a bag holding a frame beyond the maximum input size
(docs/reliability.md, Bounds): the frame is refused before it is resized, logged once,
counted as dropped, and the replay goes on to a complete report; the pictures of a
tall thin frame stay bounded."""
import logging

import numpy as np

from testkit.replay_helpers import replay, small_model, synthetic_frames, write_images
from vps_ros.replay.cameras import ReplayFrame
from vps_ros.replay.figures import TILE_WIDTH, titled_tiles
from vps_ros.types import ClassTable


def test_a_frame_beyond_the_maximum_size_is_dropped_and_the_replay_goes_on(tmp_path, caplog):
    model, params = small_model(tmp_path)
    params.write_text(params.read_text() + "    backend: torch\n")
    _, frames = synthetic_frames(2)
    tall = np.zeros((20000, 4, 3), np.uint8)          # 240 KB, 24 GB unbounded
    bag = write_images(tmp_path / "bag", [
        ("/camera/image", 1, 1, frames[0].image, "rgb8"),
        ("/camera/image", 2, 2, tall, "rgb8"),
        ("/camera/image", 3, 3, tall, "rgb8"),
        ("/camera/image", 4, 4, frames[1].image, "rgb8")])
    with caplog.at_level(logging.WARNING, logger="vps_ros"):
        code = replay(bag, tmp_path / "out", model, params, image_topic="/camera/image",
                      gt_topic=None)
    assert code == 0
    assert caplog.messages.count(
        "camera frame 1: frame 4x20000 is beyond the maximum input size 8192x8192 "
        "(limits.max_image_width/max_image_height): refused; counted as dropped") == 1
    assert "camera: 2 frames beyond the maximum input size refused, counted as dropped" \
        in caplog.messages
    row = next(line for line in (tmp_path / "out" / "report.md").read_text().splitlines()
               if line.startswith("| camera |") and "frames" not in line)
    assert row.split("|")[2:5] == [" 4 ", " 0 ", " 2 "]    # frames, GT, dropped


def test_the_tile_of_a_tall_thin_frame_is_bounded():
    classes = ClassTable.named("synthetic")
    frame = ReplayFrame("camera", 0, 0, np.zeros((20000, 4, 3), np.uint8), None)
    tiles = titled_tiles(frame, [(None, "prediction")], classes, 1000)
    # at most 4 * 384 = 1536 rows (unbounded: 20000 * 96 = 1920000), 0.3 px wide -> 1,
    # plus the 18 + 2 px title border and 2 + 2 px sides, two tiles side by side
    assert tiles.shape == (1536 + 20, 2 * (1 + 4), 3)
    wide = ReplayFrame("camera", 0, 0, np.zeros((90, 160, 3), np.uint8), None)
    assert titled_tiles(wide, [(None, "p")], classes, 1000).shape == \
        (216 + 20, 2 * (TILE_WIDTH + 4), 3)                # 90 * 384 / 160 = 216
