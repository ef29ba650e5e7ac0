"""The training config: the shipped YAML validates, bad files give one clear error."""
import pytest

from vps_ros.cli import main
from vps_ros.errors import ConfigError
from vps_ros.resources import config_path
from vps_ros.train.config import load_train_config


def test_the_shipped_synthetic_config_validates():
    config = load_train_config(config_path("train_synthetic.yaml"))
    assert config.data.train.type == "synthetic" and config.data.train.split == "train"
    assert config.data.val.split == "val"
    assert config.total_steps == sum(stage.steps for stage in config.curriculum) > 0
    assert config.model.input_size == (256, 512)
    assert config.export == "models/default.pt"


def test_curriculum_stages_and_partial_sections(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("curriculum:\n  - {steps: 5, crop: [64, 128]}\n  - {steps: 7, pairs: 2}\n"
                    "data: {val: {num_frames: 3}}\n")
    config = load_train_config(path)
    assert [s.steps for s in config.curriculum] == [5, 7] and config.total_steps == 12
    assert config.curriculum[0].crop == [64, 128] and config.curriculum[1].pairs == 2
    assert config.data.val.split == "val" and config.data.val.num_frames == 3


@pytest.mark.parametrize("text, message", [
    ("curriculum:\n  - {steps: 5, crops: [64, 128]}\n",
     r"t\.yaml\.curriculum\[0\]: unknown key\(s\) crops"),
    ("curriculum:\n  - {steps: 5, crop: [64, 100]}\n",
     r"t\.yaml: curriculum\[0\]\.crop must be two multiples of 32"),
    ("curriculum:\n  - {steps: 5, scale: [1.5, 1.0]}\n",
     r"t\.yaml: curriculum\[0\]\.scale must be \(min, max\)"),
    ("model: {widths: [8, 16]}\n", r"t\.yaml: model\.widths: expected 4 values"),
    ("data: {train: {type: cityscapes}}\n", r"t\.yaml\.data\.train\.type: 'cityscapes' is not one of"),
    ("loss: {track_temperature: 0}\n", r"t\.yaml\.loss\.track_temperature: 0\.0 is out of range"),
])
def test_bad_configs_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_train_config(path)


def test_train_command_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vps-ros train: error: {tmp_path / 'missing.yaml'}: configuration file "
                   "not found"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: -1}\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "bad.yaml.optim.lr: -1.0 is out of range" in capsys.readouterr().err


def test_train_command_trains_on_synthetic_frames_and_resumes(tmp_path, capsys):
    small = ("model: {input_height: 64, input_width: 128, widths: [8, 16, 24, 32], "
             "decoder_widths: [32, 24, 16, 8, 8], num_queries: 12, query_dim: 32, num_heads: 2, "
             "ffn_dim: 32, rounds: [1, 1, 1, 1], mask_dim: 16, embed_dim: 8}\n")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'run'}\nexport: {tmp_path / 'models' / 'tiny.pt'}\n"
        "val_every: 3\ncheckpoint_every: 2\n" + small +
        "data:\n  train: {num_sequences: 2, num_frames: 3, height: 64, width: 128}\n"
        "  val: {num_sequences: 1, num_frames: 2, height: 64, width: 128}\n"
        "curriculum:\n  - {steps: 3, crop: [64, 128], pairs: 2}\n")
    assert main(["train", "--config", str(config), "--stop-at", "2"]) == 0
    assert "stopped at step 2 of 3" in capsys.readouterr().out
    assert main(["train", "--config", str(config), "--resume"]) == 0
    assert f"exported to {tmp_path / 'models' / 'tiny.pt'}" in capsys.readouterr().out
    from vps_ros.model import Segmenter
    segmenter = Segmenter.from_checkpoint(tmp_path / "models" / "tiny.pt")
    assert segmenter.classes.name == "synthetic" and segmenter.input_size == (64, 128)
    from vps_ros.model.checkpoint import load_checkpoint
    assert load_checkpoint(tmp_path / "models" / "tiny.pt").training["steps"] == 3
