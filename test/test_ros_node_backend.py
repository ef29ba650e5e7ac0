"""perception_node with ``backend: openvino`` over real DDS, in separate processes: the
node finds its checkpoint's export in the cache (written here beforehand: exporting
takes long enough on a loaded machine for the driver to give up waiting), runs it on
OpenVINO, says so in /diagnostics, and publishes what the torch pipeline computes
in-process for the same frames."""
import pytest

from testkit.pipeline_helpers import LOOSE, synthetic_frames, write_small_checkpoint
from test_ros_node_dds import NODE_PARAMS, assert_same_frame, run
from vps_ros.pipeline import Pipeline, PipelineConfig, load_segmenter

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def test_the_node_runs_its_checkpoint_on_openvino(tmp_path, ros_env, export_cache):
    checkpoint = write_small_checkpoint(tmp_path / "small.pt")
    frames = synthetic_frames(4)
    assert load_segmenter(PipelineConfig(model=str(checkpoint), backend="openvino",
                                         threads=1)).backend == "openvino"
    steps = [{"op": "wait_matched"}]
    steps += [{"op": "frame", "image": i} for i in range(len(frames))]
    steps += [{"op": "diagnostics", "status": "model", "at_least": {"model calls": 4}}]
    results, panoptic, log = run(tmp_path, ros_env,
                                 {"model": str(checkpoint), **NODE_PARAMS,
                                  "backend": "openvino", "input_qos": "reliable"},
                                 {"steps": steps}, frames)
    model = results[-1]
    assert model["ok"], log
    assert model["values"]["backend"] == "openvino"
    assert model["values"]["backend fallbacks"] == "0"
    assert "(openvino)" in log and "exporting" not in log

    reference = Pipeline.from_config(PipelineConfig(model=str(checkpoint), postprocess=LOOSE,
                                                    threads=1, backend="torch"))
    things = 0
    for i, result in enumerate(results[1:-1]):
        out = result["cameras"]["camera"]
        expected = reference.step(frames[i].image, result["stamp_ns"])
        assert_same_frame(out, panoptic[f"camera_{i + 1}"], expected)
        things += sum(o["is_thing"] for o in out["objects"])
    assert things > 0
