"""``vps-ros eval`` and dataset-level evaluation on in-memory sources.

The dataset readers are another module's job; here ``open_dataset`` (the CLI's one
seam to them) is replaced by in-memory sources, so the command's own logic is what
is tested: presets, outputs, workers, frame pairing and its errors.
"""
import json

import numpy as np
import pytest

from vps_ros import cli
from vps_ros.errors import DataError
from vps_ros.metrics import LabelSpace, evaluate_sequences, evaluate_sources
from vps_ros.commands import eval as eval_cli
from vps_ros.types import ClassTable

CLASSES = ClassTable.builtin("synthetic")
SPACE = LabelSpace(CLASSES, 1000)
R, V, C1, C2 = 0, 255000, 6001, 6002


class MemorySource:
    """``sequences()`` / ``frames(sequence)`` over in-memory maps (picklable)."""

    def __init__(self, sequences: dict[str, list[tuple[int, np.ndarray]]]):
        self._sequences = sequences

    def sequences(self):
        return list(self._sequences)

    def frames(self, sequence):
        return iter(self._sequences[sequence])


def drive(seed: int, frames: int = 6, switch_at: int = 3) -> tuple[list, list]:
    """A car crossing road; the prediction switches its id at ``switch_at``."""
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for t in range(frames):
        g = np.full((6, 8), R, np.int32)
        g[2:4, t:t + 3] = C1
        g[0, :] = V
        p = g.copy()
        p[p == C1] = C1 if t < switch_at else C2
        p[rng.random(p.shape) < 0.05] = R
        gt.append(g)
        pred.append(p)
    return gt, pred


def sources(n_sequences: int = 3, unannotated_predictions: bool = False):
    gt, pred = {}, {}
    for s in range(n_sequences):
        g, p = drive(s)
        gt[f"seq{s}"] = [(5 * t, m) for t, m in enumerate(g)]        # every 5th frame
        pred[f"seq{s}"] = [(5 * t, m) for t, m in enumerate(p)]
        if unannotated_predictions:
            pred[f"seq{s}"] = sorted(pred[f"seq{s}"] + [(5 * t + 1, np.full_like(m, C2))
                                                        for t, m in enumerate(p)],
                                     key=lambda f: f[0])
    return MemorySource(gt), MemorySource(pred)


def test_sources_give_the_same_result_as_the_frames_themselves():
    gt, pred = sources()
    stats = evaluate_sources(gt, pred, SPACE, (1, 2, 3, 4))
    direct = evaluate_sequences([list(zip(*drive(s))) for s in range(3)], CLASSES, 1000,
                                (1, 2, 3, 4))
    result = stats.result(CLASSES)
    assert result == direct
    assert (result["num_sequences"], result["num_frames"]) == (3, 18)


def test_predictions_of_unannotated_frames_are_skipped():
    plain = evaluate_sources(*sources(), SPACE, (1, 2)).result(CLASSES)
    extra = evaluate_sources(*sources(unannotated_predictions=True), SPACE, (1, 2))
    assert extra.result(CLASSES) == plain


def test_workers_add_up_to_exactly_the_single_process_result():
    gt, pred = sources(4)
    one = evaluate_sources(gt, pred, SPACE, (1, 2, 3)).result(CLASSES)
    seen = []
    two = evaluate_sources(gt, pred, SPACE, (1, 2, 3), workers=2, progress=seen.append)
    assert two.result(CLASSES) == one
    assert sum(seen) == 24                          # the progress callback saw every frame


def test_missing_prediction_frame_is_a_data_error():
    gt, pred = sources(1)
    del pred._sequences["seq0"][2]
    with pytest.raises(DataError, match="sequence 'seq0': no prediction for annotated frame 10"):
        evaluate_sources(gt, pred, SPACE, (1,))
    del pred._sequences["seq0"][2:]
    with pytest.raises(DataError, match="no prediction for annotated frame 10"):
        evaluate_sources(gt, pred, SPACE, (1,))


def test_missing_prediction_sequence_is_a_data_error():
    gt, pred = sources(2)
    del pred._sequences["seq1"]
    with pytest.raises(DataError, match="the prediction has no sequence 'seq1'"):
        evaluate_sources(gt, pred, SPACE, (1,))


def test_a_worker_error_reaches_the_caller():
    gt, pred = sources(3)
    pred._sequences["seq2"][1] = (5, np.zeros((3, 3), np.int32))
    with pytest.raises(DataError, match="sequence 'seq2', frame 5: prediction is 3x3"):
        evaluate_sources(gt, pred, SPACE, (1,), workers=2)


@pytest.fixture
def memory_datasets(monkeypatch):
    """Replace the reader seam: --gt/--pred paths name in-memory datasets."""
    datasets = {}

    def open_dataset(fmt, path, classes, label_divisor):
        assert classes.name == "synthetic" and label_divisor == 1000
        return datasets[str(path)]

    monkeypatch.setattr(eval_cli, "open_dataset", open_dataset)
    return datasets


def run_eval(tmp_path, *extra):
    return cli.main(["eval", "--gt", "GT", "--pred", "PRED", "--classes", "synthetic",
                     "--json", str(tmp_path / "out.json"), *extra])


def test_eval_writes_json_and_markdown_with_format_windows(memory_datasets, tmp_path, capsys):
    memory_datasets["GT"], memory_datasets["PRED"] = sources()
    assert run_eval(tmp_path, "--format", "vipseg", "--md", str(tmp_path / "out.md")) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["windows"] == [1, 2, 4, 6] and set(result["VPQ_windows"]) == {"1", "2", "4", "6"}
    for key in ("VPQ", "VPQ_things", "VPQ_stuff", "STQ", "AQ", "SQ"):
        assert 0.0 <= result[key] <= 1.0, key
    assert (result["format"], result["classes"], result["label_divisor"]) == \
        ("vipseg", "synthetic", 1000)
    expected = evaluate_sources(*sources(), SPACE, (1, 2, 4, 6)).result(CLASSES)
    assert {k: result[k] for k in expected} == json.loads(json.dumps(expected))
    markdown = (tmp_path / "out.md").read_text()
    assert "| All |" in markdown and "| car | yes |" in markdown
    assert f"{100 * result['STQ']:.1f}" in markdown
    assert "VPQ" in capsys.readouterr().out


def test_eval_windows_option_overrides_the_preset(memory_datasets, tmp_path):
    memory_datasets["GT"], memory_datasets["PRED"] = sources()
    assert run_eval(tmp_path, "--format", "cityscapes-vps", "--windows", "3", "1",
                    "--workers", "2") == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["windows"] == [1, 3]
    assert result["VPQ"] == pytest.approx((result["VPQ_windows"]["1"] + result["VPQ_windows"]["3"]) / 2)


@pytest.mark.parametrize("break_it, message", [
    (lambda gt, pred: pred._sequences["seq1"].__setitem__(0, (0, np.zeros((6, 7), np.int32))),
     "sequence 'seq1', frame 0: prediction is 7x6 pixels but ground truth is 8x6"),
    (lambda gt, pred: pred._sequences["seq0"].pop(4),
     "sequence 'seq0': no prediction for annotated frame 20"),
    (lambda gt, pred: pred._sequences["seq2"].__setitem__(1, (5, np.full((6, 8), 99001, np.int32))),
     "sequence 'seq2', frame 5: prediction has ids of unknown classes [99001]"),
])
def test_eval_exits_2_with_one_line_naming_sequence_and_frame(memory_datasets, tmp_path, capsys,
                                                              break_it, message):
    gt, pred = sources()
    break_it(gt, pred)
    memory_datasets["GT"], memory_datasets["PRED"] = gt, pred
    assert run_eval(tmp_path, "--format", "kitti-step") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("vps-ros eval: error:")
    assert not (tmp_path / "out.json").exists()


def test_eval_rejects_bad_options_with_exit_2(memory_datasets, tmp_path, capsys):
    memory_datasets["GT"], memory_datasets["PRED"] = sources()
    assert run_eval(tmp_path, "--format", "kitti-step", "--windows", "0") == 2
    assert "window sizes must be positive" in capsys.readouterr().err
    assert run_eval(tmp_path, "--format", "kitti-step", "--workers", "0") == 2
    assert cli.main(["eval", "--format", "kitti-step", "--gt", "GT", "--pred", "PRED",
                     "--classes", "no_such_table", "--json", str(tmp_path / "o.json")]) == 2
    assert "classes_no_such_table.yaml" in capsys.readouterr().err
    (tmp_path / "taken").write_text("")        # a missing folder is made; a file is not one
    assert run_eval(tmp_path / "taken", "--format", "kitti-step") == 2
    assert f"{tmp_path / 'taken'} is a file, not a folder" in capsys.readouterr().err
