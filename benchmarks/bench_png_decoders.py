"""PNG decoders on the same label PNGs, ms per file: which one `data/formats/png.py` uses.

The files are the COCO-size maps of bench_coco_files.py (640x480, ~30 segments),
written by Pillow (as COCO's) and by OpenCV. Every decoder that is installed decodes
each file in turn (the order rotating from file to file, so a burst of load on the
machine falls on all of them alike); each time covers bytes -> (H, W, 3|4) uint8 array
ready for the id words (OpenCV's BGR converted to RGBA, the others as they come).

    flock /tmp/vps_bench.lock python benchmarks/bench_png_decoders.py [--files 100] [--repeats 3]
"""
from __future__ import annotations

import argparse
import importlib
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from bench_coco_files import write_coco


def decoders() -> dict[str, Callable[[bytes], np.ndarray]]:
    """The decoders installed here, by name."""
    found: dict[str, Callable[[bytes], np.ndarray]] = {
        "opencv imdecode(IMREAD_UNCHANGED)": lambda data: cv2.cvtColor(
            cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED),
            cv2.COLOR_BGR2RGBA),
        "pillow": lambda data: np.asarray(Image.open(io.BytesIO(data))),
    }
    try:
        codecs = importlib.import_module("imagecodecs")
        found["imagecodecs png_decode (libpng)"] = codecs.png_decode
        found["imagecodecs spng_decode (libspng)"] = codecs.spng_decode
    except ImportError:
        pass
    try:
        found["pyspng"] = importlib.import_module("pyspng").load
    except ImportError:
        pass
    try:
        from pywuffs import ImageDecoderType, PixelFormat
        from pywuffs.aux import ImageDecoder, ImageDecoderConfig
        config = ImageDecoderConfig()
        config.enabled_decoders = [ImageDecoderType.PNG]
        config.pixel_format = PixelFormat.RGBA_NONPREMUL
        wuffs = ImageDecoder(config)
        found["pywuffs (Wuffs), RGBA"] = lambda data: wuffs.decode(data).pixbuf
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100, help="image pairs (2 PNGs each)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    found = decoders()
    names = list(found)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        for writer in ("pil", "opencv"):
            root = Path(tmp) / writer
            write_coco(root, args.files, writer=writer)
            data = [p.read_bytes() for side in ("gt", "pred")
                    for p in sorted((root / side).glob("*.png"))]
            reference = found["pillow"](data[0])
            for name in names:
                decoded = found[name](data[0])
                assert np.array_equal(decoded[..., :3], reference), name
            times: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(args.repeats):
                for k, blob in enumerate(data):
                    for name in names[k % len(names):] + names[:k % len(names)]:
                        start = time.perf_counter()
                        found[name](blob)
                        times[name].append((time.perf_counter() - start) * 1e3)
            size = np.mean([len(d) for d in data]) / 1e3
            print(f"{len(data)} PNGs written by {writer} ({size:.1f} kB each), "
                  f"{args.repeats} repeats, ms per PNG:")
            for name in names:
                q25, q50, q75 = np.percentile(times[name], [25, 50, 75])
                print(f"  {name:36s} median {q50:6.2f}  (quartiles {q25:.2f}..{q75:.2f})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
