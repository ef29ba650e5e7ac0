"""``vps-ros train``: train the segmenter from a YAML config; ``python -m vps_ros.train``
with the same arguments is the form torchrun starts once per process."""
from __future__ import annotations

import argparse
import logging

from .config import load_train_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="training config, e.g. config/train_synthetic.yaml")
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
    config = load_train_config(args.config, overrides)
    from .distributed import Distributed
    from .trainer import Trainer
    dist = Distributed.from_environment(config.device, config.distributed.timeout_minutes)
    try:
        trainer = Trainer(config, str(args.config), dist=dist)
        if args.resume:
            trainer.resume()
        path = trainer.run(args.stop_at)
    finally:
        dist.close()
    if not dist.is_main:
        return 0
    if trainer.step < config.total_steps:
        print(f"stopped at step {trainer.step} of {config.total_steps}: {path} (go on with --resume)")
    else:
        print(f"final model: {path}" + (f", exported to {config.export}" if config.export else ""))
    return 0
