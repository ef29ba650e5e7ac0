"""``vps-ros replay`` of several drives: one report whose totals are the metric core's
sums over every drive's sequences (the same as ``vps-ros eval`` on the recorded
predictions), whatever runs the drives (this process, processes, Ray); a corrupt
drive among good ones; resume after a run killed midway; bad input."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import pytest

from conftest import REPO
from testkit.replay_helpers import cut_inside_frame, metrics, panoptic_of, recorded, replay, small_model
from testkit.replay_helpers import synthetic_frames, write_bag
from vps_ros import cli
from vps_ros.data import bags
from vps_ros.data.formats import kitti_step
from vps_ros.data.frames import VideoFrame
from vps_ros.metrics import evaluate_sequences
from vps_ros.replay import executors
from vps_ros.replay.executors import WORKER_DIED, Processes
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
CONTRACT = ("VPQ", "VPQ_windows", "VPQ_things", "VPQ_things_windows", "VPQ_stuff",
            "VPQ_stuff_windows", "STQ", "AQ", "SQ", "num_tracks", "num_sequences",
            "num_frames", "per_class")
DRIVES = ("drive_a", "drive_b", "drive_c")
FRAMES = 5


@dataclass
class Drive:
    bag: object
    frames: list
    predictions: list          # the single-drive replay's recorded panoptic outputs
    single: dict               # that replay's metrics.json


@pytest.fixture(autouse=True)
def _ray_variables_restored(monkeypatch):
    """Starting Ray sets these in os.environ (import_ray); each test leaves them as it
    found them. setenv first: delenv of an unset variable records nothing to restore."""
    for name in ("RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
        if not os.environ[name]:
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def drives(tmp_path_factory, model) -> dict[str, Drive]:
    """Three short drives in one folder, each replayed alone with --record."""
    root = tmp_path_factory.mktemp("fleet")
    found = {}
    for k, name in enumerate(reversed(DRIVES)):      # name order is not sequence order
        frames = synthetic_frames(FRAMES, sequence=k)[1]
        bag = write_bag(root / "bags" / name, frames)
        out = root / "single" / name
        assert replay(bag, out, *model, "--no-video", "--record", str(out / "outputs")) == 0
        predictions = [panoptic_of(m) for _, m in recorded(out / "outputs")["/camera/panoptic"]]
        found[name] = Drive(bag, frames, predictions, metrics(out))
    return found


def fleet(paths, out, model, *extra) -> int:
    return cli.main(["replay", *map(str, paths), "--image-topic", bags.IMAGE_TOPIC,
                     "--gt-topic", bags.GT_TOPIC, "--out", str(out), "--model", str(model[0]),
                     "--params", str(model[1]), *extra])


def expected(drives: dict[str, Drive], names) -> dict:
    """The metric core over the chosen drives' recorded predictions, in name order."""
    return evaluate_sequences([[(f.panoptic, p) for f, p in zip(drives[n].frames,
                                                                 drives[n].predictions)]
                               for n in sorted(names)], CLASSES, 1000, (1, 2, 3, 4))


def totals(document: dict) -> dict:
    return {k: document[k] for k in CONTRACT}


class _Frames:
    """A VideoDataset of given frames, for the KITTI-STEP writer."""

    def __init__(self, frames):
        self.frames, self.classes, self.label_divisor = frames, CLASSES, 1000

    def __iter__(self):
        return iter(self.frames)


def test_one_process_and_two_workers_give_the_totals_of_vps_ros_eval(drives, model,
                                                                      tmp_path, capsys):
    folder = drives["drive_a"].bag.parent
    assert fleet([folder], tmp_path / "one", model) == 0
    assert fleet([folder], tmp_path / "two", model, "--workers", "2") == 0
    printed = capsys.readouterr().out
    assert "3 drives" in printed and "2 processes" in printed
    one, two = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert totals(one) == totals(two) == totals(expected(drives, DRIVES))

    # vps-ros eval on the same predictions, through KITTI-STEP files
    truth, predicted = [], []
    for name in DRIVES:
        for f, p in zip(drives[name].frames, drives[name].predictions):
            truth.append(VideoFrame(name, f.index, f.stamp_ns, f.image, f.panoptic))
            predicted.append(VideoFrame(name, f.index, f.stamp_ns, f.image, p))
    kitti_step.write(_Frames(truth), tmp_path / "gt")
    kitti_step.write(_Frames(predicted), tmp_path / "pred")
    assert cli.main(["eval", "--format", "kitti-step", "--gt", str(tmp_path / "gt"), "--pred",
                     str(tmp_path / "pred"), "--classes", "synthetic", "--windows", "1", "2",
                     "3", "4", "--json", str(tmp_path / "eval.json")]) == 0
    assert totals(one) == totals(json.loads((tmp_path / "eval.json").read_text()))

    # one row per drive, its figures those of the drive replayed alone, worst first
    rows = {row["drive"]: row for row in one["drives"]}
    assert set(rows) == set(DRIVES) and one["num_drives"] == 3 and one["drives_failed"] == 0
    for name in DRIVES:
        for key in ("VPQ", "STQ", "AQ", "frames", "dropped_frames", "id_switches"):
            assert rows[name][key] == drives[name].single[key]
    quality = {n: tuple(drives[n].single[k] for k in ("VPQ", "STQ", "AQ")) for n in DRIVES}
    assert [r["drive"] for r in one["drives"]] == sorted(DRIVES, key=lambda n: (quality[n], n))
    assert one["frames"] == one["annotated_frames"] == 3 * FRAMES
    report = (tmp_path / "one" / "report.md").read_text()
    assert "## Drives, worst first" in report
    assert report.index(one["drives"][0]["drive"]) < report.index(one["drives"][-1]["drive"])


def test_a_corrupt_drive_is_reported_in_its_row_and_left_out_of_the_totals(drives, model,
                                                                           tmp_path):
    broken = write_bag(tmp_path / "drive_0_broken", drives["drive_a"].frames)
    data = next(p for p in broken.iterdir() if p.suffix == ".mcap")
    data.write_bytes(data.read_bytes()[:600])          # cut before its first message
    paths = [drives["drive_b"].bag, broken, drives["drive_c"].bag]
    assert fleet(paths, tmp_path / "out", model) == 1
    document = metrics(tmp_path / "out")
    assert totals(document) == totals(expected(drives, ["drive_b", "drive_c"]))
    assert document["drives_failed"] == 1 and document["drives_scored"] == 2
    assert "1 of 3 drives failed" in document["metrics_note"]
    first = document["drives"][0]
    assert first["drive"] == "drive_0_broken" and "no complete message" in first["error"]
    assert "drive_0_broken" in (tmp_path / "out" / "report.md").read_text()


def test_a_drive_cut_midway_is_scored_as_far_as_it_goes_and_marked_partial(drives, model,
                                                                          tmp_path):
    cut = write_bag(tmp_path / "drive_cut", drives["drive_a"].frames)
    data = next(p for p in cut.iterdir() if p.suffix == ".mcap")
    data.write_bytes(data.read_bytes()[: data.stat().st_size * 3 // 4])
    (cut / "metadata.yaml").unlink()                 # as a killed recorder leaves it
    assert fleet([drives["drive_b"].bag, cut], tmp_path / "out", model) == 0
    document = metrics(tmp_path / "out")
    row = next(r for r in document["drives"] if r["drive"] == "drive_cut")
    assert row["partial"] is True and row["error"] is None
    assert 0 < row["frames"] < FRAMES
    assert row["recovered"]["messages"][bags.IMAGE_TOPIC] == row["frames"]
    assert document["drives_scored"] == 2 and document["frames"] == FRAMES + row["frames"]


def test_a_recovered_drive_without_a_complete_frame_fails_as_it_does_alone(drives, model,
                                                                           tmp_path, capsys):
    """Its first frame has no ground truth and the recording was cut inside the second:
    that ground truth may be what was lost, so not one frame is complete."""
    first, second = drives["drive_a"].frames[:2]
    bag = write_bag(tmp_path / "drive_0_empty", [dataclasses.replace(first, panoptic=None),
                                                 second])
    cut_inside_frame(bag, 1)
    reason = f"{bag}: no complete frame of the replayed topics was recovered"
    assert replay(bag, tmp_path / "alone", *model, "--no-video") == 2
    assert reason in capsys.readouterr().err
    assert fleet([drives["drive_b"].bag, bag], tmp_path / "out", model) == 1
    document = metrics(tmp_path / "out")
    assert document["drives_failed"] == 1 and document["drives_scored"] == 1
    row = next(r for r in document["drives"] if r["drive"] == "drive_0_empty")
    assert row["error"].startswith(reason) and row["partial"] is True
    assert totals(document) == totals(expected(drives, ["drive_b"]))


def test_a_folder_of_drive_files_is_a_fleet_and_split_files_are_one_drive(drives, model,
                                                                          tmp_path):
    folder = tmp_path / "drives"
    folder.mkdir()
    numbered = {"drive_b": "drive_1", "drive_c": "drive_2"}   # split files count from 0
    for name, number in numbered.items():     # rosbags names the file after the bag
        shutil.copy(drives[name].bag / f"{name}.mcap", folder / f"{number}.mcap")
    assert fleet([folder], tmp_path / "fleet", model) == 0
    document = metrics(tmp_path / "fleet")
    rows = {r["drive"]: r for r in document["drives"]}
    assert sorted(rows) == ["drive_1", "drive_2"]
    for name, number in numbered.items():
        assert rows[number]["VPQ"] == drives[name].single["VPQ"]
    assert totals(document) == totals(expected(drives, numbered))

    # drive_a as rosbag2 splits a recording, left without metadata.yaml
    recording = tmp_path / "recording"
    recording.mkdir()
    frames = drives["drive_a"].frames
    for k, part in enumerate((range(0, 3), range(3, FRAMES))):
        bag = write_bag(tmp_path / f"part{k}", [frames[i] for i in part], indices=list(part))
        shutil.move(bag / f"part{k}.mcap", recording / f"recording_{k}.mcap")
    assert replay(recording, tmp_path / "alone", *model, "--no-video") == 0
    alone = metrics(tmp_path / "alone")
    assert alone["partial"] is True and alone["frames"] == FRAMES
    assert totals(alone) == totals(drives["drive_a"].single)


def test_resume_after_a_run_killed_midway(drives, model, tmp_path, capsys):
    folder, out = drives["drive_a"].bag.parent, tmp_path / "out"
    argv = ["-m", "vps_ros.cli", "replay", str(folder), "--image-topic", bags.IMAGE_TOPIC,
            "--gt-topic", bags.GT_TOPIC, "--out", str(out), "--model", str(model[0]),
            "--params", str(model[1])]
    process = subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((out / "drives").glob("*.json")) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before a drive was written"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = {p.name: p.stat().st_mtime_ns for p in (out / "drives").glob("*.json")}
    assert 1 <= len(done) < 3 and not (out / "metrics.json").exists()

    assert fleet([folder], out, model, "--resume") == 0
    document = metrics(out)
    assert document["resumed_drives"] == len(done)
    assert {p: (out / "drives" / p).stat().st_mtime_ns for p in done} == done
    assert totals(document) == totals(expected(drives, DRIVES))

    assert fleet([folder], out, model, "--resume", "--windows", "1", "2") == 2
    assert "computed with other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_local_cluster_gives_the_same_totals(drives, model, tmp_path, capfd):
    """Run inside scripts/in_loopback_netns.sh: Ray stays on 127.0.0.1, and does not
    even try to reach a public address to find its own."""
    folder = drives["drive_a"].bag.parent
    assert fleet([folder], tmp_path / "ray", model, "--workers", "2", "--ray") == 0
    assert "external connectivity" not in capfd.readouterr().err
    document = metrics(tmp_path / "ray")
    assert document["executor"] == "Ray, local cluster of 2 CPUs"
    assert totals(document) == totals(expected(drives, DRIVES))
    assert sorted(r["drive"] for r in document["drives"]) == list(DRIVES)


def test_a_ray_cluster_started_here_sends_no_usage_statistics(monkeypatch):
    """Ray reports usage to its servers from a cluster's head unless told not to."""
    from ray._common.usage import usage_lib
    from vps_ros.replay.executors import import_ray
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)   # restored: the fixture
    assert usage_lib.usage_stats_enabled()          # Ray's default
    import_ray(local=True)
    assert not usage_lib.usage_stats_enabled()


def _fails(capsys, *args) -> str:
    assert fleet(*args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("vps-ros replay: error: ")
    assert "Traceback" not in captured.err + captured.out
    return captured.err


def test_a_path_that_is_not_a_bag(drives, model, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    err = _fails(capsys, [drives["drive_a"].bag, notes], tmp_path / "out", model)
    assert f"{notes}: not a bag" in err and not (tmp_path / "out").exists()
    listing = tmp_path / "list.txt"
    listing.write_text(f"{drives['drive_a'].bag}\n\n# comment\nmissing_drive\n")
    err = _fails(capsys, [f"@{listing}"], tmp_path / "out", model)
    assert f"{listing}:4: {tmp_path / 'missing_drive'}: bag or folder of bags not found" in err
    (tmp_path / "empty").mkdir()
    err = _fails(capsys, [drives["drive_a"].bag, tmp_path / "empty"], tmp_path / "out", model)
    assert "no rosbag2 bags in this folder" in err and not (tmp_path / "out").exists()


def test_two_bags_with_one_name(drives, model, tmp_path, capsys):
    other = write_bag(tmp_path / "elsewhere" / "drive_a", drives["drive_a"].frames)
    err = _fails(capsys, [drives["drive_a"].bag, other], tmp_path / "out", model)
    assert "two bags are named 'drive_a'" in err and "named after its bag" in err
    err = _fails(capsys, [other, other], tmp_path / "out", model)
    assert "given twice" in err and not (tmp_path / "out").exists()


def test_unreachable_ray_address_fails_within_bounded_time(drives, model, tmp_path, capsys):
    import socket
    with socket.socket() as probe:          # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    err = _fails(capsys, [drives["drive_a"].bag, drives["drive_b"].bag], tmp_path / "out",
                 model, f"--ray=127.0.0.1:{port}")
    assert time.monotonic() - started < 30
    assert f"--ray 127.0.0.1:{port}: cannot reach the Ray cluster" in err
    assert not (tmp_path / "out").exists()


def test_ray_not_installed(drives, model, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)      # `import ray` raises ImportError
    err = _fails(capsys, [drives["drive_a"].bag, drives["drive_b"].bag], tmp_path / "out",
                 model, "--ray")
    assert "--ray needs Ray, which is not installed" in err and "vps_ros[ray]" in err
    assert not (tmp_path / "out").exists()


def test_single_drive_options_are_refused_for_a_fleet(drives, model, tmp_path, capsys):
    paths = [drives["drive_a"].bag, drives["drive_b"].bag]
    err = _fails(capsys, paths, tmp_path / "out", model, "--mode", "live")
    assert "--mode live" in err and "give one bag" in err
    err = _fails(capsys, paths, tmp_path / "out", model, "--record", str(tmp_path / "rec"))
    assert "--record" in err


def test_the_core_imports_without_ray():
    code = ("import sys, vps_ros.commands.replay, vps_ros.replay.fleet, vps_ros.replay.executors\n"
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def sleep_or_die(job: int) -> dict:
    """A drive function for the process pool: job 3's worker dies."""
    if job == 3:
        os._exit(1)
    time.sleep(0.5)
    return {"job": job}


def test_a_killed_worker_fails_its_drive_and_the_pool_goes_on():
    executor = Processes(2)
    try:
        outcomes = {job: (result, failure)
                    for job, result, failure in executor.run(sleep_or_die, [3, 1, 2, 5, 6])}
    finally:
        executor.close()
    assert sorted(outcomes) == [1, 2, 3, 5, 6]
    assert outcomes[3] == (None, WORKER_DIED)          # dies again when run once more
    for job in (1, 2, 5, 6):                            # 1 ran beside it: run again
        assert outcomes[job] == ({"job": job}, None)


class _DyingPool:
    """A process pool in this process whose worker running job ``dies`` dies, as CPython
    shows it: the other drives finish, submit raises BrokenProcessPool, and only after
    that does the dead worker's drive fail. ``broken``: a worker died idle."""

    def __init__(self, dies: int | None = None, broken: bool = False) -> None:
        self.dies, self.broken, self.dead = dies, broken, []

    def submit(self, function, job) -> Future:
        if self.broken:
            for future in self.dead:
                future.set_exception(BrokenProcessPool("a worker died"))
            raise BrokenProcessPool("the pool is not usable anymore")
        future = Future()
        if job == self.dies:
            self.dead.append(future)
            self.broken = True
        else:
            future.set_result(function(job))
        return future

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        return None


@pytest.mark.parametrize("first_pool", [{"dies": 1}, {"broken": True}],
                         ids=["drive-finished-before-the-dead-one-failed", "worker-died-idle"])
def test_a_pool_that_refuses_a_drive_once_broken_hands_it_to_the_next(first_pool,
                                                                      monkeypatch):
    pools = iter([_DyingPool(**first_pool), _DyingPool()])
    monkeypatch.setattr(executors, "process_pool", lambda workers: next(pools))
    executor = Processes(2)
    outcomes = sorted(executor.run(lambda job: {"job": job}, [2, 1, 3]))
    assert outcomes == [(job, {"job": job}, None) for job in (1, 2, 3)]


def test_the_totals_table_has_the_single_drive_summary_columns():
    from vps_ros.replay.fleet_report import total_row
    from vps_ros.replay.report import summary_rows
    figures = {"frames": 15, "annotated_frames": 12, "dropped_frames": 1, "VPQ": 0.5,
               "VPQ_things": None, "VPQ_stuff": 0.25, "STQ": 0.75, "AQ": 0.125, "SQ": 1.0,
               "latency_ms": {"p50": 3.14159, "p95": None}, "id_switches": 2, "recoveries": 0}
    cells = ["15", "12", "1", "50.0", "-", "25.0", "75.0", "12.5", "100.0", "3.1", "-", "2",
             "0"]
    header = ["frames", "GT", "dropped", "VPQ", "VPQ_th", "VPQ_st", "STQ", "AQ", "SQ",
              "p50 ms", "p95 ms", "id sw", "recov"]
    assert summary_rows({**figures, "cameras": {"front": figures}}) == [
        ["camera", *header], ["front", *cells]]
    assert total_row({**figures, "drives_scored": 3, "num_drives": 4}) == [
        ["drives", *header], ["3 of 4", *cells]]


def test_latency_histogram_bins_are_one_percent_wide_read_at_their_middle():
    """A value stands for its bin's geometric middle: within sqrt(1.01) - 1 = 0.499 % of
    it, at any magnitude (a wider bin, or a bin's edge, is off by up to 1 % or more)."""
    from vps_ros.replay.latency import LatencyHistogram
    values = np.geomspace(0.01, 10_000.0, 2001)
    errors = np.array([LatencyHistogram.of([v]).summary()["p50"] / v - 1 for v in values])
    assert np.abs(errors).max() <= 0.00499
    assert errors.min() < -0.004 and errors.max() > 0.004       # both halves of a bin seen


def test_latency_histogram_percentiles_and_exact_merge():
    from vps_ros.replay.latency import LatencyHistogram
    rng = np.random.default_rng(0)
    a, b = list(rng.lognormal(3, 0.5, 500)), list(rng.lognormal(2, 1.0, 300))
    merged = LatencyHistogram.of(a)
    merged.merge(LatencyHistogram.of(b))
    every = np.asarray(a + b)
    summary = merged.summary()
    for q, key in ((50, "p50"), (95, "p95")):   # the rank rule: the first value reaching q
        assert abs(summary[key] / np.percentile(every, q, method="inverted_cdf") - 1) <= 0.00499
    assert summary["max"] == every.max() and abs(summary["mean"] - every.mean()) < 1e-9
    restored = LatencyHistogram.from_state_dict(json.loads(json.dumps(merged.state_dict())))
    assert restored.summary() == summary


def test_metric_statistics_round_trip_through_json_exactly():
    from vps_ros.metrics import LabelSpace, MetricStats, SequenceEvaluator
    space = LabelSpace(CLASSES, 1000)
    frames = synthetic_frames(4, sequence=1)[1]
    evaluator = SequenceEvaluator(space, (1, 2))
    for f in frames:
        shifted = np.roll(f.panoptic, 3, axis=1)        # imperfect predictions
        evaluator.add(f.panoptic, shifted)
    stats = evaluator.finish()
    restored = MetricStats.from_state_dict(json.loads(json.dumps(stats.state_dict())))
    assert restored.state_dict() == stats.state_dict()
    assert restored.vpq.iou.tobytes() == stats.vpq.iou.tobytes()
    assert restored.result(CLASSES) == stats.result(CLASSES)
