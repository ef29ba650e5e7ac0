"""Start-up checks of a distributed run that need no second process: more processes
than GPUs, and a resume checkpoint of another model config."""
import pytest
import torch

from testkit.scenes import SMALL, ToyVideos
from vps_ros.config import from_mapping, to_mapping
from vps_ros.errors import CheckpointError, ConfigError
from vps_ros.train import distributed
from vps_ros.train.config import TrainConfig
from vps_ros.train.trainer import Trainer


def test_more_processes_per_node_than_gpus_is_refused_before_joining(monkeypatch):
    """Unit test of the check alone: this machine has no GPU, so CUDA is faked."""
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    joined = []
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda *a, **k: joined.append(1))
    with pytest.raises(ConfigError, match=r"--nproc_per_node 4 asks for one GPU per process, "
                                          r"but this machine has 2"):
        distributed.Distributed.from_environment("cuda")
    assert joined == []


def test_resuming_from_a_checkpoint_of_another_model_config_is_refused(tmp_path):
    data = ToyVideos(1, 3, 64, 128)

    def config(queries):
        return from_mapping(TrainConfig, {
            "out_dir": str(tmp_path / "run"), "tensorboard": False, "val_every": 100,
            "loader": {"workers": 0}, "model": {**to_mapping(SMALL), "num_queries": queries},
            "curriculum": [{"steps": 2, "crop": [64, 128], "pairs": 1, "scale": [1, 1]}]},
            "test")

    Trainer(config(12), "a.yaml", data, data).run(stop_at=1)
    other = Trainer(config(16), "b.yaml", data, data)
    with pytest.raises(CheckpointError, match=r"last\.pt: written for another model config "
                                              r"than b\.yaml's"):
        other.resume()
