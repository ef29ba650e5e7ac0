"""Bounds on what one camera frame may cost: its size, the network input it needs, the
engine sessions and exports that serve the sizes met (docs/reliability.md, Bounds).

A letterboxed network input is as high as the camera's aspect needs at the model's
width (:meth:`~vps_ros.model.MaskSegmenter.network_size`); left unbounded, one 8000x2
frame asks for a 2048000x512 input (8 GB, and an export for that size). Here the
height is capped by ``max_aspect`` and ``max_network_pixels`` (a taller frame is scaled
down to fit the capped input, its aspect kept), and a frame beyond ``max_image_*`` is
refused before any pixel is resized (:class:`FrameTooLarge`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param
from ..errors import DataError


class FrameTooLarge(DataError):
    """A frame beyond the configured maximum input size: refused, nothing allocated."""


@dataclass(frozen=True)
class InputLimits:
    """Bounds on camera frames, the network input and the engines' caches."""

    max_image_width: int = param(8192, "widest camera frame accepted (pixels); wider "
                                 "frames are refused", lo=1)
    max_image_height: int = param(8192, "tallest camera frame accepted (pixels); taller "
                                  "frames are refused", lo=1)
    max_image_pixels: int = param(33_554_432, "largest camera frame accepted (width x "
                                  "height, 32 MP); larger frames are refused", lo=1)
    max_aspect: float = param(4.0, "letterbox: the network input is at most this many "
                              "times as high as wide; taller frames are scaled to fit",
                              lo=1.0)
    max_network_pixels: int = param(4_194_304, "letterbox: the network input holds at "
                                    "most this many pixels (never less than the model's "
                                    "input size); taller frames are scaled to fit", lo=1024)
    engine_sessions: int = param(4, "engine sessions (one per network input size) kept "
                                 "in memory; the least recently used is closed beyond",
                                 lo=1, hi=64)
    export_cache_mb: int = param(1024, "on-disk cache of on-the-fly ONNX exports: at most "
                                 "this many MB, least recently used deleted beyond", lo=1)
    export_cache_files: int = param(16, "on-disk cache of on-the-fly ONNX exports: at "
                                    "most this many files", lo=1)

    def check_image(self, size: tuple[int, int], where: str) -> None:
        """Raise :class:`FrameTooLarge` naming ``where`` if a frame of ``size`` =
        (height, width) is beyond the maximum input size."""
        height, width = size
        if width > self.max_image_width or height > self.max_image_height:
            raise FrameTooLarge(f"{where}: frame {width}x{height} is beyond the maximum "
                                f"input size {self.max_image_width}x{self.max_image_height} "
                                "(limits.max_image_width/max_image_height): refused")
        if width * height > self.max_image_pixels:
            raise FrameTooLarge(f"{where}: frame {width}x{height} has {width * height} "
                                f"pixels, beyond limits.max_image_pixels "
                                f"{self.max_image_pixels}: refused")

    def max_network_height(self, input_size: tuple[int, int]) -> int:
        """The tallest letterboxed input at ``input_size``'s width: ``max_aspect`` times
        the width and ``max_network_pixels`` in all, in multiples of 32, and never
        below the model's own input height."""
        height, width = input_size
        cap = min(int(width * self.max_aspect), self.max_network_pixels // width) // 32 * 32
        return max(height, cap)
