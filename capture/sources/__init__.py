"""Concrete frame sources (OpenCV devices/streams, video files, image folders, CMU Panoptic
sequences, recorded sessions, the synthetic world). Build them from a rig with
:func:`capture.sources.factory.build_sources`."""
