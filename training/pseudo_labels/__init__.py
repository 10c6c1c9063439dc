"""2D pseudo labels: our on-disk format (:mod:`.store`), keypoint-layout mapping to Panoptic-15
(:mod:`.mapping`) and importers for COCO, OpenPose and SelfPose3d files (:mod:`.importers`)."""
