"""``vps-ros replay`` fleet options and fleet-only behaviour: every bad option refused in
one line with exit 2 before any drive runs; Ctrl-C's message; --resume retrying a drive
that failed; drives scored with other windows or class tables left out, not summed."""
import json
import shutil
import socket
import time

import pytest

from test_replay_fleet import DRIVES, _fails, drives, expected, fleet, model, totals  # noqa: F401
from testkit.replay_helpers import metrics
from vps_ros.replay import executors
from vps_ros.replay import fleet as fleet_module


@pytest.mark.parametrize("options,message", [
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--cpus-per-drive", "0"], "--cpus-per-drive must be positive"),
    (["--cpus-per-drive", "-1", "--ray"], "--cpus-per-drive must be positive"),
    (["--gpus-per-drive", "1"], "--cpus-per-drive and --gpus-per-drive are Ray resources: "
                                "give --ray as well"),
    (["--cpus-per-drive", "2"], "are Ray resources: give --ray as well"),
    (["--workers", "2", "--ray=127.0.0.1:6379"], "--workers sizes a local Ray cluster; the "
                                                 "cluster at 127.0.0.1:6379 has its own"),
    (["--ray=nohost"], "--ray nohost: give auto, HOST:PORT or ray://HOST:PORT"),
    (["--ray=127.0.0.1:notaport"], "give auto, HOST:PORT or ray://HOST:PORT"),
])
def test_bad_fleet_options_are_refused_before_any_drive(drives, model, tmp_path, capsys,
                                                        options, message):
    err = _fails(capsys, [drives["drive_a"].bag, drives["drive_b"].bag], tmp_path / "out",
                 model, *options)
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "drives").exists()


def test_a_path_given_to_ray_is_named(drives, model, tmp_path, capsys):
    bag = drives["drive_a"].bag
    err = _fails(capsys, [drives["drive_b"].bag], tmp_path / "out", model, f"--ray={bag}")
    assert f"--ray took {str(bag)!r} as the cluster address, but it is a path" in err


def test_a_missing_list_and_an_out_that_is_a_file(drives, model, tmp_path, capsys):
    err = _fails(capsys, [f"@{tmp_path / 'absent.txt'}"], tmp_path / "out", model)
    assert f"{tmp_path / 'absent.txt'}: list of bags not found" in err
    (tmp_path / "taken").write_text("a file")
    err = _fails(capsys, [drives["drive_a"].bag, drives["drive_b"].bag], tmp_path / "taken",
                 model)
    assert f"--out {tmp_path / 'taken'} is a file, not a folder" in err
    assert (tmp_path / "taken").read_text() == "a file"


def test_ctrl_c_says_where_the_finished_drives_are_and_how_to_go_on(drives, model, tmp_path,
                                                                    capsys, monkeypatch):
    real = fleet_module.score_drive
    calls = []

    def interrupted_second(job):       # Ctrl-C while the second drive runs
        calls.append(job.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)
    monkeypatch.setattr(fleet_module, "score_drive", interrupted_second)
    out = tmp_path / "out"
    assert fleet([drives["drive_a"].bag.parent], out, model) == 130
    err = capsys.readouterr().err
    assert (f"vps-ros replay: stopped; the finished drives are in {out / 'drives'}: run the "
            "same command with --resume to go on") in err
    assert [p.stem for p in (out / "drives").glob("*.json")] == [calls[0]]


def test_resume_retries_a_drive_that_failed(drives, model, tmp_path):
    folder = tmp_path / "bags"
    shutil.copytree(drives["drive_a"].bag.parent, folder)
    data = next(p for p in (folder / "drive_b").iterdir() if p.suffix == ".mcap")
    whole = data.read_bytes()
    data.write_bytes(whole[:600])                      # cut before its first message
    out = tmp_path / "out"
    assert fleet([folder], out, model) == 1
    assert metrics(out)["drives_failed"] == 1
    data.write_bytes(whole)                            # the drive copied again, whole
    assert fleet([folder], out, model, "--resume") == 0
    document = metrics(out)
    assert document["resumed_drives"] == 2 and document["drives_failed"] == 0
    assert totals(document) == totals(expected(drives, DRIVES))


@pytest.mark.parametrize("change,named", [
    (lambda data: data.update(windows=[1, 2]), "windows [1, 2]"),
    (lambda data: data["classes"].update(name="other"), "class table 'other'"),
])
def test_drives_scored_with_other_windows_or_classes_are_left_out(drives, model, tmp_path,
                                                                 change, named):
    folder, out = drives["drive_a"].bag.parent, tmp_path / "out"
    assert fleet([folder], out, model) == 0
    path = out / "drives" / "drive_c.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    assert fleet([folder], out, model, "--resume") == 1
    document = metrics(out)
    row = next(r for r in document["drives"] if r["drive"] == "drive_c")
    assert named in row["error"] and "left out" in row["error"]
    assert document["drives_failed"] == 1
    assert totals(document) == totals(expected(drives, ["drive_a", "drive_b"]))


@pytest.mark.slow
def test_on_ray_a_failing_drive_is_reported_and_a_drive_too_big_is_refused(drives, model,
                                                                          tmp_path, capsys):
    """Run inside scripts/in_loopback_netns.sh. A drive that fails in a Ray task is a row
    with its error, like in a process; a drive asking more than the local cluster has
    would wait for ever: refused at once."""
    broken = tmp_path / "bags" / "drive_0_broken"
    shutil.copytree(drives["drive_a"].bag, broken)
    data = next(p for p in broken.iterdir() if p.suffix == ".mcap")
    data.write_bytes(data.read_bytes()[:600])
    paths = [drives["drive_b"].bag, broken]
    assert fleet(paths, tmp_path / "ray", model, "--ray", "--workers", "2") == 1
    document = metrics(tmp_path / "ray")
    assert document["executor"] == "Ray, local cluster of 2 CPUs"
    assert "no complete message" in document["drives"][0]["error"]
    assert totals(document) == totals(expected(drives, ["drive_b"]))
    capsys.readouterr()
    err = _fails(capsys, paths, tmp_path / "big", model, "--ray", "--workers", "1",
                 "--gpus-per-drive", "64")
    assert "a drive asks for 64 GPUs (--gpus-per-drive) but the local Ray cluster has" in err
    # a real cluster's GCS passes the check that --ray ADDRESS makes before joining
    local = executors.RayTasks(None, 1, 1.0, 0.0)
    try:
        executors.check_reachable(local._ray.get_runtime_context().gcs_address, 10)
    finally:
        local.close()


def test_an_address_that_accepts_and_never_answers_fails_after_the_timeout(drives, model,
                                                                          tmp_path, capsys):
    """A listening socket of the test that reads nothing: the connection is accepted (by
    the kernel), so only the wait for Ray's answer can end the run."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        started = time.monotonic()
        err = _fails(capsys, [drives["drive_a"].bag, drives["drive_b"].bag], tmp_path / "out",
                     model, f"--ray=127.0.0.1:{port}")
        waited = time.monotonic() - started
    assert 10 <= waited < 40          # the 10 s timeout fired, not an instant refusal
    assert (f"--ray 127.0.0.1:{port}: something listens there but did not answer as a Ray "
            "cluster (gRPC) within 10 s") in err
    assert not (tmp_path / "out").exists()
