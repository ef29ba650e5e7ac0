"""VPQ and STQ from per-frame sparse tables (issue 3); no ROS import.

- :class:`SequenceEvaluator` streams one sequence's annotated frames and returns
  :class:`MetricStats`, which merge across sequences and processes;
  ``MetricStats.result(classes)`` gives the result dictionary of docs/architecture.md.
- :func:`evaluate_sequences` does that for in-memory or generated frame pairs,
  :func:`evaluate_sources` for dataset readers (``vps-ros eval``).
- :func:`panoptic_quality` is image PQ (VPQ with one-frame windows).
"""
from .evaluate import (WINDOW_PRESETS, MetricStats, SequenceEvaluator, check_windows,
                       evaluate_sequences, panoptic_quality)
from .labels import LabelSpace
from .sources import evaluate_sources

__all__ = ["WINDOW_PRESETS", "LabelSpace", "MetricStats", "SequenceEvaluator",
           "check_windows", "evaluate_sequences", "evaluate_sources", "panoptic_quality"]
