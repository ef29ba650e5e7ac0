"""`vps-ros synth`: writes a split with its track facts, prints the statistics table,
draws the contact sheet; bad input is one line on stderr and exit code 2."""
import subprocess
import sys

import cv2

from conftest import REPO
from vps_ros.cli import main
from vps_ros.data.datasets import open_dataset
from vps_ros.data.synth_stats import read_meta, split_stats

SMALL = ["--sequences", "2", "--frames", "20", "--height", "64", "--width", "128"]


def test_synth_writes_a_split_its_statistics_and_a_contact_sheet(tmp_path, capsys):
    out, sheet = tmp_path / "out", tmp_path / "sheet.png"
    assert main(["synth", str(out), "--split", "test", *SMALL, "--preview", str(sheet)]) == 0
    frames = list(open_dataset("cityscapes-vps", out))
    assert len(frames) == 40 and sum(f.panoptic is not None for f in frames) == 8
    image = cv2.imread(str(sheet))
    assert image.shape == (2 * 2 * 64 + 4, 4 * 128 + 3 * 4, 3)

    assert main(["synth", str(out), "--split", "val", "--format", "rosbag2", "--storage", "sqlite3",
                 *SMALL]) == 0
    assert sorted(p.name for p in (out / "val").iterdir()) == ["0000", "0001"]
    capsys.readouterr()
    assert main(["synth", "stats", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["split", "sequences", "frames"]
    rows = {line.split()[0]: line.split() for line in table[2:]}
    assert set(rows) == {"test", "val"}
    stats = split_stats(*read_meta(out / "synth_meta_test.json"))
    assert rows["test"][1:4] == ["2", "40", f"{stats.tracks_per_sequence:.1f}"]
    assert rows["test"][5:] == [str(stats.full_occlusions), str(stats.lookalike_pairs)]


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vps_ros.cli", "synth", "stats", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"vps-ros synth: error: {tmp_path}: no synth_meta_*.json "
                                     f"here; write a split with `vps-ros synth {tmp_path}`")
    result = subprocess.run([sys.executable, "-m", "vps_ros.cli", "synth"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 2 and "Traceback" not in result.stderr
