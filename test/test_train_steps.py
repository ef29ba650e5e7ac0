"""One optimizer step over micro-batches (gradient accumulation) and in bfloat16."""
import copy
import math

import torch

from testkit.scenes import SMALL, ToyVideos
from vps_ros.config import from_mapping, to_mapping
from vps_ros.train.batch import collate
from vps_ros.train.config import TrainConfig
from vps_ros.train.trainer import Trainer


def trainer_with(tmp_path, **overrides) -> Trainer:
    data = ToyVideos(2, 3, 64, 128)
    config = from_mapping(TrainConfig, {
        "out_dir": str(tmp_path / "run"), "tensorboard": False, "model": to_mapping(SMALL),
        "loader": {"workers": 0},
        "curriculum": [{"steps": 2, "crop": [64, 128], "pairs": 2, "scale": [0.8, 1.2]}],
        **overrides}, "test")
    return Trainer(config, "", data, data)


def test_micro_batches_give_the_mean_of_their_gradients(tmp_path):
    trainer = trainer_with(tmp_path, optim={"accumulate": 2, "grad_clip": 0.0})
    stage = trainer.stage_of(0)
    micro = [collate([trainer.pairs.sample(0, slot, stage)]) for slot in (0, 1)]
    reference = copy.deepcopy(trainer.net).train()
    grads = []
    for batch in micro:
        reference.zero_grad()
        loss, _ = trainer.criterion(reference(batch.images, aux=True), batch.targets)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in reference.named_parameters()})
    trainer.optimizer.step = lambda *args, **kwargs: None  # keep the gradients to look at
    trainer.optimize(micro)
    for name, param in trainer.net.named_parameters():
        torch.testing.assert_close(param.grad, (grads[0][name] + grads[1][name]) / 2,
                                   atol=1e-6, rtol=1e-4, msg=name)


def test_bfloat16_mixed_precision_runs_the_network_in_bfloat16_on_the_cpu(tmp_path):
    trainer = trainer_with(tmp_path, mixed_precision=True, amp_dtype="bfloat16")
    seen = []
    trainer.net.final.register_forward_hook(lambda m, i, out: seen.append(out[1].dtype))
    before = trainer.net.queries.weight.detach().clone()
    result = trainer.optimize(trainer.sample_batch(trainer.stage_of(0)))
    assert seen == [torch.bfloat16] and math.isfinite(result.loss)
    assert not torch.equal(trainer.net.queries.weight, before)
    assert not trainer.scaler.is_enabled()  # a gradient scaler only for float16
