"""Run records that cannot lie (issue 27): a run's settings carry the content digests
of its model and class tables and ``--resume`` refuses any difference; a run marks its
output in progress and writes its top-level files whole at the end; SIGTERM ends like
SIGINT; messages read are checked against what the bag's index declares."""
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from testkit.pipeline_helpers import write_small_checkpoint
from testkit.replay_helpers import metrics, small_model, synthetic_frames, write_bag
from vps_ros import cli
from vps_ros.data import bags
from vps_ros.model.digest import content_digest

FRAMES = 4


@pytest.fixture
def model(tmp_path):
    return small_model(tmp_path / "model")


@pytest.fixture
def fleet_bags(tmp_path):
    for k, name in enumerate(("drive_a", "drive_b")):
        write_bag(tmp_path / "bags" / name, synthetic_frames(FRAMES, sequence=k)[1])
    return tmp_path / "bags"


def replay_argv(bag, out, model, *extra):
    return ["replay", str(bag), "--image-topic", bags.IMAGE_TOPIC, "--gt-topic",
            bags.GT_TOPIC, "--out", str(out), "--model", str(model[0]), "--params",
            str(model[1]), "--no-video", *extra]


def test_a_folder_digest_follows_every_file_name_and_byte(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        (folder / "sub").mkdir(parents=True)
        (folder / "config.json").write_text('{"a": 1}')
        (folder / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 5000)
    assert content_digest(one) == content_digest(two)
    (two / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 4999 + bytes(255) + b"\1")
    assert content_digest(one) != content_digest(two)
    (one / "config.json").rename(one / "config2.json")
    assert content_digest(one) != content_digest(two)
    file = one / "config2.json"
    assert content_digest(file) == hashlib.sha256(b'{"a": 1}').hexdigest()


def test_resume_refuses_a_checkpoint_replaced_at_the_same_path(fleet_bags, model, tmp_path,
                                                              capsys):
    out = tmp_path / "out"
    assert cli.main(replay_argv(fleet_bags, out, model)) == 0
    recorded = json.loads((out / "drives" / "drive_a.json").read_text())["settings"]
    assert recorded["model_sha256"] == hashlib.sha256(model[0].read_bytes()).hexdigest()
    assert cli.main(replay_argv(fleet_bags, out, model, "--resume")) == 0
    capsys.readouterr()

    write_small_checkpoint(model[0], seed=1)         # another model, the same path
    assert cli.main(replay_argv(fleet_bags, out, model, "--resume")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "computed with other settings (model_sha256 " in err
    assert "params" not in err.split("(", 1)[1]          # only the model is named


def test_a_single_drive_records_its_model_digest(fleet_bags, model, tmp_path):
    out = tmp_path / "single"
    assert cli.main(replay_argv(fleet_bags / "drive_a", out, model)) == 0
    settings = json.loads((out / "statistics.json").read_text())["settings"]
    assert settings["model_sha256"] == hashlib.sha256(model[0].read_bytes()).hexdigest()
    assert settings["params_sha256"] == hashlib.sha256(model[1].read_bytes()).hexdigest()
    assert len(settings["model_classes_sha256"]) == 64


def _killed_when_marked(argv, out):
    """Start the real CLI, SIGKILL it (by its PID) once it has marked ``out`` in progress."""
    process = subprocess.Popen([sys.executable, "-m", "vps_ros.cli", *argv], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "IN_PROGRESS").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it marked its folder"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("kind", ["single", "fleet"])
def test_a_rerun_killed_midway_leaves_no_finished_looking_report(kind, fleet_bags, model,
                                                                 tmp_path):
    bag = fleet_bags / "drive_a" if kind == "single" else fleet_bags
    if kind == "single":
        bag = write_bag(tmp_path / "long", synthetic_frames(30)[1])
    out = tmp_path / "out"
    assert cli.main(replay_argv(bag, out, model)) == 0
    assert metrics(out)["partial"] is False and not (out / "IN_PROGRESS").exists()
    assert (out / "report.md").exists()

    _killed_when_marked(replay_argv(bag, out, model, "--windows", "1", "2"), out)
    assert (out / "IN_PROGRESS").exists()
    assert not (out / "metrics.json").exists() and not (out / "report.md").exists()
    assert not (out / "statistics.json").exists()


@pytest.mark.parametrize("kind", ["single", "fleet"])
def test_sigterm_ends_a_replay_as_ctrl_c_does(kind, fleet_bags, model, tmp_path):
    bag = write_bag(tmp_path / "long", synthetic_frames(30)[1]) if kind == "single" \
        else fleet_bags
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "vps_ros.cli",
                                *replay_argv(bag, out, model)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "IN_PROGRESS").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it marked its folder"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr + stdout
    assert "Traceback" not in stderr and "vps-ros replay: interrupted" in stderr
    if kind == "single":
        document = metrics(out)
        assert document["partial"] is True and document["error"] == "Terminated"
        assert document["frames"] < 30
        assert "partial report written" in stdout
    else:
        assert "--resume" in stderr and not (out / "metrics.json").exists()


def _damaged_sqlite_bag(root, damage):
    """A 4-frame sqlite3 bag whose metadata.yaml still declares 4 ground-truth messages,
    with ``damage`` (SQL on the first two ground-truth rows) done to its .db3."""
    bag = write_bag(root, synthetic_frames(FRAMES)[1], bags.BagOptions(storage="sqlite3"))
    db = sqlite3.connect(next(bag.glob("*.db3")))
    gt = db.execute("SELECT id FROM topics WHERE name = ?", (bags.GT_TOPIC,)).fetchone()[0]
    rows = "id IN (SELECT id FROM messages WHERE topic_id = ? ORDER BY id LIMIT 2)"
    db.execute(damage.format(rows=rows), (gt,))
    db.commit()
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    return bag


@pytest.mark.parametrize("damage", ["DELETE FROM messages WHERE {rows}",
                                    "UPDATE messages SET topic_id = 99 WHERE {rows}"])
def test_messages_missing_from_a_sqlite_bag_make_the_replay_partial(damage, model, tmp_path,
                                                                    capsys):
    bag = _damaged_sqlite_bag(tmp_path / "bags" / "bag", damage)
    out = tmp_path / "out"
    assert cli.main(replay_argv(bag, out, model)) == 2
    line = f"fewer messages than its index declares ({bags.GT_TOPIC}: read 2 of 4)"
    assert line in capsys.readouterr().err
    document = metrics(out)
    assert document["partial"] is True and line in document["error"]

    assert cli.main(replay_argv(bag.parent, tmp_path / "fleet", model, "--workers", "1")) == 1
    row = metrics(tmp_path / "fleet")["drives"][0]
    assert line in row["error"]


def test_a_message_that_does_not_deserialize_is_named(model, tmp_path, capsys):
    bag = _damaged_sqlite_bag(tmp_path / "bag",
                              "UPDATE messages SET data = substr(data, 1, 20) WHERE {rows}")
    assert cli.main(replay_argv(bag, tmp_path / "out", model)) == 2
    err = capsys.readouterr().err
    assert f"message 1 of 4 on {bags.GT_TOPIC} (logged at 0 ns) is not a sensor_msgs/msg/Image" \
        in err and "Traceback" not in err
    assert metrics(tmp_path / "out")["partial"] is True


@pytest.mark.slow
@pytest.mark.ros
def test_a_live_replay_whose_node_is_killed_ends_partial_naming_the_frame(model, tmp_path,
                                                                          ros_env):
    """Run inside scripts/in_loopback_netns.sh: the real node over DDS, SIGKILLed by its
    PID (the replay's child) once it is active and frames are flowing."""
    frames = 50                                             # 5 s at the recorded 10 Hz
    bag = write_bag(tmp_path / "drive", synthetic_frames(frames)[1])
    out = tmp_path / "live"
    process = subprocess.Popen([sys.executable, "-m", "vps_ros.cli",
                                *replay_argv(bag, out, model, "--mode", "live")], cwd=REPO,
                               env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    log = out / "node.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "active" in log.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, "no node came up"
        time.sleep(0.05)
    time.sleep(2.0)
    children = (Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split())
    assert len(children) == 1, children                     # the node, started by the replay
    os.kill(int(children[0]), signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert "the perception node was killed by SIGKILL during the replay, before the answer " \
        "to camera frame " in stderr and "Traceback" not in stderr
    document = metrics(out)
    assert document["partial"] is True and "killed by SIGKILL" in document["error"]
    assert 0 < document["frames"] < frames
    assert document["dropped_frames"] < document["frames"]
