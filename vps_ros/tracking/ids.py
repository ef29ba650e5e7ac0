"""Track ids that fit the panoptic encoding forever: 1..label_divisor-1, recycled safely."""
from __future__ import annotations

import numpy as np


class IdPool:
    """Hands out track ids in ``1..label_divisor - 1``, round robin.

    A panoptic value is ``class_id * label_divisor + track_id``, so an id must stay
    below ``label_divisor`` or it would read as another class; a node that runs for
    days creates far more objects than that. Ids are therefore recycled, safely:

    - an id is *held* from the frame its object is created until the object leaves
      the memory buffer (refreshed out after tau unseen frames, :meth:`reset`, or
      evicted early when every id is held); a held id is never handed out, so no two
      objects that can still be matched share an id;
    - allocation continues after the id handed out last and wraps around, so an id
      that was released comes back only after every other free id has been used:
      a consumer (metrics, rviz, a downstream tracker) sees an id again only after
      about ``label_divisor - 1`` newer objects, as late as the id space allows.
    """

    def __init__(self, label_divisor: int) -> None:
        self._held = np.zeros(label_divisor, bool)
        self._held[0] = True          # 0 means "no id" (stuff); never handed out
        self._next = 1

    @property
    def capacity(self) -> int:
        return len(self._held) - 1

    @property
    def free(self) -> int:
        return int(len(self._held) - np.count_nonzero(self._held))

    def allocate(self, count: int) -> np.ndarray:
        """``count`` free ids in round-robin order; the caller checks :attr:`free` first."""
        free = np.flatnonzero(~self._held)
        if count > len(free):
            raise RuntimeError(f"IdPool: {count} ids requested, {len(free)} free")
        start = np.searchsorted(free, self._next)
        ids = np.roll(free, -start)[:count]
        self._held[ids] = True
        if count:
            self._next = int(ids[-1]) % self.capacity + 1
        return ids.astype(np.int64)

    def release(self, ids: np.ndarray) -> None:
        self._held[ids] = False
