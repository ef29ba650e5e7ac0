#!/usr/bin/env bash
# `make demo`: a synthetic test-split drive recorded as a rosbag2, replayed live through
# the real perception node (separate process, DDS on loopback) with the shipped model,
# lossless, then scored with VPQ and STQ; prints the metric table and the report folder.
# Expects env.sh sourced (the Makefile does it). Output: out/demo/ (or $VPS_ROS_DEMO_OUT).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${VPS_ROS_DEMO_OUT:-$ROOT/out/demo}
FRAMES=${VPS_ROS_DEMO_FRAMES:-100}
BAG=$OUT/drive/test/0000

rm -rf "$OUT/drive" "$OUT/report" "$OUT/outputs"
mkdir -p "$OUT"
echo "demo: recording a synthetic test drive ($FRAMES frames at 10 Hz, 256x512) into $BAG"
vps-ros synth "$OUT/drive" --split test --format rosbag2 --sequences 1 --frames "$FRAMES"

echo "demo: live replay through perception_node, lossless"
bash "$ROOT/scripts/in_loopback_netns.sh" \
  vps-ros replay "$BAG" --image-topic /camera/image_raw --gt-topic /gt/panoptic \
  --mode live --lossless --record "$OUT/outputs" --out "$OUT/report"

echo "demo: report in $OUT/report (report.md, metrics.json, overlay_contact_sheet.png," \
     "tracks_timeline.png, overlay.mp4, node.log); the node's outputs as a rosbag2 in $OUT/outputs"
