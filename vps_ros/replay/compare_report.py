"""The report of ``vps-ros compare``: the table printed and written, compare.md, and a
picture per metric of the per-unit (drive or frame block) deltas beside the run's
delta and its 95 % interval."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics.report import percent
from .report import markdown_table, text_table

PICTURED = ("VPQ", "VPQ_things", "VPQ_stuff", "STQ", "AQ", "SQ", "id_switches",
            "latency_p95_ms")
HEADER = ["metric", "A", "B", "B - A", "95 % interval", "verdict"]


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return percent(value) if unit == "fraction" else f"{value:.1f}" if unit == "ms" \
        else f"{value:g}"


def _delta(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.2f}" if unit == "fraction" else f"{value:+.1f}" \
        if unit == "ms" else f"{value:+g}"


def metric_rows(entries: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Header and one row per metric: values (fractions in %, deltas in points)."""
    rows = [HEADER]
    for name, e in entries.items():
        interval = "-" if e["ci_low"] is None else \
            f"[{_delta(e['ci_low'], e['unit'])}, {_delta(e['ci_high'], e['unit'])}]"
        note = f" ({e['defined_resamples']} resamples)" if "defined_resamples" in e else ""
        rows.append([name, _value(e["a"], e["unit"]), _value(e["b"], e["unit"]),
                     _delta(e["delta"], e["unit"]), interval + note, e["verdict"]])
    return rows


def drive_rows(drives: list[dict[str, Any]], limit: int | None = None) -> list[list[str]]:
    names = ("VPQ", "STQ", "AQ", "SQ")
    rows = [["drive", *(f"{n} A" for n in names[:1]), *(f"{n} B - A" for n in names),
             "id sw B - A", "p95 ms B - A"]]
    for d in drives[:limit]:
        m = d["metrics"]
        rows.append([d["drive"], percent(m["VPQ"]["a"]),
                     *(_delta(m[n]["delta"], "fraction") for n in names),
                     _delta(m["id_switches"]["delta"], "count"),
                     _delta(m["latency_p95_ms"]["delta"], "ms")])
    return rows


def write_json(document: dict[str, Any], path: Path) -> Path:
    if path.is_dir():
        raise ConfigError(f"--json {path} is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def delta_picture(path: Path, name: str, entry: dict[str, Any], units: list[str],
                  deltas: np.ndarray, unit_kind: str) -> Path:
    """Bars: each unit's own delta (B - A on that drive or block alone), sorted; the
    run's delta as a line and its 95 % interval as a band; 0 dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 100.0 if entry["unit"] == "fraction" else 1.0
    label = {"fraction": "points", "ms": "ms", "count": "count"}[entry["unit"]]
    values = np.asarray(deltas, np.float64) * scale
    order = np.argsort(np.where(np.isnan(values), np.inf, values), kind="stable")
    worse = values < 0 if entry["higher_is_better"] else values > 0
    colours = np.where(worse, "#c0392b", "#2e86c1")[order]
    fig, ax = plt.subplots(figsize=(min(14, 4 + 0.25 * len(units)), 4))
    positions = np.arange(len(units))
    ax.bar(positions, np.nan_to_num(values[order]), color=colours, width=0.8,
           label=f"per {unit_kind} (B - A on it alone)")
    ax.axhline(0, color="black", linewidth=0.8, linestyle="--")
    if entry["delta"] is not None:
        ax.axhline(entry["delta"] * scale, color="#27ae60", linewidth=1.6,
                   label=f"run: {entry['delta'] * scale:+.2f}")
    if entry["ci_low"] is not None:
        ax.axhspan(entry["ci_low"] * scale, entry["ci_high"] * scale, color="#27ae60",
                   alpha=0.2, label=f"95 % interval [{entry['ci_low'] * scale:+.2f}, "
                   f"{entry['ci_high'] * scale:+.2f}]")
    if len(units) <= 30:
        ax.set_xticks(positions, [units[k] for k in order], rotation=60, ha="right",
                      fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(units)} {unit_kind}s, sorted by delta")
    ax.set_ylabel(f"B - A ({label})")
    ax.set_title(f"{name}: {entry['verdict']}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def prepare_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_report(document: dict[str, Any], pictures: dict[str, Any], out: Path,
                 frames: list[tuple[str, str]]) -> Path:
    """compare.md and the pictures in ``out`` (``frames``: (picture or "", note) of the
    drives that lost most)."""
    prepare_out(out)
    d = document
    unit_kind = "drive" if d["resampling"] == "drives" else "block"
    drawn = [delta_picture(out / f"delta_{name}.png", name, d["metrics"][name],
                           pictures["units"], pictures["deltas"][name], unit_kind).name
             for name in PICTURED]
    lines = [f"# {d['run_b']} (B) against {d['run_a']} (A)", "",
             f"{d['num_drives']} drive(s), class table `{d['classes']}`, VPQ windows "
             f"{d['windows']}. Deltas B - A from the runs' statistics added exactly; 95 % "
             f"intervals: {d['method']}, {d['resamples']} resamples of {d['units']} "
             f"{d['resampling']} (seed {d['seed']}). Verdict: better / worse when the whole "
             "interval is on one side of 0, else no detectable change (what the intervals "
             "assume: docs/compare.md of vps_ros).",
             ""]
    if d["resampling"] != "drives":
        lines += [f"> One drive: frames are resampled in blocks of {d['block_frames']} "
                  "consecutive frames (VPQ windows span frames; each window's counts stay "
                  "with the frame it ends at). Frames of one drive are not independent "
                  "samples of a fleet: read the interval as this drive's, not a fleet's.", ""]
    if d.get("gates"):
        lines += ["Gates: " + ", ".join(f"`--fail-if-worse {g['gate']}` "
                                        f"{'**FAILED**' if g['failed'] else 'passed'}"
                                        for g in d["gates"]), ""]
    lines += ["## Metrics", "", "Fractions in %, deltas and intervals in points; latency in "
              "ms; counts summed over the drives.", "", markdown_table(metric_rows(d["metrics"])),
              "", "## VPQ per class", "", markdown_table(metric_rows(d["per_class"])), "",
              "## Drives, worst first (VPQ delta)", "",
              markdown_table(drive_rows(d["drives"])), "", "## Pictures", "",
              f"Per {unit_kind}: B - A of that {unit_kind} alone, sorted; the line and band "
              "are the run's delta and its 95 % interval.", ""]
    lines += [f"![{p}]({p})" for p in drawn] + [""]
    lines += ["## The drives that lost most: ground truth, A, B", "",
              "Each drive replayed again offline with A's and B's settings; the frame where "
              "B's wrong pixels exceed A's most.", ""]
    if not frames:
        lines += ["No drive lost VPQ.", ""]
    for picture, note in frames:
        lines += [f"- {note}"] + (["", f"![{picture}]({picture})", ""] if picture else [])
    lines.append("")
    path = out / "compare.md"
    path.write_text("\n".join(lines))
    return path


def print_summary(document: dict[str, Any], worst: int = 3) -> None:
    print(text_table(metric_rows(document["metrics"])))
    if document["num_drives"] > 1:
        print(text_table(drive_rows(document["drives"], worst)))
    print(f"fractions in %, deltas in points; 95 % intervals from {document['resamples']} "
          f"paired resamples of {document['units']} {document['resampling']} "
          f"(seed {document['seed']})")
