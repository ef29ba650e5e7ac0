"""Segmenter speed: parameters, GFLOPs, latency per frame, share of the matmul peak.

    python benchmarks/bench_segmenter.py [--checkpoint models/default.pt] [--no-compile]
                                         [--threads 1 2] [--backends torch openvino ...]

CPU: one 256x512 frame at a time (the model's input size), every backend side by side:
torch eager (``inference_mode``, channels_last, batch norm folded), torch compiled
(``Segmenter(compile=True)``: torch.compile with frozen weights; the compile time is
printed, and is shorter when the disk cache already holds this network), and the
inference engines (OpenVINO, ONNX Runtime) running the network exported at load
(vps_ros.model.engines; ``openvino-int8``: the network quantized by NNCF, with
``--pq-frames`` the image PQ of every variant on the same val-split frames, the check
that decides INT8's default). For each: the network alone (``predict`` of one uint8 image)
and ``segment()`` end to end (resize, network, mask-wise merge, boxes), with the
speed-up of each median over torch eager; and the mask-wise merge (``merge_masks``)
alone on the torch outputs. The matmul peak is measured with the same threads (fp32
1024x1024 matmul); the share is GFLOPs per frame / latency / peak. With a GPU also
frames/s at 512x1024 in fp16 autocast. Prints median, p95 and the spread (min..max) of
every timing. The machine is shared: the variants and the peak are timed in turns,
round by round, and runs should be repeated.

    python benchmarks/bench_segmenter.py --mask2former [--sizes 512x1024 1024x2048]

The transformers backend instead: the architecture of the public
``facebook/mask2former-swin-tiny-cityscapes-panoptic`` (Swin-T backbone, 19 classes),
built here from its config with random weights (the same arithmetic as the trained
one), saved as a model folder and opened through the model registry as a user's
download is; ``segment()`` end to end and the network (``predict``) per frame at each
size, fp32 on the CPU; fp16 autocast on a GPU when there is one.

    python benchmarks/bench_segmenter.py --eomt [--eomt-models eomt-s eomt-b videomt-s]
                                         [--eomt-sizes 640 1024]

EoMT and VidEoMT: the ViT-S/16 and ViT-B/16 architectures of the released COCO panoptic
models (200 queries, 133 classes, queries in the last 4 blocks), random weights, saved
and opened as a download is, at 640x640 (COCO) and 1024x1024 (the Cityscapes models'
crop). Per frame: the network (``predict``: the model's own forward) and the pipeline
end to end (``Pipeline.step``: segment, track, encode), interleaved, with their ratio.
fp32; bf16 too with ``--bf16`` (worth it only where the CPU has avx512_bf16/AMX).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from vps_ros.model import MaskSegmenter, ModelConfig, Segmenter
from vps_ros.model.checkpoint import load_checkpoint, save_checkpoint
from vps_ros.model.engines.segmenter import on_backend
from vps_ros.model.network import KMaXNet
from vps_ros.model.postprocess import merge_masks
from vps_ros.model.registry import LoadOptions
from vps_ros.resources import model_path
from vps_ros.types import ClassTable

DEFAULT_CHECKPOINT = "default.pt"


def timings(fn, repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def describe(ms: list[float]) -> str:
    p95 = float(np.percentile(ms, 95))
    return (f"median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  "
            f"spread {min(ms):.1f}..{max(ms):.1f} ms  (n={len(ms)})")


def matmul_peak_gflops(device: str, repeats: int = 20) -> float:
    a = torch.randn(1024, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)

    def run():
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
    best = min(timings(run, repeats))
    return 2 * 1024 ** 3 / (best / 1e3) / 1e9


def load(checkpoint: str | None) -> tuple[KMaXNet, ClassTable, str]:
    path = Path(checkpoint) if checkpoint else model_path(DEFAULT_CHECKPOINT)
    if path.is_file():
        loaded = load_checkpoint(path)
        return loaded.net, loaded.classes, str(path)
    classes = ClassTable.builtin("synthetic")
    return KMaXNet(ModelConfig(), len(classes)), classes, "default architecture, random weights"


def test_image(height: int, width: int) -> np.ndarray:
    try:
        from vps_ros.data.synthetic.dataset import SyntheticDataset
        return next(iter(SyntheticDataset("test", 1, 1, height, width))).image
    except ImportError:
        return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def time_segmenters(segmenters: dict[str, MaskSegmenter], image: np.ndarray, gflops: float,
                    repeats: int) -> None:
    """Time the variants in turns, one call each per round, so that a neighbour's load on
    this shared machine falls on all of them alike; the matmul peak and the merge are
    measured in the same rounds."""
    batch = image[None]
    net_ms = {name: [] for name in segmenters}
    seg_ms = {name: [] for name in segmenters}
    merge_ms, peaks = [], []
    reference = next(iter(segmenters.values()))
    out = reference.predict(batch)
    for _ in range(repeats):
        for name, segmenter in segmenters.items():
            net_ms[name] += timings(lambda: segmenter.predict(batch), 1, warmup=0)
            seg_ms[name] += timings(lambda: segmenter.segment([image]), 1, warmup=0)
        merge_ms += timings(lambda: merge_masks(
            out["class_logits"][0], out["mask_logits"][0], out["embeddings"][0],
            reference.classes.is_thing_lut, reference.input_size, reference.postprocess),
            1, warmup=0)
        peaks.append(matmul_peak_gflops("cpu", repeats=3))
    peak = statistics.median(peaks)
    print(f"CPU, {torch.get_num_threads()} threads, matmul peak {peak:.0f} GFLOP/s (median of "
          f"the rounds, {min(peaks):.0f}..{max(peaks):.0f})")
    base_net, base_seg = (statistics.median(net_ms[reference_name(segmenters)]),
                          statistics.median(seg_ms[reference_name(segmenters)]))
    for name, segmenter in segmenters.items():
        net, seg = statistics.median(net_ms[name]), statistics.median(seg_ms[name])
        rate = gflops / (net / 1e3)
        segments = segmenter.segment([image])[0].num_segments
        fallback = f", fell back: {segmenter.fallback}" if segmenter.fallback else ""
        print(f"  {name} ({segmenter.backend}{fallback}):")
        print(f"    network        {describe(net_ms[name])}  x{base_net / net:.2f} vs torch eager")
        print(f"    segment() e2e  {describe(seg_ms[name])}  x{base_seg / seg:.2f} vs torch "
              f"eager ({segments} segments)")
        print(f"    network reaches {rate / peak:.0%} of the matmul peak ({rate:.0f} GFLOP/s)")
    print(f"  merge_masks alone (post-processing of one frame): {describe(merge_ms)}")


def quality_on_val(segmenters: dict[str, MaskSegmenter], count: int) -> None:
    """Image PQ of every variant on the same ``count`` frames of the synthetic val split
    (seeds disjoint from the train split INT8 calibrates on), at the model's input size."""
    from vps_ros.data.synthetic.dataset import SyntheticDataset
    from vps_ros.metrics import panoptic_quality
    from vps_ros.train.validate import segments_to_panoptic
    reference = next(iter(segmenters.values()))
    h, w = reference.input_size
    data = SyntheticDataset("val", 10, -(-count // 10), h, w)
    frames = list(data)[:count]
    print(f"  image PQ on {len(frames)} val-split frames (10 sequences):")
    for name, segmenter in segmenters.items():
        pairs = [(f.panoptic, segments_to_panoptic(segmenter.segment([f.image])[0],
                                                   data.label_divisor, data.classes.void_id))
                 for f in frames]
        pq = panoptic_quality(pairs, data.classes, data.label_divisor)
        print(f"    {name}: PQ {100 * pq['PQ']:.2f}  things {100 * pq['PQ_things']:.2f}  "
              f"stuff {100 * pq['PQ_stuff']:.2f}")


def reference_name(segmenters: dict) -> str:
    return "torch eager" if "torch eager" in segmenters else next(iter(segmenters))


def make_segmenters(checkpoint: str, backends: list[str], compile: bool
                    ) -> dict[str, MaskSegmenter]:
    """One segmenter per variant, for the current thread count (engines read it when
    they compile the network)."""
    segmenters: dict[str, MaskSegmenter] = {}
    for backend in backends:
        start = time.perf_counter()
        loaded = load_checkpoint(checkpoint)
        torch_segmenter = Segmenter(loaded.net, loaded.classes, "cpu", loaded.postprocess)
        name = "torch eager" if backend == "torch" else backend.replace("-", " ")
        engine, _, precision = backend.partition("-")   # openvino-int8: NNCF INT8
        segmenter = on_backend(torch_segmenter, checkpoint, LoadOptions(
            backend=engine, quantization=precision or "none"))
        for _ in range(5):
            segmenter.warm_up()
        print(f"{name}: ready in {time.perf_counter() - start:.0f} s")
        segmenters[name] = segmenter
        if backend == "torch" and compile:
            loaded = load_checkpoint(checkpoint)
            start = time.perf_counter()
            compiled = Segmenter(loaded.net, loaded.classes, "cpu", loaded.postprocess,
                                 compile=True)
            for _ in range(5):
                compiled.warm_up()
            print(f"torch compiled: {compiled.compiled}, compilation and warm-up "
                  f"{time.perf_counter() - start:.0f} s")
            segmenters["torch compiled"] = compiled
    return segmenters


def mask2former_swin_tiny(folder: Path, queries: int) -> int:
    """The Cityscapes panoptic Swin-T Mask2Former's architecture, random weights, saved
    in ``folder``; returns its number of parameters."""
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig
    labels = [c.name for c in ClassTable.builtin("cityscapes_vps")]
    backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                          window_size=7, out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_queries=queries,
                               id2label=dict(enumerate(labels)),
                               label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(0)
    model = Mask2FormerForUniversalSegmentation(config)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def bench_mask2former(sizes: list[str], queries: int, repeats: int) -> None:
    import tempfile

    from vps_ros.model.registry import LoadOptions, open_segmenter
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m2f"
        params = mask2former_swin_tiny(folder, queries)
        print(f"model: Mask2Former Swin-T, Cityscapes panoptic architecture, {queries} "
              "queries, random weights (config built here; the arithmetic of the trained "
              f"checkpoint); {params / 1e6:.1f} M parameters; CPU, "
              f"{torch.get_num_threads()} threads, fp32")
        for size in sizes:
            h, w = (int(v) for v in size.split("x"))
            segmenter = open_segmenter(str(folder), LoadOptions(input_size=(h, w)))
            image = test_image(h, w)
            batch = image[None]
            for _ in range(2):   # the first calls at a new size are several times slower
                segmenter.segment([image])
            net, e2e = [], []
            for _ in range(repeats):   # in turns, so that a neighbour's load falls on both
                net += timings(lambda: segmenter.predict(batch), 1, warmup=0)
                e2e += timings(lambda: segmenter.segment([image]), 1, warmup=0)
            print(f"  {h}x{w}: network {describe(net)}")
            print(f"  {h}x{w}: segment() e2e {describe(e2e)}  = "
                  f"{1e3 / statistics.median(e2e):.2f} frames/s")
            if torch.cuda.is_available():
                gpu = open_segmenter(str(folder), LoadOptions("cuda", (h, w)))

                def on_gpu():
                    gpu.predict(batch)
                    torch.cuda.synchronize()
                ms = timings(on_gpu, max(repeats, 20), warmup=5)
                print(f"  {h}x{w}: GPU {torch.cuda.get_device_name()} fp16 network "
                      f"{describe(ms)}")
            else:
                print(f"  {h}x{w}: GPU not measured (no CUDA device here)")


#: (hidden size, heads) of the ViT of each benchmarked EoMT/VidEoMT; 12 blocks each.
EOMT_ARCHITECTURES = {"eomt-s": ("eomt", 384, 6), "eomt-b": ("eomt", 768, 12),
                      "videomt-s": ("videomt", 384, 6)}


def eomt_folder(folder: Path, name: str, side: int) -> int:
    """The architecture ``name`` at ``side`` x ``side``, random weights, saved in
    ``folder``; returns its number of parameters."""
    import transformers
    kind, hidden, heads = EOMT_ARCHITECTURES[name]
    config_class, model_class = {"eomt": ("EomtConfig", "EomtForUniversalSegmentation"),
                                 "videomt": ("VideomtConfig",
                                             "VideomtForUniversalSegmentation")}[kind]
    labels = [c.name for c in ClassTable.builtin("coco_panoptic")]
    config = getattr(transformers, config_class)(
        hidden_size=hidden, num_hidden_layers=12, num_attention_heads=heads, image_size=side,
        patch_size=16, num_blocks=4, num_queries=200, id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config)
    if kind == "eomt":
        # trained EoMT anneals its masked attention away (mask probabilities 1 -> 0):
        # the released checkpoints run without it, and so are timed here
        model.attn_mask_probs.zero_()
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def bench_eomt(names: list[str], sides: list[int], repeats: int, bf16: bool) -> None:
    from vps_ros.model.registry import open_segmenter
    from vps_ros.pipeline import Pipeline
    precisions = ["fp32", "bf16"] if bf16 else ["fp32"]
    print(f"CPU, {torch.get_num_threads()} threads; random weights (the released "
          "architectures' arithmetic, no quality); 2 warm-up calls, then rounds in turns")
    for name in names:
        for side in sides:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / name
                params = eomt_folder(folder, name, side)
                image = test_image(side, side)
                for precision in precisions:
                    segmenter = open_segmenter(str(folder), LoadOptions(precision=precision))
                    pipeline = Pipeline(segmenter)
                    batch = image[None]
                    for _ in range(2):
                        pipeline.step(image, 0)
                    net, e2e = [], []
                    for k in range(repeats):
                        net += timings(lambda: segmenter.predict(batch), 1, warmup=0)
                        e2e += timings(lambda: pipeline.step(image, k + 1), 1, warmup=0)
                    ratio = statistics.median(net) / statistics.median(e2e)
                    print(f"  {name} ({params / 1e6:.1f} M) {side}x{side} {precision}: "
                          f"network {describe(net)}")
                    print(f"  {name} ({params / 1e6:.1f} M) {side}x{side} {precision}: "
                          f"pipeline e2e {describe(e2e)} = {1e3 / statistics.median(e2e):.2f}"
                          f" frames/s, {ratio:.2f}x the network's frames/s")
    print("GPU: not measured here (benchmarks/gpu_check.py runs where a GPU is lent)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help=f"default: models/{DEFAULT_CHECKPOINT} if present, "
                        "else the default architecture with random weights")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--backends", nargs="+",
                        default=["torch", "openvino", "openvino-int8", "onnxruntime"],
                        choices=["torch", "openvino", "openvino-int8", "onnxruntime"],
                        help="openvino is fp32, openvino-int8 the NNCF INT8 network")
    parser.add_argument("--pq-frames", type=int, default=60, metavar="N",
                        help="image PQ of every variant on the same N frames of the val "
                        "split (10 sequences; 0: none)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the compiled torch network (its compilation takes ~1 min)")
    parser.add_argument("--mask2former", action="store_true",
                        help="time the transformers backend (Swin-T Cityscapes Mask2Former "
                        "architecture) instead")
    parser.add_argument("--sizes", nargs="+", default=["512x1024", "1024x2048"],
                        metavar="HxW", help="--mask2former: input sizes")
    parser.add_argument("--queries", type=int, default=100,
                        help="--mask2former: object queries (default %(default)s)")
    parser.add_argument("--eomt", action="store_true",
                        help="time EoMT/VidEoMT architectures (transformers) instead")
    parser.add_argument("--eomt-models", nargs="+", default=list(EOMT_ARCHITECTURES),
                        choices=list(EOMT_ARCHITECTURES))
    parser.add_argument("--eomt-sizes", nargs="+", type=int, default=[640, 1024])
    parser.add_argument("--bf16", action="store_true", help="--eomt: also bf16 autocast")
    args = parser.parse_args()
    if args.eomt:
        torch.set_num_threads(args.threads[0])
        bench_eomt(args.eomt_models, args.eomt_sizes, args.repeats, args.bf16)
        return
    if args.mask2former:
        torch.set_num_threads(args.threads[0])
        bench_mask2former(args.sizes, args.queries, args.repeats)
        return

    net, classes, source = load(args.checkpoint)
    config = net.config
    h, w = config.input_size
    params = sum(p.numel() for p in net.parameters())
    with FlopCounterMode(display=False) as counter:
        net.eval()(torch.zeros(1, 3, h, w))
    gflops = counter.get_total_flops() / 1e9
    print(f"model: {source}")
    print(f"parameters: {params / 1e6:.2f} M ({params * 4 / 2**20:.1f} MiB fp32)")
    print(f"GFLOPs per {h}x{w} frame: {gflops:.2f} (multiply-add = 2 FLOPs)")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")

    image = test_image(h, w)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or str(model_path(DEFAULT_CHECKPOINT))
        if not Path(checkpoint).is_file():
            checkpoint = str(Path(folder) / "random.pt")
            save_checkpoint(checkpoint, net, classes)
        for threads in args.threads:
            torch.set_num_threads(threads)
            segmenters = make_segmenters(checkpoint, args.backends, not args.no_compile)
            time_segmenters(segmenters, image, gflops, args.repeats)
            if args.pq_frames and threads == args.threads[-1]:
                quality_on_val(segmenters, args.pq_frames)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")

    if torch.cuda.is_available():
        gpu = Segmenter(load(args.checkpoint)[0], classes, "cuda")
        big = torch.zeros(1, 3, 512, 1024, device="cuda").contiguous(
            memory_format=torch.channels_last)

        def gpu_network():
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
                gpu.net(big)
            torch.cuda.synchronize()
        ms = timings(gpu_network, args.repeats, warmup=20)
        print(f"GPU {torch.cuda.get_device_name()}, 512x1024 fp16: {describe(ms)}  "
              f"= {1e3 / statistics.median(ms):.0f} frames/s")


if __name__ == "__main__":
    main()
