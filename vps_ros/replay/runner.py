"""One replay from bag to report: frames in, outputs scored, recorded and drawn, the
report written even when a fault (bad frame, truncated bag, Ctrl-C) stops it early."""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from ..data import bags
from ..errors import ConfigError, DataError, VpsRosError
from ..model.digest import class_table_digest, file_digest, model_digest
from ..model.registry import LoadOptions
from ..model.registry import model_classes as registry_model_classes
from ..pipeline import DEFAULT_MODEL, PipelineConfig
from ..resources import config_path, model_path
from ..types import ClassTable
from .cameras import Camera, ReplayFrame, check_topics, replay_frames
from .figures import FigureCollector, choose_frames, tracks_timeline
from .outputs import OutputRecorder, ReplayOutput
from .records import begin_run, end_run
from .report import metrics_document, summary_rows, text_table, write_markdown, write_metrics
from .offline import OfflineEngine
from .scoring import ReplayScorer
from .statistics import STATISTICS_FILE, write_statistics

MODES = ("offline", "live")
DEFAULT_WINDOWS = (1, 2, 3, 4)


@dataclass(frozen=True)
class ReplayOptions:
    bag: Path
    cameras: list[Camera]
    out: Path
    mode: str = "offline"
    lossless: bool = False
    rate: float | None = None          # playback speed, 1.0 = as recorded (live mode)
    record: Path | None = None
    params: Path | None = None         # ROS 2 parameters file of the node
    model: str = ""
    model_classes: str = ""            # the pipeline's classes parameter
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    classes: ClassTable | None = None
    video: bool = True
    progress: bool = True


def pipeline_config(options: ReplayOptions, label_divisor: int | None) -> PipelineConfig:
    """The node's parameters file (config/perception.yaml by default) with ``--model``,
    ``--model-classes`` and the bag's label divisor applied: the same settings offline and live."""
    params = options.params or config_path("perception.yaml")
    config = PipelineConfig.from_params_file(params)
    changes: dict[str, Any] = {}
    if options.model:
        changes["model"] = options.model
    if options.model_classes:
        changes["classes"] = options.model_classes
    if label_divisor:
        changes["label_divisor"] = label_divisor
    return dataclasses.replace(config, **changes)


def model_classes(config: PipelineConfig) -> ClassTable:
    return registry_model_classes(config.model or str(model_path(DEFAULT_MODEL)),
                                  LoadOptions(backend=config.backend, classes=config.classes))


def check_classes(model: ClassTable, truth: ClassTable) -> None:
    if [(c.name, c.is_thing) for c in model] != [(c.name, c.is_thing) for c in truth]:
        raise ConfigError(f"the model's classes ({model.name}: {', '.join(c.name for c in model)})"
                          f" are not the ground truth's ({truth.name}: "
                          f"{', '.join(c.name for c in truth)}); give --classes or another model")


def run_settings(options: ReplayOptions) -> dict[str, Any]:
    """What decides a drive's statistics, recorded in its statistics (``settings``): the
    model, the parameters file and the class tables, each by path or name and by the
    SHA-256 of its content (a file replaced at the same path is another setting), the
    windows and the cameras. ``--resume`` keeps only results with equal settings."""
    params = Path(options.params or config_path("perception.yaml"))
    config = pipeline_config(options, None)
    model = config.model or str(model_path(DEFAULT_MODEL))
    if Path(model).exists():
        model = str(Path(model).resolve())
    return {"model": model, "model_sha256": model_digest(model),
            "model_classes": options.model_classes,
            "model_classes_sha256": class_table_digest(model_classes(config)),
            "params": str(params.resolve()),
            "params_sha256": file_digest(params) if params.is_file() else None,
            "windows": list(options.windows),
            "classes": options.classes.name if options.classes else None,
            "classes_sha256": class_table_digest(options.classes) if options.classes else None,
            "cameras": [dataclasses.asdict(c) for c in options.cameras]}


def settings_changes(recorded: dict[str, Any], current: dict[str, Any]) -> str:
    """The settings that differ, for one line: ``model_sha256 1a2b3c4d5e6f -> ...``."""
    def short(value: Any) -> str:
        text = json.dumps(value) if not isinstance(value, str) else value
        return text[:12] if len(text) == 64 else text[:80]
    changed = [key for key in sorted(set(recorded) | set(current))
               if recorded.get(key) != current.get(key)]
    return ", ".join(f"{key} {short(recorded.get(key))} -> {short(current.get(key))}"
                     for key in changed)


@dataclass(frozen=True)
class BagSetup:
    """What a bag is replayed with, the same for one bag and for a drive of a fleet."""
    topics: dict[str, bags.TopicInfo]
    recovered: bags.Recovery | None
    classes: ClassTable                # of the ground truth
    config: PipelineConfig

    def scorer(self, options: ReplayOptions, model: ClassTable, keep_frames: bool = False
               ) -> ReplayScorer:
        """The scorer of a model with the ``model`` classes (``keep_frames``: with every
        frame's statistics); a ConfigError when they are not the ground truth's."""
        check_classes(model, self.classes)
        return ReplayScorer(options.cameras, self.classes, self.config.label_divisor,
                            options.windows, keep_frames)

    def check_scored(self, bag: Path, scorer: ReplayScorer) -> None:
        """A recovered bag must have held at least one complete frame: else nothing was
        replayed and the report would be an empty one."""
        if self.recovered is not None and not any(s.frames for s in scorer.cameras.values()):
            raise DataError(f"{bag}: no complete frame of the replayed topics was "
                            f"recovered ({self.recovered.reason})")


def set_up_bag(options: ReplayOptions, bag: Path) -> BagSetup:
    """The bag's topics checked against the cameras, what was recovered of it, its
    class table (``--classes``, else the recorded one, else the synthetic table) and
    the pipeline configuration with its label divisor."""
    found = check_topics(bag, options.cameras)
    recovered = bags.recovery(bag)
    recorded_classes, divisor = bags.bag_metadata(bag)
    classes = options.classes or recorded_classes or ClassTable.builtin("synthetic")
    return BagSetup(found, recovered, classes, pipeline_config(options, divisor))


def offline_engine(options: ReplayOptions, config: PipelineConfig) -> OfflineEngine:
    """The in-process engine of ``--mode offline``."""
    return OfflineEngine(config, options.cameras)


# (options, pipeline config) -> an engine: a context manager whose ``classes`` are the
# model's and whose ``replay(frames)`` yields (frame, output or None) in frame order.
EngineFactory = Callable[[ReplayOptions, PipelineConfig], Any]
# What a replay does with each frame and its output (None: dropped) besides scoring it.
FrameSink = Callable[[ReplayFrame, "ReplayOutput | None"], None]


def replay_drive(options: ReplayOptions, bag: Path, setup: BagSetup, engine: Any,
                 scorer: ReplayScorer, sink: FrameSink | None = None) -> None:
    """The one replay loop, of a single replay and of each drive of a fleet: the frames
    of ``options.cameras`` in ``bag`` through ``engine`` (an ``EngineFactory``'s), each
    output scored, then handed to ``sink``; a DataError when a recovered bag gave no
    complete frame."""
    with engine:
        for frame, output in engine.replay(replay_frames(bag, options.cameras)):
            scorer.add(frame, output)
            if sink is not None:
                sink(frame, output)
    setup.check_scored(bag, scorer)


def replay(options: ReplayOptions, engine_for: EngineFactory = offline_engine
           ) -> dict[str, Any]:
    """Run the replay through the engine ``engine_for`` makes (offline by default; the
    replay command gives the live one for ``--mode live``) and write the report into
    ``options.out``; returns metrics.json's content. A VpsRosError or KeyboardInterrupt
    during the replay is raised again after the partial report is written."""
    if options.mode not in MODES:
        raise ConfigError(f"mode {options.mode!r}: choose {' or '.join(MODES)}")
    if options.rate is not None and options.rate <= 0:
        raise ConfigError(f"--rate must be positive, got {options.rate}")
    setup = set_up_bag(options, options.bag)
    classes, config, recovered = setup.classes, setup.config, setup.recovered
    if options.out.exists() and not options.out.is_dir():
        raise ConfigError(f"--out {options.out} is a file, not a folder")
    options.out.mkdir(parents=True, exist_ok=True)

    engine = engine_for(options, config)
    scorer = setup.scorer(options, engine.classes, keep_frames=True)
    counts = {c.name: setup.topics[c.image_topic].count for c in options.cameras}
    figures = FigureCollector(options.out, classes, config.label_divisor, choose_frames(counts),
                              options.video)
    recorder = OutputRecorder(options.record, [c.name for c in options.cameras], classes,
                              config.label_divisor) if options.record else None
    error: BaseException | None = None
    started = time.perf_counter()
    bar = tqdm(total=sum(counts.values()), desc=f"replay {options.mode}", unit="frame",
               file=sys.stderr, disable=None if options.progress else True)

    def drawn_and_recorded(frame: ReplayFrame, output: ReplayOutput | None) -> None:
        figures.add(frame, output)
        if recorder is not None and output is not None:
            recorder.write(output)
        bar.update(1)
    try:
        begin_run(options.out)
        replay_drive(options, options.bag, setup, engine, scorer, drawn_and_recorded)
    except (VpsRosError, KeyboardInterrupt) as exc:
        error = exc
    finally:
        bar.close()
        if recorder is not None:
            recorder.close()
    run = {"mode": options.mode, "lossless": options.lossless, "bag": str(options.bag),
           "model": config.model or str(model_path(DEFAULT_MODEL)),
           "classes": classes.name, "label_divisor": config.label_divisor,
           "camera_topics": [dataclasses.asdict(c) for c in options.cameras],
           "wall_s": time.perf_counter() - started,
           "partial": error is not None or recovered is not None,
           "error": None if error is None else (str(error) or type(error).__name__),
           "recovered": None if recovered is None else recovered.as_dict(),
           "recorded_bag": str(options.record) if options.record else None}
    document = _write_report(options, scorer, figures, run)
    end_run(options.out)
    if error is not None:
        raise error
    return document


def _write_report(options: ReplayOptions, scorer: ReplayScorer, figures: FigureCollector,
                  run: dict[str, Any]) -> dict[str, Any]:
    document = metrics_document(scorer.results(), run)
    document["frames_per_s"] = document["frames"] / run["wall_s"] if run["wall_s"] else None
    pictures = [p.name for p in figures.finish()]
    sheet = figures.contact_sheet(options.out / "overlay_contact_sheet.png")
    if sheet is not None:
        pictures.insert(0, sheet.name)
    histories = {name: score.history for name, score in scorer.cameras.items()}
    if figures.predicted_ids:
        timeline = tracks_timeline(options.out / "tracks_timeline.png", histories,
                                   figures.predicted_ids, scorer.space.classes,
                                   scorer.space.label_divisor)
        pictures.insert(1 if sheet else 0, timeline.name)
    document["pictures"] = pictures
    write_metrics(document, options.out)
    write_markdown(document, options.out, pictures)
    statistics = options.out / STATISTICS_FILE
    statistics.unlink(missing_ok=True)
    if run["error"] is None:
        write_statistics(options.out, options.bag, scorer, document, run_settings(options))
    return document


def print_summary(document: dict[str, Any], out: Path) -> None:
    """The metric table on stdout and where the report is."""
    print(text_table(summary_rows(document)))
    state = "PARTIAL report" if document["partial"] else "report"
    note = f" ({document['metrics_note']})" if document["metrics_note"] else ""
    print(f"VPQ/STQ in %, latency p50/p95 in ms; {document['frames']} frames in "
          f"{document['wall_s']:.1f} s; {state}{note}: {out / 'report.md'} "
          f"(metrics.json, {', '.join(document['pictures'])})")
