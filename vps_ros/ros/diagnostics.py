"""The node's /diagnostics entries: one for the model, one per camera stream."""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


def model_status(name: str, model: str, device: str, input_size: tuple[int, int],
                 calls: int, frames: int, model_ms: list[float], backend: str = "torch",
                 fallback: str = "") -> DiagnosticStatus:
    """What the model runs on and how it is used: calls, frames per (batched) call.
    ``fallback`` is why the backend asked for is not ``backend`` (counted, and said in
    the message)."""
    height, width = input_size
    values = {
        "model": model,
        "device": device,
        "backend": backend,
        "backend fallbacks": "1" if fallback else "0",
        "backend fallback reason": fallback,
        "input size": f"{width}x{height}",
        "model calls": str(calls),
        "frames per call": f"{frames / calls:.2f}" if calls else "nan",
        "model time p50 (ms)": f"{np.percentile(model_ms, 50):.1f}" if model_ms else "nan",
    }
    message = f"running on {device} ({backend})"
    if fallback:
        message += f"; fell back to {backend}: {fallback}"
    return _status(DiagnosticStatus.OK, name, message, device, values)


def stream_status(name: str, snapshot: dict, new_bad: int, enabled: bool, topic: str,
                  objects_in_memory: int, device: str) -> DiagnosticStatus:
    """A camera stream: rates, latency (receipt to publish), counters. WARN when bad
    frames came in since the last report or nothing arrives at all."""
    level, message = DiagnosticStatus.OK, "running"
    if not enabled:
        message = "disabled"
    elif new_bad:
        level, message = DiagnosticStatus.WARN, f"{new_bad} bad frame(s) since the last report"
    elif snapshot["input_hz"] == 0.0:
        level, message = DiagnosticStatus.WARN, f"no input on {topic}"
    values = {
        "input rate (Hz)": f"{snapshot['input_hz']:.2f}",
        "output rate (Hz)": f"{snapshot['output_hz']:.2f}",
        "latency p50 (ms)": f"{snapshot['latency_p50_ms']:.1f}",
        "latency p95 (ms)": f"{snapshot['latency_p95_ms']:.1f}",
        "frames received": str(snapshot["received"]),
        "frames processed": str(snapshot["processed"]),
        "frames dropped": str(snapshot["dropped"]),
        "bad frames": str(snapshot["bad"]),
        "frames refused (too large)": str(snapshot["refused"]),
        "memory resets": str(snapshot["resets"]),
        "objects in memory": str(objects_in_memory),
        "device": device,
        "input topic": topic,
    }
    return _status(level, name, message, device, values)


def _status(level: bytes, name: str, message: str, hardware_id: str,
            values: dict[str, str]) -> DiagnosticStatus:
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
