"""The fleet report: metrics.json and report.md of a replay of many drives.

metrics.json holds, at the top level, the ``vps-ros eval --json`` keys of docs/architecture.md for
every drive without error together (the sums of the metric core over all their
sequences), beside ``frames``, ``annotated_frames``, ``dropped_frames``,
``latency_ms`` (p50 / p95 to 1 %, exact mean and max), ``id_switches``,
``recoveries``, ``drives_scored`` / ``drives_failed`` / ``num_drives``,
``metrics_note`` (why totals are missing or what they leave out), run facts, and
``drives``: one row per drive (its own VPQ, STQ, AQ, SQ, frames, latency, dropped
frames, id switches, wall time, ``error``), worst first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..metrics.report import percent, to_markdown
from .fleet_totals import FleetTotals
from .records import write_atomic
from .report import (CONTRACT_KEYS, SUMMARY_HEADER, _ms, markdown_table, summary_row,
                     text_table, write_metrics)

DRIVE_HEADER = ["drive", "frames", "GT", "dropped", "VPQ", "STQ", "AQ", "p50 ms", "p95 ms",
                "id sw", "error"]


def worst_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed drives, then by VPQ, STQ, AQ ascending, then drives without metrics."""
    def key(row: dict[str, Any]) -> tuple:
        if row["error"] is not None:
            return (0, 0.0, 0.0, 0.0, row["drive"])
        if row["VPQ"] is None and row["STQ"] is None:
            return (2, 0.0, 0.0, 0.0, row["drive"])
        return (1, *(row[k] if row[k] is not None else -1.0 for k in ("VPQ", "STQ", "AQ")),
                row["drive"])
    return sorted(rows, key=key)


def fleet_document(totals: FleetTotals, rows: dict[str, dict[str, Any]], run: dict[str, Any]
                   ) -> dict[str, Any]:
    """metrics.json's content from the fleet's totals, the rows of every drive and the
    run facts."""
    failed = sorted(name for name, row in rows.items() if row["error"] is not None)
    scored = len(rows) - len(failed)
    evaluated = totals.stats is not None and totals.stats.num_frames > 0
    metrics = totals.stats.result(totals.classes) if evaluated else dict.fromkeys(CONTRACT_KEYS)
    notes = []
    if failed:
        notes.append(f"{len(failed)} of {len(rows)} drives failed and are left out of the "
                     f"totals: {', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''}")
    if not evaluated:
        notes.append("no drive had annotated frames: metrics skipped")
    wall = run["wall_s"]
    return {**metrics, **totals.counts, "latency_ms": totals.latency.summary(),
            "classes": totals.classes.name if totals.classes else None,
            "label_divisor": totals.label_divisor, **run,
            "drives_per_s": (len(rows) - run["resumed_drives"]) / wall if wall else None,
            "num_drives": len(rows), "drives_scored": scored, "drives_failed": len(failed),
            "partial": bool(failed), "metrics_note": "; ".join(notes) or None,
            "drives": worst_first(list(rows.values()))}


def drive_rows(document: dict[str, Any], limit: int | None = None) -> list[list[str]]:
    rows = [DRIVE_HEADER]
    for d in document["drives"][:limit]:
        latency = d.get("latency_ms") or {}
        rows.append([d["drive"], str(d["frames"] if d["frames"] is not None else "-"),
                     str(d["annotated_frames"] if d["annotated_frames"] is not None else "-"),
                     str(d["dropped_frames"] if d["dropped_frames"] is not None else "-"),
                     percent(d["VPQ"]), percent(d["STQ"]), percent(d["AQ"]),
                     _ms(latency.get("p50")), _ms(latency.get("p95")),
                     str(d["id_switches"] if d["id_switches"] is not None else "-"),
                     _cell(d["error"]) + (" (partial)" if d.get("partial") else "")])
    return rows


def _cell(error: str | None) -> str:
    return "" if error is None else error.replace("|", "/").replace("\n", " ")


def total_row(document: dict[str, Any]) -> list[list[str]]:
    d = document
    return [["drives", *SUMMARY_HEADER],
            summary_row(f"{d['drives_scored']} of {d['num_drives']}", d)]


def write_fleet_report(document: dict[str, Any], out: Path) -> None:
    """metrics.json and report.md (totals, the metric tables, every drive worst first)."""
    d = document
    write_metrics(d, out)
    lines = [f"# Replay of {d['num_drives']} drives", "",
             f"Mode **offline** on {d['executor']}, model `{d['model'] or 'from ' + d['params']}`"
             f", cameras: " + ", ".join(f"`{c['name']}` ({c['image_topic']} / "
                                        f"{c['gt_topic'] or 'no GT'})" for c in d["camera_topics"])
             + f"; {d['wall_s']:.1f} s"
             + (f", {d['resumed_drives']} drives resumed from an earlier run"
                if d["resumed_drives"] else "") + ".", ""]
    if d["metrics_note"]:
        lines += [f"> **{d['metrics_note']}**.", ""]
    lines += ["## Totals", "", markdown_table(total_row(d)), "",
              "The totals are the metric core's sums over every sequence (camera stream) of "
              "every drive without error: VPQ from per-class IoU sums and TP / FP / FN over "
              "every window, STQ from one confusion matrix and every ground-truth track; the "
              "same numbers as evaluating all the sequences together, not a mean of the "
              "drives' figures. Latency p50 / p95 to 1 %.", ""]
    if d["num_frames"]:
        lines.append(to_markdown(d, "All drives"))
    lines += ["## Drives, worst first", "", markdown_table(drive_rows(d)), ""]
    write_atomic(out / "report.md", "\n".join(lines))


def print_fleet_summary(document: dict[str, Any], out: Path, worst: int = 5) -> None:
    print(text_table(total_row(document)))
    print(text_table(drive_rows(document, worst)))
    note = f" ({document['metrics_note']})" if document["metrics_note"] else ""
    print(f"VPQ/STQ in %, latency in ms; {document['num_drives']} drives in "
          f"{document['wall_s']:.1f} s on {document['executor']}; report{note}: "
          f"{out / 'report.md'} (metrics.json, per drive: {out / 'drives'})")
