"""Dataset formats on disk: Cityscapes-VPS, KITTI-STEP, VIPSeg (with the COCO panoptic
encoding they share) behind one entry point per direction (:mod:`.datasets`)."""
