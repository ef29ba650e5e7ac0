"""/diagnostics entries: levels, messages and the values operators read."""
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from vps_ros.ros.diagnostics import model_status, stream_status

pytestmark = pytest.mark.ros

SNAPSHOT = {"input_hz": 10.0, "output_hz": 9.5, "latency_p50_ms": 41.25,
            "latency_p95_ms": 80.0, "received": 100, "processed": 95, "dropped": 4,
            "bad": 1, "refused": 1, "resets": 0}


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


@pytest.mark.parametrize("snapshot, new_bad, enabled, level, message", [
    (SNAPSHOT, 0, True, DiagnosticStatus.OK, "running"),
    (SNAPSHOT, 1, True, DiagnosticStatus.WARN, "1 bad frame(s) since the last report"),
    ({**SNAPSHOT, "input_hz": 0.0}, 0, True, DiagnosticStatus.WARN, "no input on front/image"),
    ({**SNAPSHOT, "input_hz": 0.0}, 0, False, DiagnosticStatus.OK, "disabled"),
])
def test_stream_status_level_and_message(snapshot, new_bad, enabled, level, message):
    status = stream_status("/perception_node: front", snapshot, new_bad, enabled,
                           "front/image", 3, "cpu")
    assert (status.level, status.message) == (level, message)
    assert status.name == "/perception_node: front" and status.hardware_id == "cpu"


def test_stream_status_values():
    values = _values(stream_status("n: camera", SNAPSHOT, 0, True, "image", 3, "cuda:0"))
    assert values == {
        "input rate (Hz)": "10.00", "output rate (Hz)": "9.50", "latency p50 (ms)": "41.2",
        "latency p95 (ms)": "80.0", "frames received": "100", "frames processed": "95",
        "frames dropped": "4", "bad frames": "1", "frames refused (too large)": "1",
        "memory resets": "0",
        "objects in memory": "3", "device": "cuda:0", "input topic": "image"}


def test_model_status_reports_batching():
    values = _values(model_status("n: model", "default", "cpu", (256, 512), 4, 7,
                                  [30.0, 50.0, 40.0]))
    assert values["input size"] == "512x256" and values["frames per call"] == "1.75"
    assert values["model time p50 (ms)"] == "40.0" and values["model calls"] == "4"
    idle = _values(model_status("n: model", "default", "cpu", (256, 512), 0, 0, []))
    assert idle["frames per call"] == "nan" and idle["model time p50 (ms)"] == "nan"


def test_model_status_counts_a_backend_fallback():
    running = model_status("n: model", "default", "cpu", (256, 512), 1, 1, [30.0], "openvino")
    values = _values(running)
    assert values["backend"] == "openvino" and values["backend fallbacks"] == "0"
    assert running.message == "running on cpu (openvino)"
    fell = model_status("n: model", "default", "cpu", (256, 512), 1, 1, [30.0], "torch",
                        "openvino: OpenVINO is not installed")
    values = _values(fell)
    assert values["backend"] == "torch" and values["backend fallbacks"] == "1"
    assert values["backend fallback reason"] == "openvino: OpenVINO is not installed"
    assert fell.message == ("running on cpu (torch); fell back to torch: openvino: OpenVINO "
                            "is not installed")
