"""TensorBoard event files of a training run (beside its JSON history).

``tensorboard --logdir OUT_DIR/tensorboard`` shows the losses, the learning rate, the
throughput (frames/s, share of the step spent waiting for data) and validation PQ.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


class EventLog:
    """Scalars written with ``torch.utils.tensorboard``; with no folder, nothing is written
    (ranks other than 0, or ``tensorboard: false``)."""

    def __init__(self, folder: Path | None) -> None:
        self._writer = None
        if folder is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("tensorboard: true needs the tensorboard package (pip "
                                  "install 'vps_ros[train]'), or set tensorboard: false in "
                                  "the training config") from None
            self._writer = SummaryWriter(str(folder))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self._writer is None:
            return
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
