"""Definitions every package shares, at the bottom of the stack (imports nothing internal but itself).

``heatmaps`` (the one 2D keypoint <-> Gaussian heatmap codec), ``skeleton`` (joint sets, bones),
``keypoint_maps`` (2D detector layouts -> Panoptic-15), ``paths`` (repository folders),
``poses`` (MPJPE), ``errors`` (the ``UserError`` family the CLI prints as one line).
Importing this package is light: nothing here imports torch at module level.
"""
