"""benchmarks/gpu_check.py: its CPU dry run goes through every step (the same code the
GPU run takes, small sizes) so the script cannot rot between GPU lendings; a failed step
is reported by name with exit 1; bad input exits 2 with one line.

Expectations are set by hand: the dry run's GPU-only parts are the fp16 network and
ONNX Runtime's GPU providers; its training config asks for 4 steps on two gloo ranks;
its node gets 45 frames at 30 Hz; engines on the CPU in fp32 agree with torch fp32.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
STEPS = ["environment", "gpu_tests", "shipped_model", "architectures", "pipeline", "torchrun",
         "node_dds"]


def gpu_check():
    """The script as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600, **kwargs)


@pytest.mark.slow
@pytest.mark.ros
def test_cpu_dry_run_passes_every_step_and_skips_only_the_gpu_parts(tmp_path, ros_env):
    done = run(["--cpu-dry-run", "--out", str(tmp_path)], env=ros_env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {r["step"]: r for r in report["steps"]}
    assert list(steps) == STEPS
    assert {name: r["status"] for name, r in steps.items()} == dict.fromkeys(STEPS, "passed")
    assert report["failed"] == [] and report["dry_run"] is True
    assert sorted(report["skipped"]) == [
        "shipped_model / network fp16 autocast: needs a GPU",
        "shipped_model / onnxruntime TensorRT/CUDA providers: need a GPU"]

    shipped = steps["shipped_model"]["result"]
    assert set(shipped["network"]) == {"fp32", "bf16 autocast"}
    assert set(shipped["engines"]) == {"torch", "torch.compile", "onnxruntime"}
    assert shipped["engines"]["onnxruntime"]["backend"] == "onnxruntime"
    for name, engine in shipped["engines"].items():
        assert engine["PQ_vs_torch_fp32_cpu"] >= 99.5, name
        assert engine["network"]["n"] == 3 and engine["network"]["median_ms"] > 0
    assert set(steps["architectures"]["result"]) == {"Mask2Former Swin-T", "EoMT-S"}
    assert steps["gpu_tests"]["result"]["collected_only"] is True
    assert steps["torchrun"]["result"] == {**steps["torchrun"]["result"], "processes": 2,
                                            "backend": "gloo", "steps": 4}
    node = steps["node_dds"]["result"]
    assert node["sent_per_camera"] == 45 and node["received"] > 0
    assert node["gpu_memory_used_max_mib"] is None

    table = (tmp_path / "gpu_check.md").read_text()
    assert "CPU dry run: no measurement" in table
    for name in STEPS:
        assert f"| {name} | passed |" in table


def test_a_failed_step_is_named_and_the_others_still_run(tmp_path, capsys):
    check = gpu_check()

    def broken(ctx):
        raise ValueError("planted")

    def cannot(ctx):
        raise check.Skip("cannot run here: planted reason")
    steps = [check.Step("broken", 1, broken), check.Step("cannot", 1, cannot),
             check.Step("environment", 5, check.environment)]
    assert check.check(True, tmp_path, steps) == 1
    assert "failed steps: broken" in capsys.readouterr().err
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [r["status"] for r in report["steps"]] == ["failed", "skipped", "passed"]
    assert report["steps"][0]["error"] == "ValueError: planted"
    assert report["failed"] == ["broken"]
    assert report["skipped"] == ["cannot: cannot run here: planted reason"]
    assert report["steps"][2]["result"]["gpu"] == "none (CPU dry run)"
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| broken | failed |" in table and "Failed: broken" in table


def test_a_step_over_its_budget_on_a_gpu_fails(tmp_path):
    check = gpu_check()
    ctx = check.Context(False, "cpu", tmp_path)

    def slow(ctx):
        import time
        time.sleep(0.3)
        return {}
    records = check.run_steps([check.Step("slow", 0.1, slow)], ctx)
    assert records[0]["status"] == "failed"
    assert records[0]["error"].startswith("took 0.")
    assert records[0]["error"].endswith("over its budget of 0.1 s")


def test_out_that_is_a_file_and_no_gpu_exit_2_with_one_line(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    done = run(["--cpu-dry-run", "--out", str(afile), "--steps", "environment"])
    assert done.returncode == 2
    assert done.stderr == f"gpu_check: error: --out {afile}: not a folder\n"
    done = run(["--out", str(tmp_path / "o"), "--steps", "environment"])
    assert done.returncode == 2
    assert done.stderr == ("gpu_check: error: no CUDA device here: run on a GPU machine, "
                           "or pass --cpu-dry-run\n")
