#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.py needs on the lent GPU machine (docs/benchmarks.md,
# "GPU check"), into .whl/ (ignored through .git/info/exclude): what the package imports
# and that machine's Python 3.12 lacks (rosbags, mcap and their needs), cp312 manylinux
# builds at the versions of requirements/lock.txt. Not carried: openvino (56 MiB, the
# tree is ~14 MiB of the 64 MiB that travel; OpenVINO stays on the CPU anyway),
# onnxruntime-gpu (244 MiB), the ROS wheels (45 MiB; they fit, but the package's
# messages are built here for Python 3.11 only).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(rosbags mcap lz4 zstandard ruamel.yaml apsw backports.zstd)
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
pins=()
for name in "${WHEELS[@]}"; do
  pin=$(grep -i "^${name}==" requirements/lock.txt) || { echo "$name: not in requirements/lock.txt" >&2; exit 1; }
  pins+=("$pin")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
du -sh .whl
