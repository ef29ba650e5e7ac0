"""Issue 27 items 7 and 8: a bad file a user gives is one line on stderr and exit 2,
through the real ``vps-ros`` CLI (a separate process), never a traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = (ROOT / "config" / "train_synthetic.yaml").read_text()


def _cli(*args: str, cwd: Path) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-m", "vps_ros.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    return done.returncode, done.stderr.strip().splitlines()


def _one_line_error(code: int, lines: list[str], *expected: str) -> str:
    assert code == 2, lines
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def _train(tmp_path: Path, text: str | bytes) -> tuple[int, list[str]]:
    path = tmp_path / "train.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return _cli("train", "--config", str(path), "--out-dir", str(tmp_path / "run"),
                "--stop-at", "0", cwd=tmp_path)


def test_unknown_top_level_key_names_the_nearest(tmp_path: Path) -> None:
    _one_line_error(*_train(tmp_path, TRAIN.replace("\nseed: 0", "\nsede: 0")),
                    "sede (did you mean seed?)")


def test_nan_float_is_refused_naming_the_key(tmp_path: Path) -> None:
    # dice_weight's range (>= 0) alone lets NaN through: every comparison with it is false
    text = TRAIN.replace("  dice_weight: 5.0", "  dice_weight: .nan")
    _one_line_error(*_train(tmp_path, text), "loss.dice_weight", "finite")


def test_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path: Path) -> None:
    # line 3 opens a flow sequence that never closes: the parser meets the end of the
    # text at line 5 (after the last newline), column 1, looking for its "]"
    _one_line_error(*_train(tmp_path, "seed: 0\ndevice: cpu\ndata: [\nval: 1\n"),
                    "train.yaml:5:1: not valid YAML: expected ',' or ']'")


def test_binary_config_file_is_one_line(tmp_path: Path) -> None:
    _one_line_error(*_train(tmp_path, bytes(range(128, 256)) * 4), "not a text file")


@pytest.mark.parametrize("content,expected", [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n",
     "Git LFS pointer, not the weights; run git lfs pull"),
    (bytes((i * 97 + 13) % 256 for i in range(300)), "not a checkpoint"),
    # a pickle whose BINGET asks for memo entry 101: torch's safe unpickler's KeyError: 101
    (b"\x80\x02h\x65.", "truncated or not a checkpoint (KeyError: 101)"),
])
def test_junk_checkpoint_is_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(content)
    _one_line_error(*_cli("export", str(model), "--format", "onnx", "--out",
                          str(tmp_path / "m.onnx"), cwd=tmp_path), str(model), expected)


@pytest.mark.parametrize("sections,expected", [
    ("/**:\n  ros__parameters:\n    threads: 1\nperception_nodee:\n",
     "section perception_nodee (did you mean perception_node?) names no node"),
    ("/robot/perceptoin_node:\n", "section /robot/perceptoin_node (did you mean "
                                  "/robot/perception_node?) names no node"),
    ("perception:\n", "no section for perception_node: perception (did you mean "
                      "perception_node?); use perception_node or /**"),
])
def test_a_misspelled_node_section_is_refused_naming_the_nearest(tmp_path: Path,
                                                                  sections: str,
                                                                  expected: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(sections + "  ros__parameters:\n    limits:\n      export_cache_files: 3\n")
    _one_line_error(*_cli("cache", "info", "--params", str(path), cwd=tmp_path),
                    f"{path}: {expected}")


def test_sections_of_other_nodes_and_instances_are_left_to_them(tmp_path: Path) -> None:
    path = tmp_path / "robot.yaml"
    path.write_text("".join(f"{name}:\n  ros__parameters:\n    limits:\n      "
                            f"export_cache_files: {files}\n"
                            for name, files in [("perception_node", 3),
                                                ("perception_node_rear", 5),
                                                ("perception_node2", 6),
                                                ("rear_perception_node", 7),
                                                ("perception_viz", 8), ("camera", 9)]))
    done = subprocess.run([sys.executable, "-m", "vps_ros.cli", "cache", "info", "--params",
                           str(path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 exports" in done.stdout


# Output paths are checked before any work: the inputs named here do not exist, so a
# command that began its work would fail on them instead. /proc is a folder in which
# nobody, root included, can create a file.
@pytest.mark.parametrize("args,expected", [
    (["eval", "--format", "kitti-step", "--gt", "gt", "--pred", "pred", "--json", "{dir}"],
     "--json {dir} is a folder; give a file name"),
    (["eval", "--format", "kitti-step", "--gt", "gt", "--pred", "pred", "--json", "{tmp}/o.json",
      "--md", "/proc/o.md"], "--md /proc/o.md: nothing can be written in /proc"),
    (["eval", "--format", "coco-panoptic", "--gt", "gt.json", "--pred", "pred.json",
      "--gt-folder", "gt", "--pred-folder", "pred", "--json", "/proc/pq.json"],
     "--json /proc/pq.json: nothing can be written in /proc"),
    (["replay", "drive_bag", "--image-topic", "/cam", "--out", "/proc/run"],
     "--out /proc/run: nothing can be written in /proc"),
    (["replay", "a_bag", "b_bag", "--image-topic", "/cam", "--out", "{file}/run"],
     "--out {file}/run: {file} is a file, not a folder"),
    (["replay", "drive_bag", "--image-topic", "/cam", "--out", "{tmp}/run", "--record",
      "/proc/rec"], "--record /proc/rec: nothing can be written in /proc"),
    (["compare", "run_a", "run_b", "--json", "{dir}"], "--json {dir} is a folder"),
    (["compare", "run_a", "run_b", "--out", "/proc/cmp"], "--out /proc/cmp: nothing can be"),
    (["export", "model.pt", "--format", "onnx", "--out", "/proc/m.onnx"],
     "--out /proc/m.onnx: nothing can be written in /proc"),
    (["synth", "/proc/data"], "OUT /proc/data: nothing can be written in /proc"),
    (["synth", "--preview", "{dir}"], "--preview {dir} is a folder"),
    (["bag", "repair", "in_bag", "/proc/fixed"], "OUT /proc/fixed: nothing can be written"),
    (["train", "--config", "{train}", "--out-dir", "/proc/run", "--stop-at", "0"],
     "out_dir /proc/run: nothing can be written in /proc"),
])
def test_an_output_path_that_cannot_be_written_fails_before_the_work(
        tmp_path: Path, monkeypatch, capsys, args: list[str], expected: str) -> None:
    """In this process (``vps_ros.cli.main``, the console script's function): twelve
    interpreters importing torch would take a minute."""
    from vps_ros import cli
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("taken")
    (tmp_path / "train.yaml").write_text(TRAIN)
    names = {"dir": tmp_path / "folder", "file": tmp_path / "file", "tmp": tmp_path,
             "train": tmp_path / "train.yaml"}
    monkeypatch.chdir(tmp_path)
    code = cli.main([a.format(**names) for a in args])
    _one_line_error(code, capsys.readouterr().err.strip().splitlines(),
                    expected.format(**names))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "train.yaml"]
