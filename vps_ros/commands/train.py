"""``vps-ros train``: train the segmenter from a YAML config.

``torchrun --nproc_per_node N -m vps_ros.train --config CFG`` trains on N processes
(GPUs, or CPU processes over gloo): ``vps_ros/train/__main__.py`` calls
:func:`rank_main`, the same command with the same arguments. A user error before
training (config, dataset, backbone, checkpoint) is the same on every rank and is
printed once, by rank 0; one raised while training names its rank and step. Every rank
exits with code 2; torchrun then ends the job.
"""
from __future__ import annotations

import argparse
import logging

from ..errors import VpsRosError
from ..train.distributed import Distributed, launched_rank
from ..train.recipes import load_recipe, make_trainer, output_paths
from .exits import run_command
from .paths import check_outputs


class PeerLost(VpsRosError):
    """A rank of a torchrun job stopped: the others end with this one line."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="training recipe, e.g. config/train_synthetic.yaml, or "
                        "config/finetune_synthetic.yaml to fine-tune a transformers model")
    parser.add_argument("--device", help="cpu or cuda (overrides the config)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (overrides the config)")
    parser.add_argument("--out-dir", help="folder of checkpoints and logs (overrides the config)")
    parser.add_argument("--export", help="also write the final model here (overrides the config)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT_DIR/last.pt")
    parser.add_argument("--stop-at", type=int, metavar="STEP",
                        help="stop after this step (write OUT_DIR/last.pt; go on with --resume)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = {key: value for key, value in (("device", args.device),
                                               ("threads", args.threads),
                                               ("out_dir", args.out_dir),
                                               ("export", args.export)) if value is not None}
    config = load_recipe(args.config, overrides)
    check_outputs(**output_paths(config))
    dist = Distributed.from_environment(config.device, config.distributed.timeout_minutes)
    try:
        trainer = make_trainer(config, str(args.config), dist=dist)
        if args.resume:
            trainer.resume()
        path = trainer.run(args.stop_at)
    except RuntimeError as exc:
        if not dist.lost_peer(exc):
            raise
        raise PeerLost(f"rank {dist.rank}: stopped, another rank of this job is gone (its "
                       "connection was lost); that rank's own error, if any, is above") from None
    finally:
        dist.close()
    if not dist.is_main:
        return 0
    if trainer.step < config.total_steps:
        print(f"stopped at step {trainer.step} of {config.total_steps}: {path} (go on with --resume)")
    else:
        print(f"final model: {path}" + (f", exported to {config.export}" if config.export else ""))
    return 0



def rank_main(argv: list[str] | None = None) -> int:
    """``python -m vps_ros.train``: one process of a torchrun job, or a whole run."""
    parser = argparse.ArgumentParser(prog="python -m vps_ros.train",
                                     description="train the segmenter (one process of a "
                                     "torchrun job, or a whole one-process run)")
    add_arguments(parser)
    return run_command("train", run, parser.parse_args(argv), report=_said_by_this_rank)


def _said_by_this_rank(exc: Exception) -> bool:
    """Rank 0 prints the errors every rank meets; an error of one rank names it."""
    return launched_rank() == 0 or str(exc).startswith("rank ")
