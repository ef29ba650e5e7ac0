"""`make demo`'s script end to end on a short drive: synthetic bag, live replay through
the real node with the shipped model, report files and the printed table."""
import json
import subprocess
from pathlib import Path

import pytest

from vps_ros.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.ros
def test_demo_script_writes_the_report_of_a_live_lossless_replay(tmp_path, ros_env):
    env = dict(ros_env, VPS_ROS_DEMO_OUT=str(tmp_path), VPS_ROS_DEMO_FRAMES="6")
    done = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = tmp_path / "report"
    for name in ("report.md", "metrics.json", "overlay_contact_sheet.png",
                 "tracks_timeline.png"):
        assert (report / name).is_file(), name
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["mode"] == "live" and metrics["lossless"] is True
    assert metrics["frames"] == metrics["annotated_frames"] == 6
    assert metrics["dropped_frames"] == 0 and metrics["partial"] is False
    # lossless: the scores of the same drive replayed offline (in this process, no DDS)
    bag = tmp_path / "drive" / "test" / "0000"
    assert main(["replay", str(bag), "--image-topic", "/camera/image_raw", "--gt-topic",
                 "/gt/panoptic", "--out", str(tmp_path / "offline"), "--no-video"]) == 0
    offline = json.loads((tmp_path / "offline" / "metrics.json").read_text())
    scores = ("VPQ", "VPQ_things", "VPQ_stuff", "STQ", "AQ", "SQ", "per_class")
    assert {k: metrics[k] for k in scores} == {k: offline[k] for k in scores}
    assert metrics["VPQ"] > 0 and metrics["STQ"] > 0
    assert "VPQ" in done.stdout and str(report) in done.stdout
    assert (tmp_path / "outputs" / "metadata.yaml").is_file()
