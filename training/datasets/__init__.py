"""Dataset parsers: CMU Panoptic (sequences, 3D body GT) and Shelf/Campus (VoxelPose format)."""
