"""Evaluate a whole dataset: pair ground-truth and predicted frames, spread sequences
over processes, add the per-sequence statistics up.

A source is a ``types.PanopticSource``: anything with ``sequences()`` and
``frames(sequence)`` yielding ``(frame_index, panoptic map)`` in increasing frame order
(the dataset readers of ``vps_ros.data``). Ground truth decides which frames are evaluated: predictions of
frames without annotation are skipped.
"""
from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, Future, wait
from typing import Callable, Iterator

import numpy as np

from ..errors import DataError
from ..processes import CONTEXT, process_pool
from ..types import PanopticSource
from .evaluate import MetricStats, SequenceEvaluator, check_windows
from .labels import LabelSpace

Progress = Callable[[int], None]


def paired_frames(gt: PanopticSource, pred: PanopticSource, sequence: str
                  ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(frame index, gt map, pred map)`` for every annotated frame of ``sequence``."""
    predictions = iter(pred.frames(sequence))
    previous = None
    for index, gt_map in gt.frames(sequence):
        if previous is not None and index <= previous:
            raise DataError(f"sequence {sequence!r}: ground-truth frame {index} comes after "
                            f"frame {previous}; frames must be in increasing order")
        previous = index
        for pred_index, pred_map in predictions:
            if pred_index == index:
                yield index, gt_map, pred_map
                break
            if pred_index > index:
                raise DataError(f"sequence {sequence!r}: no prediction for annotated frame {index}")
        else:
            raise DataError(f"sequence {sequence!r}: no prediction for annotated frame {index}")


def evaluate_sequence(gt: PanopticSource, pred: PanopticSource, sequence: str,
                      space: LabelSpace, windows: tuple[int, ...],
                      progress: Progress | None = None) -> MetricStats:
    evaluator = SequenceEvaluator(space, windows, sequence)
    for index, gt_map, pred_map in paired_frames(gt, pred, sequence):
        evaluator.add(gt_map, pred_map, index)
        if progress is not None:
            progress(1)
    return evaluator.finish()


def evaluate_sources(gt: PanopticSource, pred: PanopticSource, space: LabelSpace,
                     windows: tuple[int, ...], workers: int = 1,
                     progress: Progress | None = None) -> MetricStats:
    """Statistics of every ground-truth sequence, added up in sequence order.

    With ``workers > 1`` sequences are evaluated in that many processes (the sources
    are pickled to them); the sum is the same, bit for bit, as with one worker.
    """
    windows = check_windows(windows)
    sequences = list(gt.sequences())
    predicted = set(pred.sequences())
    missing = [s for s in sequences if s not in predicted]
    if missing:
        raise DataError(f"the prediction has no sequence {', '.join(map(repr, missing[:5]))}"
                        + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
    if workers <= 1 or len(sequences) <= 1:
        per_sequence = [evaluate_sequence(gt, pred, s, space, windows, progress)
                        for s in sequences]
    else:
        per_sequence = _in_processes(gt, pred, sequences, space, windows, workers, progress)
    total = MetricStats.zeros(space, windows)
    for stats in per_sequence:
        total.merge(stats)
    return total


def _in_processes(gt: PanopticSource, pred: PanopticSource, sequences: list[str],
                  space: LabelSpace, windows: tuple[int, ...], workers: int,
                  progress: Progress | None) -> list[MetricStats]:
    with CONTEXT.Manager() as manager, process_pool(min(workers, len(sequences))) as pool:
        frames_done = manager.Queue()
        futures = [pool.submit(evaluate_sequence, gt, pred, s, space, windows, frames_done.put)
                   for s in sequences]
        pending: set[Future] = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            _drain(frames_done, progress)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                for future in pending:
                    future.cancel()
                raise failed[0].exception()
        return [f.result() for f in futures]


def _drain(queue, progress: Progress | None) -> None:
    frames = 0
    while not queue.empty():
        frames += queue.get()
    if progress is not None and frames:
        progress(frames)
