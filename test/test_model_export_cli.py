"""`vps-ros export`: writes a file that loads alone and matches torch, refuses one that
does not, and answers bad arguments with one line and exit code 2."""
import filecmp
import re

import numpy as np
import pytest

from testkit.pipeline_helpers import write_small_checkpoint
from vps_ros.cli import main
from vps_ros.commands import export as export_command
from vps_ros.data.synthetic.dataset import SyntheticDataset
from vps_ros.model.engines import quantize
from vps_ros.model.registry import LoadOptions, open_segmenter
from vps_ros.types import ClassTable, FrameSegments


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


def test_an_int8_export_is_left_where_the_node_opens_it_without_quantizing(
        checkpoint, tmp_path, capsys, monkeypatch):
    """--quantization int8 writes the NNCF-quantized IR to --out and to the export cache;
    the checkpoint opened afterwards with quantization int8 (as the node opens it) runs
    that IR, and quantizing again would fail this test."""
    monkeypatch.setenv("VPS_ROS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "small-int8.xml"
    assert main(["export", str(checkpoint), "--format", "openvino", "--quantization", "int8",
                 "--out", str(out), "--frames", "1"]) == 0
    assert "-> openvino INT8 (128x64), checked with openvino" in capsys.readouterr().out
    cached = list((tmp_path / "cache" / "exports").glob("*-int8.xml"))
    assert len(cached) == 1
    assert filecmp.cmp(cached[0], out, shallow=False)
    assert filecmp.cmp(cached[0].with_suffix(".bin"), out.with_suffix(".bin"), shallow=False)

    def quantize_again(*args, **kwargs):
        raise AssertionError("quantized again instead of opening the cached INT8 IR")
    monkeypatch.setattr(quantize, "quantize_int8", quantize_again)
    node = open_segmenter(str(checkpoint), LoadOptions(backend="openvino", quantization="int8",
                                                       threads=1))
    image = next(iter(SyntheticDataset("test", 1, 1, 64, 128))).image
    got = node.segment([image])[0]
    assert node.backend == "openvino" and not node.fallback
    written = open_segmenter(str(out), LoadOptions(backend="openvino", threads=1))
    expected = written.segment([image])[0]
    assert np.array_equal(got.segment_map, expected.segment_map)
    assert np.array_equal(got.scores, expected.scores)


def test_the_segments_agreement_is_blind_to_their_order_not_to_their_pixels():
    """PQ with torch's segments as the ground truth, by hand: the same two segments in
    the other order agree fully (though no segment-map pixel is equal); one of the two
    missing leaves its class at 0 and the other at 1, PQ 0.5."""
    classes = ClassTable.builtin("synthetic")
    thing, stuff = (int(np.flatnonzero(classes.is_thing_lut == kind)[0]) for kind in (True, False))

    def frame(left, right, class_ids):
        segment_map = np.full((4, 6), left, np.int32)
        segment_map[:, 3:] = right
        n = len(class_ids)
        return FrameSegments(segment_map, np.array(class_ids, np.int32), np.ones(n, np.float32),
                             classes.is_thing_lut[class_ids], np.zeros((n, 4), np.float32),
                             np.bincount(segment_map[segment_map >= 0], minlength=n),
                             np.ones((n, 2), np.float32))
    torch_side = frame(0, 1, [thing, stuff])
    swapped = frame(1, 0, [stuff, thing])
    half = frame(0, -1, [thing])
    assert not (torch_side.segment_map == swapped.segment_map).any()
    assert export_command.panoptic_agreement([(torch_side, swapped)], classes) == 1.0
    assert export_command.panoptic_agreement([(torch_side, half)], classes) == 0.5


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
    (["--format", "openvino", "--out", "x.xml", "--quantization", "int4"],
     "--quantization int4: not one of auto, none, int8"),
    (["--format", "onnx", "--out", "x.onnx", "--quantization", "int8"],
     "--quantization int8: an INT8 network is an OpenVINO IR; use --format openvino"),
])
def test_bad_arguments_are_one_line_and_exit_code_2(checkpoint, args, message, capsys):
    assert main(["export", str(checkpoint), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("vps-ros export: error:")


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.pt"), "--format", "onnx", "--out",
                 str(tmp_path / "x.onnx")]) == 2
    assert "none.pt: checkpoint file not found" in capsys.readouterr().err
