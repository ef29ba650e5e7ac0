"""The replay's report files: metrics.json and report.md, and the table printed at the end.

metrics.json holds the ``vps-ros eval --json`` keys of docs/architecture.md for all cameras
together at the top level (``VPQ``, ``VPQ_windows``, ``VPQ_things``, ``VPQ_stuff``,
``STQ``, ``AQ``, ``SQ``, ``per_class``, ...; null when no frame had ground truth), and
beside them ``latency_ms`` (p50, p95, mean, max), ``frames``, ``annotated_frames``,
``dropped_frames``, ``id_switches``, ``recoveries``, ``partial`` (the replay stopped at
a fault, named in ``error``, or the bag was not whole and ``recovered`` says what was
read: reason, storage, messages and lost messages per topic, damaged chunks, unreadable
rows, last stamp), ``metrics_note`` and ``cameras`` (the same per camera).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..metrics.report import percent, to_markdown
from .records import write_atomic, write_json_atomic

CONTRACT_KEYS = ("VPQ", "VPQ_windows", "VPQ_things", "VPQ_things_windows", "VPQ_stuff",
                 "VPQ_stuff_windows", "STQ", "AQ", "SQ", "windows", "num_tracks",
                 "num_sequences", "num_frames", "per_class")


def metrics_document(results: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The metrics.json content from :meth:`ReplayScorer.results` and run facts (mode,
    bag, cameras, partial, error, ...)."""
    def flat(entry: dict[str, Any]) -> dict[str, Any]:
        metrics = entry["metrics"] or {key: None for key in CONTRACT_KEYS}
        return {**metrics, **{k: v for k, v in entry.items() if k != "metrics"}}

    return {**flat(results["all"]), **run,
            "cameras": {name: flat(entry) for name, entry in results["cameras"].items()}}


def write_metrics(document: dict[str, Any], out: Path) -> Path:
    return write_json_atomic(out / "metrics.json", document, indent=2)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


SUMMARY_HEADER = ("frames", "GT", "dropped", "VPQ", "VPQ_th", "VPQ_st", "STQ", "AQ", "SQ",
                  "p50 ms", "p95 ms", "id sw", "recov")


def summary_row(label: str, entry: dict[str, Any]) -> list[str]:
    """``label`` and the columns of :data:`SUMMARY_HEADER` of a camera, of all cameras or
    of a fleet's totals."""
    e = entry
    return [label, str(e["frames"]), str(e["annotated_frames"]), str(e["dropped_frames"]),
            percent(e["VPQ"]), percent(e["VPQ_things"]), percent(e["VPQ_stuff"]),
            percent(e["STQ"]), percent(e["AQ"]), percent(e["SQ"]),
            _ms(e["latency_ms"]["p50"]), _ms(e["latency_ms"]["p95"]),
            str(e["id_switches"]), str(e["recoveries"])]


def summary_rows(document: dict[str, Any]) -> list[list[str]]:
    """Header and one row per camera (and all cameras when there are several)."""
    entries = list(document["cameras"].items())
    if len(entries) > 1:
        entries.append(("all", document))
    return [["camera", *SUMMARY_HEADER]] + [summary_row(name, e) for name, e in entries]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if k else c.ljust(w)
                               for k, (c, w) in enumerate(zip(r, widths))) for r in rows)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|---|" + "---:|" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def write_markdown(document: dict[str, Any], out: Path, pictures: list[str]) -> Path:
    """report.md: run facts, the summary, VPQ per window / things / stuff / STQ and per
    class (all cameras, then each camera), latency and dropped frames, the pictures."""
    d = document
    lines = [f"# Replay of {d['bag']}", "",
             f"Mode **{d['mode']}**{' (lossless)' if d.get('lossless') else ''}, model "
             f"`{d['model']}`, {len(d['cameras'])} camera(s): "
             + ", ".join(f"`{c['name']}` ({c['image_topic']} / {c['gt_topic'] or 'no GT'})"
                         for c in d["camera_topics"]) + ".", ""]
    if d.get("recovered"):
        r = d["recovered"]
        counts = ", ".join(f"{topic} {n}" for topic, n in r["messages"].items())
        lines += [f"> **PARTIAL REPORT, RECOVERED BAG**: {r['reason']}. Messages recovered: "
                  f"{counts}; last stamp {r['last_stamp_ns']} ns. Every frame it still held "
                  "is scored.", ""]
    if d["error"]:
        lines += [f"> **PARTIAL REPORT**: the replay stopped at a fault after {d['frames']} "
                  f"frames: {d['error']}", ""]
    if d["metrics_note"]:
        lines += [f"> **Metrics skipped**: {d['metrics_note']}.", ""]
    lines += ["## Summary", "", markdown_table(summary_rows(d)), "",
              "Latency: " + ("time from handing a frame to the pipeline to its result"
                             if d["mode"] == "offline" else
                             "time from publishing a frame to receiving its panoptic image")
              + f", milliseconds (mean {_ms(d['latency_ms']['mean'])}, max "
              f"{_ms(d['latency_ms']['max'])}). Dropped: frames without an output; scored "
              "as all-void predictions. Id switches / recoveries: ground-truth tracks that "
              "changed predicted id / came back under their old id after being absent.", ""]
    if d["VPQ"] is not None or d["num_frames"]:
        lines.append(to_markdown(d, "All cameras"))
    if len(d["cameras"]) > 1:
        for name, entry in d["cameras"].items():
            if entry["num_frames"]:
                lines.append(to_markdown(entry, f"Camera {name}"))
    lines += ["## Pictures", ""] + [f"- [{p}]({p})" for p in pictures] + [""]
    return write_atomic(out / "report.md", "\n".join(lines))
