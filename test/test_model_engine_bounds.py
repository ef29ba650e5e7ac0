"""Engines bounded in memory and on disk (docs/reliability.md, Bounds): at most
limits.engine_sessions sessions open (least recently used closed), at most
limits.export_cache_files / export_cache_mb of exports kept (least recently used
deleted), and ``vps-ros cache info|clear``. Real exports of a small real network
(random weights: only sizes and files are judged here, and that a reopened size gives
torch's segments)."""
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from testkit.pipeline_helpers import synthetic_frames, write_small_checkpoint
from vps_ros.model.engines.export_cache import bound_exports
from vps_ros.model.limits import InputLimits
from vps_ros.model.registry import LoadOptions, open_segmenter
from vps_ros.pipeline import PipelineConfig, load_segmenter


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_small_checkpoint(tmp_path_factory.mktemp("bounds") / "small.pt")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of this test alone."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("VPS_ROS_CACHE", str(folder))
    return folder


def _camera(height: int) -> np.ndarray:
    """A frame 128 wide and ``height`` high: letterboxed at the small model's width
    128, it needs an input exactly ``height`` high (a multiple of 32)."""
    return cv2.resize(synthetic_frames(1)[0].image, (128, height), interpolation=cv2.INTER_AREA)


def _engine(checkpoint, **limits):
    return load_segmenter(PipelineConfig(model=str(checkpoint), backend="onnxruntime",
                                         threads=1, limits=InputLimits(**limits)))


def _exports(cache):
    return sorted(p.name.rsplit("-", 1)[1] for p in (cache / "exports").glob("*.onnx"))


def test_engine_sessions_are_a_bounded_lru(checkpoint, cache):
    engine = _engine(checkpoint, engine_sessions=2)
    assert engine.fallback == "" and engine.open_sizes == [(64, 128)]
    reference = open_segmenter(str(checkpoint), LoadOptions())
    engine.segment([_camera(96)])
    assert engine.open_sizes == [(64, 128), (96, 128)]
    engine.segment([_camera(128)])                        # 64 is the least recently used
    assert engine.open_sizes == [(96, 128), (128, 128)]
    engine.segment([_camera(96)])                         # 96 used: 128 is now the oldest
    assert engine.open_sizes == [(128, 128), (96, 128)]
    image = _camera(64)
    segments = engine.segment([image])[0]                 # reopened from the disk cache
    assert engine.open_sizes == [(96, 128), (64, 128)]
    assert engine.fallback == ""
    np.testing.assert_array_equal(segments.segment_map, reference.segment([image])[0].segment_map)
    assert _exports(cache) == ["128x128.onnx", "64x128.onnx", "96x128.onnx"]  # one each


def test_the_export_cache_keeps_the_most_recently_used_files(checkpoint, cache):
    engine = _engine(checkpoint, export_cache_files=2, engine_sessions=2)
    engine.segment([_camera(96)])
    assert _exports(cache) == ["64x128.onnx", "96x128.onnx"]
    engine.segment([_camera(64)])     # 64 used again: 96's session is the oldest
    engine.segment([_camera(128)])    # 96's session closed, then its file deleted
    assert _exports(cache) == ["128x128.onnx", "64x128.onnx"]
    assert engine.fallback == ""
    # the files of open sessions are kept even beyond the bound
    wide = _engine(checkpoint, export_cache_files=1, engine_sessions=3)
    wide.segment([_camera(96)])       # 128's file (not open here) goes, 64's stays
    assert _exports(cache) == ["64x128.onnx", "96x128.onnx"]
    wide.segment([_camera(160)])      # three sessions open: their files all stay
    assert _exports(cache) == ["160x128.onnx", "64x128.onnx", "96x128.onnx"]


def test_the_export_cache_is_bounded_in_mb_oldest_first_never_the_new_one(cache):
    folder = cache / "exports"
    folder.mkdir(parents=True)
    for age, name in enumerate("abcd"):                   # a: used first ... d: last
        path = folder / f"{name}.onnx"
        path.write_bytes(bytes(600 * 1024))
        os.utime(path, ns=(10**18 + age * 10**9, 10**18))
    (folder / "x.onnx.123.partial").write_bytes(bytes(2 * 1024 * 1024))  # an export under way
    # 2400 KB in 4 files, bound 1024 KB: oldest first, but a is kept (just written):
    # b goes (1800 KB left), c (1200), d (600: within the bound)
    removed = bound_exports(InputLimits(export_cache_mb=1, export_cache_files=10),
                            keep={folder / "a.onnx"})
    assert [p.name for p in removed] == ["b.onnx", "c.onnx", "d.onnx"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.onnx", "x.onnx.123.partial"]


def _cli(*args, cache):
    env = dict(os.environ, VPS_ROS_CACHE=str(cache))
    return subprocess.run([sys.executable, "-m", "vps_ros.cli", "cache", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cache_info_and_clear(cache):
    exports, engines = cache / "exports", cache / "tensorrt" / "sub"
    exports.mkdir(parents=True)
    engines.mkdir(parents=True)
    (exports / "a.onnx").write_bytes(bytes(3 * 1024 * 1024))
    (exports / "b.onnx").write_bytes(bytes(1024 * 1024))
    (engines / "e.engine").write_bytes(bytes(512 * 1024))
    result = _cli("info", cache=cache)
    assert result.returncode == 0, result.stderr
    assert f"{exports}: holds 2 file(s), 4.0 MB" in result.stdout
    assert f"{cache / 'tensorrt'}: holds 1 file(s), 0.5 MB" in result.stdout
    assert "bounds (defaults): 16 exports, 1024 MB" in result.stdout
    result = _cli("clear", cache=cache)
    assert result.returncode == 0, result.stderr
    assert f"{exports}: deleted 2 file(s), 4.0 MB" in result.stdout
    assert not list(exports.iterdir()) and not list((cache / "tensorrt").iterdir())
    result = _cli("info", cache=cache)
    assert f"{exports}: holds 0 file(s), 0.0 MB" in result.stdout


def test_cache_errors_are_one_line_and_exit_2(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = _cli("clear", cache=not_a_folder)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"vps-ros cache: error: cache folder {not_a_folder} "
                                     "($VPS_ROS_CACHE) is not a folder")
    assert not_a_folder.read_text() == "x"
    assert _cli("purge", cache=tmp_path).returncode == 2   # not an action


def test_a_new_camera_size_is_built_off_the_frame_path(checkpoint, cache, monkeypatch):
    """background_builds (the node): the first frame of a new size runs on torch at once
    while its session is exported and opened in a thread; later frames run on it. The
    build is held on an event, so that frame cannot have waited for it."""
    from vps_ros.model.engines import segmenter as engines
    from vps_ros.model.segmenter import Segmenter
    image = _camera(96)
    expected = open_segmenter(str(checkpoint), LoadOptions()).segment([image])[0]
    engine = load_segmenter(PipelineConfig(model=str(checkpoint), backend="onnxruntime",
                                           threads=1), background_builds=True)
    gate, real_export, torch_calls = threading.Event(), engines._cached_export, []

    def held_export(*args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            raise AssertionError("exported on the frame path")
        assert gate.wait(120)
        return real_export(*args, **kwargs)

    def counted(self, batch):
        torch_calls.append(batch.shape[1:3])
        return real_predict(self, batch)
    real_predict = Segmenter.predict
    monkeypatch.setattr(engines, "_cached_export", held_export)
    monkeypatch.setattr(Segmenter, "predict", counted)
    first = engine.segment([image])[0]                   # the build is held: torch
    assert torch_calls == [(96, 128)] and engine.open_sizes == [(64, 128)]
    np.testing.assert_array_equal(first.segment_map, expected.segment_map)
    engine.segment([image])                              # still building: torch again
    assert torch_calls == [(96, 128)] * 2
    gate.set()
    assert engine.wait_built(120)
    later = engine.segment([image])[0]                   # on the new session
    assert engine.open_sizes == [(64, 128), (96, 128)] and engine.fallback == ""
    assert torch_calls == [(96, 128)] * 2
    np.testing.assert_array_equal(later.segment_map, expected.segment_map)
    assert _exports(cache) == ["64x128.onnx", "96x128.onnx"]
