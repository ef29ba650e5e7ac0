"""Pipeline: segmenter + memory buffer + panoptic encoding, with the real model (small,
randomly initialised) and the real tracker."""
import numpy as np
import pytest

from testkit.pipeline_helpers import LOOSE, synthetic_frames, write_small_checkpoint
from testkit.scenes import CLASSES
from vps_ros.errors import CheckpointError, ConfigError
from vps_ros.model import PostprocessConfig
from vps_ros.pipeline import Pipeline, PipelineConfig, load_segmenter, step_batch
from vps_ros.tracking import TrackerConfig
from vps_ros.types import FrameSegments

ROAD, CAR, PEDESTRIAN = CLASSES.id_of("road"), CLASSES.id_of("car"), CLASSES.id_of("pedestrian")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_small_checkpoint(tmp_path_factory.mktemp("model") / "small.pt")


@pytest.fixture(scope="module")
def config(checkpoint):
    return PipelineConfig(model=str(checkpoint), postprocess=LOOSE, threads=1)


@pytest.fixture(scope="module")
def segmenter(config):
    return load_segmenter(config)


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(4) + synthetic_frames(4, sequence=1)


def _segments(boxes: dict[int, tuple[int, int, int, int]], embed: dict[int, int],
              height: int = 64, width: int = 128) -> FrameSegments:
    """A frame with road in the bottom rows and one car per entry of ``boxes``
    (key: a name for the car; its embedding is the unit vector ``embed[key]``)."""
    segment_map = np.full((height, width), -1, np.int32)
    segment_map[48:] = 0
    class_ids, is_thing, dims = [ROAD], [False], []
    for k, (x0, y0, x1, y1) in boxes.items():
        segment_map[y0:y1, x0:x1] = len(class_ids)
        class_ids.append(CAR)
        is_thing.append(True)
        dims.append(embed[k])
    n = len(class_ids)
    embeddings = np.zeros((n, 8), np.float32)
    embeddings[0, 7] = 1.0
    embeddings[np.arange(1, n), dims] = 1.0
    areas = np.array([(segment_map == i).sum() for i in range(n)], np.int64)
    found = [np.nonzero(segment_map == i) for i in range(n)]
    seg_boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                          for ys, xs in found], np.float32)
    return FrameSegments(segment_map, np.array(class_ids, np.int32),
                         np.linspace(0.9, 0.6, n).astype(np.float32), np.array(is_thing),
                         seg_boxes, areas, embeddings)


def test_step_encodes_the_segments_with_their_track_ids(config, segmenter, frames):
    pipeline = Pipeline.from_config(config, segmenter)
    for frame in frames[:4]:
        result = pipeline.step(frame.image, frame.stamp_ns)
        seg = result.segments
        assert result.stamp_ns == frame.stamp_ns
        assert result.panoptic.shape == frame.image.shape[:2]
        assert seg.num_segments > 0
        assert result.panoptic.shape == seg.segment_map.shape
        for (y, x), value in np.ndenumerate(result.panoptic):
            s = seg.segment_map[y, x]
            if s < 0:
                assert value == CLASSES.void_id * 1000, (y, x)
            else:
                assert value == seg.class_ids[s] * 1000 + result.track_ids[s], (y, x)
        things = seg.is_thing
        assert things.any()
        assert np.all(result.track_ids[~things] == 0)
        assert np.all((result.track_ids[things] > 0) & (result.track_ids[things] < 1000))
        assert len(set(result.track_ids[things].tolist())) == int(things.sum())
        assert set(result.timings_ms) == {"segment", "track", "panoptic", "total"}
        assert result.timings_ms["total"] >= result.timings_ms["segment"] > 0


def test_objects_are_stuff_then_seen_things_then_memory_only_things(segmenter):
    pipeline = Pipeline(segmenter, TrackerConfig())
    first = pipeline.track(_segments({"a": (10, 10, 30, 30), "b": (60, 10, 80, 30)},
                                     {"a": 0, "b": 1}), 0)
    ids = {o.track_id for o in first.objects if o.is_thing}
    assert [(o.track_id, o.class_id, o.is_thing) for o in first.objects][0] == (0, ROAD, False)
    assert first.objects[0].area == 128 * 16 and first.objects[0].box == (0, 48, 128, 64)
    assert len(ids) == 2

    second = pipeline.track(_segments({"a": (12, 10, 32, 30)}, {"a": 0}), 100_000_000)
    stuff, seen, held = second.objects[0], second.objects[1], second.objects[2]
    assert len(second.objects) == 3 and not stuff.is_thing
    assert seen.frames_since_seen == 0 and seen.area == 400
    assert seen.track_id == first.objects[1].track_id        # the car that moved keeps its id
    assert held.track_id == first.objects[2].track_id and held.frames_since_seen == 1
    assert held.area == 0 and held.box_is_predicted
    assert set(np.unique(second.panoptic).tolist()) == {
        ROAD * 1000, CAR * 1000 + seen.track_id, CLASSES.void_id * 1000}


def test_a_stamp_going_backwards_clears_the_memory_and_says_so_once(segmenter):
    pipeline = Pipeline(segmenter, TrackerConfig())
    for stamp in (0, 100, 200):
        result = pipeline.track(_segments({"a": (10, 10, 30, 30), "b": (60, 10, 80, 30)},
                                          {"a": 0, "b": 1}), stamp)
        assert result.memory_reset == ""
    before = {o.track_id for o in result.objects}
    alone = pipeline.track(_segments({"b": (60, 10, 80, 30)}, {"b": 1}), 200)  # same stamp
    assert alone.memory_reset == "" and any(o.frames_since_seen for o in alone.objects)

    jumped = pipeline.track(_segments({"b": (60, 10, 80, 30)}, {"b": 1}), 50)
    assert "before the previous frame" in jumped.memory_reset
    assert [o.frames_since_seen for o in jumped.objects] == [0, 0]  # nothing held from before
    assert before == {0, 1, 2} and jumped.objects[1].track_id == 1   # ids start afresh
    after = pipeline.track(_segments({"b": (60, 10, 80, 30)}, {"b": 1}), 60)
    assert after.memory_reset == ""


def test_reset_forgets_every_object(segmenter):
    pipeline = Pipeline(segmenter, TrackerConfig())
    pipeline.track(_segments({"a": (10, 10, 30, 30), "b": (60, 10, 80, 30)}, {"a": 0, "b": 1}), 0)
    pipeline.reset()
    result = pipeline.track(_segments({"b": (60, 10, 80, 30)}, {"b": 1}), 0)
    assert result.memory_reset == ""
    assert [(o.track_id, o.frames_since_seen) for o in result.objects] == [(0, 0), (1, 0)]


def test_a_tracker_change_applies_from_the_next_frame_and_keeps_the_memory(segmenter):
    pipeline = Pipeline(segmenter, TrackerConfig(tau=30))
    both = _segments({"a": (10, 10, 30, 30), "b": (60, 10, 80, 30)}, {"a": 0, "b": 1})
    only_a = _segments({"a": (10, 10, 30, 30)}, {"a": 0})
    pipeline.track(both, 0)
    assert sum(o.frames_since_seen > 0 for o in pipeline.track(only_a, 1).objects) == 1
    pipeline.update_tracker(TrackerConfig(tau=0))
    assert pipeline.tracker_config.tau == 0
    assert sum(o.frames_since_seen > 0 for o in pipeline.track(only_a, 2).objects) == 0


def test_one_batched_model_call_gives_what_separate_pipelines_give(config, segmenter, frames):
    first, second = frames[:4], frames[4:]
    batched = [Pipeline.from_config(config, segmenter) for _ in range(2)]
    alone = [Pipeline.from_config(config, segmenter) for _ in range(2)]
    for a, b in zip(first, second):
        results = step_batch(batched, [a.image, b.image], [a.stamp_ns, b.stamp_ns])
        for result, pipeline, frame in zip(results, alone, (a, b)):
            expected = pipeline.step(frame.image, frame.stamp_ns)
            np.testing.assert_array_equal(result.panoptic, expected.panoptic)
            assert [o.track_id for o in result.objects] == [o.track_id for o in expected.objects]
        assert results[0].timings_ms["segment"] == results[1].timings_ms["segment"]


def test_batching_needs_one_segmenter_but_each_stream_keeps_its_output_scale(
        config, segmenter, frames):
    other = load_segmenter(config)
    mixed = [Pipeline.from_config(config, segmenter), Pipeline.from_config(config, other)]
    with pytest.raises(ValueError, match="share one segmenter"):
        step_batch(mixed, [frames[0].image] * 2, [0, 0])
    image = np.zeros((300, 600, 3), np.uint8)
    scales = [Pipeline(segmenter, output_scale="input"), Pipeline(segmenter, output_scale="model")]
    results = step_batch(scales, [image] * 2, [0, 0])
    assert [r.panoptic.shape for r in results] == [(300, 600), segmenter.input_size]


def test_output_scale_model_publishes_at_the_images_part_of_the_network_input(
        config, segmenter):
    image = np.random.default_rng(0).integers(0, 256, (150, 310, 3), np.uint8)
    assert Pipeline(segmenter, output_scale="input").step(image, 0).panoptic.shape == (150, 310)
    small = Pipeline(segmenter, output_scale="model").step(image, 0)
    # letterboxed at the input width 128: 150x310 * 128/310 = 61.9x128 -> 62x128
    assert segmenter.input_size == (64, 128)
    assert small.panoptic.shape == (62, 128)
    height, width = small.panoptic.shape
    for obj in small.objects:
        x0, y0, x1, y1 = obj.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_input_size_and_thresholds_of_the_config_reach_the_segmenter(checkpoint):
    strict = PostprocessConfig(class_threshold=0.9)
    segmenter = load_segmenter(PipelineConfig(model=str(checkpoint), input_height=96,
                                              input_width=160, postprocess=strict))
    assert segmenter.input_size == (96, 160) and segmenter.postprocess == strict
    image = np.zeros((60, 100, 3), np.uint8)
    small = Pipeline(segmenter, output_scale="model").step(image, 0)
    assert small.panoptic.shape == (96, 160)


@pytest.mark.parametrize("fields, message", [
    ({"input_height": 100, "input_width": 128}, "multiple of 32"),
    ({"input_height": 64}, "set both or neither"),
    ({"label_divisor": 1}, "label_divisor"),
])
def test_pipeline_config_rejects_inconsistent_values(fields, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig(**fields)


def test_a_missing_checkpoint_names_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt"):
        Pipeline.from_config(PipelineConfig(model=str(missing)))


def test_the_pipeline_part_of_a_node_parameters_file(tmp_path):
    from vps_ros.resources import config_path
    assert PipelineConfig.from_params_file(config_path("perception.yaml")) == PipelineConfig()
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    tracker:\n      tau: 7\n    cameras: [a, b]\n"
                    "perception_node:\n  ros__parameters:\n    tracker:\n      alpha: 0.25\n"
                    "    postprocess.class_threshold: 0.3\n"
                    "other_node:\n  ros__parameters:\n    label_divisor: 77\n")
    config = PipelineConfig.from_params_file(path)
    assert (config.tracker.tau, config.tracker.alpha) == (7, 0.25)
    assert config.postprocess.class_threshold == 0.3 and config.label_divisor == 1000
    path.write_text("/**:\n  ros__parameters:\n    tracker:\n      tau: -3\n")
    with pytest.raises(ConfigError, match=r"p.yaml: perception_node.tracker.tau: -3 is out of"):
        PipelineConfig.from_params_file(path)
