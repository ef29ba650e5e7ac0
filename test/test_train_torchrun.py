"""Two real torchrun ranks (gloo, loopback) train on a KITTI-STEP folder written by
``vps-ros synth``: interrupted and resumed, they end with identical weights, equal to a
one-process run with the same global batch; bad input stops every rank with one error.

Tolerance: the two-rank run averages its gradients by an all-reduce and the one-process
run by summing two micro-batches' gradients (optim.accumulate 2: the same shards, so
the same batch-norm statistics); the float sums differ in order only, so parameters
agree to 1e-5 absolute + 1e-4 relative after 4 AdamW steps. Batch-norm running
statistics are not compared (the one-process run updates them once per micro-batch).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from testkit.train_runs import tiny_config, write_kitti, write_yaml

KIT = Path(__file__).resolve().parent.parent / "testkit"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", "2"]


def torchrun(args: list[str], cwd: Path, launcher: list[str] = TORCHRUN
             ) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(KIT.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([*launcher, str(KIT / "torchrun_ranks.py"), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_torchrun_ranks_resume_and_equal_one_process_with_the_same_global_batch(tmp_path):
    kitti = write_kitti(tmp_path / "kitti", sequences=2, frames=4)
    mapping = tiny_config(kitti, tmp_path / "ddp", steps=4, pairs=2,
                          loader={"workers": 1}, tensorboard=True)
    config = write_yaml(tmp_path / "ddp.yaml", mapping)

    first = torchrun(["--config", str(config), "--stop-at", "2"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "stopped at step 2 of 4" in first.stdout
    second = torchrun(["--config", str(config), "--resume"], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in ranks[0].items():
        torch.testing.assert_close(ranks[1][name], value, atol=0, rtol=0)
    assert (tmp_path / "ddp" / "final.pt").is_file()
    assert list((tmp_path / "ddp" / "tensorboard").glob("events.out.tfevents.*"))

    # The same code in one process (as `vps-ros train` runs it), in a process of its own
    # as in use: the test runner holds the threads of every library the suite loaded.
    single = write_yaml(tmp_path / "one.yaml", {
        **mapping, "out_dir": str(tmp_path / "one"), "tensorboard": False,
        "optim": {**mapping["optim"], "accumulate": 2}})
    one = torchrun(["--config", str(single)], tmp_path, launcher=[sys.executable])
    assert one.returncode == 0, one.stderr[-3000:]
    alone = torch.load(tmp_path / "one" / "rank0.pt", weights_only=True)
    for name, value in alone.items():
        torch.testing.assert_close(ranks[0][name], value, atol=1e-5, rtol=1e-4, msg=name)
    trained = torch.load(tmp_path / "ddp" / "final.pt", weights_only=True)
    assert trained["training"]["processes"] == 2 and trained["training"]["steps"] == 4

    missing = write_yaml(tmp_path / "bad.yaml",
                         tiny_config(tmp_path / "nowhere", tmp_path / "bad"))
    bad = torchrun(["--config", str(missing)], tmp_path)
    assert bad.returncode != 0
    errors = [line for line in bad.stderr.splitlines() if line.startswith("vps-ros train:")]
    assert errors == [f"vps-ros train: error: {tmp_path / 'nowhere' / 'images'}: KITTI-STEP "
                      f"folder not found"], bad.stderr[-3000:]


@pytest.mark.slow
def test_a_rank_that_dies_mid_run_stops_the_other_with_one_line(tmp_path, monkeypatch):
    """Rank 1 is killed (SIGKILL) as it starts step 2: rank 0, waiting in the gradient
    all-reduce, must not hang; it ends with one line saying why, no traceback."""
    import time
    kitti = write_kitti(tmp_path / "kitti", sequences=2, frames=4)
    config = write_yaml(tmp_path / "ddp.yaml", tiny_config(kitti, tmp_path / "ddp", steps=4,
                                                           pairs=2, loader={"workers": 0}))
    monkeypatch.setenv("VPS_TEST_RANK_DIES", "1:2")       # read by testkit/torchrun_ranks.py
    started = time.monotonic()
    died = torchrun(["--config", str(config)], tmp_path)
    assert time.monotonic() - started < 120
    assert died.returncode != 0
    errors = [line for line in died.stderr.splitlines() if line.startswith("vps-ros train:")]
    assert errors == ["vps-ros train: error: rank 0: stopped, another rank of this job is "
                      "gone (its connection was lost); that rank's own error, if any, is "
                      "above"], died.stderr[-3000:]
    assert "[rank0]" not in died.stderr          # the rank's traceback, not torchrun's own
    assert not (tmp_path / "ddp" / "final.pt").exists()
