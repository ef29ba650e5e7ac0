"""The stored objects of the memory buffer and their encoding phase (seed 002, eq. 3 and 4).

Each row is one object: its track id, class, appearance q^ (eq. 3), its last two stored
boxes b^t, b^(t-1) (eq. 4; x0, y0, x1, y1 normalised by the image width and height),
the frames it was first and last seen and its last class confidence. Rows are kept in
parallel arrays so that every step is vectorised over all objects.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class ObjectMemory:
    ids: np.ndarray            # (M,) int64 track ids
    class_ids: np.ndarray      # (M,) int32
    appearance: np.ndarray     # (M, D) float32: q^ of eq. 3 (not renormalised)
    box: np.ndarray            # (M, 4) float64: b^t of eq. 4
    previous_box: np.ndarray   # (M, 4) float64: b^(t-1); equals box for a new object
    first_seen: np.ndarray     # (M,) int64 frame index
    last_seen: np.ndarray      # (M,) int64 frame index
    score: np.ndarray          # (M,) float32 class confidence when last seen

    @classmethod
    def empty(cls, embed_dim: int) -> "ObjectMemory":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int32),
                   np.zeros((0, embed_dim), np.float32), np.zeros((0, 4)), np.zeros((0, 4)),
                   np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def embed_dim(self) -> int:
        return self.appearance.shape[1]

    def velocity(self) -> np.ndarray:
        """(M, 4) box motion per frame from the last two stored boxes."""
        return self.box - self.previous_box

    def observe(self, rows: np.ndarray, boxes: np.ndarray, appearance: np.ndarray,
                scores: np.ndarray, frame: int, lam: float) -> None:
        """Objects in memory and in this frame: eq. 3 case 1, eq. 4 case 1."""
        self.appearance[rows] = (1.0 - lam) * self.appearance[rows] + lam * appearance
        self.previous_box[rows] = self.box[rows]
        self.box[rows] = boxes
        self.score[rows] = scores
        self.last_seen[rows] = frame

    def coast(self, rows: np.ndarray) -> None:
        """Objects only in memory: eq. 4 case 2 (constant velocity); eq. 3 case 3 keeps q^."""
        predicted = 2.0 * self.box[rows] - self.previous_box[rows]
        self.previous_box[rows] = self.box[rows]
        self.box[rows] = predicted

    def append(self, ids: np.ndarray, class_ids: np.ndarray, appearance: np.ndarray,
               boxes: np.ndarray, scores: np.ndarray, frame: int) -> None:
        """Objects only in this frame: eq. 3 case 2, eq. 4 case 1 (no velocity yet)."""
        count = len(ids)
        self.ids = np.concatenate([self.ids, ids])
        self.class_ids = np.concatenate([self.class_ids, class_ids])
        self.appearance = np.concatenate([self.appearance, appearance.astype(np.float32)])
        self.box = np.concatenate([self.box, boxes])
        self.previous_box = np.concatenate([self.previous_box, boxes])
        self.first_seen = np.concatenate([self.first_seen, np.full(count, frame, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(count, frame, np.int64)])
        self.score = np.concatenate([self.score, scores.astype(np.float32)])

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is False."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name)[mask])
