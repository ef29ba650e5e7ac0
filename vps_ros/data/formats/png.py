"""Decoding of label PNGs, the part of reading a dataset's maps that costs the most.

A label PNG is inflated (zlib) and unfiltered row by row; libpng and libspng (behind
OpenCV, Pillow, imagecodecs) spend ~2-3 ms on a 640x480 COCO map, Wuffs (Google's
memory-safe decoders, through ``pywuffs``, the ``png`` extra) ~1 ms on the same files
(docs/benchmarks.md, "PNG decoders"). 8-bit colour and palette PNGs go to Wuffs when it
is installed, straight to RGBA (so a segment id is one 32-bit word per pixel); every
other file (grey, 16-bit, not a PNG) and every file without the extra goes to OpenCV.
"""
from __future__ import annotations

import struct
import threading
from pathlib import Path

import cv2
import numpy as np

from ...errors import DataError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PALETTE = 3

try:
    from pywuffs import ImageDecoderType, PixelFormat
    from pywuffs.aux import ImageDecoder, ImageDecoderConfig
except ImportError:  # the optional `png` extra
    ImageDecoder = None

_local = threading.local()


def decoder_name() -> str:
    """Which library decodes 8-bit colour PNGs here."""
    return "wuffs" if ImageDecoder is not None else "opencv"


def _wuffs() -> "ImageDecoder":
    """This thread's decoder (a Wuffs decoder must not be shared between threads)."""
    decoder = getattr(_local, "decoder", None)
    if decoder is None:
        config = ImageDecoderConfig()
        config.enabled_decoders = [ImageDecoderType.PNG]
        config.pixel_format = PixelFormat.RGBA_NONPREMUL
        decoder = _local.decoder = ImageDecoder(config)
    return decoder


def _colour_png(data: bytes) -> bool:
    """8-bit RGB / RGBA, or a palette: what decodes losslessly to 8-bit RGBA."""
    if len(data) < 29 or not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR":
        return False
    depth, colour = struct.unpack_from(">BB", data, 24)
    return colour == _PALETTE or (depth == 8 and colour in (2, 6))


def _read(path: Path, flags: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    data = cv2.imread(str(path), flags)
    if data is None or data.size == 0:
        raise DataError(f"{path}: cannot decode the {what} (corrupt or not an image)")
    return data


def read_label(path: Path, what: str = "label PNG") -> np.ndarray:
    """A label image: (H, W, 4) RGBA for colour (alpha 255 where the file has none;
    uint8, or uint16 for a 16-bit file), (H, W) for grey 8/16-bit, as stored."""
    if ImageDecoder is not None:
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise DataError(f"{path}: {what} not found") from None
        if _colour_png(data):
            result = _wuffs().decode(data)
            if result.error_message:
                raise DataError(f"{path}: cannot decode the {what} ({result.error_message})")
            return result.pixbuf
    image = read_unchanged(path, what)
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4
                            else cv2.COLOR_BGR2RGBA)
    return image


def read_unchanged(path: Path, what: str = "label PNG") -> np.ndarray:
    """Any image as stored, by OpenCV: (H, W) grey 8/16-bit, (H, W, 3) BGR, (H, W, 4) BGRA."""
    return _read(path, cv2.IMREAD_UNCHANGED, what)


def read_bgr(path: Path, what: str = "image") -> np.ndarray:
    """An 8-bit colour image as BGR (H, W, 3), by OpenCV (photos, not label maps)."""
    return _read(path, cv2.IMREAD_COLOR, what)
