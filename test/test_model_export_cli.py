"""`vps-ros export`: writes a file that loads alone and matches torch, refuses one that
does not, and answers bad arguments with one line and exit code 2."""
import re

import pytest

from testkit.pipeline_helpers import write_small_checkpoint
from vps_ros.cli import main
from vps_ros.commands import export as export_command
from vps_ros.model.registry import LoadOptions, open_segmenter


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_small_checkpoint(tmp_path_factory.mktemp("cli") / "small.pt")


def test_export_checks_against_torch_and_writes_a_loadable_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "exports" / "small.xml"
    assert main(["export", str(checkpoint), "--format", "openvino", "--out", str(out),
                 "--frames", "2"]) == 0
    printed = capsys.readouterr().out
    assert "checked with openvino against torch on 2 frames" in printed
    diffs = [float(x) for x in re.findall(r"max abs difference (\S+)", printed)]
    assert len(diffs) == 3 and all(d <= 1e-3 for d in diffs)
    assert out.is_file() and out.with_suffix(".bin").is_file()
    assert open_segmenter(str(out), LoadOptions(backend="openvino")).input_size == (64, 128)


def test_an_export_beyond_the_tolerance_is_not_written(checkpoint, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.setattr(export_command, "TOLERANCE", 0.0)   # any difference is too much
    out = tmp_path / "small.onnx"
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(out),
                 "--height", "32", "--width", "64", "--frames", "1"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"differs from torch by \S+ \(> tolerance 0e\+00\): not written", err)
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx", "--out", "x.xml"], "a onnx export is written as *.onnx"),
    (["--format", "onnx", "--out", "x.onnx", "--height", "100", "--width", "64"],
     "--height 100 --width 64: give both"),
    (["--format", "openvino", "--out", "x.xml", "--frames", "0"], "--frames 0"),
])
def test_bad_arguments_are_one_line_and_exit_code_2(checkpoint, args, message, capsys):
    assert main(["export", str(checkpoint), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("vps-ros export: error:")


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.pt"), "--format", "onnx", "--out",
                 str(tmp_path / "x.onnx")]) == 2
    assert "none.pt: checkpoint file not found" in capsys.readouterr().err
