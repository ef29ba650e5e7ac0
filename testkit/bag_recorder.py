"""A separate recorder process for the killed-recording tests: records the first N
frames of the replay tests' synthetic drive with the project's bag writer, prints
``wrote N`` and then waits (the bag still open, no metadata.yaml, no mcap summary) until
the test kills it with SIGKILL.

Usage: python bag_recorder.py OUT_BAG STORAGE N TOTAL_FRAMES HEIGHT WIDTH
(the frames of ``replay_helpers.synthetic_frames(TOTAL_FRAMES)`` at that size)
"""
import sys

from vps_ros.data import bags
from vps_ros.data.synthetic.dataset import SyntheticDataset


def main() -> None:
    out, storage = sys.argv[1], sys.argv[2]
    count, total, height, width = map(int, sys.argv[3:7])
    dataset = SyntheticDataset("val", 1, total, height, width)
    frames = list(dataset)
    writer = bags.BagWriter(out, bags.BagOptions(storage=storage), dataset.classes,
                            dataset.label_divisor)
    for frame in frames[:count]:
        writer.add(frame.index, frame.image, frame.panoptic)
    print(f"wrote {count}", flush=True)
    sys.stdin.readline()
    for frame in frames[count:]:
        writer.add(frame.index, frame.image, frame.panoptic)
    writer.writer.close()


if __name__ == "__main__":
    main()
