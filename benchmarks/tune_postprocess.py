"""Choose the segmenter's post-processing thresholds on the synthetic val split.

    python benchmarks/tune_postprocess.py [--model models/default.pt] [--sequences 20]
        [--frames 12] [--rounds 2]

The network runs once per frame; the mask-wise merge (:func:`merge_masks`) then runs
again for every candidate setting on the stored outputs. Coordinate ascent on image PQ:
each threshold in turn takes the grid value that raises PQ most, the others held, for
``--rounds`` passes, starting from the checkpoint's thresholds. Prints every step and
the best setting as a ``postprocess:`` YAML block. The val split's seeds are disjoint
from the test split's, so the test figures of the model card stay held out.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch
from tqdm import tqdm

from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.metrics import panoptic_quality
from vps_ros.model import PostprocessConfig, Segmenter
from vps_ros.model.postprocess import merge_masks
from vps_ros.pipeline import DEFAULT_MODEL
from vps_ros.resources import model_path
from vps_ros.train.validate import segments_to_panoptic

GRID = {
    "class_threshold": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    "mask_threshold": [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7],
    "overlap_threshold": [0.5, 0.6, 0.7, 0.8],
    "min_area_thing": [0, 16, 32, 48, 64, 96, 128],
    "min_area_stuff": [0, 64, 128, 256],
    "split_things": [False, True],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(model_path(DEFAULT_MODEL)))
    parser.add_argument("--sequences", type=int, default=20)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    segmenter = Segmenter.from_checkpoint(args.model)
    dataset = SyntheticDataset("val", args.sequences, args.frames)
    outputs = []
    for frame in tqdm(dataset, total=len(dataset), desc="network", unit="frame"):
        batch = torch.from_numpy(frame.image).permute(2, 0, 1)[None].float()
        out = segmenter.run_network(batch.contiguous(memory_format=torch.channels_last))
        outputs.append((frame.panoptic, {key: value[0] for key, value in out.items()}))

    def quality(config: PostprocessConfig) -> dict:
        pairs = []
        for gt, out in outputs:
            segments = merge_masks(out["class_logits"], out["mask_logits"], out["embeddings"],
                                   segmenter.classes.is_thing_lut, segmenter.input_size, config)
            pairs.append((gt, segments_to_panoptic(segments, dataset.label_divisor,
                                                   dataset.classes.void_id)))
        return panoptic_quality(pairs, dataset.classes, dataset.label_divisor)

    best = segmenter.postprocess
    best_pq = quality(best)["PQ"]
    print(f"val split, {len(outputs)} frames; start {best}: PQ {100 * best_pq:.2f}")
    for round_ in range(args.rounds):
        for name, values in GRID.items():
            for value in values:
                config = dataclasses.replace(best, **{name: value})
                if config == best:
                    continue
                result = quality(config)
                print(f"round {round_ + 1}  {name} = {value}: PQ {100 * result['PQ']:.2f} "
                      f"(things {100 * result['PQ_things']:.2f}, "
                      f"stuff {100 * result['PQ_stuff']:.2f})", flush=True)
                if result["PQ"] > best_pq:
                    best, best_pq = config, result["PQ"]
    print(f"best: PQ {100 * best_pq:.2f}\npostprocess:")
    for field in dataclasses.fields(best):
        print(f"  {field.name}: {str(getattr(best, field.name)).lower()}")


if __name__ == "__main__":
    main()
