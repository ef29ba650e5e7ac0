"""The training loop on hand-made videos: steps lower the loss, a tiny model overfits
two frames, resume continues exactly, checkpoints hold what the model card needs."""
import json
import sys

import pytest
import torch

from testkit.scenes import CLASSES, SMALL, ToyVideos
from vps_ros.config import from_mapping, to_mapping
from vps_ros.errors import ConfigError, DataError
from vps_ros.model import Segmenter
from vps_ros.model.checkpoint import load_checkpoint
from vps_ros.train.config import TrainConfig
from vps_ros.train.trainer import Trainer
from vps_ros.train.validate import panoptic_quality_of

STILL = {"flip": 0.0, "brightness": 0.0, "contrast": 0.0, "saturation": 0.0}


def config(tmp_path, steps, **overrides):
    mapping = {"out_dir": str(tmp_path / "run"), "val_every": 1000, "checkpoint_every": 1000,
               "model": to_mapping(SMALL),
               "curriculum": [{"steps": steps, "crop": [64, 128], "pairs": 2,
                               "scale": [0.8, 1.2]}],
               "optim": {"warmup_steps": 2}, **overrides}
    return from_mapping(TrainConfig, mapping, "test")


def test_training_steps_lower_the_loss_of_their_batch(tmp_path):
    """The loss is not smooth in the weights (argmax cluster assignment, Hungarian
    matching), so a single tiny step may go either way; a few steps must go down."""
    trainer = Trainer(config(tmp_path, 100, optim={"lr": 3e-3, "warmup_steps": 0}), "",
                      ToyVideos(2, 3, 64, 128), ToyVideos(1, 1, 64, 128))
    batch = trainer.sample_batch(trainer.stage_of(0))
    before = {k: v.detach().clone() for k, v in trainer.net.named_parameters()}
    losses = [trainer.optimize(batch).loss for _ in range(8)]
    trainer.net.train()
    after, _ = trainer.criterion(trainer.net(batch.images, aux=True), batch.targets)
    assert float(after.detach()) < 0.9 * losses[0], losses
    unchanged = [k for k, v in trainer.net.named_parameters() if torch.equal(v, before[k])]
    assert unchanged == []


@pytest.mark.slow
def test_a_tiny_model_overfits_two_frames(tmp_path):
    frames = ToyVideos(1, 2, 64, 128, seed=3, things=3)
    cfg = config(tmp_path, 300, augment=STILL, optim={"lr": 2e-3, "warmup_steps": 20},
                 curriculum=[{"steps": 300, "crop": [64, 128], "pairs": 1, "scale": [1.0, 1.0]}])
    torch.manual_seed(0)
    trainer = Trainer(cfg, "", frames, frames)
    trainer.run()
    result = panoptic_quality_of(trainer.segmenter(), list(frames), frames.label_divisor)
    assert result["PQ"] > 0.9, result


def test_resume_continues_exactly_where_training_stopped(tmp_path):
    data = ToyVideos(2, 3, 64, 128)
    whole = Trainer(config(tmp_path / "a", 4), "", data, data)
    whole.run()
    first = Trainer(config(tmp_path / "b", 4, checkpoint_every=100), "", data, data)
    assert first.run(stop_at=2) == tmp_path / "b" / "run" / "last.pt"
    assert not (tmp_path / "b" / "run" / "final.pt").exists()
    second = Trainer(config(tmp_path / "b", 4), "", data, data)
    second.resume()
    assert second.step == 2
    second.run()
    for key, value in whole.net.state_dict().items():
        assert torch.equal(second.net.state_dict()[key], value), key


def test_checkpoints_hold_weights_config_classes_and_training_facts(tmp_path):
    data = ToyVideos(2, 3, 64, 128)
    cfg = config(tmp_path, 3, val_every=2, export=str(tmp_path / "models" / "toy.pt"))
    final = Trainer(cfg, "config/toy.yaml", data, data).run()
    run_dir = tmp_path / "run"
    assert final == run_dir / "final.pt"
    for name in ("final.pt", "last.pt", "best.pt"):
        assert (run_dir / name).is_file()
    exported = load_checkpoint(tmp_path / "models" / "toy.pt")
    assert exported.classes == CLASSES and exported.net.config == SMALL
    facts = exported.training
    assert facts["steps"] == 3 and facts["config_file"] == "config/toy.yaml"
    assert facts["config"]["curriculum"][0]["steps"] == 3
    assert facts["train_frames"] == 6 and facts["train_seconds"] > 0
    assert "cores" in facts["machine"]
    # three steps from random weights: at the checkpoint's thresholds the exported
    # model finds no segment in the validation frames, so every figure is 0
    found = Segmenter.from_checkpoint(tmp_path / "models" / "toy.pt").segment(
        [f.image for f in data])
    assert [s.num_segments for s in found] == [0] * 6
    assert facts["val"] == {"PQ": 0.0, "PQ_things": 0.0, "PQ_stuff": 0.0, "SQ": 0.0, "RQ": 0.0}
    assert facts["best_val_pq"] == 0.0
    json.dumps(facts)
    assert "optimizer" not in torch.load(tmp_path / "models" / "toy.pt", weights_only=True)
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3]
    assert [h["step"] for h in history if "val" in h] == [2, 3]
    segmenter = Segmenter.from_checkpoint(final)
    assert len(segmenter.segment([next(iter(data)).image])) == 1


def test_a_stop_step_already_reached_is_refused(tmp_path):
    data = ToyVideos(2, 3, 64, 128)
    first = Trainer(config(tmp_path, 4, checkpoint_every=100), "", data, data)
    with pytest.raises(ConfigError, match="stop at step 0: training is at step 0 already"):
        first.run(stop_at=0)
    first.run(stop_at=2)
    again = Trainer(config(tmp_path, 4), "", data, data)
    again.resume()
    with pytest.raises(ConfigError, match="stop at step 2: training is at step 2 already"):
        again.run(stop_at=2)


def test_an_error_while_validating_names_the_step_that_ran(tmp_path):
    """Validation follows step 2 (val_every 2); its error belongs to step 2, not 3."""
    data = ToyVideos(2, 3, 64, 128)
    trainer = Trainer(config(tmp_path, 4, val_every=2), "", data, data)

    def no_frames() -> None:
        raise DataError("val frames: the dataset has no annotated frames")
    trainer.validate = no_frames
    with pytest.raises(DataError, match="^rank 0, step 2: val frames"):
        trainer.run()


def test_tensorboard_without_its_package_says_how_to_get_it(tmp_path, monkeypatch):
    from vps_ros.train.events import EventLog
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"pip install 'vps_ros\[train\]'\), or set "
                       "tensorboard: false"):
        EventLog(tmp_path / "tensorboard")
