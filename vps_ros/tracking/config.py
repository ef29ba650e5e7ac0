"""Parameters of the tracker, read from YAML with :func:`vps_ros.config.from_mapping`.

Defaults, reasoned from seed 002 (Video-kMaX) and the scenario tests in
test/test_tracking_scenarios.py:

- ``mode`` = hila_mb_near_online: mask-IoU stitching with the previous frame first, the
  memory buffer for what is left (the hierarchy of seed 002, section 3.2). It only
  looks at past frames, so it is as online as ``hila_mb``. With the shipped model it
  has the best AQ of all modes on the occlusion and test splits, with model segments
  and with ground-truth masks, and the smallest matching space
  (``benchmarks/ablation_tracking.py``, docs/tracking.md, "Occlusion ablation"); it
  costs about 2 ms per frame at 256x512 for the mask IoU.
- ``lam`` = 0.8: the paper's default; its Table 9 shows AQ flat for lambda in 0.5..1.0.
- ``temperature`` = 0.2, not the paper's 1.0. Eq. (5) compares boxes normalised by the
  image size, so the squared distance d^2 between boxes is small: with T = 1 the
  location factor exp(-d^2/T) only halves at d^2 = 0.69 (a box moved about 60 % of the
  image), too weak to tell look-alike cars a few car lengths apart (Table 8 tuned T on
  KITTI-STEP, where the near-online model's video stitching already settles most
  short-term matches). Too small a T rejects the objects the memory exists for: a car
  going behind a truck is seen with a shrinking, truncated box, so its
  constant-velocity prediction is off by 15-25 % of the image when it comes out.
  T = 0.2 halves the factor at d^2 = 0.14.
- ``alpha`` = 0.4: the paper's 0.6..0.8 (Table 7) threshold a similarity whose location
  factor is close to 1 at T = 1. At T = 0.2 a correct re-identification after a long
  occlusion carries a factor of about 0.5..0.7, so alpha = 0.4 asks for about the
  appearance cosine the paper's thresholds ask for.
  ``benchmarks/bench_tracking.py --sweep`` counts id errors on the scripted scenes of
  test/test_tracking_scenarios.py for T in 0.05..1 x alpha in 0.3..0.6: T = 0.2 with
  alpha 0.3..0.5 makes none at the lower appearance noise and stays among the fewest
  at the higher one, in a neighbourhood that degrades gently (docs/tracking.md).
- ``tau`` = 30 frames: HiLA-MB's AQ does not drop from tau = 10 to 20 (Table 7; the
  location term keeps a fuller memory from causing false matches, unlike naive-MB),
  and the issue's scenario of a car hidden for 20 frames needs tau >= 20; 30 leaves a
  margin (3 s at KITTI's 10 fps, 1 s at 30 fps). Objects unseen for more than tau
  frames leave the memory (paper: removed when tau frames behind; ours keeps an object
  unseen for exactly tau frames, so paper tau = ours + 1).
- ``queries`` = follow: with a segmenter whose queries follow their objects from frame
  to frame (VidEoMT: ``FrameSegments.queries``), a thing segment whose query held a
  thing of the same class in the previous frame keeps that thing's id before any other
  stage; the model learnt that association, and it holds where masks and embeddings
  change fast. What no query carries (a query that lost its object, a new object) goes
  on to ``mode``'s stages, so the memory buffer re-identifies an object that comes
  back. ``ignore`` leaves the query index unused (``mode`` alone). With other
  segmenters the segments carry no query index and the setting has no effect.
- ``stitch_iou`` = 0.5: video stitching accepts a pair only above this mask IoU.
  Segments of one frame do not overlap, so above 0.5 each segment has at most one
  partner: stitching is unambiguous, and what it misses falls through to the memory
  buffer, which is the point of the hierarchy (a wrong stitch cannot be undone there).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import param

#: Association modes (seed 002 Table 5 rows): HiLA-MB online (appearance + location),
#: HiLA-MB near-online (video stitching first, then the memory buffer), naive-MB
#: (appearance only) and video stitching with the previous frame only.
MODES = ("hila_mb", "hila_mb_near_online", "naive_mb", "iou_stitch")
#: Whether the query index a segmenter carries across frames (VidEoMT) links tracks.
QUERY_MODES = ("follow", "ignore")


@dataclass(frozen=True)
class TrackerConfig:
    mode: str = param("hila_mb_near_online", "association: hila_mb, hila_mb_near_online, naive_mb "
                      "or iou_stitch", choices=MODES)
    lam: float = param(0.8, "appearance moving-average weight lambda of the current "
                       "frame (eq. 3)", lo=0.0, hi=1.0)
    temperature: float = param(0.2, "temperature T of the location term (eq. 5), in "
                               "squared image-normalised box units", lo=0.0, lo_open=True,
                               hi=100.0)
    alpha: float = param(0.4, "a memory match counts only when its similarity (eq. 5) "
                         "exceeds alpha", lo=0.0, hi=1.0)
    tau: int = param(30, "an object unseen for more than tau frames leaves the memory",
                     lo=0, hi=100000)
    stitch_iou: float = param(0.5, "video stitching: a pair needs a mask IoU with the "
                              "previous frame above this", lo=0.0, lo_open=True, hi=1.0)
    queries: str = param("follow", "follow: a thing whose segmenter query (VidEoMT) held it "
                         "in the previous frame keeps its id, mode's stages take the rest; "
                         "ignore: mode alone", choices=QUERY_MODES)
