"""``python -m vps_ros.train`` as torchrun starts it, plus one thing for the torchrun
test: every rank saves the parameters it holds at the end to OUT_DIR/rankR.pt (only
rank 0 writes checkpoints, so the other ranks' weights are not otherwise visible)."""
import sys

import torch

from vps_ros.train import trainer
from vps_ros.commands.train import rank_main as main

_run = trainer.Trainer.run


def _run_and_keep_weights(self, stop_at=None):
    path = _run(self, stop_at)
    torch.save({k: v.detach().clone() for k, v in self.net.named_parameters()},
               self.out_dir / f"rank{self.dist.rank}.pt")
    return path


trainer.Trainer.run = _run_and_keep_weights

if __name__ == "__main__":
    sys.exit(main())
