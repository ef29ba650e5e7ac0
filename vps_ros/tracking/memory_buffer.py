"""Online association of thing segments to track ids: HiLA-MB (seed 002, sections 3.2-3.3)
and the baselines it is compared with, as ablations of one associater (Table 5).

Per frame t, for the thing segments of a :class:`~vps_ros.types.FrameSegments`:

0. *Query propagation* (``queries: follow``, segments that carry their query index,
   VidEoMT): a segment whose query held a thing segment of the same class in frame
   t-1 takes that segment's object. The index is the model's own association (its
   queries of frame t start from those of t-1); the stages below see only what it
   left: new objects, and objects whose query lost them (occluded, out of view), which
   the memory buffer re-identifies when a query picks them up again.
1. *Video stitching* (``hila_mb_near_online``, ``iou_stitch``): thing segments of the
   previous frame and of this one are matched by mask IoU (same class, IoU above
   ``stitch_iou``, Hungarian on the IoU). A stitched segment takes the previous
   segment's id.
2. *Memory decoding* (``hila_mb``, ``hila_mb_near_online``, ``naive_mb``): the stored
   objects and the detections left unmatched by step 1 are compared with eq. (5),
   f(i, j) = exp(-||b_i - b^_j||^2 / T) * cos(q_i, q^_j) (``naive_mb``: cos only), only
   within the same class; Hungarian matching on f, a match counts only when
   f > alpha. b^_j is the stored box of eq. (4): the last box of an object seen in
   the previous frame, the constant-velocity prediction of one that was not.
3. *Encoding*: matched objects update appearance (eq. 3, weight ``lam``) and box
   (eq. 4, the detection's box); unmatched stored objects move on at constant
   velocity (eq. 4); unmatched detections become new objects with new ids; objects
   unseen for more than ``tau`` frames leave the memory (``iou_stitch`` keeps only the
   objects of the last frame).

Near-online with a per-frame segmenter. The paper's near-online model segments clips
of two frames with one overlapping frame, stitches the clips by mask IoU on the
overlapping frame (short-term), then matches the still unmatched objects with the
memory (long-term). Our segmenter has clip length 1, so no frame is segmented twice;
what a two-frame clip contributes is the short-term link between frames t-1 and t.
``hila_mb_near_online`` makes that link by mask IoU between the segments of frame t-1
and frame t (both clips' predictions of their shared frame become our two frames'
predictions), then runs the memory buffer on what is left, as the paper's
hierarchical matching does. It needs no future frame, so it adds no latency; unlike
the paper's clips, consecutive masks differ by the objects' motion, so a fast or small
object can fall below ``stitch_iou`` and is then matched by the memory stage.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError, DataError
from ..panoptic import DEFAULT_LABEL_DIVISOR, check_divisor
from ..types import FrameSegments, TrackedObject
from .config import TrackerConfig
from .ids import IdPool
from .memory import ObjectMemory
from .similarity import cosine, location, mask_iou, match
from .stats import MatchingSpace


@dataclass(frozen=True)
class _Features:
    stitch: bool      # video stitching with the previous frame
    memory: bool      # long-term matching with the memory buffer
    location: bool    # location term of eq. (5)


_FEATURES = {
    "hila_mb": _Features(stitch=False, memory=True, location=True),
    "hila_mb_near_online": _Features(stitch=True, memory=True, location=True),
    "naive_mb": _Features(stitch=False, memory=True, location=False),
    "iou_stitch": _Features(stitch=True, memory=False, location=False),
}


class MemoryBuffer:
    """Gives every thing segment a track id that persists through occlusions.

    Track ids lie in ``1..label_divisor - 1`` so that ``class_id * label_divisor + id``
    never overflows into another class, however long the node runs. They are recycled
    by :class:`~vps_ros.tracking.ids.IdPool`: an id is held while its object is in
    memory and never handed out then; released ids come back round robin, as late as
    possible. If all ids are held when new objects appear, the objects unseen for the
    longest are evicted early to free ids; a frame with more thing segments than
    ids is a :class:`~vps_ros.errors.DataError`.
    """

    def __init__(self, config: TrackerConfig,
                 label_divisor: int = DEFAULT_LABEL_DIVISOR) -> None:
        try:
            check_divisor(label_divisor)
        except ValueError as exc:
            raise ConfigError(f"tracker: {exc}") from None
        self.label_divisor = label_divisor
        self.update_config(config)
        self.reset()

    @property
    def config(self) -> TrackerConfig:
        return self._config

    def update_config(self, config: TrackerConfig) -> None:
        """Use ``config`` from the next frame on; the memory is kept."""
        if not isinstance(config, TrackerConfig):
            raise TypeError(f"expected a TrackerConfig, got {type(config).__name__}")
        self._config = config

    def reset(self) -> None:
        """Forget every object, id and statistic (new video, time jump, reset service)."""
        self._memory = ObjectMemory.empty(0)
        self._ids = IdPool(self.label_divisor)
        self._frame = -1
        self._segments: FrameSegments | None = None
        self._things = np.zeros(0, np.int64)   # thing segments of the last frame
        self._rows = np.zeros(0, np.int64)     # their memory rows
        self._queries: np.ndarray | None = None  # their query indices (-1: none)
        self._stats = MatchingSpace()

    def matching_space(self) -> MatchingSpace:
        """Summary of the M x N matching-space sizes since the last reset (a copy)."""
        return replace(self._stats)

    def update(self, segments: FrameSegments) -> np.ndarray:
        """(N,) int64 track id per segment of this frame; 0 for stuff segments."""
        config, features = self._config, _FEATURES[self._config.mode]
        things = np.flatnonzero(segments.is_thing)
        self._check(segments, len(things))
        self._frame += 1
        height, width = segments.image_size
        boxes = segments.boxes[things].astype(np.float64) / [width, height, width, height]
        appearance = segments.embeddings[things].astype(np.float32)
        classes = segments.class_ids[things]

        rows = np.full(len(things), -1, np.int64)
        queries = segments.queries[things] if segments.queries is not None else None
        if config.queries == "follow" and queries is not None:
            self._follow_queries(queries, classes, rows)
        if features.stitch:
            self._stitch(segments, things, rows, record=not features.memory)
        if features.memory:
            self._decode(boxes, appearance, classes, rows, features.location)
        self._encode(rows, boxes, appearance, segments.scores[things])
        self._refresh(rows, config.tau if features.memory else 0)
        self._add_new(rows, classes, appearance, boxes, segments.scores[things])

        self._segments, self._things, self._rows = segments, things, rows
        self._queries = queries
        track_ids = np.zeros(segments.num_segments, np.int64)
        track_ids[things] = self._memory.ids[rows]
        return track_ids

    def objects(self) -> list[TrackedObject]:
        """The things after the last update: those of this frame (in segment order),
        then those held only in memory, with their constant-velocity box (pixels of the
        last frame; it may reach beyond the image)."""
        if self._segments is None:
            return []
        segments, memory, frame = self._segments, self._memory, self._frame
        height, width = segments.image_size
        motion = memory.velocity()
        velocity = (0.5 * (motion[:, :2] + motion[:, 2:]) * [width, height]).tolist()
        ids, first = memory.ids.tolist(), memory.first_seen.tolist()
        seen = [TrackedObject(track_id=ids[r], class_id=int(segments.class_ids[k]),
                              is_thing=True, score=float(segments.scores[k]),
                              area=int(segments.areas[k]),
                              box=tuple(segments.boxes[k].tolist()),
                              velocity=tuple(velocity[r]), age=frame - first[r])
                for k, r in zip(self._things.tolist(), self._rows.tolist())]
        boxes = (memory.box * [width, height, width, height]).tolist()
        held = [TrackedObject(track_id=ids[r], class_id=int(memory.class_ids[r]),
                              is_thing=True, score=float(memory.score[r]), area=0,
                              box=tuple(boxes[r]), velocity=tuple(velocity[r]),
                              age=frame - first[r],
                              frames_since_seen=frame - int(memory.last_seen[r]),
                              box_is_predicted=True)
                for r in np.flatnonzero(memory.last_seen < frame).tolist()]
        return seen + held

    def _check(self, segments: FrameSegments, thing_count: int) -> None:
        """Reject, before any state changes, a frame the memory cannot take."""
        where = f"tracker frame {self._frame + 1}"
        if segments.embeddings.ndim != 2:
            raise DataError(f"{where}: embeddings must be (N, D), got shape "
                            f"{segments.embeddings.shape}")
        if thing_count > self._ids.capacity:
            raise DataError(f"{where}: {thing_count} thing segments, but label_divisor "
                            f"{self.label_divisor} allows only {self._ids.capacity} track ids")
        dim = segments.embeddings.shape[1]
        if len(self._memory) == 0:
            self._memory = ObjectMemory.empty(dim)
        elif dim != self._memory.embed_dim:
            raise DataError(f"{where}: {dim}-d embeddings, but the memory holds "
                            f"{self._memory.embed_dim}-d appearances; reset the tracker "
                            "when the model changes")

    def _follow_queries(self, queries: np.ndarray, classes: np.ndarray,
                        rows: np.ndarray) -> None:
        """Query propagation: a detection whose query (>= 0) held a thing segment of the
        same class in the previous frame takes that segment's object."""
        if self._queries is None or self._segments is None:
            return
        held = self._queries >= 0
        order = np.argsort(self._queries[held])
        previous = self._queries[held][order]
        if len(previous) == 0:
            return
        previous_rows = self._rows[held][order]
        previous_classes = self._segments.class_ids[self._things][held][order]
        at = np.minimum(np.searchsorted(previous, queries), len(previous) - 1)
        carried = ((queries >= 0) & (previous[at] == queries)
                   & (previous_classes[at] == classes))
        rows[carried] = previous_rows[at[carried]]

    def _stitch(self, segments: FrameSegments, things: np.ndarray, rows: np.ndarray,
                record: bool) -> None:
        """Video stitching: previous-frame thing segments to this frame's, by mask IoU
        (those query propagation left)."""
        previous = self._segments
        if previous is None:
            if record:
                self._stats.record(0, len(things))
            return
        iou = mask_iou(previous.segment_map, self._things, segments.segment_map, things)
        same_class = previous.class_ids[self._things][:, None] == segments.class_ids[things]
        left = (~np.isin(self._rows, rows[rows >= 0]))[:, None] & (rows < 0)[None, :]
        prev_index, det_index = match(iou, same_class & left
                                      & (iou > self._config.stitch_iou))
        rows[det_index] = self._rows[prev_index]
        if record:
            self._stats.record(len(self._things), len(things))

    def _decode(self, boxes: np.ndarray, appearance: np.ndarray, classes: np.ndarray,
                rows: np.ndarray, use_location: bool) -> None:
        """Memory decoding (eq. 5) of the detections and objects not matched yet."""
        memory = self._memory
        free = np.ones(len(memory), bool)
        free[rows[rows >= 0]] = False
        stored, detected = np.flatnonzero(free), np.flatnonzero(rows < 0)
        self._stats.record(len(stored), len(detected))
        if len(stored) == 0 or len(detected) == 0:
            return
        similarity = cosine(memory.appearance[stored], appearance[detected])
        if use_location:
            similarity *= location(memory.box[stored], boxes[detected],
                                   self._config.temperature)
        admissible = ((memory.class_ids[stored][:, None] == classes[detected][None, :])
                      & (similarity > self._config.alpha))
        stored_index, det_index = match(similarity, admissible)
        rows[detected[det_index]] = stored[stored_index]

    def _encode(self, rows: np.ndarray, boxes: np.ndarray, appearance: np.ndarray,
                scores: np.ndarray) -> None:
        """Eq. (3) and (4) for the objects seen in this frame and those only in memory."""
        memory, matched = self._memory, rows >= 0
        unseen = np.ones(len(memory), bool)
        unseen[rows[matched]] = False
        memory.observe(rows[matched], boxes[matched], appearance[matched], scores[matched],
                       self._frame, self._config.lam)
        memory.coast(np.flatnonzero(unseen))

    def _refresh(self, rows: np.ndarray, tau: int) -> None:
        """Drop objects unseen for more than ``tau`` frames, and, if the new detections
        need more ids than are free, the objects unseen for longest."""
        memory = self._memory
        unseen_for = self._frame - memory.last_seen
        drop = unseen_for > tau
        short = np.count_nonzero(rows < 0) - self._ids.free - np.count_nonzero(drop)
        if short > 0:
            # _check bounds the frame's things by the id capacity, so enough objects
            # held only in memory exist to free ``short`` ids.
            candidates = np.flatnonzero(~drop & (unseen_for > 0))
            oldest = candidates[np.argsort(-unseen_for[candidates], kind="stable")[:short]]
            drop[oldest] = True
        if not drop.any():
            return
        self._ids.release(memory.ids[drop])
        new_row = np.cumsum(~drop) - 1
        rows[rows >= 0] = new_row[rows[rows >= 0]]
        memory.keep(~drop)

    def _add_new(self, rows: np.ndarray, classes: np.ndarray, appearance: np.ndarray,
                 boxes: np.ndarray, scores: np.ndarray) -> None:
        """Unmatched detections start new objects (eq. 3 case 2)."""
        new = np.flatnonzero(rows < 0)
        if len(new) == 0:
            return
        start = len(self._memory)
        self._memory.append(self._ids.allocate(len(new)), classes[new], appearance[new],
                            boxes[new], scores[new], self._frame)
        rows[new] = np.arange(start, start + len(new))


def make_tracker(config: TrackerConfig,
                 label_divisor: int = DEFAULT_LABEL_DIVISOR) -> MemoryBuffer:
    """The tracker the pipeline and the node use; ``config.mode`` picks the association."""
    return MemoryBuffer(config, label_divisor)
