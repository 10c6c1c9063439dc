"""Open3D live viewer, offscreen rendering and 2D overlays (never imports torch)."""
