"""perception_node over real DDS with a transformers Mask2Former (a tiny random one,
saved as a user's download): a bad model folder fails configure with its reason and
the node stays up; the good one publishes panoptic and objects as the Pipeline computes
them in-process."""
import pytest

from testkit import hf_models
from testkit.pipeline_helpers import LOOSE, synthetic_frames
from test_ros_node_dds import NODE_PARAMS, assert_same_frame, run
from vps_ros.pipeline import Pipeline, PipelineConfig

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_the_node_runs_a_transformers_model_after_refusing_a_bad_one(tmp_path, ros_env):
    model = hf_models.save_mask2former(tmp_path / "m2f")
    broken = tmp_path / "not_a_model"
    broken.mkdir()
    frames = synthetic_frames(4)
    named = [("unconfigured", {"op": "state"}),
             ("set_model", {"op": "set_param", "name": "model", "value": str(model)}),
             ("configure", {"op": "transition", "name": "configure"}),
             ("activate", {"op": "transition", "name": "activate"}),
             ("matched", {"op": "wait_matched"})]
    named += [(f"f{i}", {"op": "frame", "image": i}) for i in range(len(frames))]
    results, panoptic, log = run(tmp_path, ros_env, {"model": str(broken), **NODE_PARAMS,
                                                     "input_qos": "reliable"},
                                 {"steps": [step for _, step in named]}, frames)
    got = {name: results[i] for i, (name, _) in enumerate(named)}
    assert got["unconfigured"]["label"] == "unconfigured"
    assert f"configure failed: model '{broken}': {broken} has no config.json" in log
    assert got["set_model"]["successful"] and got["configure"]["success"]
    assert got["activate"]["success"]

    reference = Pipeline.from_config(PipelineConfig(model=str(model), postprocess=LOOSE,
                                                    threads=1))
    segments = 0
    for i, frame in enumerate(frames):
        result = got[f"f{i}"]
        assert result["received"]
        expected = reference.step(frame.image, result["stamp_ns"])
        out = result["cameras"]["camera"]
        assert_same_frame(out, panoptic[f"camera_{len(named) - len(frames) + i}"], expected)
        segments += len(out["objects"])
    assert segments > 0


def test_the_node_runs_an_eomt_after_refusing_a_dinov3_without_its_encoder(tmp_path, ros_env):
    """The same over DDS with EoMT: configure fails naming the model and what it lacks,
    the node stays up, and the EoMT set next publishes what the Pipeline computes."""
    model = hf_models.save_eomt(tmp_path / "eomt")
    broken = hf_models.save_eomt(tmp_path / "dinov3", kind="eomt_dinov3")
    hf_models.drop_encoder(broken)
    frames = synthetic_frames(3)
    named = [("unconfigured", {"op": "state"}),
             ("set_model", {"op": "set_param", "name": "model", "value": str(model)}),
             ("configure", {"op": "transition", "name": "configure"}),
             ("activate", {"op": "transition", "name": "activate"}),
             ("matched", {"op": "wait_matched"})]
    named += [(f"f{i}", {"op": "frame", "image": i}) for i in range(len(frames))]
    results, panoptic, log = run(tmp_path, ros_env, {"model": str(broken), **NODE_PARAMS,
                                                     "input_qos": "reliable"},
                                 {"steps": [step for _, step in named]}, frames)
    got = {name: results[i] for i, (name, _) in enumerate(named)}
    assert got["unconfigured"]["label"] == "unconfigured"
    assert f"configure failed: model '{broken}': its weights lack" in log
    assert got["set_model"]["successful"] and got["configure"]["success"]
    assert got["activate"]["success"]
    reference = Pipeline.from_config(PipelineConfig(model=str(model), postprocess=LOOSE,
                                                    threads=1))
    for i, frame in enumerate(frames):
        result = got[f"f{i}"]
        assert result["received"]
        expected = reference.step(frame.image, result["stamp_ns"])
        assert_same_frame(result["cameras"]["camera"],
                          panoptic[f"camera_{len(named) - len(frames) + i}"], expected)
