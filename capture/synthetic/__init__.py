"""The synthetic multi-person world: people, motion, rigs, rendering, simulated 2D detector, export.

One implementation shared by tests, training (datasets, pseudo labels), the capture source and the
embedded demo. Entry point: :class:`capture.synthetic.world.SyntheticWorld`. Light package: the
submodules import numpy/OpenCV only when used.
"""
