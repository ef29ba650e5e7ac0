"""``python -m vps_ros.train --config CFG``: what torchrun starts in every process.

``torchrun --nproc_per_node N -m vps_ros.train --config CFG`` trains on N processes
(GPUs, or CPU processes over gloo); without torchrun it is ``vps-ros train``. A user
error before training (config, dataset, backbone, checkpoint) is the same on every rank
and is printed once, by rank 0; one raised while training names its rank and step.
Every rank exits with code 2; torchrun then ends the job.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import VpsRosError
from . import cli
from .distributed import launched_rank


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vps_ros.train",
                                     description="train the segmenter (one process of a "
                                     "torchrun job, or a whole one-process run)")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cli.run(args)
    except VpsRosError as exc:
        if launched_rank() == 0 or str(exc).startswith("rank "):
            print(f"vps-ros train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vps-ros train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
