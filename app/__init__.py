"""Composition root: CLI, process supervisor, inference worker."""
