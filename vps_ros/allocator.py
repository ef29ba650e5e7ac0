"""Keeping freed memory in the process while many label maps are read in a row.

glibc's malloc serves a block above its mmap threshold (128 KiB at first, raised
dynamically up to the largest block freed) from a fresh mapping, and hands the top of
its heap back to the kernel once more than its trim threshold is free there. A reader
of label PNGs allocates and frees a few blocks of a megabyte per image (the decoded
RGBA, the run boundaries), so each image's blocks were new pages again: about 750 page
faults per 640x480 COCO pair, half of the CPU time from files to PQ
(docs/benchmarks.md, "COCO panoptic files"). With both thresholds fixed above such
blocks, freed blocks stay mapped and the next image reuses them.

Process-wide, so only the commands that read maps by the thousand (``vps-ros eval``)
call it; library code never does. Elsewhere than glibc it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

LOG = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc caps the mmap threshold at 32 MiB on 64-bit: blocks up to that size come from
# the heap; up to TRIM bytes free at its top stay mapped.
MMAP = 32 << 20
TRIM = 256 << 20


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds (see the module docstring); False where
    the C library has no ``mallopt`` or refuses the values."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
    if not done:
        LOG.debug("mallopt refused the thresholds: freed memory goes back to the kernel")
    return done
