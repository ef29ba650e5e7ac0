"""EoMT, EoMT-DINOv3 and VidEoMT of transformers as segmenters: tiny random models saved
as a user's download and opened through the model registry; outputs checked against
the library's own forward passes."""
import json

import numpy as np
import pytest
import torch

from testkit import hf_models
from testkit.replay_helpers import metrics, replay, small_model, synthetic_frames, write_bag
from testkit.scenes import CLASSES
from vps_ros.errors import CheckpointError, ConfigError
from vps_ros.model import PostprocessConfig
from vps_ros.model.registry import LoadOptions, open_segmenter

LOOSE = PostprocessConfig(class_threshold=0.0, mask_threshold=0.5, overlap_threshold=0.0,
                          min_area_thing=0, min_area_stuff=0)
NET_CLASSES = {"eomt": "EomtForUniversalSegmentation",
               "eomt_dinov3": "EomtDinov3ForUniversalSegmentation",
               "videomt": "VideomtForUniversalSegmentation"}
SHUFFLE = (9, 3, 0, 7, 1, 8, 2, 6, 4, 5)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("eomt")
    shuffled = [hf_models.LABELS[k] for k in SHUFFLE]
    return {kind: hf_models.save_eomt(root / kind, labels=shuffled, kind=kind)
            for kind in NET_CLASSES}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _network(folder, kind):
    import transformers
    return getattr(transformers, NET_CLASSES[kind]).from_pretrained(folder).eval()


def _pixels(image, side=64):
    """The network input by hand: scaled and normalised as preprocessor_config.json
    says, black padding at the bottom/right before normalising (EoMT's processor)."""
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[:image.shape[0], :image.shape[1]] = image
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (hf_models.MEAN, hf_models.STD))
    return ((torch.from_numpy(canvas).permute(2, 0, 1).float() / 255 - mean) / std)[None]


#: table class j is the model's label SHUFFLE-ordered index of its name; then no-object
ORDER = [[hf_models.LABELS[k].lower() for k in SHUFFLE].index(c.name) for c in CLASSES] + [10]


@pytest.mark.parametrize("kind", ["eomt", "eomt_dinov3"])
def test_outputs_are_the_networks_own_for_the_letterboxed_normalised_image(models, kind):
    segmenter = open_segmenter(str(models[kind]))
    assert segmenter.input_size == (64, 64)       # config.json image_size
    image = _image(32, 64, 3)                     # width fits: padded below, not resized
    out = segmenter.predict(np.stack([_pixels_uint8(image)]))
    with torch.no_grad():
        ref = _network(models[kind], kind)(pixel_values=_pixels(image))
    torch.testing.assert_close(out["class_logits"], ref.class_queries_logits[..., ORDER],
                               atol=1e-4, rtol=1e-4)
    assert out["mask_logits"].shape[-2:] == (16, 16)     # stride 4
    torch.testing.assert_close(out["mask_logits"], ref.masks_queries_logits,
                               atol=1e-4, rtol=1e-4)
    # the query tokens after the final LayerNorm, as the heads read them
    torch.testing.assert_close(out["embeddings"], ref.last_hidden_state[:, :8],
                               atol=1e-4, rtol=1e-4)


def _pixels_uint8(image, side=64):
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[:image.shape[0], :image.shape[1]] = image
    return canvas


@pytest.mark.parametrize("kind", list(NET_CLASSES))
def test_a_saved_eomt_folder_segments_frames_of_any_size(models, kind):
    segmenter = open_segmenter(str(models[kind]), LoadOptions(postprocess=LOOSE))
    assert segmenter.classes == CLASSES
    results = segmenter.segment([_image(64, 64), _image(90, 200, 1), _image(40, 30, 2)])
    assert [r.image_size for r in results] == [(64, 64), (90, 200), (40, 30)]
    assert sum(r.num_segments for r in results) > 0
    for seg in results:
        assert set(np.unique(seg.segment_map)) <= set(range(-1, seg.num_segments))
        assert seg.is_thing.tolist() == CLASSES.is_thing_lut[seg.class_ids].tolist()
        assert seg.embeddings.shape == (seg.num_segments, 32)
        np.testing.assert_allclose(np.linalg.norm(seg.embeddings, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("streams", [1, 2])
def test_videomt_frame_by_frame_equals_the_librarys_clip_forward(models, streams):
    """The online run (one frame per call, propagated queries carried between calls)
    gives what the library's whole-clip forward gives on the same frames."""
    segmenter = open_segmenter(str(models["videomt"]))
    frames = [[_image(64, 64, 10 * s + t) for s in range(streams)] for t in range(4)]
    online = [segmenter.predict(np.stack(batch)) for batch in frames]
    video = torch.stack([torch.cat([_pixels(img) for img in batch]) for batch in frames], 1)
    with torch.no_grad():
        ref = _network(models["videomt"], "videomt")(pixel_values_videos=video)
    for t, out in enumerate(online):     # the library's outputs are frame-major
        rows = slice(t * streams, (t + 1) * streams)
        torch.testing.assert_close(out["class_logits"],
                                   ref.class_queries_logits[rows][..., ORDER],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out["mask_logits"], ref.masks_queries_logits[rows],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out["embeddings"], ref.last_hidden_state[rows][:, :8],
                                   atol=1e-5, rtol=1e-5)
    # the carried queries matter: frame 3 alone (a video's first frame) differs
    segmenter.reset()
    alone = segmenter.predict(np.stack(frames[3]))
    assert (alone["mask_logits"] - online[3]["mask_logits"]).abs().max() > 1e-3


def test_a_pipeline_reset_starts_videomt_on_a_new_video(models):
    """The reset service / a time jump: the next frame is a video's first again."""
    from vps_ros.pipeline import Pipeline
    segmenter = open_segmenter(str(models["videomt"]))
    first = _pixels_uint8(_image(64, 64, 1))[None]
    fresh = segmenter.predict(first)["mask_logits"]
    segmenter.predict(_pixels_uint8(_image(64, 64, 2))[None])
    Pipeline(segmenter).reset()
    torch.testing.assert_close(segmenter.predict(first)["mask_logits"], fresh)


def test_bf16_precision_runs_the_network_in_bfloat16(models):
    image = _pixels_uint8(_image(64, 64, 5))[None]
    fp32 = open_segmenter(str(models["eomt"])).predict(image)
    bf16 = open_segmenter(str(models["eomt"]), LoadOptions(precision="bf16")).predict(image)
    difference = (bf16["mask_logits"] - fp32["mask_logits"]).abs().max()
    assert 0 < difference < 0.1 * fp32["mask_logits"].abs().max()


def _set_labels(folder, labels):
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = dict(enumerate(labels))
    config["label2id"] = {n: i for i, n in enumerate(labels)}
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("kind, change, options, error, message", [
    ("eomt_dinov3", hf_models.drop_encoder, {}, CheckpointError,
     r"its weights lack \d+ tensors of the eomt_dinov3 network \(embeddings\..*\); a "
     r"checkpoint without its base \(encoder\) weights cannot run"),
    ("eomt", lambda f: _set_labels(f, [f"widget{i}" for i in range(10)]), {}, ConfigError,
     r"its 10 labels \(widget0, .*\) match no class table in config/"),
    ("eomt", lambda f: None, {"input_size": (64, 128)}, ConfigError,
     r"a eomt model takes 64x64 input only \(its position embeddings are fixed\), not "
     r"128x64"),
    ("videomt", lambda f: None, {"precision": "int4"}, ConfigError,
     r"precision 'int4' is not one of auto, fp32, fp16, bf16"),
])
def test_a_bad_eomt_model_gets_one_error_naming_it(tmp_path, kind, change, options, error,
                                                   message):
    folder = hf_models.save_eomt(tmp_path / "model", kind=kind)
    change(folder)
    with pytest.raises(error, match=rf"^model '{folder}': {message}"):
        open_segmenter(str(folder), LoadOptions(**options))


def test_vps_ros_exits_2_with_one_line_for_a_dinov3_model_without_its_encoder(tmp_path,
                                                                              capsys):
    _, frames = synthetic_frames(2)
    bag = write_bag(tmp_path / "drive", frames)
    _, params = small_model(tmp_path)
    folder = hf_models.save_eomt(tmp_path / "dinov3", kind="eomt_dinov3")
    hf_models.drop_encoder(folder)
    capsys.readouterr()
    assert replay(bag, tmp_path / "out", folder, params) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"model '{folder}': its weights lack" in err


def test_videomt_tracks_keep_their_ids_through_the_propagated_queries(models):
    """A parked camera with sensor noise, tracked by the memory buffer alone (hila_mb,
    query indices ignored; following them: test/test_tracking_queries.py):
    the propagated queries' embeddings keep each thing segment that overlaps one of the
    previous frame (mask IoU > 0.5, same class) on its track."""
    from testkit.scenes import ToyVideos
    from vps_ros.pipeline import Pipeline
    from vps_ros.tracking import TrackerConfig
    segmenter = open_segmenter(str(models["videomt"]), LoadOptions(postprocess=LOOSE))
    pipeline = Pipeline(segmenter, TrackerConfig(mode="hila_mb", queries="ignore"))
    scene = next(iter(ToyVideos(1, 1))).image.astype(np.int16)
    rng = np.random.default_rng(1)
    previous, kept = None, 0
    for t in range(5):
        frame = np.clip(scene + rng.integers(-2, 3, scene.shape), 0, 255).astype(np.uint8)
        tracked = pipeline.step(frame, t * 100_000_000)
        seg = tracked.segments
        things = [(seg.segment_map == k, int(seg.class_ids[k]), int(tracked.track_ids[k]))
                  for k in np.flatnonzero(seg.is_thing)]
        for mask, class_id, track_id in things:
            for old_mask, old_class, old_id in previous or []:
                iou = (mask & old_mask).sum() / (mask | old_mask).sum()
                if iou > 0.5 and class_id == old_class:
                    assert track_id == old_id
                    kept += 1
        previous = things
    assert kept >= 4


@pytest.mark.parametrize("kind", ["eomt", "videomt"])
def test_vps_ros_replay_writes_a_report_with_an_eomt(models, tmp_path, kind):
    _, frames = synthetic_frames(3)
    bag = write_bag(tmp_path / "drive", frames)
    _, params = small_model(tmp_path)
    out = tmp_path / "report"
    assert replay(bag, out, models[kind], params) == 0
    document = metrics(out)
    assert document["frames"] == document["annotated_frames"] == len(frames)
    assert document["model"] == str(models[kind]) and document["classes"] == "synthetic"
    assert {"VPQ", "STQ"} <= set(document) and (out / "report.md").is_file()
