"""Networks (PoseResNet, V2V, root and pose nets), checkpoints and the inference runtime.

Kept light: importing ``engine`` does not import torch (``calib.common.skeleton`` is pure Python).
"""
