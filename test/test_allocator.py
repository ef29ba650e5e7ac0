"""keep_freed_memory: blocks of a label map's size, freed and allocated again, stay
mapped instead of costing fresh pages (page faults) for every image."""
import subprocess
import sys

# Three 640x480 RGBA maps (1.2 MB, 300 pages of 4 KiB each) made and freed per "image".
SCRIPT = """
import resource, sys
import numpy as np
from vps_ros.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def image():
    maps = [np.ones((480, 640, 4), np.uint8) for _ in range(3)]
    return sum(int(m[0, 0, 0]) for m in maps)
image()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    image()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True, timeout=120)
    return int(out.stdout.strip())


def test_freed_maps_are_reused_without_page_faults():
    # 50 images x 3 maps x 300 pages = 45,000 pages touched: with the thresholds fixed
    # the same heap blocks serve every image (a few faults at most); by default glibc
    # returns them to the kernel and faults most pages in again.
    assert _faults("keep") < 50
    assert _faults("default") > 50 * 300
