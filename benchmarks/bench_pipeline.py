"""Pipeline.step at real camera sizes against the 256x512 step: what a camera costs
beyond the network.

    python benchmarks/bench_pipeline.py [--threads 1] [--frames 12] [--rounds 5]
                                        [--params config/perception.yaml]
                                        [--resize letterbox|stretch]

The same synthetic test frames (rendered at 256x512, then enlarged to each camera size)
go through one ``Pipeline`` per size, with the parameters of ``--params`` (default: the
package's perception.yaml). The sizes are timed in turns, round by round (the machine is
shared), each round a fresh tracker over the same frames; the first frame of a round is
a warm-up and not counted. Prints median, p95 and spread per size, where the time went
(segment, track, panoptic), and the ratio of medians to 256x512. Letterboxed, the
network input follows each camera's aspect (288x512 for 16:9, 384x512 for 4:3);
``--resize stretch`` keeps it at 256x512 for every size, which isolates the cost of the
camera's size outside the network.
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.model.resizing import RESIZE_MODES
from vps_ros.pipeline import Pipeline, PipelineConfig
from vps_ros.resources import config_path

SIZES = [(256, 512), (960, 1280), (1080, 1920), (1024, 2048)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--params", default=str(config_path("perception.yaml")))
    parser.add_argument("--resize", choices=RESIZE_MODES, help="override the params file's")
    args = parser.parse_args()

    config = PipelineConfig.from_params_file(args.params)
    config = PipelineConfig(**{**config.__dict__, "threads": args.threads,
                               "resize": args.resize or config.resize})
    pipeline = Pipeline.from_config(config)
    torch.set_num_threads(args.threads)
    base = [f.image for f in SyntheticDataset("test", 1, args.frames)]
    frames = {size: [cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
                     for image in base] for size in SIZES}
    steps = {size: [] for size in SIZES}
    parts = {size: {"segment": [], "track": [], "panoptic": []} for size in SIZES}
    for _ in range(args.rounds):
        for size in SIZES:
            pipeline.reset()
            for t, image in enumerate(frames[size]):
                start = time.perf_counter()
                result = pipeline.step(image, t * 100_000_000)
                if t == 0:
                    continue
                steps[size].append((time.perf_counter() - start) * 1e3)
                for key in parts[size]:
                    parts[size][key].append(result.timings_ms[key])
    print(f"Pipeline.step, {args.threads} thread(s), model input size "
          f"{pipeline.segmenter.input_size[0]}x{pipeline.segmenter.input_size[1]}, resize "
          f"{config.resize}, output_scale {config.output_scale}; {args.rounds} rounds x "
          f"{args.frames - 1} frames per size")
    reference = statistics.median(steps[SIZES[0]])
    for size in SIZES:
        ms = steps[size]
        split = "  ".join(f"{k} {statistics.median(v):.1f}" for k, v in parts[size].items())
        print(f"{size[1]:>5}x{size[0]:<5} median {statistics.median(ms):6.1f} ms  p95 "
              f"{np.percentile(ms, 95):6.1f}  spread {min(ms):.1f}..{max(ms):.1f}  "
              f"ratio {statistics.median(ms) / reference:.3f}  ({split} ms)")


if __name__ == "__main__":
    main()
