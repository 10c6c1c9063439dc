"""Rig-agnostic learned detection route: root + pose nets trained on synthetic motion projected
through random rigs, with a simulated 2D estimator's errors (VoxelPose's synthetic protocol)."""
