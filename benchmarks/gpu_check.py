"""The GPU path in one go: the GPU-branch tests, speed of every engine, PQ agreement,
torchrun/NCCL training and the node over DDS, written to one JSON file and one table.

    python benchmarks/gpu_check.py --out DIR            # on a GPU machine, <= 8 minutes
    python benchmarks/gpu_check.py --cpu-dry-run --out DIR

Steps, each with a time budget (seconds, on one GPU; the sum is 470 of the 480 allowed):

- ``environment`` (5): machine, driver, CUDA, GPU model, library versions.
- ``gpu_tests`` (110): the suite's tests with a GPU branch (:data:`GPU_TESTS`), by pytest.
- ``shipped_model`` (130, most of it torch.compile's compilation): the shipped
  checkpoint's network alone in fp32, fp16 and bf16 autocast; then each engine through
  the model registry (torch, torch.compile, ONNX Runtime, which takes TensorRT then CUDA
  on a GPU), network and ``segment()`` per frame, and its PQ against torch fp32 on the
  CPU over the same synthetic frames (engines agree within :data:`PQ_AGREEMENT` points).
- ``architectures`` (70): Mask2Former Swin-T (1024x2048) and EoMT-S (640x640) built from
  ``transformers`` configs with random weights (the trained models' arithmetic), fp16.
- ``pipeline`` (30): ``Pipeline.step`` end to end against the network alone.
- ``torchrun`` (60): a short training run under torchrun (NCCL where two GPUs are lent).
- ``node_dds`` (65): the perception node with ``device: cuda`` at 30 Hz over DDS
  (``benchmarks/bench_node.py``): latency p50/p95, dropped, GPU memory.

A step that fails does not stop the others; the script exits 1 naming every failed
step. A step or variant that cannot run (no GPU in the dry run, a library missing on
the machine) is reported as skipped, with the reason, by name.

``--cpu-dry-run`` runs every step on the CPU with the tests' small network, tiny
transformers configs and few frames: the same code, so the suite (test/test_gpu_check.py)
keeps it from rotting between GPU lendings. Its figures are no measurement.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
#: The tests that take another branch on a GPU (engine selection, device resolution,
#: training steps, the node configured with ``device: cuda``); OpenVINO's are left out
#: (OpenVINO stays on the CPU, and its 56 MiB wheel does not travel to the GPU machine).
GPU_TESTS = ["test/test_model_engines.py", "test/test_model_checkpoint.py",
             "test/test_train_distributed.py", "test/test_train_steps.py",
             "test/test_ros_node_dds.py::test_bad_input_costs_only_that_frame"]
PQ_AGREEMENT = 0.5      # PQ points (of 100) an engine may differ from torch fp32
TOTAL_BUDGET_S = 480


@dataclasses.dataclass
class Context:
    dry: bool
    device: str
    work: Path

    def budget(self, gpu_s: float) -> float:
        """A step's budget: ``gpu_s`` on a GPU; in the dry run the CPU is slow and shared,
        so the dry run reports time but never fails on it."""
        return gpu_s if not self.dry else float("inf")


class Skip(Exception):
    """The step cannot run here; the message says why."""


@dataclasses.dataclass
class Step:
    name: str
    budget_s: float
    run: Callable[[Context], dict]


def sync(ctx: Context) -> None:
    if ctx.device.startswith("cuda"):
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], Any], ctx: Context, repeats: int, seconds: float) -> list[float]:
    """``fn`` timed ``repeats`` times after 3 warm-up calls, stopping early once
    ``seconds`` have passed (the step's share of its budget); 3 times in the dry run."""
    if ctx.dry:
        repeats, seconds = 3, 0.0
    for _ in range(3):
        fn()
    sync(ctx)
    out, stop = [], time.perf_counter() + seconds
    while len(out) < repeats and (len(out) < 3 or time.perf_counter() < stop):
        start = time.perf_counter()
        fn()
        sync(ctx)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def figures(ms: list[float]) -> dict:
    median = statistics.median(ms)
    return {"median_ms": round(median, 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "min_ms": round(min(ms), 3), "max_ms": round(max(ms), 3), "n": len(ms),
            "frames_per_s": round(1e3 / median, 1)}


# --- steps ------------------------------------------------------------------------------

def environment(ctx: Context) -> dict:
    info: dict[str, Any] = {"machine": platform.node(), "cpu": platform.processor() or
                            platform.machine(), "cpus": os.cpu_count(),
                            "python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "device": ctx.device}
    for name in ("numpy", "onnx", "onnxruntime", "transformers", "cv2", "rclpy"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "present")
        except ImportError as exc:
            info[name] = f"missing ({exc.name})"
    if ctx.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True)
        info["driver"] = smi.stdout.strip() or smi.stderr.strip()
    else:
        info["gpu"] = info["driver"] = "none (CPU dry run)"
    return info


def gpu_tests(ctx: Context) -> dict:
    """The GPU-branch tests on this machine; the dry run only collects them (running
    them on the CPU is the suite's own job), which fails when one is renamed."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
               "not openvino", *GPU_TESTS]
    skipped = {}
    try:
        import rclpy  # noqa: F401

        import vps_ros.msg  # noqa: F401
    except ImportError as exc:
        command += ["-m", "not ros"]
        skipped["tests marked ros"] = f"cannot run here: {exc}"
    if ctx.dry:
        command.append("--collect-only")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0:
        raise RuntimeError(f"pytest exited {done.returncode}: {summary}\n"
                           f"{done.stdout[-2000:]}{done.stderr[-1000:]}")
    return {"tests": GPU_TESTS, "collected_only": ctx.dry, "summary": summary,
            "skipped": skipped}


def _checkpoint(ctx: Context) -> Path:
    from vps_ros.resources import model_path
    if ctx.dry:
        from testkit.pipeline_helpers import write_small_checkpoint
        path = ctx.work / "small.pt"
        return path if path.is_file() else write_small_checkpoint(path)
    return model_path("default.pt")


def _frames(segmenter, count: int) -> list[np.ndarray]:
    from vps_ros.data.synthetic.dataset import SyntheticDataset
    h, w = segmenter.input_size
    return [f.image for f in SyntheticDataset("val", 1, count, h, w)]


def _panoptic(segmenter, images: list[np.ndarray]) -> list[np.ndarray]:
    from vps_ros.train.validate import segments_to_panoptic
    classes = segmenter.classes
    return [segments_to_panoptic(s, 1000, classes.void_id)
            for image in images for s in segmenter.segment([image])]


def shipped_model(ctx: Context) -> dict:
    from vps_ros.metrics.evaluate import panoptic_quality
    from vps_ros.model.options import LoadOptions
    from vps_ros.model.registry import open_segmenter
    checkpoint = str(_checkpoint(ctx))
    # the dry run's untrained network is unsure of everything: keep every query
    loose = None
    if ctx.dry:
        from testkit.pipeline_helpers import LOOSE as loose
    reference = open_segmenter(checkpoint, LoadOptions("cpu", backend="torch",
                                                       postprocess=loose))
    images = _frames(reference, 4 if ctx.dry else 16)
    truth = _panoptic(reference, images)
    h, w = reference.input_size
    result: dict[str, Any] = {"checkpoint": checkpoint, "input": f"{h}x{w}", "network": {},
                              "engines": {}, "skipped": {}}
    net = open_segmenter(checkpoint, LoadOptions(ctx.device, backend="torch")).net
    x = torch.rand(1, 3, h, w, device=ctx.device).contiguous(memory_format=torch.channels_last)
    precisions = {"fp32": None, "fp16 autocast": torch.float16, "bf16 autocast": torch.bfloat16}
    for name, dtype in precisions.items():
        if dtype is torch.float16 and not ctx.device.startswith("cuda"):
            result["skipped"][f"network {name}"] = "needs a GPU"
            continue

        def forward(dtype=dtype):
            with torch.inference_mode(), torch.autocast(ctx.device.split(":")[0], dtype=dtype,
                                                        enabled=dtype is not None):
                net(x)
        result["network"][name] = figures(time_ms(forward, ctx, 200, 8))
    engines = {"torch": LoadOptions(ctx.device, backend="torch", postprocess=loose),
               "torch.compile": LoadOptions(ctx.device, backend="torch", compile=True,
                                            postprocess=loose),
               "onnxruntime": LoadOptions(ctx.device, backend="onnxruntime",
                                          postprocess=loose)}
    failures = []
    batch = images[0][None]
    for name, options in engines.items():
        segmenter = open_segmenter(checkpoint, options)
        if segmenter.fallback:
            result["skipped"][name] = f"cannot run here: {segmenter.fallback}"
            continue
        pq = panoptic_quality(zip(truth, _panoptic(segmenter, images)), reference.classes,
                              1000)["PQ"]
        if pq is None:
            raise AssertionError(f"{name}: no segments in the reference or the engine's "
                                 "frames, nothing to compare")
        pq *= 100
        entry = {"backend": segmenter.backend, "PQ_vs_torch_fp32_cpu": round(pq, 2),
                 "network": figures(time_ms(lambda: segmenter.predict(batch), ctx, 100, 6)),
                 "segment": figures(time_ms(lambda: segmenter.segment([images[0]]), ctx,
                                            100, 6))}
        result["engines"][name] = entry
        if 100 - pq > PQ_AGREEMENT:
            failures.append(f"{name}: PQ {pq:.2f} against torch fp32 (more than "
                            f"{PQ_AGREEMENT} points below 100)")
    if ctx.device.startswith("cuda"):
        import onnxruntime
        for provider in ("TensorrtExecutionProvider", "CUDAExecutionProvider"):
            if provider not in onnxruntime.get_available_providers():
                result["skipped"][f"onnxruntime {provider}"] = (
                    "not in this ONNX Runtime (the CPU build; the GPU one is onnxruntime-gpu)")
    else:
        result["skipped"]["onnxruntime TensorRT/CUDA providers"] = "need a GPU"
    if failures:
        raise AssertionError("; ".join(failures) + f"\n{json.dumps(result)}")
    return result


def _mask2former(ctx: Context, folder: Path) -> tuple[torch.nn.Module, tuple[int, int]]:
    from transformers import Mask2FormerForUniversalSegmentation
    if ctx.dry:
        from testkit.hf_models import save_mask2former
        save_mask2former(folder)
        size = (64, 128)
    else:
        from bench_segmenter import mask2former_swin_tiny
        mask2former_swin_tiny(folder, 100)
        size = (1024, 2048)
    return Mask2FormerForUniversalSegmentation.from_pretrained(folder), size


def _eomt(ctx: Context, folder: Path) -> tuple[torch.nn.Module, tuple[int, int]]:
    """EoMT-S as ``bench_segmenter`` builds it (ViT-S/16, queries joined for its last 4
    blocks, 200 queries, COCO panoptic at 640x640); the dry run's is 2 layers wide 32."""
    from transformers import EomtConfig, EomtForUniversalSegmentation
    if ctx.dry:
        torch.manual_seed(0)
        EomtForUniversalSegmentation(EomtConfig(
            image_size=64, patch_size=16, num_labels=133, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, num_blocks=1, num_queries=8)
        ).save_pretrained(folder)
        size = 64
    else:
        from bench_segmenter import eomt_folder
        size = 640
        eomt_folder(folder, "eomt-s", size)
    return EomtForUniversalSegmentation.from_pretrained(folder), (size, size)


def architectures(ctx: Context) -> dict:
    """Random-weight networks saved and reloaded as a download is; timed fp16 on a GPU,
    fp32 in the dry run."""
    result = {}
    for name, build in (("Mask2Former Swin-T", _mask2former), ("EoMT-S", _eomt)):
        model, (h, w) = build(ctx, ctx.work / name.replace(" ", "_"))
        model = model.to(ctx.device).eval()
        x = torch.rand(1, 3, h, w, device=ctx.device)
        gpu = ctx.device.startswith("cuda")

        def forward():
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16,
                                                        enabled=gpu):
                model(pixel_values=x)
        result[name] = {"input": f"{h}x{w}", "precision": "fp16 autocast" if gpu else "fp32",
                        "parameters_M": round(sum(p.numel() for p in model.parameters()) / 1e6,
                                              2),
                        **figures(time_ms(forward, ctx, 50, 30))}
    return result


def pipeline(ctx: Context) -> dict:
    from vps_ros.pipeline import Pipeline, PipelineConfig
    config = PipelineConfig(model=str(_checkpoint(ctx)), device=ctx.device, backend="torch")
    pipe = Pipeline.from_config(config)
    images = _frames(pipe.segmenter, 8 if ctx.dry else 60)
    batch = images[0][None]
    network = time_ms(lambda: pipe.segmenter.predict(batch), ctx, 100, 8)
    steps: list[float] = []
    for _ in range(2 if ctx.dry else 5):
        pipe.reset()
        steps += time_ms(lambda it=iter(range(10 ** 6)): pipe.step(
            images[next(it) % len(images)], 0), ctx, len(images), 4)
    net, step = figures(network), figures(steps)
    return {"network": net, "step": step,
            "step_vs_network": round(step["frames_per_s"] / net["frames_per_s"], 3)}


def torchrun(ctx: Context) -> dict:
    """Training steps under torchrun: two NCCL ranks on two GPUs; with one GPU lent one
    process on it (NCCL refuses two ranks on one GPU), and two ranks asked for must stop
    with the product's one-line error; two gloo ranks in the dry run."""
    from testkit.train_runs import tiny_config, write_kitti, write_yaml
    kitti = ctx.work / "kitti"
    if not kitti.exists():
        write_kitti(kitti, sequences=2, frames=4)
    gpus = torch.cuda.device_count() if ctx.device.startswith("cuda") else 0
    procs = 2 if not gpus else min(2, gpus)
    config = write_yaml(ctx.work / "train.yaml", {**tiny_config(
        kitti, ctx.work / "train", steps=4, pairs=2), "device": ctx.device})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def launch(nproc: int) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               "--nproc_per_node", str(nproc), "-m", "vps_ros.train",
                               "--config", str(config)], cwd=ctx.work, env=env,
                              capture_output=True, text=True, timeout=300)
    start = time.perf_counter()
    done = launch(procs)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"torchrun with {procs} process(es) exited {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    trained = torch.load(ctx.work / "train" / "final.pt", weights_only=True)["training"]
    backend = "gloo" if not gpus else "nccl" if procs > 1 else "none (one process)"
    result = {"processes": procs, "backend": backend,
              "steps": trained["steps"], "seconds": round(seconds, 1)}
    if gpus == 1:
        refused = launch(2)
        lines = [l for l in refused.stderr.splitlines() if l.startswith("vps-ros train:")]
        if refused.returncode == 0 or not any("--nproc_per_node" in l for l in lines):
            raise RuntimeError("two ranks on one GPU were not refused with the one-line "
                               f"error:\n{refused.stderr[-2000:]}")
        result["two_ranks_on_one_gpu"] = lines[0]
    return result


def _gpu_memory(stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.5):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=memory.used",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True)
        if smi.returncode == 0:
            peak[0] = max(peak[0], int(smi.stdout.split()[0]))


def node_dds(ctx: Context) -> dict:
    try:
        import rclpy  # noqa: F401

        import vps_ros.msg  # noqa: F401
    except ImportError as exc:
        raise Skip(f"cannot run here: {exc} (rclpy and the messages built for this "
                   f"Python {platform.python_version()} are not installed)") from None
    from bench_node import run_config
    frames = 45 if ctx.dry else 900
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=_gpu_memory, args=(stop, peak), daemon=True)
    if ctx.device.startswith("cuda"):
        watcher.start()
    try:
        run = run_config(30.0, 1, frames, _checkpoint(ctx), None, False,
                         40 + os.getpid() % 50, ctx.work, (256, 512) if not ctx.dry
                         else (64, 128), None, "torch", device=ctx.device)
    finally:
        stop.set()
    run["gpu_memory_used_max_mib"] = peak[0] if ctx.device.startswith("cuda") else None
    if run["received"] == 0:
        raise RuntimeError(f"the node published nothing: {json.dumps(run)}")
    return run


STEPS = [Step("environment", 5, environment), Step("gpu_tests", 110, gpu_tests),
         Step("shipped_model", 130, shipped_model), Step("architectures", 70, architectures),
         Step("pipeline", 30, pipeline), Step("torchrun", 60, torchrun),
         Step("node_dds", 65, node_dds)]


# --- running and reporting --------------------------------------------------------------

def run_steps(steps: list[Step], ctx: Context) -> list[dict]:
    """Every step in turn, whatever the others did: passed, failed (with the error) or
    skipped (with the reason); a step past its budget on a GPU has failed too."""
    records = []
    for step in steps:
        start = time.perf_counter()
        record: dict[str, Any] = {"step": step.name, "budget_s": step.budget_s}
        try:
            record["result"] = step.run(ctx)
            record["status"] = "passed"
        except Skip as exc:
            record.update(status="skipped", reason=str(exc))
        except Exception as exc:  # a failed step is reported, and the next one runs
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        record["seconds"] = round(time.perf_counter() - start, 1)
        if record["seconds"] > ctx.budget(step.budget_s) and record["status"] == "passed":
            record.update(status="failed", error=f"took {record['seconds']} s, over its "
                          f"budget of {step.budget_s} s")
        print(f"{step.name}: {record['status']} in {record['seconds']} s"
              + (f": {record.get('error') or record.get('reason')}"
                 if record["status"] != "passed" else ""), flush=True)
        records.append(record)
    return records


def skipped_names(records: list[dict]) -> list[str]:
    """Every skipped step and variant, by name, with why."""
    names = [f"{r['step']}: {r['reason']}" for r in records if r["status"] == "skipped"]
    for r in records:
        for variant, why in r.get("result", {}).get("skipped", {}).items():
            names.append(f"{r['step']} / {variant}: {why}")
    return names


def markdown(report: dict) -> str:
    env = next((r["result"] for r in report["steps"] if r["step"] == "environment"
                and r["status"] == "passed"), {})
    title = f"# GPU check, {report['date']}"
    if report["dry_run"]:
        title += " (CPU dry run: no measurement)"
    lines = [title,
             "", "| machine | GPU | driver | CUDA | python | torch | onnxruntime | "
             "transformers |", "| --- | --- | --- | --- | --- | --- | --- | --- |",
             "| " + " | ".join(str(env.get(k, "?")) for k in (
                 "machine", "gpu", "driver", "cuda", "python", "torch", "onnxruntime",
                 "transformers")) + " |", "",
             "| step | status | s (budget) | figures |", "| --- | --- | --- | --- |"]
    for r in report["steps"]:
        lines.append(f"| {r['step']} | {r['status']} | {r['seconds']} ({r['budget_s']}) | "
                     f"{_summary(r)} |")
    if report["goals"]:
        lines += ["", "Goals:", ""] + [f"- {goal}" for goal in report["goals"]]
    if report["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {name}" for name in report["skipped"]]
    if report["failed"]:
        lines += ["", "Failed: " + ", ".join(report["failed"])]
    return "\n".join(lines) + "\n"


def _summary(record: dict) -> str:
    if record["status"] != "passed":
        return (record.get("error") or record.get("reason", "")).splitlines()[0][:200]
    result, name = record["result"], record["step"]
    if name == "shipped_model":
        parts = [f"network {k} {v['frames_per_s']} f/s" for k, v in result["network"].items()]
        parts += [f"{k}: network {v['network']['frames_per_s']} f/s, segment "
                  f"{v['segment']['frames_per_s']} f/s, PQ {v['PQ_vs_torch_fp32_cpu']}"
                  for k, v in result["engines"].items()]
        return "; ".join(parts)
    if name == "architectures":
        return "; ".join(f"{k} {v['input']} {v['precision']}: {v['median_ms']} ms "
                         f"({v['frames_per_s']} f/s)" for k, v in result.items())
    if name == "pipeline":
        return (f"step {result['step']['frames_per_s']} f/s, network "
                f"{result['network']['frames_per_s']} f/s, ratio {result['step_vs_network']}")
    if name == "node_dds":
        return (f"30 Hz: latency p50 {result['latency_p50_ms']:.1f} ms, p95 "
                f"{result['latency_p95_ms']:.1f} ms, dropped {result['dropped']}, lost "
                f"{result['lost']}, GPU memory used (whole GPU, max) "
                f"{result['gpu_memory_used_max_mib'] or 'not measured'} MiB")
    if name == "torchrun":
        return f"{result['processes']} {result['backend']} rank(s), {result['steps']} steps"
    if name == "gpu_tests":
        return result["summary"]
    return ""


def goals(records: list[dict]) -> list[str]:
    """The issue's goals on a GPU, each met or not (reported, not failed: a step fails
    when it cannot do its work, not when the figures fall short)."""
    got = {r["step"]: r["result"] for r in records if r["status"] == "passed"}
    out = []
    if "shipped_model" in got and "fp16 autocast" in got["shipped_model"]["network"]:
        fps = got["shipped_model"]["network"]["fp16 autocast"]["frames_per_s"]
        out.append(f"shipped model fp16 network >= 300 frames/s: {fps} "
                   f"({'met' if fps >= 300 else 'NOT met'})")
    if "pipeline" in got:
        ratio = got["pipeline"]["step_vs_network"]
        out.append(f"Pipeline.step >= 0.8x the network: {ratio} "
                   f"({'met' if ratio >= 0.8 else 'NOT met'})")
    if "node_dds" in got:
        node = got["node_dds"]
        met = node["dropped"] == node["lost"] == 0
        out.append(f"node at 30 Hz, nothing dropped: dropped {node['dropped']}, lost "
                   f"{node['lost']} ({'met' if met else 'NOT met'})")
    return out


def check(dry: bool, out: Path, steps: list[Step] = STEPS) -> int:
    """Run ``steps``, write gpu_check.json and gpu_check.md under ``out``; 0 when every
    step passed or was skipped, 1 otherwise."""
    if out.exists() and not out.is_dir():
        from vps_ros.errors import ConfigError
        raise ConfigError(f"--out {out}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if not dry and not torch.cuda.is_available():
        from vps_ros.errors import ConfigError
        raise ConfigError("no CUDA device here: run on a GPU machine, or pass --cpu-dry-run")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(dry, "cpu" if dry else "cuda", Path(tmp))
        start = time.perf_counter()
        records = run_steps(steps, ctx)
        total = round(time.perf_counter() - start, 1)
    failed = [r["step"] for r in records if r["status"] == "failed"]
    if not dry and total > TOTAL_BUDGET_S:
        failed.append(f"total ({total} s > {TOTAL_BUDGET_S} s)")
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "dry_run": dry,
              "total_s": total, "failed": failed, "skipped": skipped_names(records),
              "goals": [] if dry else goals(records),
              "steps": records}
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "gpu_check.md").write_text(markdown(report))
    print(f"total {total} s; wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    for name in report["skipped"]:
        print(f"skipped: {name}")
    if failed:
        print(f"failed steps: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check_out"),
                        help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="every step on the CPU, small sizes; GPU-only parts skipped")
    parser.add_argument("--steps", nargs="+", choices=[s.name for s in STEPS],
                        help="only these steps (default: all)")
    args = parser.parse_args(argv)
    steps = [s for s in STEPS if not args.steps or s.name in args.steps]
    from vps_ros.errors import VpsRosError
    try:
        return check(args.cpu_dry_run, args.out, steps)
    except VpsRosError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
