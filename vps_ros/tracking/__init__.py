"""Online association of segments to track ids: the HiLA-MB memory buffer of Video-kMaX
(seed 002) and its baselines, naive-MB and IoU stitching (issue 6). ROS-free."""
from .config import MODES, TrackerConfig
from .memory_buffer import MemoryBuffer, make_tracker
from .stats import MatchingSpace

__all__ = ["MODES", "MatchingSpace", "MemoryBuffer", "TrackerConfig", "make_tracker"]
