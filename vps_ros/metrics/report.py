"""Markdown tables of a video result dictionary (percentages, one decimal as in the papers)."""
from __future__ import annotations

from typing import Any


def to_markdown(result: dict[str, Any], title: str = "Video panoptic segmentation") -> str:
    """Summary table (VPQ per window size, All / Things / Stuff, STQ / AQ / SQ) and a
    per-class table. Undefined values (no class to average) show as "-"."""
    windows = [str(n) for n in result["windows"]]
    lines = [f"## {title}", "",
             f"{result['num_sequences']} sequences, {result['num_frames']} annotated frames, "
             f"{result['num_tracks']} ground-truth tracks; windows in annotated frames.", "",
             "| | " + " | ".join(f"VPQ ({n} fr)" for n in windows) + " | VPQ |",
             "|---|" + "---:|" * (len(windows) + 1)]
    for name, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
        cells = [percent(result[f"VPQ{suffix}_windows"][n]) for n in windows]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {percent(result[f'VPQ{suffix}'])} |")
    lines += ["", "| STQ | AQ | SQ |", "|---:|---:|---:|",
              f"| {percent(result['STQ'])} | {percent(result['AQ'])} | {percent(result['SQ'])} |", "",
              "| class | thing | " + " | ".join(f"VPQ ({n} fr)" for n in windows)
              + " | VPQ | IoU |",
              "|---|---|" + "---:|" * (len(windows) + 2)]
    for name, entry in result["per_class"].items():
        cells = [percent(entry["windows"][n]["VPQ"]) for n in windows]
        lines.append(f"| {name} | {'yes' if entry['is_thing'] else 'no'} | "
                     + " | ".join(cells) + f" | {percent(entry['VPQ'])} | {percent(entry['IoU'])} |")
    return "\n".join(lines) + "\n"


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal; "-" when undefined."""
    return "-" if value is None else f"{100 * value:.1f}"
