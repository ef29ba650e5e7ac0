"""`vps-ros synth`: writes a split with its track facts, prints the statistics table,
draws the contact sheet; bad input is one line on stderr and exit code 2."""
import json
import subprocess
import sys

import cv2

from conftest import REPO
from vps_ros.cli import main
from vps_ros.data.formats.datasets import open_dataset

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
    tracks, occluded, full, pairs = counted_by_hand(out / "synth_meta_test.json")
    assert rows["test"][1:] == ["2", "40", f"{tracks / 2:.1f}",
                                f"{100 * occluded / tracks:.1f}%", str(full), str(pairs)]
    assert 0 < occluded < tracks


def counted_by_hand(meta_path) -> tuple[int, int, int, int]:
    """The table's counts from the split's track facts, one track and frame at a time:
    labelled tracks, tracks less than half visible in a frame where they are in view,
    hidden runs of at least 8 frames with the track labelled just before and after,
    and pairs of labelled tracks in one look-alike group."""
    tracks = occluded = full = pairs = 0
    for seq in json.loads(meta_path.read_text())["sequences"]:
        min_area, group_sizes = seq["min_visible_area"], {}
        for k, group in enumerate(seq["groups"]):
            visible = [row[k] for row in seq["visible"]]
            amodal = [row[k] for row in seq["amodal"]]
            if max(visible) == 0:
                continue
            tracks += 1
            occluded += any(a >= min_area and v < a / 2 for v, a in zip(visible, amodal))
            run = 0
            for t, (v, a) in enumerate(zip(visible, amodal)):
                if v == 0 and a >= min_area:
                    run += 1
                    continue
                if run >= 8 and t - run > 0 and visible[t - run - 1] > 0 and v > 0:
                    full += 1
                run = 0
            if group >= 0:
                group_sizes[group] = group_sizes.get(group, 0) + 1
        pairs += sum(n * (n - 1) // 2 for n in group_sizes.values())
    return tracks, occluded, full, pairs


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vps_ros.cli", "synth", "stats", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"vps-ros synth: error: {tmp_path}: no synth_meta_*.json "
                                     f"here; write a split with `vps-ros synth {tmp_path}`")
    result = subprocess.run([sys.executable, "-m", "vps_ros.cli", "synth"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 2 and "Traceback" not in result.stderr
