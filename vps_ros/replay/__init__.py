"""Bag replay and evaluation (``vps-ros replay``): a recorded drive through the pipeline,
offline in-process or live through the node (``vps_ros.ros.replay_live``), scored with
the metric core, recorded and reported. ROS-free except for the live engine, which is
imported only in live mode."""
