"""``python -m vps_ros.train`` as torchrun starts it, plus one thing for the torchrun
test: every rank saves the parameters it holds at the end to OUT_DIR/rankR.pt (only
rank 0 writes checkpoints, so the other ranks' weights are not otherwise visible);
and with VPS_TEST_RANK_DIES=R:STEP, rank R dies (SIGKILL) when it starts that step."""
import os
import signal
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

_optimize = trainer.Trainer.optimize


def _optimize_or_die(self, batches):
    rank, _, step = os.environ.get("VPS_TEST_RANK_DIES", "-1:0").partition(":")
    if self.dist.rank == int(rank) and self.step + 1 == int(step):
        os.kill(os.getpid(), signal.SIGKILL)
    return _optimize(self, batches)


trainer.Trainer.optimize = _optimize_or_die

if __name__ == "__main__":
    sys.exit(main())
