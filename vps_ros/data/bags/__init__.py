"""rosbag2 drives, without ROS: :mod:`.frames` writes and reads camera frames and
ground truth, :mod:`.storage` opens what is on disk (complete, or cut short by a killed
recorder), :mod:`.repair` copies what can be read into a new, complete bag."""
from .frames import (COMPRESSED, COMPRESSED_TOPIC, GT_TOPIC, IMAGE, IMAGE_TOPIC, INFO_TOPIC,
                     STORAGES, BagDataset, BagOptions, BagWriter, TopicInfo, bag_metadata,
                     end_frame, find_bags, is_bag, read_frames, record, recovery, topics,
                     typestore, write)
from .storage import BagSource, Recovery, open_bag

__all__ = ["COMPRESSED", "COMPRESSED_TOPIC", "GT_TOPIC", "IMAGE", "IMAGE_TOPIC", "INFO_TOPIC",
           "STORAGES", "BagDataset", "BagOptions", "BagSource", "BagWriter", "Recovery",
           "TopicInfo", "bag_metadata", "end_frame", "find_bags", "is_bag", "open_bag",
           "read_frames", "record", "recovery", "topics", "typestore", "write"]
