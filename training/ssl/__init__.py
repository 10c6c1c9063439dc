"""Self-supervised SelfPose3d training: the four stages (backbone, root net, pose net, finetune).

Kept light: importing the package imports nothing heavy; see ``trainer``, ``losses``, ``data``.
"""
