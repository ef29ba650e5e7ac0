"""Pretrained transformers panoptic models (Mask2Former, OneFormer) as segmenters: tiny
random models saved as a user's download and opened through the model registry."""
import json
import logging
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from testkit import hf_models
from testkit.replay_helpers import metrics, replay, small_model, synthetic_frames, write_bag
from testkit.scenes import CLASSES, ToyVideos
from vps_ros.errors import CheckpointError, ConfigError
from vps_ros.model import MaskSegmenter, PostprocessConfig
from vps_ros.model.registry import LoadOptions, model_classes, open_segmenter
from vps_ros.model.transformers_segmenter import Preprocessing
from vps_ros.pipeline import Pipeline, PipelineConfig, load_segmenter
from vps_ros.tracking import TrackerConfig
from vps_ros.types import ClassTable

LOOSE = PostprocessConfig(class_threshold=0.0, mask_threshold=0.5, overlap_threshold=0.0,
                          min_area_thing=0, min_area_stuff=0)
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {"mask2former": hf_models.save_mask2former(root / "m2f"),
            "oneformer": hf_models.save_oneformer(root / "oneformer")}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["mask2former", "oneformer"])
def test_a_saved_model_folder_segments_frames_of_any_size(models, kind):
    segmenter = open_segmenter(str(models[kind]), LoadOptions(postprocess=LOOSE))
    assert isinstance(segmenter, MaskSegmenter)
    assert segmenter.classes == CLASSES          # labels matched by name, any spelling
    assert segmenter.input_size == (64, 128)     # preprocessor_config.json's size
    images = [_image(64, 128), _image(90, 200, 1), _image(40, 60, 2)]
    results = segmenter.segment(images)
    assert [r.image_size for r in results] == [(64, 128), (90, 200), (40, 60)]
    assert all(r.num_segments > 0 for r in results)
    for seg in results:
        assert seg.segment_map.dtype == np.int32
        assert set(np.unique(seg.segment_map)) <= set(range(-1, seg.num_segments))
        assert seg.areas.tolist() == [int((seg.segment_map == i).sum())
                                      for i in range(seg.num_segments)]
        assert ((0 <= seg.class_ids) & (seg.class_ids < len(CLASSES))).all()
        assert seg.is_thing.tolist() == CLASSES.is_thing_lut[seg.class_ids].tolist()
        assert seg.embeddings.shape == (seg.num_segments, 32)   # the decoder's width
        np.testing.assert_allclose(np.linalg.norm(seg.embeddings, axis=1), 1.0, atol=1e-5)
    assert (segmenter.backend, segmenter.fallback) == ("torch", "")


def test_an_engine_backend_asked_for_a_transformers_model_is_reported_as_a_fallback(
        models, caplog):
    """The node's default backend is openvino; these networks have no exporter."""
    with caplog.at_level(logging.WARNING, logger="vps_ros"):
        segmenter = open_segmenter(str(models["mask2former"]), LoadOptions(backend="openvino"))
    assert segmenter.backend == "torch"
    assert segmenter.fallback == "openvino: transformers models run on torch"
    assert "backend openvino unavailable, running on torch" in caplog.text


def test_outputs_are_the_models_own_with_its_normalisation_and_labels_mapped(tmp_path):
    """The class logits are the network's for the image normalised as its preprocessor
    config says, reordered from the model's label order to the table's; the masks cover
    the image's part of the stride-32 padded input at stride 4."""
    from transformers import Mask2FormerForUniversalSegmentation
    shuffled = [hf_models.LABELS[k] for k in (9, 3, 0, 7, 1, 8, 2, 6, 4, 5)]
    folder = hf_models.save_mask2former(tmp_path / "m", labels=shuffled)
    segmenter = open_segmenter(str(folder), LoadOptions(input_size=(72, 100)))
    image = _image(72, 100, 4)
    out = segmenter.predict(image[None])

    net = Mask2FormerForUniversalSegmentation.from_pretrained(folder).eval()
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (hf_models.MEAN, hf_models.STD))
    pixels = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
    padded = torch.zeros(1, 3, 96, 128)
    padded[0, :, :72, :100] = pixels
    with torch.no_grad():
        ref = net(pixel_values=padded, output_hidden_states=True)
    # table class j is the model's label shuffled.index(name of j), case aside
    order = [[n.lower() for n in shuffled].index(c.name) for c in CLASSES] + [len(shuffled)]
    torch.testing.assert_close(out["class_logits"], ref.class_queries_logits[..., order],
                               atol=1e-4, rtol=1e-4)
    assert out["mask_logits"].shape[-2:] == (math.ceil(72 / 4), math.ceil(100 / 4))
    torch.testing.assert_close(out["mask_logits"], ref.masks_queries_logits[..., :18, :25],
                               atol=1e-4, rtol=1e-4)
    # the decoder's last output as its heads see it: through the decoder's LayerNorm
    weights = net.state_dict()
    norm = torch.nn.functional.layer_norm(
        ref.transformer_decoder_last_hidden_state, (32,),
        weights["model.transformer_module.decoder.layernorm.weight"],
        weights["model.transformer_module.decoder.layernorm.bias"])
    torch.testing.assert_close(out["embeddings"], norm, atol=1e-4, rtol=1e-4)


def test_the_tracker_keeps_ids_of_objects_that_stay_put(models):
    """A parked camera with sensor noise: thing segments that overlap one of the previous
    frame (mask IoU > 0.5, same class) are the same objects and keep their ids. The
    tracker runs the memory decoding alone (hila_mb, eq. 5: appearance x location, no
    mask-IoU stitching), so the ids are kept through the query embeddings."""
    segmenter = open_segmenter(str(models["mask2former"]), LoadOptions(postprocess=LOOSE))
    pipeline = Pipeline(segmenter, TrackerConfig(mode="hila_mb"))
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


def test_the_classes_option_picks_a_table_and_fits_every_label(models, tmp_path):
    names = [c.name for c in CLASSES]
    other = dict(CLASSES.to_dict(), name="reordered")
    other["classes"] = [dict(c, id=i) for i, c in enumerate(reversed(other["classes"]))]
    path = tmp_path / "reordered.yaml"
    path.write_text(json.dumps(other))
    table = model_classes(str(models["mask2former"]), LoadOptions(classes=str(path)))
    assert table.name == "reordered" and [c.name for c in table] == names[::-1]
    segmenter = open_segmenter(str(models["mask2former"]),
                               LoadOptions(postprocess=LOOSE, classes=str(path)))
    reference = open_segmenter(str(models["mask2former"]), LoadOptions(postprocess=LOOSE))
    image = _image(64, 128, 7)
    got, want = segmenter.segment([image])[0], reference.segment([image])[0]
    assert [table[c].name for c in got.class_ids] == [CLASSES[c].name for c in want.class_ids]
    with pytest.raises(ConfigError, match=r"do not fit class table 'cityscapes-vps' "
                                          r"\(labels pedestrian, cyclist are not classes"):
        open_segmenter(str(models["mask2former"]), LoadOptions(classes="cityscapes_vps"))


def test_a_cityscapes_model_gets_the_cityscapes_table(tmp_path):
    labels = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic_light",
              "Traffic Sign", "vegetation", "terrain", "sky", "person", "rider", "car",
              "truck", "bus", "train", "motorcycle", "bicycle"]
    folder = hf_models.save_mask2former(tmp_path / "cs", labels=labels, num_queries=4)
    assert model_classes(str(folder)) == ClassTable.builtin("cityscapes_vps")
    assert model_classes(str(folder), LoadOptions(classes="kitti_step")).name == "kitti-step"


def test_a_hub_id_resolves_through_the_cache_offline(models, tmp_path, monkeypatch):
    from huggingface_hub import constants
    repo = tmp_path / "models--acme--tiny-m2f"
    shutil.copytree(models["mask2former"], repo / "snapshots" / HUB_COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HUB_COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    segmenter = load_segmenter(PipelineConfig(model="hf:acme/tiny-m2f", input_height=32,
                                              input_width=64))
    assert segmenter.input_size == (32, 64) and segmenter.classes == CLASSES
    with pytest.raises(ConfigError, match=r"'hf:acme/tiny-m2f@v2': not in the Hugging Face "
                                          r"cache and HF_HUB_OFFLINE=1 is set; fetch it once.*"
                                          r"hf download acme/tiny-m2f --revision v2"):
        load_segmenter(PipelineConfig(model="hf:acme/tiny-m2f@v2"))


def _broken(models, tmp_path, change):
    folder = tmp_path / "model"
    shutil.copytree(models["mask2former"], folder)
    change(folder)
    return folder


def _set_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("change, error, message", [
    (lambda f: (f / "config.json").unlink(), ConfigError,
     r"has no config.json, so it is not a transformers model folder"),
    (lambda f: _set_config(f, model_type="segformer",
                           architectures=["SegformerForSemanticSegmentation"]), ConfigError,
     r"a segformer model \(SegformerForSemanticSegmentation\); vps_ros runs panoptic "
     r"mask2former, oneformer, eomt, eomt_dinov3 and videomt models"),
    (lambda f: _set_config(f, id2label={str(i): f"thing{i}" for i in range(10)}), ConfigError,
     r"its 10 labels \(thing0, thing1, .*\) match no class table in config/ "
     r"\(cityscapes-vps, coco-panoptic, kitti-step, synthetic, vipseg\).*classes parameter \(--classes\)"),
    (lambda f: (f / "model.safetensors").write_bytes(
        (f / "model.safetensors").read_bytes()[:5000]), CheckpointError,
     r"its weights cannot be loaded \(\w+"),
    (lambda f: (f / "model.safetensors").rename(f / "pytorch_model.bin"), CheckpointError,
     r"holds only pickled weights \(pytorch_model.bin\), which can run code when loaded; "
     r"vps_ros reads safetensors only"),
    (lambda f: (f / "model.safetensors").unlink(), CheckpointError,
     r"has no safetensors weights \(model.safetensors; .*never loads pickled weights"),
    (lambda f: (f / "preprocessor_config.json").write_text("{size"), ConfigError,
     r"preprocessor_config.json is not readable JSON"),
])
def test_a_bad_model_folder_gets_one_error_naming_the_model(models, tmp_path, change, error,
                                                            message):
    folder = _broken(models, tmp_path, change)
    with pytest.raises(error, match=rf"model '{folder}'.*{message}"):
        open_segmenter(str(folder))


def test_oneformer_without_its_tokenizer_says_why_it_cannot_run(tmp_path):
    folder = hf_models.save_oneformer(tmp_path / "oneformer", tokenizer=False)
    with pytest.raises(ConfigError, match=r"OneFormer is told its task by text .* needs the "
                                          r"tokenizer that comes with the model"):
        open_segmenter(str(folder))


def test_vps_ros_replay_writes_a_full_report_with_a_transformers_model(models, tmp_path,
                                                                        capsys):
    _, frames = synthetic_frames()
    bag = write_bag(tmp_path / "drive", frames)
    _, params = small_model(tmp_path)
    out = tmp_path / "report"
    assert replay(bag, out, models["mask2former"], params) == 0
    document = metrics(out)
    assert document["frames"] == document["annotated_frames"] == len(frames)
    assert document["partial"] is False and document["model"] == str(models["mask2former"])
    assert {"VPQ", "STQ", "AQ", "SQ", "per_class"} <= set(document)
    assert document["classes"] == "synthetic"
    for name in ["report.md", "overlay.mp4", *document["pictures"]]:
        assert (out / name).is_file(), name
    capsys.readouterr()

    broken = _broken(models, tmp_path, lambda f: (f / "config.json").unlink())
    for model, extra, message in [
            (broken, [], "has no config.json"),
            (models["mask2former"], ["--model-classes", "kitti_step"],
             "do not fit class table 'kitti-step'")]:
        assert replay(bag, tmp_path / "bad", model, params, *extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err


@pytest.mark.parametrize("config, size, mean", [
    ({"size": {"shortest_edge": 100, "longest_edge": 1333}}, (128, 224), [0.485, 0.456, 0.406]),
    ({"size": {"shortest_edge": 512, "longest_edge": 800}, "image_mean": [0.1, 0.2, 0.3]},
     (512, 800), [0.1, 0.2, 0.3]),
    ({"size": {"height": 250, "width": 500}, "do_normalize": False}, (256, 512), [0, 0, 0]),
    (None, (512, 1024), [0.485, 0.456, 0.406]),
])
def test_the_preprocessor_config_gives_the_default_input_size_and_normalisation(
        tmp_path, config, size, mean):
    if config is not None:
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    preprocessing = Preprocessing.of_folder(tmp_path, "model 'x'")
    assert preprocessing.input_size == size
    assert preprocessing.mean == pytest.approx(mean) and preprocessing.rescale == 1 / 255


def test_transformers_is_imported_only_when_such_a_model_is_opened():
    code = ("import sys, vps_ros.pipeline, vps_ros.model.transformers_segmenter\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('transformers', 'huggingface_hub')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_oneformer_outputs_are_the_models_own_for_the_panoptic_task(models):
    """OneFormer's logits against its own forward pass, the task text tokenised as
    transformers' OneFormerProcessor does ("the task is panoptic"): a wrong task
    ("semantic") changes them."""
    from types import SimpleNamespace
    from transformers import AutoTokenizer, OneFormerForUniversalSegmentation
    from transformers.models.oneformer.processing_oneformer import OneFormerProcessor
    folder = models["oneformer"]
    segmenter = open_segmenter(str(folder), LoadOptions(input_size=(72, 100)))
    image = _image(72, 100, 5)
    out = segmenter.predict(image[None])

    net = OneFormerForUniversalSegmentation.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    task = OneFormerProcessor._preprocess_text(SimpleNamespace(tokenizer=tokenizer),
                                               ["the task is panoptic"],
                                               max_length=net.config.task_seq_len)
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (hf_models.MEAN, hf_models.STD))
    padded = torch.zeros(1, 3, 96, 128)
    padded[0, :, :72, :100] = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
    with torch.no_grad():
        ref = net(pixel_values=padded, task_inputs=task)
    order = [[n.lower() for n in hf_models.LABELS].index(c.name) for c in CLASSES] + [
        len(hf_models.LABELS)]
    torch.testing.assert_close(out["class_logits"], ref.class_queries_logits[..., order],
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["mask_logits"], ref.masks_queries_logits[..., :18, :25],
                               atol=1e-4, rtol=1e-4)
